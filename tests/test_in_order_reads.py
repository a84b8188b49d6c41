"""In-order reads ahead of a consumer: every word once, in order, never missing when taken."""

import numpy as np
import pytest
from amaranth import Elaboratable, Module, Signal
from amaranth.lib import memory
from amaranth.sim import Simulator

from a2q.hw.engine_layout import MemorySpec
from a2q.hw.in_order_reads import in_order_reads
from a2q.hw.memory_requests import READ_LATENCY, ReadRequest


class Reader(Elaboratable):
    """A memory of ``words`` read as the engine reads it (block RAM, then a register)."""

    def __init__(self, words):
        self.words = words
        self.req = ReadRequest(MemorySpec("m", len(words), 16), "m")
        self.start, self.idle, self.take = Signal(), Signal(init=1), Signal()
        self.head, self.valid = Signal(16), Signal()

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = memory.Memory(shape=16, depth=len(self.words),
                                               init=self.words)
        port = mem.read_port()
        registered = Signal(16)
        m.d.comb += port.addr.eq(self.req.addr)
        m.d.sync += registered.eq(port.data)
        m.d.comb += self.req.data.eq(registered)
        head, valid = in_order_reads(m, self.req, start=self.start, idle=self.idle,
                                     take=self.take, name="r")
        m.d.comb += [self.head.eq(head), self.valid.eq(valid)]
        return m


@pytest.mark.parametrize("p_take", [1.0, 0.7, 0.3])
def test_a_consumer_gets_every_word_in_order(p_take):
    rng = np.random.default_rng(int(p_take * 10))
    words = [int(w) for w in rng.integers(0, 1 << 16, size=23)]
    dut = Reader(words)
    got = []

    async def bench(ctx):
        for run in range(2):  # a second run starts again at word 0
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            ctx.set(dut.idle, 0)
            for _ in range(READ_LATENCY - 1):
                await ctx.tick()
            taken = []
            while len(taken) < len(words):
                take = rng.random() < p_take
                if take:
                    assert ctx.get(dut.valid), f"empty at word {len(taken)}"
                    taken.append(ctx.get(dut.head))
                ctx.set(dut.take, take)
                await ctx.tick()
            ctx.set(dut.take, 0)
            ctx.set(dut.idle, 1)
            await ctx.tick()
            got.append(taken)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert got == [words, words]
