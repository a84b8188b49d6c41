"""``a2q sweep``: the grid, the stages points share, the Pareto fronts, and sweeps on a Dask
cluster of a scheduler and two workers started here on 127.0.0.1: through ``--scheduler``,
with a worker killed mid-stage, and interrupted then resumed.

The cluster's sweeps build engines for a 12-node random export (``--graphs``), so that a
point's stages (golden model, Verilog, RTL simulation) take seconds.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from a2q.app.cli import main
from a2q.app.sweep import AXES, expand_grid, stage_chain
from a2q.app.sweep_report import best_designs, pareto_front
from a2q.sim.annotated_graph import write_graph

from .sim_exports import random_export

DASK = str(Path(sys.executable).with_name("dask"))
#: the cluster's tests share one cluster and one reference sweep: under pytest-xdist
#: (``--dist loadgroup``, make test) they run on one worker, which starts them once
ON_ONE_XDIST_WORKER = pytest.mark.xdist_group("dask-cluster")


# ---------------------------------------------------------------------- the grid


def test_a_grid_is_every_combination_of_its_axes_and_a_point_counts_once():
    points = expand_grid([{"lanes": [4, 8], "seed": [0, 1]}, {"lanes": 8, "seed": 1},
                          {"lanes": 16, "pnr_seed": [2, 3]}])
    assert [(p["lanes"], p["seed"], p["pnr_seed"]) for p in points] == [
        (4, 0, None), (8, 0, None), (4, 1, None), (8, 1, None), (16, 0, 2), (16, 0, 3)]
    assert all(p["dataset"] == "Cora" and p["freq"] == 100.0 for p in points)
    assert set(points[0]) == set(AXES)


def test_points_share_the_stages_their_axes_agree_on():
    a, b, c = expand_grid([{"lanes": [4, 8]}, {"lanes": 8, "pnr_seed": 2}])
    keys = [{stage: key for stage, key, _ in stage_chain(p, "pnr")} for p in (a, b, c)]
    assert keys[0]["train"] == keys[1]["train"] == keys[2]["train"]
    assert keys[0]["export"] == keys[1]["export"]
    assert keys[0]["rtl"] != keys[1]["rtl"]  # another lane count, another engine
    assert keys[1]["synth"] == keys[2]["synth"]  # another nextpnr seed, the same netlist
    assert keys[1]["pnr"] != keys[2]["pnr"]
    # a method the engine does not run stops after training
    fp32 = expand_grid([{"method": "fp32"}])[0]
    assert [s for s, _, _ in stage_chain(fp32, "pnr")] == ["train"]


@pytest.mark.parametrize("grid, message", [
    ({"lane": [4]}, "unknown axis 'lane'"),
    ({"lanes": [0]}, "axis 'lanes' must be at least 1"),
    ({"lanes": ["4"]}, "axis 'lanes' takes integers"),
    ({"lanes": []}, "axis 'lanes' has no values"),
    ({"placer": "annealing"}, "axis 'placer': unknown 'annealing'"),
    ({"freq": 0}, "axis 'freq' takes MHz above 0"),
    ({"dataset": "Nope"}, "axis 'dataset'"),
    ({"device": "12k3"}, "axis 'device': unknown '12k3'"),
])
def test_a_bad_grid_is_refused_naming_the_axis(tmp_path, capsys, grid, message):
    path = tmp_path / "grid.json"
    path.write_text(json.dumps([{"lanes": 4}, grid]))
    out = tmp_path / "sweep"
    assert main(["sweep", "--grid", str(path), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(path) in err[0] and "sweep grid 1" in err[0], err
    assert message in err[0]
    assert not out.exists()


def test_the_grid_file_and_the_axis_options_do_not_mix(tmp_path, capsys):
    path = tmp_path / "grid.json"
    path.write_text("{}")
    assert main(["sweep", "--grid", str(path), "--lanes", "4", "--out",
                 str(tmp_path / "s")]) == 1
    assert "--lanes would be a second grid" in capsys.readouterr().err
    path.write_text("[{} ")
    assert main(["sweep", "--grid", str(path), "--out", str(tmp_path / "s")]) == 1
    assert "not valid JSON" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


# ---------------------------------------------------------------------- the results


def _row(lanes, luts, latency, *, timing_met=True, freq=100.0, acc=None, bits=None):
    return {"key": f"p{lanes}-{luts}", "status": "done", "luts": luts, "latency_us": latency,
            "timing_met": timing_met, "test_acc": acc, "avg_bits": bits,
            "point": {"lanes": lanes, "device": "85k", "freq": freq}}


def test_the_pareto_front_keeps_the_points_nothing_beats_on_both_axes():
    rows = [_row(4, 9000, 2.0), _row(8, 12000, 1.2), _row(16, 17000, 0.7),
            _row(12, 15000, 1.3),  # beaten by 8 lanes: more LUTs and slower
            _row(6, 9000, 2.5)]  # as many LUTs as 4 lanes, slower
    assert [r["point"]["lanes"] for r in pareto_front(rows, "luts", "latency_us")] == [4, 8, 16]
    acc = [_row(1, 1, 1, acc=80.0, bits=2.5), _row(2, 1, 1, acc=81.0, bits=3.0),
           _row(3, 1, 1, acc=79.0, bits=2.8), _row(4, 1, 1, acc=75.0, bits=1.1),
           _row(5, 1, 1, acc=80.0, bits=2.5)]  # the same model as lanes 1: listed once
    front = pareto_front(acc, "avg_bits", "test_acc", maximize_y=True)
    assert [r["point"]["lanes"] for r in front] == [4, 1, 2]


def test_the_best_design_meets_its_clock_target_at_the_least_latency():
    rows = [_row(16, 17000, 0.6, timing_met=False), _row(8, 12000, 1.2),
            _row(4, 9000, 1.2), _row(16, 17000, 0.9, freq=50.0)]
    best = best_designs(rows)
    assert list(best) == [("85k", 50.0), ("85k", 100.0)]
    assert best[("85k", 100.0)]["point"]["lanes"] == 4  # as fast as 8 lanes, fewer LUTs
    assert best[("85k", 50.0)]["point"]["lanes"] == 16


# ---------------------------------------------------------------------- on a cluster


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    return write_graph(tmp_path_factory.mktemp("graph") / "graph", *random_export(
        np.random.default_rng(5), "gcn", n=12, f0=6, hidden=4, classes=3))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A Dask scheduler and two single-thread workers on 127.0.0.1 (no nanny: a worker
    killed stays dead); yields (address, {worker address: pid})."""
    folder = tmp_path_factory.mktemp("dask")
    file = folder / "scheduler.json"
    procs = [subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--no-dashboard", "--scheduler-file", str(file)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              cwd=folder)]
    try:
        deadline = time.monotonic() + 60
        while not file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        address = json.loads(file.read_text())["address"]
        for k in range(2):
            procs.append(subprocess.Popen(
                [DASK, "worker", "--scheduler-file", str(file), "--nthreads", "1",
                 "--no-nanny", "--no-dashboard", "--host", "127.0.0.1", "--name", f"w{k}",
                 "--local-directory", str(folder / f"w{k}")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=folder))
        from dask.distributed import Client

        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
            pids = client.run(os.getpid)
        yield address, pids
    finally:
        for p in reversed(procs):
            p.kill()
            p.wait()


def _sweep(graph, out, build, *extra):
    """A sweep of 1 and 2 lanes through the RTL simulation, on Icarus: it compiles in a
    second where Verilator takes half a minute a point."""
    return ["sweep", "--graphs", str(graph), "--lanes", "1", "2", "--until", "sim",
            "--simulator", "icarus", "--build-dir", str(build), "--out", str(out), *extra]


def _figures(out: Path) -> list[dict]:
    """Each point's axes and figures, without the seconds and the stages' keys."""
    rows = json.loads((out / "sweep.json").read_text())["points"]
    return [{k: v for k, v in r.items() if k not in ("stages",)} for r in rows]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, graph, cluster):
    """A sweep of two points (1 and 2 lanes) through ``--scheduler``, nothing killed."""
    folder = tmp_path_factory.mktemp("reference")
    build = tmp_path_factory.getbasetemp().parent / "sweep-models"
    assert main(_sweep(graph, folder / "sweep", build, "--scheduler", cluster[0])) == 0
    return folder / "sweep", build


@ON_ONE_XDIST_WORKER
def test_a_sweep_runs_on_the_cluster_through_scheduler(reference, graph):
    out, _ = reference
    rows = _figures(out)
    assert [r["point"]["lanes"] for r in rows] == [1, 2]
    assert all(r["status"] == "done" and r["exact"] for r in rows)
    # the sim stage holds the engine to the golden model and the cycle model: its cycles
    from a2q.app.engine_build import load_engine_build
    from a2q.sim.cycles import engine_cycles

    for r in json.loads((out / "sweep.json").read_text())["points"]:
        rtl = out / "stages" / r["stages"]["rtl"]["key"] / "out"
        cfg = load_engine_build(rtl, graph).config
        assert cfg.lanes == r["point"]["lanes"]
        assert r["cycles"] == engine_cycles(
            load_engine_build(rtl, graph).graph, lanes=cfg.lanes,
            requant_lanes=cfg.requant_lanes or None,
            nonzeros_per_word=cfg.nonzeros_per_word)["total"]
    assert rows[1]["cycles"] < rows[0]["cycles"]  # two lanes finish sooner
    md = (out / "sweep.md").read_text()
    assert "| lanes | status |" in md and f"| {rows[1]['cycles']} |" in md
    stages = sorted(p.name.split("-")[0] for p in (out / "stages").iterdir())
    assert stages == ["golden"] * 2 + ["rtl"] * 2 + ["sim"] * 2


def _wait_for(predicate, seconds=120, what=""):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.regress  # a long case: make regress
@ON_ONE_XDIST_WORKER
def test_a_worker_killed_mid_stage_loses_nothing(reference, graph, cluster, tmp_path):
    address, pids = cluster
    out = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "a2q.app.entry", *_sweep(graph, out, reference[1],
                                                          "--scheduler", address)]
    sweep = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    from dask.distributed import Client

    with Client(address, timeout="30s") as client:
        def busy_worker():  # a worker running a stage whose temporary folder exists
            partial = [p for p in (out / "stages").glob(".*") if p.is_dir()] \
                if (out / "stages").exists() else []
            running = {w: ks for w, ks in client.processing().items() if ks}
            return running and partial and next(iter(running))

        victim = _wait_for(busy_worker, what="a stage under way")
        os.kill(pids[victim], signal.SIGKILL)
    log, _ = sweep.communicate(timeout=300)
    assert sweep.returncode == 0, log
    assert _figures(out) == _figures(reference[0])  # the same points, the same figures
    stages = out / "stages"
    assert not [p.name for p in stages.iterdir() if p.name.startswith(".")
                or p.name.endswith(".failed.log")]
    assert all((p / "stage.json").exists() for p in stages.iterdir())


@pytest.mark.regress  # a long case: make regress
@ON_ONE_XDIST_WORKER
def test_an_interrupted_sweep_resumes_without_rerunning_a_finished_point(reference, graph,
                                                                         cluster, tmp_path):
    address, _ = cluster
    out = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "a2q.app.entry", *_sweep(graph, out, reference[1],
                                                          "--scheduler", address)]
    sweep = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = _wait_for(lambda: sorted((out / "points").glob("point-*.json"))
                      if (out / "points").exists() else [], what="a finished point")[0]
    sweep.kill()
    sweep.wait()
    row = json.loads(first.read_text())
    finished = {s["key"]: (out / "stages" / s["key"] / "stage.json").stat().st_mtime_ns
                for s in row["stages"].values()}
    written = first.stat().st_mtime_ns
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "1 finished before, 1 to run" in rerun.stdout
    assert first.stat().st_mtime_ns == written  # the finished point's row, untouched
    for key, mtime in finished.items():  # and its stages, not run again
        assert (out / "stages" / key / "stage.json").stat().st_mtime_ns == mtime
    assert _figures(out) == _figures(reference[0])


def test_a_failing_point_is_recorded_and_the_sweep_goes_on(graph, tmp_path, capsys):
    # a time limit too short for any stage: every point fails, each with its reason
    out = tmp_path / "sweep"
    assert main(["sweep", "--graphs", str(graph), "--lanes", "1", "2", "--until", "golden",
                 "--time-limit", "0.01", "--workers", "1", "--out", str(out)]) == 1
    rows = json.loads((out / "sweep.json").read_text())["points"]
    assert [r["status"] for r in rows] == ["failed", "failed"]
    assert all("stage golden killed after its time limit of 0.01 s" in r["error"]
               for r in rows)
    failed_logs = sorted(p.name for p in (out / "stages").glob("*.failed.log"))
    assert len(failed_logs) == 2 and "failed: stage golden killed" in (
        out / "sweep.md").read_text()
    assert "2 points done" not in capsys.readouterr().out
    # failed points stay failed unless asked again
    assert main(["sweep", "--graphs", str(graph), "--lanes", "1", "2", "--until", "golden",
                 "--workers", "1", "--out", str(out)]) == 1
    assert "2 finished before, 0 to run" in capsys.readouterr().out
    assert main(["sweep", "--graphs", str(graph), "--lanes", "1", "2", "--until", "golden",
                 "--workers", "1", "--retry-failed", "--out", str(out)]) == 0
    rows = json.loads((out / "sweep.json").read_text())["points"]
    assert [r["status"] for r in rows] == ["done", "done"]
    assert not list((out / "stages").glob("*.failed.log"))


def test_an_unreachable_scheduler_is_one_line(graph, tmp_path, capsys):
    assert main(["sweep", "--graphs", str(graph), "--until", "golden", "--scheduler",
                 "tcp://127.0.0.1:9", "--out", str(tmp_path / "s")]) == 1
    assert "no Dask scheduler answers" in capsys.readouterr().err
