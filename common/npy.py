"""``.npy`` arrays read without trusting the file: the header is parsed and checked against the
bytes that follow before anything is allocated, and pickled objects are never loaded.

A header that declares more data than the file holds (a shape of 10^12 in a 1 KB file), an
``.npz`` archive, a pickle, an object dtype or a truncated file each raise :class:`NpyError`
with one line saying which.
"""

from __future__ import annotations

import io
import math
import os

import numpy as np

_MAGIC = b"\x93NUMPY"


class NpyError(ValueError):
    """Bytes that are not a plain ``.npy`` array; the message says what they are instead."""


def loads(data: bytes) -> np.ndarray:
    """The array that ``data`` (a whole ``.npy`` file) holds, as a writable array."""
    if not data.startswith(_MAGIC):
        if data.startswith((b"PK\x03\x04", b"PK\x05\x06")):
            raise NpyError("an .npz archive (or another zip file), not an .npy array")
        raise NpyError("not an .npy array (no NumPy header)")
    fh = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise NpyError(f".npy format version {version[0]}.{version[1]} (a2q reads 1.0 "
                           "and 2.0)")
    except NpyError:
        raise
    except (ValueError, SyntaxError, TypeError, EOFError) as exc:
        raise NpyError(f"malformed .npy header ({str(exc).splitlines()[0][:120]})") from None
    if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
        raise NpyError(f"dtype {dtype} holds Python objects or records; a2q reads plain "
                       "numbers only")
    count = math.prod(shape)
    need, have = count * dtype.itemsize, len(data) - fh.tell()
    if need != have:
        raise NpyError(f"the header declares shape {list(shape)} ({need} bytes of {dtype}) but "
                       f"{have} bytes follow it" + (" (truncated)" if have < need else ""))
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=fh.tell())
    return arr.reshape(shape, order="F" if fortran else "C").copy()


def load(path: str | os.PathLike) -> np.ndarray:
    """:func:`loads` of a file."""
    with open(path, "rb") as fh:
        return loads(fh.read())
