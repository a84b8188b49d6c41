"""cocotb testbenches of the bit-serial units, launched by :mod:`a2q.sim.rtl_sim`."""
