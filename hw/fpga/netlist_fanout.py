"""The nets of a synthesized netlist that reach the most cell inputs.

On an FPGA a net is as slow as its farthest sink: a register whose output reaches hundreds
of LUTs spread over the die is routed long, and when the router is short of wires it is the
first net sent the long way round (the 16-lane engine's routed critical paths are such
nets, a different one from one placement to the next). :func:`widest_fanout` lists them from
Yosys's JSON netlist, before place and route, so that a design change can be checked in
minutes; ``a2q synth`` puts the list in its report (``widest_fanout``).
"""

from __future__ import annotations

from collections import Counter


def widest_fanout(netlist: dict, top: str, count: int = 10) -> list[dict]:
    """The ``count`` nets of module ``top`` in a Yosys JSON ``netlist`` that reach the most
    cell inputs, widest first (ties by name): ``{"net", "fanout", "driver"}``, ``net`` the
    shortest public name of the bit (``name[i]`` for a bit of a wider signal; ``$``-names
    where Yosys left none), ``driver`` the type of the cell that drives it. Nets that a port
    of ``top`` drives (the clock, the reset, the inputs) are left out: they are not the
    design's logic."""
    module = netlist["modules"][top]
    sinks, driver = Counter(), {}
    for cell in module["cells"].values():
        directions = cell.get("port_directions", {})
        for port, bits in cell["connections"].items():
            for bit in bits:
                if isinstance(bit, str):  # a constant
                    continue
                if directions.get(port) == "output":
                    driver[bit] = cell["type"]
                else:
                    sinks[bit] += 1
    names: dict[int, tuple] = {}
    for name, net in module["netnames"].items():
        hidden = net.get("hide_name", 0)
        for i, bit in enumerate(net["bits"]):
            if isinstance(bit, str):
                continue
            label = f"{name}[{i}]" if len(net["bits"]) > 1 else name
            key = (hidden, len(label), label)
            if bit not in names or key < names[bit]:
                names[bit] = key
    rows = sorted(((-n, names[bit][2] if bit in names else f"${bit}", bit)
                   for bit, n in sinks.items() if bit in driver))
    return [{"net": name, "fanout": -n, "driver": driver[bit]}
            for n, name, bit in rows[:count]]
