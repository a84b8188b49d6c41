"""Cycle model of the bit-serial units and of the layer engine (NumPy, and the engine's
parameters from :mod:`a2q.hw.engine.layout`).

Bit-serial means a value of b bits takes b cycles. With ``lanes`` processing elements working
on ``lanes`` output (or aggregated) columns at once, a tile is ``lanes`` columns and a chunk
``lanes`` inputs:

- the engine's combination of node i (input bits ``B_i``, ``F`` inputs, ``C`` outputs):
  ``B_i * ceil(F / lanes) * ceil(C / lanes)`` cycles: one bit-plane of one chunk per cycle
  (the standalone BitSerialCombination takes all F inputs at once: ``B_i * ceil(C / lanes)``);
  GCN's layer 1 over an input held as its non-zeros, K a word
  (:func:`default_nonzeros_per_word`): ``B_i * words_i * ceil(C / lanes)``, ``words_i =
  max(1, ceil(nnz_i / K))`` (:func:`input_words`);
- aggregation of node i (operand bits ``b`` of each item, ``D`` columns):
  ``items_i * ceil(b / planes) * ceil(D / lanes)`` cycles, items being the CSR row (GCN,
  self-loops included) or the row plus the node's own ``(1 + eps)`` term (GIN); with
  per-node operand bits, the sum over the row's sources of ``ceil(b_j / planes)`` per tile;
  ``planes`` is 2 where ``D`` is at most half the lanes (the idle lanes take the next
  bit-plane: :func:`~a2q.hw.engine.layout.planes_per_cycle`), else 1;
- a (node, tile) of aggregation with no item still costs one cycle (it emits zeros);
- in the engine, a (node, tile) costs at least ``groups`` cycles: its results go through the
  shared requantization ``requant_lanes`` lanes a cycle, ``groups`` =
  ``ceil(min(columns, lanes) / requant_lanes)`` cycles
  (:func:`a2q.hw.engine.layout.requant_groups`), and the walker waits for it;
- no other per-node cost: every unit takes a new node the cycle after the last one
  (:data:`NODE_OVERHEAD` is 0; the RTL tests check every case's cycles exactly). A run adds a
  constant latency: :func:`combination_cycles` and :func:`aggregation_cycles` count a
  standalone unit's run as its testbench measures it, :func:`engine_cycles` the engine's
  ``cycles`` counter (each phase adds :data:`COMBINATION_PHASE_OVERHEAD` or
  :data:`AGGREGATION_PHASE_OVERHEAD`).

A combine-first model (GCN; GIN-0, a GIN trained with ``--gin-order combine-first``) combines
(per-node bits on layer 2's input) then aggregates XW (4-bit columns, or per-node bits); an
aggregate-first GIN aggregates its operand (the input's bits on layer 1, 4-bit columns after)
then combines (per-node bits). "GCN" and "GIN" above name these two datapaths.
``uniform=N`` re-counts the same model with every per-node and operand width set to N (the
layer-1 input keeps its own width, 1 bit for bag-of-words), as the engine runs the model
re-exported at N bits.

A graph-level GIN (:func:`graph_engine_cycles`) aggregates each layer as above, choosing
every node's pool entry as it goes (:data:`SELECTION_PHASE_EXTRA` more), quantizes the kept
sums at ``ceil(D / lanes) * max(1, groups)`` cycles a node, combines at the bits of the entry
each node took, and reads out each head: a graph's tiles, the head's ``D`` cycles
(:func:`readout_phase_cycles`).
"""

from __future__ import annotations

import math

import numpy as np

from a2q.hw.engine.layout import (
    NONZEROS_PER_WORD,
    default_requant_lanes,
    planes_per_cycle,
    requant_groups,
)
from a2q.hw.engine.memory_requests import READ_LATENCY
from a2q.hw.engine.requantization import DEPTH

from .annotated_graph import AnnotatedGraph
from .golden import neighbour_sum
from .graph_batch import GraphBatchExport

#: Cycles each unit spends on a node beyond its bit-serial work (``hw`` has no per-node bubble).
NODE_OVERHEAD = 0
#: BitSerialCombination run: after the last plane, one cycle presents the last result.
COMBINATION_RUN_LATENCY = 1
#: BitSerialAggregation run: ``start`` to ``busy`` falling, beyond the accumulate stage's work
#: (``BitSerialAggregation.RUN_LATENCY``: two ``indptr`` reads, two pipeline stages, the last
#: result, ``busy`` falling).
AGGREGATION_RUN_LATENCY = 6
#: Engine combination phase beyond its walker's work and its requantization ``groups``: the
#: launch cycle, ``READ_LATENCY`` (5) + 1 cycles for node 0's bits (``in_order_reads``),
#: the memory words read (``READ_LATENCY`` - 1 cycles after the walker), the gated weights,
#: two adder-tree stages, the shift and the accumulate stage, the result presented, the result
#: held,
#: ``requantization.DEPTH`` (20) stages and the word assembled
#: (``a2q.hw.engine.core.serve_in_groups``: the write ``groups + DEPTH + 1`` cycles after the
#: result), the write's port register, and the sequencer's cycle seeing ``busy`` low
#: (``hw/engine/combination_phase.py``).
COMBINATION_PHASE_OVERHEAD = 29 + 2 * READ_LATENCY
#: Engine combination phase over the input's non-zeros beyond its walker's work and its
#: requantization ``groups``: the dense phase's, and the pairs' row addresses registered and
#: the rows read (``READ_LATENCY`` + 1 cycles; ``hw/engine/sparse_combination_phase.py``).
SPARSE_COMBINATION_PHASE_OVERHEAD = COMBINATION_PHASE_OVERHEAD + READ_LATENCY + 1
#: Engine aggregation phase beyond its walker's work and its requantization ``groups``: the
#: launch cycle, ``READ_LATENCY`` + 2 cycles reading ``indptr[0]`` and ``indptr[1]``, the
#: ``indices`` word read (``READ_LATENCY`` - 1 cycles after the walker), the item's node and
#: its operand's address registered, the operand read (``READ_LATENCY`` cycles), its bit, the
#: term and the accumulate stage, the result presented, the result held,
#: ``requantization.DEPTH`` stages, the word assembled, the write's port register and the
#: sequencer's cycle (``hw/engine/aggregation_phase.py``).
AGGREGATION_PHASE_OVERHEAD = 30 + 3 * READ_LATENCY


def _check_lanes(lanes: int) -> None:
    if not isinstance(lanes, (int, np.integer)) or lanes < 1:
        raise ValueError(f"lanes must be an integer >= 1, got {lanes!r}")


def combination_cycles(bits, *, in_features: int, out_features: int, lanes: int) -> int:
    """Cycles of one BitSerialCombination run over nodes of ``bits``: for each of the
    ``ceil(out_features / lanes)`` tiles, ``in_features`` cycles to load the tile's weight rows,
    then ``bits[i]`` planes per node; plus :data:`COMBINATION_RUN_LATENCY`. Counted from the
    first weight row taken to the last result taken, with a consumer that is always ready."""
    _check_lanes(lanes)
    tiles = math.ceil(out_features / lanes)
    work = int(np.asarray(bits, dtype=np.int64).sum()) + NODE_OVERHEAD * len(bits)
    return tiles * (in_features + work) + COMBINATION_RUN_LATENCY


def aggregation_node_cycles(indptr, indices, bits, *, columns: int, lanes: int) -> np.ndarray:
    """Cycles of each node in BitSerialAggregation: ``ceil(columns / lanes)`` tiles of
    ``max(1, sum of its neighbours' bits)`` (int64 [N])."""
    _check_lanes(lanes)
    sums = neighbour_sum(np.asarray(indptr, dtype=np.int64), np.asarray(indices, dtype=np.int64),
                         np.asarray(bits, dtype=np.int64))
    return math.ceil(columns / lanes) * (np.maximum(sums, 1) + NODE_OVERHEAD)


def aggregation_cycles(indptr, indices, bits, *, columns: int, lanes: int) -> int:
    """Cycles of one BitSerialAggregation run over every node, ``start`` to ``busy`` falling."""
    if len(indptr) <= 1:
        return 1
    nodes = aggregation_node_cycles(indptr, indices, bits, columns=columns, lanes=lanes)
    return int(nodes.sum()) + AGGREGATION_RUN_LATENCY


def input_words(x, nonzeros_per_word: int) -> np.ndarray:
    """Words of ``x_nonzeros`` each node's input takes, ``nonzeros_per_word`` non-zero codes a
    word and at least one (int64 [N])."""
    nnz = np.count_nonzero(np.asarray(x), axis=1).astype(np.int64)
    return np.maximum(1, -(-nnz // nonzeros_per_word))


def default_nonzeros_per_word(g: AnnotatedGraph, *, lanes: int) -> int:
    """How the engine built for ``g`` stores the input: as its non-zero codes,
    :data:`~a2q.hw.engine.layout.NONZEROS_PER_WORD` a word (a GCN whose layer-1 combination
    then takes fewer cycles than over the dense input, ``ceil(F / lanes)`` words a node), or
    dense (0). Depends on ``x`` alone, so an export and its uniform re-exports agree."""
    if not g.combine_first:
        return 0
    dense = g.num_nodes * math.ceil(g.layers[0]["in_dim"] / lanes)
    sparse = int(input_words(g["x"], NONZEROS_PER_WORD).sum())
    return NONZEROS_PER_WORD if sparse < dense else 0


def phase_groups(g: AnnotatedGraph, *, lanes: int,
                 requant_lanes: int | None = None) -> dict[str, int]:
    """unit name -> the requantization's cycles per (node, tile) in the engine (``requant_lanes``
    0 or None: :func:`~a2q.hw.engine.layout.default_requant_lanes`)."""
    _check_lanes(lanes)
    r = requant_lanes or default_requant_lanes(lanes)
    out = {}
    for l, L in enumerate(g.layers, start=1):
        agg_dim = L["out_dim"] if g.combine_first else L["in_dim"]
        out[f"layer{l}.combination"] = requant_groups(L["out_dim"], lanes, r)
        out[f"layer{l}.aggregation"] = requant_groups(agg_dim, lanes, r)
    return out


def per_node_cycles(g: AnnotatedGraph, *, lanes: int, uniform: int | None = None,
                    requant_lanes: int | None = None,
                    nonzeros_per_word: int | None = None) -> dict[str, np.ndarray]:
    """unit name ("layer1.combination", ...) -> the engine's cycles on each node (int64 [N]);
    ``nonzeros_per_word``: the engine's input storage (None:
    :func:`default_nonzeros_per_word`, as :func:`~a2q.sim.engine_image.engine_config`)."""
    groups = phase_groups(g, lanes=lanes, requant_lanes=requant_lanes)
    if nonzeros_per_word is None:
        nonzeros_per_word = default_nonzeros_per_word(g, lanes=lanes)
    a, n = g.arrays, g.num_nodes
    deg = np.diff(a["indptr"])  # CSR rows: the neighbours (and self-loops) aggregated
    out = {}
    for l, L in enumerate(g.layers, start=1):
        p = f"layer{l}."
        if L["per_node_input"] and not (g.combine_first and l == 1):
            node_bits = a[p + "node_bits"].astype(np.int64)
        else:  # a combine-first layer 1 combines the raw input x
            node_bits = np.full(n, g.manifest["input_bits"], dtype=np.int64)
        op_bits = L["operand_bits"] or g.manifest["input_bits"]
        if uniform is not None:
            if L["per_node_input"]:
                node_bits = np.full(n, uniform, dtype=np.int64)
            if L["operand_bits"]:
                op_bits = uniform
        chunks = math.ceil(L["in_dim"] / lanes)
        if l == 1 and nonzeros_per_word:  # the input held as its non-zeros (combine-first)
            chunks = input_words(a["x"], nonzeros_per_word)
        comb = (np.maximum(node_bits * chunks, groups[p + "combination"]) + NODE_OVERHEAD
                ) * math.ceil(L["out_dim"] / lanes)
        agg_dim = L["out_dim"] if g.combine_first else L["in_dim"]
        planes = planes_per_cycle(agg_dim, lanes)  # an item of b bits: ceil(b / planes)
        if L["per_node_operand"]:  # each item costs its source's bits
            source_bits = (a[p + "node_op_bits"].astype(np.int64) if uniform is None
                           else np.full(n, uniform, dtype=np.int64))
            work = neighbour_sum(a["indptr"], a["indices"], -(-source_bits // planes))
        else:  # aggregate-first: GIN's own (1 + eps) term goes through too
            work = (deg if g.combine_first else deg + 1) * -(-op_bits // planes)
        agg = (np.maximum(work, groups[p + "aggregation"]) + NODE_OVERHEAD
               ) * math.ceil(agg_dim / lanes)
        out[p + "combination"] = comb.astype(np.int64)
        out[p + "aggregation"] = agg.astype(np.int64)
    return out


def engine_cycles(g: AnnotatedGraph, *, lanes: int, uniform: int | None = None,
                  requant_lanes: int | None = None,
                  nonzeros_per_word: int | None = None) -> dict[str, int]:
    """The layer engine's ``cycles`` for ``g``: phase name -> cycles (work plus the phase's
    overhead and requantization groups) in the order the engine runs them, and ``total``
    (``nonzeros_per_word`` as :func:`per_node_cycles`)."""
    if nonzeros_per_word is None:
        nonzeros_per_word = default_nonzeros_per_word(g, lanes=lanes)
    nodes = per_node_cycles(g, lanes=lanes, uniform=uniform, requant_lanes=requant_lanes,
                            nonzeros_per_word=nonzeros_per_word)
    groups = phase_groups(g, lanes=lanes, requant_lanes=requant_lanes)
    out = {}
    for l in range(1, len(g.layers) + 1):
        order = (("combination", "aggregation") if g.combine_first
                 else ("aggregation", "combination"))
        for unit in order:
            overhead = (AGGREGATION_PHASE_OVERHEAD if unit == "aggregation"
                        else SPARSE_COMBINATION_PHASE_OVERHEAD if l == 1 and nonzeros_per_word
                        else COMBINATION_PHASE_OVERHEAD)
            name = f"layer{l}.{unit}"
            out[name] = int(nodes[name].sum()) + overhead + groups[name]
    out["total"] = sum(out.values())
    return out


def cycle_report(g: AnnotatedGraph, *, lanes: int) -> dict:
    """Totals per unit for the exported bits and for uniform 4 and 8 bits, with ratios."""
    runs = {"a2q": per_node_cycles(g, lanes=lanes)}
    for b in (4, 8):
        runs[f"uniform{b}"] = per_node_cycles(g, lanes=lanes, uniform=b)
    totals = {k: {u: int(c.sum()) for u, c in v.items()} for k, v in runs.items()}
    for v in totals.values():
        v["total"] = sum(v.values())
    return {
        "lanes": lanes, "overhead_per_node": NODE_OVERHEAD, "totals": totals,
        "speedup_vs_uniform4": round(totals["uniform4"]["total"] / totals["a2q"]["total"], 4),
        "speedup_vs_uniform8": round(totals["uniform8"]["total"] / totals["a2q"]["total"], 4),
    }


def selection_cycles(tiles_per_node) -> int:
    """Cycles of :class:`~a2q.hw.units.nearest_neighbor_selection.NearestNeighborSelection`
    from its first tile taken to its last result taken, tiles back to back and results taken
    at once: one a tile, two more for the last node's comparison and result."""
    tiles = int(np.sum(tiles_per_node))
    return tiles + 2 if tiles else 0


def readout_cycles(tiles_per_graph, in_dim: int) -> int:
    """Cycles of :class:`~a2q.hw.units.graph_readout.GraphReadout` from its first tile taken
    to its last result taken, tiles offered back to back and results taken at once: per
    graph its tiles, ``in_dim`` cycles of the head and one to scale, and one more to take the
    last result."""
    tiles = np.asarray(tiles_per_graph, dtype=np.int64)
    return int(tiles.sum() + tiles.size * (in_dim + 1) + 1) if tiles.size else 0


#: A graph-level aggregation phase beyond the node-level one: the last node's entry leaves the
#: selection unit two cycles after its last group, when the word would be in its write
#: registers, and its pool word is read, ``READ_LATENCY`` cycles
#: (``a2q.hw.engine.selection_phase.EntrySelection``).
SELECTION_PHASE_EXTRA = READ_LATENCY
#: A graph-level quantization phase beyond its (node, tile)s' ``max(1, groups)`` cycles each:
#: the launch cycle, the read address registered, the read (``READ_LATENCY``), the word
#: presented and held, ``requantization.DEPTH`` stages, the word assembled, the write's port
#: register and the sequencer's cycle (``a2q.hw.engine.quantization_phase``).
QUANTIZATION_PHASE_OVERHEAD = 6 + READ_LATENCY + DEPTH


def graph_per_node_cycles(g: GraphBatchExport, selections: dict, *, lanes: int,
                          requant_lanes: int | None = None) -> dict[str, np.ndarray]:
    """unit name ("layer1.aggregation", "layer1.quantization", "layer1.combination", ...) ->
    a graph-level engine's cycles on each node of the batch; ``selections``: each layer's pool
    entry per node (``layer{l}`` -> int [N], the golden model's), whose bits the combination
    pays (a uniform baseline is a re-export whose one entry each node takes)."""
    _check_lanes(lanes)
    r = requant_lanes or default_requant_lanes(lanes)
    a, n = g.arrays, g.num_nodes
    deg = np.diff(a["indptr"])
    out = {}
    for l, L in enumerate(g.layers, start=1):
        p = f"layer{l}."
        bits = a[p + "pool_bits"].astype(np.int64)[selections[f"layer{l}"]]
        op_bits = L["operand_bits"] or g.manifest["input_bits"]
        planes = planes_per_cycle(L["in_dim"], lanes)
        work = (deg + 1) * -(-op_bits // planes)
        agg = np.maximum(work, requant_groups(L["in_dim"], lanes, r)) * math.ceil(
            L["in_dim"] / lanes)
        comb = np.maximum(bits * math.ceil(L["in_dim"] / lanes),
                          requant_groups(L["out_dim"], lanes, r)) * math.ceil(
            L["out_dim"] / lanes)
        out[p + "aggregation"] = agg.astype(np.int64)
        out[p + "quantization"] = np.full(n, math.ceil(L["in_dim"] / lanes) * max(
            1, requant_groups(L["in_dim"], lanes, r)), dtype=np.int64)
        out[p + "combination"] = comb.astype(np.int64)
    return out


#: A readout phase beyond its tiles and its graphs' own cycles: the launch cycle, the first
#: word of ``graph_ptr`` taken, the last graph's running sum read (``READ_LATENCY``) and written
#: (three registers), the sequencer's two cycles (``a2q.hw.engine.readout_phase``).
READOUT_PHASE_OVERHEAD = 7 + READ_LATENCY
#: A graph of a readout phase beyond its tiles and the head's ``D`` cycles: its end taken from
#: ``graph_ptr``, its last tile read (``READ_LATENCY``) and taken, the scaling, the terms taken.
READOUT_GRAPH_OVERHEAD = 4 + READ_LATENCY


def readout_phase_cycles(graph_nodes, *, dim: int, classes: int, lanes: int) -> int:
    """A graph-level engine's readout phase (one head over ``dim`` features): the constants
    loaded, ``max(dim, classes)`` cycles (at least the ``READ_LATENCY`` that ``graph_ptr[0]``
    takes), then each graph's ``n_g * ceil(dim / lanes)`` tiles (an empty graph: none, it is
    one tile of zeros issued with its end) and the head's ``dim`` cycles."""
    n = np.asarray(graph_nodes, dtype=np.int64)
    return (int(n.sum()) * math.ceil(dim / lanes) + n.size * (dim + READOUT_GRAPH_OVERHEAD)
            + max(dim, classes, READ_LATENCY) + READOUT_PHASE_OVERHEAD)


def graph_engine_cycles(g: GraphBatchExport, selections: dict, *, lanes: int,
                        requant_lanes: int | None = None) -> dict[str, int]:
    """A graph-level engine's ``cycles`` for the batch: phase name -> cycles in the order the
    engine runs them (head 0's readout; each layer's aggregation with the selection, its
    quantization, its combination and its head's readout), and ``total``."""
    r = requant_lanes or default_requant_lanes(lanes)
    nodes = graph_per_node_cycles(g, selections, lanes=lanes, requant_lanes=r)
    sizes = np.diff(g["graph_ptr"])

    def readout(dim):
        return readout_phase_cycles(sizes, dim=dim, classes=g.manifest["num_classes"],
                                    lanes=lanes)
    out = {"readout0": readout(g.layers[0]["in_dim"])}
    for l, L in enumerate(g.layers, start=1):
        p = f"layer{l}."
        agg_groups = requant_groups(L["in_dim"], lanes, r)
        out[p + "aggregation"] = (int(nodes[p + "aggregation"].sum())
                                  + AGGREGATION_PHASE_OVERHEAD + agg_groups
                                  + SELECTION_PHASE_EXTRA)
        out[p + "quantization"] = (int(nodes[p + "quantization"].sum())
                                   + QUANTIZATION_PHASE_OVERHEAD)
        out[p + "combination"] = (int(nodes[p + "combination"].sum())
                                  + COMBINATION_PHASE_OVERHEAD
                                  + requant_groups(L["out_dim"], lanes, r))
        out[f"readout{l}"] = readout(L["out_dim"])
    out["total"] = sum(out.values())
    return out
