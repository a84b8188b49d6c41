"""``a2q sim combination|aggregation``: a user's arrays through a unit sized for them, in RTL.

Inputs are checked before anything is built (:mod:`a2q.sim.user_arrays`: integer dtypes,
shapes, each value within its declared bits; here: the arrays agree, the CSR is in range, the
unit's parameters within :data:`a2q.hw.rtl.UNIT_LIMITS`); the result is written only when the
run finished, as ``Y.npy`` and ``Y.json`` (measured and predicted cycles, whether Y equals
NumPy's exact result), both or neither.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np

from a2q.common.files import interrupts_held
from a2q.hw import rtl

from . import rtl_sim
from .cycles import aggregation_cycles, combination_cycles
from .golden import exact_matmul, neighbour_sum
from .user_arrays import InputError, check_fits, load_int_array


def _write_result(out: Path, y: np.ndarray, report: dict) -> None:
    """``out`` and its ``.json`` report, each through a temporary file, swapped in together."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = out.with_suffix(".json")
    temps = []
    try:
        for path, write in ((out, lambda f: np.save(f, y, allow_pickle=False)),
                            (meta, lambda f: f.write(json.dumps(report, indent=2).encode()
                                                     + b"\n"))):
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
            temps.append((tmp, path))
            with os.fdopen(fd, "wb") as f:
                write(f)
        with interrupts_held():
            for tmp, path in temps:
                os.replace(tmp, path)
    finally:
        for tmp, _ in temps:
            if os.path.exists(tmp):
                os.unlink(tmp)


def _run(kind, params, case, simulator, build_root, expected, predicted, ideal, out):
    try:
        model = rtl_sim.build(kind, params, simulator, Path(build_root))
    except ValueError as exc:  # the unit's constructor refuses the parameters
        raise InputError(f"sim {kind}: {exc}") from None
    work = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=model.folder.parent))
    res = rtl_sim.run(model, [case], work, name=kind)
    r = res["results"][0]
    report = {
        "command": f"a2q sim {kind}", "unit": kind, "simulator": simulator, "parameters": model.info["parameters"],
        "verilog": str(model.rtl / model.info["verilog"]),
        "matches_numpy": bool(np.array_equal(r["y"], expected)),
        "cycles_measured": r["cycles"], "cycles_predicted": predicted, "cycles_ideal": ideal,
        "sim_seconds": round(res["seconds"], 3),
        "cycles_per_second": round(r["cycles"] / res["seconds"], 1),
        "junit": str(res["junit"]),
    }
    _write_result(out, r["y"], report)
    return report


def _unit_parameters(kind: str, params: dict) -> dict:
    try:
        rtl.check_unit_parameters(kind, params)
    except ValueError as exc:
        raise InputError(f"sim {kind}: {exc}") from None
    return params


def prepare_combination(x_path, bits_path, w_path, *, signed_input=False, lanes=None,
                        weight_bits=4, max_bits=None):
    """The checked inputs of a combination run: ``(params, case, Y, cycles, ideal cycles)``,
    Y NumPy's exact X @ W, the cycles the cycle model's."""
    _unit_parameters("combination", {"lanes": lanes, "weight_bits": weight_bits,
                                     "max_bits": max_bits})
    x = load_int_array(x_path, "x", 2)
    bits = load_int_array(bits_path, "bits", 1)
    w = load_int_array(w_path, "w", 2)
    if bits.shape[0] != x.shape[0]:
        raise InputError(f"{bits_path}: bits has {bits.shape[0]} entries, x has {x.shape[0]} rows")
    if w.shape[0] != x.shape[1]:
        raise InputError(f"{w_path}: w has {w.shape[0]} rows, x has {x.shape[1]} columns")
    check_fits(x, bits, signed_input, str(x_path), str(bits_path))
    lim = 1 << (weight_bits - 1)
    if w.min() < -lim or w.max() >= lim:
        raise InputError(f"{w_path}: w holds {w.min()}..{w.max()}, beyond {weight_bits}-bit "
                         f"signed weights (--weight-bits)")
    lanes = lanes or min(w.shape[1], 16)
    max_bits = max_bits or int(bits.max())
    if bits.max() > max_bits:
        raise InputError(f"{bits_path}: bits up to {bits.max()} exceed --max-bits {max_bits}")
    params = _unit_parameters("combination", {
        "in_features": x.shape[1], "lanes": lanes, "weight_bits": weight_bits,
        "max_bits": max_bits, "signed_input": signed_input})
    tiles = math.ceil(w.shape[1] / lanes)
    return (params, {"x": x, "bits": bits, "w": w}, exact_matmul(x, w),
            combination_cycles(bits, in_features=x.shape[1], out_features=w.shape[1],
                               lanes=lanes), int(bits.sum()) * tiles)


def prepare_aggregation(indptr_path, indices_path, x_path, bits_path, *, signed_input=False,
                        lanes=None, max_bits=None):
    """The checked inputs of an aggregation run: ``(params, case, Y, cycles, ideal cycles)``,
    Y NumPy's exact neighbour sum, the cycles the cycle model's."""
    _unit_parameters("aggregation", {"lanes": lanes, "max_bits": max_bits})
    indptr = load_int_array(indptr_path, "indptr", 1)
    indices = load_int_array(indices_path, "indices", 1)
    x = load_int_array(x_path, "x", 2)
    bits = load_int_array(bits_path, "bits", 1)
    n = x.shape[0]
    if bits.shape[0] != n:
        raise InputError(f"{bits_path}: bits has {bits.shape[0]} entries, x has {n} rows")
    if indptr.shape[0] != n + 1:
        raise InputError(f"{indptr_path}: indptr has {indptr.shape[0]} entries, expected "
                         f"{n + 1} (x has {n} rows)")
    if indptr[0] != 0 or np.any(np.diff(indptr) < 0) or indptr[-1] != indices.shape[0]:
        raise InputError(f"{indptr_path}: indptr must start at 0, never decrease and end at "
                         f"len(indices) = {indices.shape[0]}")
    if indices.min() < 0 or indices.max() >= n:
        raise InputError(f"{indices_path}: indices out of range 0..{n - 1} "
                         f"(found {indices.min()}..{indices.max()})")
    check_fits(x, bits, signed_input, str(x_path), str(bits_path))
    lanes = lanes or min(x.shape[1], 16)
    max_bits = max_bits or int(bits.max())
    if bits.max() > max_bits:
        raise InputError(f"{bits_path}: bits up to {bits.max()} exceed --max-bits {max_bits}")
    params = _unit_parameters("aggregation", {
        "columns": x.shape[1], "lanes": lanes, "max_bits": max_bits,
        "signed_input": signed_input, "max_nodes": max(n, 2),
        "max_edges": max(len(indices), 1)})
    case = {"indptr": indptr, "indices": indices, "x": x, "bits": bits}
    tiles = math.ceil(x.shape[1] / lanes)
    return (params, case, neighbour_sum(indptr, indices, x),
            aggregation_cycles(indptr, indices, bits, columns=x.shape[1], lanes=lanes),
            int(bits[indices].sum()) * tiles)


def simulate_combination(x_path, bits_path, w_path, out, *, signed_input=False,
                         simulator="verilator", lanes=None, weight_bits=4, max_bits=None,
                         build_root="build/sim") -> dict:
    run = prepare_combination(x_path, bits_path, w_path, signed_input=signed_input,
                              lanes=lanes, weight_bits=weight_bits, max_bits=max_bits)
    return _run("combination", *run[:2], simulator, build_root, *run[2:], out)


def simulate_aggregation(indptr_path, indices_path, x_path, bits_path, out, *,
                         signed_input=False, simulator="verilator", lanes=None, max_bits=None,
                         build_root="build/sim") -> dict:
    run = prepare_aggregation(indptr_path, indices_path, x_path, bits_path,
                              signed_input=signed_input, lanes=lanes, max_bits=max_bits)
    return _run("aggregation", *run[:2], simulator, build_root, *run[2:], out)
