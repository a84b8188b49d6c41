"""BitSerialAggregation in Amaranth's simulator against NumPy's exact CSR sums and the cycle model."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from a2q.hw.units.bit_serial_aggregation import (
    AggregationMemory,
    BitSerialAggregation,
    aggregation_accumulator_width,
)
from a2q.sim.cycles import aggregation_cycles


def csr_sums(indptr, indices, x):
    return np.array([x[indices[indptr[i]:indptr[i + 1]]].sum(0) for i in range(len(indptr) - 1)],
                    dtype=np.int64).reshape(len(indptr) - 1, x.shape[1])


def simulate(indptr, indices, x, bits, *, lanes, signed_input, max_bits=None, via_init=False,
             stall=None):
    """Load (or init) the memories, run every node; return (sums, cycles start..busy low).

    ``stall(cycle)`` -> True keeps ``result.ready`` low that cycle (consumer back-pressure)."""
    n, d = x.shape
    dut = BitSerialAggregation(columns=d, lanes=lanes, max_bits=max_bits or int(bits.max()),
                               signed_input=signed_input, max_nodes=max(n, 2),
                               max_edges=max(len(indices), 1))
    words = dut.memory_words(indptr, indices, x, bits)
    if via_init:
        dut = BitSerialAggregation(columns=d, lanes=lanes, max_bits=dut.max_bits,
                                   signed_input=signed_input, max_nodes=max(n, 2),
                                   max_edges=dut.max_edges, init=words)
    out, cycles = [], []

    async def bench(ctx):
        if not via_init:
            for key, ws in words.items():
                for a, w in enumerate(ws):
                    ctx.set(dut.load.p, {"memory": key, "addr": a, "data": w})
                    ctx.set(dut.load.valid, 1)
                    await ctx.tick()
            ctx.set(dut.load.valid, 0)
        ctx.set(dut.num_nodes, n)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        c = 1
        while ctx.get(dut.busy):
            ready = not (stall and stall(c))
            ctx.set(dut.result.ready, ready)
            if ready and ctx.get(dut.result.valid):
                out.append([int(v) for v in ctx.get(dut.result.payload)])
            await ctx.tick()
            c += 1
        cycles.append(c)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    y = np.array(out, dtype=np.int64).reshape(n, dut.tiles * lanes)[:, :d]
    return y, cycles[0]


def random_case(rng, *, signed_input, max_degree=5):
    n = int(rng.integers(1, 9))
    d = int(rng.integers(1, 6))
    deg = rng.integers(0, max_degree + 1, n)
    indptr = np.concatenate([[0], np.cumsum(deg)])
    indices = rng.integers(0, n, int(indptr[-1]))
    bits = rng.integers(1, 9, n)
    if signed_input:
        x = np.array([rng.integers(-(1 << (b - 1)), 1 << (b - 1), d) for b in bits])
    else:
        x = np.array([rng.integers(0, 1 << b, d) for b in bits])
    return indptr, indices, x, bits


@pytest.mark.parametrize("signed_input", [False, True])
def test_random_graphs_equal_numpy_and_cycle_model(signed_input):
    rng = np.random.default_rng(11 + signed_input)
    for _ in range(12):
        indptr, indices, x, bits = random_case(rng, signed_input=signed_input)
        lanes = int(rng.integers(1, 4))
        y, cycles = simulate(indptr, indices, x, bits, lanes=lanes, signed_input=signed_input)
        assert np.array_equal(y, csr_sums(indptr, indices, x))
        assert cycles == aggregation_cycles(indptr, indices, bits, columns=x.shape[1], lanes=lanes)


def test_corners_zero_degree_self_repeat_and_maximum_degree():
    # node 0: no neighbours; node 1: itself three times; node 2: every node, 1-bit and 8-bit.
    x = np.array([[255, 0], [1, 1], [0, 255]])
    bits = np.array([8, 1, 8])
    indptr = np.array([0, 0, 3, 9])
    indices = np.array([1, 1, 1, 0, 1, 2, 0, 1, 2])
    y, cycles = simulate(indptr, indices, x, bits, lanes=2, signed_input=False)
    assert np.array_equal(y, csr_sums(indptr, indices, x))
    assert cycles == aggregation_cycles(indptr, indices, bits, columns=2, lanes=2)
    # Signed, most negative values of each width, a single node its own neighbour.
    x = np.array([[-128, -1, 127]])
    y, _ = simulate(np.array([0, 2]), np.array([0, 0]), x, np.array([8]), lanes=3,
                    signed_input=True)
    assert np.array_equal(y, [[-256, -2, 254]])


def test_back_pressure_and_init_contents():
    rng = np.random.default_rng(3)
    indptr, indices, x, bits = random_case(rng, signed_input=True)
    y, cycles = simulate(indptr, indices, x, bits, lanes=2, signed_input=True,
                         stall=lambda c: c % 3 == 0)
    assert np.array_equal(y, csr_sums(indptr, indices, x))
    y, cycles = simulate(indptr, indices, x, bits, lanes=2, signed_input=True, via_init=True)
    assert np.array_equal(y, csr_sums(indptr, indices, x))
    assert cycles == aggregation_cycles(indptr, indices, bits, columns=x.shape[1], lanes=2)


def test_narrow_operands_in_a_wide_unit():
    x = np.array([[-1, 0], [-2, 1]])  # node 0 signed 1-bit (-1 or 0), node 1 signed 2-bit
    y, _ = simulate(np.array([0, 2, 3]), np.array([0, 1, 1]), x, np.array([1, 2]), lanes=1,
                    signed_input=True, max_bits=8)
    assert np.array_equal(y, [[-3, 1], [-2, 1]])


def test_accumulator_width_is_the_worst_case():
    # 3 operands of 255 (unsigned 8-bit) sum to 765: 10 bits, plus a sign bit.
    assert aggregation_accumulator_width(3, 8, False) == 11
    assert aggregation_accumulator_width(2, 8, True) == 10  # -256 needs 9 bits; one spare
    x = np.full((1, 1), 255)
    y, _ = simulate(np.array([0, 3]), np.array([0, 0, 0]), x, np.array([8]), lanes=1,
                    signed_input=False)
    assert y[0, 0] == 765


@pytest.mark.parametrize("kwargs, message", [
    ({"columns": 0}, "columns"),
    ({"lanes": 2.5}, "lanes"),
    ({"max_bits": 17}, "max_bits"),
    ({"max_nodes": 0}, "max_nodes"),
    ({"acc_width": 4}, "acc_width 4 can overflow"),
    ({"init": {AggregationMemory.BITS: [1] * 9}}, "bits has 9 words"),
])
def test_bad_parameters_are_refused(kwargs, message):
    args = dict(columns=4, lanes=2, max_bits=8, max_nodes=8, max_edges=16) | kwargs
    with pytest.raises(ValueError, match=message):
        BitSerialAggregation(**args)
