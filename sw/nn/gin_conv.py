"""Quantized graph isomorphism convolution (Xu et al., 2019) as A²Q trains it."""

from __future__ import annotations

import torch
from torch import nn
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.inits import glorot
from torch_geometric.utils import remove_self_loops, spmm

from ..quant.scheme import QuantScheme
from .adjacency import csr_adjacency


class QGINConv(MessagePassing):
    r"""GIN convolution with one linear layer, quantized before and after aggregation.

    .. math::
        \mathbf{x}'_i = Q_w(\mathbf{W})\, Q_x\Big((1+\epsilon)\,Q_{op}(\mathbf{x}_i)
        + \sum_{j \in \mathcal{N}(i)} Q_{op}(\mathbf{x}_j)\Big) + \mathbf{b}

    :math:`Q_{op}` quantizes the aggregation operand per feature column (skipped when
    ``quantize_operand=False``, as for binary inputs), :math:`Q_x` quantizes each node's
    aggregated row (A²Q: its own learned bits, or the Nearest-Neighbor pool in graph-level
    tasks), :math:`Q_w` the weight per output column. :math:`\epsilon` is learned. Inputs are
    non-negative (binary or post-ReLU), so both feature quantizers are unsigned.

    ``cached=True`` (one fixed graph, node-level tasks) computes the adjacency once. When the
    operand is also neither quantized nor trained (the first layer's fixed, sparse bag-of-words
    input), the neighbour sum is computed once and only the non-zero entries of the aggregated
    matrix are quantized: the same values and gradients as the dense computation (a zero
    quantizes to zero), at a fraction of the cost on Cora and CiteSeer (5% non-zero).
    """

    def __init__(self, in_channels: int, out_channels: int, scheme: QuantScheme, *,
                 num_nodes: int, quantize_operand: bool, init_bits: float = 5.0,
                 cached: bool = False):
        super().__init__(aggr="add")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels))
        glorot(self.weight)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.eps = nn.Parameter(torch.zeros(1))
        self.operand_quant = (scheme.operand(in_channels, unsigned=True)
                              if quantize_operand else nn.Identity())
        self.input_quant = scheme.features(num_nodes, unsigned=True, init_bits=init_bits)
        self.weight_quant = scheme.weight(self.weight)
        self.cached = cached
        self._adj: torch.Tensor | None = None
        self._pattern: tuple | None = None

    def adjacency(self, edge_index: torch.Tensor, num_nodes: int) -> torch.Tensor:
        """The 0/1 adjacency without self-loops, CSR indexed [target, source]."""
        if self.cached and self._adj is not None:
            return self._adj
        ei, _ = remove_self_loops(edge_index)
        adj = csr_adjacency(ei, None, num_nodes)
        if self.cached:
            self._adj = adj
        return adj

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor,
                adj: torch.Tensor | None = None) -> torch.Tensor:
        """``adj``: :meth:`adjacency` of ``edge_index``, where the caller built it already."""
        if adj is None:
            adj = self.adjacency(edge_index, x.size(0))
        w = self.weight_quant(self.weight).t()
        if (self.cached and isinstance(self.operand_quant, nn.Identity)
                and not x.requires_grad):
            return self._forward_fixed_input(x, adj) @ w + self.bias
        h = self.operand_quant(x)
        h = (1 + self.eps) * h + self.propagate(adj, x=h)
        return self.input_quant(h) @ w + self.bias

    def _forward_fixed_input(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        """Quantized (1+eps) x + sum_j x_j for a constant input, on its non-zero pattern."""
        key = (x.data_ptr(), tuple(x.shape), x._version)
        if self._pattern is None or self._pattern[0] != key:
            agg = self.propagate(adj, x=x)
            rows, cols = ((x != 0) | (agg != 0)).nonzero(as_tuple=True)
            self._pattern = (key, rows, cols, x[rows, cols], agg[rows, cols])
        _, rows, cols, x_nz, agg_nz = self._pattern
        h = (1 + self.eps) * x_nz + agg_nz
        if not isinstance(self.input_quant, nn.Identity):
            h = self.input_quant.entries(h, rows, x.size(1))
        return torch.zeros(x.shape, dtype=h.dtype).index_put((rows, cols), h)

    def message(self, x_j: torch.Tensor) -> torch.Tensor:  # pragma: no cover - fused path used
        return x_j

    def message_and_aggregate(self, adj_t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return spmm(adj_t, x, reduce="sum")

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_channels}, {self.out_channels})"
