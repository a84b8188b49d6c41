"""a2q.sw: A2Q quantization-aware training of GNNs in PyTorch Geometric, and its baselines."""
