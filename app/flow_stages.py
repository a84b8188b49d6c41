"""The stages of ``a2q flow`` (:mod:`a2q.app.flow`) and how its state reads as a table: what
the flow and its report (:mod:`a2q.app.flow_report`) both need."""

from __future__ import annotations

from pathlib import Path

STAGES = ("train", "methods", "export", "golden", "rtl", "sim", "synth", "report")
#: the other methods trained for the accuracy-vs-bits comparison: label -> (method, bits)
OTHER_METHODS = {"fp32": ("fp32", None), "uniform8": ("uniform", 8),
                 "uniform4": ("uniform", 4), "dq": ("dq", 4)}

#: stage -> the folder under ``--out`` that holds its output (``methods`` may hold none)
STAGE_FOLDERS = {"export": "graph", "golden": "golden", "rtl": "rtl", "sim": "sim",
                 "synth": "synth"}

STAGE_TEXT = {
    "train": "A²Q training",
    "methods": "the same model with the other methods (accuracy against bits)",
    "export": "the bitwidth-annotated graph",
    "golden": "the integer golden model",
    "rtl": "the layer engine's Verilog",
    "sim": "the engine in RTL: A²Q and its uniform-bit baselines",
    "synth": "FPGA synthesis (ECP5)",
    "report": "report.md and report.html",
}


def summary_rows(state: dict) -> list[tuple[str, str, str, str]]:
    """(stage, status, seconds, figures) for the terminal's final table."""
    rows = []
    for stage in STAGES:
        s = state["stages"].get(stage, {})
        r = s.get("result", {})
        if stage == "train" and r:
            m = r["metrics"]
            what = f"test acc {m['test_acc']:.1f}%, {m['avg_feature_bits']:.2f} avg bits"
        elif stage == "methods" and s.get("status") == "done":
            what = ", ".join(f"{k} {v['test_acc']:.1f}%" for k, v in r.items()) or "none"
        elif stage == "golden" and r:
            what = (f"test acc {r['test_acc']:.1f}%, agrees with torch on "
                    f"{100 * r['prediction_agreement']:.2f}%")
        elif stage == "sim" and r:
            what = (f"exact {r['num_nodes'] - r['mismatched_nodes']}/{r['num_nodes']}, "
                    f"{r['cycles_measured']} cycles")
            if r["baselines"]:
                what += "; speedup " + ", ".join(
                    f"{k} {b['speedup_of_a2q']:.2f}x" for k, b in r["baselines"].items())
        elif stage == "synth" and r:
            what = r.get("verdict", "skipped")
        elif stage == "export" and r:
            what = r["graph"]
        elif stage == "rtl" and r:
            what = f"{r['config']['lanes']} lanes, {r['memories']} memories, lint clean"
        elif stage == "report" and r:
            what = ", ".join(Path(f).name for f in r["files"] if f.endswith((".md", ".html")))
        else:
            what = s.get("error", "")
        seconds = f"{s['seconds']:.1f}" if "seconds" in s else ""
        rows.append((stage, s.get("status", "not run"), seconds, what))
    return rows
