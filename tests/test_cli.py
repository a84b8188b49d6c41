"""The ``a2q`` command: a run folder from `train`, and one clear line for every bad input."""

import json
import subprocess
import sys

import pytest


def a2q(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "a2q.app.cli", *args], capture_output=True,
                          text=True, cwd=cwd)


def _one_line_error(p, *fragments):
    assert p.returncode != 0
    assert "Traceback" not in p.stderr
    lines = [l for l in p.stderr.strip().splitlines() if l.startswith("a2q: error")]
    assert len(lines) == 1, p.stderr
    for f in fragments:
        assert f in lines[0], lines[0]


def test_train_writes_the_run_folder(tmp_path):
    out = tmp_path / "run"
    p = a2q("train", "--dataset", "Cora", "--model", "gcn", "--method", "a2q", "--seed", "0",
            "--epochs", "5", "--out", str(out), "--no-progress")
    assert p.returncode == 0, p.stderr
    for name in ("metrics.json", "bits_by_degree.json", "bits_by_degree.png", "checkpoint.pt",
                 "history.json"):
        assert (out / name).is_file(), name
    m = json.loads((out / "metrics.json").read_text())
    for key in ("dataset", "model", "method", "seed", "test_acc", "test_acc_best_epoch",
                "avg_feature_bits", "weight_bits", "compression_ratio", "epochs",
                "train_seconds", "seconds_per_epoch"):
        assert key in m, key
    assert m["weight_bits"] == 4 and m["epochs"] == 5
    assert (out / "bits_by_degree.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ev = a2q("eval", str(out))
    assert ev.returncode == 0 and json.loads(ev.stdout)["test_acc"] == m["test_acc"]


@pytest.mark.parametrize("args, fragments", [
    (["--dataset", "Kora"], ["unknown dataset", "Cora", "CiteSeer", "PROTEINS"]),
    (["--model", "mlp"], ["unknown model", "gcn, gin, gat"]),
    (["--method", "int3"], ["unknown method", "fp32, uniform, dq, a2q"]),
    (["--epochs", "0"], ["epochs must be positive"]),
    (["--epochs", "-3"], ["epochs must be positive"]),
    (["--method", "uniform", "--bits", "9"], ["bits must be in 1..8"]),
    (["--method", "uniform", "--bits", "0"], ["bits must be in 1..8"]),
    (["--dataset", "PROTEINS", "--model", "gcn"], ["graph-level", "gin"]),
    (["--model", "gin", "--gin-order", "aggregate-first", "--operand", "node"],
     ["--operand node", "combine-first"]),
    (["--model", "gcn", "--gin-order", "combine-first"], ["--gin-order", "node-level GIN"]),
    (["--method", "uniform", "--operand", "node"], ["--operand node", "A²Q"]),
    (["--method", "fp32", "--penalty", "cycles"], ["--penalty cycles", "node-level"]),
    (["--dataset", "MUTAG", "--model", "gin", "--penalty", "cycles"], ["--penalty cycles"]),
    (["--cycle-target", "-1"], ["cycle targets must be non-negative"]),
    (["--lr-bits", "-0.1"], ["lr-bits must be in 0.."]),
    (["--init-bits", "9"], ["init-bits must be in 1..8"]),
    (["--pool-gradient", "local"], ["--pool-gradient local", "graph-level"]),
    (["--dataset", "MUTAG", "--model", "gin", "--method", "dq", "--pool-gradient", "local"],
     ["--pool-gradient local", "A²Q"]),
    (["--quantizer-epochs", "50"], ["--quantizer-epochs", "graph-level"]),
    (["--dataset", "MUTAG", "--model", "gin", "--quantizer-epochs", "-1"],
     ["quantizer-epochs must be at least 0"]),
])
def test_bad_training_input_is_one_line(tmp_path, args, fragments):
    out = tmp_path / "run"
    p = a2q("train", "--out", str(out), "--no-progress", *args)
    _one_line_error(p, *fragments)
    assert not out.exists()


def test_nan_loss_stops_and_writes_nothing(tmp_path):
    out = tmp_path / "run"
    p = a2q("train", "--lr", "1e30", "--epochs", "30", "--out", str(out), "--no-progress")
    _one_line_error(p, "diverged", "nothing written")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary folder left behind either


def test_missing_checkpoint(tmp_path):
    _one_line_error(a2q("eval", str(tmp_path / "nope")), "checkpoint not found",
                    str(tmp_path / "nope"))


@pytest.mark.parametrize("content", [b"", b"not a zip at all", b"PK\x03\x04truncated"])
def test_corrupted_checkpoint(tmp_path, content):
    (tmp_path / "checkpoint.pt").write_bytes(content)
    _one_line_error(a2q("eval", str(tmp_path)), "corrupted checkpoint", "checkpoint.pt")


def test_checkpoint_of_another_kind_is_refused(tmp_path):
    import torch

    torch.save({"weights": torch.zeros(3)}, tmp_path / "checkpoint.pt")
    _one_line_error(a2q("eval", str(tmp_path)), "not an a2q checkpoint", "format")


def test_truncated_real_checkpoint(tmp_path):
    out = tmp_path / "run"
    assert a2q("train", "--epochs", "2", "--out", str(out), "--no-progress").returncode == 0
    ck = out / "checkpoint.pt"
    ck.write_bytes(ck.read_bytes()[:-400])
    _one_line_error(a2q("eval", str(out)), "corrupted checkpoint")


def test_a_run_whose_export_fails_is_kept_with_a_warning(tmp_path):
    """One epoch of Cora GCN leaves a per-node step that fixed point cannot hold: the run is
    written whole and the command succeeds, saying in one line which field has no export."""
    out = tmp_path / "run"
    p = a2q("train", "--epochs", "1", "--out", str(out), "--no-progress")
    assert p.returncode == 0, p.stderr
    warning = [line for line in p.stderr.splitlines() if line.startswith("a2q: warning")]
    assert len(warning) == 1 and "no bitwidth-annotated graph" in warning[0]
    assert "field 'layer" in warning[0]
    assert (out / "checkpoint.pt").is_file() and not (out / "graph").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
