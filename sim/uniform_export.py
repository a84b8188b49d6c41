"""The same trained model re-exported with every quantized feature tensor at uniform bits.

Each per-node input and each aggregation operand (per column or per node) keeps its clipping
range (``step * q_max``) and is re-quantized at ``bits``: ``step' = step * q_max(old bits) / q_max(bits)`` (unsigned
per-node codes: ``q_max = 2^b - 1``; the signed operand XW of GCN and GIN-0 ``2^(b-1) - 1``; GIN's unsigned
operand ``2^b - 1``), and every fixed-point constant is derived again
(:func:`a2q.sim.export_constants.derive_constants`). Layer 1's raw input keeps its own bits
unless ``input_bits`` asks for more: its codes are unchanged and paid for at ``input_bits``
(one cycle per bit-plane), as an engine that treats every tensor alike (Degree-Quant INT4)
would run a binary bag-of-words input; the engine's ``x`` keeps the codes at the width they
need, and the planes above read zeros. An input already wider keeps its width (narrowing
would change the model). The engine runs the re-export with the same hardware: the speedup of
A²Q is then measured, not modelled.
"""

from __future__ import annotations

import copy

import numpy as np

from .annotated_graph import AnnotatedGraph, GraphFormatError
from .export_constants import derive_constants, derive_graph_constants
from .graph_batch import GraphBatchExport


def _manifest_at(manifest: dict, bits: int, input_bits: int | None) -> dict:
    """A copy of ``manifest`` with the input paid at ``max(its bits, input_bits)``; ``bits``
    and ``input_bits`` checked (1..8)."""
    for name, v in (("uniform bits", bits), ("input bits", input_bits)):
        if v is not None and (not isinstance(v, int) or not 1 <= v <= 8):
            raise ValueError(f"{name} must be 1..8, got {v!r}")
    man = copy.deepcopy(manifest)
    if input_bits is not None:
        man["input_bits"] = max(man["input_bits"], input_bits)
    return man


def uniform_variant(g: AnnotatedGraph, bits: int, *,
                    input_bits: int | None = None) -> AnnotatedGraph:
    """``g`` with every per-node input and operand at ``bits`` (1..8) and the layer-1 input
    stored at ``max(its bits, input_bits)``, in memory."""
    man = _manifest_at(g.manifest, bits, input_bits)
    arrays = dict(g.arrays)
    gcn = g.combine_first  # the operand is XW, signed
    for l, L in enumerate(man["layers"], start=1):
        p = f"layer{l}."
        if L["per_node_input"]:
            old = arrays[p + "node_bits"].astype(np.int64)
            arrays[p + "node_step"] = arrays[p + "node_step"] * ((2.0 ** old - 1) / (2 ** bits - 1))
            arrays[p + "node_bits"] = np.full_like(arrays[p + "node_bits"], bits)
        if L["operand_bits"]:
            if gcn and bits < 2:
                raise ValueError("a signed operand (XW) needs at least 2 bits")
            def qmax(b):
                return 2 ** (b - 1) - 1 if gcn else 2 ** b - 1
            if L["per_node_operand"]:  # each node's range kept, at the same bits
                old = arrays[p + "node_op_bits"].astype(np.int64)
                arrays[p + "node_op_step"] = arrays[p + "node_op_step"] * (qmax(old) / qmax(bits))
                arrays[p + "node_op_bits"] = np.full_like(arrays[p + "node_op_bits"], bits)
            else:
                arrays[p + "operand_step"] = arrays[p + "operand_step"] * (
                    qmax(L["operand_bits"]) / qmax(bits))
            L["operand_bits"] = bits
    try:
        derive_constants(g.model, man["order"], man["layers"], arrays)
    except ValueError as exc:
        raise GraphFormatError(f"{g.path}: cannot re-export at {bits} bits: {exc}") from None
    wide = "" if man["input_bits"] == g.manifest["input_bits"] else f"-input{man['input_bits']}"
    man["method"] = f"uniform{bits}{wide}-of-{g.manifest.get('method')}"
    return AnnotatedGraph(g.path, man, arrays)


def graph_uniform_variant(g: GraphBatchExport, bits: int, *,
                          input_bits: int | None = None) -> GraphBatchExport:
    """A graph-level export with every quantized feature tensor at ``bits`` (1..8), as a
    uniform-bit engine runs it: each layer's pool becomes one entry whose range is the
    pool's widest (every node then takes it: the selection chooses nothing), at ``bits``;
    each layer's output codes keep their range at ``bits`` (``output_step`` scaled by
    ``(2^output_bits - 1) / (2^bits - 1)``); the input is paid at ``max(its bits,
    input_bits)``, as :func:`uniform_variant`. In memory."""
    man = _manifest_at(g.manifest, bits, input_bits)
    arrays = dict(g.arrays)
    n = g.num_nodes
    for l, L in enumerate(man["layers"], start=1):
        p = f"layer{l}."
        q_max = arrays[p + "pool_step"] * ((1 << arrays[p + "pool_bits"].astype(np.int64)) - 1)
        arrays[p + "pool_step"] = np.array([q_max.max() / ((1 << bits) - 1)])
        arrays[p + "pool_bits"] = np.array([bits], dtype=np.uint8)
        arrays[p + "reference_selection"] = np.zeros(n, dtype=np.int64)
        arrays[p + "output_step"] = arrays[p + "output_step"] * (
            ((1 << L["output_bits"]) - 1) / ((1 << bits) - 1))
        L.update(pool_size=1, output_bits=bits)
        if l > 1:
            arrays[p + "operand_step"] = arrays[f"layer{l - 1}.output_step"]
            L["operand_bits"] = bits
    try:
        derive_graph_constants(man["layers"], man["readout"], arrays,
                               logit_frac=man["logit_frac"])
    except ValueError as exc:
        raise GraphFormatError(f"{g.path}: cannot re-export at {bits} bits: {exc}") from None
    wide = "" if man["input_bits"] == g.manifest["input_bits"] else f"-input{man['input_bits']}"
    man["method"] = f"uniform{bits}{wide}-of-{g.manifest.get('method')}"
    return GraphBatchExport(g.path, man, arrays)
