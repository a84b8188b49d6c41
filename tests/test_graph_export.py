"""The graph-level export and its golden model: the Nearest-Neighbor selection in integers,
the GIN layers with batch normalisation folded, the readout, against an independent
Python-integer reference and against the torch model the export came from."""

import json
from fractions import Fraction

import numpy as np
import pytest
import torch

from a2q.app.cli import main
from a2q.sim.annotated_graph import GraphFormatError
from a2q.sim.graph_batch import read_graph_batch, write_graph_batch
from a2q.sim.graph_golden import run_graph_batch
from a2q.sw.config import default_config
from a2q.sw.export import export_run
from a2q.sw.graph_batches import GraphBatches
from a2q.sw.run_folder import load_checkpoint, write_run
from a2q.sw.train import graph_folds, model_from_checkpoint, train

from .sim_exports import random_graph_export


def rshift_round(t: int, s: int) -> int:
    """round_half_away(t / 2^s) on Python integers."""
    if s == 0:
        return t
    q, r = divmod(abs(t), 1 << s)
    q += 2 * r >= 1 << s
    return q if t >= 0 else -q


def reference_logits(m: dict, a: dict, *, by_threshold: bool = False) -> tuple[list, list]:
    """The documented datapath node by node with Python integers; the pool entry chosen as
    the nearest range in exact rationals (ties to the lower entry), or with ``by_threshold``
    as the count of the export's thresholds below the node's largest value."""
    n, ip, ix, gp = m["num_nodes"], a["indptr"], a["indices"], a["graph_ptr"]
    O = [[int(v) for v in row] for row in a["x"]]
    outputs, chosen = [O], []
    for l, L in enumerate(m["layers"], start=1):
        p = f"layer{l}."
        scale = 2 ** (m["eps_frac"] + L["op_scale_sh"])
        ranges = [Fraction(float(s)) * ((1 << int(b)) - 1)
                  for s, b in zip(a[p + "pool_step"], a[p + "pool_bits"])]
        new, picks = [], []
        for i in range(n):
            S = [L["eps_fx"] * O[i][c] + (sum(O[j][c] for j in ix[ip[i]:ip[i + 1]]) << 15)
                 for c in range(L["in_dim"])]
            V = [s * int(a[p + "op_scale_m"][c]) for c, s in enumerate(S)]
            if by_threshold:
                k = sum(max(V) > int(t) for t in a[p + "pool_threshold"])
            else:
                M = Fraction(max(V), scale)
                k = min(range(len(ranges)), key=lambda e: (abs(M - ranges[e]), e))
            picks.append(k)
            hi = (1 << int(a[p + "pool_bits"][k])) - 1
            X = [min(max(rshift_round(v * int(a[p + "pool_inv_m"][k]),
                                      int(a[p + "pool_inv_sh"][k])), 0), hi) for v in V]
            row = []
            for c in range(L["out_dim"]):
                A = sum(X[f] * int(a[p + "weight"][f, c]) for f in range(L["in_dim"]))
                sh = int(a[p + "pool_scale_sh"][k])
                U = (A * int(a[p + "out_scale_m"][c]) * int(a[p + "pool_scale_m"][k])
                     + (int(a[p + "bias_fx"][c]) << sh))
                row.append(min(max(rshift_round(U, sh + int(a[p + "out_scale_sh"][c])), 0),
                               (1 << L["output_bits"]) - 1))
            new.append(row)
        O = new
        outputs.append(O)
        chosen.append(picks)
    logits = []
    for g in range(m["num_graphs"]):
        row = []
        for c in range(m["num_classes"]):
            total = int(a["readout.bias_fx"][c])
            for h, Oh in enumerate(outputs):
                p = f"readout{h}."
                width = len(a[p + "in_scale_m"])
                pooled = [sum(Oh[i][f] for i in range(gp[g], gp[g + 1])) for f in range(width)]
                H = sum(pooled[f] * int(a[p + "in_scale_m"][f]) * int(a[p + "weight"][f, c])
                        for f in range(width))
                total += rshift_round(H * int(a[p + "scale_m"][c]), int(a[p + "scale_sh"][c]))
            row.append(total)
        logits.append(row)
    return logits, chosen


@pytest.mark.parametrize("seed", range(25))
def test_golden_equals_a_python_integer_reference(seed, tmp_path):
    m, a = random_graph_export(np.random.default_rng(seed))
    g = read_graph_batch(write_graph_batch(tmp_path / "g", m, a))
    res = run_graph_batch(g)
    logits, chosen = reference_logits(g.manifest, g.arrays)
    assert res.logits.tolist() == logits
    for l, picks in enumerate(chosen, start=1):
        assert res.selections[f"layer{l}"].tolist() == picks
    assert res.predictions.tolist() == [int(np.argmax(row)) for row in logits]


def test_a_node_at_a_midpoint_takes_the_lower_entry(tmp_path):
    """Two pool entries of ranges 1 and 3: a node whose largest value is exactly 2 takes the
    first; one just above takes the second."""
    m, a = random_graph_export(np.random.default_rng(1), graphs=1, f0=1, hidden=1, layers=1,
                               pool=2)
    a["x"][:] = 0
    a["indices"] = np.zeros(0, dtype=np.int64)
    a["indptr"][:] = 0
    m["num_edges"], m["input_bits"] = 0, 2
    a["x"][0, 0] = 2
    if len(a["x"]) > 1:
        a["x"][1, 0] = 3
    a["layer1.pool_step"] = np.array([1.0, 3.0])
    a["layer1.pool_bits"] = np.array([1, 1], dtype=np.uint8)
    m["layers"][0]["eps_fx"] = 1 << 15
    from a2q.sim.export_constants import derive_graph_constants

    derive_graph_constants(m["layers"], m["readout"], a, logit_frac=m["logit_frac"])
    g = read_graph_batch(write_graph_batch(tmp_path / "g", m, a))
    k = run_graph_batch(g).selections["layer1"]
    assert k[0] == 0
    if len(k) > 1:
        assert k[1] == 1


@pytest.fixture(scope="module")
def mutag_run(tmp_path_factory):
    """A²Q GIN on MUTAG, 3 folds of 15 epochs, in one process."""
    root = tmp_path_factory.mktemp("mutag")
    cfg = default_config("MUTAG", "gin", "a2q", epochs=15, folds=3)
    write_run(train(cfg, progress=False, workers=1), root / "run")
    return root / "run"


def test_golden_agrees_with_torch_on_unseen_graphs(mutag_run, tmp_path):
    d = export_run(mutag_run, tmp_path / "graph")
    g = read_graph_batch(d)
    res = run_graph_batch(g)
    ref = g["reference_pred"]
    assert (res.predictions == ref).mean() >= 0.99
    for l in range(1, len(g.layers) + 1):  # torch's pool choices, as the export records them
        assert (res.selections[f"layer{l}"] == g[f"layer{l}.reference_selection"]).mean() >= 0.99
    acc = (res.predictions == g["labels"]).mean()
    assert abs(acc - (ref == g["labels"]).mean()) <= 0.005
    # the graphs are fold 0's test graphs, and the pool entries the integers choose are the
    # ones torch's Nearest-Neighbor quantizer chooses
    cfg, gd, models = model_from_checkpoint(load_checkpoint(mutag_run))
    graphs = GraphBatches(gd.dataset)
    test_ids = graph_folds(cfg, graphs.y.numpy())[0][2]
    assert g["graph_ids"].tolist() == test_ids.tolist()
    b = graphs.gather(test_ids)
    model = models[0]
    with torch.no_grad():
        assert model(b.x, b.edge_index, b.batch, b.num_graphs).argmax(1).tolist() == ref.tolist()
    for l, conv in enumerate(model.convs, start=1):
        q = conv.input_quant
        torch_range = q.q_max().double().numpy()[q.last_index.numpy()]
        p = f"layer{l}."
        ours = (g[p + "pool_step"] * ((1 << g[p + "pool_bits"].astype(np.int64)) - 1))[
            res.selections[f"layer{l}"]]
        assert np.mean(np.isclose(ours, torch_range, rtol=1e-6)) >= 0.99


def test_the_same_run_exports_the_same_bytes(mutag_run, tmp_path):
    a = export_run(mutag_run, tmp_path / "a")
    b = export_run(mutag_run, tmp_path / "b", fold=0, split="test")
    for f in sorted(p.name for p in a.iterdir()):
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    c = export_run(mutag_run, tmp_path / "c", fold=2, split="val")
    assert read_graph_batch(c).manifest["fold"] == 2


def test_train_exports_fold_0_and_golden_reads_it(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--dataset", "MUTAG", "--model", "gin", "--epochs", "2", "--folds",
                 "2", "--workers", "1", "--lr-bits", "0.01", "--pool-gradient", "local",
                 "--out", str(run), "--no-progress"]) == 0
    assert read_graph_batch(run / "graph").manifest["fold"] == 0
    config = json.loads((run / "metrics.json").read_text())["config"]
    assert config["lr_bits"] == 0.01 and config["pool_gradient"] == "local"
    capsys.readouterr()
    assert main(["golden", str(run / "graph"), "--out", str(tmp_path / "golden")]) == 0
    out = capsys.readouterr().out
    assert "fold 0 test graphs: golden accuracy" in out
    assert (tmp_path / "golden" / "layer1.selection.npy").exists()


def test_an_edge_between_graphs_is_refused(tmp_path):
    m, a = random_graph_export(np.random.default_rng(3), graphs=2)
    gp = a["graph_ptr"]
    assert gp[1] > 0 and gp[2] > gp[1]  # two graphs with nodes: the edge joins them
    n = m["num_nodes"]
    src = np.array([0])
    a["indices"] = np.concatenate([a["indices"], src])
    a["indptr"] = np.concatenate([a["indptr"][:-1], [a["indptr"][-1] + 1]])
    a["indptr"][n] = a["indices"].size
    m["num_edges"] = int(a["indices"].size)
    with pytest.raises(GraphFormatError, match="joins graphs 0 and 1"):
        write_graph_batch(tmp_path / "g", m, a)
    assert not (tmp_path / "g").exists()
