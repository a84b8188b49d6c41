"""A training run on disk: written whole or not at all, and read back with validation.

Layout of ``--out``: ``metrics.json``, ``history.json`` (node-level: one entry per epoch),
``bits_by_degree.json``, ``bits_by_degree.png``, ``checkpoint.pt``.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import zipfile
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
    with atomic_folder(out, command="a2q train") as tmp:
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
    """Read a checkpoint (a run folder or the file), refusing anything malformed: not a whole
    zip archive (truncated), anything beyond tensors and plain values (PyTorch's
    ``weights_only`` loading: nothing is unpickled), a wrong format or version, a ``task``,
    ``config`` or ``state`` of the wrong kind, a non-finite parameter. The configuration's
    own values are checked where the model is rebuilt
    (:func:`a2q.sw.train.model_from_checkpoint`)."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.is_file():
        raise A2QError(f"checkpoint not found: {path}")
    try:
        whole = zipfile.is_zipfile(path)
    except OSError as exc:
        raise A2QError(f"{path}: unreadable ({exc.strerror or exc})") from None
    if not whole:
        raise A2QError(f"{path}: corrupted checkpoint: not a whole zip archive (truncated, or "
                       "another kind of file)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        what = f" ({found.group(1)})" if found else ""
        raise A2QError(f"{path}: refused: the checkpoint holds Python objects beyond tensors "
                       f"and plain values{what}, which a2q never unpickles") from None
    except Exception as exc:  # noqa: BLE001 - any failure of the archive's parts: not readable
        raise A2QError(f"{path}: corrupted checkpoint: {_first_line(exc)}") from None
    if not isinstance(obj, dict) or obj.get("format") != CHECKPOINT_FORMAT:
        raise A2QError(f"{path}: not an a2q checkpoint (field 'format')")
    if type(obj.get("version")) is not int or obj["version"] != CHECKPOINT_VERSION:
        raise A2QError(f"{path}: unsupported checkpoint version {obj.get('version')!r} "
                       f"(field 'version'; this a2q reads {CHECKPOINT_VERSION})")
    for key in ("task", "config", "state"):
        if key not in obj:
            raise A2QError(f"{path}: field {key!r} missing")
    if obj["task"] not in ("node", "graph"):
        raise A2QError(f"{path}: field 'task' must be 'node' or 'graph', got {obj['task']!r}")
    if not isinstance(obj["config"], dict):
        raise A2QError(f"{path}: field 'config' must be an object, got "
                       f"{type(obj['config']).__name__}")
    states = obj["state"] if obj["task"] == "graph" else [obj["state"]]
    if not isinstance(states, list) or not states:
        raise A2QError(f"{path}: field 'state' must be a list of the folds' parameters")
    for k, state in enumerate(states):
        where = "state" if obj["task"] == "node" else f"state[{k}]"
        if not isinstance(state, dict):
            raise A2QError(f"{path}: field {where!r} must be the model's parameters (an "
                           f"object), got {type(state).__name__}")
        for name, t in state.items():
            if not isinstance(t, torch.Tensor):
                raise A2QError(f"{path}: field {f'{where}.{name}'!r} must be a tensor, got "
                               f"{type(t).__name__}")
            if t.layout != torch.strided or t.device.type != "cpu" or t.is_complex():
                raise A2QError(f"{path}: field {f'{where}.{name}'!r} must be a dense real "
                               f"tensor in memory, got {t.layout}, {t.device.type}, {t.dtype}")
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                raise A2QError(f"{path}: field {f'{where}.{name}'!r}: NaN or infinite value")
    return obj


def _first_line(exc: Exception) -> str:
    """The first line of PyTorch's message that says what is wrong (never its advice to load
    without ``weights_only``, which would unpickle arbitrary objects)."""
    lines = [line.strip() for line in str(exc).splitlines()
             if line.strip() and not re.search(r"weights_only|can still be loaded|trust", line)]
    return (lines or [type(exc).__name__])[0][:200]
