"""Practice workspaces: the lab's starting state laid out as a snapshot the learner edits."""

from __future__ import annotations

import atexit
import contextlib
import importlib
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from grader import __version__, variants
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
    (dest / META_FILE).write_text(yaml.safe_dump(meta, sort_keys=False))
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
    """Copy a tree (starting state, solution overlay, fixture) rendering ``{{ var }}`` in names and text."""
    for src in sorted(src_root.rglob("*")):
        rel = src.relative_to(src_root)
        target = dest / Path(variants.render_text(rel.as_posix(), values))
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


def start(lab: Lab, dest: Path, seed: str | None = None, force: bool = False) -> dict[str, Any]:
    if dest.exists() and any(dest.iterdir()):
        if not force:
            raise WorkspaceError(
                f"{dest} already exists; grade it with `grade {lab.id} --workspace {dest}`, "
                f"or start over with `cks reset {lab.id} --workspace {dest}`")
        reset_dir(dest)
    return materialize(lab, dest, seed)


def reset_dir(dest: Path) -> None:
    """Remove a workspace, refusing anything that does not look like one."""
    if not (dest / META_FILE).is_file():
        raise WorkspaceError(f"{dest} is not a cks workspace (no {META_FILE}); refusing to delete it")
    shutil.rmtree(dest)


def pristine(lab: Lab, seed: str | None) -> Snapshot:
    """The starting state for ``seed`` as a snapshot; static labs are read in place, others built once."""
    if not lab.generator and not lab.variables:
        return Snapshot(lab.start_dir)
    key = (lab.id, lab.version, seed)
    if key not in _PRISTINE:
        tmp = Path(tempfile.mkdtemp(prefix=f"cks-{lab.id}-start-"))
        materialize(lab, tmp, seed)
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
