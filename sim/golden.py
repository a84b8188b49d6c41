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
arithmetic is int64. Before each stage, the largest magnitude it can produce is bounded with
Python integers from the magnitudes of its operands (a sum by the sum of its terms' bounds);
a stage whose bound reaches 2**62 (:data:`INT64_LIMIT`, headroom for the rounding's half) is
refused with :class:`GraphFormatError` naming the layer, the stage and the fields, so that no
value ever wraps. The engine build runs this model first and refuses the same exports.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .annotated_graph import AnnotatedGraph, GraphFormatError
from .fixed_point import clamp, rshift_round

INT64_LIMIT = 1 << 62
#: the bound of a value the engine multiplies a second time (its 49-bit signed operand)
NARROW_LIMIT = 1 << 48


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


def _fits(g: AnnotatedGraph, layer: int, stage: str, fields: str, bound: int) -> None:
    """Refuse ``g`` when layer ``layer``'s ``stage`` can reach ``bound`` >= 2**62."""
    if bound >= INT64_LIMIT:
        raise GraphFormatError(
            f"{g.path}: field {fields!r}: layer {layer}'s {stage} can reach about "
            f"2^{bound.bit_length() - 1}, beyond the integer datapath's 2^62; the values, the "
            "scales or the graph's degrees are too large")


def _max_degree(indptr: np.ndarray) -> int:
    return int(np.diff(indptr).max(initial=0))


def _amax(a) -> int:
    """max |a| as a Python integer (int64's most negative value included)."""
    a = np.asarray(a)
    return max(abs(int(a.max())), abs(int(a.min()))) if a.size else 0


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
        W = a[p + "weight"]
        _fits(g, l, "combination X @ W", p + "weight", _amax(X) * _amax(W) * L["in_dim"])
        A = exact_matmul(X, W)
        op_m, op_sh, op_bits, coef = gcn_operand(g, l, in_m, in_sh)
        qop = (1 << (op_bits - 1)) - 1
        _fits(g, l, "operand product A * s * xw_scale", p + "xw_scale_m",
              _amax(A) * _amax(op_m) * _amax(a[p + "xw_scale_m"]))
        P = clamp(rshift_round(A * op_m[:, None] * a[p + "xw_scale_m"][None, :],
                               op_sh[:, None] + L["xw_scale_sh"]), -qop[:, None], qop[:, None])
        _fits(g, l, "aggregation", "indptr", _amax(P) * _amax(coef) * _max_degree(ip))
        G = neighbour_sum(ip, ix, coef[:, None] * P)
        _fits(g, l, "normalization G * n", "gcn_norm", _amax(G) * _amax(norm))
        T = rshift_round(G * norm[:, None], frac)
        _fits(g, l, "output T * out_scale + bias", p + "bias_fx",
              _amax(T) * _amax(a[p + "out_scale_m"]) + _amax(a[p + "bias_fx"]))
        U = T * a[p + "out_scale_m"][None, :] + a[p + "bias_fx"][None, :]
        outs.update({p + "combination": A, p + "operand": P, p + "aggregation": G,
                     p + "normalized": T, p + "output": U})
        if l == len(layers):
            shift = np.full(n, frac + L["out_scale_sh"], dtype=np.int64)
            return GoldenResult(U, shift, U.argmax(1), outs)
        nxt = f"layer{l + 1}."
        inv_m, inv_sh = a[nxt + "node_inv_m"], a[nxt + "node_inv_sh"]
        _fits(g, l, "requantization U * inv", nxt + "node_inv_m", _amax(U) * _amax(inv_m))
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
        _fits(g, l, "aggregation", "indptr",
              (L["eps_fx"] + (_max_degree(ip) << efrac)) * _amax(P))
        S = L["eps_fx"] * P + (neighbour_sum(ip, ix, P) << efrac)
        inv_m, inv_sh = a[p + "node_inv_m"], a[p + "node_inv_sh"]
        _fits(g, l, "requantization S * op_scale * inv", p + "node_inv_m",
              _amax(S) * _amax(a[p + "op_scale_m"]) * _amax(inv_m))
        hi = (1 << a[p + "node_bits"].astype(np.int64)) - 1
        X = clamp(rshift_round(S * a[p + "op_scale_m"][None, :] * inv_m[:, None],
                               efrac + L["op_scale_sh"] + inv_sh[:, None]), 0, hi[:, None])
        W = a[p + "weight"]
        _fits(g, l, "combination X @ W", p + "weight", _amax(X) * _amax(W) * L["in_dim"])
        A = exact_matmul(X, W)
        s_m, s_sh = a[p + "node_scale_m"], a[p + "node_scale_sh"]
        _fits(g, l, "output A * s * out_scale + (bias << sh)", p + "bias_fx",
              _amax(A) * _amax(s_m) * _amax(a[p + "out_scale_m"])
              + (_amax(a[p + "bias_fx"]) << int(s_sh.max(initial=0))))
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
    return _gcn(g) if g.combine_first else _gin(g)


def accuracy(g: AnnotatedGraph, pred: np.ndarray, mask: str = "test_mask") -> float | None:
    """The fraction of ``mask``'s nodes ``pred`` gets right; None when the mask is empty."""
    m = g[mask]
    return float((pred[m] == g["labels"][m]).mean()) if m.any() else None


def percent(fraction: float | None) -> float | None:
    """A fraction as a percentage rounded to 2 decimals (None stays None: no nodes)."""
    return None if fraction is None else round(100 * fraction, 2)
