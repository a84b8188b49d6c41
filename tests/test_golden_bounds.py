"""The golden model's integer bounds: every stage at its extremes is computed exactly (compared
with Python integers, which do not overflow) or refused with one line naming the stage; never
a wrapped value. The reference below is the arithmetic of docs/export-format.md written again
with Python integers, row by row."""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from a2q.sim import golden
from a2q.sim.annotated_graph import GraphFormatError

from .engine_cases import in_memory
from .sim_exports import random_export

FUZZ = int(os.environ.get("A2Q_FUZZ_EXAMPLES", "40"))


def rshift(t: int, s: int) -> int:
    """round half away from zero of t / 2**s, Python integers."""
    if s == 0:
        return t
    mag = (abs(t) + (1 << (s - 1))) >> s
    return -mag if t < 0 else mag


def clamp(v: int, lo: int, hi: int) -> int:
    return min(max(v, lo), hi)


def reference(g) -> dict:
    """Every layer output of the golden model, as nested lists of Python integers."""
    a, man = g.arrays, g.manifest
    n = man["num_nodes"]
    ip, ix = [int(v) for v in a["indptr"]], [int(v) for v in a["indices"]]
    rows = [ix[ip[i]:ip[i + 1]] for i in range(n)]
    X = [[int(v) for v in r] for r in a["x"]]
    col = lambda name: [int(v) for v in a[name]]
    out = {}
    if man["model"] == "gcn":
        in_m, in_sh = [1 << 15] * n, [15] * n
        for l, L in enumerate(man["layers"], start=1):
            p = f"layer{l}."
            W = [[int(v) for v in r] for r in a[p + "weight"]]
            fo = L["out_dim"]
            if L["per_node_input"]:
                in_m, in_sh = col(p + "node_scale_m"), col(p + "node_scale_sh")
            if L["per_node_operand"]:
                op_m, op_sh = col(p + "node_op_m"), col(p + "node_op_sh")
                bits, coef = col(p + "node_op_bits"), col(p + "op_coef")
            else:
                op_m, op_sh = in_m, in_sh
                bits, coef = [L["operand_bits"]] * n, col("gcn_norm")
            xw_m, norm = col(p + "xw_scale_m"), col("gcn_norm")
            A = [[sum(X[i][k] * W[k][c] for k in range(L["in_dim"])) for c in range(fo)]
                 for i in range(n)]
            P = []
            for i in range(n):
                q = (1 << (bits[i] - 1)) - 1
                P.append([clamp(rshift(A[i][c] * op_m[i] * xw_m[c], op_sh[i] + L["xw_scale_sh"]),
                                -q, q) for c in range(fo)])
            G = [[sum(coef[j] * P[j][c] for j in rows[i]) for c in range(fo)] for i in range(n)]
            T = [[rshift(G[i][c] * norm[i], 15) for c in range(fo)] for i in range(n)]
            out_m, bias = col(p + "out_scale_m"), col(p + "bias_fx")
            U = [[T[i][c] * out_m[c] + bias[c] for c in range(fo)] for i in range(n)]
            out.update({p + "combination": A, p + "operand": P, p + "aggregation": G,
                        p + "normalized": T, p + "output": U})
            if l == len(man["layers"]):
                return out
            nxt = f"layer{l + 1}."
            inv_m, inv_sh, nb = col(nxt + "node_inv_m"), col(nxt + "node_inv_sh"), col(
                nxt + "node_bits")
            X = [[clamp(rshift(U[i][c] * inv_m[i], 15 + L["out_scale_sh"] + inv_sh[i]), 0,
                        (1 << nb[i]) - 1) for c in range(fo)] for i in range(n)]
            out[nxt + "input"] = X
    P = X
    for l, L in enumerate(man["layers"], start=1):
        p = f"layer{l}."
        fi, fo = L["in_dim"], L["out_dim"]
        W = [[int(v) for v in r] for r in a[p + "weight"]]
        S = [[L["eps_fx"] * P[i][c] + (sum(P[j][c] for j in rows[i]) << 15) for c in range(fi)]
             for i in range(n)]
        op_m, inv_m, inv_sh = col(p + "op_scale_m"), col(p + "node_inv_m"), col(p + "node_inv_sh")
        nb = col(p + "node_bits")
        Xl = [[clamp(rshift(S[i][c] * op_m[c] * inv_m[i], 15 + L["op_scale_sh"] + inv_sh[i]), 0,
                     (1 << nb[i]) - 1) for c in range(fi)] for i in range(n)]
        A = [[sum(Xl[i][k] * W[k][c] for k in range(fi)) for c in range(fo)] for i in range(n)]
        s_m, s_sh = col(p + "node_scale_m"), col(p + "node_scale_sh")
        out_m, bias = col(p + "out_scale_m"), col(p + "bias_fx")
        V = [[A[i][c] * s_m[i] * out_m[c] + (bias[c] << s_sh[i]) for c in range(fo)]
             for i in range(n)]
        out.update({p + "aggregation": S, p + "input": Xl, p + "combination": A,
                    p + "output": V})
        if l == len(man["layers"]):
            return out
        q = (1 << man["layers"][l]["operand_bits"]) - 1
        P = [[clamp(rshift(V[i][c], s_sh[i] + L["out_scale_sh"]), 0, q) for c in range(fo)]
             for i in range(n)]
        out[f"layer{l + 1}.operand"] = P
    raise AssertionError("unreachable")


def exact_or_refused(g) -> bool:
    """True if computed (and then equal to the reference at every stage), False if refused."""
    try:
        res = golden.run(g)
    except GraphFormatError as exc:
        assert "beyond the integer datapath's 2^62" in str(exc) and "layer " in str(exc)
        return False
    ref = reference(g)
    assert set(res.layer_outputs) == set(ref)
    for name, want in ref.items():
        got = res.layer_outputs[name]
        assert [[int(v) for v in r] for r in got] == want, name
    return True


def extreme(model: str, *, seed: int = 0, node_operand: bool = False, n: int = 9,
            hub: bool = True, bias_exp: int = 20, shift: int | None = None,
            bias_layers=(1, 2)):
    """An export at the format's extremes: 8-bit input codes all at their maximum, 8-bit
    weights at +-127, every mantissa 2^16, GIN's eps at its largest, one node that every
    other node feeds (``hub``), biases of magnitude 2^``bias_exp`` in ``bias_layers`` (2^4 in
    the others), node shifts ``shift``."""
    rng = np.random.default_rng(seed)
    man, arr = random_export(rng, model, n=n, f0=7, hidden=5, classes=3,
                             node_operand=node_operand)
    man["input_bits"] = 8
    arr["x"][:] = 255
    if hub:
        src = np.concatenate([np.arange(1, n), np.arange(n)] if model == "gcn" else
                             [np.arange(1, n)])
        dst = np.concatenate([np.zeros(n - 1, int), np.arange(n)] if model == "gcn" else
                             [np.zeros(n - 1, int)])
        order = np.lexsort((src, dst))
        arr["indices"] = src[order].astype(np.int64)
        arr["indptr"] = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(dst, minlength=n), out=arr["indptr"][1:])
        man["num_edges"] = int(arr["indices"].size)
        if model == "gcn":
            arr["gcn_norm"][:] = 1 << 15
    for l, L in enumerate(man["layers"], start=1):
        p = f"layer{l}."
        L["weight_bits"] = 8
        arr[p + "weight"] = np.where(rng.random(arr[p + "weight"].shape) < 0.5, -127,
                                     127).astype(np.int8)
        for k in list(arr):
            if k.startswith(p) and k.endswith("_m"):
                arr[k] = np.full_like(arr[k], 1 << 16)
            if shift is not None and k.startswith(p) and k.endswith(("node_scale_sh",
                                                                     "node_inv_sh")):
                arr[k] = np.full_like(arr[k], shift)
            if k.startswith(p) and k.endswith(("node_bits", "node_op_bits")):
                arr[k] = np.full_like(arr[k], 8)
        if L.get("operand_bits"):
            L["operand_bits"] = 8
        if p + "op_coef" in arr:
            arr[p + "op_coef"][:] = 1 << 15
        if model == "gin":
            L["eps_fx"] = 1 << 20
        sign = np.where(np.arange(L["out_dim"]) % 2 == 0, 1, -1)
        exp = bias_exp if l in bias_layers else 4
        magnitude = (1 << exp) if exp < 63 else (1 << 63) - 1
        arr[p + "bias_fx"] = np.where(sign > 0, magnitude, -magnitude).astype(np.int64)
    return in_memory(man, arr)


@pytest.mark.parametrize("model, node_operand", [("gcn", False), ("gcn", True), ("gin", False)])
def test_every_stage_at_the_formats_extremes_is_exact(model, node_operand):
    """The largest codes, weights, mantissas, eps and degree the format allows, at a size a
    test can hold: every stage computed, and equal to Python's integers."""
    assert exact_or_refused(extreme(model, node_operand=node_operand))


@pytest.mark.parametrize("layer", [1, 2])
@pytest.mark.parametrize("model, node_operand", [("gcn", False), ("gcn", True), ("gin", False)])
def test_the_bias_stages_up_to_their_limit(model, node_operand, layer):
    """One layer's biases of 2^0 .. 2^63 (GIN's shifted by 14): exact up to the largest the
    bounds admit, then refused naming that layer's output or requantization; both happen,
    and the last one computed carries values of 2^44 or more (GCN's requantization
    multiplies them by 2^16, GIN's output shifts its bias by 14: within a factor 4 of
    2^62)."""
    def export(exp):
        return extreme(model, node_operand=node_operand, bias_exp=exp, bias_layers=(layer,),
                       shift=None if model == "gcn" else 14)
    computed, refused = [], []
    for exp in range(64):
        (computed if exact_or_refused(export(exp)) else refused).append(exp)
    assert computed and refused and max(computed) < min(refused)
    top = max(int(np.abs(v).max()) for v in golden.run(export(max(computed))).layer_outputs.values())
    assert top >= 1 << 44
    with pytest.raises(GraphFormatError, match=rf"layer {layer}'s (output|requantization)"):
        golden.run(export(min(refused)))


@settings(max_examples=FUZZ, deadline=None, suppress_health_check=list(HealthCheck))
@given(model=st.sampled_from(["gcn", "gcn-node", "gin"]), seed=st.integers(0, 2 ** 16),
       bias_exp=st.integers(0, 63), shift=st.one_of(st.none(), st.integers(0, 62)),
       hub=st.booleans(), n=st.integers(2, 12),
       bias_layers=st.sampled_from([(1,), (2,), (1, 2)]))
def test_any_extreme_is_exact_or_refused(model, seed, bias_exp, shift, hub, n, bias_layers):
    g = extreme(model.split("-")[0], node_operand=model.endswith("node"), seed=seed, n=n,
                hub=hub, bias_exp=bias_exp, shift=shift, bias_layers=bias_layers)
    exact_or_refused(g)
