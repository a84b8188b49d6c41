"""ECP5 block RAMs with their output register: the flip-flops after a block RAM, moved in.

An ECP5 block RAM (``DP16KD``, ``PDPW16KD``) reads synchronously; its data leaves the block
about 5.8 ns after the clock (nextpnr's timing model of the LFE5U-85F, speed grade 6), so a
wire of a few ns from it to the first register takes a 100 MHz cycle (without the output
register, such a path is the engine's critical path).
Each read port also has an output register of its own (``REGMODE = "OUTREG"``): the word read
arrives one cycle later, from a register about 1 ns after the clock. Yosys's ECP5 block RAM
mapping never sets it, so :func:`absorb_output_registers` does, on Yosys's JSON netlist before
nextpnr reads it: where every used data output of a read port drives exactly one flip-flop,
and nothing else, with the port's clock, no clock enable, no reset and a power-up value of 0
(the engine's first data registers, :func:`~a2q.hw.engine.memory_requests.registered_data`), it
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
    """One read port of a block RAM primitive: its data output pins; its clock pins with the
    parameters that may invert them (each must carry the flip-flops' clock, not inverted);
    its output register's clock enable pins (the first, the read port's own, must be tied
    high; all are once the register is in use) and reset pins (all tied low); and the
    parameters that select the output register."""

    data: tuple[str, ...]
    clocks: tuple[tuple[str, str], ...]
    output_enables: tuple[str, ...]
    resets: tuple[str, ...]
    regmodes: tuple[str, ...]


def _pins(prefix: str, count: int) -> tuple[str, ...]:
    return tuple(f"{prefix}{i}" for i in range(count))


#: DP16KD, true dual port: ports A and B read 18 bits at most, each with its own register.
DP16KD_PORTS = (
    ReadPort(_pins("DOA", 18), (("CLKA", "CLKAMUX"),), ("OCEA",), ("RSTA",), ("REGMODE_A",)),
    ReadPort(_pins("DOB", 18), (("CLKB", "CLKBMUX"),), ("OCEB",), ("RSTB",), ("REGMODE_B",)))
#: A DP16KD whose port A is 36 bits wide is in pseudo dual port mode, as Yosys maps a 36-bit
#: memory (and nextpnr converts a PDPW16KD): port A writes, port B reads 36 bits on DOA and
#: DOB. Its output register is set through both REGMODE parameters, as nextpnr's conversion
#: does, and both ports' clocks, enables and resets qualify or are tied alike, so the word
#: is registered whole whichever port's controls the block applies to the DOA half.
DP16KD_PSEUDO_DUAL_PORT = ReadPort(
    _pins("DOA", 18) + _pins("DOB", 18), (("CLKB", "CLKBMUX"), ("CLKA", "CLKAMUX")),
    ("OCEB", "OCEA"), ("RSTB", "RSTA"), ("REGMODE_B", "REGMODE_A"))
#: PDPW16KD, Lattice's 36-bit pseudo dual port primitive.
PDPW16KD_PORT = ReadPort(_pins("DO", 36), (("CLKR", "CLKRMUX"),), ("OCER",), ("RST",),
                         ("REGMODE",))


def read_ports(cell: dict) -> tuple[ReadPort, ...]:
    """The read ports of a netlist cell (none unless it is an ECP5 block RAM)."""
    if cell["type"] == "PDPW16KD":
        return (PDPW16KD_PORT,)
    if cell["type"] != "DP16KD":
        return ()
    width = _param(cell, "DATA_WIDTH_A", "18")
    # Yosys writes integer parameters as 32-digit binary strings
    if int(width, 2 if len(width) == 32 else 10) == 36:
        return (DP16KD_PSEUDO_DUAL_PORT,)
    return DP16KD_PORTS


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
        for rp in read_ports(cell):
            conn = cell["connections"]
            clock = conn.get(rp.clocks[0][0])
            if (any(_param(cell, regmode, "NOREG") != "NOREG" for regmode in rp.regmodes)
                    or conn.get(rp.output_enables[0], ["1"]) != ["1"]
                    or any(conn.get(pin, ["0"]) != ["0"] for pin in rp.resets)
                    or any(conn.get(pin) != clock or _param(cell, mux, pin) != pin
                           for pin, mux in rp.clocks)
                    or _param(cell, "GSR", "ENABLED") != "DISABLED"):
                continue
            used = {pin: conn[pin][0] for pin in rp.data
                    if isinstance(conn.get(pin, [None])[0], int) and sinks.get(conn[pin][0])}
            registers = {}
            for pin, bit in used.items():
                if len(sinks[bit]) != 1:
                    break
                ff_name, ff_port = sinks[bit][0]
                ff = cells.get(ff_name) if ff_name is not None else None
                if (ff is None or ff["type"] != "TRELLIS_FF" or ff_port != "DI"
                        or not _plain_register(ff, clock)):
                    break
                registers[pin] = ff_name
            else:
                if not registers:
                    continue
                for pin, ff_name in registers.items():
                    conn[pin] = cells.pop(ff_name)["connections"]["Q"]
                for regmode in rp.regmodes:
                    cell["parameters"][regmode] = "OUTREG"
                conn.update({pin: ["1"] for pin in rp.output_enables})
                conn.update({pin: ["0"] for pin in rp.resets})
                changed += 1
    return changed
