"""``a2q flow``: one command from a dataset to a verified, synthesized engine and its report.

Stages, each writing its own folder under ``--out`` whole or not at all:

========  =====================================================================================
train     A²Q training (``train/``), or a finished run given with ``--run`` (reused as is)
methods   the same model with the other methods (``methods/<method>/``), for accuracy vs bits
export    the bitwidth-annotated graph (``graph/``)
golden    the integer golden model (``golden/``)
rtl       the layer engine's Verilog, init files, lint (``rtl/``)
sim       the engine in RTL on the A²Q export and its uniform-bit baselines (``sim/``)
synth     Yosys for ECP5 and the fit check, nextpnr with ``--place`` (``synth/``); a design
          that does not fit is a result
report    ``report.md`` and ``report.html`` (plots embedded) and ``plots/``
========  =====================================================================================

``flow.json`` records the options and each finished stage (its seconds and its figures); it
is rewritten after every stage. Run the same command again and the finished stages whose
output is still there are reused: a flow that failed (or was stopped) resumes at the stage
that did not finish (or whose output went missing), and every stage after it runs again.
``--restart`` runs every stage again, ``--from STAGE`` that stage and the ones after it. A
stage's messages go to the terminal and to ``logs/<stage>.log`` (with the traceback when it
fails).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import traceback
from pathlib import Path

from .errors import A2QError

STAGES = ("train", "methods", "export", "golden", "rtl", "sim", "synth", "report")
#: the other methods trained for the accuracy-vs-bits comparison: label -> (method, bits)
OTHER_METHODS = {"fp32": ("fp32", None), "uniform8": ("uniform", 8),
                 "uniform4": ("uniform", 4), "dq": ("dq", 4)}
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
    lanes: int = 16
    baselines: tuple[str, ...] = ("uniform4", "uniform4-exact-input", "uniform8")
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
        if self.model not in ("gcn", "gin"):
            raise A2QError(f"flow: the engine runs gcn and gin, not {self.model!r}")
        from .data import check_name, is_node_level

        if not is_node_level(check_name(self.dataset)):
            raise A2QError(f"flow: the engine runs node-level datasets (Cora, CiteSeer, "
                           f"PubMed), not {self.dataset}")
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
        self.out.mkdir(parents=True, exist_ok=True)
        tmp = self.out / f".{STATE}.tmp"
        tmp.write_text(json.dumps(self.state, indent=2) + "\n")
        os.replace(tmp, self.out / STATE)

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
        from .config import default_config

        o = self.options
        return default_config(o.dataset, o.model, method, seed=o.seed, epochs=o.epochs,
                              bits=bits)

    def _train(self, log) -> dict:
        from .run_folder import load_checkpoint, write_run
        from .train import train

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
        from .run_folder import write_run
        from .train import train

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
        from .export import export_run

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
        from a2q.hw import rtl
        from a2q.hw.layer_engine import LayerEngine
        from a2q.sim.annotated_graph import read_graph
        from a2q.sim.engine_image import engine_config, memory_words, write_init_files
        from a2q.sim.toolchain import write_linted

        g = read_graph(self.out / "graph")
        cfg = engine_config(g, lanes=self.options.lanes)
        words = memory_words(cfg, g)
        log(f"engine: {cfg.model}, {cfg.lanes} lanes, {cfg.max_nodes} nodes, {cfg.max_edges} "
            "edges; generating Verilog")
        info = write_linted(self.out / "rtl", lambda tmp: rtl.write_engine_rtl(
            LayerEngine(cfg, ram_template=True), tmp,
            init_files=lambda f: write_init_files(cfg, words, f)))
        log("verilator --lint-only -Wall clean")
        return {"config": info["config"], "memories": len(info["memories"])}

    def _sim(self, log) -> dict:
        from a2q.sim.engine_run import passed, run_engine

        r = run_engine(self.out / "graph", self.out / "sim", simulator=self.options.simulator,
                       lanes=self.options.lanes, build_root=self.build_root,
                       baselines=self.options.baselines, progress=log)
        ok = passed(r)
        log(f"logits equal the golden model on {r['num_nodes'] - r['mismatched_nodes']}/"
            f"{r['num_nodes']} nodes; {r['cycles_measured']} cycles; " + ", ".join(
                f"{k} {b['speedup_of_a2q']:.3f}x" for k, b in r["baselines"].items()))
        if not ok:
            raise A2QError(f"the engine differs from the golden model or the cycle model; see "
                           f"{self.out / 'sim' / 'result.json'}")
        keep = ("cycles_measured", "cycles_by_phase_measured", "logits_equal_golden",
                "mismatched_nodes", "num_nodes", "test_acc", "golden_test_acc",
                "cycles_per_second", "sim_seconds", "build_seconds", "stages")
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
        from a2q.hw.synthesis import ENGINE_PNR, SynthesisError, synthesize

        place = self.options.place
        log(f"Yosys for ECP5 {self.options.device} and the fit check"
            + (", then nextpnr if it fits (static placer, router2 with timing-driven rip-up: "
               "about 15 minutes on the full engine)" if place else
               " (minutes; --place adds nextpnr)"))
        try:
            r = synthesize(self.out / "rtl", "ecp5", self.out / "synth",
                           device=self.options.device, freq_mhz=self.options.freq_mhz,
                           place_and_route=place, **ENGINE_PNR)
        except SynthesisError as exc:
            raise A2QError(str(exc)) from None
        log(r["verdict"])
        return r

    def _report(self, log) -> dict:
        from .flow_report import write_report

        files = write_report(self.out, self.state, self.options)
        for f in files:
            log(f"-> {f}")
        return {"files": [str(f) for f in files]}


#: stage -> the folder under ``--out`` that holds its output (``methods`` may hold none)
STAGE_FOLDERS = {"export": "graph", "golden": "golden", "rtl": "rtl", "sim": "sim",
                 "synth": "synth"}

STAGE_TEXT = {
    "train": "A²Q training",
    "methods": "the same model with the other methods (accuracy against bits)",
    "export": "the bitwidth-annotated graph",
    "golden": "the integer golden model",
    "rtl": "the layer engine's Verilog",
    "sim": "the engine in RTL: A²Q and its uniform-bit baselines",
    "synth": "FPGA synthesis (ECP5)",
    "report": "report.md and report.html",
}


def _jsonable(obj):
    return json.loads(json.dumps(obj, default=lambda o: list(o) if isinstance(o, tuple)
                                 else str(o)))


def summary_rows(state: dict) -> list[tuple[str, str, str, str]]:
    """(stage, status, seconds, figures) for the terminal's final table."""
    rows = []
    for stage in STAGES:
        s = state["stages"].get(stage, {})
        r = s.get("result", {})
        if stage == "train" and r:
            m = r["metrics"]
            what = f"test acc {m['test_acc']:.1f}%, {m['avg_feature_bits']:.2f} avg bits"
        elif stage == "methods" and s.get("status") == "done":
            what = ", ".join(f"{k} {v['test_acc']:.1f}%" for k, v in r.items()) or "none"
        elif stage == "golden" and r:
            what = (f"test acc {r['test_acc']:.1f}%, agrees with torch on "
                    f"{100 * r['prediction_agreement']:.2f}%")
        elif stage == "sim" and r:
            what = (f"exact {r['num_nodes'] - r['mismatched_nodes']}/{r['num_nodes']}, "
                    f"{r['cycles_measured']} cycles")
            if r["baselines"]:
                what += "; speedup " + ", ".join(
                    f"{k} {b['speedup_of_a2q']:.2f}x" for k, b in r["baselines"].items())
        elif stage == "synth" and r:
            what = r.get("verdict", "skipped")
        elif stage == "export" and r:
            what = r["graph"]
        elif stage == "rtl" and r:
            what = f"{r['config']['lanes']} lanes, {r['memories']} memories, lint clean"
        elif stage == "report" and r:
            what = ", ".join(Path(f).name for f in r["files"] if f.endswith((".md", ".html")))
        else:
            what = s.get("error", "")
        seconds = f"{s['seconds']:.1f}" if "seconds" in s else ""
        rows.append((stage, s.get("status", "not run"), seconds, what))
    return rows
