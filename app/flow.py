"""``a2q flow``: one command from a dataset to a verified, synthesized engine and its report.

Stages, each writing its own folder under ``--out`` whole or not at all:

========  =====================================================================================
train     A²Q training (``train/``), or a finished run given with ``--run`` (reused as is)
methods   the same model with the other methods (``methods/<method>/``), for accuracy vs bits
export    the bitwidth-annotated graph (``graph/``)
golden    the integer golden model (``golden/``)
rtl       the engine build (:mod:`a2q.app.engine_build`) for the export and the baselines:
          Verilog, init files, parameters, lint (``rtl/``)
sim       ``rtl/``'s Verilog in RTL simulation, the A²Q export and each baseline (``sim/``)
synth     Yosys for ECP5 and the fit check on ``rtl/``'s Verilog, nextpnr with ``--place``
          (``synth/``); a design that does not fit is a result
report    ``report.md`` and ``report.html`` (plots embedded) and ``plots/``
========  =====================================================================================

``flow.json`` records the options, each finished stage (its seconds and its figures) and the
sha256 of the engine's Verilog as the rtl, sim and synth stages read it (``verilog_sha256``:
the Verilog simulated is the Verilog synthesized); it is rewritten after every stage. Run the
same command again and the finished stages whose output is still there are reused: a flow that
failed (or was stopped) resumes at the stage that did not finish (or whose output went
missing), and every stage after it runs again. ``--restart`` runs every stage again, ``--from
STAGE`` that stage and the ones after it. A stage's messages go to the terminal and to
``logs/<stage>.log`` (with the traceback when it fails).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import traceback
from pathlib import Path

from a2q.common.choices import DEFAULT_LANES, ENGINE_MODELS
from a2q.common.errors import A2QError
from a2q.common.files import STAMP
from a2q.sim.baselines import DEFAULT_BASELINES

from .flow_stages import OTHER_METHODS, STAGE_FOLDERS, STAGE_TEXT, STAGES

STATE = "flow.json"
VERSION = 1


@dataclasses.dataclass(frozen=True)
class FlowOptions:
    """What decides the flow's results (recorded in ``flow.json``; a resumed flow must match)."""
    dataset: str = "Cora"
    model: str = "gcn"
    seed: int = 0
    epochs: int | None = None  # the training default unless given
    run: str | None = None  # a finished A²Q run folder to reuse instead of training
    methods: tuple[str, ...] = tuple(OTHER_METHODS)
    lanes: int = DEFAULT_LANES
    baselines: tuple[str, ...] = DEFAULT_BASELINES
    simulator: str = "verilator"
    synth: bool = True
    place: bool = False  # nextpnr on the full engine takes about 15 minutes here
    device: str = "85k"
    freq_mhz: float = 100.0

    def command(self) -> str:
        """The ``a2q flow`` options that reproduce these (defaults left out)."""
        words = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value == f.default and f.name not in ("dataset", "model", "seed"):
                continue
            flag = {"freq_mhz": "freq"}.get(f.name, f.name).replace("_", "-")
            if isinstance(value, bool):
                words.append(f"--{flag}" if value else f"--no-{flag}")
            elif isinstance(value, tuple):
                words.append(" ".join([f"--{flag}", *value]))
            else:
                words.append(f"--{flag} {value}")
        return "a2q flow " + " ".join(w for w in words if w)

    def check(self) -> None:
        unknown = [m for m in self.methods if m not in OTHER_METHODS]
        if unknown:
            raise A2QError(f"flow: unknown method {unknown[0]!r}; expected some of "
                           f"{', '.join(OTHER_METHODS)}")
        from a2q.sim.baselines import BASELINES

        bad = [b for b in self.baselines if b not in BASELINES]
        if bad:
            raise A2QError(f"flow: unknown baseline {bad[0]!r}; expected some of "
                           f"{', '.join(BASELINES)}")
        if self.model not in ENGINE_MODELS:
            raise A2QError(f"flow: the engine runs gcn and gin, not {self.model!r}")
        from a2q.sw.data import check_name, is_node_level

        if not is_node_level(check_name(self.dataset)):
            raise A2QError(f"flow: the flow runs node-level datasets (Cora, CiteSeer, "
                           f"PubMed), not {self.dataset}; a graph-level GIN runs with a2q "
                           "train, then a2q sim engine on its export")
        if self.simulator not in ("verilator", "icarus"):
            raise A2QError(f"flow: unknown simulator {self.simulator!r}")
        if self.lanes < 1:
            raise A2QError(f"flow: --lanes must be at least 1, got {self.lanes}")


class StageLog:
    """A stage's messages: printed (indented) and appended to ``logs/<stage>.log``."""

    def __init__(self, path: Path, echo):
        self.path, self.echo = path, echo
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")

    def __call__(self, line: str) -> None:
        self.echo(f"    {line}")
        with open(self.path, "a") as f:
            f.write(line.rstrip("\n") + "\n")


class Flow:
    """The stages of one ``--out`` folder; :meth:`run` runs what is not finished."""

    def __init__(self, out: str | os.PathLike, options: FlowOptions, *, data_root=None,
                 build_root: str | os.PathLike = "build/sim", restart: bool = False,
                 echo=print):
        options.check()
        self.out, self.options, self.data_root = Path(out), options, data_root
        self.build_root, self.echo = Path(build_root), echo
        self.state = self._load_state(restart)

    # ------------------------------------------------------------------ state
    def _load_state(self, restart: bool) -> dict:
        path = self.out / STATE
        mine = _jsonable(dataclasses.asdict(self.options))
        if restart or not path.exists():
            return {"version": VERSION, "options": mine, "stages": {}}
        try:
            state = json.loads(path.read_text())
            stages, theirs = state["stages"], state["options"]
        except (ValueError, KeyError, TypeError) as exc:
            raise A2QError(f"{path}: not a flow state file ({exc}); use another --out or "
                           "--restart") from None
        for key, value in mine.items():
            if theirs.get(key) != value:
                raise A2QError(f"{path}: this folder's flow ran with {key} = "
                               f"{theirs.get(key)!r}, this command asks {value!r} (field "
                               f"options.{key}); use another --out or --restart")
        return {"version": VERSION, "options": mine, "stages": stages}

    def _save_state(self) -> None:
        self.state["verilog_sha256"] = self._verilog_sha256()
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / STAMP).write_text("a2q flow\n")
        tmp = self.out / f".{STATE}.tmp"
        tmp.write_text(json.dumps(self.state, indent=2) + "\n")
        os.replace(tmp, self.out / STATE)

    def _verilog_sha256(self) -> dict:
        """The sha256 of the engine's Verilog as each stage that used it recorded it, and
        whether the one simulated is the one synthesized."""
        out = {}
        for stage, key in (("rtl", "built"), ("sim", "simulated"), ("synth", "synthesized")):
            r = self.state["stages"].get(stage, {}).get("result") or {}
            if r.get("verilog_sha256"):
                out[key] = r["verilog_sha256"]
        if "simulated" in out and "synthesized" in out:
            out["simulated_is_synthesized"] = out["simulated"] == out["synthesized"]
        return out

    def finished(self, stage: str) -> bool:
        """Recorded as done, and its output still there."""
        s = self.state["stages"].get(stage)
        if not s or s.get("status") != "done":
            return False
        result = s.get("result") or {}
        if result.get("skipped"):
            return True
        output = {"train": Path(result.get("run", "")), "report": self.out / "report.md",
                  **{k: self.out / v for k, v in STAGE_FOLDERS.items()}}.get(stage)
        return output is None or output.exists()

    def result(self, stage: str) -> dict:
        return self.state["stages"][stage]["result"]

    # ------------------------------------------------------------------ running
    def run(self, *, from_stage: str | None = None) -> dict:
        """Run every stage not yet finished (``from_stage`` and the later ones again); returns
        the state. A failing stage raises :class:`A2QError` naming it and its log."""
        if from_stage is not None and from_stage not in STAGES:
            raise A2QError(f"flow: unknown stage {from_stage!r}; stages: {', '.join(STAGES)}")
        if from_stage is not None:
            for s in STAGES[STAGES.index(from_stage):]:
                self.state["stages"].pop(s, None)
        self._save_state()
        rerun = False  # once a stage runs, the ones after it run too (their inputs changed)
        for k, stage in enumerate(STAGES, start=1):
            head = f"[{k}/{len(STAGES)}] {stage}"
            if not rerun and self.finished(stage):
                self.echo(f"{head}: finished before, reused ({self.out / STATE})")
                continue
            rerun = True
            self.echo(f"{head}: {STAGE_TEXT[stage]}")
            log = StageLog(self.out / "logs" / f"{stage}.log", self.echo)
            t0 = time.perf_counter()
            try:
                result = getattr(self, f"_{stage}")(log)
            except KeyboardInterrupt:
                raise
            except Exception as exc:
                with open(log.path, "a") as f:
                    f.write(traceback.format_exc())
                why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                self.state["stages"][stage] = {"status": "failed", "error": why}
                self._save_state()
                raise A2QError(f"flow: stage {stage} failed: {why.removeprefix('a2q: ')}; see "
                               f"{log.path}; run the same command again to resume at "
                               f"{stage}") from None
            seconds = round(time.perf_counter() - t0, 1)
            self.state["stages"][stage] = {"status": "done", "seconds": seconds,
                                           "result": _jsonable(result)}
            self._save_state()
            self.echo(f"{head}: done in {seconds:.1f} s")
        return self.state

    # ------------------------------------------------------------------ stages
    def _config(self, method: str, bits: int | None = None):
        from a2q.sw.config import default_config

        o = self.options
        return default_config(o.dataset, o.model, method, seed=o.seed, epochs=o.epochs,
                              bits=bits)

    def _train(self, log) -> dict:
        from a2q.sw.run_folder import load_checkpoint, write_run
        from a2q.sw.train import train

        if self.options.run is not None:
            run = Path(self.options.run)
            ckpt = load_checkpoint(run)  # refuses a folder that is not a finished run
            cfg = ckpt["config"]
            wants = {"dataset": self.options.dataset, "model": self.options.model,
                     "method": "a2q"}
            for key, want in wants.items():
                if cfg.get(key) != want:
                    raise A2QError(f"{run}: a {cfg.get(key)} run (field config.{key}); the flow "
                                   f"needs {want}")
            log(f"reusing the finished run {run}")
            metrics = json.loads((run / "metrics.json").read_text())
            return {"run": str(run), "metrics": metrics}
        out = self.out / "train"
        result = train(self._config("a2q"), data_root=self.data_root, progress=True)
        write_run(result, out)
        m = result.metrics
        log(f"test acc {m['test_acc']:.1f}% (validation-selected), "
            f"{m['avg_feature_bits']:.2f} average bits -> {out}")
        return {"run": str(out), "metrics": m}

    def _methods(self, log) -> dict:
        from a2q.sw.run_folder import write_run
        from a2q.sw.train import train

        out = {}
        for label in self.options.methods:
            method, bits = OTHER_METHODS[label]
            r = train(self._config(method, bits), data_root=self.data_root, progress=False)
            write_run(r, self.out / "methods" / label)
            m = r.metrics
            out[label] = {"test_acc": m["test_acc"], "avg_feature_bits": m["avg_feature_bits"],
                          "test_acc_best_epoch": m["test_acc_best_epoch"]}
            log(f"{label}: test acc {m['test_acc']:.1f}%, {m['avg_feature_bits']:.2f} bits")
        return out

    def _run_folder(self) -> Path:
        return Path(self.result("train")["run"])

    def _export(self, log) -> dict:
        from a2q.sw.export import export_run

        graph = export_run(self._run_folder(), self.out / "graph", data_root=self.data_root)
        log(f"bitwidth-annotated graph -> {graph}")
        return {"graph": str(graph)}

    def _golden(self, log) -> dict:
        from a2q.sim.golden_run import run_golden

        s = run_golden(self.out / "graph", self.out / "golden", lanes=self.options.lanes)
        log(f"golden test acc {s['test_acc']:.2f}% (torch {s['reference_test_acc']:.2f}%), "
            f"predictions agree on {100 * s['prediction_agreement']:.2f}% of nodes")
        return s

    def _rtl(self, log) -> dict:
        from .engine_build import build_engine

        o = self.options
        build = build_engine(self.out / "graph", lanes=o.lanes, baselines=o.baselines)
        cfg = build.config
        log(f"engine: {cfg.model}, {cfg.lanes} lanes, {cfg.max_nodes} nodes, {cfg.max_edges} "
            f"edges, {cfg.input_bits}-bit input (A²Q and {len(build.variants)} baselines); "
            "generating Verilog")
        info = build.write_rtl(self.out / "rtl")
        log(f"verilator --lint-only -Wall clean; Verilog sha256 {info['verilog_sha256']}")
        return {"config": info["config"], "memories": len(info["memories"]),
                "verilog_sha256": info["verilog_sha256"]}

    def _sim(self, log) -> dict:
        from a2q.sim.engine_run import passed, run_engine

        from .engine_build import load_engine_build

        build = load_engine_build(self.out / "rtl", self.out / "graph")
        r = run_engine(build, self.out / "sim", simulator=self.options.simulator,
                       build_root=self.build_root, progress=log)
        ok = passed(r)
        log(f"logits equal the golden model on {r['num_nodes'] - r['mismatched_nodes']}/"
            f"{r['num_nodes']} nodes; {r['cycles_measured']} cycles; " + ", ".join(
                f"{k} {b['speedup_of_a2q']:.3f}x" for k, b in r["baselines"].items()))
        if not ok:
            raise A2QError(f"the engine differs from the golden model or the cycle model; see "
                           f"{self.out / 'sim' / 'result.json'}")
        keep = ("cycles_measured", "cycles_by_phase_measured", "logits_equal_golden",
                "mismatched_nodes", "num_nodes", "test_acc", "golden_test_acc",
                "cycles_per_second", "sim_seconds", "build_seconds", "stages",
                "verilog_sha256")
        return {**{k: r[k] for k in keep}, "exact": ok,
                "baselines": {k: {"cycles_measured": b["cycles_measured"],
                                  "cycles_by_phase_measured": b["cycles_by_phase_measured"],
                                  "speedup_of_a2q": b["speedup_of_a2q"],
                                  "test_acc": b["test_acc"]}
                              for k, b in r["baselines"].items()}}

    def _synth(self, log) -> dict:
        if not self.options.synth:
            log("skipped (--no-synth)")
            return {"skipped": True}
        from a2q.hw.fpga.synthesis import SynthesisError, synthesize

        place = self.options.place
        log(f"Yosys for ECP5 {self.options.device} and the fit check"
            + (", then nextpnr if it fits (a2q synth's defaults: about 15 minutes on the full "
               "engine)" if place else " (minutes; --place adds nextpnr)"))
        try:
            r = synthesize(self.out / "rtl", "ecp5", self.out / "synth",
                           device=self.options.device, freq_mhz=self.options.freq_mhz,
                           place_and_route=place)
        except SynthesisError as exc:
            raise A2QError(str(exc)) from None
        simulated = self.result("sim")["verilog_sha256"]
        if r["verilog_sha256"] != simulated:
            raise A2QError(f"the Verilog synthesized (sha256 {r['verilog_sha256']}) is not the "
                           f"one simulated ({simulated}); run the flow again from rtl "
                           "(--from rtl)")
        log(f"{r['verdict']}; the Verilog simulated, sha256 {r['verilog_sha256']}")
        return r

    def _report(self, log) -> dict:
        from .flow_report import write_report

        files = write_report(self.out, self.state, self.options)
        for f in files:
            log(f"-> {f}")
        return {"files": [str(f) for f in files]}


def _jsonable(obj):
    return json.loads(json.dumps(obj, default=lambda o: list(o) if isinstance(o, tuple)
                                 else str(o)))
