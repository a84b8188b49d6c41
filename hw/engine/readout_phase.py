"""The engine's readout: one head of a graph-level model's readout over every graph of the batch
(:mod:`a2q.sim.graph_golden`), its terms summed into each graph's logits."""

from __future__ import annotations

from functools import reduce
from operator import or_

from amaranth import Elaboratable, Module, Mux, Signal

from a2q.hw.units.graph_readout import GraphReadout

from .in_order_reads import in_order_reads
from .layout import EngineConfig, graph_logits_layout, readout_dim
from .memory_requests import READ_LATENCY
from .phase import delay


class ReadoutPhase(Elaboratable):
    """Head ``head``: graph g's term ``rshift_round(((sum over its nodes of O_h) * in_scale_m)
    @ weight * scale_m, scale_sh)`` added to its logits, O_0 the input ``x``, O_h layer h's
    output codes in ``op`` (the phase runs after layer h's combination, before the next
    layer's overwrites ``op``). Head 0 starts each graph's sum from ``readout_bias``; the last
    head writes the logits (``logits``, graph g at address g), the others the running sums
    (``readout_sums``).

    A :class:`~a2q.hw.units.graph_readout.GraphReadout` holds the head's constants (loaded
    from ``readout{h}`` when the phase starts), pools each graph's tiles and scores it. The
    walker reads ``graph_ptr`` in order and issues a graph's tiles, node by node, one a cycle;
    a graph without nodes is one tile of zeros. It waits for the graph's terms before the
    next graph: the unit scores one graph at a time.

    Cycle behaviour: ``start`` (one cycle) -> ``busy`` from the next; ``max(D, C)`` cycles
    read the constants (at least the ``READ_LATENCY`` that ``graph_ptr[0]`` takes), then per
    graph g (``n_g`` nodes, ``T`` tiles a node): one cycle takes its end (an empty graph's
    zero tile is issued then), ``n_g * T`` cycles issue its tiles, ``READ_LATENCY`` bring the
    last, ``D`` cycles of the head, one to scale, one to see the result; after the last graph,
    ``READ_LATENCY`` cycles read its running sum and three more write it. ``a2q.sim.cycles.readout_phase_cycles`` states
    the total.
    """

    def __init__(self, cfg: EngineConfig, head: int, hub, *, src: str, src_stride: int):
        self.cfg, self.head = cfg, head
        self.name = name = f"readout{head}"
        self.dim = readout_dim(cfg, head)
        self.src_stride = src_stride
        self.start = Signal(name=f"{name}_start")
        self.busy = Signal(name=f"{name}_busy")
        self.num_nodes = Signal(range(cfg.max_nodes + 1), name=f"{name}_num_nodes")
        self.num_graphs = Signal(range(cfg.max_graphs + 1), name=f"{name}_num_graphs")
        self.dst = None  # nothing of the requantization's
        self.writes = "logits" if head == len(cfg.layers) else "readout_sums"
        self.src = hub.read(src, f"{name}_src")
        self.graph_ptr = hub.read("graph_ptr", f"{name}_graph_ptr")
        self.constants = hub.read(f"readout{head}", f"{name}_constants")
        self.sums = hub.read("readout_bias" if head == 0 else "readout_sums", f"{name}_sums")
        self.code_bits = cfg.input_bits if src == "x" else cfg.max_bits
        self.write_addr = Signal(range(max(cfg.max_graphs, 2)), name=f"{name}_write_addr")
        self.write_en = Signal(name=f"{name}_write_en")
        self.write_data = Signal(graph_logits_layout(cfg), name=f"{name}_write_data")

    def elaborate(self, platform):
        m = Module()
        cfg, D, C = self.cfg, self.dim, self.cfg.classes
        T = cfg.tiles(D)
        m.submodules.head = unit = GraphReadout(
            lanes=cfg.lanes, in_dim=D, classes=C, code_bits=self.code_bits,
            weight_bits=cfg.readout_weight_bits, max_graph_nodes=cfg.max_nodes)

        beats = max(D, C)
        j = Signal(range(beats + 1), name="constant_beat")
        g = Signal(range(cfg.max_graphs + 1), name="graph")
        node = Signal(range(cfg.max_nodes + 1), name="node")
        base = Signal(range(cfg.max_nodes * self.src_stride + 1), name="node_base")
        t = Signal(range(max(T, 2)), name="tile")
        end = Signal(range(cfg.max_nodes + 1), name="graph_end")
        issue = {"valid": Signal(name="issue_valid"), "last": Signal(name="issue_last"),
                 "zero": Signal(name="issue_zero")}
        issue_addr = Signal.like(base, name="issue_addr")
        draining = Signal(name="draining")

        # graph_ptr in order: word 0 (0), then each graph's end.
        idle, take = Signal(name="walker_idle", init=1), Signal(name="graph_ptr_take")
        head, head_valid, _ = in_order_reads(m, self.graph_ptr, start=self.start, idle=idle,
                                             take=take, name="graph_ptr")

        m.d.sync += issue["valid"].eq(0)
        with m.FSM(name=f"{self.name}_walker") as fsm:
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [idle.eq(0), j.eq(0), g.eq(0), node.eq(0), base.eq(0),
                                 t.eq(0)]
                    m.next = "LOAD"
            with m.State("LOAD"):  # constant beat j read
                m.d.sync += j.eq(j + 1)
                with m.If(j == beats - 1):
                    m.next = "FIRST"
            with m.State("FIRST"):  # graph_ptr[0] taken
                with m.If(head_valid):
                    m.next = "BOUNDARY"
                    with m.If(self.num_graphs == 0):
                        m.next = "DRAIN"
            with m.State("BOUNDARY"):  # graph g's end taken; an empty graph a zero tile
                with m.If(head_valid):
                    m.d.sync += end.eq(head)
                    with m.If(head == node):
                        m.d.sync += [issue["valid"].eq(1), issue["last"].eq(1),
                                     issue["zero"].eq(1)]
                        m.next = "WAIT"
                    with m.Else():
                        m.next = "TILES"
            with m.State("TILES"):  # node's tile t read
                last = (t == T - 1) & (node + 1 == end)
                m.d.sync += [issue["valid"].eq(1), issue["last"].eq(last),
                             issue["zero"].eq(0), issue_addr.eq(base + t)]
                with m.If(t == T - 1):
                    m.d.sync += [t.eq(0), node.eq(node + 1), base.eq(base + self.src_stride)]
                with m.Else():
                    m.d.sync += t.eq(t + 1)
                with m.If(last):
                    m.next = "WAIT"
            with m.State("WAIT"):  # the graph's terms taken
                with m.If(unit.result.valid):
                    m.d.sync += g.eq(g + 1)
                    m.next = "BOUNDARY"
                    with m.If(g + 1 == self.num_graphs):
                        m.next = "DRAIN"
            with m.State("DRAIN"):
                with m.If(~draining):
                    m.d.sync += idle.eq(1)
                    m.next = "IDLE"
        m.d.comb += take.eq(head_valid & (fsm.ongoing("FIRST") | fsm.ongoing("BOUNDARY")))

        # The constants: beat j writes feature min(j, D - 1) and class min(j, C - 1).
        loading = fsm.ongoing("LOAD")
        m.d.comb += self.constants.addr.eq(Mux(loading, j, 0))
        beat = {"valid": loading, "index": j}
        for d in range(READ_LATENCY):
            beat = delay(m, beat, f"constant_{d + 1}")
        word = self.constants.data
        m.d.comb += [
            unit.constants.valid.eq(beat["valid"]),
            unit.constants.p.row.eq(Mux(beat["index"] < D, beat["index"], D - 1)),
            unit.constants.p.klass.eq(Mux(beat["index"] < C, beat["index"], C - 1)),
            unit.constants.p.in_scale_m.eq(word.in_scale_m),
            unit.constants.p.scale_m.eq(word.scale_m),
            unit.constants.p.scale_sh.eq(word.scale_sh),
            *(unit.constants.p.weights[c].eq(word.weights[c]) for c in range(C)),
        ]

        # The tiles: each issued read's word arrives READ_LATENCY cycles later.
        m.d.comb += self.src.addr.eq(Mux(issue["valid"], issue_addr, 0))
        arriving = issue
        for d in range(READ_LATENCY):
            arriving = delay(m, arriving, f"tile_{d + 1}")
        m.d.comb += [unit.codes.valid.eq(arriving["valid"]), unit.codes.p.last.eq(arriving["last"]),
                     *(unit.codes.p.codes[p].eq(Mux(arriving["valid"] & ~arriving["zero"],
                                                    self.src.data[p], 0))
                       for p in range(cfg.lanes))]

        # Each graph's terms: its running sum read (head 0: the biases), added, written.
        m.d.comb += unit.result.ready.eq(1)
        m.d.comb += self.sums.addr.eq(Mux(unit.result.valid & (self.head > 0), g, 0))
        adding, pending = {"valid": unit.result.valid, "graph": g,
                           **{f"term_{c}": unit.result.payload[c] for c in range(C)}}, []
        for d in range(READ_LATENCY):
            adding = delay(m, adding, f"sum_{d + 1}")
            pending.append(adding["valid"])
        # zero but while writing, as the data: the heads' writes are ORed together
        m.d.comb += [self.write_addr.eq(Mux(adding["valid"], adding["graph"], 0)),
                     self.write_en.eq(adding["valid"])]
        m.d.sync += [self.write_data[c].eq(Mux(adding["valid"],
                                               self.sums.data[c] + adding[f"term_{c}"], 0))
                     for c in range(C)]
        # the write's address and enable registered twice, its data once (registered_write)
        written = adding
        for d in range(3):
            written = delay(m, {"valid": written["valid"]}, f"written_{d + 1}")
            pending.append(written["valid"])
        m.d.comb += draining.eq(reduce(or_, pending))
        m.d.comb += self.busy.eq(~fsm.ongoing("IDLE"))
        return m
