"""lab.yaml ``requires``: a task whose required task failed earns nothing and says so once, briefly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grader.labs import LabError, parse_lab
from grader.reporters.json_report import render_json
from grader.reporters.junit import render_junit
from grader.results import Status
from grader.runner import grade
from grader.snapshot import Snapshot


def _task(tid: str, path: str, **extra) -> dict:
    return {
        "id": tid,
        "title": f"file {path} is there",
        "points": 1,
        "check": "files.present",
        "params": {"node": "cp", "path": path},
        "hint": "h",
        **extra,
    }


def _lab(*tasks: dict):
    data = {"id": "lab9", "version": 1, "title": "T", "minutes": 5, "tasks": list(tasks)}
    return parse_lab(data, Path("/labs/lab9-x"), "labs/lab9-x/lab.yaml")


def _workspace(tmp_path: Path, *files: str) -> Snapshot:
    for f in files:
        p = tmp_path / "nodes" / "cp" / f.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("x\n")
    return Snapshot(tmp_path)


LAB = (_task("t1", "/a"), _task("t2", "/b", requires=["t1"]), _task("t3", "/c", requires=["t2"]))


def test_failed_requirement_fails_dependents_with_one_short_reason(tmp_path):
    report = grade(_lab(*LAB), _workspace(tmp_path, "/b", "/c"))
    t1, t2, t3 = report.tasks
    assert t1.status is Status.FAIL and "/a" in t1.message
    assert (t2.status, t2.points, t2.blocked_by) == (Status.FAIL, 0, "t1")
    assert t2.message.startswith("depends on t1 (file /a is there), which failed") and "/b" not in t2.message
    assert (t3.status, t3.blocked_by) == (Status.FAIL, "t2")  # a chain stops at the first broken link
    assert report.score == 0


def test_passing_requirement_lets_the_task_be_graded(tmp_path):
    report = grade(_lab(*LAB), _workspace(tmp_path, "/a", "/c"))
    assert [t.status for t in report.tasks] == [Status.PASS, Status.FAIL, Status.FAIL]
    assert report.tasks[1].blocked_by is None and "/b" in report.tasks[1].message
    assert report.tasks[2].blocked_by == "t2"


def test_only_still_grades_the_required_task(tmp_path):
    report = grade(_lab(*LAB), _workspace(tmp_path, "/b"), only=["t2"])
    assert [t.id for t in report.tasks] == ["t2"] and report.tasks[0].blocked_by == "t1"


def test_json_and_junit_name_the_required_task(tmp_path):
    report = grade(_lab(*LAB), _workspace(tmp_path, "/b", "/c"))
    tasks = json.loads(render_json(report))["tasks"]
    assert "blocked_by" not in tasks[0] and tasks[1]["blocked_by"] == "t1"
    junit = render_junit(report)
    assert junit.count('type="DependencyFailure"') == 2 and junit.count('type="GradingFailure"') == 1


@pytest.mark.parametrize(
    "requires, words",
    [
        (["t9"], ["requires 't9'", "not a task of this lab", "t1, t2"]),
        (["t2"], ["cannot require itself"]),
        ("t1 t2", ["not a task of this lab"]),
        ([1], ["list of task ids"]),
        (["t1", "t1"], ["names a task twice"]),
    ],
)
def test_bad_requires_is_named(requires, words):
    with pytest.raises(LabError) as exc:
        _lab(_task("t1", "/a"), _task("t2", "/b", requires=requires))
    assert all(w in str(exc.value) for w in words), str(exc.value)


def test_requiring_a_later_task_is_refused():
    with pytest.raises(LabError, match="listed after it"):
        _lab(_task("t1", "/a", requires=["t2"]), _task("t2", "/b"))
