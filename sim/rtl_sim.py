"""Run the bit-serial units' Verilog in Icarus or Verilator through cocotb's runner.

A model is built once per (unit parameters, simulator): its folder under ``build_root`` is named
by the Verilog's hash and reused while it exists (a file lock keeps parallel test workers from
building it twice). One simulator run takes any number of cases, exchanged as ``.npz`` files
with the testbenches of :mod:`a2q.sim.testbench`, and writes cocotb's JUnit XML.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from a2q.common.files import atomic_folder, file_lock
from a2q.hw import rtl
from a2q.hw.engine.layer_engine import LayerEngine

from .toolchain import SIMULATORS, ToolchainError, check_fst_waves, simulator_env

TESTBENCHES = {"combination": "a2q.sim.testbench.combination",
               "aggregation": "a2q.sim.testbench.aggregation",
               "selection": "a2q.sim.testbench.selection",
               "readout": "a2q.sim.testbench.readout",
               "engine": "a2q.sim.testbench.engine"}
TIMESCALE = ("1ns", "1ps")


class SimulationError(RuntimeError):
    """A simulator run failed or its testbench reported a mismatch."""


@dataclass
class Model:
    """A built simulator model of one unit."""
    kind: str
    simulator: str
    folder: Path  # holds rtl/ (Verilog, filelist, params.json, lint.vlt) and the simulator build
    info: dict    # params.json
    build_seconds: float
    waves: bool = False

    @property
    def rtl(self) -> Path:
        return self.folder / "rtl"


def _use_simulator(simulator: str) -> None:
    """Put the simulator's tools on this process's PATH (cocotb's runner looks them up there)."""
    env = simulator_env(simulator)
    for key in ("PATH", "VERILATOR_ROOT", "MAKEFLAGS"):
        if key in env:
            os.environ[key] = env[key]


def _check_simulator(simulator: str) -> None:
    if simulator not in SIMULATORS:
        raise ToolchainError(f"unknown simulator {simulator!r}: expected one of "
                             f"{', '.join(SIMULATORS)}")


def build(kind: str, params, simulator: str, build_root: Path, *, waves: bool = False) -> Model:
    """The model of unit ``kind`` with ``params`` (for ``engine``: an ``EngineConfig``, whose
    Verilog is generated here) for ``simulator``, built if not already; ``waves`` builds it
    with tracing."""
    _check_simulator(simulator)
    if kind == "engine":
        engine = LayerEngine(params, ram_template=True)
        verilog = rtl.engine_verilog(engine)
        return build_engine_model(verilog, rtl.describe_engine(engine), simulator, build_root,
                                  waves=waves)
    unit = rtl.make_unit(kind, params)
    text = rtl.emit_verilog(kind, unit)

    def write(folder):
        return rtl.write_rtl(kind, unit, folder)
    return _build(kind, rtl.UNITS[kind][1], text, write, simulator, Path(build_root).resolve(),
                  waves)


def build_engine_model(verilog: str, params: dict, simulator: str, build_root: Path, *,
                       waves: bool = False) -> Model:
    """The model of the layer engine whose Verilog is ``verilog`` (``params``: its
    :func:`~a2q.hw.rtl.describe_engine`), built from that very text."""
    _check_simulator(simulator)

    def write(folder):
        return rtl.write_engine_folder(folder, verilog, params)
    return _build("engine", rtl.ENGINE_MODULE, verilog, write, simulator,
                  Path(build_root).resolve(), waves)


def _build(kind, module, text, write, simulator, build_root: Path, waves: bool) -> Model:
    from cocotb_tools.runner import VerilatorControlFile

    _use_simulator(simulator)
    if waves and simulator == "verilator":
        check_fst_waves()
    key = hashlib.sha256(f"{simulator}\n{waves}\n{text}".encode()).hexdigest()[:16]
    folder = build_root / f"{module}-{simulator}{'-waves' if waves else ''}-{key}"
    with file_lock(build_root / f".{folder.name}.lock"):
        stamp = folder / "built.json"
        if stamp.exists():
            info = json.loads((folder / "rtl" / "params.json").read_text())
            return Model(kind, simulator, folder, info, json.loads(stamp.read_text())["seconds"],
                         waves)
        t0 = time.perf_counter()
        with atomic_folder(folder) as tmp:
            info = write(tmp / "rtl")
            sources = [tmp / "rtl" / info["verilog"]]
            build_args = []
            if simulator == "verilator":
                (tmp / "ports.vlt").write_text(PORTS_PUBLIC.format(module=module))
                sources[:0] = [VerilatorControlFile(tmp / "rtl" / "lint.vlt"),
                               VerilatorControlFile(tmp / "ports.vlt")]
                build_args = ["--trace-fst"] if waves else []
            runner = _build_runner(simulator)
            log = build_root / f"{folder.name}.build.log"
            try:
                runner.build(sources=sources, hdl_toplevel=module, build_dir=tmp / "sim_build",
                             timescale=TIMESCALE, log_file=log, waves=waves,
                             build_args=build_args)
            except RuntimeError as exc:
                raise SimulationError(f"building the {simulator} model of {kind} failed "
                                      f"({exc}); see {log}") from None
            seconds = round(time.perf_counter() - t0, 3)
            (tmp / "built.json").write_text(json.dumps({"seconds": seconds}) + "\n")
        # The runner recorded paths inside tmp; Verilator's model is a self-contained
        # executable and Icarus's a .vvp file, both found again under the final folder.
        return Model(kind, simulator, folder, info, seconds, waves)


def _build_runner(simulator: str):
    """cocotb's runner for building. Its Verilator build passes ``--public-flat-rw``, which
    keeps every internal signal visible to VPI and made the engine's model six times slower;
    the testbenches touch only the top module, which :data:`PORTS_PUBLIC` keeps visible."""
    from cocotb_tools.runner import Verilator, get_runner

    if simulator != "verilator":
        return get_runner(simulator)

    class VerilatorTopPublic(Verilator):
        def _build_command(self):
            return [[a for a in cmd if a != "--public-flat-rw"] for cmd in super()._build_command()]
    return VerilatorTopPublic()


#: Verilator control file: the top module's signals stay readable and writable from cocotb.
PORTS_PUBLIC = """`verilator_config
public_flat_rw -module "{module}" -var "*"
"""


def _runner(simulator: str, waves: bool):
    """cocotb's runner; for Icarus with waves, one that dumps VCD (cocotb's picks FST)."""
    from cocotb_tools.runner import Icarus, get_runner

    if simulator == "icarus" and waves:
        class IcarusVcd(Icarus):
            def _test_command(self):
                return [[("-vcd" if arg == "-fst" else arg) for arg in cmd]
                        for cmd in super()._test_command()]
        return IcarusVcd()
    return get_runner(simulator)


def run(model: Model, cases: list[dict], work: Path, *, name: str = "cases",
        waves: Path | None = None, check: bool = True) -> dict:
    """Run ``cases`` (dicts of arrays the unit's testbench reads) in one simulator process,
    with ``work`` as its working directory (where the engine's ``.hex`` init files are read).

    Returns ``{"results": [{"y", "cycles", ...}...], "junit": path, "seconds": wall time}``
    (each result holds every array the testbench recorded for its case); raises
    :class:`SimulationError` when the simulator fails or a case differs from its reference.
    ``waves`` (a model built with waves): where to leave the trace (Verilator FST, Icarus VCD).
    ``check=False`` returns the results of a run whose cases differ (``failed`` counts them).
    """
    from cocotb_tools.runner import get_results

    _use_simulator(model.simulator)
    work = Path(work).resolve()  # the simulator runs there; every path handed over is absolute
    work.mkdir(parents=True, exist_ok=True)
    case_file, result_file = work / f"{name}.cases.npz", work / f"{name}.results.npz"
    arrays = {f"{i}/{k}": np.asarray(v) for i, c in enumerate(cases) for k, v in c.items()}
    np.savez(case_file, count=np.int64(len(cases)), **arrays)
    result_file.unlink(missing_ok=True)
    junit = work / f"{name}.junit.xml"
    log = work / f"{name}.log"
    runner = _runner(model.simulator, waves is not None)
    plusargs = []
    if waves is not None and model.simulator == "icarus":
        plusargs = [f"+dumpfile_path={Path(waves).resolve()}"]
    t0 = time.perf_counter()
    try:  # cocotb's runner exits the process when a test fails; we report it instead
        runner.test(test_module=TESTBENCHES[model.kind], hdl_toplevel=model.info["module"],
                    hdl_toplevel_lang="verilog", waves=waves is not None, plusargs=plusargs,
                    build_dir=model.folder / "sim_build", test_dir=work, results_xml=str(junit),
                    timescale=TIMESCALE, log_file=log,
                    extra_env={"A2Q_TB_CASES": str(case_file.resolve()),
                               "A2Q_TB_RESULTS": str(result_file.resolve()),
                               "A2Q_TB_PARAMS": str((model.rtl / "params.json").resolve())})
    except SystemExit:
        pass
    seconds = time.perf_counter() - t0
    if waves is not None and model.simulator == "verilator" and (work / "dump.fst").exists():
        os.replace(work / "dump.fst", waves)
    if not junit.exists() or not result_file.exists():
        raise SimulationError(f"{model.simulator} run of {model.kind} produced no results; "
                              f"see {log}")
    total, failed = get_results(junit)
    with np.load(result_file) as z:
        results = [{k.split("/", 1)[1]: z[k] for k in z.files if k.split("/", 1)[0] == str(i)}
                   for i in range(len(cases))]
    for r in results:
        r["cycles"] = int(r["cycles"])
    out = {"results": results, "junit": junit, "seconds": seconds, "log": log, "failed": failed}
    if failed and check:
        raise SimulationError(f"{failed} of {total} cocotb tests failed on {model.simulator} "
                              f"({model.kind}); see {junit} and {log}")
    return out
