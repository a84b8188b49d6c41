"""a2q.hw: bit-serial GNN hardware described in Amaranth HDL (``BitSerialCombination`` so far)."""
