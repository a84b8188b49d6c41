"""cocotb test of GraphReadout: every graph's head terms and the cycles.

Each case writes the head's constants (one row and one class a cycle), then offers every
graph's tiles back to back while taking results as they appear. The cycles counted run from
the first tile taken to the last result taken (:func:`a2q.sim.cycles.readout_cycles`).
"""

from __future__ import annotations

import math

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge

from a2q.sim.graph_golden import graph_sum, head_terms
from a2q.sim.testbench.streams import (
    StreamSink,
    StreamSource,
    check_cases,
    pack_fields,
    stream_through,
    unpack_signed,
)


def expected(case) -> np.ndarray:
    """The golden model's head terms of each graph of the case."""
    pooled = graph_sum(case["graph_ptr"], case["codes"].astype(np.int64))
    return head_terms(pooled, case["in_scale_m"], case["weight"].astype(np.int64),
                      case["scale_m"], case["scale_sh"])


def _fields(unit, port: str) -> dict:
    layout = unit.signature.members[port].signature.members["payload"].shape
    return {name: layout[name].offset for name, _ in layout}


async def run_case(dut, unit, case):
    c_off, t_off = _fields(unit, "constants"), _fields(unit, "codes")
    D, C, P = unit.in_dim, unit.classes, unit.lanes
    words = []
    for f in range(max(D, C)):
        w = 0
        if f < D:
            w |= (f << c_off["row"]) | (int(case["in_scale_m"][f]) << c_off["in_scale_m"]) | (
                pack_fields(case["weight"][f], width=unit.weight_bits) << c_off["weights"])
        else:  # a row past D rewrites the last row with its own values
            w |= ((D - 1) << c_off["row"]) | (int(case["in_scale_m"][D - 1])
                                               << c_off["in_scale_m"]) | (
                pack_fields(case["weight"][D - 1], width=unit.weight_bits) << c_off["weights"])
        k = min(f, C - 1)
        w |= (k << c_off["klass"]) | (int(case["scale_m"][k]) << c_off["scale_m"]) | (
            int(case["scale_sh"][k]) << c_off["scale_sh"])
        words.append(w)
    constants = StreamSource(dut, "constants")
    constants.feed(words)
    while not constants.done:
        constants.step()
        await FallingEdge(dut.clk)
    constants.idle()
    tiles = math.ceil(D / P)
    gp, codes = case["graph_ptr"], case["codes"]
    padded = np.zeros((codes.shape[0], tiles * P), dtype=np.int64)
    padded[:, :D] = codes
    stream_words = []
    for g in range(len(gp) - 1):
        for i in range(gp[g], gp[g + 1]):
            for t in range(tiles):
                last = i == gp[g + 1] - 1 and t == tiles - 1
                stream_words.append((pack_fields(padded[i, t * P:(t + 1) * P],
                                                 width=unit.code_bits) << t_off["codes"])
                                    | (int(last) << t_off["last"]))
    source = StreamSource(dut, "codes")
    source.feed(stream_words)
    sink = StreamSink(dut, "result")
    cycles = await stream_through(dut, source, sink, len(gp) - 1)
    return unpack_signed(sink.words, width=unit.term_bits, count=C), cycles


@cocotb.test()
async def readout_cases(dut):
    """Every case of the run: the unit's head terms equal the golden model's."""
    await check_cases(dut, "readout", run_case, expected)
