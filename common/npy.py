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
import stat

import numpy as np

_MAGIC = b"\x93NUMPY"


class NpyError(ValueError):
    """Bytes that are not a plain ``.npy`` array; the message says what they are instead."""


def _header(fh, size: int):
    """(shape, fortran order, dtype, data bytes) of the ``.npy`` file ``fh`` of ``size``
    bytes, positioned at its data; refuses what is not a plain array of that many bytes."""
    magic = fh.read(6)
    if magic != _MAGIC:
        if magic[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
            raise NpyError("an .npz archive (or another zip file), not an .npy array")
        raise NpyError("not an .npy array (no NumPy header)")
    fh.seek(0)
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
    need, have = count * dtype.itemsize, size - fh.tell()
    if need != have:
        raise NpyError(f"the header declares shape {list(shape)} ({need} bytes of {dtype}) but "
                       f"{have} bytes follow it" + (" (truncated)" if have < need else ""))
    return shape, fortran, dtype, count


def _array(data: bytes, offset: int, shape, fortran, dtype, count) -> np.ndarray:
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    return arr.reshape(shape, order="F" if fortran else "C").copy()


def loads(data: bytes) -> np.ndarray:
    """The array that ``data`` (a whole ``.npy`` file) holds, as a writable array."""
    fh = io.BytesIO(data)
    shape, fortran, dtype, count = _header(fh, len(data))
    return _array(data, fh.tell(), shape, fortran, dtype, count)


def regular_size(path: str | os.PathLike) -> int:
    """The size of ``path``, a regular file: a folder raises ``IsADirectoryError``, a device,
    FIFO or socket :class:`NpyError` (opening one could block or never end)."""
    st = os.stat(path)
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(21, "Is a directory", str(path))
    if not stat.S_ISREG(st.st_mode):
        raise NpyError("not a regular file (a device, a FIFO or a socket)")
    return st.st_size


def load(path: str | os.PathLike) -> np.ndarray:
    """:func:`loads` of a file, which must be a regular file (a FIFO or a device is refused
    before it is opened): its header is checked against the file's size before the data is
    read, so a sparse file of terabytes is refused, not read."""
    size = regular_size(path)
    with open(path, "rb") as fh:
        shape, fortran, dtype, count = _header(fh, size)
        data = fh.read()
    return _array(data, 0, shape, fortran, dtype, count)
