"""The engine's combination phase: ``A = X @ W`` of one layer, bit-serial in X, then requantized."""

from __future__ import annotations

from functools import reduce
from operator import or_

from amaranth import Cat, Module, Mux, Signal

from .in_order_reads import FIRST_WORD, in_order_reads
from .layout import EngineConfig, combination_bound
from .memory_requests import READ_LATENCY, copies_in_groups
from .phase import EnginePhase, delay, min_spacing, one_hot, then_last_node, tree_levels


def launch_after_first_fields(m: Module, start) -> tuple[list[Signal], Signal]:
    """A combination walker's start: ``start`` -> :data:`FIRST_WORD` cycles for node 0's
    fields (read in order ahead of the walker) -> ``launch``, the walker running from the next
    cycle. Returns the registers of those cycles (``launch`` the last)."""
    starting = [Signal(name=f"starting_{j}") for j in range(FIRST_WORD)]
    m.d.sync += [starting[0].eq(start)]
    m.d.sync += [b.eq(a) for a, b in zip(starting, starting[1:])]
    return starting, starting[-1]


def register_moves(m: Module, flags: tuple, then: tuple, moves: tuple, *, next_running,
                   then_at_last, then_hold) -> None:
    """A combination walker's position flags (``flags``: last plane, word or chunk, tile and
    node) registered from those of the position it moves to (``then``), and its moves
    (``moves``: to the next plane, word or chunk, tile, node, or ``finish``) made from them:
    the walker leaves a (node, tile) when it moves to its last position (``then_at_last``,
    driven here) and no ``then_hold`` keeps it there."""
    then_k, then_q, then_t, then_i = then
    adv_k, adv_q, adv_t, adv_i, finish = moves
    m.d.comb += then_at_last.eq(then_k & then_q)
    tile_done = next_running & then_at_last & ~then_hold
    m.d.sync += [f.eq(v) for f, v in zip(flags, then)]
    m.d.sync += [adv_k.eq(next_running & ~then_k), adv_q.eq(next_running & then_k & ~then_q),
                 adv_t.eq(tile_done & ~then_t), adv_i.eq(tile_done & then_t & ~then_i),
                 finish.eq(tile_done & then_t & then_i)]


class CombinationPhase(EnginePhase):
    """Layer ``layer``'s combination over nodes ``0 .. num_nodes - 1``, written to ``dst``.

    The walker visits, one per cycle, node i, tile t (``lanes`` output columns), chunk q
    (``lanes`` inputs: one word of ``src`` and one of ``layer{l}_weight``) and bit plane
    k = 0 .. B_i - 1 of the chunk's codes, least significant first; B_i is node i's ``bits`` in
    ``layer{l}_node``. Every lane adds ``(sum_f bit_k(x_f) * w[f, c]) << k`` to its sum. A
    (node, tile) therefore costs ``B_i * ceil(in_dim / lanes)`` cycles, or the requantization's
    ``groups`` if more (the walker holds on its last position, reading nothing new), and node,
    tile and chunk changes cost nothing: the read addresses always follow the walker's next
    position.

    Pipeline, a register between steps (reads take ``READ_LATENCY`` = 5 cycles): walker
    (memory reads) -> the plane's bits of the words read, a register per lane -> weights gated
    by them -> two stages of adder tree -> shifted by the plane -> accumulate -> presented ->
    the engine's shared requantization (:func:`~a2q.hw.engine.core.serve_in_groups`) -> one
    write of ``dst`` per (node, tile). GCN: the operand
    ``P = clamp(rshift_round(A * comb_m[i] * xw_m[c], comb_sh[i]), -Q_i, Q_i)`` (Q_i from the
    node's ``op_bits``), written to ``op``.
    GIN: ``V = A * scale_m[i] * out_m[c] + (bias[c] << scale_sh[i])``; the logits on the last
    layer, else ``clamp(rshift_round(V, out_sh[i]), 0, 2^next_op_bits - 1)`` to ``op``.

    Cycle behaviour: ``start`` (one cycle) -> ``busy`` from the next cycle; ``READ_LATENCY``
    + 1 cycles read node 0's bits (the node fields are read in order ahead of the walker),
    then the walker's work (``sum_i max(B_i * chunks, groups) * tiles`` cycles), then
    ``READ_LATENCY`` + 6 + ``groups`` + ``DEPTH`` cycles until the last write; ``busy`` falls
    in the cycle after it.
    """

    kind = "comb"
    #: The phase makes the last register of its ``src`` read itself (a copy per lane).
    src_early = True

    def __init__(self, cfg: EngineConfig, layer: int, hub, **memories):
        super().__init__(cfg, layer, hub, **memories,
                         acc_width=combination_bound(cfg, layer).bit_length() + 1,
                         width=cfg.layers[layer - 1].out_dim, src_early=self.src_early)
        self.read_weights(hub)
        self.node_bits = hub.read(f"layer{layer}_node", f"{self.name}_bits")

    def read_weights(self, hub) -> None:
        self.weight = hub.read(f"layer{self.layer}_weight", f"{self.name}_weight")

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
        starting, launch = launch_after_first_fields(m, self.start)
        # Node i's bits, registered, from the node fields read in order ahead of the walker.
        bits = Signal(range(cfg.max_bits + 1), name="node_bits")
        # The position's flags and the move the walker makes this cycle are registers, each
        # computed the cycle before from the position moved to, so that the read addresses
        # below are a choice among registers made by registers.
        last_k, last_q, last_t, last_i = (Signal(name=f"last_{x}") for x in "kqti")
        adv_k, adv_q, adv_t, adv_i, finish = (
            Signal(name=x) for x in ("adv_plane", "adv_chunk", "adv_tile", "adv_node", "finish"))
        moved_k = Signal(name="moved_plane")  # the walker moved to the next plane: k = k' + 1
        upcoming, _, _ = in_order_reads(m, self.node_bits, start=self.start,
                                        idle=~running & ~reduce(or_, starting),
                                        take=launch | adv_i, name="bits")
        # A (node, tile) of fewer than ``groups`` cycles (Q * B_i < groups) waits at its last
        # position until the requantization has taken the previous one (``hold``: stay).
        next_running, then_at_last = Signal(name="next_running"), Signal(name="then_at_last")
        hold, then_hold = min_spacing(
            m, self.groups if Q < self.groups else 1, restart=launch,
            at_last_now=running & last_k & last_q, then_walking=next_running,
            then_at_last=then_at_last)
        stay = adv_k | hold  # the walker stays on the chunk (and the node's words)
        next_k = Mux(adv_k, k + 1, Mux(hold, k, 0))
        next_q = Mux(stay, q, Mux(adv_q, q + 1, 0))
        next_t = Mux(stay | adv_q, t, Mux(adv_t, t + 1, 0))
        next_i = Mux(stay | adv_q | adv_t, i, Mux(adv_i, i + 1, 0))
        next_bits = Mux(launch | adv_i, upcoming.bits, bits)
        m.d.comb += next_running.eq(Mux(running, ~finish, launch))
        then_last_k = Mux(hold, last_k, Mux(adv_k, k + 2 >= bits, next_bits <= 1))
        # q + 2 == Q and t + 2 == T compare with constants; i + 2 == num_nodes is a register
        then_last_q = Mux(stay, last_q, Mux(adv_q, q == Q - 2, Q == 1))
        then_last_t = Mux(stay | adv_q, last_t, Mux(adv_t, t == T - 2, T == 1))
        then_last_i = then_last_node(m, n, self.num_nodes, keep=stay | adv_q | adv_t,
                                     advance=adv_i, last=last_i)
        register_moves(m, (last_k, last_q, last_t, last_i),
                       (then_last_k, then_last_q, then_last_t, then_last_i),
                       (adv_k, adv_q, adv_t, adv_i, finish), next_running=next_running,
                       then_at_last=then_at_last, then_hold=then_hold)
        m.d.sync += [
            k.eq(next_k), q.eq(next_q), t.eq(next_t), i.eq(next_i), bits.eq(next_bits),
            running.eq(next_running), moved_k.eq(adv_k),
        ]

        # The read addresses of the next position, chosen among registers that hold every
        # candidate (src: i * S + q; weight: q * T + t), so no arithmetic precedes the read.
        S = self.src_stride
        src_now, src_step = Signal(range(n * S + 1)), Signal(range(n * S + 2), init=1)
        row, row_step = Signal(range(n * S + 1)), Signal(range(n * S + S + 1), init=S)
        w_now, w_step = Signal(range(Q * T + 1)), Signal(range(Q * T + T + 1), init=T)
        t_step = Signal(range(T + 2), init=1)
        src_addr = one_hot([(stay, src_now), (adv_q, src_step), (adv_t, row),
                            (adv_i, row_step)])
        w_addr = one_hot([(stay, w_now), (adv_q, w_step), (adv_t, t_step)])
        new_row = Mux(adv_i, row_step, Mux(running & ~finish, row, 0))
        m.d.sync += [src_now.eq(src_addr), src_step.eq(src_addr + 1), row.eq(new_row),
                     row_step.eq(new_row + S), w_now.eq(w_addr), w_step.eq(w_addr + T),
                     t_step.eq(next_t + 1)]
        m.d.comb += [
            self.src.addr.eq(src_addr),
            self.weight.addr.eq(w_addr),
        ]

        # Stage 0: the walker's words are read (READ_LATENCY cycles from the address of the
        # position moved to, so READ_LATENCY - 1 after the walker). Stage 1: they are on the
        # read ports; each weight gated by its input's bit of plane k, registered.
        ctl = [{"plane": k, "node": i, "tile": t, "valid": running & ~hold,
                "first": (q == 0) & (k == 0), "last": last_k & last_q, "plane0": k == 0,
                "moved": moved_k}]
        for j in range(READ_LATENCY - 1):
            ctl.append(delay(m, ctl[-1], f"0_{j}"))
        # Each lane takes the plane's bits from its own register of the src word (kept apart
        # in synthesis, as requantization.Kept; one would reach every lane's gates), made from
        # the word before its last register (read early): loaded at plane 0, each field
        # shifted down a bit as the walker moves to the next plane, so that a field's plane bit
        # is the register's bit, straight to the lane's gates. (Choosing the bit at the gates
        # with a copy of the plane puts up to 60 gate resets past 10 ns at 16 lanes.)
        w = self.weight.data
        F, L = min(self.shape.in_dim, P), self.used_lanes  # inputs and columns that exist
        word = self.src.data
        fb = len(word[0])  # bits of an input's code
        if not self.src.early:  # the word comes from the read's last register: choose here
            bits = [[word[f].bit_select(ctl[-1]["plane"], 1) for f in range(F)]] * L
        else:
            loads, moves = (copies_in_groups(m, ctl[-4][x], L, f"src_{x}")
                            for x in ("plane0", "moved"))
            bits = []
            for c in range(L):
                held = Signal(F * fb, name=f"src_word_{c}", reset_less=True,
                              attrs={"keep": 1} if L > 1 else {})
                with m.If(loads[c]):
                    m.d.sync += held.eq(Cat(word[f] for f in range(F)))
                with m.Elif(moves[c]):
                    m.d.sync += held.eq(Cat(Cat(held[f * fb + 1:(f + 1) * fb], 0)
                                            for f in range(F)))
                bits.append([held[f * fb] for f in range(F)])
        self.add_planes(m, ctl, bits, [[w[c][f] for f in range(F)] for c in range(L)],
                        running | reduce(or_, starting))
        return m

    def add_planes(self, m: Module, ctl: list, bits: list, weights: list, walker) -> None:
        """The lanes from the stage (``ctl[-1]``) whose plane bits (``bits[c][f]``: lane c's
        bit of input f, a register) and weights (``weights[c][f]``) are there: each weight
        gated by its bit, registered (stage 1), two stages of adder tree (2, 3), the sum
        shifted by the plane (4), accumulated (:meth:`accumulate`; ``walker``: the walker holds
        work)."""
        L, F = len(weights), len(weights[0])
        gated = [delay(m, {f"gated_{f}_{c}": Mux(bits[c][f], weights[c][f], 0)
                           for f in range(F)}, "1") for c in range(L)]
        ctl.append(delay(m, ctl[-1], "1"))
        # Stages 2 and 3: each lane's adder tree, half its levels a stage.
        levels = (F - 1).bit_length()
        half = [delay(m, {f"tree_{c}_{j}": v for j, v in enumerate(
            tree_levels(gated[c].values(), (levels + 1) // 2))}, "2") for c in range(L)]
        sums = [delay(m, {f"plane_sum_{c}": tree_levels(half[c].values(), levels)[0]}, "3")
                for c in range(L)]
        ctl.append(delay(m, ctl[-1], "2"))
        ctl.append(delay(m, ctl[-1], "3"))
        # Stage 4: shifted into place by its plane, each lane by its own copy of the plane
        # (kept apart in synthesis, as requantization.Kept: one reached 16 lanes' shifters),
        # through a copy per group of lanes.
        planes = copies_in_groups(m, ctl[-3]["plane"], L, "plane_3")
        shifted = [delay(m, {f"shifted_{c}": sums[c][f"plane_sum_{c}"] << planes[c]},
                         "4")[f"shifted_{c}"] for c in range(L)]
        ctl.append(delay(m, ctl[-1], "4"))
        self.accumulate(m, ctl, shifted, walker)

    def constants_of(self):
        node, sc = self.node.data, self.scalars.data
        if self.cfg.combine_first:  # A * xw_m[c] * comb_m[i], rounded by comb_sh[i], to +-Q_i
            return {"m_node": node.comb_m, "sh": node.comb_sh, "hi_bits": node.op_bits - 1,
                    "symmetric": 1, "clamp": 1}
        # A * out_m[c] * scale_m[i] + (bias[c] << scale_sh[i]): the logits, or rounded by
        # out_sh[i] and clamped to the next operand's codes
        return {"m_node": node.scale_m, "bias_sh": node.scale_sh,
                "sh": 0 if self.last else node.out_sh, "hi_bits": sc.next_op_bits,
                "clamp": int(not self.last)}
