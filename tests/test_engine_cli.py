"""``a2q rtl engine`` and ``a2q sim engine``: the files they write, the results, one-line errors."""

import json

import numpy as np
import pytest

from a2q.app.cli import main
from a2q.sim import golden
from a2q.sim.annotated_graph import read_graph, seal, write_graph

from .sim_exports import random_export


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    d = tmp_path_factory.mktemp("export")
    man, arr = random_export(np.random.default_rng(21), "gcn", n=23, f0=11, hidden=6, classes=3)
    return write_graph(d / "graph", man, arr)


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory):
    return tmp_path_factory.getbasetemp().parent / "rtl-models"


def test_rtl_engine_writes_verilog_init_files_and_parameters(export, tmp_path):
    out = tmp_path / "rtl"
    assert main(["rtl", "engine", "--graph", str(export), "--lanes", "4", "--out", str(out)]) == 0
    info = json.loads((out / "params.json").read_text())
    assert info["module"] == "layer_engine" and info["lanes"] == 4
    assert (out / "filelist.f").read_text().strip() == "layer_engine.v"
    g = read_graph(export)
    assert info["config"]["max_nodes"] == g.num_nodes  # sized from the export
    hexes = {p.name for p in out.glob("*.hex")}
    loaded = {n: m for n, m in info["memories"].items() if m["init_file"]}
    assert hexes == ({m["init_file"] for m in loaded.values()}
                     | {s["init_file"] for m in loaded.values() for s in m["slices"]})
    for m in loaded.values():  # the slices' files hold the whole words' bits, lsb first
        words = [int(w, 16) for w in (out / m["init_file"]).read_text().split()]
        parts = [[int(w, 16) for w in (out / s["init_file"]).read_text().split()]
                 for s in m["slices"]]
        assert [sum(p[i] << s["lsb"] for p, s in zip(parts, m["slices"]))
                for i in range(len(words))] == words
    # 11 inputs of codes below 2^input_bits, 4 lanes: 3 dense words a node, or the node's
    # non-zeros 4 a word, whichever is fewer
    words = np.maximum(1, -(-(g["x"] != 0).sum(1) // 4))
    assert info["config"]["nonzeros_per_word"] == (4 if words.sum() < 3 * g.num_nodes else 0)
    if info["config"]["nonzeros_per_word"]:
        assert len((out / "x_nonzeros.hex").read_text().split()) == words.sum()
        assert not (out / "x.hex").exists()
    else:
        assert len((out / "x.hex").read_text().split()) == g.num_nodes * 3
    assert len((out / "indptr.hex").read_text().split()) == g.num_nodes + 1


def test_sim_engine_on_icarus_with_waves(export, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative folders, as in the README's commands
    out = tmp_path / "sim"
    assert main(["sim", "engine", "--graph", str(export), "--simulator", "icarus", "--lanes",
                 "4", "--waves", "--out", "sim", "--build-dir", "build/sim"]) == 0
    r = json.loads((out / "result.json").read_text())
    want = golden.run(read_graph(export))
    assert np.array_equal(np.load(out / "logits.npy"), want.logits)
    assert np.array_equal(np.load(out / "predictions.npy"), want.predictions)
    assert r["logits_equal_golden"] and r["mismatched_nodes"] == 0 and r["cycles_match"]
    assert r["test_acc"] == r["golden_test_acc"]
    assert set(r["baselines"]) == {"uniform4", "uniform4-exact-input", "uniform8"}
    for u in r["baselines"].values():
        assert u["logits_equal_golden"]
        assert u["cycles_by_phase_measured"] == u["cycles_by_phase_predicted"]
    g = read_graph(export)
    rows = {(x["baseline"], x["stage"]): x for x in r["stages"]}
    for name, u in r["baselines"].items():
        for stage, c in u["cycles_by_phase_measured"].items():
            x = rows[name, stage]
            assert (x["cycles_a2q"], x["cycles_baseline"]) == (
                r["cycles_by_phase_measured"][stage], c)
            assert x["speedup"] == round(c / x["cycles_a2q"], 4)
    ideal = {k: x["ideal_speedup"] for k, x in rows.items() if x["ideal_speedup"]}
    bits = g["layer2.node_bits"].mean()  # GCN: layer 2's combination reads per-node bits
    assert ideal == {("uniform4", "layer2.combination"): round(4 / bits, 4),
                     ("uniform4-exact-input", "layer2.combination"): round(4 / bits, 4),
                     ("uniform8", "layer2.combination"): round(8 / bits, 4)}
    assert (out / "waves.vcd").read_text()[:200].lstrip().startswith("$")  # a VCD header


def test_sim_engine_on_a_graph_level_export(tmp_path, build_dir, capsys):
    """A graph-level export runs as a batch: every graph's logits equal the golden model's,
    every phase's cycles the model's; the baselines' quantization phases count 0 against
    A²Q and the stage rows say so."""
    from a2q.sim.graph_batch import read_graph_batch, write_graph_batch
    from a2q.sim.graph_golden import run_graph_batch

    from .sim_exports import random_graph_export

    graph = write_graph_batch(tmp_path / "graph", *random_graph_export(
        np.random.default_rng(8), graphs=3, layers=2))
    out = tmp_path / "sim"
    assert main(["sim", "engine", "--graph", str(graph), "--simulator", "icarus", "--lanes", "2",
                 "--baselines", "uniform8", "--out", str(out), "--build-dir",
                 str(build_dir)]) == 0
    assert "logits equal the golden model on 3/3 graphs" in capsys.readouterr().out
    r = json.loads((out / "result.json").read_text())
    want = run_graph_batch(read_graph_batch(graph))
    assert np.array_equal(np.load(out / "logits.npy"), want.logits)
    assert r["task"] == "graph" and r["mismatched_graphs"] == 0 and r["cycles_match"]
    u = r["baselines"]["uniform8"]
    assert u["logits_equal_golden"]
    assert u["cycles_by_phase_measured"] == u["cycles_by_phase_predicted"]
    quantization = sum(c for k, c in u["cycles_by_phase_measured"].items()
                       if k.endswith(".quantization"))
    assert quantization > 0 and u["cycles_compared"] == u["cycles_measured"] - quantization
    rows = {x["stage"]: x for x in r["stages"]}
    assert rows["layer1.quantization"]["cycles_baseline"] == 0
    assert rows["total"]["cycles_baseline"] == u["cycles_compared"]


@pytest.mark.regress  # a long case: make regress
def test_sim_engine_on_verilator_through_the_load_port_with_fst(export, tmp_path, build_dir):
    out = tmp_path / "sim"
    assert main(["sim", "engine", "--graph", str(export), "--lanes", "4", "--load-port",
                 "--baselines", "--waves", "--out", str(out), "--build-dir", str(build_dir)]) == 0
    r = json.loads((out / "result.json").read_text())
    assert r["loaded_through"] == "load port" and r["logits_equal_golden"] and r["cycles_match"]
    assert r["baselines"] == {} and r["stages"] == []
    assert (out / "waves.fst").read_bytes()[:1] == b"\x00"  # FST's header block


def test_sim_engine_runs_the_verilog_rtl_engine_wrote(export, tmp_path, build_dir, capsys):
    """``a2q sim engine --rtl`` simulates the folder's own Verilog (the one a synthesis of the
    folder reads): the sha256 it reports is the file's and the one params.json records. On
    Icarus, which compiles in a second where Verilator takes half a minute."""
    import hashlib

    rtl = tmp_path / "rtl"
    assert main(["rtl", "engine", "--graph", str(export), "--lanes", "4", "--baselines",
                 "uniform4-exact-input", "--no-lint", "--out", str(rtl)]) == 0
    sha = hashlib.sha256((rtl / "layer_engine.v").read_bytes()).hexdigest()
    assert json.loads((rtl / "params.json").read_text())["verilog_sha256"] == sha
    out = tmp_path / "sim"
    assert main(["sim", "engine", "--graph", str(export), "--rtl", str(rtl), "--out", str(out),
                 "--simulator", "icarus", "--build-dir", str(build_dir)]) == 0
    r = json.loads((out / "result.json").read_text())
    assert r["verilog_sha256"] == sha and r["logits_equal_golden"] and r["cycles_match"]
    assert list(r["baselines"]) == ["uniform4-exact-input"] and r["lanes"] == 4
    capsys.readouterr()
    assert main(["sim", "engine", "--graph", str(export), "--rtl", str(rtl), "--lanes", "8",
                 "--out", str(tmp_path / "other")]) == 1
    assert "--lanes would build another" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()


def _gat(folder):
    m = json.loads((folder / "manifest.json").read_text())
    m["model"] = "gat"
    (folder / "manifest.json").write_text(json.dumps(seal(m)))


def _flip(folder):
    p = folder / "x.npy"
    p.write_bytes(p.read_bytes()[:-1] + bytes([p.read_bytes()[-1] ^ 1]))


@pytest.mark.parametrize("command", ["rtl", "sim"])
@pytest.mark.parametrize("edit, extra, message", [
    (_gat, [], "field 'model': 'gat' is not one of gcn, gin"),
    (_flip, [], "x.npy"),
    (None, ["--max-nodes", "10"], "memory indptr needs 24 words, the engine has 11 (13 short)"),
    (None, ["--max-edges", "3"], "memory indices needs"),
])
def test_bad_engine_input_is_one_clear_line(export, tmp_path, capsys, command, edit, extra,
                                            message):
    import shutil
    graph = tmp_path / "graph"
    shutil.copytree(export, graph)
    if edit:
        edit(graph)
    out = tmp_path / "out"
    assert main([command, "engine", "--graph", str(graph), "--out", str(out)] + extra) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not out.exists()


def test_engine_needs_a_graph(tmp_path, capsys):
    assert main(["sim", "engine", "--out", str(tmp_path / "o")]) == 1
    assert "needs --graph" in capsys.readouterr().err
