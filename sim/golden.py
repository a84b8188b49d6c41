"""The golden model: the integer datapath of the hardware, from an export alone (NumPy only).

Every step is written down in ``docs/export-format.md``; in short, for GCN layer l

    A  = X @ W                                              combination, exact
    P  = clamp(rshift_round(A * s_i * r_c), -Qop, Qop)       operand (XW) requantization
    G  = sum_{j in N(i) + i} n_j * P_j                      aggregation, exact

(with per-node operand bits: ``s_i`` the node's input step over its operand step, ``Qop`` the
node's, and ``n_j`` the normalisation times the source's operand step, ``op_coef``)
    T  = rshift_round(G * n_i, 15)                          GCN normalisation
    U  = T * o_c + bias_c                                   output, common scale per layer
    X' = clamp(rshift_round(U * inv_i), 0, 2^b_i - 1)       next layer's per-node codes

and for GIN layer l

    S  = e * P_i + 2^15 * sum_{j in N(i)} P_j               aggregation (1 + eps), exact
    X  = clamp(rshift_round(S * o_c * inv_i), 0, 2^b_i - 1)  per-node codes
    A  = X @ W                                              combination, exact
    V  = A * s_i * r_c + (bias_c << sh(s_i))                 output
    P' = clamp(rshift_round(V), 0, Qop')                     next layer's operand codes

where each real constant is a 16-bit mantissa with a shift (``a2q.sim.fixed_point``). All
arithmetic is int64; :func:`run` refuses a model whose worst case would not fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .annotated_graph import AnnotatedGraph, GraphFormatError
from .fixed_point import clamp, rshift_round

INT64_LIMIT = 1 << 62


@dataclass
class GoldenResult:
    logits: np.ndarray  # int64 [N, C]; per row one common scale (argmax is meaningful)
    logit_shift: np.ndarray  # int64 [N]: logits[i] * 2**-logit_shift[i] approximates the real
    predictions: np.ndarray  # int64 [N]
    layer_outputs: dict  # name -> int64 array: every intermediate integer tensor


def neighbour_sum(indptr: np.ndarray, indices: np.ndarray, values: np.ndarray) -> np.ndarray:
    """out[i] = sum of values[j] over j in indices[indptr[i]:indptr[i+1]] (exact, int64)."""
    gathered = values[indices]
    cs = np.zeros((gathered.shape[0] + 1,) + gathered.shape[1:], dtype=np.int64)
    np.cumsum(gathered, axis=0, out=cs[1:])
    return cs[indptr[1:]] - cs[indptr[:-1]]


def exact_matmul(X: np.ndarray, W: np.ndarray) -> np.ndarray:
    """X @ W for integer matrices, exact: through float64 (BLAS) when every partial sum stays
    below 2**53, else in int64."""
    if _amax(X) * _amax(W) * X.shape[1] < (1 << 53):
        return (X.astype(np.float64) @ W.astype(np.float64)).astype(np.int64)
    return X.astype(np.int64) @ W.astype(np.int64)


def _bound(*maxima) -> None:
    prod = 1
    for m in maxima:
        prod *= int(m)
    if prod >= INT64_LIMIT:
        raise GraphFormatError(f"an intermediate product can reach {prod:.3e}, beyond int64; "
                               "the graph's degrees or the scales are too large for this datapath")


def _amax(a) -> int:
    return int(np.abs(np.asarray(a, dtype=np.int64)).max()) if np.size(a) else 0


def _gcn(g: AnnotatedGraph) -> GoldenResult:
    a, layers, n = g.arrays, g.layers, g.num_nodes
    ip, ix, norm = a["indptr"], a["indices"], a["gcn_norm"]
    frac = g.manifest["norm_frac"]
    X = a["x"].astype(np.int64)
    in_m = np.full(n, 1 << 15, dtype=np.int64)  # layer 1: raw integer input, step 1
    in_sh = np.full(n, 15, dtype=np.int64)
    outs = {}
    for l, L in enumerate(layers, start=1):
        p = f"layer{l}."
        if L["per_node_input"]:
            in_m, in_sh = a[p + "node_scale_m"], a[p + "node_scale_sh"]
        A = exact_matmul(X, a[p + "weight"])
        op_m, op_sh, op_bits, coef = gcn_operand(g, l, in_m, in_sh)
        qop = (1 << (op_bits - 1)) - 1
        _bound(_amax(A), _amax(op_m), _amax(a[p + "xw_scale_m"]))
        P = clamp(rshift_round(A * op_m[:, None] * a[p + "xw_scale_m"][None, :],
                               op_sh[:, None] + L["xw_scale_sh"]), -qop[:, None], qop[:, None])
        _bound(_amax(P), _amax(coef), int(np.diff(ip).max(initial=1)))
        G = neighbour_sum(ip, ix, coef[:, None] * P)
        _bound(_amax(G), _amax(norm))
        T = rshift_round(G * norm[:, None], frac)
        _bound(_amax(T), _amax(a[p + "out_scale_m"]))
        U = T * a[p + "out_scale_m"][None, :] + a[p + "bias_fx"][None, :]
        outs.update({p + "combination": A, p + "operand": P, p + "aggregation": G,
                     p + "normalized": T, p + "output": U})
        if l == len(layers):
            shift = np.full(n, frac + L["out_scale_sh"], dtype=np.int64)
            return GoldenResult(U, shift, U.argmax(1), outs)
        nxt = f"layer{l + 1}."
        inv_m, inv_sh = a[nxt + "node_inv_m"], a[nxt + "node_inv_sh"]
        _bound(_amax(U), _amax(inv_m))
        hi = (1 << a[nxt + "node_bits"].astype(np.int64)) - 1
        X = clamp(rshift_round(U * inv_m[:, None], frac + L["out_scale_sh"] + inv_sh[:, None]),
                  0, hi[:, None])
        outs[nxt + "input"] = X
    raise AssertionError("unreachable")


def gcn_operand(g: AnnotatedGraph, l: int, in_m: np.ndarray, in_sh: np.ndarray):
    """GCN layer ``l``'s operand, either way it is quantized: per node, the mantissa and shift
    that scale A into operand units (with the column's ``xw_scale``), the operand's signed
    bits and the coefficient its aggregation weighs the node's operand by (int64 [N] each).
    Per column: the layer's input scale (``in_m``, ``in_sh``), ``operand_bits`` and
    ``gcn_norm``; per node: ``node_op_m``, ``node_op_sh``, ``node_op_bits`` and ``op_coef``."""
    L, a, p = g.layers[l - 1], g.arrays, f"layer{l}."
    if L["per_node_operand"]:
        return (a[p + "node_op_m"], a[p + "node_op_sh"],
                a[p + "node_op_bits"].astype(np.int64), a[p + "op_coef"])
    bits = np.full(g.num_nodes, L["operand_bits"], dtype=np.int64)
    return in_m, in_sh, bits, a["gcn_norm"]


def _gin(g: AnnotatedGraph) -> GoldenResult:
    a, layers = g.arrays, g.layers
    ip, ix = a["indptr"], a["indices"]
    efrac = g.manifest["eps_frac"]
    P = a["x"].astype(np.int64)
    outs = {}
    for l, L in enumerate(layers, start=1):
        p = f"layer{l}."
        S = L["eps_fx"] * P + (neighbour_sum(ip, ix, P) << efrac)
        inv_m, inv_sh = a[p + "node_inv_m"], a[p + "node_inv_sh"]
        _bound(_amax(S), _amax(a[p + "op_scale_m"]), _amax(inv_m))
        hi = (1 << a[p + "node_bits"].astype(np.int64)) - 1
        X = clamp(rshift_round(S * a[p + "op_scale_m"][None, :] * inv_m[:, None],
                               efrac + L["op_scale_sh"] + inv_sh[:, None]), 0, hi[:, None])
        A = exact_matmul(X, a[p + "weight"])
        s_m, s_sh = a[p + "node_scale_m"], a[p + "node_scale_sh"]
        _bound(_amax(A), _amax(s_m), _amax(a[p + "out_scale_m"]))
        _bound(_amax(a[p + "bias_fx"]), 1 << int(s_sh.max()))
        V = A * s_m[:, None] * a[p + "out_scale_m"][None, :] + (
            a[p + "bias_fx"][None, :] << s_sh[:, None])
        outs.update({p + "aggregation": S, p + "input": X, p + "combination": A,
                     p + "output": V})
        shift = s_sh + L["out_scale_sh"]
        if l == len(layers):
            return GoldenResult(V, shift, V.argmax(1), outs)
        nxt = layers[l]
        qop = (1 << nxt["operand_bits"]) - 1  # unsigned: post-ReLU
        P = clamp(rshift_round(V, shift[:, None]), 0, qop)
        outs[f"layer{l + 1}.operand"] = P
    raise AssertionError("unreachable")


def run(g: AnnotatedGraph) -> GoldenResult:
    """Integer inference of the whole exported model."""
    return _gcn(g) if g.model == "gcn" else _gin(g)


def accuracy(g: AnnotatedGraph, pred: np.ndarray, mask: str = "test_mask") -> float:
    m = g[mask]
    return float((pred[m] == g["labels"][m]).mean()) if m.any() else float("nan")
