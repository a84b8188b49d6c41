"""Case generators for the RTL regression of the bit-serial units (pytest and ``make regress``)."""

from __future__ import annotations

import numpy as np

#: Unit parameters of the regression models (one simulator build each, reused by every case).
COMBINATION = {"in_features": 12, "lanes": 4, "weight_bits": 4, "max_bits": 8}
AGGREGATION = {"columns": 6, "lanes": 4, "max_bits": 8, "max_nodes": 40, "max_edges": 200}


def features(rng, bits, width, signed_input):
    lo = [-(1 << (b - 1)) if signed_input else 0 for b in bits]
    hi = [(1 << (b - 1)) if signed_input else (1 << b) for b in bits]
    return np.array([rng.integers(lo[i], hi[i], width) for i in range(len(bits))],
                    dtype=np.int64).reshape(len(bits), width)


def random_combination(rng, signed_input: bool) -> dict:
    f, maxb = COMBINATION["in_features"], COMBINATION["max_bits"]
    n = int(rng.integers(1, 12))
    bits = rng.integers(1, maxb + 1, n)
    w = rng.integers(-8, 8, (f, int(rng.integers(1, 3 * COMBINATION["lanes"] + 1))))
    return {"x": features(rng, bits, f, signed_input), "bits": bits, "w": w}


def directed_combination(signed_input: bool) -> list[dict]:
    f, maxb = COMBINATION["in_features"], COMBINATION["max_bits"]
    top = (1 << (maxb - 1)) - 1 if signed_input else (1 << maxb) - 1
    low = -(1 << (maxb - 1)) if signed_input else 0
    one_bit = -1 if signed_input else 1
    w_neg = np.full((f, 5), -8)
    w_mix = np.where(np.arange(f)[:, None] % 2 == 0, -8, 7) * np.ones((1, 4), dtype=np.int64)
    return [
        {"x": np.full((1, f), top), "bits": np.array([maxb]), "w": w_neg},  # single node
        {"x": np.array([[top] * f, [one_bit] * f, [low] * f, [0] * f]),
         "bits": np.array([maxb, 1, maxb, 1]), "w": w_neg},  # 1-bit and max-bit nodes
        {"x": np.full((3, f), low), "bits": np.full(3, maxb), "w": w_mix},
        {"x": np.full((2, f), top), "bits": np.full(2, maxb), "w": np.full((f, 4), 7)},
    ]


def random_aggregation(rng, signed_input: bool) -> dict:
    p = AGGREGATION
    n = int(rng.integers(1, p["max_nodes"] + 1))
    deg = rng.integers(0, 8, n)
    while deg.sum() > p["max_edges"]:
        deg = deg // 2
    indptr = np.concatenate([[0], np.cumsum(deg)]).astype(np.int64)
    bits = rng.integers(1, p["max_bits"] + 1, n)
    d = int(rng.integers(1, p["columns"] + 1))
    return {"indptr": indptr, "indices": rng.integers(0, n, int(indptr[-1])),
            "x": features(rng, bits, d, signed_input), "bits": bits}


def directed_aggregation(signed_input: bool) -> list[dict]:
    p = AGGREGATION
    maxb, d = p["max_bits"], p["columns"]
    top = (1 << (maxb - 1)) - 1 if signed_input else (1 << maxb) - 1
    low = -(1 << (maxb - 1)) if signed_input else 0
    n = p["max_nodes"]
    bits = np.where(np.arange(n) % 2 == 0, maxb, 1)
    x = np.where(np.arange(n)[:, None] % 2 == 0, top if not signed_input else low,
                 -1 if signed_input else 1) * np.ones((1, d), dtype=np.int64)
    # node 0 takes every edge (maximum degree, all extreme values), node 1 none, the rest none.
    full = np.concatenate([[0, p["max_edges"]], np.full(n - 1, p["max_edges"])])
    return [
        {"indptr": np.array([0, 1]), "indices": np.array([0]), "x": np.full((1, d), top),
         "bits": np.array([maxb])},  # a single node, its own neighbour
        {"indptr": np.array([0, 0, 3, 3]), "indices": np.array([1, 1, 1]),
         "x": np.array([[0] * d, [top] * d, [low] * d]), "bits": np.array([1, maxb, maxb])},
        {"indptr": full, "indices": np.arange(p["max_edges"]) % n, "x": x, "bits": bits},
        {"indptr": np.zeros(4, dtype=np.int64), "indices": np.zeros(0, dtype=np.int64),
         "x": np.full((3, d), top), "bits": np.full(3, maxb)},  # no edges at all
    ]


def expected(kind: str, case: dict) -> np.ndarray:
    if kind == "combination":
        return case["x"].astype(np.int64) @ case["w"].astype(np.int64)
    x, ip, ix = case["x"].astype(np.int64), case["indptr"], case["indices"]
    return np.stack([x[ix[ip[i]:ip[i + 1]]].sum(0) for i in range(len(ip) - 1)])
