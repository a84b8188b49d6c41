"""ECP5 block RAMs with their output register: the flip-flops after a block RAM, moved in.

An ECP5 block RAM (``DP16KD``, ``PDPW16KD``) reads synchronously; its data leaves the block
about 5.8 ns after the clock (nextpnr's timing model of the LFE5U-85F, speed grade 6), so a
wire of a few ns from it to the first register takes a 100 MHz cycle (the engine's critical
path in session 10).
Each read port also has an output register of its own (``REGMODE = "OUTREG"``): the word read
arrives one cycle later, from a register about 1 ns after the clock. Yosys's ECP5 block RAM
mapping never sets it, so :func:`absorb_output_registers` does, on Yosys's JSON netlist before
nextpnr reads it: where every used data output of a read port drives exactly one flip-flop,
and nothing else, with the port's clock, no clock enable, no reset and a power-up value of 0
(the engine's first data registers, :func:`~a2q.hw.memory_requests.registered_data`), it
removes those flip-flops, sets the port's ``REGMODE`` to ``OUTREG`` and connects the port's
outputs to the nets the flip-flops drove. The port's ``OCE`` (output register clock enable) is
tied high and its ``RST`` low, so the output register loads every cycle, as the flip-flops
did, and powers up at 0, as theirs did (``REGSET = RESET``): the netlist keeps its cycle
behaviour, with one flip-flop fewer per bit.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass


@dataclass(frozen=True)
class ReadPort:
    """One read port of a block RAM primitive: its data output pins ``<data><i>``, its clock
    pin and that pin's inversion parameter, its output register's clock enable and reset pins,
    and the parameter that selects the output register."""

    data: str
    width: int
    clock: str
    clock_mux: str
    output_enable: str
    reset: str
    regmode: str


#: The read ports of each ECP5 block RAM primitive (Lattice's library: DP16KD is true dual
#: port, PDPW16KD the 36-bit-wide pseudo dual port).
READ_PORTS = {
    "DP16KD": (ReadPort("DOA", 18, "CLKA", "CLKAMUX", "OCEA", "RSTA", "REGMODE_A"),
               ReadPort("DOB", 18, "CLKB", "CLKBMUX", "OCEB", "RSTB", "REGMODE_B")),
    "PDPW16KD": (ReadPort("DO", 36, "CLKR", "CLKRMUX", "OCER", "RST", "REGMODE"),),
}


def _param(cell: dict, name: str, default: str) -> str:
    return str(cell["parameters"].get(name, default)).strip()


def _plain_register(ff: dict, clock) -> bool:
    """A ``TRELLIS_FF`` clocked by ``clock`` on its rising edge, loading every cycle, never
    reset or set, powering up at 0."""
    conn = ff["connections"]
    return (conn.get("CLK") == clock and _param(ff, "CLKMUX", "CLK") == "CLK"
            and _param(ff, "CEMUX", "1") == "1" and conn.get("LSR", ["0"]) == ["0"]
            and _param(ff, "GSR", "ENABLED") == "DISABLED"
            and _param(ff, "REGSET", "RESET") == "RESET")


def absorb_output_registers(netlist: dict, top: str) -> int:
    """Move the flip-flops after the read ports of ``top``'s block RAMs into the block RAMs'
    output registers, in place (see the module's docstring for when a port qualifies).
    Returns the number of read ports changed."""
    module = netlist["modules"][top]
    cells = module["cells"]
    sinks = defaultdict(list)  # net bit -> the (cell, port) reading it
    for name, cell in cells.items():
        for port, bits in cell["connections"].items():
            if cell.get("port_directions", {}).get(port) != "output":
                for bit in bits:
                    sinks[bit].append((name, port))
    for port in module.get("ports", {}).values():
        if port["direction"] != "input":
            for bit in port["bits"]:
                sinks[bit].append((None, None))
    changed = 0
    for cell in list(cells.values()):
        for rp in READ_PORTS.get(cell["type"], ()):
            conn = cell["connections"]
            if (_param(cell, rp.regmode, "NOREG") != "NOREG"
                    or conn.get(rp.output_enable, ["1"]) != ["1"]
                    or conn.get(rp.reset, ["0"]) != ["0"]
                    or _param(cell, rp.clock_mux, rp.clock) != rp.clock
                    or _param(cell, "GSR", "ENABLED") != "DISABLED"):
                continue
            pins = (f"{rp.data}{i}" for i in range(rp.width))
            used = {pin: conn[pin][0] for pin in pins
                    if isinstance(conn.get(pin, [None])[0], int) and sinks.get(conn[pin][0])}
            registers = {}
            for pin, bit in used.items():
                if len(sinks[bit]) != 1:
                    break
                ff_name, ff_port = sinks[bit][0]
                ff = cells.get(ff_name) if ff_name is not None else None
                if (ff is None or ff["type"] != "TRELLIS_FF" or ff_port != "DI"
                        or not _plain_register(ff, conn.get(rp.clock))):
                    break
                registers[pin] = ff_name
            else:
                if not registers:
                    continue
                for pin, ff_name in registers.items():
                    conn[pin] = cells.pop(ff_name)["connections"]["Q"]
                cell["parameters"][rp.regmode] = "OUTREG"
                conn[rp.output_enable], conn[rp.reset] = ["1"], ["0"]
                changed += 1
    return changed
