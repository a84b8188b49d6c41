"""a2q.hw: bit-serial GNN hardware in Amaranth HDL, and the way to an FPGA.

- :mod:`a2q.hw.units`: the standalone bit-serial combination and aggregation units;
- :mod:`a2q.hw.engine`: the layer engine that runs a whole exported GCN or GIN;
- :mod:`a2q.hw.primitives`: the block RAM and DSP multiplier templates the engine is built of;
- :mod:`a2q.hw.rtl`: Verilog emission of the units and the engine;
- :mod:`a2q.hw.fpga`: synthesis, place and route and the reports (Yosys, nextpnr).
"""
