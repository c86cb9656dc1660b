"""The learner's own record, kept in the workspace under ``.cks/`` (a folder the kit owns).

``.cks/hints.json``     which hint tier of each task was shown, and whether the reference solution was seen
``.cks/progress.json``  grading results: the best and the last score, and a bounded history

Both travel with the workspace, so `cks submit` bundles carry them and an instructor sees what help was used.
Reads are bounded and a damaged file counts as empty: the record never stops a learner from working. Nothing
here reads ``solutions/`` or changes what is graded.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from grader import safeio

KIT_DIR = ".cks"
HINTS_FILE = "hints.json"
PROGRESS_FILE = "progress.json"
FORMAT = 1
MAX_STATE_BYTES = 256 * 1024  # a record is a few KB; anything bigger is not ours to parse
MAX_HISTORY = 50  # gradings kept in progress.json (best and last are kept apart from it)


def now_utc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _path(ws: Path, name: str) -> Path:
    return ws / KIT_DIR / name


def _read(path: Path) -> dict[str, Any]:
    try:
        if not path.exists():
            return {}
        data = json.loads(safeio.read_bytes(path, max_bytes=MAX_STATE_BYTES))
    except (
        OSError,
        ValueError,
        RecursionError,
    ):  # ReadRefused is a ValueError; deep nesting a RecursionError
        return {}
    return data if isinstance(data, dict) else {}


def _write(path: Path, data: dict[str, Any]) -> bool:
    """Write atomically, through a temporary sibling of its own (never through a planted link); False when
    the workspace cannot be written (the caller may say so)."""
    try:
        if path.parent.is_symlink():
            return False  # .cks is the kit's folder: a link there would write the record somewhere else
        path.parent.mkdir(parents=True, exist_ok=True)
        safeio.atomic_write(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
    except OSError:
        return False
    return True


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


# ---- hints and solutions ------------------------------------------------------------------------------


def hints_record(ws: Path) -> dict[str, Any]:
    return _read(_path(ws, HINTS_FILE))


def tiers_seen(ws: Path) -> dict[str, int]:
    """Task id -> the highest hint tier shown so far."""
    out: dict[str, int] = {}
    for tid, entry in _dict(hints_record(ws).get("tasks")).items():
        tier = _dict(entry).get("tier")
        if isinstance(tier, int) and not isinstance(tier, bool) and 1 <= tier <= 3:
            out[str(tid)] = tier
    return out


def record_hint(ws: Path, lab_id: str, task_id: str, tier: int, *, via: str = "cks hint") -> bool:
    data = hints_record(ws)
    tasks = _dict(data.get("tasks"))
    entry = _dict(tasks.get(task_id))
    when = now_utc()
    entry["tier"] = max(tier, int(entry.get("tier") or 0) if isinstance(entry.get("tier"), int) else 0)
    entry.setdefault("first_seen", when)
    entry["last_seen"] = when
    entry["asked"] = int(entry.get("asked") or 0) + 1 if isinstance(entry.get("asked"), int) else 1
    entry["via"] = via
    tasks[task_id] = entry
    data.update({"format": FORMAT, "lab": lab_id, "tasks": tasks})
    return _write(_path(ws, HINTS_FILE), data)


def solution_seen(ws: Path) -> str | None:
    """When the reference solution was first shown, or None."""
    seen = _dict(hints_record(ws).get("solution")).get("first_seen")
    return seen if isinstance(seen, str) else None


def record_solution(ws: Path, lab_id: str) -> bool:
    data = hints_record(ws)
    entry = _dict(data.get("solution"))
    when = now_utc()
    entry.setdefault("first_seen", when)
    entry["last_seen"] = when
    entry["times"] = int(entry.get("times") or 0) + 1 if isinstance(entry.get("times"), int) else 1
    data.update({"format": FORMAT, "lab": lab_id, "solution": entry})
    data.setdefault("tasks", {})
    return _write(_path(ws, HINTS_FILE), data)


# ---- grading results --------------------------------------------------------------------------------------


def progress_record(ws: Path) -> dict[str, Any]:
    return _read(_path(ws, PROGRESS_FILE))


def _ratio(entry: dict[str, Any]) -> float:
    score, top = entry.get("score"), entry.get("max_score")
    if not isinstance(score, int | float) or not isinstance(top, int | float) or top <= 0:
        return -1.0
    return score / top


def record_grade(ws: Path, report: Any) -> bool:
    """Remember a full grading of ``ws`` (a :class:`grader.results.Report`): last, best and history."""
    data = progress_record(ws)
    when = now_utc()
    last = {
        "at": when,
        "score": report.score,
        "max_score": report.max_score,
        "target": report.target,
        "tasks": {t.id: t.status.value for t in report.tasks},
    }
    best = _dict(data.get("best"))
    if _ratio(last) > _ratio(best) or not best:
        best = {k: last[k] for k in ("at", "score", "max_score")}
    history = (
        [h for h in data.get("history", []) if isinstance(h, dict)]
        if isinstance(data.get("history"), list)
        else []
    )
    history = (history + [{k: last[k] for k in ("at", "score", "max_score")}])[-MAX_HISTORY:]
    runs = data.get("gradings")
    data.update(
        {
            "format": FORMAT,
            "lab": report.lab,
            "seed": report.seed,
            "best": best,
            "last": last,
            "history": history,
            "gradings": (runs if isinstance(runs, int) else 0) + 1,
        }
    )
    return _write(_path(ws, PROGRESS_FILE), data)


# ---- keeping the record across `cks reset` -----------------------------------------------------------------


@contextlib.contextmanager
def kept_across_reset(ws: Path, lab_id: str) -> Iterator[None]:
    """Carry ``.cks/`` over a reset of the same lab: starting again does not erase which hints were used."""
    saved: dict[str, bytes] = {}
    kit = ws / KIT_DIR
    if hints_record(ws).get("lab", lab_id) != lab_id or progress_record(ws).get("lab", lab_id) != lab_id:
        yield  # another lab's record goes with its workspace
        return
    for name in (HINTS_FILE, PROGRESS_FILE):
        with contextlib.suppress(OSError, ValueError):
            if not (
                kit / name
            ).is_symlink():  # a link is not the kit's record: never copied, never written through
                saved[name] = safeio.read_bytes(kit / name, max_bytes=MAX_STATE_BYTES)
    yield
    if saved and ws.is_dir() and not kit.is_symlink():
        with contextlib.suppress(OSError):
            kit.mkdir(exist_ok=True)
            for name, data in saved.items():
                safeio.atomic_write(kit / name, data)
