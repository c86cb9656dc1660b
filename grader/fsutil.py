"""Folders the kit creates: the ownership marker, the only deletion the kit does, a lock, finding them.

The kit deletes nothing it did not create. Every folder it creates and may later remove or replace (a
practice workspace, an exam folder, a ``cks dist`` output) holds a marker file, ``.cks-created``, with
who created it, what it is and, for a workspace, the lab id and the fingerprints of the starting files.
:func:`safe_remove_tree` removes a folder only when that marker says the kit made it for that purpose;
anything else (a checkout, a home folder, a folder someone put a ``cks.yaml`` in) is refused with a message.

:func:`locked` takes an exclusive lock on a folder (``start``/``reset`` hold it while files change);
:func:`shared_lock` lets ``grade`` refuse, rather than score a half-written state, while one is held.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from grader import safeio

MARKER = ".cks-created"
LOCK_FILE = ".cks-lock"
BACKUP_DIR = ".cks-backup"
OWNER = "cks-kit"
MAX_MARKER_BYTES = 4 * 1024 * 1024


def _lock_wait(default: float = 30.0, most: float = 3600.0) -> float:
    """CKS_LOCK_WAIT in seconds; a value that is not a number (empty, "abc", nan) or negative means the
    default, never a crash at import (every command imports this module) nor a wait without end."""
    try:
        value = float(os.environ.get("CKS_LOCK_WAIT", default))
    except ValueError:
        return default
    return min(value, most) if value >= 0 else default  # nan fails the comparison: the default


LOCK_WAIT = _lock_wait()


class RemoveRefused(RuntimeError):
    """The kit will not remove (or replace) a folder; ``str()`` says why and what to do."""


class Busy(RuntimeError):
    """Another cks command holds the folder's lock."""


# ---- the marker ---------------------------------------------------------------------------------------


def write_marker(
    root: Path, kind: str, *, lab: str | None = None, files: dict[str, str] | None = None, **extra: Any
) -> None:
    """Record that the kit created ``root`` as a ``kind`` (workspace, exam, dist) folder."""
    data: dict[str, Any] = {
        "created_by": OWNER,
        "kind": kind,
        "lab": lab,
        **extra,
    }  # no time: same seed, same bytes
    if files is not None:
        data["files"] = files
    safeio.atomic_write(root / MARKER, json.dumps(data, indent=1, sort_keys=True) + "\n")


def read_marker(root: Path) -> dict[str, Any] | None:
    """The marker of ``root``, or None when it has none the kit wrote (absent, damaged, not a file)."""
    try:
        data = json.loads(safeio.read_bytes(root / MARKER, max_bytes=MAX_MARKER_BYTES))
    except (ValueError, RecursionError):  # ReadRefused is a ValueError; deep nesting a RecursionError
        return None
    if not isinstance(data, dict) or data.get("created_by") != OWNER:
        return None
    return data


def ownership_problem(root: Path, kind: str, lab: str | None = None, *, whole: bool = True) -> str | None:
    """Why the kit may not remove ``root`` as a ``kind`` folder (of ``lab``), or None when it may.
    ``whole=False``: only its contents are replaced (the folder itself stays, so it may hold the cwd)."""
    if root.is_symlink():
        return f"{root} is a symbolic link; the kit removes only folders it created"
    if not root.is_dir():
        return f"{root} is not a folder"
    marker = read_marker(root)
    if marker is None:
        return (
            f"{root} was not created by the kit (it has no {MARKER} marker), so the kit will not delete "
            "anything in it"
        )
    if marker.get("kind") != kind:
        return f"{root} was created by the kit as a {marker.get('kind')} folder, not a {kind} folder"
    if lab is not None and marker.get("lab") != lab:
        return f"{root} is the workspace of {marker.get('lab')}, not of {lab}"
    real = root.resolve()
    with contextlib.suppress(OSError):
        cwd = Path.cwd().resolve()
        if whole and (real == cwd or real in cwd.parents):
            return f"{root} holds the current directory; run the command from outside it"
    if (root / ".git").exists():
        return f"{root} is a git checkout (it has .git); the kit never deletes one"
    return None


def safe_remove_tree(path: Path, *, kind: str, lab: str | None = None) -> None:
    """Remove ``path`` only if the kit's marker says it created it as a ``kind`` folder; RemoveRefused
    else."""
    problem = ownership_problem(path, kind, lab)
    if problem:
        raise RemoveRefused(problem)
    shutil.rmtree(path)


def clear_folder(root: Path, keep: set[str]) -> None:
    """Remove every entry of ``root`` except the names in ``keep`` (the caller has checked ownership)."""
    for entry in list(root.iterdir()):
        if entry.name in keep:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


# ---- locks ----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def locked(root: Path, *, wait: float = LOCK_WAIT, what: str = "the folder") -> Iterator[None]:
    """An exclusive lock on ``root`` (its ``.cks-lock`` file), waiting up to ``wait`` s; Busy after that."""
    try:  # O_NOFOLLOW: a .cks-lock planted as a link must not make the kit create or open a file elsewhere
        fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        raise Busy(
            f"{what} {root} cannot be locked ({exc.strerror or exc}): is {LOCK_FILE} a link?"
        ) from None
    try:
        end = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= end:
                    raise Busy(
                        f"{what} {root} is in use by another cks command (start, reset or grade); "
                        "try again when it has finished"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing releases the lock


@contextlib.contextmanager
def shared_lock(root: Path) -> Iterator[None]:
    """A shared lock for readers (grade); Busy at once while a start or reset holds the exclusive one."""
    try:
        fd = os.open(root / LOCK_FILE, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:  # no lock file (never started by this version) or a read-only folder: nothing to honour
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise Busy(
                f"{root} is being reset or started by another cks command; grade again when it has finished"
            ) from None
        yield
    finally:
        os.close(fd)


# ---- finding folders --------------------------------------------------------------------------------------


def find_up(start: Path, name: str, *, max_levels: int = 64) -> Path | None:
    """The nearest folder from ``start`` upwards that holds ``name`` (as git finds .git), or None."""
    try:
        here = start.resolve()
    except OSError:
        return None
    for _ in range(max_levels):
        with contextlib.suppress(OSError):
            if (here / name).is_file():
                return here
        if here.parent == here:
            return None
        here = here.parent
    return None


def display(path: Path) -> Path:
    """``path`` relative to the current directory when it is below it, else absolute (for messages)."""
    try:
        rel = path.resolve().relative_to(Path.cwd().resolve()) if path.is_absolute() else path
    except (ValueError, OSError):
        return path
    return path if str(rel) == "." else rel  # "." reads badly in a sentence
