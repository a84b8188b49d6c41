"""Random valid bitwidth-annotated graphs for tests (NumPy only, no training)."""

import numpy as np

from a2q.sim.annotated_graph import EPS_FRAC, NORM_FRAC
from a2q.sim.export_constants import derive_constants


def random_export(rng: np.random.Generator, model: str, *, n=None, f0=None, hidden=None,
                  classes=None, node_operand: bool = False,
                  order: str | None = None) -> tuple[dict, dict]:
    """(manifest without tensors, arrays) of a random 2-layer GCN or GIN export (``order``:
    "combine-first" makes a GIN a GIN-0 on the GCN datapath; None: the model's own);
    ``node_operand`` (combine-first): every layer's operand with per-node bits (2..8) and
    steps."""
    order = order or ("combine-first" if model == "gcn" else "aggregate-first")
    n = n or int(rng.integers(1, 40))
    f0 = f0 or int(rng.integers(1, 20))
    hidden = hidden or int(rng.integers(1, 10))
    classes = classes or int(rng.integers(1, 6))
    gcn = order == "combine-first"  # the GCN datapath
    e = int(rng.integers(0, 4 * n + 1))
    src, dst = rng.integers(0, n, e), rng.integers(0, n, e)
    keep = src != dst
    src, dst = src[keep], dst[keep]
    in_degree = np.bincount(dst, minlength=n).astype(np.int64)
    if gcn:
        src = np.concatenate([src, np.arange(n)])
        dst = np.concatenate([dst, np.arange(n)])
    by_target = np.lexsort((src, dst))
    indices = src[by_target].astype(np.int64)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(dst, minlength=n), out=indptr[1:])
    input_bits = int(rng.integers(1, 4))
    arrays = {
        "indptr": indptr, "indices": indices, "in_degree": in_degree,
        "labels": rng.integers(0, classes, n).astype(np.int64),
        "train_mask": rng.random(n) < 0.3, "val_mask": rng.random(n) < 0.3,
        "test_mask": rng.random(n) < 0.5,
        "x": rng.integers(0, 1 << input_bits, (n, f0)).astype(np.uint8),
        "reference_pred": rng.integers(0, classes, n).astype(np.int64),
    }
    if model == "gcn":
        arrays["gcn_norm"] = np.floor(2.0 ** NORM_FRAC / np.sqrt(np.diff(indptr)) + 0.5).astype(
            np.int64)
    elif gcn:  # GIN-0 sums
        arrays["gcn_norm"] = np.full(n, 1 << NORM_FRAC, dtype=np.int64)
    dims = [(f0, hidden), (hidden, classes)]
    op_steps = [rng.uniform(0.05, 1.0, (fo if gcn else fi)) for fi, fo in dims]
    layers = []
    for l, (fi, fo) in enumerate(dims, start=1):
        p = f"layer{l}."
        wb = int(rng.integers(2, 9))
        q = (1 << (wb - 1)) - 1
        w_step = rng.uniform(0.01, 0.5, fo)
        bias = rng.normal(0, 0.5, fo)
        arrays[p + "weight"] = rng.integers(-q, q + 1, (fi, fo)).astype(np.int8)
        arrays[p + "weight_step"] = w_step
        arrays[p + "bias"] = bias
        per_node = (not gcn) or l > 1
        L = {"in_dim": fi, "out_dim": fo, "activation": "relu" if l == 1 else "none",
             "per_node_input": per_node, "weight_bits": wb, "operand_signed": gcn}
        if per_node:
            arrays[p + "node_bits"] = rng.integers(1, 9, n).astype(np.uint8)
            arrays[p + "node_step"] = rng.uniform(0.01, 2.0, n)
        L["per_node_operand"] = gcn and node_operand
        if L["per_node_operand"]:
            arrays[p + "node_op_bits"] = rng.integers(2, 9, n).astype(np.uint8)
            arrays[p + "node_op_step"] = rng.uniform(0.05, 1.0, n)
            L["operand_bits"] = int(arrays[p + "node_op_bits"].max())
        elif gcn or l > 1:
            L["operand_bits"] = int(rng.integers(2, 9))
            arrays[p + "operand_step"] = op_steps[l - 1]
        else:
            L["operand_bits"] = 0
        if not gcn:
            L["eps_fx"] = int(rng.integers(0, 2 << EPS_FRAC))
        layers.append(L)
    derive_constants(model, order, layers, arrays)
    manifest = {"model": model, "method": "a2q", "dataset": "random", "seed": 0,
                "num_nodes": n, "num_edges": int(indices.size), "num_classes": classes,
                "input_bits": input_bits, "order": order, "self_loops": gcn, "norm_frac": NORM_FRAC,
                "eps_frac": EPS_FRAC, "layers": layers}
    return manifest, arrays


def random_graph_export(rng: np.random.Generator, *, graphs=None, f0=None, hidden=None,
                        classes=None, layers=None, pool=None) -> tuple[dict, dict]:
    """(manifest without tensors, arrays) of a random graph-level GIN export: ``graphs``
    graphs of 0..12 nodes (at least one node in all), edges only inside each graph, a
    Nearest-Neighbor pool of ``pool`` entries sorted by range per layer."""
    from a2q.sim.export_constants import derive_graph_constants
    from a2q.sim.graph_batch import LOGIT_FRAC

    graphs = graphs or int(rng.integers(1, 6))
    f0 = f0 or int(rng.integers(1, 8))
    hidden = hidden or int(rng.integers(1, 8))
    classes = classes or int(rng.integers(2, 5))
    layers = layers or int(rng.integers(1, 4))
    sizes = rng.integers(0, 13, graphs)
    sizes[rng.integers(0, graphs)] = max(1, sizes.max())
    graph_ptr = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    n = int(graph_ptr[-1])
    src, dst = [], []
    for g in range(graphs):
        lo, size = graph_ptr[g], sizes[g]
        if size > 1:
            e = int(rng.integers(0, 3 * size))
            s, d = rng.integers(lo, lo + size, e), rng.integers(lo, lo + size, e)
            keep = s != d
            src.append(s[keep])
            dst.append(d[keep])
    src = np.concatenate(src or [np.zeros(0, np.int64)])
    dst = np.concatenate(dst or [np.zeros(0, np.int64)])
    order = np.lexsort((src, dst))
    indices = src[order].astype(np.int64)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(dst, minlength=n), out=indptr[1:])
    input_bits = int(rng.integers(1, 3))
    arrays = {
        "indptr": indptr, "indices": indices, "graph_ptr": graph_ptr,
        "graph_ids": np.arange(graphs, dtype=np.int64),
        "labels": rng.integers(0, classes, graphs).astype(np.int64),
        "reference_pred": rng.integers(0, classes, graphs).astype(np.int64),
        "x": rng.integers(0, 1 << input_bits, (n, f0)).astype(np.uint8),
    }
    spec, readout = [], []
    for l in range(1, layers + 1):
        p, fi = f"layer{l}.", f0 if l == 1 else hidden
        wb = int(rng.integers(2, 9))
        q = (1 << (wb - 1)) - 1
        m = pool or int(rng.integers(1, 9))
        bits = rng.integers(1, 9, m)
        step = rng.uniform(0.02, 2.0, m)
        by_range = np.argsort(step * ((1 << bits) - 1), kind="stable")
        arrays.update({
            p + "weight": rng.integers(-q, q + 1, (fi, hidden)).astype(np.int8),
            p + "weight_step": rng.uniform(0.01, 0.5, hidden),
            p + "bias": rng.normal(0, 0.5, hidden),
            p + "bn_scale": np.abs(rng.normal(1, 0.3, hidden)) + 0.05,
            p + "bn_shift": rng.normal(0, 0.5, hidden),
            p + "output_step": rng.uniform(0.05, 1.0, hidden),
            p + "pool_step": step[by_range], p + "pool_bits": bits[by_range].astype(np.uint8),
            p + "reference_selection": rng.integers(0, m, n).astype(np.int64),
        })
        if l > 1:
            arrays[p + "operand_step"] = arrays[f"layer{l - 1}.output_step"]
        out_bits = int(rng.integers(1, 9))
        spec.append({"in_dim": fi, "out_dim": hidden, "pool_size": m, "weight_bits": wb,
                     "operand_bits": spec[-1]["output_bits"] if spec else 0,
                     "output_bits": out_bits, "eps_fx": int(rng.integers(0, 1 << 16))})
    for h in range(layers + 1):
        p, dim = f"readout{h}.", f0 if h == 0 else hidden
        wb = int(rng.integers(2, 9))
        q = (1 << (wb - 1)) - 1
        arrays.update({p + "weight": rng.integers(-q, q + 1, (dim, classes)).astype(np.int8),
                       p + "weight_step": rng.uniform(0.01, 0.5, classes),
                       p + "bias": rng.normal(0, 0.5, classes)})
        readout.append({"weight_bits": wb})
    derive_graph_constants(spec, readout, arrays, logit_frac=LOGIT_FRAC)
    manifest = {"task": "graph", "model": "gin", "method": "a2q", "dataset": "random",
                "seed": 0, "fold": 0, "split": "test", "num_graphs": graphs, "num_nodes": n,
                "num_edges": int(indices.size), "num_classes": classes,
                "input_bits": input_bits, "eps_frac": EPS_FRAC, "logit_frac": LOGIT_FRAC,
                "layers": spec, "readout": readout}
    return manifest, arrays
