"""Mini-batches of a graph-level dataset by index arithmetic, with no Python loop per graph.

PyG's ``DataLoader`` collates every batch graph by graph in Python, which on PROTEINS took
most of an epoch. :class:`GraphBatches` collates the whole dataset once; a batch of graph ids
is then gathered with a few vectorised tensor operations: each graph's nodes and edges are a
contiguous range of the collated tensors, and a batch's edges are renumbered by subtracting,
per edge, the distance its graph moved.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class GraphBatch:
    """Graphs stacked block-diagonally, as PyG's ``Batch``: ``batch[i]`` is node i's graph."""

    x: torch.Tensor  # [N, F]
    edge_index: torch.Tensor  # [2, E], within-graph edges, renumbered to the batch
    batch: torch.Tensor  # [N] int64, non-decreasing
    y: torch.Tensor  # [G] int64
    graph_ptr: torch.Tensor  # [G + 1] int64: graph g holds nodes graph_ptr[g]:graph_ptr[g+1]
    graph_ids: torch.Tensor  # [G] int64: each graph's index in the dataset

    @property
    def num_graphs(self) -> int:
        return int(self.y.numel())

    @property
    def num_nodes(self) -> int:
        return int(self.x.size(0))


def concatenated_ranges(start: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """``cat([arange(s, s + c) for s, c in zip(start, count)])`` without the loop."""
    total = int(count.sum())
    first = torch.cumsum(count, 0) - count  # where each range starts in the output
    return torch.arange(total) + torch.repeat_interleave(start - first, count, output_size=total)


class GraphBatches:
    """The graphs of a PyG dataset (its transform applied), gathered into batches by id."""

    def __init__(self, dataset):
        from torch_geometric.data import Batch

        whole = Batch.from_data_list([dataset[i] for i in range(len(dataset))])
        self.x = whole.x.float()
        self.edge_index = whole.edge_index
        self.y = whole.y.view(-1).long()
        self.node_ptr = whole.ptr.long()
        self.node_count = torch.diff(self.node_ptr)
        edge_graph = whole.batch[whole.edge_index[0]]
        if edge_graph.numel() and bool((torch.diff(edge_graph) < 0).any()):
            raise ValueError("the collated edges are not grouped by graph")
        self.edge_count = torch.bincount(edge_graph, minlength=len(dataset))
        self.edge_ptr = torch.cat([torch.zeros(1, dtype=torch.long),
                                   torch.cumsum(self.edge_count, 0)])

    def __len__(self) -> int:
        return int(self.y.numel())

    def gather(self, ids) -> GraphBatch:
        """The graphs ``ids`` (in that order) as one batch."""
        ids = torch.as_tensor(ids, dtype=torch.long)
        n, e = self.node_count[ids], self.edge_count[ids]
        node_start, edge_start = self.node_ptr[ids], self.edge_ptr[ids]
        nodes = concatenated_ranges(node_start, n)
        edges = concatenated_ranges(edge_start, e)
        graph_ptr = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(n, 0)])
        moved = torch.repeat_interleave(node_start - graph_ptr[:-1], e, output_size=edges.numel())
        return GraphBatch(
            x=self.x[nodes], edge_index=self.edge_index[:, edges] - moved,
            batch=torch.repeat_interleave(torch.arange(ids.numel()), n, output_size=nodes.numel()),
            y=self.y[ids], graph_ptr=graph_ptr, graph_ids=ids)

    def shuffled(self, ids, batch_size: int, generator: torch.Generator) -> list[GraphBatch]:
        """``ids`` in a random order (``generator``), cut into batches of ``batch_size``."""
        ids = torch.as_tensor(ids, dtype=torch.long)
        order = ids[torch.randperm(ids.numel(), generator=generator)]
        return [self.gather(order[i:i + batch_size]) for i in range(0, order.numel(), batch_size)]
