"""Regrade a class from its evidence bundles.

Each bundle is extracted into a private temporary directory and graded afresh from its snapshot with the
instructor's copy of the lab (never the learner's score, never lab files from the bundle). The seed used is
the instructor's roster entry when there is one, else the seed the workspace was started with. Integrity
findings become flags on the learner's row; a bundle that cannot be used is reported in its row and the
rest of the class is graded. Work runs in a process pool (one bundle per task) because grading is CPU-bound.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import os
import re
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.instructor.bundle import DEFAULT_LIMITS, BundleError, Limits, extract, read_snapshot_seed
from grader.snapshot import META_FILE
from grader.workspace import forget_pristine


@dataclass
class TaskScore:
    id: str
    title: str
    status: str
    points: float
    max_points: float
    message: str
    common: str = ""  # the message with this learner's variant values put back as {{ name }}, for grouping


@dataclass
class BundleResult:
    """One bundle, regraded. ``error`` set means the bundle could not be used (its row says why)."""

    bundle: str
    learner: str
    lab: str | None = None
    lab_title: str = ""
    seed: str | None = None
    submitted: str | None = None
    score: float = 0.0
    max_score: float = 0.0
    claimed_score: Any = None
    tasks: list[TaskScore] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    error: str | None = None
    evidence: str | None = None  # fingerprint of the learner's changes (None: nothing changed)


# ---- one bundle (runs in a worker) ---------------------------------------------------------------------

def scratch_dir() -> str | None:
    """Where bundles are extracted: $CKS_SCRATCH_DIR, else /dev/shm when it is a roomy tmpfs (creating and
    removing a few hundred small trees is 10-40x faster there than on a disk file system), else the default."""
    env = os.environ.get("CKS_SCRATCH_DIR")
    if env:
        return env
    shm = "/dev/shm"
    try:
        st = os.statvfs(shm)
        if os.access(shm, os.W_OK) and st.f_bavail * st.f_frsize > 2 * 1024**3:
            return shm
    except OSError:
        pass
    return None


@contextlib.contextmanager
def _scratch_tempdir() -> Iterator[None]:
    """Starting states the grader builds (workspace.pristine) go to the scratch directory too."""
    old = tempfile.tempdir
    tempfile.tempdir = scratch_dir() or old
    try:
        yield
    finally:
        tempfile.tempdir = old


def regrade_one(bundle: str, roster_seed: str | None = None, limits: Limits = DEFAULT_LIMITS) -> BundleResult:
    path = Path(bundle)
    res = BundleResult(bundle=path.name, learner=f"?{path.name}")  # until the metadata names the learner
    tmp = Path(tempfile.mkdtemp(prefix="cks-regrade-", dir=scratch_dir()))
    try:
        try:
            ex = extract(path, tmp / "b", limits)
        except BundleError as exc:
            res.error = f"bad bundle: {exc}"
            return res
        meta = ex.meta
        res.learner, res.lab, res.submitted = meta["learner"], meta["lab"], _s(meta.get("submitted"))
        res.claimed_score = meta.get("claimed_score")
        res.flags.extend(f"tampering: {p}" for p in ex.problems)
        if not ex.snapshot.is_dir():
            res.error = "bad bundle: it holds no snapshot/"
            return res
        prefix = "snapshot/"
        hashes = {k[len(prefix):]: v for k, v in ex.files.items() if k.startswith(prefix)}
        _grade_extracted(ex.snapshot, meta, roster_seed, res, hashes)
        return res
    except Exception as exc:  # one broken bundle must not stop the class: report it in its row
        res.error = f"could not regrade: {type(exc).__name__}: {exc}"
        return res
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _grade_extracted(snap_root: Path, meta: dict[str, Any], roster_seed: str | None, res: BundleResult,
                     hashes: dict[str, str]) -> None:
    import yaml

    from grader import variants
    from grader.labs import LabError, get_lab
    from grader.runner import grade
    from grader.snapshot import Snapshot

    try:
        lab = get_lab(meta["lab"])
    except LabError as exc:
        res.error = f"cannot grade: {exc}"
        return
    res.lab_title = lab.title
    snap_seed = read_snapshot_seed(snap_root)
    meta_seed = _s(meta.get("seed"))
    if snap_seed != meta_seed:
        res.flags.append(f"seed mismatch: the metadata says {meta_seed!r}, the workspace was started "
                         f"with {snap_seed!r}")
    seed = snap_seed
    if roster_seed is not None:
        if roster_seed != snap_seed:
            res.flags.append(f"seed mismatch: the roster assigns {roster_seed!r}, the bundle has "
                             f"{snap_seed!r}; graded with the roster's seed")
        seed = roster_seed
    if meta.get("lab_version") != lab.version:
        res.flags.append(f"lab version: submitted on version {meta.get('lab_version')!r}, "
                         f"regraded with version {lab.version}")
    # the grader reads the seed from cks.yaml: write the authoritative one into our private copy
    snap_meta = _load_yaml(snap_root / META_FILE)
    snap_meta.update({"lab": lab.id, "seed": seed})
    (snap_root / META_FILE).write_text(yaml.safe_dump(snap_meta, sort_keys=False))
    snap = Snapshot(snap_root)
    report = grade(lab, snap, target=f"bundle {res.bundle}")
    res.seed = seed
    res.score, res.max_score = report.score, report.max_score
    values = variants.values_for(lab, seed)
    res.tasks = [TaskScore(t.id, t.title, t.status.value, t.points, t.max_points, t.message,
                           generalise(t.message, values)) for t in report.tasks]
    claimed = meta.get("claimed_score")
    if isinstance(claimed, int | float) and abs(float(claimed) - report.score) > 0.01:
        res.flags.append(f"score mismatch: the bundle claims {claimed}, the evidence earns {report.score:g}")
    try:
        res.evidence = evidence_fingerprint(lab, seed, hashes, str(snap_meta.get("kind") or "workspace"))
    finally:
        forget_pristine(lab, seed)  # every learner has their own seed: keep the disk from filling


def generalise(message: str, values: dict[str, Any]) -> str:
    """Put ``{{ name }}`` back for each variant value, longest first, so the same mistake made on different
    seeds ("/etc/shop/x does not exist", "/etc/blog/x does not exist") counts as one in the class report."""
    pairs = sorted(((str(v), k) for k, v in values.items() if isinstance(v, str | int) and len(str(v)) >= 3),
                   key=lambda p: -len(p[0]))
    for value, name in pairs:  # whole words only: a value "prod" must not rewrite "production"
        message = re.sub(rf"(?<![A-Za-z0-9]){re.escape(value)}(?![A-Za-z0-9])", "{{ " + name + " }}", message)
    return message


def _load_yaml(path: Path) -> dict[str, Any]:
    from grader import safeyaml

    try:
        data = safeyaml.load_one(path.read_bytes())
    except (OSError, safeyaml.YamlProblem):
        return {}
    return data if isinstance(data, dict) else {}


def _s(v: Any) -> str | None:
    return None if v is None else str(v)


def _tree_hashes(root: Path) -> dict[str, str]:
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            if rel == META_FILE or p.is_symlink() or not p.is_file():
                continue
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def evidence_fingerprint(lab: Any, seed: str | None, mine: dict[str, str], kind: str) -> str | None:
    """A hash of what the learner changed relative to the starting state for their seed (None if nothing).

    Two learners with the same fingerprint handed in the same work. For a live collection there is no
    starting state to subtract, so the whole snapshot is hashed (two clusters never collect identically).
    ``mine`` maps each snapshot file to its SHA-256 (computed while extracting, so nothing is read twice)."""
    mine = {k: v for k, v in mine.items() if k != META_FILE}
    if kind == "workspace":
        from grader.workspace import pristine

        start = _tree_hashes(pristine(lab, seed).root)  # the runner has usually built it already
        changes = sorted({(rel, h) for rel, h in mine.items() if start.get(rel) != h} |
                         {(rel, "deleted") for rel in start if rel not in mine})
    else:
        changes = sorted(mine.items())
    if not changes:
        return None
    return hashlib.sha256(repr(changes).encode()).hexdigest()


# ---- the class -------------------------------------------------------------------------------------------

@dataclass
class ClassResult:
    bundles: list[BundleResult]
    labs: dict[str, list[tuple[str, str, float, bool]]]  # lab -> [(task id, title, max points, live only)]
    lab_titles: dict[str, str]

    def columns(self) -> list[str]:
        return [f"{lab}.{tid}" for lab, tasks in self.labs.items() for tid, _title, _mx, _live in tasks]

    def learners(self) -> list[LearnerRow]:
        return learner_rows(self)


@dataclass
class LearnerRow:
    learner: str
    bundles: list[str]
    score: float
    max_score: float
    tasks: dict[str, float | None]  # column -> points (None: not submitted / not graded)
    statuses: dict[str, str]
    flags: list[str]
    errors: list[str]

    @property
    def percent(self) -> float:
        return round(100.0 * self.score / self.max_score, 1) if self.max_score else 0.0


def regrade_many(bundles: Iterable[str | Path], *, roster: dict[str, str] | None = None, jobs: int | None = None,
                 limits: Limits = DEFAULT_LIMITS,
                 progress: Callable[[BundleResult], None] | None = None) -> ClassResult:
    """Regrade every bundle (in ``jobs`` processes) and flag identical evidence across learners."""
    paths = [str(b) for b in bundles]
    roster = roster or {}
    jobs = max(1, jobs or os.cpu_count() or 1)
    # the roster is keyed by learner, which we only know after opening the bundle: workers take the map
    results: list[BundleResult] = []
    if jobs == 1 or len(paths) < 4:
        with _scratch_tempdir():
            for p in paths:
                r = _regrade_with_roster(p, roster, limits)
                results.append(r)
                if progress:
                    progress(r)
    else:
        chunk = max(1, min(16, len(paths) // (jobs * 4)))
        with ProcessPoolExecutor(max_workers=jobs, initializer=_warm) as pool:
            for r in pool.map(_regrade_with_roster, paths, [roster] * len(paths), [limits] * len(paths),
                              chunksize=chunk):
                results.append(r)
                if progress:
                    progress(r)
    _flag_shared_evidence(results)
    _flag_duplicates(results)
    return ClassResult(results, *_lab_columns(results))


def _warm() -> None:
    """Per worker: import the grader's heavy parts once, and build starting states in the scratch directory."""
    import grader.runner  # noqa: F401

    tempfile.tempdir = scratch_dir() or tempfile.gettempdir()


def _regrade_with_roster(path: str, roster: dict[str, str], limits: Limits) -> BundleResult:
    res = regrade_one(path, None, limits)
    # grade again only if the roster's seed differs from what the bundle was graded with
    if res.error is None and res.learner in roster and roster[res.learner] != res.seed:
        res = regrade_one(path, roster[res.learner], limits)
    return res


def _flag_shared_evidence(results: list[BundleResult]) -> None:
    by_print: dict[tuple[str | None, str], list[BundleResult]] = defaultdict(list)
    for r in results:
        if r.evidence and r.error is None:
            by_print[(r.lab, r.evidence)].append(r)
    for group in by_print.values():
        names = sorted({r.learner for r in group})
        if len(names) < 2:
            continue
        for r in group:
            others = [n for n in names if n != r.learner]
            r.flags.append(f"identical evidence: the same changes as {', '.join(others[:5])}"
                           + (f" and {len(others) - 5} more" if len(others) > 5 else ""))


def _flag_duplicates(results: list[BundleResult]) -> None:
    """Two bundles for one learner and lab: the latest submission counts; the others are marked."""
    groups: dict[tuple[str, str | None], list[BundleResult]] = defaultdict(list)
    for r in results:
        if r.error is None:
            groups[(r.learner, r.lab)].append(r)
    for group in groups.values():
        if len(group) < 2:
            continue
        group.sort(key=lambda r: (r.submitted or "", r.bundle))
        latest = group[-1]
        for r in group[:-1]:
            r.error = f"superseded by {latest.bundle} (a later submission of {r.lab})"
        latest.flags.append(f"{len(group)} submissions of {latest.lab}; the latest counts")


def _lab_columns(results: list[BundleResult]) -> tuple[dict[str, list[tuple[str, str, float, bool]]],
                                                       dict[str, str]]:
    from grader.labs import LabError, get_lab

    labs: dict[str, list[tuple[str, str, float, bool]]] = {}
    titles: dict[str, str] = {}
    for lab_id in sorted({r.lab for r in results if r.lab}, key=lambda s: (len(s), s)):
        try:
            lab = get_lab(lab_id)
        except LabError:
            continue
        labs[lab_id] = [(t.id, t.title, t.points, t.live) for t in lab.tasks]
        titles[lab_id] = lab.title
    return labs, titles


def learner_rows(cls: ClassResult) -> list[LearnerRow]:
    rows: dict[str, LearnerRow] = {}
    for r in cls.bundles:
        row = rows.setdefault(r.learner, LearnerRow(r.learner, [], 0.0, 0.0, {}, {}, [], []))
        row.bundles.append(r.bundle)
        row.flags.extend(r.flags)
        if r.error:
            if not r.error.startswith("superseded"):
                row.errors.append(f"{r.bundle}: {r.error}")
            continue
        for t in r.tasks:
            col = f"{r.lab}.{t.id}"
            row.tasks[col] = None if t.status == "skip" else t.points  # blank: not graded (live-only)
            row.statuses[col] = t.status
        row.score += r.score
        row.max_score += r.max_score
    # a lab a learner did not hand in (or whose bundle was bad) still counts towards the maximum
    for row in rows.values():
        for lab_id, tasks in cls.labs.items():
            if not any(f"{lab_id}.{task[0]}" in row.tasks for task in tasks):
                # what a regrade could have earned: live-only tasks are skipped offline, as in the report
                row.max_score += sum(mx for _i, _t, mx, live in tasks if not live)
        row.score, row.max_score = round(row.score, 2), round(row.max_score, 2)
    return sorted(rows.values(), key=lambda r: r.learner.lower())


# ---- CSV --------------------------------------------------------------------------------------------------

def _cell(text: str) -> str:
    """Learner-controlled text in a spreadsheet: defuse formulas (=, +, -, @ at the start)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _num(x: float) -> str:
    return f"{x:g}"


def write_csv(cls: ClassResult, out: Path) -> list[LearnerRow]:
    rows = learner_rows(cls)
    cols = cls.columns()
    with open(out, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["learner", "score", "max_score", "percent", *cols, "flags", "errors", "bundles"])
        for row in rows:
            w.writerow([_cell(row.learner), _num(row.score), _num(row.max_score), _num(row.percent),
                        *[("" if row.tasks.get(c) is None else _num(row.tasks[c])) for c in cols],
                        _cell(" | ".join(row.flags)), _cell(" | ".join(row.errors)),
                        _cell(" ".join(row.bundles))])
    return rows


def read_roster(path: Path) -> dict[str, str]:
    """A CSV with columns learner,seed (a header row is optional)."""
    out: dict[str, str] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        for i, rec in enumerate(csv.reader(fh)):
            if not rec or rec[0].strip().startswith("#"):
                continue
            if i == 0 and [c.strip().lower() for c in rec[:2]] == ["learner", "seed"]:
                continue
            if len(rec) < 2:
                raise ValueError(f"{path}: line {i + 1}: expected 'learner,seed'")
            out[rec[0].strip()] = rec[1].strip()
    return out
