"""a2q.sim: the bitwidth-annotated graph, the integer golden model and its cycle model (NumPy
only: nothing here imports torch)."""
