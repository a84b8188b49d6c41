r"""The engine-cycle penalty: what the per-node bits cost the layer engine, in place of the
memory they take (``a2q train --penalty cycles``).

The engine pays a node's bits once per tile of ``lanes`` columns for every item that reads
them: the input of a combination once (the node's own row), the operand of a GCN aggregation
once for every edge out of the node, its self-loop included. With :math:`c_{t,i}` those counts
times the tiles of the stage that reads tensor :math:`t`,

.. math::
    C = \sum_t \sum_i c_{t,i} \, |b_{t,i}| / 1000 \;\text{(thousands of cycles)}, \qquad
    \mathcal{L}_{cyc} = \lambda \, \mathrm{relu}(C - C_{target})^2,

the same form as the memory penalty (:mod:`a2q.sw.quant.memory`). A hub's operand bits then
cost as many times more as it has edges: the penalty pushes hubs down where the memory
penalty weighs every node alike.
"""

from __future__ import annotations

import math

import torch


def cycle_weights(model, out_degree: torch.Tensor, lanes: int) -> list[torch.Tensor]:
    """:math:`c_{t,i}` for each of ``model``'s per-node tensors (``per_node_tensors``), as
    floats [N]: ``out_degree`` counts each node's edges out of it, self-loops excluded."""
    weights = []
    for name, q, _ in model.per_node_tensors():
        layer = int(name.split(".")[0].removeprefix("layer"))
        tiles = math.ceil(model.convs[layer - 1].out_channels / lanes)
        n = q.memory_bits().numel()
        reads = out_degree.double() + 1 if name.endswith(".operand") else torch.ones(n)
        weights.append((reads * tiles).float())
    return weights


def kilo_cycles(bits: list[torch.Tensor], weights: list[torch.Tensor]) -> torch.Tensor:
    """:math:`C` for per-node widths ``bits`` and their ``weights`` (:func:`cycle_weights`)."""
    if len(bits) != len(weights):
        raise ValueError("one weight vector per quantized tensor")
    total = bits[0].new_zeros(()) if bits else torch.zeros(())
    for b, w in zip(bits, weights):
        total = total + (w * b).sum()
    return total / 1000.0
