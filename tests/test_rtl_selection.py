"""The Nearest-Neighbor selection unit's Verilog in Icarus and Verilator (cocotb) against the
golden model's selection (``a2q.sim.graph_golden.nearest_entry``) and the cycle model."""

import numpy as np
import pytest

from a2q.hw.rtl import make_unit, write_rtl
from a2q.sim import rtl_sim
from a2q.sim.cycles import selection_cycles
from a2q.sim.testbench.selection import expected
from a2q.sim.toolchain import lint

PARAMS = {"lanes": 4, "value_bits": 40, "pool_size": 8}


def random_case(rng, p) -> dict:
    """Nodes of 1..3 tiles; values of every magnitude; sorted thresholds, some repeated, and
    some nodes' maxima exactly on a threshold (a tie takes the lower entry)."""
    top = (1 << p["value_bits"]) - 1
    tiles = rng.integers(1, 4, int(rng.integers(1, 12)))
    scale = rng.integers(0, p["value_bits"] + 1, (int(tiles.sum()), 1))
    values = (rng.random((int(tiles.sum()), p["lanes"])) * (2.0 ** scale)).astype(np.int64)
    values = np.minimum(values, top)
    thresholds = np.sort(rng.integers(0, top, p["pool_size"] - 1, endpoint=True))
    if thresholds.size > 2:
        thresholds[1] = thresholds[2]
    last = np.zeros(values.shape[0], dtype=bool)
    last[np.cumsum(tiles) - 1] = True
    for r in np.flatnonzero(rng.random(values.shape[0]) < 0.3):  # land on a threshold
        if thresholds.size:
            values[r, int(rng.integers(0, p["lanes"]))] = rng.choice(thresholds)
    return {"values": values, "last": last, "thresholds": thresholds}


def directed_cases(p) -> list[dict]:
    top = (1 << p["value_bits"]) - 1
    k = p["pool_size"] - 1
    steps = np.arange(1, k + 1, dtype=np.int64) * (top // (k + 1))
    one = np.ones(1, dtype=bool)
    return [
        {"values": np.zeros((1, p["lanes"]), np.int64), "last": one, "thresholds": steps},
        {"values": np.full((1, p["lanes"]), top), "last": one, "thresholds": steps},
        # every threshold exactly, then one above each: entries 0..k-1, then 1..k
        {"values": np.repeat(np.concatenate([steps, steps + 1])[:, None], p["lanes"], 1),
         "last": np.ones(2 * k, dtype=bool), "thresholds": steps},
        # one node of many tiles whose largest value is in its first tile
        {"values": np.array([[top] + [0] * (p["lanes"] - 1)] + [[1] * p["lanes"]] * 6),
         "last": np.array([False] * 6 + [True]), "thresholds": steps},
    ]


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_selection_in_rtl_equals_golden_and_cycle_model(simulator, build_root, tmp_path):
    model = rtl_sim.build("selection", PARAMS, simulator, build_root)
    rng = np.random.default_rng(11)
    cases = directed_cases(PARAMS) + [random_case(rng, PARAMS) for _ in range(40)]
    out = rtl_sim.run(model, cases, tmp_path, name=f"selection-{simulator}")
    for i, (case, res) in enumerate(zip(cases, out["results"])):
        assert np.array_equal(res["y"], expected(case)), f"case {i}"
        tiles = np.diff(np.concatenate([[-1], np.flatnonzero(case["last"])]))
        assert res["cycles"] == selection_cycles(tiles), f"case {i}"


def test_a_pool_of_one_entry_takes_it_for_every_node(build_root, tmp_path):
    params = {"lanes": 1, "value_bits": 1, "pool_size": 1}
    model = rtl_sim.build("selection", params, "icarus", build_root)
    case = {"values": np.array([[1], [0], [1]]), "last": np.array([True, False, True]),
            "thresholds": np.zeros(0, dtype=np.int64)}
    res = rtl_sim.run(model, [case], tmp_path)["results"][0]
    assert res["y"].tolist() == [[0, 1], [0, 1]]


def test_expected_selection_counts_thresholds_below_the_node_maximum():
    case = {"values": np.array([[5, 9], [2, 3], [7, 7]]), "last": np.array([False, True, True]),
            "thresholds": np.array([3, 7, 7, 20])}
    assert expected(case).tolist() == [[3, 9], [1, 7]]


@pytest.mark.parametrize("params", [PARAMS, {"lanes": 1, "value_bits": 1, "pool_size": 1},
                                    {"lanes": 16, "value_bits": 64, "pool_size": 64}])
def test_selection_verilog_passes_verilator_lint_wall(params, tmp_path):
    info = write_rtl("selection", make_unit("selection", params), tmp_path)
    lint(tmp_path, info["verilog"])
