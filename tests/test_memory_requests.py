"""Read and write registers of a memory split into slices (hw/engine/memory_requests.py)."""

import pytest
from amaranth import Cat, Module, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from a2q.hw.engine.layout import MemorySpec
from a2q.hw.engine.memory_requests import (
    DATA_REGISTERS,
    SHALLOW_WORDS,
    SLICES_PER_COPY,
    ReadRequest,
    chosen_per_slices,
    copies_in_groups,
    registered_address,
    registered_data_early,
    registered_write,
)
from a2q.hw.primitives.block_ram import VERILOG, ram, slice_bits

from .yosys_netlists import synthesized

WIDTH, DEPTH = 144, 300  # four 36-bit block RAMs


class SlicedMemory(wiring.Component):
    """A memory of four slices behind ``registered_write`` and ``registered_address``, the
    last registers copied ``slices`` times (1: one register reaches every slice)."""

    def __init__(self, slices: int):
        self.slices = slices
        super().__init__({"we": In(1), "waddr": In(9), "wdata": In(WIDTH), "raddr": In(9),
                          "rdata": Out(WIDTH)})

    def elaborate(self, platform):
        m = Module()
        spec = MemorySpec("mem", DEPTH, WIDTH)
        waddr, wdata, we = registered_write(m, spec, self.waddr, self.wdata, self.we, "mem",
                                            self.slices)
        raddr = registered_address(m, self.raddr, "mem", 2, self.slices)
        data, _ = ram(m, "mem", width=WIDTH, depth=DEPTH, template=True, we=we, waddr=waddr,
                      wdata=wdata, raddr_a=raddr)
        m.d.sync += self.rdata.eq(data)
        return m


def address_nets(tmp_path, slices: int) -> list[set]:
    """Each block RAM's address and write-enable inputs in ``a2q synth``'s ECP5 netlist."""
    cells = synthesized(tmp_path / f"slices{slices}", SlicedMemory(slices), "sliced",
                        {"a2q_ram.v": VERILOG})["cells"]
    return [{b for pin, bits in cell["connections"].items()
             if pin.startswith(("ADA", "ADB", "WEA", "WEB", "CEA", "CEB")) for b in bits
             if not isinstance(b, str)}
            for cell in cells.values() if cell["type"] == "DP16KD"]


@pytest.mark.parametrize("slices", [1, len(slice_bits(WIDTH, DEPTH))])
def test_each_slice_gets_its_own_address_registers(tmp_path, slices):
    """With a copy per slice, no address or enable net reaches two block RAMs (the copies
    survive synthesis); with one register, every block RAM shares them."""
    nets = address_nets(tmp_path, slices)
    assert len(nets) == 4 and all(nets)
    shared = set.intersection(*nets)
    if slices == 1:
        assert shared == nets[0]
    else:
        assert all(not (a & b) for i, a in enumerate(nets) for b in nets[i + 1:])


class TwoMemories(wiring.Component):
    """Two one-slice memories written and read at the same addresses, as the host's load
    writes every memory of the engine."""

    def __init__(self):
        super().__init__({"we": In(2), "waddr": In(9), "wdata": In(WIDTH // 4), "raddr": In(9),
                          "rdata": Out(WIDTH // 2)})

    def elaborate(self, platform):
        m = Module()
        out = []
        for k in range(2):
            spec = MemorySpec(f"mem{k}", DEPTH, WIDTH // 4)
            waddr, wdata, we = registered_write(m, spec, self.waddr, self.wdata, self.we[k],
                                                f"mem{k}")
            raddr = registered_address(m, self.raddr, f"mem{k}_A")
            out.append(ram(m, f"mem{k}", width=WIDTH // 4, depth=DEPTH, template=True, we=we,
                           waddr=waddr, wdata=wdata, raddr_a=raddr)[0])
        m.d.sync += self.rdata.eq(Cat(*out))
        return m


def test_memories_at_the_same_address_take_registers_of_their_own(tmp_path):
    """Through ``a2q synth``'s Yosys script (ECP5), two memories given the same write and read
    addresses share no address register: merged, one register would reach both memories'
    block RAMs (the engine's slowest paths, when every loaded memory's write address was
    one register)."""
    cells = synthesized(tmp_path, TwoMemories(), "two", {"a2q_ram.v": VERILOG})["cells"]
    rams = [c for c in cells.values() if c["type"] == "DP16KD"]
    assert len(rams) == 2
    nets = [{b for pin, bits in c["connections"].items() if pin.startswith(("ADA", "ADB"))
             for b in bits if not isinstance(b, str)} for c in rams]
    assert all(nets) and not nets[0] & nets[1]
    drivers = {b for c in cells.values() if c["type"] == "TRELLIS_FF"
               for b in c["connections"]["Q"]}
    assert nets[0] | nets[1] <= drivers  # registers, not the inputs


@pytest.mark.parametrize("times", [0, 1, DATA_REGISTERS, 3])
def test_an_early_word_comes_a_register_before_the_last(times):
    """registered_data_early: the word after ``times`` registers, and the word before the last
    of them (the same word where there is none), on a counter's values."""
    m = Module()
    count = Signal(8)
    m.d.sync += count.eq(count + 1)
    last, before = registered_data_early(m, count, "mem_A", times)
    seen = []

    async def bench(ctx):
        for _ in range(12):
            seen.append((ctx.get(count), ctx.get(last), ctx.get(before)))
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    for c, got_last, got_before in seen[times:]:
        assert got_last == c - times
        assert got_before == c - max(times - 1, 0)


def test_a_read_is_early_only_where_the_memory_has_a_data_register():
    """A shallow memory the host fills has its read registers before it: nothing to read
    early from; a deeper one, or one the engine writes, has its data registers."""
    shallow = MemorySpec("cols", SHALLOW_WORDS, 32)
    assert not ReadRequest(shallow, "r", early=True).early
    assert ReadRequest(MemorySpec("h", SHALLOW_WORDS + 1, 32), "r", early=True).early
    assert ReadRequest(MemorySpec("h", 4, 32, loaded=False), "r", early=True).early
    assert not ReadRequest(MemorySpec("h", 300, 32), "r").early



class GroupedCopies(wiring.Component):
    """``COUNT`` copies of a counter through :func:`copies_in_groups`, each XORed with its own
    input on the output (as lanes use them: the same logic on each would let Yosys merge
    copies that are not kept)."""

    COUNT, PER_GROUP = 10, 4

    def __init__(self):
        super().__init__({"d": In(8 * self.COUNT), "copies": Out(8 * self.COUNT)})

    def elaborate(self, platform):
        m = Module()
        count = Signal(8)
        m.d.sync += count.eq(count + 1)
        regs = copies_in_groups(m, count, self.COUNT, "lane", self.PER_GROUP)
        m.d.comb += self.copies.eq(Cat(r ^ self.d[8 * k:8 * (k + 1)] for k, r in enumerate(regs)))
        return m


def test_copies_in_groups_come_two_registers_later():
    """Every copy holds the counter's value of two cycles before."""
    dut = GroupedCopies()
    seen = []

    async def bench(ctx):
        for _ in range(8):
            out = ctx.get(dut.copies)
            seen.append([(out >> (8 * k)) & 0xFF for k in range(dut.COUNT)])
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    for cycle, got in enumerate(seen[2:], start=2):
        assert got == [cycle - 2] * dut.COUNT


def test_copies_in_groups_stay_apart_through_synthesis(tmp_path):
    """``a2q synth``'s Yosys script (ECP5) keeps a register per group and one per copy."""
    nets = synthesized(tmp_path, GroupedCopies(), "grouped")["netnames"]
    copies = {tuple(nets[f"lane_{k}"]["bits"]) for k in range(GroupedCopies.COUNT)}
    groups = {tuple(nets[f"lane_g_{g}"]["bits"]) for g in range(3)}
    assert len(copies) == GroupedCopies.COUNT and len(groups) == 3


@pytest.mark.parametrize("slices, per_copy", [(1, 1), (6, 4), (4, 1)])
def test_a_write_takes_its_address_a_cycle_before_its_data(slices, per_copy):
    """registered_write: the address and the enable given in cycle c and the data given in
    cycle c + 1 reach every slice together, in cycle c + 2; a copy per ``per_copy`` slices."""
    m = Module()
    count = Signal(8)
    m.d.sync += count.eq(count + 1)
    spec = MemorySpec("mem", 256, 8)
    waddr, wdata, we = registered_write(m, spec, count, count - 1, count[0], "mem", slices,
                                        per_copy)
    assert len(waddr) == len(we) == slices
    assert len({id(a) for a in waddr}) == -(-slices // per_copy)
    seen = []

    async def bench(ctx):
        for _ in range(10):
            seen.append((ctx.get(count), [ctx.get(a) for a in waddr], ctx.get(wdata),
                         [ctx.get(e) for e in we]))
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    for c, addrs, data, enables in seen[2:]:
        assert addrs == [c - 2] * slices and data == c - 2  # the data given for c - 2
        assert enables == [(c - 2) & 1] * slices


class ChosenWord(wiring.Component):
    """A word of :data:`WORD` bits chosen by :func:`chosen_per_slices` between ``a`` and
    ``b``, registered."""

    WORD = 9 * 36  # nine 36-bit block RAMs

    def __init__(self, template: bool):
        self.template = template
        super().__init__({"select": In(1), "a": In(self.WORD), "b": In(self.WORD),
                          "y": Out(self.WORD)})

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.y.eq(chosen_per_slices(m, MemorySpec("mem", DEPTH, self.WORD),
                                                self.select, self.a, self.b, "mem_word",
                                                template=self.template))
        return m


def test_a_write_word_is_chosen_by_the_select_of_the_cycle_before():
    """Every bit comes from ``a`` where ``select`` was high the cycle before, else from ``b``."""
    dut = ChosenWord(template=True)
    a, b = (1 << ChosenWord.WORD) - 1, 0x123456789 << 200
    selects = [0, 1, 1, 0, 1, 0, 0]
    seen = []

    async def bench(ctx):
        ctx.set(dut.a, a)
        ctx.set(dut.b, b)
        for sel in selects:
            ctx.set(dut.select, sel)
            await ctx.tick()
            seen.append(ctx.get(dut.y))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert seen[1:] == [a if sel else b for sel in selects[:-1]]


def test_a_write_word_is_chosen_by_a_register_per_group_of_slices(tmp_path):
    """Through ``a2q synth``'s Yosys script (ECP5), each group of SLICES_PER_COPY slices
    of the word takes its own select register; without the template, one chooses it all."""
    groups = -(-len(slice_bits(ChosenWord.WORD, DEPTH)) // SLICES_PER_COPY)
    assert groups == 3
    for template, count in ((True, groups), (False, 1)):
        nets = synthesized(tmp_path / str(template), ChosenWord(template), "chosen")["netnames"]
        assert len({tuple(v["bits"]) for k, v in nets.items()
                    if k.startswith("mem_word_from_rq")}) == count


@pytest.mark.parametrize("depth", [500, 2000, 2708, 13000])
def test_node_fields_read_on_two_ports_share_no_block_ram_slice(depth):
    """A slice read on both ports is two block RAMs: a node word's port-A fields (read in
    order, and as an item's source) and its port-B fields (node constants) lie in slices of
    their own, whatever slice width the memory's depth gives."""
    from a2q.hw.engine.layout import port_aligned

    layout = port_aligned(depth, {"bits": range(9), "coef": range(2 ** 15 + 1)},
                          {"m": unsigned(17), "sh": unsigned(8), "op_bits": range(9)})
    spans = {name: (f.offset, f.offset + f.width) for name, f in layout}
    for lo, width in slice_bits(layout.size, depth):
        inside = {n for n, (a, b) in spans.items() if a < lo + width and b > lo}
        assert not (inside & {"bits", "coef"} and inside & {"m", "sh", "op_bits"}), inside
