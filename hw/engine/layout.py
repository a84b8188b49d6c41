"""The layer engine's parameters and memory map: what each on-chip memory holds, word by word.

:class:`EngineConfig` fixes the hardware: the model's structure (GCN or GIN, each layer's
input and output width and weight bits, the input's bits), the number of lanes, the lanes the
requantization serves a cycle and the memory depths. Everything that a trained model or a graph changes (the CSR lists, features, weights,
per-node bits and fixed-point constants, per-column scales, biases, the operand bits and GIN's
``1 + eps``) lives in memories, so the same engine runs an A²Q export and its uniform-bit
re-exports, and a host can replace the graph through the load port.

The engine has two datapaths, chosen by ``order``: combine-first (a GCN; GIN-0, which is a
GCN layer whose ``norm`` is 1) and aggregate-first (GIN as its paper trains it). Below, "GCN"
names the combine-first datapath and "GIN" the aggregate-first one.

Layout (P lanes; a *tile* is P consecutive columns; node i's tile t of a memory with ``stride``
tiles per node is at address ``i * stride + t``):

=====================  ======================  =============================================
memory                 depth                   word
=====================  ======================  =============================================
``indptr``             max_nodes + 1           CSR row starts (targets)
``indices``            max_edges               CSR sources
``x``                  max_nodes * T(F_1)      P input codes of ``input_bits`` (a node may pay
                                               more planes: those above read zeros); without
                                               ``nonzeros_per_word``
``x_nonzeros`` (GCN,   max_input_words         K = ``nonzeros_per_word`` (index, code) pairs of
with K)                                        the input's non-zero codes, node by node, each
                                               node's in ``words`` (a layer-1 node field, at
                                               least 1) words; unused pairs have code 0
``h``                  max_nodes * stride      P per-node codes of ``max_bits`` (a combination's
                                               input: GCN layers 2.., GIN every layer)
``op``                 max_nodes * stride      P aggregation operands of ``max_bits`` (GCN: XW,
                                               two's complement; GIN layers 2..: unsigned)
``logits``             max_nodes * T(C)        P signed logits (written by the engine);
                       (graph-level:           graph-level: graph g's C logits at address g
                       max_graphs)             (:func:`graph_logits_layout`)
``norm`` (GCN)         max_nodes               ``gcn_norm``
``layer{l}_items``     T(out_dim) * max_edges  the operand bits - 1 of each item the layer's
(GCN)                                          aggregation visits, in the order it visits
                                               them: node by node, each tile the row again
``layer{l}_node``      max_nodes               per-node fields (:func:`node_fields`): loaded,
                                               or graph-level written by the selection
``sums``               max_nodes * T(widest    graph-level: P aggregated values S * op_m of
                       layer input)            the layer running (written by the engine)
``layer{l}_pool``      pool_size               graph-level: each pool entry's threshold and
                                               node fields (:func:`pool_layout`)
``graph_ptr``          max_graphs + 1          graph-level: graph g's nodes are graph_ptr[g]
                                               .. graph_ptr[g + 1] - 1
``readout{h}``         max(D_h, C)             graph-level: head h's constants
                                               (:func:`readout_layout`)
``readout_bias``       2 (word 0 used)         graph-level: the heads' biases summed, per class
``readout_sums``       max_graphs              graph-level: each graph's logits so far
                                               (written by the engine)
``cols``               sum of the phases'      P per-column fields of the requantization
                       T(width)                (:func:`column_fields`), each phase's tiles
                                               from :meth:`EngineConfig.column_base`
``layer{l}_weight``    T(in_dim) * T(out_dim)  P x P weights, column by column: chunk q
                                               (inputs qP..qP+P-1), tile t at
                                               ``q * T(out_dim) + t`` (layer 1 with K: none)
``layer1_rows_{j}``    in_dim * T(out_dim)     with K, j < K: identical copies of layer 1's
                                               weights, one input's P weights a word: input
                                               f, tile t at ``t * in_dim + f``
``layer{l}_scalars``   2 (word 0 used)         the layer's operand bits, next operand bits,
                                               GIN's self coefficient
=====================  ======================  =============================================

``x``, ``logits`` and ``sums`` (:data:`OFF_CHIP`) are outside the engine's core: it reads
``x`` through a read port, writes ``logits`` through a write port and ``sums`` through a write
and a read port (:mod:`a2q.hw.engine.core`). A GCN whose
input is stored as its non-zeros (``nonzeros_per_word``) holds them on chip and has no ``x``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from amaranth import Shape, signed, unsigned
from amaranth.lib import data

from a2q.common.choices import ENGINE_MODELS as MODELS
from a2q.common.choices import ORDERS
from a2q.hw.primitives.block_ram import slice_widths

#: Memories the engine's core reaches through ports instead of holding on chip (``sums``:
#: graph-level engines only).
OFF_CHIP = ("x", "logits", "sums")
#: Non-zero inputs a word of ``x_nonzeros`` holds where the engine stores the input so: the
#: layer-1 combination adds that many weight rows a cycle, from as many copies of the weights.
NONZEROS_PER_WORD = 4
#: Fraction bits of the format's fixed-point constants (``norm_frac``, ``eps_frac``).
FRAC = 15
#: the deepest memories an engine is built with (an ECP5-85F holds 3.7 Mbit of block RAM)
MAX_NODES = 1 << 20
MAX_EDGES = 1 << 24
#: the most entries of a Nearest-Neighbor pool: a selection phase loads its thresholds while
#: its first results are on their way to the selection
MAX_POOL = 32
#: unsigned bits of the values the selection compares: the aggregation times the operand's
#: column scale, below the requantization's 49-bit signed second operand
SELECTION_BITS = 48
MANTISSA = unsigned(17)  # 1 .. 2**16
SHIFT = unsigned(8)      # a combined shift: up to 15 + 62 + 62
NODE_SHIFT = unsigned(6)  # one node's shift: 0 .. 62


def default_requant_lanes(lanes: int) -> int:
    """Lanes the requantization serves a cycle unless told: half the lanes, rounded up. Results
    of a tile as narrow as a dataset's classes (up to half the lanes) then take one cycle, and
    the engine's multipliers are half those of one requantization per lane."""
    return math.ceil(lanes / 2)


#: the most bit-planes an aggregation takes a cycle on its idle lanes
MAX_PLANES_PER_CYCLE = 2


def planes_per_cycle(width: int, lanes: int) -> int:
    """Bit-planes of an item an aggregation whose results are ``width`` columns wide takes a
    cycle: a tile of at most half the lanes leaves lanes idle, and they take the next plane
    of the same operand word (lane ``g * width + c``: column c, plane ``k + g``), up to
    :data:`MAX_PLANES_PER_CYCLE`; an item of b bits then costs ``ceil(b / planes)`` cycles."""
    return max(1, min(MAX_PLANES_PER_CYCLE, lanes // min(width, lanes)))


def requant_groups(width: int, lanes: int, requant_lanes: int) -> int:
    """Groups of ``requant_lanes`` lanes, one a cycle, in which the requantization takes a
    (node, tile) of a phase whose results are ``width`` columns wide (a tile holds
    ``min(width, lanes)`` of them): every (node, tile) of that phase takes at least this many
    cycles."""
    return math.ceil(min(width, lanes) / requant_lanes)


@dataclass(frozen=True)
class LayerShape:
    in_dim: int
    out_dim: int
    weight_bits: int


@dataclass(frozen=True)
class EngineConfig:
    """The generator parameters of :class:`a2q.hw.engine.layer_engine.LayerEngine`."""
    model: str
    layers: tuple[LayerShape, ...]
    input_bits: int
    lanes: int
    max_nodes: int
    max_edges: int
    max_bits: int = 8    # widest per-node code and aggregation operand
    bias_bits: int = 48  # signed width of the fixed-point biases
    #: lanes the shared requantization takes a cycle (0: :func:`default_requant_lanes`)
    requant_lanes: int = 0
    #: GCN: the input stored as its non-zero codes, this many a word of ``x_nonzeros``, so
    #: that the layer-1 combination costs a cycle per word and plane (0: ``x`` dense, off
    #: chip, a cycle per ``lanes`` inputs and plane)
    nonzeros_per_word: int = 0
    #: words of ``x_nonzeros`` (with ``nonzeros_per_word``)
    max_input_words: int = 0
    #: the layers' order: "combine-first" (X W, then the sum over the CSR row, self-loops
    #: included: GCN, GIN-0) or "aggregate-first" (GIN: the sum, then W); "": the model's own
    order: str = ""
    #: a graph-level GIN's Nearest-Neighbor pool: entries per layer (0: a node-level model,
    #: whose per-node constants are loaded). Each layer then starts with a selection phase
    #: that chooses every node's entry on chip and writes its constants.
    pool_size: int = 0
    #: graph-level: the most graphs of a batch, the classes and the readout heads' weight
    #: bits (every layer's output, and the input, sum-pooled per graph into its own head)
    max_graphs: int = 0
    classes: int = 0
    readout_weight_bits: int = 8
    memories: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        def need(name, v, lo, hi=None):
            if not isinstance(v, int) or isinstance(v, bool) or v < lo or (hi and v > hi):
                rng = f"{lo}..{hi}" if hi else f">= {lo}"
                raise ValueError(f"{name} must be an integer {rng}, got {v!r}")
        if self.model not in MODELS:
            raise ValueError(f"the engine runs models {', '.join(MODELS)}, not {self.model!r}")
        if not self.order:
            object.__setattr__(self, "order", "combine-first" if self.model == "gcn"
                               else "aggregate-first")
        if self.order not in ORDERS or (self.model == "gcn" and self.order != "combine-first"):
            raise ValueError(f"engine parameter order: {self.order!r} is not an order of "
                             f"{self.model}")
        need("lanes", self.lanes, 1, 64)
        need("max_nodes", self.max_nodes, 2, MAX_NODES)
        need("max_edges", self.max_edges, 1, MAX_EDGES)
        need("input_bits", self.input_bits, 1, 8)
        need("max_bits", self.max_bits, 2, 8)
        need("bias_bits", self.bias_bits, 2, 64)
        if self.requant_lanes == 0:
            object.__setattr__(self, "requant_lanes", default_requant_lanes(self.lanes))
        need("requant_lanes", self.requant_lanes, 1, self.lanes)
        need("nonzeros_per_word", self.nonzeros_per_word, 0, 16)
        need("max_input_words", self.max_input_words, 0)
        need("pool_size", self.pool_size, 0, MAX_POOL)
        if self.pool_size and self.combine_first:
            raise ValueError("engine parameter pool_size: a graph-level model is an "
                             "aggregate-first GIN")
        if self.pool_size:
            need("max_graphs", self.max_graphs, 1, MAX_NODES)
            need("classes", self.classes, 1, 64)
            need("readout_weight_bits", self.readout_weight_bits, 2, 8)
        if self.nonzeros_per_word:
            if not self.combine_first:
                raise ValueError("engine parameter nonzeros_per_word: only a combine-first "
                                 "model stores its input as non-zeros (an aggregate-first GIN "
                                 "aggregates it dense)")
            need("max_input_words", self.max_input_words, 2)
        if not self.layers:
            raise ValueError("engine parameter layers: at least one layer")
        object.__setattr__(self, "layers", tuple(
            L if isinstance(L, LayerShape) else LayerShape(**L) for L in self.layers))
        for l, L in enumerate(self.layers, start=1):
            need(f"layer {l} in_dim", L.in_dim, 1)
            need(f"layer {l} out_dim", L.out_dim, 1)
            need(f"layer {l} weight_bits", L.weight_bits, 2, 8)
            if l > 1 and L.in_dim != self.layers[l - 2].out_dim:
                raise ValueError(f"layer {l} in_dim {L.in_dim} differs from layer {l - 1}'s "
                                 f"out_dim {self.layers[l - 2].out_dim}")
        object.__setattr__(self, "memories", _memories(self))

    def tiles(self, width: int) -> int:
        return math.ceil(width / self.lanes)

    def phase_widths(self) -> list[tuple[int, str, int]]:
        """``(layer, kind, width)`` of each phase in the order they run: ``kind`` "comb",
        "agg" or (graph-level) "quant", ``width`` its results' columns (GCN aggregates a
        layer's outputs, GIN its inputs)."""
        out = []
        for l, L in enumerate(self.layers, start=1):
            agg_width = L.out_dim if self.combine_first else L.in_dim
            comb, agg = (l, "comb", L.out_dim), (l, "agg", agg_width)
            quant = [(l, "quant", agg_width)] if self.graph_level else []
            out += [comb, agg] if self.combine_first else [agg, *quant, comb]
        return out

    def phase_names(self) -> list[str]:
        """Every phase's name in the order the engine runs them ("layer1.aggregation", ...;
        graph-level: "readout{h}" for head h, 0 first and h after layer h)."""
        kinds = {"agg": "aggregation", "quant": "quantization", "comb": "combination"}
        out = ["readout0"] if self.graph_level else []
        for l, kind, _ in self.phase_widths():
            out.append(f"layer{l}.{kinds[kind]}")
            if self.graph_level and kind == "comb":
                out.append(f"readout{l}")
        return out

    @property
    def graph_level(self) -> bool:
        """A graph-level GIN: each node's constants come from its pool entry, chosen on chip,
        and every layer's output is clamped codes (``op``)."""
        return self.pool_size > 0

    @property
    def sums_stride(self) -> int:
        """Tiles per node in ``sums`` (graph-level): the widest layer input."""
        return self.tiles(max(L.in_dim for L in self.layers))

    def column_base(self, layer: int, kind: str) -> int:
        """The address in ``cols`` of the phase's first tile (tile t at base + t)."""
        base = 0
        for l, k, width in self.phase_widths():
            if (l, k) == (layer, kind):
                return base
            base += self.tiles(width)
        raise ValueError(f"no {kind} phase in layer {layer}")

    def requant_groups(self, width: int) -> int:
        """Cycles the requantization takes over one (node, tile) of a phase whose results are
        ``width`` columns wide: :func:`requant_groups`."""
        return requant_groups(width, self.lanes, self.requant_lanes)

    @property
    def combine_first(self) -> bool:
        """The GCN datapath: combination, then the signed operand XW aggregated over the CSR
        row with self-loops, each item weighed by its source's coefficient, the row by its
        target's ``norm``."""
        return self.order == "combine-first"

    @property
    def sparse_input(self) -> bool:
        """The input is held as its non-zeros, on chip (``x_nonzeros``), not as ``x``."""
        return self.nonzeros_per_word > 0

    @property
    def off_chip(self) -> tuple[str, ...]:
        """The memories of :data:`OFF_CHIP` this engine has."""
        return tuple(name for name in OFF_CHIP if name in self.memories)

    def input_words_per_node(self) -> range:
        """``words``'s range: a node's non-zeros fill at most ``ceil(in_dim / K)`` words."""
        return range(math.ceil(self.layers[0].in_dim / self.nonzeros_per_word) + 1)

    @property
    def h_stride(self) -> int:
        """Tiles per node in ``h``: the widest combination input held there."""
        widths = [L.in_dim for l, L in enumerate(self.layers) if not self.combine_first or l > 0]
        return self.tiles(max(widths, default=1))

    @property
    def op_stride(self) -> int:
        """Tiles per node in ``op``: GCN every layer's output, GIN layers 2..'s input (a
        graph-level GIN's every layer's output)."""
        widths = ([L.out_dim for L in self.layers] if self.combine_first or self.graph_level
                  else [L.in_dim for L in self.layers[1:]])
        return self.tiles(max(widths, default=1))

    def to_json(self) -> dict:
        out = asdict(self)
        out.pop("memories")
        return out

    @classmethod
    def from_json(cls, fields: dict) -> "EngineConfig":
        """The configuration :meth:`to_json` wrote (its checks apply again)."""
        fields = dict(fields)
        fields["layers"] = tuple(LayerShape(**layer) for layer in fields["layers"])
        return cls(**fields)


@dataclass(frozen=True)
class MemorySpec:
    """One memory: ``depth`` words of ``layout`` (a shape or ``data`` layout); ``loaded``: filled
    from an init file or the load port (the others are written by the engine itself)."""
    name: str
    depth: int
    layout: object
    loaded: bool = True

    @property
    def width(self) -> int:
        return Shape.cast(self.layout).width


def node_fields(cfg: EngineConfig, layer: int) -> data.FlexibleLayout:
    """Per-node fields of layer ``layer`` (1-based), those read in order and as an item's
    source (port A) apart from the node constants (port B): :func:`port_aligned`. ``bits`` is
    the combination input's width.

    GCN: ``comb_m``/``comb_sh`` scale XW into operand units (the input's step times
    ``xw_scale``, over the node's operand step where it has its own), ``op_bits`` its operand's
    bits, ``coef`` the weight of its operand in the aggregation (``gcn_norm``, times its own
    operand step where it has one); ``next_bits``/``next_m``/``next_sh`` (not on the last
    layer) requantize the layer's output into the
    next layer's codes (unused on the last layer). GIN: ``agg_m``/``agg_sh`` requantize the
    aggregation into codes (``1 / step``); ``scale_m``/``scale_sh`` are the node's step and
    ``out_sh`` the final shift of the output. ``words`` (GCN layer 1, input stored as its
    non-zeros): the node's words of ``x_nonzeros``."""
    bits = range(cfg.max_bits + 1)
    if cfg.combine_first:
        words = {"words": cfg.input_words_per_node()} if cfg.sparse_input and layer == 1 else {}
        nxt = ({"next_bits": bits, "next_m": MANTISSA, "next_sh": SHIFT}
               if layer < len(cfg.layers) else {})
        return port_aligned(cfg.max_nodes, {"bits": bits, "coef": range(2 ** FRAC + 1), **words},
                            {"comb_m": MANTISSA, "comb_sh": SHIFT, "op_bits": bits, **nxt})
    return port_aligned(cfg.max_nodes, {"bits": bits},
                        {"agg_m": MANTISSA, "agg_sh": SHIFT, "scale_m": MANTISSA,
                         "scale_sh": NODE_SHIFT, "out_sh": SHIFT})


def port_aligned(depth: int, port_a: dict, port_b: dict) -> data.FlexibleLayout:
    """A word of ``port_a``'s fields (read on a memory's port A), then ``port_b``'s from the
    next block RAM slice boundary of a ``depth``-word memory: a slice whose bits both ports
    read is two block RAMs (one per read port), so no slice holds fields of both."""
    slice_width = slice_widths(1 << 16, depth)[0]
    fields, offset = {}, 0
    for group in (port_a, port_b):
        offset = -(-offset // slice_width) * slice_width
        for name, shape in group.items():
            fields[name] = data.Field(shape, offset)
            offset += Shape.cast(shape).width
    return data.FlexibleLayout(offset, fields)


def column_fields(bias_bits: int, shifts: bool = False) -> data.StructLayout:
    """A column's constants, one layout for every phase (:mod:`a2q.hw.engine.requantization`): its
    mantissa ``m`` and its fixed-point ``bias`` (zero in the phases that add none); with
    ``shifts`` (graph-level engines) its own right shift ``sh``, added to the node's."""
    return data.StructLayout({"m": MANTISSA, "bias": signed(bias_bits),
                              **({"sh": NODE_SHIFT} if shifts else {})})


def pool_layout(cfg: EngineConfig, layer: int) -> data.StructLayout:
    """An entry of ``layer{l}_pool``: the threshold above which a node's largest value takes
    the next entry (:data:`SELECTION_BITS`; the last entry's unused) and the node fields
    (:func:`node_fields`) a node that takes this entry gets."""
    return data.StructLayout({"threshold": unsigned(SELECTION_BITS),
                              "fields": node_fields(cfg, layer)})


SCALARS = data.StructLayout({"op_bits": range(9), "next_op_bits": range(9),
                             "self_coef": unsigned(18)})


def weight_layout(cfg: EngineConfig, layer: int) -> data.ArrayLayout:
    """One chunk-by-tile block of weights: ``word[c][k]`` is column c's weight for input k.
    Column-major, so that each lane's weights are one run of bits, in one or two of the
    memory's block RAM slices: input-major, every slice held some weights of 9 lanes and every
    lane drew on every slice (29 block RAMs at 16 lanes), a crossbar over the die."""
    w = cfg.layers[layer - 1].weight_bits
    return data.ArrayLayout(data.ArrayLayout(signed(w), cfg.lanes), cfg.lanes)


def nonzero_layout(cfg: EngineConfig) -> data.ArrayLayout:
    """A word of ``x_nonzeros``: ``nonzeros_per_word`` pairs of an input's ``index`` and its
    ``code`` (0 in a pair that holds none)."""
    index = unsigned(max(1, (cfg.layers[0].in_dim - 1).bit_length()))
    pair = data.StructLayout({"index": index, "code": unsigned(cfg.input_bits)})
    return data.ArrayLayout(pair, cfg.nonzeros_per_word)


def row_layout(cfg: EngineConfig, layer: int) -> data.ArrayLayout:
    """A word of ``layer1_rows_{j}``: one input's weights for the ``lanes`` columns of a tile."""
    return data.ArrayLayout(signed(cfg.layers[layer - 1].weight_bits), cfg.lanes)


#: bits of a graph-level logit and of the readout's partial sums: the golden model bounds them
#: below 2^62
GRAPH_LOGIT_BITS = 64


def graph_logits_layout(cfg: EngineConfig) -> data.ArrayLayout:
    """A graph's logits (real logits times 2^logit_frac), one word per graph: ``logits``, the
    readout's running sums ``readout_sums`` and the heads' summed biases ``readout_bias``."""
    return data.ArrayLayout(signed(GRAPH_LOGIT_BITS), cfg.classes)


def readout_dim(cfg: EngineConfig, head: int) -> int:
    """Features head ``head`` pools: the input's (0) or layer ``head``'s output's."""
    return cfg.layers[0].in_dim if head == 0 else cfg.layers[head - 1].out_dim


def readout_layout(cfg: EngineConfig) -> data.StructLayout:
    """A word j of ``readout{h}``, what beat j of loading the head's unit
    (:class:`~a2q.hw.units.graph_readout.GraphReadout`) writes: feature ``min(j, D - 1)``'s
    ``in_scale_m`` and its weights for every class, class ``min(j, C - 1)``'s ``scale_m``
    and ``scale_sh``."""
    return data.StructLayout({
        "in_scale_m": MANTISSA,
        "weights": data.ArrayLayout(signed(cfg.readout_weight_bits), cfg.classes),
        "scale_m": MANTISSA, "scale_sh": NODE_SHIFT})


def logit_width(cfg: EngineConfig) -> int:
    """Bits of a signed logit (the last layer's output) for any memory contents: every
    mantissa below 2^17, every bias below 2^(bias_bits - 1), node shifts up to 63."""
    m = 2 ** MANTISSA.width
    if cfg.combine_first:
        t = aggregation_bound(cfg) + 1  # |rshift_round(G * norm, 15)| with norm <= 2^15
        return (t * m + 2 ** (cfg.bias_bits - 1)).bit_length() + 1
    a = combination_bound(cfg, len(cfg.layers))
    top_shift = 2 ** NODE_SHIFT.width - 1
    return (a * m * m + 2 ** (cfg.bias_bits - 1 + top_shift)).bit_length() + 1


def combination_bound(cfg: EngineConfig, layer: int) -> int:
    """Largest |X @ W| of layer ``layer``: in_dim codes of their widest times the widest weight."""
    L = cfg.layers[layer - 1]
    code = cfg.input_bits if cfg.combine_first and layer == 1 else cfg.max_bits
    return L.in_dim * (2 ** code - 1) * 2 ** (L.weight_bits - 1)


def aggregation_bound(cfg: EngineConfig) -> int:
    """Largest |aggregation| of any layer: every edge (and GIN's self term) into one node."""
    if cfg.combine_first:
        return cfg.max_edges * 2 ** FRAC * 2 ** (cfg.max_bits - 1)
    return (2 ** 18 + cfg.max_edges * 2 ** FRAC) * (2 ** max(cfg.max_bits, cfg.input_bits) - 1)


def _memories(cfg: EngineConfig) -> dict[str, MemorySpec]:
    n, P = cfg.max_nodes, cfg.lanes
    codes = data.ArrayLayout(unsigned(cfg.max_bits), P)
    mems = [
        MemorySpec("indptr", n + 1, range(cfg.max_edges + 1)),
        MemorySpec("indices", max(cfg.max_edges, 2), range(n)),
        MemorySpec("x_nonzeros", cfg.max_input_words, nonzero_layout(cfg))
        if cfg.sparse_input else
        MemorySpec("x", n * cfg.tiles(cfg.layers[0].in_dim),
                   data.ArrayLayout(unsigned(cfg.input_bits), P)),
        MemorySpec("h", n * cfg.h_stride, codes, loaded=False),
        MemorySpec("op", n * cfg.op_stride, codes, loaded=False),
        MemorySpec("logits", cfg.max_graphs, graph_logits_layout(cfg), loaded=False)
        if cfg.graph_level else
        MemorySpec("logits", n * cfg.tiles(cfg.layers[-1].out_dim),
                   data.ArrayLayout(signed(logit_width(cfg)), P), loaded=False),
    ]
    if cfg.graph_level:
        mems += [MemorySpec("sums", n * cfg.sums_stride,
                            data.ArrayLayout(unsigned(SELECTION_BITS), P), loaded=False),
                 MemorySpec("graph_ptr", cfg.max_graphs + 1, range(n + 1)),
                 MemorySpec("readout_bias", 2, graph_logits_layout(cfg)),
                 MemorySpec("readout_sums", max(cfg.max_graphs, 2), graph_logits_layout(cfg),
                            loaded=False)]
        mems += [MemorySpec(f"readout{h}", max(readout_dim(cfg, h), cfg.classes, 2),
                            readout_layout(cfg)) for h in range(len(cfg.layers) + 1)]
    if cfg.combine_first:
        mems.append(MemorySpec("norm", n, range(2 ** FRAC + 1)))
        mems += [MemorySpec(f"layer{l}_items", max(cfg.tiles(L.out_dim) * cfg.max_edges, 2),
                            range(cfg.max_bits)) for l, L in enumerate(cfg.layers, start=1)]
    columns = sum(cfg.tiles(width) for *_, width in cfg.phase_widths())
    mems.append(MemorySpec("cols", max(columns, 2),
                           data.ArrayLayout(column_fields(cfg.bias_bits, cfg.graph_level), P)))
    for l, L in enumerate(cfg.layers, start=1):
        if l == 1 and cfg.sparse_input:
            weights = [MemorySpec(f"layer1_rows_{j}", max(L.in_dim * cfg.tiles(L.out_dim), 2),
                                  row_layout(cfg, 1)) for j in range(cfg.nonzeros_per_word)]
        else:
            weights = [MemorySpec(f"layer{l}_weight",
                                  max(cfg.tiles(L.in_dim) * cfg.tiles(L.out_dim), 2),
                                  weight_layout(cfg, l))]
        pool = ([MemorySpec(f"layer{l}_pool", max(cfg.pool_size, 2), pool_layout(cfg, l))]
                if cfg.graph_level else [])
        mems += [MemorySpec(f"layer{l}_node", n, node_fields(cfg, l),
                            loaded=not cfg.graph_level), *weights, *pool,
                 MemorySpec(f"layer{l}_scalars", 2, SCALARS)]
    return {m.name: m for m in mems}
