"""docs/bad-input.md is the specification: every class in its table is built here, run through
the command it names, and must end with exit status 1, one line holding the table's text, and
nothing written (the folder the command runs in is the same, file for file, before and after).
"""

import hashlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from a2q.app.cli import main
from a2q.sim.annotated_graph import seal, write_graph

from .sim_exports import random_export, random_graph_export

DOC = Path(__file__).resolve().parent.parent / "docs" / "bad-input.md"
ROW = re.compile(r"^\| `([a-z0-9-]+)` \| (.+?) \| `(a2q [a-z ]+)` \| `(.+)` \|$")


def spec() -> dict:
    """class -> (command, the text its line holds) from the documentation's table."""
    rows = {}
    for line in DOC.read_text().splitlines():
        m = ROW.match(line)
        if m:
            rows[m.group(1)] = (m.group(3), m.group(4))
    return rows


def pattern(text: str) -> str:
    """The table's text as a regex: ``<name>`` stands for any value."""
    return ".+?".join(re.escape(part) for part in re.split(r"<\w+>", text))


# ------------------------------------------------------------------ inputs


def export(root: Path) -> Path:
    man, arr = random_export(np.random.default_rng(0), "gcn", n=12, f0=5, hidden=4, classes=3)
    return write_graph(root / "graph", man, arr)


def manifest(d: Path) -> dict:
    return json.loads((d / "manifest.json").read_text())


def reseal(d: Path, edit) -> None:
    m = manifest(d)
    edit(m)
    (d / "manifest.json").write_text(json.dumps(seal(m)))


def replace_file(d: Path, name: str, data: bytes) -> None:
    """Tensor ``name``'s file holds ``data``; its checksum and the manifest's are recomputed."""
    (d / f"{name}.npy").write_bytes(data)
    reseal(d, lambda m: m["tensors"][name].update(sha256=hashlib.sha256(data).hexdigest()))


def npy_bytes(a: np.ndarray, **kw) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, **kw)
    return buf.getvalue()


def replace_array(d: Path, name: str, edit) -> None:
    a = np.load(d / f"{name}.npy")
    edit(a)
    replace_file(d, name, npy_bytes(a))


def huge_header(dtype: str = "|u1") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": dtype, "fortran_order": False, "shape": (10 ** 12,)})
    return buf.getvalue() + b"\0" * 16


class Unsafe:
    """An object a checkpoint must not unpickle."""


def checkpoint(root: Path, obj) -> Path:
    run = root / "run"
    run.mkdir()
    torch.save(obj, run / "checkpoint.pt")
    return run


def edited_checkpoint(root, trained, edit) -> Path:
    obj = {**trained, "config": dict(trained["config"]),
           "state": {k: v.clone() for k, v in trained["state"].items()}}
    edit(obj)
    return checkpoint(root, obj)


def arrays(root: Path, **given) -> dict:
    """Valid unit inputs (4 nodes of 3 bits, 3 inputs, 2 outputs, a CSR), each replaced by
    ``given`` (an array, or bytes for the file)."""
    base = {"x": np.array([[1, 2, 3], [4, 5, 6], [7, 0, 1], [2, 2, 2]]),
            "bits": np.full(4, 3), "w": np.array([[1, -2], [3, 4], [-5, 6]]),
            "indptr": np.array([0, 2, 3, 3, 5]), "indices": np.array([1, 2, 0, 3, 0])}
    paths = {}
    for k, v in {**base, **given}.items():
        paths[k] = root / f"{k}.npy"
        paths[k].write_bytes(v if isinstance(v, bytes) else npy_bytes(v))
    return {k: str(p) for k, p in paths.items()}


def comb(a, out, *extra):
    return ["sim", "combination", "--x", a["x"], "--bits", a["bits"], "--w", a["w"], "--out",
            str(out), *extra]


def agg(a, out, *extra):
    return ["sim", "aggregation", "--indptr", a["indptr"], "--indices", a["indices"], "--x",
            a["x"], "--bits", a["bits"], "--out", str(out), *extra]


def golden(d, out="out", *extra):
    return ["golden", str(d), "--out", str(out), *extra]


def _gin0_norm_not_one(root: Path) -> Path:
    man, arr = random_export(np.random.default_rng(0), "gin", n=12, f0=5, hidden=4, classes=3,
                             order="combine-first")
    d = write_graph(root / "graph", man, arr)
    replace_array(d, "gcn_norm", lambda a: a.__setitem__(0, 1 << 14))
    return d


def _export_case(edit):
    def build(root, trained):
        d = export(root)
        edit(d)
        return golden(d, root / "out")
    return build


def _write(path: Path, text: str) -> None:
    path.write_text(text)


def _symlink_loop(d: Path) -> None:
    (d / "x.npy").unlink()
    os.symlink("x.npy", d / "x.npy")


def _decreasing(a: np.ndarray) -> None:
    a[1] = a[-1]
    a[2] = 0 if a[-1] else a[2]


def _overflow(a: np.ndarray) -> None:
    a[:] = (1 << 63) - 1


def graph_export(root: Path) -> Path:
    from a2q.sim.graph_batch import write_graph_batch

    man, arr = random_graph_export(np.random.default_rng(0), graphs=3, layers=2, pool=4)
    return write_graph_batch(root / "graph", man, arr)


def _graph_case(edit):
    def build(root, trained):
        d = graph_export(root)
        edit(d)
        return golden(d, root / "out")
    return build


def _unsorted(a: np.ndarray) -> None:
    a[0] = a[-1] + 1


CASES = {
    "graph-pool-unsorted": _graph_case(lambda d: replace_array(
        d, "layer1.pool_threshold", _unsorted)),
    "graph-pool-empty": _graph_case(lambda d: reseal(
        d, lambda m: m["layers"][0].update(pool_size=0))),
    "graph-boundary": _graph_case(lambda d: replace_array(
        d, "graph_ptr", lambda a: a.__setitem__(-1, a[-1] + 5))),
    "graph-zero-graphs": _graph_case(lambda d: reseal(d, lambda m: m.update(num_graphs=0))),
    "graph-for-node": lambda root, t: ["sweep", "--graphs", str(graph_export(root)),
                                       "--out", str(root / "out")],
    "checkpoint-node-for-graph": lambda root, t: ["export", str(checkpoint(root, t)),
                                                  "--fold", "0", "--out", str(root / "out")],
    "export-not-a-folder": lambda root, t: golden(root, root / "out"),
    "export-json": _export_case(lambda d: _write(d / "manifest.json", "{not json")),
    "export-duplicate-key": _export_case(lambda d: _write(
        d / "manifest.json", '{"seed": 1, ' + (d / "manifest.json").read_text()[1:])),
    "export-deep": _export_case(lambda d: _write(d / "manifest.json",
                                                 "[" * 100000 + "]" * 100000)),
    "export-long-integer": _export_case(lambda d: _write(d / "manifest.json",
                                                         '{"seed": ' + "7" * 5000 + "}")),
    "export-nan-constant": _export_case(lambda d: _write(d / "manifest.json", '{"seed": NaN}')),
    "export-version": _export_case(lambda d: reseal(d, lambda m: m.update(version=99))),
    "export-order": _export_case(lambda d: reseal(d, lambda m: m.update(order="sideways"))),
    "export-gcn-order": _export_case(lambda d: reseal(
        d, lambda m: m.update(order="aggregate-first"))),
    "export-gin0-norm": lambda root, t: golden(_gin0_norm_not_one(root), root / "out"),
    "export-edited": _export_case(lambda d: _write(d / "manifest.json", json.dumps(
        {**manifest(d), "seed": 5}))),
    "export-field-type": _export_case(lambda d: reseal(d, lambda m: m.update(num_nodes="12"))),
    "export-shape-string": _export_case(lambda d: reseal(
        d, lambda m: m["tensors"]["x"].update(shape="[12, 5]"))),
    "export-path-escape": _export_case(lambda d: reseal(
        d, lambda m: m["tensors"]["x"].update(file="../x.npy"))),
    "export-symlink-loop": _export_case(_symlink_loop),
    "export-file-missing": _export_case(lambda d: (d / "x.npy").unlink()),
    "export-array-edited": _export_case(lambda d: (d / "x.npy").write_bytes(
        (d / "x.npy").read_bytes()[:-1] + b"\x01")),
    "export-npz": _export_case(lambda d: replace_file(d, "x", _npz_bytes())),
    "export-pickle": _export_case(lambda d: replace_file(
        d, "x", npy_bytes(np.array([{}], dtype=object), allow_pickle=True))),
    "export-huge-header": _export_case(lambda d: replace_file(d, "x", huge_header())),
    "export-truncated-array": _export_case(lambda d: replace_file(
        d, "x", (d / "x.npy").read_bytes()[:-7])),
    "export-value-range": _export_case(lambda d: replace_array(
        d, "x", lambda a: a.__setitem__((0, 0), 255))),
    "export-nan": _export_case(lambda d: replace_array(
        d, "layer1.weight_step", lambda a: a.__setitem__(0, np.nan))),
    "export-csr": _export_case(lambda d: replace_array(d, "indptr", _decreasing)),
    "export-fifo": _export_case(lambda d: ((d / "x.npy").unlink(), os.mkfifo(d / "x.npy"))),
    "export-sparse-file": _export_case(lambda d: os.truncate(d / "x.npy", 2 << 30)),
    "export-float-field": _export_case(lambda d: reseal(d, lambda m: m.update(eps_frac=15.0))),
    "export-nul-name": _export_case(lambda d: reseal(
        d, lambda m: m["tensors"]["x"].update(file="x\0.npy"))),
    "export-dataset-name": _export_case(lambda d: reseal(
        d, lambda m: m.update(dataset="Cora\nsecond line"))),
    "export-overflow": _export_case(lambda d: replace_array(d, "layer2.bias_fx", _overflow)),
    "export-overflow-engine": lambda root, t: _overflowing_engine(root),
    "checkpoint-missing": lambda root, t: ["eval", str(root)],
    "checkpoint-truncated": lambda root, t: _truncated_checkpoint(root, t),
    "checkpoint-pickle": lambda root, t: ["eval", str(checkpoint(
        root, {"format": "a2q-checkpoint", "object": Unsafe()}))],
    "checkpoint-format": lambda root, t: ["eval", str(checkpoint(root, {"weights": [1, 2]}))],
    "checkpoint-config-type": lambda root, t: ["eval", str(edited_checkpoint(
        root, t, lambda o: o.update(config=[1, 2])))],
    "checkpoint-config-value": lambda root, t: ["eval", str(edited_checkpoint(
        root, t, lambda o: o["config"].update(lr=float("nan"))))],
    "checkpoint-state-mismatch": lambda root, t: ["export", str(edited_checkpoint(
        root, t, lambda o: o["state"].update({_first_weight(o): torch.zeros(3, 3)})))],
    "checkpoint-nan-parameter": lambda root, t: ["export", str(edited_checkpoint(
        root, t, lambda o: o["state"][_first_weight(o)].fill_(float("nan"))))],
    "checkpoint-version-float": lambda root, t: ["eval", str(edited_checkpoint(
        root, t, lambda o: o.update(version=1.0)))],
    "checkpoint-sparse": lambda root, t: ["eval", str(edited_checkpoint(
        root, t, lambda o: o["state"].update({_first_weight(o): o["state"][
            _first_weight(o)].to_sparse()})))],
    "checkpoint-dtype": lambda root, t: ["eval", str(edited_checkpoint(
        root, t, lambda o: o["state"].update({_first_weight(o): o["state"][
            _first_weight(o)] > 0})))],
    "checkpoint-key-newline": lambda root, t: ["eval", str(edited_checkpoint(
        root, t, lambda o: o["state"].update({"a\nb": None})))],
    "array-fifo": lambda root, t: comb({**arrays(root), "x": str(_fifo(root))},
                                       root / "y.npy"),
    "array-bits-range": lambda root, t: comb(arrays(root, bits=np.full(4, 17)),
                                             root / "y.npy"),
    "array-npz": lambda root, t: comb(arrays(root, x=_npz_bytes()), root / "y.npy"),
    "array-huge-header": lambda root, t: comb(arrays(root, x=huge_header("<i8")),
                                              root / "y.npy"),
    "array-float": lambda root, t: comb(arrays(root, w=np.ones((3, 2))), root / "y.npy"),
    "array-empty": lambda root, t: comb(arrays(root, x=np.zeros((0, 3), dtype=np.int64)),
                                        root / "y.npy"),
    "array-uint64": lambda root, t: comb(arrays(root, x=np.full((4, 3), 2 ** 64 - 1,
                                                                dtype=np.uint64)),
                                         root / "y.npy"),
    "array-bits": lambda root, t: comb(arrays(root, x=np.full((4, 3), 100)), root / "y.npy"),
    "array-rows": lambda root, t: comb(arrays(root, bits=np.full(3, 3)), root / "y.npy"),
    "array-csr": lambda root, t: agg(arrays(root, indices=np.array([1, 2, 0, 3, 9])),
                                     root / "y.npy"),
    "option-weight-bits": lambda root, t: comb(arrays(root), root / "y.npy",
                                               "--weight-bits", "0"),
    "option-max-bits": lambda root, t: comb(arrays(root), root / "y.npy", "--max-bits", "100"),
    "option-lanes": lambda root, t: comb(arrays(root), root / "y.npy", "--lanes", "-1"),
    "option-lanes-rtl": lambda root, t: ["rtl", "combination", "--lanes", "100000", "--out",
                                         str(root / "r")],
    "option-not-taken": lambda root, t: ["rtl", "combination", "--columns", "8", "--out",
                                         str(root / "r")],
    "option-seed": lambda root, t: ["train", "--seed", "-1", "--out", str(root / "run"),
                                    "--no-progress"],
    "option-lanes-engine": lambda root, t: ["rtl", "engine", "--graph", str(export(root)),
                                            "--lanes", "0", "--out", str(root / "r")],
    "option-max-nodes-engine": lambda root, t: ["rtl", "engine", "--graph", str(export(root)),
                                                "--max-nodes", "100000000000", "--out",
                                                str(root / "r")],
    "option-unit-size": lambda root, t: ["rtl", "combination", "--in-features", "8192",
                                         "--lanes", "64", "--out", str(root / "r")],
    "option-rate": lambda root, t: ["train", "--weight-decay", "1e308", "--out",
                                    str(root / "run"), "--no-progress"],
    "option-gat-size": lambda root, t: ["train", "--model", "gat", "--hidden", "4096",
                                        "--heads", "64", "--out", str(root / "run"),
                                        "--no-progress"],
    "out-inside-input": lambda root, t: ["export", str(checkpoint(root, t)), "--out",
                                         str(root / "run" / "checkpoint.pt"), "--force"],
    "out-long-name": lambda root, t: golden(export(root), root / ("a" * 300)),
    "out-current-folder": lambda root, t: golden(export(root), "."),
    "out-parent-file": lambda root, t: golden(export(root), _file(root) / "out"),
    "out-file": lambda root, t: golden(export(root), _file(root)),
    "out-foreign-folder": lambda root, t: golden(export(root), _foreign(root)),
    "out-input": lambda root, t: golden(export(root), root / "graph"),
    "out-input-force": lambda root, t: golden(export(root), root / "graph", "--force"),
    "out-device": lambda root, t: golden(export(root), _fifo(root), "--force"),
    "out-folder-for-file": lambda root, t: agg(arrays(root), _foreign(root, "y.npy")),
    "out-not-npy": lambda root, t: comb(arrays(root), root / "y.txt"),
}


def _npz_bytes() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, x=np.zeros((12, 5), dtype=np.uint8))
    return buf.getvalue()


def _file(root: Path) -> Path:
    (root / "notes.txt").write_text("mine\n")
    return root / "notes.txt"


def _foreign(root: Path, name: str = "mine") -> Path:
    (root / name).mkdir()
    (root / name / "notes.txt").write_text("mine\n")
    return root / name


def _fifo(root: Path) -> Path:
    os.mkfifo(root / "pipe")
    return root / "pipe"


def _first_weight(obj) -> str:
    return next(k for k, v in obj["state"].items() if v.is_floating_point() and v.dim() == 2)


def _truncated_checkpoint(root, trained) -> list:
    run = checkpoint(root, trained)
    data = (run / "checkpoint.pt").read_bytes()
    (run / "checkpoint.pt").write_bytes(data[:len(data) // 2])
    return ["eval", str(run)]


def _overflowing_engine(root) -> list:
    d = export(root)
    replace_array(d, "layer2.bias_fx", _overflow)
    return ["rtl", "engine", "--graph", str(d), "--out", str(root / "rtl"), "--no-lint"]


def tree(root: Path) -> dict:
    """Every path under ``root`` with its size and modification time (links as links)."""
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        out[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns, p.is_symlink())
    return out


def test_every_class_of_the_table_has_a_case():
    assert set(spec()) == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(name, tmp_path, monkeypatch, capsys, request):
    command, text = spec()[name]
    trained = request.getfixturevalue("trained") if name.startswith("checkpoint-") and name not in (
        "checkpoint-missing", "checkpoint-pickle", "checkpoint-format") or name == (
        "out-inside-input") else None
    work = tmp_path / "work"
    work.mkdir()
    argv = CASES[name](tmp_path, trained)
    assert f"a2q {' '.join(argv[:2])}".startswith(command), (argv, command)
    monkeypatch.chdir(work)
    before = tree(tmp_path)
    capsys.readouterr()
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("a2q: error: "), err
    assert re.search(pattern(text), err), (text, err)
    assert "weights_only" not in err  # PyTorch's advice to unpickle is never repeated
    assert tree(tmp_path) == before


def test_an_empty_test_mask_has_no_accuracy_and_the_summary_stays_json(tmp_path, capsys):
    d = export(tmp_path)
    replace_array(d, "test_mask", lambda a: a.fill(False))
    assert main(golden(d, tmp_path / "out")) == 0
    assert "golden test_acc n/a (no test nodes)" in capsys.readouterr().out
    text = (tmp_path / "out" / "summary.json").read_text()
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in summary.json"))[
        "test_acc"] is None


def test_an_earlier_output_of_the_same_command_is_replaced_without_a_trace(tmp_path):
    d = export(tmp_path)
    assert main(golden(d, tmp_path / "out")) == 0
    first = tree(tmp_path / "out")
    assert main(golden(d, tmp_path / "out")) == 0
    assert set(tree(tmp_path / "out")) == set(first)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["graph", "out"]


def test_force_replaces_a_file_or_a_foreign_folder_and_leaves_nothing_beside(tmp_path):
    d = export(tmp_path)
    for target in (_file(tmp_path), _foreign(tmp_path)):
        assert main(golden(d, target, "--force")) == 0
        assert (target / "summary.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["graph", "mine", "notes.txt"]


def test_sim_refuses_an_option_its_form_does_not_read(tmp_path, capsys):
    a = arrays(tmp_path)
    assert main(agg(a, tmp_path / "y.npy", "--weight-bits", "4")) == 1
    assert "sim aggregation does not take --weight-bits" in capsys.readouterr().err
    assert main(comb(a, tmp_path / "y.npy", "--graph", str(tmp_path))) == 1
    assert "sim combination does not take --graph" in capsys.readouterr().err


def test_an_interrupt_while_importing_is_one_line(tmp_path):
    """Ctrl-C 0.3 s after the command starts, while PyTorch loads (a second or more): one
    line, status 130, nothing written. The 0.3 s count from the child's exec: before it, a
    signal would meet the test runner's handler copied into the forked child, not a2q's."""
    entry = "import sys; from a2q.app.entry import main; sys.exit(main())"
    # the child starts as a terminal starts a command: SIGINT at its default and unblocked,
    # whatever the test runner's worker process has inherited or set (an xdist worker of the
    # whole suite handed this child an ignored or blocked SIGINT; SigIgn/SigBlk below)
    status = {k: v.strip() for k, _, v in (line.partition(":") for line in
              Path("/proc/self/status").read_text().splitlines()) if k in ("SigIgn", "SigBlk")}

    def as_from_a_terminal():
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})

    p = subprocess.Popen([sys.executable, "-c", entry, "train", "--epochs", "1", "--no-progress",
                          "--out", str(tmp_path / "out")], stderr=subprocess.PIPE, text=True,
                         preexec_fn=as_from_a_terminal)
    cmdline = Path(f"/proc/{p.pid}/cmdline")
    deadline = time.monotonic() + 30
    while b"a2q.app.entry" not in cmdline.read_bytes() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130 and err == "a2q: interrupted\n", (err, status)
    assert list(tmp_path.iterdir()) == []
