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
