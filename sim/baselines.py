"""The baselines A²Q's cycles are compared with, and the per-stage comparison.

Each baseline is the same trained model re-exported at uniform bits
(:func:`a2q.sim.uniform_export.uniform_variant`) and run on the same engine:

- ``uniform4``: every quantized feature tensor at 4 bits, the layer-1 input included: a binary
  bag-of-words input is paid for at 4 bit-planes, as an engine that treats every tensor alike
  (Degree-Quant INT4) runs it (the engine's ``x`` stores the codes as they are; the planes
  above them read zeros);
- ``uniform4-exact-input``: the same, but the input keeps its own bits (1 for binary inputs):
  the strict comparison;
- ``uniform8``: every quantized feature tensor at 8 bits, the input included;
- ``uniform2``, ``uniform3``: every quantized feature tensor at 2 or 3 bits, the input at its
  own bits: the cheaper end of the accuracy-against-cycles trade-off (``a2q bench hw``).

``a2q rtl engine``, ``a2q sim engine`` and ``a2q flow`` run :data:`DEFAULT_BASELINES` unless
told otherwise. A graph-level export's baselines
(:func:`~a2q.sim.uniform_export.graph_uniform_variant`) have one pool entry per layer: a
uniform-bit engine has no entry to wait for and quantizes as it aggregates, so their
quantization stages count 0 cycles (:func:`as_uniform_engine`) and A²Q pays its
quantization from ``sums`` against them.

A *stage* is one phase of the engine (``layer1.combination``, ...) or ``total``. A stage whose
input carries per-node bits (GCN's combinations after layer 1, every GIN combination, GCN's
aggregations of operands with per-node bits) has an ``ideal_speedup``: the baseline's bits
over A²Q's average bits on that input (per item for an aggregation), what a bit-serial stage
with no per-node overhead would gain.
"""

from __future__ import annotations

import numpy as np

from .annotated_graph import AnnotatedGraph
from .graph_batch import GraphBatchExport
from .graph_golden import run_graph_batch
from .uniform_export import graph_uniform_variant, uniform_variant

#: name -> (bits of every per-node tensor and operand, bits the layer-1 input is paid at or
#: None for its own)
BASELINES = {"uniform4": (4, 4), "uniform4-exact-input": (4, None), "uniform8": (8, 8),
             "uniform2": (2, None), "uniform3": (3, None)}
#: The baselines an engine build runs unless told: the INT4 and INT8 engines' way and the strict
#: comparison.
DEFAULT_BASELINES = ("uniform4", "uniform4-exact-input", "uniform8")


def baseline_variant(g, name: str):
    """``g`` (a node-level or a graph-level export) re-exported as baseline ``name`` (a key of
    :data:`BASELINES`)."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}: expected one of {', '.join(BASELINES)}")
    bits, input_bits = BASELINES[name]
    if isinstance(g, GraphBatchExport):
        return graph_uniform_variant(g, bits, input_bits=input_bits)
    return uniform_variant(g, bits, input_bits=input_bits)


def per_node_stages(g) -> dict[str, np.ndarray]:
    """Stage -> the per-node bits it pays, for the stages whose input carries them: a
    combination's input bits per node, an aggregation's operand bits per item (each CSR
    entry its source's: GCN with per-node operand bits); graph-level, each combination's
    bits from the entry the golden model's selection gives each node."""
    if isinstance(g, GraphBatchExport):
        chosen = run_graph_batch(g).selections
        return {f"layer{l}.combination": g[f"layer{l}.pool_bits"].astype(np.int64)[
            chosen[f"layer{l}"]] for l in range(1, len(g.layers) + 1)}
    out = {}
    for l, L in enumerate(g.layers, start=1):
        if L["per_node_input"] and not (g.combine_first and l == 1):
            out[f"layer{l}.combination"] = g[f"layer{l}.node_bits"].astype(np.int64)
        if L["per_node_operand"]:
            out[f"layer{l}.aggregation"] = g[f"layer{l}.node_op_bits"].astype(np.int64)[
                g["indices"]]
    return out


def stage_rows(g: AnnotatedGraph, variants: dict[str, AnnotatedGraph],
               cycles: dict[str, dict[str, int]]) -> list[dict]:
    """One row per (baseline, stage): ``cycles`` maps ``"a2q"`` and each baseline name to its
    cycles per stage (``total`` included), ``variants`` each baseline name to its export."""
    a2q_bits = per_node_stages(g)
    rows = []
    for name, v in variants.items():
        base_bits = per_node_stages(v)
        for stage, c in cycles["a2q"].items():
            b = cycles[name][stage]
            row = {"stage": stage, "baseline": name, "cycles_a2q": c, "cycles_baseline": b,
                   "speedup": round(b / c, 4) if c else None, "ideal_speedup": None,
                   "avg_bits_a2q": None, "bits_baseline": None, "fraction_of_ideal": None}
            if stage in a2q_bits:
                mine, theirs = float(a2q_bits[stage].mean()), float(base_bits[stage].mean())
                ideal = theirs / mine
                row.update(avg_bits_a2q=round(mine, 4), bits_baseline=round(theirs, 4),
                           ideal_speedup=round(ideal, 4),
                           fraction_of_ideal=round(b / c / ideal, 4) if c else None)
            rows.append(row)
    return rows


def as_uniform_engine(cycles: dict[str, int]) -> dict[str, int]:
    """A graph-level baseline's cycles per stage as an engine at uniform bits takes them: its
    quantization stages at 0 (such an engine quantizes as it aggregates, with no entry to
    wait for) and ``total`` summed again."""
    out = {k: 0 if k.endswith(".quantization") else v for k, v in cycles.items()
           if k != "total"}
    out["total"] = sum(out.values())
    return out
