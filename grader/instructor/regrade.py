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
import math
import os
import re
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from grader.instructor.bundle import DEFAULT_LIMITS, BundleError, Limits, extract, read_snapshot_seed
from grader.snapshot import META_FILE
from grader.text import plural
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
    pieces: list[str] = field(default_factory=list)  # normalised parts of the changes, for similarity
    times: list[str] = field(default_factory=list)  # evidence times (UTC, as written) for --deadline
    exam: dict[str, Any] | None = None  # the exam record the bundle carries, if any
    held: bool = False  # flagged: shown apart, not counted until accepted
    accepted: str = ""  # why a held bundle counts anyway (--accept, an overrides line)
    penalty: float = 0.0  # points taken off for lateness
    comments: dict[str, str] = field(default_factory=dict)  # task id (or "") -> instructor's comment
    help_used: str = ""  # hints and solution seen, from the workspace's .cks/hints.json


# ---- one bundle (runs in a worker) ---------------------------------------------------------------------


def scratch_dir() -> str | None:
    """Where bundles are extracted: $CKS_SCRATCH_DIR, else /dev/shm when it is a roomy tmpfs (creating
    and removing a few hundred small trees is 10-40x faster there than on a disk file system), else the
    default."""
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
    tmp = Path(tempfile.mkdtemp(prefix="cks-regrade-", dir=_SESSION or scratch_dir()))
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
        _read_exam_record(meta, res)
        if not ex.snapshot.is_dir():
            res.error = "bad bundle: it holds no snapshot/"
            return res
        prefix = "snapshot/"
        hashes = {k[len(prefix) :]: v for k, v in ex.files.items() if k.startswith(prefix)}
        _grade_extracted(ex.snapshot, meta, roster_seed, res, hashes)
        _changed_after_finish(res, hashes)
        res.help_used = _help_used(ex.snapshot)
        return res
    except Exception as exc:  # one broken bundle must not stop the class: report it in its row
        res.error = f"could not regrade: {type(exc).__name__}: {exc}"
        return res
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _grade_extracted(
    snap_root: Path, meta: dict[str, Any], roster_seed: str | None, res: BundleResult, hashes: dict[str, str]
) -> None:
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
    seed = _seed_to_grade(snap_root, meta, roster_seed, res)
    if meta.get("lab_version") != lab.version:
        res.flags.append(
            f"lab version: submitted on version {meta.get('lab_version')!r}, "
            f"regraded with version {lab.version}"
        )
    # the grader reads the seed from cks.yaml: write the authoritative one into our private copy
    snap_meta = _load_yaml(snap_root / META_FILE)
    snap_meta.update({"lab": lab.id, "seed": seed})
    (snap_root / META_FILE).write_text(yaml.safe_dump(snap_meta, sort_keys=False))
    snap = Snapshot(snap_root)
    report = grade(lab, snap, target=f"bundle {res.bundle}")
    res.seed = seed
    res.score, res.max_score = report.score, report.max_score
    values = variants.values_for(lab, seed)
    res.tasks = [
        TaskScore(
            t.id, t.title, t.status.value, t.points, t.max_points, t.message, generalise(t.message, values)
        )
        for t in report.tasks
    ]
    res.flags.extend(_claimed_score_flags(meta.get("claimed_score"), report.score))
    res.flags.extend(_internal_error_flags(report.tasks))
    res.times = [str(v) for k in ("started", "collected", "finished") if (v := snap_meta.get(k))]
    kind = str(snap_meta.get("kind") or "workspace")
    try:
        res.evidence = evidence_fingerprint(lab, seed, hashes, kind)
        if kind == "workspace":
            from grader.instructor.similarity import pieces

            res.pieces = pieces(lab, seed, snap_root, values)
    finally:
        forget_pristine(lab, seed)  # every learner has their own seed: keep the disk from filling


def _seed_to_grade(
    snap_root: Path, meta: dict[str, Any], roster_seed: str | None, res: BundleResult
) -> str | None:
    """The seed to grade with (the roster's, else the workspace's own), flagging any disagreement."""
    snap_seed = read_snapshot_seed(snap_root)
    meta_seed = _s(meta.get("seed"))
    if snap_seed != meta_seed:
        res.flags.append(
            f"seed mismatch: the metadata says {meta_seed!r}, the workspace was started with {snap_seed!r}"
        )
    if roster_seed is None:
        return snap_seed
    if roster_seed != snap_seed:
        res.flags.append(
            f"seed mismatch: the roster assigns {roster_seed!r}, the bundle has "
            f"{snap_seed!r}; graded with the roster's seed"
        )
    return roster_seed


def _claimed_score_flags(claimed: Any, score: float) -> list[str]:
    if (
        claimed is None
        or isinstance(claimed, bool)
        or not isinstance(claimed, int | float)
        or not math.isfinite(float(claimed))
    ):
        return [
            f"claimed score: the bundle's score is not a number ({str(claimed)[:20]!r}); "
            "it was not written by `cks submit` as is"
        ]
    if abs(float(claimed) - score) > 0.01:
        return [f"score mismatch: the bundle claims {claimed}, the evidence earns {score:g}"]
    return []


def _internal_error_flags(tasks: list[Any]) -> list[str]:
    """Every task an error, from internal errors (or tasks that depend on one): the grader broke, not the
    learner."""
    graded = [t for t in tasks if t.status.value != "skip"]
    if (
        graded
        and all(t.status.value == "error" for t in graded)
        and any("internal error" in t.message for t in graded)
    ):
        return [
            "internal error: every task ended in an internal error; look at this bundle by hand "
            "(`cks regrade` on it alone with CKS_DEBUG=1)"
        ]
    return []


def _help_used(snapshot: Path) -> str:
    """ "hints: t1 tier 2, t4 tier 1; solution seen 2026-..." from the learner's own record, or ''."""
    try:
        from grader import progress
    except ImportError:  # a kit without hint records
        return ""
    tiers = progress.tiers_seen(snapshot)
    seen = progress.solution_seen(snapshot)
    parts = []
    if tiers:
        parts.append("hints: " + ", ".join(f"{t} tier {n}" for t, n in sorted(tiers.items())))
    if seen:
        parts.append(f"solution seen {seen}")
    return "; ".join(parts)


def _changed_after_finish(res: BundleResult, hashes: dict[str, str]) -> None:
    """An exam question's files as handed in, against their hashes at `cks exam finish`."""
    rec = res.exam or {}
    at_finish = rec.get("finish_hashes") if isinstance(rec.get("finish_hashes"), dict) else {}
    mine = at_finish.get(res.lab) if res.lab else None
    if not isinstance(mine, dict) or not mine:
        return
    changed = sorted(k for k, h in hashes.items() if k != META_FILE and mine.get(k) != h)
    if changed:
        res.flags.append(
            f"late: {plural(len(changed), 'file')} differ from what was graded at `cks exam finish` "
            f"(e.g. {changed[0][:80]})"
        )


def _read_exam_record(meta: dict[str, Any], res: BundleResult) -> None:
    rec = meta.get("exam")
    if rec is None:
        return
    if not isinstance(rec, dict):
        res.flags.append("exam record: not a record (the bundle's metadata was edited)")
        return
    from grader.exam import verify_record

    res.exam = rec
    for problem in verify_record(rec):
        res.flags.append(f"exam record: {problem}")
    fields = rec.get("fields") if isinstance(rec.get("fields"), dict) else {}
    deadline, finished = fields.get("deadline"), rec.get("finished")
    if finished is None:
        res.flags.append("exam record: handed in before `cks exam finish` (the exam was still running)")
    late = rec.get("late_changes")
    if isinstance(late, list) and late:
        res.flags.append(
            f"late: {plural(len(late), 'file')} changed after the exam's deadline {deadline} "
            f"(e.g. {str(late[0])[:80]})"
        )


def generalise(message: str, values: dict[str, Any]) -> str:
    """Put ``{{ name }}`` back for each variant value, longest first, so the same mistake made on different
    seeds ("/etc/shop/x does not exist", "/etc/blog/x does not exist") counts as one in the class report."""
    pairs = sorted(
        ((str(v), k) for k, v in values.items() if isinstance(v, str | int) and len(str(v)) >= 3),
        key=lambda p: -len(p[0]),
    )
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
        changes = sorted(
            {(rel, h) for rel, h in mine.items() if start.get(rel) != h}
            | {(rel, "deleted") for rel in start if rel not in mine}
        )
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
    policy: Any = None  # the Policy applied (roster, overrides, ...)

    def columns(self) -> list[str]:
        return [f"{lab}.{tid}" for lab, tasks in self.labs.items() for tid, _title, _mx, _live in tasks]

    def learners(self) -> list[LearnerRow]:
        return learner_rows(self)


@dataclass
class LearnerRow:
    learner: str
    bundles: list[str]
    score: float  # what counts: graded bundles that are not held (or were accepted), after penalties
    max_score: float
    tasks: dict[str, float | None]  # column -> points (None: not submitted / not graded)
    statuses: dict[str, str]
    flags: list[str]
    errors: list[str]
    held_score: float = 0.0  # the score of held bundles, shown apart and not counted
    held_labs: list[str] = field(default_factory=list)
    status: str = "graded"  # graded | held | no submission | bad bundle
    comments: dict[str, str] = field(default_factory=dict)  # column (or lab) -> instructor's comment
    notes: list[str] = field(default_factory=list)  # accepted, penalties: what changed the count
    lab_scores: dict[str, float] = field(default_factory=dict)  # lab -> points (counted or held)
    penalty: float = 0.0
    on_roster: bool = True

    @property
    def percent(self) -> float:
        return round(100.0 * self.score / self.max_score, 1) if self.max_score else 0.0


@dataclass
class RosterEntry:
    learner: str
    seed: str
    name: str = ""
    email: str = ""
    sis_id: str = ""
    section: str = ""


@dataclass
class Override:
    learner: str
    lab: str
    task: str  # a task id; "accept" accepts a held bundle; "*" or "" comments on the whole lab
    points: float | None
    comment: str


@dataclass
class Policy:
    """What the instructor decided: who is on the roster, what is accepted, late rules, overrides."""

    roster: dict[str, RosterEntry] = field(default_factory=dict)
    accept: set[str] = field(default_factory=set)  # learner ids (or learner:lab)
    overrides: list[Override] = field(default_factory=list)
    deadline: datetime | None = None
    late_penalty: float = 0.0  # percent of the lab's points per started day late
    similarity: float = 0.8
    warnings: list[str] = field(default_factory=list)


# flags that hold a bundle: its score is shown apart and not counted until the instructor accepts it
HOLDING = (
    "tampering",
    "score mismatch",
    "claimed score",
    "seed mismatch",
    "late",
    "similar",
    "identical evidence",
    "not on the roster",
    "internal error",
    "exam record",
)

_SESSION: str | None = None  # the run's scratch folder: every bundle extracts under it, removed at the end


def _failed_result(path: str, why: str) -> BundleResult:
    return BundleResult(bundle=Path(path).name, learner=f"?{Path(path).name}", error=why)


def _job(args: tuple[str, dict[str, str], Limits]) -> BundleResult:
    return _regrade_with_roster(*args)


def _child_setup() -> None:
    tempfile.tempdir = _SESSION or scratch_dir() or tempfile.gettempdir()


def regrade_many(
    bundles: Iterable[str | Path],
    *,
    roster: dict[str, str] | None = None,
    jobs: int | None = None,
    limits: Limits = DEFAULT_LIMITS,
    budget: Any = None,
    policy: Policy | None = None,
    progress: Callable[[BundleResult], None] | None = None,
) -> ClassResult:
    """Regrade every bundle (each in a child with a time and memory budget, ``jobs`` at a time), then
    apply the class-level checks (identical and similar work, duplicates) and the instructor's policy."""
    global _SESSION
    import signal

    import grader.runner  # noqa: F401  (imported once here, inherited by every forked child)
    from grader.instructor.pool import Budget, run

    paths = [str(b) for b in bundles]
    policy = policy or Policy()
    seeds = dict(roster or {}) | {k: v.seed for k, v in policy.roster.items() if v.seed}
    jobs = max(1, jobs or os.cpu_count() or 1)
    budget = budget or Budget()
    results: list[BundleResult | None] = [None] * len(paths)
    session = tempfile.mkdtemp(prefix="cks-regrade-", dir=scratch_dir())
    old_handlers = {}

    def _stop(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)  # unwinds to the finally below: children killed, scratch removed

    try:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            with contextlib.suppress(ValueError):  # not the main thread: the caller owns signals
                old_handlers[sig] = signal.signal(sig, _stop)
        _SESSION = session
        items = [(p, seeds, limits) for p in paths]
        for idx, r in run(
            items,
            _job,
            jobs=jobs,
            budget=budget,
            setup=_child_setup,
            failed=lambda item, why: _failed_result(item[0], why),
        ):
            results[idx] = r
            if progress:
                progress(r)
    finally:
        _SESSION = None
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)
        shutil.rmtree(session, ignore_errors=True)
    done = [r for r in results if r is not None]
    _flag_shared_evidence(done)
    _flag_similar(done, policy.similarity)
    _flag_duplicates(done)
    cls = ClassResult(done, *_lab_columns(done))
    apply_policy(cls, policy)
    return cls


def _flag_similar(results: list[BundleResult], threshold: float) -> None:
    from grader.instructor.similarity import similar_pairs

    by_learner: dict[tuple[str, str | None], list[BundleResult]] = defaultdict(list)
    for r in results:
        by_learner[(r.learner, r.lab)].append(r)
    for pair in similar_pairs(results, threshold):
        for me, other in ((pair.a, pair.b), (pair.b, pair.a)):
            for r in by_learner[(me, pair.lab)]:
                if any(f.startswith("identical evidence") and other in f for f in r.flags):
                    continue
                shared = "; ".join(_readable(s) for s in pair.shared[:3])
                r.flags.append(
                    f"similar: {round(pair.score * 100)}% of the answer's normalised parts are shared "
                    f"with {other} (e.g. {shared})"
                )


def _readable(piece: str) -> str:
    """A shared part for a flag: ``file: rule 'X'`` for a named rule, macro or list, else its start."""
    path, _, rest = piece.partition("#")
    kind, _, body = rest.partition(":")
    label, bar, canon = body.partition("|")
    what = label if kind == "item" and bar and label else (canon if bar else body)[:50]
    return f"{path.rsplit('/', 1)[-1]}: {what}"


def apply_policy(cls: ClassResult, policy: Policy) -> None:
    """Roster, lateness, overrides and acceptance, on the regraded bundles (in place)."""
    cls.policy = policy
    live = [r for r in cls.bundles if r.error is None]
    for r in cls.bundles:
        if policy.roster and r.error is None and r.learner not in policy.roster:
            r.flags.append("not on the roster: no learner of this id was assigned the lab")
    if policy.deadline is not None:
        for r in live:
            _mark_late(r, policy)
    used = set()
    for r in live:
        for i, o in enumerate(policy.overrides):
            if o.learner == r.learner and o.lab in (r.lab, "*"):
                used.add(i)
                _apply_override(r, o)
    for i, o in enumerate(policy.overrides):
        if i not in used:
            policy.warnings.append(f"override for {o.learner} {o.lab} {o.task} matches no regraded bundle")
    for r in live:
        r.held = any(f.startswith(HOLDING) for f in r.flags)
        if r.held and (r.learner in policy.accept or f"{r.learner}:{r.lab}" in policy.accept):
            r.accepted = r.accepted or "accepted with --accept"
        if r.accepted:
            r.held = False
        if r.penalty:
            r.score = round(max(0.0, r.score - r.penalty), 2)


def _mark_late(r: BundleResult, policy: Policy) -> None:
    assert policy.deadline is not None
    times = []
    for label, value in [("submitted", r.submitted)] + [("evidence", t) for t in r.times]:
        t = parse_time(value)
        if t is not None:
            times.append((t, label))
    rec = r.exam or {}
    if rec.get("finished"):
        t = parse_time(rec.get("finished"))
        if t is not None:
            times.append((t, "exam finished"))
    late = [(t, label) for t, label in times if t > policy.deadline]
    if not late:
        return
    t, label = max(late)
    hours = (t - policy.deadline).total_seconds() / 3600
    days = math.ceil(hours / 24)
    r.flags.append(
        f"late: {label} {t:%Y-%m-%d %H:%M} UTC, {hours:.1f} h after the deadline "
        f"{policy.deadline:%Y-%m-%d %H:%M} UTC"
    )
    if policy.late_penalty:
        r.penalty = round(min(r.score, r.max_score * min(1.0, policy.late_penalty * days / 100)), 2)


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _apply_override(r: BundleResult, o: Override) -> None:
    note = f"override: {o.comment}" if o.comment else "override"
    if o.task.lower() == "accept":
        r.accepted = f"accepted by the overrides file{': ' + o.comment if o.comment else ''}"
        r.comments[""] = o.comment or r.comments.get("", "")
        return
    if o.task in ("", "*"):
        r.comments[""] = o.comment
        return
    for t in r.tasks:
        if t.id == o.task:
            if o.points is not None:
                pts = max(0.0, min(float(o.points), t.max_points))
                r.score = round(r.score - t.points + pts, 2)
                t.points = pts
                t.status = "pass" if pts >= t.max_points else "fail"
                t.message = f"{t.message} [{note}: {pts:g}/{t.max_points:g}]"
            r.comments[t.id] = o.comment
            return
    r.comments[o.task] = o.comment


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
            r.flags.append(
                f"identical evidence: the same changes as {', '.join(others[:5])}"
                + (f" and {len(others) - 5} more" if len(others) > 5 else "")
            )


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


def _lab_columns(
    results: list[BundleResult],
) -> tuple[dict[str, list[tuple[str, str, float, bool]]], dict[str, str]]:
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
    policy = cls.policy or Policy()
    rows: dict[str, LearnerRow] = {}
    for r in cls.bundles:
        row = rows.setdefault(r.learner, LearnerRow(r.learner, [], 0.0, 0.0, {}, {}, [], []))
        _add_bundle(row, r)
    for learner in policy.roster:
        if learner not in rows:
            rows[learner] = LearnerRow(learner, [], 0.0, 0.0, {}, {}, [], [], status="no submission")
    for row in rows.values():
        row.on_roster = not policy.roster or row.learner in policy.roster
        _add_missing_labs(row, cls.labs)
        row.score, row.max_score = round(row.score, 2), round(row.max_score, 2)
        row.held_score = round(row.held_score, 2)
        row.status = _row_status(row)
    return sorted(rows.values(), key=lambda r: r.learner.lower())


def _add_bundle(row: LearnerRow, r: BundleResult) -> None:
    """Count one bundle into its learner's row: its tasks, comments, notes and score (held apart)."""
    row.bundles.append(r.bundle)
    row.flags.extend(r.flags)
    if r.error:
        if not r.error.startswith("superseded"):
            row.errors.append(f"{r.bundle}: {r.error}")
        return
    for t in r.tasks:
        col = f"{r.lab}.{t.id}"
        row.tasks[col] = None if t.status == "skip" else t.points  # blank: not graded (live-only)
        row.statuses[col] = t.status
        if r.comments.get(t.id):
            row.comments[col] = r.comments[t.id]
    if r.comments.get(""):
        row.comments[str(r.lab)] = r.comments[""]
    row.lab_scores[str(r.lab)] = r.score
    row.notes.extend(f"{r.lab}: {note}" for note in (r.accepted, r.help_used) if note)
    if r.penalty:
        row.penalty += r.penalty
        row.notes.append(f"{r.lab}: late penalty -{r.penalty:g}")
    if r.held:
        row.held_score += r.score
        row.held_labs.append(str(r.lab))
    else:
        row.score += r.score
    row.max_score += r.max_score


def _add_missing_labs(row: LearnerRow, labs: dict[str, list[tuple[str, str, float, bool]]]) -> None:
    """A lab a learner did not hand in (or whose bundle was bad) still counts towards the maximum."""
    for lab_id, tasks in labs.items():
        if not any(f"{lab_id}.{task[0]}" in row.tasks for task in tasks):
            # what a regrade could have earned: live-only tasks are skipped offline, as in the report
            row.max_score += sum(mx for _i, _t, mx, live in tasks if not live)


def _row_status(row: LearnerRow) -> str:
    if row.status == "no submission":
        return row.status
    if row.held_labs:
        return "held"
    if not row.tasks and row.errors:
        return "bad bundle"
    if not row.tasks:
        return "no submission"
    return row.status


# ---- CSV --------------------------------------------------------------------------------------------------


def csv_cell(text: str) -> str:
    """Learner-controlled text in a spreadsheet: defuse formulas (=, +, -, @ at the start)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_number(x: float) -> str:
    return f"{x:g}"


def write_csv(cls: ClassResult, out: Path) -> list[LearnerRow]:
    """The class CSV: a row per learner (every roster learner too), the counted score, held scores apart,
    a column per lab and per task, and the flags, notes, instructor comments and errors."""
    rows = learner_rows(cls)
    cols = cls.columns()
    labs = list(cls.labs)
    with open(out, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(
            [
                "learner",
                "status",
                "score",
                "max_score",
                "percent",
                "held_score",
                *[f"{lab}.total" for lab in labs],
                *cols,
                "late_penalty",
                "flags",
                "notes",
                "comments",
                "errors",
                "bundles",
            ]
        )
        for row in rows:
            w.writerow(
                [
                    csv_cell(row.learner),
                    row.status,
                    csv_number(row.score),
                    csv_number(row.max_score),
                    csv_number(row.percent),
                    csv_number(row.held_score),
                    *[("" if lab not in row.lab_scores else csv_number(row.lab_scores[lab])) for lab in labs],
                    *[("" if row.tasks.get(c) is None else csv_number(row.tasks[c])) for c in cols],
                    csv_number(row.penalty),
                    csv_cell(" | ".join(row.flags)),
                    csv_cell(" | ".join(row.notes)),
                    csv_cell(" | ".join(f"{k}: {v}" for k, v in row.comments.items())),
                    csv_cell(" | ".join(row.errors)),
                    csv_cell(" ".join(row.bundles)),
                ]
            )
    return rows


_ROSTER_COLUMNS = {
    "learner": "learner",
    "id": "learner",
    "seed": "seed",
    "name": "name",
    "email": "email",
    "sis_id": "sis_id",
    "sis user id": "sis_id",
    "section": "section",
}


def read_roster(path: Path) -> dict[str, str]:
    """A CSV with columns learner,seed (a header row is optional)."""
    return {k: v.seed for k, v in read_roster_entries(path).items()}


def read_roster_entries(path: Path) -> dict[str, RosterEntry]:
    """learner,seed[,name,email,sis_id,section]: a header row names the columns (any order); without one the
    columns are taken in that order."""
    out: dict[str, RosterEntry] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        recs = [rec for rec in csv.reader(fh)]
    order = ["learner", "seed", "name", "email", "sis_id", "section"]
    start = 0
    for i, rec in enumerate(recs):
        if not rec or rec[0].strip().startswith("#"):
            continue
        low = [c.strip().lower() for c in rec]
        if "learner" in low or "id" in low[:1]:
            order = [_ROSTER_COLUMNS.get(c, "") for c in low]
            start = i + 1
        break
    for i, rec in enumerate(recs[start:], start=start):
        if not rec or rec[0].strip().startswith("#"):
            continue
        fields = {k: v.strip() for k, v in zip(order, rec, strict=False) if k}
        learner = fields.get("learner", "")
        if not learner:
            raise ValueError(f"{path}: line {i + 1}: no learner id")
        if "seed" not in fields and len(rec) < 2:
            raise ValueError(f"{path}: line {i + 1}: expected 'learner,seed'")
        out[learner] = RosterEntry(
            learner,
            fields.get("seed", ""),
            fields.get("name", ""),
            fields.get("email", ""),
            fields.get("sis_id", ""),
            fields.get("section", ""),
        )
    return out


def read_overrides(path: Path) -> list[Override]:
    """learner,lab,task,points,comment (header optional). task ``accept`` accepts a held bundle; an empty
    points cell keeps the grade and only adds the comment."""
    out = []
    with open(path, newline="", encoding="utf-8") as fh:
        for i, rec in enumerate(csv.reader(fh)):
            if not rec or rec[0].strip().startswith("#"):
                continue
            if i == 0 and rec[0].strip().lower() == "learner":
                continue
            rec = [c.strip() for c in rec] + [""] * 5
            learner, lab, task, points, comment = rec[:5]
            if not learner or not lab:
                raise ValueError(f"{path}: line {i + 1}: expected learner,lab,task,points,comment")
            try:
                pts = float(points) if points else None
            except ValueError:
                raise ValueError(f"{path}: line {i + 1}: points must be a number, got {points!r}") from None
            if pts is not None and not math.isfinite(pts):
                raise ValueError(f"{path}: line {i + 1}: points must be a finite number")
            out.append(Override(learner, lab, task, pts, comment))
    return out
