"""a2q.sim: the bitwidth-annotated graph, the golden model, the cycle model, and the runs that
check the Verilog against them.

The golden model (:mod:`.golden`), the cycle model (:mod:`.cycles`) and the format
(:mod:`.annotated_graph`) need NumPy only; the RTL runners (:mod:`.rtl_sim`,
:mod:`.engine_run`, :mod:`.unit_run`) build the Verilog with Amaranth and run it under cocotb.
Nothing here imports torch."""
