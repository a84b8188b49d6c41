"""``a2q synth``: a small engine through Yosys and nextpnr (ECP5), its report, failures."""

import hashlib
import json

import numpy as np
import pytest
from amaranth import Module, Mux, Signal
from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from a2q.app.cli import main
from a2q.hw.engine.layer_engine import CORE_MODULE, LayerEngine
from a2q.hw.fpga.synthesis import (
    SynthesisError,
    fit_limits,
    fit_utilization,
    late_endpoints,
    placement_limit,
    pnr_settings,
    synthesize,
    verdict,
)
from a2q.hw.rtl import write_engine_rtl
from a2q.sim.engine_image import engine_config, memory_words, write_init_files

from .engine_cases import in_memory
from .sim_exports import random_export


@pytest.fixture(scope="module")
def rtl(tmp_path_factory):
    g = in_memory(*random_export(np.random.default_rng(3), "gcn", n=6, f0=3, hidden=2,
                                 classes=2))
    cfg = engine_config(g, lanes=1, nonzeros_per_word=0)  # dense x: over 1000 LUTs and FFs
    folder = tmp_path_factory.mktemp("rtl")
    write_engine_rtl(LayerEngine(cfg, ram_template=True), folder,
                     init_files=lambda f: write_init_files(cfg, memory_words(cfg, g), f))
    return folder


@pytest.mark.regress  # 73 s: a place and route of a real engine, beside the options' own
def test_small_engine_synthesizes_and_places_on_ecp5(rtl, tmp_path):
    out = tmp_path / "synth"
    r = synthesize(rtl, "ecp5", out, device="25k", package="CABGA256", freq_mhz=25)
    assert r == json.loads((out / "report.json").read_text())
    assert r["top"] == CORE_MODULE  # the engine without its off-chip memories
    assert r["luts"] == r["cells"]["LUT4"] > 0 and r["ffs"] == r["cells"]["TRELLIS_FF"] > 0
    assert r["dsps"] == r["cells"].get("MULT18X18D", 0)
    # every multiplier of the template is one DSP holding its input and output registers
    text = (rtl / "layer_engine.v").read_text()
    assert r["dsps"] == text.count("\n  a2q_mul ") > 0
    cells = next(iter(json.loads((out / "netlist.json").read_text())["modules"].values()))
    for cell in cells["cells"].values():
        if cell["type"] == "MULT18X18D":
            assert {cell["parameters"][f"REG_{reg}_CLK"] for reg in (
                "INPUTA", "INPUTB", "OUTPUT")} == {"CLK0"}, cell["parameters"]
    assert r["fmax_mhz"] > 0 and r["timing_met"] == (r["fmax_mhz"] >= 25)
    assert r["routed"] is True and r["fmax_placed_mhz"] > 0  # the estimate before routing
    # a2q synth's ECP5 defaults: the static placer, router2 and its timing-driven rip-up
    assert (r["placer"], r["router"], r["timing_ripup"]) == ("static", "router2", True)
    args = r["nextpnr_args"]
    assert args[args.index("--placer") + 1] == "static"
    assert args[args.index("--router") + 1] == "router2" and "--tmg-ripup" in args
    log = (out / "nextpnr.log").read_text()
    assert "Running Static placer" in log and "Running router2" in log
    assert "tmgfail=" in log  # router2 counts the arcs failing timing only with the rip-up
    assert r["placement_density"] is None and "--placer-heap-beta" not in args
    assert r["pnr_seed"] is None and "--seed" not in r["nextpnr_args"]  # nextpnr's own
    sha = hashlib.sha256((rtl / "layer_engine.v").read_bytes()).hexdigest()
    assert r["verilog_sha256"] == sha  # the Verilog it read
    assert r["fits"] is True and r["limits"] == [] and "25k" in r["verdict"]
    cp = r["critical_path"]  # the slowest path, step by step, adds up to its delay
    assert cp["steps"][0]["type"] == "clk-to-q" and cp["steps"][-1]["type"] == "setup"
    assert sum(s["delay_ns"] for s in cp["steps"]) == pytest.approx(cp["delay_ns"], abs=0.01)
    assert sum(s["delay_ns"] for s in cp["steps"] if s["type"] == "routing") == pytest.approx(
        cp["routing_ns"], abs=0.01)
    comb = r["utilization"]["TRELLIS_COMB"]
    assert 0 < comb["used"] <= comb["available"] == 24288  # an LFE5U-25F
    tcl = (out / "vivado.tcl").read_text()
    assert "add_files layer_engine.v" in tcl and "add_files x.hex" in tcl
    assert "| LUTs |" in (out / "report.md").read_text()
    assert r["late_endpoints"]["period_ns"] == 40.0 and "--detailed-timing-report" in r[
        "nextpnr_args"]
    if r["timing_met"]:  # nothing arrives after the period
        assert r["late_endpoints"] == {"count": 0, "period_ns": 40.0, "by_cells": []}
    widest = r["widest_fanout"]  # the netlist's widest nets, widest first, in both reports
    assert len(widest) == 10 and widest[0]["fanout"] > 1
    assert [x["fanout"] for x in widest] == sorted((x["fanout"] for x in widest), reverse=True)
    assert {x["driver"] for x in widest} <= set(r["cells"])
    assert f"| `{widest[0]['net']}` | {widest[0]['fanout']} |" in (out / "report.md").read_text()


def test_a_failing_stage_names_itself_and_its_log(rtl, tmp_path):
    bad = tmp_path / "rtl"
    bad.mkdir()
    for f in rtl.iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    with open(bad / "layer_engine.v", "a") as f:
        f.write("module broken(;\n")
    out = tmp_path / "synth"
    with pytest.raises(SynthesisError, match=rf"yosys synthesis failed .*see {out}/yosys.log"):
        synthesize(bad, "ecp5", out)
    assert (out / "yosys.log").exists() and not (out / "report.json").exists()


class EnableGatesReset(wiring.Component):
    """A register without reset cleared only when enabled (Yosys's ``$sdffce``): the ECP5's
    flip-flops have no such reset, so Yosys's ``dfflegalize`` builds it of one and gates."""

    def __init__(self):
        super().__init__({"en": In(1), "clear": In(1), "d": In(4), "q": Out(4)})

    def elaborate(self, platform):
        m = Module()
        r = Signal(4, reset_less=True)
        with m.If(self.en):
            m.d.sync += r.eq(Mux(self.clear, 0, self.d))
        m.d.comb += self.q.eq(r)
        return m


class Accumulate(wiring.Component):
    """A ``width``-bit accumulator: a register-to-register path through a carry chain, which
    nextpnr times after placement, in a design Yosys and nextpnr take in seconds."""

    def __init__(self, width=16):
        self.width = width
        super().__init__({"d": In(width), "q": Out(width)})

    def elaborate(self, platform):
        m = Module()
        acc = Signal(self.width)
        m.d.sync += acc.eq(acc + self.d)
        m.d.comb += self.q.eq(acc)
        return m


def _rtl_folder(folder, component, name):
    (folder / f"{name}.v").write_text(verilog.convert(component, name=name))
    (folder / "filelist.f").write_text(f"{name}.v\n")
    (folder / "params.json").write_text(json.dumps({"module": name}))
    return folder


@pytest.fixture(scope="module")
def gated_rtl(tmp_path_factory):
    return _rtl_folder(tmp_path_factory.mktemp("gated"), EnableGatesReset(), "gated")


@pytest.fixture(scope="module")
def small_rtl(tmp_path_factory):
    return _rtl_folder(tmp_path_factory.mktemp("accumulate"), Accumulate(), "accumulate")


def test_flip_flops_the_ecp5_lacks_get_their_gates_mapped(gated_rtl, tmp_path):
    """The gates dfflegalize adds are mapped to LUTs (nextpnr stopped at them: "cell type
    '$_ORNOT_' is unsupported"), and the design places."""
    report = synthesize(gated_rtl, "ecp5", tmp_path / "synth", device="25k", route=False)
    assert report["placed"] and report["ffs"] == 4 and report["luts"] >= 1
    assert not [t for t in report["cells"] if t.startswith("$") and t != "$scopeinfo"]


def test_no_place_stops_after_the_fit_check(small_rtl, tmp_path, capsys):
    out = tmp_path / "synth"
    assert main(["synth", str(small_rtl), "--device", "25k", "--no-place", "--out",
                 str(out)]) == 0
    r = json.loads((out / "report.json").read_text())
    assert r["fits"] is True and r["placed"] is False and r["fmax_mhz"] is None
    assert r["carries"] > 0 and "not placed and routed" in r["verdict"]
    assert not (out / "nextpnr.log").exists()
    # the device's utilisation by the cell counts, in both reports
    use = r["fit_utilization"]
    assert use["ffs"]["used"] == r["ffs"] and use["ffs"]["available"] == 24288
    assert use["lut_slots"]["used"] == r["luts"] + 2 * r["carries"] + 6 * r["lutram"]
    md = (out / "report.md").read_text()
    assert "by Yosys's cell counts" in md and f"| ffs | {r['ffs']} | 24288 |" in md


def test_no_route_stops_after_placement_with_its_estimate(small_rtl, tmp_path):
    r = synthesize(small_rtl, "ecp5", tmp_path / "s", device="25k", freq_mhz=25, route=False)
    assert r["placed"] is True and r["routed"] is False and r["fmax_mhz"] is None
    assert r["fmax_placed_mhz"] > 0 and r["timing_met"] is False
    assert "Routing globals" not in (tmp_path / "s" / "nextpnr.log").read_text()
    assert f"estimate after placement, {r['fmax_placed_mhz']} MHz; not routed" in r["verdict"]


@pytest.mark.regress
@pytest.mark.parametrize("timing_ripup", [False, True])
def test_router2_routes_the_small_engine(rtl, tmp_path, timing_ripup):
    r = synthesize(rtl, "ecp5", tmp_path / "s", device="25k", package="CABGA256",
                   freq_mhz=25, router="router2", timing_ripup=timing_ripup)
    assert r["routed"] is True and r["router"] == "router2" and r["fmax_mhz"] > 0
    assert r["timing_ripup"] is timing_ripup
    assert ("--tmg-ripup" in r["nextpnr_args"]) is timing_ripup
    log = (tmp_path / "s" / "nextpnr.log").read_text()
    assert "Running router2" in log
    # router2 counts the arcs failing timing in each iteration only with its timing ripup
    assert ("tmgfail=" in log) is timing_ripup


@pytest.mark.parametrize("target", ["ecp5", "ice40"])
def test_timing_ripup_with_router1_is_refused_before_any_stage(rtl, tmp_path, target):
    router = "router1" if target == "ecp5" else None  # the iCE40's default router is router1
    with pytest.raises(SynthesisError, match="is router2's; the router is 'router1'"):
        synthesize(rtl, target, tmp_path / "s", router=router, timing_ripup=True)
    assert not (tmp_path / "s").exists()


def test_each_target_has_its_nextpnr_defaults_and_each_can_be_overridden():
    assert pnr_settings("ecp5") == {"placer": "static", "router": "router2",
                                    "timing_ripup": True}
    assert pnr_settings("ice40") == {"placer": "heap", "router": "router1",
                                     "timing_ripup": False}
    assert pnr_settings("ecp5", router="router1") == {"placer": "static", "router": "router1",
                                                      "timing_ripup": False}
    assert pnr_settings("ecp5", placer="heap", timing_ripup=False) == {
        "placer": "heap", "router": "router2", "timing_ripup": False}
    assert pnr_settings("ice40", router="router2")["timing_ripup"] is False


def test_placement_density_reaches_the_placer(small_rtl, tmp_path):
    r = synthesize(small_rtl, "ecp5", tmp_path / "s", device="25k", route=False,
                   placer="heap", density=0.5)
    assert r["placed"] is True and r["placement_density"] == 0.5
    args = r["nextpnr_args"]
    assert args[args.index("--placer-heap-beta") + 1] == "0.5"


@pytest.mark.regress
def test_static_placer_places_the_small_engine(rtl, tmp_path):
    r = synthesize(rtl, "ecp5", tmp_path / "s", device="25k", package="CABGA256",
                   freq_mhz=25, route=False, placer="static")
    assert r["placed"] is True and r["placer"] == "static" and r["placement_density"] is None
    args = r["nextpnr_args"]
    assert args[args.index("--placer") + 1] == "static" and "--placer-heap-beta" not in args
    assert "Running Static placer" in (tmp_path / "s" / "nextpnr.log").read_text()
    assert r["fmax_placed_mhz"] > 0


@pytest.mark.regress
def test_seed_reaches_nextpnr_and_another_seed_places_differently(rtl, tmp_path):
    placements = {}
    for seed in (1, 2, 1):
        out = tmp_path / f"s{seed}"
        assert main(["synth", str(rtl), "--device", "25k", "--package", "CABGA256", "--freq",
                     "25", "--no-route", "--seed", str(seed), "--out", str(out)]) == 0
        r = json.loads((out / "report.json").read_text())
        assert r["pnr_seed"] == seed
        assert r["nextpnr_args"][r["nextpnr_args"].index("--seed") + 1] == str(seed)
        placements.setdefault(seed, set()).add(r["fmax_placed_mhz"])
    assert len(placements[1]) == 1  # the same seed, the same placement
    assert placements[1] != placements[2]


@pytest.mark.parametrize("placer, density, message", [
    ("annealing", None, "unknown placer 'annealing'"),
    ("static", 0.6, "placement density is the heap placer's; placer 'static' has none")])
def test_a_bad_placer_is_refused_before_any_stage(rtl, tmp_path, placer, density, message):
    with pytest.raises(SynthesisError, match=message):
        synthesize(rtl, "ecp5", tmp_path / "s", placer=placer, density=density)
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("density", [0, 1.5, -0.2])
def test_placement_density_outside_0_1_is_refused_before_any_stage(rtl, tmp_path, density):
    with pytest.raises(SynthesisError, match=f"placement density {density!r}"):
        synthesize(rtl, "ecp5", tmp_path / "s", density=density)
    assert not (tmp_path / "s").exists()


def test_unknown_router_is_refused_before_any_stage(rtl, tmp_path):
    with pytest.raises(SynthesisError, match="unknown router 'router3'"):
        synthesize(rtl, "ecp5", tmp_path / "s", router="router3")
    assert not (tmp_path / "s").exists()


def test_xilinx_writes_the_vivado_project(rtl, tmp_path):
    r = synthesize(rtl, "xilinx", tmp_path / "x", device="xc7a35tcpg236-1")
    assert r["luts"] is None and "vivado.tcl" in r["note"]
    assert "-part xc7a35tcpg236-1" in (tmp_path / "x" / "vivado.tcl").read_text()


def test_synth_cli_refuses_a_folder_without_parameters(tmp_path, capsys):
    assert main(["synth", str(tmp_path), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "no params.json" in err and err.startswith("a2q: error: synth:")


@pytest.mark.parametrize("lanes, requant_lanes",
                         [(["16"], "17"), (["4", "8"], "5"), (["16"], "-1")])
def test_bench_timing_refuses_requantization_lanes_it_has_not(tmp_path, capsys, lanes,
                                                               requant_lanes):
    """Checked before the bench trains anything: one line, exit 1, no files."""
    out = tmp_path / "o"
    assert main(["bench", "timing", "--lanes", *lanes, "--requant-lanes", requant_lanes,
                 "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert "--requant-lanes" in err and len(err.splitlines()) == 1, err
    assert not out.exists()


def test_bench_timing_refuses_timing_ripup_with_router1(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["bench", "timing", "--router", "router1", "--tmg-ripup", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert "rip-up" in err and "is router2's; the router is 'router1'" in err
    assert len(err.splitlines()) == 1 and not out.exists()


def test_fit_check_names_every_resource_short():
    need = {"luts": 80000, "carries": 2000, "ffs": 30000, "brams": 504, "dsps": 321}
    limits = fit_limits("ecp5", "85k", need)
    assert {x["resource"]: (x["needed"], x["available"]) for x in limits} == {
        "lut_slots": (84000, 83640), "brams": (504, 208), "dsps": (321, 156)}
    assert fit_limits("ecp5", "um5g-85k", need) == fit_limits("ecp5", "um-85k", need) == limits
    assert fit_limits("ecp5", "25k", {**need, "luts": 10, "carries": 0, "ffs": 10, "brams": 56,
                                      "dsps": 28}) == []
    assert fit_limits("ecp5", "unknown", need) is None
    # a 16 x 4 LUT RAM takes six LUT slots (three slices)
    small = {"luts": 24000, "carries": 0, "ffs": 10, "brams": 0, "dsps": 0}
    assert fit_limits("ecp5", "25k", {**small, "lutram": 48}) == []
    assert fit_limits("ecp5", "25k", {**small, "lutram": 49}) == [
        {"resource": "lut_slots", "needed": 24294, "available": 24288}]
    # the same counts as utilisation of the device (LFE5U-85F: 83640 LUT4 and as many
    # flip-flops, 208 DP16KD, 156 MULT18X18D)
    use = fit_utilization("ecp5", "85k", {**need, "lutram": 10})
    assert use == {"lut_slots": {"used": 84060, "available": 83640, "percent": 100.5},
                   "ffs": {"used": 30000, "available": 83640, "percent": 35.87},
                   "brams": {"used": 504, "available": 208, "percent": 242.31},
                   "dsps": {"used": 321, "available": 156, "percent": 205.77}}
    assert fit_utilization("ice40", "lp384", {**need, "brams": 0})["brams"]["percent"] is None
    r = {"target": "ecp5", "device": "85k", "fits": False, "limits": limits}
    assert verdict(r).startswith("does not fit the ecp5 85k: lut_slots 84000 needed, 83640")


def test_placement_failure_names_the_resource():
    log = ("Info: Placing\nERROR: Unable to place cell 'x.mem.0.144', no BELs remaining to "
           "implement cell type 'DP16KD'\n")
    assert placement_limit(log)["resource"] == "brams"
    assert placement_limit("ERROR: something else") is None


def test_too_big_for_the_device_gives_a_report_and_exit_1(tmp_path, capsys):
    """A 512-bit accumulator needs more logic cells than an iCE40 LP384 has: no place and
    route, the report says why, the command fails."""
    rtl = _rtl_folder(tmp_path, Accumulate(512), "accumulate")
    out = tmp_path / "s"
    assert main(["synth", str(rtl), "--target", "ice40", "--device", "lp384", "--package",
                 "qn32", "--out", str(out)]) == 1
    r = json.loads((out / "report.json").read_text())
    assert r["fits"] is False and r["fmax_mhz"] is None and not (out / "nextpnr.log").exists()
    assert any(x["resource"] == "lut_slots" and x["needed"] > 384 for x in r["limits"])
    assert "does not fit" in (out / "report.md").read_text()
    assert "does not fit the ice40 lp384" in capsys.readouterr().out


def test_late_endpoints_are_grouped_by_register_family():
    """Register inputs whose latest arrival is past the period, grouped by cell name with its
    numbers as ``#`` and by port, most first; earlier arrivals are left out."""
    def net(*ends):
        return {"net": "n", "endpoints": [{"cell": c, "port": p, "delay": [d - 1, d]}
                                          for c, p, d in ends]}
    pnr = {"detailed_net_timings": [
        net(("rq_s7_a0_TRELLIS_FF_Q_3", "DI", 11.5), ("rq_s7_a1_TRELLIS_FF_Q", "DI", 10.2),
            ("rq_s7_a2_TRELLIS_FF_Q_1", "DI", 9.9)),
        net(("acc_first_3_TRELLIS_FF_Q", "M", 12.25), ("acc_first_3_TRELLIS_FF_Q", "LSR", 10.5)),
        net(("rq_s12_a4_TRELLIS_FF_Q_12", "DI", 10.01))]}
    late = late_endpoints(pnr, 10.0)
    assert late == {"count": 5, "period_ns": 10.0, "by_cells": [
        {"cells": "rq_s#_a#_TRELLIS_FF_Q_#", "port": "DI", "count": 2, "latest_ns": 11.5},
        {"cells": "acc_first_#_TRELLIS_FF_Q", "port": "LSR", "count": 1, "latest_ns": 10.5},
        {"cells": "acc_first_#_TRELLIS_FF_Q", "port": "M", "count": 1, "latest_ns": 12.25},
        {"cells": "rq_s#_a#_TRELLIS_FF_Q", "port": "DI", "count": 1, "latest_ns": 10.2}]}
    assert late_endpoints(pnr, 20.0) == {"count": 0, "period_ns": 20.0, "by_cells": []}
