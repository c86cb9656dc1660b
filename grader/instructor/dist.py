"""`cks dist`: a learner bundle with the chosen labs and nothing an answer could be read from.

The bundle is a pip-installable source folder (``pip install ./cks-kit``) staged from an allow-list of the
checkout (the ``grader`` package, the chosen ``labs/``, ``pyproject.toml``, README, licence) and, when a build
backend can be fetched, a wheel built from that folder. Staging by allow-list rather than by exclusion means
a new top-level folder (solutions/, tests/, bench/) can never slip in by accident; :func:`leaks` then scans the
result for any file whose bytes equal a reference solution or an answer fixture, as a second line of defence.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from grader.labs import Lab

STAGE_NAME = "cks-kit"
TOP_FILES = ("pyproject.toml", "README.md", "LICENSE", "LICENSE.txt", "NOTICE")
SKIP_NAMES = {"__pycache__", "_labs", ".pytest_cache", ".ruff_cache"}
MIN_SECRET_BYTES = 16  # tiny files ("true\n") are not worth matching and would only cause false alarms


class DistError(RuntimeError):
    pass


@dataclass
class DistResult:
    folder: Path
    wheel: Path | None
    labs: list[str]
    wheel_error: str | None = None
    files: int = 0
    leaks: list[str] = field(default_factory=list)


def _copy(src: Path, dest: Path) -> int:
    n = 0
    for p in sorted(src.rglob("*")):
        rel = p.relative_to(src)
        if any(part in SKIP_NAMES or part.endswith(".pyc") for part in rel.parts) or p.is_symlink():
            continue
        target = dest / rel
        if p.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif p.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, target)
            n += 1
    return n


def secret_hashes(repo: Path) -> dict[str, str]:
    """SHA-256 -> origin of every file that carries an answer: solutions/ and the answer fixtures under
    tests/labs/. Files that are byte-identical to something shipped in labs/ are not secrets."""
    public: set[str] = set()
    labs_dir = repo / "labs"
    if labs_dir.is_dir():
        public = {_sha(p) for p in labs_dir.rglob("*") if p.is_file()}
    out: dict[str, str] = {}
    for base in (repo / "solutions", repo / "tests" / "labs"):
        if not base.is_dir():
            continue
        for p in base.rglob("*"):
            if p.is_file() and p.stat().st_size >= MIN_SECRET_BYTES and p.name != "fixture.yaml":
                h = _sha(p)
                if h not in public:
                    out.setdefault(h, p.relative_to(repo).as_posix())
    return out


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def leaks(items: dict[str, bytes], secrets: dict[str, str]) -> list[str]:
    """Names in ``items`` (name -> bytes) that are, or sit under, solution or fixture content."""
    found = []
    for name, data in items.items():
        parts = name.split("/")
        if "solutions" in parts or any(parts[i:i + 2] == ["tests", "labs"] for i in range(len(parts))):
            found.append(f"{name}: a solutions/ or tests/labs/ path")
            continue
        h = hashlib.sha256(data).hexdigest()
        if h in secrets:
            found.append(f"{name}: the same bytes as {secrets[h]}")
    return found


def folder_items(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def wheel_items(wheel: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(wheel) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist() if not i.is_dir()}


def build_dist(labs: list[Lab], out: Path, *, repo: Path, wheel: bool = True) -> DistResult:
    if not (repo / "pyproject.toml").is_file() or not (repo / "grader").is_dir():
        raise DistError("`cks dist` needs a source checkout of the kit (pyproject.toml, grader/, labs/)")
    if not labs:
        raise DistError("choose at least one lab (--labs lab1,lab3)")
    out.mkdir(parents=True, exist_ok=True)
    stage = out / STAGE_NAME
    if stage.exists() or stage.is_symlink():  # only a stage an earlier `cks dist` made (its marker) is replaced
        from grader.fsutil import RemoveRefused, safe_remove_tree

        try:
            safe_remove_tree(stage, kind="dist")
        except RemoveRefused as exc:
            raise DistError(f"{exc}; choose another --out folder") from None
    stage.mkdir()
    from grader.fsutil import write_marker

    write_marker(stage, "dist")
    n = 0
    for name in TOP_FILES:
        if (repo / name).is_file():
            shutil.copy2(repo / name, stage / name)
            n += 1
    n += _copy(repo / "grader", stage / "grader")
    for lab in labs:
        n += _copy(lab.dir, stage / "labs" / lab.dir.name)
    secrets = secret_hashes(repo)
    result = DistResult(stage, None, [lab.id for lab in labs], files=n)
    result.leaks = leaks(folder_items(stage), secrets)
    if result.leaks:
        raise DistError("solution content reached the bundle: " + "; ".join(result.leaks[:5]))
    if wheel:
        for old in out.glob("cks_kit-*.whl"):
            old.unlink()
        proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out),
                               str(stage)], capture_output=True, text=True)
        wheels = sorted(out.glob("cks_kit-*.whl"))
        if proc.returncode != 0 or not wheels:
            tail = (proc.stderr or proc.stdout).strip().splitlines()
            result.wheel_error = tail[-1] if tail else "pip wheel failed"
        else:
            result.wheel = wheels[-1]
            result.leaks = leaks(wheel_items(result.wheel), secrets)
            if result.leaks:
                result.wheel.unlink()
                raise DistError("solution content reached the wheel: " + "; ".join(result.leaks[:5]))
    (out / "INSTALL.txt").write_text(_install_text(result))
    return result


def _install_text(r: DistResult) -> str:
    lines = [f"CKS kit for learners: labs {', '.join(r.labs)}", "", "Install one of:"]
    if r.wheel:
        lines.append(f"  pip install {r.wheel.name}")
    lines += [f"  pip install ./{STAGE_NAME}", "", "Then: cks list, cks start <lab>, grade <lab>.", ""]
    return "\n".join(lines)
