"""Every lab proves itself: start scores 0, the solution scores full marks, and each wrong-answer fixture
fails exactly the tasks it declares (and passes the rest). Needs a source checkout (solutions/, tests/labs/).

Fixture folders: tests/labs/<lab>/{correct,wrong}/<name>/ with overlay/ (laid over start + solution),
optional delete.txt, and fixture.yaml: ``fails: [t3]`` (empty for correct answers), optional ``seed``.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from grader import safeyaml, variants
from grader.labs import Lab, repo_root
from grader.results import Report, Status
from grader.runner import grade
from grader.snapshot import Snapshot
from grader.solutions import apply_overlay, solution_dir
from grader.workspace import materialize

DEFAULT_SEEDS: tuple[str | None, ...] = (None, "alpha", "bravo")


@dataclass
class Case:
    lab: str
    name: str
    seed: str | None
    expect_fail: set[str] | None  # None = starting state (everything must fail)
    report: Report | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def label(self) -> str:
        return self.name + (f" (seed {self.seed})" if self.seed else "")


def fixtures_dir(lab: Lab) -> Path | None:
    root = repo_root()
    return root / "tests" / "labs" / lab.id if root else None


def fixture_cases(lab: Lab) -> list[tuple[str, Path, set[str], str | None]]:
    base = fixtures_dir(lab)
    out = []
    if base is None:
        return out
    for group in ("correct", "wrong"):
        gdir = base / group
        if not gdir.is_dir():
            continue
        for d in sorted(p for p in gdir.iterdir() if p.is_dir()):
            meta_path = d / "fixture.yaml"
            meta = safeyaml.load_one(meta_path.read_bytes()) if meta_path.is_file() else {}
            meta = meta or {}
            fails = set(meta.get("fails") or [])
            if group == "wrong" and not fails:
                raise ValueError(f"{meta_path}: a wrong-answer fixture must list the tasks it fails ('fails: [t1]')")
            seed = meta.get("seed")
            out.append((f"{group}/{d.name}", d, fails, str(seed) if seed is not None else None))
    return out


def build(lab: Lab, dest: Path, seed: str | None, *, solution: bool, overlay: Path | None = None) -> Snapshot:
    materialize(lab, dest, seed)
    if solution:
        apply_overlay(solution_dir(lab), dest, variants.values_for(lab, seed))
    if overlay is not None:
        apply_overlay(overlay, dest, variants.values_for(lab, seed))
    return Snapshot(dest)


def check_case(case: Case, report: Report, lab: Lab) -> None:
    case.report = report
    for t in report.tasks:
        if t.status is Status.SKIP:
            continue
        if t.status is Status.ERROR:
            case.problems.append(f"{t.id} could not be checked: {t.message}")
        elif case.expect_fail is None:
            if t.status is not Status.FAIL or t.points:
                case.problems.append(f"{t.id} earns {t.points:g} points in the starting state ({t.message})")
        elif t.id in case.expect_fail and t.status is not Status.FAIL:
            case.problems.append(f"{t.id} should fail but {t.status}: {t.message}")
        elif t.id not in case.expect_fail and t.status is not Status.PASS:
            case.problems.append(f"{t.id} should pass but {t.status}: {t.message}")
    unknown = (case.expect_fail or set()) - {t.id for t in lab.tasks}
    if unknown:
        case.problems.append(f"fixture names unknown tasks: {', '.join(sorted(unknown))}")


def run_lab(lab: Lab, seeds: tuple[str | None, ...] = DEFAULT_SEEDS,
            progress: Callable[[str], None] | None = None) -> list[Case]:
    cases: list[Case] = []
    tmp = Path(tempfile.mkdtemp(prefix=f"cks-selftest-{lab.id}-"))
    try:
        n = 0

        def run(name: str, seed: str | None, expect: set[str] | None, solution: bool, overlay: Path | None) -> None:
            nonlocal n
            n += 1
            case = Case(lab.id, name, seed, expect)
            if progress:
                progress(f"{lab.id} {case.label}")
            try:
                snap = build(lab, tmp / str(n), seed, solution=solution, overlay=overlay)
                check_case(case, grade(lab, snap), lab)
            except Exception as exc:  # a broken fixture is a self-test failure, reported, not a crash
                case.problems.append(f"could not build or grade: {type(exc).__name__}: {exc}")
            cases.append(case)

        for seed in seeds:
            run("start", seed, None, False, None)
            run("solution", seed, set(), True, None)
        for name, d, fails, seed in fixture_cases(lab):
            run(name, seed, fails, True, d)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return cases
