"""A throwaway venv holding one install of the kit (a wheel or a staged folder), its dependencies borrowed
from the test interpreter through a folder of links, so no other copy of the kit is importable."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest


def make_venv(tmp: Path, source: Path) -> Path:
    """``source``: a wheel, or a folder pip can build. Skips the test when no wheel can be built here."""
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    site = Path(
        subprocess.check_output(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
        ).strip()
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(site), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        pytest.skip(
            f"cannot build or install the kit here (pip needs hatchling): {proc.stderr.strip()[-300:]}"
        )
    for name, entry in (("cks", "main"), ("grade", "grade_main")):
        script = venv / "bin" / name
        script.write_text(f"#!{py}\nimport sys\nfrom grader.cli import {entry}\nsys.exit({entry}())\n")
        script.chmod(0o755)
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


def venv_env(venv: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CKS_") and k != "PYTHONPATH"}
    env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '')}"
    env["NO_COLOR"] = "1"
    return env
