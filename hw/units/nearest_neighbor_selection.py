"""The Nearest-Neighbor Strategy at inference time: each node's pool entry from its values."""

from __future__ import annotations

from amaranth import Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .bit_serial_combination import _tree_sum


class NearestNeighborSelection(wiring.Component):
    """Chooses each node's entry of a Nearest-Neighbor pool: ``entry = #{j : M > t[j]}`` with
    ``M`` the largest of the node's values and ``t`` the pool's ``pool_size - 1`` thresholds
    (the midpoints between neighbouring pool ranges, sorted; :mod:`a2q.sim.graph_golden`).

    Parameters: ``lanes`` (values a tile holds), ``value_bits`` (unsigned width of a value and
    of a threshold), ``pool_size`` (m, entries of the pool).

    Ports:

    - ``thresholds`` (stream in): ``{index, value}`` writes threshold ``index`` (0 .. m - 2),
      held in registers; one a cycle, always ready. With m = 1 there are none (every node
      takes entry 0) and the port's writes are ignored.
    - ``values`` (stream in): ``{values, last}``, one tile of ``lanes`` unsigned values of a
      node; ``last`` marks the node's final tile. A node is one or more tiles; lanes a node
      does not use carry 0.
    - ``result`` (stream out): ``{entry, max}`` per node, in order: the pool entry and the
      node's largest value.

    Cycle behaviour: a tile is accepted every cycle while the result path is free; its lanes'
    maximum (a tree of comparators) folds into the node's running maximum in that cycle. The
    cycle after a node's last tile, the m - 1 comparisons against the thresholds are counted
    into ``result``, valid from the cycle after and held until taken. With the consumer taking
    results at once, a run of tiles costs one cycle each and the last node's result is taken
    two cycles after its last tile (``a2q.sim.cycles.selection_cycles``); a result not taken
    stalls ``values`` once a second node's maximum waits behind it.
    """

    def __init__(self, *, lanes: int, value_bits: int, pool_size: int):
        for name, v, lo, hi in (("lanes", lanes, 1, 64), ("value_bits", value_bits, 1, 64),
                                ("pool_size", pool_size, 1, 64)):
            if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
                raise ValueError(f"{name} must be an integer in {lo}..{hi}, got {v!r}")
        self.lanes, self.value_bits, self.pool_size = lanes, value_bits, pool_size
        super().__init__({
            "thresholds": In(stream.Signature(data.StructLayout({
                "index": range(max(pool_size - 1, 2)), "value": unsigned(value_bits)}))),
            "values": In(stream.Signature(data.StructLayout({
                "values": data.ArrayLayout(unsigned(value_bits), lanes), "last": 1}))),
            "result": Out(stream.Signature(data.StructLayout({
                "entry": range(max(pool_size, 2)), "max": unsigned(value_bits)}))),
        })

    def elaborate(self, platform):
        m = Module()
        W, K = self.value_bits, self.pool_size - 1
        thresholds = [Signal(W, name=f"threshold_{j}") for j in range(K)]
        m.d.comb += self.thresholds.ready.eq(1)
        with m.If(self.thresholds.valid):
            for j, t in enumerate(thresholds):
                with m.If(self.thresholds.p.index == j):
                    m.d.sync += t.eq(self.thresholds.p.value)

        # The node's running maximum, and a finished node's maximum waiting to be compared.
        running = Signal(W)
        finished, finished_valid = Signal(W), Signal()
        holding = Signal()  # ``result`` holds a node not yet taken
        compare = finished_valid & (~holding | self.result.ready)
        m.d.comb += [self.values.ready.eq(~finished_valid | compare),
                     self.result.valid.eq(holding)]

        tile_max = _tree_max(list(self.values.p.values))
        node_max = Mux(running > tile_max, running, tile_max)
        with m.If(compare):
            m.d.sync += finished_valid.eq(0)
        with m.If(self.values.valid & self.values.ready):
            with m.If(self.values.p.last):
                m.d.sync += [finished.eq(node_max), finished_valid.eq(1), running.eq(0)]
            with m.Else():
                m.d.sync += running.eq(node_max)

        with m.If(self.result.valid & self.result.ready):
            m.d.sync += holding.eq(0)
        with m.If(compare):
            count = _tree_sum([(finished > t).as_unsigned() for t in thresholds]) if K else 0
            m.d.sync += [self.result.p.entry.eq(count), self.result.p.max.eq(finished),
                         holding.eq(1)]
        return m


def _tree_max(values: list):
    """The largest of ``values``, as a balanced tree of comparators."""
    while len(values) > 1:
        values = [Mux(values[i] > values[i + 1], values[i], values[i + 1])
                  if i + 1 < len(values) else values[i] for i in range(0, len(values), 2)]
    return values[0]
