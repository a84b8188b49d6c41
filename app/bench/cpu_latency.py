"""PyTorch's inference time on this machine's CPU, beside which ``a2q bench hw`` puts the
engine's latency: a node-level run's trained (quantized) model and the same layers in FP32
PyG, over the whole graph, dense features."""

from __future__ import annotations

import statistics
import time
from pathlib import Path


def _median_ms(forward, repeats: int) -> float:
    for _ in range(5):  # warm-up: caches (normalisation, allocator) filled
        forward()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        forward()
        times.append(time.perf_counter() - t0)
    return round(1000 * statistics.median(times), 3)


def fp32_reference(model: str, in_channels: int, hidden: int, classes: int):
    """The two-layer FP32 model in PyG's own layers: ``GCNConv`` (normalisation cached, as the
    engine holds the graph's), or ``GINConv`` with one linear layer each (a2q's GIN)."""
    import torch
    from torch_geometric.nn import GCNConv, GINConv

    if model == "gcn":
        convs = [GCNConv(in_channels, hidden, cached=True), GCNConv(hidden, classes, cached=True)]
    else:
        convs = [GINConv(torch.nn.Linear(in_channels, hidden), train_eps=True),
                 GINConv(torch.nn.Linear(hidden, classes), train_eps=True)]

    class TwoLayers(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.convs = torch.nn.ModuleList(convs)

        def forward(self, x, edge_index):
            return self.convs[1](torch.relu(self.convs[0](x, edge_index)), edge_index)

    return TwoLayers().eval()


def cpu_inference_ms(run: str | Path, *, data_root=None, repeats: int = 200) -> dict:
    """Median milliseconds of one whole-graph forward (``torch.no_grad``, eval mode) of the
    run's trained model (``quantized_ms``: its quantizers in the forward, as trained) and of
    :func:`fp32_reference` with the same layer sizes (``fp32_pyg_ms``), ``repeats`` runs each
    after a warm-up, with PyTorch's default threads."""
    import torch

    from a2q.sw.run_folder import load_checkpoint
    from a2q.sw.train import model_from_checkpoint

    cfg, gd, (model,) = model_from_checkpoint(load_checkpoint(Path(run) / "checkpoint.pt"),
                                              data_root=data_root)
    data = gd.dataset[0]
    x, edge_index = data.x.to_dense() if data.x.is_sparse else data.x, data.edge_index
    reference = fp32_reference(cfg.model, gd.num_features, cfg.hidden, gd.num_classes)
    with torch.no_grad():
        quantized = _median_ms(lambda: model(x, edge_index), repeats)
        fp32 = _median_ms(lambda: reference(x, edge_index), repeats)
    return {"fp32_pyg_ms": fp32, "quantized_ms": quantized, "repeats": repeats,
            "threads": torch.get_num_threads(), "dataset": cfg.dataset, "model": cfg.model,
            "nodes": int(data.num_nodes), "features": int(gd.num_features)}
