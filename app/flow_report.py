"""The flow's report: ``report.md`` and ``report.html`` (the same content, plots embedded in
the HTML) and the plots under ``plots/``, built from ``flow.json`` and the stages' folders.

The content is a list of blocks (heading, paragraph, table, image) rendered twice, so that
the two files cannot disagree.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
from pathlib import Path

from .flow_stages import summary_rows

PLOT_DPI = 110


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=PLOT_DPI, metadata={"Software": None})
    _plt().close(fig)
    return path


def plot_accuracy_vs_bits(points: dict[str, dict], path: Path, title: str) -> Path:
    """Test accuracy against average feature bits, one point per method."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for label, p in points.items():
        ax.scatter(p["avg_feature_bits"], p["test_acc"], s=60 if label == "a2q" else 30,
                   marker="*" if label == "a2q" else "o", label=label)
        ax.annotate(label, (p["avg_feature_bits"], p["test_acc"]), textcoords="offset points",
                    xytext=(5, 3), fontsize=8)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("average feature bits (log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    return _save(fig, path)


def plot_cycles(stages: dict[str, dict[str, int]], path: Path, title: str) -> Path:
    """Cycles per engine stage, grouped bars: A²Q and each baseline (measured in RTL)."""
    plt = _plt()
    names = [k for k in next(iter(stages.values())) if k != "total"]
    fig, ax = plt.subplots(figsize=(7, 3.8))
    width = 0.8 / len(stages)
    for k, (run, cycles) in enumerate(stages.items()):
        ax.bar([i + (k - (len(stages) - 1) / 2) * width for i in range(len(names))],
               [cycles[n] for n in names], width, label=run)
    ax.set_xticks(range(len(names)), names, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("cycles (RTL)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_resources(synth: dict, path: Path) -> Path | None:
    """Each resource the netlist needs as a share of the device (100%: full)."""
    use = _utilization(synth)
    if use is None:
        return None
    plt = _plt()
    need = {_RESOURCE_NAMES[r]: u["used"] for r, u in use.items()}
    share = [u["percent"] or 0 for u in use.values()]
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    ax.bar(list(need), share, color=["tab:red" if s > 100 else "tab:blue" for s in share])
    ax.axhline(100, color="black", linewidth=0.8, linestyle="--")
    for i, (s, v) in enumerate(zip(share, need.values())):
        ax.annotate(f"{v}", (i, s), ha="center", xytext=(0, 3), textcoords="offset points",
                    fontsize=8)
    ax.set_ylabel(f"% of {synth['target']} {synth['device']}")
    ax.set_title("resources (Yosys netlist)")
    return _save(fig, path)


_RESOURCE_NAMES = {"lut_slots": "LUT slots", "ffs": "flip-flops", "brams": "block RAMs",
                   "dsps": "DSPs"}


def _utilization(synth: dict) -> dict | None:
    """The synth stage's utilisation of its device by Yosys's cell counts, or None."""
    from a2q.hw.fpga.synthesis import fit_utilization

    if synth.get("luts") is None:
        return None
    return fit_utilization(synth["target"], synth["device"], synth)


def _blocks(out: Path, state: dict, options, plots: dict[str, Path]) -> list[tuple]:
    st = {k: v.get("result") for k, v in state["stages"].items() if v.get("status") == "done"}
    o = options
    title = f"{o.dataset} {o.model.upper()}"
    b = [("h1", f"a2q flow: {title}"),
         ("p", f"`{o.command()}` in {out}. Every figure below was measured by this run; each stage's files are "
               "in its folder beside this report, its messages in logs/."),
         ("h2", "Summary"),
         ("table", ["stage", "status", "seconds", "result"],
          [list(r) for r in summary_rows(state) if r[0] != "report"])]
    train = st.get("train")
    if train:
        m = train["metrics"]
        points = {"a2q": m, **(st.get("methods") or {})}
        b += [("h2", "Accuracy and bits"),
              ("p", "Test accuracy of the model picked on validation accuracy (the honest "
                    "number); beside it the best test accuracy over epochs (the paper code's "
                    "protocol, selection on the test set). Bits: the mean stored feature bits "
                    "over the per-node tensors (FP32 counts 32)."),
              ("table", ["method", "test acc", "best-epoch acc", "avg feature bits"],
               [[k, f"{p['test_acc']:.1f}", f"{p['test_acc_best_epoch']:.1f}",
                 f"{p['avg_feature_bits']:.2f}"] for k, p in points.items()])]
        if "accuracy" in plots:
            b.append(("img", plots["accuracy"], "accuracy against bits, every method"))
        if "bits" in plots:
            b.append(("img", plots["bits"], "A²Q's learned bits against in-degree"))
    golden = st.get("golden")
    if golden:
        b += [("h2", "Golden model"),
              ("p", f"The integer golden model's test accuracy is {golden['test_acc']:.2f}% "
                    f"(the torch model's {golden['reference_test_acc']:.2f}%); their "
                    f"predictions agree on {100 * golden['prediction_agreement']:.2f}% of "
                    f"the nodes ({golden['disagreeing_nodes']} differ).")]
    sim = st.get("sim")
    if sim:
        b += [("h2", "The engine in RTL"),
              ("p", f"{o.simulator}, {o.lanes} lanes: the engine's logits equal the golden "
                    f"model's on {sim['num_nodes'] - sim['mismatched_nodes']} of "
                    f"{sim['num_nodes']} nodes and every phase's cycles equal the cycle "
                    f"model's: {sim['exact']}. A²Q: {sim['cycles_measured']} cycles. The "
                    "baselines run the same engine on the model re-exported at uniform bits "
                    "(every per-node tensor and operand): uniform4 pays the layer-1 input at "
                    "4 bits (as Degree-Quant INT4 runs), uniform4-exact-input at its own bits "
                    "(1 for a bag-of-words), uniform8 at 8. **ideal**: the baseline's bits "
                    "over A²Q's average bits, on the stages that read per-node bits."),
              ("table", ["baseline", "cycles", "A²Q speedup", "test acc"],
               [[k, str(v["cycles_measured"]), f"{v['speedup_of_a2q']:.3f}x",
                 f"{v['test_acc']:.1f}"] for k, v in sim["baselines"].items()]),
              ("table", ["stage", "baseline", "A²Q cycles", "baseline cycles", "speedup",
                         "ideal", "of ideal"],
               [[r["stage"], r["baseline"], str(r["cycles_a2q"]), str(r["cycles_baseline"]),
                 f"{r['speedup']:.3f}x",
                 "" if r["ideal_speedup"] is None else f"{r['ideal_speedup']:.3f}x",
                 "" if r["fraction_of_ideal"] is None else f"{r['fraction_of_ideal']:.1%}"]
                for r in sim["stages"]])]
        if "cycles" in plots:
            b.append(("img", plots["cycles"], "cycles per stage, A²Q and the baselines"))
    synth = st.get("synth")
    if synth and not synth.get("skipped"):
        b += [("h2", "FPGA synthesis"),
              ("p", (f"Yosys and nextpnr (YoWASP) for {synth['target']} {synth['device']} at "
                     f"{synth['freq_target_mhz']:.0f} MHz" if synth.get("placed") else
                     f"Yosys (YoWASP) for {synth['target']} {synth['device']}, without place "
                     f"and route (`a2q flow --place` or `a2q bench timing` for Fmax)")
                    + f". Verdict: {synth['verdict']}."),
              ("table", ["LUT4", "CCU2C", "flip-flops", "block RAMs", "DSPs", "LUT RAM",
                         "Fmax MHz"],
               [[str(synth[k]) if synth.get(k) is not None else "n/a" for k in
                 ("luts", "carries", "ffs", "brams", "dsps", "lutram", "fmax_mhz")]])]
        use = _utilization(synth)
        if use is not None:
            b.append(("table", ["resource (Yosys's cell counts)", "used", "available", "%"],
                      [[_RESOURCE_NAMES[r], str(u["used"]), str(u["available"]),
                        "n/a" if u["percent"] is None else f"{u['percent']:.1f}"]
                       for r, u in use.items()]))
        if synth.get("limits"):
            b.append(("table", ["limiting resource", "needed", "available"],
                      [[x["resource"], str(x["needed"]), str(x["available"])]
                       for x in synth["limits"]]))
        if "resources" in plots:
            b.append(("img", plots["resources"], "resources against the device"))
    sha = state.get("verilog_sha256") or {}
    if sha:
        b += [("h2", "The Verilog"),
              ("p", "The engine is built once (rtl/); the simulation and the synthesis read "
                    "that Verilog. Its sha256 as each stage read it: " + ", ".join(
                        f"{k} `{sha[k]}`" for k in ("built", "simulated", "synthesized")
                        if k in sha)
                    + (". The Verilog simulated is the Verilog synthesized: "
                       f"{sha['simulated_is_synthesized']}." if "simulated_is_synthesized"
                       in sha else "."))]
    return b


def _markdown(blocks: list[tuple], out: Path) -> str:
    lines = []
    for kind, *rest in blocks:
        if kind == "h1":
            lines += [f"# {rest[0]}", ""]
        elif kind == "h2":
            lines += [f"## {rest[0]}", ""]
        elif kind == "p":
            lines += [rest[0], ""]
        elif kind == "table":
            head, rows = rest
            lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
            lines.append("")
        elif kind == "img":
            path, caption = rest
            lines += [f"![{caption}]({os.path.relpath(path, out)})", ""]
    return "\n".join(lines)


def _inline(text: str) -> str:
    """Escaped text with the Markdown of the paragraphs here: `code` and **bold**."""
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", text)


def _html(blocks: list[tuple], title: str) -> str:
    e = html.escape
    body = []
    for kind, *rest in blocks:
        if kind in ("h1", "h2"):
            body.append(f"<{kind}>{e(rest[0])}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{_inline(rest[0])}</p>")
        elif kind == "table":
            head, rows = rest
            body.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>"
                        + "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>"
                                  for r in rows) + "</table>")
        elif kind == "img":
            path, caption = rest
            data = base64.b64encode(Path(path).read_bytes()).decode()
            body.append(f'<figure><img alt="{e(caption)}" src="data:image/png;base64,{data}">'
                        f"<figcaption>{e(caption)}</figcaption></figure>")
    style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;"
             "padding:.2em .5em;text-align:left}img{max-width:100%}")
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{e(title)}</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def write_report(out: Path, state: dict, options) -> list[Path]:
    """Write ``plots/*.png``, ``report.md`` and ``report.html`` into ``out``; returns them."""
    from a2q.sw.report import plot_bits_by_degree

    out = Path(out)
    plots_dir = out / "plots"
    plots_dir.mkdir(parents=True, exist_ok=True)
    st = {k: v.get("result") for k, v in state["stages"].items() if v.get("status") == "done"}
    title = f"{options.dataset} {options.model.upper()}"
    plots = {}
    if st.get("train"):
        m = st["train"]["metrics"]
        run = Path(st["train"]["run"])
        bits = json.loads((run / "bits_by_degree.json").read_text())
        plots["bits"] = plots_dir / "bits_by_degree.png"
        plot_bits_by_degree(bits, plots["bits"], f"{title} A²Q: {m['avg_feature_bits']:.2f} "
                                                 f"avg bits, {m['test_acc']:.1f}% test")
        points = {"a2q": m, **(st.get("methods") or {})}
        plots["accuracy"] = plot_accuracy_vs_bits(points, plots_dir / "accuracy_vs_bits.png",
                                                  f"{title}: accuracy against bits")
    if st.get("sim"):
        stages = {"A²Q": st["sim"]["cycles_by_phase_measured"],
                  **{k: v["cycles_by_phase_measured"] for k, v in st["sim"]["baselines"].items()}}
        plots["cycles"] = plot_cycles(stages, plots_dir / "cycles.png",
                                      f"{title}: cycles per stage ({options.lanes} lanes)")
    if st.get("synth") and not st["synth"].get("skipped"):
        p = plot_resources(st["synth"], plots_dir / "resources.png")
        if p is not None:
            plots["resources"] = p
    blocks = _blocks(out, state, options, plots)
    written = list(plots.values())
    for name, text in (("report.md", _markdown(blocks, out)),
                       ("report.html", _html(blocks, f"a2q flow: {title}"))):
        tmp = out / f".{name}.tmp"
        tmp.write_text(text)
        os.replace(tmp, out / name)
        written.append(out / name)
    return written
