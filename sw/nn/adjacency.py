"""The sparse adjacency the layers aggregate with."""

from __future__ import annotations

import torch
from torch_geometric.utils import coalesce, to_torch_csr_tensor


def csr_adjacency(edge_index: torch.Tensor, weight: torch.Tensor | None,
                  num_nodes: int) -> torch.Tensor:
    """CSR matrix indexed [target, source]; repeated edges add up (as message passing would)."""
    if weight is None:
        weight = torch.ones(edge_index.size(1))
    ei, w = coalesce(edge_index.flip(0), weight, num_nodes=num_nodes, reduce="sum")
    return to_torch_csr_tensor(ei, w, size=(num_nodes, num_nodes))
