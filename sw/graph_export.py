"""Export a trained graph-level GIN and a batch of graphs (``a2q.sim.graph_batch``).

A graph-level run holds one model per cross-validation fold. The export takes one fold's model
and one of that fold's splits (its test graphs by default: graphs the model never saw), and
writes the integers the golden model and the hardware need: per layer the Nearest-Neighbor
pool sorted by range, the weights with batch normalisation's sign folded in, the output step;
the readout heads; the graphs stacked in CSR with their boundaries; and the torch model's own
predictions (``reference_pred``) and pool choices (``layer{l}.reference_selection``), so that
the golden model is compared without torch.
"""

from __future__ import annotations

import numpy as np
import torch

from a2q.common.errors import A2QError
from a2q.sim.annotated_graph import EPS_FRAC
from a2q.sim.export_constants import derive_graph_constants
from a2q.sim.graph_batch import LOGIT_FRAC

from .graph_batches import GraphBatches
from .quant.column_quantizer import ColumnQuantizer
from .quant.functional import integer_bits
from .quant.nearest_neighbor import NearestNeighborQuantizer
from .train import graph_folds, model_from_checkpoint

SPLITS = ("train", "val", "test")


def _pool(q) -> tuple[np.ndarray, np.ndarray]:
    """(steps, stored bits) of a layer's per-node quantizer, sorted by range step * (2^b - 1),
    entries whose range equals an earlier one's dropped (the nearest-entry rule, lower index
    first on a tie, never chooses them). Uniform: one entry."""
    if isinstance(q, NearestNeighborQuantizer):
        step = q.step.detach().abs().double().numpy()
        bits = (integer_bits(q.bits, q.min_bits, q.max_bits) - 1).long().numpy()
    elif isinstance(q, ColumnQuantizer) and q.step.numel() == 1:
        step = q.step.detach().abs().double().view(-1).numpy()
        bits = np.array([q.width])
    else:
        raise A2QError("the layer's features are not quantized by a Nearest-Neighbor pool or "
                       "one uniform step; cannot export")
    q_max = step * ((1 << bits) - 1)
    order = np.argsort(q_max, kind="stable")
    keep = np.concatenate([[True], np.diff(q_max[order]) > 0])
    order = order[keep]
    return step[order], bits[order].astype(np.uint8)


def _selection_in_sorted_pool(q, index, step: np.ndarray, bits: np.ndarray,
                              n: int) -> np.ndarray:
    """Each node's entry of the exported (sorted) pool that torch's quantizer chose: the one
    of the same range (every node takes the single entry of a uniform quantizer)."""
    if index is None:
        return np.zeros(n, dtype=np.int64)
    own_step = q.step.detach().abs().double().numpy()
    own_bits = (integer_bits(q.bits, q.min_bits, q.max_bits) - 1).long().numpy()
    ranges = own_step * ((1 << own_bits) - 1)
    return np.searchsorted(step * ((1 << bits.astype(np.int64)) - 1),
                           ranges[index.numpy()]).astype(np.int64)


def _column(q, what: str) -> tuple[np.ndarray, int]:
    if not isinstance(q, ColumnQuantizer):
        raise A2QError(f"{what} is not quantized per column; cannot export")
    return q.step.detach().abs().double().view(-1).numpy(), q.width


def build_graph_export(ckpt: dict, *, fold: int = 0, split: str = "test",
                       data_root=None) -> tuple[dict, dict]:
    """(manifest without tensors, arrays) of fold ``fold``'s model on its ``split`` graphs."""
    from .export import EXPORTABLE_METHODS, _csr

    cfg, gd, models = model_from_checkpoint(ckpt, data_root=data_root)
    if gd.node_level:
        raise A2QError(f"--fold and --split are for graph-level runs; this run is node-level "
                       f"({cfg.dataset})")
    if cfg.method not in EXPORTABLE_METHODS:
        raise A2QError(f"export needs integer quantizers (methods {', '.join(EXPORTABLE_METHODS)}"
                       f"); this checkpoint is {cfg.method}")
    if not 0 <= fold < len(models):
        raise A2QError(f"--fold {fold} is outside the run's folds 0..{len(models) - 1}")
    if split not in SPLITS:
        raise A2QError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    model = models[fold]
    graphs = GraphBatches(gd.dataset)
    ids = dict(zip(SPLITS, graph_folds(cfg, graphs.y.numpy())[fold]))[split]
    if len(ids) == 0:
        raise A2QError(f"fold {fold}'s {split} split holds no graphs; nothing to export")
    b = graphs.gather(ids)
    if b.num_nodes == 0:
        raise A2QError(f"fold {fold}'s {split} graphs have no nodes; nothing to export")
    x = b.x
    if not torch.equal(x, x.round()) or x.min() < 0:
        raise A2QError("the input features are not a non-negative integer matrix; the "
                       "hardware path needs integer inputs (one-hot labels or degrees)")
    input_bits = max(1, int(x.max()).bit_length())
    if input_bits > 8:
        raise A2QError(f"the input needs {input_bits} bits; at most 8 are supported")
    with torch.no_grad():
        reference = model(x, b.edge_index, b.batch, b.num_graphs).argmax(1)
    # the pool entry torch's quantizer chose for each node, by its place in the sorted pool
    chosen = [conv.input_quant.last_index if isinstance(conv.input_quant,
                                                        NearestNeighborQuantizer) else None
              for conv in model.convs]

    n = b.num_nodes
    indptr, indices = _csr(b.edge_index, n, self_loops=False)
    arrays = {
        "indptr": indptr, "indices": indices, "graph_ptr": b.graph_ptr.numpy(),
        "graph_ids": b.graph_ids.numpy().astype(np.int64),
        "labels": b.y.numpy().astype(np.int64), "reference_pred": reference.numpy(),
        "x": x.numpy().astype(np.uint8),
    }
    layers = []
    for l, (conv, norm, out_q) in enumerate(
            zip(model.convs, model.norms, model.output_quants), start=1):
        p = f"layer{l}."
        w_step, w_bits = _column(conv.weight_quant, f"layer {l}'s weight")
        with torch.no_grad():
            wq = conv.weight_quant.codes(conv.weight).t().double().numpy()
        bn_scale = (norm.weight / torch.sqrt(norm.running_var + norm.eps)).detach().double()
        bn_shift = (norm.bias - norm.running_mean * bn_scale).detach().double()
        bn_scale, bn_shift = bn_scale.numpy(), bn_shift.numpy()
        # the sign of batch normalisation's scale goes into the weights: every fixed-point
        # scale is positive; a column whose scale is 0 keeps only its shift
        wq = np.where(bn_scale < 0, -wq, wq) * (bn_scale != 0)
        arrays[p + "weight"] = wq.astype(np.int8)
        arrays[p + "weight_step"], arrays[p + "bias"] = w_step, conv.bias.detach().double().numpy()
        arrays[p + "bn_scale"], arrays[p + "bn_shift"] = bn_scale, bn_shift
        arrays[p + "pool_step"], arrays[p + "pool_bits"] = _pool(conv.input_quant)
        arrays[p + "reference_selection"] = _selection_in_sorted_pool(
            conv.input_quant, chosen[l - 1], arrays[p + "pool_step"], arrays[p + "pool_bits"], n)
        arrays[p + "output_step"], out_bits = _column(out_q, f"layer {l}'s output")
        eps_fx = int(np.floor((1.0 + conv.eps.item()) * 2 ** EPS_FRAC + 0.5))
        if eps_fx < 0:
            raise A2QError(f"layer {l}: 1 + eps is negative; not supported by the hardware")
        L = {"in_dim": conv.in_channels, "out_dim": conv.out_channels, "eps_fx": eps_fx,
             "weight_bits": w_bits, "output_bits": out_bits,
             "pool_size": int(arrays[p + "pool_step"].size),
             "operand_bits": layers[-1]["output_bits"] if layers else 0}
        if l > 1:
            arrays[p + "operand_step"] = arrays[f"layer{l - 1}.output_step"]
        layers.append(L)
    readout = []
    for h, (head, q) in enumerate(zip(model.heads, model.head_quants)):
        p = f"readout{h}."
        w_step, w_bits = _column(q, f"readout head {h}'s weight")
        with torch.no_grad():
            arrays[p + "weight"] = q.codes(head.weight).t().numpy().astype(np.int8)
        arrays[p + "weight_step"] = w_step
        arrays[p + "bias"] = head.bias.detach().double().numpy()
        readout.append({"weight_bits": w_bits})
    derive_graph_constants(layers, readout, arrays, logit_frac=LOGIT_FRAC)
    manifest = {
        "task": "graph", "model": cfg.model, "method": cfg.method, "dataset": cfg.dataset,
        "seed": cfg.seed, "fold": fold, "split": split, "num_graphs": b.num_graphs,
        "num_nodes": n, "num_edges": int(indices.size), "num_classes": gd.num_classes,
        "input_bits": input_bits, "eps_frac": EPS_FRAC, "logit_frac": LOGIT_FRAC,
        "layers": layers, "readout": readout,
    }
    return manifest, arrays
