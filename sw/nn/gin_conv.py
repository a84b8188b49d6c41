"""Quantized graph isomorphism convolution (Xu et al., 2019) as A²Q trains it."""

from __future__ import annotations

import torch
from torch import nn
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.inits import glorot
from torch_geometric.utils import remove_self_loops, spmm, to_torch_csr_tensor

from ..quant.scheme import QuantScheme


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

    ``cached=True`` (one fixed graph, node-level tasks) computes the adjacency once and, when
    the operand is neither quantized nor trained (the first layer's fixed input features), the
    neighbour sum :math:`\sum_j \mathbf{x}_j` once.
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
        self._constant_sum: tuple[tuple, torch.Tensor] | None = None

    def adjacency(self, edge_index: torch.Tensor, num_nodes: int) -> torch.Tensor:
        """The 0/1 adjacency without self-loops, CSR indexed [target, source]."""
        if self.cached and self._adj is not None:
            return self._adj
        ei, _ = remove_self_loops(edge_index)
        adj = to_torch_csr_tensor(ei.flip(0), size=(num_nodes, num_nodes))
        if self.cached:
            self._adj = adj
        return adj

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        adj = self.adjacency(edge_index, x.size(0))
        h = self.operand_quant(x)
        h = (1 + self.eps) * h + self._neighbour_sum(adj, h)
        return self.input_quant(h) @ self.weight_quant(self.weight).t() + self.bias

    def _neighbour_sum(self, adj: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        constant = (self.cached and isinstance(self.operand_quant, nn.Identity)
                    and not h.requires_grad)
        if not constant:
            return self.propagate(adj, x=h)
        key = (h.data_ptr(), tuple(h.shape), h._version)
        if self._constant_sum is None or self._constant_sum[0] != key:
            self._constant_sum = (key, self.propagate(adj, x=h))
        return self._constant_sum[1]

    def message(self, x_j: torch.Tensor) -> torch.Tensor:  # pragma: no cover - fused path used
        return x_j

    def message_and_aggregate(self, adj_t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return spmm(adj_t, x, reduce="sum")

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_channels}, {self.out_channels})"
