"""`cks solve`: the reference solution rendered for one learner's seed."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader import variants
from grader.labs import Lab
from grader.results import Report
from grader.snapshot import META_FILE, Snapshot


class SolveError(RuntimeError):
    pass


@dataclass
class Solved:
    seed: str | None
    values: dict[str, Any]
    report: Report
    changed: list[str] = field(default_factory=list)
    explanation: str = ""


def _hashes(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and p.name != META_FILE
    }


def solve(lab: Lab, dest: Path, seed: str | None) -> Solved:
    """Start ``dest`` for ``seed`` (or reuse a workspace of this lab there), then lay the solution over it."""
    from grader.runner import grade
    from grader.solutions import apply_solution, solution_dir
    from grader.workspace import materialize

    sol = solution_dir(lab)  # fails first, with a clear message, on a learner's install
    if (dest / META_FILE).is_file():
        meta = Snapshot(dest).meta
        if meta.get("lab") not in (None, lab.id):
            raise SolveError(f"{dest} is a workspace for {meta.get('lab')}, not {lab.id}")
        recorded = meta.get("seed")
        recorded = None if recorded is None else str(recorded)
        if seed is not None and recorded != seed:
            raise SolveError(
                f"{dest} was started with seed {recorded!r}, not {seed!r}; choose another --workspace"
            )
        seed = recorded
    elif dest.exists() and any(dest.iterdir()):
        raise SolveError(f"{dest} exists and is not a cks workspace; choose another --workspace")
    else:
        materialize(lab, dest, seed)
    before = _hashes(dest)
    apply_solution(lab, dest, seed)
    after = _hashes(dest)
    changed = [
        f"{'edited ' if k in before else 'added  '} {k}" for k in sorted(after) if before.get(k) != after[k]
    ]
    changed += [f"deleted {k}" for k in sorted(before) if k not in after]
    values = variants.values_for(lab, seed)
    readme = sol / "README.md"
    explanation = variants.render_text(readme.read_text(encoding="utf-8"), values) if readme.is_file() else ""
    report = grade(lab, Snapshot(dest), target=f"solution {dest}")
    return Solved(seed, values, report, changed, explanation)
