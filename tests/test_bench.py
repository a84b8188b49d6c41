"""``a2q bench train`` on a tiny configuration: its files and the ratio it reports."""

import json

from a2q.app.bench.models import run_train_bench


def test_train_bench_writes_table_and_ratios(tmp_path):
    r = run_train_bench(tmp_path, seeds=[0, 1], epochs=2, datasets=["Cora"], models=["gcn"],
                        methods=["fp32", "uniform4", "a2q"], progress=False)
    data = json.loads((tmp_path / "train.json").read_text())
    assert data["rows"] == r["rows"] and len(data["runs"]) == 6
    rows = {row["method"]: row for row in r["rows"]}
    assert rows["fp32"]["time_ratio_to_fp32"] == 1.0
    assert rows["uniform4"]["avg_feature_bits"] == 4.0 and rows["uniform4"]["seeds"] == 2
    fp32 = [m["seconds_per_epoch"] for m in data["runs"] if m["label"] == "fp32"]
    a2q = [m["seconds_per_epoch"] for m in data["runs"] if m["label"] == "a2q"]
    assert abs(rows["a2q"]["time_ratio_to_fp32"] - (sum(a2q) / sum(fp32))) < 0.01
    md = (tmp_path / "train.md").read_text()
    assert "| Cora | GCN | a2q |" in md and "paper: 80.9 at 1.70 bits" in md


def test_a_configuration_beats_a2q_only_with_no_more_cycles_and_more_accuracy():
    from a2q.app.bench.hardware import dominating

    def row(config, acc, cycles, dataset="Cora"):
        return {"dataset": dataset, "model": "gcn", "config": config, "test_acc": acc,
                "cycles": cycles}

    rows = [row("a2q", 81.3, 1000), row("uniform3", 82.3, 1000), row("uniform4", 83.4, 1001),
            row("uniform2", 69.6, 500), row("uniform8", 81.3, 900),
            row("a2q", 70.0, 10, "CiteSeer"), row("uniform3", 71.0, 11, "CiteSeer")]
    assert [r["config"] for r in dominating(rows)] == ["uniform3"]


def test_graph_level_rows_join_the_node_level_table(tmp_path):
    run_train_bench(tmp_path, seeds=[0], epochs=2, datasets=["Cora"], models=["gcn"],
                    methods=["fp32"], progress=False)
    r = run_train_bench(tmp_path, seeds=[0], epochs=2, datasets=["MUTAG"], models=["gin"],
                        methods=["fp32", "a2q"], progress=False, workers=1)
    data = json.loads((tmp_path / "train.json").read_text())
    assert [(row["dataset"], row["method"]) for row in data["rows"]] == [
        ("Cora", "fp32"), ("MUTAG", "fp32"), ("MUTAG", "a2q")]
    a2q = {row["method"]: row for row in r["rows"]}["a2q"]
    assert a2q["folds"] == 10 and sum(a2q["pool_bits"].values()) == 10 * 3 * 32
    md = (tmp_path / "train.md").read_text()
    assert "## Node level" in md and "| Cora | GCN | fp32 | 1 | 2 | no |" in md
    assert "## Graph level" in md and "| MUTAG | a2q | 10 | 2 | no |" in md
