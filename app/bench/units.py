"""``a2q bench rtl``: simulated cycles per second of each unit on each simulator, Cora-sized.

Inputs are random with Cora's shape (2708 nodes, 16 features, bits 1..8, 13264 CSR entries):
the combination multiplies 2708 x 16 features by 16 x 16 weights, the aggregation sums 16
signed 4-bit columns over the CSR. Model builds are timed apart from the runs.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from a2q.sim.unit_run import simulate_aggregation, simulate_combination


def run_rtl_bench(out, *, seed: int = 0, nodes: int = 2708, edges: int = 13264) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        bits = rng.integers(1, 9, nodes)
        x = np.array([rng.integers(0, 1 << b, 16) for b in bits])
        indptr = np.concatenate([[0], np.sort(rng.integers(0, edges + 1, nodes - 1)), [edges]])
        arrays = {"x": x, "bits": bits, "w": rng.integers(-8, 8, (16, 16)), "indptr": indptr,
                  "indices": rng.integers(0, nodes, edges), "x4": rng.integers(-8, 8, (nodes, 16)),
                  "bits4": np.full(nodes, 4)}
        for k, v in arrays.items():
            np.save(d / f"{k}.npy", v)
        for sim in ("icarus", "verilator"):
            r = simulate_combination(d / "x.npy", d / "bits.npy", d / "w.npy", d / "Y.npy",
                                     simulator=sim, build_root=d / "build")
            rows.append(r)
            r = simulate_aggregation(d / "indptr.npy", d / "indices.npy", d / "x4.npy",
                                     d / "bits4.npy", d / "A.npy", signed_input=True,
                                     simulator=sim, build_root=d / "build")
            rows.append(r)
    table = [{k: r[k] for k in ("unit", "simulator", "matches_numpy", "cycles_measured",
                                "cycles_predicted", "cycles_ideal", "sim_seconds",
                                "cycles_per_second")} for r in rows]
    (out / "rtl.json").write_text(json.dumps(table, indent=2) + "\n")
    lines = ["# RTL simulation speed", "", f"`a2q bench rtl --seed {seed}`: random Cora-sized "
             f"inputs ({nodes} nodes, 16 features, {edges} CSR entries), 16 lanes; seconds of "
             "the cocotb run (simulator start included, model build excluded).", "",
             "| unit | simulator | equals NumPy | cycles | model | ideal | s | cycles/s |",
             "|---|---|---|---|---|---|---|---|"]
    for r in table:
        lines.append(f"| {r['unit']} | {r['simulator']} | {r['matches_numpy']} | "
                     f"{r['cycles_measured']} | {r['cycles_predicted']} | {r['cycles_ideal']} | "
                     f"{r['sim_seconds']} | {r['cycles_per_second']:.0f} |")
    (out / "rtl.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return table
