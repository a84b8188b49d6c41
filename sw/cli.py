"""The ``a2q`` command line: train, eval, export, golden, rtl, sim, synth, flow, bench."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from a2q.hw.synthesis import PLACERS, ROUTERS

from .errors import A2QError


def _add_train_args(p: argparse.ArgumentParser) -> None:
    from .choices import DATASETS, METHODS, MODELS

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
    p.add_argument("--lambda", dest="lam", type=float, help="memory penalty weight")
    p.add_argument("--memory-target", dest="memory_target_kb", type=float,
                   help="memory target in KB (per graph for graph-level tasks)")
    p.add_argument("--pool-size", type=int, help="Nearest-Neighbor pool size (graph-level)")
    p.add_argument("--batch-size", type=int, help="graph-level (default 32)")
    p.add_argument("--folds", type=int, help="graph-level cross-validation folds (default 10)")
    p.add_argument("--data-root", help="writable dataset cache (default $A2Q_DATA_ROOT or "
                                       "~/.cache/a2q/datasets)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-export", action="store_true",
                   help="do not export the bitwidth-annotated graph (<out>/graph) at the end")


def _cmd_train(args) -> int:
    from .config import default_config
    from .run_folder import write_run
    from .train import train

    overrides = {k: getattr(args, k) for k in (
        "seed", "epochs", "bits", "hidden", "heads", "layers", "dropout", "lr", "weight_decay",
        "lam", "memory_target_kb", "pool_size", "batch_size", "folds")}
    cfg = default_config(args.dataset, args.model, args.method, **overrides)
    result = train(cfg, data_root=args.data_root, progress=not args.no_progress)
    out = write_run(result, args.out)
    m = result.metrics
    exported = None
    if not args.no_export and _exportable(cfg):
        from .export import export_run

        exported = export_run(out, data_root=args.data_root)
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
    from .data import is_node_level
    from .export import EXPORTABLE_METHODS

    return (is_node_level(cfg.dataset) and cfg.model in ("gcn", "gin")
            and cfg.method in EXPORTABLE_METHODS)


def _cmd_export(args) -> int:
    from .export import export_run

    print(f"bitwidth-annotated graph -> {export_run(args.run, args.out, data_root=args.data_root)}")
    return 0


def _cmd_golden(args) -> int:
    from a2q.sim.annotated_graph import GraphFormatError
    from a2q.sim.golden_run import run_golden

    if args.lanes < 1:
        raise A2QError(f"--lanes must be at least 1, got {args.lanes}")
    try:
        s = run_golden(args.graph, args.out, lanes=args.lanes)
    except GraphFormatError as exc:
        raise A2QError(str(exc)) from None
    print(f"{s['dataset']} {s['model']}: golden test_acc {s['test_acc']:.2f} "
          f"(torch {s['reference_test_acc']:.2f}), predictions agree on "
          f"{100 * s['prediction_agreement']:.2f}% of nodes, {s['seconds']:.3f} s, "
          f"cycles vs uniform 4-bit: {s['cycles_speedup_vs_uniform4']:.2f}x -> {args.out}")
    return 0


def _cmd_eval(args) -> int:
    from .run_folder import load_checkpoint
    from .train import evaluate_checkpoint

    print(json.dumps(evaluate_checkpoint(load_checkpoint(args.run), data_root=args.data_root)))
    return 0


def _cmd_bench_golden(args) -> int:
    from .bench import run_golden_bench

    run_golden_bench(args.out, datasets=args.datasets, models=args.models, seed=args.seed,
                     lanes=args.lanes, data_root=args.data_root)
    return 0


def _cmd_bench(args) -> int:
    from .bench import run_train_bench

    run_train_bench(args.out, seeds=args.seeds, epochs=args.epochs, data_root=args.data_root,
                    datasets=args.datasets, models=args.models, methods=args.methods)
    return 0


def _engine_args(args, command: str):
    """The export, the engine's configuration and its memory image for ``rtl engine``."""
    from a2q.sim.annotated_graph import GraphFormatError, read_graph
    from a2q.sim.engine_image import EngineFitError, engine_config, memory_words

    if args.graph is None:
        raise A2QError(f"{command} engine needs --graph (an export folder)")
    try:
        g = read_graph(args.graph)
        cfg = engine_config(g, lanes=args.lanes or 16, max_nodes=args.max_nodes,
                            max_edges=args.max_edges)
        words = memory_words(cfg, g)
    except (GraphFormatError, EngineFitError, ValueError) as exc:
        raise A2QError(f"{command} engine: {exc}") from None
    return g, cfg, words


def _write_rtl_folder(args, write):
    """``write(folder)`` into ``args.out`` whole or not at all, then lint it unless
    ``--no-lint``; returns the parameters and the words to print about lint."""
    from a2q.sim.toolchain import write_linted

    info = write_linted(args.out, write, lint_it=not args.no_lint)
    return info, "" if args.no_lint else "; verilator --lint-only -Wall clean"


def _cmd_rtl_engine(args) -> int:
    from a2q.hw import rtl
    from a2q.hw.layer_engine import LayerEngine
    from a2q.sim.engine_image import write_init_files

    g, cfg, words = _engine_args(args, "rtl")
    print(f"engine for {args.graph}: {cfg.model}, {cfg.lanes} lanes, {cfg.max_nodes} nodes, "
          f"{cfg.max_edges} edges; generating Verilog", file=sys.stderr)
    info, linted = _write_rtl_folder(args, lambda tmp: rtl.write_engine_rtl(
        LayerEngine(cfg, ram_template=True), tmp,
        init_files=lambda f: write_init_files(cfg, words, f)))
    print(f"{args.out}/{info['verilog']}: {info['module']} ({cfg.model}, {cfg.lanes} lanes, "
          f"{len(info['memories'])} memories, init files beside it){linted}")
    return 0


def _cmd_sim_engine(args) -> int:
    from a2q.sim.engine_run import passed, run_engine

    if args.graph is None:
        raise A2QError("sim engine needs --graph (an export folder)")
    if args.simulator not in ("icarus", "verilator"):
        raise A2QError(f"unknown simulator {args.simulator!r}: expected icarus or verilator")
    try:  # a malformed export or one the engine cannot hold is refused before any build
        r = run_engine(args.graph, args.out, simulator=args.simulator, lanes=args.lanes or 16,
                       max_nodes=args.max_nodes, max_edges=args.max_edges,
                       build_root=args.build_dir, waves=args.waves,
                       baselines=tuple(args.baselines),
                       via_load_port=args.load_port,
                       progress=lambda s: print(s, file=sys.stderr))
    except ValueError as exc:  # GraphFormatError, EngineFitError, engine parameters
        raise A2QError(f"sim engine: {exc}") from None
    print(f"{args.out}: {r['dataset']} {r['model']} on {r['simulator']}: logits equal the golden "
          f"model on {r['num_nodes'] - r['mismatched_nodes']}/{r['num_nodes']} nodes; test_acc "
          f"{r['test_acc']:.2f} (golden {r['golden_test_acc']:.2f}); cycles {r['cycles_measured']}"
          f" (model {r['cycles_predicted']}); {r['cycles_per_second']:.0f} cycles/s")
    for key, u in r["baselines"].items():
        print(f"  {key}: cycles {u['cycles_measured']} (model {u['cycles_predicted']}), "
              f"logits equal golden: {u['logits_equal_golden']}; A2Q speedup "
              f"{u['speedup_of_a2q']:.3f}x")
    return 0 if passed(r) else 1


def _cmd_rtl(args) -> int:
    from a2q.hw import rtl

    if args.unit == "engine":
        return _cmd_rtl_engine(args)

    defaults = {"combination": {"in_features": 16},
                "aggregation": {"columns": 16, "max_nodes": 4096, "max_edges": 16384}}
    params = defaults[args.unit] | {k: v for k, v in vars(args).items()
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

    common = dict(signed_input=args.signed, simulator=args.simulator, lanes=args.lanes,
                  max_bits=args.max_bits, build_root=args.build_dir)
    needs = ["x", "bits"] + (["w"] if args.unit == "combination" else ["indptr", "indices"])
    missing = [f"--{k}" for k in needs if getattr(args, k) is None]
    if missing:
        raise A2QError(f"sim {args.unit} needs {' and '.join(missing)}")
    if args.simulator not in ("icarus", "verilator"):
        raise A2QError(f"unknown simulator {args.simulator!r}: expected icarus or verilator")
    if args.unit == "combination":
        r = unit_run.simulate_combination(args.x, args.bits, args.w, args.out,
                                          weight_bits=args.weight_bits, **common)
    else:
        r = unit_run.simulate_aggregation(args.indptr, args.indices, args.x, args.bits, args.out,
                                          **common)
    print(f"{args.out}: {r['unit']} on {r['simulator']}: equals NumPy: {r['matches_numpy']}; "
          f"cycles {r['cycles_measured']} (model {r['cycles_predicted']}, ideal "
          f"{r['cycles_ideal']}); {r['cycles_per_second']:.0f} cycles/s")
    return 0 if r["matches_numpy"] and r["cycles_measured"] == r["cycles_predicted"] else 1


def _cmd_synth(args) -> int:
    from a2q.hw.synthesis import SynthesisError, synthesize

    then = "" if args.no_place else ", then nextpnr" + (" placement" if args.no_route else "")
    print(f"synthesizing {args.rtl} for {args.target} (Yosys{then}; minutes on large "
          "designs)", file=sys.stderr)
    try:
        r = synthesize(args.rtl, args.target, args.out, device=args.device,
                       package=args.package, freq_mhz=args.freq,
                       place_and_route=not args.no_place, route=not args.no_route,
                       router=args.router, density=args.density, placer=args.placer,
                       seed=args.seed, timing_ripup=args.tmg_ripup)
    except SynthesisError as exc:
        raise A2QError(f"synth: {exc}") from None
    fmax = "n/a" if r["fmax_mhz"] is None else f"{r['fmax_mhz']} MHz"
    if r["fmax_mhz"] is None and r.get("fmax_placed_mhz") is not None:
        fmax = f"{r['fmax_placed_mhz']} MHz estimated after placement"
    print(f"{args.out}: {r['top']} on {r['target']} {r['device']}: LUTs {r['luts']}, FFs "
          f"{r['ffs']}, BRAMs {r['brams']}, DSPs {r['dsps']}, Fmax {fmax} (target {args.freq} "
          f"MHz)")
    if r.get("verdict"):
        print(f"{r['verdict']} (report: {Path(args.out) / 'report.md'})")
    return 1 if r.get("fits") is False else 0


def _cmd_bench_engine(args) -> int:
    from .bench import run_engine_bench

    result = run_engine_bench(args.out, models=args.models, dataset=args.dataset, seed=args.seed,
                              lanes=args.lanes, simulators=args.simulators,
                              data_root=args.data_root)
    return 0 if all(r["passed"] for r in result["rows"]) else 1


def _cmd_flow(args) -> int:
    from .flow import STAGES, Flow, FlowOptions, summary_rows

    options = FlowOptions(dataset=args.dataset, model=args.model, seed=args.seed,
                          epochs=args.epochs, run=args.run, methods=tuple(args.methods),
                          lanes=args.lanes, baselines=tuple(args.baselines),
                          simulator=args.simulator, synth=not args.no_synth,
                          place=args.place, device=args.device, freq_mhz=args.freq)
    out = args.out or f"runs/flow-{args.dataset.lower()}-{args.model}"
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
    from .hw_bench import run_hw_bench

    result = run_hw_bench(args.out, datasets=args.datasets, models=args.models, seed=args.seed,
                          lanes=args.lanes, sweep_lanes=args.sweep_lanes,
                          sweep_on=(args.sweep_dataset, args.sweep_model),
                          synth=not args.no_synth, device=args.device, freq_mhz=args.freq,
                          data_root=args.data_root,
                          progress=lambda s: print(s, flush=True))
    return 0 if all(s["exact"] for s in result["summary"]) and all(
        p["exact"] for p in result["sweep"]) else 1


def _cmd_bench_timing(args) -> int:
    from .hw_bench import run_timing_bench

    if args.requant_lanes and not 0 < args.requant_lanes <= min(args.lanes):
        raise A2QError(f"--requant-lanes must be between 1 and the lanes ({min(args.lanes)}), "
                       f"got {args.requant_lanes}")
    if args.tmg_ripup and args.router != "router2":
        raise A2QError("--tmg-ripup is router2's timing-driven rip-up: give --router router2")
    run_timing_bench(args.out, dataset=args.dataset, model=args.model, seed=args.seed,
                     lanes=args.lanes, max_nodes=args.max_nodes, max_edges=args.max_edges,
                     device=args.device, freq_mhz=args.freq, route=not args.no_route,
                     router=args.router, density=args.density, placer=args.placer,
                     pnr_seed=args.pnr_seed, timing_ripup=args.tmg_ripup,
                     requant_lanes=args.requant_lanes,
                     data_root=args.data_root, progress=lambda s: print(s, flush=True))
    return 0


def _cmd_bench_rtl(args) -> int:
    from a2q.sim.rtl_bench import run_rtl_bench

    rows = run_rtl_bench(args.out, seed=args.seed)
    return 0 if all(r["matches_numpy"] and r["cycles_measured"] == r["cycles_predicted"]
                    for r in rows) else 1


def build_parser() -> argparse.ArgumentParser:
    from a2q.sim.baselines import BASELINES

    parser = argparse.ArgumentParser(prog="a2q", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

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
    p.add_argument("--data-root")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("golden", help="run the integer golden model on an export")
    p.add_argument("graph", help="export folder (manifest.json and .npy files)")
    p.add_argument("--out", required=True)
    p.add_argument("--lanes", type=int, default=16, help="lanes of the cycle model")
    p.set_defaults(func=_cmd_golden)

    p = sub.add_parser("rtl", help="write a bit-serial unit's or the layer engine's Verilog, "
                                   "filelist and parameters")
    p.add_argument("unit", choices=["combination", "aggregation", "engine"])
    p.add_argument("--out", required=True, help="folder to write")
    p.add_argument("--graph", help="engine: the export it runs (sizes it; init files)")
    p.add_argument("--lanes", type=int, default=16)
    p.add_argument("--max-bits", type=int, default=8)
    p.add_argument("--weight-bits", type=int, help="combination (default 4)")
    p.add_argument("--in-features", type=int, help="combination (default 16)")
    p.add_argument("--columns", type=int, help="aggregation (default 16)")
    p.add_argument("--max-nodes", type=int, help="aggregation memory depth (default 4096); "
                                                 "engine (default: the export's nodes)")
    p.add_argument("--max-edges", type=int, help="aggregation memory depth (default 16384); "
                                                 "engine (default: the export's CSR entries)")
    p.add_argument("--acc-width", type=int, help="default: the worst case of the parameters")
    p.add_argument("--signed", dest="signed_input", action="store_true",
                   help="two's complement features (default unsigned, as after a ReLU)")
    p.add_argument("--no-lint", action="store_true", help="skip verilator --lint-only -Wall")
    p.set_defaults(func=_cmd_rtl, signed_input=None)

    p = sub.add_parser("sim", help="run a unit's RTL on your arrays, or the layer engine on an "
                                   "export (Icarus or Verilator)")
    p.add_argument("unit", choices=["combination", "aggregation", "engine"])
    p.add_argument("--graph", help="engine: the export to run")
    p.add_argument("--x", help="units: N x F integer .npy")
    p.add_argument("--bits", help="units: N integer .npy: each row's bits")
    p.add_argument("--w", help="combination: F x C signed integer weights .npy")
    p.add_argument("--indptr", help="aggregation: CSR row pointers .npy (N + 1)")
    p.add_argument("--indices", help="aggregation: CSR neighbour indices .npy")
    p.add_argument("--out", required=True, help="units: Y.npy to write (and Y.json beside it); "
                                                "engine: the results folder")
    p.add_argument("--signed", action="store_true", help="x in two's complement")
    p.add_argument("--simulator", default="verilator", help="icarus or verilator")
    p.add_argument("--lanes", type=int, help="default min(columns, 16); engine 16")
    p.add_argument("--max-nodes", type=int, help="engine memory depth (default: the export's)")
    p.add_argument("--max-edges", type=int, help="engine memory depth (default: the export's)")
    p.add_argument("--baselines", nargs="*", default=list(BASELINES), choices=list(BASELINES),
                   metavar="BASELINE",
                   help="engine: also run the model re-exported as these baselines (default "
                        f"{' '.join(BASELINES)}; none: --baselines)")
    p.add_argument("--waves", action="store_true",
                   help="engine: write a waveform (Verilator FST, Icarus VCD)")
    p.add_argument("--load-port", action="store_true",
                   help="engine: fill the memories through the load port instead of init "
                        "files (one word a cycle, slow on large graphs)")
    p.add_argument("--max-bits", type=int, help="default the largest of --bits")
    p.add_argument("--weight-bits", type=int, default=4)
    p.add_argument("--build-dir", default="build/sim", help="simulator models, reused")
    p.set_defaults(func=_cmd_sim)

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
    p.add_argument("--no-route", action="store_true",
                   help="stop after placement: Fmax is nextpnr's estimate from the placement "
                        "(minutes; routing a large design can take over an hour)")
    p.add_argument("--router", choices=ROUTERS,
                   help="nextpnr's router (default: nextpnr's, router1; router2 is built for "
                        "large, congested designs)")
    p.add_argument("--placer", choices=PLACERS,
                   help="nextpnr's placer (default: nextpnr's, heap; static spreads the cells "
                        "by an electrostatic model)")
    p.add_argument("--density", type=float,
                   help="nextpnr's highest placement density, 0..1 (--placer-heap-beta; default "
                        "0.9)")
    p.add_argument("--seed", type=int,
                   help="nextpnr's random seed (default: nextpnr's own; another seed places "
                        "and routes differently)")
    p.add_argument("--tmg-ripup", action="store_true",
                   help="router2's timing-driven rip-up (nextpnr's --tmg-ripup; needs "
                        "--router router2): it also reroutes the arcs that fail timing")
    p.add_argument("--out", required=True,
                   help="folder for the logs and report.json/md (exit 1 when the design does "
                        "not fit the device; the report says what limits it)")
    p.set_defaults(func=_cmd_synth)

    from .flow import OTHER_METHODS, STAGES

    p = sub.add_parser("flow", help="train, export, golden model, engine Verilog, RTL "
                                    "simulation, ECP5 synthesis and a report, in one command")
    p.add_argument("--dataset", default="Cora", help="a node-level dataset (Cora, CiteSeer, "
                                                    "PubMed)")
    p.add_argument("--model", default="gcn", choices=["gcn", "gin"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, help="training epochs (default: the model's, 200)")
    p.add_argument("--run", help="reuse this finished A²Q run folder instead of training")
    p.add_argument("--methods", nargs="*", default=list(OTHER_METHODS),
                   help=f"other methods trained for accuracy vs bits (default "
                        f"{' '.join(OTHER_METHODS)}; none: --methods)")
    p.add_argument("--lanes", type=int, default=16)
    p.add_argument("--baselines", nargs="*", default=list(BASELINES), choices=list(BASELINES),
                   metavar="BASELINE", help=f"run on the engine beside A²Q (default "
                                            f"{' '.join(BASELINES)})")
    p.add_argument("--simulator", default="verilator", choices=["verilator", "icarus"])
    p.add_argument("--no-synth", action="store_true", help="skip FPGA synthesis")
    p.add_argument("--place", action="store_true",
                   help="also place and route with nextpnr (Fmax; static placer, router2 with "
                        "timing-driven rip-up, as bench/timing.md: about 15 minutes for the "
                        "full engine on 2 cores); default: Yosys and the fit check")
    p.add_argument("--device", default="85k", help="ECP5 device (default 85k: LFE5U-85F)")
    p.add_argument("--freq", type=float, default=100.0, help="target clock in MHz")
    p.add_argument("--out", help="flow folder (default runs/flow-<dataset>-<model>)")
    p.add_argument("--build-dir", default="build/sim", help="simulator model cache")
    p.add_argument("--restart", action="store_true", help="run every stage again")
    p.add_argument("--from", dest="from_stage", choices=STAGES, metavar="STAGE",
                   help=f"run this stage and the later ones again ({', '.join(STAGES)})")
    p.add_argument("--data-root")
    p.set_defaults(func=_cmd_flow)

    p = sub.add_parser("bench", help="benchmarks")
    bsub = p.add_subparsers(dest="bench", required=True)
    b = bsub.add_parser("train", help="accuracy, bits and speed of every method")
    b.add_argument("--out", default="bench", help="folder for train.md and train.json")
    b.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    b.add_argument("--epochs", type=int, default=200)
    b.add_argument("--datasets", nargs="+", default=["Cora", "CiteSeer"])
    b.add_argument("--models", nargs="+", default=["gcn", "gin", "gat"])
    b.add_argument("--methods", nargs="+", default=["fp32", "uniform8", "uniform4", "dq", "a2q"])
    b.add_argument("--data-root")
    b.set_defaults(func=_cmd_bench)
    b = bsub.add_parser("golden", help="golden-model speed and the cycle model per export")
    b.add_argument("--out", default="bench", help="folder for cycles.md and cycles.json")
    b.add_argument("--datasets", nargs="+", default=["Cora", "CiteSeer"])
    b.add_argument("--models", nargs="+", default=["gcn", "gin"])
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--lanes", type=int, default=16)
    b.add_argument("--data-root")
    b.set_defaults(func=_cmd_bench_golden)
    b = bsub.add_parser("rtl", help="simulated cycles per second of each unit, each simulator")
    b.add_argument("--out", default="bench", help="folder for rtl.md and rtl.json")
    b.add_argument("--seed", type=int, default=0)
    b.set_defaults(func=_cmd_bench_rtl)
    b = bsub.add_parser("engine", help="whole inferences on the layer engine in RTL: cycles, "
                                       "exactness, cycles per second on each simulator")
    b.add_argument("--out", default="bench", help="folder for engine.md and engine.json")
    b.add_argument("--dataset", default="Cora")
    b.add_argument("--models", nargs="+", default=["gcn", "gin"])
    b.add_argument("--simulators", nargs="+", default=["verilator", "icarus"])
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--lanes", type=int, default=16)
    b.add_argument("--data-root")
    b.set_defaults(func=_cmd_bench_engine)
    b = bsub.add_parser("hw", help="A²Q against uniform4 / uniform4-exact-input / uniform8 on "
                                   "the engine in RTL, stage by stage, and a sweep over lanes "
                                   "with ECP5 synthesis")
    b.add_argument("--out", default="bench", help="folder for hw.md, hw.json, hw_lanes.png")
    b.add_argument("--datasets", nargs="+", default=["Cora", "CiteSeer"])
    b.add_argument("--models", nargs="+", default=["gcn", "gin"])
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--lanes", type=int, default=16)
    b.add_argument("--sweep-lanes", type=int, nargs="*", default=[4, 8, 16, 32],
                   help="lane counts of the sweep (none: no sweep)")
    b.add_argument("--sweep-dataset", default="Cora")
    b.add_argument("--sweep-model", default="gcn")
    b.add_argument("--no-synth", action="store_true", help="sweep cycles only, no Yosys")
    b.add_argument("--device", default="85k", help="ECP5 device of the sweep's synthesis")
    b.add_argument("--freq", type=float, default=100.0, help="target clock in MHz")
    b.add_argument("--data-root")
    b.set_defaults(func=_cmd_bench_hw)
    b = bsub.add_parser("timing", help="the engine through Yosys and nextpnr: Fmax and the "
                                       "critical path")
    b.add_argument("--out", default="bench", help="folder for timing.md and timing.json")
    b.add_argument("--dataset", default="Cora")
    b.add_argument("--model", default="gcn", choices=["gcn", "gin"])
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--lanes", type=int, nargs="+", default=[16])
    b.add_argument("--max-nodes", type=int,
                   help="size the memories down (zero-filled) instead of the trained export")
    b.add_argument("--max-edges", type=int, help="as --max-nodes")
    b.add_argument("--device", default="85k")
    b.add_argument("--freq", type=float, default=100.0)
    b.add_argument("--no-route", action="store_true",
                   help="stop after placement: Fmax is nextpnr's estimate from the placement")
    b.add_argument("--router", choices=ROUTERS,
                   help="nextpnr's router (default: nextpnr's, router1)")
    b.add_argument("--placer", choices=PLACERS, help="nextpnr's placer (as a2q synth --placer)")
    b.add_argument("--density", type=float,
                   help="nextpnr's highest placement density (as a2q synth --density)")
    b.add_argument("--pnr-seed", type=int, help="nextpnr's random seed (as a2q synth --seed)")
    b.add_argument("--tmg-ripup", action="store_true",
                   help="router2's timing-driven rip-up (as a2q synth --tmg-ripup)")
    b.add_argument("--requant-lanes", type=int, default=0,
                   help="lanes the shared requantization takes a cycle (default: half the "
                        "lanes)")
    b.add_argument("--data-root")
    b.set_defaults(func=_cmd_bench_timing)
    return parser


def main(argv: list[str] | None = None) -> int:
    from a2q.sim.rtl_sim import SimulationError
    from a2q.sim.toolchain import ToolchainError
    from a2q.sim.unit_run import InputError

    warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (A2QError, InputError, ToolchainError, SimulationError) as exc:
        print(f"a2q: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("a2q: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
