"""Exam mode: several labs under one timer, graded together at the end.

State lives in ``<exam dir>/exam.yaml`` (default ./cks-workspace/exam) with the deadline as an absolute UTC
time, so closing the terminal or rebooting does not stop or reset the clock. Each lab gets a workspace under
the exam directory. ``status`` reports time left and which questions were attempted (their files differ from
the starting state) but never runs a check: results appear only at ``finish`` or once time is up.

Every function takes ``now`` (a clock) so tests can move time without sleeping.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from grader import safeyaml
from grader.labs import Lab, LabError, get_lab
from grader.results import Report
from grader.snapshot import META_FILE

Clock = Callable[[], datetime]
DEFAULT_DIR = Path("cks-workspace") / "exam"
STATE_FILE = "exam.yaml"
RESULT_FILE = "result.json"
PASS_MARK = 0.67  # the real CKS exam's pass mark
DEFAULT_LAB = "lab8"
TIME_FMT = "%Y-%m-%dT%H:%M:%SZ"


class ExamError(RuntimeError):
    pass


def utc_now() -> datetime:
    return datetime.now(UTC)


def _fmt(t: datetime) -> str:
    return t.astimezone(UTC).strftime(TIME_FMT)


def _parse(s: Any, what: str) -> datetime:
    try:
        return datetime.strptime(str(s), TIME_FMT).replace(tzinfo=UTC)
    except ValueError:
        raise ExamError(
            f"{STATE_FILE}: {what} must be a UTC time like 2025-01-31T14:00:00Z, got {s!r}"
        ) from None


@dataclass
class Exam:
    dir: Path
    labs: list[str]
    seed: str
    minutes: int
    started: datetime
    deadline: datetime
    start_hashes: dict[str, dict[str, str]]  # lab -> {relative path: sha256} at start
    finished: datetime | None = None
    seal: str | None = None  # HMAC of the record (see seal_of)
    finish_hashes: dict[str, dict[str, str]] = field(default_factory=dict)  # lab -> hashes at finish

    def workspace(self, lab_id: str) -> Path:
        return self.dir / lab_id

    def time_left(self, now: datetime) -> timedelta:
        return max(self.deadline - now, timedelta(0))

    def is_over(self, now: datetime) -> bool:
        return now >= self.deadline

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "exam",
            "labs": self.labs,
            "seed": self.seed,
            "minutes": self.minutes,
            "started": _fmt(self.started),
            "deadline": _fmt(self.deadline),
            "finished": _fmt(self.finished) if self.finished else None,
            "start_hashes": self.start_hashes,
            "finish_hashes": self.finish_hashes,
            "seal": self.seal,
        }

    def save(self) -> None:
        _atomic_write(self.dir / STATE_FILE, yaml.safe_dump(self.to_dict(), sort_keys=False))


def _atomic_write(path: Path, text: str) -> None:
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def tree_hashes(root: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    if not root.is_dir():
        return out
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink():
            rel = p.relative_to(root).as_posix()
            if rel != META_FILE:
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def default_labs() -> list[str]:
    try:
        get_lab(DEFAULT_LAB)
        return [DEFAULT_LAB]
    except LabError:
        from grader.labs import lab_dirs

        return list(lab_dirs())


@contextlib.contextmanager
def _start_lock(base: Path) -> Iterator[None]:
    """One `cks exam start` at a time per exam directory (two at once mixed two variants)."""
    import fcntl

    base.parent.mkdir(parents=True, exist_ok=True)
    lock = base.parent / f".{base.name}.cks-lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ExamError(f"another `cks exam start` is setting up {base} right now; wait for it") from None
        yield
    finally:
        os.close(fd)


def _discard(base: Path) -> None:
    """--force: remove only what a previous `cks exam start` wrote (its state, result, seal and question
    workspaces); refuse when the folder holds anything else."""
    try:
        old = load(base)
        labs = old.labs
    except ExamError:
        labs = []
    ours = {STATE_FILE, RESULT_FILE, SEAL_FILE, *labs}
    foreign = sorted(
        p.name for p in base.iterdir() if p.name not in ours and not p.name.startswith(f".{STATE_FILE}.")
    )
    if foreign:
        raise ExamError(
            f"{base} holds files the exam did not create ({', '.join(foreign[:5])}); move them away "
            "or choose another --dir (nothing was deleted)"
        )
    for lab_id in labs:
        ws = base / lab_id
        if ws.is_dir() and not ws.is_symlink() and (ws / META_FILE).is_file():
            shutil.rmtree(ws)
        elif ws.exists() or ws.is_symlink():
            raise ExamError(f"{ws} is not a question workspace the exam created; nothing was deleted")
    for name in (STATE_FILE, RESULT_FILE, SEAL_FILE):
        (base / name).unlink(missing_ok=True)


def start(
    labs: list[Lab],
    *,
    base: Path = DEFAULT_DIR,
    minutes: int | None = None,
    seed: str | None = None,
    now: Clock = utc_now,
    force: bool = False,
) -> Exam:
    if not labs:
        raise ExamError("no labs to put in the exam")
    with _start_lock(base):
        return _start_locked(labs, base, minutes, seed, now, force)


def _start_locked(
    labs: list[Lab], base: Path, minutes: int | None, seed: str | None, now: Clock, force: bool
) -> Exam:
    from grader.workspace import materialize

    state = base / STATE_FILE
    if state.exists() and not force:
        raise ExamError(
            f"an exam already exists in {base}; see `cks exam status`, or start a new one with "
            "`cks exam start --force` (this discards it)"
        )
    if base.exists() and force:
        if not state.is_file():
            raise ExamError(f"{base} is not an exam directory (no {STATE_FILE}); refusing to delete it")
        _discard(base)
    if base.exists() and any(base.iterdir()):
        raise ExamError(f"{base} exists and is not empty; choose another --dir")
    base.mkdir(parents=True, exist_ok=True)
    seed = seed or secrets.token_hex(4)  # a fresh variant each sitting unless the learner asks for one
    minutes = minutes if minutes is not None else sum(lab.minutes for lab in labs)
    if minutes <= 0:
        raise ExamError("--minutes must be positive")
    t0 = now().astimezone(UTC).replace(microsecond=0)
    exam = Exam(base, [lab.id for lab in labs], seed, minutes, t0, t0 + timedelta(minutes=minutes), {})
    key = secrets.token_hex(32)
    (base / SEAL_FILE).write_text(key + "\n", encoding="ascii")
    fields = _record_fields(exam)
    exam.seal = seal_of(fields, key)
    for lab in labs:
        ws = base / lab.id
        materialize(lab, ws, seed)
        _stamp_workspace(ws, fields)
        exam.start_hashes[lab.id] = tree_hashes(ws)
    exam.save()
    return exam


def _stamp_workspace(ws: Path, fields: dict[str, Any]) -> None:
    """A copy of the record in the question's cks.yaml: it travels in the bundle with the evidence."""
    from grader import safeyaml as sy

    meta_path = ws / META_FILE
    try:
        meta = sy.load_one(meta_path.read_bytes())
    except (OSError, sy.YamlProblem):
        return
    if isinstance(meta, dict):
        meta["exam"] = {
            "started": fields["started"],
            "deadline": fields["deadline"],
            "minutes": fields["minutes"],
        }
        _atomic_write(meta_path, yaml.safe_dump(meta, sort_keys=False))


def unfinished_exam_for(workspace: Path, now: Clock = utc_now) -> Exam | None:
    """The exam ``workspace`` belongs to while it is running (not finished, time not up); else None."""
    base = workspace.resolve().parent
    if not (base / STATE_FILE).is_file():
        return None
    try:
        exam = load(base)
    except ExamError:
        return None
    if workspace.resolve().name not in exam.labs or exam.finished is not None or exam.is_over(now()):
        return None
    return exam


def load(base: Path = DEFAULT_DIR) -> Exam:
    path = base / STATE_FILE
    if not path.is_file():
        raise ExamError(f"no exam in {base}; start one with `cks exam start`")
    try:
        data = safeyaml.load_one(path.read_bytes())
    except (OSError, safeyaml.YamlProblem, ValueError) as exc:
        raise ExamError(f"{path}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("labs"), list):
        raise ExamError(f"{path} is not an exam state file")
    minutes = data.get("minutes")
    if not isinstance(minutes, int) or isinstance(minutes, bool) or not 0 < minutes <= 7 * 24 * 60:
        raise ExamError(f"{path}: minutes must be a whole number of minutes, got {str(minutes)[:40]!r}")
    labs = data["labs"]
    if not labs or not all(isinstance(x, str) and re.fullmatch(r"lab\d{1,4}", x) for x in labs):
        raise ExamError(f"{path}: labs must be a list of lab ids like lab8")
    hashes = data.get("start_hashes") or {}
    if not isinstance(hashes, dict) or not all(
        isinstance(v, dict) and all(isinstance(a, str) and isinstance(b, str) for a, b in v.items())
        for v in hashes.values()
    ):
        raise ExamError(f"{path}: start_hashes must map each lab to {{file: sha256}}")
    finished = data.get("finished")
    seal = data.get("seal")
    exam = Exam(
        base,
        [str(x) for x in labs],
        str(data.get("seed") or ""),
        minutes,
        _parse(data.get("started"), "started"),
        _parse(data.get("deadline"), "deadline"),
        {str(k): v for k, v in hashes.items()},
        _parse(finished, "finished") if finished else None,
        seal=seal if isinstance(seal, str) else None,
        finish_hashes=_hash_map(data.get("finish_hashes")),
    )
    return exam


def _hash_map(v: Any) -> dict[str, dict[str, str]]:
    if not isinstance(v, dict):
        return {}
    return {str(k): {str(a): str(b) for a, b in x.items()} for k, x in v.items() if isinstance(x, dict)}


# ---- the sealed record ------------------------------------------------------------------------------------
#
# The record (labs, seed, minutes, start, deadline) is written three times: exam.yaml, a seal file beside it
# holding a random key, and each question's cks.yaml. The seal is an HMAC of the record under that key, so
# editing exam.yaml alone (a later deadline, more minutes) no longer matches the seal nor the copies in the
# workspaces, which travel in every `cks submit` bundle. Someone who edits all of them consistently, or
# replays a whole exam directory, is not caught: docs/exam.md says so.

SEAL_FILE = ".exam-seal"


def _record_fields(exam: Exam) -> dict[str, Any]:
    return {
        "labs": exam.labs,
        "seed": exam.seed,
        "minutes": exam.minutes,
        "started": _fmt(exam.started),
        "deadline": _fmt(exam.deadline),
    }


def seal_of(fields: dict[str, Any], key: str) -> str:
    import hmac

    msg = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(key.encode(), msg, hashlib.sha256).hexdigest()


def _seal_key(base: Path) -> str | None:
    try:
        key = (base / SEAL_FILE).read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    return key if re.fullmatch(r"[0-9a-f]{64}", key) else None


def verify_record(rec: dict[str, Any]) -> list[str]:
    """What is wrong with an exam record as carried in a bundle (empty: consistent)."""
    problems = []
    fields = rec.get("fields")
    key, seal = rec.get("key"), rec.get("seal")
    if not isinstance(fields, dict) or not isinstance(key, str) or not isinstance(seal, str):
        return ["the exam record is incomplete (no fields, key or seal)"]
    if seal_of(fields, key) != seal:
        problems.append("the exam record does not match its seal (exam.yaml was edited after the start)")
    ws = rec.get("workspace_copy")
    if isinstance(ws, dict) and ws != {k: fields.get(k) for k in ws}:
        problems.append(
            "the exam record disagrees with the copy in the question's workspace "
            f"(deadline {fields.get('deadline')} vs {ws.get('deadline')})"
        )
    return problems


def record(exam: Exam, workspace_meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """What `cks submit` carries for a question of an exam: start, deadline, finish, late changes, the
    seal."""
    late = []
    stored = exam.dir / RESULT_FILE
    if stored.is_file():
        try:
            data = json.loads(stored.read_bytes()[:MAX_RESULT_BYTES])
            late = [str(x) for x in data.get("late_changes", [])][:200] if isinstance(data, dict) else []
        except ValueError:
            late = ["result.json is not valid JSON"]
    return {
        "fields": _record_fields(exam),
        "seal": exam.seal or "",
        "key": _seal_key(exam.dir) or "",
        "finished": _fmt(exam.finished) if exam.finished else None,
        "late_changes": late,
        "finish_hashes": exam.finish_hashes,
        "workspace_copy": (workspace_meta or {}).get("exam") if workspace_meta else None,
    }


MAX_RESULT_BYTES = 16 * 1024 * 1024


@dataclass
class Attempt:
    lab: str
    title: str
    changed: list[str]  # files added, edited or deleted since the start

    @property
    def attempted(self) -> bool:
        return bool(self.changed)


def attempts(exam: Exam) -> list[Attempt]:
    """Which questions were touched: a file differs from the start state. No check runs here."""
    out = []
    for lab_id in exam.labs:
        start_h = exam.start_hashes.get(lab_id, {})
        now_h = tree_hashes(exam.workspace(lab_id))
        changed = sorted(
            {k for k, v in now_h.items() if start_h.get(k) != v} | {k for k in start_h if k not in now_h}
        )
        try:
            title = get_lab(lab_id).title
        except LabError:
            title = "?"
        out.append(Attempt(lab_id, title, changed))
    return out


@dataclass
class Question:
    lab: str
    id: str  # Q1, Q2, ... (tasks q1-*, q2-*), or the lab id for a lab without question groups
    title: str
    points: float
    changed: list[str]

    @property
    def attempted(self) -> bool:
        return bool(self.changed)


_QTASK = re.compile(r"^(q\d+)-")


def questions(exam: Exam) -> list[Question]:
    """A row per question: a lab whose task ids are grouped ``q<N>-...`` (lab8) gives one row per group with
    its points; any other lab is one question. A changed file counts for the question whose id appears in its
    path (``q6/``, ``q4-deployment.yaml``) or whose tasks name it; no check runs here."""
    from grader import variants

    out: list[Question] = []
    for attempt in attempts(exam):
        try:
            lab = get_lab(attempt.lab)
        except LabError:
            out.append(Question(attempt.lab, attempt.lab, attempt.title, 0.0, attempt.changed))
            continue
        groups: dict[str, list[Any]] = {}
        for task in lab.tasks:
            m = _QTASK.match(task.id)
            if m:
                groups.setdefault(m.group(1), []).append(task)
        if not groups or len(groups) < 2:
            out.append(
                Question(
                    lab.id, lab.id, attempt.title, float(sum(t.points for t in lab.tasks)), attempt.changed
                )
            )
            continue
        values = variants.values_for(lab, exam.seed or None)
        paths: dict[str, list[str]] = {}
        titles = _readme_questions(lab, values, paths)
        for q, tasks in groups.items():
            for task in tasks:
                params = variants.render(task.params, values)
                paths.setdefault(q, []).extend(
                    str(v).strip("/") for v in _strings(params) if str(v).startswith("/")
                )
        claimed: dict[str, list[str]] = {q: [] for q in groups}
        for rel in attempt.changed:
            owner = next((q for q in groups if re.search(rf"(^|[/_.-]){q}([/_.-]|$)", rel)), None)
            if owner is None:
                owner = next(
                    (q for q in groups for p in paths.get(q, []) if rel.endswith(p) or f"/{p}/" in rel), None
                )
            if owner is not None:
                claimed[owner].append(rel)
        for q, tasks in groups.items():
            title = titles.get(q) or re.sub(r"^Q\d+:\s*", "", variants.render_text(tasks[0].title, values))
            out.append(
                Question(lab.id, q.upper(), title[:70], float(sum(t.points for t in tasks)), claimed[q])
            )
    return out


def _readme_questions(lab: Lab, values: dict[str, Any], paths: dict[str, list[str]]) -> dict[str, str]:
    """Question titles (``**Q1 - audit policy (7).**``) and the paths each question's text names."""
    from grader import variants

    try:
        text = variants.render_text((lab.dir / "README.md").read_text(encoding="utf-8")[:200_000], values)
    except OSError:
        return {}
    titles: dict[str, str] = {}
    parts = re.split(r"\*\*(Q\d+) - ([^*(]+?)\s*\(\d+\)\.\*\*", text)
    for i in range(1, len(parts) - 2, 3):
        q = parts[i].lower()
        titles[q] = parts[i + 1].strip()
        body = parts[i + 2]
        paths.setdefault(q, []).extend(p.strip("/") for p in re.findall(r"`(/[^`\s]+)`", body))
    return titles


def _strings(obj: Any) -> list[str]:
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [s for v in obj.values() for s in _strings(v)]
    if isinstance(obj, list):
        return [s for v in obj for s in _strings(v)]
    return []


@dataclass
class ExamResult:
    exam: Exam
    reports: list[Report]
    problems: list[str] = field(default_factory=list)  # labs that could not be graded
    late: list[str] = field(default_factory=list)  # files changed after the deadline

    @property
    def score(self) -> float:
        return round(sum(r.score for r in self.reports), 2)

    @property
    def max_score(self) -> float:
        return round(sum(r.max_score for r in self.reports), 2)

    @property
    def percent(self) -> float:
        return round(100.0 * self.score / self.max_score, 1) if self.max_score else 0.0

    @property
    def passed(self) -> bool:
        return self.max_score > 0 and self.score / self.max_score >= PASS_MARK

    def to_dict(self) -> dict[str, Any]:
        return {
            "labs": self.exam.labs,
            "seed": self.exam.seed,
            "started": _fmt(self.exam.started),
            "deadline": _fmt(self.exam.deadline),
            "finished": _fmt(self.exam.finished) if self.exam.finished else None,
            "score": self.score,
            "max_score": self.max_score,
            "percent": self.percent,
            "pass_mark_percent": round(PASS_MARK * 100),
            "passed": self.passed,
            "late_changes": self.late,
            "problems": self.problems,
            "reports": [r.to_dict() for r in self.reports],
        }


def finish(exam: Exam, now: Clock = utc_now) -> ExamResult:
    """Grade every question and freeze the exam. Finishing again returns the stored grading."""
    from grader.runner import grade
    from grader.snapshot import Snapshot

    if exam.finished is not None:
        stored = exam.dir / RESULT_FILE
        if stored.is_file():
            try:
                return _from_stored(exam, json.loads(stored.read_bytes()[:MAX_RESULT_BYTES]))
            except (ValueError, KeyError, TypeError, AttributeError):
                pass  # a damaged or edited result is graded again from the workspaces
    t = now().astimezone(UTC).replace(microsecond=0)
    exam.finished = min(t, exam.deadline)  # work after time-up does not count as time spent
    result = ExamResult(exam, [])
    deadline_ts = exam.deadline.timestamp()
    for lab_id in exam.labs:
        ws = exam.workspace(lab_id)
        try:
            lab = get_lab(lab_id)
        except LabError as exc:
            result.problems.append(f"{lab_id}: {exc}")
            continue
        if not (ws / META_FILE).is_file():
            result.problems.append(f"{lab_id}: the workspace {ws} is gone; it scores 0")
        for p in ws.rglob("*") if ws.is_dir() else []:
            if p.is_file() and p.stat().st_mtime > deadline_ts + 1:
                result.late.append(f"{lab_id}/{p.relative_to(ws).as_posix()}")
        result.reports.append(grade(lab, Snapshot(ws), target=f"exam {ws}"))
        exam.finish_hashes[lab_id] = tree_hashes(ws)
    exam.save()
    _atomic_write(exam.dir / RESULT_FILE, json.dumps(result.to_dict(), indent=2))
    return result


def _from_stored(exam: Exam, data: dict[str, Any]) -> ExamResult:
    from grader.results import Evidence, Status, TaskResult

    if not isinstance(data, dict):
        raise ValueError("not an object")
    reports = []
    for r in data.get("reports", []):
        tasks = [
            TaskResult(
                t["id"],
                t["title"],
                Status(t["status"]),
                t["points"],
                t["max_points"],
                t["message"],
                [Evidence(**e) for e in t.get("evidence", [])],
                t.get("hint", ""),
            )
            for t in r.get("tasks", [])
        ]
        reports.append(
            Report(r["lab"], r["title"], r.get("lab_version", 0), r.get("target", ""), tasks, r.get("seed"))
        )
    return ExamResult(exam, reports, list(data.get("problems", [])), list(data.get("late_changes", [])))


def finish_if_due(base: Path = DEFAULT_DIR, now: Clock = utc_now) -> ExamResult | None:
    """For any command: once time is up, an unfinished exam is graded (and the result returned)."""
    if not (base / STATE_FILE).is_file():
        return None
    exam = load(base)
    if exam.finished is None and exam.is_over(now()):
        return finish(exam, now)
    return None
