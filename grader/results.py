"""Result types shared by checks, the runner and the reporters.

A check returns an :class:`Outcome`; the runner turns it into a :class:`TaskResult` by adding the task's
id, title, points and hint. States follow the design: pass, fail, error (could not check), skip (needs a live
cluster). An environment problem is never a fail, an absent object is never a pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    SKIP = "skip"


@dataclass(frozen=True)
class Evidence:
    """Where the grader looked, what it expected and what it found."""

    where: str
    expected: str | None = None
    actual: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"where": self.where, "expected": self.expected, "actual": self.actual}


@dataclass
class Outcome:
    """What a check says about one task. ``score`` is the fraction of the task's points earned (0..1)."""

    status: Status
    message: str
    evidence: list[Evidence] = field(default_factory=list)
    score: float = 0.0
    # a failure the tasks that ``require`` this one can still be graded past (e.g. a policy that loads but
    # drops keys: kube-apiserver runs with it); False only where the real system would accept the object
    blocks_dependents: bool = True

    @classmethod
    def passed(cls, message: str, *evidence: Evidence) -> Outcome:
        return cls(Status.PASS, message, list(evidence), 1.0)

    @classmethod
    def failed(cls, message: str, *evidence: Evidence, score: float = 0.0) -> Outcome:
        return cls(Status.FAIL, message, list(evidence), max(0.0, min(score, 0.999)))

    @classmethod
    def error(cls, message: str, *evidence: Evidence) -> Outcome:
        return cls(Status.ERROR, message, list(evidence), 0.0)

    @classmethod
    def skipped(cls, message: str, *evidence: Evidence) -> Outcome:
        return cls(Status.SKIP, message, list(evidence), 0.0)

    @classmethod
    def from_parts(cls, parts: list[tuple[bool, str, Evidence | None]], ok_message: str) -> Outcome:
        """Partial credit: each part is (ok, failure message, evidence); the score is the share that is ok."""
        if not parts:
            return cls.error("nothing to check (the task has no parts)")
        bad = [(msg, ev) for ok, msg, ev in parts if not ok]
        if not bad:
            return cls.passed(ok_message)
        score = (len(parts) - len(bad)) / len(parts)
        message = bad[0][0] if len(bad) == 1 else f"{bad[0][0]} (and {len(bad) - 1} more)"
        return cls.failed(message, *[ev for _, ev in bad if ev is not None], score=score)


@dataclass
class TaskResult:
    id: str
    title: str
    status: Status
    points: float
    max_points: float
    message: str
    evidence: list[Evidence]
    hint: str
    live: bool = False
    blocked_by: str | None = None  # the required task whose failure decided this one (lab.yaml ``requires``)

    def to_dict(self, *, hints: bool = False) -> dict[str, Any]:
        """``hint`` carries the hint text only when asked for (`grade --hints`): default output teaches
        without handing out the shape of the answer. ``blocked_by`` only for a task whose required task
        failed (lab.yaml ``requires``)."""
        extra = {"blocked_by": self.blocked_by} if self.blocked_by else {}
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status.value,
            "points": csv_number(self.points),
            "max_points": csv_number(self.max_points),
            "message": self.message,
            "evidence": [e.to_dict() for e in self.evidence],
            "hint": (self.hint or None) if hints else None,
            **extra,
        }


@dataclass
class Report:
    lab: str
    title: str
    lab_version: int
    target: str
    tasks: list[TaskResult]
    seed: str | None = None

    @property
    def score(self) -> float:
        return round(sum(t.points for t in self.tasks), 2)

    @property
    def max_score(self) -> float:
        """Points that could be earned on this target: live-only tasks skipped offline are not counted."""
        return round(sum(t.max_points for t in self.tasks if t.status is not Status.SKIP), 2)

    @property
    def skipped_points(self) -> float:
        return round(sum(t.max_points for t in self.tasks if t.status is Status.SKIP), 2)

    def count(self, status: Status) -> int:
        return sum(1 for t in self.tasks if t.status is status)

    @property
    def exit_code(self) -> int:
        """0 all graded tasks pass, 1 a task failed, 3 a task could not be checked."""
        if self.count(Status.FAIL):
            return 1
        if self.count(Status.ERROR):
            return 3
        return 0

    def to_dict(self, *, hints: bool = False) -> dict[str, Any]:
        return {
            "lab": self.lab,
            "title": self.title,
            "lab_version": self.lab_version,
            "target": self.target,
            "seed": self.seed,
            "score": csv_number(self.score),
            "max_score": csv_number(self.max_score),
            "skipped_points": csv_number(self.skipped_points),
            "tasks": [t.to_dict(hints=hints) for t in self.tasks],
        }


def csv_number(x: float) -> float | int:
    return int(x) if float(x).is_integer() else round(x, 2)
