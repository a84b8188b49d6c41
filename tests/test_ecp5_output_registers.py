"""The flip-flops after an ECP5 block RAM's read port move into its output register: through
Yosys and nextpnr for the engine's memory template and data registers, and the rules on
hand-made netlists."""

import copy
import json

import pytest
from amaranth import Module, Signal
from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from a2q.hw.engine.memory_requests import registered_data
from a2q.hw.fpga.ecp5_output_registers import absorb_output_registers
from a2q.hw.fpga.synthesis import synthesize
from a2q.hw.primitives import block_ram


class TwoReads(wiring.Component):
    """A 36 x 600 memory of the engine's template: port A read through the engine's data
    registers, port B into a register with a reset."""

    def __init__(self):
        super().__init__({"we": In(1), "waddr": In(10), "wdata": In(36), "ra": In(10),
                          "rb": In(10), "qa": Out(36), "qb": Out(36)})

    def elaborate(self, platform):
        m = Module()
        a, b = block_ram.ram(m, "mem", width=36, depth=600, template=True, we=self.we,
                             waddr=self.waddr, wdata=self.wdata, raddr_a=self.ra,
                             raddr_b=self.rb)
        m.d.comb += self.qa.eq(registered_data(m, a, "mem_A"))
        held = Signal(36, name="held")
        m.d.sync += held.eq(b)
        m.d.comb += self.qb.eq(held)
        return m


class OneWideRead(wiring.Component):
    """A 36 x 300 memory of the engine's template read on one port through the engine's data
    registers: Yosys maps it to one DP16KD in pseudo dual port mode (36 bits on DOA and DOB)."""

    def __init__(self):
        super().__init__({"we": In(1), "waddr": In(9), "wdata": In(36), "ra": In(9),
                          "qa": Out(36)})

    def elaborate(self, platform):
        m = Module()
        a, _ = block_ram.ram(m, "mem", width=36, depth=300, template=True, we=self.we,
                             waddr=self.waddr, wdata=self.wdata, raddr_a=self.ra)
        m.d.comb += self.qa.eq(registered_data(m, a, "mem_A"))
        return m


def _synthesize(tmp_path, component, name):
    rtl = tmp_path / "rtl"
    rtl.mkdir()
    (rtl / f"{name}.v").write_text(verilog.convert(component, name=name) + block_ram.VERILOG)
    (rtl / "filelist.f").write_text(f"{name}.v\n")
    (rtl / "params.json").write_text(json.dumps({"module": name}))
    r = synthesize(rtl, "ecp5", tmp_path / "synth", device="25k", package="CABGA256",
                   freq_mhz=25)
    cells = json.loads((tmp_path / "synth" / "netlist.json").read_text())["modules"][name][
        "cells"]
    return r, cells


def test_a_36_bit_read_takes_its_register_whole(tmp_path):
    """Pseudo dual port mode: the 36 flip-flops after DOA and DOB all move in, and both REGMODE
    parameters select the output register (nextpnr's own PDPW16KD conversion sets both)."""
    r, cells = _synthesize(tmp_path, OneWideRead(), "one_wide_read")
    rams = [c for c in cells.values() if c["type"] == "DP16KD"]
    assert len(rams) == 1 and int(rams[0]["parameters"]["DATA_WIDTH_A"], 2) == 36
    assert r["bram_output_registers"] == 1
    assert (rams[0]["parameters"]["REGMODE_A"], rams[0]["parameters"]["REGMODE_B"]) == (
        "OUTREG", "OUTREG")
    assert rams[0]["connections"]["OCEA"] == rams[0]["connections"]["OCEB"] == ["1"]
    assert r["ffs"] == 36  # the second data register only
    assert r["routed"] and r["fmax_mhz"] > 0


def test_the_first_data_register_goes_into_each_block_ram(tmp_path):
    r, cells = _synthesize(tmp_path, TwoReads(), "two_reads")
    # 600 deep: two slices of 18 bits, each a block RAM per read port
    assert r["brams"] == r["cells"]["DP16KD"] == 4
    assert r["bram_output_registers"] == 2  # port A of each slice; B's register has a reset
    assert r["ffs"] == 72  # the second data register and the held one stay, 36 bits each
    readers = {}
    for name, cell in cells.items():
        for bit in cell["connections"].get("DI", []):
            readers[bit] = name
    modes = []
    for cell in cells.values():
        if cell["type"] == "DP16KD":
            for port in "AB":
                bits = [b[0] for pin, b in cell["connections"].items()
                        if pin.startswith(f"DO{port}") and b[0] in readers]
                if bits:
                    reader = {readers[b].split("_TRELLIS_FF")[0] for b in bits}
                    modes.append((cell["parameters"][f"REGMODE_{port}"], *reader))
    # Yosys names each remaining register by the output it drives: qa the second data
    # register, qb the one with a reset
    assert sorted(modes) == [("NOREG", "qb")] * 2 + [("OUTREG", "qa")] * 2
    assert r["routed"] and r["fmax_mhz"] > 0  # nextpnr takes the block RAMs so set
    assert "output register" in (tmp_path / "synth" / "report.md").read_text()


def _ff(d, q, clock=1, **params):
    return {"type": "TRELLIS_FF",
            "parameters": {"CEMUX": "1 ", "CLKMUX": "CLK", "GSR": "DISABLED",
                           "REGSET": "RESET", **params},
            "port_directions": {"CLK": "input", "DI": "input", "LSR": "input", "Q": "output"},
            "connections": {"CLK": [clock], "DI": [d], "LSR": ["0"], "Q": [q]}}


def _netlist():
    """A PDPW16KD reading 2 bits (nets 10, 11) into flip-flops driving nets 20, 21, and a
    LUT reading those."""
    ram = {"type": "PDPW16KD", "parameters": {"GSR": "DISABLED", "REGMODE": "NOREG"},
           "port_directions": {"CLKR": "input", "OCER": "input", "RST": "input",
                               "DO0": "output", "DO1": "output", "DO2": "output"},
           "connections": {"CLKR": [1], "OCER": ["1"], "RST": ["0"], "DO0": [10], "DO1": [11],
                           "DO2": [12]}}
    lut = {"type": "LUT4", "parameters": {}, "port_directions": {"A": "input", "B": "input",
                                                                 "Z": "output"},
           "connections": {"A": [20], "B": [21], "Z": [30]}}
    return {"modules": {"top": {"ports": {"z": {"direction": "output", "bits": [30]}},
                                "cells": {"ram": ram, "ff0": _ff(10, 20), "ff1": _ff(11, 21),
                                          "lut": lut}}}}


def _pseudo_dual_port_netlist():
    """As :func:`_netlist`, the block RAM a DP16KD in pseudo dual port mode (as Yosys maps a
    36-bit memory) reading a bit on each half (DOA0: net 10, DOB0: net 11; DOB1 unused)."""
    n = _netlist()
    n["modules"]["top"]["cells"]["ram"] = {
        "type": "DP16KD",
        "parameters": {"GSR": "DISABLED", "REGMODE_A": "NOREG", "REGMODE_B": "NOREG",
                       "DATA_WIDTH_A": f"{36:032b}", "DATA_WIDTH_B": f"{36:032b}",
                       "CLKAMUX": "CLKA", "CLKBMUX": "CLKB"},
        "port_directions": {p: "input" for p in ("CLKA", "CLKB", "OCEA", "OCEB", "RSTA", "RSTB")}
        | {"DOA0": "output", "DOB0": "output", "DOB1": "output"},
        "connections": {"CLKA": [1], "CLKB": [1], "OCEA": ["0"], "OCEB": ["1"], "RSTA": ["0"],
                        "RSTB": ["0"], "DOA0": [10], "DOB0": [11], "DOB1": [12]}}
    return n


RAMS = {  # netlist, its read outputs (two registered, one unused), REGMODEs, OCEs
    "pdpw16kd": (_netlist, ("DO0", "DO1", "DO2"), ("REGMODE",), ("OCER",)),
    "dp16kd_pseudo_dual_port": (_pseudo_dual_port_netlist, ("DOA0", "DOB0", "DOB1"),
                                ("REGMODE_A", "REGMODE_B"), ("OCEA", "OCEB")),
}


@pytest.mark.parametrize("ram", RAMS)
def test_a_plain_register_per_used_output_moves_in(ram):
    """A pseudo dual port DP16KD moves in whole: both halves, both REGMODEs (nextpnr's own
    PDPW16KD conversion sets both), both output enables."""
    netlist, outputs, regmodes, enables = RAMS[ram]
    n = netlist()
    assert absorb_output_registers(n, "top") == 1
    cells = n["modules"]["top"]["cells"]
    assert set(cells) == {"ram", "lut"}
    params, conn = cells["ram"]["parameters"], cells["ram"]["connections"]
    assert [params[p] for p in regmodes] == ["OUTREG"] * len(regmodes)
    assert [conn[p] for p in enables] == [["1"]] * len(enables)
    # the outputs drive what the flip-flops drove; the unused one stays as it was
    assert [conn[p] for p in outputs] == [[20], [21], [12]]


@pytest.mark.parametrize("ram, change", [
    ("pdpw16kd", lambda c: c["ff1"]["connections"].update(CLK=[2])),  # another clock
    ("pdpw16kd", lambda c: c["ff1"]["connections"].update(LSR=[3])),  # a reset
    ("pdpw16kd", lambda c: c["ff1"]["parameters"].update(CEMUX="CE")),  # a clock enable
    ("pdpw16kd", lambda c: c["ff1"]["parameters"].update(CLKMUX="INV")),  # the falling edge
    ("pdpw16kd", lambda c: c["ff1"]["parameters"].update(REGSET="SET")),  # powers up at 1
    ("pdpw16kd", lambda c: c["ff1"]["parameters"].update(GSR="ENABLED")),  # global set/reset
    ("pdpw16kd", lambda c: c["lut"]["connections"].update(A=[11])),  # another reader
    ("pdpw16kd", lambda c: c["ram"]["connections"].update(OCER=[4])),  # output enable in use
    ("pdpw16kd", lambda c: c["ram"]["connections"].update(RST=[4])),  # a reset in use
    ("pdpw16kd", lambda c: c["ram"]["parameters"].update(REGMODE="OUTREG")),  # registered
    ("pdpw16kd", lambda c: c.update(lut2={"type": "LUT4", "parameters": {},
                                          "port_directions": {"A": "input"},
                                          "connections": {"A": [10]}})),
    # pseudo dual port: the whole word or nothing
    ("dp16kd_pseudo_dual_port", lambda c: c["ff0"]["connections"].update(LSR=[3])),
    ("dp16kd_pseudo_dual_port", lambda c: c["ram"]["connections"].update(CLKA=[2])),
    ("dp16kd_pseudo_dual_port", lambda c: c["ram"]["connections"].update(RSTA=[4])),
    ("dp16kd_pseudo_dual_port", lambda c: c["ram"]["parameters"].update(REGMODE_A="OUTREG")),
])
def test_a_port_whose_register_is_not_plain_stays(ram, change):
    n = RAMS[ram][0]()
    change(n["modules"]["top"]["cells"])
    before = copy.deepcopy(n)
    assert absorb_output_registers(n, "top") == 0
    assert n == before


def test_an_output_read_by_a_module_port_stays():
    n = _netlist()
    n["modules"]["top"]["ports"]["raw"] = {"direction": "output", "bits": [10]}
    assert absorb_output_registers(n, "top") == 0
