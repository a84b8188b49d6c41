"""Quantized graph attention (Veličković et al., 2018) as A²Q trains it."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.inits import glorot
from torch_geometric.utils import add_self_loops, remove_self_loops, softmax

from ..quant.scheme import QuantScheme


class QGATConv(MessagePassing):
    r"""Multi-head graph attention with quantized features, weights and operand.

    .. math::
        \mathbf{h}_i = Q_{op}\big(Q_w(\mathbf{W})\, Q_x(\mathbf{x}_i)\big), \quad
        \alpha_{ij} = \mathrm{softmax}_j\big(\mathrm{LeakyReLU}(\mathbf{a}_s^\top \mathbf{h}_j
        + \mathbf{a}_d^\top \mathbf{h}_i)\big), \quad
        \mathbf{x}'_i = \big\Vert_{k} \sum_{j \in \mathcal{N}(i) \cup \{i\}} \alpha^k_{ij}\mathbf{h}^k_j
        + \mathbf{b}

    (heads concatenated, or averaged with ``concat=False``). Attention coefficients stay in
    floating point; the quantized tensors are the per-node input rows (non-negative: the model
    uses ReLU between layers), the weight (per output column) and the projected features
    :math:`\mathbf{h}` (per column).
    """

    def __init__(self, in_channels: int, out_channels: int, scheme: QuantScheme, *,
                 heads: int = 1, concat: bool = True, dropout: float = 0.0, num_nodes: int,
                 quantize_input: bool, init_bits: float = 4.0):
        super().__init__(aggr="add", node_dim=0)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.heads, self.concat, self.dropout = heads, concat, dropout
        self.weight = nn.Parameter(torch.empty(heads * out_channels, in_channels))
        self.att_src = nn.Parameter(torch.empty(1, heads, out_channels))
        self.att_dst = nn.Parameter(torch.empty(1, heads, out_channels))
        for p in (self.weight, self.att_src, self.att_dst):
            glorot(p)
        self.bias = nn.Parameter(torch.zeros(heads * out_channels if concat else out_channels))
        self.input_quant = (scheme.features(num_nodes, unsigned=True, init_bits=init_bits)
                            if quantize_input else nn.Identity())
        self.weight_quant = scheme.weight(self.weight)
        self.operand_quant = scheme.operand(heads * out_channels)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        H, C = self.heads, self.out_channels
        h = self.input_quant(x) @ self.weight_quant(self.weight).t()
        h = self.operand_quant(h).view(-1, H, C)
        a_src = (h * self.att_src).sum(-1)
        a_dst = (h * self.att_dst).sum(-1)
        ei, _ = remove_self_loops(edge_index)
        ei, _ = add_self_loops(ei, num_nodes=x.size(0))
        out = self.propagate(ei, x=h, alpha=(a_src, a_dst))
        out = out.reshape(-1, H * C) if self.concat else out.mean(dim=1)
        return out + self.bias

    def message(self, x_j, alpha_j, alpha_i, index, ptr, size_i):
        alpha = F.leaky_relu(alpha_j + alpha_i, 0.2)
        alpha = softmax(alpha, index, ptr, size_i)
        alpha = F.dropout(alpha, p=self.dropout, training=self.training)
        return x_j * alpha.unsqueeze(-1)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
                f"heads={self.heads})")
