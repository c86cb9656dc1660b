"""Per-learner variants, for every lab of the kit that declares variables (labs without any are skipped).

Two seeds give different answers, the same seed gives the same lab, and the solution rendered for one seed
fails on another seed's instance (a copied answer does not carry over).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from grader import variants
from grader.labs import Lab, get_lab, lab_dirs, repo_root
from grader.results import Status
from grader.runner import grade
from grader.snapshot import META_FILE, Snapshot
from grader.solutions import apply_solution
from grader.workspace import materialize

REPO_LABS = Path(__file__).resolve().parents[2] / "labs"
LAB_IDS = list(lab_dirs(REPO_LABS)) or ["none"]
CANDIDATE_SEEDS = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
]


def _lab(lab_id: str) -> Lab:
    if lab_id == "none":
        pytest.skip("no labs in labs/ yet")
    lab = get_lab(lab_id, REPO_LABS)
    if not lab.variables:
        pytest.skip(f"{lab_id} declares no variables: every learner gets the same lab")
    return lab


def _tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != META_FILE
    }


def _two_seeds(lab: Lab) -> tuple[str, str]:
    """The first seed pair whose values differ (with few choices two given seeds may draw the same)."""
    first = variants.values_for(lab, CANDIDATE_SEEDS[0])
    for other in CANDIDATE_SEEDS[1:]:
        if variants.values_for(lab, other) != first:
            return CANDIDATE_SEEDS[0], other
    pytest.fail(
        f"{lab.id}: {len(CANDIDATE_SEEDS)} seeds all draw the same values {first}: "
        "its variables have too few choices to tell learners apart"
    )


@pytest.mark.parametrize("lab_id", LAB_IDS)
def test_two_seeds_give_different_answers(lab_id: str) -> None:
    lab = _lab(lab_id)
    a, b = _two_seeds(lab)
    va, vb = variants.values_for(lab, a), variants.values_for(lab, b)
    assert va != vb
    # the difference reaches what the grader expects: some task's rendered params differ
    pa = [variants.render(t.params, va) for t in lab.tasks]
    pb = [variants.render(t.params, vb) for t in lab.tasks]
    assert pa != pb, f"{lab_id}: the variables change no task's parameters, so no answer depends on them"


@pytest.mark.parametrize("lab_id", LAB_IDS)
def test_same_seed_same_lab(lab_id: str, tmp_path: Path) -> None:
    lab = _lab(lab_id)
    a, _b = _two_seeds(lab)
    materialize(lab, tmp_path / "one", a)
    materialize(lab, tmp_path / "two", a)
    assert _tree(tmp_path / "one") == _tree(tmp_path / "two")
    assert variants.values_for(lab, a) == variants.values_for(lab, a)
    assert Snapshot(tmp_path / "one").meta["seed"] == a


@pytest.mark.parametrize("lab_id", LAB_IDS)
def test_solution_for_one_seed_fails_on_another(lab_id: str, tmp_path: Path) -> None:
    lab = _lab(lab_id)
    if repo_root() is None or not (repo_root() / "solutions" / lab.id).is_dir():
        pytest.skip(f"no solutions/{lab.id} yet")
    a, b = _two_seeds(lab)
    own = tmp_path / "own"
    materialize(lab, own, b)
    apply_solution(lab, own, b)
    own_report = grade(lab, Snapshot(own))
    assert own_report.score == own_report.max_score, "the solution must score full marks on its own seed"

    # learner b's instance with learner a's answer laid over it
    copied = tmp_path / "copied"
    materialize(lab, copied, b)
    answer_a = tmp_path / "answer-a"
    materialize(lab, answer_a, a)
    before = _tree(answer_a)
    apply_solution(lab, answer_a, a)
    for rel, digest in _tree(answer_a).items():
        if before.get(rel) != digest:
            (copied / rel).parent.mkdir(parents=True, exist_ok=True)
            (copied / rel).write_bytes((answer_a / rel).read_bytes())
    report = grade(lab, Snapshot(copied))
    failed = [t.id for t in report.tasks if t.status is Status.FAIL]
    assert report.score < report.max_score and failed, (
        f"{lab_id}: seed {a}'s solution earns full marks on seed {b}'s instance"
    )
