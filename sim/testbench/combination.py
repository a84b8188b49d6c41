"""cocotb test of BitSerialCombination: each case's ``x @ w`` and its cycle count.

Per output tile of ``lanes`` columns, the tile's weight rows are loaded (one a cycle), then every
node's bit-planes stream in back to back; results are taken as they appear. The cycles counted
run from the first weight row taken to the last result taken (:func:`a2q.sim.cycles.combination_cycles`).
"""

from __future__ import annotations

import math

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge

from a2q.hw.units.bit_serial_combination import bit_planes
from a2q.sim.golden import exact_matmul
from a2q.sim.testbench.streams import (
    StreamSink,
    StreamSource,
    check_cases,
    pack_fields,
    unpack_signed,
)


def tile_schedule(unit, x, bits, w_tile):
    """(port, word) per cycle for one tile: weight rows, then each node's planes."""
    weights_layout = unit.signature.members["weights"].signature.members["payload"].shape
    planes_layout = unit.signature.members["planes"].signature.members["payload"].shape
    row_off, val_off = weights_layout["row"].offset, weights_layout["values"].offset
    first_off, last_off = planes_layout["first"].offset, planes_layout["last"].offset
    sched = [("weights", (k << row_off) | (pack_fields(w_tile[k], width=unit.weight_bits)
                                          << val_off)) for k in range(w_tile.shape[0])]
    for i in range(x.shape[0]):
        planes = bit_planes(x[i], int(bits[i]), unit.signed_input)
        for j, p in enumerate(planes):
            sched.append(("planes", p | (int(j == 0) << first_off)
                          | (int(j == len(planes) - 1) << last_off)))
    return sched


async def run_case(dut, unit, x, bits, w):
    n, c = x.shape[0], w.shape[1]
    lanes = unit.lanes
    tiles = math.ceil(c / lanes)
    wpad = np.zeros((w.shape[0], tiles * lanes), dtype=np.int64)
    wpad[:, :c] = w
    sched = []
    for t in range(tiles):
        sched += tile_schedule(unit, x, bits, wpad[:, t * lanes:(t + 1) * lanes])
    ports = {"weights": StreamSource(dut, "weights"), "planes": StreamSource(dut, "planes")}
    sink = StreamSink(dut, "result")
    pos, cycle, first, last = 0, 0, None, None
    while len(sink.words) < n * tiles:
        if sink.step():
            last = cycle
        if pos < len(sched):
            port, word = sched[pos]
            ports[port].feed([word])
            if ports[port].step():
                first = cycle if first is None else first
                pos += 1
            for other, src in ports.items():
                if other != port:
                    src.idle()
        else:
            for src in ports.values():
                src.idle()
        await FallingEdge(dut.clk)
        cycle += 1
    y = unpack_signed(sink.words, width=unit.acc_width, count=lanes)
    y = y.reshape(tiles, n, lanes).transpose(1, 0, 2).reshape(n, tiles * lanes)[:, :c]
    return y, last - first + 1


@cocotb.test()
async def combination_cases(dut):
    """Every case of the run: the unit's result equals NumPy's x @ w."""
    await check_cases(dut, "combination",
                      lambda dut, unit, c: run_case(dut, unit, c["x"], c["bits"], c["w"]),
                      lambda c: exact_matmul(c["x"], c["w"]))
