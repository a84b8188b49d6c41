"""The ``a2q`` command line: train, eval, export, golden, rtl, sim, synth, flow, bench."""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

from a2q.common.choices import DEFAULT_LANES, ENGINE_MODELS, MODELS, ORDERS
from a2q.common.errors import A2QError
from a2q.common.files import check_output
from a2q.hw.fpga.synthesis import PLACERS, ROUTERS

#: the options each form of ``a2q rtl`` and ``a2q sim`` reads (beyond the unit, --out,
#: --force); any other option given is refused rather than ignored
RTL_UNIT_OPTIONS = {
    "combination": {"lanes", "max_bits", "weight_bits", "in_features", "acc_width",
                    "signed_input", "no_lint"},
    "aggregation": {"lanes", "max_bits", "columns", "max_nodes", "max_edges", "acc_width",
                    "signed_input", "no_lint"},
    "selection": {"lanes", "value_bits", "pool_size", "no_lint"},
    "readout": {"lanes", "in_dim", "classes", "code_bits", "weight_bits", "max_graph_nodes",
                "no_lint"},
}
SIM_UNIT_OPTIONS = {
    "combination": {"x", "bits", "w", "signed", "simulator", "lanes", "max_bits",
                    "weight_bits", "build_dir"},
    "aggregation": {"x", "bits", "indptr", "indices", "signed", "simulator", "lanes",
                    "max_bits", "build_dir"},
}
ENGINE_OPTIONS = {
    "rtl": {"graph", "lanes", "max_nodes", "max_edges", "baselines", "no_lint"},
    "sim": {"graph", "rtl", "lanes", "max_nodes", "max_edges", "baselines", "simulator",
            "waves", "load_port", "build_dir"},
}
#: every option of ``a2q rtl`` and ``a2q sim`` that one of their forms may refuse
_FORM_OPTIONS = sorted(set().union(*RTL_UNIT_OPTIONS.values(), *SIM_UNIT_OPTIONS.values(),
                                   *ENGINE_OPTIONS.values()))


def _form_defaults(p: argparse.ArgumentParser) -> None:
    """Record ``p``'s defaults of :data:`_FORM_OPTIONS`, against which :func:`_only_options`
    tells an option given from one left out."""
    p.set_defaults(form_defaults={k: p.get_default(k) for k in _FORM_OPTIONS})


def _only_options(args, form: str, allowed: set) -> None:
    """Refuse the options ``form`` does not read (given, so not at their default)."""
    given = [k for k, default in args.form_defaults.items()
             if hasattr(args, k) and k not in allowed and getattr(args, k) != default]
    if given:
        flags = ", ".join("--" + ("signed" if k == "signed_input" else k.replace("_", "-"))
                          for k in given)
        raise A2QError(f"{form} does not take {flags}")


def _add_train_args(p: argparse.ArgumentParser) -> None:
    from a2q.common.choices import DATASETS, METHODS

    p.add_argument("--dataset", default="Cora", help=f"one of {', '.join(DATASETS)}")
    p.add_argument("--model", default="gcn", help=f"one of {', '.join(MODELS)}")
    p.add_argument("--method", default="a2q", help=f"one of {', '.join(METHODS)}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="run folder to write")
    p.add_argument("--epochs", type=int, help="default 200 node-level, 100 graph-level")
    p.add_argument("--bits", type=int, help="feature and weight bits of uniform / dq (default 4)")
    p.add_argument("--hidden", type=int)
    p.add_argument("--heads", type=int, help="GAT heads (default 8)")
    p.add_argument("--layers", type=int, help="graph-level GIN layers (default 3)")
    p.add_argument("--dropout", type=float)
    p.add_argument("--lr", type=float)
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--operand", choices=["column", "node"],
                   help="A²Q's aggregation operand: 4 bits per column (the paper) or learned "
                        "bits per node (node-level GCN, GIN combine-first)")
    p.add_argument("--gin-order", choices=list(ORDERS),
                   help="node-level GIN: the sum, then W (learned eps; the paper) or W, then "
                        "the sum (GIN-0 on the GCN datapath)")
    p.add_argument("--lambda", dest="lam", type=float, help="penalty weight")
    p.add_argument("--penalty", choices=["memory", "cycles"],
                   help="what A²Q's penalty weighs: the per-node features' memory (default, "
                        "the paper) or the layer engine's cycles of their bits (node-level)")
    p.add_argument("--memory-target", dest="memory_target_kb", type=float,
                   help="memory target in KB (per graph for graph-level tasks)")
    p.add_argument("--cycle-target", dest="cycle_target_k", type=float,
                   help="cycle target of --penalty cycles, in thousands of engine cycles of "
                        f"the stages that read per-node bits ({DEFAULT_LANES} lanes; default 50)")
    p.add_argument("--init-bits", type=float,
                   help="A²Q's initial bitwidth, sign bit included (default 4, GIN 5, "
                        "graph-level MUTAG 4)")
    p.add_argument("--lr-bits", type=float,
                   help="A²Q's learning rate of the bitwidths (default 0.1; MUTAG, NCI1 0.01)")
    p.add_argument("--lr-step-features", type=float,
                   help="A²Q's learning rate of the feature steps (default 0.04; MUTAG, NCI1 "
                        "0.004)")
    p.add_argument("--pool-size", type=int, help="Nearest-Neighbor pool size (graph-level)")
    p.add_argument("--pool-gradient", choices=["task", "local"],
                   help="what trains A²Q's Nearest-Neighbor pool: the task loss (default) or "
                        "each entry's L1 quantization error over the nodes that chose it")
    p.add_argument("--quantizer-epochs", type=int,
                   help="graph-level A²Q: epochs the quantizers (the Nearest-Neighbor pools, "
                        "the weights' and outputs' steps) learn for, then frozen while the "
                        "weights go on learning (default 0: every epoch; MUTAG, NCI1 50)")
    p.add_argument("--batch-size", type=int, help="graph-level (default 128)")
    p.add_argument("--folds", type=int, help="graph-level cross-validation folds (default 10)")
    p.add_argument("--tune", action="store_true",
                   help="choose weight decay and dropout on validation accuracy from a small "
                        "grid that holds the method's own values (per seed; per fold at graph "
                        "level)")
    p.add_argument("--workers", type=int,
                   help="graph-level: processes training folds side by side, one thread each "
                        "(default: one per core; the result does not depend on it)")
    p.add_argument("--data-root", help="writable dataset cache (default $A2Q_DATA_ROOT or "
                                       "~/.cache/a2q/datasets)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-export", action="store_true",
                   help="do not export the bitwidth-annotated graph (<out>/graph) at the end")
    p.add_argument("--force", action="store_true",
                   help="replace --out even if it holds something that is not this command's "
                        "own earlier output")


def _data_inputs(args) -> list:
    """The dataset cache a command reads (an output must never replace it)."""
    from a2q.sw.data import default_cache

    return [args.data_root or default_cache()]


def _cmd_train(args) -> int:
    from a2q.sw.config import default_config
    from a2q.sw.run_folder import write_run
    from a2q.sw.train import train

    check_output(args.out, "a2q train", inputs=_data_inputs(args), force=args.force)
    overrides = {k: getattr(args, k) for k in (
        "seed", "epochs", "bits", "hidden", "heads", "layers", "dropout", "lr", "weight_decay",
        "lam", "memory_target_kb", "pool_size", "batch_size", "folds", "operand", "penalty",
        "cycle_target_k", "gin_order", "lr_bits", "lr_step_features", "pool_gradient",
        "quantizer_epochs", "init_bits")}
    cfg = default_config(args.dataset, args.model, args.method, **overrides)
    if args.workers is not None and args.workers < 1:
        raise A2QError(f"--workers must be at least 1, got {args.workers}")
    result = train(cfg, data_root=args.data_root, progress=not args.no_progress,
                   workers=args.workers, tune=args.tune)
    out = write_run(result, args.out)
    m = result.metrics
    exported = None
    if not args.no_export and _exportable(cfg):
        from a2q.sw.export import export_run

        try:
            exported = export_run(out, data_root=args.data_root)
        except A2QError as exc:  # the run is written and whole; only its export is not
            print("a2q: warning: no bitwidth-annotated graph: " + str(exc).replace("\n", "\\n"),
                  file=sys.stderr)
    print(f"{m['dataset']} {m['model']} {m['method']} seed {m['seed']}: "
          f"test_acc {m['test_acc']:.2f} (val-selected), "
          f"{m['test_acc_best_epoch']:.2f} (best epoch, paper protocol), "
          f"avg feature bits {m['avg_feature_bits']:.2f}, "
          f"compression {m['compression_ratio']:.1f}x, "
          f"{1000 * m['seconds_per_epoch']:.1f} ms/epoch -> {out}")
    if exported is not None:
        print(f"bitwidth-annotated graph -> {exported}")
    return 0


def _exportable(cfg) -> bool:
    from a2q.sw.data import is_node_level
    from a2q.sw.export import EXPORTABLE_METHODS

    return ((not is_node_level(cfg.dataset) or cfg.model in ENGINE_MODELS)
            and cfg.method in EXPORTABLE_METHODS)


def _cmd_export(args) -> int:
    from a2q.sw.export import export_run

    run = Path(args.run)
    out = args.out or (run if run.is_dir() else run.parent) / "graph"
    check_output(out, "a2q export", inputs=[run, *_data_inputs(args)], force=args.force)
    if args.fold is not None and args.fold < 0:
        raise A2QError(f"--fold must be at least 0, got {args.fold}")
    written = export_run(args.run, out, data_root=args.data_root, fold=args.fold,
                         split=args.split)
    print(f"bitwidth-annotated graph -> {written}")
    return 0


def _cmd_golden(args) -> int:
    from a2q.sim.annotated_graph import GraphFormatError
    from a2q.sim.golden_run import run_golden

    if not 1 <= args.lanes <= 64:
        raise A2QError(f"--lanes must be an integer in 1..64, got {args.lanes}")
    check_output(args.out, "a2q golden", inputs=[args.graph], force=args.force)
    try:
        s = run_golden(args.graph, args.out, lanes=args.lanes)
    except GraphFormatError as exc:
        raise A2QError(str(exc)) from None
    if s.get("task") == "graph":
        print(f"{s['dataset']} {s['model']} fold {s['fold']} {s['split']} graphs: golden "
              f"accuracy {s['accuracy']:.2f} (torch {s['reference_accuracy']:.2f}), predictions "
              f"agree on {100 * s['prediction_agreement']:.2f}% of {s['graphs']} graphs, "
              f"{s['avg_feature_bits']:.2f} bits per node, {s['seconds']:.3f} s -> {args.out}")
        return 0
    print(f"{s['dataset']} {s['model']}: golden test_acc {_percent(s['test_acc'])} "
          f"(torch {_percent(s['reference_test_acc'])}), predictions agree on "
          f"{100 * s['prediction_agreement']:.2f}% of nodes, {s['seconds']:.3f} s, "
          f"cycles vs uniform 4-bit: {s['cycles_speedup_vs_uniform4']:.2f}x -> {args.out}")
    return 0


def _percent(value: float | None) -> str:
    return "n/a (no test nodes)" if value is None else f"{value:.2f}"


def _cmd_eval(args) -> int:
    from a2q.sw.run_folder import load_checkpoint
    from a2q.sw.train import evaluate_checkpoint

    print(json.dumps(evaluate_checkpoint(load_checkpoint(args.run), data_root=args.data_root)))
    return 0


def _cmd_bench_golden(args) -> int:
    from a2q.app.bench.models import run_golden_bench

    run_golden_bench(args.out, datasets=args.datasets, models=args.models, seed=args.seed,
                     lanes=args.lanes, data_root=args.data_root)
    return 0


def _cmd_bench(args) -> int:
    from a2q.app.bench.models import run_train_bench

    if args.workers is not None and args.workers < 1:
        raise A2QError(f"--workers must be at least 1, got {args.workers}")
    run_train_bench(args.out, seeds=args.seeds, epochs=args.epochs, data_root=args.data_root,
                    datasets=args.datasets, models=args.models, methods=args.methods,
                    tune=args.tune, workers=args.workers)
    return 0


def _engine_build(args, command: str):
    """The engine build of ``rtl engine`` and ``sim engine``: from ``--rtl`` (an RTL folder the
    engine build wrote, ``sim`` only) or from ``--graph`` with ``--lanes``, ``--baselines``
    and the depths."""
    from a2q.sim.baselines import DEFAULT_BASELINES

    from .engine_build import build_engine, load_engine_build

    if args.graph is None:
        raise A2QError(f"{command} engine needs --graph (an export folder)")
    _only_options(args, f"{command} engine", ENGINE_OPTIONS[command])
    check_output(args.out, f"a2q {command}" + (" engine" if command == "sim" else ""),
                 inputs=[args.graph, getattr(args, "rtl", None)], force=args.force)
    if getattr(args, "rtl", None) is not None:
        given = [f"--{k.replace('_', '-')}" for k in ("lanes", "max_nodes", "max_edges",
                                                       "baselines")
                 if getattr(args, k) is not None]
        if given:
            raise A2QError(f"{command} engine: --rtl is an engine already built; "
                           f"{', '.join(given)} would build another (give them to a2q rtl "
                           "engine)")
        return load_engine_build(args.rtl, args.graph)
    baselines = tuple(DEFAULT_BASELINES if args.baselines is None else args.baselines)
    lanes = DEFAULT_LANES if args.lanes is None else args.lanes
    return build_engine(args.graph, lanes=lanes, baselines=baselines,
                        max_nodes=args.max_nodes, max_edges=args.max_edges)


def _write_rtl_folder(args, write):
    """``write(folder)`` into ``args.out`` whole or not at all, then lint it unless
    ``--no-lint``; returns the parameters and the words to print about lint."""
    from a2q.sim.toolchain import write_linted

    info = write_linted(args.out, write, lint_it=not args.no_lint)
    return info, "" if args.no_lint else "; verilator --lint-only -Wall clean"


def _cmd_rtl_engine(args) -> int:
    build = _engine_build(args, "rtl")
    cfg = build.config
    print(f"engine for {args.graph} and {len(build.variants)} baselines: {cfg.model}, "
          f"{cfg.lanes} lanes, {cfg.max_nodes} nodes, {cfg.max_edges} edges, {cfg.input_bits}-bit "
          "input; generating Verilog", file=sys.stderr)
    info = build.write_rtl(args.out, lint=not args.no_lint)
    linted = "" if args.no_lint else "; verilator --lint-only -Wall clean"
    print(f"{args.out}/{info['verilog']}: {info['module']} ({cfg.model}, {cfg.lanes} lanes, "
          f"{len(info['memories'])} memories, init files beside it; sha256 "
          f"{info['verilog_sha256'][:16]}){linted}")
    return 0


def _cmd_sim_engine(args) -> int:
    from a2q.sim.engine_run import passed, run_engine

    if args.simulator not in ("icarus", "verilator"):
        raise A2QError(f"unknown simulator {args.simulator!r}: expected icarus or verilator")
    build = _engine_build(args, "sim")  # a bad export or one too big: refused before building
    r = run_engine(build, args.out, simulator=args.simulator, build_root=args.build_dir,
                   waves=args.waves, via_load_port=args.load_port,
                   progress=lambda s: print(s, file=sys.stderr))
    unit, count = (("graphs", r["num_graphs"]) if r["task"] == "graph"
                   else ("nodes", r["num_nodes"]))
    print(f"{args.out}: {r['dataset']} {r['model']} on {r['simulator']}: logits equal the golden "
          f"model on {count - r['mismatched_' + unit]}/{count} {unit}; test_acc "
          f"{_percent(r['test_acc'])} (golden {_percent(r['golden_test_acc'])}); cycles "
          f"{r['cycles_measured']}"
          f" (model {r['cycles_predicted']}); {r['cycles_per_second']:.0f} cycles/s; Verilog "
          f"sha256 {r['verilog_sha256'][:16]}")
    for key, u in r["baselines"].items():
        print(f"  {key}: cycles {u['cycles_measured']} (model {u['cycles_predicted']}), "
              f"logits equal golden: {u['logits_equal_golden']}; A2Q speedup "
              f"{u['speedup_of_a2q']:.3f}x")
    return 0 if passed(r) else 1


def _cmd_rtl(args) -> int:
    from a2q.hw import rtl

    if args.unit == "engine":
        return _cmd_rtl_engine(args)
    _only_options(args, f"rtl {args.unit}", RTL_UNIT_OPTIONS[args.unit])
    check_output(args.out, "a2q rtl", force=args.force)
    defaults = {"combination": {"in_features": 16, "lanes": DEFAULT_LANES, "max_bits": 8},
                "aggregation": {"columns": 16, "lanes": DEFAULT_LANES, "max_nodes": 4096,
                                "max_edges": 16384, "max_bits": 8},
                "selection": {"lanes": DEFAULT_LANES, "value_bits": 48, "pool_size": 32},
                "readout": {"lanes": DEFAULT_LANES, "in_dim": 32, "classes": 2, "code_bits": 4,
                            "weight_bits": 4, "max_graph_nodes": 1024}}
    params = defaults[args.unit] | {
        k: v for k, v in vars(args).items()
        if k in rtl.unit_parameters(args.unit) and v is not None}
    try:
        unit = rtl.make_unit(args.unit, params)
    except ValueError as exc:
        raise A2QError(f"rtl {args.unit}: {exc}") from None
    info, linted = _write_rtl_folder(args, lambda tmp: rtl.write_rtl(args.unit, unit, tmp))
    print(f"{args.out}/{info['verilog']}: {info['module']} "
          f"({', '.join(f'{k}={v}' for k, v in info['parameters'].items())}){linted}")
    return 0


def _cmd_sim(args) -> int:
    from a2q.sim import unit_run

    if args.unit == "engine":
        return _cmd_sim_engine(args)

    _only_options(args, f"sim {args.unit}", SIM_UNIT_OPTIONS[args.unit])
    common = dict(signed_input=args.signed, simulator=args.simulator, lanes=args.lanes,
                  max_bits=args.max_bits, build_root=args.build_dir)
    needs = ["x", "bits"] + (["w"] if args.unit == "combination" else ["indptr", "indices"])
    missing = [f"--{k}" for k in needs if getattr(args, k) is None]
    if missing:
        raise A2QError(f"sim {args.unit} needs {' and '.join(missing)}")
    if args.simulator not in ("icarus", "verilator"):
        raise A2QError(f"unknown simulator {args.simulator!r}: expected icarus or verilator")
    check_output(args.out, f"a2q sim {args.unit}", file=True, force=args.force,
                 inputs=[getattr(args, k) for k in needs])
    if args.unit == "combination":
        r = unit_run.simulate_combination(args.x, args.bits, args.w, args.out,
                                          weight_bits=4 if args.weight_bits is None
                                          else args.weight_bits, **common)
    else:
        r = unit_run.simulate_aggregation(args.indptr, args.indices, args.x, args.bits, args.out,
                                          **common)
    print(f"{args.out}: {r['unit']} on {r['simulator']}: equals NumPy: {r['matches_numpy']}; "
          f"cycles {r['cycles_measured']} (model {r['cycles_predicted']}, ideal "
          f"{r['cycles_ideal']}); {r['cycles_per_second']:.0f} cycles/s")
    return 0 if r["matches_numpy"] and r["cycles_measured"] == r["cycles_predicted"] else 1


def _cmd_synth(args) -> int:
    from a2q.hw.fpga.synthesis import (
        STATIC_PLACER_MIN_CELLS,
        SynthesisError,
        pnr_settings,
        synthesize,
    )

    check_output(args.out, "a2q synth", inputs=[args.rtl, args.netlist], force=args.force)
    if args.seeds is not None and args.seeds < 1:
        raise A2QError(f"--seeds must be at least 1, got {args.seeds}")
    if args.time_limit is not None and args.time_limit <= 0:
        raise A2QError(f"--time-limit must be a positive number of seconds, got "
                       f"{args.time_limit}")
    if args.seeds is not None and (args.no_place or args.netlist):
        raise A2QError("synth: --seeds places and routes; it takes neither --no-place nor "
                       "--netlist (it runs Yosys once itself)")
    if args.seeds is None and (args.scheduler or args.workers):
        raise A2QError("synth: --scheduler and --workers run the seeds of --seeds")
    try:
        pnr = pnr_settings(args.target, placer=args.placer, router=args.router,
                           timing_ripup=args.tmg_ripup)
        if args.placer is None and pnr["placer"] == "static":
            pnr["placer"] = (f"static (heap under {STATIC_PLACER_MIN_CELLS} LUTs and "
                             "flip-flops)")
        then = "" if args.no_place else (
            f", then nextpnr {'placement' if args.no_route else 'place and route'} ("
            + ", ".join(f"{k} {v}" for k, v in pnr.items()) + ")")
        print(f"synthesizing {args.rtl} for {args.target} (Yosys{then}; minutes on large "
              "designs, about 15 on the 16-lane Cora engine)", file=sys.stderr)
        options = {"device": args.device, "package": args.package, "freq_mhz": args.freq,
                   "route": not args.no_route, "placer": args.placer, "router": args.router,
                   "timing_ripup": args.tmg_ripup, "density": args.density}
        if args.seeds is not None:
            from .cluster import dask_client
            from .synth_seeds import synthesize_seeds

            # nextpnr's own default seed, then 1, 2, ...; or --seed S, S + 1, ...
            seeds = ([None, *range(1, args.seeds)] if args.pnr_seed is None
                     else list(range(args.pnr_seed, args.pnr_seed + args.seeds)))
            with dask_client(args.scheduler, args.workers or min(args.seeds, os.cpu_count()
                                                                 or 1)) as client:
                r = synthesize_seeds(args.rtl, args.target, args.out, client=client, seeds=seeds,
                                     time_limit_s=args.time_limit,
                                     progress=lambda s: print(s, file=sys.stderr), **options)
        else:
            r = synthesize(args.rtl, args.target, args.out, place_and_route=not args.no_place,
                           seed=args.pnr_seed, netlist_from=args.netlist,
                           pnr_time_limit_s=args.time_limit, **options)
    except SynthesisError as exc:
        raise A2QError(f"synth: {exc}") from None
    fmax = "n/a" if r["fmax_mhz"] is None else f"{r['fmax_mhz']} MHz"
    if r["fmax_mhz"] is None and r.get("fmax_placed_mhz") is not None:
        fmax = f"{r['fmax_placed_mhz']} MHz estimated after placement"
    print(f"{args.out}: {r['top']} on {r['target']} {r['device']}: LUTs {r['luts']}, FFs "
          f"{r['ffs']}, BRAMs {r['brams']}, DSPs {r['dsps']}, Fmax {fmax} (target {args.freq} "
          f"MHz)")
    if r.get("timing_met") is not None:
        cp = r.get("critical_path") or {}
        worst = (f"; worst path {cp['from']} -> {cp['to']}, {cp['delay_ns']} ns"
                 if cp else "")
        print(f"timing {'met' if r['timing_met'] else 'NOT met'} at {args.freq} MHz{worst}")
    if r.get("verdict"):
        print(f"{r['verdict']} (report: {Path(args.out) / 'report.md'})")
    if r.get("seeds") and r.get("best") is None:
        return 1
    return 1 if r.get("fits") is False else 0


def _sweep_grids(args) -> list[dict]:
    """The grids of ``--grid FILE`` (a JSON object of axes, or a list of them), or the one
    grid of the axis options."""
    from .sweep import AXES

    axes = {"dataset": args.datasets, "model": args.models, "method": args.methods,
            "seed": args.seeds, "epochs": args.epochs, "graph": args.graphs,
            "lanes": args.lanes, "device": args.devices, "freq": args.freqs,
            "placer": args.placers, "router": args.routers, "pnr_seed": args.pnr_seeds}
    if args.grid is None:
        return [{a: v for a, v in axes.items() if v is not None}]
    given = [a for a, v in axes.items() if v is not None]
    if given:
        raise A2QError(f"sweep: --grid {args.grid} gives the axes; --{given[0].replace('_', '-')}"
                       " would be a second grid (put it in the file)")
    from a2q.common.strict_json import StrictJSONError, read

    try:
        grids = read(args.grid)
    except OSError as exc:
        raise A2QError(f"{args.grid}: cannot read the sweep grid ({exc.strerror})") from None
    except StrictJSONError as exc:
        raise A2QError(f"{args.grid}: {exc}") from None
    grids = grids if isinstance(grids, list) else [grids]
    if not grids:
        raise A2QError(f"{args.grid}: no grid (an empty list); give an object of axes: "
                       f"{', '.join(AXES)}")
    return grids


def _cmd_sweep(args) -> int:
    from .cluster import dask_client
    from .sweep import UNTIL, SweepOptions, expand_grid, run_sweep

    if args.until not in UNTIL:
        raise A2QError(f"sweep: --until {args.until!r}: expected one of {', '.join(UNTIL)}")
    if args.time_limit is not None and args.time_limit <= 0:
        raise A2QError(f"--time-limit must be a positive number of seconds, got "
                       f"{args.time_limit}")
    try:
        points = expand_grid(_sweep_grids(args))
    except A2QError as exc:
        raise A2QError(f"{args.grid}: {exc}" if args.grid else str(exc)) from None
    check_output(args.out, "a2q sweep", inputs=[args.grid, args.data_root,
                                                 *(args.graphs or [])], force=args.force)
    options = SweepOptions(until=args.until, simulator=args.simulator,
                           time_limit_s=args.time_limit, data_root=args.data_root,
                           build_dir=args.build_dir and str(Path(args.build_dir).resolve()))
    with dask_client(args.scheduler, args.workers) as client:
        state = run_sweep(args.out, points, options, client=client,
                          retry_failed=args.retry_failed, echo=lambda s: print(s, flush=True))
    failed = [r for r in state["points"] if r["status"] == "failed"]
    print(f"{args.out}/sweep.md: {len(state['points']) - len(failed)} points done, "
          f"{len(failed)} failed")
    return 1 if failed else 0


def _cmd_regress(args) -> int:
    from .cluster import dask_client
    from .regress import run_regress, summary_line

    if args.shards is not None and args.shards < 1:
        raise A2QError(f"--shards must be at least 1, got {args.shards}")
    if args.time_limit is not None and args.time_limit <= 0:
        raise A2QError(f"--time-limit must be a positive number of seconds, got "
                       f"{args.time_limit}")
    if Path(args.junitxml).is_dir():
        raise A2QError(f"--junitxml {args.junitxml}: a folder; give the XML file to write")
    with dask_client(args.scheduler, args.workers) as client:
        r = run_regress(args.tests, args.junitxml, client=client, shards=args.shards,
                        marks=args.marks, keyword=args.keyword, pytest_args=args.pytest_arg,
                        basetemp=args.basetemp, time_limit_s=args.time_limit,
                        echo=lambda s: print(s, flush=True))
    print(f"{args.junitxml}: {summary_line(r['counts'])}")
    return 0 if r["passed"] else 1


def _cmd_bench_engine(args) -> int:
    from a2q.app.bench.models import run_engine_bench

    result = run_engine_bench(args.out, models=args.models, dataset=args.dataset, seed=args.seed,
                              lanes=args.lanes, simulators=args.simulators,
                              data_root=args.data_root)
    return 0 if all(r["passed"] for r in result["rows"]) else 1


def _cmd_flow(args) -> int:
    from .flow import Flow, FlowOptions
    from .flow_stages import STAGES, summary_rows

    options = FlowOptions(dataset=args.dataset, model=args.model, seed=args.seed,
                          epochs=args.epochs, run=args.run, methods=tuple(args.methods),
                          lanes=args.lanes, baselines=tuple(args.baselines),
                          simulator=args.simulator, synth=not args.no_synth,
                          place=args.place, device=args.device, freq_mhz=args.freq)
    out = args.out or f"runs/flow-{args.dataset.lower()}-{args.model}"
    check_output(out, "a2q flow", inputs=[args.run], force=args.force)
    flow = Flow(out, options, data_root=args.data_root, build_root=args.build_dir,
                restart=args.restart, echo=lambda s: print(s, flush=True))
    try:
        state = flow.run(from_stage=args.from_stage)
    finally:
        rows = summary_rows(flow.state)
        widths = [max(len(r[i]) for r in rows + [("stage", "status", "seconds", "")])
                  for i in range(3)]
        print()
        for r in [("stage", "status", "seconds", "result"), *rows]:
            print("  ".join(c.ljust(w) for c, w in zip(r[:3], widths)) + "  " + r[3])
    print(f"\nreport: {Path(out) / 'report.md'}, {Path(out) / 'report.html'}")
    return 0 if all(state["stages"][s]["status"] == "done" for s in STAGES) else 1


def _cmd_bench_hw(args) -> int:
    from a2q.app.bench.hardware import run_hw_bench

    result = run_hw_bench(args.out, datasets=args.datasets, models=args.models, seed=args.seed,
                          lanes=args.lanes, sweep_lanes=args.sweep_lanes,
                          sweep_on=(args.sweep_dataset, args.sweep_model),
                          synth=not args.no_synth, device=args.device, freq_mhz=args.freq,
                          data_root=args.data_root, graph_datasets=args.graph_datasets,
                          progress=lambda s: print(s, flush=True))
    return 0 if all(s["exact"] for s in result["summary"] + result["graph_level"]) and all(
        p["exact"] for p in result["sweep"]) else 1


def _cmd_bench_cpu(args) -> int:
    from a2q.app.bench.cpu_latency import run_cpu_bench

    for name in ("fmax", "repeats", "lanes"):
        v = getattr(args, name)
        if v is not None and v <= 0:
            raise A2QError(f"--{name} must be positive, got {v}")
    run_cpu_bench(args.out, dataset=args.dataset, model=args.model, seed=args.seed,
                  fmax_mhz=args.fmax, lanes=args.lanes, repeats=args.repeats,
                  data_root=args.data_root, progress=lambda s: print(s, flush=True))
    return 0


def _cmd_bench_timing(args) -> int:
    from a2q.app.bench.hardware import run_timing_bench
    from a2q.hw.fpga.synthesis import SynthesisError, pnr_settings

    if args.requant_lanes and not 0 < args.requant_lanes <= min(args.lanes):
        raise A2QError(f"--requant-lanes must be between 1 and the lanes ({min(args.lanes)}), "
                       f"got {args.requant_lanes}")
    try:  # refused before the training the bench starts with
        pnr_settings("ecp5", placer=args.placer, router=args.router,
                     timing_ripup=args.tmg_ripup)
    except SynthesisError as exc:
        raise A2QError(f"bench timing: {exc}") from None
    run_timing_bench(args.out, dataset=args.dataset, model=args.model, seed=args.seed,
                     lanes=args.lanes, max_nodes=args.max_nodes, max_edges=args.max_edges,
                     device=args.device, freq_mhz=args.freq, route=not args.no_route,
                     density=args.density, pnr_seed=args.pnr_seed,
                     requant_lanes=args.requant_lanes, data_root=args.data_root,
                     placer=args.placer, router=args.router, timing_ripup=args.tmg_ripup,
                     progress=lambda s: print(s, flush=True))
    return 0


def _cmd_bench_rtl(args) -> int:
    from a2q.app.bench.units import run_rtl_bench

    rows = run_rtl_bench(args.out, seed=args.seed)
    return 0 if all(r["matches_numpy"] and r["cycles_measured"] == r["cycles_predicted"]
                    for r in rows) else 1


def _add_train_parsers(sub) -> None:
    p = sub.add_parser("train", help="train a model (A²Q or a baseline) and write a run folder")
    _add_train_args(p)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("eval", help="re-evaluate a node-level run's checkpoint")
    p.add_argument("run", help="run folder or checkpoint.pt")
    p.add_argument("--data-root")
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser("export", help="write a run's bitwidth-annotated graph")
    p.add_argument("run", help="run folder or checkpoint.pt")
    p.add_argument("--out", help="export folder (default <run>/graph)")
    p.add_argument("--fold", type=int,
                   help="graph-level runs: the fold whose model is exported (default 0)")
    p.add_argument("--split", choices=["train", "val", "test"],
                   help="graph-level runs: that fold's graphs to export (default test: graphs "
                        "the model never saw)")
    p.add_argument("--data-root")
    p.add_argument("--force", action="store_true",
                   help="replace --out even if it holds something that is not this command's "
                        "own earlier output")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("golden", help="run the integer golden model on an export")
    p.add_argument("graph", help="export folder (manifest.json and .npy files)")
    p.add_argument("--out", required=True)
    p.add_argument("--lanes", type=int, default=DEFAULT_LANES, help="lanes of the cycle model")
    p.add_argument("--force", action="store_true",
                   help="replace --out even if it holds something that is not this command's "
                        "own earlier output")
    p.set_defaults(func=_cmd_golden)


def _add_engine_args(p, baselines) -> None:
    """What sizes an engine build: the export, lanes, depths and the baselines it serves."""
    p.add_argument("--graph", help="engine: the export it runs (sizes it; init files)")
    p.add_argument("--max-nodes", type=int, help="engine memory depth (default: the export's "
                                                 "nodes); aggregation (default 4096)")
    p.add_argument("--max-edges", type=int, help="engine memory depth (default: the export's "
                                                 "CSR entries); aggregation (default 16384)")
    from a2q.sim.baselines import DEFAULT_BASELINES

    p.add_argument("--baselines", nargs="*", choices=list(baselines), metavar="BASELINE",
                   help="engine: the baseline re-exports it also runs, of "
                        f"{' '.join(baselines)} (default {' '.join(DEFAULT_BASELINES)}; "
                        "none: --baselines)")


def _add_rtl_parsers(sub, baselines) -> None:
    p = sub.add_parser("rtl", help="write a bit-serial unit's or the layer engine's Verilog, "
                                   "filelist and parameters")
    p.add_argument("unit", choices=["combination", "aggregation", "selection", "readout",
                                    "engine"])
    p.add_argument("--out", required=True, help="folder to write")
    _add_engine_args(p, baselines)
    p.add_argument("--lanes", type=int, help=f"default {DEFAULT_LANES}")
    p.add_argument("--max-bits", type=int, help="default 8")
    p.add_argument("--weight-bits", type=int, help="combination (default 4)")
    p.add_argument("--in-features", type=int, help="combination (default 16)")
    p.add_argument("--columns", type=int, help="aggregation (default 16)")
    p.add_argument("--value-bits", type=int,
                   help="selection: width of a node's values and the thresholds (default 48)")
    p.add_argument("--pool-size", type=int,
                   help="selection: entries of the Nearest-Neighbor pool (default 32)")
    p.add_argument("--in-dim", type=int, help="readout: codes per node (default 32)")
    p.add_argument("--classes", type=int, help="readout: classes (default 2)")
    p.add_argument("--code-bits", type=int, help="readout: unsigned bits of a code (default 4)")
    p.add_argument("--max-graph-nodes", type=int,
                   help="readout: nodes of the largest graph (default 1024)")
    p.add_argument("--acc-width", type=int, help="default: the worst case of the parameters")
    p.add_argument("--signed", dest="signed_input", action="store_true",
                   help="two's complement features (default unsigned, as after a ReLU)")
    p.add_argument("--no-lint", action="store_true", help="skip verilator --lint-only -Wall")
    p.add_argument("--force", action="store_true",
                   help="replace --out even if it holds something that is not this command's "
                        "own earlier output")
    p.set_defaults(func=_cmd_rtl, signed_input=None)
    _form_defaults(p)

    p = sub.add_parser("sim", help="run a unit's RTL on your arrays, or the layer engine on an "
                                   "export (Icarus or Verilator)")
    p.add_argument("unit", choices=["combination", "aggregation", "engine"])
    _add_engine_args(p, baselines)
    p.add_argument("--rtl", help="engine: simulate this engine build (a folder a2q rtl engine "
                                 "wrote for --graph) instead of building one")
    p.add_argument("--x", help="units: N x F integer .npy")
    p.add_argument("--bits", help="units: N integer .npy: each row's bits")
    p.add_argument("--w", help="combination: F x C signed integer weights .npy")
    p.add_argument("--indptr", help="aggregation: CSR row pointers .npy (N + 1)")
    p.add_argument("--indices", help="aggregation: CSR neighbour indices .npy")
    p.add_argument("--out", required=True, help="units: Y.npy to write (and Y.json beside it); "
                                                "engine: the results folder")
    p.add_argument("--signed", action="store_true", help="x in two's complement")
    p.add_argument("--simulator", default="verilator", help="icarus or verilator")
    p.add_argument("--lanes", type=int,
                   help=f"units: default min(columns, {DEFAULT_LANES}); engine {DEFAULT_LANES}")
    p.add_argument("--waves", action="store_true",
                   help="engine: write a waveform (Verilator FST, Icarus VCD)")
    p.add_argument("--load-port", action="store_true",
                   help="engine: fill the memories through the load port instead of init "
                        "files (one word a cycle, slow on large graphs)")
    p.add_argument("--max-bits", type=int, help="default the largest of --bits")
    p.add_argument("--weight-bits", type=int, help="combination (default 4)")
    p.add_argument("--build-dir", default="build/sim", help="simulator models, reused")
    p.add_argument("--force", action="store_true",
                   help="replace --out even if it holds something that is not this command's "
                        "own earlier output")
    p.set_defaults(func=_cmd_sim)
    _form_defaults(p)


def _add_pnr_args(p, *, seed_flag: str) -> None:
    """nextpnr's settings, shared by ``synth`` and ``bench timing``: unless given, each
    target's defaults (:data:`a2q.hw.fpga.synthesis.PNR_DEFAULTS`; ECP5: the static placer,
    router2 and its timing-driven rip-up, the settings that close timing on the engine)."""
    p.add_argument("--no-route", action="store_true",
                   help="stop after placement: Fmax is nextpnr's estimate from the placement")
    p.add_argument("--router", choices=ROUTERS,
                   help="nextpnr's router (default ecp5: router2; ice40: nextpnr's, router1)")
    p.add_argument("--placer", choices=PLACERS,
                   help="nextpnr's placer (default ecp5: static, which spreads the cells by an "
                        "electrostatic model; ice40: nextpnr's, heap)")
    p.add_argument("--density", type=float,
                   help="the heap placer's highest placement density, 0..1 "
                        "(--placer-heap-beta; default 0.9)")
    p.add_argument(seed_flag, dest="pnr_seed", type=int,
                   help="nextpnr's random seed (default: nextpnr's own; another seed places "
                        "and routes differently)")
    p.add_argument("--tmg-ripup", action=argparse.BooleanOptionalAction,
                   help="router2's timing-driven rip-up: it also reroutes the arcs that fail "
                        "timing (default: on with router2)")


def _add_cluster_args(p, runs: str, workers_default: str = "one per core") -> None:
    """``--scheduler`` and ``--workers``: where ``runs`` go (:mod:`a2q.app.cluster`)."""
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help=f"{runs} on a running Dask scheduler (tcp://host:8786) instead of a "
                        "local cluster; its workers need a2q and this command's folders at "
                        "the same paths")
    p.add_argument("--workers", type=int,
                   help=f"local cluster: worker processes (default: {workers_default})")


def _add_synth_parser(sub) -> None:
    p = sub.add_parser("synth", help="FPGA synthesis of an a2q rtl folder (Yosys, nextpnr), "
                                     "with Vivado / Quartus project scripts")
    p.add_argument("rtl", help="folder written by a2q rtl (params.json, filelist.f, .hex)")
    p.add_argument("--target", default="ecp5", choices=["ecp5", "ice40", "xilinx"])
    p.add_argument("--device", help="ecp5: 25k/45k/85k (default 85k); ice40: up5k/hx8k/...; "
                                    "xilinx: a part name")
    p.add_argument("--package", help="default CABGA381 (ecp5), sg48 (ice40)")
    p.add_argument("--freq", type=float, default=100.0, help="target clock in MHz")
    p.add_argument("--no-place", action="store_true",
                   help="stop after Yosys and the fit check (no nextpnr, no Fmax)")
    _add_pnr_args(p, seed_flag="--seed")
    p.add_argument("--seeds", type=int, metavar="N",
                   help="timing closure by seed sweep: Yosys once, then nextpnr with N seeds "
                        "(nextpnr's default, 1, ..., N-1; or --seed S, ..., S+N-1) on a Dask "
                        "cluster; keeps the best routed seed and lists every seed's outcome")
    p.add_argument("--time-limit", type=float, metavar="SECONDS",
                   help="stop nextpnr after this long (each seed of --seeds); the run counts "
                        "as not routed")
    _add_cluster_args(p, "--seeds: place and route", "one per seed, at most one per core")
    p.add_argument("--netlist", metavar="FOLDER",
                   help="place and route the netlist of an earlier a2q synth --no-place of "
                        "the same RTL folder (skips Yosys)")
    p.add_argument("--out", required=True,
                   help="folder for the logs and report.json/md (exit 1 when the design does "
                        "not fit the device; the report says what limits it)")
    p.add_argument("--force", action="store_true",
                   help="replace --out even if it holds something that is not this command's "
                        "own earlier output")
    p.set_defaults(func=_cmd_synth)


def _add_sweep_parser(sub) -> None:
    from .sweep import UNTIL

    p = sub.add_parser("sweep", help="a grid of designs (training, lanes, clock, nextpnr "
                                     "settings) on a Dask cluster: sweep.json, sweep.md, "
                                     "Pareto fronts")
    p.add_argument("--grid", help="a JSON file of axes (an object, or a list of objects for "
                                  "several grids) instead of the axis options; its axes: "
                                  "dataset, model, method, seed, epochs, graph, lanes, device, "
                                  "freq, placer, router, pnr_seed, each a value or a list")
    axes = p.add_argument_group("axes (each takes several values; every combination is a "
                                "point)")
    axes.add_argument("--datasets", nargs="+", help="default Cora")
    axes.add_argument("--models", nargs="+", help="default gcn")
    axes.add_argument("--methods", nargs="+", help="default a2q (others stop after training)")
    axes.add_argument("--seeds", nargs="+", type=int, help="training seeds (default 0)")
    axes.add_argument("--epochs", nargs="+", type=int, help="default: the model's")
    axes.add_argument("--graphs", nargs="+", metavar="EXPORT",
                      help="exports (a2q export folders) to build engines for, instead of "
                           "training")
    axes.add_argument("--lanes", nargs="+", type=int, help=f"default {DEFAULT_LANES}")
    axes.add_argument("--devices", nargs="+", help="ECP5 devices (default 85k)")
    axes.add_argument("--freqs", nargs="+", type=float, help="clock targets in MHz (default "
                                                             "100)")
    axes.add_argument("--placers", nargs="+", help="nextpnr placers (default a2q synth's)")
    axes.add_argument("--routers", nargs="+", help="nextpnr routers (default a2q synth's)")
    axes.add_argument("--pnr-seeds", nargs="+", type=int,
                      help="nextpnr seeds (default nextpnr's own)")
    p.add_argument("--until", default="pnr", choices=list(UNTIL),
                   help="the last stage of every point (default pnr: place and route)")
    p.add_argument("--simulator", default="verilator", choices=["verilator", "icarus"])
    p.add_argument("--build-dir", help="simulator model cache, reused (default: "
                                       "<out>/build/sim)")
    p.add_argument("--time-limit", type=float, metavar="SECONDS",
                   help="stop any stage of a point that runs longer; the point fails")
    _add_cluster_args(p, "run the points")
    p.add_argument("--retry-failed", action="store_true",
                   help="run the points that failed before again (finished ones never are)")
    p.add_argument("--data-root")
    p.add_argument("--out", required=True, help="sweep folder (run again to resume)")
    p.add_argument("--force", action="store_true",
                   help="write into --out even if it holds something that is not a sweep")
    p.set_defaults(func=_cmd_sweep)


def _add_regress_parser(sub) -> None:
    p = sub.add_parser("regress", help="a pytest regression sharded over a Dask cluster, one "
                                       "JUnit XML")
    p.add_argument("tests", nargs="+", help="test files or folders (pytest's arguments)")
    p.add_argument("-m", dest="marks", help="pytest's -m: the marks to select")
    p.add_argument("-k", dest="keyword", help="pytest's -k: the names to select")
    p.add_argument("--pytest-arg", action="append", default=[], metavar="ARG",
                   help="one more argument for every shard's pytest (repeat it)")
    p.add_argument("--junitxml", required=True, help="the merged JUnit XML to write")
    p.add_argument("--basetemp", help="the shards' pytest --basetemp parent")
    p.add_argument("--shards", type=int, help="pytest runs to cut the cases into (default: "
                                              "two per worker)")
    p.add_argument("--time-limit", type=float, metavar="SECONDS",
                   help="stop a shard that runs longer (its cases count as an error)")
    _add_cluster_args(p, "run the shards")
    p.set_defaults(func=_cmd_regress)


def _add_flow_parser(sub, baselines) -> None:
    from .flow_stages import OTHER_METHODS, STAGES

    p = sub.add_parser("flow", help="train, export, golden model, engine Verilog, RTL "
                                    "simulation, ECP5 synthesis and a report, in one command")
    p.add_argument("--dataset", default="Cora", help="a node-level dataset (Cora, CiteSeer, "
                                                    "PubMed)")
    p.add_argument("--model", default="gcn", choices=list(ENGINE_MODELS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, help="training epochs (default: the model's, 200)")
    p.add_argument("--run", help="reuse this finished A²Q run folder instead of training")
    p.add_argument("--methods", nargs="*", default=list(OTHER_METHODS),
                   help=f"other methods trained for accuracy vs bits (default "
                        f"{' '.join(OTHER_METHODS)}; none: --methods)")
    p.add_argument("--lanes", type=int, default=DEFAULT_LANES)
    from a2q.sim.baselines import DEFAULT_BASELINES

    p.add_argument("--baselines", nargs="*", default=list(DEFAULT_BASELINES),
                   choices=list(baselines), metavar="BASELINE",
                   help=f"run on the engine beside A²Q, of {' '.join(baselines)} (default "
                        f"{' '.join(DEFAULT_BASELINES)})")
    p.add_argument("--simulator", default="verilator", choices=["verilator", "icarus"])
    p.add_argument("--no-synth", action="store_true", help="skip FPGA synthesis")
    p.add_argument("--place", action="store_true",
                   help="also place and route with nextpnr (Fmax, with a2q synth's defaults: "
                        "about 15 minutes for the full engine on 2 cores); default: Yosys and "
                        "the fit check")
    p.add_argument("--device", default="85k", help="ECP5 device (default 85k: LFE5U-85F)")
    p.add_argument("--freq", type=float, default=100.0, help="target clock in MHz")
    p.add_argument("--out", help="flow folder (default runs/flow-<dataset>-<model>)")
    p.add_argument("--build-dir", default="build/sim", help="simulator model cache")
    p.add_argument("--restart", action="store_true", help="run every stage again")
    p.add_argument("--from", dest="from_stage", choices=STAGES, metavar="STAGE",
                   help=f"run this stage and the later ones again ({', '.join(STAGES)})")
    p.add_argument("--data-root")
    p.add_argument("--force", action="store_true",
                   help="replace --out even if it holds something that is not this command's "
                        "own earlier output")
    p.set_defaults(func=_cmd_flow)


def _add_bench_parsers(sub) -> None:
    bsub = sub.add_parser("bench", help="benchmarks").add_subparsers(dest="bench", required=True)

    def bench(name, help, out_files, func):
        b = bsub.add_parser(name, help=help)
        b.add_argument("--out", default="bench", help=f"folder for {out_files}")
        if name != "rtl":
            b.add_argument("--data-root")
        b.set_defaults(func=func)
        return b

    b = bench("train", "accuracy, bits and speed of every method", "train.md and train.json",
              _cmd_bench)
    b.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    b.add_argument("--epochs", type=int,
                   help="default: each dataset's (200 node level, 100 graph level)")
    b.add_argument("--tune", action="store_true",
                   help="every method chooses weight decay and dropout on validation accuracy "
                        "from the same grid (a2q train --tune)")
    b.add_argument("--workers", type=int,
                   help="graph level: processes training folds side by side (default: one per "
                        "core)")
    b.add_argument("--datasets", nargs="+", default=["Cora", "CiteSeer"])
    b.add_argument("--models", nargs="+", default=list(MODELS))
    b.add_argument("--methods", nargs="+", default=["fp32", "uniform8", "uniform4", "dq", "a2q"])
    b = bench("golden", "golden-model speed and the cycle model per export",
              "cycles.md and cycles.json", _cmd_bench_golden)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--datasets", nargs="+", default=["Cora", "CiteSeer"])
    b.add_argument("--models", nargs="+", default=list(ENGINE_MODELS))
    b.add_argument("--lanes", type=int, default=DEFAULT_LANES)
    b = bench("rtl", "simulated cycles per second of each unit, each simulator",
              "rtl.md and rtl.json", _cmd_bench_rtl)
    b.add_argument("--seed", type=int, default=0)
    b = bench("engine", "whole inferences on the layer engine in RTL: cycles, exactness, cycles "
                        "per second on each simulator", "engine.md and engine.json",
              _cmd_bench_engine)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--dataset", default="Cora")
    b.add_argument("--models", nargs="+", default=list(ENGINE_MODELS))
    b.add_argument("--simulators", nargs="+", default=["verilator", "icarus"])
    b.add_argument("--lanes", type=int, default=DEFAULT_LANES)
    b = bench("hw", "A²Q against uniform4 / uniform4-exact-input / uniform8 on the engine in "
                    "RTL, stage by stage, and a sweep over lanes with ECP5 synthesis",
              "hw.md, hw.json, hw_lanes.png", _cmd_bench_hw)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--datasets", nargs="*", default=["Cora", "CiteSeer"],
                   help="node-level datasets (none: graph-level rows only)")
    b.add_argument("--models", nargs="+", default=list(ENGINE_MODELS))
    b.add_argument("--lanes", type=int, default=DEFAULT_LANES)
    b.add_argument("--sweep-lanes", type=int, nargs="*", default=[4, 8, 16, 32],
                   help="lane counts of the sweep (none: no sweep)")
    b.add_argument("--graph-datasets", nargs="*", default=["MUTAG", "PROTEINS"],
                   help="graph-level GIN on each, fold 0's test graphs (none: no graph-level "
                        "rows)")
    b.add_argument("--sweep-dataset", default="Cora")
    b.add_argument("--sweep-model", default="gcn")
    b.add_argument("--no-synth", action="store_true", help="sweep cycles only, no Yosys")
    b.add_argument("--device", default="85k", help="ECP5 device of the sweep's synthesis")
    b.add_argument("--freq", type=float, default=100.0, help="target clock in MHz")
    b = bench("cpu", "PyTorch's CPU inference time of a trained model beside the engine's "
                     "cycles and latency", "cpu.md and cpu.json", _cmd_bench_cpu)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--dataset", default="Cora")
    b.add_argument("--model", default="gcn", choices=list(ENGINE_MODELS))
    b.add_argument("--lanes", type=int, default=DEFAULT_LANES)
    b.add_argument("--fmax", type=float, help="the engine's routed Fmax in MHz (a2q synth's "
                                              "report) for its latency")
    b.add_argument("--repeats", type=int, default=200)
    b = bench("timing", "the engine a2q flow builds, through Yosys and nextpnr: Fmax and the "
                        "critical path", "timing.md and timing.json", _cmd_bench_timing)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--dataset", default="Cora")
    b.add_argument("--model", default="gcn", choices=list(ENGINE_MODELS))
    b.add_argument("--lanes", type=int, nargs="+", default=[DEFAULT_LANES])
    b.add_argument("--max-nodes", type=int,
                   help="size the memories down (zero-filled) instead of the trained export")
    b.add_argument("--max-edges", type=int, help="as --max-nodes")
    b.add_argument("--device", default="85k")
    b.add_argument("--freq", type=float, default=100.0)
    _add_pnr_args(b, seed_flag="--pnr-seed")
    b.add_argument("--requant-lanes", type=int, default=0,
                   help="lanes the shared requantization takes a cycle (default: half the "
                        "lanes)")


def build_parser() -> argparse.ArgumentParser:
    from a2q.sim.baselines import BASELINES

    parser = argparse.ArgumentParser(prog="a2q", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train_parsers(sub)
    _add_rtl_parsers(sub, BASELINES)
    _add_synth_parser(sub)
    _add_flow_parser(sub, BASELINES)
    _add_sweep_parser(sub)
    _add_regress_parser(sub)
    _add_bench_parsers(sub)
    return parser


def _error(message: str) -> None:
    """The one line of an error: a newline inside a name the input gave is shown as \\n."""
    print("a2q: error: " + message.replace("\n", "\\n"), file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    from a2q.sim.rtl_sim import SimulationError
    from a2q.sim.toolchain import ToolchainError
    from a2q.sim.unit_run import InputError

    if not sys.warnoptions:  # a2q says what matters in one line; python -W shows the rest
        warnings.simplefilter("ignore")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (A2QError, InputError, ToolchainError, SimulationError) as exc:
        _error(str(exc))
        return 1
    except OSError as exc:  # a file system that refuses: read-only, full, permissions
        where = f"{exc.filename}: " if exc.filename else ""
        _error(f"{where}{exc.strerror or exc}")
        return 1
    except KeyboardInterrupt:
        print("a2q: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
