"""The readout head unit's Verilog in Icarus and Verilator (cocotb) against the golden model's
head (``a2q.sim.graph_golden.head_terms``) and the cycle model."""

import numpy as np
import pytest

from a2q.hw.rtl import make_unit, write_rtl
from a2q.sim import rtl_sim
from a2q.sim.cycles import readout_cycles
from a2q.sim.testbench.readout import expected
from a2q.sim.toolchain import lint

PARAMS = {"lanes": 4, "in_dim": 6, "classes": 3, "code_bits": 4, "weight_bits": 4,
          "max_graph_nodes": 12}


def random_case(rng, p) -> dict:
    sizes = rng.integers(1, p["max_graph_nodes"] + 1, int(rng.integers(1, 5)))
    n, D, C = int(sizes.sum()), p["in_dim"], p["classes"]
    q = 1 << (p["weight_bits"] - 1)
    return {"graph_ptr": np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
            "codes": rng.integers(0, 1 << p["code_bits"], (n, D)),
            "weight": rng.integers(-q, q, (D, C)),
            "in_scale_m": rng.integers(1, (1 << 16) + 1, D),
            "scale_m": rng.integers(1 << 15, (1 << 16) + 1, C),
            "scale_sh": rng.integers(0, 63, C)}


def extreme_case(p, sign: int) -> dict:
    """The largest graph of the largest codes, mantissas and weights of one sign: the sums'
    and terms' widths, no shift and the longest."""
    n, D, C = p["max_graph_nodes"], p["in_dim"], p["classes"]
    q = 1 << (p["weight_bits"] - 1)
    return {"graph_ptr": np.array([0, n, n + 1]),
            "codes": np.full((n + 1, D), (1 << p["code_bits"]) - 1),
            "weight": np.full((D, C), -q if sign < 0 else q - 1),
            "in_scale_m": np.full(D, 1 << 16), "scale_m": np.full(C, 1 << 16),
            "scale_sh": np.array([0, 1, 62][:C] + [5] * max(0, C - 3))}


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_readout_in_rtl_equals_golden_and_cycle_model(simulator, build_root, tmp_path):
    model = rtl_sim.build("readout", PARAMS, simulator, build_root)
    rng = np.random.default_rng(5)
    cases = [extreme_case(PARAMS, 1), extreme_case(PARAMS, -1)]
    cases += [random_case(rng, PARAMS) for _ in range(30)]
    out = rtl_sim.run(model, cases, tmp_path, name=f"readout-{simulator}")
    tiles = -(-PARAMS["in_dim"] // PARAMS["lanes"])
    for i, (case, res) in enumerate(zip(cases, out["results"])):
        assert np.array_equal(res["y"], expected(case)), f"case {i}"
        nodes = np.diff(case["graph_ptr"])
        assert res["cycles"] == readout_cycles(nodes * tiles, PARAMS["in_dim"]), f"case {i}"


@pytest.mark.parametrize("params", [PARAMS, {"lanes": 1, "in_dim": 1, "classes": 1,
                                             "code_bits": 1, "weight_bits": 2,
                                             "max_graph_nodes": 1}])
def test_readout_verilog_passes_verilator_lint_wall(params, tmp_path):
    info = write_rtl("readout", make_unit("readout", params), tmp_path)
    lint(tmp_path, info["verilog"])
