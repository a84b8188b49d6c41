"""cocotb test of NearestNeighborSelection: each node's pool entry and maximum, and the cycles.

Each case writes the thresholds (one a cycle), then streams every node's tiles back to back
while taking results as they appear. The cycles counted run from the first tile taken to the
last result taken (:func:`a2q.sim.cycles.selection_cycles`).
"""

from __future__ import annotations

import cocotb
import numpy as np
from amaranth import Shape
from cocotb.triggers import FallingEdge

from a2q.sim.graph_golden import nearest_entry
from a2q.sim.testbench.streams import (
    StreamSink,
    StreamSource,
    check_cases,
    pack_fields,
    stream_through,
)


def expected(case) -> np.ndarray:
    """(entry, max) per node: the golden model's selection of each node's largest value."""
    ends = np.flatnonzero(case["last"])
    starts = np.concatenate([[0], ends[:-1] + 1])
    maxima = np.array([int(case["values"][s:e + 1].max()) for s, e in zip(starts, ends)],
                      dtype=np.int64)
    return np.stack([nearest_entry(maxima, case["thresholds"]), maxima], axis=1)


async def run_case(dut, unit, case):
    thresholds_layout = unit.signature.members["thresholds"].signature.members["payload"].shape
    values_layout = unit.signature.members["values"].signature.members["payload"].shape
    result_layout = unit.signature.members["result"].signature.members["payload"].shape
    thresholds = StreamSource(dut, "thresholds")
    thresholds.feed([(j << thresholds_layout["index"].offset)
                     | (int(t) << thresholds_layout["value"].offset)
                     for j, t in enumerate(case["thresholds"])])
    while not thresholds.done:
        thresholds.step()
        await FallingEdge(dut.clk)
    thresholds.idle()
    values = StreamSource(dut, "values")
    values.feed([(pack_fields(row, width=unit.value_bits) << values_layout["values"].offset)
                 | (int(last) << values_layout["last"].offset)
                 for row, last in zip(case["values"], case["last"])])
    sink = StreamSink(dut, "result")
    nodes = int(case["last"].sum())
    cycles = await stream_through(dut, values, sink, nodes)
    entry, top = result_layout["entry"], result_layout["max"]
    entry_width = Shape.cast(entry.shape).width
    y = np.array([[(w >> entry.offset) & ((1 << entry_width) - 1),
                   (w >> top.offset) & ((1 << unit.value_bits) - 1)] for w in sink.words],
                 dtype=np.int64).reshape(nodes, 2)
    return y, cycles


@cocotb.test()
async def selection_cases(dut):
    """Every case of the run: the unit's (entry, max) equal the golden model's."""
    await check_cases(dut, "selection", run_case, expected)
