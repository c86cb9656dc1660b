"""Reference solutions (instructors and self-test only; a learner's install has no solutions/)."""

from __future__ import annotations

from pathlib import Path

from grader import variants
from grader.labs import Lab, collection_root, repo_root
from grader.workspace import copy_tree, delete_paths


class SolutionsUnavailable(RuntimeError):
    pass


def solutions_root() -> Path:
    root = repo_root()
    if root is None or not (root / "solutions").is_dir():
        raise SolutionsUnavailable(
            "solutions/ is not available: this is a learner's install. Reference solutions come with a "
            "source checkout of the kit (instructors: run from the repository)."
        )
    return root / "solutions"


def solution_dir(lab: Lab) -> Path:
    collection = collection_root(lab)  # a lab from $CKS_LABS_PATH keeps its own solutions/
    d = (collection / "solutions" if collection else solutions_root()) / lab.id
    if not d.is_dir():
        raise SolutionsUnavailable(f"no reference solution for {lab.id} (expected {d})")
    return d


def apply_overlay(src: Path, dest: Path, values: dict) -> None:
    """Lay ``src/overlay`` over ``dest`` and apply ``src/delete.txt``, rendering the variant's values."""
    if (src / "overlay").is_dir():
        copy_tree(src / "overlay", dest, values)
    if (src / "delete.txt").is_file():
        delete_paths(src / "delete.txt", dest, values)


def apply_solution(lab: Lab, workspace: Path, seed: str | None) -> None:
    apply_overlay(solution_dir(lab), workspace, variants.values_for(lab, seed))
