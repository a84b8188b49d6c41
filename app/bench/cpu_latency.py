"""PyTorch's inference time on this machine's CPU, beside which ``a2q bench hw`` puts the
engine's latency: a node-level run's trained (quantized) model and the same layers in FP32
PyG, over the whole graph, dense features."""

from __future__ import annotations

import statistics
import time
import warnings
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
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # PyG's note on beta sparse CSR tensors
        quantized = _median_ms(lambda: model(x, edge_index), repeats)
        fp32 = _median_ms(lambda: reference(x, edge_index), repeats)
    return {"fp32_pyg_ms": fp32, "quantized_ms": quantized, "repeats": repeats,
            "threads": torch.get_num_threads(), "dataset": cfg.dataset, "model": cfg.model,
            "nodes": int(data.num_nodes), "features": int(gd.num_features)}


def engine_against_cpu(cpu: dict, cycles: int | None, fmax_mhz: float | None) -> dict:
    """``cpu`` (:func:`cpu_inference_ms`) with the engine's ``cycles``, its Fmax, its latency
    in ms (``engine_ms``, where both are known) and the CPU's times over it."""
    engine_ms = round(cycles / fmax_mhz / 1000, 3) if cycles and fmax_mhz else None
    return {**cpu, "cycles": cycles, "fmax_mhz": fmax_mhz, "engine_ms": engine_ms,
            "speedup_vs_fp32": round(cpu["fp32_pyg_ms"] / engine_ms, 3) if engine_ms else None,
            "speedup_vs_quantized": (round(cpu["quantized_ms"] / engine_ms, 3)
                                     if engine_ms else None)}


def run_cpu_bench(out: str | Path, *, dataset: str = "Cora", model: str = "gcn", seed: int = 0,
                  fmax_mhz: float | None = None, lanes: int = 16, repeats: int = 200,
                  data_root=None, progress=print) -> dict:
    """``a2q bench cpu``: train A²Q (``seed``, the defaults), export, and put PyTorch's CPU
    inference time (:func:`cpu_inference_ms`) beside the engine's cycles for that export (the
    cycle model, equal to the RTL's in every test) and, given the engine's routed Fmax
    (``fmax_mhz``, from ``a2q synth``'s report), its latency. Writes ``cpu.md``, ``cpu.json``."""
    import json
    import tempfile
    import time

    from a2q.sim.annotated_graph import read_graph
    from a2q.sim.cycles import engine_cycles

    from .models import _write_files, trained_export

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / f"{dataset}-{model}"
        progress(f"{dataset} {model}: training A²Q (seed {seed}) and exporting")
        g = read_graph(trained_export(run, dataset, model, seed=seed, data_root=data_root))
        progress(f"PyTorch CPU inference time ({repeats} runs each)")
        cpu = cpu_inference_ms(run, data_root=data_root, repeats=repeats)
    cycles = engine_cycles(g, lanes=lanes)["total"]
    result = {"command": "a2q bench cpu", "seed": seed, "lanes": lanes,
              **engine_against_cpu(cpu, cycles, fmax_mhz),
              "seconds": round(time.perf_counter() - t0, 1)}
    engine_ms = result["engine_ms"]
    engine = (f"{engine_ms} ms: {cycles} cycles at {fmax_mhz} MHz" if engine_ms
              else f"{cycles} cycles (give --fmax for its latency)")
    md = "\n".join([
        f"# {dataset} {model.upper()}: the engine against PyTorch on this CPU", "",
        f"`a2q bench cpu --dataset {dataset} --model {model} --seed {seed}"
        + (f" --fmax {fmax_mhz}" if fmax_mhz else "") + "`. The trained A²Q model's forward "
        f"and the same layers in FP32 PyG, whole graph ({cpu['nodes']} nodes, "
        f"{cpu['features']} dense features), `torch.no_grad`, median of {repeats} runs after a "
        f"warm-up, {cpu['threads']} threads; the engine's cycles for the same export "
        f"({lanes} lanes, cycle model).", "",
        "| | ms |", "|---|---|",
        f"| FP32 PyG | {cpu['fp32_pyg_ms']} |",
        f"| A²Q model's forward (fake-quantized) | {cpu['quantized_ms']} |",
        f"| the engine | {engine} |", ""]
        + ([f"The engine is {result['speedup_vs_fp32']:.2f}x the FP32 CPU's speed and "
            f"{result['speedup_vs_quantized']:.2f}x the quantized forward's.", ""]
           if engine_ms else []))
    _write_files(Path(out), {"cpu.json": json.dumps(result, indent=2) + "\n", "cpu.md": md})
    progress(md)
    return result
