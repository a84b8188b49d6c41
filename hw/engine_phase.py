"""What every phase of the layer engine shares: its control signals, its memory requests, and
the end of its pipeline (requantization and the write of one word per (node, tile))."""

from __future__ import annotations

from amaranth import Elaboratable, Module, Mux, Signal

from .engine_layout import EngineConfig
from .requantization import pipeline


class EnginePhase(Elaboratable):
    """Base of :class:`CombinationPhase` and :class:`AggregationPhase`: ``start`` / ``busy`` /
    ``num_nodes``, the reads of ``src``, the layer's node fields (port B), its ``{kind}_cols``
    and scalars, and the write of ``dst``. Subclasses build the walker and call
    :meth:`requantize`."""

    kind = ""  # "comb" or "agg": names the signals and the layer's column memory

    def __init__(self, cfg: EngineConfig, layer: int, hub, *, src: str, src_stride: int,
                 dst: str, dst_stride: int):
        self.cfg, self.layer = cfg, layer
        self.shape = cfg.layers[layer - 1]
        self.last = layer == len(cfg.layers)
        self.src_stride, self.dst_stride = src_stride, dst_stride
        self.name = name = f"{self.kind}{layer}"
        self.start = Signal(name=f"{name}_start")
        self.busy = Signal(name=f"{name}_busy")
        self.num_nodes = Signal(range(cfg.max_nodes + 1), name=f"{name}_num_nodes")
        self.src = hub.read(src, f"{name}_src")
        self.node = hub.read(f"layer{layer}_node", f"{name}_node", port="B")
        self.cols = hub.read(f"layer{layer}_{self.kind}_cols", f"{name}_cols")
        self.scalars = hub.read(f"layer{layer}_scalars", f"{name}_scalars")
        self.dst = hub.write(dst, f"{name}_dst")
        self.node_requests = [self.node]  # read at the node of the result entering the pipeline

    def requantize(self, m: Module, emit, node, tile, acc: list, walker_busy) -> None:
        """The accumulated ``acc`` of (``node``, ``tile``), presented while ``emit``, through
        the requantization stages of :meth:`stages` to one write of ``dst``; drives ``busy``
        from ``walker_busy`` and every stage."""
        m.d.comb += [req.addr.eq(Mux(emit, node, 0)) for req in self.node_requests]
        m.d.comb += self.cols.addr.eq(Mux(emit, tile, 0))
        valids, out = pipeline(m, emit, {"node": node, "tile": tile,
                                         **{f"a{c}": a for c, a in enumerate(acc)}},
                               self.stages(), name=f"{self.name}_rq")
        m.d.comb += [
            self.dst.en.eq(valids[-1]),
            self.dst.addr.eq(out["node"] * self.dst_stride + out["tile"]),
        ]
        m.d.comb += [self.dst.data[c].eq(out[f"y{c}"]) for c in range(len(acc))]  # two's compl.
        busy = walker_busy
        for v in valids:
            busy = busy | v
        m.d.comb += self.busy.eq(busy)

    def stages(self) -> list:
        raise NotImplementedError
