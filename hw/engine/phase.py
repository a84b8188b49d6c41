"""What every phase of the layer engine shares: its control signals, its memory requests, and
its side of the shared requantization (:mod:`a2q.hw.engine.requantization`)."""

from __future__ import annotations

from functools import reduce
from operator import add, or_

from amaranth import Const, Elaboratable, Module, Mux, Signal, Value, signed

from .layout import EngineConfig
from .memory_requests import READ_LATENCY
from .requantization import NODE_CONSTANTS


class EnginePhase(Elaboratable):
    """Base of :class:`CombinationPhase` and :class:`AggregationPhase`: ``start`` / ``busy`` /
    ``num_nodes``, the reads of ``src``, the layer's node fields (port B), its tiles of
    ``cols`` and its scalars, and the write of ``dst``. Subclasses build the walker and the
    terms of each step and call :meth:`accumulate`.

    Towards the engine's one requantization datapath: ``result_valid``, ``result_node`` and
    ``result_tile`` (zero while the phase presents nothing, so the engine ORs the phases
    together) in the cycle a (node, tile) is finished, with ``result_acc`` (the lanes' signed
    sums, which hold other values in other cycles: the engine takes the running phase's), and
    ``constants`` (:data:`~a2q.hw.engine.requantization.NODE_CONSTANTS`, read from memory
    meanwhile; zero in other cycles) in the next cycle, when the tile's word of ``cols`` is on
    its read port (the engine takes it from there). The engine drives ``requantizing`` (its
    datapath holds a result) and writes the result to ``dst``, the word at
    ``node * dst_stride + tile``."""

    kind = ""  # "comb" or "agg": names the signals and the phase's tiles of ``cols``

    def __init__(self, cfg: EngineConfig, layer: int, hub, *, src: str, src_stride: int,
                 dst: str, dst_stride: int, acc_width: int, width: int,
                 src_early: bool = False):
        self.cfg, self.layer = cfg, layer
        self.shape = cfg.layers[layer - 1]
        #: Columns of the phase's results; the requantization takes ``groups`` cycles over
        #: each (node, tile), so the walker spends at least that many on each.
        self.width = width
        #: Lanes the phase builds: a result of fewer columns than the engine's lanes leaves the
        #: others out (their sums, constants and codes are zero).
        self.used_lanes = min(width, cfg.lanes)
        self.groups = cfg.requant_groups(width)
        #: the last layer of a node-level model, whose results are the logits (a graph-level
        #: model's every layer puts out clamped codes)
        self.last = layer == len(cfg.layers) and not cfg.graph_level
        self.src_stride, self.dst_stride = src_stride, dst_stride
        self.name = name = f"{self.kind}{layer}"
        self.start = Signal(name=f"{name}_start")
        self.busy = Signal(name=f"{name}_busy")
        self.num_nodes = Signal(range(cfg.max_nodes + 1), name=f"{name}_num_nodes")
        # ``src_early``: the phase makes the src read's last register itself (ReadRequest)
        self.src = hub.read(src, f"{name}_src", early=src_early)
        self.node = hub.read(f"layer{layer}_node", f"{name}_node", port="B")
        self.cols = hub.read("cols", f"{name}_cols")
        self.scalars = hub.read(f"layer{layer}_scalars", f"{name}_scalars")
        self.dst = dst
        self.node_requests = [self.node]  # read at the node of the result entering the pipeline
        self.acc_width = acc_width
        self.result_valid = Signal(name=f"{name}_result_valid")
        self.result_node = Signal(range(cfg.max_nodes), name=f"{name}_result_node")
        self.result_tile = Signal(range(max(cfg.tiles(max(self.shape.in_dim,
                                                          self.shape.out_dim)), 2)),
                                  name=f"{name}_result_tile")
        self.result_acc = [Signal(signed(acc_width), name=f"{name}_result_acc_{c}")
                           for c in range(cfg.lanes)]
        self.constants = Signal(NODE_CONSTANTS, name=f"{name}_constants")
        self.requantizing = Signal(name=f"{name}_requantizing")

    def accumulate(self, m: Module, stages: list, terms: list, walker, carries=None,
                   lane_groups: int = 1) -> None:
        """Add ``terms`` (one per lane; and ``carries``, a bit per lane, where given: the
        adder's carry in) to the lanes' sums while ``ctl["valid"]``, starting
        again at ``ctl["first"]``; a (node, tile) whose last term (``ctl["last"]``) is in is
        presented the next cycle (:meth:`present`). ``stages``: the controls of the pipeline's
        stages in order, the walker's (stage 0) first, each later one a register of the one
        before, ``ctl`` the last (the terms' stage; at least ``READ_LATENCY`` of them).
        ``walker``: the walker holds work. ``lane_groups``: the terms are that many groups of
        the used lanes, each a share of every lane's sum (its own bit-plane of each step): lane
        c's result is the sum of lane c of every group.

        Each lane takes ``valid`` and ``first`` from its own copies of ``ctl``'s, registered
        from the stage before and kept apart in synthesis (as requantization.Kept): one
        register would reach every lane's sum, up to 16 x 50 flip-flops (such a ``first`` is a
        routed critical path of the 16-lane engine).

        Whether a stage after the walker holds work, or a result is presented, is one register
        made from the stages' valids of the cycle before (each stage registers the one before
        it): their OR, a few LUTs deep, stays off the sequencer's path to ``busy``."""
        ctl, before = stages[-1], stages[-2]
        acc = [Signal(signed(self.acc_width), name=f"acc_{c}") for c in range(len(terms))]
        emit = Signal(name="emit")
        node = Signal.like(ctl["node"], name="node_done")
        tile = Signal.like(ctl["tile"], name="tile_done")
        carries = carries or [0] * len(terms)
        for c, (a, term, carry) in enumerate(zip(acc, terms, carries)):
            valid = Signal(name=f"acc_valid_{c}", attrs={"keep": 1})
            first = Signal(name=f"acc_first_{c}", attrs={"keep": 1})
            m.d.sync += [valid.eq(before["valid"]), first.eq(before["first"])]
            with m.If(valid):
                m.d.sync += a.eq(Mux(first, 0, a) + term + carry)
        finishing = ctl["valid"] & ctl["last"]
        m.d.sync += [emit.eq(finishing), node.eq(ctl["node"]), tile.eq(ctl["tile"])]
        holding = Signal(name="pipeline_holding")
        m.d.sync += holding.eq(reduce(or_, [s["valid"] for s in stages[:-1]]) | finishing)
        # The node's and the tile's constants are read READ_LATENCY cycles before they are
        # due (the cycle after the result is presented), by the stage that far ahead.
        ahead = stages[-(READ_LATENCY - 1)]
        reading = ahead["valid"] & ahead["last"]
        m.d.comb += [req.addr.eq(Mux(reading, ahead["node"], 0)) for req in self.node_requests]
        base = self.cfg.column_base(self.layer, self.kind)
        m.d.comb += self.cols.addr.eq(Mux(reading, ahead["tile"] + base, 0))
        used = len(terms) // lane_groups
        sums = [reduce(add, (acc[g * used + c] for g in range(lane_groups)))
                for c in range(used)]
        self.present(m, emit, node, tile, sums, walker | holding)

    def present(self, m: Module, emit, node, tile, acc: list, walker_busy) -> None:
        """Hand the accumulated ``acc`` of (``node``, ``tile``), finished while ``emit``, to
        the requantization, and its constants (on the read ports from the next cycle) the
        cycle after. Drives ``busy`` from ``walker_busy`` (high while ``emit`` too: the
        engine's ``requantizing`` starts the cycle after) and the datapath."""
        m.d.comb += [self.result_valid.eq(emit), self.result_node.eq(Mux(emit, node, 0)),
                     self.result_tile.eq(Mux(emit, tile, 0))]
        # The sums ungated: ``emit`` would reach every lane's sum, up to 16 x 50 bits (the
        # 16-lane engine's widest fan-out, 609 LUT inputs).
        m.d.comb += [r.eq(a) for r, a in zip(self.result_acc, acc)]
        m.d.comb += [r.eq(0) for r in self.result_acc[len(acc):]]
        constants_due = Signal(name=f"{self.name}_constants_due")
        m.d.sync += constants_due.eq(emit)
        # Every field driven, unconditionally: a field left to a default inside an ``If``
        # becomes an ``always @*`` block with nothing to wake it in Icarus.
        mapped = self.constants_of()
        words = Signal.like(self.constants, name=f"{self.name}_constants_read")
        m.d.comb += [words[key].eq(mapped.get(key, 0)) for key, _ in self.constants.shape()]
        m.d.comb += self.constants.eq(Mux(constants_due, words, 0))
        busy = walker_busy | self.requantizing
        if hasattr(self, "selecting"):  # the graph-level aggregation's selection
            busy = busy | self.selecting
        m.d.comb += self.busy.eq(busy)

    def constants_of(self) -> dict:
        """The generic form's node constants of the (node, tile) whose memory words are on the
        read ports (fields of :data:`~a2q.hw.engine.requantization.NODE_CONSTANTS`; fields left out
        are zero); the columns' come from ``cols`` straight to the requantization."""
        raise NotImplementedError


def min_spacing(m: Module, cycles: int, *, restart, at_last_now, then_walking,
                then_at_last) -> tuple[Value, Value]:
    """Keeps a walker's visits of the last positions of its (node, tile)s at least ``cycles``
    cycles apart, so that each (node, tile) takes ``max(its work, cycles)`` cycles.

    A walker whose position moved to (``then_walking``, ``then_at_last``: the flags it
    registers for its next cycle) is a (node, tile)'s last one holds there, its visits invalid,
    until ``cycles`` cycles have passed since the last valid visit of a last position
    (``at_last_now``: this cycle's, given ``hold`` low) or since ``restart`` (the cycle before
    the walker's first position). Returns ``hold`` (a register: this cycle's visit is invalid
    and the walker stays) and ``then_hold`` (its next value, to keep the walker's moves from a
    held position low). With ``cycles`` = 1 both are constant 0 and no logic is made."""
    hold = Signal(name="spacing_hold")
    if cycles <= 1:
        return hold, Const(0)
    since = Signal(range(cycles + 1), name="spacing_since", init=cycles)
    then_since = Mux(restart | (at_last_now & ~hold), 1, Mux(since == cycles, cycles, since + 1))
    then_hold = then_walking & then_at_last & (then_since < cycles)
    m.d.sync += [since.eq(then_since), hold.eq(then_hold)]
    return hold, then_hold


def then_last_node(m: Module, n: int, num_nodes, *, keep, advance, last) -> Value:
    """A walker's ``last`` flag for the node it moves to (node ``num_nodes - 1``): ``last``
    while it ``keep``s its node, ``i + 2 == num_nodes`` when it ``advance``s from node i, and
    ``num_nodes == 1`` when it goes back to node 0. ``i + 2 == num_nodes`` is a register
    (``penult_node``) made the cycle before from ``node_plus3`` (i + 3, kept beside the
    walker's node, ``n`` nodes at most), so that no adder and comparison lie before the
    walker's next move."""
    plus3, penult = Signal(range(n + 3), name="node_plus3"), Signal(name="penult_node")
    m.d.sync += [plus3.eq(Mux(keep, plus3, Mux(advance, plus3 + 1, 3))),
                 penult.eq(Mux(keep, penult, Mux(advance, plus3 == num_nodes, num_nodes == 2)))]
    return Mux(keep, last, Mux(advance, penult, num_nodes == 1))


def delay(m: Module, values: dict, name: str) -> dict:
    """``values`` registered once (free running: a stage's controls travel with its data)."""
    out = {}
    for key, v in values.items():
        v = Value.cast(v)
        out[key] = Signal(v.shape(), name=f"{key}_{name}")
        m.d.sync += out[key].eq(v)
    return out


def one_hot(choices) -> Value:
    """The value of the ``(select, value)`` pair whose select is high, or 0 when none is: an
    AND-OR of constant depth, where a chain of ``Mux`` grows a level with each choice. The
    selects must be one-hot or all low."""
    return reduce(or_, (Mux(select, value, 0) for select, value in choices))


def tree_levels(values: list, levels: int) -> list:
    """``levels`` levels of a balanced adder tree (each sum one bit wider than its operands)."""
    values = list(values)
    for _ in range(levels):
        values = [values[i] + values[i + 1] if i + 1 < len(values) else values[i]
                  for i in range(0, len(values), 2)]
    return values
