"""The engine build: an export, its lanes and its baselines -> one engine.

:func:`build_engine` is the one place an engine is made from an export. It sizes one
configuration for every run the engine serves (the A²Q export and each baseline re-export of
:mod:`a2q.sim.baselines`; the input memory as wide as the export's input and every run's
codes), lays out each run's memory image and generates the Verilog once. The flow's rtl, sim
and synth stages, ``a2q rtl engine``, ``a2q sim engine`` and the benches all take that one
:class:`EngineBuild`, so the Verilog that is simulated is the Verilog that is synthesized; its
sha256 (``verilog_sha256`` in ``params.json`` and the reports) names it.

Between processes the build travels as its RTL folder (:meth:`EngineBuild.write_rtl`):
``params.json`` holds the configuration, the baselines and the Verilog's sha256, and
:func:`load_engine_build` takes the folder back, refusing a Verilog that changed since.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from a2q.common import strict_json
from a2q.common.choices import DEFAULT_LANES
from a2q.common.errors import A2QError


@dataclass(frozen=True)
class EngineBuild:
    """One engine and the runs it serves.

    ``graph``: the A²Q export (:class:`~a2q.sim.annotated_graph.AnnotatedGraph`, or a
    graph-level :class:`~a2q.sim.graph_batch.GraphBatchExport`);
    ``variants``: baseline name -> its re-export; ``config``: the engine's
    :class:`~a2q.hw.engine.layout.EngineConfig`; ``images``: run (``"a2q"``, then each
    baseline) -> the words of every loaded memory; ``verilog``: the engine's Verilog
    (:func:`a2q.hw.rtl.engine_verilog`); ``params``: its parameters (configuration, memory
    map, ports: :func:`a2q.hw.rtl.describe_engine`) and the baselines."""
    graph: object
    variants: dict
    config: object
    images: dict
    verilog: str = field(repr=False)
    params: dict = field(repr=False)

    def write_rtl(self, folder: str | os.PathLike, *, lint: bool = True) -> dict:
        """The RTL folder, whole or not at all: ``layer_engine.v`` (:attr:`verilog`),
        ``filelist.f``, ``lint.vlt``, the A²Q run's ``.hex`` init files and ``params.json``
        (``baselines`` and ``verilog_sha256`` among its fields), linted with Verilator unless
        ``lint`` is False. Returns the parameters."""
        from a2q.hw import rtl
        from a2q.sim.engine_image import write_init_files
        from a2q.sim.toolchain import write_linted

        cfg, words = self.config, self.images["a2q"]
        return write_linted(folder, lambda tmp: rtl.write_engine_folder(
            tmp, self.verilog, self.params,
            init_files=lambda f: write_init_files(cfg, words, f)), lint_it=lint)


def build_engine(graph, *, lanes: int = DEFAULT_LANES, baselines=(),
                 max_nodes: int | None = None, max_edges: int | None = None,
                 requant_lanes: int = 0, fill: bool = True) -> EngineBuild:
    """The engine for ``graph`` (an export folder or an
    :class:`~a2q.sim.annotated_graph.AnnotatedGraph`) and its ``baselines``, its memories as
    deep as the export needs unless ``max_nodes`` / ``max_edges`` are given (``requant_lanes``
    0: the engine's default). An export the engine cannot hold, or a bad parameter, is refused
    with :class:`A2QError` naming the memory or the parameter, before any Verilog is made.
    ``fill=False`` lays out no image (the memories zero: the logic alone, for synthesis of an
    engine sized apart from the export)."""
    from a2q.hw import rtl
    from a2q.hw.engine.layer_engine import LayerEngine
    from a2q.sim.engine_image import engine_config, graph_engine_config, input_code_bits
    from a2q.sim.graph_batch import GraphBatchExport

    try:  # GraphFormatError and EngineFitError are ValueErrors, as are bad parameters
        g, variants = _runs(graph, baselines)
        # x as wide as the export's input and every run's codes: a baseline that pays the
        # input at more bit-planes than its codes need reads zeros above them
        input_bits = max([g.manifest["input_bits"], *map(input_code_bits, variants.values())])
        sized = graph_engine_config if isinstance(g, GraphBatchExport) else engine_config
        cfg = sized(g, lanes=lanes, max_nodes=max_nodes, max_edges=max_edges,
                    input_bits=input_bits, requant_lanes=requant_lanes)
        images = _images(cfg, g, variants) if fill else {"a2q": {}}
    except ValueError as exc:
        raise A2QError(f"engine: {exc}") from None
    engine = LayerEngine(cfg, ram_template=True)
    verilog = rtl.engine_verilog(engine)
    params = {**rtl.describe_engine(engine), "baselines": list(variants)}
    return EngineBuild(g, variants, cfg, images, verilog, params)


def _runs(graph, baselines) -> tuple:
    """The export (read if a folder: node-level or graph-level) and its baseline
    re-exports."""
    from a2q.sim.annotated_graph import AnnotatedGraph, read_graph
    from a2q.sim.baselines import baseline_variant
    from a2q.sim.graph_batch import GraphBatchExport, export_kind, read_graph_batch

    if isinstance(graph, (AnnotatedGraph, GraphBatchExport)):
        g = graph
    else:
        g = read_graph_batch(graph) if export_kind(graph) == "graph" else read_graph(graph)
    return g, {name: baseline_variant(g, name) for name in baselines}


def _images(cfg, g, variants: dict) -> dict:
    """Each run's memory words, refusing a run the golden model refuses (its integer bounds,
    ``GraphFormatError``: the engine is verified against it, so it runs nothing the golden
    model cannot compute) or one that does not fit (``EngineFitError``)."""
    from a2q.sim import golden
    from a2q.sim.engine_image import graph_memory_words, memory_words
    from a2q.sim.graph_golden import run_graph_batch

    runs = [("a2q", g), *variants.items()]
    if cfg.graph_level:
        for _, v in runs:
            run_graph_batch(v)
        return {name: graph_memory_words(cfg, v) for name, v in runs}
    for _, v in runs:
        golden.run(v)
    return {name: memory_words(cfg, v) for name, v in runs}


def load_engine_build(rtl_folder: str | os.PathLike, graph) -> EngineBuild:
    """The build :meth:`EngineBuild.write_rtl` wrote into ``rtl_folder``, for the export
    ``graph`` it was built from: its configuration and baselines from ``params.json``, its
    Verilog the folder's own file (refused if its sha256 is not the one recorded), the memory
    images laid out again from ``graph``."""
    from a2q.hw.engine.layout import EngineConfig

    folder = Path(rtl_folder)
    params = folder / "params.json"
    try:
        info = strict_json.read(params)
        if not isinstance(info.get("verilog"), str) or Path(info["verilog"]).name != info[
                "verilog"]:
            raise ValueError(f"verilog {info.get('verilog')!r} is not a file name")
        verilog_file = folder / info["verilog"]
        recorded, baselines = info["verilog_sha256"], info["baselines"]
        cfg = EngineConfig.from_json(info["config"])
    except FileNotFoundError:
        raise A2QError(f"{params}: not found; give a folder written by the engine build "
                       "(a2q rtl engine, a2q flow's rtl stage)") from None
    except IsADirectoryError:
        raise A2QError(f"{params}: a folder, not an engine build's parameters") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise A2QError(f"{params}: not an engine build's parameters ({exc!r} in field "
                       "verilog, verilog_sha256, baselines or config)") from None
    try:
        verilog = verilog_file.read_text()
    except OSError as exc:
        raise A2QError(f"{verilog_file}: {exc.strerror or exc}") from None
    if hashlib.sha256(verilog.encode()).hexdigest() != recorded:
        raise A2QError(f"{verilog_file}: its sha256 is not the one params.json records (field "
                       "verilog_sha256): the Verilog changed after it was built; build it again")
    try:
        g, variants = _runs(graph, baselines)
        images = _images(cfg, g, variants)
    except ValueError as exc:
        raise A2QError(f"engine: {exc}") from None
    params = {k: v for k, v in info.items() if k not in ("verilog", "verilog_sha256")}
    return EngineBuild(g, variants, cfg, images, verilog, params)
