"""The layer engine as a simulation sees it: the core with its off-chip memories attached."""

from __future__ import annotations

from amaranth import ClockSignal, Instance, Module, ResetSignal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from a2q.hw.primitives.block_ram import ram

from .core import EngineCore, check_init, control_members
from .layout import OFF_CHIP, EngineConfig

#: Verilog module names of the engine (what simulations run) and of its core (what synthesis
#: flows take: the engine without the off-chip memories).
ENGINE_MODULE = "layer_engine"
CORE_MODULE = "layer_engine_core"


class LayerEngine(wiring.Component):
    """:class:`~a2q.hw.engine.core.EngineCore` with the off-chip memories ``x`` (unless the
    input is held on chip as its non-zeros), ``logits`` and (graph-level) ``sums`` beside it,
    as a board would supply them: what the tests and the RTL runs drive.

    ``init`` (``name -> list[int]``) gives any memory's initial words, off-chip ones included;
    with ``ram_template=True`` every memory reads ``<memory>.hex`` instead and the core is an
    instance of the separate Verilog module :data:`CORE_MODULE` (see :func:`a2q.hw.rtl.engine_verilog`).

    Ports: the core's ``load``, ``start``, ``num_nodes`` (and a graph-level engine's
    ``num_graphs``), ``busy``, ``done``, ``cycles`` and ``phase`` (see :class:`~a2q.hw.engine.core.EngineCore`; ``load`` also fills ``x``), and

    - ``logits_addr`` (in) / ``logits_data`` (out): a synchronous read port on ``logits``
      (node i's tile t at ``i * ceil(C / lanes) + t``): the word appears the cycle after its
      address.

    Cycle behaviour: the core's; the off-chip memories answer a read in the next cycle, as
    on-chip block RAM does, so they add no cycle.
    """

    def __init__(self, cfg: EngineConfig, *, init: dict | None = None,
                 ram_template: bool = False):
        self.cfg = cfg
        self.ram_template = ram_template
        init = dict(init or {})
        self.off_chip_init = {k: init.pop(k) for k in OFF_CHIP if k in init}
        check_init(cfg, self.off_chip_init, cfg.off_chip)
        self.core = EngineCore(cfg, init=init, ram_template=ram_template)
        logits = cfg.memories["logits"]
        super().__init__({
            **control_members(cfg),
            "logits_addr": In(range(logits.depth)),
            "logits_data": Out(logits.layout),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, core = self.cfg, self.core
        if self.ram_template:  # the core stays a module of its own in the Verilog
            ports = {}
            for path, member, value in core.signature.flatten(core):
                ports[("i_" if member.flow == In else "o_") + "__".join(path)] = value
            m.submodules.core = Instance(CORE_MODULE, i_clk=ClockSignal(), i_rst=ResetSignal(),
                                         **ports)
        else:
            m.submodules.core = core
        m.d.comb += [
            core.load.valid.eq(self.load.valid), core.load.payload.eq(self.load.payload),
            self.load.ready.eq(core.load.ready),
            core.start.eq(self.start), core.num_nodes.eq(self.num_nodes),
            self.busy.eq(core.busy), self.done.eq(core.done), self.cycles.eq(core.cycles),
            self.phase.eq(core.phase),
        ]
        if cfg.graph_level:
            m.d.comb += core.num_graphs.eq(self.num_graphs)
        names = list(cfg.memories)
        logits_spec = cfg.memories["logits"]
        if "x" in cfg.memories:
            x_spec = cfg.memories["x"]
            load_x = self.load.valid & (self.load.p.memory == names.index("x"))
            x_data, _ = ram(m, "x", width=x_spec.width, depth=x_spec.depth,
                            template=self.ram_template, init=self.off_chip_init.get("x", []),
                            init_file="x.hex", we=load_x, waddr=self.load.p.addr,
                            wdata=self.load.p.data, raddr_a=core.x.addr)
            m.d.comb += core.x.data.eq(x_data)
        if "sums" in cfg.memories:
            sums = cfg.memories["sums"]
            sums_data, _ = ram(m, "sums", width=sums.width, depth=sums.depth,
                               template=self.ram_template, we=core.sums_write.en,
                               waddr=core.sums_write.addr, wdata=core.sums_write.data,
                               raddr_a=core.sums_read.addr)
            m.d.comb += core.sums_read.data.eq(sums_data)
        logits_data, _ = ram(m, "logits", width=logits_spec.width, depth=logits_spec.depth,
                             template=self.ram_template,
                             init=self.off_chip_init.get("logits", []), we=core.logits.en,
                             waddr=core.logits.addr, wdata=core.logits.data,
                             raddr_a=self.logits_addr)
        m.d.comb += self.logits_data.eq(logits_data)
        return m
