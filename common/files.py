"""Files shared by processes and the meaning of an output path.

An output path (``--out``) is checked before any work by :func:`check_output`: it never names
the current folder or one above it, never an input or a folder holding one (not even with
``--force``), its parent is a folder, and what it already holds is replaced only when it is
empty or this command's own earlier output (the stamp :data:`STAMP` says which command wrote
it), unless ``--force``. :func:`atomic_folder` then writes the folder whole or not at all:
filled as a temporary sibling and swapped in with interrupts held back, so that neither the
temporary folder nor the one replaced stays behind. :func:`file_lock` serializes the
processes that build and cache the same things (pytest-xdist workers, parallel commands).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import stat
import tempfile
import threading
from pathlib import Path

from .errors import A2QError

#: the file in every output folder that names the command that wrote it
STAMP = ".a2q-output"
#: the longest file name (bytes) Linux file systems hold
NAME_MAX = 255


def _resolve(path: Path, what: str) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        raise A2QError(f"{what} {path}: a link that does not resolve") from None


def written_by(folder: str | os.PathLike) -> str | None:
    """The command whose output ``folder`` is (its stamp), or None."""
    try:
        return (Path(folder) / STAMP).read_text().strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def check_output(out: str | os.PathLike, command: str, *, inputs=(), force: bool = False,
                 file: bool = False) -> Path:
    """Refuse, with one line, an output path ``command`` may not write (module docstring);
    ``file``: the output is one file (and its ``.json`` report) instead of a folder.
    ``inputs``: the paths the command reads."""
    out = Path(out)
    if "\0" in str(out) or len(os.fsencode(out.name)) > NAME_MAX:
        raise A2QError(f"--out {str(out)[:80]!r}: not a file name this system can hold")
    if out.name in ("", ".", ".."):
        raise A2QError(f"--out {out}: names the current folder or one above it; give the name "
                       "of a folder to write")
    target = _resolve(out, "--out")
    here = Path.cwd().resolve()
    if target == here or target in here.parents:
        raise A2QError(f"--out {out}: holds the current folder; give the name of a folder to "
                       "write")
    inside_input = False
    for given in inputs:
        if given is None:
            continue
        source = _resolve(Path(given), "input")
        if source == target or target in source.parents:
            raise A2QError(f"--out {out}: would replace the input {given}; give another "
                           "--out")
        inside_input |= source in target.parents
    parent = target.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise A2QError(f"--out {out}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise A2QError(f"--out {out}: {parent} is not writable")
    if file:
        return _check_output_file(out, command, force)
    if not (out.exists() or out.is_symlink()):
        return out
    _plain(out)
    if out.is_dir() and not out.is_symlink():
        if not any(out.iterdir()) or written_by(out) == command:
            return out
        what = "holds files that are not an earlier output of " + command
    else:
        what = "is a file, not an earlier output of " + command
    if inside_input:  # part of an input: --force would destroy it
        raise A2QError(f"--out {out}: {what}, inside an input; give another --out")
    if not force:
        raise A2QError(f"--out {out}: {what}; give --force to replace it")
    return out


def _plain(path: Path) -> None:
    """Refuse, even with ``--force``, to replace what is neither a file, a folder nor a link
    (a device such as /dev/null, a FIFO, a socket)."""
    mode = path.lstat().st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
        raise A2QError(f"--out {path}: a device, FIFO or socket, not a file or folder; give "
                       "the name of a folder to write")


def _check_output_file(out: Path, command: str, force: bool) -> Path:
    """An output file ``out`` (``.npy``) and its report ``out.json`` beside it."""
    if out.suffix != ".npy":
        raise A2QError(f"--out {out}: must name a .npy file (its report is written beside it "
                       "as .json)")
    report = out.with_suffix(".json")
    for path in (out, report):
        if path.is_dir():
            raise A2QError(f"--out {out}: {path} is a folder")
        if path.exists() or path.is_symlink():
            _plain(path)
    if not (out.exists() or report.exists()) or force:
        return out
    from . import strict_json

    try:
        ours = strict_json.read(report).get("command") == command
    except (OSError, ValueError, AttributeError):
        ours = False
    if not ours:
        raise A2QError(f"--out {out}: exists and is not an earlier output of {command}; give "
                       "--force to replace it")
    return out


@contextlib.contextmanager
def interrupts_held():
    """Hold SIGINT back for the block (in the main thread, where Python handles it): one that
    arrives is delivered when the block ends, so that the block is never cut in half."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is None:  # a handler installed outside Python: leave it alone
        yield
        return
    pending = []
    signal.signal(signal.SIGINT, lambda signum, frame: pending.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if pending:
            signal.raise_signal(signal.SIGINT)


@contextlib.contextmanager
def atomic_folder(out: str | os.PathLike, *, command: str | None = None):
    """Yield a temporary sibling of ``out`` to fill; on success it replaces whatever ``out``
    held, on any error or interrupt it is removed and ``out`` is left as it was. ``command``:
    stamp the folder as that command's output (:func:`written_by`)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name[:NAME_MAX // 2]}.", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; the folder it becomes should not be
    try:
        yield tmp
        if command is not None:
            (tmp / STAMP).write_text(command + "\n")
        with interrupts_held():
            if out.exists() or out.is_symlink():
                old = Path(tempfile.mkdtemp(prefix=f".{out.name[:NAME_MAX // 2]}.old.",
                                            dir=out.parent))
                os.rename(out, old / "replaced")
                try:
                    os.rename(tmp, out)
                except OSError:
                    os.rename(old / "replaced", out)
                    shutil.rmtree(old, ignore_errors=True)
                    raise
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def file_lock(path: Path):
    """Hold an exclusive ``flock`` on ``path`` (created with its folder) for the block."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
