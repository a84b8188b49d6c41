"""``a2q rtl`` and ``a2q sim``: files written, results and cycles, one-line errors."""

import json

import numpy as np
import pytest

from a2q.app.cli import main


def test_rtl_writes_verilog_filelist_params_and_lints(tmp_path):
    out = tmp_path / "rtl"
    assert main(["rtl", "aggregation", "--lanes", "4", "--columns", "8", "--max-nodes", "64",
                 "--max-edges", "256", "--signed", "--out", str(out)]) == 0
    info = json.loads((out / "params.json").read_text())
    assert info["parameters"]["lanes"] == 4 and info["parameters"]["signed_input"] is True
    assert (out / "filelist.f").read_text().strip() == "bit_serial_aggregation.v"
    assert "module bit_serial_aggregation" in (out / "bit_serial_aggregation.v").read_text()


def test_rtl_refuses_bad_parameters(tmp_path, capsys):
    assert main(["rtl", "combination", "--lanes", "0", "--out", str(tmp_path / "r")]) == 1
    assert "--lanes must be an integer in 1..64, got 0" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@pytest.fixture
def arrays(tmp_path):
    rng = np.random.default_rng(2)
    bits = rng.integers(1, 9, 30)
    x = np.array([rng.integers(-(1 << (b - 1)), 1 << (b - 1), 5) for b in bits])
    deg = rng.integers(0, 5, 30)
    files = {"x": x, "bits": bits, "w": rng.integers(-8, 8, (5, 7)),
             "indptr": np.concatenate([[0], np.cumsum(deg)]),
             "indices": rng.integers(0, 30, deg.sum()), "xf": x.astype(float),
             "big": x * 300, "far": np.full(deg.sum(), 30)}
    for k, v in files.items():
        np.save(tmp_path / f"{k}.npy", v)
    return tmp_path, files


def test_sim_combination_and_aggregation_on_icarus(arrays):
    d, a = arrays
    b = ["--build-dir", str(d / "build"), "--simulator", "icarus", "--signed"]
    assert main(["sim", "combination", "--x", str(d / "x.npy"), "--bits", str(d / "bits.npy"),
                 "--w", str(d / "w.npy"), "--lanes", "3", "--out", str(d / "Y.npy")] + b) == 0
    assert np.array_equal(np.load(d / "Y.npy"), a["x"] @ a["w"])
    rep = json.loads((d / "Y.json").read_text())
    assert rep["cycles_measured"] == rep["cycles_predicted"] and rep["matches_numpy"]
    assert main(["sim", "aggregation", "--indptr", str(d / "indptr.npy"), "--indices",
                 str(d / "indices.npy"), "--x", str(d / "x.npy"), "--bits", str(d / "bits.npy"),
                 "--out", str(d / "A.npy")] + b) == 0
    ip, ix = a["indptr"], a["indices"]
    want = np.stack([a["x"][ix[ip[i]:ip[i + 1]]].sum(0) for i in range(30)])
    assert np.array_equal(np.load(d / "A.npy"), want)


@pytest.mark.parametrize("swap, message", [
    ({"--x": "xf"}, "x has dtype float64, expected integers"),
    ({"--x": "big"}, "does not fit node"),
    ({"--bits": "indptr"}, "bits has 31 entries, x has 30 rows"),
    ({"--simulator": "ghdl"}, "unknown simulator 'ghdl'"),
    ({"--indices": "indptr"}, "indptr must start at 0"),
    ({"--indices": "far"}, "indices out of range 0..29"),
])
def test_sim_bad_input_is_one_clear_line(arrays, capsys, swap, message):
    d, _ = arrays
    args = {"--indptr": "indptr", "--indices": "indices", "--x": "x", "--bits": "bits"} | swap
    argv = ["sim", "aggregation", "--signed", "--out", str(d / "bad.npy")]
    for k, v in args.items():
        argv += [k, v if k == "--simulator" else str(d / f"{v}.npy")]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not list(d.glob("bad*"))


def test_rtl_units_take_the_default_lanes(tmp_path):
    for unit in ("combination", "aggregation"):
        assert main(["rtl", unit, "--no-lint", "--out", str(tmp_path / unit)]) == 0
        assert json.loads((tmp_path / unit / "params.json").read_text())["parameters"][
            "lanes"] == 16
