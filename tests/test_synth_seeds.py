"""``a2q synth --seeds``: Yosys once, nextpnr with each seed on a Dask cluster, each stopped
at its time limit, the best routed seed kept; and ``--netlist``, the place and route of an
earlier synthesis's netlist."""

import json
import shutil

import pytest

from a2q.app import synth_seeds
from a2q.app.cli import main
from a2q.hw.fpga import synthesis
from a2q.hw.fpga.synthesis import SynthesisError, synthesize

from .test_synthesis import Accumulate, _rtl_folder


@pytest.fixture(scope="module")
def small_rtl(tmp_path_factory):
    return _rtl_folder(tmp_path_factory.mktemp("accumulate"), Accumulate(), "accumulate")


def test_seeds_place_and_route_at_once_and_the_best_is_kept(small_rtl, tmp_path, capsys):
    out = tmp_path / "synth"
    args = ["synth", str(small_rtl), "--device", "25k", "--freq", "25", "--seeds", "2",
            "--workers", "2", "--out", str(out)]
    assert main(args) == 0
    r = json.loads((out / "report.json").read_text())
    # nextpnr's own default seed (a plain a2q synth's), then seed 1
    assert [(o["seed"], o["name"]) for o in r["seeds"]] == [(None, "default"), (1, "1")]
    assert all(o["status"] == "routed" and o["seconds"] >= 0 for o in r["seeds"])
    fmax = {o["name"]: o["fmax_mhz"] for o in r["seeds"]}
    assert r["fmax_mhz"] == max(fmax.values()) and fmax[r["best"]] == r["fmax_mhz"]
    # each seed's own report is the one nextpnr gave it
    for name, seed in (("default", None), ("1", 1)):
        own = json.loads((out / f"seed-{name}" / "report.json").read_text())
        assert own["pnr_seed"] == seed and own["fmax_mhz"] == fmax[name]
        assert ("--seed" in own["nextpnr_args"]) is (seed is not None)
        assert not (out / f"seed-{name}" / "yosys.log").exists()  # Yosys ran once
    assert (out / "netlist" / "yosys.log").exists()
    md = (out / "report.md").read_text()
    assert "| seed | outcome | seconds | Fmax MHz | timing met |" in md
    assert f"the best of 2 seeds, seed {r['best']}" in capsys.readouterr().out
    # --seed S: seeds S, S + 1; a rerun takes Yosys's netlist of the same design as it is
    yosys = (out / "netlist" / "netlist.json").stat().st_mtime_ns
    assert main([*args[:-2], "--seed", "5", "--out", str(out)]) == 0
    r = json.loads((out / "report.json").read_text())
    assert [o["seed"] for o in r["seeds"]] == [5, 6]
    assert (out / "netlist" / "netlist.json").stat().st_mtime_ns == yosys
    assert "Yosys's netlist of this design from an earlier run" in capsys.readouterr().err


def test_a_stalled_seed_is_stopped_at_its_time_limit_and_the_others_kept(small_rtl, tmp_path,
                                                                          monkeypatch):
    from dask.distributed import Client, LocalCluster

    real_run = synthesis._run

    def stall_seed_2(stage, cmd, cwd, log, timeout=None):
        if "nextpnr" not in stage:
            return real_run(stage, cmd, cwd, log, timeout)
        if cmd[cmd.index("--seed") + 1] == "2":  # a router that does not converge
            return real_run(stage, ["sleep", "60"], cwd, log, timeout)
        # the routed seeds run without the limit: a loaded machine cannot push them past it
        return real_run(stage, cmd, cwd, log, None)

    monkeypatch.setattr(synthesis, "_run", stall_seed_2)
    with LocalCluster(n_workers=1, threads_per_worker=3, processes=False,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        r = synth_seeds.synthesize_seeds(small_rtl, "ecp5", tmp_path / "s", seeds=[1, 2, 3],
                                         client=client, time_limit_s=3, device="25k",
                                         freq_mhz=25, progress=lambda s: None)
    outcome = {o["seed"]: o for o in r["seeds"]}
    assert r["best"] in ("1", "3")
    assert outcome[2]["status"] == "time limit" and 3 <= outcome[2]["seconds"] < 30
    assert "killed after its time limit of 3 s" in outcome[2]["error"]
    assert outcome[1]["status"] == outcome[3]["status"] == "routed"
    assert r["timing_met"] is True
    assert "| 2 | time limit |" in (tmp_path / "s" / "report.md").read_text()


def test_the_netlist_of_an_earlier_synthesis_is_placed_without_yosys(small_rtl, tmp_path):
    yosys = synthesize(small_rtl, "ecp5", tmp_path / "y", device="25k", place_and_route=False)
    r = synthesize(small_rtl, "ecp5", tmp_path / "p", device="25k", freq_mhz=25, route=False,
                   netlist_from=tmp_path / "y")
    assert r["placed"] and r["cells"] == yosys["cells"] and r["luts"] == yosys["luts"]
    assert not (tmp_path / "p" / "yosys.log").exists()
    # another design's netlist (an init file differs) is refused
    other = tmp_path / "other"
    shutil.copytree(small_rtl, other)
    (other / "extra.hex").write_text("00\n")
    with pytest.raises(SynthesisError, match="field design_sha256"):
        synthesize(other, "ecp5", tmp_path / "q", device="25k", netlist_from=tmp_path / "y")
    with pytest.raises(SynthesisError, match="synthesized with device '25k'"):
        synthesize(small_rtl, "ecp5", tmp_path / "q", device="45k", netlist_from=tmp_path / "y")


@pytest.mark.parametrize("args, message", [
    (["--seeds", "0"], "--seeds must be at least 1"),
    (["--seeds", "2", "--no-place"], "--seeds places and routes"),
    (["--workers", "2"], "--scheduler and --workers run the seeds of --seeds"),
    (["--time-limit", "0"], "--time-limit must be a positive number"),
])
def test_bad_seed_options_are_one_line_and_write_nothing(small_rtl, tmp_path, capsys, args,
                                                          message):
    out = tmp_path / "s"
    assert main(["synth", str(small_rtl), *args, "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not out.exists()
