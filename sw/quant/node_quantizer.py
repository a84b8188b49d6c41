"""Per-node feature quantizer: every node i owns a learnable step s_i and bitwidth b_i."""

from __future__ import annotations

import torch
from torch import nn

from .functional import integer_bits, quantize


class NodeQuantizer(nn.Module):
    r"""Fake-quantizes a node feature matrix ``x`` of shape ``[N, F]`` row by row.

    Row i uses :math:`B_i = \mathrm{round}(|b_i|)` bits and step :math:`s_i` (see
    :mod:`a2q.sw.quant.functional`). With ``unsigned=True`` (post-ReLU inputs) the sign bit is
    never used: the stored (and reported) width is :math:`B_i - 1`. Widths are at least 1 stored
    bit and at most 8: :math:`B \in [2, 9]` unsigned, :math:`[2, 8]` signed. :meth:`project_`
    keeps ``b`` inside that range after each optimizer step, so ``b`` itself is the continuous
    bitwidth the memory penalty sees.

    ``local=True`` trains ``s`` and ``b`` on each node's own L1 quantization error (node-level
    tasks); ``learn_bits=False`` freezes the widths (the uniform baseline).
    """

    def __init__(self, num_nodes: int, init_bits: float, *, unsigned: bool, local: bool = True,
                 learn_bits: bool = True, step_mean: float = 0.01, step_std: float = 0.01):
        super().__init__()
        self.unsigned = unsigned
        self.local = local
        self.min_bits = 2
        self.max_bits = 9 if unsigned else 8
        step = torch.empty(num_nodes, 1).normal_(step_mean, step_std).abs_()
        self.step = nn.Parameter(step.clamp_(min=1e-4))
        bits = torch.full((num_nodes, 1), float(init_bits))
        if learn_bits:
            self.bits = nn.Parameter(bits)
        else:
            self.register_buffer("bits", bits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return quantize(x, self.step, self.bits, local=self.local, min_bits=self.min_bits,
                        max_bits=self.max_bits)

    def entries(self, values: torch.Tensor, rows: torch.Tensor, width: int) -> torch.Tensor:
        """Quantize the non-zero entries of a sparse ``[N, width]`` matrix (``values`` in rows
        ``rows``): the same result and gradients as quantizing the dense matrix, since a zero
        quantizes to zero and adds nothing to any gradient."""
        return quantize(values, self.step[rows, 0], self.bits[rows, 0], local=self.local,
                        min_bits=self.min_bits, max_bits=self.max_bits, local_count=width)

    @torch.no_grad()
    def project_(self) -> None:
        self.step.abs_().clamp_(min=1e-6)
        if isinstance(self.bits, nn.Parameter):
            self.bits.clamp_(self.min_bits - 0.49, self.max_bits + 0.49)

    def stored_bits(self) -> torch.Tensor:
        """Per-node stored width in the paper's convention (B-1 unsigned, B signed), int64."""
        B = integer_bits(self.bits, self.min_bits, self.max_bits).view(-1)
        return (B - 1 if self.unsigned else B).long()

    def memory_bits(self) -> torch.Tensor:
        """The continuous widths the memory penalty sums (``|b_i|``, one per node)."""
        return self.bits.abs().view(-1)

    def extra_repr(self) -> str:
        return (f"num_nodes={self.step.shape[0]}, unsigned={self.unsigned}, local={self.local}, "
                f"learn_bits={isinstance(self.bits, nn.Parameter)}")


class OperandQuantizer(NodeQuantizer):
    """A :class:`NodeQuantizer` of the aggregation operand (XW for GCN): every edge reads the
    source node's operand, so its bits are what the engine's aggregation pays per edge. Its
    steps train at the operand's learning rate."""
