"""Exam mode: several labs under one timer, graded together at the end.

State lives in ``<exam dir>/exam.yaml`` (default ./cks-workspace/exam) with the deadline as an absolute UTC
time, so closing the terminal or rebooting does not stop or reset the clock. Each lab gets a workspace under
the exam directory. ``status`` reports time left and which questions were attempted (their files differ from
the starting state) but never runs a check: results appear only at ``finish`` or once time is up.

Every function takes ``now`` (a clock) so tests can move time without sleeping.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Callable
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
        raise ExamError(f"{STATE_FILE}: {what} must be a UTC time like 2025-01-31T14:00:00Z, got {s!r}") from None


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

    def workspace(self, lab_id: str) -> Path:
        return self.dir / lab_id

    def time_left(self, now: datetime) -> timedelta:
        return max(self.deadline - now, timedelta(0))

    def is_over(self, now: datetime) -> bool:
        return now >= self.deadline

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "exam", "labs": self.labs, "seed": self.seed, "minutes": self.minutes,
                "started": _fmt(self.started), "deadline": _fmt(self.deadline),
                "finished": _fmt(self.finished) if self.finished else None, "start_hashes": self.start_hashes}

    def save(self) -> None:
        tmp = self.dir / (STATE_FILE + ".tmp")
        tmp.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))
        os.replace(tmp, self.dir / STATE_FILE)


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


def start(labs: list[Lab], *, base: Path = DEFAULT_DIR, minutes: int | None = None, seed: str | None = None,
          now: Clock = utc_now, force: bool = False) -> Exam:
    from grader.workspace import materialize

    if not labs:
        raise ExamError("no labs to put in the exam")
    state = base / STATE_FILE
    if state.exists() and not force:
        raise ExamError(f"an exam already exists in {base}; see `cks exam status`, or start a new one with "
                        "`cks exam start --force` (this discards it)")
    if base.exists() and force:
        if not state.is_file():
            raise ExamError(f"{base} is not an exam directory (no {STATE_FILE}); refusing to delete it")
        shutil.rmtree(base)
    if base.exists() and any(base.iterdir()):
        raise ExamError(f"{base} exists and is not empty; choose another --dir")
    base.mkdir(parents=True, exist_ok=True)
    seed = seed or secrets.token_hex(4)  # a fresh variant each sitting unless the learner asks for one
    minutes = minutes if minutes is not None else sum(lab.minutes for lab in labs)
    if minutes <= 0:
        raise ExamError("--minutes must be positive")
    t0 = now().astimezone(UTC).replace(microsecond=0)
    hashes = {}
    for lab in labs:
        ws = base / lab.id
        materialize(lab, ws, seed)
        hashes[lab.id] = tree_hashes(ws)
    exam = Exam(base, [lab.id for lab in labs], seed, minutes, t0, t0 + timedelta(minutes=minutes), hashes)
    exam.save()
    return exam


def load(base: Path = DEFAULT_DIR) -> Exam:
    path = base / STATE_FILE
    if not path.is_file():
        raise ExamError(f"no exam in {base}; start one with `cks exam start`")
    try:
        data = safeyaml.load_one(path.read_bytes())
    except (OSError, safeyaml.YamlProblem) as exc:
        raise ExamError(f"{path}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("labs"), list):
        raise ExamError(f"{path} is not an exam state file")
    finished = data.get("finished")
    return Exam(base, [str(x) for x in data["labs"]], str(data.get("seed") or ""), int(data.get("minutes") or 0),
                _parse(data.get("started"), "started"), _parse(data.get("deadline"), "deadline"),
                data.get("start_hashes") or {}, _parse(finished, "finished") if finished else None)


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
        changed = sorted({k for k, v in now_h.items() if start_h.get(k) != v} | {k for k in start_h if k not in now_h})
        try:
            title = get_lab(lab_id).title
        except LabError:
            title = "?"
        out.append(Attempt(lab_id, title, changed))
    return out


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
        return {"labs": self.exam.labs, "seed": self.exam.seed, "started": _fmt(self.exam.started),
                "deadline": _fmt(self.exam.deadline),
                "finished": _fmt(self.exam.finished) if self.exam.finished else None,
                "score": self.score, "max_score": self.max_score, "percent": self.percent,
                "pass_mark_percent": round(PASS_MARK * 100), "passed": self.passed,
                "late_changes": self.late, "problems": self.problems,
                "reports": [r.to_dict() for r in self.reports]}


def finish(exam: Exam, now: Clock = utc_now) -> ExamResult:
    """Grade every question and freeze the exam. Finishing again returns the stored grading."""
    from grader.runner import grade
    from grader.snapshot import Snapshot

    if exam.finished is not None:
        stored = exam.dir / RESULT_FILE
        if stored.is_file():
            return _from_stored(exam, json.loads(stored.read_text()))
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
    exam.save()
    (exam.dir / RESULT_FILE).write_text(json.dumps(result.to_dict(), indent=2))
    return result


def _from_stored(exam: Exam, data: dict[str, Any]) -> ExamResult:
    from grader.results import Evidence, Status, TaskResult

    reports = []
    for r in data.get("reports", []):
        tasks = [TaskResult(t["id"], t["title"], Status(t["status"]), t["points"], t["max_points"], t["message"],
                            [Evidence(**e) for e in t.get("evidence", [])], t.get("hint", ""))
                 for t in r.get("tasks", [])]
        reports.append(Report(r["lab"], r["title"], r.get("lab_version", 0), r.get("target", ""), tasks,
                              r.get("seed")))
    return ExamResult(exam, reports, list(data.get("problems", [])), list(data.get("late_changes", [])))


def finish_if_due(base: Path = DEFAULT_DIR, now: Clock = utc_now) -> ExamResult | None:
    """For any command: once time is up, an unfinished exam is graded (and the result returned)."""
    if not (base / STATE_FILE).is_file():
        return None
    exam = load(base)
    if exam.finished is None and exam.is_over(now()):
        return finish(exam, now)
    return None
