"""The engine on graph-level exports in Amaranth's simulator: the Nearest-Neighbor selection on
chip, every layer with each node's entry, the last layer's codes equal to the golden model's
bit for bit, in exactly the cycles of the cycle model."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from a2q.hw.engine.layer_engine import LayerEngine
from a2q.hw.engine.layout import MAX_POOL
from a2q.sim.cycles import graph_engine_cycles
from a2q.sim.engine_image import EngineFitError, graph_engine_config, graph_memory_words
from a2q.sim.graph_batch import read_graph_batch, write_graph_batch
from a2q.sim.graph_golden import run_graph_batch

from .sim_exports import random_graph_export


def run(cfg, g):
    """(the logits [G, C] read from ``logits``, the last layer's codes [N, out_dim] read from
    ``op``, cycles) of one run."""
    dut = LayerEngine(cfg, init=graph_memory_words(cfg, g))
    out = {}

    async def bench(ctx):
        ctx.set(dut.num_nodes, g.num_nodes)
        ctx.set(dut.num_graphs, g.num_graphs)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        while not ctx.get(dut.done):
            await ctx.tick()
        out["cycles"] = ctx.get(dut.cycles)
        logits = []
        for graph in range(g.num_graphs):
            ctx.set(dut.logits_addr, graph)
            await ctx.tick()
            logits.append([int(v) for v in ctx.get(dut.logits_data)])
        out["logits"] = np.array(logits, dtype=np.int64)
        op, stride = dut.core.simulated_memories["op"], cfg.op_stride
        bits = cfg.max_bits
        words = [ctx.get(op.data[a]) for a in range(g.num_nodes * stride)]
        codes = [[(w >> (c * bits)) & ((1 << bits) - 1) for c in range(cfg.lanes)]
                 for w in words]
        out["codes"] = np.array(codes, dtype=np.int64).reshape(g.num_nodes, -1)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return out["logits"], out["codes"][:, :g.layers[-1]["out_dim"]], out["cycles"]


def check(g, **engine):
    cfg = graph_engine_config(g, **engine)
    logits, codes, cycles = run(cfg, g)
    res = run_graph_batch(g)
    np.testing.assert_array_equal(codes, res.layer_outputs[f"layer{len(g.layers)}.output"])
    np.testing.assert_array_equal(logits, res.logits)
    assert cycles == graph_engine_cycles(g, res.selections, lanes=cfg.lanes,
                                         requant_lanes=cfg.requant_lanes)["total"]


@pytest.mark.parametrize("seed", range(4))
def test_random_graph_batches_equal_golden_and_cycle_model(seed, tmp_path):
    rng = np.random.default_rng(seed)
    lanes = int(rng.choice([1, 2, 4, 8, 16]))
    g = read_graph_batch(write_graph_batch(tmp_path / "g", *random_graph_export(rng)))
    check(g, lanes=lanes, requant_lanes=int(rng.integers(1, lanes + 1)))


def test_the_largest_pool_is_loaded_before_the_first_node_is_chosen(tmp_path):
    """A pool of MAX_POOL entries, one small graph and 16 lanes: the first node's values reach
    the selection as soon as they can, after every threshold."""
    rng = np.random.default_rng(5)
    m, a = random_graph_export(rng, graphs=1, layers=2, pool=MAX_POOL, f0=3, hidden=3)
    g = read_graph_batch(write_graph_batch(tmp_path / "g", m, a))
    assert {len(a[f"layer{l}.pool_threshold"]) for l in (1, 2)} == {MAX_POOL - 1}
    check(g, lanes=16)


def test_a_pool_larger_than_the_engine_holds_is_refused(tmp_path):
    rng = np.random.default_rng(6)
    m, a = random_graph_export(rng, graphs=1, layers=1, pool=MAX_POOL + 1)
    g = read_graph_batch(write_graph_batch(tmp_path / "g", m, a))
    with pytest.raises(EngineFitError, match=f"pool has {MAX_POOL + 1} entries"):
        graph_engine_config(g)
