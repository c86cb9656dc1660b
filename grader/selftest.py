"""Every lab proves itself: start scores 0, the solution scores full marks, and each wrong-answer fixture
fails exactly the tasks it declares (and passes the rest). Needs a source checkout (solutions/, tests/labs/).

Fixture folders: tests/labs/<lab>/{correct,wrong}/<name>/ with fixture.yaml: ``fails: [t3]`` (empty for
correct answers), optional ``seed``, optional ``edits`` (small changes to files of start + solution, see
:func:`apply_edits`); optional overlay/ (files laid over start + solution) and delete.txt. They apply in that
order: overlay/, delete.txt, edits (:func:`apply_fixture`). A file named after a variant's value uses a
placeholder in its name, ``__var__`` (``role-__sa__.yaml``): see :func:`grader.variants.render_path`. Text
inside files and edits keeps ``{{ var }}``.
"""

from __future__ import annotations

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


FIXTURE_KEYS = {"fails", "seed", "edits"}  # fixture.yaml: a misspelt key must not be silently ignored


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
            meta = fixture_meta(meta_path)
            fails = set(meta.get("fails") or [])
            if group == "wrong" and not fails:
                raise ValueError(
                    f"{meta_path}: a wrong-answer fixture must list the tasks it fails ('fails: [t1]')"
                )
            seed = meta.get("seed")
            out.append((f"{group}/{d.name}", d, fails, str(seed) if seed is not None else None))
    return out


def fixture_meta(meta_path: Path) -> dict[str, Any]:
    """fixture.yaml as a mapping ({} when absent): a YAML error or a misspelt key is a ValueError that
    names the file."""
    if not meta_path.is_file():
        return {}
    try:
        meta = safeyaml.load_one(meta_path.read_bytes()) or {}
    except ValueError as exc:  # safeyaml's YamlProblem: say which fixture
        raise ValueError(f"{_display(meta_path)}: {exc}") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{_display(meta_path)}: expected a mapping (fails: [...], edits: [...])")
    unknown = set(meta) - FIXTURE_KEYS
    if unknown:
        raise ValueError(f"{_display(meta_path)}: unknown keys {', '.join(sorted(map(str, unknown)))}")
    return meta


def build(lab: Lab, dest: Path, seed: str | None, *, solution: bool, overlay: Path | None = None) -> Snapshot:
    """The workspace of a self-test case: the start for ``seed``, with ``solution`` the reference answer laid
    over it, then the fixture folder ``overlay`` (if any) applied by :func:`apply_fixture`."""
    if lab.generator:
        # a generated start (lab7's log) is built once per seed and copied: the grader builds that same
        # pristine start anyway, and generating costs far more than copying
        shutil.copytree(pristine(lab, seed).root, dest, dirs_exist_ok=True)
    else:
        materialize(lab, dest, seed)
    if solution:
        apply_overlay(solution_dir(lab), dest, variants.values_for(lab, seed))
    if overlay is not None:
        apply_fixture(overlay, dest, variants.values_for(lab, seed))
    return Snapshot(dest)


def apply_fixture(fixture: Path, dest: Path, values: dict[str, Any]) -> None:
    """Apply a fixture folder to the workspace ``dest`` (normally start + solution): its ``overlay/``, then
    its ``delete.txt``, then the ``edits`` of its fixture.yaml, in that order. The one way a fixture is
    applied: the self-test, the suite and the cluster double all come through here."""
    apply_overlay(fixture, dest, values)
    apply_edits(fixture_edits(fixture), dest, values)


class FixtureError(ValueError):
    """A fixture that cannot be applied as written: the message names the fixture, the file and the anchor."""


@dataclass(frozen=True)
class Edit:
    """One change to a file of the built workspace, as fixture.yaml's ``edits`` list states it."""

    where: str  # "tests/labs/lab1/wrong/x/fixture.yaml, edit 2": for messages
    file: str  # workspace-relative path, ``{{ var }}`` allowed
    kind: str  # "replace", "after", "before" or "delete"
    anchor: str  # the text to find (exactly once in the file)
    text: str = ""  # the replacement (replace) or the lines to insert (after, before)
    through: str | None = None  # delete: the last line of the range (its anchor, also exactly once)


EDIT_KINDS = {"replace": "with", "after": "insert", "before": "insert", "delete": "through"}


def fixture_edits(fixture: Path) -> list[Edit]:
    """The ``edits`` of ``fixture/fixture.yaml``, checked for shape (an empty list when it has none)."""
    meta_path = fixture / "fixture.yaml"
    raw = fixture_meta(meta_path).get("edits")
    if raw is None:
        return []
    label = _display(meta_path)
    if not isinstance(raw, list):
        raise FixtureError(f"{label}: 'edits' must be a list of edits, one mapping each")
    return [_parse_edit(item, f"{label}, edit {i}") for i, item in enumerate(raw, 1)]


def _parse_edit(item: Any, where: str) -> Edit:
    if not isinstance(item, dict):
        raise FixtureError(f"{where}: an edit is a mapping such as {{file: ..., replace: ..., with: ...}}")
    kinds = [k for k in EDIT_KINDS if k in item]
    if len(kinds) != 1:
        raise FixtureError(f"{where}: an edit needs exactly one of {', '.join(EDIT_KINDS)} (found {kinds})")
    kind = kinds[0]
    second = EDIT_KINDS[kind]
    unknown = set(item) - {"file", kind, second}
    if unknown:
        raise FixtureError(f"{where}: unknown keys {', '.join(sorted(map(str, unknown)))} in a {kind} edit")
    if kind != "delete" and second not in item:
        raise FixtureError(f"{where}: a {kind} edit needs '{second}'")
    for key in ("file", kind, second):
        if key in item and not isinstance(item[key], str):
            raise FixtureError(f"{where}: '{key}' must be a string (quote it): {item[key]!r}")
    if not item.get("file"):
        raise FixtureError(f"{where}: an edit needs 'file' (a path in the workspace)")
    if not item[kind]:
        raise FixtureError(f"{where}: the {kind} anchor is empty")
    if kind == "delete":
        return Edit(where, item["file"], kind, item[kind], through=item.get("through"))
    return Edit(where, item["file"], kind, item[kind], item[second])


def apply_edits(edits: list[Edit], dest: Path, values: dict[str, Any]) -> None:
    """Apply ``edits`` in order to the files under ``dest``; ``{{ var }}`` in paths and texts is rendered."""
    for edit in edits:
        path = _edit_target(edit, dest, values)
        before = path.read_text(encoding="utf-8")
        after = edited_text(edit, before, values)
        if after == before:
            raise FixtureError(f"{edit.where} ({edit.file}): the edit changes nothing")
        path.write_text(after, encoding="utf-8")


def edited_text(edit: Edit, text: str, values: dict[str, Any]) -> str:
    """``text`` with ``edit`` applied. Every anchor must occur exactly once: a missing or repeated anchor
    would let a fixture silently test something else, so it is an error."""
    anchor = variants.render_text(edit.anchor, values)
    start = _find_once(edit, text, anchor)
    end = start + len(anchor)
    if edit.kind == "replace":
        return text[:start] + variants.render_text(edit.text, values) + text[end:]
    if edit.kind == "delete":
        if edit.through is not None:
            last = variants.render_text(edit.through, values)
            at = _find_once(edit, text, last)
            if at < start:
                raise FixtureError(
                    f"{edit.where} ({edit.file}): 'through' {edit.through!r} comes before {edit.anchor!r}"
                )
            end = max(end, at + len(last))
        return text[: _line_start(text, start)] + text[_line_end(text, end - 1) :]
    lines = variants.render_text(edit.text, values)
    lines = lines if lines.endswith("\n") else lines + "\n"
    if edit.kind == "before":
        at = _line_start(text, start)
        return text[:at] + lines + text[at:]
    at = _line_end(text, end - 1)
    head = text[:at] if at == 0 or text[at - 1] == "\n" else text[:at] + "\n"
    return head + lines + text[at:]


def _find_once(edit: Edit, text: str, anchor: str) -> int:
    first = text.find(anchor)
    if first < 0:
        raise FixtureError(f"{edit.where} ({edit.file}): anchor {anchor!r} is not in the file")
    if text.find(anchor, first + 1) >= 0:
        raise FixtureError(
            f"{edit.where} ({edit.file}): anchor {anchor!r} occurs {_count(text, anchor)} times; "
            "an anchor must occur exactly once (quote more of the line)"
        )
    return first


def _count(text: str, anchor: str) -> int:
    n, at = 0, text.find(anchor)
    while at >= 0:
        n, at = n + 1, text.find(anchor, at + 1)
    return n


def _line_start(text: str, pos: int) -> int:
    return text.rfind("\n", 0, pos) + 1


def _line_end(text: str, pos: int) -> int:
    """The index just past the newline ending the line that holds ``pos`` (the text's end if none)."""
    nl = text.find("\n", pos)
    return len(text) if nl < 0 else nl + 1


def _edit_target(edit: Edit, dest: Path, values: dict[str, Any]) -> Path:
    rel = variants.render_path(edit.file, values)
    path = (dest / rel).resolve()
    if dest.resolve() not in path.parents:
        raise FixtureError(f"{edit.where}: {edit.file!r} is outside the workspace")
    if not path.is_file():
        raise FixtureError(f"{edit.where}: {edit.file} is not a file of the built workspace")
    return path


def _display(path: Path) -> str:
    root = repo_root()
    try:
        return path.relative_to(root).as_posix() if root else str(path)
    except ValueError:
        return str(path)


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
        try:
            fixtures = fixture_cases(lab)
        except ValueError as exc:  # a fixture.yaml that cannot be read fails the self-test, with its name
            cases.append(Case(lab.id, "fixtures", None, set(), problems=[str(exc)]))
            fixtures = []
        for name, d, fails, seed in fixtures:
            run(name, seed, fails, True, d)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return cases
