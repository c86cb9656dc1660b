"""No solution content reaches a learner: not the `cks dist` bundle, not the wheel built from the
repository."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader.instructor.dist import DistError, build_dist, folder_items, leaks, secret_hashes, wheel_items
from grader.labs import get_lab, lab_dirs

REPO = Path(__file__).resolve().parents[2]
CANARY = "CANARY-SOLUTION-7f3a: apiVersion: audit.k8s.io/v1 # the answer\n"
FIXTURE_CANARY = "CANARY-WRONG-FIXTURE-19bd: level: None\n"


def pip_wheel(src: Path, out: Path) -> Path:
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(src)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    wheels = sorted(out.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        pytest.skip(
            f"cannot build a wheel here (pip needs hatchling from PyPI): {proc.stderr.strip()[-300:]}"
        )
    return wheels[0]


@pytest.fixture()
def fake_repo(tmp_path: Path) -> Path:
    """A copy of the kit's code with two labs from our test lab set, a solution and answer fixtures holding
    canaries: whatever dist does with the real repo, it does here, and the canaries must not come out."""
    from tests.instructor._instructor_lab import make_labs_root

    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy2(REPO / "pyproject.toml", repo / "pyproject.toml")
    shutil.copy2(REPO / "hatch_build.py", repo / "hatch_build.py")  # the build hook pyproject.toml names
    if (REPO / "provision" / "versions.env").is_file():  # the build force-includes it
        (repo / "provision").mkdir()
        shutil.copy2(REPO / "provision" / "versions.env", repo / "provision" / "versions.env")
    (repo / "README.md").write_text("# kit\n")
    skip = shutil.ignore_patterns("__pycache__", "_labs", "*.so")
    shutil.copytree(REPO / "grader", repo / "grader", ignore=skip)
    make_labs_root(repo / "labs")
    for lab in ("lab90", "lab91"):
        sol = repo / "solutions" / lab / "overlay" / "nodes" / "controlplane" / "etc"
        sol.mkdir(parents=True)
        (sol / "answer.yaml").write_text(CANARY + lab)
        (repo / "solutions" / lab / "README.md").write_text(f"Solution for {lab}: the secret explanation.\n")
        wrong = repo / "tests" / "labs" / lab / "wrong" / "w1" / "overlay" / "nodes" / "controlplane"
        wrong.mkdir(parents=True)
        (wrong / "policy.yaml").write_text(FIXTURE_CANARY + lab)
    (repo / "bench").mkdir()
    (repo / "bench" / "x.py").write_text("print('bench')\n")
    return repo


def _labs(repo: Path, *ids: str):
    return [get_lab(i, repo / "labs") for i in ids]


def test_dist_folder_has_only_the_chosen_labs_and_no_answers(fake_repo: Path, tmp_path: Path) -> None:
    res = build_dist(_labs(fake_repo, "lab91"), tmp_path / "out", repo=fake_repo, wheel=False)
    items = folder_items(res.folder)
    assert "labs/lab91-static/lab.yaml" in items and not any(n.startswith("labs/lab90") for n in items)
    assert not any(n.startswith(("solutions/", "tests/", "bench/")) for n in items)
    blob = b"".join(items.values())
    assert b"CANARY" not in blob and b"secret explanation" not in blob
    assert leaks(items, secret_hashes(fake_repo)) == []
    assert "pip install ./cks-kit" in (tmp_path / "out" / "INSTALL.txt").read_text()


def test_leak_detector_catches_a_planted_solution(fake_repo: Path, tmp_path: Path) -> None:
    # an answer copied into shipped code by mistake (under another name): dist must refuse to build
    src = fake_repo / "solutions" / "lab91" / "overlay" / "nodes" / "controlplane" / "etc" / "answer.yaml"
    shutil.copy2(src, fake_repo / "grader" / "notes.yaml")
    with pytest.raises(DistError, match="grader/notes.yaml: the same bytes as solutions/lab91/overlay"):
        build_dist(_labs(fake_repo, "lab91"), tmp_path / "out", repo=fake_repo, wheel=False)


def test_an_answer_equal_to_a_shipped_file_is_not_a_secret(fake_repo: Path) -> None:
    # a solution may keep a starting file unchanged; shipping that file is not a leak
    start = fake_repo / "labs" / "lab91-static" / "start" / "nodes" / "controlplane" / "etc" / "hostname"
    keep = fake_repo / "solutions" / "lab91" / "overlay" / "nodes" / "controlplane" / "etc" / "hostname"
    keep.write_bytes(start.read_bytes() * 4)
    start.write_bytes(keep.read_bytes())
    assert "solutions/lab91/overlay/nodes/controlplane/etc/hostname" not in secret_hashes(fake_repo).values()


@pytest.mark.slow
def test_dist_wheel_installs_only_chosen_labs(fake_repo: Path, tmp_path: Path) -> None:
    res = build_dist(_labs(fake_repo, "lab90"), tmp_path / "out", repo=fake_repo, wheel=True)
    if res.wheel is None:
        pytest.skip(f"cannot build a wheel here: {res.wheel_error}")
    items = wheel_items(res.wheel)
    assert "grader/_labs/lab90-seeded/lab.yaml" in items
    assert not any("lab91" in n for n in items)
    assert not any(b"CANARY" in data for data in items.values())
    assert leaks(items, secret_hashes(fake_repo)) == []


@pytest.mark.slow
def test_wheel_built_from_the_repo_has_solutions_only_for_cks_solution(tmp_path: Path) -> None:
    """The public default install ships solutions/ as grader/_solutions (read by `cks solution` only) and no
    answer anywhere else; a `cks dist` bundle's wheel has none at all (the tests above)."""
    secrets = secret_hashes(REPO)
    if not secrets:
        pytest.skip("the repository has no solutions/ or answer fixtures yet")
    wheel = pip_wheel(REPO, tmp_path)
    items = wheel_items(wheel)
    explained = {n: b for n, b in items.items() if n.startswith("grader/_solutions/")}
    assert {n.split("/")[2] for n in explained} == {
        p.name for p in (REPO / "solutions").iterdir() if p.is_dir()
    }
    assert leaks({n: b for n, b in items.items() if n not in explained}, secrets) == []
    shipped = {n.split("/")[2] for n in items if n.startswith("grader/_labs/") and n.count("/") > 2}
    assert shipped == {d.name for d in lab_dirs(REPO / "labs").values()}, "the wheel must carry every lab"
    with zipfile.ZipFile(wheel) as zf:
        assert not any("/solutions/" in f"/{n}" for n in zf.namelist())


def test_dist_cli_refuses_a_learner_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import grader.instructor.source as source
    from grader.cli.instructor import dist_cmd

    monkeypatch.delenv("CKS_SOURCE", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(source, "__file__", str(tmp_path / "site" / "grader" / "instructor" / "source.py"))
    r = CliRunner().invoke(dist_cmd, ["--labs", "lab1", "--out", str(tmp_path / "out")])
    assert r.exit_code == 2 and "source checkout" in r.output and "CKS_SOURCE" in r.output
    assert not (tmp_path / "out").exists()


def test_course_bundles_get_a_version_per_build_that_upgrades(tmp_path: Path) -> None:
    from packaging.version import Version

    from grader.variants import ANSWER_FILE, COURSE_FILE

    lab = get_lab("lab1", REPO / "labs")
    versions = []
    for build in ("20261201090000", "20261202090000"):
        res = build_dist(
            [lab],
            tmp_path / build / "ana",
            repo=REPO,
            wheel=False,
            learner="ana",
            seed="ana-1",
            build_id=build,
        )
        text = (res.folder / "pyproject.toml").read_text()
        versions.append(Version(text.split('version = "', 1)[1].split('"', 1)[0]))
        course = (res.folder / "grader" / COURSE_FILE).read_text()
        assert '"learner": "ana"' in course and '"seed": "ana-1"' in course
        assert (res.folder / "grader" / ANSWER_FILE).is_file()
        readme = (res.folder / "README.md").read_text()
        assert "lab1" in readme and "lab2" not in readme and "regrade" not in readme
    base = Version(
        next(
            line for line in (REPO / "pyproject.toml").read_text().splitlines() if line.startswith("version")
        ).split('"')[1]
    )
    assert base < versions[0] < versions[1]  # pip upgrades the kit, and the first course bundle, cleanly
