"""From an RTL folder to an FPGA: Yosys synthesis, nextpnr place and route, the fit check and
the timing report (:mod:`.synthesis`), and the netlist passes it needs."""
