"""Nearest-Neighbor Strategy, memory penalty, per-node / per-column quantizers, Degree-Quant."""

import pytest
import torch

from a2q.sw.quant.column_quantizer import ColumnQuantizer
from a2q.sw.quant.degree_quant import ProtectiveMask, RangeQuantizer
from a2q.sw.quant.memory import memory_kb, memory_penalty
from a2q.sw.quant.nearest_neighbor import NearestNeighborQuantizer, nearest_index
from a2q.sw.quant.node_quantizer import NodeQuantizer
from a2q.sw.quant.scheme import QuantScheme

# ------------------------------------------------------------------ Nearest-Neighbor Strategy


def test_nearest_index_by_hand():
    q_max = torch.tensor([0.3, 3.0, 1.0])
    max_abs = torch.tensor([0.0, 0.2, 0.66, 0.64, 2.0, 2.1, 100.0])
    # 0.66 is nearer 1.0 (0.34) than 0.3 (0.36); 0.64 the reverse; 2.0 is a tie (1.0 vs 3.0)
    # and goes to the lower index
    assert nearest_index(max_abs, q_max).tolist() == [0, 0, 2, 0, 1, 1, 1]


def test_nns_quantizer_picks_pair_by_node_range_and_routes_gradients():
    q = NearestNeighborQuantizer(3, 3.0, unsigned=False)  # B = 3: Q = 3
    with torch.no_grad():
        q.step.copy_(torch.tensor([0.1, 1.0, 0.01]))  # q_max = 0.3, 3.0, 0.03
    x = torch.tensor([[0.25, -0.1], [2.5, 1.0], [0.02, 0.0], [0.31, 0.0]])
    out = q(x)
    assert q.last_index.tolist() == [0, 1, 2, 0]
    # node 0 and 3 use step 0.1: 0.25 -> round(2.5) = 3 -> 0.3; 0.31 -> clamp 3 -> 0.3
    torch.testing.assert_close(out, torch.tensor([[0.3, -0.1], [3.0, 1.0], [0.02, 0.0],
                                                  [0.3, 0.0]]))
    out.sum().backward()
    assert q.step.grad.shape == (3,) and q.bits.grad.shape == (3,)
    # node 3's value 0.31 is outside pair 0's range: its bits get a gradient; pair 1 gets
    # gradient only from node 1 (2.5 and 1.0 inside: bit gradient 0)
    assert q.bits.grad[0] != 0 and q.bits.grad[1] == 0
    assert q.stored_bits().tolist() == [3, 3, 3, 3]


def test_a_local_pool_descends_each_entrys_l1_error():
    """--pool-gradient local: the pool's gradients are those of sum over nodes of the mean
    |x_q - x| of the node's row, computed here with autograd through a straight-through
    rounding of the codes and of the bits."""
    torch.manual_seed(0)
    q = NearestNeighborQuantizer(4, 3.6, unsigned=True, local=True, step_min=0.05, step_max=2.0)
    x = torch.rand(40, 6) * torch.logspace(-1, 1, 40).unsqueeze(1)  # node ranges 0.1..10
    out = q(x)
    out.sum().backward()  # the task gradient plays no part in the pool's
    idx = q.last_index
    assert len(idx.unique()) > 1 and (out != x).any()

    step = q.step.detach().clone().requires_grad_()
    bits = q.bits.detach().clone().requires_grad_()
    s, b = step[idx].unsqueeze(1), bits[idx].unsqueeze(1)
    B = b + (torch.clamp(torch.round(b), 2, 9) - b).detach()
    Q = torch.exp2(B - 1) - 1
    v = x / s
    clamped = torch.minimum(v, Q)  # x >= 0: only the upper bound clips
    codes = clamped + (torch.floor(clamped + 0.5) - clamped).detach()
    error = ((codes * s - x).abs().mean(dim=1)).sum()
    error.backward()
    torch.testing.assert_close(q.step.grad, step.grad)
    torch.testing.assert_close(q.bits.grad, bits.grad)
    assert (q.bits.grad != 0).any()  # some node clips: its entry's bits have a gradient


def test_nns_serves_unseen_nodes():
    q = NearestNeighborQuantizer(8, 4.0, unsigned=True)
    q.eval()
    big = torch.full((1, 4), 50.0)
    small = torch.full((1, 4), 0.002)
    q(torch.cat([big, small]))
    assert q.last_index[0] > q.last_index[1]  # the larger node takes the larger step


# ---------------------------------------------------------------------- memory penalty


def test_memory_kb_and_penalty_by_hand():
    bits = [torch.tensor([4.0, 4.0]), torch.tensor([2.0])]
    m = memory_kb(bits, [16, 8])
    assert m.item() == pytest.approx((16 * 8 + 8 * 2) / 8192)
    assert memory_penalty(m, target_kb=1.0, lam=3.0).item() == 0.0
    p = memory_penalty(m, target_kb=0.01, lam=3.0)
    assert p.item() == pytest.approx(3.0 * (144 / 8192 - 0.01) ** 2)


def test_memory_penalty_gradient_matches_gradcheck():
    b = torch.tensor([3.0, 5.0, 2.5], dtype=torch.float64, requires_grad=True)

    def f(bb):
        return memory_penalty(memory_kb([bb], [1000]), target_kb=0.1, lam=2.0)

    assert torch.autograd.gradcheck(f, (b,))
    f(b).backward()
    m = 1000 * 10.5 / 8192
    assert b.grad[0].item() == pytest.approx(2 * 2.0 * (m - 0.1) * 1000 / 8192)


def test_memory_per_graph():
    assert memory_kb([torch.full((10,), 4.0)], [8], graphs=5).item() == pytest.approx(
        8 * 40 / 8192 / 5)


# ------------------------------------------------------------------ node / column quantizers


def test_node_quantizer_stored_bits_and_projection():
    q = NodeQuantizer(4, 4.0, unsigned=True)
    with torch.no_grad():
        q.bits.copy_(torch.tensor([[0.2], [2.6], [9.9], [-4.0]]))
    q.project_()
    # projection keeps b in [1.51, 9.49]: at least 1 stored bit, at most 8
    assert q.bits.min() >= 1.5 and q.bits.max() < 9.5
    assert q.stored_bits().tolist() == [1, 2, 8, 1]
    assert (q.step > 0).all()


def test_node_quantizer_signed_convention():
    q = NodeQuantizer(2, 4.0, unsigned=False)
    assert q.stored_bits().tolist() == [4, 4]


def test_column_quantizer_per_channel_steps_and_lsq_init():
    w = torch.tensor([[1.0, -1.0], [0.01, 0.02]])
    q = ColumnQuantizer(2, 4, channel_dim=0, local=False)
    q.init_step_(w)
    Q = 7
    torch.testing.assert_close(q.step.view(-1), torch.tensor([2 * 1.0 / Q ** 0.5,
                                                              2 * 0.015 / Q ** 0.5]))
    out = q(w)
    assert (out[1].abs() > 0).all()  # a per-channel step keeps the small row alive
    with pytest.raises(ValueError, match="2..8"):
        ColumnQuantizer(2, 1, channel_dim=0, local=False)


def test_uniform_scheme_freezes_bits():
    s = QuantScheme("uniform", bits=3)
    q = s.features(5, unsigned=True, init_bits=4.0)
    assert not isinstance(q.bits, torch.nn.Parameter)
    assert q.stored_bits().tolist() == [3] * 5


def test_scheme_rejects_bad_method_and_bits():
    with pytest.raises(ValueError, match="fp32, uniform, dq, a2q"):
        QuantScheme("int3")
    with pytest.raises(ValueError, match="1..8"):
        QuantScheme("uniform", bits=9)


# ----------------------------------------------------------------------- Degree-Quant


def test_protective_mask_probability_rises_with_degree():
    deg = torch.tensor([5, 1, 3, 100])
    m = ProtectiveMask(deg, p_min=0.0, p_max=0.3)
    torch.testing.assert_close(m.prob, torch.tensor([0.2, 0.0, 0.1, 0.3]))
    m.train()
    torch.manual_seed(0)
    counts = torch.zeros(4)
    for _ in range(2000):
        m.resample()
        counts += m.current.float()
    assert counts[1] == 0 and counts[3] > counts[0] > counts[2] > 0
    m.eval()
    m.resample()
    assert m.current is None


def test_range_quantizer_levels_and_protection():
    mask = ProtectiveMask(torch.tensor([0, 10]), p_min=0.0, p_max=1.0)  # node 1 always kept
    q = RangeQuantizer(2, percentile=0.0, mask=mask)
    mask.train()
    q.train()
    mask.resample()
    x = torch.tensor([[0.0, 0.5, 3.0], [0.7, 0.1, 9.0]])
    out = q(x)
    assert torch.equal(out[1], x[1])  # protected node passes at full precision
    # range observed on node 0 only: [0, 3], 4 levels -> step 1
    assert (q.lo.item(), q.hi.item()) == (0.0, 3.0)
    assert out[0].tolist() == [0.0, 1.0, 3.0]
    q.eval()
    mask.eval()
    out = q(x)
    assert out[1].tolist() == [1.0, 0.0, 3.0]  # evaluation quantizes everything


def _tiny_gcn():
    from a2q.sw.models import build_node_model

    n = 5
    scheme = QuantScheme("a2q", in_degree=torch.ones(n, dtype=torch.long), operand="node")
    return build_node_model("gcn", 3, 20, scheme, num_nodes=n, hidden=4, dropout=0.0,
                            heads=1, init_bits=4.0)


def test_cycle_weights_by_hand():
    """A 5-node GCN, hidden 4 and 20 classes at 16 lanes: layer 1's operand (4 wide, 1 tile)
    is read by each of a node's edges and its self-loop, layer 2's input by its combination
    (20 wide, 2 tiles), layer 2's operand by the edges, 2 tiles each."""
    from a2q.sw.quant.cycle_penalty import cycle_weights, kilo_cycles

    model = _tiny_gcn()
    out_degree = torch.tensor([4, 1, 1, 0, 2])
    names = [name for name, _, _ in model.per_node_tensors()]
    assert names == ["layer1.operand", "layer2.input", "layer2.operand"]
    w = cycle_weights(model, out_degree, lanes=16)
    assert w[0].tolist() == [5, 2, 2, 1, 3]
    assert w[1].tolist() == [2] * 5
    assert w[2].tolist() == [10, 4, 4, 2, 6]
    bits = [torch.full((5,), 3.0), torch.full((5,), 2.0), torch.full((5,), 1.0)]
    assert kilo_cycles(bits, w).item() == pytest.approx((3 * 13 + 2 * 10 + 1 * 26) / 1000)


def test_the_cycle_penalty_weighs_a_hub_by_its_edges():
    """Above its target the cycle penalty's gradient on a node's operand bits is in
    proportion to the items that read them: a hub's bits cost more than a leaf's, where the
    memory penalty weighs them alike."""
    from a2q.sw.quant.cycle_penalty import cycle_weights, kilo_cycles

    model = _tiny_gcn()
    w = cycle_weights(model, torch.tensor([9, 0, 0, 0, 0]), lanes=16)
    bits = [q.memory_bits() for q in model.feature_quantizers()]
    memory_penalty(kilo_cycles(bits, w), 0.0, 1.0).backward()
    grad = model.feature_quantizers()[0].bits.grad.view(-1)
    assert grad[0] / grad[1] == pytest.approx(10.0)
    model.zero_grad()
    bits = [q.memory_bits() for q in model.feature_quantizers()]
    memory_penalty(memory_kb(bits, model.penalty_widths()), 0.0, 1.0).backward()
    grad = model.feature_quantizers()[0].bits.grad.view(-1)
    assert grad[0] / grad[1] == pytest.approx(1.0)
