"""``a2q bench``: the benchmarks. :mod:`.models` trains and runs models (train, golden,
engine), :mod:`.units` the bit-serial units in RTL, :mod:`.hardware` A²Q against uniform bits
on the engine, the lane sweep and the engine through place and route (hw, timing)."""
