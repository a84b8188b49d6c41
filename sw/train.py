"""Training loops: node-level (one graph, Planetoid split) and graph-level (k-fold CV).

Both report two accuracies:

- ``test_acc``: the model chosen on validation accuracy (ties: lower validation loss), the
  honest number;
- ``test_acc_best_epoch``: the best test accuracy over epochs, the protocol of the paper's
  code (selection on the test set), labelled as such.

A non-finite loss stops training with :class:`A2QError`; nothing is written (the CLI writes a
run folder only from a finished :class:`RunResult`).
"""

from __future__ import annotations

import copy
import io
import os
import random
import time
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from a2q.common.choices import DEFAULT_LANES
from a2q.common.errors import A2QError

from .config import TrainConfig
from .data import is_node_level, load_dataset
from .models import GraphGIN, QuantizedModel, build_node_model
from .quant.column_quantizer import ColumnQuantizer
from .quant.cycle_penalty import cycle_weights, kilo_cycles
from .quant.memory import memory_kb, memory_penalty
from .quant.nearest_neighbor import NearestNeighborQuantizer
from .quant.node_quantizer import NodeQuantizer, OperandQuantizer
from .quant.scheme import QuantScheme
from .report import bits_by_degree

CHECKPOINT_FORMAT = "a2q-checkpoint"
CHECKPOINT_VERSION = 1


@dataclass
class RunResult:
    metrics: dict
    checkpoint: bytes
    bits_by_degree: dict
    history: list = field(default_factory=list)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def param_groups(model: torch.nn.Module, cfg: TrainConfig) -> list[dict]:
    """Adam groups as in the authors' code: quantizer steps and bits get their own rates and
    no weight decay; weights and the rest (biases, eps, attention) share lr and weight decay."""
    groups = {k: [] for k in ("bits", "step_features", "step_weight", "step_operand", "rest")}
    seen = set()
    for mod in model.modules():
        if isinstance(mod, (NodeQuantizer, NearestNeighborQuantizer)):
            key = "step_operand" if isinstance(mod, OperandQuantizer) else "step_features"
            groups[key].append(mod.step)
            if isinstance(mod.bits, torch.nn.Parameter):
                groups["bits"].append(mod.bits)
        elif isinstance(mod, ColumnQuantizer):
            if mod.channel_dim == 0:
                groups["step_weight"].append(mod.step)
            elif mod.step.numel() == 1:  # per-tensor feature step (graph-level uniform)
                groups["step_features"].append(mod.step)
            else:
                groups["step_operand"].append(mod.step)
    for ps in groups.values():
        seen.update(id(p) for p in ps)
    groups["rest"] = [p for p in model.parameters() if id(p) not in seen]
    lrs = {"bits": cfg.lr_bits, "step_features": cfg.lr_step_features,
           "step_weight": cfg.lr_step_weight, "step_operand": cfg.lr_step_operand}
    out = [{"params": groups["rest"], "lr": cfg.lr, "weight_decay": cfg.weight_decay,
            "name": "rest"}]
    out += [{"params": groups[k], "lr": lrs[k], "weight_decay": 0.0, "name": k}
            for k in lrs if groups[k]]
    return out


def freeze_quantizers(opt: torch.optim.Optimizer) -> None:
    """Stop every quantizer's steps and bits from learning (every group but the weights and
    the rest of :func:`param_groups`): their learning rates go to 0."""
    for group in opt.param_groups:
        if group["name"] != "rest":
            group["lr"] = 0.0


def feature_bits_summary(model: QuantizedModel, cfg: TrainConfig) -> tuple[float, float | None]:
    """(average stored feature bits in the paper's convention, true feature memory in KB)."""
    qs = model.feature_quantizers()
    if cfg.method == "fp32":
        return 32.0, None
    if cfg.method == "dq" or not qs:
        return float(cfg.bits), None
    bits = [q.stored_bits().float() for q in qs]
    if any(b.numel() == 0 for b in bits):
        return float("nan"), None
    avg = float(torch.cat(bits).mean())
    mem = sum(w * float(b.sum()) for w, b in zip(model.feature_widths(), bits)) / 8192
    return avg, mem


def _penalty(model: QuantizedModel, cfg: TrainConfig, graphs: int = 1,
             cycles: list | None = None) -> torch.Tensor | None:
    """The memory penalty, or with ``cycles`` (:func:`cycle_weights`, ``--penalty cycles``)
    the engine-cycle penalty; None where there is none (not A²Q, lambda 0)."""
    if cfg.method != "a2q" or cfg.lam == 0:
        return None
    qs = model.feature_quantizers()
    if not qs:
        return None
    bits = [q.memory_bits() for q in qs]
    if cycles is not None:
        return memory_penalty(kilo_cycles(bits, cycles), cfg.cycle_target_k, cfg.lam)
    mem = memory_kb(bits, model.penalty_widths(), graphs)
    return memory_penalty(mem, cfg.memory_target_kb, cfg.lam)


def _checkpoint(cfg: TrainConfig, task: str, state) -> bytes:
    buf = io.BytesIO()  # saved in memory: the archive name does not depend on a file name
    obj = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "task": task,
           "config": cfg.to_dict(), "state": state}
    torch.save(obj, buf)
    return buf.getvalue()


def _check_finite(loss: torch.Tensor, epoch: int) -> None:
    if not torch.isfinite(loss):
        raise A2QError(f"training diverged: loss is {float(loss)} at epoch {epoch + 1}; "
                       "stopped, nothing written (try a lower --lr or --lambda)")


#: the weight decays and dropouts every method chooses from on validation accuracy
#: (``tune=True``), besides its own defaults, which come first and win ties: PyG's reference
#: recipe (5e-4, 0.5) and the A²Q authors' Cora values (0.02, 0.35) at node level, with and
#: without each regulariser at graph level
TUNE_GRID = {"node": {"weight_decay": (5e-4, 0.02), "dropout": (0.35, 0.5)},
             "graph": {"weight_decay": (0.0, 5e-4), "dropout": (0.0, 0.5)}}


def tune_configs(cfg: TrainConfig) -> list[TrainConfig]:
    """``cfg`` and its variants over :data:`TUNE_GRID`, ``cfg``'s own values first."""
    grid = TUNE_GRID["node" if is_node_level(cfg.dataset) else "graph"]
    pairs = [(cfg.weight_decay, cfg.dropout)] + [
        (w, d) for w in grid["weight_decay"] for d in grid["dropout"]]
    unique = list(dict.fromkeys(pairs))
    return [replace(cfg, weight_decay=w, dropout=d) for w, d in unique]


def train(cfg: TrainConfig, *, data_root=None, progress: bool = True,
          workers: int | None = None, tune: bool = False) -> RunResult:
    """Train one configuration; node-level datasets train once, graph-level ones run k-fold CV
    (``workers`` processes, default :func:`default_fold_workers`; the result does not depend
    on it). ``tune``: every weight decay and dropout of :func:`tune_configs` is trained and
    the one with the best validation accuracy is kept, per seed (node level) or per fold
    (graph level); the metrics name the choice."""
    seed_everything(cfg.seed)
    gd = load_dataset(cfg.dataset, data_root)
    configs = tune_configs(cfg) if tune else [cfg]
    if not gd.node_level:
        return _train_graph(configs, gd, progress, data_root, workers)
    results = []
    for c in configs:
        seed_everything(c.seed)
        results.append(_train_node(c, gd, progress))
    best = max(range(len(results)), key=lambda i: (results[i].metrics["val_acc"], -i))
    chosen = results[best]
    if tune:
        chosen.metrics["tuning"] = {
            "grid": [{"weight_decay": c.weight_decay, "dropout": c.dropout} for c in configs],
            "val_acc": [round(100 * r.metrics["val_acc"], 2) for r in results],
            "chosen": {"weight_decay": configs[best].weight_decay,
                       "dropout": configs[best].dropout}}
    return chosen


# ----------------------------------------------------------------------------- node level


def _train_node(cfg: TrainConfig, gd, progress: bool) -> RunResult:
    data = gd.dataset[0]
    n = data.num_nodes
    in_degree = torch.bincount(data.edge_index[1], minlength=n)
    scheme = QuantScheme(cfg.method, bits=cfg.bits, weight_bits=cfg.weight_bits,
                         node_level=True, in_degree=in_degree, operand=cfg.operand)
    model = build_node_model(cfg.model, gd.num_features, gd.num_classes, scheme, num_nodes=n,
                             hidden=cfg.hidden, dropout=cfg.dropout, heads=cfg.heads,
                             init_bits=cfg.init_bits, gin_order=cfg.gin_order)
    opt = torch.optim.Adam(param_groups(model, cfg))
    x, ei, y = data.x, data.edge_index, data.y
    masks = {k: getattr(data, f"{k}_mask") for k in ("train", "val", "test")}
    cycles = None
    if cfg.penalty == "cycles":
        cycles = cycle_weights(model, torch.bincount(ei[0], minlength=n), DEFAULT_LANES)

    best = {"val": -1.0, "val_loss": float("inf"), "epoch": -1, "state": None, "test": 0.0}
    best_test, best_test_epoch = -1.0, -1
    history = []
    bar = tqdm(range(cfg.epochs), desc=f"{cfg.dataset}/{cfg.model}/{cfg.method}",
               disable=not progress, leave=False)
    t0 = time.perf_counter()
    for epoch in bar:
        model.train()
        opt.zero_grad()
        out = model(x, ei)
        task_loss = F.cross_entropy(out[masks["train"]], y[masks["train"]])
        pen = _penalty(model, cfg, cycles=cycles)
        loss = task_loss if pen is None else task_loss + pen
        _check_finite(loss, epoch)
        loss.backward()
        opt.step()
        model.project_()

        model.eval()
        with torch.no_grad():
            out = model(x, ei)
        pred = out.argmax(1)
        acc = {k: float((pred[m] == y[m]).float().mean()) for k, m in masks.items()}
        val_loss = float(F.cross_entropy(out[masks["val"]], y[masks["val"]]))
        if not np.isfinite(val_loss):
            _check_finite(torch.tensor(val_loss), epoch)
        if (acc["val"], -val_loss) > (best["val"], -best["val_loss"]):
            best.update(val=acc["val"], val_loss=val_loss, epoch=epoch, test=acc["test"],
                        state=copy.deepcopy(model.state_dict()))
        if acc["test"] > best_test:
            best_test, best_test_epoch = acc["test"], epoch
        avg_bits, _ = feature_bits_summary(model, cfg)
        history.append({"epoch": epoch + 1, "loss": task_loss.item(),
                        "penalty": None if pen is None else pen.item(), "val_acc": acc["val"],
                        "test_acc": acc["test"], "avg_feature_bits": avg_bits})
        bar.set_postfix(loss=f"{task_loss.item():.3f}", val=f"{acc['val']:.3f}", refresh=False,
                        test=f"{acc['test']:.3f}", bits=f"{avg_bits:.2f}")
    train_seconds = time.perf_counter() - t0
    bar.close()

    model.load_state_dict(best["state"])
    avg_bits, mem = feature_bits_summary(model, cfg)
    bbd = bits_by_degree(model, in_degree)
    metrics = _metrics(cfg, test_acc=best["test"], test_acc_best_epoch=best_test,
                       avg_bits=avg_bits, mem=mem, train_seconds=train_seconds)
    metrics.update(selected_epoch=best["epoch"] + 1, val_acc=best["val"],
                   best_test_epoch=best_test_epoch + 1, num_nodes=n,
                   avg_bits_by_tensor=bits_by_tensor(model),
                   pearson_bits_degree={k: v["pearson_bits_degree"]
                                        for k, v in bbd["layers"].items()})
    ckpt = _checkpoint(cfg, "node", best["state"])
    return RunResult(metrics, ckpt, bbd, history)


def bits_by_tensor(model: QuantizedModel) -> dict[str, float]:
    """Average stored bits of every quantized tensor, layer by layer: per-node tensors (their
    nodes' mean) and fixed-width ones (weights, per-column operands)."""
    out = {}
    per_node = {name: q for name, q, _ in model.per_node_tensors()}
    for l, conv in enumerate(model.convs, start=1):
        for name, q in ((f"layer{l}.input", conv.input_quant),
                        (f"layer{l}.weight", conv.weight_quant),
                        (f"layer{l}.operand", getattr(conv, "operand_quant", None))):
            if name in per_node:
                out[name] = round(float(per_node[name].stored_bits().float().mean()), 4)
            elif isinstance(q, ColumnQuantizer):
                out[name] = float(q.width)
    return out


def _metrics(cfg: TrainConfig, *, test_acc, test_acc_best_epoch, avg_bits, mem,
             train_seconds) -> dict:
    weight_bits = 32 if cfg.method == "fp32" else (
        cfg.weight_bits if cfg.method == "a2q" else cfg.bits)
    return {
        "dataset": cfg.dataset, "model": cfg.model, "method": cfg.method, "seed": cfg.seed,
        "test_acc": round(100 * test_acc, 2),
        "test_acc_best_epoch": round(100 * test_acc_best_epoch, 2),
        "test_acc_best_epoch_note": "best test accuracy over epochs: the paper code's "
                                    "protocol (selection on the test set)",
        "avg_feature_bits": round(avg_bits, 4),
        "weight_bits": weight_bits,
        "compression_ratio": round(32.0 / avg_bits, 3),
        "feature_memory_kb": None if mem is None else round(mem, 3),
        "epochs": cfg.epochs,
        "train_seconds": round(train_seconds, 3),
        "seconds_per_epoch": round(train_seconds / cfg.epochs, 5),
        "config": cfg.to_dict(),
    }


# ---------------------------------------------------------------------------- graph level


def stratified_folds(labels: np.ndarray, k: int, seed: int) -> list[np.ndarray]:
    """k disjoint test folds with the class proportions of ``labels`` (shuffled by ``seed``)."""
    rng = np.random.default_rng(seed)
    folds = [[] for _ in range(k)]
    offset = 0
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        for j, i in enumerate(idx):
            folds[(offset + j) % k].append(i)
        offset += len(idx)
    return [np.sort(np.array(f, dtype=np.int64)) for f in folds]


def _graph_model(cfg: TrainConfig, gd) -> GraphGIN:
    scheme = QuantScheme(cfg.method, bits=cfg.bits, weight_bits=cfg.weight_bits,
                         node_level=False, pool_size=cfg.pool_size,
                         pool_gradient=cfg.pool_gradient)
    return GraphGIN(gd.num_features, cfg.hidden, gd.num_classes, scheme, layers=cfg.layers,
                    dropout=cfg.dropout, init_bits=cfg.init_bits)


def _evaluate_graphs(model, batch) -> tuple[float, float]:
    """(accuracy, mean loss) of ``model`` on one :class:`GraphBatch`."""
    model.eval()
    with torch.no_grad():
        out = model(batch.x, batch.edge_index, batch.batch, batch.num_graphs)
        loss = float(F.cross_entropy(out, batch.y, reduction="sum"))
        correct = int((out.argmax(1) == batch.y).sum())
    total = max(batch.num_graphs, 1)
    return correct / total, loss / total


def fold_split(num_graphs: int, test_idx: np.ndarray, seed: int, fold: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) graph ids of a fold: a ninth of the graphs outside its test fold
    (10% of all at 10 folds) validate, shuffled by ``seed`` and the fold."""
    rest = np.setdiff1d(np.arange(num_graphs), test_idx)
    rng = np.random.default_rng(seed * 1000 + fold)
    rng.shuffle(rest)
    n_val = max(1, len(rest) // 9)
    return np.sort(rest[n_val:]), np.sort(rest[:n_val])


def graph_folds(cfg: TrainConfig, labels: np.ndarray) -> list[tuple[np.ndarray, ...]]:
    """(train, validation, test) graph ids of each fold of ``cfg``'s cross-validation."""
    return [(*fold_split(len(labels), test, cfg.seed, f), test)
            for f, test in enumerate(stratified_folds(labels, cfg.folds, cfg.seed))]


def fold_seed(seed: int, fold: int) -> int:
    """The 32-bit seed of one fold's model, dropout and batch order: folds train the same
    whichever process runs them, and in any order."""
    return int(np.random.SeedSequence([seed, fold]).generate_state(1)[0])


@dataclass
class FoldResult:
    curve: list  # test accuracy after each epoch
    best_test: float  # test accuracy of the validation-selected epoch
    state: dict  # that epoch's model
    bits: tuple | None  # (stored bits, in-degree) of the test graphs' nodes (A²Q)
    val: tuple  # (validation accuracy, validation loss) of the selected epoch


def train_fold(cfg: TrainConfig, data_root, fold: int, split) -> FoldResult:
    """Train fold ``fold`` (its (train, validation, test) graph ids ``split``) on one thread."""
    from .graph_batches import GraphBatches

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same float sums in every process, whatever its thread pool
    try:
        gd = load_dataset(cfg.dataset, data_root)
        graphs = GraphBatches(gd.dataset)
        train_idx, val_idx, test_idx = split
        val, test = graphs.gather(val_idx), graphs.gather(test_idx)
        seed_everything(fold_seed(cfg.seed, fold))
        gen = torch.Generator().manual_seed(fold_seed(cfg.seed, fold))
        model = _graph_model(cfg, gd)
        opt = torch.optim.Adam(param_groups(model, cfg), foreach=True)
        best = (-1.0, float("inf"))
        best_state, best_test, curve = None, 0.0, []
        for epoch in range(cfg.epochs):
            if cfg.quantizer_epochs and epoch == cfg.quantizer_epochs:
                freeze_quantizers(opt)
            model.train()
            for b in graphs.shuffled(train_idx, cfg.batch_size, gen):
                opt.zero_grad()
                out = model(b.x, b.edge_index, b.batch, b.num_graphs)
                loss = F.cross_entropy(out, b.y)
                pen = _penalty(model, cfg, graphs=b.num_graphs)
                if pen is not None:
                    loss = loss + pen
                _check_finite(loss, epoch)
                loss.backward()
                opt.step()
                model.project_()
            val_acc, val_loss = _evaluate_graphs(model, val)
            test_acc, _ = _evaluate_graphs(model, test)
            curve.append(test_acc)
            if (val_acc, -val_loss) > (best[0], -best[1]):
                best = (val_acc, val_loss)
                best_state, best_test = copy.deepcopy(model.state_dict()), test_acc
        model.load_state_dict(best_state)
        # a plain dict: a state_dict's own metadata does not survive the trip between
        # processes, and the checkpoint's bytes must not depend on the trip
        state = {k: v.clone() for k, v in best_state.items()}
        return FoldResult(curve, best_test, state, _graph_bits(model, test, cfg), best)
    finally:
        torch.set_num_threads(threads)


def default_fold_workers(folds: int) -> int:
    """One process per available core, at most one per fold."""
    return max(1, min(folds, len(os.sched_getaffinity(0))))


def _train_graph(configs: list[TrainConfig], gd, progress: bool, data_root=None,
                 workers: int | None = None) -> RunResult:
    """k-fold cross-validation of ``configs[0]``'s model; every fold trains each of
    ``configs`` and keeps the best on its validation graphs (ties: the earlier). The (fold,
    configuration) runs go to ``workers`` processes (one thread each)."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    cfg, ds = configs[0], gd.dataset
    if cfg.folds > len(ds):
        raise A2QError(f"--folds {cfg.folds} exceeds the {len(ds)} graphs of {cfg.dataset}")
    labels = ds.y.numpy() if hasattr(ds, "y") else np.array([int(g.y) for g in ds])
    splits = graph_folds(cfg, labels)
    jobs = [(c, f, split) for f, split in enumerate(splits) for c in configs]
    workers = default_fold_workers(len(jobs)) if workers is None else workers
    bar = tqdm(total=len(jobs), desc=f"{cfg.dataset}/{cfg.model}/{cfg.method} folds",
               disable=not progress, leave=False)
    t0 = time.perf_counter()
    runs: list[FoldResult] = []
    if workers <= 1:
        for c, f, split in jobs:
            runs.append(train_fold(c, data_root, f, split))
            bar.update(1)
    else:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(train_fold, c, data_root, f, split) for c, f, split in jobs]
            for fut in futures:
                try:
                    runs.append(fut.result())
                except A2QError:
                    for other in futures:
                        other.cancel()
                    raise
                bar.update(1)
    train_seconds = time.perf_counter() - t0
    bar.close()
    results, chosen = [], []
    for f in range(len(splits)):
        mine = runs[f * len(configs):(f + 1) * len(configs)]
        best = max(range(len(mine)), key=lambda i: (mine[i].val[0], -mine[i].val[1], -i))
        results.append(mine[best])
        chosen.append({"weight_decay": configs[best].weight_decay,
                       "dropout": configs[best].dropout})
    train_seconds /= len(configs)  # the time of one configuration's cross-validation
    test_curves = [r.curve for r in results]
    fold_tests = [r.best_test for r in results]
    states = [r.state for r in results]
    fold_bits = [r.bits for r in results]

    curves = np.array(test_curves)
    best_epoch = int(curves.mean(0).argmax())
    bits_all = [b for b in fold_bits if b is not None]
    if cfg.method == "a2q" and bits_all:
        stored = torch.cat([b[0] for b in bits_all]).float()
        avg_bits = float(stored.mean())
    else:
        avg_bits = 32.0 if cfg.method == "fp32" else float(cfg.bits)
    bbd = _graph_bits_by_degree(bits_all, cfg)
    metrics = _metrics(cfg, test_acc=float(np.mean(fold_tests)),
                       test_acc_best_epoch=float(curves.mean(0)[best_epoch]),
                       avg_bits=avg_bits, mem=None, train_seconds=train_seconds)
    metrics["seconds_per_epoch"] = round(train_seconds / (cfg.epochs * cfg.folds), 5)
    metrics.update(test_acc_std=round(100 * float(np.std(fold_tests)), 2),
                   fold_test_acc=[round(100 * a, 2) for a in fold_tests],
                   best_test_epoch=best_epoch + 1, folds=cfg.folds,
                   avg_feature_bits_note="over the nodes of each fold's test graphs, which the "
                                         "model never saw (Nearest-Neighbor Strategy)")
    if cfg.method == "a2q":
        metrics["pool_bits"] = pool_bits_summary(states)
    if len(configs) > 1:
        metrics["tuning"] = {
            "grid": [{"weight_decay": c.weight_decay, "dropout": c.dropout} for c in configs],
            "chosen_per_fold": chosen}
    ckpt = _checkpoint(cfg, "graph", states)
    return RunResult(metrics, ckpt, bbd)


def pool_bits_summary(states: list[dict]) -> dict:
    """The spread of the Nearest-Neighbor pools' stored bits over the folds' chosen models:
    per layer, how many pool entries have each width (summed over folds)."""
    out = {}
    for state in states:
        for name, bits in state.items():
            if name.startswith("convs.") and name.endswith("input_quant.bits"):
                layer = f"layer{int(name.split('.')[1]) + 1}"
                stored = (torch.clamp(torch.round(bits.abs()), 2, 9) - 1).long()
                hist = out.setdefault(layer, {})
                for b in stored.tolist():
                    hist[str(b)] = hist.get(str(b), 0) + 1
    return {layer: dict(sorted(h.items(), key=lambda kv: int(kv[0])))
            for layer, h in sorted(out.items())}


def _graph_bits(model: GraphGIN, batch, cfg: TrainConfig):
    """(stored bits, in-degree) of every node of ``batch``'s graphs, per quantized layer."""
    if cfg.method != "a2q":
        return None
    model.eval()
    bits, degs = [], []
    with torch.no_grad():
        model(batch.x, batch.edge_index, batch.batch, batch.num_graphs)
    deg = torch.bincount(batch.edge_index[1], minlength=batch.num_nodes)
    for q in model.feature_quantizers():
        bits.append(q.stored_bits())
        degs.append(deg)
    return torch.cat(bits), torch.cat(degs)


def _graph_bits_by_degree(bits_all, cfg) -> dict:
    from .report import summarize_bits

    if not bits_all:
        return {"method": cfg.method, "layers": {}}
    bits = torch.cat([b for b, _ in bits_all])
    degs = torch.cat([d for _, d in bits_all])
    return {"method": cfg.method, "layers": {"all": summarize_bits(bits, degs)}}


# ------------------------------------------------------------------------ reading back


def model_from_checkpoint(ckpt: dict, *, data_root=None):
    """Rebuild the trained model(s) of a checkpoint: ``(config, dataset, models)``."""
    from .config import validate

    try:
        cfg = TrainConfig.from_dict(ckpt["config"])
        validate(cfg)
    except (TypeError, ValueError, A2QError) as exc:
        raise A2QError(f"checkpoint field 'config' is invalid: {exc}") from None
    gd = load_dataset(cfg.dataset, data_root)
    states = ckpt["state"] if ckpt["task"] == "graph" else [ckpt["state"]]
    models = []
    for state in states:
        seed_everything(cfg.seed)
        if gd.node_level:
            data = gd.dataset[0]
            deg = torch.bincount(data.edge_index[1], minlength=data.num_nodes)
            scheme = QuantScheme(cfg.method, bits=cfg.bits, weight_bits=cfg.weight_bits,
                                 node_level=True, in_degree=deg, operand=cfg.operand)
            model = build_node_model(cfg.model, gd.num_features, gd.num_classes, scheme,
                                     num_nodes=data.num_nodes, hidden=cfg.hidden,
                                     dropout=cfg.dropout, heads=cfg.heads,
                                     init_bits=cfg.init_bits, gin_order=cfg.gin_order)
        else:
            model = _graph_model(cfg, gd)
        own = model.state_dict()
        for name, t in state.items():
            if name in own and t.dtype != own[name].dtype:
                raise A2QError(f"checkpoint field 'state.{name}': dtype {t.dtype}, the model's "
                               f"is {own[name].dtype}")
        try:
            model.load_state_dict(state)
        except (RuntimeError, TypeError, AttributeError) as exc:
            raise A2QError("checkpoint field 'state' does not match the model it describes: "
                           f"{state_mismatch(exc)}") from None
        model.eval()
        models.append(model)
    return cfg, gd, models


def state_mismatch(exc: Exception) -> str:
    """PyTorch's ``load_state_dict`` error on one line: its details (the missing, unexpected
    and mis-sized parameters), not its heading."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    details = [line for line in lines if not line.startswith("Error(s) in loading")]
    text = "; ".join(details or lines or [type(exc).__name__])
    return text if len(text) <= 300 else text[:297] + "..."


def evaluate_checkpoint(ckpt: dict, *, data_root=None) -> dict:
    """Accuracy of a node-level checkpoint on each split, and its average feature bits."""
    cfg, gd, models = model_from_checkpoint(ckpt, data_root=data_root)
    if not gd.node_level:
        raise A2QError("eval reads node-level checkpoints; graph-level runs report their "
                       "cross-validated accuracy in metrics.json")
    model, data = models[0], gd.dataset[0]
    with torch.no_grad():
        pred = model(data.x, data.edge_index).argmax(1)
    out = {k: round(100 * float((pred[m] == data.y[m]).float().mean()), 2)
           for k, m in (("train_acc", data.train_mask), ("val_acc", data.val_mask),
                        ("test_acc", data.test_mask))}
    out["avg_feature_bits"] = round(feature_bits_summary(model, cfg)[0], 4)
    out.update(dataset=cfg.dataset, model=cfg.model, method=cfg.method, seed=cfg.seed)
    return out
