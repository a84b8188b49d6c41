"""The Nearest-Neighbor Strategy: per-node (step, bits) for graphs never seen in training."""

from __future__ import annotations

import torch
from torch import nn

from .functional import integer_bits, quantize


def nearest_index(max_abs: torch.Tensor, q_max: torch.Tensor) -> torch.Tensor:
    """For each node, the pool index whose ``q_max`` is nearest to the node's ``max |x|``.

    Ties go to the lower index. ``max_abs``: ``[N]``; ``q_max``: ``[m]``; returns ``[N]`` int64.
    """
    return (max_abs.view(-1, 1) - q_max.view(1, -1)).abs().argmin(dim=1)


class NearestNeighborQuantizer(nn.Module):
    r"""A pool of ``m`` learnable (step, bits) pairs shared by all nodes of all graphs.

    Node i takes the pair :math:`k^* = \arg\min_k |q_{max,k} - \max_j |x_{ij}||` with
    :math:`q_{max,k} = s_k (2^{B_k - 1} - 1)`: the pair whose representable range best fits
    the node's own range. Gradients of the task loss flow to the chosen pairs (summed over the
    nodes that chose them). The choice needs only the node's features, so it serves nodes of
    graphs never seen in training: this is how A²Q handles graph-level tasks.

    The pool's steps start log-spaced over ``[step_min, step_max]`` so that the pairs cover a
    wide range of node ranges from the first step.

    ``local=False``: the pairs learn from the task loss. ``local=True``: each pair descends the
    L1 quantization error of the nodes that chose it, :math:`\sum_i \mathrm{mean}_j
    |x_{q,ij} - x_{ij}|` over those nodes (the local gradient of
    :mod:`a2q.sw.quant.functional`), plus the memory penalty on the bits: under the task loss
    alone a clipped node passes no gradient back to its input, and the pairs can settle with
    most nodes clipped.
    """

    def __init__(self, pool_size: int, init_bits: float, *, unsigned: bool,
                 local: bool = False, step_min: float = 1e-3, step_max: float = 1.0):
        super().__init__()
        if pool_size < 1:
            raise ValueError(f"pool_size must be at least 1, got {pool_size}")
        self.unsigned = unsigned
        self.local = local
        self.min_bits = 2
        self.max_bits = 9 if unsigned else 8
        steps = torch.logspace(torch.log10(torch.tensor(step_min)),
                               torch.log10(torch.tensor(step_max)), pool_size)
        self.step = nn.Parameter(steps)
        self.bits = nn.Parameter(torch.full((pool_size,), float(init_bits)))
        self.last_index: torch.Tensor | None = None

    def q_max(self) -> torch.Tensor:
        B = integer_bits(self.bits, self.min_bits, self.max_bits)
        return self.step.detach().abs() * (torch.exp2(B - 1) - 1)

    def select(self, x: torch.Tensor) -> torch.Tensor:
        return nearest_index(x.detach().abs().amax(dim=1), self.q_max())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        idx = self.select(x)
        self.last_index = idx
        return quantize(x, self.step[idx].unsqueeze(1), self.bits[idx].unsqueeze(1),
                        local=self.local, min_bits=self.min_bits, max_bits=self.max_bits)

    @torch.no_grad()
    def project_(self) -> None:
        self.step.abs_().clamp_(min=1e-6)
        self.bits.clamp_(self.min_bits - 0.49, self.max_bits + 0.49)

    def stored_bits(self) -> torch.Tensor:
        """Stored width of each node seen in the last forward pass (paper's convention)."""
        if self.last_index is None:
            return torch.zeros(0, dtype=torch.long)
        B = integer_bits(self.bits, self.min_bits, self.max_bits)[self.last_index]
        return (B - 1 if self.unsigned else B).long()

    def memory_bits(self) -> torch.Tensor:
        """Continuous widths of the nodes of the last forward pass (gradient flows to the pool)."""
        if self.last_index is None:
            return self.bits.new_zeros(0)
        return self.bits.abs()[self.last_index]

    def extra_repr(self) -> str:
        return f"pool_size={self.step.numel()}, unsigned={self.unsigned}, local={self.local}"
