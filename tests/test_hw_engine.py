"""The layer engine in Amaranth's simulator: whole inferences equal the golden model bit for bit,
and take exactly the cycles of the cycle model."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from a2q.hw.engine.layer_engine import LayerEngine
from a2q.hw.engine.layout import EngineConfig, LayerShape
from a2q.sim import golden
from a2q.sim.cycles import engine_cycles, per_node_cycles
from a2q.sim.engine_image import EngineFitError, engine_config, memory_words
from a2q.sim.export_constants import derive_constants
from a2q.sim.uniform_export import uniform_variant

from .engine_cases import engine_suite, in_memory
from .sim_exports import random_export


def run_engine(cfg, graphs, *, via_load_port=False, images=None, start_with_last_load=False):
    """Each graph's (logits, every lane of them, cycles) on one engine: the first from init
    contents (unless ``via_load_port``), the others loaded through the load port, ``start``
    in the cycle after the last word (with ``start_with_last_load``: in its cycle);
    ``images``: the memory words instead of the graphs' own."""
    words = images or [memory_words(cfg, g) for g in graphs]
    dut = LayerEngine(cfg, init=None if via_load_port else words[0])
    names = list(cfg.memories)
    out = []

    async def bench(ctx):
        for k, g in enumerate(graphs):
            ctx.set(dut.num_nodes, g.num_nodes)
            loading = k > 0 or via_load_port
            if loading:
                ctx.set(dut.load.valid, 1)
                loads = [(name, addr, w) for name, ws in words[k].items()
                         for addr, w in enumerate(ws)]
                if start_with_last_load:  # last: word 0 of what the first phase reads first
                    first = {"layer1_node", "indptr"}
                    loads = ([x for x in loads if x[0] not in first]
                             + [x for x in reversed(loads) if x[0] in first])
                for j, (name, addr, w) in enumerate(loads):
                    ctx.set(dut.load.payload, {"memory": names.index(name), "addr": addr,
                                               "data": w})
                    ctx.set(dut.start, start_with_last_load and j == len(loads) - 1)
                    await ctx.tick()
                ctx.set(dut.load.valid, 0)
            if not (start_with_last_load and loading):
                ctx.set(dut.start, 1)
                await ctx.tick()
            ctx.set(dut.start, 0)
            while not ctx.get(dut.done):
                await ctx.tick()
            cycles = ctx.get(dut.cycles)
            tiles = cfg.tiles(cfg.layers[-1].out_dim)
            rows = []
            for addr in range(g.num_nodes * tiles):
                ctx.set(dut.logits_addr, addr)
                await ctx.tick()
                rows.append([int(v) for v in ctx.get(dut.logits_data)])
            out.append((np.array(rows, dtype=np.int64).reshape(g.num_nodes, -1), cycles))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return out


def check(cfg, graphs, **kw):
    for g, (y, cycles) in zip(graphs, run_engine(cfg, graphs, **kw)):
        np.testing.assert_array_equal(y[:, :cfg.layers[-1].out_dim], golden.run(g).logits)
        assert cycles == engine_cycles(g, lanes=cfg.lanes, requant_lanes=cfg.requant_lanes,
                                       nonzeros_per_word=cfg.nonzeros_per_word)["total"]


@pytest.mark.parametrize("model", ["gcn", "gin"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_engines_equal_golden_and_cycle_model(model, seed):
    cfg, graphs = engine_suite(np.random.default_rng([seed, model == "gin"]), model, 3)
    check(cfg, graphs)


@pytest.mark.parametrize("seed", [0, 1, pytest.param(2, marks=pytest.mark.regress)])
def test_input_held_as_non_zeros_equals_golden_and_cycle_model(seed):
    """GCN engines holding the input as its non-zeros (1..5 a word): rows with no non-zero,
    fully dense rows and sparse ones, multi-bit codes, several graphs through the load port."""
    cfg, graphs = engine_suite(np.random.default_rng([seed, 3]), "gcn", 3, nonzeros=True)
    assert cfg.sparse_input and "x" not in cfg.memories
    check(cfg, graphs)


@pytest.mark.parametrize("seed", [0, 2, pytest.param(1, marks=pytest.mark.regress)])
def test_operands_with_per_node_bits_equal_golden_and_cycle_model(seed):
    """GCN engines whose operands carry per-node bits (2..8) and steps: every edge costs its
    source's bits; several graphs through the load port."""
    cfg, graphs = engine_suite(np.random.default_rng([seed, 4]), "gcn", 3, node_operand=True)
    assert all(L["per_node_operand"] for g in graphs for L in g.layers)
    check(cfg, graphs)


@pytest.mark.parametrize("seed", [0, pytest.param(1, marks=pytest.mark.regress)])
def test_gin0_on_the_combine_first_datapath_equals_golden_and_cycle_model(seed):
    """GIN-0 (combine-first: W, then the plain sum over the row and the node itself) on the
    GCN datapath, the input held as its non-zeros and per-node operand bits, or dense with
    per-column operands: ``norm`` is 2^15, every item weighs its source's coefficient."""
    cfg, graphs = engine_suite(np.random.default_rng([seed, 5]), "gin", 3, nonzeros=seed == 0,
                               node_operand=seed == 0, order="combine-first")
    assert cfg.combine_first and cfg.model == "gin"
    assert all(g.combine_first and np.all(g["gcn_norm"] == 1 << 15) for g in graphs)
    check(cfg, graphs)


@pytest.mark.parametrize("bits", [2, 8])
def test_a_hub_operand_costs_its_bits_on_every_edge(bits):
    """Node 0 is read by every node (a hub), at ``bits``; the others at 2 bits: the
    aggregation of a node costs its row's sources' bits per tile, exact at both extremes."""
    man, arr = random_export(np.random.default_rng(6), "gcn", n=9, f0=5, hidden=6, classes=3,
                             node_operand=True)
    rows = [[0, i] if i else [0] for i in range(9)]  # self-loops and the edge from the hub
    arr["indptr"] = np.cumsum([0] + [len(r) for r in rows])
    arr["indices"] = np.concatenate(rows).astype(np.int64)
    man["num_edges"] = int(arr["indices"].size)
    arr["gcn_norm"] = np.floor(2.0 ** 15 / np.sqrt(np.diff(arr["indptr"])) + 0.5).astype(np.int64)
    for l in (1, 2):
        arr[f"layer{l}.node_op_bits"] = np.array([bits] + [2] * 8, dtype=np.uint8)
        man["layers"][l - 1]["operand_bits"] = bits
    derive_constants("gcn", "combine-first", man["layers"], arr)
    g = in_memory(man, arr)
    cfg = engine_config(g, lanes=4, requant_lanes=4)
    check(cfg, [g])
    agg = per_node_cycles(g, lanes=4, requant_lanes=4)["layer1.aggregation"]
    assert agg.tolist() == [bits * 2] + [(bits + 2) * 2] * 8  # ceil(6 / 4) tiles


@pytest.mark.parametrize("model, order", [("gcn", None), ("gin", None),
                                          ("gin", "combine-first")])
@pytest.mark.parametrize("bits", [3, 8])
def test_narrow_aggregations_take_two_planes_a_cycle_on_the_idle_lanes(model, order, bits):
    """Results of 3 columns on 8 lanes: the idle lanes take the next bit-plane of the same
    operand word, so an item of b bits costs ceil(b / 2) cycles (odd b: the top plane alone),
    GCN's negative top plane included. Node 0 is read by every node at ``bits`` (per-node
    operands where the datapath is combine-first, its layer-1 codes negative: their fields
    hold the sign above the top plane, which the second lane group must not read), the others
    at 2 bits; exact either way."""
    combine_first = model == "gcn" or order == "combine-first"
    man, arr = random_export(np.random.default_rng(11), model, n=9, f0=3, hidden=3, classes=3,
                             node_operand=combine_first, order=order)
    arr["x"][0] = 1
    arr["layer1.weight"] = -np.abs(arr["layer1.weight"])
    rows = [[0, i] if i else [0] for i in range(9)]  # the edge from the hub (and self-loops)
    if not combine_first:
        rows = [[0] if i else [] for i in range(9)]
    arr["indptr"] = np.cumsum([0] + [len(r) for r in rows])
    arr["indices"] = np.concatenate(rows).astype(np.int64)
    man["num_edges"] = int(arr["indices"].size)
    if combine_first:
        arr["gcn_norm"] = (np.floor(2.0 ** 15 / np.sqrt(np.diff(arr["indptr"])) + 0.5)
                           if model == "gcn" else np.full(9, 2.0 ** 15)).astype(np.int64)
        for l in (1, 2):
            arr[f"layer{l}.node_op_bits"] = np.array([bits] + [2] * 8, dtype=np.uint8)
            man["layers"][l - 1]["operand_bits"] = bits
    else:
        man["layers"][1]["operand_bits"] = bits
    derive_constants(model, man["order"], man["layers"], arr)
    g = in_memory(man, arr)
    if combine_first:
        assert (golden.run(g).layer_outputs["layer1.operand"][0] < 0).all()
    cfg = engine_config(g, lanes=8, requant_lanes=8)
    check(cfg, [g])
    agg = per_node_cycles(g, lanes=8, requant_lanes=8)["layer2.aggregation"]
    half = -(-bits // 2)
    if combine_first:  # node 0: its self-loop; the others: the hub and their own 2 bits
        assert agg.tolist() == [half] + [half + 1] * 8
    else:  # every row: the node's own term and the hub, each at the layer's bits
        assert agg.tolist() == [half] + [2 * half] * 8


def test_non_zero_input_costs_its_words_not_its_width():
    """Layer 1's combination over 40 inputs, 2 a word, 3 tiles of 4 lanes, 2-bit codes: a node
    of 5 non-zeros costs 3 words x 2 planes per tile, a node of none one word, a dense node
    20 words; the dense engine pays ceil(40 / 4) = 10 chunks per plane and tile on every
    node. The 12 columns are requantized in one cycle, so nothing waits."""
    man, arr = random_export(np.random.default_rng(4), "gcn", n=3, f0=40, hidden=12, classes=2)
    x = np.zeros((3, 40), dtype=np.uint8)
    x[0, [1, 7, 8, 30, 39]] = [1, 3, 2, 1, 3]
    x[2] = 1 + np.arange(40) % 3
    man["input_bits"], arr["x"] = 2, x
    g = in_memory(man, arr)
    sparse = engine_config(g, lanes=4, requant_lanes=4, nonzeros_per_word=2)
    dense = engine_config(g, lanes=4, requant_lanes=4, nonzeros_per_word=0)
    check(sparse, [g])
    per_node = per_node_cycles(g, lanes=4, requant_lanes=4, nonzeros_per_word=2)
    assert per_node["layer1.combination"].tolist() == [3 * 2 * 3, 1 * 2 * 3, 20 * 2 * 3]
    assert per_node_cycles(g, lanes=4, requant_lanes=4, nonzeros_per_word=0)[
        "layer1.combination"].tolist() == [10 * 2 * 3] * 3
    check(dense, [g])


@pytest.mark.parametrize("model", ["gcn", "gin"])
def test_short_tiles_wait_for_the_requantization(model):
    """1-bit nodes of one chunk and empty rows, requantized one lane a cycle: the walkers wait
    (as the cycle model counts) and the results stay exact."""
    man, arr = random_export(np.random.default_rng(5), model, n=6, f0=3, hidden=2, classes=3)
    arr["indptr"] = np.array([0, 0, 1, 1, 3, 3, 6])  # empty rows, short rows
    arr["indices"] = np.array([2, 0, 5, 1, 2, 3])
    man["num_edges"] = 6
    man["input_bits"], arr["x"] = 1, arr["x"] % 2  # GIN: layer 1 aggregates 1-bit items
    for l in (1, 2):
        if f"layer{l}.node_bits" in arr:
            arr[f"layer{l}.node_bits"] = np.array([1, 1, 2, 1, 3, 1], dtype=np.uint8)
    g = in_memory(man, arr)
    check(engine_config(g, lanes=3, requant_lanes=1), [g])
    waits = {unit: int((a - b).sum()) for (unit, a), b in zip(
        per_node_cycles(g, lanes=3, requant_lanes=1).items(),
        per_node_cycles(g, lanes=3, requant_lanes=3).values())}
    aggregation = "layer2.aggregation" if model == "gcn" else "layer1.aggregation"
    assert waits["layer2.combination"] > 0 and waits[aggregation] > 0  # it did wait


@pytest.mark.parametrize("model", ["gcn", "gin"])
def test_columns_past_a_layers_width_are_left_out(model):
    """Memory words hold ``lanes`` columns; a phase whose results are narrower builds only its
    own: whatever the weights and the column constants hold past them, the logits equal the
    golden model's and their lanes past the classes are zero (3 columns of 4 lanes, 2 lanes
    requantized a cycle: the second group holds one column and one lane left out)."""
    g = in_memory(*random_export(np.random.default_rng(9), model, n=10, f0=11, hidden=3,
                                 classes=3))
    cfg = engine_config(g, lanes=4, requant_lanes=2)
    P, words = cfg.lanes, memory_words(cfg, g)

    def fill(name, address, width, elem_bits, rows=1):  # every bit of the lanes past width
        words[name][address] |= sum(((1 << elem_bits) - 1) << ((c * rows + r) * elem_bits)
                                    for r in range(rows) for c in range(width, P))

    for l, L in enumerate(cfg.layers, start=1):
        if L.out_dim < P:  # one tile of columns: every word
            blocks = [(n, P) for n in words if n == f"layer{l}_weight"] + [
                (n, 1) for n in words if n.startswith(f"layer{l}_rows_")]  # input held sparse
            assert blocks
            for name, rows in blocks:
                for a in range(len(words[name])):
                    fill(name, a, L.out_dim, L.weight_bits, rows=rows)
    for l, kind, width in cfg.phase_widths():
        if width < P:
            fill("cols", cfg.column_base(l, kind), width,
                 cfg.memories["cols"].layout.elem_shape.size)
    (y, _), = run_engine(cfg, [g], images=[words])
    np.testing.assert_array_equal(y[:, :3], golden.run(g).logits)
    assert not y[:, 3:].any()


@pytest.mark.parametrize("model", [pytest.param("gcn", marks=pytest.mark.regress), "gin"])
def test_load_port_fills_every_memory(model):
    """(GCN's load port in make test: the next test here, and ``a2q sim engine --load-port``
    on Verilator.)"""
    cfg, graphs = engine_suite(np.random.default_rng(7), model, 1)
    check(cfg, graphs, via_load_port=True)


@pytest.mark.parametrize("model", ["gcn", "gin"])
def test_a_run_may_start_in_the_cycle_of_the_last_load(model):
    """A word loaded lands before the run reads it, even with ``start`` in its cycle."""
    cfg, graphs = engine_suite(np.random.default_rng(8), model, 2)
    check(cfg, graphs, via_load_port=True, start_with_last_load=True)


@pytest.mark.parametrize("model", ["gcn", "gin"])
def test_uniform_re_exports_run_on_the_same_engine(model):
    g = in_memory(*random_export(np.random.default_rng(3), model, n=12, f0=9, hidden=5,
                                 classes=3))
    cfg = engine_config(g, lanes=4)
    variants = [uniform_variant(g, b) for b in (4, 8)]
    check(cfg, variants)
    for b, v in zip((4, 8), variants):
        assert engine_cycles(v, lanes=4) == engine_cycles(g, lanes=4, uniform=b)


@pytest.mark.parametrize("stored_bits", [1, pytest.param(4, marks=pytest.mark.regress)])
@pytest.mark.parametrize("model, per_word", [
    ("gcn", 0), ("gcn", 4), pytest.param("gin", 0, marks=pytest.mark.regress)])
def test_input_paid_at_four_bits_costs_four_planes_on_layer_one(model, per_word, stored_bits):
    """The uniform4 baseline pays the binary input at 4 bits: same logits, and layer 1's
    input stage (GCN's combination, GIN's aggregation) takes 4 bit-planes where it took 1
    (the requantization takes every lane at once: no (node, tile) waits for it), whether the
    engine stores the codes at 4 bits or at the 1 bit they need (the planes above it read
    zeros), dense or as non-zeros (``per_word`` a word)."""
    n, f0, hidden, lanes = 12, 9, 5, 4
    man, arr = random_export(np.random.default_rng(8), model, n=n, f0=f0, hidden=hidden,
                             classes=3)
    man["input_bits"], arr["x"] = 1, arr["x"] % 2  # a bag-of-words input
    g = in_memory(man, arr)
    exact, wide = uniform_variant(g, 4), uniform_variant(g, 4, input_bits=4)
    assert wide.manifest["input_bits"] == 4 and "input4" in wide.manifest["method"]
    cfg = engine_config(g, lanes=lanes, input_bits=stored_bits, requant_lanes=lanes,
                        nonzeros_per_word=per_word)
    runs = run_engine(cfg, [exact, wide])
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    check(cfg, [wide])
    c1, c4 = (engine_cycles(v, lanes=lanes, requant_lanes=lanes, nonzeros_per_word=per_word)
              for v in (exact, wide))
    if model == "gcn" and per_word:  # every node: its words x ceil(5/4) tiles per plane
        words = np.maximum(1, -(-(g["x"] != 0).sum(1) // per_word))
        stage, extra = "layer1.combination", int(words.sum()) * 3 * 2
    elif model == "gcn":  # every node: ceil(9/4) chunks x ceil(5/4) tiles per plane
        stage, extra = "layer1.combination", n * 3 * 3 * 2
    else:  # every item of every row (own term included), ceil(9/4) tiles, 3 more planes
        stage, extra = "layer1.aggregation", (int(g["indptr"][-1]) + n) * 3 * 3
    assert c4[stage] - c1[stage] == extra
    assert {k: v for k, v in c4.items() if k not in (stage, "total")} == \
        {k: v for k, v in c1.items() if k not in (stage, "total")}


@pytest.mark.parametrize("model", ["gcn", "gin"])
def test_worst_case_values_stay_exact(model):
    """Every node at 8 bits, the input and the weights at their extremes, the largest
    operands: the widest sums and products the engine must hold."""
    rng = np.random.default_rng(5)
    man, arr = random_export(rng, model, n=9, f0=17, hidden=6, classes=4)
    for l, L in enumerate(man["layers"], start=1):
        p = f"layer{l}."
        q = (1 << (L["weight_bits"] - 1)) - 1
        arr[p + "weight"] = np.where(rng.random(arr[p + "weight"].shape) < 0.5, -q, q).astype(np.int8)
        if p + "node_bits" in arr:
            arr[p + "node_bits"][:] = 8
    arr["x"][:] = (1 << man["input_bits"]) - 1
    g = in_memory(man, arr)
    check(engine_config(g, lanes=4), [g])


@pytest.mark.parametrize("model", ["gcn", "gin"])
def test_values_near_the_golden_bound_stay_exact(model):
    """Biases near the largest the golden model accepts: GCN's U * next_m and GIN's
    bias << scale_sh come within a factor 2 or 4 of 2**62, through the datapath's narrow
    multiplier (GCN) and its 64-bit sums (GIN)."""
    rng = np.random.default_rng(8)
    man, arr = random_export(rng, model, n=10, f0=6, hidden=5, classes=3)
    sign = np.where(np.arange(5) % 2 == 0, 1, -1)
    if model == "gcn":
        arr["layer1.bias_fx"] = sign * (1 << 45)
        arr["layer2.node_inv_m"] = np.full_like(arr["layer2.node_inv_m"], 1 << 16)
    else:
        arr["layer1.bias_fx"] = sign * ((1 << 46) - 1)
        arr["layer1.node_scale_sh"] = np.full_like(arr["layer1.node_scale_sh"], 14)
    g = in_memory(man, arr)
    big = golden.run(g).layer_outputs["layer1.output"]
    assert np.abs(big).max() >= 1 << 45
    check(engine_config(g, lanes=2), [g])


def test_gcn_row_without_entries_and_zero_nodes():
    """A node with an empty CSR row aggregates to zero (one cycle per tile); a run of zero
    nodes is done at once."""
    man, arr = random_export(np.random.default_rng(11), "gcn", n=6, f0=5, hidden=3, classes=2)
    ip, ix = arr["indptr"], arr["indices"]
    drop = slice(ip[2], ip[3])  # node 2 keeps no entry, not even its self-loop
    arr["indices"] = np.concatenate([ix[:drop.start], ix[drop.stop:]])
    arr["indptr"] = np.concatenate([ip[:3], ip[3:] - (drop.stop - drop.start)])
    man["num_edges"] = int(arr["indices"].size)
    g = in_memory(man, arr)
    cfg = engine_config(g, lanes=2)
    check(cfg, [g])
    dut = LayerEngine(cfg, init=memory_words(cfg, g))

    async def bench(ctx):
        ctx.set(dut.num_nodes, 0)
        ctx.set(dut.start, 1)
        await ctx.tick()
        assert ctx.get(dut.done) and not ctx.get(dut.busy) and ctx.get(dut.cycles) == 0

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def test_graphs_that_do_not_fit_are_refused_naming_the_memory():
    g = in_memory(*random_export(np.random.default_rng(2), "gin", n=30, f0=4, hidden=3,
                                 classes=2))
    e = int(g["indptr"][-1])
    with pytest.raises(EngineFitError, match=r"memory indptr needs 31 words, the engine has 11 "
                                             r"\(20 short\)"):
        memory_words(engine_config(g, lanes=4, max_nodes=10), g)
    with pytest.raises(EngineFitError, match=rf"memory indices needs {e} words.*{e - 5} short"):
        memory_words(engine_config(g, lanes=4, max_edges=5), g)
    other = EngineConfig(model="gcn", layers=(LayerShape(4, 3, 8), LayerShape(3, 2, 8)),
                         input_bits=3, lanes=4, max_nodes=30, max_edges=e)
    with pytest.raises(EngineFitError, match="runs combine-first gcn, the export is aggregate-first gin"):
        memory_words(other, g)
    narrow = EngineConfig(model="gin", layers=(LayerShape(4, 3, 2), LayerShape(3, 2, 2)),
                          input_bits=3, lanes=4, max_nodes=30, max_edges=e)
    if np.abs(g["layer1.weight"]).max() > 1:
        with pytest.raises(EngineFitError, match=r"memory layer1_weight, \[\d+\]\[\d+\]"):
            memory_words(narrow, g)


@pytest.mark.parametrize("kwargs, message", [
    ({"model": "gat"}, "runs models gcn, gin"),
    ({"lanes": 0}, "lanes must be an integer 1..64"),
    ({"max_nodes": 1}, "max_nodes must be an integer 2..1048576"),
    ({"max_edges": 1 << 25}, "max_edges must be an integer 1..16777216"),
    ({"layers": (LayerShape(4, 3, 4), LayerShape(5, 2, 4))}, "layer 2 in_dim 5 differs"),
])
def test_bad_engine_parameters(kwargs, message):
    base = dict(model="gcn", layers=(LayerShape(4, 3, 4), LayerShape(3, 2, 4)), input_bits=1,
                lanes=4, max_nodes=8, max_edges=8)
    with pytest.raises(ValueError, match=message):
        EngineConfig(**(base | kwargs))
