"""Bit-serial combination: one node's feature vector times a weight matrix, one bit-plane a cycle."""

from __future__ import annotations

from amaranth import Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out


def accumulator_width(in_features: int, max_bits: int, weight_bits: int, signed_input: bool) -> int:
    """Bits of a signed accumulator that holds any sum_k x_k w_k of the unit's parameters."""
    x_max = 2 ** (max_bits - 1) if signed_input else 2 ** max_bits - 1
    w_max = 2 ** (weight_bits - 1)
    return (in_features * x_max * w_max).bit_length() + 1


class BitSerialCombination(wiring.Component):
    """Computes ``y[c] = sum_k x[k] * w[k, c]`` for ``lanes`` columns c, bit-serially in x.

    Parameters: ``in_features`` (F), ``lanes`` (columns computed in parallel, one
    shift-accumulate processing element each), ``weight_bits`` (signed weights), ``max_bits``
    (widest feature a node may have), ``signed_input`` (features in two's complement; else
    unsigned, as after a ReLU), ``acc_width`` (default: :func:`accumulator_width`, the worst
    case; a smaller value is refused).

    Ports:

    - ``weights`` (stream in): ``{row, values}`` writes row ``row`` (input feature k) of the
      weight matrix held in the unit: ``lanes`` signed ``weight_bits`` values. One row a cycle.
    - ``planes`` (stream in): ``{plane, first, last}``: one bit-plane of the node's feature
      vector (bit b of every x[k], ``plane[k]``), most significant plane first. ``first`` marks
      a node's first plane (it restarts the accumulators), ``last`` its final one. A node with
      B bits sends B planes; in signed mode the first plane is the sign plane.
    - ``result`` (stream out): ``lanes`` signed ``acc_width`` sums, one payload per node.

    Cycle behaviour: a plane is accepted every cycle unless ``result`` holds a value that is
    not taken in that cycle; each accepted plane updates every lane in that cycle
    (``acc <- 2 acc + dot(plane, w[:, c])``, the first plane's term negated in signed mode).
    The node's result is valid from the cycle after its ``last`` plane and stays until taken;
    while it waits, ``planes.ready`` is low. A node of B bits therefore costs B cycles, with
    no per-node overhead when the consumer takes results at once.
    """

    def __init__(self, *, in_features: int, lanes: int, weight_bits: int = 4, max_bits: int = 8,
                 signed_input: bool = False, acc_width: int | None = None):
        for name, v, lo in (("in_features", in_features, 1), ("lanes", lanes, 1),
                            ("weight_bits", weight_bits, 2), ("max_bits", max_bits, 1)):
            if not isinstance(v, int) or v < lo:
                raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
        if max_bits > 16 or weight_bits > 16:
            raise ValueError("max_bits and weight_bits must be at most 16")
        need = accumulator_width(in_features, max_bits, weight_bits, signed_input)
        if acc_width is None:
            acc_width = need
        elif acc_width < need:
            raise ValueError(f"acc_width {acc_width} can overflow: {in_features} features of "
                             f"{max_bits} bits times {weight_bits}-bit weights need {need}")
        self.in_features, self.lanes = in_features, lanes
        self.weight_bits, self.max_bits = weight_bits, max_bits
        self.signed_input, self.acc_width = signed_input, acc_width
        row_shape = range(in_features) if in_features > 1 else 1
        super().__init__({
            "weights": In(stream.Signature(data.StructLayout({
                "row": row_shape,
                "values": data.ArrayLayout(signed(weight_bits), lanes)}))),
            "planes": In(stream.Signature(data.StructLayout({
                "plane": in_features, "first": 1, "last": 1}))),
            "result": Out(stream.Signature(data.ArrayLayout(signed(acc_width), lanes))),
        })

    def elaborate(self, platform):
        m = Module()
        F, P = self.in_features, self.lanes
        w = [[Signal(signed(self.weight_bits), name=f"w_{k}_{c}") for c in range(P)]
             for k in range(F)]

        m.d.comb += self.weights.ready.eq(1)
        with m.If(self.weights.valid):
            for k in range(F):
                with m.If(self.weights.p.row == k):
                    m.d.sync += [w[k][c].eq(self.weights.p.values[c]) for c in range(P)]

        acc = [Signal(signed(self.acc_width), name=f"acc_{c}") for c in range(P)]
        holding = Signal()  # result holds a node's sums not yet taken
        m.d.comb += [
            self.result.valid.eq(holding),
            self.planes.ready.eq(~holding | self.result.ready),
        ]
        for c in range(P):
            m.d.comb += self.result.payload[c].eq(acc[c])
        with m.If(self.result.valid & self.result.ready):
            m.d.sync += holding.eq(0)

        plane = self.planes.p.plane
        first = self.planes.p.first
        with m.If(self.planes.valid & self.planes.ready):
            for c in range(P):
                dot = _tree_sum([Mux(plane[k], w[k][c], 0) for k in range(F)])
                term = Mux(first & Const(int(self.signed_input), 1), -dot, dot)
                prev = Mux(first, 0, acc[c])
                m.d.sync += acc[c].eq((prev << 1) + term)
            with m.If(self.planes.p.last):
                m.d.sync += holding.eq(1)
        return m


def bit_planes(x_row, bits: int, signed_input: bool) -> list[int]:
    """The planes of one node's features, most significant first, as integers (bit k = x[k])."""
    planes = []
    for b in reversed(range(bits)):
        word = 0
        for k, v in enumerate(x_row):
            v = int(v)
            if signed_input:
                v &= (1 << bits) - 1  # two's complement in `bits` bits
            word |= ((v >> b) & 1) << k
        planes.append(word)
    return planes


def _tree_sum(terms: list):
    """The sum of ``terms`` as a balanced tree of adders: log2(len) deep, where Python's
    ``sum`` nests as deep as there are terms (thousands of inputs exceed Python's recursion
    limit when Amaranth walks the expression)."""
    while len(terms) > 1:
        terms = [terms[i] + terms[i + 1] if i + 1 < len(terms) else terms[i]
                 for i in range(0, len(terms), 2)]
    return terms[0]
