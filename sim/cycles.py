"""Cycle model of the bit-serial engine (NumPy only).

Bit-serial means a value of b bits takes b cycles. With ``lanes`` processing elements working
on ``lanes`` output (or aggregated) columns at once, a tile is ``lanes`` columns:

- combination of node i (input bits ``B_i``, ``F`` inputs, ``C`` outputs):
  ``B_i * ceil(C / lanes)`` cycles: one bit-plane of the whole feature vector per cycle;
- aggregation of node i (operand bits ``b`` of each neighbour, ``D`` columns):
  ``sum_{j in N(i)} b_j * ceil(D / lanes)`` cycles;
- each unit adds ``overhead`` cycles per node (pipeline fill; 0 until the RTL fixes it).

GCN combines (per-node bits on layer 2's input) then aggregates the 4-bit XW; GIN aggregates its
operand (the input's bits on layer 1, 4-bit columns after) then combines (per-node bits).
``uniform=N`` re-counts the same model with every per-node and operand width set to N (the
layer-1 input keeps its own width, 1 bit for bag-of-words).
"""

from __future__ import annotations

import math

import numpy as np

from .annotated_graph import AnnotatedGraph


def per_node_cycles(g: AnnotatedGraph, *, lanes: int, uniform: int | None = None,
                    overhead: int = 0) -> dict[str, np.ndarray]:
    """unit name ("layer1.combination", ...) -> cycles of each node (int64 [N])."""
    if lanes < 1:
        raise ValueError(f"lanes must be at least 1, got {lanes}")
    a, n = g.arrays, g.num_nodes
    deg = np.diff(a["indptr"])  # CSR rows: the neighbours (and self-loops) aggregated
    out = {}
    for l, L in enumerate(g.layers, start=1):
        p = f"layer{l}."
        if L["per_node_input"]:
            node_bits = a[p + "node_bits"].astype(np.int64)
        else:
            node_bits = np.full(n, g.manifest["input_bits"], dtype=np.int64)
        op_bits = L["operand_bits"] or g.manifest["input_bits"]
        if uniform is not None:
            if L["per_node_input"]:
                node_bits = np.full(n, uniform, dtype=np.int64)
            if L["operand_bits"]:
                op_bits = uniform
        comb = node_bits * math.ceil(L["out_dim"] / lanes) + overhead
        agg_dim = L["out_dim"] if g.model == "gcn" else L["in_dim"]
        agg = deg * op_bits * math.ceil(agg_dim / lanes) + overhead
        if g.model == "gin":  # the node's own (1 + eps) term goes through the unit too
            agg = agg + op_bits * math.ceil(agg_dim / lanes)
        out[p + "combination"] = comb.astype(np.int64)
        out[p + "aggregation"] = agg.astype(np.int64)
    return out


def cycle_report(g: AnnotatedGraph, *, lanes: int, overhead: int = 0) -> dict:
    """Totals per unit for the exported bits and for uniform 4 and 8 bits, with ratios."""
    runs = {"a2q": per_node_cycles(g, lanes=lanes, overhead=overhead)}
    for b in (4, 8):
        runs[f"uniform{b}"] = per_node_cycles(g, lanes=lanes, uniform=b, overhead=overhead)
    totals = {k: {u: int(c.sum()) for u, c in v.items()} for k, v in runs.items()}
    for v in totals.values():
        v["total"] = sum(v.values())
    return {
        "lanes": lanes, "overhead_per_node": overhead, "totals": totals,
        "speedup_vs_uniform4": round(totals["uniform4"]["total"] / totals["a2q"]["total"], 4),
        "speedup_vs_uniform8": round(totals["uniform8"]["total"] / totals["a2q"]["total"], 4),
    }
