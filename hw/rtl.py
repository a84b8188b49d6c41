"""Verilog emission for the bit-serial units and the layer engine: the Verilog, a filelist, the
parameters, lint waivers and (engine) the memory init files."""

from __future__ import annotations

import hashlib
import inspect
import json
from pathlib import Path

import amaranth
from amaranth.back import verilog

from a2q.hw.engine.layer_engine import CORE_MODULE, ENGINE_MODULE, LayerEngine
from a2q.hw.primitives import block_ram, dsp_multiply
from a2q.hw.units.bit_serial_aggregation import BitSerialAggregation
from a2q.hw.units.bit_serial_combination import BitSerialCombination
from a2q.hw.units.graph_readout import GraphReadout
from a2q.hw.units.nearest_neighbor_selection import NearestNeighborSelection

#: ``a2q rtl`` unit name -> (component class, Verilog module name).
UNITS = {
    "combination": (BitSerialCombination, "bit_serial_combination"),
    "aggregation": (BitSerialAggregation, "bit_serial_aggregation"),
    "selection": (NearestNeighborSelection, "nearest_neighbor_selection"),
    "readout": (GraphReadout, "graph_readout"),
}

#: Verilator configuration for ``verilator --lint-only -Wall`` on Amaranth's Verilog. Each waiver
#: covers a pattern of the generator, not of the design, and says why.
_LINT_TEMPLATE = """\
`verilator_config
// Amaranth sizes every operation by its own rules (each sum here is widened explicitly in the
// Python source) and Yosys's write_verilog leaves the zero/sign extension and truncation of
// operands to Verilog's context width. The tests check every result bit for bit.
lint_off -rule WIDTHEXPAND -file "{file}"
lint_off -rule WIDTHTRUNC -file "{file}"
// Amaranth keeps a wire under every Python-level name (ports' struct fields, debug aliases of
// registers) and Yosys keeps unused carry bits of intermediate nets; logic reads the flat nets.
lint_off -rule UNUSEDSIGNAL -file "{file}"
// Amaranth declares each register with its reset value as initial value (the FPGA power-up
// state) and assigns it in an always block.
lint_off -rule PROCASSINIT -file "{file}"
// Amaranth's FSM and If/Elif chains become case statements marked full_case: the codes left
// out are states the FSM never enters.
lint_off -rule CASEINCOMPLETE -file "{file}"
// Amaranth writes each submodule as a module named <top>.<submodule> in the same file.
lint_off -rule DECLFILENAME -file "{file}"
"""
LINT_WAIVERS = "".join(
    "".join(line.format(file=f) + "\n" for f in ("*bit_serial_*.v", "*nearest_neighbor_selection.v",
                                          "*graph_readout.v", "*layer_engine.v"))
    if "{file}" in line else line + "\n" for line in _LINT_TEMPLATE.splitlines())


#: the range of every unit parameter ``a2q rtl`` and ``a2q sim`` accept (the constructors'
#: own checks come after): lanes as the engine's, memories and widths a synthesis can hold
UNIT_LIMITS = {
    "lanes": (1, 64), "in_features": (1, 8192), "columns": (1, 8192),
    "weight_bits": (2, 16), "max_bits": (1, 16), "max_nodes": (2, 1 << 20),
    "max_edges": (1, 1 << 24), "acc_width": (1, 128), "value_bits": (1, 64),
    "pool_size": (1, 64), "in_dim": (1, 4096), "classes": (1, 64), "code_bits": (1, 16),
    "max_graph_nodes": (1, 1 << 20),
}


#: the most words of the aggregation unit's feature memory (max_nodes x tiles)
MAX_UNIT_WORDS = 1 << 20
#: the most weight bits in the combination unit's adder trees (in_features x lanes x
#: weight_bits): 1433 x 16 x 8 took 72 s and 1.5 GB to elaborate, 4096 x 16 x 4 258 s and
#: 6.2 GB (`a2q rtl combination --no-lint`)
MAX_UNIT_WEIGHT_BITS = 1 << 17


def check_unit_parameters(kind: str, params: dict) -> None:
    """Refuse (``ValueError``, naming the option) a parameter outside :data:`UNIT_LIMITS`."""
    for name in unit_parameters(kind):
        v = params.get(name)
        if v is None or name not in UNIT_LIMITS:
            continue
        lo, hi = UNIT_LIMITS[name]
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
            raise ValueError(f"--{name.replace('_', '-')} must be an integer in {lo}..{hi}, "
                             f"got {v!r}")
    if kind == "combination" and all(isinstance(params.get(k), int)
                                     for k in ("in_features", "lanes")):
        bits = params["in_features"] * params["lanes"] * (params.get("weight_bits") or 4)
        if bits > MAX_UNIT_WEIGHT_BITS:
            raise ValueError(f"--in-features x --lanes x --weight-bits is {bits} weight bits "
                             f"in the adder trees, more than the {MAX_UNIT_WEIGHT_BITS} a unit "
                             "is built with")
    if kind == "aggregation" and all(isinstance(params.get(k), int)
                                     for k in ("max_nodes", "columns", "lanes")):
        words = params["max_nodes"] * -(-params["columns"] // params["lanes"])
        if words > MAX_UNIT_WORDS:
            raise ValueError(f"--max-nodes x tiles of --columns is {words} feature words, "
                             f"more than the {MAX_UNIT_WORDS} a unit is built with")


def unit_parameters(kind: str) -> list[str]:
    """Constructor arguments of a unit (those ``a2q rtl`` and ``a2q sim`` may set)."""
    cls, _ = _unit(kind)
    return [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "init")]


def _unit(kind: str):
    if kind not in UNITS:
        raise ValueError(f"unknown unit {kind!r}: expected one of {', '.join(UNITS)}")
    return UNITS[kind]


def make_unit(kind: str, params: dict):
    """The component of ``kind`` built from ``params`` (its constructor's checks apply)."""
    cls, _ = _unit(kind)
    unknown = set(params) - set(unit_parameters(kind))
    if unknown:
        raise ValueError(f"{kind} has no parameter {', '.join(sorted(unknown))}")
    check_unit_parameters(kind, params)
    return cls(**params)


def _ports(component) -> dict:
    """Each port of the Verilog module: its direction and width."""
    return {"__".join(path): {"direction": member.flow.value,
                              "width": len(amaranth.Value.cast(value))}
            for path, member, value in component.signature.flatten(component)}


def describe(kind: str, unit) -> dict:
    """The parameters JSON of a built unit: every constructor argument with its final value,
    the derived widths and the port names of the Verilog module."""
    _, module = _unit(kind)
    params = {p: getattr(unit, p) for p in unit_parameters(kind)}
    out = {"unit": kind, "module": module, "parameters": params, "ports": _ports(unit),
           "amaranth": amaranth.__version__}
    if kind == "aggregation":
        out["tiles"] = unit.tiles
        out["memory_depths"] = {k.name.lower(): v for k, v in unit.depths.items()}
    return out


def emit_verilog(kind: str, unit) -> str:
    """A unit's Verilog, without ``src`` attributes (as :func:`engine_verilog`)."""
    _, module = _unit(kind)
    return verilog.convert(unit, name=module, emit_src=False)


def write_rtl(kind: str, unit, folder: Path) -> dict:
    """Write ``<module>.v``, ``filelist.f``, ``params.json`` and ``lint.vlt`` into ``folder``
    (created if missing; use :func:`a2q.common.files.atomic_folder` for all-or-nothing)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    text = emit_verilog(kind, unit)
    info = describe(kind, unit)
    source = folder / f"{info['module']}.v"
    source.write_text(text)
    (folder / "filelist.f").write_text(f"{source.name}\n")
    (folder / "lint.vlt").write_text(LINT_WAIVERS)
    info["verilog"] = source.name
    info["verilog_sha256"] = hashlib.sha256(text.encode()).hexdigest()
    (folder / "params.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def engine_verilog(engine: LayerEngine) -> str:
    """The engine's Verilog, built with the block RAM template: the module
    :data:`~a2q.hw.engine.layer_engine.CORE_MODULE` (what synthesis takes), the module
    :data:`~a2q.hw.engine.layer_engine.ENGINE_MODULE` (the core with its off-chip memories,
    what the simulators run), the RAM module and the multiplier module
    (:mod:`~a2q.hw.primitives.dsp_multiply`). Each memory is split by width into instances of
    the RAM module one block RAM deep (:func:`~a2q.hw.primitives.block_ram.slice_widths`);
    slice ``k`` of a loaded memory reads ``<memory>.<k>.hex`` with ``$readmemh`` from the
    simulator's (or synthesis tool's) working directory; the memories the engine writes itself
    (``h``, ``op``, ``logits``) start undefined, as block RAM without init does. No ``src``
    attributes: they hold the checkout's absolute paths, and the same engine must give the same
    bytes (and sha256) wherever it is built."""
    if not engine.ram_template:
        raise ValueError("emit the engine built with ram_template=True")
    return "\n".join([verilog.convert(engine.core, name=CORE_MODULE, emit_src=False),
                      verilog.convert(engine, name=ENGINE_MODULE, emit_src=False),
                      block_ram.VERILOG,
                      dsp_multiply.VERILOG])


def describe_engine(engine: LayerEngine) -> dict:
    """The engine's parameters JSON: configuration, memory map (load port numbers, depths,
    widths, init files) and ports."""
    cfg = engine.cfg
    memories = {name: {"load_index": i, "depth": spec.depth, "width": spec.width,
                       "init_file": f"{name}.hex" if spec.loaded else None,
                       "slices": _slices(name, spec)}
                for i, (name, spec) in enumerate(cfg.memories.items())}
    return {"unit": "engine", "module": ENGINE_MODULE, "synthesis_module": CORE_MODULE,
            "off_chip": list(cfg.off_chip), "config": cfg.to_json(),
            "lanes": cfg.lanes, "memories": memories, "ports": _ports(engine),
            "core_ports": _ports(engine.core),
            "logit_width": cfg.memories["logits"].layout.elem_shape.width,
            # logits a word of ``logits``: a node's tile of lanes, or (graph-level) a graph's
            # classes
            "logits_per_word": cfg.memories["logits"].layout.length,
            "amaranth": amaranth.__version__}


def _slices(name: str, spec) -> list[dict]:
    """The ``a2q_ram`` instances a memory is split into (bits ``lsb`` up of each word) and the
    init file each reads (``None`` for a memory the engine writes itself)."""
    return [{"instance": f"{name}_{k}", "lsb": lsb, "width": w,
             "init_file": block_ram.slice_file(f"{name}.hex", k) if spec.loaded else None}
            for k, (lsb, w) in enumerate(block_ram.slice_bits(spec.width, spec.depth))]


def write_engine_rtl(engine: LayerEngine, folder: Path, *, text: str | None = None,
                     init_files=None) -> dict:
    """Write ``engine``'s RTL folder (:func:`write_engine_folder`; ``text``: its Verilog if
    already generated)."""
    text = engine_verilog(engine) if text is None else text
    return write_engine_folder(folder, text, describe_engine(engine), init_files=init_files)


def write_engine_folder(folder: Path, text: str, info: dict, *, init_files=None) -> dict:
    """Write ``layer_engine.v`` (``text``), ``filelist.f``, ``params.json`` (``info``, the
    engine's :func:`describe_engine` and whatever a caller adds, with the Verilog's file name
    and sha256) and ``lint.vlt`` into ``folder``; ``init_files`` (a callable given the folder)
    writes the ``.hex`` files. Returns the parameters."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / f"{ENGINE_MODULE}.v"
    source.write_text(text)
    (folder / "filelist.f").write_text(f"{source.name}\n")
    (folder / "lint.vlt").write_text(LINT_WAIVERS)
    if init_files is not None:
        init_files(folder)
    info = {**info, "verilog": source.name,
            "verilog_sha256": hashlib.sha256(text.encode()).hexdigest()}
    (folder / "params.json").write_text(json.dumps(info, indent=2) + "\n")
    return info
