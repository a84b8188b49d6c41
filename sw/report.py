"""Learned bits against in-degree: the paper's main observation, as JSON and a plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

#: in-degree buckets (inclusive bounds); degree 0 appears only in graphs with isolated nodes
BUCKETS = (("0", 0, 0), ("1", 1, 1), ("2", 2, 2), ("3-4", 3, 4), ("5-8", 5, 8),
           ("9+", 9, None))


def summarize_bits(bits: torch.Tensor, in_degree: torch.Tensor) -> dict:
    """Mean bits per in-degree bucket, the bits histogram, mean in-degree per bit value, and
    Pearson's correlation between bits and in-degree."""
    b = bits.long().numpy()
    d = in_degree.long().numpy()
    buckets = {}
    for name, lo, hi in BUCKETS:
        sel = (d >= lo) if hi is None else ((d >= lo) & (d <= hi))
        if sel.any():
            buckets[name] = {"nodes": int(sel.sum()), "mean_bits": round(float(b[sel].mean()), 4)}
    values, counts = np.unique(b, return_counts=True)
    histogram = {str(int(v)): int(c) for v, c in zip(values, counts)}
    deg_by_bits = {str(int(v)): round(float(d[b == v].mean()), 4) for v in values}
    pearson = None
    if b.std() > 0 and d.std() > 0:
        pearson = round(float(np.corrcoef(b, d)[0, 1]), 4)
    return {"by_in_degree": buckets, "histogram": histogram,
            "mean_in_degree_by_bits": deg_by_bits, "pearson_bits_degree": pearson,
            "mean_bits": round(float(b.mean()), 4)}


def bits_by_degree(model, in_degree: torch.Tensor) -> dict:
    """Summary for every per-node quantized tensor of a node-level model."""
    layers = {}
    for name, q, _ in model.per_node_tensors():
        if hasattr(q, "stored_bits") and q.stored_bits().numel() == in_degree.numel():
            layers[name.replace("layer", "conv")] = summarize_bits(q.stored_bits(), in_degree)
    return {"method": model.scheme.method, "layers": layers}


def plot_bits_by_degree(summary: dict, path: Path, title: str) -> None:
    """Two panels: mean bits per in-degree bucket (one bar group per layer), bits histogram."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    layers = summary["layers"]
    if not layers:
        for ax in (ax1, ax2):
            ax.text(0.5, 0.5, f"method {summary['method']}: no per-node bits",
                    ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
    else:
        width = 0.8 / len(layers)
        names = [n for n, _, _ in BUCKETS
                 if any(n in s["by_in_degree"] for s in layers.values())]
        values = sorted({int(v) for s in layers.values() for v in s["histogram"]})
        for k, (layer, s) in enumerate(layers.items()):
            offset = (k - (len(layers) - 1) / 2) * width
            present = [n for n in names if n in s["by_in_degree"]]
            ax1.bar([names.index(n) + offset for n in present],
                    [s["by_in_degree"][n]["mean_bits"] for n in present], width, label=layer)
            ax2.bar([v + offset for v in values], [s["histogram"].get(str(v), 0) for v in values],
                    width, label=layer)
        ax1.set_xticks(range(len(names)), names)
        ax2.set_xticks(values, [str(v) for v in values])
        ax1.set_xlabel("in-degree")
        ax1.set_ylabel("mean learned bits")
        ax1.set_title("bits by in-degree")
        ax2.set_xlabel("bits")
        ax2.set_ylabel("nodes")
        ax2.set_title("histogram of bits")
        ax1.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)
