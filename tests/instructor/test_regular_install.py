"""Instructor commands from a checkout with a regular (non-editable) `pip install .` (issue 13 item 1).

The wheel is built from this worktree and installed into a fresh venv; its dependencies are borrowed from
the test interpreter's site-packages through a folder of links, so no other copy of the kit is importable.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.instructor._venv import make_venv, venv_env

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("regular-install")
    wheels = tmp / "wheels"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(wheels), str(REPO)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    built = sorted(wheels.glob("cks_kit-*.whl"))
    if proc.returncode != 0 or not built:
        pytest.skip(f"cannot build a wheel here (pip needs hatchling): {proc.stderr.strip()[-300:]}")
    return make_venv(tmp, built[0])


def _env(venv: Path) -> dict[str, str]:
    return venv_env(venv)


def test_the_venv_imports_the_installed_copy(installed: Path) -> None:
    out = subprocess.check_output(
        [str(installed / "bin" / "python"), "-P", "-c", "import grader; print(grader.__file__)"],
        cwd=REPO,
        env=_env(installed),
        text=True,
    )
    assert str(installed) in out, out


def test_selftest_solve_and_dist_run_inside_the_checkout(installed: Path, tmp_path: Path) -> None:
    env, cks = _env(installed), str(installed / "bin" / "cks")
    proc = _run([cks, "selftest", "lab1", "--seed", "alpha"], REPO, env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "lab1:" in proc.stdout and "ok" in proc.stdout
    sub = REPO / "grader"  # from a subfolder too: the checkout is found upward
    proc = _run(
        [cks, "solve", "lab1", "--seed", "alpha", "-w", str(tmp_path / "solved"), "--no-show"], sub, env
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Grade of the solved workspace" in proc.stdout
    proc = _run([cks, "dist", "--labs", "lab1", "--out", str(tmp_path / "dist"), "--no-wheel"], REPO, env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "dist" / "cks-kit" / "grader").is_dir()


def test_outside_a_checkout_the_message_says_what_was_looked_for(installed: Path, tmp_path: Path) -> None:
    env, cks = _env(installed), str(installed / "bin" / "cks")
    proc = _run([cks, "solve", "lab1", "-w", str(tmp_path / "x")], tmp_path, env)
    assert proc.returncode == 2
    err = proc.stderr
    assert "CKS_SOURCE" in err and "--source" in err and str(tmp_path) in err and "pyproject.toml" in err
    assert "Traceback" not in err
    # --source and $CKS_SOURCE both point at it from anywhere
    proc = _run(
        [cks, "solve", "lab1", "-w", str(tmp_path / "y"), "--no-show", "--source", str(REPO)], tmp_path, env
    )
    assert proc.returncode == 0, proc.stderr
    proc = _run([cks, "selftest", "lab1", "--seed", "alpha"], tmp_path, {**env, "CKS_SOURCE": str(REPO)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    shutil.rmtree(tmp_path / "y", ignore_errors=True)
