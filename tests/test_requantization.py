"""The requantization's clamp compares a 64-bit value with its bounds on its low bits only,
in parts that a stage registers apart (clamp_terms) and the next joins (above, below); its
round15 step rounds a sum from terms made beside it (round15_terms, round15); each lane's
copy of a shared value (lane_copies) stays its own register through synthesis."""

import numpy as np
from amaranth import Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from a2q.hw.engine.requantization import (
    CLAMP_BITS,
    NARROW,
    ROUND15,
    WIDTH,
    above,
    below,
    clamp_terms,
    lane_copies,
    pipeline,
    round15,
    round15_terms,
    wrap,
)
from a2q.sim.fixed_point import rshift_round

from .yosys_netlists import synthesized


def test_clamp_comparisons_equal_full_width_ones():
    """Values at and around the bounds (hi = 2^b - 1 for every b the generic form's 4-bit
    hi_bits gives, lo = -hi or 0), at the datapath's extremes and at random, against Python's
    comparison of the whole values."""
    rng = np.random.default_rng(0)
    bound = 1 << (CLAMP_BITS - 1)
    cases = []
    for b in range(CLAMP_BITS):
        hi = (1 << b) - 1
        for symmetric in (1, 0):
            lo = -hi if symmetric else 0
            near = [hi - 1, hi, hi + 1, lo - 1, lo, lo + 1, 0, -1, bound - 1, bound, -bound,
                    -bound - 1, 2 * bound, -2 * bound, (1 << 63) - 1, -(1 << 63),
                    (1 << 63) - 1 - hi, -(1 << 63) + hi, -(1 << b), -(1 << b) - 1,
                    -(1 << b) + 1, -(3 << b), -(3 << b) + 1, (1 << b) | 1,
                    *rng.integers(-(1 << 63), 1 << 63, 4, dtype=np.int64).tolist(),
                    *rng.integers(-4 * bound, 4 * bound, 8).tolist()]
            cases += [(int(a), hi, symmetric, lo) for a in near]
    a, hi, symmetric = Signal(signed(WIDTH)), Signal(CLAMP_BITS - 1), Signal()
    is_above, is_below = Signal(), Signal()
    m = Module()
    terms = clamp_terms(a, hi, symmetric)
    m.d.comb += [is_above.eq(above(terms)), is_below.eq(below(terms))]
    got = []

    async def bench(ctx):
        for va, vhi, vsym, _ in cases:
            ctx.set(a, va)
            ctx.set(hi, vhi)
            ctx.set(symmetric, vsym)
            got.append((ctx.get(is_above), ctx.get(is_below)))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert got == [(int(va > vhi), int(va < vlo)) for va, vhi, _, vlo in cases]


def test_round15_from_its_terms_equals_rshift_round():
    """Sums of two addends (as the adder tree's last level has them) at and around the
    rounding's ties, signs and the datapath's range, against the golden model's
    rshift_round of the whole sum."""
    rng = np.random.default_rng(1)
    half, one, big = 1 << (ROUND15 - 1), 1 << ROUND15, 1 << 61
    sums = [0, 1, -1, half, -half, half - 1, -half + 1, half + 1, -half - 1, one, -one,
            one + half, -one - half, 5 * one + half, -5 * one - half, 5 * one + half - 1,
            big, -big, big + half, -big - half, *rng.integers(-big, big, 40).tolist(),
            *(k * one + half + d for k in rng.integers(-1000, 1000, 10).tolist()
              for d in (-1, 0, 1))]
    cases = []
    for total in sums:
        for x in (0, total, int(rng.integers(-big, big)), -big, big):
            cases.append((int(x), int(total) - int(x)))
    x, y = Signal(signed(WIDTH + 2)), Signal(signed(WIDTH + 2))
    out = Signal(signed(NARROW))
    m = Module()
    m.d.comb += out.eq(round15(wrap(x + y, WIDTH), round15_terms(x, y)))
    got = []

    async def bench(ctx):
        for vx, vy in cases:
            ctx.set(x, vx)
            ctx.set(y, vy)
            got.append(ctx.get(out))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    want = [int(rshift_round(vx + vy, ROUND15)) for vx, vy in cases]
    assert got == want


class SharedShift(wiring.Component):
    """Four lanes shift their own 64-bit value by one shared amount through a two-stage
    :func:`pipeline`: ``s`` as each lane's kept copy (``s_{c}``), and as plain per-lane
    values (``t{c}``) for comparison."""
    LANES = 4

    def __init__(self):
        super().__init__({"s": In(6), **{f"d{c}": In(64) for c in range(self.LANES)},
                          **{f"o{c}": Out(64) for c in range(self.LANES)}})

    def elaborate(self, platform):
        m = Module()
        P = range(self.LANES)

        def copy(v):
            return {**lane_copies(v, "s", P), **{f"t{c}": v["s"] for c in P}}

        def shift(v):
            return {f"y{c}": (v[f"d{c}"] >> v[f"s_{c}"]) ^ (v[f"d{c}"] >> v[f"t{c}"])
                    for c in P}
        _, out = pipeline(m, 1, {"s": self.s, **{f"d{c}": getattr(self, f"d{c}") for c in P}},
                          [None, copy, shift], name="t")
        m.d.comb += [getattr(self, f"o{c}").eq(out[f"y{c}"]) for c in P]
        return m


def test_lane_copies_stay_apart_through_synthesis(tmp_path):
    """``a2q synth``'s Yosys script (ECP5) keeps each lane's copy a register of its own (four
    distinct nets), where the same copies not marked are merged into one."""
    nets = synthesized(tmp_path, SharedShift(), "shared")["netnames"]
    lanes = range(SharedShift.LANES)
    kept = {tuple(nets[f"t_s2_s_{c}"]["bits"]) for c in lanes}
    plain = {tuple(nets[f"t_s2_t{c}"]["bits"]) for c in lanes}
    assert len(kept) == SharedShift.LANES and len(plain) == 1
