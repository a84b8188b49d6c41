"""The fused A²Q quantizer: forward values and every gradient.

Gradients are checked three ways: against hand-computed cases, against autograd on an
independent surrogate written with plain torch ops (straight-through rounding via ``detach``),
and against finite differences where the quantizer is differentiable (outside the clipping
range, and the continuous relaxation of the bitwidth).
"""

import math

import pytest
import torch

from a2q.sw.quant.functional import quantize, round_half_away

LN2 = math.log(2)


def test_round_half_away_from_zero():
    v = torch.tensor([0.5, -0.5, 1.5, -1.5, 2.4999, -2.5001, 0.0])
    assert round_half_away(v).tolist() == [1.0, -1.0, 2.0, -2.0, 2.0, -3.0, 0.0]


def test_forward_values_by_hand():
    # s = 0.25, B = 3 -> Q = 3, range [-0.75, 0.75]
    x = torch.tensor([[0.26, -0.74, 1.0, 5.0, 0.125, -0.125]])
    out = quantize(x, torch.tensor([[0.25]]), torch.tensor([[3.0]]))
    assert out.tolist() == [[0.25, -0.75, 0.75, 0.75, 0.25, -0.25]]


@pytest.mark.parametrize("b, Q", [(2.6, 3), (-3.2, 3), (0.3, 1), (1.49, 1), (12.0, 127)])
def test_bits_round_abs_and_clamp(b, Q):
    """B = clamp(round(|b|), 2, 8): never fewer than 1 magnitude level, never more than 8 bits."""
    x = torch.tensor([[1e6]])
    out = quantize(x, torch.tensor([[1.0]]), torch.tensor([[b]]))
    assert out.item() == Q


def test_unsigned_range_allows_nine_bits():
    out = quantize(torch.tensor([[1e6]]), torch.tensor([[1.0]]), torch.tensor([[9.0]]),
                   max_bits=9)
    assert out.item() == 255  # 8 stored unsigned bits


def _grads(x, s, b, *, local, grad_out=None):
    x = x.clone().requires_grad_()
    s = s.clone().requires_grad_()
    b = b.clone().requires_grad_()
    out = quantize(x, s, b, local=local)
    out.backward(torch.ones_like(out) if grad_out is None else grad_out)
    return x.grad, s.grad, b.grad


def test_task_gradients_by_hand():
    x = torch.tensor([[0.26, -0.74, 1.0, 5.0]])
    gx, gs, gb = _grads(x, torch.tensor([[0.25]]), torch.tensor([[3.0]]), local=False)
    assert gx.tolist() == [[1.0, 1.0, 0.0, 0.0]]  # clipped straight-through
    # inside: round(v) - v = (1 - 1.04) + (-3 + 2.96); outside: sign(x) * Q = 3 + 3
    assert gs.item() == pytest.approx(-0.08 + 6.0, abs=1e-5)
    # outside only: sign(x) * 2^(B-1) * ln2 * s = 4 * ln2 * 0.25, twice
    assert gb.item() == pytest.approx(2 * 4 * LN2 * 0.25, abs=1e-6)


def test_local_gradients_by_hand():
    """Local gradient: descend E = mean|x_q - x| whatever the incoming gradient is."""
    x = torch.tensor([[0.26, -0.74, 1.0, 5.0]])
    grad_out = torch.tensor([[7.0, -3.0, 0.5, 100.0]])  # must not matter
    gx, gs, gb = _grads(x, torch.tensor([[0.25]]), torch.tensor([[3.0]]), local=True,
                        grad_out=grad_out)
    assert gx.tolist() == [[7.0, -3.0, 0.0, 0.0]]
    # x_q - x = [-0.01, -0.01, -0.25, -4.25]: every sign is -1, mean over 4 elements
    assert gs.item() == pytest.approx(-(-0.08 + 6.0) / 4, abs=1e-5)
    assert gb.item() == pytest.approx(-(2 * 4 * LN2 * 0.25) / 4, abs=1e-6)
    assert gb.item() < 0  # clipping error grows the bitwidth


def surrogate(x, s, b):
    """Independent reference: LSQ's quantizer from plain ops, straight-through via detach."""
    B = torch.clamp(torch.round(b.abs()), 2, 8)
    B = b.abs() + (B - b.abs()).detach()  # straight-through for the rounding of b
    Q = 2 ** (B - 1) - 1
    sa = s.abs()
    v = x / sa
    vc = torch.where(v > Q, Q.expand_as(v), torch.where(v < -Q, -Q.expand_as(v), v))
    q = vc + (round_half_away(vc) - vc).detach()
    return q * sa


def _random_case(seed, n=7, f=11, per="row"):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, f, generator=g, dtype=torch.float64) * 2
    shape = (n, 1) if per == "row" else (1, f)
    s = torch.rand(shape, generator=g, dtype=torch.float64) * 0.5 + 0.05
    b = torch.randint(2, 7, shape, generator=g).double() + 0.3 * (torch.rand(shape, generator=g,
                                                                            dtype=torch.float64) - 0.5)
    return x, s, b


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("per", ["row", "column"])
def test_task_gradients_match_surrogate_autograd(seed, per):
    x, s, b = _random_case(seed, per=per)
    g = torch.randn_like(x)
    mine = _grads(x, s, b, local=False, grad_out=g)
    xr, sr, br = (t.clone().requires_grad_() for t in (x, s, b))
    out = surrogate(xr, sr, br)
    assert torch.equal(out.detach(), quantize(x, s, b))
    out.backward(g)
    for a, r in zip(mine, (xr.grad, sr.grad, br.grad)):
        torch.testing.assert_close(a, r, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("per", ["row", "column"])
def test_local_gradients_match_surrogate_l1_error(seed, per):
    x, s, b = _random_case(seed, per=per)
    _, gs, gb = _grads(x, s, b, local=True)
    sr, br = s.clone().requires_grad_(), b.clone().requires_grad_()
    err = (surrogate(x, sr, br) - x).abs()
    shared = x.numel() // s.numel()
    (err.sum() / shared).backward()  # sum over parameters of each one's mean error
    torch.testing.assert_close(gs, sr.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(gb, br.grad, rtol=1e-10, atol=1e-12)


def test_step_gradient_matches_finite_differences_outside_range():
    """Outside the range x_q = sign(x) Q s is linear in s: central differences are exact."""
    x = torch.tensor([[3.0, -4.0, 10.0]], dtype=torch.float64)
    s = torch.tensor([[0.2]], dtype=torch.float64)
    b = torch.tensor([[4.0]], dtype=torch.float64)  # Q = 7, range 1.4
    _, gs, _ = _grads(x, s, b, local=False)
    h = 1e-6
    fd = (quantize(x, s + h, b).sum() - quantize(x, s - h, b).sum()) / (2 * h)
    assert gs.item() == pytest.approx(fd.item(), rel=1e-8)


@pytest.mark.parametrize("bits", [2.0, 3.0, 5.0, 8.0])
def test_bit_gradient_matches_finite_differences_of_the_relaxation(bits):
    """d x_q/db = sign(x) 2^(b-1) ln2 s outside the range: the derivative of the continuous
    relaxation Q(b) = 2^(b-1) - 1 at the integer b (gradcheck on the relaxed function)."""
    x = torch.tensor([[1e3, -1e3]], dtype=torch.float64)
    s = torch.tensor([[0.3]], dtype=torch.float64)
    b = torch.tensor([[bits]], dtype=torch.float64)
    _, _, gb = _grads(x, s, b, local=False)

    def relaxed(bb):
        return (torch.sign(x) * (2 ** (bb - 1) - 1) * s).sum()

    h = 1e-6
    fd = (relaxed(b + h) - relaxed(b - h)) / (2 * h)
    assert gb.item() == pytest.approx(fd.item(), rel=1e-7)
    # gradcheck of the relaxation itself confirms the closed form used above
    assert torch.autograd.gradcheck(relaxed, (b.clone().requires_grad_(),))


def test_input_gradient_is_straight_through_inside_and_zero_outside():
    x = torch.linspace(-3, 3, 61, dtype=torch.float64).view(1, -1)
    gx, _, _ = _grads(x, torch.tensor([[0.5]], dtype=torch.float64),
                      torch.tensor([[3.0]], dtype=torch.float64), local=False)
    inside = x.abs() <= 1.5
    assert torch.equal(gx, inside.double())
