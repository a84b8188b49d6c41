"""Read and write requests on the layer engine's shared memory ports.

The engine's phases run one at a time, so they share each memory's ports: a phase drives its
request's address (and write enable) to zero while it is idle, and the engine ORs the requests
of every phase into the port. A read takes :data:`READ_LATENCY` cycles: ``data`` is the word at
the address of two cycles before, the block RAM's output registered once more before any logic
sees it (an ECP5 block RAM's output arrives 5.6 ns after the clock, over half of a 100 MHz cycle).
"""

from __future__ import annotations

from amaranth import Signal

from .engine_layout import MemorySpec

#: Cycles from a read request's address to its ``data``.
READ_LATENCY = 2


class ReadRequest:
    def __init__(self, spec: MemorySpec, name: str):
        self.spec = spec
        self.addr = Signal(range(spec.depth), name=f"{name}_addr")
        self.data = Signal(spec.layout, name=f"{name}_data")


class WriteRequest:
    def __init__(self, spec: MemorySpec, name: str):
        self.spec = spec
        self.addr = Signal(range(spec.depth), name=f"{name}_addr")
        self.data = Signal(spec.layout, name=f"{name}_data")
        self.en = Signal(name=f"{name}_en")
