"""The graph-level export: a trained graph classifier and a batch of graphs to classify.

The folder layout of :mod:`a2q.sim.annotated_graph` (``manifest.json`` with every array under
sha256, one ``.npy`` per array, written atomically), format ``a2q-graph-batch``
(``docs/export-format.md``). It holds a graph-level GIN as it was trained: per layer the
Nearest-Neighbor pool of (step, bits) pairs sorted by their range and the integer thresholds
that choose among them, 4-bit weights with batch normalisation folded into the fixed-point
constants, the output's per-column step; the readout's heads; and a batch of graphs (for
example one fold's test graphs) stacked block-diagonally in CSR with their boundaries
``graph_ptr``. :func:`read_graph_batch` validates all of it and raises
:class:`~a2q.sim.annotated_graph.GraphFormatError` naming the file and the field.
NumPy only.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from .annotated_graph import (
    EPS_FRAC,
    GRAPH_BATCH_FORMAT,
    GraphFormatError,
    _fail,
    _int_field,
    check_common_values,
    check_csr,
    expect_format,
    load_tensors,
    read_manifest,
    write_export,
)
from .export_constants import PRODUCT_BITS

FORMAT = GRAPH_BATCH_FORMAT
VERSION = 1
#: fraction bits of the logits (``logit_frac``): logits are real * 2^16
LOGIT_FRAC = 16
METHODS = ("a2q", "uniform")


class GraphBatchExport:
    """A validated graph-level export: ``manifest`` (dict) and ``arrays`` (name -> ndarray)."""

    def __init__(self, path: Path, manifest: dict, arrays: dict[str, np.ndarray]):
        self.path, self.manifest, self.arrays = path, manifest, arrays

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    @property
    def layers(self) -> list[dict]:
        return self.manifest["layers"]

    @property
    def model(self) -> str:
        return self.manifest["model"]

    @property
    def num_nodes(self) -> int:
        return self.manifest["num_nodes"]

    @property
    def num_graphs(self) -> int:
        return self.manifest["num_graphs"]


def write_graph_batch(out: str | os.PathLike, manifest: dict, arrays: dict) -> Path:
    """Write a graph-level export (read back with :func:`read_graph_batch` before it takes
    ``out``'s place: nothing the reader would refuse is ever written)."""
    return write_export(out, manifest, arrays, format_name=FORMAT, version=VERSION,
                        reader=read_graph_batch)


def expected_tensors(m: dict) -> dict[str, tuple[str, tuple]]:
    """name -> (dtype, shape) that a graph-level manifest implies (the schema)."""
    n, e, g, c = m["num_nodes"], m["num_edges"], m["num_graphs"], m["num_classes"]
    layers = m["layers"]
    spec = {
        "indptr": ("int64", (n + 1,)), "indices": ("int64", (e,)),
        "graph_ptr": ("int64", (g + 1,)), "graph_ids": ("int64", (g,)),
        "labels": ("int64", (g,)), "reference_pred": ("int64", (g,)),
        "x": ("uint8", (n, layers[0]["in_dim"])),
    }
    for l, L in enumerate(layers, start=1):
        p, fi, fo, k = f"layer{l}.", L["in_dim"], L["out_dim"], L["pool_size"]
        spec.update({
            p + "weight": ("int8", (fi, fo)), p + "weight_step": ("float64", (fo,)),
            p + "bias": ("float64", (fo,)), p + "bn_scale": ("float64", (fo,)),
            p + "bn_shift": ("float64", (fo,)), p + "output_step": ("float64", (fo,)),
            p + "op_scale_m": ("int64", (fi,)), p + "out_scale_m": ("int64", (fo,)),
            p + "out_scale_sh": ("int64", (fo,)),
            p + "bias_fx": ("int64", (fo,)),
            p + "pool_step": ("float64", (k,)), p + "pool_bits": ("uint8", (k,)),
            p + "pool_threshold": ("int64", (k - 1,)),
            p + "reference_selection": ("int64", (n,)),
            p + "pool_scale_m": ("int64", (k,)), p + "pool_scale_sh": ("int64", (k,)),
            p + "pool_inv_m": ("int64", (k,)), p + "pool_inv_sh": ("int64", (k,)),
        })
        if l > 1:
            spec[p + "operand_step"] = ("float64", (fi,))
    for h in range(len(layers) + 1):
        p = f"readout{h}."
        dim = layers[0]["in_dim"] if h == 0 else layers[h - 1]["out_dim"]
        spec.update({
            p + "weight": ("int8", (dim, c)), p + "weight_step": ("float64", (c,)),
            p + "bias": ("float64", (c,)), p + "in_scale_m": ("int64", (dim,)),
            p + "scale_m": ("int64", (c,)), p + "scale_sh": ("int64", (c,)),
        })
    spec["readout.bias_fx"] = ("int64", (c,))
    return spec


def _check_manifest(m: dict, path: Path) -> None:
    if m.get("task") != "graph":
        _fail(path, "task", f"must be 'graph', got {m.get('task')!r}")
    if m.get("model") != "gin":
        _fail(path, "model", f"graph-level exports hold a GIN, got {m.get('model')!r}")
    if m.get("method") not in METHODS:
        _fail(path, "method", f"{m.get('method')!r} is not one of {', '.join(METHODS)}")
    if not isinstance(m.get("dataset"), str) or not re.fullmatch(r"[\w.+-]{1,64}",
                                                                 m["dataset"]):
        _fail(path, "dataset", "must be a name of 1..64 letters, digits, '.', '+', '-', '_'")
    if m.get("split") not in ("train", "val", "test"):
        _fail(path, "split", f"must be train, val or test, got {m.get('split')!r}")
    _int_field(m, "seed", path)
    _int_field(m, "fold", path, 0)
    _int_field(m, "num_graphs", path, 1)
    _int_field(m, "num_nodes", path, 1)
    _int_field(m, "num_edges", path, 0)
    _int_field(m, "num_classes", path, 2)
    _int_field(m, "input_bits", path, 1, 8)
    for key, value in (("eps_frac", EPS_FRAC), ("logit_frac", LOGIT_FRAC)):
        if type(m.get(key)) is not int or m[key] != value:
            _fail(path, key, f"this format version fixes {key} = {value}, got {m.get(key)!r}")
    layers = m.get("layers")
    if not isinstance(layers, list) or not layers:
        _fail(path, "layers", "must be a non-empty list")
    for l, L in enumerate(layers, start=1):
        at = f"layers[{l - 1}]."
        if not isinstance(L, dict):
            _fail(path, f"layers[{l - 1}]", "must be an object")
        for k in ("in_dim", "out_dim"):
            _int_field(L, k, path, 1, 1 << 16, where=L, prefix=at)
        _int_field(L, "pool_size", path, 1, 4096, where=L, prefix=at)
        _int_field(L, "weight_bits", path, 2, 8, where=L, prefix=at)
        _int_field(L, "operand_bits", path, 0 if l == 1 else 1, 0 if l == 1 else 8, where=L,
                   prefix=at)
        _int_field(L, "output_bits", path, 1, 8, where=L, prefix=at)
        _int_field(L, "eps_fx", path, 0, 1 << 20, where=L, prefix=at)
        _int_field(L, "op_scale_sh", path, 0, 62, where=L, prefix=at)
        if l > 1 and L["in_dim"] != layers[l - 2]["out_dim"]:
            _fail(path, at + "in_dim", "does not match the previous out_dim")
        if l > 1 and L["operand_bits"] != layers[l - 2]["output_bits"]:
            _fail(path, at + "operand_bits", "does not match the previous output_bits")
    readout = m.get("readout")
    if not isinstance(readout, list) or len(readout) != len(layers) + 1:
        _fail(path, "readout", f"must be a list of {len(layers) + 1} heads (the input's and "
                               "each layer's)")
    for h, R in enumerate(readout):
        if not isinstance(R, dict):
            _fail(path, f"readout[{h}]", "must be an object")
        _int_field(R, "weight_bits", path, 2, 8, where=R, prefix=f"readout[{h}].")
        _int_field(R, "in_scale_sh", path, 0, 62, where=R, prefix=f"readout[{h}].")
    if not isinstance(m.get("tensors"), dict):
        _fail(path, "tensors", "must be an object")


def _check_values(g: GraphBatchExport) -> None:
    a, m, folder = g.arrays, g.manifest, g.path
    n = m["num_nodes"]

    def bad(name, what):
        _fail(folder / f"{name}.npy", name, what)

    check_common_values(folder, a)
    ip, ix, gp = a["indptr"], a["indices"], a["graph_ptr"]
    check_csr(folder, ip, ix, m["num_edges"], n)
    if gp[0] != 0 or gp[-1] != n:
        bad("graph_ptr", f"graph boundaries must start at 0 and end at num_nodes ({n}), got "
                         f"{int(gp[0])} .. {int(gp[-1])}")
    if np.any(np.diff(gp) < 0):
        bad("graph_ptr", "graph boundaries are not monotone")
    if ix.size:  # every edge stays inside its target's graph
        graph_of = np.repeat(np.arange(m["num_graphs"]), np.diff(gp))
        target = np.repeat(np.arange(n), np.diff(ip))
        crossing = np.flatnonzero(graph_of[ix] != graph_of[target])
        if crossing.size:
            i = int(crossing[0])
            bad("indices", f"edge {int(ix[i])} -> {int(target[i])} joins graphs "
                           f"{int(graph_of[ix[i]])} and {int(graph_of[target[i]])}")
    for name in ("labels", "reference_pred"):
        if np.any((a[name] < 0) | (a[name] >= m["num_classes"])):
            bad(name, f"class outside 0..{m['num_classes'] - 1}")
    if np.any(a["x"] >= (1 << m["input_bits"])):
        bad("x", f"value does not fit input_bits = {m['input_bits']}")
    for l, L in enumerate(m["layers"], start=1):
        p = f"layer{l}."
        q = (1 << (L["weight_bits"] - 1)) - 1
        if np.any(np.abs(a[p + "weight"].astype(np.int64)) > q):
            bad(p + "weight", f"value outside -{q}..{q} ({L['weight_bits']}-bit signed)")
        bits = a[p + "pool_bits"]
        if np.any((bits < 1) | (bits > 8)):
            bad(p + "pool_bits", "bits outside 1..8")
        chosen = a[p + "reference_selection"]
        if np.any((chosen < 0) | (chosen >= bits.size)):
            bad(p + "reference_selection", f"entry outside 0..{bits.size - 1}")
        sh = a[p + "pool_scale_sh"]
        if np.any((sh < 0) | (sh > PRODUCT_BITS)):
            bad(p + "pool_scale_sh", f"outside 0..{PRODUCT_BITS}")
        t = a[p + "pool_threshold"]
        if np.any(np.diff(t) < 0):
            bad(p + "pool_threshold", "the pool is not sorted: its thresholds decrease")
        if t.size and (t[0] < 0 or t[-1] >= 1 << 62):
            bad(p + "pool_threshold", "threshold outside 0..2**62")
        q_max = a[p + "pool_step"] * ((1 << bits.astype(np.int64)) - 1)
        if np.any(np.diff(q_max) < 0):
            bad(p + "pool_step", "the pool is not sorted by its range step * (2^bits - 1)")
    for h, R in enumerate(m["readout"]):
        p = f"readout{h}."
        q = (1 << (R["weight_bits"] - 1)) - 1
        if np.any(np.abs(a[p + "weight"].astype(np.int64)) > q):
            bad(p + "weight", f"value outside -{q}..{q} ({R['weight_bits']}-bit signed)")


def read_graph_batch(path: str | os.PathLike) -> GraphBatchExport:
    """Load and validate a graph-level export folder (see module docstring)."""
    folder, mpath, manifest = read_manifest(path)
    expect_format(manifest, mpath, FORMAT, VERSION)
    _check_manifest(manifest, mpath)
    arrays = load_tensors(folder, mpath, manifest, expected_tensors(manifest))
    g = GraphBatchExport(folder, manifest, arrays)
    _check_values(g)
    return g


def export_kind(path: str | os.PathLike) -> str:
    """``"graph"`` for a graph-level export folder, ``"node"`` for anything else (whose own
    reader then names what is wrong)."""
    try:
        _, _, manifest = read_manifest(path)
    except GraphFormatError:
        return "node"
    return "graph" if manifest.get("format") == FORMAT else "node"
