"""Training: a smoke run per model and method, determinism, and the memory penalty's effect."""

import pytest
import torch

from a2q.sw.config import default_config
from a2q.sw.run_folder import load_checkpoint, write_run
from a2q.sw.train import evaluate_checkpoint, stratified_folds, train

TIMING = {"train_seconds", "seconds_per_epoch"}


def _stable(metrics):
    return {k: v for k, v in metrics.items() if k not in TIMING}


@pytest.mark.parametrize("model", ["gcn", "gin", "gat"])
@pytest.mark.parametrize("method", ["fp32", "uniform", "dq", "a2q"])
def test_node_level_smoke(model, method):
    cfg = default_config("Cora", model, method, epochs=4, seed=1)
    r = train(cfg, progress=False)
    m = r.metrics
    assert 0 <= m["test_acc"] <= 100 and m["epochs"] == 4 and len(r.history) == 4
    assert m["test_acc_best_epoch"] >= 0
    expected_bits = {"fp32": 32.0, "uniform": 4.0, "dq": 4.0}.get(method)
    if expected_bits is not None:
        assert m["avg_feature_bits"] == expected_bits
    else:  # A²Q starts at B = 4 (GCN, GAT) or 5 (GIN) and can only have moved 4 steps
        assert 1.0 <= m["avg_feature_bits"] <= 4.0
        assert r.bits_by_degree["layers"], "A²Q reports bits by degree"
    assert m["compression_ratio"] == pytest.approx(32 / m["avg_feature_bits"], rel=1e-3)


@pytest.mark.parametrize("method", ["fp32", "uniform", "dq", "a2q"])
def test_graph_level_smoke(method):
    cfg = default_config("MUTAG", "gin", method, epochs=2, folds=2, seed=0, layers=2)
    r = train(cfg, progress=False, workers=1)
    m = r.metrics
    assert len(m["fold_test_acc"]) == 2 and 0 <= m["test_acc"] <= 100
    if method == "a2q":
        # bits of nodes in each fold's unseen test graphs, from the Nearest-Neighbor pool
        assert 1 <= m["avg_feature_bits"] <= 8
        assert sum(r.bits_by_degree["layers"]["all"]["histogram"].values()) > 0


def test_stratified_folds_partition_and_balance():
    labels = torch.tensor([0] * 30 + [1] * 10).numpy()
    folds = stratified_folds(labels, 5, seed=3)
    allidx = sorted(i for f in folds for i in f)
    assert allidx == list(range(40))
    for f in folds:
        assert (labels[f] == 1).sum() == 2 and len(f) == 8


def test_same_seed_same_metrics_and_checkpoint_bytes(tmp_path):
    cfg = default_config("Cora", "gcn", "a2q", epochs=25, seed=7)
    a, b = train(cfg, progress=False), train(cfg, progress=False)
    assert _stable(a.metrics) == _stable(b.metrics)
    assert a.checkpoint == b.checkpoint
    write_run(a, tmp_path / "a")
    write_run(b, tmp_path / "b")
    for name in ("checkpoint.pt", "bits_by_degree.json", "bits_by_degree.png"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    c = train(default_config("Cora", "gcn", "a2q", epochs=25, seed=8), progress=False)
    assert c.checkpoint != a.checkpoint


def test_graph_level_folds_give_the_same_bytes_in_one_process_or_two():
    cfg = default_config("MUTAG", "gin", "a2q", epochs=2, folds=2, seed=4, layers=2)
    a, b = train(cfg, progress=False, workers=1), train(cfg, progress=False, workers=2)
    assert _stable(a.metrics) == _stable(b.metrics) and a.checkpoint == b.checkpoint


def test_quantizers_frozen_after_quantizer_epochs_while_the_weights_learn(monkeypatch):
    """``quantizer_epochs`` 1: every quantizer's parameters (the pools' steps and bits, the
    weights' and outputs' steps) after every later epoch equal those after epoch 1, and the
    weights still change; with 0 the quantizers go on changing."""
    from a2q.sw import train as training

    def snapshots(quantizer_epochs):
        seen, real = [], training._evaluate_graphs

        def evaluate(model, batch):  # once for validation, once for test, each epoch
            params = dict(model.named_parameters())
            seen.append(({n: p.detach().clone() for n, p in params.items() if "quant" in n},
                         params["convs.0.weight"].detach().clone()))
            return real(model, batch)

        monkeypatch.setattr(training, "_evaluate_graphs", evaluate)
        cfg = default_config("MUTAG", "gin", "a2q", epochs=3, folds=2, layers=2,
                             quantizer_epochs=quantizer_epochs)
        training.train_fold(cfg, None, 0, training.graph_folds(cfg, _mutag_labels())[0])
        return seen[::2]  # one per epoch

    frozen = snapshots(1)
    assert len(frozen) == 3
    names = set(frozen[0][0])
    assert {"convs.0.input_quant.step", "convs.0.input_quant.bits",
            "convs.0.weight_quant.step", "output_quants.0.step"} <= names
    for quant, weight in frozen[1:]:
        assert all(torch.equal(quant[n], frozen[0][0][n]) for n in names)
        assert not torch.equal(weight, frozen[0][1])
    learning = snapshots(0)
    assert not all(torch.equal(learning[2][0][n], learning[0][0][n]) for n in names)


def _mutag_labels():
    from a2q.sw.data import load_dataset

    return load_dataset("MUTAG").dataset.y.numpy()


def test_tuning_keeps_the_configuration_best_on_validation():
    cfg = default_config("Cora", "gcn", "fp32", epochs=15, seed=0)
    r = train(cfg, progress=False, tune=True)
    t = r.metrics["tuning"]
    assert t["grid"][0] == {"weight_decay": cfg.weight_decay, "dropout": cfg.dropout}
    assert {"weight_decay": 0.02, "dropout": 0.35} in t["grid"]  # A²Q's own Cora values
    best = t["val_acc"].index(max(t["val_acc"]))
    assert t["chosen"] == t["grid"][best]
    assert r.metrics["config"]["weight_decay"] == t["chosen"]["weight_decay"]
    g = train(default_config("MUTAG", "gin", "a2q", epochs=2, folds=2, layers=2),
              progress=False, tune=True, workers=1).metrics["tuning"]
    assert len(g["chosen_per_fold"]) == 2 and all(c in g["grid"] for c in g["chosen_per_fold"])


@pytest.mark.regress  # a long case: make regress
def test_bits_fall_when_lambda_rises():
    bits = []
    for lam in (0.0, 2.5, 50.0):
        cfg = default_config("Cora", "gcn", "a2q", epochs=80, seed=0, lam=lam)
        bits.append(train(cfg, progress=False).metrics["avg_feature_bits"])
    assert bits[0] > bits[1] > bits[2], bits


def test_checkpoint_round_trip(tmp_path):
    r = train(default_config("Cora", "gcn", "a2q", epochs=30, seed=2), progress=False)
    write_run(r, tmp_path / "run")
    ev = evaluate_checkpoint(load_checkpoint(tmp_path / "run"))
    assert ev["test_acc"] == r.metrics["test_acc"]
    assert ev["avg_feature_bits"] == r.metrics["avg_feature_bits"]


@pytest.mark.regress  # a long case: make regress
def test_gcn_cora_full_run_learns_more_bits_for_higher_in_degree():
    """The paper's observation and operating point on the default job (200 epochs, seed 0)."""
    r = train(default_config("Cora", "gcn", "a2q", seed=0), progress=False)
    layer = r.bits_by_degree["layers"]["conv2.input"]
    deg = [layer["mean_in_degree_by_bits"][b] for b in sorted(layer["mean_in_degree_by_bits"],
                                                               key=int)]
    assert len(deg) >= 2 and all(a < b for a, b in zip(deg, deg[1:])), deg
    assert layer["by_in_degree"]["9+"]["mean_bits"] > layer["by_in_degree"]["1"]["mean_bits"]
    assert r.metrics["avg_feature_bits"] <= 2.0
    assert r.metrics["test_acc"] >= 79.5


@pytest.mark.parametrize("dataset, lr_bits, quantizer_epochs, init_bits", [
    ("MUTAG", 0.01, 50, 4.0), ("NCI1", 0.01, 50, 5.0),
    ("PROTEINS", 0.1, 0, 5.0), ("IMDB-BINARY", 0.1, 0, 5.0)])
def test_graph_level_a2q_defaults_per_dataset(dataset, lr_bits, quantizer_epochs, init_bits):
    """MUTAG and NCI1 take the slow pools that freeze after 50 epochs, PROTEINS and
    IMDB-BINARY the graph-level defaults; the other methods never; an option still wins."""
    cfg = default_config(dataset, "gin", "a2q")
    assert (cfg.lr_bits, cfg.quantizer_epochs, cfg.init_bits) == (
        lr_bits, quantizer_epochs, init_bits)
    assert cfg.lr_step_features == pytest.approx(lr_bits * 0.4)
    assert default_config(dataset, "gin", "dq", bits=4).quantizer_epochs == 0
    assert default_config(dataset, "gin", "a2q", quantizer_epochs=0,
                          lr_bits=0.05).lr_bits == 0.05


@pytest.mark.parametrize("model, dataset, new, paper_options", [
    ("gcn", "Cora", {"operand": "node", "penalty": "memory", "memory_target_kb": 16.0},
     {"operand": "column"}),
    ("gcn", "CiteSeer", {"operand": "node", "penalty": "cycles", "cycle_target_k": 50.0},
     {"operand": "column"}),
    ("gin", "Cora", {"operand": "node", "gin_order": "combine-first"},
     {"gin_order": "aggregate-first"}),
    ("gin", "CiteSeer", {"operand": "node", "gin_order": "combine-first"},
     {"gin_order": "aggregate-first"})])
def test_a2q_defaults_and_the_papers_configuration(model, dataset, new, paper_options):
    """Node-level A²Q defaults to per-node operand bits (GIN as GIN-0, W first); asking for the
    paper's operand or order gives the paper's whole configuration: 4-bit operand per column,
    GIN aggregate-first, the memory penalty at its 5 KB target."""
    cfg = default_config(dataset, model, "a2q")
    assert {k: getattr(cfg, k) for k in new} == new
    paper = default_config(dataset, model, "a2q", **paper_options)
    assert (paper.operand, paper.gin_order, paper.penalty, paper.memory_target_kb) == (
        "column", "aggregate-first", "memory", 5.0)
    # the other methods keep the paper's layers
    assert default_config(dataset, model, "fp32").gin_order == "aggregate-first"
