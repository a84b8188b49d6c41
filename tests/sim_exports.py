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
