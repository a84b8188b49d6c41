"""Read and write registers of a memory split into slices (hw/memory_requests.py)."""

import json

import pytest
from amaranth import Module, Signal
from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from a2q.hw.block_ram import VERILOG, ram, slice_bits
from a2q.hw.engine_layout import MemorySpec
from a2q.hw.memory_requests import (DATA_REGISTERS, SHALLOW_WORDS, ReadRequest,
                                    registered_address, registered_data_early, registered_write)
from a2q.hw.synthesis import synthesize

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
    rtl = tmp_path / f"rtl{slices}"
    rtl.mkdir()
    (rtl / "sliced.v").write_text(verilog.convert(SlicedMemory(slices), name="sliced"))
    (rtl / "a2q_ram.v").write_text(VERILOG)
    (rtl / "filelist.f").write_text("sliced.v\na2q_ram.v\n")
    (rtl / "params.json").write_text(json.dumps({"module": "sliced"}))
    synthesize(rtl, "ecp5", tmp_path / f"synth{slices}", device="25k", place_and_route=False)
    cells = json.loads((tmp_path / f"synth{slices}" / "netlist.json").read_text())["modules"][
        "sliced"]["cells"]
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
