"""Bit-serial aggregation: each node's neighbour sum, walking a CSR list held in on-chip memory."""

from __future__ import annotations

import math

import numpy as np
from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, enum, memory, stream, wiring
from amaranth.lib.wiring import In, Out


class AggregationMemory(enum.Enum, shape=2):
    """Which memory a word on :class:`BitSerialAggregation`'s ``load`` port goes to."""
    INDPTR = 0
    INDICES = 1
    FEATURES = 2
    BITS = 3


def aggregation_accumulator_width(max_edges: int, max_bits: int, signed_input: bool) -> int:
    """Bits of a signed accumulator that holds any sum of ``max_edges`` operands of ``max_bits``."""
    x_max = 2 ** (max_bits - 1) if signed_input else 2 ** max_bits - 1
    return (max(max_edges, 1) * x_max).bit_length() + 1


class BitSerialAggregation(wiring.Component):
    """Computes ``y[i, d] = sum_{e in indptr[i]:indptr[i+1]} x[indices[e], d]`` for every node i.

    Parameters: ``columns`` (D, values per node), ``lanes`` (columns summed in parallel; the
    D columns are split in ``tiles = ceil(D / lanes)`` tiles), ``max_bits`` (widest operand),
    ``signed_input`` (operands in two's complement; else unsigned), ``max_nodes`` and
    ``max_edges`` (memory depths), ``acc_width`` (default: the worst case, ``max_edges``
    operands of ``max_bits`` in one sum; a smaller value is refused). ``max_nodes`` is at
    least 2.

    Memories (``amaranth.lib.memory``, one synchronous read port each, zero at reset):
    ``indptr`` (``max_nodes + 1`` words), ``indices`` (``max_edges``), ``features``
    (``max_nodes * tiles`` words of ``lanes`` fields of ``max(max_bits, 2)`` bits; node j's tile t at
    address ``j * tiles + t``, each field holding the value in its low ``bits[j]`` bits) and
    ``bits`` (``max_nodes``; node j's operand width, 1 to ``max_bits``).

    Ports:

    - ``load`` (stream in): ``{memory, addr, data}`` writes one word of one memory a cycle
      (always ready). ``init`` contents may also be given to the constructor.
    - ``start`` (in): pulse for one cycle, while idle, to aggregate nodes ``0 .. num_nodes - 1``
      (``num_nodes`` is sampled with it).
    - ``busy`` (out): high from the cycle after ``start`` until the last result is taken.
    - ``result`` (stream out): ``lanes`` signed ``acc_width`` sums, one payload per (node, tile),
      nodes in order and a node's tiles in order; a zero-degree node gives zeros.

    Cycle behaviour: the CSR walker issues one neighbour a cycle into a three-stage pipeline
    (``indices`` read, ``features``/``bits`` read, bit-serial accumulate). The accumulate stage
    spends ``bits[j]`` cycles on neighbour j, one bit a cycle, most significant first
    (``t <- 2 t + bit``, the sign bit's term negated in signed mode), adding ``t`` to the lane's
    sum on the last one; it stalls the pipeline behind it meanwhile. A (node, tile) costs the
    sum of its neighbours' bits, or one cycle if it has no neighbour; node and tile changes
    cost nothing more. A run of ``num_nodes > 0`` nodes therefore takes
    ``RUN_LATENCY + sum over (node, tile) of max(1, sum_j bits[j])`` cycles from ``start`` to
    ``busy`` falling when the consumer takes each result at once (a result not taken stalls
    the unit), and one cycle for ``num_nodes = 0``.
    """

    #: Cycles of a run beyond the accumulate stage's work: two to read ``indptr[0]`` and
    #: ``indptr[1]``, two pipeline stages before the accumulate stage, one to present the last
    #: result and one for ``busy`` to fall after it is taken.
    RUN_LATENCY = 6

    def __init__(self, *, columns: int, lanes: int, max_bits: int = 8, signed_input: bool = False,
                 max_nodes: int, max_edges: int, acc_width: int | None = None, init=None):
        for name, v, lo in (("columns", columns, 1), ("lanes", lanes, 1), ("max_bits", max_bits, 1),
                            ("max_nodes", max_nodes, 2), ("max_edges", max_edges, 1)):
            if not isinstance(v, int) or isinstance(v, bool) or v < lo:
                raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
        if max_bits > 16:
            raise ValueError(f"max_bits must be at most 16, got {max_bits}")
        need = aggregation_accumulator_width(max_edges, max_bits, signed_input)
        if acc_width is None:
            acc_width = need
        elif acc_width < need:
            raise ValueError(f"acc_width {acc_width} can overflow: {max_edges} operands of "
                             f"{max_bits} bits need {need}")
        self.columns, self.lanes, self.max_bits = columns, lanes, max_bits
        self.signed_input, self.acc_width = signed_input, acc_width
        self.max_nodes, self.max_edges = max_nodes, max_edges
        self.tiles = math.ceil(columns / lanes)
        # One field per lane; at least 2 bits wide (Yosys fails on a bit select of 1-bit fields).
        self.field_bits = max(max_bits, 2)
        self.feature_layout = data.ArrayLayout(unsigned(self.field_bits), lanes)
        self.depths = {  # at least 2 words: Yosys fails on a one-word memory
            AggregationMemory.INDPTR: max_nodes + 1,
            AggregationMemory.INDICES: max(max_edges, 2),
            AggregationMemory.FEATURES: max(max_nodes * self.tiles, 2),
            AggregationMemory.BITS: max(max_nodes, 2),
        }
        self.shapes = {
            AggregationMemory.INDPTR: range(max_edges + 1),
            AggregationMemory.INDICES: range(max_nodes),
            AggregationMemory.FEATURES: unsigned(data.Layout.cast(self.feature_layout).size),
            AggregationMemory.BITS: range(max_bits + 1),
        }
        self.init = dict(init or {})
        for key, words in self.init.items():
            if not isinstance(key, AggregationMemory):
                raise ValueError(f"init keys must be AggregationMemory members, got {key!r}")
            if len(words) > self.depths[key]:
                raise ValueError(f"init for {key.name.lower()} has {len(words)} words, "
                                 f"more than its depth {self.depths[key]}")
        word = max(self.shapes[AggregationMemory.FEATURES].width, (max_edges + 1).bit_length(),
                   max_nodes.bit_length(), max_bits.bit_length())
        super().__init__({
            "load": In(stream.Signature(data.StructLayout({
                "memory": AggregationMemory,
                "addr": range(max(self.depths.values())),
                "data": word}))),
            "start": In(1),
            "num_nodes": In(range(max_nodes + 1)),
            "busy": Out(1),
            "result": Out(stream.Signature(data.ArrayLayout(signed(acc_width), lanes))),
        })

    def memory_words(self, indptr, indices, x, bits) -> dict:
        """The words of each memory for a CSR graph (``indptr``, ``indices``), operands ``x``
        (nodes x ``columns`` integers, row j fitting ``bits[j]`` bits) and ``bits``: a dict
        ``AggregationMemory -> list[int]``, for ``init`` or the ``load`` port."""
        x = np.asarray(x, dtype=np.int64)
        bits = np.asarray(bits, dtype=np.int64)
        n = x.shape[0]
        padded = np.zeros((n, self.tiles * self.lanes), dtype=np.int64)
        padded[:, :x.shape[1]] = x & ((1 << bits[:, None]) - 1)  # two's complement in bits[j]
        fields = padded.reshape(n * self.tiles, self.lanes)
        words = [sum(int(v) << (c * self.field_bits) for c, v in enumerate(row)) for row in fields]
        return {
            AggregationMemory.INDPTR: [int(v) for v in indptr],
            AggregationMemory.INDICES: [int(v) for v in indices],
            AggregationMemory.FEATURES: words,
            AggregationMemory.BITS: [int(v) for v in bits],
        }

    def elaborate(self, platform):
        m = Module()
        P, T = self.lanes, self.tiles
        mems = {}
        for key in AggregationMemory:
            mem = memory.Memory(shape=self.shapes[key], depth=self.depths[key],
                                init=self.init.get(key, []))
            m.submodules[key.name.lower()] = mem
            wp = mem.write_port()
            m.d.comb += [
                wp.addr.eq(self.load.p.addr),
                wp.data.eq(self.load.p.data),
                wp.en.eq(self.load.valid & (self.load.p.memory == key)),
            ]
            mems[key] = mem.read_port()
        m.d.comb += self.load.ready.eq(1)
        rp_ptr, rp_idx = mems[AggregationMemory.INDPTR], mems[AggregationMemory.INDICES]
        rp_feat, rp_bits = mems[AggregationMemory.FEATURES], mems[AggregationMemory.BITS]

        # Stage 0: the CSR walker. While walking node i, rp_ptr reads indptr[i + 2] (its
        # address follows the walker's next node), so the next node's end is always ready.
        node = Signal(range(max(self.max_nodes, 2)))
        count = Signal(range(self.max_nodes + 1))
        # Counters keep at least one bit: Yosys writes a zero-width signal as [-1:0].
        tile = Signal(range(max(T, 2)))
        edge = Signal(range(self.max_edges + 1))
        begin = Signal(range(self.max_edges + 1))
        end = Signal(range(self.max_edges + 1))
        walking, valid0, ready0 = Signal(), Signal(), Signal()
        empty0, first0, last0 = Signal(), Signal(), Signal()
        top = self.max_nodes

        def ptr_addr(n):
            return Mux(n + 2 > top, top, n + 2)

        m.d.comb += [
            empty0.eq(begin == end),
            first0.eq(edge == begin),
            last0.eq(empty0 | (edge + 1 == end)),
            rp_ptr.en.eq(1),
        ]
        # Combinational signals are plain expressions of registers, outside If blocks: Icarus
        # never evaluates a combinational process whose inputs have not changed since time zero.
        next_node = Signal()  # the walker moves to the next node this cycle
        with m.FSM() as fsm:
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [count.eq(self.num_nodes), node.eq(0), tile.eq(0)]
                    with m.If(self.num_nodes != 0):
                        m.next = "READ_BEGIN"
            with m.State("READ_BEGIN"):  # rp_ptr.data is indptr[0]
                m.d.sync += [begin.eq(rp_ptr.data), edge.eq(rp_ptr.data)]
                m.next = "READ_END"
            with m.State("READ_END"):  # rp_ptr.data is indptr[1]
                m.d.sync += end.eq(rp_ptr.data)
                m.next = "WALK"
            with m.State("WALK"):  # rp_ptr.data is indptr[node + 2]
                with m.If(ready0):
                    with m.If(~last0):
                        m.d.sync += edge.eq(edge + 1)
                    with m.Elif(tile != T - 1):
                        m.d.sync += [tile.eq(tile + 1), edge.eq(begin)]
                    with m.Elif(node + 1 == count):
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += [node.eq(node + 1), tile.eq(0), begin.eq(end),
                                     edge.eq(end), end.eq(rp_ptr.data)]
        m.d.comb += [
            walking.eq(~fsm.ongoing("IDLE")),
            valid0.eq(fsm.ongoing("WALK")),
            next_node.eq(valid0 & ready0 & last0 & (tile == T - 1) & (node + 1 != count)),
            rp_ptr.addr.eq(Mux(fsm.ongoing("IDLE"), 0,
                               Mux(fsm.ongoing("READ_BEGIN"), 1,
                                   ptr_addr(Mux(next_node, node + 1, node))))),
        ]

        # Stage 1: read the neighbour's index. Stage 2: read its features and bits. A stage's
        # read port holds its data while the stage after it stalls.
        valid1, valid2 = Signal(), Signal()
        tag = data.StructLayout({"tile": range(max(T, 2)), "empty": 1, "first": 1, "last": 1})
        tag1, tag2 = Signal(tag), Signal(tag)
        advance1, advance2, ready3 = Signal(), Signal(), Signal()
        m.d.comb += [
            advance2.eq(~valid2 | ready3),
            advance1.eq(~valid1 | advance2),
            ready0.eq(advance1),
            rp_idx.addr.eq(Mux(empty0, 0, edge)),
            rp_idx.en.eq(advance1),
            rp_feat.addr.eq(rp_idx.data * T + tag1.tile),
            rp_bits.addr.eq(rp_idx.data),
            rp_feat.en.eq(advance2),
            rp_bits.en.eq(advance2),
        ]
        with m.If(advance1):
            m.d.sync += [valid1.eq(valid0), tag1.tile.eq(tile), tag1.empty.eq(empty0),
                         tag1.first.eq(first0), tag1.last.eq(last0)]
        with m.If(advance2):
            m.d.sync += [valid2.eq(valid1), tag2.eq(tag1)]

        # Stage 3: bit-serial accumulate, one bit of the neighbour's operand a cycle.
        bits = rp_bits.data
        features = self.feature_layout(rp_feat.data)
        plane = Signal(range(max(self.max_bits, 2)))
        partial = [Signal(signed(self.max_bits + 1), name=f"partial_{c}") for c in range(P)]
        acc = [Signal(signed(self.acc_width), name=f"acc_{c}") for c in range(P)]
        holding = Signal()
        go = Signal()
        first_plane = plane == 0
        last_plane = tag2.empty | (plane + 1 >= bits)
        position = Signal(range(self.field_bits))  # bit of the operand taken this cycle
        m.d.comb += [
            self.result.valid.eq(holding),
            go.eq(valid2 & (~holding | self.result.ready)),
            ready3.eq(go & last_plane),
            position.eq(bits - 1 - plane),
        ]
        for c in range(P):
            m.d.comb += self.result.payload[c].eq(acc[c])
        with m.If(self.result.valid & self.result.ready):
            m.d.sync += holding.eq(0)
        with m.If(go):
            with m.If(last_plane):
                m.d.sync += plane.eq(0)
                with m.If(tag2.last):
                    m.d.sync += holding.eq(1)
            with m.Else():
                m.d.sync += plane.eq(plane + 1)
            for c in range(P):
                bit = features[c].bit_select(position, 1)
                term = Mux(first_plane & int(self.signed_input), -bit, bit)
                t = Mux(first_plane, 0, partial[c] << 1) + term
                base = Mux(tag2.first, 0, acc[c])
                with m.If(tag2.empty):
                    m.d.sync += acc[c].eq(0)
                with m.Elif(last_plane):
                    m.d.sync += acc[c].eq(base + t)
                with m.Else():
                    m.d.sync += partial[c].eq(t)
        m.d.comb += self.busy.eq(walking | valid1 | valid2 | holding)
        return m
