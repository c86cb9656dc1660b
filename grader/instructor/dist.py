"""`cks dist`: a learner bundle with the chosen labs and nothing an answer could be read from.

With ``--roster`` it writes one bundle per learner (``DIR/<learner>/``): the learner's id and seed baked in
(``grader/_course.json``), each lab pinned to that learner's variant with the starting state pre-built for
their seed (so no generator ships), the answers of "find" tasks as salted digests only
(``grader/_answers.json``, see grader/variants.py), a README for learners, and a version unique to the build
so installing a later bundle upgrades an earlier one.

The bundle is a pip-installable source folder (``pip install ./cks-kit``) staged from an allow-list of the
checkout (the ``grader`` package, the chosen ``labs/``, ``pyproject.toml``, README, licence) and, when a build
backend can be fetched, a wheel built from that folder. Staging by allow-list rather than by exclusion means
a new top-level folder (solutions/, tests/, bench/) can never slip in by accident; :func:`leaks` then scans
the result for any file whose bytes equal a reference solution or an answer fixture, as a second line of
defence.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from grader.labs import Lab

STAGE_NAME = "cks-kit"
EXTRA_FILES = ("provision/versions.env",)
# hatch_build.py: the build hook pyproject.toml names (compiles the audit log scanner when it can)
TOP_FILES = ("pyproject.toml", "README.md", "LICENSE", "LICENSE.txt", "NOTICE", "hatch_build.py")
SKIP_NAMES = {"__pycache__", "_labs", ".pytest_cache", ".ruff_cache"}
# never in a learner's bundle: solution explanations, the instructor-only modules, answer generators
SKIP_GRADER = ("instructor/solve.py", "instructor/dist.py", "selftest.py")
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


def forbidden(rel: str) -> bool:
    """Paths that never ship to a learner, whatever they hold."""
    low = rel.lower()
    return "solution" in low or "_explanations" in low or "/tests/labs/" in f"/{low}"


def _copy(src: Path, dest: Path, skip: tuple[str, ...] = ()) -> int:
    n = 0
    for p in sorted(src.rglob("*")):
        rel = p.relative_to(src)
        # compiled files (.pyc, a .so built for this machine) are not sources: the bundle builds its own
        if any(part in SKIP_NAMES or part.endswith((".pyc", ".so")) for part in rel.parts) or p.is_symlink():
            continue
        if forbidden(rel.as_posix()) or rel.as_posix() in skip or rel.as_posix().startswith(skip):
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


def leaks(items: dict[str, bytes], secrets: dict[str, str], learner_bundle: bool = False) -> list[str]:
    """Names in ``items`` (name -> bytes) that are, or sit under, solution or fixture content (and, for a
    learner bundle, any path naming solutions or explanations)."""
    found = []
    for name, data in items.items():
        parts = name.split("/")
        if (
            "solutions" in parts
            or any(parts[i : i + 2] == ["tests", "labs"] for i in range(len(parts)))
            or (learner_bundle and forbidden(name))
        ):
            found.append(f"{name}: a solutions/, explanation or tests/labs/ path")
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


def build_dist(
    labs: list[Lab],
    out: Path,
    *,
    repo: Path,
    wheel: bool = True,
    learner: str | None = None,
    seed: str | None = None,
    build_id: str | None = None,
) -> DistResult:
    """Stage (and build) one learner bundle in ``out``. With ``learner``, a per-learner course bundle."""
    if not (repo / "pyproject.toml").is_file() or not (repo / "grader").is_dir():
        raise DistError("`cks dist` needs a source checkout of the kit (pyproject.toml, grader/, labs/)")
    if not labs:
        raise DistError("choose at least one lab (--labs lab1,lab3)")
    _check_out(out, repo)
    stage = _fresh_stage(out)
    build_id = build_id or datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    n = _stage_top_files(repo, stage, build_id)
    (stage / "README.md").write_text(learner_readme(labs, learner, seed), encoding="utf-8")
    n += 2
    per_learner = learner is not None
    skip = SKIP_GRADER + (("labgen/",) if per_learner else ())
    n += _copy(repo / "grader", stage / "grader", skip)
    if per_learner:
        n += _stage_course(labs, stage, learner, seed, build_id)
    else:
        for lab in labs:
            n += _copy(lab.dir, stage / "labs" / lab.dir.name)
    secrets = secret_hashes(repo)
    result = DistResult(stage, None, [lab.id for lab in labs], files=n)
    result.leaks = leaks(folder_items(stage), secrets, learner_bundle=True)
    if result.leaks:
        raise DistError("solution content reached the bundle: " + "; ".join(result.leaks[:5]))
    if wheel:
        _build_wheel(out, stage, result, secrets)
    (out / "INSTALL.txt").write_text(_install_text(result))
    return result


def _fresh_stage(out: Path) -> Path:
    """An empty stage folder in ``out``, carrying the marker that lets a later `cks dist` replace it."""
    from grader.fsutil import RemoveRefused, safe_remove_tree, write_marker

    out.mkdir(parents=True, exist_ok=True)
    stage = out / STAGE_NAME
    if (
        stage.exists() or stage.is_symlink()
    ):  # only a stage an earlier `cks dist` made (its marker) is replaced
        try:
            safe_remove_tree(stage, kind="dist")
        except RemoveRefused as exc:
            raise DistError(f"{exc}; choose another --out folder") from None
    stage.mkdir()
    write_marker(stage, "dist")
    return stage


def _stage_top_files(repo: Path, stage: Path, build_id: str) -> int:
    """The checkout's top-level files (pyproject.toml rewritten for this build) and the files the build
    force-includes; returns how many were written."""
    n = 0
    for name in TOP_FILES:
        if (repo / name).is_file() and name not in ("pyproject.toml", "README.md"):
            shutil.copy2(repo / name, stage / name)
            n += 1
    (stage / "pyproject.toml").write_text(_pyproject(repo, build_id), encoding="utf-8")
    for extra in EXTRA_FILES:  # files the build force-includes (the pinned versions the grader judges with)
        if (repo / extra).is_file():
            (stage / extra).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(repo / extra, stage / extra)
            n += 1
    return n


def _stage_course(labs: list[Lab], stage: Path, learner: str | None, seed: str | None, build_id: str) -> int:
    """A per-learner course: no generators, labs pinned to the learner's variant, the learner's id and seed
    built in, answers as salted digests only; returns how many files were written."""
    (stage / "grader" / "labgen").mkdir(exist_ok=True)
    (stage / "grader" / "labgen" / "__init__.py").write_text(
        '"""Generators are not part of a course bundle: each lab\'s start is pre-built."""\n'
    )
    n = _pin_labs(labs, stage, seed)
    course = {"learner": learner, "seed": seed, "build": build_id, "labs": [lab.id for lab in labs]}
    (stage / "grader" / "_course.json").write_text(json.dumps(course, indent=2) + "\n")
    (stage / "grader" / "_answers.json").write_text(json.dumps(answer_digests(labs, seed), indent=2) + "\n")
    return n + 2


def _build_wheel(out: Path, stage: Path, result: DistResult, secrets: dict[str, str]) -> None:
    """Build the wheel from the stage into ``out`` and scan it; a failed build is recorded, not raised."""
    for old in out.glob("cks_kit-*.whl"):
        old.unlink()
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(stage)],
        capture_output=True,
        text=True,
    )
    wheels = sorted(out.glob("cks_kit-*.whl"))
    if proc.returncode != 0 or not wheels:
        tail = (proc.stderr or proc.stdout).strip().splitlines()
        result.wheel_error = tail[-1] if tail else "pip wheel failed"
        return
    result.wheel = wheels[-1]
    result.leaks = leaks(wheel_items(result.wheel), secrets, learner_bundle=True)
    if result.leaks:
        result.wheel.unlink()
        raise DistError("solution content reached the wheel: " + "; ".join(result.leaks[:5]))


def _check_out(out: Path, repo: Path) -> None:
    """--out must not be the checkout or hold it: the stage folder inside it is replaced."""
    o, r = out.resolve(), repo.resolve()
    if o == r or o in r.parents:
        raise DistError(f"--out {out} is the source checkout or a folder above it; choose an empty folder")


def _pyproject(repo: Path, build_id: str) -> str:
    """The checkout's pyproject.toml with a version unique to this build (a later bundle upgrades)."""
    text = (repo / "pyproject.toml").read_text(encoding="utf-8")
    m = re.search(r'^version\s*=\s*"([^"]+)"', text, re.M)
    base = m.group(1) if m else "0.1.0"
    base = re.sub(r"(\.post\d+|\+.*)$", "", base)
    version = f"{base}.post{build_id}"
    text = re.sub(r'^version\s*=\s*"[^"]+"', f'version = "{version}"', text, count=1, flags=re.M)
    # a learner's wheel packs the grader (and the labs, force-included) only: never solutions/
    text = re.sub(r"^only-include\s*=\s*\[[^\]]*\]", 'only-include = ["grader"]', text, flags=re.M)
    text = re.sub(r"^\[tool\.hatch\.build\.targets\.wheel\.sources\]\n(?:[^\[\n].*\n)*", "", text, flags=re.M)
    return re.sub(r'^"solutions"\s*=.*\n', "", text, flags=re.M)


def _pin_labs(labs: list[Lab], stage: Path, seed: str | None) -> int:
    """Each lab as this learner meets it: variables pinned to their values (answer-carrying ones hidden),
    the starting state pre-built for their seed, no generator."""
    import yaml

    from grader import safeyaml, variants
    from grader.snapshot import META_FILE
    from grader.workspace import materialize

    n = 0
    for lab in labs:
        dest = stage / "labs" / lab.dir.name
        n += _copy(lab.dir, dest, ("start/", "lab.yaml"))
        if (dest / "start").exists():
            shutil.rmtree(dest / "start")
        materialize(lab, dest / "start", seed)
        for own in (META_FILE, ".cks-created", ".cks-lock"):  # the workspace's records, not the lab's start
            (dest / "start" / own).unlink(missing_ok=True)
        shutil.rmtree(dest / "start" / ".cks-backup", ignore_errors=True)
        n += sum(1 for p in (dest / "start").rglob("*") if p.is_file())
        data = safeyaml.load_one((lab.dir / "lab.yaml").read_bytes())
        values = variants.values_for(lab, seed)
        hidden = set(variants.ANSWER_VARIABLES.get(lab.id, ()))
        data["variables"] = {
            k: {"default": variants.HIDDEN if k in hidden else values[k]}
            for k in (data.get("variables") or {})
        }
        data.pop("generator", None)
        (dest / "lab.yaml").write_text(
            yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8"
        )
        n += 1
    return n


def answer_digests(labs: list[Lab], seed: str | None) -> dict[str, object]:
    """Salted digests of every answer the checks compare against, for ``seed``: recorded while grading
    the starting state and the reference solution (grader.variants.record_answers)."""
    import secrets as _secrets
    import tempfile

    from grader import variants
    from grader.runner import grade
    from grader.snapshot import Snapshot
    from grader.solutions import SolutionsUnavailable, apply_solution
    from grader.workspace import materialize

    salt = _secrets.token_hex(16)
    table: dict[str, dict[str, list[str]]] = {}
    for lab in labs:
        with tempfile.TemporaryDirectory(prefix="cks-dist-") as tmp:
            start, solved = Path(tmp) / "start", Path(tmp) / "solved"
            materialize(lab, start, seed)
            materialize(lab, solved, seed)
            try:
                apply_solution(lab, solved, seed)
            except SolutionsUnavailable as exc:
                raise DistError(f"cannot record {lab.id}'s answers: {exc}") from None

            def run(start: Path = start, solved: Path = solved, lab: Lab = lab) -> None:
                grade(lab, Snapshot(start))
                grade(lab, Snapshot(solved))

            seen = variants.record_answers(lab, run)
        if seen:
            table[lab.id] = {
                name: sorted(variants.digest(salt, lab.id, name, v) for v in vals)
                for name, vals in seen.items()
            }
    return {"salt": salt, "labs": table}


def learner_readme(labs: list[Lab], learner: str | None, seed: str | None) -> str:
    rows = "\n".join(f"| {lab.id} | {lab.title} | {lab.minutes} min |" for lab in labs)
    who = (
        f"This bundle was built for **{learner}**: "
        "your variant and learner id are built in, nothing to type.\n"
        if learner
        else ""
    )
    first = labs[0].id
    return f"""# CKS runtime-security labs

{who}
## Install

```
pip install cks_kit-*.whl        # or: pip install ./cks-kit
```

Installing a newer bundle from your instructor upgrades this one.

## Labs

| lab | title | time |
|---|---|---|
{rows}

## Work on a lab

```
cks start {first}                 # your practice workspace: ./cks-workspace/{first}
cks show {first}                  # the exercise, with your values
grade {first}                     # what is still wrong (no spoilers)
cks hint {first} t1               # a hint, one tier at a time
cks submit {first}                # the bundle to hand in to your instructor
```

`cks --help` lists every command.
"""


def _install_text(r: DistResult) -> str:
    lines = [f"CKS kit for learners: labs {', '.join(r.labs)}", "", "Install one of:"]
    if r.wheel:
        lines.append(f"  pip install {r.wheel.name}")
    lines += [f"  pip install ./{STAGE_NAME}", "", "Then: cks list, cks start <lab>, grade <lab>.", ""]
    return "\n".join(lines)
