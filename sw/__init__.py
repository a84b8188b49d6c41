"""a2q.sw: A²Q quantization-aware training of GNNs in PyTorch Geometric, its baselines, and the
export of a trained model as a bitwidth-annotated graph."""
