"""A readout head: each graph's sum-pooled node codes scored by one linear head, in integers."""

from __future__ import annotations

import math
from functools import reduce
from operator import or_

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

#: bits of a fixed-point mantissa (``a2q.sim.fixed_point``: at most 2^16)
MANTISSA_BITS = 17
#: bits of a right shift (0..62)
SHIFT_BITS = 6


class GraphReadout(wiring.Component):
    """Scores every graph of a batch with one head of the graph-level readout
    (:mod:`a2q.sim.graph_golden`): ``pooled[f] = sum over the graph's nodes of code[f]``,
    ``H[c] = sum_f pooled[f] * in_scale_m[f] * weight[f, c]``, and the head's term
    ``rshift_round(H[c] * scale_m[c], scale_sh[c])`` for each class c.

    Parameters: ``lanes`` (codes a tile holds), ``in_dim`` (D, codes per node; a node is
    ``ceil(D / lanes)`` tiles), ``classes`` (C), ``code_bits`` (unsigned bits of a code),
    ``weight_bits`` (signed), ``max_graph_nodes`` (the largest graph: it sizes the sums).

    Ports:

    - ``constants`` (stream in, always ready): ``{row, in_scale_m, weights, klass, scale_m,
      scale_sh}`` writes row ``row`` (feature f: its mantissa and its C weights) and class
      ``klass``'s scale (mantissa and shift) into registers, one of each a cycle.
    - ``codes`` (stream in): ``{codes, last}``, one tile of a node's codes, nodes in order,
      a node's tiles in order; ``last`` marks the graph's final tile. Lanes past D are
      ignored. A graph without nodes has no tile: a batch's empty graphs are the caller's.
    - ``result`` (stream out): the C signed terms of a graph, graphs in order.

    Cycle behaviour: a tile is accepted every cycle while pooling; the cycle after a graph's
    last tile the head starts, one feature a cycle (C multiply-accumulates in parallel), D
    cycles, then one cycle scales and rounds the C sums into ``result``, valid from the next
    cycle until taken. Tiles are not accepted from the graph's last one until ``result`` is
    free for the next graph: a graph of n tiles costs ``n + D + 1`` cycles when results are
    taken at once (``a2q.sim.cycles.readout_cycles``).
    """

    def __init__(self, *, lanes: int, in_dim: int, classes: int, code_bits: int,
                 weight_bits: int, max_graph_nodes: int):
        for name, v, lo, hi in (("lanes", lanes, 1, 64), ("in_dim", in_dim, 1, 4096),
                                ("classes", classes, 1, 64), ("code_bits", code_bits, 1, 16),
                                ("weight_bits", weight_bits, 2, 16),
                                ("max_graph_nodes", max_graph_nodes, 1, 1 << 20)):
            if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
                raise ValueError(f"{name} must be an integer in {lo}..{hi}, got {v!r}")
        self.lanes, self.in_dim, self.classes = lanes, in_dim, classes
        self.code_bits, self.weight_bits = code_bits, weight_bits
        self.max_graph_nodes = max_graph_nodes
        self.tiles = math.ceil(in_dim / lanes)
        pooled_max = max_graph_nodes * ((1 << code_bits) - 1)
        self.pooled_bits = max(1, pooled_max.bit_length())
        head_max = in_dim * pooled_max * (1 << (MANTISSA_BITS - 1)) * (1 << (weight_bits - 1))
        self.sum_bits = head_max.bit_length() + 1
        self.term_bits = self.sum_bits + MANTISSA_BITS
        super().__init__({
            "constants": In(stream.Signature(data.StructLayout({
                "row": range(max(in_dim, 2)), "in_scale_m": unsigned(MANTISSA_BITS),
                "weights": data.ArrayLayout(signed(weight_bits), classes),
                "klass": range(max(classes, 2)), "scale_m": unsigned(MANTISSA_BITS),
                "scale_sh": unsigned(SHIFT_BITS)}))),
            "codes": In(stream.Signature(data.StructLayout({
                "codes": data.ArrayLayout(unsigned(code_bits), lanes), "last": 1}))),
            "result": Out(stream.Signature(data.ArrayLayout(signed(self.term_bits), classes))),
        })

    def elaborate(self, platform):
        m = Module()
        D, C, P = self.in_dim, self.classes, self.lanes
        in_scale = [Signal(MANTISSA_BITS, name=f"in_scale_{f}") for f in range(D)]
        weight = [[Signal(signed(self.weight_bits), name=f"w_{f}_{c}") for c in range(C)]
                  for f in range(D)]
        scale_m = [Signal(MANTISSA_BITS, name=f"scale_m_{c}") for c in range(C)]
        scale_sh = [Signal(SHIFT_BITS, name=f"scale_sh_{c}") for c in range(C)]

        def load_constants():
            m.d.comb += self.constants.ready.eq(1)
            with m.If(self.constants.valid):
                p = self.constants.p
                for f in range(D):
                    with m.If(p.row == f):
                        m.d.sync += [in_scale[f].eq(p.in_scale_m),
                                     *(weight[f][c].eq(p.weights[c]) for c in range(C))]
                for c in range(C):
                    with m.If(p.klass == c):
                        m.d.sync += [scale_m[c].eq(p.scale_m), scale_sh[c].eq(p.scale_sh)]

        load_constants()
        pooled = [Signal(self.pooled_bits, name=f"pooled_{f}") for f in range(D)]
        sums = [Signal(signed(self.sum_bits), name=f"sum_{c}") for c in range(C)]
        tile = Signal(range(max(self.tiles, 2)))
        feature = Signal(range(max(D, 2)))
        holding = Signal()  # ``result`` holds a graph's terms not yet taken
        m.d.comb += self.result.valid.eq(holding)
        with m.If(self.result.valid & self.result.ready):
            m.d.sync += holding.eq(0)

        # one feature a cycle in HEAD: its pooled sum times its mantissa, into every class.
        # Combinational signals are plain expressions of registers, never assigned in a state:
        # Icarus 11 leaves such a signal X (docs/architecture.md)
        # (and no ``Array``: its index becomes a ``case`` in an ``always @*`` block, which Icarus
        # leaves X until one of its inputs changes, and a graph of zeros changes none)
        row = Signal(self.pooled_bits + MANTISSA_BITS)
        m.d.comb += row.eq(_pick(feature, pooled) * _pick(feature, in_scale))
        with m.FSM() as fsm:
            with m.State("POOL"):
                with m.If(self.codes.valid):
                    for t in range(self.tiles):
                        with m.If(tile == t):
                            for p in range(P):
                                f = t * P + p
                                if f < D:
                                    m.d.sync += pooled[f].eq(pooled[f] + self.codes.p.codes[p])
                    m.d.sync += tile.eq(Mux(tile == self.tiles - 1, 0, tile + 1))
                    with m.If(self.codes.p.last):
                        m.d.sync += [tile.eq(0), feature.eq(0)]
                        m.next = "HEAD"
            with m.State("HEAD"):
                for c in range(C):
                    w = _pick(feature, [weight[f][c] for f in range(D)])
                    m.d.sync += sums[c].eq(sums[c] + row * w)
                m.d.sync += feature.eq(feature + 1)
                with m.If(feature == D - 1):
                    m.next = "SCALE"
            with m.State("SCALE"):
                with m.If(~holding | self.result.ready):
                    for c in range(C):
                        m.d.sync += [self.result.payload[c].eq(
                            _rshift_round(m, sums[c] * scale_m[c], scale_sh[c], c)),
                            sums[c].eq(0)]
                    m.d.sync += [holding.eq(1), *(p.eq(0) for p in pooled)]
                    m.next = "POOL"
        m.d.comb += self.codes.ready.eq(fsm.ongoing("POOL"))
        return m


def _pick(index, values: list):
    """``values[index]`` as an AND-OR of plain expressions (an ``assign``)."""
    return reduce(or_, (Mux(index == i, v, 0) for i, v in enumerate(values)))


def _rshift_round(m: Module, value, shift, c: int):
    """round_half_away(value / 2^shift) for a signed value and a shift of 0..63, as
    ``a2q.sim.fixed_point.rshift_round``: ``((|v| >> (s - 1)) + 1) >> 1`` with v's sign."""
    magnitude = Signal(len(value), name=f"magnitude_{c}")
    m.d.comb += magnitude.eq(Mux(value < 0, -value, value))
    halves = Signal(len(value), name=f"halves_{c}")
    m.d.comb += halves.eq(magnitude >> (shift - 1)[:SHIFT_BITS])  # shift 0: not used
    rounded = Mux(shift == 0, magnitude, (halves + 1) >> 1)
    return Mux(value < 0, -rounded, rounded)
