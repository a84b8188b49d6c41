"""The engine's aggregation phase: each node's weighted neighbour sum, bit-serial in the operand."""

from __future__ import annotations

from amaranth import C, Cat, Module, Mux, Signal

from .in_order_reads import FIRST_WORD, in_order_reads
from .layout import FRAC, EngineConfig, aggregation_bound, planes_per_cycle
from .memory_requests import READ_LATENCY, copies
from .phase import EnginePhase, delay, min_spacing, one_hot, then_last_node

#: Lanes that take their coefficient term from one register (:meth:`AggregationPhase.elaborate`).
LANES_PER_TERM = 4


class AggregationPhase(EnginePhase):
    """Layer ``layer``'s aggregation over nodes ``0 .. num_nodes - 1``, written to ``dst``.

    Combine-first ("GCN" below; GIN-0 too, whose ``norm`` is 2^15): ``G[i] = sum_{j in N(i)}
    coef[j] * P[j]`` over the CSR row (self-loops included), P the signed operand codes in
    ``op``, ``coef`` the source's field of ``layer{l}_node`` (``gcn_norm``, or that times the
    node's own operand step). Aggregate-first ("GIN" below):
    ``S[i] = self_coef * P[i] + 2^15 * sum_j P[j]``, P unsigned (``x`` on layer 1, ``op``
    after); the self term is the row's first item.

    The walker visits node i, tile t, each item of the row and bit k = 0 .. b - 1 of the
    item's operand (least significant first, the top bit negative in GCN's two's complement),
    one a cycle; every lane adds ``coef << k`` where the bit is set. A phase whose results
    are at most half the lanes wide (L columns) puts its idle lanes to work: lane ``L + c``
    takes bit k + 1 of column c from the same operand word, the walker steps two bits a
    cycle (``planes``), and a (node, tile)'s result is lane c's sum plus lane L + c's: an
    item of b bits costs ``ceil(b / 2)`` cycles. b is the item's own bits for GCN
    (``layer{l}_items`` holds b - 1, read in order ahead of the walker: a node's operand bits
    cost their cycles on every edge that reads it), the layer's ``op_bits`` scalar for GIN. A
    (node, tile) costs the sum of its items' ``ceil(b / planes)`` (one cycle if the row is
    empty), or the requantization's ``groups`` if more (the walker holds on its last
    position), node and tile changes nothing: ``indptr`` is read in order ahead of the walker
    (:func:`~a2q.hw.engine.in_order_reads.in_order_reads`).

    Pipeline, a register between steps (reads take ``READ_LATENCY`` = 5 cycles): walker
    (``indices`` read) -> the item's node -> its operand word's address (operand and
    coefficient reads) -> the coefficient shifted by the bit's place, complemented for GCN's
    top bit (once for all lanes) as it arrives, from before its last data register -> each
    lane's operand bit, and the coefficient's copies (one per ``LANES_PER_TERM`` lanes) ->
    each lane's term, and a carry where the complement needs one -> accumulate -> presented
    -> the engine's shared requantization (:func:`~a2q.hw.engine.core.serve_in_groups`) ->
    one write per (node, tile). GCN:
    ``T = rshift_round(G * norm[i], 15)``, ``U = T * out_m[c] + bias[c]``: the logits on the
    last layer, else ``clamp(rshift_round(U * next_m[i], next_sh[i]), 0, 2^next_bits[i] - 1)``
    to ``h``. GIN: ``clamp(rshift_round(S * op_m[c] * agg_m[i], agg_sh[i]), 0, 2^bits[i] - 1)``
    to ``h``.

    Cycle behaviour: ``start`` (one cycle) -> ``busy`` from the next; ``READ_LATENCY`` + 2
    cycles read ``indptr[0]`` and ``indptr[1]``, then the walker's work, then
    2 * ``READ_LATENCY`` + 7 + ``groups`` + ``DEPTH`` cycles to the last write; ``busy``
    falls in the cycle after it.
    """

    kind = "agg"

    def __init__(self, cfg: EngineConfig, layer: int, hub, **memories):
        shape = cfg.layers[layer - 1]
        super().__init__(cfg, layer, hub, **memories,
                         acc_width=aggregation_bound(cfg).bit_length() + 1,
                         width=shape.out_dim if cfg.combine_first else shape.in_dim)
        #: bit-planes of an item a cycle (:func:`~a2q.hw.engine.layout.planes_per_cycle`)
        self.planes = planes_per_cycle(self.width, cfg.lanes)
        self.indptr = hub.read("indptr", f"{self.name}_indptr")
        self.indices = hub.read("indices", f"{self.name}_indices")
        if cfg.combine_first:
            self.coef_j = hub.read(f"layer{layer}_node", f"{self.name}_coef_j", early=True)
            self.norm_i = hub.read("norm", f"{self.name}_norm_i")
            self.node_requests.append(self.norm_i)
            self.item_bits = hub.read(f"layer{layer}_items", f"{self.name}_item_bits")

    def elaborate(self, platform):
        m = Module()
        cfg, gcn = self.cfg, self.cfg.combine_first  # the signed operand XW, CSR self-loops
        T, n = cfg.tiles(self.width), cfg.max_nodes

        i = Signal(range(n), name="node")
        t = Signal(range(max(T, 2)), name="tile")
        k = Signal(range(max(cfg.max_bits, cfg.input_bits)), name="plane")
        e = Signal(range(cfg.max_edges + 1), name="edge")
        e_next = Signal(range(cfg.max_edges + 2), name="edge_next")  # e + 1
        e_next2 = Signal(range(cfg.max_edges + 3), name="edge_next2")  # e + 2
        begin = Signal(range(cfg.max_edges + 1), name="row_begin")
        # begin + 1 and end + 1, registered, so that no flag waits on a carry chain
        begin_next = Signal(range(cfg.max_edges + 2), name="row_begin_next")
        end_next = Signal(range(cfg.max_edges + 2), name="row_end_next")
        end = Signal(range(cfg.max_edges + 1), name="row_end")
        own = Signal(name="own_term")  # GIN: the current item is the node's own term
        ob = Signal.like(self.scalars.data.op_bits, name="op_bits")
        # indptr is read in order ahead of the walker, which takes the next word each time it
        # moves to a node, so no read address waits on the walker's decision. ``take`` is a
        # register, set the cycle before the walker reads indptr[0] (READ_BEGIN), indptr[1]
        # (READ_END) or moves to the next node (adv_node).
        take, idle = Signal(name="indptr_take"), Signal(name="walker_idle")
        # ``ptr``: the next row's end; ``same``, ``one_more``: it equals the word taken before
        # it (``end``, once the walker has taken that word) plus 0, plus 1.
        ptr, _, step = in_order_reads(m, self.indptr, start=self.start, idle=idle, take=take,
                                      name="indptr", steps=(0, 1))
        same, one_more = step[0], step[1]
        # The position's flags and the move the walker makes this cycle are registers, each
        # computed the cycle before from the position moved to, so that the indices read
        # address is a choice among registers made by registers. ``row_empty``: begin == end;
        # ``more``: the row has an item after this one.
        row_empty, last_k, more, last_t, last_i = (
            Signal(name=x) for x in ("row_empty", "last_k", "more", "last_t", "last_i"))
        adv_k, adv_item, adv_t, adv_i, finish = (
            Signal(name=x) for x in ("adv_plane", "adv_item", "adv_tile", "adv_node", "finish"))
        # start -> FIRST_WORD cycles until indptr[0] is the queue's head (READ_BEGIN).
        waiting = [Signal(name=f"indptr_wait_{j}") for j in range(FIRST_WORD - 1)]
        m.d.sync += [waiting[0].eq(self.start)]
        m.d.sync += [b.eq(a) for a, b in zip(waiting, waiting[1:])]
        with m.FSM(name=f"agg{self.layer}_walker") as fsm:
            with m.State("IDLE"):  # start: indptr[0] is read
                with m.If(self.start):
                    m.next = "WAIT"
            with m.State("WAIT"):
                with m.If(waiting[-1]):
                    m.next = "READ_BEGIN"
            with m.State("READ_BEGIN"):  # ptr is indptr[0]
                m.d.sync += [end.eq(ptr), end_next.eq(ptr + 1)]
                if not gcn:
                    m.d.sync += ob.eq(self.scalars.data.op_bits)
                m.next = "READ_END"
            with m.State("READ_END"):  # ptr is indptr[1]: moves to node 0's row, as adv_i
                m.next = "WALK"
            with m.State("WALK"):  # ptr is indptr[i + 2]
                with m.If(finish):
                    m.next = "IDLE"
        walk = fsm.ongoing("WALK")
        # In READ_END, the state after READ_BEGIN: a register, not the state's decoding, as it
        # starts the walker's longest chain of logic (to ``take``, 11 LUT levels at 16 lanes).
        enter = Signal(name="entering")
        m.d.sync += enter.eq(fsm.ongoing("READ_BEGIN"))
        new_row = adv_i | enter  # begin, end = end, ptr
        empty = ~own & row_empty
        next_walk = enter | (walk & ~finish)
        # A (node, tile) of fewer than ``groups`` cycles waits at its last position until the
        # requantization has taken the previous one (``hold``: stay).
        then_at_last = Signal(name="then_at_last")
        hold, then_hold = min_spacing(m, self.groups, restart=enter,
                                      at_last_now=walk & last_k & ~more, then_walking=next_walk,
                                      then_at_last=then_at_last)
        stay = adv_k | adv_item | adv_t | hold  # the walker stays on the node
        # The next item's edge, among registers chosen by registers: e (the next plane),
        # begin (the row's first item again: GIN's own term done, or the next tile), e + 1
        # (the next item), end (the next row); 0 while the walker reads nothing.
        at_begin, at_e_next, at_end = (
            Signal(name=f"edge_from_{x}") for x in ("begin", "next", "end"))
        next_e = one_hot([(adv_k | hold, e), (at_begin, begin), (at_e_next, e_next),
                          (at_end, end)])
        next_own = Mux(adv_k | hold, own, Mux(adv_item, 0, int(not gcn)))
        next_row_empty = Mux(new_row, same, row_empty)
        # GCN: ``ob`` is the bits of the item the walker is on. The walker moves to a new item
        # (the next of the row, the row's first again for the next tile, or the next row's
        # first) and takes its bits from ``layer{l}_items``, read in the order it visits them.
        if gcn:
            new_item = adv_item | (adv_t & ~row_empty) | (new_row & ~same)
            upcoming, _, _ = in_order_reads(m, self.item_bits, start=self.start, idle=idle,
                                            take=new_item, name="item_bits")  # bits - 1
            m.d.sync += ob.eq(Mux(new_item, upcoming + 1, ob))
            # ``ob <= planes`` (one cycle covers the item), registered with ``ob``, from the
            # queue's word before its + 1: no adder or comparison after ``new_item``.
            ob_within = Signal(name="op_bits_within", init=1)  # ob resets to 0
            first_within = Mux(new_item, upcoming < self.planes, ob_within)
            m.d.sync += ob_within.eq(first_within)
        else:
            first_within = ob <= self.planes
        m.d.sync += [
            k.eq(Mux(adv_k, k + self.planes, Mux(hold, k, 0))),
            t.eq(Mux(adv_k | adv_item | hold, t, Mux(adv_t, t + 1, 0))),
            i.eq(Mux(stay, i, Mux(adv_i, i + 1, 0))),
            own.eq(next_own),
        ]
        with m.If(walk | enter):  # in WALK, finish reads nothing and leaves e at 0
            m.d.sync += [e.eq(next_e), e_next.eq(next_e + 1), e_next2.eq(next_e + 2)]
        with m.If(new_row):
            m.d.sync += [begin.eq(end), begin_next.eq(end_next), end.eq(ptr),
                         end_next.eq(ptr + 1)]
        # The flags of the position moved to, case by case.
        then_last_k = Mux(hold, last_k,
                          (~next_own & next_row_empty) | Mux(adv_k, k + 2 * self.planes >= ob,
                                                             first_within))
        then_more = Mux(adv_k | hold, more, Mux(
            adv_item, ~row_empty & Mux(own, begin_next != end, e_next2 != end), Mux(
                adv_t, ~row_empty & (begin_next != end) if gcn else ~row_empty, Mux(
                    new_row, ~same & ~one_more if gcn else ~same, 0))))
        then_last_t = Mux(adv_k | adv_item | hold, last_t, Mux(adv_t, t == T - 2, T == 1))
        then_last_i = then_last_node(m, n, self.num_nodes, keep=stay, advance=adv_i,
                                     last=last_i)
        adv_item_then = next_walk & then_last_k & then_more
        m.d.comb += then_at_last.eq(then_last_k & ~then_more)
        row_done_then = next_walk & then_at_last & ~then_hold
        adv_t_then = row_done_then & ~then_last_t
        adv_i_then = row_done_then & then_last_t & ~then_last_i
        m.d.sync += [
            row_empty.eq(next_row_empty), last_k.eq(then_last_k), more.eq(then_more),
            last_t.eq(then_last_t), last_i.eq(then_last_i),
            adv_k.eq(next_walk & ~then_last_k), adv_item.eq(adv_item_then),
            adv_t.eq(adv_t_then), adv_i.eq(adv_i_then),
            finish.eq(row_done_then & then_last_t & then_last_i),
        ]
        m.d.sync += [
            at_begin.eq((adv_item_then & next_own) | adv_t_then),
            at_e_next.eq(adv_item_then & ~next_own),
            at_end.eq(fsm.ongoing("READ_BEGIN") | adv_i_then),
        ]
        m.d.sync += take.eq((fsm.ongoing("WAIT") & waiting[-1]) | fsm.ongoing("READ_BEGIN")
                            | adv_i_then)
        m.d.comb += [idle.eq(fsm.ongoing("IDLE")), self.indices.addr.eq(next_e)]

        # The item's node (indices[e], on the read port READ_LATENCY - 1 cycles after the
        # walker was at e: the address is the position moved to) is registered, then its
        # operand word's address (j * stride + t); the word and the coefficient are on the
        # read ports READ_LATENCY cycles after.
        first_item = own if not gcn else (e == begin)
        stages = [{"plane": k, "node": i, "tile": t, "valid": walk & ~hold, "own": own,
                   "empty": empty, "first": first_item & (k == 0), "last": last_k & ~more,
                   "bits": ob}]
        for j in range(READ_LATENCY - 1):
            stages.append(delay(m, stages[-1], f"w{j}"))
        c_w = stages[-1]
        item = delay(m, {"j": Mux(c_w["own"], c_w["node"], self.indices.data), "t": c_w["tile"]},
                     "a")
        stages.append(delay(m, c_w, "a"))
        addr = delay(m, {"address": item["j"] * self.src_stride + item["t"], "j": item["j"]},
                     "b")
        stages.append(delay(m, stages[-1], "b"))
        c_b = stages[-1]
        m.d.comb += self.src.addr.eq(Mux(c_b["valid"], addr["address"], 0))
        if gcn:
            m.d.comb += self.coef_j.addr.eq(Mux(c_b["valid"], addr["j"], 0))
        for j in range(READ_LATENCY):  # stage 1: the word and the coefficient are read
            stages.append(delay(m, stages[-1], f"r{j}" if j + 1 < READ_LATENCY else "1"))
        c1 = stages[-1]
        k1, node1, tile1, valid1 = c1["plane"], c1["node"], c1["tile"], c1["valid"]
        first1, last1 = c1["first"], c1["last"]

        # The item's coefficient shifted into place by the bit's place (zero for an empty row),
        # once for all lanes, registered at stage 1 from the coefficient read early (GIN's is a
        # constant); stage 2: a register of it per group of LANES_PER_TERM lanes, then each
        # lane's term at stage 3: the registers between them have a wire across the lanes
        # before them and no logic (one register reaching 16 lanes' terms puts 21 register
        # inputs past 10 ns). GCN's top bit weighs -2^(b-1): its term is the
        # complement, and the lanes whose bit is set add a carry into their sums, so that no
        # carry chain sits between the block RAM and the register (with one, that is the
        # engine's worst path).
        def signed_term(st, coef, g):  # lane group g: plane k + g
            shifted = Mux(st["empty"], 0, (coef << g if g else coef) << st["plane"])
            if not gcn:
                return {"term": shifted}
            negate = ~st["empty"] & (st["plane"] + (g + 1) == st["bits"])
            as_signed = Cat(shifted, C(0, 1)).as_signed()
            return {"term": Mux(negate, ~as_signed, as_signed), "negate": negate}

        def named(key, g):
            return key if g == 0 else f"{key}_{g}"

        planes = range(self.planes)
        if not gcn:
            c0 = stages[-2]
            own_coef = Mux(c0["own"], self.scalars.data.self_coef, 1 << FRAC)
            term1 = [delay(m, signed_term(c0, own_coef, g), named("1t", g)) for g in planes]
        elif self.coef_j.early:
            term1 = [delay(m, signed_term(stages[-2], self.coef_j.data.coef, g),
                           named("1t", g)) for g in planes]
        else:  # the coefficient comes from the read's last register (a memory of a few words)
            term1 = [signed_term(c1, self.coef_j.data.coef, g) for g in planes]
        codes, L = self.src.data, self.used_lanes
        field_bits = len(codes[0])
        groups = -(-L // LANES_PER_TERM)
        # Stage 2: the item's operand bit of every lane, and the term's copies. Planes above
        # the field (an input paid at more bits than its codes are stored with) read zeros,
        # and so do a lane group's planes past the item's bits (a code's field holds its sign
        # above them).
        if field_bits == 1:
            plane0 = Signal(name="plane0")
            m.d.comb += plane0.eq(k1 == 0)

        def lane_bit(c, g):
            if field_bits == 1:
                return codes[c] & plane0 if g == 0 else C(0, 1)
            if g == 0:
                return codes[c].bit_select(k1, 1)
            return codes[c].bit_select(k1 + g, 1) & (k1 + g < c1["bits"])

        bit2 = delay(m, {named(f"bit_{c}", g): lane_bit(c, g) for g in planes for c in range(L)},
                     "2")
        term2 = [{key: copies(m, v, groups, named(key, g) + "_2") for key, v in term1[g].items()}
                 for g in planes]
        c2 = delay(m, {"node": node1, "tile": tile1, "valid": valid1, "first": first1,
                       "last": last1}, "2")
        # Stage 3: each lane's term: the coefficient where the lane's bit is set, and its carry.
        def lane_term(c, g):
            bit, copy = bit2[named(f"bit_{c}", g)], c // LANES_PER_TERM
            term = {"term": Mux(bit, term2[g]["term"][copy], 0)}
            if gcn:
                term["carry"] = bit & term2[g]["negate"][copy]
            return delay(m, term, f"3_{c}" if g == 0 else f"3_{g}_{c}")

        lane = [lane_term(c, g) for g in planes for c in range(L)]
        stages.append(c2)
        stages.append(delay(m, c2, "3"))
        self.accumulate(m, stages, [t["term"] for t in lane], ~idle,
                        [t["carry"] for t in lane] if gcn else None, lane_groups=self.planes)
        return m

    def constants_of(self):
        node = self.node.data
        if self.cfg.combine_first:  # T = rshift_round(G * norm[i], 15); T * out_m[c] + bias[c]: the
            # logits, or times next_m[i], rounded by next_sh[i], clamped to next_bits[i]
            out = {"m_node": self.norm_i.data, "node_first": 1, "round15": 1}
            if not self.last:
                out.update(m3=node.next_m, use_m3=1, sh=node.next_sh, hi_bits=node.next_bits,
                           clamp=1)
            return out
        # S * op_m[c] * agg_m[i], rounded by agg_sh[i], clamped to bits[i]
        return {"m_node": node.agg_m, "sh": node.agg_sh, "hi_bits": node.bits, "clamp": 1}
