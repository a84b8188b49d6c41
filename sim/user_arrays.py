"""A user's arrays for ``a2q sim combination|aggregation``: read and checked before anything is
built. Each is a plain ``.npy`` (:mod:`a2q.common.npy`: no pickle, no ``.npz``, a header that
matches the file), of integers (or booleans), of the dimensions the unit takes, not empty, and
within int64; :func:`check_fits` then checks every value against its node's declared bits.
Every refusal is an :class:`InputError` naming the file and the field.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from a2q.common import npy

INT64_MAX = np.iinfo(np.int64).max


class InputError(ValueError):
    """A user's array is unfit for the unit; the message names the file and the field."""


def load_int_array(path, field: str, ndim: int) -> np.ndarray:
    """The integer array in ``path`` as int64, ``ndim`` dimensions, none of them empty."""
    path = Path(path)
    try:
        a = npy.load(path)
    except FileNotFoundError:
        raise InputError(f"{path}: {field} file not found") from None
    except IsADirectoryError:
        raise InputError(f"{path}: {field} is a folder, not an .npy file") from None
    except OSError as exc:
        raise InputError(f"{path}: {field} unreadable ({exc.strerror or exc})") from None
    except npy.NpyError as exc:
        raise InputError(f"{path}: {field}: {exc}") from None
    if not np.issubdtype(a.dtype, np.integer) and a.dtype != np.bool_:
        raise InputError(f"{path}: {field} has dtype {a.dtype}, expected integers")
    if a.ndim != ndim:
        raise InputError(f"{path}: {field} has shape {list(a.shape)}, expected {ndim} "
                         "dimensions")
    if a.size == 0:
        raise InputError(f"{path}: {field} is empty (shape {list(a.shape)})")
    if a.dtype == np.uint64 and int(a.max()) > INT64_MAX:
        at = np.unravel_index(int(np.argmax(a)), a.shape)
        raise InputError(f"{path}: {field}[{', '.join(map(str, at))}] = {int(a[at])} is beyond "
                         "int64")
    return a.astype(np.int64)


def check_fits(x: np.ndarray, bits: np.ndarray, signed_input: bool, where: str,
               bits_where: str | None = None) -> None:
    """Every row i of ``x`` (file ``where``) fits ``bits[i]`` bits (file ``bits_where``),
    two's complement if signed."""
    if bits.min() < 1 or bits.max() > 16:
        raise InputError(f"{bits_where or where}: bits must be 1..16, found "
                         f"{bits.min()}..{bits.max()}")
    lo = -(1 << (bits - 1)) if signed_input else np.zeros_like(bits)
    hi = (1 << (bits - 1)) - 1 if signed_input else (1 << bits) - 1
    bad = np.argwhere((x < lo[:, None]) | (x > hi[:, None]))
    if bad.size:
        i, k = bad[0]
        kind = "signed" if signed_input else "unsigned"
        raise InputError(f"{where}: x[{i}, {k}] = {x[i, k]} does not fit node {i}'s "
                         f"{bits[i]} {kind} bits ({bad.shape[0]} values do not)")
