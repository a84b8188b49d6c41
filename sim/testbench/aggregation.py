"""cocotb test of BitSerialAggregation: each case's CSR neighbour sums and its cycle count.

Each case loads the memories through the ``load`` port (one word a cycle), pulses ``start`` and
takes results until ``busy`` falls. The cycles counted run from the edge that samples ``start``
to the first edge after which ``busy`` is low (:func:`a2q.sim.cycles.aggregation_cycles`).
"""

from __future__ import annotations

import cocotb
from cocotb.triggers import FallingEdge

from a2q.sim.golden import neighbour_sum
from a2q.sim.testbench.streams import (
    StreamSink,
    StreamSource,
    check_cases,
    unpack_signed,
)


def load_words(unit, indptr, indices, x, bits):
    layout = unit.signature.members["load"].signature.members["payload"].shape
    off = {f: layout[f].offset for f in ("memory", "addr", "data")}
    words = []
    for key, ws in unit.memory_words(indptr, indices, x, bits).items():
        words += [(key.value << off["memory"]) | (a << off["addr"]) | (w << off["data"])
                  for a, w in enumerate(ws)]
    return words


async def run_case(dut, unit, indptr, indices, x, bits):
    n, d = x.shape
    load = StreamSource(dut, "load")
    load.feed(load_words(unit, indptr, indices, x, bits))
    while not load.done:
        load.step()
        await FallingEdge(dut.clk)
    load.idle()
    sink = StreamSink(dut, "result")
    dut.num_nodes.value = n
    dut.start.value = 1
    await FallingEdge(dut.clk)
    dut.start.value = 0
    cycles = 1
    while dut.busy.value:
        sink.step()
        await FallingEdge(dut.clk)
        cycles += 1
    y = unpack_signed(sink.words, width=unit.acc_width, count=unit.lanes)
    return y.reshape(n, unit.tiles * unit.lanes)[:, :d], cycles


@cocotb.test()
async def aggregation_cases(dut):
    """Every case of the run: the unit's result equals NumPy's CSR sums."""
    await check_cases(dut, "aggregation",
                      lambda dut, unit, c: run_case(dut, unit, c["indptr"], c["indices"], c["x"],
                                                    c["bits"]),
                      lambda c: neighbour_sum(c["indptr"], c["indices"], c["x"]))
