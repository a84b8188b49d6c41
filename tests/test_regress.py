"""``a2q regress``: cases cut into shards of neighbours, run on a Dask cluster, their JUnit
XML merged into one."""

import xml.etree.ElementTree as ET

from a2q.app.cli import main
from a2q.app.regress import merge_junit, shard

CASES = '''
import os

import pytest


@pytest.mark.parametrize("k", range(5))
def test_counts(k, tmp_path):  # tmp_path: under the shard's --basetemp
    assert os.environ["A2Q_REGRESS_PROBE"] == "on"  # the environment reaches the shards
    (tmp_path / "case").write_text(str(k))
    assert k != 3, "the fourth case fails"


@pytest.mark.slow
def test_left_out():
    pass
'''


def test_shards_are_runs_of_neighbours_of_even_size():
    ids = [f"t{k}" for k in range(7)]
    assert shard(ids, 3) == [["t0", "t1", "t2"], ["t3", "t4"], ["t5", "t6"]]
    assert shard(ids, 10) == [[i] for i in ids]  # never an empty shard
    assert shard(ids, 1) == [ids]


def test_merged_junit_holds_every_case_and_the_summed_counts(tmp_path):
    (tmp_path / "a.xml").write_text(
        '<testsuites><testsuite name="pytest" tests="2" failures="1" errors="0" skipped="0" '
        'time="1.5"><testcase classname="m" name="x"/><testcase classname="m" name="y">'
        '<failure message="no"/></testcase></testsuite></testsuites>')
    (tmp_path / "b.xml").write_text(
        '<testsuite name="pytest" tests="1" failures="0" errors="0" skipped="1" time="0.25">'
        '<testcase classname="n" name="z"><skipped/></testcase></testsuite>')
    counts = merge_junit([tmp_path / "a.xml", tmp_path / "b.xml"], tmp_path / "all.xml",
                         missing=[{"name": "shard-2", "message": "died"}])
    assert counts == {"tests": 4, "failures": 1, "errors": 1, "skipped": 1}
    suite = ET.parse(tmp_path / "all.xml").getroot().find("testsuite")
    assert [c.get("name") for c in suite.findall("testcase")] == ["x", "y", "z", "shard-2"]
    assert suite.get("tests") == "4" and suite.get("time") == "1.750"


def test_a_regression_sharded_on_a_local_cluster(tmp_path, monkeypatch, capsys):
    (tmp_path / "test_cases.py").write_text(CASES)
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    slow: left out\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("A2Q_REGRESS_PROBE", "on")
    junit = tmp_path / "out" / "all.xml"
    assert main(["regress", "test_cases.py", "-m", "not slow", "--shards", "3", "--workers",
                 "2", "--basetemp", str(tmp_path / "new" / "tmp"), "--junitxml",
                 str(junit)]) == 1  # one case fails
    out = capsys.readouterr().out
    assert "5 cases in 3 shards" in out and f"{junit}: 4 passed, 1 failed" in out
    suite = ET.parse(junit).getroot().find("testsuite")
    names = sorted(c.get("name") for c in suite.findall("testcase"))
    assert names == [f"test_counts[{k}]" for k in range(5)]
    failed = [c.get("name") for c in suite.findall("testcase") if c.find("failure") is not None]
    assert failed == ["test_counts[3]"]
    assert sorted(p.name for p in (tmp_path / "out" / "all.xml.shards").glob("*.xml")) == [
        "shard-0.xml", "shard-1.xml", "shard-2.xml"]
    assert sorted(p.name for p in (tmp_path / "new" / "tmp").iterdir()) == [
        "shard-0", "shard-1", "shard-2"]  # each shard's pytest --basetemp, its parent made


def test_a_selection_of_no_case_is_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "test_cases.py").write_text(CASES)
    monkeypatch.chdir(tmp_path)
    assert main(["regress", "test_cases.py", "-k", "nothing_matches", "--workers", "1",
                 "--junitxml", str(tmp_path / "all.xml")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "selects no test case" in err[0]
    assert not (tmp_path / "all.xml").exists()
