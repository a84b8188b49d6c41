"""Quantized GNN layers as PyG ``MessagePassing`` subclasses, one per file."""

from .gat_conv import QGATConv
from .gcn_conv import QGCNConv
from .gin_conv import QGINConv

__all__ = ["QGCNConv", "QGINConv", "QGATConv"]
