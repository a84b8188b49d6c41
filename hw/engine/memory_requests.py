"""Read and write requests on the layer engine's shared memory ports.

The engine's phases run one at a time, so they share each memory's ports: a phase drives its
read request's address to zero while it is idle, and the engine ORs the requests of every
phase into the port. A write (the host's load, or the requantization's word) reaches the
memory from registers: its address and enable through two, its data, chosen a cycle later,
through one (:func:`registered_write`). A read takes :data:`READ_LATENCY` cycles: the merged
address is registered, then copied for each few slices of the memory
(:func:`registered_address`) before it reaches the block RAM, whose own register
holds the word read, and the word is registered :data:`DATA_REGISTERS` times more
(:func:`registered_data`) before any logic sees it. On the ECP5 a block RAM's output arrives
about 5.8 ns after the clock, and the engine's block RAMs are spread over the die: the
registers on both sides leave each path to or from a block RAM nothing but wire, and give the
placer a register to put next to each block RAM. The data registers have no reset (they hold
data, never control), so that ECP5 synthesis can move the first into the block RAM itself, as
its output register (:mod:`~a2q.hw.fpga.ecp5_output_registers`): its output then arrives 1 ns after
the clock, in the same cycle.
A reader may take the word before its last data register (:class:`ReadRequest`'s ``early``)
and make that register itself, holding what it computes from the word: the combination's
source word per lane, the aggregation's signed coefficient.

A shallow memory the engine only reads (:func:`read_registers`: at most :data:`SHALLOW_WORDS`
words, filled by the host: a layer's column constants, its scalars, a one-tile weight block)
is a LUT RAM, not a block RAM, and often hundreds of bits wide: its read registers all go on
the address side, a few bits each, and the memory's own read register is the last before
the logic. The latency is the same, so no cycle changes; a read that the registers move to a
later cycle cannot meet a write, as no phase writes such a memory.
"""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, Value

from a2q.hw.primitives.block_ram import address_bits, slice_bits

from .layout import MemorySpec

#: Registers between the merged read address and the block RAM's address inputs: one after the
#: merge, then a copy per :data:`SLICES_PER_COPY` slices of the memory.
ADDRESS_REGISTERS = 2
#: Registers after the block RAM's output.
DATA_REGISTERS = 2
#: Cycles from a read request's address to its ``data``: the address registers, the block
#: RAM's synchronous read and the data registers.
READ_LATENCY = ADDRESS_REGISTERS + 1 + DATA_REGISTERS
#: Block RAM slices of a memory that each copy of its read address, write address and write
#: enable reaches (:func:`registered_address`, :func:`registered_write`).
SLICES_PER_COPY = 4
#: Words of the deepest memory :func:`read_registers` counts as shallow: one LUT RAM deep on
#: the ECP5 (TRELLIS_DPR16X4).
SHALLOW_WORDS = 16


def is_shallow(spec: MemorySpec) -> bool:
    """Whether ``spec``'s memory is a LUT RAM: at most :data:`SHALLOW_WORDS` words the host
    fills (the engine never writes it)."""
    return spec.loaded and spec.depth <= SHALLOW_WORDS


def read_registers(spec: MemorySpec) -> tuple[int, int]:
    """The registers before and after the memory on each read port of ``spec``'s memory,
    ``READ_LATENCY - 1`` in all: all before it for a shallow memory (:func:`is_shallow`),
    else :data:`ADDRESS_REGISTERS` and :data:`DATA_REGISTERS`."""
    if is_shallow(spec):
        return READ_LATENCY - 1, 0
    return ADDRESS_REGISTERS, DATA_REGISTERS


class ReadRequest:
    """A reader's address and the word read, ``data``, :data:`READ_LATENCY` cycles after the
    address. With ``early`` the word comes a cycle sooner, before the read's last data
    register, which the reader then makes itself (say, one register per lane of what each
    lane takes from the word): ``self.early`` says whether it does, only where the memory has
    a data register (:func:`read_registers`)."""

    def __init__(self, spec: MemorySpec, name: str, early: bool = False):
        self.spec = spec
        self.early = early and read_registers(spec)[1] > 0
        self.addr = Signal(range(spec.depth), name=f"{name}_addr")
        self.data = Signal(spec.layout, name=f"{name}_data")


def _registered(m: Module, value, times: int, name: str, reset_less: bool = False,
                keep: bool = False) -> Value:
    value = Value.cast(value)
    for j in range(times):
        reg = Signal(value.shape(), name=f"{name}_{j}", reset_less=reset_less,
                     attrs={"keep": 1} if keep else {})
        m.d.sync += reg.eq(value)
        value = reg
    return value


def copies(m: Module, value, count: int, name: str, reset_less: bool = False,
           keep: bool = False) -> list[Value]:
    """``count`` registers of ``value`` (``{name}_{k}``), kept apart in synthesis (the
    ``keep`` attribute, which ``a2q synth`` extends to the flip-flops), one for each slice of
    a memory (:func:`~a2q.hw.primitives.block_ram.slice_bits`) or each lane that uses it: one register
    would reach every slice or lane (the column constants' read address reaches 260 LUT RAMs
    at 16 lanes). Worth it where ``value`` is itself a register: copies of logic's output
    move the long wires before them. ``keep`` keeps even a single copy apart (from registers
    of the same value elsewhere)."""
    value = Value.cast(value)
    regs = [Signal(value.shape(), name=f"{name}_{k}",
                   attrs={"keep": 1} if count > 1 or keep else {},
                   reset_less=reset_less) for k in range(count)]
    m.d.sync += [r.eq(value) for r in regs]
    return regs


def copies_in_groups(m: Module, value, count: int, name: str, per_group: int = 4) -> list[Value]:
    """``count`` registers of ``value`` two cycles later (where :func:`copies` makes them one
    cycle later): a register per group of ``per_group`` copies (``{name}_g{k}``), then each
    copy of its group's, all kept apart in synthesis. One register reaching 16 lanes' copies
    across the die is itself a long wire (a combination lane's plane copy);
    here each reaches a few registers near one another."""
    groups = copies(m, value, -(-count // per_group), f"{name}_g")
    regs = [Signal(groups[0].shape(), name=f"{name}_{k}", attrs={"keep": 1} if count > 1 else {})
            for k in range(count)]
    m.d.sync += [r.eq(groups[k // per_group]) for k, r in enumerate(regs)]
    return regs


def _slice_copies(regs: list[Value], slices: int, per_copy: int) -> list[Value]:
    """Slice k's register of ``regs``, a copy per ``per_copy`` slices: one item per slice (one
    item for one slice)."""
    return regs if slices == 1 else [regs[k // per_copy] for k in range(slices)]


def registered_address(m: Module, address, name: str, times: int = ADDRESS_REGISTERS,
                       slices: int = 1, per_copy: int = 1) -> list[Value]:
    """A read port's merged ``address`` through ``times`` registers (at least one), the last
    one a copy per ``per_copy`` of the memory's ``slices`` (:func:`copies`); one item per
    slice. The registers hold addresses only, so none has a reset, and each is kept apart in
    synthesis: two memories read at the same address (the node index, say) would otherwise
    share one register, placed between them."""
    first = _registered(m, address, times - 1, f"{name}_raddr", reset_less=True, keep=True)
    regs = copies(m, first, -(-slices // per_copy), f"{name}_raddr_{times - 1}",
                  reset_less=True, keep=True)
    return _slice_copies(regs, slices, per_copy)


def registered_data(m: Module, data, name: str, times: int = DATA_REGISTERS) -> Value:
    """A read port's block RAM output through ``times`` registers without reset."""
    return _registered(m, data, times, f"{name}_rdata", reset_less=True)


def registered_data_early(m: Module, data, name: str, times: int) -> tuple[Value, Value]:
    """:func:`registered_data`, returning the word after its last register and the word
    before that register (for :class:`ReadRequest`'s ``early``; the same where ``times`` is
    0)."""
    before = registered_data(m, data, name, max(times - 1, 0))
    if times == 0:
        return before, before
    last = Signal(before.shape(), name=f"{name}_rdata_{times - 1}", reset_less=True)
    m.d.sync += last.eq(before)
    return last, before


def registered_write(m: Module, spec: MemorySpec, addr, data, en, name: str, slices: int = 1,
                     per_copy: int = 1) -> tuple[list[Value], Value, list[Value]]:
    """A write port's request registered, the choice between the host's load and the
    engine's write and the address arithmetic off the wire to the block RAMs: ``addr`` and
    ``en`` come the cycle before ``data`` and pass two registers, one and then a copy per
    ``per_copy`` of the memory's ``slices`` (:func:`copies`), so that each reaches a few block
    RAMs from near them (one write address register reaching the 32 block RAMs of ``op``
    across the die takes 14 ns); ``data`` passes one. Every register is kept apart in
    synthesis: the memories the host loads take the same load address, and merged, their first
    registers are one, whose wires to every memory's copies were the engine's slowest paths
    (13.6 ns). The address registers have no reset. Returns the registers, in that order: the
    address and the enable as lists with an item per slice (one item for one slice)."""
    wdata = Signal(spec.width, name=f"{name}_wdata")
    m.d.sync += wdata.eq(data)
    count = -(-slices // per_copy)

    def tree(value, key, reset_less):
        first = _registered(m, value, 1, f"{name}_{key}", reset_less=reset_less, keep=True)
        regs = copies(m, first, count, f"{name}_{key}_1", reset_less=reset_less, keep=True)
        return _slice_copies(regs, slices, per_copy)
    return (tree(Value.cast(addr)[:address_bits(spec.depth)], "waddr", True), wdata,
            tree(en, "we", False))


def chosen_per_slices(m: Module, spec: MemorySpec, select, when, otherwise, name: str, *,
                      template: bool) -> Value:
    """``when`` where ``select`` was high a cycle before, else ``otherwise``: a memory's write
    data, chosen per :data:`SLICES_PER_COPY` slices of the memory (with ``template``,
    else the whole word) by a register of ``select`` of their own (``{name}_from_rq_{k}``,
    :func:`copies`; one register choosing every bit of ``h``'s word takes 13 ns of wire). A cycle late, as the data comes a cycle after its address
    (:func:`registered_write`): a host's load in the cycle the engine starts would lose its
    data, but a run writes every word of a memory it writes before reading it."""
    bounds = slice_bits(spec.width, spec.depth) if template else [(0, spec.width)]
    selects = copies(m, select, -(-len(bounds) // SLICES_PER_COPY), f"{name}_from_rq")
    when, otherwise = Value.cast(when), Value.cast(otherwise)
    return Cat(Mux(selects[k // SLICES_PER_COPY], when[lo:lo + w], otherwise[lo:lo + w])
               for k, (lo, w) in enumerate(bounds))
