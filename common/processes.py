"""Running a tool as a child process that dies with its parent and within a time limit.

Yosys, nextpnr and the sweep's stages run as child processes. :func:`run_logged` starts each
in a process group of its own, so that a time limit ends the child and everything it started
(``a2q synth`` and the nextpnr under it); on Linux the child also gets ``SIGKILL`` when the
process that started it dies (``PR_SET_PDEATHSIG``), so that a Dask worker killed mid-stage
leaves no tool running on.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

_PR_SET_PDEATHSIG = 1


class TimeLimitExceeded(RuntimeError):
    """The child ran past its time limit and was killed, with its process group."""

    def __init__(self, seconds: float):
        super().__init__(f"killed after its time limit of {seconds:g} s")
        self.seconds = seconds


#: Runs in the child: asks for SIGKILL when its parent dies, checks that the parent has not
#: died already, then becomes the tool (the request holds across exec). A launcher instead of
#: ``preexec_fn``, which may deadlock in a process with threads (a Dask worker).
_DIE_WITH_PARENT = (
    "import ctypes, os, sys\n"
    f"ctypes.CDLL(None).prctl({_PR_SET_PDEATHSIG}, {int(signal.SIGKILL)})\n"
    "if os.getppid() != int(sys.argv[1]): sys.exit(137)\n"
    "os.execvp(sys.argv[2], sys.argv[2:])\n")


def _launched(cmd: list[str]) -> list[str]:
    if not sys.platform.startswith("linux"):
        return cmd
    return [sys.executable, "-c", _DIE_WITH_PARENT, str(os.getpid()), *cmd]


def run_logged(cmd: list[str], log: Path, *, cwd: Path | None = None,
               env: dict | None = None, timeout: float | None = None) -> int:
    """Run ``cmd`` with stdout and stderr into ``log`` (replaced); return its exit status.
    Past ``timeout`` seconds its whole process group is killed and :class:`TimeLimitExceeded`
    raised."""
    with open(log, "w") as out:
        proc = subprocess.Popen(_launched(cmd), cwd=cwd, env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise TimeLimitExceeded(timeout) from None
        except BaseException:  # an interrupt: the tool does not outlive the command
            _kill_group(proc)
            raise


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + 10
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
