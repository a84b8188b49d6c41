"""``a2q bench hw``: A²Q against uniform-bit baselines on the layer engine in RTL, stage by
stage, and the engine's cost in FPGA resources over a sweep of lanes; ``a2q bench timing``:
the engine's logic through place and route (Fmax, critical path).

For each dataset and model: train A²Q (``seed``), export, run the export and its three
baselines (:data:`a2q.sim.baselines.BASELINES`) on the same engine in Verilator, and list
each stage's measured cycles (``bench/hw.json`` rows: dataset, model, stage, baseline,
cycles_a2q, cycles_baseline, speedup, ideal_speedup), and each configuration's test accuracy
against its whole-model cycles (``trade_off``: A²Q, every baseline, and on one dataset and model
the models trained at uniform 4 and 8 bits). Then, on that dataset and model, the same export
on engines of several lane counts: cycles measured in RTL, and Yosys's figures for an ECP5
(LUTs, flip-flops, block RAMs, DSPs, fit by cell counts), the default lane count placed and
routed (``a2q synth``'s defaults): its latency at the routed Fmax beside PyTorch's inference
time on this machine's CPU (:mod:`~a2q.app.bench.cpu_latency`). ``a2q bench timing`` places and
routes one engine with chosen nextpnr options (Fmax, latency at Fmax, critical path).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from a2q.common.choices import DEFAULT_LANES, ENGINE_MODELS

from .models import _write_files, trained_export


def _engine_runs(build, work: Path, *, progress) -> dict:
    from a2q.sim.engine_run import passed, run_engine

    r = run_engine(build, work, build_root=work.parent / "build",
                   progress=lambda s: progress(f"  {s}"))
    r["passed"] = passed(r)
    return r


def _synthesize(build, work: Path, *, device: str, freq: float, **settings) -> dict:
    """An engine build's Verilog (memories filled from its A²Q image, or zero where the build
    was sized without the export) through ``a2q synth``'s ECP5 flow in ``work`` (``settings``:
    :func:`~a2q.hw.fpga.synthesis.synthesize`'s); the report with the seconds it took."""
    from a2q.hw.fpga.synthesis import synthesize

    lanes = build.config.lanes
    rtl = work / f"rtl-{lanes}"
    build.write_rtl(rtl, lint=False)
    t0 = time.perf_counter()
    r = synthesize(rtl, "ecp5", work / f"synth-{lanes}", device=device, freq_mhz=freq,
                   **settings)
    r["seconds"] = round(time.perf_counter() - t0, 1)
    return r


def run_hw_bench(out: str | os.PathLike, *, datasets=("Cora", "CiteSeer"),
                 models=ENGINE_MODELS, seed: int = 0, lanes: int = DEFAULT_LANES,
                 sweep_lanes=(4, 8, 16, 32), sweep_on=("Cora", "gcn"), synth: bool = True,
                 device: str = "85k", freq_mhz: float = 100.0, data_root=None,
                 graph_datasets=("MUTAG", "PROTEINS"), progress=print) -> dict:
    """Run the benchmark and write ``hw.json``, ``hw.md`` and ``hw_lanes.png`` into ``out``.
    ``graph_datasets``: graph-level GIN on each (:func:`_graph_level`)."""
    from a2q.sim.annotated_graph import read_graph
    from a2q.sim.baselines import BASELINES, per_node_stages

    from ..engine_build import build_engine

    t_start = time.perf_counter()
    rows, summary, sweep, trade_off, latency = [], [], [], [], None
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        graphs = {}
        for dataset in datasets:
            for model in models:
                progress(f"{dataset} {model}: training A²Q (seed {seed}) and exporting")
                graph = graphs[dataset, model] = trained_export(
                    tmp / f"{dataset}-{model}", dataset, model, seed=seed, data_root=data_root)
                progress(f"{dataset} {model}: A²Q and {', '.join(BASELINES)} on the engine "
                         f"({lanes} lanes, Verilator)")
                build = build_engine(graph, lanes=lanes, baselines=BASELINES)
                r = _engine_runs(build, tmp / f"sim-{dataset}-{model}", progress=progress)
                rows += [{"dataset": dataset, "model": model, **x} for x in r["stages"]]
                g = read_graph(graph)
                trade_off += [{"dataset": dataset, "model": model, "config": "a2q",
                               "source": "A²Q export", "test_acc": r["test_acc"],
                               "cycles": r["cycles_measured"], "measured": True,
                               "avg_bits": {k: round(float(v.mean()), 4)
                                            for k, v in per_node_stages(g).items()}}] + [
                    {"dataset": dataset, "model": model, "config": k,
                     "source": "re-export of the A²Q model", "test_acc": b["test_acc"],
                     "cycles": b["cycles_measured"], "measured": True}
                    for k, b in r["baselines"].items()]
                summary.append({
                    "dataset": dataset, "model": model, "lanes": lanes, "nodes": g.num_nodes,
                    "avg_bits": {k: round(float(v.mean()), 4)
                                 for k, v in per_node_stages(g).items()},
                    "test_acc": r["test_acc"], "exact": r["passed"],
                    "cycles": {"a2q": r["cycles_measured"],
                               **{k: b["cycles_measured"] for k, b in r["baselines"].items()}},
                    "speedup": {k: b["speedup_of_a2q"] for k, b in r["baselines"].items()},
                    "cycles_by_stage_a2q": r["cycles_by_phase_measured"],
                    "sim_seconds": round(r["sim_seconds"] + sum(
                        b["sim_seconds"] for b in r["baselines"].values()), 1)})
                trade_off += _paper_configuration(tmp, dataset, model, seed=seed, lanes=lanes,
                                                  data_root=data_root, progress=progress)
                progress(f"{dataset} {model}: A²Q {r['cycles_measured']} cycles; speedup " +
                         ", ".join(f"{k} {v:.3f}x" for k, v in summary[-1]["speedup"].items()) +
                         f"; exact: {r['passed']}")
        graph_level = [_graph_level(tmp, dataset, seed=seed, lanes=lanes, data_root=data_root,
                                    progress=progress) for dataset in graph_datasets]
        if sweep_on in graphs:
            trade_off += _trained_uniform(tmp, *sweep_on, seed=seed, lanes=lanes,
                                          data_root=data_root, progress=progress)
            graph = graphs[sweep_on]
            for n in sweep_lanes:
                progress(f"lanes {n}: {' '.join(sweep_on)} A²Q and uniform4 in RTL")
                build = build_engine(graph, lanes=n, baselines=("uniform4",))
                r = _engine_runs(build, tmp / f"sweep-{n}", progress=progress)
                point = {"lanes": n, "cycles_a2q": r["cycles_measured"],
                         "cycles_uniform4": r["baselines"]["uniform4"]["cycles_measured"],
                         "exact": r["passed"]}
                if synth:
                    route = n == lanes  # the default engine, as a2q synth places and routes it
                    progress(f"lanes {n}: Yosys for ECP5 {device} and the fit check" + (
                        ", then nextpnr with a2q synth's defaults (about 15 minutes)" if route
                        else " (no place and route: a2q bench timing); minutes"))
                    s = _synthesize(build, tmp / "synth", device=device, freq=freq_mhz,
                                    place_and_route=route)
                    point.update({k: s.get(k) for k in (
                        "luts", "carries", "ffs", "brams", "dsps", "lutram", "fits", "limits",
                        "verdict", "fmax_mhz", "timing_met")})
                    point["luts_per_lane"] = round(s["luts"] / n, 1)
                    point["synth_seconds"] = s["seconds"]
                    progress(f"lanes {n}: {s['verdict']}")
                sweep.append(point)
            latency = _latency(tmp / "-".join(sweep_on), sweep, lanes=lanes,
                               data_root=data_root, progress=progress)
    command = " ".join(["a2q bench hw", f"--seed {seed}", f"--lanes {lanes}",
                        "--datasets", *datasets, "--models", *models,
                        "--graph-datasets", *graph_datasets,
                        "--sweep-lanes", *map(str, sweep_lanes)]
                       + ([f"--sweep-dataset {sweep_on[0]} --sweep-model {sweep_on[1]}"]
                          if sweep_lanes else []) + ([] if synth else ["--no-synth"]))
    result = {"command": command, "seed": seed, "lanes": lanes,
              "baselines": {k: {"bits": b, "input_bits": i} for k, (b, i) in BASELINES.items()},
              "device": f"ecp5 {device}", "freq_target_mhz": freq_mhz,
              "sweep_on": list(sweep_on), "seconds": round(time.perf_counter() - t_start, 1),
              "rows": rows, "summary": summary, "graph_level": graph_level,
              "trade_off": trade_off,
              "dominating_a2q": dominating(trade_off), "latency": latency, "sweep": sweep}
    out = Path(out)
    files = {"hw.json": json.dumps(result, indent=2) + "\n", "hw.md": markdown(result)}
    _write_files(out, files)
    if sweep:
        plot_sweep(result, out / "hw_lanes.png")
    if trade_off:
        plot_trade_off(result, out / "hw_tradeoff.png")
    progress(files["hw.md"])
    return result


#: the baselines of a graph-level model on the engine
GRAPH_BASELINES = ("uniform4", "uniform8")


def _graph_level(tmp: Path, dataset: str, *, seed: int, lanes: int, data_root,
                 progress) -> dict:
    """Graph-level GIN on ``dataset``: A²Q trained (``seed``, the defaults: 10 folds), fold 0's
    model and test graphs exported, run with :data:`GRAPH_BASELINES` on one engine in
    Verilator: each stage's cycles (the quantization from ``sums`` A²Q's own: the baselines,
    one pool entry per layer, count 0 there), the whole batch's, the accuracy."""
    from a2q.sim.baselines import per_node_stages
    from a2q.sim.graph_batch import read_graph_batch

    from ..engine_build import build_engine

    progress(f"{dataset} gin (graph-level): training A²Q (seed {seed}, 10 folds) and exporting "
             "fold 0's test graphs")
    graph = trained_export(tmp / f"{dataset}-gin", dataset, "gin", seed=seed,
                           data_root=data_root)
    g = read_graph_batch(graph)
    progress(f"{dataset} gin: A²Q and {', '.join(GRAPH_BASELINES)} on the engine ({lanes} "
             "lanes, Verilator)")
    build = build_engine(graph, lanes=lanes, baselines=GRAPH_BASELINES)
    r = _engine_runs(build, tmp / f"sim-{dataset}-gin", progress=progress)
    out = {"dataset": dataset, "model": "gin", "lanes": lanes, "graphs": g.num_graphs,
           "nodes": g.num_nodes, "pool_bits": {
               f"layer{l}": sorted({int(b) for b in g[f"layer{l}.pool_bits"]})
               for l in range(1, len(g.layers) + 1)},
           "avg_bits": {k: round(float(v.mean()), 4) for k, v in per_node_stages(g).items()},
           "test_acc": r["test_acc"], "golden_test_acc": r["golden_test_acc"],
           "exact": r["passed"],
           "cycles": {"a2q": r["cycles_measured"],
                      **{k: b["cycles_compared"] for k, b in r["baselines"].items()}},
           "speedup": {k: b["speedup_of_a2q"] for k, b in r["baselines"].items()},
           "cycles_by_stage_a2q": r["cycles_by_phase_measured"], "rows": r["stages"],
           "sim_seconds": round(r["sim_seconds"] + sum(
               b["sim_seconds"] for b in r["baselines"].values()), 1)}
    progress(f"{dataset} gin: A²Q {r['cycles_measured']} cycles; speedup " + ", ".join(
        f"{k} {v:.3f}x" for k, v in out["speedup"].items()) + f"; exact: {r['passed']}")
    return out


def _trained_point(folder: Path, cfg, *, lanes: int, data_root) -> dict:
    """A model trained with ``cfg`` into ``folder`` and exported: its test accuracy from the
    golden model, its cycles on the engine from the cycle model (equal to the RTL's in every
    test) and its average per-node bits by stage (``trade_off`` fields)."""
    from a2q.sim import golden
    from a2q.sim.annotated_graph import read_graph
    from a2q.sim.baselines import per_node_stages
    from a2q.sim.cycles import engine_cycles
    from a2q.sw.export import export_run
    from a2q.sw.run_folder import write_run
    from a2q.sw.train import train

    write_run(train(cfg, data_root=data_root, progress=False), folder)
    g = read_graph(export_run(folder, data_root=data_root))
    return {"dataset": cfg.dataset, "model": cfg.model,
            "test_acc": golden.percent(golden.accuracy(g, golden.run(g).predictions)),
            "cycles": engine_cycles(g, lanes=lanes)["total"], "measured": False,
            "avg_bits": {k: round(float(v.mean()), 4) for k, v in per_node_stages(g).items()}}


def _trained_uniform(tmp: Path, dataset: str, model: str, *, seed: int, lanes: int,
                     data_root, progress) -> list[dict]:
    """The models trained at uniform 4 and 8 bits (``seed``, the defaults)
    (:func:`_trained_point`)."""
    from a2q.sw.config import default_config

    out = []
    for bits in (4, 8):
        progress(f"{dataset} {model}: training uniform{bits} (seed {seed}) and exporting")
        point = _trained_point(tmp / f"{dataset}-{model}-uniform{bits}",
                               default_config(dataset, model, "uniform", seed=seed, bits=bits),
                               lanes=lanes, data_root=data_root)
        del point["avg_bits"]  # every per-node tensor at the same bits
        out.append({"dataset": dataset, "model": model, "config": f"trained uniform{bits}",
                    "source": "trained at uniform bits", **point})
    return out


#: the options that give A²Q's configuration in the paper where the default differs from it
#: (:func:`a2q.sw.config.default_config` then takes the paper's hyperparameters and memory
#: penalty): the aggregation operand at 4 bits per column; GIN in its own order
PAPER_CONFIGURATION = {"gcn": {"operand": "column"}, "gin": {"gin_order": "aggregate-first"}}


def _paper_configuration(tmp: Path, dataset: str, model: str, *, seed: int, lanes: int,
                         data_root, progress) -> list[dict]:
    """A²Q trained in the paper's configuration (:data:`PAPER_CONFIGURATION`, ``seed``) where
    the default differs from it (:func:`_trained_point`)."""
    from a2q.sw.config import default_config

    cfg = default_config(dataset, model, "a2q", seed=seed, **PAPER_CONFIGURATION[model])
    if cfg == default_config(dataset, model, "a2q", seed=seed):
        return []
    progress(f"{dataset} {model}: training A²Q in the paper's configuration (seed {seed})")
    point = _trained_point(tmp / f"{dataset}-{model}-paper", cfg, lanes=lanes,
                           data_root=data_root)
    return [{"dataset": dataset, "model": model, "config": "A²Q, paper's configuration",
             "source": "trained: " + ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in
                                               PAPER_CONFIGURATION[model].items()), **point}]


def dominating(trade_off: list[dict]) -> list[dict]:
    """The configurations that beat A²Q's on both counts: no more cycles and a higher test
    accuracy, on the same dataset and model."""
    a2q = {(r["dataset"], r["model"]): r for r in trade_off if r["config"] == "a2q"}
    return [r for r in trade_off if r["config"] != "a2q" and (r["dataset"], r["model"]) in a2q
            and r["cycles"] <= a2q[r["dataset"], r["model"]]["cycles"]
            and r["test_acc"] > a2q[r["dataset"], r["model"]]["test_acc"]]


def _latency(run: Path, sweep: list[dict], *, lanes: int, data_root, progress) -> dict:
    """The default engine's latency at its routed Fmax (where routed) and PyTorch's CPU
    inference time of the same model on this machine."""
    from .cpu_latency import cpu_inference_ms, engine_against_cpu

    progress("PyTorch CPU inference time of the same model (200 runs each)")
    cpu = cpu_inference_ms(run, data_root=data_root)
    point = next((p for p in sweep if p["lanes"] == lanes), {})
    return {**engine_against_cpu(cpu, point.get("cycles_a2q"), point.get("fmax_mhz")),
            "lanes": lanes, "timing_met": point.get("timing_met")}

def run_timing_bench(out: str | os.PathLike, *, dataset: str = "Cora", model: str = "gcn",
                     seed: int = 0, lanes=(DEFAULT_LANES,), max_nodes: int | None = None,
                     max_edges: int | None = None, device: str = "85k",
                     freq_mhz: float = 100.0, route: bool = True, router: str | None = None,
                     density: float | None = None, placer: str | None = None,
                     pnr_seed: int | None = None, timing_ripup: bool | None = None,
                     requant_lanes: int = 0, data_root=None,
                     progress=print) -> dict:
    """The engine ``a2q flow`` builds for ``dataset``/``model`` (the A²Q export and the
    baselines of :data:`a2q.sim.baselines.BASELINES`, :func:`~a2q.app.engine_build.
    build_engine`) through Yosys and nextpnr: Fmax, critical path. ``max_nodes`` /
    ``max_edges`` size its memories down instead (zero-filled), for a quicker look at the
    logic alone. ``route=False`` stops after placement: Fmax is then nextpnr's estimate from
    the placement; ``router``, ``placer``, ``density``, ``pnr_seed`` and ``timing_ripup`` are
    nextpnr's settings (:func:`~a2q.hw.fpga.synthesis.synthesize`; unless given, ``a2q
    synth``'s defaults); ``requant_lanes`` the lanes the shared requantization takes a cycle
    (0: the engine's default, half the lanes).
    Writes ``timing.json`` and ``timing.md``; the latency column is the full graph's cycles
    (cycle model, equal to the RTL's in every test) at the routed Fmax, or the placed one."""
    from a2q.hw.fpga.synthesis import late_endpoints_markdown, pnr_settings
    from a2q.sim.annotated_graph import read_graph
    from a2q.sim.baselines import BASELINES
    from a2q.sim.cycles import engine_cycles

    from ..engine_build import build_engine

    pnr = pnr_settings("ecp5", placer=placer, router=router, timing_ripup=timing_ripup)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        progress(f"{dataset} {model}: training A²Q (seed {seed}) and exporting")
        g = read_graph(trained_export(tmp / "run", dataset, model, seed=seed,
                                      data_root=data_root))
        for n in lanes:
            full = max_nodes is None and max_edges is None
            build = build_engine(g, lanes=n, baselines=BASELINES, max_nodes=max_nodes,
                                 max_edges=max_edges, requant_lanes=requant_lanes, fill=full)
            cfg = build.config
            stages = "Yosys and nextpnr" + ("" if route else " placement")
            progress(f"{n} lanes: {stages} for ECP5 {device} ("
                     + ", ".join(f"{k} {v}" for k, v in pnr.items())
                     + ("; with the export's memories: about 15 minutes at 16 lanes)"
                        if full else ")"))
            r = _synthesize(build, tmp, device=device, freq=freq_mhz, route=route,
                            density=density, seed=pnr_seed, placer=placer, router=router,
                            timing_ripup=timing_ripup)
            cycles = engine_cycles(g, lanes=n, requant_lanes=cfg.requant_lanes,
                                   nonzeros_per_word=cfg.nonzeros_per_word)["total"]
            fmax = r["fmax_mhz"] or r["fmax_placed_mhz"]
            rows.append({"lanes": n, "requant_lanes": cfg.requant_lanes,
                         "max_nodes": max_nodes, "max_edges": max_edges,
                         "seconds": r["seconds"], "cycles": cycles,
                         "latency_us": round(cycles / fmax, 1) if fmax else None,
                         **{k: r.get(k) for k in ("luts", "carries", "ffs", "brams", "dsps",
                                                 "lutram", "fits", "limits", "routed",
                                                 "placer", "router", "timing_ripup",
                                                 "fmax_placed_mhz", "fmax_mhz", "timing_met",
                                                 "critical_path", "late_endpoints",
                                                 "widest_fanout", "verdict")}})
            progress(f"{n} lanes: {r['verdict']}")
    result = {"command": "a2q bench timing", "dataset": dataset, "model": model, "seed": seed,
              "device": f"ecp5 {device}", "freq_target_mhz": freq_mhz, "rows": rows}
    full = max_nodes is None and max_edges is None
    memories = ("memories holding the trained export (the engine `a2q flow` builds)" if full
                else f"memories for {cfg.max_nodes} nodes and {cfg.max_edges} edges, zero-filled")
    command = " ".join(["a2q bench timing", f"--dataset {dataset} --model {model} --seed {seed}",
                        "--lanes " + " ".join(map(str, lanes)),
                        *([f"--max-nodes {max_nodes}"] if max_nodes else []),
                        *([f"--max-edges {max_edges}"] if max_edges else []),
                        *([] if route else ["--no-route"]),
                        *([f"--router {router}"] if router and route else []),
                        *([f"--{'' if timing_ripup else 'no-'}tmg-ripup"]
                          if timing_ripup is not None and route else []),
                        *([f"--placer {placer}"] if placer else []),
                        *([f"--density {density}"] if density else []),
                        *([f"--pnr-seed {pnr_seed}"] if pnr_seed is not None else []),
                        *([f"--requant-lanes {requant_lanes}"] if requant_lanes else [])])
    result["command"] = command
    lines = [
        "# The engine on an FPGA: Fmax and the critical path", "",
        f"`{command}`: the {dataset} {model.upper()} engine's core (x and the logits "
        f"off-chip) with {memories}, through Yosys (`a2q synth`'s ECP5 script) and nextpnr "
        f"for the ECP5 {device}, out of context. **placed** = nextpnr's Fmax estimate after "
        "placement; **routed** = its Fmax after routing"
        + ("" if route else " (not run: `--no-route`)") + ". **latency** = the whole graph's "
        "cycles (cycle model, equal to the RTL's in every test) at the routed Fmax, or the "
        "placed one when not routed.", "",
        "| lanes | LUT4 | CCU2C | FF | DP16KD | MULT18X18D | placed MHz | routed MHz | "
        "target met | cycles | latency µs | critical path | synth s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        cp = r["critical_path"] or {}
        path = (f"{cp['from']} -> {cp['to']}: {cp['delay_ns']} ns ({cp['logic_ns']} logic, "
                f"{cp['routing_ns']} routing)") if cp else "n/a"
        lines.append(f"| {r['lanes']} | {r['luts']} | {r['carries']} | {r['ffs']} | {r['brams']} "
                     f"| {r['dsps']} | {_f(r['fmax_placed_mhz'])} | {_f(r['fmax_mhz'])} "
                     f"| {r['timing_met']} | {r['cycles']} | "
                     f"{_f(r['latency_us'])} | {path} | {r['seconds']} |")
    lines += [""] + [f"- {r['lanes']} lanes: {r['verdict']}." for r in rows]
    for r in rows:  # beyond the critical path: every register input that misses the period
        lines += late_endpoints_markdown(r.get("late_endpoints"), f"{r['lanes']} lanes: ")
    _write_files(Path(out), {"timing.json": json.dumps(result, indent=2) + "\n",
                             "timing.md": "\n".join(lines) + "\n"})
    progress("\n".join(lines))
    return result


def plot_sweep(result: dict, path: Path) -> None:
    """Cycles against LUTs (or against lanes without synthesis), one point per lane count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = result["sweep"]
    fig, ax = plt.subplots(figsize=(6, 4))
    with_luts = all(p.get("luts") is not None for p in pts)
    xs = [p["luts"] + 2 * p["carries"] if with_luts else p["lanes"] for p in pts]
    ax.plot(xs, [p["cycles_a2q"] for p in pts], "o-", label="A²Q")
    ax.plot(xs, [p["cycles_uniform4"] for p in pts], "s--", label="uniform4")
    for x, p in zip(xs, pts):
        ax.annotate(f"{p['lanes']} lanes", (x, p["cycles_a2q"]), textcoords="offset points",
                    xytext=(4, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("ECP5 LUT slots (LUT4 + 2 x CCU2C)" if with_luts else "lanes")
    ax.set_ylabel("cycles per inference")
    ax.set_title(f"{' '.join(result['sweep_on'])}: cycles against engine size")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)


def plot_trade_off(result: dict, path: Path) -> None:
    """Test accuracy against whole-model cycles, one panel per dataset and model, a point per
    configuration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = {}
    for r in result["trade_off"]:
        groups.setdefault((r["dataset"], r["model"]), []).append(r)
    if not groups:
        return
    fig, axes = plt.subplots(1, len(groups), figsize=(4.5 * len(groups), 4), squeeze=False)
    for ax, ((dataset, model), pts) in zip(axes[0], groups.items()):
        for r in pts:
            style = "r*" if r["config"] == "a2q" else ("o" if r["measured"] else "^")
            ax.plot(r["cycles"], r["test_acc"], style, markersize=12 if style == "r*" else 6)
            ax.annotate("A²Q" if r["config"] == "a2q" else r["config"], (r["cycles"], r["test_acc"]),
                        textcoords="offset points", xytext=(4, 4), fontsize=7)
        ax.set_xscale("log")
        ax.set_xlabel("cycles per inference")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"{dataset} {model.upper()}")
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)


def _f(v, fmt="{}", none="n/a"):
    return none if v is None else fmt.format(v)


def _graph_level_lines(runs: list[dict]) -> list[str]:
    """The graph-level section: each batch's whole cycles and its stages."""
    if not runs:
        return []
    lines = ["", "## Graph-level GIN (fold 0's test graphs, one batch)", "",
             "The Nearest-Neighbor selection runs on chip: each layer's aggregation chooses "
             "every node's pool entry as it goes and keeps its sums (off chip, `sums`); a "
             "quantization phase then turns them into codes with each node's entry. The "
             "baselines (one pool entry per layer, every node at 4 or 8 bits, the input at its "
             "own bits) would quantize as they aggregate: their quantization phases count 0 "
             "cycles, so the **quantization** rows are A²Q's own cost of choosing at run "
             "time. Readout phases pool each layer's codes per graph and score them.", "",
             "| dataset | graphs | nodes | pool bits | avg bits (combination) | test acc | "
             "A²Q cycles | " + " | ".join(f"{b} cycles | speedup" for b in GRAPH_BASELINES)
             + " | exact |", "|---|---|---|---|---|---|---|" + "---|---|" * len(GRAPH_BASELINES)
             + "---|"]
    for s in runs:
        pools = "; ".join(f"{k} {min(v)}..{max(v)}" for k, v in s["pool_bits"].items())
        bits = ", ".join(f"{v:.2f}" for v in s["avg_bits"].values())
        lines.append(f"| {s['dataset']} | {s['graphs']} | {s['nodes']} | {pools} | {bits} | "
                     f"{s['test_acc']:.1f} | {s['cycles']['a2q']} | " + " | ".join(
                         f"{s['cycles'][b]} | {s['speedup'][b]:.3f}x" for b in GRAPH_BASELINES)
                     + f" | {s['exact']} |")
    lines += ["", "| dataset | stage | baseline | A²Q cycles | baseline cycles | speedup | "
              "ideal |", "|---|---|---|---|---|---|---|"]
    for s in runs:
        for r in s["rows"]:
            speedup = "" if r["speedup"] is None else f"{r['speedup']:.3f}x"
            lines.append(f"| {s['dataset']} | {r['stage']} | {r['baseline']} | "
                         f"{r['cycles_a2q']} | {r['cycles_baseline']} | {speedup} | "
                         f"{_f(r['ideal_speedup'], '{:.3f}x', '')} |")
    return lines


def markdown(result: dict) -> str:
    base = list(result["baselines"])
    lines = [
        "# A²Q on the layer engine: cycles against uniform bits, and the engine's cost", "",
        f"`{result['command']}` ({result['seconds']:.0f} s). Every figure of cycles is the "
        "engine's counter in RTL simulation (Verilator), phase by phase; every run below was bit-exact against the golden model and equal to "
        "the cycle model in every phase unless the **exact** column says otherwise. The "
        "baselines are the same trained model re-exported at uniform bits and run on the same "
        "engine:", "",
        "- **uniform4**: every quantized feature tensor at 4 bits, the binary input included "
        "(stored and paid at 4 bits, as Degree-Quant INT4 runs);",
        "- **uniform4-exact-input**: the same, the binary input at 1 bit (the strict "
        "comparison);",
        "- **uniform8**: every quantized feature tensor at 8 bits, the input included;",
        "- **uniform2**, **uniform3**: every quantized feature tensor at 2 or 3 bits, the input "
        "at its own bits.", "",
        "**speedup** = baseline cycles / A²Q cycles. **ideal** (stages whose input carries "
        "per-node bits only) = baseline bits / A²Q's average bits on that input: the speedup a "
        "bit-serial stage with no per-node overhead would reach; **of ideal** = speedup / "
        "ideal.", "",
        "## Whole inference", "",
        "| dataset | model | avg per-node bits | test acc | A²Q cycles | "
        + " | ".join(f"{b} cycles | speedup" for b in base) + " | exact |",
        "|---|---|---|---|---|" + "---|---|" * len(base) + "---|"]
    for s in result["summary"]:
        bits = ", ".join(f"{k} {v:.2f}" for k, v in s["avg_bits"].items())
        lines.append(
            f"| {s['dataset']} | {s['model'].upper()} | {bits} | {s['test_acc']:.1f} | "
            f"{s['cycles']['a2q']} | "
            + " | ".join(f"{s['cycles'][b]} | {s['speedup'][b]:.3f}x" for b in base)
            + f" | {s['exact']} |")
    if not result["summary"]:  # graph-level rows only
        return "\n".join(lines[:lines.index("## Whole inference")]
                         + _graph_level_lines(result.get("graph_level") or [])) + "\n"
    lines += _trade_off_lines(result)
    lines += _latency_lines(result.get("latency"))
    lines += ["", "## Stage by stage", "",
              "| dataset | model | stage | baseline | A²Q cycles | baseline cycles | speedup | "
              "ideal | of ideal |", "|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(
            f"| {r['dataset']} | {r['model'].upper()} | {r['stage']} | {r['baseline']} | "
            f"{r['cycles_a2q']} | {r['cycles_baseline']} | {r['speedup']:.3f}x | "
            f"{_f(r['ideal_speedup'], '{:.3f}x', '')} | "
            f"{_f(r['fraction_of_ideal'], '{:.1%}', '')} |")
    lines += _graph_level_lines(result.get("graph_level") or [])
    lines += ["", "## Where the cycles go", ""]
    for s in result["summary"]:
        total = s["cycles_by_stage_a2q"]["total"]
        parts = sorted(((v, k) for k, v in s["cycles_by_stage_a2q"].items() if k != "total"),
                       reverse=True)
        lines.append(f"- {s['dataset']} {s['model'].upper()} (A²Q, {total} cycles): " + ", ".join(
            f"{k} {v / total:.1%}" for v, k in parts) + ".")
    per_node = [r for r in result["rows"] if r["ideal_speedup"] and r["baseline"] == "uniform4"]
    lines += ["", _where_text(result, per_node)]
    if result["sweep"]:
        lines += ["", f"## Lanes ({' '.join(result['sweep_on'])}, {result['device']}, "
                  f"target {result['freq_target_mhz']:.0f} MHz)", "",
                  "Cycles measured in RTL at each lane count; resources of the engine's core "
                  "(the logits off-chip, and x where it is not held as its non-zeros) from "
                  "Yosys (`a2q synth`'s ECP5 script) and the fit by its cell counts; the "
                  f"default {result['lanes']} lanes also placed and routed with `a2q synth`'s "
                  "defaults (routed MHz). Plot: hw_lanes.png.", "",
                  "| lanes | A²Q cycles | uniform4 cycles | LUT4 | CCU2C | FF | DP16KD | "
                  "MULT18 | LUT4 / lane | fits | routed MHz | synth s |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for p in result["sweep"]:
            lines.append(
                f"| {p['lanes']} | {p['cycles_a2q']} | {p['cycles_uniform4']} | "
                + " | ".join(_f(p.get(k)) for k in ("luts", "carries", "ffs", "brams", "dsps",
                                                    "luts_per_lane", "fits", "fmax_mhz",
                                                    "synth_seconds"))
                + " |")
        verdicts = [f"- {p['lanes']} lanes: {p['verdict']}." for p in result["sweep"]
                    if p.get("verdict")]
        if verdicts:
            lines += [""] + verdicts
    return "\n".join(lines) + "\n"


def _trade_off_lines(result: dict) -> list[str]:
    lines = ["", "## Accuracy against cycles", "",
             "Each configuration's test accuracy (the golden model's predictions, equal to the "
             "engine's) and whole-model cycles: measured in RTL for A²Q and the re-exports, "
             "from the cycle model for the models trained at uniform bits (equal to the RTL's in "
             "every test). Plot: hw_tradeoff.png.", "",
             "| dataset | model | configuration | source | test acc | cycles |",
             "|---|---|---|---|---|---|"]
    for r in result["trade_off"]:
        lines.append(f"| {r['dataset']} | {r['model'].upper()} | {r['config']} | {r['source']} "
                     f"| {r['test_acc']:.1f} | {r['cycles']} |")
    with_bits = [r for r in result["trade_off"] if r.get("avg_bits")]
    if with_bits:
        lines += ["", "Average per-node bits of each stage's input (an aggregation's per item) "
                  "in A²Q's default and the paper's configuration:", "",
                  "| dataset | model | configuration | avg per-node bits |", "|---|---|---|---|"]
        lines += [f"| {r['dataset']} | {r['model'].upper()} | {r['config']} | "
                  + ", ".join(f"{k} {v:.2f}" for k, v in r["avg_bits"].items()) + " |"
                  for r in with_bits]
    beaten = result["dominating_a2q"]
    lines += ["", "Configurations with no more cycles and a higher accuracy than A²Q's: " + (
        ", ".join(f"{r['config']} ({r['dataset']} {r['model'].upper()}, {r['test_acc']:.1f}% "
                  f"in {r['cycles']} cycles)" for r in beaten) if beaten else "none") + "."]
    return lines


def _latency_lines(latency: dict | None) -> list[str]:
    if not latency:
        return []
    engine = (f"{latency['engine_ms']} ms ({latency['cycles']} cycles at the routed "
              f"{latency['fmax_mhz']} MHz, timing met at the target: {latency['timing_met']})"
              if latency["engine_ms"] else "not routed")
    lines = ["", f"## Latency against the CPU ({latency['dataset']} {latency['model'].upper()})",
             "", f"- The engine, {latency['lanes']} lanes: {engine}.",
             f"- PyTorch on this machine's CPU ({latency['threads']} threads, whole graph, "
             f"dense features, median of {latency['repeats']} runs): FP32 PyG "
             f"{latency['fp32_pyg_ms']} ms; the trained quantized model's forward "
             f"{latency['quantized_ms']} ms."]
    if latency["engine_ms"]:
        lines.append(f"- The engine is {latency['speedup_vs_fp32']:.2f}x the FP32 CPU's speed "
                     f"and {latency['speedup_vs_quantized']:.2f}x the quantized forward's.")
    return lines


def _where_text(result: dict, per_node: list[dict]) -> str:
    """A few sentences, from the measured rows, on what A²Q's bits can and cannot speed up."""
    from a2q.sim.cycles import AGGREGATION_PHASE_OVERHEAD, COMBINATION_PHASE_OVERHEAD

    if not per_node:
        return "No stage of these models reads per-node bits."
    worst = min(per_node, key=lambda r: r["fraction_of_ideal"])
    share = []
    for s in result["summary"]:
        stages = s["cycles_by_stage_a2q"]
        touched = sum(v for k, v in stages.items() if any(
            r["stage"] == k and r["dataset"] == s["dataset"] and r["model"] == s["model"]
            for r in per_node))
        share.append(f"{s['dataset']} {s['model'].upper()} {touched / stages['total']:.1%}")
    return (
        "A²Q's per-node bits shorten the stages that read a per-node tensor: the combinations "
        "of a per-node input (after layer 1; every combination of an aggregate-first GIN) and "
        "the aggregations of operands with per-node bits (`--operand node`). Their share of "
        "A²Q's cycles: " + ", ".join(share) + ". The rest is layer 1 over the raw input "
        "(combine-first, GCN and GIN-0: a cycle per word of 4 non-zero inputs and plane; an "
        "aggregate-first GIN: one bit-plane per input chunk and edge; the same for every method "
        "unless a baseline pays the input at 4 or 8 bits) and the aggregations of operands "
        "quantized per column (4 bits, the paper's). On the "
        f"per-node stages the engine's speedup over uniform4 is {worst['fraction_of_ideal']:.1%} "
        f"of the ideal at worst ({worst['dataset']} {worst['model'].upper()} {worst['stage']}): "
        "a phase costs its bit-serial work (an aggregation at most half the lanes wide takes "
        "two bit-planes a cycle on its idle lanes, so an item of b bits costs ceil(b / 2) "
        "cycles: an odd b pays its top plane alone, and against a baseline's even bits the "
        "stage falls short of the ideal by that much), each (node, tile) at least the cycles the "
        "requantization takes over it (its groups of lanes), plus a fixed "
        f"{COMBINATION_PHASE_OVERHEAD} to {AGGREGATION_PHASE_OVERHEAD} cycles and those "
        "groups once.")
