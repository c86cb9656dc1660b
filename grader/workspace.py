"""Practice workspaces: the lab's starting state laid out as a snapshot the learner edits."""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import importlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from grader import __version__, fsutil, safeio, variants
from grader.labs import Lab
from grader.snapshot import META_FILE, Snapshot

DEFAULT_WORKSPACE = Path("cks-workspace")


class WorkspaceError(RuntimeError):
    pass


def default_dir(lab: Lab) -> Path:
    return DEFAULT_WORKSPACE / lab.id


def materialize(lab: Lab, dest: Path, seed: str | None = None) -> dict[str, Any]:
    """Write the lab's starting state for ``seed`` into ``dest`` (which must not exist or be empty)."""
    values = variants.values_for(lab, seed)
    dest.mkdir(parents=True, exist_ok=True)
    if lab.start_dir.is_dir():
        copy_tree(lab.start_dir, dest, values)
    if lab.generator:
        module, func = lab.generator.split(":", 1)
        getattr(importlib.import_module(module), func)(dest, seed=seed, values=values)
    meta = {
        "kind": "workspace",
        "lab": lab.id,
        "lab_version": lab.version,
        "seed": seed,
        "started": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "grader_version": __version__,
    }
    recorded = start_hashes(lab, dest, values)
    if recorded:
        meta[START_FILES_KEY] = recorded
    safeio.atomic_write(dest / META_FILE, yaml.safe_dump(meta, sort_keys=False))
    start_files = {p.relative_to(dest).as_posix(): _sha256(p) for p in _walk(dest) if p.is_file()}
    start_files.pop(META_FILE, None)
    fsutil.write_marker(dest, "workspace", lab=lab.id, seed=seed, files=start_files)
    return meta


START_FILES_KEY = "start_files"  # cks.yaml: {"<node>:<abs path>": "sha256:<hex>"} of files as the lab started


def start_hashes(lab: Lab, dest: Path, values: dict[str, Any]) -> dict[str, str]:
    """SHA-256 of each file the lab collects, as the start wrote it: checks such as "the default rules file is
    untouched" compare against this record, not against the kit's copy (a live node has its own file)."""
    import hashlib

    out: dict[str, str] = {}
    for spec in lab.collect.files:
        path = variants.render_text(spec.path, values)
        local = dest / "nodes" / spec.node / path.lstrip("/")
        if local.is_file() and not local.is_symlink():
            out[f"{spec.node}:{path}"] = "sha256:" + hashlib.sha256(local.read_bytes()).hexdigest()
    return out


def copy_tree(src_root: Path, dest: Path, values: dict[str, Any]) -> None:
    """Copy a tree (starting state, solution overlay, fixture) rendering ``__var__`` in names
    (:func:`~grader.variants.render_path`) and ``{{ var }}`` in text."""
    for src in sorted(src_root.rglob("*")):
        rel = src.relative_to(src_root)
        target = dest / Path(variants.render_path(rel.as_posix(), values))
        if src.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        if src.name == ".keep":
            target.parent.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        data = src.read_bytes()
        if values and b"{{" in data:
            with contextlib.suppress(UnicodeDecodeError):  # binary content is copied as is
                data = variants.render_text(data.decode("utf-8"), values).encode("utf-8")
        target.write_bytes(data)


def delete_paths(listing: Path, dest: Path, values: dict[str, Any]) -> None:
    """Delete the workspace paths named one per line in ``listing`` (for answers that remove files)."""
    for line in listing.read_text().splitlines():
        line = variants.render_text(line.strip(), values)
        if not line or line.startswith("#"):
            continue
        target = (dest / line).resolve()
        if dest.resolve() not in target.parents:
            raise WorkspaceError(f"{listing}: {line!r} is outside the workspace")
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


@dataclass
class Started:
    """What ``start``/``reset`` did: the new metadata and the learner's files it set aside."""

    meta: dict[str, Any]
    dropped: list[str] = field(default_factory=list)  # learner files the old workspace held (relative paths)
    backup: Path | None = None  # where copies of them were kept (None: none, or --no-backup)
    skipped: list[str] = field(default_factory=list)  # learner entries that could not be copied (FIFOs, ...)


def start(
    lab: Lab,
    dest: Path,
    seed: str | None = None,
    force: bool = False,
    *,
    replace_other: bool = False,
    backup: bool = True,
    same_seed: bool = False,
) -> Started:
    """Create (or with ``force`` replace) the workspace of ``lab`` at ``dest``, under the folder's lock.

    Only a workspace the kit created (its marker) is ever replaced; another lab's workspace only with
    ``replace_other``. Before a replacement the learner's files (new or changed since the start) are listed
    and, with ``backup``, copied to ``.cks-backup/<time>/``. ``same_seed`` (reset) keeps the recorded seed.
    """
    if dest.exists() and not dest.is_dir():
        raise WorkspaceError(f"{dest} is a file, not a folder; choose another folder with --workspace DIR")
    created = not dest.exists()
    if (
        not created
        and not (dest / fsutil.LOCK_FILE).exists()
        and fsutil.read_marker(dest) is None
        and any(e.name not in _KEEP for e in dest.iterdir())
    ):
        # not ours: refuse before writing anything there, even the lock file
        raise WorkspaceError(
            f"{dest} already exists and is not empty"
            if not force
            else f"{fsutil.ownership_problem(dest, 'workspace', whole=False)}; refusing to replace it "
            "(choose a new folder with --workspace DIR)"
        )
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with fsutil.locked(dest, what="the workspace"):
            result = _start_locked(lab, dest, seed, force, replace_other, backup, same_seed)
    except fsutil.Busy as exc:
        raise WorkspaceError(str(exc)) from None
    except BaseException:
        if created:  # a fresh start that failed leaves nothing behind
            with contextlib.suppress(OSError):
                (dest / fsutil.LOCK_FILE).unlink()
                dest.rmdir()
        raise
    return result


_KEEP = {
    fsutil.LOCK_FILE,
    fsutil.BACKUP_DIR,
    ".cks",
}  # .cks: the learner's hints and progress (grader.progress)


def _start_locked(
    lab: Lab, dest: Path, seed: str | None, force: bool, replace_other: bool, backup: bool, same_seed: bool
) -> Started:
    for leftover in dest.glob(".cks-staging-*"):  # a start that was killed midway (we hold the lock now)
        shutil.rmtree(leftover, ignore_errors=True)
    present = [e for e in dest.iterdir() if e.name not in _KEEP]
    dropped: list[str] = []
    skipped: list[str] = []
    kept: Path | None = None
    if present:
        marker = fsutil.read_marker(dest)
        recorded = marker.get("lab") if marker else None
        if recorded == lab.id and Snapshot(dest).meta.get("lab") not in (None, lab.id):
            recorded = Snapshot(dest).meta.get("lab")  # the two records disagree: treat it as the other lab's
        if not force:
            raise WorkspaceError(f"{dest} already exists and is not empty")
        problem = fsutil.ownership_problem(dest, "workspace", whole=False)
        if problem:
            raise WorkspaceError(
                f"{problem}; refusing to replace it (choose a new folder with --workspace DIR)"
            )
        if recorded != lab.id and not replace_other:
            raise WorkspaceError(
                f"{dest} is the workspace of {recorded}, not {lab.id}; to throw it away and start "
                f"{lab.id} there add --replace-lab (its changed files are backed up first)"
            )
        if same_seed:
            seed = (marker or {}).get("seed")
        dropped, skipped = learner_files(dest, marker or {})
        if dropped and backup:
            kept = _backup(dest, dropped)
    stage = dest / f".cks-staging-{os.getpid()}"
    try:
        meta = materialize(lab, stage, seed)
        _sync(stage, dest, keep=_KEEP | {stage.name})
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return Started(meta, dropped, kept, skipped)


def _sync(src: Path, dst: Path, keep: set[str]) -> None:
    """Make ``dst`` hold exactly what ``src`` holds (moving, not copying), but keep the folders both have:
    a learner whose shell sits in nodes/controlplane/etc is still somewhere after a reset. The ownership
    marker moves last, so a run killed midway leaves a folder the kit still recognises as its own."""
    wanted = {e.name for e in src.iterdir()}
    for entry in list(dst.iterdir()):
        if entry.name not in keep and entry.name not in wanted:
            _remove(entry)
    for entry in sorted(src.iterdir(), key=lambda p: p.name == fsutil.MARKER):
        target = dst / entry.name
        if _real_dir(entry) and _real_dir(target):
            _sync(entry, target, set())
            continue
        if target.exists() or target.is_symlink():
            _remove(target)
        os.replace(entry, target)


def _real_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def _remove(path: Path) -> None:
    """Remove one entry; a link is removed itself, never what it points to."""
    if _real_dir(path):
        shutil.rmtree(path)
    else:
        path.unlink()


def learner_files(dest: Path, marker: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(files the learner added or changed since the start, entries that are not files and cannot be kept)."""
    start_files = marker.get("files") if isinstance(marker.get("files"), dict) else {}
    changed: list[str] = []
    odd: list[str] = []
    for path in sorted(_walk(dest)):
        rel = path.relative_to(dest).as_posix()
        if rel in _OWN_FILES or rel.split("/", 1)[0] in _KEEP or rel.startswith(".cks-staging-"):
            continue
        if path.is_symlink():
            changed.append(rel)
            continue
        if not path.is_file():
            odd.append(rel)
            continue
        if start_files.get(rel) != _sha256(path):
            changed.append(rel)
    return changed, odd


_OWN_FILES = {META_FILE, fsutil.MARKER}


def _walk(root: Path):
    """Every non-directory entry under ``root``, not following links."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        base = Path(dirpath)
        for name in list(dirnames):
            if (base / name).is_symlink():
                yield base / name
        for name in filenames:
            yield base / name


def _sha256(path: Path) -> str | None:
    digest = hashlib.sha256()
    try:
        with safeio.open_regular(path) as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except safeio.ReadRefused:
        return None
    return digest.hexdigest()


def _backup(dest: Path, rels: list[str]) -> Path:
    """Copy the learner's files to ``.cks-backup/<time>/`` (links as links), keeping their paths."""
    base = dest / fsutil.BACKUP_DIR
    if base.is_symlink() or (base.exists() and not base.is_dir()):
        raise WorkspaceError(
            f"{base} is not a folder the kit made (a link or a file); move it away, or pass --no-backup"
        )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    root = dest / fsutil.BACKUP_DIR / stamp
    n = 1
    while root.exists():
        n += 1
        root = dest / fsutil.BACKUP_DIR / f"{stamp}-{n}"
    for rel in rels:
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(dest / rel, target, follow_symlinks=False)
    return root


def reset_dir(dest: Path) -> None:
    """Remove a workspace the kit created, refusing anything else (see
    :func:`grader.fsutil.safe_remove_tree`)."""
    try:
        fsutil.safe_remove_tree(dest, kind="workspace")
    except fsutil.RemoveRefused as exc:
        raise WorkspaceError(f"{exc}; refusing to delete it") from None


def pristine(lab: Lab, seed: str | None) -> Snapshot:
    """The starting state for ``seed`` as a snapshot; static labs are read in place, others built once."""
    if not lab.generator and not lab.variables:
        return Snapshot(lab.start_dir)
    key = (lab.id, lab.version, seed)
    if key not in _PRISTINE:
        tmp = Path(tempfile.mkdtemp(prefix=f"cks-{lab.id}-start-"))
        try:
            materialize(lab, tmp, seed)
        except BaseException:  # SIGTERM (SystemExit) or Ctrl-C midway: atexit does not know this folder yet
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _PRISTINE[key] = tmp
    return Snapshot(_PRISTINE[key])


_PRISTINE: dict[tuple[str, int, str | None], Path] = {}


def forget_pristine(lab: Lab, seed: str | None) -> None:
    """Drop one seed's starting state from the cache (a class regrade builds one per learner)."""
    path = _PRISTINE.pop((lab.id, lab.version, seed), None)
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)


def _cleanup() -> None:
    for path in _PRISTINE.values():
        shutil.rmtree(path, ignore_errors=True)


atexit.register(_cleanup)
