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


def registered_address(m: Module, address, name: str) -> Value:
    """A read port's merged ``address`` through :data:`ADDRESS_REGISTERS` registers."""
    return _registered(m, address, ADDRESS_REGISTERS, f"{name}_raddr")


def registered_data(m: Module, data, name: str) -> Value:
    """A read port's block RAM output through :data:`DATA_REGISTERS` registers without reset."""
    return _registered(m, data, DATA_REGISTERS, f"{name}_rdata", reset_less=True)


def registered_write(m: Module, spec: MemorySpec, addr, data, en, name: str):
    """A write port's merged request (``addr``, ``data``, ``en``) registered once: the
    choice among the phases' requests and their address arithmetic stay off the wire to the
    block RAMs. Returns the registers, in that order."""
    regs = (Signal(range(spec.depth), name=f"{name}_waddr"),
            Signal(spec.width, name=f"{name}_wdata"), Signal(name=f"{name}_we"))
    m.d.sync += [r.eq(v) for r, v in zip(regs, (addr, data, en))]
    return regs
