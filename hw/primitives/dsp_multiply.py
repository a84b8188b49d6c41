"""The multiplier template the requantization instantiates: one 18 x 18 DSP with its own input
and output registers.

Yosys maps a multiplication onto an ECP5 MULT18X18D without the DSP's registers, so each of the
requantization's multiplications would be a register -> routing -> 3.9 ns of multiplier ->
routing -> register path (12.9 ns, the 8-lane engine's critical path). :func:`registered_product`
instead registers the operands and the product inside the multiplier: the emitted Verilog
instantiates :data:`MODULE`, whose body is a plain registered multiply (what simulators run
and what Vivado and Quartus map onto a DSP with its registers) unless ``A2Q_ECP5_DSP`` is
defined, as ``a2q synth --target ecp5`` does: then it is a MULT18X18D with its input and output
registers clocked (REG_INPUTA_CLK, REG_INPUTB_CLK, REG_OUTPUT_CLK = CLK0), connected as Yosys's
own ``dsp_map_18x18.v`` connects an unregistered one. No simulation model of MULT18X18D comes with
Yosys, so that branch is checked by Yosys and nextpnr accepting it, not by simulation.

Cycle behaviour: ``p`` is ``a * b`` of two cycles before (free running: no enable).
"""

from __future__ import annotations

from amaranth import ClockSignal, Instance, Module, Signal, Value, signed

MODULE = "a2q_mul"
#: Operand width of the multiplier (signed).
OPERAND = 18

VERILOG = """\
// a2q_mul: p = a * b (18-bit signed operands) two cycles later: the operands registered, then
// the product. With A2Q_ECP5_DSP defined (a2q synth for ECP5) an ECP5 MULT18X18D holds both
// registers; otherwise the registered multiply below, which simulators run and other
// synthesis tools map onto a DSP with its registers.
module a2q_mul (
    input wire clk,
    input wire signed [17:0] a,
    input wire signed [17:0] b,
    output wire signed [35:0] p
);
`ifdef A2Q_ECP5_DSP
  MULT18X18D #(
    .REG_INPUTA_CLK("CLK0"), .REG_INPUTB_CLK("CLK0"), .REG_OUTPUT_CLK("CLK0")
  ) dsp (
    .A0(a[0]), .A1(a[1]), .A2(a[2]), .A3(a[3]), .A4(a[4]), .A5(a[5]), .A6(a[6]), .A7(a[7]),
    .A8(a[8]), .A9(a[9]), .A10(a[10]), .A11(a[11]), .A12(a[12]), .A13(a[13]), .A14(a[14]),
    .A15(a[15]), .A16(a[16]), .A17(a[17]),
    .B0(b[0]), .B1(b[1]), .B2(b[2]), .B3(b[3]), .B4(b[4]), .B5(b[5]), .B6(b[6]), .B7(b[7]),
    .B8(b[8]), .B9(b[9]), .B10(b[10]), .B11(b[11]), .B12(b[12]), .B13(b[13]), .B14(b[14]),
    .B15(b[15]), .B16(b[16]), .B17(b[17]),
    .C0(1'b0), .C1(1'b0), .C2(1'b0), .C3(1'b0), .C4(1'b0), .C5(1'b0), .C6(1'b0), .C7(1'b0),
    .C8(1'b0), .C9(1'b0), .C10(1'b0), .C11(1'b0), .C12(1'b0), .C13(1'b0), .C14(1'b0),
    .C15(1'b0), .C16(1'b0), .C17(1'b0),
    .SIGNEDA(1'b1), .SIGNEDB(1'b1), .SOURCEA(1'b0), .SOURCEB(1'b0),
    .CLK0(clk), .CE0(1'b1), .RST0(1'b0),
    .P0(p[0]), .P1(p[1]), .P2(p[2]), .P3(p[3]), .P4(p[4]), .P5(p[5]), .P6(p[6]), .P7(p[7]),
    .P8(p[8]), .P9(p[9]), .P10(p[10]), .P11(p[11]), .P12(p[12]), .P13(p[13]), .P14(p[14]),
    .P15(p[15]), .P16(p[16]), .P17(p[17]), .P18(p[18]), .P19(p[19]), .P20(p[20]),
    .P21(p[21]), .P22(p[22]), .P23(p[23]), .P24(p[24]), .P25(p[25]), .P26(p[26]),
    .P27(p[27]), .P28(p[28]), .P29(p[29]), .P30(p[30]), .P31(p[31]), .P32(p[32]),
    .P33(p[33]), .P34(p[34]), .P35(p[35])
  );
`else
  reg signed [17:0] a_r, b_r;
  reg signed [35:0] p_r;
  always @(posedge clk) begin
    a_r <= a;
    b_r <= b;
    p_r <= a_r * b_r;
  end
  assign p = p_r;
`endif
endmodule
"""


def registered_product(m: Module, a: Value, b: Value, *, name: str, template: bool) -> Signal:
    """``a * b`` two cycles later (each operand at most :data:`OPERAND` bits signed, or one
    bit fewer unsigned): registers in Amaranth, or with ``template`` an instance of
    :data:`MODULE` added to ``m`` as ``name``."""
    operands = []
    for x in (a, b):
        x = Value.cast(x)
        if x.shape().width + (not x.shape().signed) > OPERAND:
            raise ValueError(f"{name}: a {x.shape()} operand does not fit {OPERAND} bits signed")
        s = Signal(signed(OPERAND), name=f"{name}_{'ab'[len(operands)]}")
        m.d.comb += s.eq(x)  # sign- or zero-extended
        operands.append(s)
    p = Signal(signed(2 * OPERAND), name=f"{name}_p")
    if template:
        m.submodules[name] = Instance(MODULE, i_clk=ClockSignal(), i_a=operands[0],
                                      i_b=operands[1], o_p=p)
    else:
        held = [Signal(signed(OPERAND), name=f"{name}_{x}_r") for x in "ab"]
        m.d.sync += [h.eq(x) for h, x in zip(held, operands)]
        m.d.sync += p.eq(held[0] * held[1])
    return p
