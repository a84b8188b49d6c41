"""Reading a memory's words 0, 1, 2, ... ahead of a consumer that takes one at a time."""

from __future__ import annotations

from amaranth import Module, Mux, Signal, Value

from .memory_requests import READ_LATENCY, ReadRequest

#: Words the queue holds: enough to read one word a cycle through the read latency and the
#: cycle a word takes from the read port into the queue.
QUEUE_DEPTH = READ_LATENCY + 2
#: Cycles from ``start`` until word 0 is the queue's head.
FIRST_WORD = READ_LATENCY + 1


def in_order_reads(m: Module, req: ReadRequest, *, start, idle, take, name: str,
                   steps: tuple[int, ...] = ()):
    """Read words ``0 .. req.spec.depth - 1`` of ``req``'s memory in order into a queue, and
    return ``(head, valid, step)``: the oldest word not yet taken (a register), whether there
    is one, and for each ``s`` in ``steps`` a register ``step[s]``: ``head`` equals the word
    before it plus ``s`` (compared as each word arrives, so that a consumer comparing
    consecutive words has no comparison after the queue; word 0's are undefined).

    Cycle behaviour: the cycle of ``start`` (while ``idle``) reads word 0, and every cycle
    after it reads the next word while the queue and the reads in flight leave room, from a
    registered address. A word enters the queue the cycle after it arrives on the read port:
    word 0 is ``head`` from :data:`FIRST_WORD` cycles after ``start``. ``take`` (only while
    ``valid``) removes ``head``; a consumer that takes at most one word a cycle from then on
    always finds one. While ``idle`` the address is 0 and the queue is empty.
    """
    depth = req.spec.depth
    read_at = Signal(range(depth + 1), name=f"{name}_read_at")  # depth: every word read
    in_flight = [Signal(name=f"{name}_in_flight_{j}") for j in range(READ_LATENCY)]
    arriving = in_flight[-1]  # the word read READ_LATENCY cycles ago is on the port
    # The word that arrived before, and it plus each step, for the arriving word's flags.
    previous = [Signal(len(Value.cast(req.data)), name=f"{name}_previous_{s}")
                for s in steps]
    queue = [Signal.like(req.data, name=f"{name}_queue_{j}") for j in range(QUEUE_DEPTH)]
    flags = [[Signal(name=f"{name}_step{s}_{j}") for s in steps] for j in range(QUEUE_DEPTH)]
    count = Signal(range(QUEUE_DEPTH + 1), name=f"{name}_count")
    # Registers, so that the decision to read needs no adder: the words in the queue or in
    # flight (count + the in_flight flags), and whether every word has been read.
    pending = Signal(range(QUEUE_DEPTH + 1), name=f"{name}_pending")
    all_read = Signal(name=f"{name}_all_read")
    issue = ~idle & (pending != QUEUE_DEPTH) & ~all_read
    m.d.comb += req.addr.eq(Mux(all_read, 0, read_at))
    word = Value.cast(req.data)
    arriving_flags = [word == Value.cast(p) for p in previous]
    with m.If(arriving):
        m.d.sync += [p.eq(word + s) for p, s in zip(previous, steps)]
    with m.If(idle):
        m.d.sync += [read_at.eq(Mux(start, 1, 0)), count.eq(0), pending.eq(start),
                     all_read.eq(start & (depth == 1))]
        m.d.sync += [f.eq(0) for f in in_flight[1:]]
        m.d.sync += in_flight[0].eq(start)
    with m.Else():
        pop = take & (count != 0)  # the head leaves the queue
        kept = count - pop
        m.d.sync += [read_at.eq(read_at + issue), count.eq(kept + arriving),
                     pending.eq(pending + issue - pop),
                     all_read.eq(all_read | (issue & (read_at == depth - 1))),
                     in_flight[0].eq(issue)]
        m.d.sync += [f.eq(g) for f, g in zip(in_flight[1:], in_flight)]
        for j in range(QUEUE_DEPTH):
            here = arriving & (kept == j)
            after = j + 1 < QUEUE_DEPTH
            m.d.sync += queue[j].eq(Mux(here, req.data, Mux(pop, queue[j + 1], queue[j])
                                        if after else queue[j]))
            m.d.sync += [f.eq(Mux(here, a, Mux(pop, flags[j + 1][n], f) if after else f))
                         for n, (f, a) in enumerate(zip(flags[j], arriving_flags))]
    return queue[0], count != 0, dict(zip(steps, flags[0]))
