"""`cks submit`, `cks regrade`, `cks solve` as an instructor and learners use them."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader.cli import cks
from tests.instructor._instructor_lab import app_for, workspace

REPO = Path(__file__).resolve().parents[2]


def invoke(*args: str):
    return CliRunner().invoke(cks, list(args), env={"NO_COLOR": "1"}, catch_exceptions=False)


def test_submit_then_regrade(lab90, tmp_path: Path) -> None:
    ws = workspace(lab90, tmp_path, "zoe")
    r = invoke(
        "submit", "lab90", "--workspace", str(ws), "--learner", "zoe", "--out", str(tmp_path / "zoe.tar.gz")
    )
    assert r.exit_code == 0, r.output
    assert "score 3/3" in r.output and "seed zoe" in r.output
    ws2 = workspace(lab90, tmp_path, "yan", files=("config.yaml",))
    invoke("submit", "lab90", "-w", str(ws2), "--learner", "yan", "-o", str(tmp_path / "yan.tar.gz"))
    r = invoke(
        "regrade",
        str(tmp_path / "zoe.tar.gz"),
        str(tmp_path / "yan.tar.gz"),
        "--csv",
        str(tmp_path / "c.csv"),
        "--html",
        str(tmp_path / "c.html"),
        "--jobs",
        "1",
    )
    assert r.exit_code == 0, r.output
    assert (
        "Regraded 2 bundles for 2 learners: 0 flagged (0 held, not counted), 0 with bad bundles" in r.output
    )
    rows = {
        row["learner"]: row["score"] for row in csv.DictReader((tmp_path / "c.csv").read_text().splitlines())
    }
    assert rows == {"zoe": "3", "yan": "2"}
    assert "<table" in (tmp_path / "c.html").read_text()


def test_regrade_exit_code_and_roster(lab90, tmp_path: Path) -> None:
    ws = workspace(lab90, tmp_path, "wrong-seed")
    invoke("submit", "lab90", "-w", str(ws), "--learner", "xi", "-o", str(tmp_path / "xi.tar.gz"))
    (tmp_path / "roster.csv").write_text("learner,seed\nxi,xi\n")
    r = invoke(
        "regrade",
        str(tmp_path / "xi.tar.gz"),
        "--csv",
        str(tmp_path / "c.csv"),
        "--roster",
        str(tmp_path / "roster.csv"),
    )
    assert r.exit_code == 1 and "1 flagged" in r.output and "roster assigns 'xi'" in r.output
    assert invoke("regrade", str(tmp_path / "xi.tar.gz")).exit_code == 2  # no --csv/--html


def test_submit_without_a_workspace_is_a_usage_error(lab90, tmp_path: Path) -> None:
    r = invoke("submit", "lab90", "-w", str(tmp_path / "nothing"), "--learner", "a")
    assert r.exit_code == 2 and "not a cks workspace" in r.output
    ws = workspace(lab90, tmp_path, None)
    r = invoke("submit", "lab90", "-w", str(ws), "--learner", "bad id with spaces")
    assert r.exit_code == 2 and "learner id" in r.output


def test_solve_needs_solutions(lab90, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import grader.solutions  # patch where it is used (importing it under the patch would keep the fake)

    monkeypatch.setattr(grader.solutions, "repo_root", lambda: None)
    r = invoke("solve", "lab90", "--seed", "a", "-w", str(tmp_path / "s"))
    assert r.exit_code == 2 and "solutions/ is not available" in r.output and "learner" in r.output


def _labs_with_solutions() -> list[str]:
    from grader.labs import lab_dirs

    found = [lab for lab in lab_dirs(REPO / "labs") if (REPO / "solutions" / lab).is_dir()]
    return found or ["none"]


@pytest.mark.parametrize("lab_id", _labs_with_solutions())
def test_solve_renders_the_seed_and_scores_full(
    lab_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if lab_id == "none":
        pytest.skip("no lab has a solution yet")
    monkeypatch.delenv("CKS_LABS_DIR", raising=False)
    dest = tmp_path / "solved"
    r = invoke("solve", lab_id, "--seed", "learner42", "-w", str(dest), "--no-show")
    assert r.exit_code == 0, r.output
    assert "solved for seed learner42" in r.output
    full = r.output.split("Grade of the solved workspace: ")[1].split()[0]
    assert full.split("/")[0] == full.split("/")[1]
    # solving into an existing workspace of another seed is refused
    r = invoke("solve", lab_id, "--seed", "other", "-w", str(dest))
    assert r.exit_code == 2 and "was started with seed 'learner42'" in r.output


def test_solve_into_the_learners_workspace_keeps_its_seed(lab90, tmp_path: Path) -> None:
    # lab90 has no solutions/ in the repo: lay a solution folder in via the solutions module's root
    import grader.solutions

    sol = tmp_path / "solutions" / "lab90" / "overlay" / "nodes" / "controlplane" / "etc" / "{{ app }}"
    sol.mkdir(parents=True)
    (sol / "config.yaml").write_text("a: 1\n")
    (sol / "policy.yaml").write_text("b: 2\n")
    (tmp_path / "solutions" / "lab90" / "README.md").write_text("Write both files under /etc/{{ app }}/.\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(grader.solutions, "solutions_root", lambda: tmp_path / "solutions")
        ws = workspace(lab90, tmp_path, "vic", files=())
        r = invoke("solve", "lab90", "-w", str(ws))
    assert r.exit_code == 0, r.output
    app = app_for(lab90, "vic")
    assert f"app={app}" in r.output and f"added   nodes/controlplane/etc/{app}/config.yaml" in r.output
    assert f"Write both files under /etc/{app}/." in r.output
    assert "3/3" in r.output
