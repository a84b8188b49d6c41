"""The same trained model re-exported with every quantized feature tensor at uniform bits.

Each per-node input and each aggregation operand keeps its clipping range (``step * q_max``)
and is re-quantized at ``bits``: ``step' = step * q_max(old bits) / q_max(bits)`` (unsigned
per-node codes: ``q_max = 2^b - 1``; GCN's signed operand ``2^(b-1) - 1``; GIN's unsigned
operand ``2^b - 1``), and every fixed-point constant is derived again
(:func:`a2q.sim.export_constants.derive_constants`). Layer 1's raw input keeps its own bits.
The engine runs it with the same hardware: the speedup of A²Q is then measured, not modelled.
"""

from __future__ import annotations

import copy

import numpy as np

from .annotated_graph import AnnotatedGraph, GraphFormatError
from .export_constants import derive_constants


def uniform_variant(g: AnnotatedGraph, bits: int) -> AnnotatedGraph:
    """``g`` with every per-node input and operand at ``bits`` (1..8), in memory."""
    if not isinstance(bits, int) or not 1 <= bits <= 8:
        raise ValueError(f"uniform bits must be 1..8, got {bits!r}")
    man = copy.deepcopy(g.manifest)
    arrays = dict(g.arrays)
    gcn = g.model == "gcn"
    for l, L in enumerate(man["layers"], start=1):
        p = f"layer{l}."
        if L["per_node_input"]:
            old = arrays[p + "node_bits"].astype(np.int64)
            arrays[p + "node_step"] = arrays[p + "node_step"] * ((2.0 ** old - 1) / (2 ** bits - 1))
            arrays[p + "node_bits"] = np.full_like(arrays[p + "node_bits"], bits)
        if L["operand_bits"]:
            if gcn and bits < 2:
                raise ValueError("GCN's signed operand needs at least 2 bits")
            def qmax(b):
                return 2 ** (b - 1) - 1 if gcn else 2 ** b - 1
            arrays[p + "operand_step"] = arrays[p + "operand_step"] * (
                qmax(L["operand_bits"]) / qmax(bits))
            L["operand_bits"] = bits
    try:
        derive_constants(g.model, man["layers"], arrays)
    except ValueError as exc:
        raise GraphFormatError(f"{g.path}: cannot re-export at {bits} bits: {exc}") from None
    man["method"] = f"uniform{bits}-of-{g.manifest.get('method')}"
    return AnnotatedGraph(g.path, man, arrays)
