"""Degree-Quant (Tailor et al., ICLR 2021): the INT-N baseline A²Q is compared with.

Two ingredients:

- :class:`ProtectiveMask`: in training, node i is kept at full precision with a probability that
  rises linearly with the rank of its in-degree, from ``p_min`` (lowest degree) to ``p_max``
  (highest). High in-degree nodes accumulate the most error, so they are protected most often.
  A fresh mask is drawn for each training forward pass; in evaluation nothing is protected.
- :class:`RangeQuantizer`: per-tensor asymmetric uniform quantization over ``[lo, hi]`` with
  ``2**bits`` levels (round half away from zero, as everywhere in a2q). In training the range is the ``percentile``-th and ``100 - percentile``-th
  percentiles of the unprotected values, smoothed by an exponential moving average; evaluation
  uses the stored range. Straight-through gradient inside the range, zero outside.
"""

from __future__ import annotations

import torch
from torch import nn

from .functional import round_half_away

_SAMPLE = 1 << 16  # values drawn (at a fixed stride) to estimate a percentile


class ProtectiveMask(nn.Module):
    def __init__(self, in_degree: torch.Tensor | None, p_min: float = 0.0, p_max: float = 0.2):
        super().__init__()
        self.p_min, self.p_max = p_min, p_max
        self.current: torch.Tensor | None = None
        prob = None
        if in_degree is not None:
            prob = self.probabilities(in_degree)
        self.register_buffer("prob", prob, persistent=False)

    def probabilities(self, in_degree: torch.Tensor) -> torch.Tensor:
        n = in_degree.numel()
        order = torch.argsort(in_degree.float(), stable=True)
        rank = torch.empty(n)
        rank[order] = torch.arange(n, dtype=torch.float) / max(1, n - 1)
        return self.p_min + (self.p_max - self.p_min) * rank

    def resample(self, in_degree: torch.Tensor | None = None) -> None:
        """Draw the mask for this forward pass (``in_degree`` for graphs that change per batch)."""
        if not self.training:
            self.current = None
            return
        prob = self.prob if in_degree is None else self.probabilities(in_degree)
        self.current = torch.bernoulli(prob).bool()


class RangeQuantizer(nn.Module):
    def __init__(self, bits: int, *, percentile: float = 0.1, momentum: float = 0.1,
                 mask: ProtectiveMask | None = None):
        super().__init__()
        self.bits = bits
        self.percentile = percentile
        self.momentum = momentum
        self.mask = mask
        self.register_buffer("lo", torch.zeros(()))
        self.register_buffer("hi", torch.zeros(()))
        self.register_buffer("initialised", torch.zeros((), dtype=torch.bool))

    def _observe(self, x: torch.Tensor) -> None:
        flat = x.detach().reshape(-1)
        if flat.numel() == 0:
            return
        if flat.numel() > _SAMPLE:
            flat = flat[:: flat.numel() // _SAMPLE]
        if self.percentile > 0:
            q = torch.tensor([self.percentile / 100, 1 - self.percentile / 100])
            lo, hi = torch.quantile(flat, q)
        else:
            lo, hi = flat.min(), flat.max()
        if not bool(self.initialised):
            self.lo.copy_(lo)
            self.hi.copy_(hi)
            self.initialised.fill_(True)
        else:
            self.lo.lerp_(lo, self.momentum)
            self.hi.lerp_(hi, self.momentum)

    def forward(self, x: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Quantize ``x`` (rows are nodes), or the entries ``x`` of nodes ``rows``."""
        protect = self.mask.current if (self.mask is not None and self.training) else None
        if protect is not None and rows is not None:
            protect = protect[rows]
        if self.training:
            self._observe(x if protect is None else x[~protect])
        levels = 2 ** self.bits - 1
        scale = torch.clamp(self.hi - self.lo, min=1e-8) / levels
        inside = (x >= self.lo) & (x <= self.hi)
        q = torch.clamp(round_half_away((x - self.lo) / scale), 0, levels) * scale + self.lo
        out = torch.where(inside, x + (q - x).detach(), q.detach())
        if protect is not None:
            out = torch.where(protect.view(-1, *([1] * (x.dim() - 1))), x, out)
        return out

    def entries(self, values: torch.Tensor, rows: torch.Tensor, width: int) -> torch.Tensor:
        """The non-zero entries of a sparse matrix: zeros stay exactly zero and the range is
        estimated from the non-zero values."""
        return self(values, rows)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, percentile={self.percentile}"
