"""Issue 16, "must show": a throwaway lab with one offline and one live task and a check of its own, written
in a temporary folder (tests/live/throwaway_lab.py) and proven the way the kit's own labs are: `cks selftest`,
the per-check fixture runner, and `cks start/grade/reset --target` on the cluster double. It touches no file
of the checkout: the lab comes in through ``$CKS_LABS_PATH``, its check from the lab folder's checks/."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

import grader.checks
from grader.labs import get_lab, load_lab_dir
from grader.results import Status
from tests.live.throwaway_lab import CHECK_CASES, CHECK_ID, LAB_ID, REPO, WRONG, write_collection


def checkout_state() -> str | None:
    """A digest of the checkout's tracked changes and untracked files (content included), or None when this
    is not a git checkout."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        return None

    def git(*args: str) -> bytes:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, check=True, timeout=60).stdout

    h = hashlib.sha256(git("diff", "HEAD", "--binary"))
    for rel in sorted(git("ls-files", "--others", "--exclude-standard", "-z").split(b"\0")):
        if rel:
            h.update(rel)
            path = REPO / rel.decode("utf-8", "surrogateescape")
            h.update(path.read_bytes() if path.is_file() else b"")
    return h.hexdigest()


@pytest.fixture
def collection(tmp_path, monkeypatch):
    """The throwaway collection on ``$CKS_LABS_PATH``; the check registry is put back afterwards, and the
    checkout must be as it was."""
    before = checkout_state()
    labs = write_collection(tmp_path / "course")
    monkeypatch.setenv("CKS_LABS_PATH", str(labs))
    monkeypatch.delenv("CKS_LABS_DIR", raising=False)
    monkeypatch.setenv("CKS_SOURCE", str(REPO))  # `cks selftest` finds the kit wherever pytest runs from
    monkeypatch.setenv("NO_COLOR", "1")
    load_lab_dir.cache_clear()
    yield labs.parent
    load_lab_dir.cache_clear()
    assert grader.checks.forget_lab_checks(labs.parent) in ([], [CHECK_ID])
    assert checkout_state() == before, "the throwaway lab changed files of the checkout"


def cks(*args: str) -> tuple[int, str]:
    from grader.cli import cks as cks_group

    result = CliRunner().invoke(cks_group, list(args))
    return result.exit_code, result.output


def test_throwaway_lab_proves_itself_offline(collection):
    lab = get_lab(LAB_ID)
    assert lab.dir.is_relative_to(collection), "the lab comes from the collection, beside the kit's labs"
    assert get_lab("lab1").dir.is_relative_to(REPO / "labs")
    check_fn = grader.checks.get_check(CHECK_ID)
    assert grader.checks.needs_of(CHECK_ID).node_facts == ("apiserver-args",)
    assert check_fn.check_source == collection / "labs" / lab.dir.name / "checks" / "tlab.py"

    code, out = cks("selftest", LAB_ID, "-v")
    assert code == 0, out
    # start 0 and solution full under three variants, and every wrong answer failing exactly its tasks
    assert f"{LAB_ID}: 9/9 cases ok" in out, out
    for name in WRONG:
        assert f"ok  wrong/{name}: 0/2" in out, out

    from grader.selftest import run_lab

    cases = {c.name: c for c in run_lab(lab, (None,))}
    assert {t.id: t.status for t in cases["solution"].report.tasks} == {"t1": Status.PASS, "t2": Status.SKIP}
    for name, (_line, fails) in WRONG.items():
        failed = {t.id for t in cases[f"wrong/{name}"].report.tasks if t.status is Status.FAIL}
        assert failed == fails, (name, cases[f"wrong/{name}"].report.tasks)


def test_throwaway_check_fixtures_run_through_the_per_check_runner(collection, monkeypatch):
    from tests.checks import test_check_fixtures as runner

    get_lab(LAB_ID)  # loading the lab registers its check
    monkeypatch.setattr(runner, "FIXTURES", collection / "tests" / "checks" / "fixtures")
    cases = runner.load_cases()
    assert {(c.check_id, c.dir.name) for c in cases} == {(CHECK_ID, name) for name in CHECK_CASES}
    assert {c.spec["expect"] for c in cases} == {"pass", "fail"}
    for case in cases:
        runner.test_check_fixture(case)
    # the runner is not a rubber stamp: the same inputs with the opposite expectation fail it
    flipped = runner.Case(cases[0].check_id, cases[0].dir, {**cases[0].spec, "expect": "pass"})
    if cases[0].expect is Status.PASS:
        flipped = runner.Case(cases[0].check_id, cases[0].dir, {**cases[0].spec, "expect": "fail"})
    with pytest.raises(AssertionError):
        runner.test_check_fixture(flipped)


# ---- through the cluster double ---------------------------------------------------------------------------


@pytest.fixture
def double(cluster, collection):
    return cluster


def grade_live(target: str) -> dict[str, str]:
    code, out = cks("grade", LAB_ID, "--target", target, "--format", "json")
    assert code in (0, 1), out  # 1: tasks fail; anything else is a usage or collection error
    report = json.loads(out)
    return {t["id"]: t["status"] for t in report["tasks"]}


def apply_answer(cluster, seed: str, fixture: str | None = None) -> None:
    """What a learner does: the reference solution (or a wrong answer over it) applied to the cluster."""
    from grader.collectors import parse_target
    from grader.selftest import build, fixtures_dir
    from tests.live.test_double_labs import E2E

    lab = get_lab(LAB_ID)
    solved = Path(tempfile.mkdtemp(prefix="cks-throwaway-"))
    try:
        overlay = fixtures_dir(lab) / "wrong" / fixture if fixture else None
        build(lab, solved, seed, solution=True, overlay=overlay)
        E2E.sync(lab, parse_target(cluster.target), seed, solved)
    finally:
        shutil.rmtree(solved, ignore_errors=True)
    cluster.api.settle()


@pytest.mark.slow
def test_throwaway_lab_through_the_double(double):
    target, seed = double.target, "double-1"
    code, out = cks("start", LAB_ID, "--target", target, "--seed", seed)
    assert code == 0, out
    assert grade_live(target) == {"t1": "fail", "t2": "fail"}
    apply_answer(double, seed)
    assert grade_live(target) == {"t1": "pass", "t2": "pass"}
    for name in WRONG:
        code, out = cks("reset", LAB_ID, "--target", target)
        assert code == 0, out
        assert grade_live(target) == {"t1": "fail", "t2": "fail"}
        apply_answer(double, seed, name)
        # offline it fails t1 alone; on a cluster the running server lacks the retention too: t2 as well
        assert grade_live(target) == {"t1": "fail", "t2": "fail"}, name
