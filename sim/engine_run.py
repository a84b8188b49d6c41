"""``a2q sim engine``: a whole exported model's inference in RTL, checked against the golden model.

:func:`run_engine` takes an engine build (:mod:`a2q.app.engine_build`): the engine sized for
the export and its baselines, their memory images and the engine's Verilog. The simulator
model is built from that Verilog (cached by its hash under ``build_root``) and runs the
export's memory image from ``$readmemh`` files, then each baseline's re-export of
:mod:`a2q.sim.baselines`, so the A²Q speedup is a ratio of cycles measured in RTL on one
design, stage by stage. (The cycles do not depend on the input memory's width, which the
build takes from the widest run, only on the bits in the node fields and scalars, as the cycle
model says.)
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from a2q.common.files import atomic_folder

from . import golden, rtl_sim
from .baselines import as_uniform_engine, stage_rows
from .cycles import engine_cycles, graph_engine_cycles
from .engine_image import graph_memory_words, memory_words, write_init_files
from .graph_golden import graph_accuracy, run_graph_batch


def _save(path: Path, a: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    path.write_bytes(buf.getvalue())


def load_port_words(model: rtl_sim.Model, words: dict[str, list[int]]) -> np.ndarray:
    """Every init word as a ``load`` stream payload ``{memory, addr, data}``, in hex (the
    payload is wider than any NumPy integer; strings cross to the testbench without pickle)."""
    ports = model.info["memories"]
    amax = max(m["depth"] for m in ports.values())
    mem_bits = max(len(ports) - 1, 1).bit_length()
    addr_bits = max(amax - 1, 1).bit_length()
    out = [ports[name]["load_index"] | (a << mem_bits) | (w << (mem_bits + addr_bits))
           for name, ws in words.items() for a, w in enumerate(ws)]
    return np.array([format(w, "x") for w in out])


def phase_cycles(phases: list[str], starts, total: int) -> dict[str, int]:
    """Each phase's cycles from the counter at the start of every phase after the first (the
    testbench's ``phase_starts``) and the run's total; ``total`` last."""
    bounds = [0, *(int(s) for s in starts), total]
    if len(bounds) != len(phases) + 1:
        raise ValueError(f"the engine ran {len(bounds) - 1} phases, the model has {len(phases)}")
    out = {p: b - a for p, a, b in zip(phases, bounds, bounds[1:])}
    out["total"] = total
    return out


def simulate(model: rtl_sim.Model, cfg, graphs: list, work: Path, *,
             name: str, waves: Path | None = None, via_load_port: bool = False,
             images: list[dict] | None = None) -> list[dict]:
    """Inferences of ``graphs`` (node-level exports, or graph-level batches on a graph-level
    engine) on ``model`` in one simulator process: the first one's memory image comes from
    the ``.hex`` init files (or, with ``via_load_port``, through the load port), every later
    one through the load port. ``images``: their memory words when already computed. Per
    export: logits (per node or per graph), cycles measured and predicted (a graph-level
    batch's with the golden model's pool entries), the comparison with the golden model."""
    graph_level = cfg.graph_level
    work.mkdir(parents=True, exist_ok=True)
    if images is None:
        words_of = graph_memory_words if graph_level else memory_words
        images = [words_of(cfg, g) for g in graphs]
    cases, golds = [], []
    for k, (g, words) in enumerate(zip(graphs, images)):
        gold = run_graph_batch(g) if graph_level else golden.run(g)
        golds.append(gold)
        case = {"num_nodes": np.int64(g.num_nodes), "expected": gold.logits,
                "classes": np.int64(cfg.classes if graph_level else cfg.layers[-1].out_dim)}
        if graph_level:
            case["num_graphs"] = np.int64(g.num_graphs)
        if k == 0:
            write_init_files(cfg, {} if via_load_port else words, work)
        if k > 0 or via_load_port:
            case["load_words"] = load_port_words(model, words)
        cases.append(case)
    res = rtl_sim.run(model, cases, work, name=name, waves=waves, check=False)
    for f in work.glob("*.hex"):
        f.unlink()
    out = []
    for g, gold, r in zip(graphs, golds, res["results"]):
        logits = r["y"]
        pred = logits.argmax(1)
        mismatched = int((logits != gold.logits).any(1).sum())
        if graph_level:
            predicted = graph_engine_cycles(g, gold.selections, lanes=cfg.lanes,
                                            requant_lanes=cfg.requant_lanes)
            accuracy = [graph_accuracy(g, p) for p in (pred, gold.predictions)]
            counted = {"num_graphs": g.num_graphs, "mismatched_graphs": mismatched}
        else:
            predicted = engine_cycles(g, lanes=cfg.lanes, requant_lanes=cfg.requant_lanes,
                                      nonzeros_per_word=cfg.nonzeros_per_word)
            accuracy = [golden.accuracy(g, p) for p in (pred, gold.predictions)]
            counted = {"mismatched_nodes": mismatched}
        out.append({
            "logits": logits, "predictions": pred,
            "cycles_measured": r["cycles"], "cycles_predicted": predicted["total"],
            "cycles_by_phase_measured": phase_cycles(list(predicted)[:-1],
                                                     r.get("phase_starts", []), r["cycles"]),
            "cycles_by_phase_predicted": predicted,
            "logits_equal_golden": mismatched == 0, **counted,
            "test_acc": golden.percent(accuracy[0]),
            "golden_test_acc": golden.percent(accuracy[1]),
        })
    seconds = res["seconds"]
    for r in out:  # one process: its wall time is shared
        r.update(sim_seconds=round(seconds, 3), junit=str(res["junit"]), log=str(res["log"]),
                 cycles_per_second=round(sum(x["cycles_measured"] for x in out) / seconds, 1))
    return out


def run_engine(build, out: str | os.PathLike, *, simulator: str = "verilator",
               build_root: str | os.PathLike = "build/sim", waves: bool = False,
               via_load_port: bool = False, progress=print) -> dict:
    """Run an engine build (:class:`a2q.app.engine_build.EngineBuild`: the export, its
    baselines, the engine's configuration, memory images and Verilog) in ``simulator``: the
    export, then each baseline; write ``out``; return the report (``result.json``), whose
    ``verilog_sha256`` names the Verilog the simulator compiled."""
    g, variants, cfg, images = build.graph, build.variants, build.config, build.images
    build_root = Path(build_root)
    progress(f"engine: building the {simulator} model ({cfg.model}, {cfg.lanes} lanes, "
             f"{cfg.max_nodes} nodes, {cfg.max_edges} edges)")
    model = rtl_sim.build_engine_model(build.verilog, build.params, simulator, build_root,
                                       waves=waves)
    verilog = model.rtl / model.info["verilog"]
    simulated_sha256 = hashlib.sha256(verilog.read_bytes()).hexdigest()
    out = Path(out)
    # each run its own working folder: runs sharing build_root (parallel commands and tests)
    # must not clean up one another's files
    parent = build_root / "engine-runs"
    parent.mkdir(parents=True, exist_ok=True)
    runs = Path(tempfile.mkdtemp(prefix=f"{out.name}-{simulator}-", dir=parent))
    wave_file = runs / ("waves.fst" if simulator == "verilator" else "waves.vcd") if waves else None
    progress(f"engine: running {g.manifest.get('dataset')} {g.model} ({g.num_nodes} nodes) "
             f"on {simulator}")
    main, = simulate(model, cfg, [g], runs / "a2q", name="engine", waves=wave_file,
                     via_load_port=via_load_port, images=[images["a2q"]])
    report = {
        "graph": str(g.path), "model": g.model, "dataset": g.manifest.get("dataset"),
        "method": g.manifest.get("method"), "simulator": simulator, "lanes": cfg.lanes,
        "engine": cfg.to_json(), "verilog": str(verilog), "verilog_sha256": simulated_sha256,
        "build_seconds": model.build_seconds, "num_nodes": g.num_nodes,
        "task": "graph" if cfg.graph_level else "node",
        "loaded_through": "load port" if via_load_port else "init files",
    }
    report.update({k: v for k, v in main.items() if k not in ("logits", "predictions")})
    report["cycles_match"] = main["cycles_by_phase_measured"] == main["cycles_by_phase_predicted"]
    report["baselines"] = {}
    for key, v in variants.items():
        progress(f"engine: running the {key} baseline on {simulator}")
        r, = simulate(model, cfg, [v], runs / key, name=f"engine-{key}", images=[images[key]])
        report["baselines"][key] = {
            k: r[k] for k in ("cycles_measured", "cycles_predicted", "cycles_by_phase_measured",
                              "cycles_by_phase_predicted", "logits_equal_golden",
                              "mismatched_nodes", "mismatched_graphs", "test_acc",
                              "golden_test_acc", "sim_seconds") if k in r}
        # a uniform-bit engine quantizes as it aggregates: a graph-level baseline's
        # quantization phases do not count against it
        compared = (as_uniform_engine(r["cycles_by_phase_measured"]) if cfg.graph_level
                    else r["cycles_by_phase_measured"])
        report["baselines"][key]["cycles_compared"] = compared["total"]
        report["baselines"][key]["speedup_of_a2q"] = round(
            compared["total"] / main["cycles_measured"], 4)
    report["stages"] = stage_rows(g, variants, {
        "a2q": main["cycles_by_phase_measured"],
        **{k: (as_uniform_engine(b["cycles_by_phase_measured"]) if cfg.graph_level
               else b["cycles_by_phase_measured"]) for k, b in report["baselines"].items()}})
    with atomic_folder(out, command="a2q sim engine") as tmp:
        _save(tmp / "logits.npy", main["logits"])
        _save(tmp / "predictions.npy", main["predictions"])
        for f in (Path(main["junit"]), Path(main["log"])):
            shutil.copy(f, tmp / f.name)
        report["junit"] = str(out / Path(main["junit"]).name)
        report["log"] = str(out / Path(main["log"]).name)
        if wave_file is not None and wave_file.exists():
            shutil.copy(wave_file, tmp / wave_file.name)
            report["waves"] = str(out / wave_file.name)
        (tmp / "result.json").write_text(json.dumps(report, indent=2) + "\n")
    shutil.rmtree(runs, ignore_errors=True)
    return report


def passed(report: dict) -> bool:
    """Every run's logits equal the golden model's and its cycles, phase by phase, the cycle
    model's."""
    runs = [report] + list(report.get("baselines", {}).values())
    return all(r["logits_equal_golden"]
               and r["cycles_by_phase_measured"] == r["cycles_by_phase_predicted"]
               for r in runs)
