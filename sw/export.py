"""Export a trained node-level GCN or GIN as a bitwidth-annotated graph (graph-level runs:
:mod:`a2q.sw.graph_export`).

Reads a run folder's checkpoint, rebuilds the model, and writes the integers the hardware
and the golden model need (:mod:`a2q.sim.annotated_graph`, ``docs/export-format.md``): the
graph in CSR, the integer input, per layer the integer weights, per-node bits and steps,
and every fixed-point constant of the integer datapath. Also the torch model's own predictions
(``reference_pred``) so that the golden model can be compared without torch.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch_geometric.utils import remove_self_loops

from a2q.common.choices import ENGINE_MODELS
from a2q.common.errors import A2QError
from a2q.sim.annotated_graph import EPS_FRAC, NORM_FRAC, GraphFormatError, write_graph
from a2q.sim.export_constants import derive_constants

from .quant.column_quantizer import ColumnQuantizer
from .quant.node_quantizer import NodeQuantizer, OperandQuantizer
from .run_folder import load_checkpoint
from .train import model_from_checkpoint

EXPORTABLE_METHODS = ("a2q", "uniform")


def _csr(edge_index: torch.Tensor, n: int, self_loops: bool) -> tuple[np.ndarray, np.ndarray]:
    """CSR over targets: row i lists the sources j of edges j -> i (sorted)."""
    ei, _ = remove_self_loops(edge_index)
    src, dst = ei[0].numpy(), ei[1].numpy()
    if self_loops:
        loops = np.arange(n)
        src, dst = np.concatenate([src, loops]), np.concatenate([dst, loops])
    order = np.lexsort((src, dst))
    src, dst = src[order], dst[order]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(dst, minlength=n), out=indptr[1:])
    return indptr, src.astype(np.int64)


def _column(q, name: str) -> tuple[np.ndarray, int]:
    if not isinstance(q, ColumnQuantizer):
        raise A2QError(f"{name} is not quantized per column; cannot export")
    return q.step.detach().abs().double().view(-1).numpy(), q.width


def _node(q: NodeQuantizer) -> tuple[np.ndarray, np.ndarray]:
    return (q.stored_bits().numpy().astype(np.uint8),
            q.step.detach().abs().double().view(-1).numpy())


def build_export(ckpt: dict, *, data_root=None) -> tuple[dict, dict]:
    """(manifest without tensors, arrays) for a node-level GCN/GIN checkpoint."""
    cfg, gd, models = model_from_checkpoint(ckpt, data_root=data_root)
    if not gd.node_level:
        raise A2QError("export supports node-level models (one graph); this checkpoint is "
                       f"graph-level ({cfg.dataset})")
    if cfg.model not in ENGINE_MODELS:
        raise A2QError(f"export supports models gcn and gin; this checkpoint is {cfg.model}")
    if cfg.method not in EXPORTABLE_METHODS:
        raise A2QError(f"export needs integer quantizers (methods {', '.join(EXPORTABLE_METHODS)}"
                       f"); this checkpoint is {cfg.method}")
    model, data = models[0], gd.dataset[0]
    n = data.num_nodes
    x = data.x
    if not torch.equal(x, x.round()) or x.min() < 0:
        raise A2QError("layer 1's input is not a non-negative integer matrix; the hardware "
                       "path needs integer inputs (Cora and CiteSeer are binary)")
    input_bits = max(1, int(x.max()).bit_length())
    if input_bits > 8:
        raise A2QError(f"layer 1's input needs {input_bits} bits; at most 8 are supported")
    with torch.no_grad():
        reference = model(x, data.edge_index).argmax(1)

    # GCN and GIN-0 multiply by W first and sum over the neighbours and the node itself
    order = cfg.order
    gcn = order == "combine-first"
    indptr, indices = _csr(data.edge_index, n, self_loops=gcn)
    ei, _ = remove_self_loops(data.edge_index)
    arrays = {
        "indptr": indptr, "indices": indices,
        "in_degree": np.bincount(ei[1].numpy(), minlength=n).astype(np.int64),
        "labels": data.y.numpy().astype(np.int64),
        "train_mask": data.train_mask.numpy(), "val_mask": data.val_mask.numpy(),
        "test_mask": data.test_mask.numpy(),
        "x": x.numpy().astype(np.uint8), "reference_pred": reference.numpy().astype(np.int64),
    }
    if cfg.model == "gcn":
        deg_hat = np.diff(indptr).astype(np.float64)
        arrays["gcn_norm"] = np.floor(2.0 ** NORM_FRAC / np.sqrt(deg_hat) + 0.5).astype(np.int64)
    elif gcn:  # GIN-0's plain sum
        arrays["gcn_norm"] = np.full(n, 1 << NORM_FRAC, dtype=np.int64)

    convs = list(model.convs)
    layers = []
    for l, conv in enumerate(convs, start=1):
        p = f"layer{l}."
        w_step, w_bits = _column(conv.weight_quant, f"layer {l}'s weight")
        with torch.no_grad():
            wq = conv.weight_quant.codes(conv.weight).t().numpy().astype(np.int8)
        bias = conv.bias.detach().double().numpy()
        per_node = isinstance(conv.input_quant, NodeQuantizer)
        L = {"in_dim": conv.in_channels, "out_dim": conv.out_channels,
             "activation": "relu" if l < len(convs) else "none",
             "per_node_input": per_node, "weight_bits": w_bits}
        arrays[p + "weight"] = wq
        arrays[p + "weight_step"] = w_step
        arrays[p + "bias"] = bias
        if per_node:
            arrays[p + "node_bits"], arrays[p + "node_step"] = _node(conv.input_quant)
        elif not gcn or l > 1:
            raise A2QError(f"layer {l} has no per-node input quantizer; cannot export")
        L["per_node_operand"] = isinstance(conv.operand_quant, OperandQuantizer)
        if isinstance(conv.operand_quant, nn.Identity):
            L["operand_bits"] = 0
        elif L["per_node_operand"]:
            arrays[p + "node_op_bits"], arrays[p + "node_op_step"] = _node(conv.operand_quant)
            L["operand_bits"] = int(arrays[p + "node_op_bits"].max())
        else:
            arrays[p + "operand_step"], L["operand_bits"] = _column(
                conv.operand_quant, f"layer {l}'s operand")
        L["operand_signed"] = gcn
        if not gcn:
            L["eps_fx"] = int(np.floor((1.0 + conv.eps.item()) * 2 ** EPS_FRAC + 0.5))
            if L["eps_fx"] < 0:
                raise A2QError(f"layer {l}: 1 + eps is negative; not supported by the hardware")
        layers.append(L)
    derive_constants(cfg.model, order, layers, arrays)
    manifest = {
        "model": cfg.model, "method": cfg.method, "dataset": cfg.dataset, "seed": cfg.seed,
        "num_nodes": n, "num_edges": int(indices.size), "num_classes": gd.num_classes,
        "input_bits": input_bits, "order": order, "self_loops": gcn, "norm_frac": NORM_FRAC,
        "eps_frac": EPS_FRAC, "layers": layers,
    }
    return manifest, arrays


def export_run(run: str | os.PathLike, out: str | os.PathLike | None = None, *,
               data_root=None, fold: int | None = None, split: str | None = None) -> Path:
    """Export ``run`` (a run folder or checkpoint) to ``out`` (default ``<run>/graph``).

    A node-level run gives a bitwidth-annotated graph; a graph-level run gives fold ``fold``'s
    model (default 0) and its ``split`` graphs (default ``test``) as a graph-level export
    (:mod:`a2q.sw.graph_export`)."""
    from a2q.sim.graph_batch import write_graph_batch

    from .graph_export import build_graph_export

    run = Path(run)
    ckpt = load_checkpoint(run)
    out = Path(out) if out is not None else (run if run.is_dir() else run.parent) / "graph"
    graph_level = ckpt.get("task") == "graph"
    if not graph_level and (fold is not None or split is not None):
        raise A2QError(f"--fold and --split are for graph-level runs; {run} is node-level")
    try:
        if graph_level:
            manifest, arrays = build_graph_export(
                ckpt, fold=0 if fold is None else fold, split=split or "test",
                data_root=data_root)
        else:
            manifest, arrays = build_export(ckpt, data_root=data_root)
    except ValueError as exc:  # a constant that fixed point cannot represent
        raise A2QError(f"cannot export {run}: {exc}") from None
    try:
        if graph_level:
            return write_graph_batch(out, manifest, arrays)
        return write_graph(out, manifest, arrays, check=True)
    except (GraphFormatError, ValueError) as exc:
        raise A2QError(f"cannot export {run}: the export would be invalid: {exc}") from None
