"""The bitwidth-annotated graph and the golden model: exactness, validation, determinism."""

import hashlib
import io
import json
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from a2q.common.files import STAMP
from a2q.sim import golden
from a2q.sim.annotated_graph import GraphFormatError, read_graph, seal, write_graph
from a2q.sim.cycles import cycle_report, engine_cycles, per_node_cycles
from a2q.sim.fixed_point import fixed, rshift_round

from .sim_exports import random_export

# ------------------------------------------------------------------- fixed-point primitives


@given(st.integers(-(1 << 50), 1 << 50), st.integers(0, 40))
def test_rshift_round_is_exact_round_half_away(t, s):
    q = Fraction(t, 1 << s)
    mag = int(abs(q) + Fraction(1, 2))  # floor(|q| + 1/2)
    assert int(rshift_round(t, s)) == (mag if q >= 0 else -mag)


@given(st.floats(1e-9, 3e4, allow_nan=False))
def test_fixed_mantissa_and_error(x):
    m, sh = fixed(x)
    assert (1 << 15) <= int(m) <= (1 << 16) and 0 <= int(sh) <= 62
    assert abs(int(m) / 2 ** int(sh) - x) <= x * 2 ** -15.9


def test_neighbour_sum_against_loop():
    rng = np.random.default_rng(1)
    indptr = np.array([0, 0, 3, 4, 4, 7])
    indices = rng.integers(0, 5, 7)
    v = rng.integers(-9, 9, (5, 3))
    out = golden.neighbour_sum(indptr, indices, v)
    for i in range(5):
        assert out[i].tolist() == v[indices[indptr[i]:indptr[i + 1]]].sum(0).tolist()


def test_cycle_model_by_hand():
    rng = np.random.default_rng(0)
    man, arr = random_export(rng, "gcn", n=3, f0=4, hidden=5, classes=2)
    arr["indptr"] = np.array([0, 1, 3, 6])
    arr["indices"] = np.array([0, 0, 1, 0, 1, 2])
    man["num_edges"] = 6
    arr["layer2.node_bits"] = np.array([1, 2, 8], dtype=np.uint8)
    man["layers"][1]["operand_bits"] = 4
    g = _roundtrip(man, arr)
    c = per_node_cycles(g, lanes=2)
    # layer 2 combination: B_i * ceil(5 inputs / 2 lanes) chunks * ceil(2 classes / 2 lanes);
    # aggregation: deg * 4 bits * 1 tile
    assert c["layer2.combination"].tolist() == [3, 6, 24]
    assert c["layer2.aggregation"].tolist() == [4, 8, 12]
    # layer 1: input of input_bits, 4 inputs = 2 chunks, 5 outputs over 2 lanes = 3 tiles
    ib = man["input_bits"]
    assert c["layer1.combination"].tolist() == [2 * 3 * ib] * 3
    r = cycle_report(g, lanes=2)
    assert r["totals"]["uniform4"]["layer2.combination"] == 3 * 4 * 3
    e = engine_cycles(g, lanes=2)
    assert list(e) == ["layer1.combination", "layer1.aggregation", "layer2.combination",
                       "layer2.aggregation", "total"]
    # the walker's work plus the pipeline, 27 and 30 cycles when the requantization took a
    # result in one cycle and wrote it 17 cycles (its stages) after it was presented
    # (combination: launch; node 0's bits; the words read; gated weights, two tree stages,
    # shift, accumulate; presented; 17 stages; busy seen low; aggregation: launch, indptr[0]
    # and [1], the indices word, the item's node and address registered, operand read, bit,
    # term, accumulate, presented, 17 stages, busy seen low). Now a result is held, enters in
    # 2 groups (2 lanes, 1 a cycle by default) and is written after its word is assembled:
    # 2 + 17 + 1 cycles after it was presented, 3 more; and the three multiplications take
    # two stages each (the DSPs' input and output registers), 3 more. A read
    # takes 5 cycles, not 2 (two address registers and a second data register), words read in
    # order reach the walker a cycle after they arrive, and the write is registered: the
    # combination 4 more for node 0's bits, 3 for the words read and 1 for the write; the
    # aggregation 4 for indptr[0] and [1], 3 for the indices word, 3 for the operand and 1 for
    # the write.
    assert e["layer2.combination"] == 3 + 6 + 24 + 27 + 3 + 3 + 8
    assert e["layer2.aggregation"] == 24 + 30 + 3 + 3 + 11


def test_cycle_model_waits_for_the_requantization():
    """A (node, tile) of fewer cycles than the requantization takes over it costs those."""
    man, arr = random_export(np.random.default_rng(0), "gcn", n=3, f0=4, hidden=2, classes=2)
    arr["indptr"] = np.array([0, 0, 2, 5])  # node 0's row is empty
    arr["indices"] = np.array([0, 1, 0, 1, 2])
    man["num_edges"] = 5
    arr["layer2.node_bits"] = np.array([1, 2, 8], dtype=np.uint8)
    man["layers"][1]["operand_bits"] = 4
    g = _roundtrip(man, arr)
    # 2 lanes, 1 requantized a cycle: every phase's tile of 2 columns takes 2 cycles there.
    # Layer 2's combination: B_i planes of 1 chunk; its aggregation: 4 bits per item, the empty
    # row one cycle; each at least 2.
    c = per_node_cycles(g, lanes=2, requant_lanes=1)
    assert c["layer2.combination"].tolist() == [2, 2, 8]
    assert c["layer2.aggregation"].tolist() == [2, 8, 12]
    c = per_node_cycles(g, lanes=2, requant_lanes=2)  # one cycle: nothing waits
    assert c["layer2.combination"].tolist() == [1, 2, 8]
    assert c["layer2.aggregation"].tolist() == [1, 8, 12]
    assert engine_cycles(g, lanes=2) == engine_cycles(g, lanes=2, requant_lanes=1)  # default
    e = engine_cycles(g, lanes=2, requant_lanes=1)
    assert e["layer2.combination"] == 12 + 39 + 2 and e["layer2.aggregation"] == 22 + 45 + 2


# ----------------------------------------------------------------------- round trip, errors


def _roundtrip(man, arr, tmp=None):
    import tempfile
    from pathlib import Path

    d = Path(tmp or tempfile.mkdtemp()) / "g"
    write_graph(d, man, arr)
    return read_graph(d)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2 ** 32 - 1), st.sampled_from(["gcn", "gin"]))
def test_random_valid_exports_round_trip_exactly(seed, model):
    man, arr = random_export(np.random.default_rng(seed), model)
    g = _roundtrip(man, arr)
    assert set(g.arrays) == set(arr)
    for k, v in arr.items():
        assert g[k].dtype == np.asarray(v).dtype and np.array_equal(g[k], v), k
    res = golden.run(g)  # and the golden model runs on any valid export
    assert res.predictions.shape == (man["num_nodes"],)
    assert np.all((res.predictions >= 0) & (res.predictions < man["num_classes"]))


def _rewrite(folder, name, arr):
    """Replace an array and fix its manifest entry (so only the value check can catch it)."""
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=arr.dtype == object)
    data = buf.getvalue()
    (folder / f"{name}.npy").write_bytes(data)
    m = json.loads((folder / "manifest.json").read_text())
    m["tensors"][name].update(dtype=str(arr.dtype), shape=list(arr.shape),
                              sha256=hashlib.sha256(data).hexdigest())
    (folder / "manifest.json").write_text(json.dumps(seal(m)))


def _edit_manifest(folder, fn, reseal=True):
    m = json.loads((folder / "manifest.json").read_text())
    fn(m)
    (folder / "manifest.json").write_text(json.dumps(seal(m) if reseal else m))


CORRUPTIONS = {
    "missing file": (lambda d, a: (d / "indices.npy").unlink(), "indices.npy", "missing"),
    "sha256 mismatch": (lambda d, a: (d / "labels.npy").write_bytes(
        (d / "labels.npy").read_bytes()[:-1] + b"\x01"), "labels.npy", "sha256"),
    "wrong dtype": (lambda d, a: _rewrite(d, "indptr", a["indptr"].astype(np.int32)),
                    "indptr", "dtype"),
    "wrong shape": (lambda d, a: _rewrite(d, "labels", a["labels"][:-1]), "labels", "shape"),
    "bits above 8": (lambda d, a: _rewrite(d, "layer2.node_bits", np.full_like(
        a["layer2.node_bits"], 9)), "layer2.node_bits", "1..8"),
    "bits zero": (lambda d, a: _rewrite(d, "layer2.node_bits", np.zeros_like(
        a["layer2.node_bits"])), "layer2.node_bits", "1..8"),
    "index out of range": (lambda d, a: _rewrite(d, "indices", np.where(
        np.arange(a["indices"].size) == 0, 10 ** 6, a["indices"])), "indices", "out of range"),
    "indptr not monotone": (lambda d, a: _rewrite(d, "indptr", _nonmonotone(a["indptr"])),
                            "indptr", "monotone"),
    "NaN step": (lambda d, a: _rewrite(d, "layer2.node_step", np.where(
        np.arange(a["layer2.node_step"].size) == 0, np.nan, a["layer2.node_step"])),
        "layer2.node_step", "NaN"),
    "negative step": (lambda d, a: _rewrite(d, "layer1.weight_step", -a["layer1.weight_step"]),
                      "layer1.weight_step", "positive"),
    "edited manifest": (lambda d, a: _edit_manifest(d, lambda m: m["layers"][0].update(
        xw_scale_sh=m["layers"][0]["xw_scale_sh"] + 1), reseal=False), "manifest.json",
        "manifest_sha256"),
    "unknown version": (lambda d, a: _edit_manifest(d, lambda m: m.update(version=99)),
                        "manifest.json", "version"),
    "absolute file name": (lambda d, a: _edit_manifest(d, lambda m: m["tensors"]["x"].update(
        file="/etc/passwd")), "manifest.json", "leaves the export folder"),
    "parent file name": (lambda d, a: _edit_manifest(d, lambda m: m["tensors"]["x"].update(
        file="../x.npy")), "manifest.json", "leaves the export folder"),
    "link out of the folder": (lambda d, a: _link_out(d, "labels"), "manifest.json",
                               "leaves the export folder"),
    "pickled array": (lambda d, a: _rewrite(d, "labels", np.array([{"x": 1}] * a["labels"].size,
                                                                  dtype=object)),
                      "labels", ""),
    "per-node mantissa not normalized": (lambda d, a: _rewrite(d, "layer2.node_scale_m", np.full_like(
        a["layer2.node_scale_m"], (1 << 15) - 1)), "layer2.node_scale_m", "2**15"),
    "weight out of range": (lambda d, a: _rewrite(d, "layer1.weight", np.full_like(
        a["layer1.weight"], -128)), "layer1.weight", "signed"),
}


def _link_out(folder, name):
    outside = folder.parent / f"outside-{name}.npy"
    (folder / f"{name}.npy").rename(outside)
    (folder / f"{name}.npy").symlink_to(outside)


def _nonmonotone(indptr):
    out = indptr.copy()
    if out.size > 2:
        out[1] = out[-1] + 5  # a rise then a fall
    else:
        out[0] = 1
    return out


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_reader_rejects_each_corruption_naming_file_and_field(tmp_path, case):
    man, arr = random_export(np.random.default_rng(7), "gcn", n=12, f0=5, hidden=4, classes=3)
    d = tmp_path / "g"
    write_graph(d, man, arr)
    corrupt, where, what = CORRUPTIONS[case]
    corrupt(d, arr)
    with pytest.raises(GraphFormatError) as e:
        read_graph(d)
    msg = str(e.value)
    assert where in msg and what in msg and "field" in msg, msg
    assert "\n" not in msg
    # the CLI: one line, non-zero exit, no traceback
    p = subprocess.run([sys.executable, "-m", "a2q.app.cli", "golden", str(d), "--out",
                        str(tmp_path / "out")], capture_output=True, text=True)
    assert p.returncode != 0 and "Traceback" not in p.stderr
    assert p.stderr.strip().count("\n") == 0 and "a2q: error" in p.stderr
    assert not (tmp_path / "out").exists()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(st.integers(0, 2 ** 32 - 1), st.data())
def test_random_byte_corruptions_are_rejected(tmp_path_factory, seed, data):
    man, arr = random_export(np.random.default_rng(seed), data.draw(st.sampled_from(["gcn", "gin"])))
    d = tmp_path_factory.mktemp("c") / "g"
    write_graph(d, man, arr)
    files = sorted(p.name for p in d.iterdir() if p.name != STAMP)  # the stamp is not read
    name = data.draw(st.sampled_from(files))
    raw = bytearray((d / name).read_bytes())
    pos = data.draw(st.integers(0, len(raw) - 1))
    raw[pos] ^= data.draw(st.integers(1, 255))
    (d / name).write_bytes(bytes(raw))
    try:
        g = read_graph(d)
    except GraphFormatError:
        return
    # a flipped byte the reader accepts can only be JSON layout (whitespace) of the manifest:
    # every field and every array is what was written
    assert name == "manifest.json"
    for k, v in arr.items():
        assert np.array_equal(g[k], v)
    assert all(g.manifest[k] == v for k, v in man.items())


def test_sim_never_imports_torch():
    code = ("import sys, a2q.sim.golden, a2q.sim.annotated_graph, a2q.sim.cycles, "
            "a2q.sim.golden_run, a2q.sim.fixed_point; assert 'torch' not in sys.modules")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_overflowing_datapath_is_refused():
    """A star of 300 nodes with 8-bit inputs: GIN's aggregate times two 16-bit constants
    would pass 2**62; the golden model refuses instead of wrapping around."""
    n = 300
    man, arr = random_export(np.random.default_rng(3), "gin", n=n, f0=3, hidden=2, classes=2)
    arr["indptr"] = np.concatenate([[0], np.full(n, n - 1)]).astype(np.int64)
    arr["indices"] = np.arange(1, n, dtype=np.int64)
    man["num_edges"] = n - 1
    arr["x"] = np.full_like(arr["x"], 255)
    man["input_bits"] = 8
    arr["layer1.node_inv_m"] = np.full_like(arr["layer1.node_inv_m"], 1 << 16)
    arr["layer1.op_scale_m"] = np.full_like(arr["layer1.op_scale_m"], 1 << 16)
    g = _roundtrip(man, arr)
    with pytest.raises(GraphFormatError, match="layer 1.s requantization .* beyond the integer datapath"):
        golden.run(g)


@pytest.mark.parametrize("model, order", [("gcn", None), ("gin", "combine-first")])
def test_an_operand_step_too_small_for_fixed_point_is_raised_to_the_smallest_it_holds(
        model, order, tmp_path):
    """A node whose XW is 0 (a featureless input row) can learn a step so small that
    in_step / t is past 2^15, more so once a uniform re-export at 8 bits divides it by 127:
    the step is raised to in_step / (2^15 - 1), the export and every re-export stay valid,
    and the node's operand codes are unchanged (0)."""
    from a2q.sim.export_constants import derive_constants
    from a2q.sim.uniform_export import uniform_variant

    man, arr = random_export(np.random.default_rng(8), model, n=10, f0=6, hidden=4, classes=3,
                             node_operand=True, order=order)
    arr["x"][0] = 0
    arr["layer1.node_op_step"][0] = 1e-9
    derive_constants(model, man["order"], man["layers"], arr)
    assert arr["layer1.node_op_step"][0] == 1 / (2.0 ** 15 - 1)
    g = read_graph(write_graph(tmp_path / "g", man, arr))
    assert golden.run(g).layer_outputs["layer1.operand"][0].tolist() == [0] * 4
    for bits in (2, 8):
        v = uniform_variant(g, bits)
        assert v["layer1.node_op_step"][0] == 1 / (2.0 ** 15 - 1)
        assert golden.run(v).layer_outputs["layer1.operand"][0].tolist() == [0] * 4
