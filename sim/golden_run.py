"""``a2q golden``: run the golden model on an export and write its results (NumPy only)."""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

import numpy as np

from a2q.common.choices import DEFAULT_LANES
from a2q.common.files import atomic_folder

from . import golden
from .annotated_graph import read_graph
from .cycles import cycle_report, per_node_cycles
from .graph_batch import export_kind, read_graph_batch
from .graph_golden import graph_accuracy, run_graph_batch


def _save(path: Path, a: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    path.write_bytes(buf.getvalue())


def run_golden(graph: str | os.PathLike, out: str | os.PathLike, *,
               lanes: int = DEFAULT_LANES) -> dict:
    """Validate ``graph``, run the integer model, write results to ``out``; return a summary.
    A graph-level export (:mod:`a2q.sim.graph_batch`) goes to :func:`run_graph_golden`."""
    if export_kind(graph) == "graph":
        return run_graph_golden(graph, out)
    g = read_graph(graph)
    t0 = time.perf_counter()
    res = golden.run(g)
    seconds = time.perf_counter() - t0
    with atomic_folder(out, command="a2q golden") as tmp:
        _save(tmp / "predictions.npy", res.predictions)
        _save(tmp / "logits.npy", res.logits)
        _save(tmp / "logit_shift.npy", res.logit_shift)
        for name, arr in res.layer_outputs.items():
            _save(tmp / f"{name}.npy", arr)
        nodes = per_node_cycles(g, lanes=lanes)
        _save(tmp / "cycles_per_node.npy", np.stack([nodes[k] for k in nodes], axis=1))
        cycles = cycle_report(g, lanes=lanes)
        cycles["per_node_columns"] = list(nodes)
        (tmp / "cycles.json").write_text(json.dumps(cycles, indent=2) + "\n")
        ref = g["reference_pred"]
        summary = {
            "model": g.model, "dataset": g.manifest.get("dataset"),
            "test_acc": golden.percent(golden.accuracy(g, res.predictions)),
            "reference_test_acc": golden.percent(golden.accuracy(g, ref)),
            "prediction_agreement": round(float((res.predictions == ref).mean()), 6),
            "disagreeing_nodes": int((res.predictions != ref).sum()),
            "seconds": round(seconds, 4),
            "cycles_speedup_vs_uniform4": cycles["speedup_vs_uniform4"],
        }
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def run_graph_golden(graph: str | os.PathLike, out: str | os.PathLike) -> dict:
    """:func:`run_golden` for a graph-level export: every graph's logits and prediction, each
    node's pool entry per layer, and a summary against the torch model's predictions."""
    g = read_graph_batch(graph)
    t0 = time.perf_counter()
    res = run_graph_batch(g)
    seconds = time.perf_counter() - t0
    bits = {layer: g[f"{layer}.pool_bits"].astype(np.int64)[k]
            for layer, k in res.selections.items()}
    with atomic_folder(out, command="a2q golden") as tmp:
        _save(tmp / "predictions.npy", res.predictions)
        _save(tmp / "logits.npy", res.logits)
        for layer, k in res.selections.items():
            _save(tmp / f"{layer}.selection.npy", k)
        for name, arr in res.layer_outputs.items():
            _save(tmp / f"{name}.npy", arr)
        ref = g["reference_pred"]
        all_bits = np.concatenate(list(bits.values()))
        summary = {
            "task": "graph", "model": g.manifest["model"], "dataset": g.manifest["dataset"],
            "fold": g.manifest["fold"], "split": g.manifest["split"], "graphs": g.num_graphs,
            "nodes": g.num_nodes,
            "accuracy": round(100 * graph_accuracy(g, res.predictions), 2),
            "reference_accuracy": round(100 * graph_accuracy(g, ref), 2),
            "prediction_agreement": round(float((res.predictions == ref).mean()), 6),
            "disagreeing_graphs": int((res.predictions != ref).sum()),
            "avg_feature_bits": round(float(all_bits.mean()), 4),
            "bits_histogram": {str(b): int(c) for b, c in
                               zip(*np.unique(all_bits, return_counts=True))},
            "pool_entries_used": {layer: int(np.unique(k).size)
                                  for layer, k in res.selections.items()},
            "selection_agreement": {
                layer: round(float((k == g[f"{layer}.reference_selection"]).mean()), 6)
                for layer, k in res.selections.items()},
            "seconds": round(seconds, 4),
        }
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
