"""Reading a memory's words 0, 1, 2, ... ahead of a consumer that takes one at a time."""

from __future__ import annotations

from amaranth import Module, Mux, Signal

from .memory_requests import READ_LATENCY, ReadRequest

#: Words the queue holds: enough to read one word a cycle through the read latency.
QUEUE_DEPTH = READ_LATENCY + 1


def in_order_reads(m: Module, req: ReadRequest, *, start, idle, take, name: str):
    """Read words ``0 .. req.spec.depth - 1`` of ``req``'s memory in order into a queue, and
    return ``(head, valid)``: the oldest word not yet taken, and whether there is one.

    Cycle behaviour: the cycle of ``start`` (while ``idle``) reads word 0, and every cycle
    after it reads the next word while the queue and the reads in flight leave room, from a
    registered address. ``take`` removes ``head``; it may be the word arriving from the read
    port in that very cycle. A consumer that takes at most one word a cycle, the first no
    earlier than :data:`~a2q.hw.memory_requests.READ_LATENCY` cycles after ``start``, always
    finds one. While ``idle`` the address is 0 and the queue is empty.
    """
    depth = req.spec.depth
    read_at = Signal(range(depth + 1), name=f"{name}_read_at")  # depth: every word read
    in_flight = [Signal(name=f"{name}_in_flight_{j}") for j in range(READ_LATENCY)]
    arriving = in_flight[-1]  # the word read READ_LATENCY cycles ago is on the port
    queue = [Signal.like(req.data, name=f"{name}_queue_{j}") for j in range(QUEUE_DEPTH)]
    count = Signal(range(QUEUE_DEPTH + 1), name=f"{name}_count")
    head = Signal.like(req.data, name=f"{name}_head")
    m.d.comb += head.eq(Mux(count == 0, req.data, queue[0]))
    valid = (count != 0) | arriving
    pending = count
    for f in in_flight:
        pending = pending + f
    issue = ~idle & (pending < QUEUE_DEPTH) & (read_at != depth)
    m.d.comb += req.addr.eq(Mux(read_at == depth, 0, read_at))
    with m.If(idle):
        m.d.sync += [read_at.eq(Mux(start, 1, 0)), count.eq(0)]
        m.d.sync += [f.eq(0) for f in in_flight[1:]]
        m.d.sync += in_flight[0].eq(start)
    with m.Else():
        pop = take & (count != 0)  # the head leaves the queue
        push = arriving & ~(take & (count == 0))  # the arriving word joins it
        kept = count - pop
        m.d.sync += [read_at.eq(read_at + issue), count.eq(kept + push), in_flight[0].eq(issue)]
        m.d.sync += [f.eq(g) for f, g in zip(in_flight[1:], in_flight)]
        for j, slot in enumerate(queue):
            shifted = Mux(pop, queue[j + 1], slot) if j + 1 < QUEUE_DEPTH else slot
            m.d.sync += slot.eq(Mux(push & (kept == j), req.data, shifted))
    return head, valid
