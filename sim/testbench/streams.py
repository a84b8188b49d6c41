"""Small reusable cocotb helpers: a clocked loop driving and collecting Amaranth ``lib.stream`` ports.

Amaranth emits a stream port ``name`` as ``name__valid``, ``name__ready`` and ``name__payload``
(the payload's layout flattened to one vector). The helpers act once per falling clock edge,
when every register and combinational output has settled: a source presents its next word and
counts it sent if ``ready`` is high (the transfer happens at the next rising edge); a sink with
``ready`` held high takes every valid payload. This assumes no unit's ``ready`` depends
combinationally on the same port's ``valid`` or ``payload`` (true of every a2q unit), and it
costs one Python step per cycle, not per signal event.
"""

from __future__ import annotations

import json
import os

import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, Timer


class StreamSource:
    """Drives a stream input port from a list of payload words, one transfer a cycle at most."""

    def __init__(self, dut, name: str):
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.payload = getattr(dut, f"{name}__payload")
        self.words: list[int] = []
        self.sent = 0
        self.valid.value = 0

    def feed(self, words) -> None:
        self.words, self.sent = list(words), 0

    @property
    def done(self) -> bool:
        return self.sent >= len(self.words)

    def step(self) -> bool:
        """Present the next word (or nothing); True if it is taken at the coming rising edge."""
        if self.done:
            self.valid.value = 0
            return False
        self.payload.value = self.words[self.sent]
        self.valid.value = 1
        if self.ready.value:
            self.sent += 1
            return True
        return False

    def idle(self) -> None:
        self.valid.value = 0


class StreamSink:
    """Takes every payload of a stream output port (``ready`` held high)."""

    def __init__(self, dut, name: str):
        self.valid = getattr(dut, f"{name}__valid")
        self.payload = getattr(dut, f"{name}__payload")
        getattr(dut, f"{name}__ready").value = 1
        self.words: list[int] = []

    def step(self) -> bool:
        """Take the payload if valid (it is taken at the coming rising edge)."""
        if self.valid.value:
            self.words.append(int(self.payload.value))
            return True
        return False


async def stream_through(dut, source: StreamSource, sink: StreamSink, results: int) -> int:
    """Offer ``source``'s words and take ``sink``'s until ``results`` have arrived; the cycles
    from the first word taken to the last result taken."""
    cycle, first, last = 0, None, None
    while len(sink.words) < results:
        if sink.step():
            last = cycle
        if source.step():
            first = cycle if first is None else first
        await FallingEdge(dut.clk)
        cycle += 1
    source.idle()
    return last - first + 1


async def start_clock_and_reset(dut, *, reset_cycles: int = 4) -> None:
    """``rst`` high, then a 10 ns clock on ``clk`` for ``reset_cycles``; returns at a falling
    edge with ``rst`` low. Reset is raised a nanosecond before the clock starts so that every
    combinational block has seen it (Icarus does not evaluate them at time zero otherwise)."""
    dut.rst.value = 1
    await Timer(1, unit="ns")
    Clock(dut.clk, 10, unit="ns").start()
    await ClockCycles(dut.clk, reset_cycles)
    dut.rst.value = 0
    await FallingEdge(dut.clk)


def unpack_signed(words, *, width: int, count: int) -> np.ndarray:
    """Split each integer of ``words`` into ``count`` signed ``width``-bit fields (lowest first)."""
    mask, half = (1 << width) - 1, 1 << (width - 1)
    out = np.empty((len(words), count), dtype=np.int64)
    for r, w in enumerate(words):
        for c in range(count):
            v = (w >> (c * width)) & mask
            out[r, c] = v - (1 << width) if v >= half else v
    return out


def pack_fields(values, *, width: int) -> int:
    """Pack integers (two's complement, ``width`` bits each) into one word, first lowest."""
    word, mask = 0, (1 << width) - 1
    for c, v in enumerate(values):
        word |= (int(v) & mask) << (c * width)
    return word


class CaseIO:
    """The cases of one run and their results, exchanged with :mod:`a2q.sim.rtl_sim` through
    ``.npz`` files named by ``A2Q_TB_CASES`` / ``A2Q_TB_RESULTS``, and the unit's parameters
    (``A2Q_TB_PARAMS``, the ``params.json`` of :func:`a2q.hw.rtl.write_rtl`)."""

    def __init__(self):
        with np.load(os.environ["A2Q_TB_CASES"]) as z:
            arrays = {k: z[k] for k in z.files}
        self.count = int(arrays.pop("count"))
        self.cases = [{k.split("/", 1)[1]: v for k, v in arrays.items()
                       if k.split("/", 1)[0] == str(i)} for i in range(self.count)]
        with open(os.environ["A2Q_TB_PARAMS"]) as f:
            self.info = json.load(f)
        self.results: dict[str, np.ndarray] = {}

    def record(self, i: int, y: np.ndarray, cycles: int, **extra: np.ndarray) -> None:
        self.results[f"{i}/y"] = y
        self.results[f"{i}/cycles"] = np.int64(cycles)
        for k, v in extra.items():
            self.results[f"{i}/{k}"] = np.asarray(v)

    def save(self) -> None:
        path = os.environ["A2Q_TB_RESULTS"]
        np.savez(path + ".tmp.npz", **self.results)
        os.replace(path + ".tmp.npz", path)


async def check_cases(dut, kind: str, run_case, expected) -> None:
    """The body of a unit's cocotb test: build the unit's description from ``A2Q_TB_PARAMS``,
    reset, run every case (``await run_case(dut, unit, case) -> (y, cycles)``), save the
    results, and fail naming each case whose ``y`` differs from ``expected(case)``."""
    from a2q.hw.rtl import make_unit

    io = CaseIO()
    unit = make_unit(kind, io.info["parameters"])
    await start_clock_and_reset(dut)
    bad = []
    for i, case in enumerate(io.cases):
        y, cycles = await run_case(dut, unit, case)
        io.record(i, y, cycles)
        if not np.array_equal(y, expected(case)):
            bad.append(i)
    io.save()
    assert not bad, f"{kind} cases {bad} differ from NumPy"
