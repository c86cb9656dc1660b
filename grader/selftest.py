"""Every lab proves itself: start scores 0, the solution scores full marks, and each wrong-answer fixture
fails exactly the tasks it declares (and passes the rest). Needs a source checkout (solutions/, tests/labs/).

Fixture folders: tests/labs/<lab>/{correct,wrong}/<name>/ with overlay/ (laid over start + solution),
optional delete.txt, and fixture.yaml: ``fails: [t3]`` (empty for correct answers), optional ``seed``.
A file named after a variant's value uses a placeholder in its name, ``__var__`` (``role-__sa__.yaml``):
see :func:`placeholder_path`. Text inside files keeps ``{{ var }}``.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader import safeyaml, variants
from grader.labs import Lab, collection_root, repo_root
from grader.results import Report, Status
from grader.runner import grade
from grader.snapshot import Snapshot
from grader.solutions import apply_overlay, solution_dir
from grader.workspace import materialize, pristine

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
    root = collection_root(lab) or repo_root()  # a lab from $CKS_LABS_PATH keeps its own tests/labs/
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
                raise ValueError(
                    f"{meta_path}: a wrong-answer fixture must list the tasks it fails ('fails: [t1]')"
                )
            seed = meta.get("seed")
            out.append((f"{group}/{d.name}", d, fails, str(seed) if seed is not None else None))
    return out


def build(lab: Lab, dest: Path, seed: str | None, *, solution: bool, overlay: Path | None = None) -> Snapshot:
    if lab.generator:
        # a generated start (lab7's log) is built once per seed and copied: the grader builds that same
        # pristine start anyway, and generating costs far more than copying
        shutil.copytree(pristine(lab, seed).root, dest, dirs_exist_ok=True)
    else:
        materialize(lab, dest, seed)
    if solution:
        apply_overlay(solution_dir(lab), dest, variants.values_for(lab, seed))
    if overlay is not None:
        values = variants.values_for(lab, seed)
        with tempfile.TemporaryDirectory(prefix="cks-fixture-") as staged:
            apply_overlay(stage_placeholders(overlay, values, Path(staged)), dest, values)
    return Snapshot(dest)


_PLACEHOLDER = re.compile(r"__([A-Za-z][A-Za-z0-9_]*?)__")


def placeholder_path(rel: str, values: dict[str, Any]) -> str:
    """A fixture path with its placeholders (``__save_file__``, ``role-__sa__.yaml``) replaced by the
    variant's values. Fixture file names use this plain form (no spaces or braces, which break globbing and
    editors); the files' text keeps ``{{ var }}`` templating. Names of no variable (``__init__``) stay."""
    return _PLACEHOLDER.sub(
        lambda m: variants.render_text("{{ " + m[1] + " }}", values) if m[1] in values else m[0], rel
    )


def stage_placeholders(fixture: Path, values: dict[str, Any], staged: Path) -> Path:
    """``fixture`` itself when no name holds a placeholder, else a copy in ``staged`` with names resolved."""
    files = sorted(fixture.rglob("*"))
    if not any(_PLACEHOLDER.search(f.name) for f in files):
        return fixture
    for src in files:
        target = staged / placeholder_path(src.relative_to(fixture).as_posix(), values)
        if src.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)
    return staged


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


def run_lab(
    lab: Lab, seeds: tuple[str | None, ...] = DEFAULT_SEEDS, progress: Callable[[str], None] | None = None
) -> list[Case]:
    cases: list[Case] = []
    tmp = Path(tempfile.mkdtemp(prefix=f"cks-selftest-{lab.id}-"))
    try:
        n = 0

        def run(
            name: str, seed: str | None, expect: set[str] | None, solution: bool, overlay: Path | None
        ) -> None:
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
