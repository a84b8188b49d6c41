"""cocotb test of the layer engine: one whole inference, compared with the golden model.

The memories hold the graph from their ``.hex`` init files (in the simulator's working
directory) or, when the case carries ``load_words``, from words pushed through the ``load``
port first (one a cycle). The test pulses ``start`` (with ``num_graphs`` where the case has
it: a graph-level batch), sleeps until ``phase`` changes or ``done`` rises (no Python
runs per cycle meanwhile; at each new phase it notes the ``cycles`` counter, so each phase's
cycles are measured), reads the ``cycles`` counter and then every word of ``logits`` through
the ``logits_addr`` / ``logits_data`` read port: each node's tiles, or each graph's word.
"""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge, First, RisingEdge

from a2q.sim.testbench.streams import (
    CaseIO,
    StreamSource,
    start_clock_and_reset,
    unpack_signed,
)


async def run_inference(dut, info: dict, case: dict) -> tuple[np.ndarray, int, np.ndarray]:
    """Logits, the ``cycles`` counter, and the counter at the start of every phase after the
    first (the boundaries: phase k took ``starts[k] - starts[k - 1]`` cycles)."""
    n = int(case["num_nodes"])
    per_word, width = info["logits_per_word"], info["logit_width"]
    tiles = -(-int(case["classes"]) // per_word)
    rows = int(case["num_graphs"]) if "num_graphs" in case else n
    if "load_words" in case:
        load = StreamSource(dut, "load")
        load.feed(int(w, 16) for w in case["load_words"])
        while not load.done:
            load.step()
            await FallingEdge(dut.clk)
        load.idle()
    dut.num_nodes.value = n
    if "num_graphs" in case:
        dut.num_graphs.value = int(case["num_graphs"])
    dut.start.value = 1
    await FallingEdge(dut.clk)
    dut.start.value = 0
    starts = []
    while n and not int(dut.done.value):
        await First(RisingEdge(dut.done), dut.phase.value_change)
        await FallingEdge(dut.clk)  # the counter and the phase change on the same edge
        if not int(dut.done.value):
            starts.append(int(dut.cycles.value))
    cycles = int(dut.cycles.value)
    words = []
    for addr in range(rows * tiles):  # the read port samples the address at the rising edge
        dut.logits_addr.value = addr
        await FallingEdge(dut.clk)
        words.append(int(dut.logits_data.value))
    y = unpack_signed(words, width=width, count=per_word).reshape(rows, tiles * per_word)
    return y[:, :int(case["classes"])], cycles, np.array(starts, dtype=np.int64)


@cocotb.test()
async def engine_inference(dut):
    """The engine's logits equal the golden model's, bit for bit."""
    io = CaseIO()
    await start_clock_and_reset(dut)
    bad = []
    for i, case in enumerate(io.cases):
        y, cycles, starts = await run_inference(dut, io.info, case)
        io.record(i, y, cycles, phase_starts=starts)
        if not np.array_equal(y, case["expected"]):
            bad.append(i)
    io.save()
    assert not bad, f"engine runs {bad}: logits differ from the golden model"
