"""The layer engine: a whole exported GCN or GIN from on-chip memories.

:mod:`.layout` holds the configuration and the memory map, :mod:`.core` the sequencer and the
memories, :mod:`.combination_phase` and :mod:`.aggregation_phase` the bit-serial phases on
:mod:`.phase`'s pipeline, :mod:`.requantization` the fixed-point step between them,
:mod:`.memory_requests` and :mod:`.in_order_reads` the memory ports they share, and
:mod:`.layer_engine` the core with its off-chip memories, as a simulation sees it.
"""
