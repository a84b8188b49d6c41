"""Requantization: the fixed-point steps between the engine's phases, one datapath for all.

Every phase of :class:`a2q.hw.engine_core.EngineCore` ends the same way: a (node, tile) of
``lanes`` accumulated sums ``a`` is scaled by a node's and a column's constants, rounded and
clamped, and one memory word is written. The phases run one at a time, so they share one
datapath (the engine's multipliers are all here), in the generic form, per lane c,

    p1 = a * m1[c]
    v1 = rshift_round(p1, 15) if round15 else p1
    v2 = v1 * m2[c] + bias[c]
    p3 = v2 * m3 if use_m3 else v2
    y  = clamp(rshift_round(p3, sh), -hi if symmetric else 0, hi) if clamp else p3

into which each phase maps the golden model's arithmetic (``docs/export-format.md``) step for
step and bit for bit (:func:`rshift_round` is ``a2q.sim.fixed_point.rshift_round``). The
datapath is 64 bits wide: the golden model refuses a model whose products could reach 2**62.
Its second and third multiplications take 49-bit operands: with the per-node mantissa (at
least 2**15, the export's format guarantees it) applied last, or after the rounding shift of
15, every value that enters them is below 2**47 in magnitude (``docs/architecture.md``).
"""

from __future__ import annotations

from collections.abc import Callable

from amaranth import Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data

from .engine_layout import MANTISSA, SHIFT

#: Registered stages of the requantization pipeline: a result entering in cycle c is written
#: to memory at the end of cycle ``c + DEPTH``. The node and column constants are read in the
#: entry cycle and used from stage 1 on.
DEPTH = 6
#: Width of the datapath, and of the operands of its second and third multiplications.
WIDTH, NARROW = 64, 49


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


def wrap(v: Value, width: int) -> Value:
    """The low ``width`` bits of ``v`` as a signed value (exact while ``v`` fits them)."""
    return Value.cast(v)[:width].as_signed()


def constants_layout(lanes: int) -> data.StructLayout:
    """The constants a phase hands the datapath for one (node, tile), one cycle after it."""
    return data.StructLayout({
        "m1": data.ArrayLayout(MANTISSA, lanes),
        "m2": data.ArrayLayout(MANTISSA, lanes),
        "bias": data.ArrayLayout(signed(WIDTH), lanes),
        "m3": MANTISSA,
        "use_m3": 1,
        "round15": 1,
        "sh": SHIFT,
        "hi": unsigned(8),
        "symmetric": 1,
        "clamp": 1,
    })


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


def requantization_stages(lanes: int, k) -> list:
    """The generic form's stages for :func:`pipeline`: ``a{c}`` in, ``y{c}`` out; ``k`` (a
    view of :func:`constants_layout`) holds the constants in stage 1."""
    P = range(lanes)

    def s1(v):  # the constants leave memory now
        return {"m3": k.m3, "use_m3": k.use_m3, "round15": k.round15, "sh": k.sh, "hi": k.hi,
                "symmetric": k.symmetric, "clamp": k.clamp,
                **{f"m2_{c}": k.m2[c] for c in P}, **{f"b{c}": k.bias[c] for c in P},
                **{f"a{c}": wrap(v[f"a{c}"] * k.m1[c], WIDTH) for c in P}}

    def s2(v):
        return {f"a{c}": wrap(Mux(v["round15"], rshift_round(v[f"a{c}"], 15), v[f"a{c}"]),
                              NARROW) for c in P}

    def s3(v):
        return {**{f"a{c}": wrap(v[f"a{c}"] * v[f"m2_{c}"] + v[f"b{c}"], WIDTH) for c in P},
                **{f"{x}{c}": None for c in P for x in ("m2_", "b")}, "round15": None}

    def s4(v):
        return {**{f"a{c}": Mux(v["use_m3"], wrap(wrap(v[f"a{c}"], NARROW) * v["m3"], WIDTH),
                                v[f"a{c}"]) for c in P}, "m3": None, "use_m3": None}

    def s5(v):
        hi = v["hi"]
        lo = Mux(v["symmetric"], -hi, 0)
        out = {}
        for c in P:
            r = rshift_round(v[f"a{c}"], v["sh"])
            out[f"y{c}"] = Mux(v["clamp"], clamp(r, lo, hi), r)
            out[f"a{c}"] = None
        return out
    return [None, s1, s2, s3, s4, s5]
