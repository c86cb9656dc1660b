"""lab1 end to end: start 0, solution 10 (every variant), each fixture loses exactly its tasks, with messages
that name a probe request."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader import variants
from grader.labs import get_lab
from grader.results import Status
from grader.runner import grade
from grader.selftest import build, fixture_cases

LAB = get_lab("lab1")
FIXTURES = fixture_cases(LAB)
TRAPS = {
    "catch-all-first",
    "deployments-in-core-group",
    "secret-singular",
    "namespace-wide-rule-before-secrets",
    "pods-star-for-exec",
    "pods-for-exec",
    "singular-verb-key",
    "singular-resource-key",
    "v1beta1",
}


def _seed_for(ns: str) -> str:
    """A seed whose variant uses namespace ``ns`` (the mapping is a hash, so search a few)."""
    for i in range(500):
        if variants.pick(LAB.id, f"s{i}", LAB.variables)["ns"] == ns:
            return f"s{i}"
    raise AssertionError(f"no seed gives {ns}")


def test_lab_matches_the_issue() -> None:
    assert [(t.id, t.points) for t in LAB.tasks] == [
        ("t1", 1),
        ("t2", 2),
        ("t3", 2),
        ("t4", 2),
        ("t5", 1),
        ("t6", 1),
        ("t7", 1),
    ]
    assert LAB.max_points == 10
    assert [(f.node, f.path) for f in LAB.collect.files] == [
        ("controlplane", "/etc/kubernetes/audit/policy.yaml")
    ]
    assert variants.pick(LAB.id, None, LAB.variables) == {"ns": "prod"}
    assert len(LAB.variables["ns"]["choices"]) >= 3


def test_start_scores_zero_and_says_where_to_write(tmp_path: Path) -> None:
    snap = build(LAB, tmp_path / "ws", None, solution=False)
    assert not snap.exists("controlplane", "/etc/kubernetes/audit/policy.yaml")
    assert "The app namespace for this lab instance is: prod" in snap.read_text(
        "controlplane", "/etc/kubernetes/audit/README.txt"
    )
    report = grade(LAB, snap)
    assert report.score == 0 and report.max_score == 10
    t1, *dependents = report.tasks
    assert t1.status is Status.FAIL and "no audit policy at controlplane:" in t1.message and t1.hint
    # said once, in t1; the others name it instead of repeating it
    assert all(
        t.status is Status.FAIL and t.blocked_by == "t1" and "no audit policy" not in t.message
        for t in dependents
    )


@pytest.mark.parametrize("ns", LAB.variables["ns"]["choices"])
def test_solution_scores_full_marks_for_every_namespace(tmp_path: Path, ns: str) -> None:
    seed = None if ns == "prod" else _seed_for(ns)
    report = grade(LAB, build(LAB, tmp_path / "ws", seed, solution=True))
    assert report.score == 10, [(t.id, t.message) for t in report.tasks if t.status is not Status.PASS]


def test_an_answer_copied_from_another_variant_fails_task_4(tmp_path: Path) -> None:
    seed = _seed_for("payments")
    copied = build(LAB, tmp_path / "default", None, solution=True)  # the answer for prod
    target = build(LAB, tmp_path / "seeded", seed, solution=False)
    policy = copied.read_bytes("controlplane", "/etc/kubernetes/audit/policy.yaml")
    (target.root / "nodes/controlplane/etc/kubernetes/audit/policy.yaml").write_bytes(policy)
    report = grade(LAB, target)
    failed = {t.id: t.message for t in report.tasks if t.status is not Status.PASS}
    assert set(failed) == {"t4"}
    assert failed["t4"].startswith("create pods -n payments as alice: expected RequestResponse, got Metadata")


def test_fixture_set_covers_the_traps() -> None:
    wrong = {name.split("/", 1)[1] for name, *_ in FIXTURES if name.startswith("wrong/")}
    correct = [name for name, *_ in FIXTURES if name.startswith("correct/")]
    assert wrong >= TRAPS
    assert len(wrong) >= 8 and len(correct) >= 3


@pytest.mark.parametrize("name,path,fails,seed", FIXTURES, ids=[f[0] for f in FIXTURES])
def test_fixture_loses_exactly_its_tasks(
    tmp_path: Path, name: str, path: Path, fails: set[str], seed: str | None
) -> None:
    report = grade(LAB, build(LAB, tmp_path / "ws", seed, solution=True, overlay=path))
    got = {t.id for t in report.tasks if t.status is not Status.PASS}
    assert got == fails, {t.id: t.message for t in report.tasks if t.id in got ^ fails}
    for t in report.tasks:
        assert t.status in (Status.PASS, Status.FAIL)
        if t.status is Status.FAIL and t.id != "t1" and not t.blocked_by:
            # a behaviour task names one probe request that went wrong, and the rule that decided it
            assert ": expected " in t.message or "is recorded" in t.message, t.message
            assert "rules[" in t.message or "no rule matched" in t.message, t.message
            assert t.evidence and t.evidence[0].where.startswith(
                "controlplane:/etc/kubernetes/audit/policy.yaml"
            )
    assert report.score == 10 - sum(t.max_points for t in report.tasks if t.id in fails)


def test_grade_cli_json_on_the_solution(tmp_path: Path) -> None:
    from grader.cli import cks

    ws = tmp_path / "ws"
    build(LAB, ws, None, solution=True)
    result = CliRunner().invoke(cks, ["grade", "lab1", "--workspace", str(ws), "--format", "json"])
    data = json.loads(result.stdout)
    assert result.exit_code == 0 and (data["score"], data["max_score"]) == (10, 10)


def test_default_readme_is_the_issue_lab() -> None:
    text = variants.render_text(LAB.readme.read_text(), variants.pick(LAB.id, None, LAB.variables))
    assert "{{" not in text
    assert "in namespace `prod` are logged at `RequestResponse`" in text
    for n, points in enumerate([1, 2, 2, 2, 1, 1, 1], start=1):
        assert f"{n}. **({points} point{'s' if points > 1 else ''})**" in text
