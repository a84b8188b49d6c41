"""A training run on disk: written whole or not at all, and read back with validation.

Layout of ``--out``: ``metrics.json``, ``history.json`` (node-level: one entry per epoch),
``bits_by_degree.json``, ``bits_by_degree.png``, ``checkpoint.pt``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from a2q.common.errors import A2QError
from a2q.common.files import atomic_folder

from .report import plot_bits_by_degree
from .train import CHECKPOINT_FORMAT, CHECKPOINT_VERSION, RunResult

CHECKPOINT = "checkpoint.pt"


def _dump(obj, path: Path) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_run(result: RunResult, out: str | os.PathLike) -> Path:
    """Write every file into a temporary sibling folder, then move it into place."""
    out = Path(out)
    with atomic_folder(out) as tmp:
        m = result.metrics
        _dump(m, tmp / "metrics.json")
        if result.history:
            _dump(result.history, tmp / "history.json")
        _dump(result.bits_by_degree, tmp / "bits_by_degree.json")
        plot_bits_by_degree(result.bits_by_degree, tmp / "bits_by_degree.png",
                            f"{m['dataset']} {m['model'].upper()} {m['method']} (seed {m['seed']}):"
                            f" {m['avg_feature_bits']:.2f} avg bits, {m['test_acc']:.1f}% test")
        (tmp / CHECKPOINT).write_bytes(result.checkpoint)
    return out


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint (a run folder or the file), refusing anything malformed."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.is_file():
        raise A2QError(f"checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, not a zip, or unpickling refused: not a checkpoint
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise A2QError(f"corrupted checkpoint {path}: {detail}") from None
    if not isinstance(obj, dict) or obj.get("format") != CHECKPOINT_FORMAT:
        raise A2QError(f"{path}: not an a2q checkpoint (field 'format')")
    if obj.get("version") != CHECKPOINT_VERSION:
        raise A2QError(f"{path}: unsupported checkpoint version {obj.get('version')!r} "
                       f"(field 'version'; this a2q reads {CHECKPOINT_VERSION})")
    for key in ("task", "config", "state"):
        if key not in obj:
            raise A2QError(f"{path}: field {key!r} missing")
    return obj
