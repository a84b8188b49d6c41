"""Two-layer node classifiers (GCN, GIN, GAT) and the graph classifier (GIN), any method.

Every model exposes :meth:`feature_quantizers`: the quantizers whose widths are per node
(the tensors A²Q learns bits for), with :meth:`penalty_widths` (the width the memory penalty
weights each by) and :meth:`feature_widths` (their true width in features).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import global_add_pool

from a2q.common.choices import MODELS, ORDERS

from .nn import QGATConv, QGCNConv, QGIN0Conv, QGINConv
from .quant.nearest_neighbor import NearestNeighborQuantizer
from .quant.node_quantizer import NodeQuantizer
from .quant.scheme import QuantScheme

PER_NODE = (NodeQuantizer, NearestNeighborQuantizer)


class QuantizedModel(nn.Module):
    """Bookkeeping shared by all models: per-node quantizers and parameter projection."""

    scheme: QuantScheme

    def feature_quantizers(self) -> list[nn.Module]:
        """Every per-node quantizer, layer by layer: a layer's input, then its operand."""
        return [q for _, q, _ in self.per_node_tensors()]

    def feature_widths(self) -> list[int]:
        """True width (features per node) of each per-node quantized tensor."""
        return [w for _, _, w in self.per_node_tensors()]

    def per_node_tensors(self) -> list[tuple[str, nn.Module, int]]:
        """(name, quantizer, width) of each per-node quantized tensor: ``layer{l}.input``
        and ``layer{l}.operand``."""
        out = []
        for l, m in enumerate(self.convs, start=1):
            if isinstance(m.input_quant, PER_NODE):
                out.append((f"layer{l}.input", m.input_quant, m.in_channels))
            if isinstance(getattr(m, "operand_quant", None), PER_NODE):
                out.append((f"layer{l}.operand", m.operand_quant, m.out_channels))
        return out

    def penalty_widths(self) -> list[int]:
        """Width the memory penalty gives each per-node tensor: the hidden width, as the
        authors' code does (see :mod:`a2q.sw.quant.memory`)."""
        return [self.hidden_width] * len(self.feature_quantizers())

    @torch.no_grad()
    def project_(self) -> None:
        """Keep steps positive and bits in range after an optimizer step."""
        for m in self.modules():
            if m is not self and hasattr(m, "project_"):
                m.project_()


class NodeGCN(QuantizedModel):
    """conv(F→hidden) → ReLU → dropout → conv(hidden→classes); layer 1's input unquantized."""

    def __init__(self, in_channels: int, hidden: int, classes: int, scheme: QuantScheme, *,
                 num_nodes: int, dropout: float, init_bits: float = 4.0):
        super().__init__()
        self.scheme = scheme
        self.hidden_width = hidden
        self.dropout = dropout
        self.convs = nn.ModuleList([
            QGCNConv(in_channels, hidden, scheme, num_nodes=num_nodes, quantize_input=False,
                     cached=True),
            QGCNConv(hidden, classes, scheme, num_nodes=num_nodes, quantize_input=True,
                     init_bits=init_bits, cached=True),
        ])

    def forward(self, x, edge_index):
        self.scheme.resample()
        x = F.relu(self.convs[0](x, edge_index))
        x = F.dropout(x, self.dropout, self.training)
        return self.convs[1](x, edge_index)


class NodeGIN(QuantizedModel):
    """GIN(F→hidden) → ReLU → dropout → GIN(hidden→classes).

    ``order`` (:data:`a2q.common.choices.ORDERS`): "aggregate-first" sums the features, then applies W
    (:class:`~a2q.sw.nn.QGINConv`, learned eps, the binary input's operand unquantized);
    "combine-first" applies W, then sums (:class:`~a2q.sw.nn.QGIN0Conv`, eps 0, layer 1's
    binary input unquantized).
    """

    def __init__(self, in_channels: int, hidden: int, classes: int, scheme: QuantScheme, *,
                 num_nodes: int, dropout: float, init_bits: float = 5.0,
                 order: str = "aggregate-first"):
        super().__init__()
        self.scheme = scheme
        self.hidden_width = hidden
        self.dropout = dropout
        if order == "combine-first":
            self.convs = nn.ModuleList([
                QGIN0Conv(in_channels, hidden, scheme, num_nodes=num_nodes,
                          quantize_input=False, cached=True),
                QGIN0Conv(hidden, classes, scheme, num_nodes=num_nodes, quantize_input=True,
                          init_bits=init_bits, cached=True),
            ])
        elif order == "aggregate-first":
            self.convs = nn.ModuleList([
                QGINConv(in_channels, hidden, scheme, num_nodes=num_nodes,
                         quantize_operand=False, init_bits=init_bits, cached=True),
                QGINConv(hidden, classes, scheme, num_nodes=num_nodes, quantize_operand=True,
                         init_bits=init_bits, cached=True),
            ])
        else:
            raise ValueError(f"unknown GIN order {order!r}; valid: {', '.join(ORDERS)}")

    def forward(self, x, edge_index):
        self.scheme.resample()
        x = F.relu(self.convs[0](x, edge_index))
        x = F.dropout(x, self.dropout, self.training)
        return self.convs[1](x, edge_index)


class NodeGAT(QuantizedModel):
    """dropout → GAT(F→hidden×heads) → ReLU → dropout → GAT(→classes, 1 head)."""

    def __init__(self, in_channels: int, hidden: int, classes: int, scheme: QuantScheme, *,
                 num_nodes: int, dropout: float, heads: int = 8, init_bits: float = 4.0):
        super().__init__()
        self.scheme = scheme
        self.hidden_width = hidden * heads
        self.dropout = dropout
        self.convs = nn.ModuleList([
            QGATConv(in_channels, hidden, scheme, heads=heads, dropout=dropout,
                     num_nodes=num_nodes, quantize_input=False),
            QGATConv(hidden * heads, classes, scheme, heads=1, concat=False, dropout=dropout,
                     num_nodes=num_nodes, quantize_input=True, init_bits=init_bits),
        ])

    def forward(self, x, edge_index):
        self.scheme.resample()
        x = F.dropout(x, self.dropout, self.training)
        x = F.relu(self.convs[0](x, edge_index))
        x = F.dropout(x, self.dropout, self.training)
        return self.convs[1](x, edge_index)


class GraphGIN(QuantizedModel):
    r"""``layers`` GIN convolutions, each followed by batch normalisation and ReLU, and the GIN
    paper's readout: every layer's node features (the input's included) are sum-pooled per
    graph and scored by the layer's own linear head, and the scores are added.

    .. math::
        \mathbf{h}^{(l)} = \mathrm{ReLU}(\mathrm{BN}_l(\mathrm{GIN}_l(\mathbf{o}^{(l-1)}))),
        \qquad \mathbf{o}^{(l)} = Q_{op,l}(\mathbf{h}^{(l)}), \qquad
        \mathbf{y}_g = \sum_{l=0}^{L} Q_w(\mathbf{W}^{head}_l) \sum_{i \in g}
        \mathbf{o}^{(l)}_i + \mathbf{b}^{head}_l

    with :math:`\mathbf{o}^{(0)} = \mathbf{x}` (one-hot, exact). Each layer's output is
    quantized once, per column (:math:`Q_{op,l}`), and that one tensor is both the next
    layer's aggregation operand and what the readout pools, so the hardware keeps one integer
    tensor per layer and pools integers. Inside each convolution the aggregated row is
    quantized per node with the Nearest-Neighbor pool (A²Q), so graphs never seen in training
    are quantized too. The adjacency is built once per forward pass and shared by the layers.
    """

    def __init__(self, in_channels: int, hidden: int, classes: int, scheme: QuantScheme, *,
                 layers: int, dropout: float, init_bits: float = 5.0):
        super().__init__()
        self.scheme = scheme
        self.hidden_width = hidden
        self.dropout = dropout
        self.convs = nn.ModuleList(
            QGINConv(in_channels if i == 0 else hidden, hidden, scheme, num_nodes=0,
                     quantize_operand=False, init_bits=init_bits)
            for i in range(layers))
        self.norms = nn.ModuleList(nn.BatchNorm1d(hidden) for _ in range(layers))
        self.output_quants = nn.ModuleList(
            scheme.operand(hidden, unsigned=True) for _ in range(layers))
        self.heads = nn.ModuleList(
            nn.Linear(in_channels if i == 0 else hidden, classes) for i in range(layers + 1))
        self.head_quants = nn.ModuleList(scheme.weight(h.weight) for h in self.heads)

    def forward(self, x, edge_index, batch, num_graphs: int | None = None):
        self.scheme.resample(_in_degree(edge_index, x.size(0)))
        adj = self.convs[0].adjacency(edge_index, x.size(0))
        outs = [x]
        for conv, norm, quant in zip(self.convs, self.norms, self.output_quants):
            outs.append(quant(F.relu(norm(conv(outs[-1], edge_index, adj=adj)))))
        logits = 0
        for o, head, q in zip(outs, self.heads, self.head_quants):
            pooled = F.dropout(global_add_pool(o, batch, size=num_graphs), self.dropout,
                               self.training)
            logits = logits + F.linear(pooled, q(head.weight), head.bias)
        return logits


def _in_degree(edge_index: torch.Tensor, num_nodes: int) -> torch.Tensor:
    return torch.bincount(edge_index[1], minlength=num_nodes)


def build_node_model(model: str, in_channels: int, classes: int, scheme: QuantScheme, *,
                     num_nodes: int, hidden: int, dropout: float, heads: int,
                     init_bits: float, gin_order: str = "aggregate-first") -> QuantizedModel:
    kwargs = dict(num_nodes=num_nodes, dropout=dropout, init_bits=init_bits)
    if model == "gcn":
        return NodeGCN(in_channels, hidden, classes, scheme, **kwargs)
    if model == "gin":
        return NodeGIN(in_channels, hidden, classes, scheme, order=gin_order, **kwargs)
    if model == "gat":
        return NodeGAT(in_channels, hidden, classes, scheme, heads=heads, **kwargs)
    raise ValueError(f"unknown model {model!r}; valid models: {', '.join(MODELS)}")
