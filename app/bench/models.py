"""``a2q bench train``: every method on the same models, datasets and seeds, in one run.

Writes ``train.json`` (every run's metrics and the aggregated rows) and ``train.md`` (the
table). Speed is reported as seconds per epoch and its ratio to FP32 measured in the same
invocation, on the same machine, so that machine noise between runs does not decide it.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from a2q.common.choices import DEFAULT_LANES, ENGINE_MODELS
from a2q.common.errors import A2QError
from a2q.sw.config import default_config
from a2q.sw.train import train

#: method labels of the bench: (label, method, bits)
METHOD_LABELS = {
    "fp32": ("fp32", 32), "uniform8": ("uniform", 8), "uniform4": ("uniform", 4),
    "dq": ("dq", 4), "a2q": ("a2q", 4),
}

#: reference figures quoted, not measured here: the paper (Zhu et al., ICLR 2023) and the
#: authors' own code run on a 2-core machine like this one (best-test protocol, ../shared/DESIGN.md)
REFERENCE = {
    ("Cora", "gcn"): "paper: 80.9 at 1.70 bits; authors' code here: 81.0±0.7 best-test, "
                     "79.2±0.9 last epoch, 1.73 bits, 19.2 ms/epoch",
    ("CiteSeer", "gcn"): "authors' code here: 68.6±4.3 best-test, 65.6±6.1 last epoch, "
                         "1.91 bits, 29.8 ms/epoch",
    ("Cora", "gin"): "authors' code here: 78.5±0.1 best-test, 75.2±3.4 last epoch, 2.34 bits, "
                     "210 ms/epoch",
    ("CiteSeer", "gin"): "authors' code here: 63.9±0.1 best-test, 60.9±4.1 last epoch, "
                         "2.46 bits, 1233 ms/epoch",
}


def trained_export(folder: Path, dataset: str, model: str, *, seed: int, data_root=None) -> Path:
    """Train A²Q (``seed``, the defaults) into ``folder`` and export it; the export folder."""
    from a2q.sw.export import export_run
    from a2q.sw.run_folder import write_run

    write_run(train(default_config(dataset, model, "a2q", seed=seed), data_root=data_root,
                    progress=False), folder)
    return export_run(folder, data_root=data_root)


def _mean_std(xs) -> tuple[float, float]:
    a = np.asarray(xs, dtype=float)
    return float(a.mean()), float(a.std(ddof=0))


def run_train_bench(out: str | os.PathLike, *, seeds, epochs, datasets, models, methods,
                    data_root=None, progress: bool = True, tune: bool = False,
                    workers: int | None = None) -> dict:
    """Train every (dataset, model, method) over ``seeds`` and write the table. ``epochs``
    None: each dataset's default. ``tune``: every method chooses its weight decay and dropout
    on validation (:func:`a2q.sw.train.tune_configs`). Rows of other (dataset, model) pairs
    already in ``out/train.json`` are kept, so node-level and graph-level tables can be
    measured by separate runs; each row says how it was measured."""
    for m in methods:
        if m not in METHOD_LABELS:
            raise A2QError(f"unknown bench method {m!r}; valid: {', '.join(METHOD_LABELS)}")
    runs, rows = [], []
    t_start = time.perf_counter()
    for dataset in datasets:
        for model in models:
            group = {}
            for label in methods:
                method, bits = METHOD_LABELS[label]
                for seed in seeds:
                    cfg = default_config(dataset, model, method, seed=seed, epochs=epochs,
                                         bits=None if method in ("fp32", "a2q") else bits)
                    r = train(cfg, data_root=data_root, progress=False, tune=tune,
                              workers=workers)
                    m = dict(r.metrics, label=label)
                    runs.append(m)
                    group.setdefault(label, []).append(m)
                    if progress:
                        print(f"[{time.perf_counter() - t_start:7.1f}s] {dataset} {model} "
                              f"{label} seed {seed}: test {m['test_acc']:.1f} "
                              f"(best-epoch {m['test_acc_best_epoch']:.1f}), "
                              f"{m['avg_feature_bits']:.2f} bits, "
                              f"{1000 * m['seconds_per_epoch']:.1f} ms/epoch", flush=True)
            rows += _group_rows(dataset, model, group, tune)
            result = {  # written after each (dataset, model): a long run keeps what it has
                "command": "a2q bench train", "seeds": list(seeds), "epochs": epochs,
                "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                            "python": platform.python_version(), "torch": torch.__version__},
                "total_seconds": round(time.perf_counter() - t_start, 1),
                "rows": rows, "runs": runs,
            }
            _write(Path(out), _merged(Path(out) / "train.json", result))
    return result


def _group_rows(dataset: str, model: str, group: dict, tune: bool) -> list[dict]:
    """The table's rows of one (dataset, model): one per method, over its seeds."""
    fp32_spe = (_mean_std([m["seconds_per_epoch"] for m in group["fp32"]])[0]
                if "fp32" in group else None)
    rows = []
    for label, ms in group.items():
        acc, acc_sd = _mean_std([m["test_acc"] for m in ms])
        best, best_sd = _mean_std([m["test_acc_best_epoch"] for m in ms])
        bits = _mean_std([m["avg_feature_bits"] for m in ms])[0]
        spe = _mean_std([m["seconds_per_epoch"] for m in ms])[0]
        corr = [c for m in ms for c in (m.get("pearson_bits_degree") or {}).values()
                if c is not None]
        row = {
            "dataset": dataset, "model": model, "method": label, "seeds": len(ms),
            "epochs": ms[0]["epochs"], "tuned": tune,
            "test_acc_mean": round(acc, 2), "test_acc_std": round(acc_sd, 2),
            "test_acc_best_epoch_mean": round(best, 2),
            "test_acc_best_epoch_std": round(best_sd, 2),
            "avg_feature_bits": round(bits, 3),
            "compression_ratio": round(32 / bits, 2),
            "seconds_per_epoch": round(spe, 5),
            "time_ratio_to_fp32": None if fp32_spe is None else round(spe / fp32_spe, 3),
            "pearson_bits_degree": round(float(np.mean(corr)), 3) if corr else None,
            "reference": REFERENCE.get((dataset, model)) if label == "a2q" else None,
        }
        if "folds" in ms[0]:  # graph level: the spread is over folds (and seeds)
            row["folds"] = ms[0]["folds"]
            row["test_acc_std"] = round(float(np.mean([m["test_acc_std"] for m in ms])), 2)
            pool = {}
            for m in ms:
                for hist in (m.get("pool_bits") or {}).values():
                    for b, count in hist.items():
                        pool[b] = pool.get(b, 0) + count
            row["pool_bits"] = dict(sorted(pool.items(), key=lambda kv: int(kv[0])))
        rows.append(row)
    return rows


def _merged(path: Path, result: dict) -> dict:
    """``result`` with the rows and runs of ``path`` (an earlier train.json) whose (dataset,
    model) this run did not measure; rows written before rows said how they were measured
    take their file's seeds and epochs, untuned."""
    if not path.exists():
        return result
    try:
        old = json.loads(path.read_text())
        old_rows, old_runs = list(old["rows"]), list(old["runs"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise A2QError(f"{path}: cannot merge into it ({exc}); move it aside") from None
    def key(r):
        return r["dataset"], r["model"]

    mine = {}
    for r in result["rows"]:
        mine.setdefault(key(r), []).append(r)
    rows = []  # the earlier order, this run's rows in place of the ones they measure again
    for r in old_rows:
        if key(r) not in mine:
            rows.append(dict({"epochs": old.get("epochs"), "tuned": False}, **r))
        elif not any(key(x) == key(r) for x in rows):
            rows += mine[key(r)]
    rows += [r for k, rs in mine.items() if not any(key(x) == k for x in rows) for r in rs]
    runs = [r for r in old_runs if key(r) not in mine]
    return dict(result, rows=rows, runs=runs + result["runs"])


def markdown(result: dict) -> str:
    node = [r for r in result["rows"] if "folds" not in r]
    graph = [r for r in result["rows"] if "folds" in r]
    lines = [
        "# Training benchmark",
        "",
        f"`a2q bench train`, {result['machine']['cpus']} CPUs, torch "
        f"{result['machine']['torch']}; the last run took {result['total_seconds']:.0f} s.",
        "",
        "- **test acc**: model chosen on validation accuracy (the honest number);",
        "- **best-epoch acc**: best test accuracy over epochs (the paper code's protocol, "
        "selection on the test set);",
        "- **bits**: mean stored feature bits over nodes of the per-node tensors (paper's "
        "convention); FP32 counts 32, uniform and DQ their N;",
        "- **time**: seconds per epoch (train step + one evaluation pass) and the ratio to FP32 "
        "of the same model and dataset, measured in the same run;",
        "- **r(bits, deg)**: Pearson correlation of learned bits and in-degree over nodes, mean "
        "over seeds and per-node layers (A²Q only);",
        "- **tuned**: weight decay and dropout chosen on validation accuracy from the same grid "
        "for every method (`--tune`), else each method's defaults.",
    ]
    if node:
        lines += ["", "## Node level (Planetoid split; mean ± std over seeds)", "",
                  "| dataset | model | method | seeds | epochs | tuned | test acc | best-epoch acc "
                  "| bits | compression | ms/epoch | time / FP32 | r(bits, deg) |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in node:
            ratio = "" if r["time_ratio_to_fp32"] is None else f"{r['time_ratio_to_fp32']:.2f}"
            corr = ("" if r.get("pearson_bits_degree") is None
                    else f"{r['pearson_bits_degree']:.2f}")
            lines.append(
                f"| {r['dataset']} | {r['model'].upper()} | {r['method']} | {r['seeds']} | "
                f"{r['epochs']} | {'yes' if r['tuned'] else 'no'} | "
                f"{r['test_acc_mean']:.1f} ± {r['test_acc_std']:.1f} | "
                f"{r['test_acc_best_epoch_mean']:.1f} ± {r['test_acc_best_epoch_std']:.1f} | "
                f"{r['avg_feature_bits']:.2f} | {r['compression_ratio']:.1f}x | "
                f"{1000 * r['seconds_per_epoch']:.1f} | {ratio} | {corr} |")
    if graph:
        lines += ["", "## Graph level (GIN, stratified k-fold; mean ± std over folds)", "",
                  "Bits are measured on each fold's test graphs, which the model never saw: "
                  "the Nearest-Neighbor Strategy gives their nodes (step, bits). **pool bits**: "
                  "how many entries of the layers' pools (all folds) have each stored width.",
                  "",
                  "| dataset | method | folds | epochs | tuned | test acc | best-epoch acc | bits "
                  "| pool bits | ms/epoch per fold | time / FP32 |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in graph:
            ratio = "" if r["time_ratio_to_fp32"] is None else f"{r['time_ratio_to_fp32']:.2f}"
            pool = " ".join(f"{b}:{c}" for b, c in (r.get("pool_bits") or {}).items())
            lines.append(
                f"| {r['dataset']} | {r['method']} | {r['folds']} | {r['epochs']} | "
                f"{'yes' if r['tuned'] else 'no'} | "
                f"{r['test_acc_mean']:.1f} ± {r['test_acc_std']:.1f} | "
                f"{r['test_acc_best_epoch_mean']:.1f} | {r['avg_feature_bits']:.2f} | {pool} | "
                f"{1000 * r['seconds_per_epoch']:.1f} | {ratio} |")
    refs = [(r["dataset"], r["model"], r["reference"]) for r in result["rows"] if r["reference"]]
    if refs:
        lines += ["", "Reference figures (quoted, not measured by this command):", ""]
        lines += [f"- {d} {m.upper()}: {ref}" for d, m, ref in refs]
    return "\n".join(lines) + "\n"


def _write(out: Path, result: dict) -> None:
    _write_files(out, {"train.json": json.dumps(result, indent=2) + "\n",
                       "train.md": markdown(result)})


def _write_files(out: Path, files: dict[str, str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=out)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, out / name)


def run_golden_bench(out: str | os.PathLike, *, datasets, models, seed: int = 0,
                     lanes: int = DEFAULT_LANES,
                     data_root=None, progress: bool = True) -> dict:
    """Train A²Q (seed ``seed``), export, time the golden model, and list the cycle model's
    totals against uniform 4 and 8 bits: ``cycles.md`` and ``cycles.json``."""
    from a2q.sim import golden
    from a2q.sim.annotated_graph import read_graph
    from a2q.sim.cycles import cycle_report

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for dataset in datasets:
            for model in models:
                g = read_graph(trained_export(Path(tmp) / f"{dataset}-{model}", dataset, model,
                                              seed=seed, data_root=data_root))
                times = []
                for _ in range(3):
                    t0 = time.perf_counter()
                    res = golden.run(g)
                    times.append(time.perf_counter() - t0)
                ref = g["reference_pred"]
                c = cycle_report(g, lanes=lanes)
                row = {"dataset": dataset, "model": model, "seed": seed, "lanes": lanes,
                       "golden_seconds": round(min(times), 4),
                       "golden_test_acc": golden.percent(golden.accuracy(g, res.predictions)),
                       "torch_test_acc": golden.percent(golden.accuracy(g, ref)),
                       "prediction_agreement": round(float((res.predictions == ref).mean()), 5),
                       "avg_node_bits": round(float(np.mean(np.concatenate(
                           [g[f"layer{l}.node_bits"] for l, L in enumerate(g.layers, 1)
                            if L["per_node_input"]]))), 3),
                       "cycles": c["totals"],
                       "speedup_vs_uniform4": c["speedup_vs_uniform4"],
                       "speedup_vs_uniform8": c["speedup_vs_uniform8"]}
                rows.append(row)
                if progress:
                    print(f"{dataset} {model}: golden {row['golden_seconds']:.3f} s, "
                          f"agreement {100 * row['prediction_agreement']:.2f}%, cycles vs "
                          f"uniform4 {row['speedup_vs_uniform4']:.3f}x", flush=True)
    result = {"command": "a2q bench golden", "rows": rows}
    lines = [
        "# Golden model and cycle model", "",
        f"`a2q bench golden`: A²Q seed {seed}, exported, run by the golden model (best of 3 "
        f"timings); cycle model with {lanes} lanes, no per-node overhead. A²Q's per-node bits "
        "touch only the stages whose input is a per-node tensor (GCN: layer 2's combination; "
        "GIN: both combinations); the layer-1 input is binary (1 bit) in every column.", "",
        "| dataset | model | golden s | golden acc | torch acc | agreement | avg node bits | "
        "cycles A²Q | uniform4 | uniform8 | speedup vs 4 | vs 8 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        c = r["cycles"]
        lines.append(
            f"| {r['dataset']} | {r['model'].upper()} | {r['golden_seconds']:.3f} | "
            f"{r['golden_test_acc']:.1f} | {r['torch_test_acc']:.1f} | "
            f"{100 * r['prediction_agreement']:.2f}% | {r['avg_node_bits']:.2f} | "
            f"{c['a2q']['total']} | {c['uniform4']['total']} | {c['uniform8']['total']} | "
            f"{r['speedup_vs_uniform4']:.3f}x | {r['speedup_vs_uniform8']:.3f}x |")
    _write_files(Path(out), {"cycles.json": json.dumps(result, indent=2) + "\n",
                             "cycles.md": "\n".join(lines) + "\n"})
    return result


def run_engine_bench(out: str | os.PathLike, *, models=ENGINE_MODELS, dataset: str = "Cora",
                     seed: int = 0, lanes: int = DEFAULT_LANES,
                     simulators=("verilator", "icarus"),
                     icarus_models=("gcn",), data_root=None) -> dict:
    """Train A²Q (seed ``seed``), export, and run the whole inference on the layer engine in
    RTL: on Verilator, and (slower) on Icarus for ``icarus_models``. Writes ``engine.md`` and
    ``engine.json``: cycles measured and modelled, bit-exactness, accuracy, simulated cycles
    per second. The baselines and speedups are ``a2q bench hw``'s."""
    from a2q.sim.engine_run import passed, run_engine

    from ..engine_build import build_engine

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in models:
            graph = trained_export(Path(tmp) / f"{dataset}-{model}", dataset, model, seed=seed,
                                   data_root=data_root)
            for sim in simulators:
                if sim == "icarus" and model not in icarus_models:
                    continue
                r = run_engine(build_engine(graph, lanes=lanes), Path(tmp) / f"{model}-{sim}",
                               simulator=sim, build_root=Path(tmp) / "build")
                r["passed"] = passed(r)
                rows.append(r)
                print(f"{dataset} {model} on {sim}: {r['cycles_measured']} cycles (model "
                      f"{r['cycles_predicted']}), logits equal golden {r['logits_equal_golden']}"
                      f", {r['cycles_per_second']:.0f} cycles/s", flush=True)
    keep = ("dataset", "model", "simulator", "lanes", "num_nodes", "cycles_measured",
            "cycles_predicted", "logits_equal_golden", "mismatched_nodes", "test_acc",
            "golden_test_acc", "build_seconds", "sim_seconds", "cycles_per_second", "passed", "cycles_by_phase_predicted")
    result = {"command": "a2q bench engine", "seed": seed,
              "rows": [{k: r[k] for k in keep} for r in rows]}
    lines = [
        "# The layer engine in RTL", "",
        f"`a2q bench engine`: {dataset}, A²Q seed {seed}, {lanes} lanes. Each row is one whole "
        "inference in RTL simulation (cocotb); **cycles** is the engine's cycle counter, "
        "**model** the cycle model's prediction (`a2q.sim.cycles.engine_cycles`), **exact** "
        "whether every node's logits equal the golden model's. The speedups against uniform-bit "
        "baselines are in hw.md (`a2q bench hw`). Seconds: the simulator run (start-up and logit read-back included), the model build "
        "apart.", "",
        "| model | simulator | cycles | model | exact | test acc (golden) | build s | run s | "
        "cycles/s |",
        "|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(
            f"| {r['model'].upper()} | {r['simulator']} | {r['cycles_measured']} | "
            f"{r['cycles_predicted']} | {r['logits_equal_golden']} | {r['test_acc']:.1f} "
            f"({r['golden_test_acc']:.1f}) | {r['build_seconds']:.0f} | "
            f"{r['sim_seconds']:.1f} | {r['cycles_per_second']:.0f} |")
    lines += ["", "Where the cycles go (cycle model, A²Q): " + "; ".join(
        f"{r['model'].upper()} " + ", ".join(
            f"{k} {v}" for k, v in r["cycles_by_phase_predicted"].items() if k != "total")
        for r in result["rows"] if r["simulator"] == "verilator") + "."]
    _write_files(Path(out), {"engine.json": json.dumps(result, indent=2) + "\n",
                             "engine.md": "\n".join(lines) + "\n"})
    print("\n".join(lines))
    return result
