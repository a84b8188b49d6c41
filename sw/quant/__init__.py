"""Quantizers: the fused A²Q quantizer, its per-node / per-column / Nearest-Neighbor forms,
Degree-Quant's baseline quantizer, the memory penalty, and the per-method scheme."""
