"""Which quantizer each tensor of a layer gets, for each training method.

Every model is built from the same layers; a :class:`QuantScheme` decides what quantizes each
of a layer's three tensors, so that all methods share one code path:

============  ======================  ========================  =========================
method        node features           weights                   aggregation operand (XW)
============  ======================  ========================  =========================
``fp32``      none                    none                      none
``uniform``   N bits, per-node step   N bits, per-column step   N bits, per-column step
``dq``        N bits, percentile      N bits, min-max           N bits, percentile
              range, protected nodes                            range, protected nodes
``a2q``       learned bits and step   4 bits, per-column step   4 bits, per-column step
              per node (node-level)                             (the paper's), or learned
              or NN pool (graph-level)                          bits and step per node
                                                                (``operand="node"``)
============  ======================  ========================  =========================

Node-level per-node steps (``uniform``, ``a2q``) learn from the local L1 error; graph-level
node features (``a2q``: the Nearest-Neighbor pool; ``uniform``: one per-tensor step) learn from
the task loss, or A²Q's pool from its entries' local L1 error (``pool_gradient="local"``).
Weight steps learn from the task loss, aggregation-operand steps from the local error, as in
the authors' code.
"""

from __future__ import annotations

import torch
from torch import nn

from a2q.common.choices import METHODS

from .column_quantizer import ColumnQuantizer
from .degree_quant import ProtectiveMask, RangeQuantizer
from .nearest_neighbor import NearestNeighborQuantizer
from .node_quantizer import NodeQuantizer, OperandQuantizer

#: How A²Q quantizes the aggregation operand: per column at 4 bits (the paper) or per node.
OPERANDS = ("column", "node")
#: What trains A²Q's Nearest-Neighbor pool: the task loss or each entry's local L1 error.
POOL_GRADIENTS = ("task", "local")


class QuantScheme(nn.Module):
    """Factory of quantizers for one model (holds Degree-Quant's shared protective mask)."""

    def __init__(self, method: str, *, bits: int = 4, weight_bits: int = 4,
                 node_level: bool = True, in_degree: torch.Tensor | None = None,
                 pool_size: int = 32, operand: str = "column", pool_gradient: str = "task"):
        super().__init__()
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; valid methods: {', '.join(METHODS)}")
        if operand not in OPERANDS:
            raise ValueError(f"unknown operand quantization {operand!r}; valid: "
                             f"{', '.join(OPERANDS)}")
        #: A²Q node level: the aggregation operand gets per-node learned bits and steps
        self.node_operand = operand == "node" and method == "a2q" and node_level
        if not 1 <= bits <= 8:
            raise ValueError(f"bits must be in 1..8, got {bits}")
        self.method = method
        self.bits = bits
        self.weight_bits = weight_bits if method == "a2q" else bits
        self.node_level = node_level
        if pool_gradient not in POOL_GRADIENTS:
            raise ValueError(f"unknown pool gradient {pool_gradient!r}; valid: "
                             f"{', '.join(POOL_GRADIENTS)}")
        self.pool_size = pool_size
        self.pool_local = pool_gradient == "local"
        self.protect = ProtectiveMask(in_degree) if method == "dq" else None

    def features(self, num_nodes: int, *, unsigned: bool, init_bits: float,
                 step_std: float = 0.01) -> nn.Module:
        """Quantizer of a layer's per-node input features (``[N, F]``, one row per node)."""
        m = self.method
        if m == "fp32":
            return nn.Identity()
        if m == "dq":
            return RangeQuantizer(self.bits, mask=self.protect)
        if m == "uniform":
            if self.node_level:
                return NodeQuantizer(num_nodes, self.bits + unsigned, unsigned=unsigned,
                                     learn_bits=False)
            return ColumnQuantizer(1, self.bits, channel_dim=1, local=False, unsigned=unsigned)
        if self.node_level:
            return NodeQuantizer(num_nodes, init_bits, unsigned=unsigned, local=True,
                                 step_std=step_std)
        return NearestNeighborQuantizer(self.pool_size, init_bits, unsigned=unsigned,
                                        local=self.pool_local)

    def weight(self, weight: torch.Tensor) -> nn.Module:
        """Quantizer of a ``[out, in]`` weight: one step per output channel, LSQ-initialised."""
        if self.method == "fp32":
            return nn.Identity()
        if self.method == "dq":
            return RangeQuantizer(self.weight_bits, percentile=0.0)
        q = ColumnQuantizer(weight.shape[0], self.weight_bits, channel_dim=0, local=False)
        q.init_step_(weight)
        return q

    def operand(self, channels: int, *, unsigned: bool = False,
                num_nodes: int | None = None) -> nn.Module:
        """Quantizer of the aggregation operand ``[N, channels]`` (XW for GCN/GAT, x for GIN):
        per column, or per node (``node_operand``, given ``num_nodes``) starting at 4 stored
        bits, steps and bits learned on each node's local error."""
        if self.method == "fp32":
            return nn.Identity()
        if self.method == "dq":
            return RangeQuantizer(self.weight_bits, mask=self.protect)
        if self.node_operand and num_nodes is not None:
            return OperandQuantizer(num_nodes, 4 + unsigned, unsigned=unsigned, local=True)
        width = self.bits if self.method == "uniform" else 4
        return ColumnQuantizer(channels, width, channel_dim=1, local=True, unsigned=unsigned)

    def resample(self, in_degree: torch.Tensor | None = None) -> None:
        """Start of a forward pass: draw Degree-Quant's protective mask (no-op otherwise)."""
        if self.protect is not None:
            self.protect.resample(in_degree)
