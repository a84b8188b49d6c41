"""Requantization: the fixed-point steps between the engine's phases, one datapath for all.

Every phase of :class:`a2q.hw.engine.core.EngineCore` ends the same way: a (node, tile) of
``lanes`` accumulated sums ``a`` is scaled by a node's and a column's constants, rounded and
clamped, and one memory word is written. The phases run one at a time, so they share one
datapath (the engine's multipliers are all here), which takes ``requant_lanes`` of a result's
lanes a cycle (:func:`a2q.hw.engine.core.serve_in_groups`), in the generic form, per lane c
(column c of the tile: mantissa ``m[c]`` and ``bias[c]``; the node's mantissa ``m_node``),

    m1, m2 = (m_node, m[c]) if node_first else (m[c], m_node)
    p1 = a * m1
    v1 = rshift_round(p1, 15) if round15 else p1
    v2 = v1 * m2 + (bias[c] << bias_sh)
    p3 = v2 * m3 if use_m3 else v2
    y  = clamp(rshift_round(p3, sh), -hi if symmetric else 0, hi) if clamp else p3,
         hi = 2^hi_bits - 1

into which each phase maps the golden model's arithmetic (``docs/export-format.md``) step for
step and bit for bit (``rshift_round`` is ``a2q.sim.fixed_point.rshift_round``). The
datapath is 64 bits wide: the golden model refuses a model whose products could reach 2**62.
Its second and third multiplications take 49-bit operands: with the per-node mantissa (at
least 2**15, the export's format guarantees it) applied last, or after the rounding shift of
15, every value that enters them is below 2**47 in magnitude (``docs/architecture.md``).

Pipelined for the clock, one step a stage: the constants are registered as they leave block
RAM; each multiplication is split into one 17-bit chunk of its wide operand per DSP (18 x 18,
:func:`~a2q.hw.primitives.dsp_multiply.registered_product`: two stages, the DSP's own input and output
registers), whose products are summed over two stages; a rounding shift is one addition
(:func:`round_shift_addend`) and an arithmetic shift over two stages, or, for the fixed
shift of ``round15``, terms made beside the sum and a choice (:func:`round15_terms`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from amaranth import C, Cat, Module, Mux, Signal, Value, unsigned
from amaranth.lib import data

from a2q.hw.primitives.dsp_multiply import registered_product

from .layout import MANTISSA, NODE_SHIFT, SHIFT, column_fields

#: Registered stages of the requantization pipeline: a result entering in cycle c is written
#: to memory at the end of cycle ``c + DEPTH``. The node and column constants are read in the
#: entry cycle and registered in stage 1.
DEPTH = 20
#: Width of the datapath, and of the operands of its second and third multiplications.
WIDTH, NARROW = 64, 49
#: Bits of the clamp's comparisons: its bounds are below 2**15 in magnitude (``hi_bits`` is
#: 4 bits wide), so ``a`` compares with them on its low 16 bits and the rest's sign.
CLAMP_BITS = 16
#: The parts of the clamp's comparisons (:func:`clamp_terms`).
TERMS = ("neg", "ones", "any", "gt", "top", "tail", "sym")
#: Bits of the wide operand each DSP multiplies (unsigned below the top chunk: 17 x 17 fits
#: an 18 x 18 signed multiplier).
CHUNK = 17


def round_shift_addend(t: Value, rounds: Value, mask: Value) -> Value:
    """``t + mask + carry``, which an arithmetic right shift by ``s`` turns into
    ``round_half_away(t / 2**s)``: ``mask = 2**(s-1) - 1`` and ``carry = (t >= 0)`` for
    s >= 1, both zero for s = 0. ``rounds``: one bit, s >= 1 (a register in the pipeline: it
    reaches every lane's carry input). (For t < 0, ``floor((t + 2**(s-1) - 1) / 2**s)``
    equals ``-floor((|t| + 2**(s-1)) / 2**s)``.)"""
    t = Value.cast(t)
    carry = Value.cast(rounds) & (t >= 0)
    return t + mask + carry


#: The fixed rounding shift of the generic form's ``round15`` step.
ROUND15 = 15


def round15_terms(x: Value, y: Value) -> dict:
    """What ``round_half_away((x + y) / 2**ROUND15)`` needs beyond ``a = x + y``, made beside
    that sum in the same stage, so that the next stage (:func:`round15`) has no carry chain:
    ``up``, bits ``ROUND15`` up of ``x + y + 2**ROUND15`` (floor of the quotient, plus one;
    carry-save: one LUT level before a carry chain as long as the sum's), and ``gt`` /
    ``eq``, the sum's low ``ROUND15`` bits above / equal to half, from their own short
    addition. (Rounding the registered sum takes a second 64-bit carry chain, which would be
    the 8- and 16-lane engines' slowest stage.)"""
    x, y, k = Value.cast(x), Value.cast(y), 1 << ROUND15
    up = (x ^ y ^ k) + (((x & y) | ((x | y) & k)) << 1)
    low = (x[:ROUND15] + y[:ROUND15])[:ROUND15]
    half = 1 << (ROUND15 - 1)
    return {"up": wrap(up, WIDTH)[ROUND15:], "gt": low > half, "eq": low == half}


def round15(a: Value, t: dict) -> Value:
    """``round_half_away(a / 2**ROUND15)`` (``rshift_round``) of the sum ``a`` from
    :func:`round15_terms` ``t``: the floor of the quotient (``a``'s bits from ``ROUND15``
    up), or one more (``up``) where the remainder is above half, or half and ``a`` >= 0."""
    a = Value.cast(a)
    return Mux(t["gt"] | (t["eq"] & ~a[-1]), t["up"].as_signed(), a[ROUND15:].as_signed())


def shift_mask(s: Value, width: int) -> Value:
    """``2**(s-1) - 1`` (``width`` bits, all ones for s > width), 0 for s = 0: bit j is set
    when s > j + 1 (one small comparison per bit, no shifter)."""
    s = Value.cast(s)
    return Cat(*(s > j + 1 for j in range(width)))


def wrap(v: Value, width: int) -> Value:
    """The low ``width`` bits of ``v`` as a signed value (exact while ``v`` fits them)."""
    return Value.cast(v)[:width].as_signed()


def clamp_terms(a: Value, hi: Value, symmetric: Value) -> dict:
    """The parts of the clamp's comparisons of a signed ``a`` with ``hi = 2**b - 1`` (0 <= b
    < ``CLAMP_BITS``: the generic form's ``2**hi_bits - 1``) and ``lo = -hi`` if ``symmetric``
    else 0, each a shallow cone that a stage registers on its own: ``neg`` (a's sign),
    ``ones`` (a's bits from ``CLAMP_BITS - 1`` up all ones), ``any`` (a's bits from
    ``CLAMP_BITS`` up not all zero), ``gt`` (a's low :data:`CLAMP_BITS` bits, unsigned, above
    ``hi``: a bit from b up set), ``top`` and ``tail`` (those bits from b up all ones; a bit
    below b set) and ``sym`` (``symmetric``). As ``hi`` is a mask of b ones, no comparison is
    a carry chain or a comparator's LUT tree: each term is a 16-input AND or OR of bits and
    the mask's (3 LUT levels; a 16-bit comparison was 5, the routed critical path).
    :func:`below` and :func:`above` join them in the next stage."""
    a, hi = Value.cast(a), Value.cast(hi)
    low = a[:CLAMP_BITS]
    mask = [hi[i] if i < len(hi) else C(0, 1) for i in range(CLAMP_BITS)]
    return {"neg": a[-1], "ones": a[CLAMP_BITS - 1:].all(), "any": a[CLAMP_BITS:].any(),
            "gt": Cat(low[i] & ~mask[i] for i in range(CLAMP_BITS)).any(),
            "top": Cat(low[i] | mask[i] for i in range(CLAMP_BITS)).all(),
            "tail": Cat(low[i] & mask[i] for i in range(CLAMP_BITS)).any(),
            "sym": Value.cast(symmetric)}


def below(t: dict) -> Value:
    """``a < lo`` from :func:`clamp_terms`: a negative ``a`` is below ``lo`` if its bits from
    ``CLAMP_BITS - 1`` up are not all ones (``a < -2**(CLAMP_BITS - 1)``), or else, its low
    bits x signed, if ``lo`` is 0, or if x <= -2**b (``lo = 1 - 2**b``): unless x's bits
    from b up are all ones and one below them is set."""
    return t["neg"] & (~t["ones"] | ~t["sym"] | ~(t["top"] & t["tail"]))


def above(t: dict) -> Value:
    """``a > hi`` from :func:`clamp_terms`: a non-negative ``a`` is above ``hi`` if any of its
    bits from ``CLAMP_BITS`` up is set, or else if its low bits are."""
    return ~t["neg"] & (t["any"] | t["gt"])


@dataclass(frozen=True)
class Kept:
    """A stage's value that :func:`pipeline` registers with the ``keep`` attribute (which
    ``a2q synth`` extends to the flip-flops) as long as later stages carry it: a lane's own
    copy of a value that every lane uses (:func:`lane_copies`), which synthesis would
    otherwise merge back into one register driving every lane's logic."""
    value: Value


def lane_copies(v: dict, key: str, lanes) -> dict:
    """``v[key]`` as one :class:`Kept` copy per lane c, ``{key}_{c}``, the shared value
    dropped: the copies' fan-out is one lane's logic each (shared, the shift amounts and
    ``big_shift`` each reach 8 lanes x 64 bits and lead the 16-lane engine's congestion, and
    ``m3``, an operand of 24 DSPs across the die, is its routed critical path)."""
    return {key: None, **{f"{key}_{c}": Kept(v[key]) for c in lanes}}


@dataclass(frozen=True)
class Product:
    """``(a * b) << shift`` as a stage's value: :func:`pipeline` multiplies in a registered DSP
    (:func:`~a2q.hw.primitives.dsp_multiply.registered_product`), and the product is a value of the stage
    after the next (the stage in between holds the operands, in the DSP)."""
    a: Value
    b: Value
    shift: int


def partial_products(a: Value, m: Value) -> list[Product]:
    """``a * m`` (``a`` signed, ``m`` unsigned up to 17 bits) as the products of ``a``'s
    :data:`CHUNK`-bit chunks, each shifted into place: one DSP each; their sum is the
    product."""
    a = Value.cast(a)
    out = []
    for lo in range(0, len(a), CHUNK):
        part = a[lo:lo + CHUNK]
        if lo + CHUNK >= len(a):
            part = part.as_signed()
        out.append(Product(part, Value.cast(m), lo))
    return out


#: A (node, tile)'s constants other than its columns', which the phase running hands over.
NODE_CONSTANTS = data.StructLayout({
    "m_node": MANTISSA,
    "node_first": 1,
    "bias_sh": NODE_SHIFT,
    "m3": MANTISSA,
    "use_m3": 1,
    "round15": 1,
    "sh": SHIFT,
    "hi_bits": unsigned(4),
    "symmetric": 1,
    "clamp": 1,
})


def constants_layout(lanes: int, bias_bits: int, shifts: bool = False) -> data.StructLayout:
    """The constants of one (node, tile), one cycle after it: ``node``
    (:data:`NODE_CONSTANTS`) and each lane's column's ``cols`` (a word of the ``cols``
    memory, :func:`~a2q.hw.engine.layout.column_fields`; ``shifts``: with a shift per
    column)."""
    return data.StructLayout({
        "node": NODE_CONSTANTS,
        "cols": data.ArrayLayout(column_fields(bias_bits, shifts), lanes),
    })


def pipeline(m: Module, valid: Value, values: dict[str, Value],
             stages: list[Callable[[dict], dict] | None], *, name: str,
             template: bool = False) -> tuple[list[Signal], dict]:
    """Carry ``values`` through :data:`DEPTH` registered stages.

    ``stages[s]`` (for s = 1 .. len(stages) - 1; ``stages[0]`` must be ``None``: stage 0 only
    registers the inputs while the memories are read; a ``None`` stage carries its values)
    maps the values registered by stage s to new or replaced values for stage s + 1 (``None``
    drops one; a :class:`Kept` one, here or in ``values``, is registered with the ``keep``
    attribute until a stage replaces it). A :class:`Product` value is multiplied by a
    registered DSP (an ``a2q_mul`` instance with ``template``) and is a value of stage s + 2,
    so stage s + 1 must not use it.
    Values no stage replaces are carried unchanged. Every register loads every cycle (a
    stage's values are those of a result in the cycles its ``valid`` is high): an enable would
    be a net reaching each of a stage's flip-flops, up to a thousand at 16 lanes, in every
    stage (such nets are among the most congested of the 16-lane engine).
    Returns every stage's ``valid`` (the last one's marks the result) and the last values."""
    if len(stages) > DEPTH or (stages and stages[0] is not None):
        raise ValueError("a requantization pipeline has at most DEPTH stages, the first None")
    kept = {k for k, v in values.items() if isinstance(v, Kept)}
    cur = {k: v.value if isinstance(v, Kept) else v for k, v in values.items()}
    cur_valid, valids, due = valid, [], {}
    for s in range(DEPTH):
        new = dict(cur)
        if 0 < s < len(stages) and stages[s] is not None:
            update = stages[s](cur)
            kept = (kept - set(update)) | {k for k, v in update.items() if isinstance(v, Kept)}
            new.update({k: v.value if isinstance(v, Kept) else v for k, v in update.items()})
            new = {k: v for k, v in new.items() if v is not None}  # None drops a value
        regs = dict(due)  # the products the DSPs registered
        due = {}
        for key, v in new.items():  # free running, as the DSPs' registers are
            if isinstance(v, Product):
                continue
            v = Value.cast(v)
            regs[key] = Signal(v.shape(), name=f"{name}_s{s + 1}_{key}",
                               attrs={"keep": 1} if key in kept else {})
            m.d.sync += regs[key].eq(v)
        for key, v in new.items():
            if isinstance(v, Product):
                p = registered_product(m, v.a, v.b, name=f"{name}_s{s + 1}_{key}_mul",
                                       template=template)
                due[key] = p << v.shift
        reg_valid = Signal(name=f"{name}_s{s + 1}_valid")
        m.d.sync += reg_valid.eq(cur_valid)
        cur_valid, cur = reg_valid, regs
        valids.append(reg_valid)
    if due:
        raise ValueError("a product made in the last stage of a requantization pipeline")
    return valids, cur


def requantization_stages(lanes: int, k, node_first: list, column_shifts: bool = False) -> list:
    """The generic form's stages for :func:`pipeline`: ``a{c}`` and ``u{c}`` in (lane c holds
    a column of the result; if not, ``y{c}`` is 0), ``y{c}`` out; ``k`` (a view of
    :func:`constants_layout`) holds the constants in stage 1, and ``node_first[c]`` lane c's
    own copy of ``k.node.node_first`` (a register kept apart in synthesis, as :class:`Kept`:
    the choice of ``m1`` and ``m2`` reaches 2 x 17 bits of each lane). ``column_shifts``:
    each column's ``sh`` adds to the node's (``sh`` = node's + column's), each lane's shift
    its own from stage 1.

    Stage by stage (each registered): 1 the constants leave block RAM; 2-5 ``p1`` (products
    in the DSPs' two registers, two sums; the bias shifted meanwhile); 6 ``v1``; 7-10 ``v2``
    (products with the bias as one more term, two sums); 11-14 ``p3``; 15 the rounding addend;
    16-17 the arithmetic shift; 18-19 the clamp (its comparisons in parts, then
    joined and the choice). The node's values that every lane's wide logic or DSPs use
    (``bias_sh``, ``round15``, ``m3``, ``use_m3``, ``sh``, ``big_shift``) reach it as each
    lane's own copy (:func:`lane_copies`), made a stage or more before."""
    P, nk = range(lanes), k.node
    per_node = {key: nk[key] for key in ("m3", "use_m3", "round15", "sh", "hi_bits",
                                         "symmetric", "clamp")}
    if column_shifts:  # each lane's shift, the node's plus its column's
        per_node.pop("sh")
        per_node.update({f"sh_{c}": Kept(nk.sh + k.cols[c].sh) for c in P})

    def terms(prefix, values):
        return {f"{prefix}_{j}": v for j, v in enumerate(values)}

    def pairwise(v, prefix):
        """One level of the adder tree over the terms ``{prefix}_{j}`` of every lane."""
        out = {}
        for c in P:
            names = sorted((n for n in v if n.startswith(f"{prefix}{c}_")),
                           key=lambda n: int(n.rsplit("_", 1)[1]))
            out.update({n: None for n in names})
            for j in range(0, len(names), 2):
                pair = [v[n] for n in names[j:j + 2]]
                out[f"{prefix}{c}_{j // 2}"] = wrap(sum(pair[1:], pair[0]), WIDTH + 2)
        return out

    def s1(v):  # registered out of memory: m1, m2 the node's and the column's mantissas
        m1 = [Mux(node_first[c], nk.m_node, k.cols[c].m) for c in P]
        m2 = [Mux(node_first[c], k.cols[c].m, nk.m_node) for c in P]
        return {**per_node, **{f"m1_{c}": m1[c] for c in P}, **{f"m2_{c}": m2[c] for c in P},
                **{f"b{c}": k.cols[c].bias for c in P},
                **lane_copies({"bias_sh": nk.bias_sh}, "bias_sh", P)}

    def s2(v):  # a * m1, one DSP per chunk; the bias shifted (low bits), sh's mask made
        out = {f"m1_{c}": None for c in P}
        if column_shifts:
            for c in P:
                out.update({f"mask_{c}": shift_mask(v[f"sh_{c}"], WIDTH + 1),
                            f"rounds_{c}": v[f"sh_{c}"] != 0,
                            f"big_shift_{c}": Kept(v[f"sh_{c}"] > WIDTH - 1)})
        else:
            out.update(mask=shift_mask(v["sh"], WIDTH + 1), rounds=v["sh"] != 0,
                       big_shift=v["sh"] > WIDTH - 1)
        hi = (Value.cast(1) << v["hi_bits"]) - 1
        out.update(hi=hi, lo=Mux(v["symmetric"], -hi, 0), hi_bits=None)
        for c in P:
            products = partial_products(v[f"a{c}"], v[f"m1_{c}"])
            if len(products) > 4:  # the two sums below add four terms
                raise ValueError(f"accumulators of {len(v[f'a{c}'])} bits: the requantization "
                                 f"multiplies at most {4 * CHUNK}")
            out.update(terms(f"p{c}", products))
            out[f"a{c}"] = None
            out[f"b{c}"] = wrap(v[f"b{c}"] << v[f"bias_sh_{c}"][:3], WIDTH)
        return out

    def s3(v):  # the first level of p1's sums; the bias shifted (high bits)
        return {**pairwise(v, "p"), **{f"bias_sh_{c}": None for c in P},
                **{f"b{c}": wrap(v[f"b{c}"] << (v[f"bias_sh_{c}"][3:] << 3), WIDTH)
                   for c in P}}

    def summed(v):  # the second level of the sums; each lane's one term becomes a{c}
        out = pairwise(v, "p")
        return {**out, **{f"p{c}_0": None for c in P},
                **{f"a{c}": wrap(out[f"p{c}_0"], WIDTH) for c in P}}

    def s4(v):  # the second level of p1's sums, and round15's terms; round15 for each lane
        out = summed(v)
        for c in P:
            x, *y = (v[n] for n in sorted(n for n in v if n.startswith(f"p{c}_")))
            out.update({f"{key}{c}": t for key, t in round15_terms(x, y[0] if y else 0).items()})
        return {**out, **lane_copies(v, "round15", P)}

    def s5(v):  # v1
        out = {}
        for c in P:
            t = {key: v[f"{key}{c}"] for key in ("up", "gt", "eq")}
            out[f"a{c}"] = wrap(Mux(v[f"round15_{c}"], round15(v[f"a{c}"], t), v[f"a{c}"]),
                                NARROW)
            out.update({f"{key}{c}": None for key in ("round15_", "up", "gt", "eq")})
        return out

    def s6(v):  # v1 * m2 + bias: the products and the bias, four terms
        out = {}
        for c in P:
            out.update(terms(f"p{c}", [*partial_products(v[f"a{c}"], v[f"m2_{c}"]),
                                       v[f"b{c}"]]))
            out.update({f"a{c}": None, f"m2_{c}": None, f"b{c}": None})
        return out

    def s8(v):  # the second level of v2's sums; m3 copied for each lane's DSPs
        return {**summed(v), **lane_copies(v, "m3", P)}

    def s9(v):  # v2 * m3, and v2 kept for when m3 is not used
        out = {}
        for c in P:
            out.update(terms(f"p{c}", partial_products(wrap(v[f"a{c}"], NARROW),
                                                       v[f"m3_{c}"])))
            out[f"m3_{c}"] = None
        return {**out, **lane_copies(v, "use_m3", P)}

    def s11(v):  # p3: the product, or v2 (kept in a{c}) when m3 is not used
        out = summed(v)
        return {**out, **{f"use_m3_{c}": None for c in P},
                **{f"a{c}": Mux(v[f"use_m3_{c}"], out[f"a{c}"], v[f"a{c}"]) for c in P}}

    def s12(v):  # rshift_round(p3, sh): the addend ...
        if column_shifts:
            return {**{f"a{c}": round_shift_addend(v[f"a{c}"], v[f"rounds_{c}"],
                                                   v[f"mask_{c}"]) for c in P},
                    **{f"{key}_{c}": None for key in ("mask", "rounds") for c in P}}
        return {**{f"a{c}": round_shift_addend(v[f"a{c}"], v["rounds"], v["mask"])
                   for c in P}, "mask": None, "rounds": None,
                **lane_copies(v, "sh", P), **lane_copies(v, "big_shift", P)}

    def s13(v):  # ... shifted by sh's low three bits ...
        return {f"a{c}": v[f"a{c}"] >> v[f"sh_{c}"][:3] for c in P}

    def s14(v):  # ... and by the rest (a shift past the datapath rounds |p3| < 2**63 to 0)
        return {**{f"a{c}": Mux(v[f"big_shift_{c}"], 0,
                                wrap(v[f"a{c}"] >> (v[f"sh_{c}"][3:6] << 3), WIDTH))
                   for c in P},
                **{f"{key}_{c}": None for key in ("sh", "big_shift") for c in P}}

    def s15(v):  # the clamp's comparisons, in parts (clamp_terms)
        out = {}
        for c in P:
            out.update({f"{key}{c}": t for key, t in
                        clamp_terms(v[f"a{c}"], v["hi"], v["symmetric"]).items()})
        return {**out, "symmetric": None}

    def s16(v):  # ... joined, and the clamp's choice (0 in a lane without a column)
        out = {}
        for c in P:
            t = {key: v[f"{key}{c}"] for key in TERMS}
            out[f"y{c}"] = Mux(v[f"u{c}"], Mux(v["clamp"] & below(t), v["lo"],
                                               Mux(v["clamp"] & above(t), v["hi"], v[f"a{c}"])),
                               0)
            out.update({f"{x}{c}": None for x in ("a", "u", *TERMS)})
        return {**out, "clamp": None}

    return [None, s1, s2, None, s3, s4, s5, s6, None, lambda v: pairwise(v, "p"),
            s8, s9, None, lambda v: pairwise(v, "p"), s11, s12, s13, s14, s15, s16]
