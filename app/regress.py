"""``a2q regress``: a pytest regression sharded over a Dask cluster, its JUnit XML merged.

The cases are collected here (``pytest --collect-only``), cut into ``--shards`` runs of
neighbouring cases (a module's cases stay together, so that its fixtures are built once per
shard) and each shard runs as ``python -m pytest <its cases>`` on a worker
(:func:`a2q.common.processes.run_logged`, in the checkout, with the ``A2Q_*`` variables of
this environment), writing ``<junitxml>.shards/shard-<k>.xml`` and ``shard-<k>.log``; a
worker that dies mid-shard has its shard rerun on another. The shards' test cases are merged
into one ``<testsuite>`` in ``--junitxml``, written whole once every shard has finished.
Workers on other machines need the checkout (and its ``.venv``) at the same path.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from a2q.common.errors import A2QError
from a2q.common.processes import TimeLimitExceeded, run_logged

#: the counts a ``<testsuite>`` carries, summed when merging
COUNTS = ("tests", "failures", "errors", "skipped")


def collect(tests: list[str], *, marks: str | None, keyword: str | None,
            cwd: Path) -> list[str]:
    """pytest's node IDs of the cases ``tests`` selects (``-m marks``, ``-k keyword``)."""
    cmd = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
           *tests]
    if marks:
        cmd += ["-m", marks]
    if keyword:
        cmd += ["-k", keyword]
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    ids = [line.strip() for line in done.stdout.splitlines() if "::" in line]
    if done.returncode not in (0, 5) or (done.returncode == 0 and not ids):
        tail = (done.stdout + done.stderr).strip().splitlines()[-1:] or [""]
        raise A2QError(f"regress: collecting {' '.join(tests)} failed (pytest exit "
                       f"{done.returncode}): {tail[0]}")
    return ids


def shard(ids: list[str], n: int) -> list[list[str]]:
    """``ids`` cut into at most ``n`` runs of neighbours, of sizes differing by at most one."""
    n = max(1, min(n, len(ids)))
    size, extra = divmod(len(ids), n)
    out, start = [], 0
    for k in range(n):
        end = start + size + (k < extra)
        out.append(ids[start:end])
        start = end
    return out


def run_shard(cwd: str, ids: list[str], xml: str, basetemp: str, pytest_args: list[str],
              env: dict, time_limit_s: float | None) -> dict:
    """One shard: pytest on ``ids``, JUnit XML to ``xml``. Runs on a Dask worker."""
    log = Path(xml).with_suffix(".log")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--basetemp",
           basetemp, "--junitxml", xml, *pytest_args, *ids]
    t0 = time.perf_counter()
    try:
        rc = run_logged(cmd, log, cwd=Path(cwd), env={**os.environ, **env},
                        timeout=time_limit_s)
    except TimeLimitExceeded as exc:
        return {"xml": xml, "log": str(log), "exit": None, "error": str(exc),
                "seconds": round(time.perf_counter() - t0, 1), "cases": len(ids)}
    lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    return {"xml": xml, "log": str(log), "exit": rc, "summary": lines[-1] if lines else "",
            "seconds": round(time.perf_counter() - t0, 1), "cases": len(ids)}


def merge_junit(files: list[Path], out: Path, *, name: str = "a2q regress",
                missing: list[dict] = ()) -> dict:
    """One ``<testsuites>`` holding one ``<testsuite>`` of every case of ``files`` (and an
    error case per entry of ``missing``: a shard that left no XML); written to ``out`` whole.
    Returns the summed counts."""
    suite = ET.Element("testsuite", name=name)
    counts = dict.fromkeys(COUNTS, 0)
    seconds = 0.0
    for f in files:
        root = ET.parse(f).getroot()
        suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
        for s in suites:
            for key in COUNTS:
                counts[key] += int(s.get(key, 0))
            seconds += float(s.get("time", 0))
            suite.extend(s.findall("testcase"))
    for m in missing:
        case = ET.SubElement(suite, "testcase", classname="a2q.regress", name=m["name"])
        ET.SubElement(case, "error", message=m["message"])
        counts["tests"] += 1
        counts["errors"] += 1
    suite.attrib.update({k: str(v) for k, v in counts.items()}, time=f"{seconds:.3f}")
    root = ET.Element("testsuites")
    root.append(suite)
    tmp = out.with_name(f".{out.name}.tmp")
    out.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(tmp, encoding="utf-8", xml_declaration=True)
    os.replace(tmp, out)
    return counts


def run_regress(tests: list[str], junitxml: Path, *, client, shards: int | None = None,
                marks: str | None = None, keyword: str | None = None,
                pytest_args: list[str] = (), basetemp: Path | None = None,
                time_limit_s: float | None = None, echo=print) -> dict:
    """Collect, shard, run on ``client``, merge into ``junitxml``; returns the counts and
    each shard's outcome."""
    from .cluster import run_as_workers_free

    cwd = Path.cwd()
    ids = collect(tests, marks=marks, keyword=keyword, cwd=cwd)
    if not ids:
        raise A2QError(f"regress: {' '.join(tests)} selects no test case")
    workers = max(1, len(client.scheduler_info().get("workers", {})))
    parts = shard(ids, shards or 2 * workers)
    junitxml = Path(junitxml).resolve()
    folder = junitxml.with_name(junitxml.name + ".shards")
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("shard-*"):
        stale.unlink()
    basetemp = Path(basetemp or folder / "tmp").resolve()
    basetemp.mkdir(parents=True, exist_ok=True)  # pytest makes each shard's, not its parent
    env = {k: v for k, v in os.environ.items() if k.startswith("A2Q_")}
    echo(f"{len(ids)} cases in {len(parts)} shards on {len(client.scheduler_info()['workers'])}"
         f" Dask workers")
    calls = [(f"a2q-regress-shard-{k}-{junitxml}", run_shard,
              (str(cwd), part, str(folder / f"shard-{k}.xml"), str(basetemp / f"shard-{k}"),
               list(pytest_args), env, time_limit_s)) for k, part in enumerate(parts)]
    outcomes = {}
    for key, future in run_as_workers_free(client, calls):
        k = int(key.split("-")[3])
        o = outcomes[k] = future.result()
        what = o.get("summary") or o.get("error")
        echo(f"shard {k} ({o['cases']} cases, {o['seconds']:.0f} s): {what}; "
             f"{len(outcomes)}/{len(parts)} shards done")
    present = [Path(o["xml"]) for _, o in sorted(outcomes.items()) if Path(o["xml"]).exists()]
    missing = [{"name": f"shard-{k}", "message": f"shard {k} left no JUnit XML: "
                f"{o.get('error') or o.get('summary')}; see {o['log']}"}
               for k, o in sorted(outcomes.items()) if not Path(o["xml"]).exists()]
    counts = merge_junit(present, junitxml, missing=missing)
    ok = all(o["exit"] == 0 for o in outcomes.values())
    return {"counts": counts, "passed": ok and not counts["failures"] and not counts["errors"],
            "shards": [outcomes[k] for k in sorted(outcomes)]}


def summary_line(counts: dict) -> str:
    """pytest's way: ``N passed, N failed, N errors, N skipped`` (zero counts left out)."""
    passed = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    words = [f"{passed} passed"] + [f"{counts[k]} {word}" for k, word in (
        ("failures", "failed"), ("errors", "errors"), ("skipped", "skipped")) if counts[k]]
    return ", ".join(words)
