"""`cks selftest` inside the suite: every shipped lab proves itself (start 0, solution full, fixtures exact)."""

from __future__ import annotations

import pytest

from grader.labs import all_labs
from grader.selftest import DEFAULT_SEEDS, run_lab

LABS = all_labs()


@pytest.mark.parametrize("lab", LABS, ids=[lab.id for lab in LABS])
def test_lab_proves_itself(lab):
    cases = run_lab(lab, DEFAULT_SEEDS)
    kinds = {c.name.split("/")[0] for c in cases}
    assert {"start", "solution"} <= kinds
    bad = [f"{c.label}: {'; '.join(c.problems)}" for c in cases if not c.ok]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("lab", LABS, ids=[lab.id for lab in LABS])
def test_lab_has_wrong_answer_fixtures(lab):
    from grader.selftest import fixture_cases

    wrong = [name for name, *_ in fixture_cases(lab) if name.startswith("wrong/")]
    assert len(wrong) >= 3, f"{lab.id} needs wrong-answer fixtures under tests/labs/{lab.id}/wrong/"


def test_selftest_catches_a_lab_that_gives_points_for_nothing(tmp_path, monkeypatch):
    """The self-test itself must be able to fail: a start state that already passes is reported."""
    from pathlib import Path

    from grader.labs import load_lab_dir
    from grader.runner import grade
    from grader.selftest import Case, check_case
    from grader.snapshot import Snapshot

    lab = load_lab_dir(Path(__file__).resolve().parents[1] / "fixtures" / "labs" / "lab90-demo")
    ws = tmp_path / "nodes" / "cp" / "etc"
    ws.mkdir(parents=True)
    (ws / "greeting").write_text("hi")
    case = Case(lab.id, "start", None, None)
    check_case(case, grade(lab, Snapshot(tmp_path)), lab)
    assert not case.ok and "t1 earns 2 points in the starting state" in case.problems[0]
    case = Case(lab.id, "wrong/x", None, {"t1"})
    check_case(case, grade(lab, Snapshot(tmp_path)), lab)
    assert any("t1 should fail but pass" in p for p in case.problems)
    assert any("t2 should pass but fail" in p for p in case.problems)


def test_fixture_file_names_have_no_spaces_or_braces():
    """Templated names use the placeholder form (`role-__sa__.yaml`): spaces and braces break globbing,
    `xargs` and editors' quick-open."""
    from pathlib import Path

    root = Path(__file__).resolve().parent
    bad = [str(p.relative_to(root)) for p in root.rglob("*") if any(c in p.name for c in " {}")]
    assert not bad, bad


def test_placeholders_in_fixture_names_become_the_variants_values(tmp_path):
    from grader.selftest import placeholder_path, stage_placeholders

    values = {"sa": "report-runner", "save_file": "shadow.txt"}
    assert placeholder_path("cluster/rbac/role-__sa__.yaml", values) == "cluster/rbac/role-report-runner.yaml"
    assert placeholder_path("opt/__save_file__", values) == "opt/shadow.txt"
    assert placeholder_path("pkg/__init__.py", values) == "pkg/__init__.py"  # not a variable: unchanged
    fixture = tmp_path / "fx"
    (fixture / "overlay" / "rbac").mkdir(parents=True)
    (fixture / "overlay" / "rbac" / "role-__sa__.yaml").write_text("name: {{ sa }}\n")
    staged = stage_placeholders(fixture, values, tmp_path / "staged")
    assert (staged / "overlay" / "rbac" / "role-report-runner.yaml").read_text() == "name: {{ sa }}\n"
