"""``a2q sweep``: a grid of designs, each point a pure function from its configuration to its
folder of artifacts, run on a Dask cluster (:mod:`a2q.app.cluster`).

A point is one value of every axis (:data:`AXES`: dataset, model, method, training seed and
epochs, or an export given instead of training; lanes; the ECP5 device, the clock target,
nextpnr's placer, router and seed). It runs the stages it needs, in order, up to ``--until``:

======  ====================================================  ==============================
stage   what (the ``a2q`` command it runs)                    depends on
======  ====================================================  ==============================
train   ``a2q train --no-export``                             dataset, model, method, seed,
                                                              epochs
export  ``a2q export`` (A²Q and uniform runs of Cora,         train
        CiteSeer, PubMed GCN / GIN)
golden  ``a2q golden --lanes``                                export, lanes
rtl     ``a2q rtl engine --lanes`` (no baselines)             export, lanes
sim     ``a2q sim engine`` (logits and cycles must be exact)  rtl, simulator
synth   ``a2q synth --no-place`` (Yosys, fit check)           rtl, device
pnr     ``a2q synth --netlist`` (nextpnr)                     synth, clock, placer, router,
                                                              nextpnr seed
======  ====================================================  ==============================

Each stage is named by a hash of what it depends on (``<stage>-<hash>``), so that points share
their finished stages: two points that differ only in lanes train once. It goes to the cluster
as a Dask task once the stages it reads have finished (:class:`_StageRunner`). A stage runs
its command as a child process (:func:`a2q.common.processes.run_logged`: killed past
``--time-limit`` and when its worker dies) into a temporary folder renamed to
``stages/<stage>-<hash>/`` when it succeeds, with ``stage.json`` (its command, seconds and
figures) and ``stage.log``: a stage's folder is whole or absent. A stage that fails leaves its
log as ``stages/<stage>-<hash>.failed.log``. Dask reruns the task of a worker that died on
another worker.

The client (the ``a2q sweep`` process) writes each point's row when its last stage finishes
(``points/<point-hash>.json``) and, after every point, ``sweep.json``, ``sweep.md`` and the
Pareto plots (:mod:`a2q.app.sweep_report`). Run the same command again and the points with a
row are not run again (failed ones only with ``--retry-failed``); the stages they share with
the others are reused.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import itertools
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

from a2q.common.choices import DEFAULT_LANES, ENGINE_MODELS
from a2q.common.errors import A2QError
from a2q.common.files import STAMP, atomic_folder
from a2q.common.processes import TimeLimitExceeded, run_logged

from .sweep_report import best_so_far

STAGES = ("train", "export", "golden", "rtl", "sim", "synth", "pnr")
#: the last stage a sweep may stop at (``--until``)
UNTIL = ("train", "golden", "sim", "synth", "pnr")

#: axis -> default values (one grid: every combination of its axes' values)
AXES = {
    "dataset": ["Cora"], "model": ["gcn"], "method": ["a2q"], "seed": [0], "epochs": [None],
    "graph": [None], "lanes": [DEFAULT_LANES], "device": ["85k"], "freq": [100.0],
    "placer": [None], "router": [None], "pnr_seed": [None],
}
#: the axes each stage depends on (besides the stage before it)
STAGE_AXES = {"train": ("dataset", "model", "method", "seed", "epochs"), "export": (),
              "golden": ("lanes",), "rtl": ("lanes",), "sim": (), "synth": ("device",),
              "pnr": ("device", "freq", "placer", "router", "pnr_seed")}
#: the stages whose output folders each stage reads
READS = {"export": ("train",), "golden": ("export",), "rtl": ("export",),
         "sim": ("rtl", "export"), "synth": ("rtl",), "pnr": ("rtl", "synth")}
#: what a given export (``graph``) replaces
TRAIN_AXES = STAGE_AXES["train"]
#: the environment the stages' commands see, passed to workers on other machines too
PASSED_ENVIRONMENT = ("A2Q_DATA_ROOT", "A2Q_DATASETS_SOURCE")

#: Every stage takes one core (a worker per core runs one stage at a time): torch's float
#: reductions then run on one thread wherever the stage runs, so a point trains the same model
#: on any worker (``OMP_NUM_THREADS=1 a2q train ...`` gives it too).
STAGE_ENVIRONMENT = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


class StageFailed(RuntimeError):
    """A stage's command failed or ran past its time limit; the message names the stage."""


@dataclasses.dataclass(frozen=True)
class SweepOptions:
    """What every point shares."""
    until: str = "pnr"
    simulator: str = "verilator"
    time_limit_s: float | None = None  # each stage of each point
    data_root: str | None = None
    build_dir: str | None = None  # the simulator models' cache (default <sweep>/build/sim)


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:12]


def _folder_digest(folder: Path) -> str:
    """An export folder's content: its files' names and bytes."""
    h = hashlib.sha256()
    for f in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != STAMP):
        h.update(str(f.relative_to(folder)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:12]


def expand_grid(grids: list[dict]) -> list[dict]:
    """Every point of every grid, in order, each once (a point two grids share counts once).
    A grid maps axes of :data:`AXES` to a value or a list of values; an axis it leaves out
    takes its default."""
    points, seen = [], set()
    for k, grid in enumerate(grids):
        if not isinstance(grid, dict):
            raise A2QError(f"sweep grid {k}: expected an object of axes, got {grid!r}")
        unknown = [a for a in grid if a not in AXES]
        if unknown:
            raise A2QError(f"sweep grid {k}: unknown axis {unknown[0]!r}; axes: "
                           f"{', '.join(AXES)}")
        axes = {a: grid.get(a, d) for a, d in AXES.items()}
        axes = {a: v if isinstance(v, list) else [v] for a, v in axes.items()}
        for a, values in axes.items():
            if not values:
                raise A2QError(f"sweep grid {k}: axis {a!r} has no values")
        for combo in itertools.product(*axes.values()):
            point = _check_point(dict(zip(axes, combo)), k)
            key = _digest(point)
            if key not in seen:
                seen.add(key)
                points.append(point)
    return points


def _check_point(p: dict, grid: int) -> dict:
    where = f"sweep grid {grid}"
    for axis in ("lanes", "seed"):
        if not isinstance(p[axis], int) or isinstance(p[axis], bool):
            raise A2QError(f"{where}: axis {axis!r} takes integers, got {p[axis]!r}")
    if p["lanes"] < 1:
        raise A2QError(f"{where}: axis 'lanes' must be at least 1, got {p['lanes']}")
    for axis in ("epochs", "pnr_seed"):
        if p[axis] is not None and (not isinstance(p[axis], int) or p[axis] < 0):
            raise A2QError(f"{where}: axis {axis!r} takes non-negative integers, got "
                           f"{p[axis]!r}")
    if not isinstance(p["freq"], (int, float)) or p["freq"] <= 0:
        raise A2QError(f"{where}: axis 'freq' takes MHz above 0, got {p['freq']!r}")
    p["freq"] = float(p["freq"])
    from a2q.hw.fpga.synthesis import CAPACITY, PLACERS, ROUTERS

    for axis, known in (("placer", PLACERS), ("router", ROUTERS),
                        ("device", tuple(CAPACITY["ecp5"]))):
        if p[axis] is not None and p[axis] not in known:
            raise A2QError(f"{where}: axis {axis!r}: unknown {p[axis]!r}; expected one of "
                           f"{', '.join(known)}")
    if p["graph"] is not None:
        graph = Path(p["graph"]).resolve()
        if not (graph / "manifest.json").is_file():
            raise A2QError(f"{where}: axis 'graph': {p['graph']} holds no manifest.json; give "
                           "an export folder (a2q export)")
        from a2q.sim.graph_batch import export_kind

        if export_kind(graph) == "graph":
            raise A2QError(f"{where}: axis 'graph': {p['graph']} is a graph-level export "
                           "(a2q-graph-batch); a sweep's flow reads node-level exports (a2q sim "
                           "engine runs a graph-level one)")
        p["graph"] = str(graph)
        for axis in TRAIN_AXES:  # the export replaces the training
            p[axis] = None
        return p
    from a2q.sw.data import check_name

    try:
        check_name(p["dataset"])
    except A2QError as exc:
        raise A2QError(f"{where}: axis 'dataset': {exc}") from None
    from a2q.common.choices import METHODS, MODELS

    for axis, known in (("model", MODELS), ("method", METHODS)):
        if p[axis] not in known:
            raise A2QError(f"{where}: axis {axis!r}: unknown {p[axis]!r}; expected one of "
                           f"{', '.join(known)}")
    return p


def last_stage(point: dict, until: str) -> str:
    """The last stage ``point`` runs: ``until``, or ``train`` when the run has no export
    (a method or model the engine does not run)."""
    if point["graph"] is None:
        from a2q.sw.data import is_node_level
        from a2q.sw.export import EXPORTABLE_METHODS

        if not (is_node_level(point["dataset"]) and point["model"] in ENGINE_MODELS
                and point["method"] in EXPORTABLE_METHODS):
            return "train"
    return until


def stage_chain(point: dict, until: str, simulator: str = "verilator"
                ) -> list[tuple[str, str, dict]]:
    """(stage, key, the axes it depends on) of every stage ``point`` runs, in order; each key
    hashes its stage's axes (``sim``: and the simulator) and the key of the stage before it.
    ``golden`` hangs off ``export`` beside ``rtl``."""
    last = last_stage(point, until)
    wanted = {"train": ["train"], "golden": ["train", "export", "golden"],
              "sim": ["train", "export", "golden", "rtl", "sim"],
              "synth": ["train", "export", "golden", "rtl", "sim", "synth"],
              "pnr": list(STAGES)}[last]
    if point["graph"] is not None:
        wanted = [s for s in wanted if s not in ("train", "export")]
    parent = {"export": "train", "golden": "export", "rtl": "export", "sim": "rtl",
              "synth": "rtl", "pnr": "synth"}
    keys: dict[str, str] = {}
    if point["graph"] is not None:
        keys["export"] = f"graph-{_folder_digest(Path(point['graph']))}"
    chain = []
    for stage in wanted:
        axes = {a: point[a] for a in STAGE_AXES[stage]}
        hashed = {**axes, "simulator": simulator} if stage == "sim" else axes
        keys[stage] = f"{stage}-{_digest([stage, hashed, keys.get(parent.get(stage))])}"
        chain.append((stage, keys[stage], axes))
    return chain


def stage_command(stage: str, axes: dict, folders: dict[str, str], out: str,
                  sweep: Path, options: SweepOptions) -> list[str]:
    """The ``a2q`` words of ``stage``, given its inputs' folders and its output ``out``."""
    data = ["--data-root", options.data_root] if options.data_root else []
    if stage == "train":
        words = ["train", "--dataset", axes["dataset"], "--model", axes["model"], "--method",
                 axes["method"], "--seed", str(axes["seed"]), "--no-export", "--no-progress"]
        if axes["epochs"] is not None:
            words += ["--epochs", str(axes["epochs"])]
        return [*words, *data, "--out", out]
    if stage == "export":
        return ["export", folders["train"], *data, "--out", out]
    if stage == "golden":
        return ["golden", folders["export"], "--lanes", str(axes["lanes"]), "--out", out]
    if stage == "rtl":
        return ["rtl", "engine", "--graph", folders["export"], "--lanes", str(axes["lanes"]),
                "--baselines", "--out", out]
    if stage == "sim":
        return ["sim", "engine", "--rtl", folders["rtl"], "--graph", folders["export"],
                "--simulator", options.simulator, "--build-dir",
                options.build_dir or str(sweep / "build" / "sim"), "--out", out]
    if stage == "synth":
        return ["synth", folders["rtl"], "--target", "ecp5", "--device", axes["device"],
                "--no-place", "--out", out]
    words = ["synth", folders["rtl"], "--target", "ecp5", "--device", axes["device"],
             "--netlist", folders["synth"], "--freq", f"{axes['freq']:g}"]
    for axis, flag in (("placer", "--placer"), ("router", "--router"), ("pnr_seed", "--seed")):
        if axes[axis] is not None:
            words += [flag, str(axes[axis])]
    return [*words, "--out", out]


def stage_figures(stage: str, out: Path) -> dict:
    """The figures a point's row takes from ``stage``'s output folder."""
    def read(name):
        return json.loads((out / name).read_text())

    if stage == "train":
        m = read("metrics.json")
        return {"test_acc": m["test_acc"], "avg_bits": m["avg_feature_bits"]}
    if stage == "golden":
        s = read("summary.json")
        return {"golden_test_acc": s["test_acc"],
                "golden_agreement": s["prediction_agreement"]}
    if stage == "sim":
        r = read("result.json")
        return {"cycles": r["cycles_measured"], "exact": True,
                "rtl_test_acc": r["test_acc"]}
    if stage in ("synth", "pnr"):
        r = read("report.json")
        figures = {k: r.get(k) for k in ("luts", "ffs", "brams", "dsps", "fits", "verdict")}
        if stage == "pnr":
            figures.update({k: r.get(k) for k in ("fmax_mhz", "timing_met")})
        return figures
    return {}


def run_stage(sweep: str, stage: str, key: str, axes: dict, time_limit_s: float | None,
              options: SweepOptions, env: dict, *inputs: dict) -> dict:
    """Run one stage into ``stages/<key>`` (whole or not at all) unless it is there; returns
    its ``stage.json``: key, folder, seconds, figures. ``inputs``: the ``stage.json`` of the
    stages it reads. Runs on a Dask worker."""
    sweep = Path(sweep)
    final = sweep / "stages" / key
    done = final / "stage.json"
    if done.exists():
        return json.loads(done.read_text())
    folders = {i["stage"]: i["folder"] for i in inputs}
    failed_log = sweep / "stages" / f"{key}.failed.log"
    unfit = stage == "pnr" and next(i for i in inputs if i["stage"] == "synth")["figures"][
        "fits"] is False
    with atomic_folder(final) as tmp:
        out = tmp / "out"
        words = stage_command(stage, axes, folders, str(out), sweep, options)
        t0 = time.perf_counter()
        if unfit:  # nothing to place: the synth stage's figures say why
            words = []
            out.mkdir()
        else:
            _run_command(stage, words, tmp, failed_log, sweep, env, time_limit_s)
        record = {"stage": stage, "key": key, "folder": str(final / "out"), "axes": axes,
                  "command": "a2q " + " ".join(words).replace(str(tmp), str(final))
                  if words else None, "seconds": round(time.perf_counter() - t0, 1),
                  "figures": {} if unfit else stage_figures(stage, out)}
        (tmp / "stage.json").write_text(json.dumps(record, indent=2) + "\n")
    failed_log.unlink(missing_ok=True)
    return record


def _run_command(stage: str, words: list[str], tmp: Path, failed_log: Path, sweep: Path,
                 env: dict, time_limit_s: float | None) -> None:
    """``a2q <words>`` with its output into ``tmp/stage.log``; raises :class:`StageFailed`
    (its log kept as ``failed_log``) unless it succeeds. A synthesis that finds the design too
    big for the device (``a2q synth``'s exit 1 with a report saying so) is a result."""
    cmd = [sys.executable, "-m", "a2q.app.entry", *words]
    log = tmp / "stage.log"
    try:
        rc = run_logged(cmd, log, cwd=sweep, env={**os.environ, **env, **STAGE_ENVIRONMENT},
                        timeout=time_limit_s)
    except TimeLimitExceeded as exc:
        shutil.copy(log, failed_log)
        raise StageFailed(f"stage {stage} {exc}; see {failed_log}") from None
    report = tmp / "out" / "report.json"
    if rc == 1 and stage in ("synth", "pnr") and report.exists() and json.loads(
            report.read_text()).get("fits") is False:
        return
    if rc != 0:
        shutil.copy(log, failed_log)
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
        why = lines[-1].strip().removeprefix("a2q: error: ") if lines else f"exit {rc}"
        why = re.sub(r" \(report: [^)]*\)", "", why)  # inside the folder just removed
        raise StageFailed(f"stage {stage} failed (exit {rc}): {why}; see {failed_log}")


def point_row(point: dict, key: str, records: list[dict]) -> dict:
    """A finished point's row: its axes, its stages' figures and seconds, and its latency
    (cycles at the routed Fmax)."""
    figures = {}
    for r in records:
        figures.update(r["figures"])
    if figures.get("cycles") is not None and figures.get("fmax_mhz"):
        figures["latency_us"] = round(figures["cycles"] / figures["fmax_mhz"], 3)
    return {"key": key, "point": point, "status": "done", **figures,
            "stages": {r["stage"]: {"key": r["key"], "seconds": r["seconds"]}
                       for r in records}}


def point_key(point: dict, options: SweepOptions) -> str:
    """A point's name: its axes, its last stage and the simulator."""
    return f"point-{_digest([point, last_stage(point, options.until), options.simulator])}"


def run_sweep(out: str | os.PathLike, points: list[dict], options: SweepOptions, *, client,
              retry_failed: bool = False, echo=print, heartbeat_s: float = 60.0) -> dict:
    """Run every point of ``points`` without a row in ``out/points`` (a failed one too with
    ``retry_failed``) on ``client``; returns the sweep's state (``sweep.json``)."""
    from .sweep_report import varying_axes, write_sweep

    out = Path(out).resolve()
    (out / "points").mkdir(parents=True, exist_ok=True)
    (out / "stages").mkdir(exist_ok=True)
    (out / STAMP).write_text("a2q sweep\n")
    with _only_sweep(out):
        _remove_partial_stages(out)
        rows, todo = {}, []
        for point in points:
            key = point_key(point, options)
            row_file = out / "points" / f"{key}.json"
            row = json.loads(row_file.read_text()) if row_file.exists() else None
            if row is not None and (row["status"] == "done" or not retry_failed):
                rows[key] = row
            else:
                todo.append((key, point))
        order = [point_key(p, options) for p in points]
        varying = varying_axes([{"point": p} for p in points]) or ["lanes"]
        echo(f"sweep of {len(points)} points -> {out}: {len(rows)} finished before, "
             f"{len(todo)} to run on {_describe(client)}")
        run = _StageRunner(out, options, client)
        for key, point in todo:
            run.add_point(key, point)
        state = write_sweep(out, [rows[k] for k in order if k in rows], options)
        for key, point, records, error in run.finished_points(heartbeat_s, echo):
            rows[key] = _write_row(out, key, point, records, error)
            echo(_progress_line(rows[key], rows, varying, len(points), run.running_points()))
            state = write_sweep(out, [rows[k] for k in order if k in rows], options)
        _remove_partial_stages(out)
    return state


class _StageRunner:
    """The points' stages on the cluster. A stage is submitted once every stage it reads has
    finished, with their records as plain data, and only while a worker thread is free, so
    that Dask never queues it on a busy worker: a task holding futures is placed beside its
    inputs, and Dask left three 15-minute place and routes queued on one worker while the
    other idled (work stealing did not move them)."""

    def __init__(self, out: Path, options: SweepOptions, client):
        self.out, self.options, self.client = out, options, client
        self.env = {k: os.environ[k] for k in PASSED_ENVIRONMENT if k in os.environ}
        self.sweep_tag = _digest(str(out))
        self.stages: dict[str, dict] = {}  # key -> {stage, axes, reads, record, error, future}
        self.points: list[tuple[str, dict, list[str]]] = []
        self.futures: dict = {}  # Dask future -> stage key

    def add_point(self, key: str, point: dict) -> None:
        reads: dict[str, str] = {}
        chain = []
        if point["graph"] is not None:
            reads["export"] = f"given:{point['graph']}"
            self.stages.setdefault(reads["export"], {
                "record": {"stage": "export", "folder": point["graph"]}})
        for stage, skey, axes in stage_chain(point, self.options.until, self.options.simulator):
            self.stages.setdefault(skey, {"stage": stage, "axes": axes, "reads": [
                reads[s] for s in READS.get(stage, ())]})
            reads[stage] = skey
            chain.append(skey)
        self.points.append((key, point, chain))

    def _submit_ready(self) -> None:
        """Submit the stages whose inputs are finished, no more than the workers have threads
        free: a task Dask places on a busy worker waits there even when another is free."""
        from .cluster import free_threads

        free = free_threads(self.client, len(self.futures))
        for skey, s in self.stages.items():
            if "record" in s or "error" in s or "future" in s:
                continue
            inputs = [self.stages[r] for r in s["reads"]]
            failed = next((i["error"] for i in inputs if "error" in i), None)
            if failed is not None:
                s["error"] = failed
            elif free > 0 and all("record" in i for i in inputs):
                free -= 1
                s["future"] = self.client.submit(
                    run_stage, str(self.out), s["stage"], skey, s["axes"],
                    self.options.time_limit_s, self.options, self.env,
                    *(i["record"] for i in inputs), key=f"{skey}@{self.sweep_tag}", pure=False)
                self.futures[s["future"]] = skey

    def finished_points(self, heartbeat_s: float, echo):
        """Yield (key, point, records, error) for each point as its last stage finishes, or
        its first failing stage fails; after ``heartbeat_s`` without news, say what the
        workers run (when it changed, or every ten such waits)."""
        from dask.distributed import wait

        remaining = list(self.points)
        said, said_at = "", 0.0  # the last news of the workers, and when
        while remaining:
            self._submit_ready()
            still = []
            for key, point, chain in remaining:
                error = next((self.stages[k]["error"] for k in chain
                              if "error" in self.stages[k]), None)
                if error is not None:
                    yield key, point, None, error
                elif all("record" in self.stages[k] for k in chain):
                    yield key, point, [self.stages[k]["record"] for k in chain], None
                else:
                    still.append((key, point, chain))
            remaining = still
            if not remaining:
                break
            try:
                if not self.futures:  # no worker yet
                    self.client.wait_for_workers(1, timeout=heartbeat_s)
                    continue
                done, _ = wait(list(self.futures), timeout=heartbeat_s,
                               return_when="FIRST_COMPLETED")
            except TimeoutError:
                now = ", ".join(k.split("@")[0] for k in self._running()) or "nothing"
                if now != said or time.monotonic() - said_at > 10 * heartbeat_s:
                    echo(f"  on the workers: {now}")
                    said, said_at = now, time.monotonic()
                continue
            for future in done:
                s = self.stages[self.futures.pop(future)]
                del s["future"]
                try:
                    s["record"] = future.result()
                except Exception as exc:  # noqa: BLE001 - a failing stage fails its points
                    text = str(exc).strip()
                    s["error"] = text.splitlines()[0] if text else type(exc).__name__
            self._submit_ready()  # before the news: what runs now is what a line counts

    def _running(self) -> list[str]:
        """The Dask tasks the workers hold now."""
        return sorted({str(k) for keys in self.client.processing().values() for k in keys})

    def running_points(self) -> int:
        """Points one of whose stages a worker is running now."""
        running = {k.split("@")[0] for k in self._running()}
        return sum(1 for _, _, chain in self.points if running.intersection(chain))


def _write_row(out: Path, key: str, point: dict, records: list[dict] | None,
               error: str | None) -> dict:
    row = (point_row(point, key, records) if error is None
           else {"key": key, "point": point, "status": "failed", "error": error})
    tmp = out / "points" / f".{key}.json.tmp"
    tmp.write_text(json.dumps(row, indent=2) + "\n")
    os.replace(tmp, out / "points" / f"{key}.json")
    return row


def _describe(client) -> str:
    from .cluster import describe

    return describe(client)


def _progress_line(row: dict, rows: dict, varying: list[str], total: int,
                   running: int) -> str:
    done = sum(r["status"] == "done" for r in rows.values())
    failed = sum(r["status"] == "failed" for r in rows.values())
    what = ", ".join(f"{a} {row['point'][a]}" for a in varying)
    if row["status"] == "failed":
        result = f"FAILED: {row['error']}"
    else:
        result = ", ".join(f"{k} {row[k]}" for k in (
            "test_acc", "avg_bits", "golden_agreement", "cycles", "luts", "fmax_mhz",
            "latency_us") if row.get(k) is not None) or "done"
    best = best_so_far(list(rows.values()), varying)
    return (f"[{done} done, {running} running, {failed} failed of {total}] {what}: {result}"
            + (f"; best so far: {best}" if best else ""))


@contextlib.contextmanager
def _only_sweep(out: Path):
    """Hold ``out``'s lock for the block: refuse, with one line, a second sweep in it."""
    with open(out / ".sweep.lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise A2QError(f"{out}: another a2q sweep is running in this folder") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _remove_partial_stages(out: Path) -> None:
    """The temporary folders of stages whose worker died mid-stage (no sweep runs here now:
    the caller holds the folder's lock)."""
    for tmp in (out / "stages").glob(".*"):
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
