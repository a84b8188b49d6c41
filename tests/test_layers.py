"""Quantized layers: agreement with PyG's reference layers, and GIN's sparse-input path."""

import copy

import pytest
import torch
from torch_geometric.nn import GCNConv, GINConv

from a2q.sw.nn import QGCNConv, QGIN0Conv, QGINConv
from a2q.sw.quant.scheme import QuantScheme


def _graph(n=30, f=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, n, (2, 90), generator=g)
    ei = ei[:, ei[0] != ei[1]]
    x = (torch.rand(n, f, generator=g) < 0.2).float()  # sparse binary, like bag-of-words
    return x, ei


def test_fp32_gcn_equals_pyg_gcnconv():
    x, ei = _graph()
    mine = QGCNConv(12, 5, QuantScheme("fp32"), num_nodes=30, quantize_input=False)
    ref = GCNConv(12, 5)
    with torch.no_grad():
        ref.lin.weight.copy_(mine.weight)
        ref.bias.copy_(torch.randn(5))
        mine.bias.copy_(ref.bias)
    torch.testing.assert_close(mine(x, ei), ref(x, ei), rtol=1e-5, atol=1e-6)


def test_fp32_gin_equals_pyg_ginconv():
    x, ei = _graph()
    mine = QGINConv(12, 5, QuantScheme("fp32"), num_nodes=30, quantize_operand=False)
    lin = torch.nn.Linear(12, 5)
    ref = GINConv(lin, train_eps=True)
    with torch.no_grad():
        lin.weight.copy_(mine.weight)
        lin.bias.copy_(mine.bias)
        mine.eps.fill_(0.3)
        ref.eps.fill_(0.3)
    torch.testing.assert_close(mine(x, ei), ref(x, ei), rtol=1e-5, atol=1e-6)


def test_fp32_gin0_combine_first_equals_pyg_ginconv_with_eps_zero():
    """W before the sum: the same function as PyG's GIN-0 with a single linear layer."""
    x, ei = _graph(seed=1)
    mine = QGIN0Conv(12, 5, QuantScheme("fp32"), num_nodes=30, quantize_input=False)
    lin = torch.nn.Linear(12, 5)
    ref = GINConv(lin, eps=0.0, train_eps=False)
    with torch.no_grad():
        lin.weight.copy_(mine.weight)
        mine.bias.copy_(torch.randn(5))
        lin.bias.copy_(mine.bias)
    torch.testing.assert_close(mine(x, ei), ref(x, ei), rtol=1e-5, atol=1e-5)
    # the node's own term counts once: self-loops in the input are dropped, one added
    looped = torch.cat([ei, torch.arange(30).repeat(2, 1)], 1)
    torch.testing.assert_close(mine(x, looped), mine(x, ei))


@pytest.mark.parametrize("method", ["fp32", "uniform", "dq", "a2q"])
def test_gin_sparse_input_path_equals_dense_path(method):
    """cached=True quantizes only the non-zero entries of the aggregated input: values and
    every gradient must equal the dense computation's."""
    x, ei = _graph(seed=3)
    torch.manual_seed(0)
    deg = torch.bincount(ei[1], minlength=30)
    sparse = QGINConv(12, 5, QuantScheme(method, in_degree=deg), num_nodes=30,
                      quantize_operand=False, cached=True)
    with torch.no_grad():
        sparse.eps.fill_(0.25)
        if hasattr(sparse.input_quant, "step"):
            sparse.input_quant.step.copy_(torch.rand(30, 1) * 0.5 + 0.1)
    dense = copy.deepcopy(sparse)
    dense.cached = False
    for m in (sparse, dense):
        m.train()
        if method == "dq":
            torch.manual_seed(5)
            m.input_quant.mask.train()
            m.input_quant.mask.resample()
    out_s, out_d = sparse(x, ei), dense(x, ei)
    if method == "dq":  # range from the non-zero values: equal where the range is the same
        assert sparse.input_quant.hi == dense.input_quant.hi
        return
    torch.testing.assert_close(out_s, out_d, rtol=1e-6, atol=1e-6)
    g = torch.randn_like(out_s)
    out_s.backward(g)
    out_d.backward(g)
    for (name, ps), pd in zip(sparse.named_parameters(), dense.parameters()):
        assert (ps.grad is None) == (pd.grad is None), name
        if ps.grad is not None:
            torch.testing.assert_close(ps.grad, pd.grad, rtol=1e-5, atol=1e-6, msg=name)
