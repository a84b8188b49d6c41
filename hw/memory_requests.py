"""Read and write requests on the layer engine's shared memory ports.

The engine's phases run one at a time, so they share each memory's ports: a phase drives its
request's address (and write enable) to zero while it is idle, and the engine ORs the requests
of every phase into the port. A write reaches the memory from registers, a cycle after the
request (:func:`registered_write`). A read takes :data:`READ_LATENCY` cycles: the merged address is
registered (:func:`registered_address`) before it reaches the block RAM, whose own register
holds the word read, and the word is registered :data:`DATA_REGISTERS` times more
(:func:`registered_data`) before any logic sees it. On the ECP5 a block RAM's output arrives
about 5.8 ns after the clock, and the engine's block RAMs are spread over the die: the
registers on both sides leave each path to or from a block RAM nothing but wire, and give the
placer a register to put next to each block RAM. The data registers have no reset (they hold
data, never control), so that ECP5 synthesis can move the first into the block RAM itself, as
its output register (:mod:`~a2q.hw.ecp5_output_registers`): its output then arrives 1 ns after
the clock, in the same cycle.

A shallow memory the engine only reads (:func:`read_registers`: at most :data:`SHALLOW_WORDS`
words, filled by the host: a layer's column constants, its scalars, a one-tile weight block)
is a LUT RAM, not a block RAM, and often hundreds of bits wide: its read registers all go on
the address side, a few bits each, and the memory's own read register is the last before
the logic. The latency is the same, so no cycle changes; a read that the registers move to a
later cycle cannot meet a write, as no phase writes such a memory.
"""

from __future__ import annotations

from amaranth import Module, Signal, Value

from .engine_layout import MemorySpec

#: Registers between the merged read address and the block RAM's address inputs.
ADDRESS_REGISTERS = 1
#: Registers after the block RAM's output.
DATA_REGISTERS = 2
#: Cycles from a read request's address to its ``data``: the address registers, the block
#: RAM's synchronous read and the data registers.
READ_LATENCY = ADDRESS_REGISTERS + 1 + DATA_REGISTERS
#: Words of the deepest memory :func:`read_registers` counts as shallow: one LUT RAM deep on
#: the ECP5 (TRELLIS_DPR16X4).
SHALLOW_WORDS = 16


def read_registers(spec: MemorySpec) -> tuple[int, int]:
    """The registers before and after the memory on each read port of ``spec``'s memory,
    ``READ_LATENCY - 1`` in all: all before it for a shallow memory the host fills (the
    engine never writes it), else :data:`ADDRESS_REGISTERS` and :data:`DATA_REGISTERS`."""
    if spec.loaded and spec.depth <= SHALLOW_WORDS:
        return READ_LATENCY - 1, 0
    return ADDRESS_REGISTERS, DATA_REGISTERS


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


def _registered(m: Module, value, times: int, name: str, reset_less: bool = False) -> Value:
    value = Value.cast(value)
    for j in range(times):
        reg = Signal(value.shape(), name=f"{name}_{j}", reset_less=reset_less)
        m.d.sync += reg.eq(value)
        value = reg
    return value


def registered_address(m: Module, address, name: str, times: int = ADDRESS_REGISTERS) -> Value:
    """A read port's merged ``address`` through ``times`` registers."""
    return _registered(m, address, times, f"{name}_raddr")


def registered_data(m: Module, data, name: str, times: int = DATA_REGISTERS) -> Value:
    """A read port's block RAM output through ``times`` registers without reset."""
    return _registered(m, data, times, f"{name}_rdata", reset_less=True)


def registered_write(m: Module, spec: MemorySpec, addr, data, en, name: str):
    """A write port's merged request (``addr``, ``data``, ``en``) registered once: the
    choice among the phases' requests and their address arithmetic stay off the wire to the
    block RAMs. Returns the registers, in that order."""
    regs = (Signal(range(spec.depth), name=f"{name}_waddr"),
            Signal(spec.width, name=f"{name}_wdata"), Signal(name=f"{name}_we"))
    m.d.sync += [r.eq(v) for r, v in zip(regs, (addr, data, en))]
    return regs
