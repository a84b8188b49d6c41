"""Random engines and the random graphs and models they run (the generator of the engine tests
and of ``make regress``)."""

import numpy as np

from a2q.hw.engine.layout import EngineConfig, LayerShape
from a2q.sim.annotated_graph import AnnotatedGraph
from a2q.sim.cycles import input_words

from .sim_exports import random_export


def in_memory(manifest: dict, arrays: dict) -> AnnotatedGraph:
    return AnnotatedGraph(None, dict(manifest, tensors={}), arrays)


def sparse_input(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    """``x`` with most codes zeroed, row by row: rows with no non-zero, fully dense rows and
    rows of 5-50% non-zeros."""
    kind = rng.integers(0, 4, len(x))  # 0: empty, 1: dense, else sparse
    density = np.where(kind == 0, 0.0, np.where(kind == 1, 1.0, rng.uniform(0.05, 0.5, len(x))))
    x = np.where(rng.random(x.shape) < density[:, None], x, 0)
    x[kind == 1] = np.maximum(x[kind == 1], 1)
    return x.astype(np.uint8)


def engine_suite(rng: np.random.Generator, model: str, graphs: int, nonzeros: bool = False,
                 node_operand: bool = False, order: str | None = None):
    """One engine of random dimensions, lanes and requantization lanes, and ``graphs`` random
    exports it runs: each its own graph (random size up to the engine's depth, random degrees,
    zero included), bits (1..8 per node, 2..8 operands), weights (2..8 bits), steps and
    biases. ``order`` as :func:`~tests.sim_exports.random_export`'s. ``nonzeros``
    (combine-first): the input is mostly zeros (:func:`sparse_input`) and the engine holds it
    as its non-zeros, 1..5 a word. ``node_operand`` (combine-first): every operand with
    per-node bits (2..8) and steps."""
    max_nodes = int(rng.integers(2, 41))
    f0, hidden, classes = (int(rng.integers(1, 21)), int(rng.integers(1, 11)),
                           int(rng.integers(1, 7)))
    lanes = int(rng.choice([1, 2, 3, 4, 8, 16]))
    requant_lanes = int(rng.integers(1, lanes + 1))
    gs = []
    for _ in range(graphs):
        man, arr = random_export(rng, model, n=int(rng.integers(1, max_nodes + 1)), f0=f0,
                                 hidden=hidden, classes=classes, node_operand=node_operand,
                                 order=order)
        if nonzeros:
            arr["x"] = sparse_input(rng, arr["x"])
        gs.append(in_memory(man, arr))
    per_word = int(rng.integers(1, 6)) if nonzeros else 0
    words = max(int(input_words(g["x"], per_word).sum()) for g in gs) if nonzeros else 0
    cfg = EngineConfig(model=model, order=gs[0].manifest["order"], lanes=lanes, requant_lanes=requant_lanes, input_bits=3,
                       max_nodes=max_nodes,
                       max_edges=max(max(int(g["indptr"][-1]) for g in gs), 1),
                       layers=(LayerShape(f0, hidden, 8), LayerShape(hidden, classes, 8)),
                       nonzeros_per_word=per_word, max_input_words=max(words, 2) if words else 0)
    return cfg, gs


def graph_engine_suite(rng: np.random.Generator, batches: int):
    """One graph-level engine of random lanes and requantization lanes, and ``batches`` random
    graph-level exports it runs (:func:`~tests.sim_exports.random_graph_export`: graphs of
    0..12 nodes, pools of 1..8 entries, every width random) of one model shape."""
    from a2q.sim.engine_image import input_code_bits
    from a2q.sim.graph_batch import GraphBatchExport

    from .sim_exports import random_graph_export

    f0, hidden, classes, layers = (int(rng.integers(1, 8)), int(rng.integers(1, 8)),
                                   int(rng.integers(2, 5)), int(rng.integers(1, 4)))
    gs = [GraphBatchExport(None, *random_graph_export(rng, f0=f0, hidden=hidden,
                                                      classes=classes, layers=layers))
          for _ in range(batches)]
    lanes = int(rng.choice([1, 2, 3, 4, 8, 16]))
    shapes = [LayerShape(L["in_dim"], L["out_dim"], 8) for L in gs[0].layers]
    cfg = EngineConfig(
        model="gin", order="aggregate-first", lanes=lanes,
        requant_lanes=int(rng.integers(1, lanes + 1)), layers=tuple(shapes),
        input_bits=max(max(g.manifest["input_bits"], input_code_bits(g)) for g in gs),
        max_nodes=max(max(g.num_nodes for g in gs), 2),
        max_edges=max(max(g.manifest["num_edges"] for g in gs), 1),
        pool_size=max(L["pool_size"] for g in gs for L in g.layers),
        max_graphs=max(g.num_graphs for g in gs), classes=classes)
    return cfg, gs
