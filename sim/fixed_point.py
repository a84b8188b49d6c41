"""Fixed-point arithmetic shared by the export and the golden model (NumPy only).

Every real constant the hardware applies is a pair (mantissa ``m``, shift ``sh``) with
``value ~= m / 2**sh`` and a 16-bit mantissa ``2**15 <= m < 2**16`` (:func:`fixed`).
Products of integers with such constants are exact in int64; the one rounding happens when a
product is shifted right, always round-half-away-from-zero (:func:`rshift_round`), the same
rounding as the quantizers in training.
"""

from __future__ import annotations

import numpy as np

MANTISSA_BITS = 16


def fixed(x) -> tuple[np.ndarray, np.ndarray]:
    """(m, sh) with m = round(x * 2**sh) and 2**15 <= m <= 2**16, for 0 < x < 2**15."""
    x = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(x)) or np.any(x <= 0):
        raise ValueError("fixed-point constants must be finite and positive")
    if np.any(x >= 2.0 ** (MANTISSA_BITS - 1)):
        raise ValueError("fixed-point constant too large (>= 2**15)")
    sh = (MANTISSA_BITS - 1 - np.floor(np.log2(x))).astype(np.int64)
    m = np.floor(np.ldexp(x, sh) + 0.5).astype(np.int64)  # x > 0: half away from zero
    return m, sh


def rshift_round(t, s) -> np.ndarray:
    """round_half_away(t / 2**s) for int64 ``t`` (|t| < 2**63) and shifts ``s >= 0``
    (broadcast), any shift: ``((|t| >> (s - 1)) + 1) >> 1`` adds nothing to ``t`` that could
    overflow, and a shift past 63 gives 0."""
    t = np.asarray(t, dtype=np.int64)
    s = np.asarray(s, dtype=np.int64)
    mag = np.abs(t)
    halves = np.right_shift(mag, np.clip(s - 1, 0, 63))
    mag = np.where(s > 0, np.right_shift(halves + 1, 1), mag)
    return np.where(t < 0, -mag, mag)


def clamp(v, lo, hi) -> np.ndarray:
    return np.minimum(np.maximum(v, lo), hi)


def fixed_common(x) -> tuple[np.ndarray, int]:
    """Per-channel mantissas sharing one shift (the largest value gets a 16-bit mantissa)."""
    x = np.asarray(x, dtype=np.float64)
    _, sh = fixed(x.max())
    m = np.floor(np.ldexp(x, int(sh)) + 0.5).astype(np.int64)
    if np.any(m < 1):
        raise ValueError("a per-channel scale is over 2**16 times smaller than the largest "
                         "of its layer; it cannot share a fixed-point shift")
    return m, int(sh)
