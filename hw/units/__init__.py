"""The bit-serial units on their own: a combination (X W, one bit-plane of X a cycle) and an
aggregation (a CSR neighbour sum, one bit-plane of the operand a cycle)."""
