"""In-order reads ahead of a consumer: every word once, in order, never missing when taken."""

import numpy as np
import pytest
from amaranth import Elaboratable, Module, Signal
from amaranth.lib import memory
from amaranth.sim import Simulator

from a2q.hw.engine.in_order_reads import FIRST_WORD, in_order_reads
from a2q.hw.engine.layout import EngineConfig, LayerShape, MemorySpec
from a2q.hw.engine.memory_requests import (
    ADDRESS_REGISTERS,
    DATA_REGISTERS,
    READ_LATENCY,
    ReadRequest,
    read_registers,
    registered_address,
    registered_data,
)


class Reader(Elaboratable):
    """A memory of ``words`` read as the engine reads it (``registers``: the address registers
    and the data registers around the memory's synchronous read)."""

    def __init__(self, words, registers=(ADDRESS_REGISTERS, DATA_REGISTERS)):
        self.words, self.registers = words, registers
        self.req = ReadRequest(MemorySpec("m", len(words), 16), "m")
        self.start, self.idle, self.take = Signal(), Signal(init=1), Signal()
        self.head, self.valid, self.same, self.one_more = Signal(16), Signal(), Signal(), Signal()

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = memory.Memory(shape=16, depth=len(self.words),
                                               init=self.words)
        port = mem.read_port()
        before, after = self.registers
        m.d.comb += port.addr.eq(registered_address(m, self.req.addr, "m", before)[0])
        m.d.comb += self.req.data.eq(registered_data(m, port.data, "m", after))
        head, valid, step = in_order_reads(m, self.req, start=self.start, idle=self.idle,
                                           take=self.take, name="r", steps=(0, 1))
        m.d.comb += [self.head.eq(head), self.valid.eq(valid), self.same.eq(step[0]),
                     self.one_more.eq(step[1])]
        return m


@pytest.mark.parametrize("registers", [(ADDRESS_REGISTERS, DATA_REGISTERS),
                                       (READ_LATENCY - 1, 0)], ids=["block_ram", "shallow"])
@pytest.mark.parametrize("p_take", [1.0, 0.7, 0.3])
def test_a_consumer_gets_every_word_in_order(p_take, registers):
    """Every word once, in order, from FIRST_WORD cycles after start, with its step flags
    (words that repeat or go up by one, as in a CSR row pointer, among random ones), whichever
    side of the memory its read registers are on."""
    rng = np.random.default_rng(int(p_take * 10))
    words = [int(w) for w in rng.integers(0, 1 << 16, size=23)]
    for j in rng.choice(range(1, len(words)), size=10, replace=False):
        words[j] = (words[j - 1] + int(rng.integers(0, 2))) % (1 << 16)
    dut = Reader(words, registers)
    got, flags = [], []

    async def bench(ctx):
        for run in range(2):  # a second run starts again at word 0
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            ctx.set(dut.idle, 0)
            for _ in range(FIRST_WORD - 1):
                await ctx.tick()
            taken = []
            while len(taken) < len(words):
                take = rng.random() < p_take
                if take:
                    assert ctx.get(dut.valid), f"empty at word {len(taken)}"
                    taken.append(ctx.get(dut.head))
                    if len(taken) > 1:
                        flags.append((ctx.get(dut.same), ctx.get(dut.one_more)))
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
    steps = [(int(b == a), int(b == (a + 1) % (1 << 16))) for a, b in zip(words, words[1:])]
    assert flags == steps + steps


def test_read_registers_go_on_the_narrow_side_of_shallow_loaded_memories():
    """A memory of at most 16 words that the host fills takes every read register on its
    address; one the engine writes, or a deeper one, keeps them on both sides; the latency is
    READ_LATENCY either way."""
    cfg = EngineConfig(model="gcn", layers=(LayerShape(20, 6, 4), LayerShape(6, 3, 4)),
                       input_bits=1, lanes=4, max_nodes=5, max_edges=40)
    got = {name: read_registers(spec) for name, spec in cfg.memories.items()}
    assert all(a + d == READ_LATENCY - 1 for a, d in got.values())
    shallow = (READ_LATENCY - 1, 0)
    assert got["cols"] == got["layer1_scalars"] == shallow
    assert got["layer1_node"] == shallow  # 5 words
    assert cfg.memories["h"].depth <= 16 and got["h"] == (ADDRESS_REGISTERS, DATA_REGISTERS)
    assert cfg.memories["indices"].depth > 16 and got["indices"] == (ADDRESS_REGISTERS, DATA_REGISTERS)
