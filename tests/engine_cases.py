"""Random engines and the random graphs and models they run (the generator of the engine tests
and of ``make regress``)."""

import numpy as np

from a2q.hw.engine.layout import EngineConfig, LayerShape
from a2q.sim.annotated_graph import AnnotatedGraph

from .sim_exports import random_export


def in_memory(manifest: dict, arrays: dict) -> AnnotatedGraph:
    return AnnotatedGraph(None, dict(manifest, tensors={}), arrays)


def engine_suite(rng: np.random.Generator, model: str, graphs: int):
    """One engine of random dimensions, lanes and requantization lanes, and ``graphs`` random exports it runs: each
    its own graph (random size up to the engine's depth, random degrees, zero included), bits
    (1..8 per node, 2..8 operands), weights (2..8 bits), steps and biases."""
    max_nodes = int(rng.integers(2, 41))
    f0, hidden, classes = (int(rng.integers(1, 21)), int(rng.integers(1, 11)),
                           int(rng.integers(1, 7)))
    lanes = int(rng.choice([1, 2, 3, 4, 8, 16]))
    requant_lanes = int(rng.integers(1, lanes + 1))
    gs = [in_memory(*random_export(rng, model, n=int(rng.integers(1, max_nodes + 1)), f0=f0,
                                   hidden=hidden, classes=classes)) for _ in range(graphs)]
    cfg = EngineConfig(model=model, lanes=lanes, requant_lanes=requant_lanes, input_bits=3, max_nodes=max_nodes,
                       max_edges=max(max(int(g["indptr"][-1]) for g in gs), 1),
                       layers=(LayerShape(f0, hidden, 8), LayerShape(hidden, classes, 8)))
    return cfg, gs
