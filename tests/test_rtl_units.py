"""The units' Verilog in Icarus and Verilator (cocotb) against NumPy and the cycle model.

Each (unit, signedness, simulator) model is built once per test run in a folder shared by the
xdist workers; directed corners and 100 random cases per model (200 per unit and simulator)
run in one simulator process each, and cocotb writes JUnit XML next to them.
``A2Q_RTL_CASES`` raises the random count (``make regress``).
"""

import os
from pathlib import Path

import numpy as np
import pytest

from a2q.hw.rtl import make_unit, write_rtl
from a2q.sim import rtl_sim
from a2q.sim.cycles import aggregation_cycles, combination_cycles
from a2q.sim.toolchain import lint

from . import rtl_cases

RANDOM_CASES = int(os.environ.get("A2Q_RTL_CASES", "100"))
UNITS = {"combination": rtl_cases.COMBINATION, "aggregation": rtl_cases.AGGREGATION}


def predicted(kind, case, params):
    if kind == "combination":
        return combination_cycles(case["bits"], in_features=params["in_features"],
                                  out_features=case["w"].shape[1], lanes=params["lanes"])
    return aggregation_cycles(case["indptr"], case["indices"], case["bits"],
                              columns=params["columns"], lanes=params["lanes"])


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
@pytest.mark.parametrize("signed_input", [False, True], ids=["unsigned", "signed"])
@pytest.mark.parametrize("kind", ["combination", "aggregation"])
def test_unit_in_rtl_equals_numpy_and_cycle_model(kind, signed_input, simulator, build_root,
                                                  tmp_path):
    params = dict(UNITS[kind], signed_input=signed_input)
    model = rtl_sim.build(kind, params, simulator, build_root)
    gen = getattr(rtl_cases, f"random_{kind}")
    rng = np.random.default_rng([7, signed_input, kind == "combination"])
    cases = getattr(rtl_cases, f"directed_{kind}")(signed_input)
    cases += [gen(rng, signed_input) for _ in range(RANDOM_CASES)]
    out = rtl_sim.run(model, cases, tmp_path, name=f"{kind}-{simulator}")
    assert out["junit"].exists() and "testcase" in out["junit"].read_text()
    for i, (case, res) in enumerate(zip(cases, out["results"])):
        assert np.array_equal(res["y"], rtl_cases.expected(kind, case)), f"case {i}"
        assert res["cycles"] == predicted(kind, case, params), f"case {i}"


@pytest.mark.parametrize("kind, extra", [
    ("combination", {}), ("aggregation", {}),
    ("combination", {"in_features": 1, "lanes": 1, "max_bits": 1}),
    ("aggregation", {"columns": 2, "lanes": 4, "max_bits": 1, "max_nodes": 2, "max_edges": 2}),
])
def test_verilog_passes_verilator_lint_wall(kind, extra, tmp_path):
    params = dict(UNITS[kind], signed_input=True) | extra
    info = write_rtl(kind, make_unit(kind, params), tmp_path)
    lint(tmp_path, info["verilog"])  # raises with Verilator's first warnings
    assert (tmp_path / "filelist.f").read_text().split() == [info["verilog"]]


def test_a_mismatch_fails_the_cocotb_run(build_root, tmp_path):
    """The testbench's own check is live: a case whose declared bits are too narrow for its
    values is truncated by the hardware and the run reports the failure."""
    params = dict(UNITS["combination"], signed_input=False)
    model = rtl_sim.build("combination", params, "icarus", build_root)
    f = params["in_features"]
    case = {"x": np.full((1, f), 3), "bits": np.array([1]), "w": np.ones((f, 1), dtype=int)}
    with pytest.raises(rtl_sim.SimulationError, match="1 of 1 cocotb tests failed"):
        rtl_sim.run(model, [case], tmp_path)
    assert Path(tmp_path / "cases.junit.xml").exists()
