"""The requantization's clamp compares a 64-bit value with its bounds on its low bits only,
in parts that a stage registers apart (clamp_terms) and the next joins (above, below)."""

import numpy as np
from amaranth import Module, Signal, signed
from amaranth.sim import Simulator

from a2q.hw.requantization import CLAMP_BITS, WIDTH, above, below, clamp_terms


def test_clamp_comparisons_equal_full_width_ones():
    """Values at and around the bounds, at the datapath's extremes and at random, against
    Python's comparison of the whole values."""
    rng = np.random.default_rng(0)
    bound = 1 << (CLAMP_BITS - 1)
    cases = []
    for hi in (0, 1, 2, 7, 255, bound - 2, bound - 1, *rng.integers(0, bound, 6).tolist()):
        for lo in (-hi, 0):
            near = [hi - 1, hi, hi + 1, lo - 1, lo, lo + 1, 0, -1, bound - 1, bound, -bound,
                    -bound - 1, 2 * bound, -2 * bound, (1 << 63) - 1, -(1 << 63),
                    (1 << 63) - 1 - hi, -(1 << 63) + hi,
                    *rng.integers(-(1 << 63), 1 << 63, 4, dtype=np.int64).tolist(),
                    *rng.integers(-4 * bound, 4 * bound, 4).tolist()]
            cases += [(int(a), int(hi), int(lo)) for a in near]
    a, hi, lo = Signal(signed(WIDTH)), Signal(CLAMP_BITS - 1), Signal(signed(CLAMP_BITS + 1))
    is_above, is_below = Signal(), Signal()
    m = Module()
    terms = clamp_terms(a, lo, hi)
    m.d.comb += [is_above.eq(above(terms)), is_below.eq(below(terms))]
    got = []

    async def bench(ctx):
        for va, vhi, vlo in cases:
            ctx.set(a, va)
            ctx.set(hi, vhi)
            ctx.set(lo, vlo)
            got.append((ctx.get(is_above), ctx.get(is_below)))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert got == [(int(va > vhi), int(va < vlo)) for va, vhi, vlo in cases]
