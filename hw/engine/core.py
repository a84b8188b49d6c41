"""The layer engine's core: its phases, the sequencer and the on-chip memories.

The dense features ``x`` and the ``logits`` (:data:`~a2q.hw.engine.layout.OFF_CHIP`) are too
big for the block RAM of the FPGAs the engine targets (Cora's dense x alone is 3.9 Mbit, more
than an ECP5-85F's 3.7 Mbit of block RAM), so the core reaches them through a read port and a
write port: the module a synthesis flow takes, the board supplying the memory behind the
ports. A GCN's input held as its non-zeros (``x_nonzeros``: 0.6 Mbit for Cora) is on chip, and
that core has no ``x`` port.
:class:`a2q.hw.engine.layer_engine.LayerEngine` puts the core and those two memories together.
"""

from __future__ import annotations

import math
from functools import reduce
from operator import or_

from amaranth import Module, Mux, Signal, Value
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from a2q.hw.primitives.block_ram import address_bits, ram, slice_bits

from .aggregation_phase import AggregationPhase
from .combination_phase import CombinationPhase
from .layout import OFF_CHIP, EngineConfig
from .memory_requests import (
    SLICES_PER_COPY,
    ReadRequest,
    chosen_per_slices,
    copies_in_groups,
    is_shallow,
    read_registers,
    registered_address,
    registered_data_early,
    registered_write,
)
from .phase import delay
from .quantization_phase import QuantizationPhase
from .readout_phase import ReadoutPhase
from .requantization import (
    NODE_CONSTANTS,
    Kept,
    constants_layout,
    pipeline,
    requantization_stages,
)
from .selection_phase import EntrySelection, SelectionPhase
from .sparse_combination_phase import SparseCombinationPhase

#: Bits of the cycle counter.
CYCLE_BITS = 48


class MemoryHub:
    """Collects the phases' requests on each memory's read ports (``A``, ``B``)."""

    def __init__(self, cfg: EngineConfig):
        self.cfg = cfg
        self.reads: dict[tuple[str, str], list[ReadRequest]] = {}

    def read(self, memory: str, name: str, port: str = "A", early: bool = False) -> ReadRequest:
        if memory in OFF_CHIP and port != "A":
            raise ValueError(f"the off-chip memory {memory} has one read port")
        req = ReadRequest(self.cfg.memories[memory], name, early)
        self.reads.setdefault((memory, port), []).append(req)
        return req


def load_signature(cfg: EngineConfig) -> stream.Signature:
    """The ``load`` stream: ``{memory, addr, data}`` writes one word of memory number
    ``memory`` (the order of ``cfg.memories``, off-chip ones included)."""
    specs = cfg.memories.values()
    return stream.Signature(data.StructLayout({
        "memory": range(len(cfg.memories)),
        "addr": range(max(s.depth for s in specs)),
        "data": max(s.width for s in specs)}))


def control_members(cfg: EngineConfig) -> dict:
    """The members the core and :class:`~a2q.hw.engine.layer_engine.LayerEngine` share: ``load``,
    ``start``, ``num_nodes``, ``busy``, ``done``, ``cycles``, ``phase``; a graph-level
    engine's ``num_graphs``."""
    return {
        "load": In(load_signature(cfg)),
        "start": In(1),
        "num_nodes": In(range(cfg.max_nodes + 1)),
        "busy": Out(1),
        "done": Out(1),
        "cycles": Out(CYCLE_BITS),
        "phase": Out(range(len(cfg.phase_names()))),
        **({"num_graphs": In(range(cfg.max_graphs + 1))} if cfg.graph_level else {}),
    }


def check_init(cfg: EngineConfig, init: dict, names) -> None:
    """``init`` names only memories of ``names`` and gives none more words than it holds."""
    unknown = set(init) - set(names)
    if unknown:
        raise ValueError(f"init names unknown memories: {', '.join(sorted(unknown))}")
    for name, words in init.items():
        if len(words) > cfg.memories[name].depth:
            raise ValueError(f"init for {name} has {len(words)} words, more than its depth "
                             f"{cfg.memories[name].depth}")


class EngineCore(wiring.Component):
    """Runs an exported two-or-more-layer GCN or GIN; ``x`` and ``logits`` live off-chip.

    ``cfg`` (:class:`~a2q.hw.engine.layout.EngineConfig`) fixes the structure and the memory
    map (documented in :mod:`a2q.hw.engine.layout`); ``init`` optionally gives the words of
    any on-chip memory (``name -> list[int]``) as initial contents. ``ram_template=True`` (for
    Verilog) builds each memory from instances of the ``a2q_ram`` module of
    :mod:`a2q.hw.primitives.block_ram`, one per width slice, filled from ``<memory>.<k>.hex`` instead of
    ``init``, and each multiplier as an instance of ``a2q_mul`` (:mod:`a2q.hw.primitives.dsp_multiply`).

    The phases run one after the other: a combine-first layer l (GCN, GIN-0) is a
    :class:`CombinationPhase` (``x`` or ``h`` -> ``op``; layer 1 from ``x_nonzeros`` a
    :class:`SparseCombinationPhase`) then an :class:`AggregationPhase` (``op`` -> ``h``, the
    last layer -> ``logits``); an aggregate-first GIN layer l aggregates first (``x`` or
    ``op`` -> ``h``) and then combines
    (``h`` -> ``op`` or ``logits``).

    Ports:

    - ``load`` (stream in, always ready): ``{memory, addr, data}`` writes one word of an
      on-chip memory per cycle (words for ``x`` and ``logits`` are ignored), in the memory
      from the third cycle after it is taken. Load only while idle (``start`` may come with
      the last word).
    - ``start`` (in): a one-cycle pulse while idle runs nodes ``0 .. num_nodes - 1``
      (``num_nodes``, at most ``max_nodes``, is sampled with it; graph-level: and graphs
      ``0 .. num_graphs - 1``, ``num_graphs`` at most ``max_graphs``).
    - ``busy`` (out): high from the cycle after ``start`` until the run ends.
    - ``done`` (out): high from the end of a run until the next ``start``.
    - ``cycles`` (out): the cycles the last run was busy (counting while it runs).
    - ``phase`` (out): the running phase's index in :meth:`phases` (0 from ``start``); it
      steps up in the same cycle as the counter, so ``cycles`` seen the cycle ``phase``
      becomes k is the number of cycles phases 0 .. k - 1 took.
    - ``x`` (a ``lib.memory`` read port, driven by the core; absent where the input is held
      as its non-zeros): ``addr`` (and ``en``, always
      high) out, ``data`` in, the word at the address of the previous cycle: a synchronous
      SRAM's latency (``addr`` comes from a register, and ``data`` is registered, as a block
      RAM's, :mod:`~a2q.hw.engine.memory_requests`). Node i's tile t is at ``i * ceil(F / lanes) + t``.
    - ``logits`` (a ``lib.memory`` write port, driven by the core): ``en``, ``addr``,
      ``data`` out; node i's tile t of the logits at ``i * ceil(C / lanes) + t``, each word
      written once per run.

    Cycle behaviour: from ``start``, one cycle to launch the first phase; each phase runs
    (see its class) and the next one is launched two cycles after the previous one's ``busy``
    falls. ``a2q.sim.cycles.engine_cycles`` states the exact total, which the tests check.
    """

    def __init__(self, cfg: EngineConfig, *, init: dict | None = None,
                 ram_template: bool = False):
        self.cfg = cfg
        self.init = dict(init or {})
        self.ram_template = ram_template
        #: name -> ``lib.memory.Memory`` of each on-chip memory, once elaborated without
        #: ``ram_template``
        self.simulated_memories = {}
        if ram_template and self.init:
            raise ValueError("the RAM template reads its contents from .hex files, not init")
        check_init(cfg, self.init, [n for n in cfg.memories if n not in OFF_CHIP])
        logits = cfg.memories["logits"]
        ports = {"logits": Out(memory.WritePort.Signature(addr_width=address_bits(logits.depth),
                                                          shape=logits.layout).flip())}
        if "x" in cfg.memories:
            x = cfg.memories["x"]
            ports["x"] = Out(memory.ReadPort.Signature(addr_width=address_bits(x.depth),
                                                       shape=x.layout).flip())
        if "sums" in cfg.memories:
            sums = cfg.memories["sums"]
            ports["sums_write"] = Out(memory.WritePort.Signature(
                addr_width=address_bits(sums.depth), shape=sums.layout).flip())
            ports["sums_read"] = Out(memory.ReadPort.Signature(
                addr_width=address_bits(sums.depth), shape=sums.layout).flip())
        super().__init__({**control_members(cfg), **ports})

    def phases(self, hub: MemoryHub) -> list:
        """The phases in the order they run."""
        cfg, out = self.cfg, []
        strides = {"x": cfg.tiles(cfg.layers[0].in_dim), "h": cfg.h_stride,
                   "op": cfg.op_stride, "logits": cfg.tiles(cfg.layers[-1].out_dim)}
        for l in range(1, len(cfg.layers) + 1):
            last = l == len(cfg.layers)
            if cfg.combine_first and l == 1 and cfg.sparse_input:
                out.append(SparseCombinationPhase(cfg, l, hub, src="x_nonzeros", src_stride=1,
                                                  dst="op", dst_stride=strides["op"]))
            elif cfg.combine_first:
                src = "x" if l == 1 else "h"
                out.append(CombinationPhase(cfg, l, hub, src=src, src_stride=strides[src],
                                            dst="op", dst_stride=strides["op"]))
            if cfg.combine_first:
                dst = "logits" if last else "h"
                out.append(AggregationPhase(cfg, l, hub, src="op", src_stride=strides["op"],
                                            dst=dst, dst_stride=strides[dst]))
            else:
                src = "x" if l == 1 else "op"
                if cfg.graph_level:  # aggregate and select, then quantize from ``sums``
                    out.append(SelectionPhase(cfg, l, hub, src=src, src_stride=strides[src],
                                              dst="sums", dst_stride=cfg.sums_stride))
                    out.append(QuantizationPhase(cfg, l, hub, src="sums",
                                                 src_stride=cfg.sums_stride, dst="h",
                                                 dst_stride=strides["h"]))
                else:
                    out.append(AggregationPhase(cfg, l, hub, src=src, src_stride=strides[src],
                                                dst="h", dst_stride=strides["h"]))
                dst = "logits" if last and not cfg.graph_level else "op"
                out.append(CombinationPhase(cfg, l, hub, src="h", src_stride=strides["h"],
                                            dst=dst, dst_stride=strides[dst]))
                if cfg.graph_level:  # head l pools layer l's output before op is overwritten
                    out.append(ReadoutPhase(cfg, l, hub, src="op", src_stride=strides["op"]))
        if cfg.graph_level:
            out.insert(0, ReadoutPhase(cfg, 0, hub, src="x", src_stride=strides["x"]))
        return out

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        hub = MemoryHub(cfg)
        phases = self.phases(hub)
        for i, ph in enumerate(phases):
            m.submodules[f"phase{i}_{type(ph).__name__}"] = ph

        # The sequencer's state: ``index`` the running phase, ``active`` while a run is on.
        index = Signal(range(max(len(phases), 2)), name="phase_index")
        active = Signal(name="active")
        # Each on-chip memory a phase writes takes its write from the requantization while a
        # run is on and from ``load`` while idle: the choice is the memory's own copy of
        # ``active`` (kept apart in synthesis, as requantization.Kept), not the write's phase,
        # which would reach every bit of every such memory's word.
        writers = {ph.dst: [] for ph in phases if ph.dst}
        for i, ph in enumerate(phases):
            if ph.dst:
                writers[ph.dst].append(i)
        write_from_rq = {name: Signal(name=f"{name}_write_from_rq", attrs={"keep": 1})
                         for name in writers if name not in OFF_CHIP}
        # A graph-level model's node fields: written by the selection while a run is on; its
        # running sums of the logits by the readout.
        readouts = [ph for ph in phases if isinstance(ph, ReadoutPhase)]
        if readouts:
            write_from_rq["readout_sums"] = Signal(name="readout_sums_write_from_readout",
                                                   attrs={"keep": 1})
        selection = None
        if cfg.graph_level:
            m.submodules.selection = selection = EntrySelection(cfg, hub, phases)
            write_from_rq.update({f"layer{l}_node": Signal(name=f"layer{l}_node_write_from_sel",
                                                           attrs={"keep": 1})
                                  for l in range(1, len(cfg.layers) + 1)})

        # The one requantization datapath. A phase's valid, node and tile are zero while it
        # presents nothing, so the phases are ORed together; its sums are not (``emit`` would
        # reach every bit of them): each lane takes the running phase's by its own copy of
        # ``index``, two cycles late, through a copy per group of lanes (a phase's first result
        # comes tens of cycles after it starts).
        datapath = [ph for ph in phases if not isinstance(ph, ReadoutPhase)]

        def merged(get):
            return reduce(or_, (Value.cast(get(ph)) for ph in datapath))
        result = {"node": merged(lambda ph: ph.result_node),
                  "tile": merged(lambda ph: ph.result_tile),
                  "phase": merged(lambda ph: Mux(ph.result_valid, phases.index(ph), 0)),
                  "groups": merged(lambda ph: Mux(ph.result_valid, ph.groups - 1, 0))}
        lane_phase = copies_in_groups(m, index, cfg.lanes, "acc_phase")
        serving, y = serve_in_groups(
            m, cfg, merged(lambda ph: ph.result_valid), result,
            [_select(lane_phase[c], [0 if ph not in datapath else ph.result_acc[c]
                                     for ph in phases])
             for c in range(cfg.lanes)],
            merged(lambda ph: ph.constants), datapath[0].cols.data,  # every phase's cols word
            [getattr(ph, "used_lanes", 0) for ph in phases], template=self.ram_template)
        m.d.comb += [ph.requantizing.eq(serving) for ph in datapath]
        # A write's address and enable are chosen a cycle before its data (registered_write),
        # so the load's data waits in a register.
        m.d.comb += self.load.ready.eq(1)
        load_data = Signal.like(self.load.p.data, name="load_data")
        m.d.sync += load_data.eq(self.load.p.data)
        for number, (name, spec) in enumerate(cfg.memories.items()):
            load = self.load.valid & (self.load.p.memory == number)
            addr, word, en = self.load.p.addr, load_data, load
            if name in OFF_CHIP:
                addr, word, en = 0, 0, 0
            engine_write = None  # (addr, word, enable, name) of the run's writer of it
            if selection is not None and name.endswith("_node"):  # the selection's
                l = int(name[len("layer"):-len("_node")])
                engine_write = (selection.write_addr, selection.write_data, selection.write_en[l],
                                "sel")
            if readouts and name in ("readout_sums", "logits"):  # the readout's
                heads = [ph for ph in readouts if ph.writes == name]
                engine_write = (*(reduce(or_, (Value.cast(v) for v in values)) for values in
                                  zip(*((ph.write_addr, ph.write_data, ph.write_en)
                                        for ph in heads))), "readout")
            if name in writers:  # the requantization's: the result's word, node * stride + tile
                strides = {phases[i].dst_stride for i in writers[name]}
                assert len(strides) == 1, f"the phases writing {name} disagree on its stride"
                engine_write = (y["node"] * strides.pop() + y["tile"], y["word"],
                                y["write"] & reduce(or_, (y["phase"] == i
                                                          for i in writers[name])), "rq")
            if engine_write is not None:
                ours = Signal(spec.layout, name=f"{name}_{engine_write[3]}_word")
                if isinstance(engine_write[1], list):  # the requantization's lanes, each cut
                    m.d.comb += [ours[c].eq(v) for c, v in enumerate(engine_write[1])]
                else:
                    m.d.comb += Value.cast(ours).eq(engine_write[1])
                if name in OFF_CHIP:  # no load: no choice (a choice with 0 would be a reset)
                    addr, word, en = engine_write[0], ours, engine_write[2]
                else:
                    select = write_from_rq[name]
                    addr = Mux(select, engine_write[0], addr)
                    en = Mux(select, engine_write[2], en)
                    word = chosen_per_slices(m, spec, select, ours, word, f"{name}_word",
                                             template=self.ram_template)
            # The template's slices take copies of the last registers of each read address
            # and of the write's address and enable: each slice of a shallow memory its own
            # (copies of a register: a few bits, hundreds of LUT RAMs), a block RAM's slices
            # one per SLICES_PER_COPY (one register reaching the 23 block RAMs of layer 1's
            # node words takes 12 ns at 16 lanes).
            before, after = read_registers(spec)
            slices = (len(slice_bits(spec.width, spec.depth))
                      if self.ram_template and name not in OFF_CHIP else 1)
            per_copy = 1 if is_shallow(spec) else SLICES_PER_COPY
            if name != "x":
                addr, word, en = registered_write(m, spec, addr, word, en, name, slices,
                                                  per_copy)
            reads = {}
            for port in ("A", "B"):
                address = 0
                for req in hub.reads.get((name, port), []):  # idle requesters drive address 0
                    address = address | req.addr
                reads[port] = registered_address(m, address, f"{name}_{port}", before, slices,
                                                 per_copy)
            if name == "x":
                m.d.comb += self.x.addr.eq(reads["A"][0])
                read_data = [self.x.data]
            elif name == "logits":
                m.d.comb += [self.logits.addr.eq(addr[0]), self.logits.data.eq(word),
                             self.logits.en.eq(en[0])]
                read_data = []
            elif name == "sums":
                m.d.comb += [self.sums_write.addr.eq(addr[0]), self.sums_write.data.eq(word),
                             self.sums_write.en.eq(en[0]),
                             self.sums_read.addr.eq(reads["A"][0])]
                read_data = [self.sums_read.data]
            else:
                read_data = ram(m, name, width=spec.width, depth=spec.depth,
                           template=self.ram_template, init=self.init.get(name, []),
                           init_file=f"{name}.hex" if spec.loaded else "",
                           we=en, waddr=addr, wdata=word, raddr_a=reads["A"],
                           raddr_b=reads["B"])
                if not self.ram_template:  # what a simulation's testbench may inspect
                    self.simulated_memories[name] = m.submodules[name]
            for port, d in zip(("A", "B"), read_data):  # READ_LATENCY after the request
                last, before = registered_data_early(m, d, f"{name}_{port}", after)
                for req in hub.reads.get((name, port), []):
                    m.d.comb += req.data.eq(before if req.early else last)

        # Sequencer: launch each phase in turn and count the cycles of the run.
        num_nodes = Signal.like(self.num_nodes, name="run_nodes")
        launch, done = Signal(), Signal()
        cycles = Signal(CYCLE_BITS)
        current_busy = Signal()
        m.d.comb += current_busy.eq(_select(index, [ph.busy for ph in phases]))
        if selection is not None:
            m.d.comb += [selection.phase.eq(index), selection.start.eq(launch),
                         selection.valid.eq(y["valid"] & reduce(or_, (
                             y["phase"] == i for i in selection.layers.values()))),
                         selection.node_last.eq(y["last_group"] & reduce(or_, (
                             (y["phase"] == i) & (y["tile"] == cfg.tiles(phases[i].width) - 1)
                             for i in selection.layers.values()))),
                         *(v.eq(lane) for v, lane in zip(selection.values, y["lanes"])),
                         *(ph.selecting.eq(selection.busy) for ph in phases
                           if isinstance(ph, SelectionPhase))]

        for i, ph in enumerate(phases):
            m.d.comb += [ph.num_nodes.eq(num_nodes), ph.start.eq(launch & (index == i))]
        if readouts:
            num_graphs = Signal.like(self.num_graphs, name="run_graphs")
            with m.If(~active & self.start):
                m.d.sync += num_graphs.eq(self.num_graphs)
            m.d.comb += [ph.num_graphs.eq(num_graphs) for ph in readouts]
        m.d.sync += launch.eq(0)
        running = [active, *write_from_rq.values()]
        with m.If(~active & self.start):
            m.d.sync += [num_nodes.eq(self.num_nodes), cycles.eq(0), index.eq(0)]
            with m.If(self.num_nodes == 0):
                m.d.sync += done.eq(1)
            with m.Else():
                m.d.sync += [*(r.eq(1) for r in running), launch.eq(1), done.eq(0)]
        with m.If(active):
            m.d.sync += cycles.eq(cycles + 1)
            with m.If(~launch & ~current_busy):
                with m.If(index == len(phases) - 1):
                    m.d.sync += [*(r.eq(0) for r in running), done.eq(1)]
                with m.Else():
                    m.d.sync += [index.eq(index + 1), launch.eq(1)]
        m.d.comb += [self.busy.eq(active), self.done.eq(done), self.cycles.eq(cycles),
                     self.phase.eq(index)]
        return m


def serve_in_groups(m: Module, cfg: EngineConfig, valid, result: dict, acc: list,
                    constants, cols, used_lanes: list[int], *,
                    template: bool) -> tuple[Value, dict]:
    """The requantization (:mod:`a2q.hw.engine.requantization`) of the phases' results,
    ``cfg.requant_lanes`` (R) lanes a cycle.

    A result (``valid``; ``result``: its ``node``, ``tile``, ``phase`` and ``groups`` - 1;
    ``acc``: one sum per lane, read in that cycle only) is registered with its
    ``constants`` (node constants) and its tile's word of the ``cols`` memory (``cols``) one
    cycle later; from the next cycle its lanes enter the pipeline R at a time, ``groups``
    cycles in all (the
    walkers space results that far apart; the sums and the columns' constants of group g's
    lanes wait g + 1 cycles in free-running registers, the node's fields under an enable).
    Each group leaves the pipeline :data:`~a2q.hw.engine.requantization.DEPTH` cycles after it
    entered into a register of the result's word, which is written the cycle after its last
    group arrives: a result presented in cycle c is written in cycle
    ``c + groups + DEPTH + 1``. Lanes past the columns of the phase's results
    (``used_lanes[phase]``; 0 for a phase without results) write 0.

    ``template``: the multipliers are ``a2q_mul`` instances (:mod:`a2q.hw.primitives.dsp_multiply`).
    Returns ``serving`` (a register, high from the cycle after ``valid`` until the write's port
    registers (:func:`~a2q.hw.engine.memory_requests.registered_write`) hold the word; a phase's
    walker counts itself busy while it presents a result, so that ``busy`` does not wait on
    the phases' result merge) and the write: ``write``, ``node``, ``tile`` and ``phase`` in
    the cycle before ``word`` (the lanes' codes, registers) holds the result; and each group
    as it leaves the pipeline: ``valid``, ``last_group`` (the result's last) and ``lanes``
    (its R values, unclamped where the phase does not clamp)."""
    R = cfg.requant_lanes
    G = math.ceil(cfg.lanes / R)
    layout = constants_layout(cfg.lanes, cfg.bias_bits, cfg.graph_level)
    held = {key: Signal(range(max(G, 2)) if key == "groups" else Value.cast(v).shape(),
                        name=f"rq_held_{key}") for key, v in result.items()}
    held_node = Signal(layout.members["node"], name="rq_held_node")
    constants_due = Signal(name="rq_constants_due")
    with m.If(valid):
        m.d.sync += [held[key].eq(v) for key, v in result.items()]
    m.d.sync += constants_due.eq(valid)
    # Each lane's copy of node_first (requantization_stages): one would reach 2 x 17 bits of
    # every lane (273 LUT inputs at 16 lanes).
    node_first = [Signal(name=f"rq_node_first_{r}", attrs={"keep": 1}) for r in range(R)]
    with m.If(constants_due):
        m.d.sync += held_node.eq(constants)
        m.d.sync += [f.eq(data.View(NODE_CONSTANTS, constants).node_first) for f in node_first]
    # The lanes' sums and their columns' constants (hundreds of bits each) wait in free-running
    # registers, group g's lanes g + 1 deep: each is there in the cycle its group needs it,
    # and no enable reaches them all (an enable holding the sums here is the 16-lane engine's
    # routed critical path).
    cols = data.View(layout.members["cols"], Value.cast(cols))
    held_acc = [_delayed(m, a, c // R + 1, f"rq_held_acc_{c}") for c, a in enumerate(acc)]
    held_cols = [_delayed(m, cols[c], c // R + 1, f"rq_held_cols_{c}") for c in range(cfg.lanes)]

    # Group g of the held result enters the pipeline; its constants one cycle later.
    entering = Signal(name="rq_entering")
    group = Signal(range(max(G, 2)), name="rq_group")
    last = group == held["groups"]
    m.d.sync += entering.eq(valid | (entering & ~last))
    next_group = Mux(entering & ~last, group + 1, 0)
    m.d.sync += group.eq(next_group)
    # Each lane selects its sum and its column's constants with its own copies of ``group``
    # and of ``entered_group`` (the group a cycle later), kept apart in synthesis (as
    # requantization.Kept): one register would reach R lanes of sums and constants.
    kept = {"keep": 1} if G > 1 else {}  # one group: nothing to select
    lane_group = [Signal.like(group, name=f"rq_group_{r}", attrs=kept) for r in range(R)]
    entered_group = [Signal.like(group, name=f"rq_entered_group_{r}", attrs=kept)
                     for r in range(R)]
    m.d.sync += [g.eq(next_group) for g in lane_group]
    m.d.sync += [e.eq(g) for e, g in zip(entered_group, lane_group)]
    lanes = [list(range(g * R, (g + 1) * R)) for g in range(G)]  # group g's lanes
    group_acc = [_select(lane_group[r], [held_acc[c] if c < cfg.lanes else 0 for c in lanes_r])
                 for r, lanes_r in enumerate(zip(*lanes))]
    group_constants = Signal(constants_layout(R, cfg.bias_bits, cfg.graph_level),
                             name="rq_constants")
    m.d.comb += group_constants.node.eq(held_node)
    m.d.comb += [group_constants.cols[r].eq(_select(entered_group[r], [
        held_cols[c] if c < cfg.lanes else 0 for c in lanes_r]))
        for r, lanes_r in enumerate(zip(*lanes))]
    # Lane r of the group entering holds a column of the phase's result: group * R + r below
    # the phase's used lanes. Each lane's flag is its own register (the lanes' flags are often
    # equal, and one would reach every lane's codes).
    used = [reduce(or_, [(held["phase"] == p) & (group * R + r < n)
                         for p, n in enumerate(used_lanes) if n]) for r in range(R)]
    # The group travels with the lanes as each lane's own copy (requantization.Kept): at the
    # end it enables the lane's registers of the word, R x G x 16 bits for one register.
    valids, out = pipeline(
        m, entering, {"node": held["node"], "tile": held["tile"], "phase": held["phase"],
                      "last": last,
                      **{f"group_{r}": Kept(group) if G > 1 else group for r in range(R)},
                      **{f"a{r}": a for r, a in enumerate(group_acc)},
                      **{f"u{r}": Kept(u) for r, u in enumerate(used)}},
        requantization_stages(R, group_constants, node_first, cfg.graph_level), name="rq",
        template=template)

    # Each group's codes into the word; the write (its address and enable) comes in the cycle
    # its last group arrives, the word complete in its registers the cycle after.
    y = {"write": valids[-1] & out["last"], "node": out["node"], "tile": out["tile"],
         "phase": out["phase"], "valid": valids[-1], "last_group": out["last"],
         "lanes": [out[f"y{r}"] for r in range(R)],
         "word": [Signal.like(out[f"y{c % R}"], name=f"rq_word_{c}") for c in range(cfg.lanes)]}
    for c in range(cfg.lanes):
        with m.If(valids[-1] & (out[f"group_{c % R}"] == c // R)):
            m.d.sync += y["word"][c].eq(out[f"y{c % R}"])
    written = Signal(name="rq_written")  # the word is complete
    m.d.sync += written.eq(y["write"])
    # One register, made from the values of the cycle before: each term of
    # ``constants_due | entering | valids | written`` and the cycle after ``written`` (the
    # write's port registers hold the word) is a register of one of these (free-running
    # stages), so its OR, a few LUTs deep, stays off the sequencer's path to ``busy``.
    serving = Signal(name="rq_serving")
    m.d.sync += serving.eq(reduce(or_, [valid, entering, *valids[:-1], y["write"], written]))
    return serving, y


def _delayed(m: Module, value, depth: int, name: str) -> Value:
    """``value`` ``depth`` cycles ago, through a chain of free-running registers."""
    for k in range(depth):
        value = delay(m, {name: value}, f"d{k + 1}")[name]
    return value


def _select(index: Value, values: list) -> Value:
    out = 0
    for i, v in enumerate(values):
        out = out | Mux(index == i, v, 0)
    return out
