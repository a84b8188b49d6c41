"""The fixed-point constants of an export, derived from its real-valued steps and biases.

One definition for every writer of the format (``a2q export``, the uniform-bit re-export, the
tests' random exports): given each layer's ``weight_step``, ``bias``, ``operand_step`` (where
the operand is quantized per column), ``node_op_step`` (GCN's operand with per-node bits) and
``node_step`` (where the input has per-node bits), it sets the mantissa/shift pairs and
fixed-point biases that ``docs/export-format.md`` lists (GIN's ``eps_fx`` is the writer's).
NumPy only.
"""

from __future__ import annotations

import numpy as np

from .annotated_graph import NORM_FRAC
from .fixed_point import fixed, fixed_common


def _fx(field: str, to_fixed, x):
    """``to_fixed(x)``; a value fixed point cannot hold is refused naming the export field."""
    try:
        return to_fixed(x)
    except ValueError as exc:
        raise ValueError(f"field {field!r}: {exc}") from None


def derive_constants(model: str, order: str, layers: list[dict], arrays: dict) -> None:
    """Fill ``arrays`` and each ``layers[l]`` in place with the derived constants of a
    ``model`` whose layers run in ``order`` (combine-first: GCN, GIN-0)."""
    gcn = order == "combine-first"
    for l, L in enumerate(layers, start=1):
        p = f"layer{l}."
        w_step, bias = arrays[p + "weight_step"], arrays[p + "bias"]
        if L["per_node_input"]:
            step = arrays[p + "node_step"]
            arrays[p + "node_scale_m"], arrays[p + "node_scale_sh"] = _fx(
                p + "node_scale_m", fixed, step)
            arrays[p + "node_inv_m"], arrays[p + "node_inv_sh"] = _fx(
                p + "node_inv_m", fixed, 1.0 / step)
        if gcn and L.get("per_node_operand"):
            _per_node_operand(L, p, arrays, w_step, bias, normalized=model == "gcn")
            continue
        op_step = (arrays[p + "operand_step"] if L["operand_bits"]
                   else np.ones(L["in_dim"]))
        if gcn:
            arrays[p + "xw_scale_m"], L["xw_scale_sh"] = _fx(
                p + "xw_scale_m", fixed_common, w_step / op_step)
            arrays[p + "out_scale_m"], L["out_scale_sh"] = _fx(
                p + "out_scale_m", fixed_common, op_step)
            arrays[p + "bias_fx"] = np.floor(
                bias * 2.0 ** (NORM_FRAC + L["out_scale_sh"]) + 0.5).astype(np.int64)
        else:
            arrays[p + "op_scale_m"], L["op_scale_sh"] = _fx(
                p + "op_scale_m", fixed_common, op_step)
            nxt = (arrays[f"layer{l + 1}.operand_step"] if l < len(layers)
                   else np.ones(L["out_dim"]))
            arrays[p + "out_scale_m"], L["out_scale_sh"] = _fx(
                p + "out_scale_m", fixed_common, w_step / nxt)
            arrays[p + "bias_fx"] = np.floor(
                bias / nxt * 2.0 ** L["out_scale_sh"] + 0.5).astype(np.int64)


def _per_node_operand(L: dict, p: str, arrays: dict, w_step, bias, *, normalized: bool) -> None:
    """Combine-first layer with per-node operand steps t_j (at least in_step / (2^15 - 1)):
    XW's requantization takes the node's ``in_step / t_j`` (``node_op_m``, ``node_op_sh``) and
    the column's weight step (``xw_scale_m``); the aggregation weighs P_j by ``op_coef[j]`` =
    n_j * t_j (GCN, n_j = 1 / sqrt(d_j); GIN-0's sum, n_j = 1) over 2^-op_coef_sh, at most
    2^15; the output scale ``out_scale_m`` is 2^(15 - op_coef_sh), so that the bias and every
    later step are as with column steps."""
    step_in = (arrays[p + "node_step"] if L["per_node_input"]
               else np.ones_like(arrays[p + "node_op_step"]))
    # in_step / t_j is a fixed-point constant below 2^15: a smaller step (a node whose XW is
    # zero or nearly, as a featureless input row gives) is raised to the smallest it holds
    t = arrays[p + "node_op_step"] = np.maximum(arrays[p + "node_op_step"],
                                                step_in / (2.0 ** 15 - 1))
    arrays[p + "node_op_m"], arrays[p + "node_op_sh"] = _fx(
        p + "node_op_m", fixed, step_in / t)
    arrays[p + "xw_scale_m"], L["xw_scale_sh"] = _fx(p + "xw_scale_m", fixed_common, w_step)
    degree = np.maximum(np.diff(arrays["indptr"]), 1).astype(np.float64)
    coef = t / np.sqrt(degree) if normalized else t
    # the largest at 2^15 .. 2^16: one bit less keeps it <= 2^15
    _, sh = _fx(p + "op_coef", fixed, coef.max())
    L["op_coef_sh"] = int(sh) - 1
    arrays[p + "op_coef"] = np.maximum(1, np.floor(np.ldexp(coef, L["op_coef_sh"]) + 0.5)
                                       ).astype(np.int64)
    arrays[p + "out_scale_m"], L["out_scale_sh"] = _fx(p + "out_scale_m", fixed_common, 
        np.full(len(w_step), 2.0 ** (NORM_FRAC - L["op_coef_sh"])))
    arrays[p + "bias_fx"] = np.floor(
        bias * 2.0 ** (NORM_FRAC + L["out_scale_sh"]) + 0.5).astype(np.int64)
