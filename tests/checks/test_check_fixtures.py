"""Per-check fixtures: every registered check id has a folder of small passing and failing inputs
(tests/checks/fixtures/<check id>/<case>/, format in that folder's README.md), run here by one test."""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

import grader.checks
from grader.checks import CheckContext
from grader.labs import Collect, Lab, Task, get_lab
from grader.results import Outcome, Status
from grader.runner import run_check
from grader.snapshot import Snapshot

FIXTURES = Path(__file__).parent / "fixtures"
CASE_KEYS = {"params", "expect", "message", "live", "task", "lab", "seed", "variant"}


def registered_check_ids() -> set[str]:
    """Every check id registered by a module under grader/checks (imported here, as lab.yaml would)."""
    ids = set()
    for info in pkgutil.iter_modules(grader.checks.__path__):
        module = importlib.import_module(f"grader.checks.{info.name}")
        ids |= {fn.check_id for fn in vars(module).values() if callable(fn) and hasattr(fn, "check_id")}
    return ids


@dataclass(frozen=True)
class Case:
    check_id: str
    dir: Path
    spec: dict[str, Any]

    @property
    def expect(self) -> Status:
        return Status(self.spec["expect"])


def load_cases() -> list[Case]:
    cases = []
    for check_dir in sorted(p for p in FIXTURES.iterdir() if p.is_dir()):
        for case_dir in sorted(p for p in check_dir.iterdir() if p.is_dir()):
            spec = (
                yaml.safe_load((case_dir / "case.yaml").read_text())
                if (case_dir / "case.yaml").is_file()
                else None
            )
            cases.append(Case(check_dir.name, case_dir, spec if isinstance(spec, dict) else {}))
    return cases


CASES = load_cases()


def throwaway_lab(case: Case, task: Task) -> Lab:
    """A lab holding only this task; its folder is the case folder, so start/ is ctx.start."""
    return Lab("lab0", case.dir, 1, "fixture", "", (), 1, ("controlplane",), (task,), Collect())


def context(case: Case) -> CheckContext:
    spec = case.spec
    params = spec.get("params") or {}
    live = bool(spec.get("live", False))
    task = Task(str(spec.get("task", "t1")), "fixture task", 1, case.check_id, params, "", live)
    snap = Snapshot(case.dir / "snapshot")
    if spec.get("lab"):
        from grader.workspace import pristine

        lab = get_lab(str(spec["lab"]))
        seed = str(spec["seed"]) if spec.get("seed") is not None else None
        return CheckContext(snap, lab, task, live, spec.get("variant") or {}, lambda: pristine(lab, seed))
    return CheckContext(
        snap,
        throwaway_lab(case, task),
        task,
        live,
        spec.get("variant") or {},
        lambda: Snapshot(case.dir / "start"),
    )


def run_case(case: Case) -> Outcome:
    return run_check(context(case), case.check_id, case.spec.get("params") or {})


@pytest.mark.parametrize("case", CASES, ids=[f"{c.check_id}/{c.dir.name}" for c in CASES])
def test_check_fixture(case: Case) -> None:
    unknown = set(case.spec) - CASE_KEYS
    assert not unknown, f"{case.dir}/case.yaml: unknown keys {sorted(unknown)} (allowed: {sorted(CASE_KEYS)})"
    assert case.spec.get("expect") in {s.value for s in Status}, (
        f"{case.dir}/case.yaml: expect pass|fail|error|skip"
    )
    assert case.spec.get("message"), f"{case.dir}/case.yaml: give a message fragment the outcome must contain"
    # git keeps no empty folders: an empty snapshot holds a .keep file
    assert (case.dir / "snapshot").is_dir(), (
        f"{case.dir}: no snapshot/ folder (add snapshot/.keep for an empty one)"
    )
    outcome = run_case(case)
    assert outcome.status is case.expect, f"{case.check_id} gave {outcome.status}: {outcome.message}"
    assert str(case.spec["message"]).lower() in outcome.message.lower(), outcome.message
    if outcome.status is Status.PASS:
        assert outcome.score == 1.0
    else:
        assert outcome.score < 1.0


def test_every_check_id_has_passing_and_failing_fixtures() -> None:
    registered = registered_check_ids()
    folders = {p.name for p in FIXTURES.iterdir() if p.is_dir()}
    assert not folders - registered, (
        f"fixture folders name no registered check: {sorted(folders - registered)}"
    )
    expected = {(c.check_id, c.spec.get("expect")) for c in CASES}
    lacking = sorted(
        cid for cid in registered if (cid, "pass") not in expected or (cid, "fail") not in expected
    )
    assert not lacking, f"check ids without both a passing and a failing fixture: {lacking}"
