"""Requantization: the fixed-point steps between the engine's phases, as a fixed-depth pipeline.

Every phase of :class:`a2q.hw.layer_engine.LayerEngine` ends in the same shape of pipeline: a
(node, tile) of ``lanes`` accumulated sums enters, the node's and the tile's constants are read
from memory, a few multiply / round-shift / clamp steps follow, and one memory word is written.
The arithmetic is the golden model's (``docs/export-format.md``), step for step and bit for bit:
:func:`rshift_round` is ``a2q.sim.fixed_point.rshift_round``.
"""

from __future__ import annotations

from collections.abc import Callable

from amaranth import Module, Mux, Signal, Value

#: Registered stages of every requantization pipeline: a result entering in cycle c is written
#: to memory at the end of cycle ``c + DEPTH``. The node and column constants are read in the
#: entry cycle and used from stage 1 on.
DEPTH = 6


def rshift_round(t: Value, s: Value) -> Value:
    """``round_half_away(t / 2**s)`` for a signed ``t`` and an unsigned shift ``s``.

    ``(|t| + 2**(s-1)) >> s`` equals ``((|t| >> (s-1)) + 1) >> 1`` for s >= 1, which needs no
    variable-width constant."""
    t = Value.cast(t)
    mag = abs(t)  # unsigned, as wide as t
    s = Value.cast(s)
    rounded = (((mag >> (s - 1)[:len(s)]) + 1) >> 1)
    r = Mux(s == 0, mag, rounded)
    return Mux(t < 0, -r, r)


def clamp(v: Value, lo, hi) -> Value:
    return Mux(v < lo, lo, Mux(v > hi, hi, v))


def pipeline(m: Module, valid: Value, values: dict[str, Value],
             stages: list[Callable[[dict], dict]], *, name: str) -> tuple[list[Signal], dict]:
    """Carry ``values`` through :data:`DEPTH` registered stages.

    ``stages[s]`` (for s = 1 .. len(stages) - 1; ``stages[0]`` must be ``None``: stage 0 only
    registers the inputs while the memories are read) maps the values registered by stage s to
    new or replaced values for stage s + 1 (``None`` drops one). Values no stage replaces are
    carried unchanged.
    Returns every stage's ``valid`` (the last one's marks the result) and the last values."""
    if len(stages) > DEPTH or (stages and stages[0] is not None):
        raise ValueError("a requantization pipeline has at most DEPTH stages, the first None")
    cur_valid, cur, valids = valid, dict(values), []
    for s in range(DEPTH):
        new = dict(cur)
        if 0 < s < len(stages):
            new.update(stages[s](cur))
            new = {k: v for k, v in new.items() if v is not None}  # None drops a value
        regs = {}
        with m.If(cur_valid):  # a stage holds its values until the next result reaches it
            for key, v in new.items():
                v = Value.cast(v)
                regs[key] = Signal(v.shape(), name=f"{name}_s{s + 1}_{key}")
                m.d.sync += regs[key].eq(v)
        reg_valid = Signal(name=f"{name}_s{s + 1}_valid")
        m.d.sync += reg_valid.eq(cur_valid)
        cur_valid, cur = reg_valid, regs
        valids.append(reg_valid)
    return valids, cur


def to_codes(lanes: int) -> list[Callable[[dict], dict]]:
    """The last two stages of a requantization to unsigned codes: ``a{c}`` rounded-shifted
    right by ``sh``, then clamped to ``0 .. 2^bits - 1`` into ``y{c}``."""
    def round_stage(v):
        return {f"a{c}": rshift_round(v[f"a{c}"], v["sh"]) for c in range(lanes)}

    def clamp_stage(v):
        hi = (1 << v["bits"]) - 1
        return {**{f"y{c}": clamp(v[f"a{c}"], 0, hi) for c in range(lanes)},
                **{f"a{c}": None for c in range(lanes)}}
    return [round_stage, clamp_stage]
