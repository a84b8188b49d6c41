"""``a2q sim combination|aggregation``: a user's arrays through a unit sized for them, in RTL.

Inputs are checked before anything is built (integer dtypes, shapes, each value within its
declared bits, CSR in range); the result is written only when the run finished, as ``Y.npy``
and ``Y.json`` (measured and predicted cycles, whether Y equals NumPy's exact result).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np

from . import rtl_sim
from .cycles import aggregation_cycles, combination_cycles
from .golden import exact_matmul, neighbour_sum


class InputError(ValueError):
    """A user's array is unfit for the unit; the message names the file and the field."""


def load_int_array(path, field: str, ndim: int) -> np.ndarray:
    path = Path(path)
    try:
        a = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise InputError(f"{path}: {field} file not found") from None
    except (ValueError, OSError) as exc:
        raise InputError(f"{path}: {field} is not a readable .npy array ({exc})") from None
    if not np.issubdtype(a.dtype, np.integer) and a.dtype != np.bool_:
        raise InputError(f"{path}: {field} has dtype {a.dtype}, expected integers")
    if a.ndim != ndim:
        raise InputError(f"{path}: {field} has shape {a.shape}, expected {ndim} dimensions")
    return a.astype(np.int64)


def check_fits(x: np.ndarray, bits: np.ndarray, signed_input: bool, where: str) -> None:
    """Every row i of ``x`` fits ``bits[i]`` bits (two's complement if signed)."""
    if bits.size and (bits.min() < 1 or bits.max() > 16):
        raise InputError(f"{where}: bits must be 1..16, found {bits.min()}..{bits.max()}")
    lo = -(1 << (bits - 1)) if signed_input else np.zeros_like(bits)
    hi = (1 << (bits - 1)) - 1 if signed_input else (1 << bits) - 1
    bad = np.argwhere((x < lo[:, None]) | (x > hi[:, None]))
    if bad.size:
        i, k = bad[0]
        kind = "signed" if signed_input else "unsigned"
        raise InputError(f"{where}: x[{i}, {k}] = {x[i, k]} does not fit node {i}'s "
                         f"{bits[i]} {kind} bits ({bad.shape[0]} values do not)")


def _write_result(out: Path, y: np.ndarray, report: dict) -> None:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = out.with_suffix(".json")
    for path, write in ((out, lambda f: np.save(f, y)),
                        (meta, lambda f: f.write(json.dumps(report, indent=2).encode() + b"\n"))):
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)


def _run(kind, params, case, simulator, build_root, expected, predicted, ideal, out):
    model = rtl_sim.build(kind, params, simulator, Path(build_root))
    work = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=model.folder.parent))
    res = rtl_sim.run(model, [case], work, name=kind)
    r = res["results"][0]
    report = {
        "unit": kind, "simulator": simulator, "parameters": model.info["parameters"],
        "verilog": str(model.rtl / model.info["verilog"]),
        "matches_numpy": bool(np.array_equal(r["y"], expected)),
        "cycles_measured": r["cycles"], "cycles_predicted": predicted, "cycles_ideal": ideal,
        "sim_seconds": round(res["seconds"], 3),
        "cycles_per_second": round(r["cycles"] / res["seconds"], 1),
        "junit": str(res["junit"]),
    }
    _write_result(out, r["y"], report)
    return report


def simulate_combination(x_path, bits_path, w_path, out, *, signed_input=False,
                         simulator="verilator", lanes=None, weight_bits=4, max_bits=None,
                         build_root="build/sim") -> dict:
    x = load_int_array(x_path, "x", 2)
    bits = load_int_array(bits_path, "bits", 1)
    w = load_int_array(w_path, "w", 2)
    if bits.shape[0] != x.shape[0]:
        raise InputError(f"{bits_path}: bits has {bits.shape[0]} entries, x has {x.shape[0]} rows")
    if w.shape[0] != x.shape[1]:
        raise InputError(f"{w_path}: w has {w.shape[0]} rows, x has {x.shape[1]} columns")
    if x.shape[0] == 0 or w.shape[1] == 0:
        raise InputError(f"{x_path}: x and w must not be empty")
    check_fits(x, bits, signed_input, str(x_path))
    lim = 1 << (weight_bits - 1)
    if w.min() < -lim or w.max() >= lim:
        raise InputError(f"{w_path}: w holds {w.min()}..{w.max()}, beyond {weight_bits}-bit "
                         f"signed weights (--weight-bits)")
    lanes = lanes or min(w.shape[1], 16)
    max_bits = max_bits or int(bits.max())
    if bits.max() > max_bits:
        raise InputError(f"{bits_path}: bits up to {bits.max()} exceed --max-bits {max_bits}")
    params = {"in_features": x.shape[1], "lanes": lanes, "weight_bits": weight_bits,
              "max_bits": max_bits, "signed_input": signed_input}
    tiles = math.ceil(w.shape[1] / lanes)
    return _run("combination", params, {"x": x, "bits": bits, "w": w}, simulator, build_root,
                exact_matmul(x, w), combination_cycles(bits, in_features=x.shape[1],
                                          out_features=w.shape[1], lanes=lanes),
                int(bits.sum()) * tiles, out)


def simulate_aggregation(indptr_path, indices_path, x_path, bits_path, out, *,
                         signed_input=False, simulator="verilator", lanes=None, max_bits=None,
                         build_root="build/sim") -> dict:
    indptr = load_int_array(indptr_path, "indptr", 1)
    indices = load_int_array(indices_path, "indices", 1)
    x = load_int_array(x_path, "x", 2)
    bits = load_int_array(bits_path, "bits", 1)
    n = x.shape[0]
    if n == 0 or x.shape[1] == 0:
        raise InputError(f"{x_path}: x must not be empty")
    if bits.shape[0] != n:
        raise InputError(f"{bits_path}: bits has {bits.shape[0]} entries, x has {n} rows")
    if indptr.shape[0] != n + 1:
        raise InputError(f"{indptr_path}: indptr has {indptr.shape[0]} entries, expected "
                         f"{n + 1} (x has {n} rows)")
    if indptr[0] != 0 or np.any(np.diff(indptr) < 0) or indptr[-1] != indices.shape[0]:
        raise InputError(f"{indptr_path}: indptr must start at 0, never decrease and end at "
                         f"len(indices) = {indices.shape[0]}")
    if indices.size and (indices.min() < 0 or indices.max() >= n):
        raise InputError(f"{indices_path}: indices out of range 0..{n - 1} "
                         f"(found {indices.min()}..{indices.max()})")
    check_fits(x, bits, signed_input, str(x_path))
    lanes = lanes or min(x.shape[1], 16)
    max_bits = max_bits or int(bits.max())
    if bits.max() > max_bits:
        raise InputError(f"{bits_path}: bits up to {bits.max()} exceed --max-bits {max_bits}")
    params = {"columns": x.shape[1], "lanes": lanes, "max_bits": max_bits,
              "signed_input": signed_input, "max_nodes": max(n, 2), "max_edges": max(len(indices), 1)}
    case = {"indptr": indptr, "indices": indices, "x": x, "bits": bits}
    tiles = math.ceil(x.shape[1] / lanes)
    return _run("aggregation", params, case, simulator, build_root,
                neighbour_sum(indptr, indices, x),
                aggregation_cycles(indptr, indices, bits, columns=x.shape[1], lanes=lanes),
                int(bits[indices].sum()) * tiles, out)
