"""``a2q synth --seeds N``: timing closure by seed sweep.

nextpnr's seed decides where the placer starts, and on a design as full as the 16-lane engine
that decides whether the router converges at all: some seeds route in minutes, others stall
for half an hour. The seed sweep runs Yosys once (``netlist/``, reused by a rerun when it holds
the same design), then places and routes the same netlist with each seed on a Dask cluster
(:mod:`a2q.app.cluster`), as many at once as it has workers, each in its own folder
(``seed-<name>/``) and stopped at its time limit, and keeps the best routed result:
``report.json`` and ``report.md`` are that seed's report with every seed's outcome, its
seconds and its Fmax (``seeds``) and the name of the seed kept (``best``; None when none
routed). A seed of None is nextpnr's own default (named ``default``), the one a plain ``a2q
synth`` uses.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from a2q.app.cluster import run_as_workers_free
from a2q.common.files import STAMP
from a2q.hw.fpga.synthesis import (
    TARGETS,
    SynthesisError,
    SynthesisTimeLimit,
    rtl_design_sha256,
    synthesize,
    verdict,
    write_report,
)


def seed_name(seed: int | None) -> str:
    return "default" if seed is None else str(seed)


def place_and_route_seed(rtl: str, target: str, folder: str, netlist: str, seed: int | None,
                         time_limit_s: float | None, options: dict) -> dict:
    """One seed's place and route of ``netlist``'s netlist into ``folder``: its outcome
    (``routed``, ``time limit`` or ``failed``), seconds and figures. Runs on a Dask worker."""
    t0 = time.perf_counter()
    outcome = {"seed": seed, "name": seed_name(seed), "folder": folder}
    try:
        r = synthesize(rtl, target, folder, netlist_from=netlist, seed=seed,
                       pnr_time_limit_s=time_limit_s, **options)
    except SynthesisTimeLimit as exc:
        outcome.update(status="time limit", error=str(exc))
    except SynthesisError as exc:
        outcome.update(status="failed", error=str(exc))
    else:
        outcome.update(status="routed" if r.get("routed") else "placed",
                       fmax_mhz=r.get("fmax_mhz"), fmax_placed_mhz=r.get("fmax_placed_mhz"),
                       timing_met=r.get("timing_met"), fits=r.get("fits"))
    outcome["seconds"] = round(time.perf_counter() - t0, 1)
    return outcome


def synthesize_seeds(rtl: Path, target: str, work: Path, *, seeds: list[int | None], client,
                     time_limit_s: float | None = None, progress=print, **options) -> dict:
    """Yosys once into ``work/netlist``, then every seed of ``seeds`` on ``client``; returns
    (and writes as ``work/report.json``) the best routed seed's report with ``seeds`` and
    ``best``. ``options``: :func:`~a2q.hw.fpga.synthesis.synthesize`'s device and
    nextpnr settings."""
    work = Path(work).resolve()
    rtl = Path(rtl).resolve()
    work.mkdir(parents=True, exist_ok=True)
    (work / STAMP).write_text("a2q synth\n")
    pnr_only = {k: options.pop(k) for k in ("placer", "router", "timing_ripup", "density")
                if k in options}
    netlist = _earlier_netlist(rtl, target, work / "netlist", options.get("device"))
    if netlist is None:
        progress(f"Yosys once for the {len(seeds)} seeds -> {work / 'netlist'}")
        netlist = synthesize(rtl, target, work / "netlist", place_and_route=False, **options)
    else:
        progress(f"Yosys's netlist of this design from an earlier run: {work / 'netlist'}")
    if netlist["fits"] is False or target not in ("ecp5", "ice40"):
        write_report(work, netlist)
        return netlist
    calls = [(f"a2q-pnr-seed-{seed_name(s)}-{work}", place_and_route_seed,
              (str(rtl), target, str(work / f"seed-{seed_name(s)}"), str(work / "netlist"), s,
               time_limit_s, {**options, **pnr_only})) for s in seeds]
    progress(f"placing and routing seeds {', '.join(map(seed_name, seeds))}, as many at once as "
             f"the cluster has workers" + (f", each stopped after {time_limit_s:g} s"
                                            if time_limit_s else ""))
    outcomes = []
    for _, future in run_as_workers_free(client, calls):
        o = future.result()
        outcomes.append(o)
        figure = (f"{o['fmax_mhz']} MHz, timing {'met' if o['timing_met'] else 'not met'}"
                  if o.get("fmax_mhz") is not None else o.get("error", o["status"]))
        progress(f"seed {o['name']}: {o['status']} in {o['seconds']:.0f} s ({figure}); "
                 f"{len(outcomes)}/{len(seeds)} seeds done")
    outcomes.sort(key=lambda o: seeds.index(o["seed"]))
    routed = [o for o in outcomes if o.get("fmax_mhz") is not None]
    if routed:
        best = max(routed, key=lambda o: (o["fmax_mhz"], -seeds.index(o["seed"])))
        report = json.loads((Path(best["folder"]) / "report.json").read_text())
        report["best"] = best["name"]
    else:
        report = dict(netlist, best=None)
    report["seeds"] = outcomes
    report["seed_time_limit_s"] = time_limit_s
    report["verdict"] = (verdict(report) + (f"; the best of {len(seeds)} seeds, seed "
                         f"{report['best']}" if routed else
                         f"; none of the {len(seeds)} seeds routed"))
    write_report(work, report)
    return report


def _earlier_netlist(rtl: Path, target: str, folder: Path, device: str | None) -> dict | None:
    """``folder``'s report when it holds Yosys's netlist of this very design (its Verilog and
    init files, :func:`~a2q.hw.fpga.synthesis.rtl_design_sha256`) for ``target`` and ``device``."""
    try:
        r = json.loads((folder / "report.json").read_text())
    except (OSError, ValueError):
        return None
    device = device or TARGETS[target]["device"]
    same = (r.get("target") == target and r.get("device") == device and not r.get("placed")
            and r.get("design_sha256") == rtl_design_sha256(rtl)
            and (folder / "netlist.json").exists())
    return r if same else None
