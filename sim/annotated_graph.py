"""The bitwidth-annotated graph: the folder format between software and hardware.

A folder with ``manifest.json`` and one ``.npy`` file per array (``docs/export-format.md``
documents every field). :func:`write_graph` writes it atomically and byte-for-byte
deterministically; :func:`read_graph` validates everything before returning it: names stay
inside the folder, arrays load with pickling disabled, sha256, dtype, shape and value ranges
are checked, and any problem raises :class:`GraphFormatError` naming the file and the field.
NumPy only: nothing here imports torch.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
from pathlib import Path, PurePosixPath

import numpy as np

from a2q.common import npy, strict_json
from a2q.common.choices import ENGINE_MODELS as MODELS
from a2q.common.choices import ORDERS
from a2q.common.files import atomic_folder

FORMAT = "a2q-annotated-graph"
VERSION = 3
MANIFEST = "manifest.json"
NORM_FRAC = 15  # normalisation constants: GCN round(2**15 / sqrt(deg)), GIN-0 2**15
EPS_FRAC = 15  # GIN: round((1 + eps) * 2**15)


class GraphFormatError(ValueError):
    """A malformed export; the message names the file and the field."""


def _npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a), allow_pickle=False)
    return buf.getvalue()


def manifest_digest(manifest: dict) -> str:
    """sha256 of the manifest's canonical JSON (sorted keys, no spaces), its own digest left out."""
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def seal(manifest: dict) -> dict:
    """The manifest with its ``manifest_sha256`` set (after any edit of its fields)."""
    return dict(manifest, manifest_sha256=manifest_digest(manifest))


def write_graph(out: str | os.PathLike, manifest: dict, arrays: dict[str, np.ndarray], *,
                check: bool = False) -> Path:
    """Write ``arrays`` (name -> array) and ``manifest`` (without ``tensors``) to ``out``.

    Files are written to a temporary sibling folder, then moved into place: a failure leaves
    nothing half-written. The same inputs give the same bytes. ``check``: read the folder back
    with :func:`read_graph` before it takes ``out``'s place, so that nothing the reader would
    refuse is ever written (the message names ``out``).
    """
    return write_export(out, manifest, arrays, format_name=FORMAT, version=VERSION,
                        reader=read_graph if check else None)


def write_export(out: str | os.PathLike, manifest: dict, arrays: dict[str, np.ndarray], *,
                 format_name: str, version: int, reader=None) -> Path:
    """:func:`write_graph` for any export format of this folder layout: ``format_name`` and
    ``version`` go into the manifest; ``reader`` (if given) reads the folder back first."""
    out = Path(out)
    with atomic_folder(out, command="a2q export") as tmp:
        tensors = {}
        for name in sorted(arrays):
            a = np.asarray(arrays[name])
            data = _npy_bytes(a)
            fname = f"{name}.npy"
            (tmp / fname).write_bytes(data)
            tensors[name] = {"file": fname, "dtype": str(a.dtype), "shape": list(a.shape),
                             "sha256": hashlib.sha256(data).hexdigest()}
        full = seal(dict(manifest, format=format_name, version=version, tensors=tensors))
        (tmp / MANIFEST).write_text(json.dumps(full, indent=2, sort_keys=True) + "\n")
        if reader is not None:
            try:
                reader(tmp)
            except GraphFormatError as exc:
                raise GraphFormatError(str(exc).replace(str(tmp), str(out))) from None
    return out


# ------------------------------------------------------------------------------- reading


class AnnotatedGraph:
    """A validated export: ``manifest`` (dict) and ``arrays`` (name -> ndarray)."""

    def __init__(self, path: Path, manifest: dict, arrays: dict[str, np.ndarray]):
        self.path, self.manifest, self.arrays = path, manifest, arrays

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    def __contains__(self, name: str) -> bool:
        return name in self.arrays

    @property
    def model(self) -> str:
        return self.manifest["model"]

    @property
    def combine_first(self) -> bool:
        """Every layer multiplies by W, then sums its neighbours' operands (GCN, GIN-0)."""
        return self.manifest["order"] == "combine-first"

    @property
    def layers(self) -> list[dict]:
        return self.manifest["layers"]

    @property
    def num_nodes(self) -> int:
        return self.manifest["num_nodes"]


def _fail(path: Path, field: str, what: str):
    raise GraphFormatError(f"{path}: field {field!r}: {what}")


def _safe_file(folder: Path, name: str, field: str) -> Path:
    p = PurePosixPath(name)
    if "\0" in name or len(os.fsencode(name)) > 255:
        _fail(folder / MANIFEST, field, f"{name[:40]!r}... is not a file name")
    if (not name or p.is_absolute() or ".." in p.parts or "\\" in name or len(p.parts) != 1):
        _fail(folder / MANIFEST, field, f"file name {name!r} leaves the export folder")
    target = folder / name
    if target.is_symlink():
        try:
            inside = folder.resolve() in target.resolve(strict=True).parents
        except (OSError, RuntimeError):  # a loop, or a link to nothing
            _fail(folder / MANIFEST, field, f"file {name!r} is a link that does not resolve")
        if not inside:
            _fail(folder / MANIFEST, field, f"file {name!r} is a link that leaves the export "
                                            "folder")
    return target


#: a manifest is a few KB; anything far larger is not one
MANIFEST_MAX_BYTES = 1 << 24


def _npy_max_bytes(dtype: str, shape: tuple) -> int:
    """The most bytes a ``.npy`` file of ``shape`` and ``dtype`` may take: its data and the
    longest header NumPy reads (64 KB)."""
    return math.prod(shape) * np.dtype(dtype).itemsize + 65536


def _regular_file(path: Path, max_bytes: int, field: str) -> None:
    """``path`` is a regular file (:func:`a2q.common.npy.regular_size`: never a FIFO, a
    device or a folder) of at most ``max_bytes``, never larger than its field can be."""
    try:
        size = npy.regular_size(path)
    except FileNotFoundError:
        raise GraphFormatError(f"{path}: field {field!r}: file missing") from None
    except (OSError, RuntimeError, npy.NpyError) as exc:
        what = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise GraphFormatError(f"{path}: field {field!r}: {what}") from None
    if size > max_bytes:
        raise GraphFormatError(f"{path}: field {field!r}: {size} bytes, more than the "
                               f"{max_bytes} it can hold")


def _tensor_entry(t, name: str, path: Path) -> None:
    """A ``tensors`` entry's own fields are what the writer puts there."""
    field = f"tensors.{name}"
    if not isinstance(t, dict):
        _fail(path, field, f"must be an object, got {type(t).__name__}")
    if not isinstance(t.get("file"), str):
        _fail(path, field + ".file", f"must be a file name, got {t.get('file')!r}")
    if not isinstance(t.get("dtype"), str):
        _fail(path, field + ".dtype", f"must be a string, got {t.get('dtype')!r}")
    shape = t.get("shape")
    if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        _fail(path, field + ".shape", f"must be a list of non-negative integers, got "
                                      f"{shape!r}")
    if not isinstance(t.get("sha256"), str) or not re.fullmatch(r"[0-9a-f]{64}", t["sha256"]):
        _fail(path, field + ".sha256", "must be 64 lowercase hex digits")


def _int_field(manifest: dict, key: str, path: Path, lo=None, hi=None, where=None,
               prefix: str = "") -> int:
    d = manifest if where is None else where
    v = d.get(key)
    if not isinstance(v, int) or isinstance(v, bool):
        _fail(path, prefix + key, f"must be an integer, got {v!r}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        _fail(path, prefix + key, f"{v} outside {lo}..{'' if hi is None else hi}")
    return v


def expected_tensors(manifest: dict) -> dict[str, tuple[str, tuple]]:
    """name -> (dtype, shape) that a manifest's model implies (the schema)."""
    n, e = manifest["num_nodes"], manifest["num_edges"]
    layers = manifest["layers"]
    f0 = layers[0]["in_dim"]
    spec = {
        "indptr": ("int64", (n + 1,)), "indices": ("int64", (e,)),
        "in_degree": ("int64", (n,)), "labels": ("int64", (n,)),
        "train_mask": ("bool", (n,)), "val_mask": ("bool", (n,)), "test_mask": ("bool", (n,)),
        "x": ("uint8", (n, f0)), "reference_pred": ("int64", (n,)),
    }
    combine_first = manifest["order"] == "combine-first"
    if combine_first:
        spec["gcn_norm"] = ("int64", (n,))
    for l, L in enumerate(layers, start=1):
        p = f"layer{l}."
        fi, fo = L["in_dim"], L["out_dim"]
        spec[p + "weight"] = ("int8", (fi, fo))
        spec[p + "weight_step"] = ("float64", (fo,))
        spec[p + "bias"] = ("float64", (fo,))
        spec[p + "bias_fx"] = ("int64", (fo,))
        spec[p + "out_scale_m"] = ("int64", (fo,))
        if L["per_node_input"]:
            for k, dt in (("node_bits", "uint8"), ("node_step", "float64"),
                          ("node_scale_m", "int64"), ("node_scale_sh", "int64"),
                          ("node_inv_m", "int64"), ("node_inv_sh", "int64")):
                spec[p + k] = (dt, (n,))
        op_dim = fo if combine_first else fi
        if L["per_node_operand"]:
            for k, dt in (("node_op_bits", "uint8"), ("node_op_step", "float64"),
                          ("node_op_m", "int64"), ("node_op_sh", "int64"),
                          ("op_coef", "int64")):
                spec[p + k] = (dt, (n,))
        elif L["operand_bits"]:
            spec[p + "operand_step"] = ("float64", (op_dim,))
        if combine_first:
            spec[p + "xw_scale_m"] = ("int64", (fo,))
        else:
            spec[p + "op_scale_m"] = ("int64", (fi,))
    return spec


def _check_manifest(m: dict, path: Path) -> None:
    if m.get("model") not in MODELS:
        _fail(path, "model", f"{m.get('model')!r} is not one of {', '.join(MODELS)}")
    if m.get("method") not in ("a2q", "uniform"):
        _fail(path, "method", f"{m.get('method')!r} is not one of a2q, uniform")
    _int_field(m, "seed", path)
    if m.get("order") not in ORDERS:
        _fail(path, "order", f"{m.get('order')!r} is not one of {', '.join(ORDERS)}")
    if m["model"] == "gcn" and m["order"] != "combine-first":
        _fail(path, "order", "a GCN is combine-first")
    cf = m["order"] == "combine-first"
    if m.get("self_loops") is not cf:
        _fail(path, "self_loops", f"must be {cf} for a {m['order']} model")
    for key, fixed_value in (("norm_frac", NORM_FRAC), ("eps_frac", EPS_FRAC)):
        if type(m.get(key)) is not int or m[key] != fixed_value:
            _fail(path, key, f"this format version fixes norm_frac = {NORM_FRAC} and "
                             f"eps_frac = {EPS_FRAC}, got {m.get(key)!r}")
    if not isinstance(m.get("dataset"), str) or not re.fullmatch(r"[\w.+-]{1,64}",
                                                                 m["dataset"]):
        _fail(path, "dataset", "must be a name of 1..64 letters, digits, '.', '+', '-', '_'")
    _int_field(m, "num_nodes", path, 1)
    _int_field(m, "num_edges", path, 0)
    _int_field(m, "num_classes", path, 1)
    _int_field(m, "input_bits", path, 1, 8)
    layers = m.get("layers")
    if not isinstance(layers, list) or not layers:
        _fail(path, "layers", "must be a non-empty list")
    for l, L in enumerate(layers, start=1):
        if not isinstance(L, dict):
            _fail(path, f"layers[{l - 1}]", "must be an object")
        at = f"layers[{l - 1}]."
        for k in ("in_dim", "out_dim"):
            _int_field(L, k, path, 1, where=L, prefix=at)
        _int_field(L, "weight_bits", path, 2, 8, where=L, prefix=at)
        _int_field(L, "operand_bits", path, 0, 8, where=L, prefix=at)
        shifts = ("xw_scale_sh", "out_scale_sh") if cf else (
            "op_scale_sh", "out_scale_sh")
        for k in shifts:
            _int_field(L, k, path, 0, 62, where=L, prefix=at)
        if not cf and l > 1 and not L["operand_bits"]:
            _fail(path, f"layers[{l - 1}].operand_bits", "GIN's hidden operand must be quantized")
        if cf and not L["operand_bits"]:
            _fail(path, f"layers[{l - 1}].operand_bits", "the operand XW must be quantized")
        if not cf or l > 1:
            if not L.get("per_node_input"):
                _fail(path, f"layers[{l - 1}].per_node_input", "must be true for this layer")
        if not isinstance(L.get("per_node_input"), bool):
            _fail(path, f"layers[{l - 1}].per_node_input", "must be true or false")
        if not isinstance(L.get("per_node_operand"), bool):
            _fail(path, f"layers[{l - 1}].per_node_operand", "must be true or false")
        if L["per_node_operand"]:
            if not cf:
                _fail(path, f"layers[{l - 1}].per_node_operand",
                      "per-node operand bits are defined for combine-first models only")
            _int_field(L, "op_coef_sh", path, 0, 62, where=L, prefix=at)
        want = "none" if l == len(layers) else "relu"
        if L.get("activation") != want:
            _fail(path, f"layers[{l - 1}].activation", f"must be {want!r} for this layer")
        if L.get("operand_signed") is not cf:
            _fail(path, f"layers[{l - 1}].operand_signed", f"must be {cf}")
        if not cf:
            _int_field(L, "eps_fx", path, 0, 1 << 20, where=L, prefix=at)
        if l > 1 and L["in_dim"] != layers[l - 2]["out_dim"]:
            _fail(path, f"layers[{l - 1}].in_dim", "does not match the previous out_dim")
    if layers[-1]["out_dim"] != m["num_classes"]:
        _fail(path, "num_classes", "does not match the last layer's out_dim")
    if not isinstance(m.get("tensors"), dict):
        _fail(path, "tensors", "must be an object")


def _check_values(g: AnnotatedGraph) -> None:
    a, m, folder = g.arrays, g.manifest, g.path
    n = m["num_nodes"]

    def bad(name, what):
        _fail(folder / f"{name}.npy", name, what)

    check_csr(folder, a["indptr"], a["indices"], m["num_edges"], n)
    if np.any(a["in_degree"] < 0):
        bad("in_degree", "negative degree")
    if np.any((a["labels"] < 0) | (a["labels"] >= m["num_classes"])):
        bad("labels", f"label outside 0..{m['num_classes'] - 1}")
    if np.any(a["x"] >= (1 << m["input_bits"])):
        bad("x", f"value does not fit input_bits = {m['input_bits']}")
    check_common_values(folder, a)
    if "gcn_norm" in a and np.any((a["gcn_norm"] < 1) | (a["gcn_norm"] > (1 << NORM_FRAC))):
        bad("gcn_norm", f"outside 1..2**{NORM_FRAC}")
    if m["model"] == "gin" and "gcn_norm" in a and np.any(a["gcn_norm"] != 1 << NORM_FRAC):
        bad("gcn_norm", f"a GIN sums its neighbours: every node's must be 2**{NORM_FRAC}")
    for l, L in enumerate(m["layers"], start=1):
        p = f"layer{l}."
        q = (1 << (L["weight_bits"] - 1)) - 1
        if np.any(np.abs(a[p + "weight"].astype(np.int64)) > q):
            bad(p + "weight", f"value outside -{q}..{q} ({L['weight_bits']}-bit signed)")
        if L["per_node_input"]:
            b = a[p + "node_bits"]
            if np.any((b < 1) | (b > 8)):
                bad(p + "node_bits", "bits outside 1..8")
        if L["per_node_operand"]:
            b = a[p + "node_op_bits"]
            if np.any((b < 2) | (b > L["operand_bits"])):
                bad(p + "node_op_bits", f"bits outside 2..operand_bits ({L['operand_bits']}): "
                                        "signed codes need 2")
            if np.any((a[p + "op_coef"] < 1) | (a[p + "op_coef"] > (1 << NORM_FRAC))):
                bad(p + "op_coef", f"outside 1..2**{NORM_FRAC}")


#: the graph-level export's format name (``a2q.sim.graph_batch``), named here so that each
#: reader can say which export it was given
GRAPH_BATCH_FORMAT = "a2q-graph-batch"


def read_manifest(path: str | os.PathLike) -> tuple[Path, Path, dict]:
    """(folder, manifest path, manifest) of an export folder, the manifest read strictly."""
    folder = Path(path)
    mpath = folder / MANIFEST
    if not (mpath.exists() or mpath.is_symlink()):
        raise GraphFormatError(f"{mpath}: missing (not an export folder)")
    _regular_file(mpath, MANIFEST_MAX_BYTES, "(the manifest)")
    try:
        manifest = strict_json.read(mpath)
    except strict_json.StrictJSONError as exc:
        raise GraphFormatError(f"{mpath}: {exc}") from None
    except OSError as exc:
        raise GraphFormatError(f"{mpath}: unreadable ({exc.strerror or exc})") from None
    if not isinstance(manifest, dict):
        _fail(mpath, "(root)", "must be a JSON object")
    return folder, mpath, manifest


def expect_format(manifest: dict, mpath: Path, format_name: str, version: int) -> None:
    """The manifest's ``format`` and ``version`` are ``format_name`` and ``version``; a
    node-level export where a graph-level one is expected (or the reverse) is named as such."""
    kinds = {FORMAT: "node-level export", GRAPH_BATCH_FORMAT: "graph-level export"}
    got = manifest.get("format")
    if got != format_name:
        if got in kinds:
            _fail(mpath, "format", f"a {kinds[got]} ({got}); this command reads "
                                   f"{kinds[format_name]}s ({format_name})")
        _fail(mpath, "format", f"expected {format_name!r}, got {got!r}")
    if type(manifest.get("version")) is not int or manifest["version"] != version:
        _fail(mpath, "version", f"unknown format version {manifest.get('version')!r} (this "
                                f"reader: {version})")
    if manifest.get("manifest_sha256") != manifest_digest(manifest):
        _fail(mpath, "manifest_sha256", "checksum mismatch: the manifest was changed")


def load_tensors(folder: Path, mpath: Path, manifest: dict,
                 spec: dict[str, tuple[str, tuple]]) -> dict[str, np.ndarray]:
    """The arrays ``spec`` (name -> (dtype, shape)) names, each checked against the manifest's
    ``tensors`` entry and its file (name, size, sha256, dtype, shape) before it is loaded."""
    tensors = manifest["tensors"]
    missing = sorted(set(spec) - set(tensors))
    if missing:
        _fail(mpath, f"tensors.{missing[0]}", "missing from the manifest")
    extra = sorted(set(tensors) - set(spec))
    if extra:
        _fail(mpath, f"tensors.{extra[0]}", "not part of this model's format")
    for name in spec:
        _tensor_entry(tensors[name], name, mpath)
    arrays = {}
    for name, (dtype, shape) in spec.items():
        t = tensors[name]
        if t["dtype"] != dtype:
            _fail(mpath, f"tensors.{name}.dtype", f"expected {dtype}, got {t['dtype']!r}")
        if t["shape"] != list(shape):
            _fail(mpath, f"tensors.{name}.shape", f"expected {list(shape)}, got {t['shape']}")
        f = _safe_file(folder, t["file"], f"tensors.{name}.file")
        _regular_file(f, _npy_max_bytes(dtype, shape), f"tensors.{name}")
        try:
            data = f.read_bytes()
        except OSError as exc:
            raise GraphFormatError(f"{f}: field 'tensors.{name}': "
                                   f"{'file missing' if not f.exists() else exc.strerror}") \
                from None
        if hashlib.sha256(data).hexdigest() != t["sha256"]:
            raise GraphFormatError(f"{f}: field 'tensors.{name}.sha256': checksum mismatch")
        try:
            arr = npy.loads(data)
        except npy.NpyError as exc:
            raise GraphFormatError(f"{f}: field 'tensors.{name}': {exc}") from None
        if str(arr.dtype) != dtype:
            raise GraphFormatError(f"{f}: field 'tensors.{name}.dtype': expected {dtype}, "
                                   f"the file holds {arr.dtype}")
        if tuple(arr.shape) != shape:
            raise GraphFormatError(f"{f}: field 'tensors.{name}.shape': expected "
                                   f"{list(shape)}, the file holds {list(arr.shape)}")
        arrays[name] = arr
    return arrays


def check_common_values(folder: Path, arrays: dict[str, np.ndarray]) -> None:
    """The checks every array of both export formats takes by its name: finite floats,
    positive steps, mantissas in 1..2^16 (per-node ones normalized, at least 2^15; a pool
    entry's step, whose shift is capped, 0..2^16) and shifts in 0..62."""
    def bad(name, what):
        _fail(folder / f"{name}.npy", name, what)

    for name, arr in arrays.items():
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            bad(name, "NaN or infinite value")
        if name.endswith(("_step",)) and np.any(arr <= 0):
            bad(name, "step must be positive")
        capped = name.endswith("pool_scale_m")
        if name.endswith("_m") and np.any((arr < int(not capped)) | (arr > (1 << 16))):
            bad(name, f"fixed-point mantissa outside {int(not capped)}..2**16")
        if name.split(".")[-1].startswith(("node_", "pool_")) and name.endswith("_m") and \
                not capped and np.any(arr < (1 << 15)):  # fixed() normalizes them; the engine relies on it
            bad(name, "per-node mantissa below 2**15 (per-node constants are normalized)")
        if name.endswith("_sh") and np.any((arr < 0) | (arr > 62)):
            bad(name, "fixed-point shift outside 0..62")


def check_csr(folder: Path, indptr: np.ndarray, indices: np.ndarray, num_edges: int,
              num_nodes: int) -> None:
    """``indptr`` runs monotonically from 0 to ``num_edges``; ``indices`` name nodes."""
    if indptr[0] != 0 or indptr[-1] != num_edges:
        _fail(folder / "indptr.npy", "indptr",
              f"must start at 0 and end at num_edges ({num_edges})")
    if np.any(np.diff(indptr) < 0):
        _fail(folder / "indptr.npy", "indptr", "is not monotone")
    if indices.size and (indices.min() < 0 or indices.max() >= num_nodes):
        _fail(folder / "indices.npy", "indices", f"node index out of range 0..{num_nodes - 1}")


def read_graph(path: str | os.PathLike) -> AnnotatedGraph:
    """Load and validate an export folder (see module docstring)."""
    folder, mpath, manifest = read_manifest(path)
    expect_format(manifest, mpath, FORMAT, VERSION)
    _check_manifest(manifest, mpath)
    arrays = load_tensors(folder, mpath, manifest, expected_tensors(manifest))
    g = AnnotatedGraph(folder, manifest, arrays)
    _check_values(g)
    return g
