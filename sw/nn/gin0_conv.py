"""Quantized GIN-0 convolution (Xu et al., 2019) with its linear layer before the sum."""

from __future__ import annotations

import torch
from torch_geometric.utils import add_self_loops, remove_self_loops

from .adjacency import csr_adjacency
from .gcn_conv import QGCNConv


class QGIN0Conv(QGCNConv):
    r"""GIN convolution with :math:`\epsilon = 0` and one linear layer, the linear layer first.

    .. math::
        \mathbf{x}'_i = \sum_{j \in \mathcal{N}(i) \cup \{i\}}
        Q_{op}\big(Q_x(\mathbf{x}_j)\, Q_w(\mathbf{W})\big) + \mathbf{b}

    In real numbers this is GIN-0's :math:`\mathbf{W}(\mathbf{x}_i + \sum_j \mathbf{x}_j) +
    \mathbf{b}`: a single linear layer commutes with the sum. Quantized, the tensors differ
    from :class:`~a2q.sw.nn.QGINConv`'s: :math:`Q_x` quantizes each node's input row (A²Q: its
    own learned bits; skipped for binary bag-of-words inputs, which are exact), :math:`Q_w`
    the weight per output column, :math:`Q_{op}` the product XW that every edge reads, per
    column or per node (A²Q's bits on the operand), signed. So the layer is the GCN layer's
    datapath with the plain sum over the neighbours and the node itself in place of the
    symmetric normalisation: on the layer engine the first layer costs the input's non-zeros
    and every edge its source's operand bits.
    """

    def adjacency(self, edge_index: torch.Tensor, num_nodes: int) -> torch.Tensor:
        """A + I, every weight 1, as a CSR matrix indexed [target, source]."""
        if self.cached and self._adj is not None:
            return self._adj
        ei, _ = remove_self_loops(edge_index)
        ei, _ = add_self_loops(ei, num_nodes=num_nodes)
        adj = csr_adjacency(ei, None, num_nodes)
        if self.cached:
            self._adj = adj
        return adj
