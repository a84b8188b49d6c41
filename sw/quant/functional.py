r"""The A²Q uniform quantizer as one fused autograd function.

For an input :math:`x` and a learnable step :math:`s > 0` and bitwidth parameter :math:`b`
(both broadcast along rows, columns, or the whole tensor):

.. math::
    B = \mathrm{clamp}(\mathrm{round}(|b|), B_{min}, B_{max}), \qquad Q = 2^{B-1} - 1,

    x_q = s \cdot \mathrm{round\_half\_away}(\mathrm{clamp}(x / s, -Q, Q)).

Gradients (LSQ style, the paper's Eq. 4-6). With :math:`v = x/s` and "inside" meaning
:math:`|x| \le Q s`:

- :math:`\partial x_q / \partial x = 1` inside, :math:`0` outside (clipped straight-through);
- :math:`\partial x_q / \partial s = \mathrm{round}(v) - v` inside, :math:`\mathrm{sign}(x) Q` outside;
- :math:`\partial x_q / \partial b = 0` inside, :math:`\mathrm{sign}(x)\, 2^{B-1} \ln 2 \; s` outside.

Two ways to turn these into gradients of ``s`` and ``b``:

- ``local=False`` (task gradient): the chain rule with the incoming gradient, summed over the
  elements that share a parameter;
- ``local=True`` (the paper's local gradient for node-level tasks): ``s`` and ``b`` descend the
  L1 quantization error of their own elements, :math:`E = \mathrm{mean}|x_q - x|`, whatever the
  task loss is: :math:`\partial E/\partial s = \mathrm{mean}(\mathrm{sign}(x_q - x)\,\partial x_q/\partial s)`,
  likewise for ``b``. This is how the authors' code trains node-level steps and bits.

The input gradient is always the clipped straight-through one.
"""

from __future__ import annotations

import math

import torch

LN2 = math.log(2.0)


def round_half_away(v: torch.Tensor) -> torch.Tensor:
    """Round to nearest, ties away from zero (what hardware rounding of a magnitude does)."""
    return torch.sign(v) * torch.floor(v.abs() + 0.5)


def integer_bits(bits: torch.Tensor, min_bits: int, max_bits: int) -> torch.Tensor:
    """B = clamp(round(|b|), min_bits, max_bits), as floats."""
    return torch.clamp(torch.round(bits.detach().abs()), min_bits, max_bits)


def quantize_int(x: torch.Tensor, step: torch.Tensor, bits: torch.Tensor,
                 min_bits: int, max_bits: int) -> torch.Tensor:
    """The integer codes round_half_away(clamp(x/s, -Q, Q)) (no gradient)."""
    with torch.no_grad():
        B = integer_bits(bits, min_bits, max_bits)
        Q = torch.exp2(B - 1) - 1
        v = x / step.abs()
        return round_half_away(torch.maximum(torch.minimum(v, Q), -Q))


class _Quantize(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, step, bits, local, min_bits, max_bits, local_count):
        s = step.abs()
        B = integer_bits(bits, min_bits, max_bits)
        Q = torch.exp2(B - 1) - 1
        v = x / s
        inside = v.abs() <= Q
        q = round_half_away(torch.maximum(torch.minimum(v, Q), -Q))
        out = q * s
        ctx.save_for_backward(x, step, bits, v, q, inside, out)
        ctx.local = local
        ctx.local_count = local_count
        ctx.min_bits, ctx.max_bits = min_bits, max_bits
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, step, bits, v, q, inside, out = ctx.saved_tensors
        grad_x = grad_s = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = grad_out * inside
        if not (ctx.needs_input_grad[1] or ctx.needs_input_grad[2]):
            return grad_x, None, None, None, None, None, None
        if ctx.local:
            # d mean|x_q - x| / d(param): the mean runs over the elements sharing the parameter
            shared = ctx.local_count or x.numel() // max(1, max(step.numel(), bits.numel()))
            weight = torch.sign(out - x) / shared
        else:
            weight = grad_out
        sign_x = torch.sign(x)
        if ctx.needs_input_grad[1]:
            B = integer_bits(bits, ctx.min_bits, ctx.max_bits)
            Q = torch.exp2(B - 1) - 1
            d_s = torch.where(inside, q - v, sign_x * Q)
            grad_s = (weight * d_s).sum_to_size(step.shape) * torch.sign(step)
        if ctx.needs_input_grad[2]:
            B = integer_bits(bits, ctx.min_bits, ctx.max_bits)
            s = step.abs()
            d_b = torch.where(inside, torch.zeros_like(x), sign_x * torch.exp2(B - 1) * LN2 * s)
            grad_b = (weight * d_b).sum_to_size(bits.shape)
        return grad_x, grad_s, grad_b, None, None, None, None


def quantize(x: torch.Tensor, step: torch.Tensor, bits: torch.Tensor, *, local: bool = False,
             min_bits: int = 2, max_bits: int = 8, local_count: int | None = None) -> torch.Tensor:
    """Fake-quantize ``x`` (see the module docstring); ``step`` and ``bits`` broadcast to ``x``.

    ``local_count``: how many elements share each parameter in the local error's mean, when it
    is not ``x.numel() / step.numel()`` (parameters gathered per entry of a sparse tensor, whose
    zero entries add nothing to the error but count in the mean).
    """
    return _Quantize.apply(x, step, bits, local, min_bits, max_bits, local_count)
