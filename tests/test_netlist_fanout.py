"""The widest fan-out nets of a Yosys JSON netlist."""

from a2q.hw.fpga.netlist_fanout import widest_fanout


def lut(inputs, out):
    return {"type": "LUT4", "port_directions": {"A": "input", "B": "input", "Z": "output"},
            "connections": {**dict(zip("AB", inputs)), "Z": [out]}}


NETLIST = {"modules": {"top": {
    "ports": {"clk": {"direction": "input", "bits": [2]}},
    "cells": {
        "ff": {"type": "TRELLIS_FF", "port_directions": {"CLK": "input", "DI": "input",
                                                          "Q": "output"},
               "connections": {"CLK": [2], "DI": [7], "Q": [4]}},
        "l1": lut([[4], ["0"]], 5), "l2": lut([[4], [5]], 6), "l3": lut([[4], [5]], 7),
        "l4": lut([[6], [4]], 8), "l5": lut([[2], [2]], 9),
    },
    "netnames": {
        "clk": {"hide_name": 0, "bits": [2]},
        "state": {"hide_name": 0, "bits": [4]},
        "a_much_longer_name_of_state": {"hide_name": 0, "bits": [4]},
        "$auto$5": {"hide_name": 1, "bits": [5]},
        "bus": {"hide_name": 0, "bits": [6, 7]},
    }}}}


def test_widest_first_by_cell_inputs_with_their_driver_and_shortest_name():
    rows = widest_fanout(NETLIST, "top")
    # bit 4: l1.A, l2.A, l3.A, l4.B; bit 5: l2.B, l3.B; bits 6, 7: one input each
    assert rows[:2] == [{"net": "state", "fanout": 4, "driver": "TRELLIS_FF"},
                        {"net": "$auto$5", "fanout": 2, "driver": "LUT4"}]
    assert {r["net"] for r in rows[2:]} == {"bus[0]", "bus[1]"}
    assert all(r["fanout"] == 1 for r in rows[2:])


def test_nets_a_port_drives_are_left_out_and_count_limits():
    rows = widest_fanout(NETLIST, "top")
    assert "clk" not in {r["net"] for r in rows}  # 3 cell inputs, but driven by the port
    assert widest_fanout(NETLIST, "top", count=1) == rows[:1]
