"""The block RAM template the engine's Verilog instantiates for each of its memories.

Amaranth writes a ``lib.memory`` memory's contents into the Verilog word by word (zeros
included), which takes minutes for Cora-sized memories and leaves nothing for a host to
replace. The emitted engine instead instantiates :data:`MODULE`, a plain inferable RAM
(one synchronous write port, two synchronous read ports, as ``lib.memory``'s ports, except
that a read of the address being written in the same cycle is undefined, X in simulation:
the engine never uses one, and the Icarus runs would show X where it did) that fills itself
from ``INIT_FILE`` with ``$readmemh``: the flow of Yosys, Vivado and Quartus for initialised
block RAM, and of the simulators.
Each memory is split by width into instances one block RAM deep (:func:`slice_widths`), so
that no multiplexer of block RAM outputs sits between a read and the register after it
(on the ECP5, a memory split by depth had up to 5 LUT levels there: the engine's critical
path); slice ``k`` reads its own ``<memory>.<k>.hex`` (:func:`slice_file`).
Amaranth's own simulator runs the engine with ``lib.memory`` (:class:`~a2q.hw.engine.layer_engine.LayerEngine`
with ``ram_template=False``); the RTL tests check that both agree with the golden model.
"""

from __future__ import annotations

from amaranth import Cat, ClockSignal, Instance, Module, Signal, Value
from amaranth.lib import memory

MODULE = "a2q_ram"

VERILOG = """\
// a2q_ram: DEPTH words of WIDTH bits; one synchronous write port, two synchronous read ports.
// A read of the address being written in the same cycle returns undefined data: no_rw_check
// tells Yosys so (without it Yosys emulates read-before-write with a delayed write and a bypass
// multiplexer after the block RAM), and simulators return X for it, so that a design that used
// such a read would show X instead of passing on data the FPGA does not give. INIT_FILE, when
// given, is read with $readmemh from the working directory: one hex word a line, from address 0.
module a2q_ram #(
    parameter integer WIDTH = 8,
    parameter integer DEPTH = 2,
    parameter integer ABITS = 1,
    parameter INIT_FILE = ""
) (
    input wire clk,
    input wire we,
    input wire [ABITS-1:0] waddr,
    input wire [WIDTH-1:0] wdata,
    input wire [ABITS-1:0] raddr_a,
    output reg [WIDTH-1:0] rdata_a,
    input wire [ABITS-1:0] raddr_b,
    output reg [WIDTH-1:0] rdata_b
);
  (* no_rw_check *) reg [WIDTH-1:0] mem [0:DEPTH-1];
  initial begin
    if (INIT_FILE != "") $readmemh(INIT_FILE, mem);
  end
  always @(posedge clk) begin
    if (we) mem[waddr] <= wdata;
    rdata_a <= mem[raddr_a];
    rdata_b <= mem[raddr_b];
`ifndef SYNTHESIS
    if (we && waddr == raddr_a) rdata_a <= {WIDTH{1'bx}};
    if (we && waddr == raddr_b) rdata_b <= {WIDTH{1'bx}};
`endif
  end
endmodule
"""


def address_bits(depth: int) -> int:
    return max(1, (depth - 1).bit_length())


def block_ram(*, width: int, depth: int, init_file: str, we, waddr, wdata, raddr_a, raddr_b):
    """An instance of :data:`MODULE`; returns ``(instance, rdata_a, rdata_b)``."""
    rdata_a, rdata_b = Signal(width), Signal(width)
    inst = Instance(MODULE, p_WIDTH=width, p_DEPTH=depth, p_ABITS=address_bits(depth),
                    p_INIT_FILE=init_file, i_clk=ClockSignal(), i_we=we, i_waddr=waddr,
                    i_wdata=wdata, i_raddr_a=raddr_a, o_rdata_a=rdata_a, i_raddr_b=raddr_b,
                    o_rdata_b=rdata_b)
    return inst, rdata_a, rdata_b


#: ECP5 DP16KD geometries, widest first: (width, depth) of one block RAM (36 wide: one write
#: and one read port, the pseudo-dual-port mode each read port of the template gets).
GEOMETRIES = ((36, 512), (18, 1024), (9, 2048), (4, 4096), (2, 8192), (1, 16384))


def slice_widths(width: int, depth: int) -> list[int]:
    """The widths the template splits a ``width`` x ``depth`` memory into, so that each slice
    is one block RAM deep (no output multiplexer after the block RAMs); one slice when the
    memory is deeper than a block RAM."""
    for w, d in GEOMETRIES:
        if depth <= d:
            w = min(w, width)
            return [w] * (width // w) + ([width % w] if width % w else [])
    return [width]


def slice_bits(width: int, depth: int) -> list[tuple[int, int]]:
    """``(lsb, width)`` of each slice of :func:`slice_widths`, slice 0 holding the low bits."""
    widths = slice_widths(width, depth)
    return [(sum(widths[:k]), w) for k, w in enumerate(widths)]


def slice_file(init_file: str, k: int) -> str:
    """The init file of slice ``k`` of the memory filled from ``init_file``."""
    return f"{init_file.removesuffix('.hex')}.{k}.hex"


def ram(m: Module, name: str, *, width: int, depth: int, template: bool, init=(),
        init_file: str = "", we, waddr, wdata, raddr_a, raddr_b=0) -> tuple[Value, Value]:
    """One memory of the engine with one write and two read ports, added to ``m`` as ``name``:
    a ``lib.memory`` memory holding ``init`` (Amaranth's simulator), or with ``template`` an
    instance of :data:`MODULE` reading ``init_file``. ``we``, ``waddr``, ``raddr_a`` and
    ``raddr_b`` are each a value, or a list of one value for every slice or of one per slice
    (:func:`slice_bits`, the template's instances). Returns the two ports' read data."""
    def per_slice(v, k):
        v = v if isinstance(v, list) else [v]
        return Value.cast(v[k if len(v) > 1 else 0])

    if template:
        abits = address_bits(depth)
        out_a, out_b = [], []
        for k, (lo, w) in enumerate(slice_bits(width, depth)):
            inst, data_a, data_b = block_ram(
                width=w, depth=depth, init_file=slice_file(init_file, k) if init_file else "",
                we=per_slice(we, k), waddr=per_slice(waddr, k)[:abits],
                wdata=Value.cast(wdata)[lo:lo + w], raddr_a=per_slice(raddr_a, k)[:abits],
                raddr_b=per_slice(raddr_b, k)[:abits])
            m.submodules[f"{name}_{k}"] = inst
            out_a.append(data_a)
            out_b.append(data_b)
        return Cat(*out_a), Cat(*out_b)
    mem = memory.Memory(shape=width, depth=depth, init=list(init))
    m.submodules[name] = mem
    wp = mem.write_port()
    m.d.comb += [wp.addr.eq(per_slice(waddr, 0)), wp.data.eq(wdata), wp.en.eq(per_slice(we, 0))]
    out = []
    for addr in (raddr_a, raddr_b):
        rp = mem.read_port()
        m.d.comb += rp.addr.eq(per_slice(addr, 0))
        out.append(rp.data)
    return out[0], out[1]
