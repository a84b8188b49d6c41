"""The golden model of a graph-level export: Nearest-Neighbor selection, GIN layers and the
readout in integers (NumPy only; ``docs/export-format.md`` writes every step down).

Layer l, node i, column c (P: the operand codes, ``x`` for layer 1):

    S = eps_fx * P[i] + 2^15 * sum_{j in N(i)} P[j]          aggregation, exact
    V = S * op_scale_m[c]                                     real: V * 2^-(15 + op_scale_sh)
    M = max_c V[i, c]                                         the node's range, exact
    k = #{t in pool_threshold : M > t}                        nearest pool entry
    X = clamp(rshift_round(V * pool_inv_m[k], pool_inv_sh[k]), 0, 2^pool_bits[k] - 1)
                                                              the node's codes
    A = X @ weight                                            combination, exact
    U = A * out_scale_m[c] * pool_scale_m[k] + (bias_fx[c] << pool_scale_sh[k])
    O = clamp(rshift_round(U, pool_scale_sh[k] + out_scale_sh[c]), 0, 2^output_bits - 1)

O is batch normalisation, ReLU and the output quantizer at once: the next layer's operand and
what the readout pools. The selection compares integers only: the pool's ranges q_k = step_k
* (2^bits_k - 1) are sorted, and node i takes the entry whose range is nearest to its
largest aggregated value, the lower on a tie, so k counts the midpoints
``pool_threshold[k] = floor((q_k + q_(k+1)) / 2 * 2^(15 + op_scale_sh))`` that M exceeds.

Readout, graph g, head h (O_0 = x):

    pooled = sum_{i in g} O_h[i]                              exact
    H = (pooled * in_scale_m) @ readout_weight                exact
    logits = sum_h rshift_round(H * scale_m[c], scale_sh[c]) + bias_fx[c]   (2^-16 units)

Every stage's largest magnitude is bounded with Python integers before it is formed; a stage
that could reach 2^62 is refused naming the layer and the field, so no value wraps. The
products the engine multiplies again, V and A * out_scale_m, must stay below 2^48 (the
operand width of its second multiplication, ``a2q.hw.engine.requantization.NARROW``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .annotated_graph import GraphFormatError
from .fixed_point import clamp, rshift_round
from .golden import (
    INT64_LIMIT,
    NARROW_LIMIT,
    _amax,
    _max_degree,
    exact_matmul,
    neighbour_sum,
)
from .graph_batch import GraphBatchExport


@dataclass
class GraphGoldenResult:
    logits: np.ndarray  # int64 [G, C]: real logits * 2^logit_frac
    predictions: np.ndarray  # int64 [G]
    selections: dict  # layer{l} -> int64 [N]: the pool entry each node took
    layer_outputs: dict  # name -> int64 array: every intermediate integer tensor


def graph_sum(graph_ptr: np.ndarray, values: np.ndarray) -> np.ndarray:
    """out[g] = sum of values[graph_ptr[g]:graph_ptr[g+1]] (exact, int64)."""
    cs = np.zeros((values.shape[0] + 1,) + values.shape[1:], dtype=np.int64)
    np.cumsum(values, axis=0, out=cs[1:])
    return cs[graph_ptr[1:]] - cs[graph_ptr[:-1]]


def nearest_entry(max_value: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """The pool entry of each node: how many thresholds its largest value exceeds."""
    return np.searchsorted(thresholds, max_value, side="left").astype(np.int64)


def head_terms(pooled: np.ndarray, in_scale_m: np.ndarray, weight: np.ndarray,
               scale_m: np.ndarray, scale_sh: np.ndarray) -> np.ndarray:
    """One readout head's terms of each graph: ``rshift_round(((pooled * in_scale_m) @
    weight) * scale_m, scale_sh)`` (int64 [G, C]; the caller bounds it)."""
    H = exact_matmul(pooled * in_scale_m[None, :], weight)
    return rshift_round(H * scale_m[None, :], scale_sh[None, :])


def _fits(g: GraphBatchExport, where: str, stage: str, field: str, bound: int,
          limit: int = INT64_LIMIT) -> None:
    if bound >= limit:
        raise GraphFormatError(
            f"{g.path}: field {field!r}: {where}'s {stage} can reach about "
            f"2^{bound.bit_length() - 1}, beyond the integer datapath's "
            f"2^{limit.bit_length() - 1}; the values, the scales or the graphs' sizes are "
            "too large")


def run_graph_batch(g: GraphBatchExport) -> GraphGoldenResult:
    """Integer inference of every graph of the batch."""
    a = g.arrays
    ip, ix, gp = a["indptr"], a["indices"], a["graph_ptr"]
    efrac = g.manifest["eps_frac"]
    largest_graph = int(np.diff(gp).max(initial=0))

    def pool(values: np.ndarray, head: int) -> np.ndarray:
        _fits(g, f"readout head {head}", "sum pooling", "graph_ptr",
              _amax(values) * largest_graph)
        return graph_sum(gp, values)

    O = a["x"].astype(np.int64)
    outs, selections, pooled = {}, {}, [pool(O, 0)]
    for l, L in enumerate(g.layers, start=1):
        p, at = f"layer{l}.", f"layer {l}"
        _fits(g, at, "aggregation", "indptr",
              (L["eps_fx"] + (_max_degree(ip) << efrac)) * _amax(O))
        S = L["eps_fx"] * O + (neighbour_sum(ip, ix, O) << efrac)
        _fits(g, at, "scaled aggregation S * op_scale", p + "op_scale_m",
              _amax(S) * _amax(a[p + "op_scale_m"]), NARROW_LIMIT)
        V = S * a[p + "op_scale_m"][None, :]
        k = nearest_entry(V.max(axis=1), a[p + "pool_threshold"])
        inv_m, inv_sh = a[p + "pool_inv_m"][k], a[p + "pool_inv_sh"][k]
        _fits(g, at, "requantization V * pool_inv", p + "pool_inv_m",
              _amax(V) * _amax(a[p + "pool_inv_m"]))
        hi = (1 << a[p + "pool_bits"].astype(np.int64)[k]) - 1
        X = clamp(rshift_round(V * inv_m[:, None], inv_sh[:, None]), 0, hi[:, None])
        W = a[p + "weight"]
        _fits(g, at, "combination X @ W", p + "weight", _amax(X) * _amax(W) * L["in_dim"])
        A = exact_matmul(X, W)
        s_m, s_sh = a[p + "pool_scale_m"][k], a[p + "pool_scale_sh"][k]
        _fits(g, at, "output product A * out_scale", p + "out_scale_m",
              _amax(A) * _amax(a[p + "out_scale_m"]), NARROW_LIMIT)
        _fits(g, at, "output A * out_scale * pool_scale + (bias << pool_scale_sh)",
              p + "bias_fx", _amax(A) * _amax(a[p + "out_scale_m"]) * _amax(a[p + "pool_scale_m"])
              + (_amax(a[p + "bias_fx"]) << int(a[p + "pool_scale_sh"].max())))
        U = (A * a[p + "out_scale_m"][None, :]) * s_m[:, None] + (
            a[p + "bias_fx"][None, :] << s_sh[:, None])
        O = clamp(rshift_round(U, s_sh[:, None] + a[p + "out_scale_sh"][None, :]), 0,
                  (1 << L["output_bits"]) - 1)
        selections[f"layer{l}"] = k
        outs.update({p + "aggregation": S, p + "input": X, p + "combination": A,
                     p + "output": O})
        pooled.append(pool(O, l))
    logits = a["readout.bias_fx"][None, :].repeat(g.num_graphs, axis=0)
    bound = _amax(a["readout.bias_fx"])
    for h, (R, P) in enumerate(zip(g.manifest["readout"], pooled)):
        p, at = f"readout{h}.", f"readout head {h}"
        _fits(g, at, "head product", p + "weight",
              _amax(P) * _amax(a[p + "in_scale_m"]) * _amax(a[p + "weight"]) * P.shape[1])
        _fits(g, at, "head scale H * scale", p + "scale_m",
              _amax(P) * _amax(a[p + "in_scale_m"]) * _amax(a[p + "weight"]) * P.shape[1]
              * _amax(a[p + "scale_m"]))
        term = head_terms(P, a[p + "in_scale_m"], a[p + "weight"], a[p + "scale_m"],
                          a[p + "scale_sh"])
        bound += _amax(term)
        _fits(g, at, "logit sum", "readout.bias_fx", bound)
        logits = logits + term
        outs[p + "pooled"] = P
    outs["logits"] = logits
    return GraphGoldenResult(logits, logits.argmax(axis=1), selections, outs)


def graph_accuracy(g: GraphBatchExport, pred: np.ndarray) -> float:
    """The fraction of the batch's graphs ``pred`` classifies right."""
    return float((pred == g["labels"]).mean())
