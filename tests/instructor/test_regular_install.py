"""Instructor commands from a checkout with a regular (non-editable) `pip install .` (issue 13 item 1).

The wheel is built from this worktree and installed into a fresh venv; its dependencies are borrowed from
the test interpreter's site-packages through a folder of links, so no other copy of the kit is importable.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("regular-install")
    wheels = tmp / "wheels"
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(wheels), str(REPO)],
                          capture_output=True, text=True, timeout=600)
    built = sorted(wheels.glob("cks_kit-*.whl"))
    if proc.returncode != 0 or not built:
        pytest.skip(f"cannot build a wheel here (pip needs hatchling): {proc.stderr.strip()[-300:]}")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    site = Path(subprocess.check_output([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                        text=True).strip())
    # the wheel's files go in with the test interpreter's pip (the venv has none)
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(site),
                           str(built[0])], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    # console scripts: `cks` as pip would write it, bound to the venv's python
    (venv / "bin" / "cks").write_text(f"#!{py}\nimport sys\nfrom grader.cli import main\nsys.exit(main())\n")
    (venv / "bin" / "cks").chmod(0o755)
    deps = tmp / "deps"
    deps.mkdir()
    ours = Path(sysconfig.get_paths()["purelib"])
    for entry in ours.iterdir():
        name = entry.name
        if name.endswith(".pth") or name.startswith(("cks_kit", "_editable", "grader", "pip", "__pycache__")):
            continue
        (deps / name).symlink_to(entry)
    (site / "zz-deps.pth").write_text(str(deps) + "\n")
    return venv


def _env(venv: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CKS_") and k != "PYTHONPATH"}
    env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '')}"
    env["NO_COLOR"] = "1"
    return env


def test_the_venv_imports_the_installed_copy(installed: Path) -> None:
    out = subprocess.check_output([str(installed / "bin" / "python"), "-P", "-c", "import grader; print(grader.__file__)"],
                                  cwd=REPO, env=_env(installed), text=True)
    assert str(installed) in out, out


def test_selftest_solve_and_dist_run_inside_the_checkout(installed: Path, tmp_path: Path) -> None:
    env, cks = _env(installed), str(installed / "bin" / "cks")
    proc = _run([cks, "selftest", "lab1", "--seed", "alpha"], REPO, env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "lab1:" in proc.stdout and "ok" in proc.stdout
    sub = REPO / "grader"  # from a subfolder too: the checkout is found upward
    proc = _run([cks, "solve", "lab1", "--seed", "alpha", "-w", str(tmp_path / "solved"), "--no-show"], sub, env)
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
    proc = _run([cks, "solve", "lab1", "-w", str(tmp_path / "y"), "--no-show", "--source", str(REPO)], tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    proc = _run([cks, "selftest", "lab1", "--seed", "alpha"], tmp_path, {**env, "CKS_SOURCE": str(REPO)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    shutil.rmtree(tmp_path / "y", ignore_errors=True)
