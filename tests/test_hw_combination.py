"""BitSerialCombination in Amaranth's simulator against NumPy's exact X @ W."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from a2q.hw.units.bit_serial_combination import (
    BitSerialCombination,
    accumulator_width,
    bit_planes,
)


async def load_weights(ctx, dut, w):
    """Write the weight matrix into the unit, one row a cycle."""
    for k in range(w.shape[0]):
        ctx.set(dut.weights.p.row, k)
        ctx.set(dut.weights.p.values, [int(v) for v in w[k]])
        ctx.set(dut.weights.valid, 1)
        await ctx.tick()
    ctx.set(dut.weights.valid, 0)


def simulate(x, bits, w, *, signed_input, lanes=None, consumer_stall=0):
    """Drive one unit with rows of x (row i in bits[i] bits); return (results, cycles)."""
    n, f = x.shape
    lanes = lanes or w.shape[1]
    dut = BitSerialCombination(in_features=f, lanes=lanes, weight_bits=4,
                               max_bits=int(max(bits)), signed_input=signed_input)
    results, cycles = [], []

    async def bench(ctx):
        await load_weights(ctx, dut, w)
        for i in range(n):
            planes = bit_planes(x[i], int(bits[i]), signed_input)
            ticks = 0
            for j, word in enumerate(planes):
                ctx.set(dut.planes.p.plane, word)
                ctx.set(dut.planes.p.first, j == 0)
                ctx.set(dut.planes.p.last, j == len(planes) - 1)
                ctx.set(dut.planes.valid, 1)
                assert ctx.get(dut.planes.ready), "the unit must accept a plane every cycle"
                await ctx.tick()
                ticks += 1
            ctx.set(dut.planes.valid, 0)
            while not ctx.get(dut.result.valid):
                await ctx.tick()
                ticks += 1
            cycles.append(ticks)
            for _ in range(consumer_stall):
                await ctx.tick()
            results.append([int(v) for v in ctx.get(dut.result.payload)])
            ctx.set(dut.result.ready, 1)
            await ctx.tick()
            ctx.set(dut.result.ready, 0)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return np.array(results, dtype=np.int64), np.array(cycles)


@pytest.mark.parametrize("signed_input", [False, True])
def test_random_rows_equal_numpy(signed_input):
    rng = np.random.default_rng(5 + signed_input)
    n, f, c = 12, 7, 3
    bits = rng.integers(1 if not signed_input else 2, 9, n)
    if signed_input:
        x = np.array([rng.integers(-(1 << (b - 1)), 1 << (b - 1), f) for b in bits])
    else:
        x = np.array([rng.integers(0, 1 << b, f) for b in bits])
    w = rng.integers(-8, 8, (f, c))
    y, planes = simulate(x, bits, w, signed_input=signed_input)
    assert np.array_equal(y, x @ w)
    assert np.array_equal(planes, bits)  # B_i cycles from first plane to valid result


def test_corners_max_values_and_most_negative_weights():
    f = 5
    w = np.full((f, 2), -8)
    w[:, 1] = 7
    x = np.array([[255] * f, [0] * f, [1] * f, [128] * f])
    bits = np.array([8, 1, 1, 8])
    y, _ = simulate(x, bits, w, signed_input=False, consumer_stall=3)
    assert np.array_equal(y, x @ w)
    xs = np.array([[-128] * f, [127] * f, [-1] * f])
    y, _ = simulate(xs, np.array([8, 8, 2]), w, signed_input=True)
    assert np.array_equal(y, xs @ w)


def test_accumulator_is_sized_for_the_worst_case():
    assert accumulator_width(1, 1, 2, False) == 3  # 1 * 1 * -2 needs sign + 2 bits
    worst = 1433 * 255 * 8
    assert accumulator_width(1433, 8, 4, False) == worst.bit_length() + 1
    with pytest.raises(ValueError, match="overflow"):
        BitSerialCombination(in_features=16, lanes=2, max_bits=8, acc_width=8)
    with pytest.raises(ValueError, match="lanes"):
        BitSerialCombination(in_features=16, lanes=0)


def test_back_to_back_nodes_cost_exactly_their_bits():
    """With the consumer always ready, n nodes of B_i bits take sum(B_i) cycles: no bubbles."""
    rng = np.random.default_rng(9)
    n, f = 20, 6
    bits = rng.integers(1, 9, n)
    x = np.array([rng.integers(0, 1 << b, f) for b in bits])
    w = rng.integers(-8, 8, (f, 4))
    dut = BitSerialCombination(in_features=f, lanes=4, max_bits=8)
    stream = [(word, j == 0, j == int(bits[i]) - 1)
              for i in range(n) for j, word in enumerate(bit_planes(x[i], int(bits[i]), False))]
    out, cycles = [], []

    async def bench(ctx):
        await load_weights(ctx, dut, w)
        ctx.set(dut.result.ready, 1)
        t = 0
        for word, first, last in stream:
            ctx.set(dut.planes.p.plane, word)
            ctx.set(dut.planes.p.first, first)
            ctx.set(dut.planes.p.last, last)
            ctx.set(dut.planes.valid, 1)
            assert ctx.get(dut.planes.ready)
            if ctx.get(dut.result.valid):
                out.append([int(v) for v in ctx.get(dut.result.payload)])
            await ctx.tick()
            t += 1
        ctx.set(dut.planes.valid, 0)
        assert ctx.get(dut.result.valid)
        out.append([int(v) for v in ctx.get(dut.result.payload)])
        cycles.append(t)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert np.array_equal(np.array(out), x @ w)
    assert cycles == [int(bits.sum())]
