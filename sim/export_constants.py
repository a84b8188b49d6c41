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

from .annotated_graph import EPS_FRAC, NORM_FRAC
from .fixed_point import fixed, fixed_common

#: the largest magnitude, 2^PRODUCT_BITS, of a graph-level layer's output before its rounding:
#: a step's shift is capped so that the bias aligned to it stays below it
PRODUCT_BITS = 61


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


def derive_graph_constants(layers: list[dict], readout: list[dict], arrays: dict, *,
                           logit_frac: int) -> None:
    """The fixed-point constants of a graph-level export (``a2q.sim.graph_batch``), in place.

    Per layer l: the operand's per-column scale (``op_scale_m``, shift ``op_scale_sh``; 1 for
    the raw input), each pool entry's step and its inverse (``pool_scale_*``,
    ``pool_inv_*``), the pool's thresholds in the aggregation's units, and the output's scale
    and bias with batch normalisation folded in (``out_scale_m`` with a shift per column,
    ``out_scale_sh``; ``bias_fx``, in units of the output step). The writer has already
    folded the sign of ``bn_scale`` into ``weight`` (and zeroed the columns whose
    ``bn_scale`` is 0). Per readout head h: the pooled tensor's
    per-column scale (``in_scale_m``, shift ``in_scale_sh``) and the head's scale to
    2^-logit_frac per class (``scale_m``, ``scale_sh``); the heads' biases sum into
    ``readout.bias_fx``.
    """
    for l, L in enumerate(layers, start=1):
        p = f"layer{l}."
        op_step = arrays[p + "operand_step"] if l > 1 else np.ones(L["in_dim"])
        arrays[p + "op_scale_m"], L["op_scale_sh"] = _fx(p + "op_scale_m", fixed_common, op_step)
        step, bits = arrays[p + "pool_step"], arrays[p + "pool_bits"].astype(np.int64)
        # 1 / step as m * 2^-e with e of either sign (a pool entry's step can be far below
        # 2^-15: the entry that the nodes whose features are all 0 take); stored with the
        # aggregation's own shift added, as the one right shift the requantization makes
        inv = 1.0 / step
        e = 15 - np.floor(np.log2(inv)).astype(np.int64)
        arrays[p + "pool_inv_m"] = np.floor(np.ldexp(inv, e) + 0.5).astype(np.int64)
        arrays[p + "pool_inv_sh"] = EPS_FRAC + L["op_scale_sh"] + e
        if np.any(arrays[p + "pool_inv_sh"] < 0):
            raise ValueError(f"field {p + 'pool_inv_sh'!r}: a pool step is too large for the "
                             "aggregation's scale")
        # nearest q_max: node i takes entry k = #{thresholds below max_c V[i, c]}, each
        # threshold the midpoint of two neighbouring ranges in units of 2^-(15 + op_scale_sh)
        q_max = step * ((1 << bits) - 1)
        arrays[p + "pool_threshold"] = np.floor(
            np.ldexp((q_max[:-1] + q_max[1:]) / 2, EPS_FRAC + L["op_scale_sh"])).astype(np.int64)
        scale = np.abs(arrays[p + "bn_scale"])
        live = scale > 0
        if not live.any():
            raise ValueError(f"field {p + 'bn_scale'!r}: every column's batch-norm scale is 0")
        scale = np.where(live, scale, scale[live].max())  # a dead column's weights are 0
        # each column its own shift: batch normalisation's scales and the weight steps
        # spread a layer's output scales over more than a 16-bit mantissa covers (5 decades
        # in a trained PROTEINS model's third layer)
        out_step = arrays[p + "output_step"]
        arrays[p + "out_scale_m"], arrays[p + "out_scale_sh"] = _fx(
            p + "out_scale_m", fixed, scale * arrays[p + "weight_step"] / out_step)
        folded_bias = arrays[p + "bn_scale"] * arrays[p + "bias"] + arrays[p + "bn_shift"]
        arrays[p + "bias_fx"] = np.floor(
            np.ldexp(folded_bias / out_step, arrays[p + "out_scale_sh"]) + 0.5).astype(np.int64)
        # each entry's step as m / 2^sh, the product A * out_scale_m * m taking the bias as
        # bias_fx << sh: sh is capped where that would pass 2^PRODUCT_BITS (a step of 5e-6
        # has sh 33), the mantissa then rounded at 2^-cap
        cap = max(0, PRODUCT_BITS - int(np.abs(arrays[p + "bias_fx"]).max()).bit_length())
        _, scale_sh = _fx(p + "pool_scale_m", fixed, step)
        scale_sh = np.minimum(scale_sh, cap)
        arrays[p + "pool_scale_m"] = np.floor(np.ldexp(step, scale_sh) + 0.5).astype(np.int64)
        arrays[p + "pool_scale_sh"] = scale_sh.astype(np.int64)
    bias = 0.0
    for h, R in enumerate(readout):
        p = f"readout{h}."
        in_step = (np.ones(layers[0]["in_dim"]) if h == 0
                   else arrays[f"layer{h}.output_step"])
        arrays[p + "in_scale_m"], R["in_scale_sh"] = _fx(p + "in_scale_m", fixed_common,
                                                         in_step)
        arrays[p + "scale_m"], arrays[p + "scale_sh"] = _fx(
            p + "scale_m", fixed,
            np.ldexp(arrays[p + "weight_step"], logit_frac - R["in_scale_sh"]))
        bias = bias + arrays[p + "bias"]
    arrays["readout.bias_fx"] = np.floor(np.ldexp(bias, logit_frac) + 0.5).astype(np.int64)
