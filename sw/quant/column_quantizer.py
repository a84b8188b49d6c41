"""Per-column quantizer with a fixed width: 4-bit weights and the quantized XW product."""

from __future__ import annotations

import torch
from torch import nn

from .functional import quantize, quantize_int


class ColumnQuantizer(nn.Module):
    r"""Fake-quantizes a matrix with one learnable step per channel and ``bits`` signed bits.

    ``channel_dim`` says which dimension indexes the channel: ``0`` for a weight of shape
    ``[out, in]`` (one step per output column of XW), ``1`` for XW of shape ``[N, out]``.
    The width is fixed (a buffer): A²Q keeps weights and XW at 4 bits. ``unsigned=True`` is for
    non-negative inputs: ``bits`` stored bits, one more (the unused sign) inside the quantizer.
    ``channels=1`` gives a per-tensor quantizer.
    ``local=True`` trains the steps on the L1 quantization error (the authors do this for XW);
    ``local=False`` on the task loss (weights).
    """

    def __init__(self, channels: int, bits: int, *, channel_dim: int, local: bool,
                 unsigned: bool = False, step_mean: float = 0.01, step_std: float = 0.01):
        super().__init__()
        low = 1 if unsigned else 2
        if not low <= bits <= 8:
            kind = "unsigned" if unsigned else "signed"
            raise ValueError(f"{kind} per-column bits must be in {low}..8, got {bits}")
        shape = (channels, 1) if channel_dim == 0 else (1, channels)
        step = torch.empty(shape).normal_(step_mean, step_std).abs_()
        self.step = nn.Parameter(step.clamp_(min=1e-4))
        self.unsigned = unsigned
        self.max_bits = 9 if unsigned else 8
        self.register_buffer("bits", torch.full(shape, float(bits + unsigned)))
        self.local = local
        self.channel_dim = channel_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return quantize(x, self.step, self.bits, local=self.local, min_bits=2,
                        max_bits=self.max_bits)

    @torch.no_grad()
    def init_step_(self, x: torch.Tensor) -> None:
        """LSQ's initialisation from data: s = 2 mean|x| / sqrt(Q), per channel."""
        Q = 2.0 ** (float(self.bits.view(-1)[0]) - 1) - 1
        reduce = 1 if self.channel_dim == 0 else 0
        mean_abs = x.abs().mean(dim=reduce, keepdim=True) if self.step.numel() > 1 else x.abs().mean()
        self.step.copy_((2 * mean_abs / Q ** 0.5).clamp(min=1e-4).expand_as(self.step))

    @torch.no_grad()
    def project_(self) -> None:
        self.step.abs_().clamp_(min=1e-6)

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        return quantize_int(x, self.step, self.bits, 2, self.max_bits)

    @property
    def width(self) -> int:
        """Stored bits (the sign excluded for unsigned inputs)."""
        return int(self.bits.view(-1)[0]) - self.unsigned

    def extra_repr(self) -> str:
        return (f"channels={self.step.numel()}, bits={self.width}, unsigned={self.unsigned}, "
                f"local={self.local}")
