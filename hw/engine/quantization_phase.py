"""The engine's quantization of a graph-level layer: each node's aggregated values, kept in
``sums``, turned into its codes with the pool entry the selection gave it."""

from __future__ import annotations

from functools import reduce
from operator import or_

from amaranth import Module, Mux, Signal

from .layout import SELECTION_BITS, EngineConfig
from .memory_requests import READ_LATENCY
from .phase import EnginePhase, delay


class QuantizationPhase(EnginePhase):
    """Layer ``layer``'s node codes of a graph-level GIN: ``X[i] = clamp(rshift_round(V[i] *
    agg_m[i], agg_sh[i]), 0, 2^bits[i] - 1)``, V the aggregation's values ``S * op_m[c]``
    that the layer's aggregation (:class:`~a2q.hw.engine.selection_phase.SelectionPhase`)
    wrote to ``sums`` (the column mantissa here 1), the node fields those of the entry it
    chose; written to ``h``.

    The walker reads ``sums`` in order, a (node, tile) every ``groups`` cycles (the
    requantization's pace), and presents each word ``READ_LATENCY`` cycles after its read.

    Cycle behaviour: ``start`` (one cycle) -> ``busy`` from the next; a (node, tile) every
    ``max(1, groups)`` cycles from the cycle after, the last word's codes written
    ``READ_LATENCY + groups + DEPTH + 2`` cycles after its read, ``busy`` falling the cycle
    after (``a2q.sim.cycles.QUANTIZATION_PHASE_OVERHEAD``).
    """

    kind = "quant"

    def __init__(self, cfg: EngineConfig, layer: int, hub, **memories):
        super().__init__(cfg, layer, hub, **memories, acc_width=SELECTION_BITS + 1,
                         width=cfg.layers[layer - 1].in_dim)

    def elaborate(self, platform):
        m = Module()
        cfg, S = self.cfg, self.src_stride
        T, spacing = cfg.tiles(self.width), max(1, self.groups)
        i = Signal(range(cfg.max_nodes + 1), name="node")
        t = Signal(range(max(T, 2)), name="tile")
        base = Signal(range(cfg.max_nodes * S + 1), name="node_base")
        # counters keep at least one bit: Yosys writes a zero-width signal as [-1:0]
        wait = Signal(range(max(spacing, 2)), name="spacing")
        running = Signal(name="running")
        issue = {"valid": Signal(name="issue_valid"), "node": Signal.like(i, name="issue_node"),
                 "tile": Signal.like(t, name="issue_tile")}
        issue_addr = Signal.like(base, name="issue_addr")

        # The walker: (node, tile) read addresses from registers, one every ``spacing``
        # cycles.
        m.d.sync += issue["valid"].eq(0)
        with m.If(self.start):
            m.d.sync += [running.eq(self.num_nodes != 0), i.eq(0), t.eq(0), base.eq(0),
                         wait.eq(0)]
        with m.Elif(running):
            m.d.sync += wait.eq(Mux(wait == spacing - 1, 0, wait + 1))
            with m.If(wait == 0):
                m.d.sync += [issue["valid"].eq(1), issue["node"].eq(i), issue["tile"].eq(t),
                             issue_addr.eq(base + t)]
                with m.If(t == T - 1):
                    m.d.sync += [t.eq(0), i.eq(i + 1), base.eq(base + S)]
                    with m.If(i + 1 == self.num_nodes):
                        m.d.sync += running.eq(0)
                with m.Else():
                    m.d.sync += t.eq(t + 1)
        m.d.comb += self.src.addr.eq(Mux(issue["valid"], issue_addr, 0))

        # The word arrives READ_LATENCY cycles after its read; the node's fields and the
        # tile's column constants are read READ_LATENCY cycles before the cycle after it.
        stages = [issue]
        for d in range(READ_LATENCY):
            stages.append(delay(m, stages[-1], f"word_{d + 1}"))
        ahead = stages[1]
        m.d.comb += [req.addr.eq(Mux(ahead["valid"], ahead["node"], 0))
                     for req in self.node_requests]
        base_cols = cfg.column_base(self.layer, self.kind)
        m.d.comb += self.cols.addr.eq(Mux(ahead["valid"], ahead["tile"] + base_cols, 0))
        arrived = stages[-1]
        in_flight = reduce(or_, [s["valid"] for s in stages[:-1]])
        self.present(m, arrived["valid"], arrived["node"], arrived["tile"],
                     [self.src.data[c] for c in range(self.used_lanes)],
                     running | in_flight | arrived["valid"])
        return m

    def constants_of(self):
        # V * 1 * agg_m[i], rounded by agg_sh[i], clamped to bits[i]
        node = self.node.data
        return {"m_node": node.agg_m, "sh": node.agg_sh, "hi_bits": node.bits, "clamp": 1}
