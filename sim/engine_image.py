"""The layer engine's memory image of an export: the words of every memory, and the fit checks.

:func:`engine_config` sizes an engine for an export (lanes and depths may be overridden);
:func:`memory_words` lays the export out in the engine's memories (``a2q.hw.engine.layout``
documents the map) and refuses, with :class:`EngineFitError` naming the memory and by how
much, a graph or model the engine cannot hold. :func:`write_init_files` writes them as the
``$readmemh`` files the engine's Verilog loads.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from amaranth import Shape
from amaranth.lib import data

from a2q.common.choices import DEFAULT_LANES
from a2q.hw.engine.layout import (
    FRAC,
    MAX_POOL,
    SELECTION_BITS,
    EngineConfig,
    LayerShape,
)
from a2q.hw.primitives.block_ram import slice_bits, slice_file

from .annotated_graph import AnnotatedGraph
from .cycles import default_nonzeros_per_word, input_words
from .golden import gcn_operand
from .graph_batch import GraphBatchExport


class EngineFitError(ValueError):
    """The export does not fit the engine (a memory too shallow, a value too wide)."""


def engine_config(g: AnnotatedGraph, *, lanes: int = DEFAULT_LANES,
                  max_nodes: int | None = None,
                  max_edges: int | None = None, input_bits: int | None = None,
                  requant_lanes: int = 0, nonzeros_per_word: int | None = None,
                  max_input_words: int | None = None) -> EngineConfig:
    """The engine for ``g``'s model, its memories as deep as ``g`` needs and its input as wide
    unless given (``requant_lanes`` 0: the default). The input is stored as its non-zeros
    where that takes fewer cycles (``nonzeros_per_word`` None:
    :func:`~a2q.sim.cycles.default_nonzeros_per_word`), in as many words as ``g`` needs and one
    more for each node ``max_nodes`` holds beyond ``g``'s, unless ``max_input_words`` says."""
    if not isinstance(lanes, int) or isinstance(lanes, bool) or not 1 <= lanes <= 64:
        raise EngineFitError(f"lanes must be an integer 1..64, got {lanes!r}")
    man = g.manifest
    layers = tuple(LayerShape(L["in_dim"], L["out_dim"], L["weight_bits"]) for L in g.layers)
    max_nodes = max(g.num_nodes, 2) if max_nodes is None else max_nodes
    if nonzeros_per_word is None:
        nonzeros_per_word = default_nonzeros_per_word(g, lanes=lanes)
    if max_input_words is None:
        max_input_words = 0
        if nonzeros_per_word:
            need = int(input_words(g["x"], nonzeros_per_word).sum())
            max_input_words = max(2, need + max(0, max_nodes - g.num_nodes))
    return EngineConfig(model=g.model, order=man["order"], layers=layers, lanes=lanes,
                        requant_lanes=requant_lanes,
                        input_bits=man["input_bits"] if input_bits is None else input_bits,
                        max_nodes=max_nodes,
                        max_edges=max(man["num_edges"], 1) if max_edges is None else max_edges,
                        nonzeros_per_word=nonzeros_per_word, max_input_words=max_input_words)


def input_code_bits(g: AnnotatedGraph | GraphBatchExport) -> int:
    """Bits the widest of ``g``'s input codes needs (at least 1): what the engine's ``x``
    must store, however many bit-planes the export pays for them (``input_bits``)."""
    return max(1, int(np.max(g["x"], initial=0)).bit_length())


def _fit(ok: bool, message: str) -> None:
    if not ok:
        raise EngineFitError(message)


def pack(layout, name: str, values, count: int) -> list[int]:
    """Words of ``layout`` from ``values``: an int array [count] for a plain shape, a dict of
    arrays for a struct, an array [count, length] (of scalars or of struct dicts) for an array
    layout. Every value must fit its field; the error names the memory and the field."""
    words = np.zeros(count, dtype=object)

    def put(shape, offset, vals, field):
        vals = np.asarray(vals, dtype=np.int64).reshape(count)
        s = Shape.cast(shape)
        lo, hi = (-(1 << (s.width - 1)), (1 << (s.width - 1)) - 1) if s.signed else (0, (1 << s.width) - 1)
        if isinstance(shape, range):
            lo, hi = shape.start, shape.stop - 1
        bad = (vals < lo) | (vals > hi)
        if bad.any():
            raise EngineFitError(f"memory {name}, {field}: value {int(vals[bad][0])} does not "
                                 f"fit {lo}..{hi}")
        nonlocal words
        words = words + ((vals.astype(object) & ((1 << s.width) - 1)) << offset)

    def walk(layout, offset, vals, field):
        if isinstance(layout, (data.StructLayout, data.FlexibleLayout)):
            for key, f in layout:
                walk(f.shape, offset + f.offset, vals[key], f"{field}.{key}" if field else key)
        elif isinstance(layout, data.ArrayLayout):
            size = Shape.cast(layout.elem_shape).width
            for c in range(layout.length):
                sub = {k: v[:, c] for k, v in vals.items()} if isinstance(vals, dict) \
                    else np.asarray(vals)[:, c]
                walk(layout.elem_shape, offset + c * size, sub, f"{field}[{c}]")
        else:
            put(layout, offset, vals, field or "word")

    walk(layout, 0, values, "")
    return [int(w) for w in words]


def _tiled(a: np.ndarray, lanes: int, stride: int) -> np.ndarray:
    """Rows [N, D] as words [N * stride, lanes]: node i's tile t at i * stride + t."""
    n, d = a.shape
    out = np.zeros((n, stride * lanes), dtype=np.int64)
    out[:, :d] = a
    return out.reshape(n * stride, lanes)


def _columns(cols: dict, lanes: int, tiles: int) -> dict:
    """Per-column arrays as per-tile words: name -> [tiles, lanes] (padding columns zero)."""
    out = {}
    for k, v in cols.items():
        pad = np.zeros(tiles * lanes, dtype=np.int64)
        pad[:len(v)] = v
        out[k] = pad.reshape(tiles, lanes)
    return out


def _visit_order(indptr: np.ndarray, item_values: np.ndarray, tiles: int) -> list[int]:
    """``item_values`` (one per CSR entry) in the order an aggregation over ``tiles`` tiles
    visits them: row 0 ``tiles`` times, then row 1, ..."""
    rows = [item_values[indptr[i]:indptr[i + 1]] for i in range(len(indptr) - 1)]
    return [int(v) for r in rows for _ in range(tiles) for v in r]


def _nonzero_pairs(x: np.ndarray, node_words: np.ndarray, per_word: int) -> dict:
    """``x_nonzeros``'s words: each node's non-zero codes in input order, ``per_word`` (index,
    code) pairs a word, over ``node_words[i]`` words; unused pairs (0, 0)."""
    x = np.asarray(x).astype(np.int64)
    slots = np.zeros((int(node_words.sum()) * per_word, 2), dtype=np.int64)
    rows, cols = np.nonzero(x)  # row-major: node by node, inputs in order
    starts = np.concatenate([[0], np.cumsum(node_words)[:-1]]) * per_word
    first = np.searchsorted(rows, rows, side="left")  # each non-zero's rank within its row
    at = starts[rows] + np.arange(len(rows)) - first
    slots[at, 0], slots[at, 1] = cols, x[rows, cols]
    slots = slots.reshape(-1, per_word, 2)
    return {"index": slots[:, :, 0], "code": slots[:, :, 1]}


def _graph_words(cfg: EngineConfig, g) -> tuple:
    """What both kinds of export share: the layers' shapes and the input's width checked
    against the engine, ``depth(name, words)`` (refuses a memory too shallow), the number of
    CSR entries and the CSR's words."""
    a, n, mems = g.arrays, g.num_nodes, cfg.memories
    _fit(len(g.layers) == len(cfg.layers),
         f"the engine has {len(cfg.layers)} layers, the export {len(g.layers)}")
    for l, (L, S) in enumerate(zip(g.layers, cfg.layers), start=1):
        _fit((L["in_dim"], L["out_dim"]) == (S.in_dim, S.out_dim),
             f"layer {l} is {L['in_dim']}x{L['out_dim']} in the export, "
             f"{S.in_dim}x{S.out_dim} in the engine")
    # x holds the input's codes; a node pays man["input_bits"] planes of them, which may be
    # more than the codes need (a baseline paying a binary input at 4 bits): the planes above
    # the stored width read zeros
    _fit(input_code_bits(g) <= cfg.input_bits,
         f"memory x: the export's input codes need {input_code_bits(g)} bits, the engine "
         f"stores {cfg.input_bits}")

    def depth(name, words):
        d = mems[name].depth
        _fit(words <= d, f"memory {name} needs {words} words, the engine has {d} "
                         f"({words - d} short); raise its size (--max-nodes / --max-edges)")

    e = int(a["indptr"][-1])
    depth("indptr", n + 1)
    depth("indices", e)
    return depth, e, {
        "indptr": pack(mems["indptr"].layout, "indptr", a["indptr"], n + 1),
        "indices": pack(mems["indices"].layout, "indices", a["indices"], e),
    }


def memory_words(cfg: EngineConfig, g: AnnotatedGraph) -> dict[str, list[int]]:
    """The init words of every loaded memory of ``cfg`` for export ``g``."""
    a, man, n, P = g.arrays, g.manifest, g.num_nodes, cfg.lanes
    mems = cfg.memories
    _fit((g.model, g.manifest["order"]) == (cfg.model, cfg.order),
         f"the engine runs {cfg.order} {cfg.model}, the export is {g.manifest['order']} "
         f"{g.model}")
    depth, e, words = _graph_words(cfg, g)
    _fit(e <= cfg.max_edges, f"memory indices needs {e} words, the engine has {cfg.max_edges} "
                             f"({e - cfg.max_edges} short); raise --max-edges")
    tx = cfg.tiles(cfg.layers[0].in_dim)
    for name, stride in (("x", tx), ("h", cfg.h_stride), ("op", cfg.op_stride),
                         ("logits", cfg.tiles(cfg.layers[-1].out_dim))):
        if name in mems:
            depth(name, n * stride)
    if cfg.sparse_input:
        node_words = input_words(a["x"], cfg.nonzeros_per_word)
        depth("x_nonzeros", int(node_words.sum()))
        words["x_nonzeros"] = pack(mems["x_nonzeros"].layout, "x_nonzeros",
                                   _nonzero_pairs(a["x"], node_words, cfg.nonzeros_per_word),
                                   int(node_words.sum()))
    else:
        words["x"] = pack(mems["x"].layout, "x", _tiled(a["x"].astype(np.int64), P, tx), n * tx)
    if cfg.combine_first:
        words["norm"] = pack(mems["norm"].layout, "norm", a["gcn_norm"], n)
    in_m = np.full(n, 1 << FRAC, dtype=np.int64)  # the golden model's layer-1 input scale
    in_sh = np.full(n, FRAC, dtype=np.int64)
    columns = {}  # (layer, kind) -> per-column arrays
    for l, L in enumerate(g.layers, start=1):
        p, last = f"layer{l}.", l == len(g.layers)
        nxt = g.layers[l] if not last else None
        zeros = np.zeros(n, dtype=np.int64)
        if cfg.combine_first:
            if L["per_node_input"]:
                in_m, in_sh = a[p + "node_scale_m"], a[p + "node_scale_sh"]
            bits = (a[p + "node_bits"].astype(np.int64) if l > 1
                    else np.full(n, man["input_bits"], dtype=np.int64))
            op_m, op_sh, op_bits, coef = gcn_operand(g, l, in_m, in_sh)
            node = {"bits": bits, "comb_m": op_m, "comb_sh": op_sh + L["xw_scale_sh"],
                    "op_bits": op_bits, "coef": coef,
                    "next_bits": zeros, "next_m": zeros, "next_sh": zeros}
            # the aggregation's items in the order it visits them: each tile the row again
            depth(f"layer{l}_items", cfg.tiles(L["out_dim"]) * e)
            words[f"layer{l}_items"] = _visit_order(a["indptr"], op_bits[a["indices"]] - 1,
                                                    cfg.tiles(L["out_dim"]))
            if l == 1 and cfg.sparse_input:
                node["words"] = node_words
            if not last:
                q = f"layer{l + 1}."
                node.update(next_bits=a[q + "node_bits"].astype(np.int64),
                            next_m=a[q + "node_inv_m"],
                            next_sh=FRAC + L["out_scale_sh"] + a[q + "node_inv_sh"])
            columns[l, "comb"] = {"m": a[p + "xw_scale_m"]}
            columns[l, "agg"] = {"m": a[p + "out_scale_m"], "bias": a[p + "bias_fx"]}
            op_bits, next_op, coef = L["operand_bits"], 0, 0
        else:
            node = {"bits": a[p + "node_bits"].astype(np.int64), "agg_m": a[p + "node_inv_m"],
                    "agg_sh": FRAC + L["op_scale_sh"] + a[p + "node_inv_sh"],
                    "scale_m": a[p + "node_scale_m"], "scale_sh": a[p + "node_scale_sh"],
                    "out_sh": a[p + "node_scale_sh"] + L["out_scale_sh"]}
            columns[l, "comb"] = {"m": a[p + "out_scale_m"], "bias": a[p + "bias_fx"]}
            columns[l, "agg"] = {"m": a[p + "op_scale_m"]}
            op_bits = L["operand_bits"] or man["input_bits"]
            next_op, coef = (nxt["operand_bits"] if nxt else 0), L["eps_fx"]
        _fit(int(np.max(node["bits"], initial=1)) <= cfg.max_bits,
             f"memory layer{l}_node: a node has {int(node['bits'].max())} bits, the engine "
             f"holds {cfg.max_bits}")
        _fit(max(op_bits, next_op) <= cfg.max_bits,
             f"memory op: layer {l}'s operand has {max(op_bits, next_op)} bits, the engine "
             f"holds {cfg.max_bits}")
        tin, tout = cfg.tiles(L["in_dim"]), cfg.tiles(L["out_dim"])
        w = np.zeros((tin * P, tout * P), dtype=np.int64)
        w[:L["in_dim"], :L["out_dim"]] = a[p + "weight"]
        name = f"layer{l}_"
        words[name + "node"] = pack(mems[name + "node"].layout, name + "node", node, n)
        if l == 1 and cfg.sparse_input:
            # row [t * in_dim + f][c]: input f's weight for column c of tile t (row_layout)
            rows = w[:L["in_dim"]].reshape(L["in_dim"], tout, P).transpose(1, 0, 2)
            rows = rows.reshape(tout * L["in_dim"], P)
            for j in range(cfg.nonzeros_per_word):
                words[f"layer1_rows_{j}"] = pack(mems[f"layer1_rows_{j}"].layout,
                                                 f"layer1_rows_{j}", rows, len(rows))
        else:
            # block [q * tout + t][c][k]: column c of tile t, input k of chunk q (weight_layout)
            blocks = w.reshape(tin, P, tout, P).transpose(0, 2, 3, 1).reshape(tin * tout, P, P)
            words[name + "weight"] = pack(mems[name + "weight"].layout, name + "weight",
                                          blocks, tin * tout)
        words[name + "scalars"] = pack(
            mems[name + "scalars"].layout, name + "scalars",
            {"op_bits": [op_bits, 0], "next_op_bits": [next_op, 0], "self_coef": [coef, 0]}, 2)
    # each phase's tiles of column constants, in the order the phases run
    blocks = [_columns(columns[l, kind], P, cfg.tiles(width))
              for l, kind, width in cfg.phase_widths()]
    cols = {key: np.concatenate([b.get(key, np.zeros_like(b["m"])) for b in blocks])
            for key in ("m", "bias")}
    words["cols"] = pack(mems["cols"].layout, "cols", cols, len(cols["m"]))
    return words


def write_init_files(cfg: EngineConfig, words: dict[str, list[int]], folder: Path) -> list[Path]:
    """For each loaded memory, ``<memory>.hex`` (its whole words) and ``<memory>.<k>.hex`` for
    each width slice ``k`` of :func:`~a2q.hw.primitives.block_ram.slice_bits` (that slice's bits of each
    word: what the Verilog's RAM instances read); ``$readmemh`` format, one word a line."""
    folder = Path(folder)
    out = []
    for name, spec in cfg.memories.items():
        if not spec.loaded:
            continue
        pieces = [(f"{name}.hex", 0, spec.width)] + [  # the whole words, then each slice's
            (slice_file(f"{name}.hex", k), lo, w)
            for k, (lo, w) in enumerate(slice_bits(spec.width, spec.depth))]
        for file, lo, w in pieces:
            digits = max(1, -(-w // 4))
            path = folder / file
            tmp = path.with_suffix(".hex.tmp")
            with open(tmp, "w") as f:
                f.write("".join(f"{(v >> lo) & ((1 << w) - 1):0{digits}x}\n"
                                for v in words.get(name, [0])))
            os.replace(tmp, path)
            out.append(path)
    return out


def graph_engine_config(g: GraphBatchExport, *, lanes: int = DEFAULT_LANES,
                        max_nodes: int | None = None, max_edges: int | None = None,
                        max_graphs: int | None = None, input_bits: int | None = None,
                        requant_lanes: int = 0) -> EngineConfig:
    """The engine for a graph-level export's GIN: its pool as large as the largest layer's,
    its memories as deep as the batch needs and its input as wide unless given."""
    if not isinstance(lanes, int) or isinstance(lanes, bool) or not 1 <= lanes <= 64:
        raise EngineFitError(f"lanes must be an integer 1..64, got {lanes!r}")
    man = g.manifest
    pool = max(L["pool_size"] for L in g.layers)
    _fit(pool <= MAX_POOL, f"the export's pool has {pool} entries, the engine at most "
                           f"{MAX_POOL}")
    return EngineConfig(
        model="gin", order="aggregate-first", lanes=lanes, requant_lanes=requant_lanes,
        layers=tuple(LayerShape(L["in_dim"], L["out_dim"], L["weight_bits"]) for L in g.layers),
        input_bits=(max(man["input_bits"], input_code_bits(g)) if input_bits is None
                    else input_bits),
        max_nodes=max(g.num_nodes, 2) if max_nodes is None else max_nodes,
        max_edges=max(man["num_edges"], 1) if max_edges is None else max_edges,
        pool_size=pool, max_graphs=g.num_graphs if max_graphs is None else max_graphs,
        classes=man["num_classes"],
        readout_weight_bits=max(R["weight_bits"] for R in man["readout"]))


def graph_memory_words(cfg: EngineConfig, g: GraphBatchExport) -> dict[str, list[int]]:
    """The init words of every loaded memory of a graph-level ``cfg`` for export ``g``: the
    graphs' CSR and input, and per layer the weights, the pool (each entry's threshold and
    the node fields a node taking it gets) and the column constants of its three phases."""
    a, man, n, P = g.arrays, g.manifest, g.num_nodes, cfg.lanes
    mems = cfg.memories
    _fit(cfg.graph_level, "the engine runs node-level models; the export is graph-level")
    for l, L in enumerate(g.layers, start=1):
        _fit(L["pool_size"] <= cfg.pool_size,
             f"memory layer{l}_pool: the export's pool has {L['pool_size']} entries, the "
             f"engine {cfg.pool_size}")
    depth, e, words = _graph_words(cfg, g)
    tx = cfg.tiles(cfg.layers[0].in_dim)
    for name, stride in (("x", tx), ("h", cfg.h_stride), ("op", cfg.op_stride),
                         ("sums", cfg.sums_stride)):
        depth(name, n * stride)
    words["x"] = pack(mems["x"].layout, "x", _tiled(a["x"].astype(np.int64), P, tx), n * tx)
    columns = {}
    for l, L in enumerate(g.layers, start=1):
        p, name, m = f"layer{l}.", f"layer{l}_", cfg.pool_size
        bits = a[p + "pool_bits"].astype(np.int64)
        _fit(int(bits.max()) <= cfg.max_bits,
             f"memory {name}pool: an entry has {int(bits.max())} bits, the engine holds "
             f"{cfg.max_bits}")
        # a threshold at or past the largest value the selection compares is never exceeded
        # (the golden model bounds V below 2^SELECTION_BITS), nor is the padding's
        top = (1 << SELECTION_BITS) - 1
        threshold = np.full(m, top, dtype=np.int64)
        threshold[:L["pool_size"] - 1] = np.minimum(a[p + "pool_threshold"], top)

        def entries(v):
            out = np.zeros(m, dtype=np.int64)
            out[:L["pool_size"]] = v
            return out

        fields = {"bits": entries(bits), "agg_m": entries(a[p + "pool_inv_m"]),
                  "agg_sh": entries(a[p + "pool_inv_sh"]),
                  "scale_m": entries(a[p + "pool_scale_m"]),
                  "scale_sh": entries(a[p + "pool_scale_sh"]),
                  "out_sh": entries(a[p + "pool_scale_sh"])}
        words[name + "pool"] = pack(mems[name + "pool"].layout, name + "pool",
                                    {"threshold": threshold, "fields": fields}, m)
        columns[l, "agg"] = {"m": a[p + "op_scale_m"]}
        columns[l, "quant"] = {"m": np.ones(L["in_dim"], dtype=np.int64)}
        columns[l, "comb"] = {"m": a[p + "out_scale_m"], "bias": a[p + "bias_fx"],
                              "sh": a[p + "out_scale_sh"]}
        op_bits = L["operand_bits"] or man["input_bits"]
        _fit(max(op_bits, L["output_bits"]) <= cfg.max_bits,
             f"memory op: layer {l}'s codes have {max(op_bits, L['output_bits'])} bits, the "
             f"engine holds {cfg.max_bits}")
        tin, tout = cfg.tiles(L["in_dim"]), cfg.tiles(L["out_dim"])
        w = np.zeros((tin * P, tout * P), dtype=np.int64)
        w[:L["in_dim"], :L["out_dim"]] = a[p + "weight"]
        blocks = w.reshape(tin, P, tout, P).transpose(0, 2, 3, 1).reshape(tin * tout, P, P)
        words[name + "weight"] = pack(mems[name + "weight"].layout, name + "weight", blocks,
                                      tin * tout)
        words[name + "scalars"] = pack(
            mems[name + "scalars"].layout, name + "scalars",
            {"op_bits": [op_bits, 0], "next_op_bits": [L["output_bits"], 0],
             "self_coef": [L["eps_fx"], 0]}, 2)
    blocks = [_columns(columns[l, kind], P, cfg.tiles(width))
              for l, kind, width in cfg.phase_widths()]
    cols = {key: np.concatenate([b.get(key, np.zeros_like(b["m"])) for b in blocks])
            for key in ("m", "bias", "sh")}
    # the readout: the graphs' boundaries, each head's constants, the biases summed
    _fit(man["num_classes"] == cfg.classes,
         f"the engine scores {cfg.classes} classes, the export {man['num_classes']}")
    depth("graph_ptr", g.num_graphs + 1)
    depth("logits", g.num_graphs)
    words["graph_ptr"] = pack(mems["graph_ptr"].layout, "graph_ptr", a["graph_ptr"],
                              g.num_graphs + 1)
    words["readout_bias"] = pack(mems["readout_bias"].layout, "readout_bias",
                                 np.stack([a["readout.bias_fx"]] * 2), 2)
    for h in range(len(g.layers) + 1):
        p, name = f"readout{h}.", f"readout{h}"
        rows = mems[name].depth
        f, c = (np.minimum(np.arange(rows), n - 1) for n in (a[p + "weight"].shape))
        words[name] = pack(mems[name].layout, name, {
            "in_scale_m": a[p + "in_scale_m"][f], "weights": a[p + "weight"][f],
            "scale_m": a[p + "scale_m"][c], "scale_sh": a[p + "scale_sh"][c]}, rows)
    words["cols"] = pack(mems["cols"].layout, "cols", cols, len(cols["m"]))
    return words
