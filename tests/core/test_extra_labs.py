"""Labs from ``$CKS_LABS_PATH`` beside the kit's, with checks of their own (``<lab>/checks/*.py``): loaded
when the lab is, never clashing with the kit's check ids or another lab's, never imported from a learner's
workspace, and every mistake a clear ``LabError`` naming the file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

import grader.checks
from grader.labs import LabError, all_labs, get_lab, lab_dirs, load_lab_dir

REPO = Path(__file__).resolve().parents[2]


def write_lab(labs: Path, lab_id: str, check_id: str = "files.present", check_py: str | None = None) -> Path:
    d = labs / f"{lab_id}-extra"
    d.mkdir(parents=True)
    params = {"node": "controlplane", "path": "/opt/answer.txt"}
    task = {"id": "t1", "title": "x", "points": 1, "check": check_id, "params": params, "hint": "h"}
    lab = {"id": lab_id, "version": 1, "title": "Extra", "minutes": 5, "tasks": [task]}
    (d / "lab.yaml").write_text(yaml.safe_dump(lab))
    (d / "start" / ".keep").parent.mkdir()
    (d / "start" / ".keep").write_text("")
    if check_py is not None:
        (d / "checks").mkdir()
        (d / "checks" / "mine.py").write_text(check_py)
    return d


def check_module(check_id: str, extra: str = "") -> str:
    return (
        "from grader.checks import check\n"
        "from grader.results import Outcome\n"
        f"{extra}\n"
        f"@check({check_id!r})\n"
        "def mine(ctx, node: str, path: str):\n"
        "    return Outcome.passed('ok')\n"
    )


@pytest.fixture
def labs_path(tmp_path, monkeypatch):
    """Sets ``$CKS_LABS_PATH`` to the given folders; lab checks written under tmp_path are forgotten after."""
    monkeypatch.delenv("CKS_LABS_DIR", raising=False)
    load_lab_dir.cache_clear()

    def use(*folders: Path) -> None:
        monkeypatch.setenv("CKS_LABS_PATH", os.pathsep.join(str(f) for f in folders))

    yield use
    load_lab_dir.cache_clear()
    grader.checks.forget_lab_checks(tmp_path)


def test_extra_labs_come_beside_the_kits_own(tmp_path, labs_path):
    builtin = set(lab_dirs())
    write_lab(tmp_path / "a" / "labs", "lab901")
    write_lab(tmp_path / "b" / "labs", "lab902")
    labs_path(tmp_path / "a" / "labs", tmp_path / "nowhere", tmp_path / "b" / "labs")
    assert set(lab_dirs()) == builtin | {"lab901", "lab902"}
    assert [lab.id for lab in all_labs()][-2:] == ["lab901", "lab902"]
    assert get_lab("lab1").dir.is_relative_to(REPO / "labs")


def test_a_lab_id_defined_twice_names_both_folders(tmp_path, labs_path):
    first = write_lab(tmp_path / "a" / "labs", "lab901")
    second = write_lab(tmp_path / "b" / "labs", "lab901")
    labs_path(tmp_path / "a" / "labs", tmp_path / "b" / "labs")
    with pytest.raises(LabError, match="lab901 is defined twice") as err:
        get_lab("lab901")
    assert str(first) in str(err.value) and str(second) in str(err.value)
    write_lab(tmp_path / "c" / "labs", "lab1")  # a kit lab's id
    labs_path(tmp_path / "c" / "labs")
    with pytest.raises(LabError, match="lab1 is defined twice"):
        lab_dirs()


def test_a_labs_own_check_is_registered_when_the_lab_loads(tmp_path, labs_path):
    d = write_lab(tmp_path / "labs", "lab901", "extra_mine.answer", check_module("extra_mine.answer"))
    labs_path(tmp_path / "labs")
    lab = get_lab("lab901")
    assert lab.tasks[0].check == "extra_mine.answer"
    assert grader.checks.get_check("extra_mine.answer").check_source == (d / "checks" / "mine.py").resolve()
    load_lab_dir.cache_clear()
    get_lab("lab901")  # loaded again (a cleared cache): the file is not imported twice, so no clash
    assert grader.checks.forget_lab_checks(tmp_path) == ["extra_mine.answer"]
    with pytest.raises(grader.checks.CheckNotFound, match="a lab folder's checks"):
        grader.checks.get_check("extra_mine.answer")


@pytest.mark.parametrize("taken", ["files.mine", "pods.extra_one"])
def test_a_labs_check_may_not_take_a_kit_check_module(tmp_path, labs_path, taken):
    write_lab(tmp_path / "labs", "lab901", taken, check_module(taken))
    labs_path(tmp_path / "labs")
    module = taken.split(".")[0]
    with pytest.raises(LabError, match=f"module name '{module}' of the kit's own checks") as err:
        get_lab("lab901")
    assert "mine.py" in str(err.value)
    with pytest.raises(grader.checks.CheckNotFound):
        grader.checks.get_check(taken)  # nothing of the refused file stays registered


def test_two_labs_may_not_register_the_same_check_id(tmp_path, labs_path):
    first = write_lab(tmp_path / "labs", "lab901", "extra_mine.answer", check_module("extra_mine.answer"))
    write_lab(tmp_path / "labs", "lab902", "extra_mine.answer", check_module("extra_mine.answer"))
    labs_path(tmp_path / "labs")
    get_lab("lab901")
    with pytest.raises(LabError, match="'extra_mine.answer' is already registered by") as err:
        get_lab("lab902")
    assert str((first / "checks" / "mine.py").resolve()) in str(err.value)


def test_a_check_file_that_does_not_load_is_named_and_leaves_nothing_behind(tmp_path, labs_path):
    broken = check_module("extra_mine.answer") + "1 / 0\n"
    write_lab(tmp_path / "labs", "lab901", "extra_mine.answer", broken)
    labs_path(tmp_path / "labs")
    with pytest.raises(LabError, match=r"mine.py: does not load: ZeroDivisionError"):
        get_lab("lab901")
    with pytest.raises(grader.checks.CheckNotFound):
        grader.checks.get_check("extra_mine.answer")


def test_checks_inside_a_learners_workspace_are_never_imported(tmp_path, labs_path):
    workspace = tmp_path / "cks-workspace"
    marker = tmp_path / "imported"
    code = check_module("extra_mine.answer", f"open({str(marker)!r}, 'w').close()")
    write_lab(workspace / "labs", "lab901", "extra_mine.answer", code)
    (workspace / "cks.yaml").write_text("lab: lab1\n")  # what `cks start` writes at a workspace's root
    labs_path(workspace / "labs")
    with pytest.raises(LabError, match="inside a learner's workspace"):
        get_lab("lab901")
    assert not marker.exists(), "the learner's file ran"


def test_cks_list_shows_extra_labs_and_says_what_clashes(tmp_path, labs_path, monkeypatch):
    from click.testing import CliRunner

    from grader.cli import cks

    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    write_lab(tmp_path / "a" / "labs", "lab901")
    labs_path(tmp_path / "a" / "labs")
    listed = CliRunner().invoke(cks, ["list", "--format", "json"])
    assert listed.exit_code == 0, listed.output
    assert "lab901" in listed.output and "lab1" in listed.output
    write_lab(tmp_path / "b" / "labs", "lab901")
    labs_path(tmp_path / "a" / "labs", tmp_path / "b" / "labs")
    clash = CliRunner().invoke(cks, ["list"])
    assert clash.exit_code == 2 and "lab901 is defined twice" in clash.output, clash.output
    assert "Traceback" not in clash.output
