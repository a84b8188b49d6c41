"""The fixed-point constants of an export, derived from its real-valued steps and biases.

One definition for every writer of the format (``a2q export``, the uniform-bit re-export, the
tests' random exports): given each layer's ``weight_step``, ``bias``, ``operand_step`` (where
the operand is quantized) and ``node_step`` (where the input has per-node bits), it sets the
mantissa/shift pairs and fixed-point biases that ``docs/export-format.md`` lists (GIN's
``eps_fx`` is the writer's). NumPy only.
"""

from __future__ import annotations

import numpy as np

from .annotated_graph import NORM_FRAC
from .fixed_point import fixed, fixed_common


def derive_constants(model: str, layers: list[dict], arrays: dict) -> None:
    """Fill ``arrays`` and each ``layers[l]`` in place with the derived constants."""
    gcn = model == "gcn"
    for l, L in enumerate(layers, start=1):
        p = f"layer{l}."
        w_step, bias = arrays[p + "weight_step"], arrays[p + "bias"]
        if L["per_node_input"]:
            step = arrays[p + "node_step"]
            arrays[p + "node_scale_m"], arrays[p + "node_scale_sh"] = fixed(step)
            arrays[p + "node_inv_m"], arrays[p + "node_inv_sh"] = fixed(1.0 / step)
        op_step = (arrays[p + "operand_step"] if L["operand_bits"]
                   else np.ones(L["in_dim"]))
        if gcn:
            arrays[p + "xw_scale_m"], L["xw_scale_sh"] = fixed_common(w_step / op_step)
            arrays[p + "out_scale_m"], L["out_scale_sh"] = fixed_common(op_step)
            arrays[p + "bias_fx"] = np.floor(
                bias * 2.0 ** (NORM_FRAC + L["out_scale_sh"]) + 0.5).astype(np.int64)
        else:
            arrays[p + "op_scale_m"], L["op_scale_sh"] = fixed_common(op_step)
            nxt = (arrays[f"layer{l + 1}.operand_step"] if l < len(layers)
                   else np.ones(L["out_dim"]))
            arrays[p + "out_scale_m"], L["out_scale_sh"] = fixed_common(w_step / nxt)
            arrays[p + "bias_fx"] = np.floor(
                bias / nxt * 2.0 ** L["out_scale_sh"] + 0.5).astype(np.int64)
