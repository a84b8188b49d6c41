r"""The memory penalty that pushes the average bitwidth down.

.. math::
    M = \sum_l w_l \sum_i |b_{l,i}| / 8 / 1024 \;\text{(KB)}, \qquad
    \mathcal{L}_{mem} = \lambda \, \mathrm{relu}(M - M_{target})^2

``w_l`` is the penalty width of quantized tensor ``l``. The authors' code uses the model's hidden
width for every tensor (for GCN this is the true width; for GIN's first layer, whose true width
is the 1433 or 3703 input features, it is not); :func:`memory_kb` takes the widths explicitly.
"""

from __future__ import annotations

import torch


def memory_kb(bits: list[torch.Tensor], widths: list[int], graphs: int = 1) -> torch.Tensor:
    """Feature memory in KB (per graph when ``graphs`` > 1) of per-node widths ``bits``."""
    if len(bits) != len(widths):
        raise ValueError("one width per quantized tensor")
    total = bits[0].new_zeros(()) if bits else torch.zeros(())
    for b, w in zip(bits, widths):
        total = total + w * b.sum()
    return total / 8.0 / 1024.0 / graphs


def memory_penalty(memory: torch.Tensor, target_kb: float, lam: float) -> torch.Tensor:
    """lambda * relu(M - target)^2."""
    return lam * torch.relu(memory - target_kb) ** 2
