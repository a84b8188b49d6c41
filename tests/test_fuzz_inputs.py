"""Structure-aware fuzzing of every reader: exports (JSON edits, ``.npy`` header edits, value
edits, byte edits, checksums recomputed or not) through ``a2q golden``, checkpoints (archive
bytes, fields, parameters) through ``a2q eval``, and a user's unit arrays (dtypes, shapes,
values, headers) through ``a2q sim``'s checks. The invariant: one line, exit status 1 and
nothing written, or a correct result. ``A2Q_FUZZ_EXAMPLES`` sets the examples per reader
(``make regress``: 2000)."""

import hashlib
import io
import itertools
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from a2q.app.cli import main
from a2q.sim import unit_run
from a2q.sim.annotated_graph import read_graph, seal, write_graph
from a2q.sim.user_arrays import InputError

from .sim_exports import random_export, random_graph_export
from .test_bad_input import tree
from .test_golden_bounds import reference

FUZZ = int(os.environ.get("A2Q_FUZZ_EXAMPLES", "60"))
SETTINGS = settings(max_examples=FUZZ, deadline=None, suppress_health_check=list(HealthCheck),
                    database=None)

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.sampled_from([0, 1, -1, 2, 8, 62, 63, 2 ** 31, 2 ** 63,
                                                 -2 ** 63, 10 ** 30]) | st.integers()
    | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3),
    max_leaves=6)
DTYPES = ["|u1", "|i1", "<i8", "<u8", "<f8", "<f4", "|b1", ">i8", "<i4", "|O", "<U3", "|V8"]


def run_checked(argv, root: Path, capsys) -> int:
    """Run the command in ``root``'s tree; a refusal must be one line and leave the tree
    as it was."""
    before = tree(root)
    capsys.readouterr()
    rc = main(argv)
    err = capsys.readouterr().err
    if rc != 0:
        assert rc == 1 and err.count("\n") == 1 and err.startswith("a2q: error: "), err
        assert "weights_only" not in err
        assert tree(root) == before
    event("accepted" if rc == 0 else "refused")
    return rc


# ------------------------------------------------------------------ exports


def paths(obj, prefix=()):
    """Every (key path) in a JSON object."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield prefix + (k,)
            yield from paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield prefix + (i,)
            yield from paths(v, prefix + (i,))


def json_edit(d: Path, data) -> None:
    m = json.loads((d / "manifest.json").read_text())
    where = data.draw(st.sampled_from(sorted(paths(m), key=str)))
    parent = m
    for k in where[:-1]:
        parent = parent[k]
    action = data.draw(st.sampled_from(["set", "delete", "add"]))
    if action == "delete" and isinstance(parent, dict):
        del parent[where[-1]]
    elif action == "add" and isinstance(parent, dict):
        parent[data.draw(st.text(max_size=6))] = data.draw(JSON_VALUES)
    else:
        parent[where[-1]] = data.draw(JSON_VALUES)
    text = json.dumps(seal(m) if data.draw(st.booleans()) else m)
    (d / "manifest.json").write_text(text)


def rewrite_file(d: Path, name: str, raw: bytes, data) -> None:
    """Tensor ``name``'s file holds ``raw``; checksums recomputed unless the draw says not."""
    (d / f"{name}.npy").write_bytes(raw)
    if data.draw(st.integers(0, 3)) > 0:  # mostly recomputed: the checks past the checksum
        m = json.loads((d / "manifest.json").read_text())
        m["tensors"][name]["sha256"] = hashlib.sha256(raw).hexdigest()
        (d / "manifest.json").write_text(json.dumps(seal(m)))


def header_edit(d: Path, name: str, data) -> None:
    raw = (d / f"{name}.npy").read_bytes()
    a = np.load(io.BytesIO(raw))
    shape = data.draw(st.one_of(
        st.just(a.shape), st.lists(st.integers(0, 40), max_size=3).map(tuple),
        st.lists(st.sampled_from([0, 1, 10 ** 6, 10 ** 12, 2 ** 62]), min_size=1,
                 max_size=3).map(tuple)))
    header = {"descr": data.draw(st.sampled_from([a.dtype.str, *DTYPES])),
              "fortran_order": data.draw(st.booleans()), "shape": shape}
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    rewrite_file(d, name, buf.getvalue() + a.tobytes(), data)


def value_edit(d: Path, name: str, data) -> None:
    a = np.load(d / f"{name}.npy")
    if a.size == 0:
        return
    flat = a.reshape(-1)
    if a.dtype.kind == "f":
        choices = [np.nan, np.inf, -np.inf, 0.0, -1.0, 1e308, 5e-324]
    elif a.dtype.kind == "b":
        choices = [True, False]
    else:
        info = np.iinfo(a.dtype)
        choices = [info.min, info.max, 0, -1 if info.min < 0 else 1, 1 << 15, (1 << 16) + 1,
                   62, 63]
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, flat.size - 1))
        v = data.draw(st.sampled_from(choices))
        try:
            flat[i] = v
        except OverflowError:
            flat[i] = 0
    buf = io.BytesIO()
    np.save(buf, a)
    rewrite_file(d, name, buf.getvalue(), data)


def byte_edit(d: Path, data) -> None:
    files = sorted(p.name for p in d.iterdir() if not p.name.startswith("."))
    f = d / data.draw(st.sampled_from(files))
    raw = bytearray(f.read_bytes())
    kind = data.draw(st.sampled_from(["flip", "truncate", "append"]))
    if kind == "flip" and raw:
        raw[data.draw(st.integers(0, len(raw) - 1))] ^= data.draw(st.integers(1, 255))
    elif kind == "truncate":
        raw = raw[:data.draw(st.integers(0, max(0, len(raw) - 1)))]
    else:
        raw += bytes(data.draw(st.binary(min_size=1, max_size=16)))
    f.write_bytes(bytes(raw))


@SETTINGS
@given(seed=st.integers(0, 2 ** 16), model=st.sampled_from(["gcn", "gcn-node", "gin"]),
       kind=st.sampled_from(["json", "header", "value", "bytes"]), data=st.data())
def test_fuzzed_exports(tmp_path_factory, capsys, seed, model, kind, data):
    root = tmp_path_factory.mktemp("export")
    man, arr = random_export(np.random.default_rng(seed), model.split("-")[0],
                             node_operand=model.endswith("node"), n=8)
    d = write_graph(root / "graph", man, arr)
    name = data.draw(st.sampled_from(sorted(arr)))
    {"json": lambda: json_edit(d, data), "header": lambda: header_edit(d, name, data),
     "value": lambda: value_edit(d, name, data), "bytes": lambda: byte_edit(d, data)}[kind]()
    out = root / "out"
    if run_checked(["golden", str(d), "--out", str(out)], root, capsys) == 0:
        g = read_graph(d)
        want = reference(g)
        last = f"layer{len(g.layers)}.output"
        assert np.load(out / "logits.npy").tolist() == want[last]
        summary = json.loads((out / "summary.json").read_text(),
                             parse_constant=lambda c: pytest.fail(c))
        assert summary["test_acc"] is None or 0 <= summary["test_acc"] <= 100


@SETTINGS
@given(seed=st.integers(0, 2 ** 16), kind=st.sampled_from(["json", "header", "value", "bytes"]),
       data=st.data())
def test_fuzzed_graph_level_exports(tmp_path_factory, capsys, seed, kind, data):
    from a2q.sim.graph_batch import read_graph_batch, write_graph_batch

    from .test_graph_export import reference_logits

    root = tmp_path_factory.mktemp("graph-export")
    man, arr = random_graph_export(np.random.default_rng(seed), graphs=3)
    d = write_graph_batch(root / "graph", man, arr)
    name = data.draw(st.sampled_from(sorted(arr)))
    {"json": lambda: json_edit(d, data), "header": lambda: header_edit(d, name, data),
     "value": lambda: value_edit(d, name, data), "bytes": lambda: byte_edit(d, data)}[kind]()
    out = root / "out"
    if run_checked(["golden", str(d), "--out", str(out)], root, capsys) == 0:
        g = read_graph_batch(d)
        want, _ = reference_logits(g.manifest, g.arrays, by_threshold=True)
        assert np.load(out / "logits.npy").tolist() == want


# ------------------------------------------------------------------ checkpoints


def _checkpoint_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


TENSORS = st.sampled_from(["shape", "dtype", "nan", "scalar", "missing", "extra", "list"])


@SETTINGS
@given(kind=st.sampled_from(["bytes", "top", "config", "state"]), data=st.data())
def test_fuzzed_checkpoints(tmp_path_factory, capsys, trained, kind, data):
    root = tmp_path_factory.mktemp("ckpt")
    obj = {**trained, "config": dict(trained["config"]),
           "state": {k: v.clone() for k, v in trained["state"].items()}}
    if kind == "top":
        key = data.draw(st.sampled_from(["format", "version", "task", "config", "state"]))
        if data.draw(st.booleans()):
            del obj[key]
        else:
            obj[key] = data.draw(JSON_VALUES)
    elif kind == "config":
        key = data.draw(st.sampled_from(sorted(obj["config"])))
        obj["config"][key] = data.draw(JSON_VALUES | st.sampled_from([float("nan"), -1, 0,
                                                                      10 ** 9, "gat"]))
    elif kind == "state":
        key = data.draw(st.sampled_from(sorted(obj["state"])))
        t = obj["state"][key]
        how = data.draw(TENSORS)
        if how == "shape":
            obj["state"][key] = torch.zeros(data.draw(st.lists(st.integers(0, 5), max_size=3)))
        elif how == "dtype":
            obj["state"][key] = t.to(data.draw(st.sampled_from([torch.int64, torch.bool,
                                                                torch.float16])))
        elif how == "nan" and t.is_floating_point() and t.numel():
            t.view(-1)[0] = float("nan")
        elif how == "scalar":
            obj["state"][key] = data.draw(JSON_VALUES)
        elif how == "missing":
            del obj["state"][key]
        elif how == "extra":
            obj["state"]["extra." + key] = t
        elif how == "list":
            obj["state"] = [obj["state"]]
    raw = bytearray(_checkpoint_bytes(obj))
    if kind == "bytes":
        pos = data.draw(st.integers(0, len(raw) - 1))
        if data.draw(st.booleans()):
            raw[pos] ^= data.draw(st.integers(1, 255))
        else:
            raw = raw[:pos]
    run = root / "run"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(bytes(raw))
    before = capsys.readouterr()
    del before
    rc = main(["eval", str(run)])
    out, err = capsys.readouterr()
    event("accepted" if rc == 0 else "refused")
    if rc != 0:
        assert rc == 1 and err.count("\n") == 1 and err.startswith("a2q: error: "), err
        assert "weights_only" not in err
        assert sorted(p.name for p in root.rglob("*")) == ["checkpoint.pt", "run"]
        return
    result = json.loads(out, parse_constant=lambda c: pytest.fail(c))
    for k in ("train_acc", "val_acc", "test_acc"):
        assert 0 <= result[k] <= 100
    assert 1 <= result["avg_feature_bits"] <= 8


# ------------------------------------------------------------------ unit arrays


def npy(a) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=True)
    return buf.getvalue()


ARRAYS = st.one_of(
    st.builds(lambda shape, dt, fill: np.full(shape, fill).astype(dt, casting="unsafe"),
              st.lists(st.integers(0, 5), max_size=3).map(tuple),
              st.sampled_from(["int64", "uint64", "int8", "uint8", "bool", "float64", "int32"]),
              st.sampled_from([0, 1, 3, 7, -1, -8, 2 ** 63 - 1, 2 ** 64 - 1, 255, 1 << 20])),
    st.just(np.array([{}], dtype=object)))


def fuzzed_file(path: Path, base: np.ndarray, data) -> str:
    kind = data.draw(st.sampled_from(["keep"] * 6 + ["array", "values", "header", "bytes"]))
    raw = npy(base)
    if kind == "array":
        raw = npy(data.draw(ARRAYS))
    elif kind == "values":
        a = base.copy().reshape(-1)
        a[data.draw(st.integers(0, a.size - 1))] = data.draw(st.sampled_from(
            [-1, 0, 1, 8, 16, 17, 100, -(1 << 40), 1 << 40]))
        raw = npy(a.reshape(base.shape))
    elif kind == "header":
        buf = io.BytesIO()
        np.lib.format.write_array_header_1_0(buf, {
            "descr": data.draw(st.sampled_from(DTYPES)), "fortran_order": False,
            "shape": tuple(data.draw(st.lists(st.sampled_from([0, 1, 3, 10 ** 12]),
                                              max_size=2)))})
        raw = buf.getvalue() + base.tobytes()
    elif kind == "bytes":
        raw = raw[:data.draw(st.integers(0, len(raw)))]
    path.write_bytes(raw)
    return str(path)


def _fits(v, bits, signed):
    return (-(1 << (bits - 1)) <= v < (1 << (bits - 1))) if signed else 0 <= v < (1 << bits)


@SETTINGS
@given(unit=st.sampled_from(["combination", "aggregation"]), signed=st.booleans(),
       data=st.data())
def test_fuzzed_unit_arrays(tmp_path_factory, unit, signed, data):
    """The arrays ``a2q sim`` checks before it builds anything: refused with one line naming
    the file, or every accepted value within its declared bits and the expected result
    Python's exact integers."""
    root = tmp_path_factory.mktemp("arrays")
    base = {"x": np.array([[1, 0, 3], [2, 2, 1], [0, 1, 1], [3, 3, 0]]),
            "bits": np.array([2, 3, 2, 3]), "w": np.array([[1, -2], [3, 4], [-5, 6]]),
            "indptr": np.array([0, 2, 3, 3, 5]), "indices": np.array([1, 2, 0, 3, 0])}
    names = ["x", "bits"] + (["w"] if unit == "combination" else ["indptr", "indices"])
    files = {k: fuzzed_file(root / f"{k}.npy", base[k], data) for k in names}
    options = {"lanes": data.draw(st.sampled_from([None] * 4 + [1, 2, 64, 0, 65, -1])),
               "max_bits": data.draw(st.sampled_from([None] * 4 + [3, 8, 16, 0, 17]))}
    if unit == "combination":
        options["weight_bits"] = data.draw(st.sampled_from([4] * 4 + [2, 8, 16, 0, 1, 17]))
    try:
        if unit == "combination":
            params, case, want, _, _ = unit_run.prepare_combination(
                files["x"], files["bits"], files["w"], signed_input=signed, **options)
        else:
            params, case, want, _, _ = unit_run.prepare_aggregation(
                files["indptr"], files["indices"], files["x"], files["bits"],
                signed_input=signed, **options)
    except InputError as exc:
        assert "\n" not in str(exc) and re.match(r"\S", str(exc))
        event("refused")
        return
    event("accepted")
    x, bits = case["x"].tolist(), case["bits"].tolist()
    assert all(_fits(v, b, signed) for row, b in zip(x, bits) for v in row)
    assert all(1 <= b <= params["max_bits"] <= 16 for b in bits)
    assert 1 <= params["lanes"] <= 64
    if unit == "combination":
        w = case["w"].tolist()
        assert all(_fits(v, params["weight_bits"], True) for row in w for v in row)
        expect = [[sum(r[k] * w[k][c] for k in range(len(w))) for c in range(len(w[0]))]
                  for r in x]
    else:
        ip, ix = case["indptr"].tolist(), case["indices"].tolist()
        assert ip[0] == 0 and ip[-1] == len(ix) and all(a <= b for a, b in itertools.pairwise(ip))
        assert all(0 <= j < len(x) for j in ix)
        expect = [[sum(x[j][c] for j in ix[ip[i]:ip[i + 1]]) for c in range(len(x[0]))]
                  for i in range(len(x))]
    assert want.tolist() == expect
