"""The engine's combination phase: ``A = X @ W`` of one layer, bit-serial in X, then requantized."""

from __future__ import annotations

from amaranth import Module, Mux, Signal, signed

from .engine_layout import EngineConfig, combination_bound
from .engine_phase import EnginePhase


def tree_sum(values):
    """Balanced adder tree (keeps each sum only one bit wider than its operands)."""
    values = list(values)
    while len(values) > 1:
        values = [values[i] + values[i + 1] if i + 1 < len(values) else values[i]
                  for i in range(0, len(values), 2)]
    return values[0]


class CombinationPhase(EnginePhase):
    """Layer ``layer``'s combination over nodes ``0 .. num_nodes - 1``, written to ``dst``.

    The walker visits, one per cycle, node i, tile t (``lanes`` output columns), chunk q
    (``lanes`` inputs: one word of ``src`` and one of ``layer{l}_weight``) and bit plane
    k = 0 .. B_i - 1 of the chunk's codes, least significant first; B_i is node i's ``bits`` in
    ``layer{l}_node``. Every lane adds ``(sum_f bit_k(x_f) * w[f, c]) << k`` to its sum. A
    (node, tile) therefore costs ``B_i * ceil(in_dim / lanes)`` cycles and node, tile and chunk
    changes cost nothing: the read addresses always follow the walker's next position.

    Pipeline: walker (memory reads) -> plane sums -> accumulate -> the engine's shared
    requantization (:data:`requantization.DEPTH` stages) -> one write of ``dst`` per
    (node, tile). GCN: the operand
    ``P = clamp(rshift_round(A * comb_m[i] * xw_m[c], comb_sh[i]), -Q, Q)``, written to ``op``.
    GIN: ``V = A * scale_m[i] * out_m[c] + (bias[c] << scale_sh[i])``; the logits on the last
    layer, else ``clamp(rshift_round(V, out_sh[i]), 0, 2^next_op_bits - 1)`` to ``op``.

    Cycle behaviour: ``start`` (one cycle) -> ``busy`` from the next cycle; the walker's work
    (``sum_i B_i * chunks * tiles`` cycles), then 2 + ``DEPTH`` cycles until the last write;
    ``busy`` falls in the cycle after it.
    """

    kind = "comb"

    def __init__(self, cfg: EngineConfig, layer: int, hub, **memories):
        super().__init__(cfg, layer, hub, **memories,
                         acc_width=combination_bound(cfg, layer).bit_length() + 1)
        self.weight = hub.read(f"layer{layer}_weight", f"{self.name}_weight")
        self.node_bits = hub.read(f"layer{layer}_node", f"{self.name}_bits")

    def elaborate(self, platform):
        m = Module()
        cfg, P = self.cfg, self.cfg.lanes
        Q, T = cfg.tiles(self.shape.in_dim), cfg.tiles(self.shape.out_dim)
        n = cfg.max_nodes

        # Walker. Counters keep at least one bit: Yosys writes a zero-width signal as [-1:0].
        i = Signal(range(n), name="node")
        t = Signal(range(max(T, 2)), name="tile")
        q = Signal(range(max(Q, 2)), name="chunk")
        k = Signal(range(cfg.max_bits), name="plane")
        running = Signal()
        bits = self.node_bits.data.bits  # node i's width: its address follows the next node
        last_k = k + 1 >= bits
        last_q = q == Q - 1
        last_t = t == T - 1
        last_i = i + 1 == self.num_nodes
        adv_k = running & ~last_k
        adv_q = running & last_k & ~last_q
        adv_t = running & last_k & last_q & ~last_t
        adv_i = running & last_k & last_q & last_t & ~last_i
        finish = running & last_k & last_q & last_t & last_i
        next_k = Mux(adv_k, k + 1, 0)
        next_q = Mux(adv_k, q, Mux(adv_q, q + 1, 0))
        next_t = Mux(adv_k | adv_q, t, Mux(adv_t, t + 1, 0))
        next_i = Mux(adv_k | adv_q | adv_t, i, Mux(adv_i, i + 1, 0))
        m.d.sync += [k.eq(next_k), q.eq(next_q), t.eq(next_t), i.eq(next_i),
                     running.eq(Mux(running, ~finish, self.start))]
        m.d.comb += [
            self.src.addr.eq(next_i * self.src_stride + next_q),
            self.weight.addr.eq(next_q * T + next_t),
            self.node_bits.addr.eq(next_i),
        ]

        # Plane sums of the walker's position (its words are on the read ports now).
        codes, w = self.src.data, self.weight.data
        field_bits = len(codes[0])
        plane = [codes[f] if field_bits == 1 else codes[f].bit_select(k, 1) for f in range(P)]
        s1 = []
        for c in range(P):
            s = tree_sum(Mux(plane[f], w[f][c], 0) for f in range(P))
            s1.append(Signal(s.shape(), name=f"plane_sum_{c}"))
            m.d.sync += s1[c].eq(s)
        k1 = Signal.like(k, name="plane_1")
        node1, tile1 = Signal.like(i, name="node_1"), Signal.like(t, name="tile_1")
        valid1, first1, last1 = Signal(name="valid_1"), Signal(name="first_1"), Signal(name="last_1")
        m.d.sync += [k1.eq(k), node1.eq(i), tile1.eq(t), valid1.eq(running),
                     first1.eq((q == 0) & (k == 0)), last1.eq(last_k & last_q)]

        # Accumulate; a finished (node, tile) is presented the next cycle.
        acc = [Signal(signed(self.acc_width), name=f"acc_{c}") for c in range(P)]
        emit, node2, tile2 = Signal(name="emit"), Signal.like(i, name="node_2"), Signal.like(t, name="tile_2")
        with m.If(valid1):
            for c in range(P):
                m.d.sync += acc[c].eq(Mux(first1, 0, acc[c]) + (s1[c] << k1))
        m.d.sync += [emit.eq(valid1 & last1), node2.eq(node1), tile2.eq(tile1)]

        self.present(m, emit, node2, tile2, acc, running | valid1 | emit)
        return m

    def constants_of(self):
        P, node, cols, sc = self.cfg.lanes, self.node.data, self.cols.data, self.scalars.data
        if self.cfg.gcn:  # A * xw_m[c] * comb_m[i], rounded by comb_sh[i], clamped to +-Q
            return {"m1": [cols[c].xw_m for c in range(P)], "m2": [node.comb_m] * P,
                    "sh": node.comb_sh, "hi": (1 << (sc.op_bits - 1)[:4]) - 1,
                    "symmetric": 1, "clamp": 1}
        # A * out_m[c] * scale_m[i] + (bias[c] << scale_sh[i]): the logits, or rounded by
        # out_sh[i] and clamped to the next operand's codes
        return {"m1": [cols[c].out_m for c in range(P)], "m2": [node.scale_m] * P,
                "bias": [cols[c].bias << node.scale_sh for c in range(P)],
                "sh": 0 if self.last else node.out_sh, "hi": (1 << sc.next_op_bits) - 1,
                "clamp": int(not self.last)}
