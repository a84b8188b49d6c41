"""Quantized GNN layers as PyG ``MessagePassing`` subclasses, one per file."""

from .gat_conv import QGATConv
from .gcn_conv import QGCNConv
from .gin0_conv import QGIN0Conv
from .gin_conv import QGINConv

__all__ = ["QGCNConv", "QGINConv", "QGIN0Conv", "QGATConv"]
