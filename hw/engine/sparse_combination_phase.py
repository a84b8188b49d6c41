"""The engine's layer-1 combination over an input held as its non-zero codes: ``A = X @ W`` at a
cost of the non-zeros, not of the input's width."""

from __future__ import annotations

from functools import reduce
from operator import or_

from amaranth import C, Cat, Module, Mux, Signal

from .combination_phase import (
    CombinationPhase,
    launch_after_first_fields,
    register_moves,
)
from .in_order_reads import in_order_reads
from .memory_requests import READ_LATENCY, copies_in_groups
from .phase import delay, min_spacing, one_hot, then_last_node


class SparseCombinationPhase(CombinationPhase):
    """A combine-first (GCN, GIN-0) layer 1's combination over nodes ``0 .. num_nodes - 1``,
    from ``x_nonzeros``.

    Node i's non-zero input codes are ``words_i`` words of ``x_nonzeros`` (a field of
    ``layer1_node``, at least 1), each K = ``nonzeros_per_word`` pairs (input f, code); the
    engine holds K copies of the weights, one input's ``lanes`` weights a word
    (``layer1_rows_{j}``). The walker visits, one per cycle, node i, tile t, word q of the
    node's and bit plane k = 0 .. B_i - 1 of its codes, least significant first. Every lane
    adds ``(sum_j bit_k(code_j) * w[f_j, c]) << k`` to its sum, where pair j's weight row
    ``t * in_dim + f_j`` is read from copy j. A (node, tile) therefore costs
    ``B_i * words_i`` cycles, or the requantization's ``groups`` if more; node, tile and word
    changes cost nothing (the word's address always follows the walker's next position).
    Unused pairs hold code 0 and add nothing, so a node with no non-zero input is one word.

    Pipeline, a register between steps: walker (``x_nonzeros`` read, ``READ_LATENCY`` = 5
    cycles) -> each pair's weight-row address (``t * in_dim + f_j``) -> the K rows read
    (``READ_LATENCY``), and meanwhile the codes' plane bits, a register per lane -> as the
    dense :class:`CombinationPhase` from there: weights gated by the bits, two stages of adder
    tree, shifted by the plane, accumulated, presented to the shared requantization, one
    write of ``op`` per (node, tile) (the same constants: GCN's operand ``P``).

    Cycle behaviour: ``start`` (one cycle) -> ``busy`` from the next cycle; ``READ_LATENCY``
    + 1 cycles read node 0's fields, then the walker's work (``sum_i max(B_i * words_i,
    groups) * tiles`` cycles), then 2 * ``READ_LATENCY`` + 7 + ``groups`` + ``DEPTH`` cycles
    until the last write; ``busy`` falls in the cycle after it.
    """

    src_early = False

    def read_weights(self, hub) -> None:
        self.rows = [hub.read(f"layer1_rows_{j}", f"{self.name}_rows_{j}")
                     for j in range(self.cfg.nonzeros_per_word)]

    def elaborate(self, platform):
        m = Module()
        cfg, K = self.cfg, self.cfg.nonzeros_per_word
        F, T = self.shape.in_dim, cfg.tiles(self.shape.out_dim)
        n, W = cfg.max_nodes, cfg.max_input_words
        per_node = cfg.input_words_per_node()

        # Walker. Counters keep at least one bit: Yosys writes a zero-width signal as [-1:0].
        i = Signal(range(n), name="node")
        t = Signal(range(max(T, 2)), name="tile")
        k = Signal(range(cfg.max_bits), name="plane")
        tile_base = Signal(range(T * F + 1), name="tile_base")  # t * in_dim
        running = Signal()
        starting, launch = launch_after_first_fields(m, self.start)
        # Node i's bits and words, registered, from the node fields read in order ahead of
        # the walker; ``left``: the node's words after the walker's; ``first_word``: the
        # walker is on the node's first word.
        bits = Signal(range(cfg.max_bits + 1), name="node_bits")
        words = Signal(per_node, name="node_words")
        left = Signal(per_node, name="words_left")
        first_word = Signal(name="first_word")
        # The position's flags and the move the walker makes this cycle are registers, each
        # computed the cycle before from the position moved to.
        last_k, last_q, last_t, last_i = (Signal(name=f"last_{x}") for x in "kqti")
        adv_k, adv_q, adv_t, adv_i, finish = (
            Signal(name=x) for x in ("adv_plane", "adv_word", "adv_tile", "adv_node", "finish"))
        upcoming, _, _ = in_order_reads(m, self.node_bits, start=self.start,
                                        idle=~running & ~reduce(or_, starting),
                                        take=launch | adv_i, name="fields")
        # A (node, tile) of fewer than ``groups`` cycles waits at its last position until the
        # requantization has taken the previous one (``hold``: stay).
        next_running, then_at_last = Signal(name="next_running"), Signal(name="then_at_last")
        hold, then_hold = min_spacing(
            m, self.groups, restart=launch, at_last_now=running & last_k & last_q,
            then_walking=next_running, then_at_last=then_at_last)
        stay = adv_k | hold  # the walker stays on the word
        next_bits = Mux(launch | adv_i, upcoming.bits, bits)
        next_words = Mux(launch | adv_i, upcoming.words, words)
        m.d.comb += next_running.eq(Mux(running, ~finish, launch))
        then_last_k = Mux(hold, last_k, Mux(adv_k, k + 2 >= bits, next_bits <= 1))
        # a node of at most one word (inputs no more than K) is always on its last word: the
        # comparison would be constant, which Verilator's lint refuses
        one_word = next_words <= 1 if per_node.stop > 2 else C(1, 1)
        then_last_q = Mux(stay, last_q, Mux(adv_q, left == 1, one_word))
        then_last_t = Mux(stay | adv_q, last_t, Mux(adv_t, t == T - 2, T == 1))
        then_last_i = then_last_node(m, n, self.num_nodes, keep=stay | adv_q | adv_t,
                                     advance=adv_i, last=last_i)
        register_moves(m, (last_k, last_q, last_t, last_i),
                       (then_last_k, then_last_q, then_last_t, then_last_i),
                       (adv_k, adv_q, adv_t, adv_i, finish), next_running=next_running,
                       then_at_last=then_at_last, then_hold=then_hold)
        m.d.sync += [
            k.eq(Mux(adv_k, k + 1, Mux(hold, k, 0))),
            t.eq(Mux(stay | adv_q, t, Mux(adv_t, t + 1, 0))),
            tile_base.eq(Mux(stay | adv_q, tile_base, Mux(adv_t, tile_base + F, 0))),
            i.eq(Mux(stay | adv_q | adv_t, i, Mux(adv_i, i + 1, 0))),
            bits.eq(next_bits), words.eq(next_words),
            left.eq(Mux(stay, left, Mux(adv_q, left - 1, next_words - 1))),
            first_word.eq(Mux(stay, first_word, ~adv_q)),
            running.eq(next_running),
        ]

        # The word address of the next position, chosen among registers that hold every
        # candidate: this word, the next, the node's first (the next tile) and the next
        # node's first (``row_next``: ``row`` + the node's words).
        now, step = Signal(range(W + 1), name="word_now"), Signal(range(W + 2), name="word_next")
        row, row_next = Signal(range(W + 1), name="row"), Signal(range(W + per_node.stop),
                                                                 name="row_next")
        addr = one_hot([(stay, now), (adv_q, step), (adv_t, row), (adv_i, row_next)])
        new_row = Mux(adv_i, row_next, Mux(running & ~finish, row, 0))
        m.d.sync += [now.eq(addr), step.eq(addr + 1), row.eq(new_row),
                     row_next.eq(new_row + next_words)]
        m.d.comb += self.src.addr.eq(addr)

        # Stage D, READ_LATENCY - 1 cycles after the walker: the word is on the read port.
        # Stage A: each pair's row address (the tile's base + its input), registered; the rows
        # are on the copies' read ports READ_LATENCY cycles later (stage W).
        ctl = [{"plane": k, "node": i, "tile": t, "base": tile_base,
                "valid": running & ~hold, "first": first_word & (k == 0),
                "last": last_k & last_q}]
        for j in range(READ_LATENCY - 1):
            ctl.append(delay(m, ctl[-1], f"0_{j}"))
        pairs = self.src.data
        rows = delay(m, {f"row_{j}": pairs[j].index + ctl[-1]["base"] for j in range(K)}, "a")
        codes = delay(m, {f"code_{j}": pairs[j].code for j in range(K)}, "a")
        ctl.append(delay(m, ctl[-1], "a"))
        m.d.comb += [req.addr.eq(Mux(ctl[-1]["valid"], rows[f"row_{j}"], 0))
                     for j, req in enumerate(self.rows)]
        for j in range(READ_LATENCY):
            ctl.append(delay(m, ctl[-1], f"r{j}"))
            if j + 2 < READ_LATENCY:  # the codes reach stage W - 2
                codes = delay(m, codes, f"r{j}")
        # The plane's bit of each code (zero above the code's width), made at stage W - 2
        # and reaching each lane's register at stage W through a copy per group of lanes.
        plane = ctl[-3]["plane"]
        plane_bits = Cat((codes[f"code_{j}"] >> plane)[0] for j in range(K))
        L = self.used_lanes
        lane_bits = copies_in_groups(m, plane_bits, L, "nonzero_bits")
        self.add_planes(m, ctl, [[lane_bits[c][j] for j in range(K)] for c in range(L)],
                        [[req.data[c] for req in self.rows] for c in range(L)],
                        running | reduce(or_, starting))
        return m
