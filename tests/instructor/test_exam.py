"""Exam mode with an injectable clock: the deadline survives, status shows no results, time-up grades."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader import exam
from grader.cli.exam import exam_group
from tests.instructor._instructor_lab import answer, app_for


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


def run(args: list[str], clock: FakeClock, base: Path):
    return CliRunner().invoke(
        exam_group,
        [*args, "--dir", str(base)],
        obj={"clock": clock},
        catch_exceptions=False,
        env={"NO_COLOR": "1"},
    )


def test_deadline_is_an_absolute_utc_time_in_a_file(labs_root, tmp_path: Path) -> None:
    clock, base = FakeClock(), tmp_path / "exam"
    r = run(["start", "--labs", "lab90,lab91", "--minutes", "30", "--seed", "s1"], clock, base)
    assert r.exit_code == 0, r.output
    state = (base / "exam.yaml").read_text()
    assert f"deadline: '{(clock.now + timedelta(minutes=30)):%Y-%m-%dT%H:%M:%SZ}'" in state
    # a new process (a new terminal) reads the same deadline back
    loaded = exam.load(base)
    assert loaded.deadline == clock.now + timedelta(minutes=30) and loaded.labs == ["lab90", "lab91"]
    assert (base / "lab90" / "cks.yaml").is_file() and (base / "lab91" / "cks.yaml").is_file()


def test_status_shows_time_left_and_attempts_but_no_results(labs_root, tmp_path: Path) -> None:
    clock, base = FakeClock(), tmp_path / "exam"
    run(["start", "--labs", "lab90,lab91", "--minutes", "30", "--seed", "s1"], clock, base)
    clock.advance(minutes=12, seconds=30)
    lab = exam.get_lab("lab90")
    answer(base / "lab90", app_for(lab, "s1"))  # a full answer to lab90; lab91 untouched
    r = run(["status", "--format", "json"], clock, base)
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["seconds_left"] == 17 * 60 + 30
    assert [(q["lab"], q["attempted"]) for q in data["questions"]] == [("lab90", True), ("lab91", False)]
    table = run(["status"], clock, base).output
    assert "Time left: 17m 30s" in table and "1 of 2 attempted" in table
    for word in ("PASS", "FAIL", "score", "Score", "points"):
        assert word not in table, f"status leaks results: {word!r}"
    assert not (base / "result.json").exists()


def test_finish_grades_with_pass_mark(labs_root, tmp_path: Path) -> None:
    clock, base = FakeClock(), tmp_path / "exam"
    run(["start", "--labs", "lab90,lab91", "--minutes", "30", "--seed", "s2"], clock, base)
    answer(base / "lab90", app_for(exam.get_lab("lab90"), "s2"))  # 3 of 4 points = 75%
    clock.advance(minutes=20)
    r = run(["finish"], clock, base)
    assert r.exit_code == 0, r.output
    assert "Exam score: 3/4 (75%), pass mark 67%: PASSED" in r.output
    assert "time used 20m" in r.output
    assert "hint" in r.output.lower() and "write /etc/banner" in r.output  # per-task feedback for the miss
    # finishing again shows the frozen result, even if files change later
    (base / "lab91" / "nodes" / "controlplane" / "etc" / "banner").write_text("late\n")
    again = run(["finish", "--format", "json"], clock, base)
    assert json.loads(again.output)["score"] == 3


def test_below_the_pass_mark_fails(labs_root, tmp_path: Path) -> None:
    clock, base = FakeClock(), tmp_path / "exam"
    run(["start", "--labs", "lab90,lab91", "--minutes", "30", "--seed", "s3"], clock, base)
    answer(base / "lab90", app_for(exam.get_lab("lab90"), "s3"), files=("config.yaml",))  # 2 of 4 = 50%
    r = run(["finish"], clock, base)
    assert r.exit_code == 1
    assert "Exam score: 2/4 (50%), pass mark 67%: NOT PASSED" in r.output


def test_any_command_after_time_up_grades(labs_root, tmp_path: Path) -> None:
    clock, base = FakeClock(), tmp_path / "exam"
    run(["start", "--labs", "lab91", "--minutes", "10"], clock, base)
    (base / "lab91" / "nodes" / "controlplane" / "etc" / "banner").write_text("hello\n")
    clock.advance(minutes=10, seconds=1)
    r = run(["status"], clock, base)
    assert "Time is up" in r.output and "Exam score: 1/1 (100%)" in r.output and r.exit_code == 0
    assert exam.load(base).finished == exam.load(base).deadline
    # starting anew refuses to discard the graded exam unless forced
    r = run(["start", "--labs", "lab91"], clock, base)
    assert r.exit_code == 2 and "already exists" in r.output
    r = run(["start", "--labs", "lab91", "--force"], clock, base)
    assert r.exit_code == 0 and exam.load(base).finished is None


def test_finish_if_due_for_other_commands(labs_root, tmp_path: Path) -> None:
    clock, base = FakeClock(), tmp_path / "exam"
    run(["start", "--labs", "lab91", "--minutes", "5"], clock, base)
    assert exam.finish_if_due(base, clock) is None
    clock.advance(minutes=6)
    result = exam.finish_if_due(base, clock)
    assert result is not None and result.score == 0 and not result.passed


def test_usage_errors(labs_root, tmp_path: Path) -> None:
    clock = FakeClock()
    assert run(["status"], clock, tmp_path / "none").exit_code == 2
    r = run(["start", "--labs", "lab404"], clock, tmp_path / "e")
    assert r.exit_code == 2 and "no lab 'lab404'" in r.output


@pytest.mark.parametrize("bad", ["deadline: soon", "labs: 3"])
def test_damaged_state_file_is_a_clear_error(labs_root, tmp_path: Path, bad: str) -> None:
    clock, base = FakeClock(), tmp_path / "exam"
    run(["start", "--labs", "lab91"], clock, base)
    text = (base / "exam.yaml").read_text()
    key = bad.split(":")[0]
    lines = [bad if line.startswith(key + ":") else line for line in text.splitlines()]
    (base / "exam.yaml").write_text("\n".join(lines) + "\n")
    r = run(["status"], clock, base)
    assert r.exit_code == 2 and "exam.yaml" in r.output


def test_mock_exam_lab8_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default exam is lab8; its solution for the exam's seed passes, the untouched start fails."""
    monkeypatch.delenv("CKS_LABS_DIR", raising=False)
    from grader.labs import repo_root
    from grader.solutions import apply_solution

    if repo_root() is None or not (repo_root() / "solutions" / "lab8").is_dir():
        pytest.skip("needs the source checkout's solutions/lab8")
    clock, base = FakeClock(), tmp_path / "exam"
    r = run(["start"], clock, base)
    assert r.exit_code == 0, r.output
    state = exam.load(base)
    assert state.labs == ["lab8"] and state.minutes == 120 and state.seed
    apply_solution(exam.get_lab("lab8"), base / "lab8", state.seed)
    clock.advance(minutes=95)
    status = json.loads(run(["status", "--format", "json"], clock, base).output)
    assert status["seconds_left"] == 25 * 60 and status["questions"][0]["attempted"]
    r = run(["finish"], clock, base)
    assert "Exam score: 31/31 (100%), pass mark 67%: PASSED" in r.output and r.exit_code == 0


@pytest.mark.parametrize(
    "bad",
    [
        "minutes: abc",
        "minutes: [1, 2]",
        "start_hashes: 7",
        "labs: [lab90, 3]",
        "seal: {a: 1}\nminutes: -5",
        "started: [x]",
    ],
)
def test_tampered_state_values_are_a_clear_error(labs_root, tmp_path: Path, bad: str) -> None:
    clock, base = FakeClock(), tmp_path / "exam"
    run(["start", "--labs", "lab91"], clock, base)
    text = (base / "exam.yaml").read_text()
    keys = [b.split(":")[0] for b in bad.splitlines()]
    lines = [
        line for line in text.splitlines() if line.split(":")[0] not in keys and not line.startswith(" ")
    ]
    (base / "exam.yaml").write_text("\n".join(lines + bad.splitlines()) + "\n")
    for cmd in (["status"], ["finish"]):
        r = run(cmd, clock, base)  # catch_exceptions=False: a traceback fails the test
        assert r.exit_code == 2 and "exam.yaml" in r.output, (bad, r.output)


def test_state_that_is_not_yaml_and_result_that_is_not_json(labs_root, tmp_path: Path) -> None:
    clock, base = FakeClock(), tmp_path / "exam"
    run(["start", "--labs", "lab91"], clock, base)
    assert run(["finish"], clock, base).exit_code in (0, 1)
    (base / "result.json").write_text("{not json")
    r = run(["finish"], clock, base)  # graded again from the workspaces
    assert r.exit_code in (0, 1) and "Exam score:" in r.output
    (base / "result.json").write_text('{"reports": [{"tasks": [{"id": 1}]}]}')
    r = run(["status"], clock, base)
    assert r.exit_code in (0, 1) and "Exam score:" in r.output
    (base / "exam.yaml").write_bytes(b"\x00\xff: [unclosed")
    assert run(["status"], clock, base).exit_code == 2


def test_grade_refuses_a_running_exam_question_then_grades_after_finish(labs_root, tmp_path: Path) -> None:
    from grader.cli import grade_cmd

    base = tmp_path / "exam"
    r = CliRunner().invoke(
        exam_group,
        ["start", "--labs", "lab90", "--minutes", "30", "--dir", str(base)],
        env={"NO_COLOR": "1"},
        catch_exceptions=False,
    )
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(grade_cmd, ["lab90", "-w", str(base / "lab90")], catch_exceptions=False)
    assert r.exit_code == 2 and "still running" in r.output and "cks exam finish" in r.output
    from grader.cli.instructor import submit_cmd

    r = CliRunner().invoke(
        submit_cmd,
        ["lab90", "-w", str(base / "lab90"), "-o", str(tmp_path / "b.tgz")],
        catch_exceptions=False,
    )
    assert r.exit_code == 2 and "still running" in r.output and not (tmp_path / "b.tgz").exists()
    CliRunner().invoke(exam_group, ["finish", "--dir", str(base)], catch_exceptions=False)
    r = CliRunner().invoke(grade_cmd, ["lab90", "-w", str(base / "lab90")], catch_exceptions=False)
    assert r.exit_code in (0, 1), r.output


def test_submit_carries_the_sealed_record_and_regrade_checks_it(labs_root, tmp_path: Path) -> None:
    from grader.instructor.regrade import regrade_many
    from grader.instructor.submit import submit

    clock, base = FakeClock(), tmp_path / "exam"
    run(["start", "--labs", "lab90", "--minutes", "30", "--seed", "s1"], clock, base)
    lab = exam.get_lab("lab90")
    answer(base / "lab90", app_for(lab, "s1"))
    clock.advance(minutes=10)
    run(["finish"], clock, base)
    sub = submit(lab, base / "lab90", tmp_path / "honest.tar.gz", "hana")
    rec = sub.meta["exam"]
    assert (
        rec["fields"]["deadline"]
        == f"{clock.now - timedelta(minutes=10) + timedelta(minutes=30):%Y-%m-%dT%H:%M:%SZ}"
    )
    assert rec["finished"] and rec["seal"] and rec["workspace_copy"]["deadline"] == rec["fields"]["deadline"]
    [honest] = regrade_many([sub.path]).bundles
    assert not [f for f in honest.flags if f.startswith(("exam record", "late"))], honest.flags
    # move the deadline by editing exam.yaml alone: the seal and the workspace's copy disagree
    text = (base / "exam.yaml").read_text()
    later = f"{clock.now + timedelta(hours=5):%Y-%m-%dT%H:%M:%SZ}"
    (base / "exam.yaml").write_text(re.sub(r"deadline: '[^']+'", f"deadline: '{later}'", text))
    # and change an answer after finishing
    (base / "lab90" / "nodes" / "controlplane" / "etc" / app_for(lab, "s1") / "config.yaml").write_text(
        "changed\n"
    )
    sub2 = submit(lab, base / "lab90", tmp_path / "moved.tar.gz", "hana")
    [moved] = regrade_many([sub2.path]).bundles
    flags = " | ".join(moved.flags)
    assert "does not match its seal" in flags and "disagrees with the copy" in flags
    assert "differ from what was graded at `cks exam finish`" in flags and moved.held


def test_force_removes_only_what_the_exam_created(labs_root, tmp_path: Path) -> None:
    clock, base = FakeClock(), tmp_path / "exam"
    run(["start", "--labs", "lab91"], clock, base)
    (base / "my-notes.txt").write_text("mine")
    r = run(["start", "--labs", "lab91", "--force"], clock, base)
    assert r.exit_code == 2 and "my-notes.txt" in r.output and (base / "my-notes.txt").read_text() == "mine"
    assert (base / "lab91" / "cks.yaml").is_file()  # nothing was deleted
    (base / "my-notes.txt").unlink()
    r = run(["start", "--labs", "lab91", "--force", "--seed", "new"], clock, base)
    assert r.exit_code == 0 and exam.load(base).seed == "new"


def test_status_lists_lab8s_six_questions_with_points(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CKS_LABS_DIR", raising=False)
    clock, base = FakeClock(), tmp_path / "exam"
    assert run(["start", "--seed", "q"], clock, base).exit_code == 0
    ws = base / "lab8"
    (ws / "cluster" / "q4-deployment.yaml").write_text(
        (ws / "cluster" / "q4-deployment.yaml").read_text() + "# x\n"
    )
    manifest = ws / "nodes" / "controlplane" / "etc" / "kubernetes" / "manifests" / "kube-apiserver.yaml"
    manifest.write_text(manifest.read_text() + "# x\n")
    data = json.loads(run(["status", "--format", "json"], clock, base).output)
    rows = [(q["question"], q["points"], q["attempted"]) for q in data["questions"]]
    assert [r[0] for r in rows] == ["Q1", "Q2", "Q3", "Q4", "Q5", "Q6"]
    assert sum(r[1] for r in rows) == 31
    assert {r[0] for r in rows if r[2]} == {"Q2", "Q4"}
    table = run(["status"], clock, base).output
    assert "Q6" in table and "audit policy" in table and "2 of 6 attempted" in table


def test_exam_commands_find_the_exam_from_inside_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 12 item 4: `cks exam status` inside the exam folder or one of its questions finds the exam (the
    nearest exam.yaml upwards); `cks exam start` there says the exam exists, and inside a lab's workspace it
    refuses to nest."""
    monkeypatch.delenv("CKS_LABS_DIR", raising=False)
    monkeypatch.delenv("CKS_EXAM_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    assert runner.invoke(exam_group, ["start", "--seed", "inside"]).exit_code == 0
    base = tmp_path / "cks-workspace" / "exam"
    for where in (base, base / "lab8"):
        monkeypatch.chdir(where)
        r = runner.invoke(exam_group, ["status", "--format", "json"])
        assert r.exit_code == 0, r.output
        assert [q["question"] for q in json.loads(r.output)["questions"]][:2] == ["Q1", "Q2"]
        r = runner.invoke(exam_group, ["start"])
        assert r.exit_code == 2 and "already exists" in r.output
    lab_ws = tmp_path / "ws"
    from grader.labs import get_lab
    from grader.workspace import materialize

    materialize(get_lab("lab1"), lab_ws)
    monkeypatch.chdir(lab_ws)
    r = runner.invoke(exam_group, ["start"])
    assert r.exit_code == 2 and "start the exam outside it" in r.output
    assert not (lab_ws / "cks-workspace").exists()
