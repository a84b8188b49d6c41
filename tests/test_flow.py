"""``a2q flow``: the stages, the report, a failing stage, resuming, refusing a mismatched folder,
and the one Verilog the sim and synth stages read.

The flows here train on Cora for a few epochs, then export a small random graph in place of
Cora's (:func:`small_export`), so that the engine stages run a 12-node engine in seconds;
the export of a trained model has its own tests (test_export_trained.py).
"""

import base64
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from a2q.app import flow as flow_module
from a2q.app.cli import main
from a2q.common.errors import A2QError
from a2q.sim.annotated_graph import write_graph

from .sim_exports import random_export


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory):
    return tmp_path_factory.getbasetemp().parent / "flow-models"


SMALL_EXPORT = random_export(np.random.default_rng(5), "gcn", n=12, f0=6, hidden=4, classes=3)


@pytest.fixture
def small_export(monkeypatch):
    """The flow's export stage writes :data:`SMALL_EXPORT` instead of the trained model's."""
    def export(self, log):
        return {"graph": str(write_graph(self.out / "graph", *SMALL_EXPORT))}

    monkeypatch.setattr(flow_module.Flow, "_export", export)


def _args(out, build_dir, *extra):
    return ["flow", "--dataset", "Cora", "--model", "gcn", "--epochs", "3", "--methods",
            "--baselines", "uniform4-exact-input", "--no-synth", "--out", str(out),
            "--build-dir", str(build_dir), *extra]


@pytest.mark.regress  # a long case: make regress
def test_a_failing_stage_then_resume_writes_the_report(tmp_path, build_dir, small_export,
                                                       monkeypatch, capsys):
    out = tmp_path / "flow"

    def broken(self, log):
        log("about to fail")
        raise RuntimeError("simulated breakdown")

    real_sim = flow_module.Flow._sim
    monkeypatch.setattr(flow_module.Flow, "_sim", broken)
    assert main(_args(out, build_dir)) == 1
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()[-1]
    assert err == (f"a2q: error: flow: stage sim failed: simulated breakdown; see "
                   f"{out}/logs/sim.log; run the same command again to resume at sim")
    log = (out / "logs" / "sim.log").read_text()
    assert "about to fail" in log and "Traceback" in log
    state = json.loads((out / "flow.json").read_text())
    assert [s for s, v in state["stages"].items() if v["status"] == "done"] == [
        "train", "methods", "export", "golden", "rtl"]
    assert state["stages"]["sim"]["status"] == "failed"
    assert not (out / "report.md").exists()
    assert "sim      failed" in captured.out  # the summary table is printed either way
    checkpoint = (out / "train" / "checkpoint.pt").stat().st_mtime_ns

    monkeypatch.setattr(flow_module.Flow, "_sim", real_sim)
    assert main(_args(out, build_dir)) == 0
    text = capsys.readouterr().out
    for k, stage in enumerate(["train", "methods", "export", "golden", "rtl"], start=1):
        assert f"[{k}/8] {stage}: finished before, reused" in text
    assert (out / "train" / "checkpoint.pt").stat().st_mtime_ns == checkpoint
    state = json.loads((out / "flow.json").read_text())
    assert all(v["status"] == "done" for v in state["stages"].values())

    sim = json.loads((out / "sim" / "result.json").read_text())
    assert sim["logits_equal_golden"] and sim["cycles_match"]
    assert np.array_equal(np.load(out / "sim" / "predictions.npy"),
                          np.load(out / "golden" / "predictions.npy"))
    report = (out / "report.md").read_text()
    assert f"A²Q: {sim['cycles_measured']} cycles" in report
    base = sim["baselines"]["uniform4-exact-input"]
    assert f"| uniform4-exact-input | {base['cycles_measured']} | " in report
    assert "--epochs 3 --methods --baselines uniform4-exact-input --no-synth" in report
    html = (out / "report.html").read_text()
    images = [s.split('"')[0] for s in html.split('src="data:image/png;base64,')[1:]]
    assert len(images) == 3  # bits vs in-degree, accuracy vs bits, cycles
    assert all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in images)
    for plot in ("bits_by_degree", "accuracy_vs_bits", "cycles"):
        assert (out / "plots" / f"{plot}.png").exists()

    # a finished flow is all reuse; --from report redoes the report only
    assert main(_args(out, build_dir, "--from", "report")) == 0
    text = capsys.readouterr().out
    assert "[7/8] synth: finished before, reused" in text and "[8/8] report: done" in text

    # a second flow reuses the first one's training run
    again = tmp_path / "again"
    assert main(_args(again, build_dir, "--run", str(out / "train"), "--baselines")) == 0
    capsys.readouterr()
    assert f"reusing the finished run {out / 'train'}" in (again / "logs" / "train.log").read_text()
    assert not (again / "train").exists()
    state = json.loads((again / "flow.json").read_text())
    assert state["stages"]["train"]["result"]["run"] == str(out / "train")

    # a stage whose output went missing runs again, and only the stages after it
    import shutil
    shutil.rmtree(out / "golden")
    assert main(_args(out, build_dir)) == 0
    text = capsys.readouterr().out
    assert "[3/8] export: finished before, reused" in text
    assert "[4/8] golden: the integer golden model" in text and (out / "golden").exists()
    assert "[5/8] rtl: the layer engine's Verilog" in text  # the later stages run again

    # the same folder with another seed is refused, naming the field
    assert main(_args(out, build_dir, "--seed", "1")) == 1
    err = capsys.readouterr().err
    assert "ran with seed = 0, this command asks 1 (field options.seed)" in err
    state = json.loads((out / "flow.json").read_text())
    assert state["options"]["seed"] == 0


def test_reusing_something_that_is_not_a_run_fails_at_train(tmp_path, build_dir, capsys):
    out = tmp_path / "flow"
    assert main(_args(out, build_dir, "--run", str(tmp_path))) == 1
    err = capsys.readouterr().err
    assert "flow: stage train failed: checkpoint not found" in err
    assert f"see {out}/logs/train.log" in err


@pytest.mark.parametrize("args, message", [
    (["--dataset", "PROTEINS"], "the flow runs node-level datasets"),
    (["--dataset", "Nope"], "unknown dataset 'Nope'"),
    (["--methods", "int3"], "unknown method 'int3'"),
])
def test_bad_options_are_refused_before_anything_is_written(tmp_path, capsys, args, message):
    out = tmp_path / "flow"
    assert main(["flow", "--out", str(out), *args]) == 1
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_the_report_gives_the_synth_stage_s_utilisation(tmp_path):
    from a2q.app.flow_report import write_report

    # a synth result as the stage records it (the report's fields), the device an ECP5-25F:
    # 24288 LUT4 and as many flip-flops, 56 DP16KD, 28 MULT18X18D
    synth = {"target": "ecp5", "device": "25k", "freq_target_mhz": 100.0, "luts": 12000,
             "carries": 1000, "ffs": 6072, "brams": 70, "dsps": 7, "lutram": 2,
             "fmax_mhz": None, "placed": False, "fits": False,
             "limits": [{"resource": "brams", "needed": 70, "available": 56}],
             "verdict": "does not fit"}
    state = {"stages": {"synth": {"status": "done", "seconds": 1.0, "result": synth}}}
    written = write_report(tmp_path, state, flow_module.FlowOptions())
    assert tmp_path / "plots" / "resources.png" in written
    report = (tmp_path / "report.md").read_text()
    assert "| LUT slots | 14012 | 24288 | 57.7 |" in report  # 12000 + 2 * 1000 + 6 * 2
    assert "| flip-flops | 6072 | 24288 | 25.0 |" in report
    assert "| block RAMs | 70 | 56 | 125.0 |" in report and "| DSPs | 7 | 28 | 25.0 |" in report
    assert "| brams | 70 | 56 |" in report  # the limiting resource


def test_the_verilog_simulated_is_the_verilog_synthesized(tmp_path, build_dir, small_export,
                                                          capsys):
    """A small flow (4 lanes, every baseline, Icarus, Yosys without place and route): the rtl,
    sim and synth stages record one sha256, the rtl folder's Verilog's, on which every
    baseline runs exact; a Verilog edited after the rtl stage is refused by the sim stage."""
    manifest = SMALL_EXPORT[0]
    out = tmp_path / "flow"
    args = ["flow", "--epochs", "1", "--methods", "--lanes", "4", "--simulator", "icarus",
            "--out", str(out), "--build-dir", str(build_dir)]
    assert main(args) == 0
    capsys.readouterr()
    verilog = out / "rtl" / "layer_engine.v"
    sha = hashlib.sha256(verilog.read_bytes()).hexdigest()
    state = json.loads((out / "flow.json").read_text())
    assert state["verilog_sha256"] == {"built": sha, "simulated": sha, "synthesized": sha,
                                       "simulated_is_synthesized": True}
    assert state["stages"]["synth"]["result"]["placed"] is False  # Yosys and the fit check
    params = json.loads((out / "rtl" / "params.json").read_text())
    assert params["baselines"] == ["uniform4", "uniform4-exact-input", "uniform8"]
    # x stores the export's input codes; uniform8 pays them at 8 bit-planes on that engine
    assert params["config"]["input_bits"] == manifest["input_bits"] < 8
    sim = json.loads((out / "sim" / "result.json").read_text())
    assert sim["verilog_sha256"] == sha and sim["logits_equal_golden"] and sim["cycles_match"]
    u8 = sim["baselines"]["uniform8"]
    assert u8["logits_equal_golden"]
    assert u8["cycles_by_phase_measured"] == u8["cycles_by_phase_predicted"]
    assert hashlib.sha256(Path(sim["verilog"]).read_bytes()).hexdigest() == sha
    assert f"synthesized `{sha}`" in (out / "report.md").read_text()

    verilog.write_text(verilog.read_text() + "// edited after the rtl stage\n")
    assert main([*args, "--from", "sim"]) == 1
    assert "its sha256 is not the one params.json records" in capsys.readouterr().err


def test_synth_stage_uses_a2q_synth_s_own_defaults(tmp_path, monkeypatch):
    """The flow's synth stage leaves nextpnr's settings to a2q synth's defaults (the ones that
    close timing on the engine), with --place or without."""
    import a2q.hw.fpga.synthesis as synthesis

    calls = []
    monkeypatch.setattr(synthesis, "synthesize",
                        lambda *a, **kw: calls.append(kw) or {"verdict": "stub",
                                                              "verilog_sha256": "abc"})
    flow = flow_module.Flow(tmp_path / "flow", flow_module.FlowOptions(place=True))
    flow.state["stages"]["sim"] = {"status": "done", "result": {"verilog_sha256": "abc"}}
    assert flow._synth(lambda s: None)["verdict"] == "stub"
    assert calls[0]["place_and_route"] is True
    assert not {"placer", "router", "timing_ripup"} & set(calls[0])
    # a Verilog other than the one simulated is not a synthesis result of this flow
    flow.state["stages"]["sim"]["result"]["verilog_sha256"] = "def"
    with pytest.raises(A2QError, match="the Verilog synthesized .* is not the one simulated"):
        flow._synth(lambda s: None)
