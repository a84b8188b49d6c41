"""The sweep's results (:mod:`a2q.app.sweep`): ``sweep.json`` (every point's row), ``sweep.md``
(the table, the Pareto fronts and the best design per device and clock target) and two plots:
``pareto_latency_luts.png`` (latency against LUTs: the routed points and their front, and the
points not routed, a design too big for the device among them, at their clock target) and
``pareto_accuracy_bits.png`` (test accuracy against average feature bits, trained points).

A point's latency is its engine's cycles at its routed Fmax. The best design for an ECP5
device and a clock target is, among the points that meet that target there, the one of least
latency (then fewest LUTs).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

#: the axes that decide a trained model (its accuracy and bits)
TRAINING = ("dataset", "model", "method", "seed", "epochs", "graph")
#: the row's figures in sweep.md's table: key -> heading
COLUMNS = {"test_acc": "test acc %", "avg_bits": "avg bits",
           "golden_agreement": "golden = torch", "cycles": "cycles",
           "luts": "LUTs", "brams": "BRAMs", "dsps": "DSPs", "fits": "fits",
           "fmax_mhz": "Fmax MHz",
           "timing_met": "timing met", "latency_us": "latency µs"}


def pareto_front(rows: list[dict], x: str, y: str, *, maximize_y: bool = False) -> list[dict]:
    """The rows no other row beats on both ``x`` (lower is better) and ``y`` (lower, or higher
    with ``maximize_y``), sorted by ``x``, the first of rows with equal figures only; rows
    missing either are left out."""
    have = [r for r in rows if r.get(x) is not None and r.get(y) is not None]
    sign = -1 if maximize_y else 1

    def beats(a, b):
        return (a[x] <= b[x] and sign * a[y] <= sign * b[y]
                and (a[x] < b[x] or sign * a[y] < sign * b[y]))

    front, seen = [], set()
    for r in have:  # points of one trained model share (bits, accuracy): the first stands
        if (r[x], r[y]) not in seen and not any(beats(o, r) for o in have):
            seen.add((r[x], r[y]))
            front.append(r)
    return sorted(front, key=lambda r: (r[x], sign * r[y]))


def best_designs(rows: list[dict]) -> dict[tuple[str, float], dict]:
    """(device, clock target MHz) -> the routed point meeting that target of least latency."""
    best: dict = {}
    for r in rows:
        if r.get("status") != "done" or not r.get("timing_met") or r.get("latency_us") is None:
            continue
        where = (r["point"]["device"], r["point"]["freq"])
        if where not in best or ((r["latency_us"], r["luts"])
                                 < (best[where]["latency_us"], best[where]["luts"])):
            best[where] = r
    return dict(sorted(best.items()))


def _label(row: dict, varying: list[str]) -> str:
    return ", ".join(f"{a} {row['point'][a]}" for a in varying) or row["key"]


def varying_axes(rows: list[dict]) -> list[str]:
    """The axes whose values differ between the rows (what tells the points apart)."""
    if not rows:
        return []
    axes = list(rows[0]["point"])
    return [a for a in axes if len({json.dumps(r["point"][a]) for r in rows}) > 1]


def best_so_far(rows: list[dict], varying: list[str]) -> str:
    """One phrase for the progress line: the best design so far, or the most accurate point
    when none is routed yet; ``varying``: the axes that tell the points apart."""
    best = best_designs(rows)
    if best:
        r = min(best.values(), key=lambda r: r["latency_us"])
        return (f"{_label(r, varying)}: {r['latency_us']} µs at {r['fmax_mhz']} MHz, "
                f"{r['luts']} LUTs")
    trained = [r for r in rows if r.get("test_acc") is not None]
    if trained:
        r = max(trained, key=lambda r: r["test_acc"])
        return f"{_label(r, varying)}: test acc {r['test_acc']:.1f}%"
    return ""


def unrouted_latency(rows: list[dict]) -> list[dict]:
    """The points with cycles and LUTs but no routed Fmax (too big for the device, or not
    placed), each with ``latency_us`` at its clock target instead: where they would sit."""
    return [{**r, "latency_us": round(r["cycles"] / r["point"]["freq"], 3)} for r in rows
            if r.get("latency_us") is None and r.get("cycles") is not None
            and r.get("luts") is not None]


def _plot(path: Path, rows: list[dict], x: str, y: str, xlabel: str, ylabel: str,
          title: str, maximize_y: bool, varying: list[str], others=()) -> bool:
    have = [r for r in rows if r.get(x) is not None and r.get(y) is not None]
    if not have and not others:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    front = pareto_front(have, x, y, maximize_y=maximize_y)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    if others:
        ax.scatter([r[x] for r in others], [r[y] for r in others], marker="x", color="C3",
                   label="not routed: at the clock target")
        named = set()
        for r in others:  # one label per design size (training seeds fall on one spot)
            if r[x] in named:
                continue
            named.add(r[x])
            what = f"lanes {r['point']['lanes']}" if "lanes" in varying else _label(r, varying)
            why = ", does not fit" if r.get("fits") is False else ""
            ax.annotate(what + why, (r[x], r[y]), fontsize=7, xytext=(4, -10),
                        textcoords="offset points")
    ax.scatter([r[x] for r in have], [r[y] for r in have], color="0.6", label="points")
    ax.plot([r[x] for r in front], [r[y] for r in front], "o-", color="C0",
            label="Pareto front")
    for r in front:
        ax.annotate(_label(r, varying), (r[x], r[y]), fontsize=7, xytext=(4, 4),
                    textcoords="offset points")
    ax.margins(x=0.2, y=0.1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110, metadata={"Software": None})
    plt.close(fig)
    os.replace(tmp, path)
    return True


def markdown(rows: list[dict], options, plots: list[str]) -> str:
    varying = varying_axes(rows)
    shown = varying or ["lanes"]
    done = [r for r in rows if r["status"] == "done"]
    failed = [r for r in rows if r["status"] == "failed"]
    cols = [c for c in COLUMNS if any(r.get(c) is not None for r in rows)]
    lines = ["# Design-space sweep", "",
             f"{len(rows)} points: {len(done)} done, {len(failed)} failed; each runs up to "
             f"stage {options.until}"
             + (f", every stage within {options.time_limit_s:g} s" if options.time_limit_s
                else "") + ". Latency: the engine's cycles at the routed Fmax (the plot also "
             "places the points not routed, at their clock target).", "",
             "| " + " | ".join([*shown, "status", *(COLUMNS[c] for c in cols)]) + " |",
             "|" + "---|" * (len(shown) + 1 + len(cols))]
    for r in rows:
        cells = [str(r["point"][a]) for a in shown]
        status = (f"failed: {r['error']}" if r["status"] == "failed"
                  else r["verdict"] if r.get("fits") is False else "done")
        cells.append(status.replace("|", "\\|"))
        cells += ["" if r.get(c) is None else str(r[c]) for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    for title, x, y, maxy, png in (
            ("Pareto front: latency against LUTs", "luts", "latency_us", False,
             "pareto_latency_luts.png"),
            ("Pareto front: accuracy against bits", "avg_bits", "test_acc", True,
             "pareto_accuracy_bits.png")):
        front = pareto_front(done, x, y, maximize_y=maxy)
        if not front:
            continue
        named = shown if x == "luts" else [a for a in varying if a in TRAINING] or ["seed"]
        lines += ["", f"## {title}", "", *([f"![{title}]({png})", ""] if png in plots else []),
                  "| " + " | ".join([*named, COLUMNS[x], COLUMNS[y]]) + " |",
                  "|" + "---|" * (len(named) + 2)]
        lines += ["| " + " | ".join([*(str(r["point"][a]) for a in named), str(r[x]),
                                      str(r[y])]) + " |" for r in front]
    best = best_designs(done)
    if best:
        lines += ["", "## The best design per device and clock target", "",
                  "| device | target MHz | " + " | ".join(shown)
                  + " | latency µs | Fmax MHz | LUTs | BRAMs | DSPs |",
                  "|" + "---|" * (len(shown) + 7)]
        lines += [f"| {d} | {f:g} | " + " | ".join(str(r["point"][a]) for a in shown)
                  + f" | {r['latency_us']} | {r['fmax_mhz']} | {r['luts']} | {r['brams']} | "
                  f"{r['dsps']} |" for (d, f), r in best.items()]
    elif any(r.get("fmax_mhz") is not None for r in done):
        lines += ["", "No routed point meets its clock target."]
    return "\n".join(lines) + "\n"


def write_sweep(out: Path, rows: list[dict], options) -> dict:
    """``sweep.json``, ``sweep.md`` and the plots of ``rows``, each replaced whole; returns
    the state written as ``sweep.json``."""
    done = [r for r in rows if r["status"] == "done"]
    varying = varying_axes(rows)
    plots = []
    for png, x, y, xl, yl, title, maxy in (
            ("pareto_latency_luts.png", "luts", "latency_us", "LUTs", "latency (µs)",
             "Latency against LUTs", False),
            ("pareto_accuracy_bits.png", "avg_bits", "test_acc", "average feature bits",
             "test accuracy (%)", "Accuracy against bits", True)):
        others = unrouted_latency(done) if y == "latency_us" else ()
        named = varying if y == "latency_us" else [a for a in varying if a in TRAINING]
        if _plot(out / png, done, x, y, xl, yl, title, maxy, named, others):
            plots.append(png)
    state = {"options": dataclasses.asdict(options), "points": rows,
             "best": [{"device": d, "freq": f, "key": r["key"]}
                      for (d, f), r in best_designs(done).items()]}
    for name, text in (("sweep.json", json.dumps(state, indent=2) + "\n"),
                       ("sweep.md", markdown(rows, options, plots))):
        tmp = out / f".{name}.tmp"
        tmp.write_text(text)
        os.replace(tmp, out / name)
    return state
