"""Quantized graph convolution (Kipf & Welling, 2017) as A²Q trains it."""

from __future__ import annotations

import torch
from torch import nn
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.nn.inits import glorot
from torch_geometric.utils import spmm

from ..quant.scheme import QuantScheme
from .adjacency import csr_adjacency


class QGCNConv(MessagePassing):
    r"""Graph convolution with quantized features, weights and aggregation operand.

    .. math::
        \mathbf{X}' = \hat{\mathbf{D}}^{-1/2}\hat{\mathbf{A}}\hat{\mathbf{D}}^{-1/2}\,
        Q_{op}\big(Q_x(\mathbf{X})\, Q_w(\mathbf{W})\big) + \mathbf{b}

    where :math:`\hat{\mathbf{A}} = \mathbf{A} + \mathbf{I}`, :math:`Q_x` quantizes each node's
    input row (A²Q: its own learned bits; skipped when ``quantize_input=False``, as for binary
    bag-of-words inputs), :math:`Q_w` quantizes the weight per output column and :math:`Q_{op}`
    quantizes the combination result XW before aggregation, per column (the paper) or per node
    (A²Q's bits on every edge's operand). The normalisation stays
    real-valued here; the hardware export fixes it to a fixed-point constant.

    The input is assumed non-negative (it follows a ReLU) when quantized.
    """

    def __init__(self, in_channels: int, out_channels: int, scheme: QuantScheme, *,
                 num_nodes: int, quantize_input: bool, init_bits: float = 4.0,
                 cached: bool = False):
        super().__init__(aggr="add")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels))
        glorot(self.weight)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.input_quant = (scheme.features(num_nodes, unsigned=True, init_bits=init_bits)
                            if quantize_input else nn.Identity())
        self.weight_quant = scheme.weight(self.weight)
        self.operand_quant = scheme.operand(out_channels, num_nodes=num_nodes)
        self.cached = cached
        self._adj: torch.Tensor | None = None

    def adjacency(self, edge_index: torch.Tensor, num_nodes: int) -> torch.Tensor:
        """D^-1/2 (A + I) D^-1/2 as a CSR matrix indexed [target, source]."""
        if self.cached and self._adj is not None:
            return self._adj
        ei, w = gcn_norm(edge_index, None, num_nodes, add_self_loops=True)
        adj = csr_adjacency(ei, w, num_nodes)
        if self.cached:
            self._adj = adj
        return adj

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        adj = self.adjacency(edge_index, x.size(0))
        h = self.input_quant(x) @ self.weight_quant(self.weight).t()
        h = self.operand_quant(h)
        return self.propagate(adj, x=h) + self.bias

    def message(self, x_j: torch.Tensor) -> torch.Tensor:  # pragma: no cover - fused path used
        return x_j

    def message_and_aggregate(self, adj_t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return spmm(adj_t, x, reduce="sum")

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_channels}, {self.out_channels})"
