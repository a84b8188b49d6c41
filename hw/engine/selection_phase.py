"""The engine's Nearest-Neighbor selection: each node's pool entry chosen on chip, before the
layer's aggregation quantizes it (graph-level models, :mod:`a2q.sim.graph_golden`)."""

from __future__ import annotations

from functools import reduce
from operator import or_

from amaranth import Elaboratable, Module, Mux, Signal

from a2q.hw.units.nearest_neighbor_selection import NearestNeighborSelection

from .aggregation_phase import AggregationPhase
from .layout import SELECTION_BITS, EngineConfig, node_fields
from .memory_requests import READ_LATENCY
from .phase import delay


class SelectionPhase(AggregationPhase):
    """A graph-level layer's aggregation, which also selects: its results ``V[i, c] = S[i, c]
    * op_scale_m[c]`` (the column's mantissa from ``cols`` times a node mantissa of 1, no
    shift, no clamp) leave the requantization both into ``sums`` (off chip) and towards
    :class:`EntrySelection`. A node's largest V decides its entry, which every tile's
    quantization needs, so the codes come after, from ``sums``
    (:class:`~a2q.hw.engine.quantization_phase.QuantizationPhase`).

    Cycle behaviour: the aggregation's (:class:`AggregationPhase`), and ``busy`` stays high
    until :class:`EntrySelection` has written the last node's fields (``selecting``, which
    the engine drives)."""

    def __init__(self, cfg: EngineConfig, layer: int, hub, **memories):
        super().__init__(cfg, layer, hub, **memories)
        self.selecting = Signal(name=f"{self.name}_selecting")

    def constants_of(self):
        return {"m_node": 1}  # S * op_m[c] * 1, unrounded, unclamped


class EntrySelection(Elaboratable):
    """Turns the selection phases' requantized values into each node's fields of
    ``layer{l}_node``, through one :class:`~a2q.hw.units.nearest_neighbor_selection.
    NearestNeighborSelection`.

    ``phases``: the engine's phases (this takes the :class:`SelectionPhase` ones). The engine
    drives ``phase`` (the running phase's index, held while it runs), ``start`` (the phases'
    start pulse), and, from the requantization's output, ``valid``, ``values`` (a group of
    ``requant_lanes`` values, 64-bit signed, non-negative for a selection phase) and
    ``node_last`` (the group is the last of the node's last tile). It drives ``write_addr``
    and ``write_en`` (one per layer), ``write_data`` (a word of ``layer{l}_node``) the cycle
    after, as :func:`~a2q.hw.engine.memory_requests.registered_write` takes a write, and
    ``busy``.

    Cycle behaviour: at a selection phase's ``start`` the layer's ``pool_size - 1``
    thresholds are read from ``layer{l}_pool`` (port A), one a cycle, into the unit, each
    :data:`~a2q.hw.engine.memory_requests.READ_LATENCY` cycles after its read; all of them
    before the phase's first result leaves the requantization (the aggregation's first result
    takes longer, :data:`~a2q.hw.engine.layout.MAX_POOL`). Each node's entry is the unit's
    result two cycles after its last group; the entry's word of ``layer{l}_pool`` is read
    (port B) and, ``READ_LATENCY`` cycles later, written to the node's word of
    ``layer{l}_node``; ``busy`` falls ``2 + READ_LATENCY`` cycles after the last group.
    """

    def __init__(self, cfg: EngineConfig, hub, phases: list):
        self.cfg = cfg
        self.layers = {ph.layer: i for i, ph in enumerate(phases)
                       if isinstance(ph, SelectionPhase)}
        L, R = len(cfg.layers), cfg.requant_lanes
        self.phase = Signal(range(max(len(phases), 2)))
        self.start = Signal()
        self.valid = Signal()
        self.values = [Signal(64, name=f"selection_value_{r}") for r in range(R)]
        self.node_last = Signal()
        self.threshold_reads = {l: hub.read(f"layer{l}_pool", f"sel{l}_threshold")
                                for l in self.layers}
        self.entry_reads = {l: hub.read(f"layer{l}_pool", f"sel{l}_entry", port="B")
                            for l in self.layers}
        self.write_addr = Signal(range(cfg.max_nodes), name="selection_write_addr")
        self.write_data = Signal(node_fields(cfg, 1), name="selection_write_data")
        self.write_en = {l: Signal(name=f"sel{l}_write_en") for l in range(1, L + 1)}
        self.busy = Signal(name="selection_busy")

    def elaborate(self, platform):
        m = Module()
        cfg, K = self.cfg, self.cfg.pool_size - 1
        m.submodules.nearest = nearest = NearestNeighborSelection(
            lanes=cfg.requant_lanes, value_bits=SELECTION_BITS, pool_size=cfg.pool_size)
        # The layer whose selection runs, one-hot, set at its phase's start.
        running = {l: Signal(name=f"sel{l}_running") for l in self.layers}
        for l, index in self.layers.items():
            with m.If(self.start):
                m.d.sync += running[l].eq(self.phase == index)

        # Thresholds: a counter reads entries 0 .. K - 1 of the layer's pool, each word
        # arriving READ_LATENCY cycles later into the unit.
        loading = Signal(name="thresholds_loading")
        j = Signal(range(max(K, 1) + 1), name="threshold_index")
        starting = self.start & reduce(or_, (self.phase == i for i in self.layers.values()))
        with m.If(starting & (K > 0)):
            m.d.sync += [loading.eq(1), j.eq(0)]
        with m.Elif(loading):
            m.d.sync += j.eq(j + 1)
            with m.If(j == K - 1):
                m.d.sync += loading.eq(0)
        for l, req in self.threshold_reads.items():
            m.d.comb += req.addr.eq(Mux(loading & running[l], j, 0))
        arriving, pending = {"valid": loading, "index": j}, []
        for d in range(READ_LATENCY):
            arriving = delay(m, arriving, f"threshold_{d + 1}")
            pending.append(arriving["valid"])
        m.d.comb += [
            nearest.thresholds.valid.eq(arriving["valid"]),
            nearest.thresholds.p.index.eq(arriving["index"]),
            nearest.thresholds.p.value.eq(reduce(or_, (
                Mux(running[l], req.data.threshold, 0)
                for l, req in self.threshold_reads.items()))),
        ]

        # Values: a group of lanes is a tile of the unit; a node ends with its last group.
        m.d.comb += [nearest.values.valid.eq(self.valid),
                     nearest.values.p.last.eq(self.node_last),
                     *(nearest.values.p.values[r].eq(Mux(self.valid, v[:SELECTION_BITS], 0))
                       for r, v in enumerate(self.values))]

        # Results, in node order: the entry's pool word is read, then written to the node.
        node = Signal(range(cfg.max_nodes + 1), name="selection_node")
        m.d.comb += nearest.result.ready.eq(1)
        taken = nearest.result.valid
        with m.If(starting):
            m.d.sync += node.eq(0)
        with m.Elif(taken):
            m.d.sync += node.eq(node + 1)
        for l, req in self.entry_reads.items():
            m.d.comb += req.addr.eq(Mux(taken & running[l], nearest.result.p.entry, 0))
        looked_up = {"valid": taken, "node": node}
        for d in range(READ_LATENCY):
            looked_up = delay(m, looked_up, f"entry_{d + 1}")
            pending.append(looked_up["valid"])
        # The write's address and enable with the word read, its data a cycle later
        # (core.registered_write).
        m.d.comb += self.write_addr.eq(looked_up["node"])
        m.d.sync += self.write_data.eq(reduce(or_, (
            Mux(running[l], req.data.fields.as_value(), 0)
            for l, req in self.entry_reads.items())))
        for l, en in self.write_en.items():
            m.d.comb += en.eq(looked_up["valid"] & running[l] if l in running else 0)

        # Busy while thresholds load, a node's maximum or entry is in the unit (the cycle
        # after its last group, and while its result is there), or a lookup is on its way
        # to the node memory.
        after_group = Signal(name="selection_after_group")
        m.d.sync += after_group.eq(self.valid)
        m.d.comb += self.busy.eq(reduce(or_, [loading, self.valid, after_group, taken,
                                              *pending]))
        return m

