"""The layer engine's Verilog in Icarus and Verilator (cocotb): whole inferences of random graphs
and models, bit for bit against the golden model and cycle for cycle against the cycle model.

Each random engine (dimensions, lanes, depths) is built once per simulator and runs several
random exports in one simulator process: the first from the ``$readmemh`` init files, the others
through the load port. ``A2Q_ENGINE_SUITES`` engines per model of ``A2Q_ENGINE_GRAPHS`` exports
each (``make regress``: 4 x 7 per model and form, 84 inferences per simulator); cocotb writes
JUnit XML.
"""

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from a2q.hw import rtl
from a2q.hw.engine.layer_engine import CORE_MODULE, ENGINE_MODULE, LayerEngine
from a2q.hw.rtl import write_engine_rtl
from a2q.sim import rtl_sim
from a2q.sim.engine_run import simulate
from a2q.sim.toolchain import lint

from .engine_cases import engine_suite, graph_engine_suite

SUITES = int(os.environ.get("A2Q_ENGINE_SUITES", "1"))
GRAPHS = int(os.environ.get("A2Q_ENGINE_GRAPHS", "3"))


def _engine_cases():
    """(model, a2q, simulator) of every engine form on both simulators; the dense forms (not
    the default) run on Verilator in make regress only, about 35 s each to build."""
    forms = [("gcn", False, "gcn"), ("gcn", True, "gcn-nonzeros-node-operand"),
             ("gin", False, "gin"), ("gin", True, "gin0-nonzeros-node-operand")]
    return [pytest.param(model, a2q, simulator, id=f"{name}-{simulator}",
                         marks=pytest.mark.regress if simulator == "verilator" and not a2q
                         else ())
            for model, a2q, name in forms for simulator in ("icarus", "verilator")]


@pytest.mark.parametrize("suite", range(SUITES))
@pytest.mark.parametrize("model, a2q, simulator", _engine_cases())
def test_engine_in_rtl_equals_golden_and_cycle_model(model, a2q, suite, simulator,
                                                      build_root, tmp_path):
    """``a2q``: the input mostly zeros, held on chip as its non-zeros, and the operands with
    per-node bits (GIN as GIN-0, combine-first); else dense and per column."""
    cfg, graphs = engine_suite(np.random.default_rng([suite, model == "gin", 11 + a2q]),
                               model, GRAPHS, nonzeros=a2q, node_operand=a2q,
                               order="combine-first" if a2q else None)
    engine = rtl_sim.build("engine", cfg, simulator, build_root)
    runs = simulate(engine, cfg, graphs, tmp_path,
                    name=f"engine-{model}{'-a2q' * a2q}-{suite}-{simulator}")
    junit = runs[0]["junit"]
    assert "testcase" in open(junit).read() and 'failures="0"' in open(junit).read()
    for k, r in enumerate(runs):
        assert r["logits_equal_golden"], f"graph {k}: {r['mismatched_nodes']} nodes differ"
        assert r["cycles_measured"] == r["cycles_predicted"], f"graph {k}"
        # each phase's cycles, measured at the engine's phase changes, equal the model's
        assert r["cycles_by_phase_measured"] == r["cycles_by_phase_predicted"], f"graph {k}"


def test_a_wrong_expectation_fails_the_cocotb_test(build_root, tmp_path):
    """The testbench's own check can fail: a run told to expect other logits reports it."""
    cfg, graphs = engine_suite(np.random.default_rng(4), "gcn", 1)
    engine = rtl_sim.build("engine", cfg, "icarus", build_root)
    from a2q.sim import golden
    from a2q.sim.engine_image import memory_words, write_init_files

    write_init_files(cfg, memory_words(cfg, graphs[0]), tmp_path)
    wrong = golden.run(graphs[0]).logits.copy()
    wrong[0, 0] += 1
    case = {"num_nodes": np.int64(graphs[0].num_nodes),
            "classes": np.int64(cfg.layers[-1].out_dim), "expected": wrong}
    with pytest.raises(rtl_sim.SimulationError, match="1 of 1 cocotb tests failed"):
        rtl_sim.run(engine, [case], tmp_path, name="wrong")


@pytest.mark.parametrize("model, nonzeros", [("gcn", False), ("gcn", True), ("gin", False)],
                         ids=["gcn", "gcn-nonzeros", "gin"])
def test_engine_verilog_lints_clean_and_loads_init_files(model, nonzeros, tmp_path):
    """The off-chip memories are x and the logits, or only the logits where the input is
    held on chip as its non-zeros."""
    cfg, _ = engine_suite(np.random.default_rng(9), model, 1, nonzeros=nonzeros)
    assert cfg.off_chip == (("logits",) if nonzeros else ("x", "logits"))
    info = write_engine_rtl(LayerEngine(cfg, ram_template=True), tmp_path)
    lint(tmp_path, info["verilog"])
    text = (tmp_path / info["verilog"]).read_text()
    loaded = [n for n, m in info["memories"].items() if m["init_file"]]
    assert set(loaded) == {n for n, s in cfg.memories.items() if s.loaded}
    slices = {s["instance"]: name for name, m in info["memories"].items() for s in m["slices"]}
    for name in loaded:
        for s in info["memories"][name]["slices"]:
            assert f'.INIT_FILE("{s["init_file"]}")' in text
    assert text.count("  a2q_ram #(") == len(slices)  # one instance per slice
    # The core (what synthesis takes) holds every memory but the off-chip ones, which the
    # engine module holds beside its instance of the core.
    core = text[text.index(f"module {CORE_MODULE}("):text.index(f"module {ENGINE_MODULE}(")]
    engine = text[text.index(f"module {ENGINE_MODULE}("):text.index("module a2q_ram")]
    inside = {slices[i] for i in re.findall(r"\) (\w+) \(\n    \.clk", core)}
    assert inside == set(cfg.memories) - set(cfg.off_chip)
    assert {slices[i] for i in re.findall(r"\) (\w+) \(\n    \.clk", engine)} == set(cfg.off_chip)
    assert f"{CORE_MODULE} core (" in engine
    assert info["synthesis_module"] == CORE_MODULE and info["off_chip"] == list(cfg.off_chip)
    assert json.loads((tmp_path / "params.json").read_text())["config"]["model"] == model
    # the same engine gives the same bytes wherever the checkout is: no source paths inside
    assert "(* src =" not in text and str(Path(rtl.__file__).parent) not in text


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_graph_level_engine_in_rtl_equals_golden_and_cycle_model(simulator, build_root,
                                                                   tmp_path):
    """Two graph-level batches (the selection on chip, the readout; 3 layers, 2 lanes, one
    requantized a cycle; an empty graph in the second): the first from the init files, the
    second through the load port; every graph's logits, the cycles of every phase."""
    cfg, batches = graph_engine_suite(np.random.default_rng(68), 2)
    engine = rtl_sim.build("engine", cfg, simulator, build_root)
    runs = simulate(engine, cfg, batches, tmp_path, name=f"graph-engine-{simulator}")
    for k, r in enumerate(runs):
        assert r["logits_equal_golden"], f"batch {k}: {r['mismatched_graphs']} graphs differ"
        assert r["cycles_by_phase_measured"] == r["cycles_by_phase_predicted"], f"batch {k}"
