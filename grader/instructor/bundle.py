"""Evidence bundles: what a learner hands in (``cks submit``) and how an instructor opens one safely.

A bundle is a gzip'd tar with three parts::

    cks-bundle.json     metadata: lab, lab and grader versions, seed, learner, times, SHA-256 of every file
    result.json         the learner-side result (kept for comparison; never trusted)
    snapshot/...        the workspace or live-collected snapshot, in the snapshot layout

Bundles are untrusted input. :func:`extract` never calls ``tarfile.extract*``: it streams the archive, refuses
absolute paths, ``..``, links, devices and FIFOs, duplicate names, and stops at size, file-count and depth
limits (counted on the decompressed stream, so a gzip bomb stops early too). Files are created with
``O_EXCL`` under a fresh directory, so nothing can be written outside it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import stat
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from grader.snapshot import META_FILE

FORMAT = 1
META_NAME = "cks-bundle.json"
RESULT_NAME = "result.json"
SNAP_DIR = "snapshot"
LEARNER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}$")
SEED_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}$")
LAB_ID = re.compile(r"^lab\d{1,4}$")


class BundleError(Exception):
    """The bundle cannot be used; ``str()`` says why, in words fit for the class report."""


@dataclass(frozen=True)
class Limits:
    """Ceilings for one bundle. A real submission is a few hundred KB; audit logs make the big ones."""

    max_bundle_bytes: int = 64 * 1024 * 1024  # the .tar.gz on disk
    max_total_bytes: int = 256 * 1024 * 1024  # all members, decompressed
    max_file_bytes: int = 64 * 1024 * 1024  # one member
    max_files: int = 5000
    max_depth: int = 48  # path components
    max_name: int = 1024  # characters in one member name
    max_meta_bytes: int = 8 * 1024 * 1024  # cks-bundle.json (lists every file's hash)


DEFAULT_LIMITS = Limits()


def now_utc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---- writing (cks submit) ---------------------------------------------------------------------------


@dataclass
class SnapshotFiles:
    files: list[tuple[str, Path]]  # (path inside snapshot/, local path), sorted
    skipped: list[str]  # links, devices, ...: not evidence; listed so the learner sees them


def snapshot_files(
    root: Path, limits: Limits = DEFAULT_LIMITS, collected: Callable[[str], bool] | None = None
) -> SnapshotFiles:
    """Regular files under ``root`` that the lab collects (``collected(rel)``; every file when None). Links
    (symbolic or hard: a hard link can point at any file the learner can read, /etc/shadow included), special
    files and files the lab does not collect are skipped and listed."""
    files: list[tuple[str, Path]] = []
    skipped: list[str] = []
    total = 0
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        base = Path(dirpath)
        for d in list(dirnames):
            if (base / d).is_symlink():
                skipped.append((base / d).relative_to(root).as_posix() + " (a link)")
                dirnames.remove(d)
        dirnames.sort()
        for name in sorted(filenames):
            path = base / name
            rel = path.relative_to(root).as_posix()
            try:
                st = path.lstat()
            except OSError:
                skipped.append(f"{rel} (unreadable)")
                continue
            if stat.S_ISLNK(st.st_mode):
                skipped.append(f"{rel} (a link)")
                continue
            if not stat.S_ISREG(st.st_mode):
                skipped.append(f"{rel} (not a regular file)")
                continue
            if collected is not None and not collected(rel):
                skipped.append(f"{rel} (not part of what the lab grades)")
                continue
            if st.st_nlink > 1:
                skipped.append(f"{rel} (a hard link to another file: copy it instead)")
                continue
            if st.st_size > limits.max_file_bytes:
                raise BundleError(
                    f"{rel} is {st.st_size / 1048576:.0f} MB, more than the "
                    f"{limits.max_file_bytes // 1048576} MB a bundle may hold per file"
                )
            total += st.st_size
            files.append((rel, path))
    if len(files) + 2 > limits.max_files:
        raise BundleError(
            f"the snapshot has {len(files)} files, more than a bundle may hold ({limits.max_files})"
        )
    if total > limits.max_total_bytes:
        raise BundleError(
            f"the snapshot holds {total / 1048576:.0f} MB, more than a bundle may hold "
            f"({limits.max_total_bytes // 1048576} MB)"
        )
    return SnapshotFiles(sorted(files), skipped)


def _read_member_file(path: Path, limits: Limits) -> bytes:
    """The file's bytes, checked again at open time (no link followed, still one regular file, bounded)."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise BundleError(f"cannot read {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_nlink > 1:
            raise BundleError(f"{path} changed into a link or special file while it was being packed")
        data = fh.read(limits.max_file_bytes + 1)
    if len(data) > limits.max_file_bytes:
        raise BundleError(f"{path} grew past {limits.max_file_bytes // 1048576} MB while it was being packed")
    return data


def write_bundle(
    out: Path,
    snapshot_root: Path,
    *,
    lab_id: str,
    lab_version: int,
    lab_fingerprint: str,
    grader_version: str,
    seed: str | None,
    learner: str,
    result: dict[str, Any],
    snapshot_meta: dict[str, Any],
    submitted: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
    collected: Callable[[str], bool] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the bundle to ``out`` and return its metadata. Member order and mtimes are fixed, so the same
    evidence gives the same member bytes (only the metadata's times differ). The archive is written to a
    temporary sibling with a unique name and renamed into place, so concurrent writers to the same ``out``
    each leave a whole bundle (the last one wins), never a mix."""
    if not LEARNER_ID.match(learner):
        raise BundleError(
            f"learner id {learner!r} must be 1-100 letters, digits or . _ @ + - "
            "(it names the learner's row in the class report)"
        )
    listing = snapshot_files(snapshot_root, limits, collected)
    result_bytes = json.dumps(result, indent=2, sort_keys=True).encode()
    contents = [(rel, _read_member_file(path, limits)) for rel, path in listing.files]
    hashes = {f"{SNAP_DIR}/{rel}": hashlib.sha256(data).hexdigest() for rel, data in contents}
    hashes[RESULT_NAME] = hashlib.sha256(result_bytes).hexdigest()
    meta = {
        "format": FORMAT,
        "lab": lab_id,
        "lab_version": lab_version,
        "lab_fingerprint": lab_fingerprint,
        "grader_version": grader_version,
        "seed": seed,
        "learner": learner,
        "source": str(snapshot_meta.get("kind") or "workspace"),
        "started": _str_or_none(snapshot_meta.get("started")),
        "submitted": submitted or now_utc(),
        "claimed_score": result.get("score"),
        "claimed_max_score": result.get("max_score"),
        "skipped": listing.skipped,
        "files": hashes,
    }
    meta.update(extra or {})
    meta_bytes = json.dumps(meta, indent=2, sort_keys=True).encode()
    members = [(META_NAME, meta_bytes), (RESULT_NAME, result_bytes)]
    members += [(f"{SNAP_DIR}/{rel}", data) for rel, data in contents]
    _write_archive_atomically(out, members)
    return meta


def _write_archive_atomically(out: Path, members: list[tuple[str, bytes]]) -> None:
    """Write a temporary sibling with a unique name, then rename it over ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
    tmp = Path(tmp_name)
    try:
        with (
            os.fdopen(fd, "wb") as raw,
            gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz,
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            for name, data in members:
                _add_bytes(tar, name, data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def _str_or_none(v: Any) -> str | None:
    return None if v is None else str(v)


# ---- reading (cks regrade) --------------------------------------------------------------------------


class _Capped(io.RawIOBase):
    """A read-only stream that raises once more than ``cap`` bytes have come out of it."""

    def __init__(self, inner: Any, cap: int, what: str):
        self.inner, self.cap, self.what, self.count = inner, cap, what, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        data = self.inner.read(len(buf))
        self.count += len(data)
        if self.count > self.cap:
            raise BundleError(self.what)
        buf[: len(data)] = data
        return len(data)


@dataclass
class Extracted:
    root: Path  # where the bundle was extracted
    meta: dict[str, Any]
    files: dict[str, str]  # member name -> SHA-256 actually found
    problems: list[str] = field(default_factory=list)  # tampering / integrity findings

    @property
    def snapshot(self) -> Path:
        return self.root / SNAP_DIR

    def result(self) -> dict[str, Any] | None:
        try:
            data = json.loads((self.root / RESULT_NAME).read_bytes())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None


def check_member_name(name: str, limits: Limits = DEFAULT_LIMITS) -> PurePosixPath:
    """The member's path, or BundleError for anything that could land outside the extraction directory."""
    if not name or len(name) > limits.max_name:
        raise BundleError(f"a member has an empty or over-long name ({len(name)} characters)")
    if "\x00" in name or "\\" in name:
        raise BundleError(f"member {name[:80]!r} has a NUL or backslash in its name")
    pure = PurePosixPath(name)
    if pure.is_absolute() or name.startswith("/"):
        raise BundleError(f"member {name[:80]!r} has an absolute path")
    if any(part == ".." for part in pure.parts):
        raise BundleError(f"member {name[:80]!r} climbs out of the bundle (path traversal)")
    parts = [p for p in pure.parts if p not in ("", ".")]
    if not parts:
        raise BundleError(f"member {name[:80]!r} names no file")
    if len(parts) > limits.max_depth:
        raise BundleError(f"member {name[:80]!r} is nested more than {limits.max_depth} levels deep")
    top = parts[0]
    if top not in (META_NAME, RESULT_NAME, SNAP_DIR) or (top != SNAP_DIR and len(parts) > 1):
        raise BundleError(
            f"member {name[:80]!r} is not part of a cks bundle "
            f"(allowed: {META_NAME}, {RESULT_NAME}, {SNAP_DIR}/...)"
        )
    return PurePosixPath(*parts)


def _members(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    while True:
        try:
            info = tar.next()
        except tarfile.TarError as exc:
            raise BundleError(f"the archive is damaged: {exc}") from None
        if info is None:
            return
        yield info


def extract(bundle: Path, dest: Path, limits: Limits = DEFAULT_LIMITS) -> Extracted:
    """Extract ``bundle`` into ``dest`` (created; must not exist) and verify it against its metadata."""
    _check_bundle_file(bundle, limits)
    dest.mkdir(parents=True, exist_ok=False)
    try:
        with open(bundle, "rb") as raw:
            found = _extract_stream(raw, dest, limits)
    except BundleError:
        raise
    except (EOFError, OSError, zlib.error, tarfile.TarError) as exc:
        raise BundleError(f"the archive is damaged or truncated: {exc}") from None
    if META_NAME not in found:
        raise BundleError(f"no {META_NAME}: not a bundle written by `cks submit`")
    meta = _read_meta(dest / META_NAME)
    ex = Extracted(dest, meta, found)
    ex.problems.extend(_verify(meta, found))
    return ex


def _check_bundle_file(bundle: Path, limits: Limits) -> None:
    """Refuse what is not a readable regular file within the size limit, before opening it."""
    try:
        size = bundle.stat().st_size
    except OSError as exc:
        raise BundleError(f"cannot read the bundle: {exc.strerror}") from None
    if not bundle.is_file():
        raise BundleError("not a regular file")
    if size > limits.max_bundle_bytes:
        raise BundleError(
            f"the bundle is {size / 1048576:.0f} MB, more than the "
            f"{limits.max_bundle_bytes // 1048576} MB limit"
        )


def _extract_stream(raw: BinaryIO, dest: Path, limits: Limits) -> dict[str, str]:
    """Decompress ``raw`` through a capped stream and extract its members; return member -> SHA-256."""
    magic = raw.read(2)
    raw.seek(0)
    if magic != b"\x1f\x8b":
        raise BundleError("not a gzip file (a bundle is the .tar.gz that `cks submit` writes)")
    # headers and padding add some bytes beyond the members; allow for them in the stream cap
    cap = limits.max_total_bytes + (limits.max_files + 16) * 1536 + limits.max_meta_bytes
    gz = gzip.GzipFile(fileobj=raw, mode="rb")
    capped = io.BufferedReader(
        _Capped(gz, cap, f"the bundle decompresses to more than {limits.max_total_bytes // 1048576} MB"),
        1 << 16,
    )
    with tarfile.open(fileobj=capped, mode="r|") as tar:
        return _extract_members(tar, dest, limits)


def _extract_members(tar: tarfile.TarFile, dest: Path, limits: Limits) -> dict[str, str]:
    found: dict[str, str] = {}
    seen_dirs: set[str] = set()
    total = 0
    for count, info in enumerate(_members(tar), start=1):
        if count > limits.max_files:
            raise BundleError(f"the bundle has more than {limits.max_files} members")
        rel = check_member_name(info.name, limits)
        key = rel.as_posix()
        if _is_directory_member(info, key):
            seen_dirs.add(key)
            continue
        if key in found or key in seen_dirs:
            raise BundleError(f"member {key!r} appears twice")
        _check_member_size(info, key, limits)
        total += info.size
        if total > limits.max_total_bytes:
            raise BundleError(f"the bundle holds more than {limits.max_total_bytes // 1048576} MB")
        found[key] = _write_member(tar, info, dest, rel)
    return found


def _is_directory_member(info: tarfile.TarInfo, key: str) -> bool:
    """True for a directory; False for a regular file; refuses links and special files."""
    if info.issym() or info.islnk():
        raise BundleError(f"member {key!r} is a link (links are refused)")
    if info.isdir():
        return True
    if not info.isreg():
        raise BundleError(f"member {key!r} is a device, FIFO or other special file (refused)")
    return False


def _check_member_size(info: tarfile.TarInfo, key: str, limits: Limits) -> None:
    cap_one = limits.max_meta_bytes if key == META_NAME else limits.max_file_bytes
    if info.size > cap_one:
        raise BundleError(
            f"member {key!r} is {info.size / 1048576:.0f} MB, over the "
            f"{cap_one // 1048576} MB limit for one file"
        )


def _write_member(tar: tarfile.TarFile, info: tarfile.TarInfo, dest: Path, rel: PurePosixPath) -> str:
    target = dest.joinpath(*rel.parts)
    parent = target.parent
    # every parent must be a real directory inside dest (a file of the same name as a dir is refused)
    cur = dest
    for part in rel.parts[:-1]:
        cur = cur / part
        if cur.is_symlink() or (cur.exists() and not cur.is_dir()):
            raise BundleError(f"member {rel.as_posix()!r} would be written under a file")
        cur.mkdir(exist_ok=True)
    if parent.resolve() != dest.resolve() and dest.resolve() not in parent.resolve().parents:
        raise BundleError(f"member {rel.as_posix()!r} would land outside the bundle")
    src = tar.extractfile(info)
    if src is None:  # pragma: no cover - isreg() members always have data
        raise BundleError(f"member {rel.as_posix()!r} has no data")
    h = hashlib.sha256()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(target, flags, 0o600)
    except FileExistsError:
        raise BundleError(f"member {rel.as_posix()!r} appears twice") from None
    with os.fdopen(fd, "wb") as out:
        remaining = info.size
        while remaining > 0:
            chunk = src.read(min(remaining, 1 << 20))
            if not chunk:
                raise BundleError(f"member {rel.as_posix()!r} is truncated")
            out.write(chunk)
            h.update(chunk)
            remaining -= len(chunk)
    return h.hexdigest()


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_bytes())
    except ValueError as exc:
        raise BundleError(f"{META_NAME} is not valid JSON: {exc}") from None
    if not isinstance(meta, dict):
        raise BundleError(f"{META_NAME} is not a JSON object")
    if meta.get("format") != FORMAT:
        raise BundleError(f"{META_NAME}: unknown bundle format {meta.get('format')!r} (expected {FORMAT})")
    lab = meta.get("lab")
    if not isinstance(lab, str) or not LAB_ID.match(lab):
        raise BundleError(f"{META_NAME}: 'lab' must look like lab<N>, got {str(lab)[:40]!r}")
    learner = meta.get("learner")
    if not isinstance(learner, str) or not LEARNER_ID.match(learner):
        raise BundleError(f"{META_NAME}: 'learner' is missing or not a plain id")
    seed = meta.get("seed")
    if seed is not None and (not isinstance(seed, str) or not SEED_ID.match(seed)):
        raise BundleError(f"{META_NAME}: 'seed' must be a plain id or null")
    files = meta.get("files")
    if not isinstance(files, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in files.items()
    ):
        raise BundleError(f"{META_NAME}: 'files' must map each member to its SHA-256")
    return meta


def _verify(meta: dict[str, Any], found: dict[str, str]) -> list[str]:
    """Integrity findings: what changed, appeared or went missing since the bundle was written."""
    listed: dict[str, str] = meta["files"]
    problems = []
    changed = sorted(k for k in listed if k in found and found[k] != listed[k])
    missing = sorted(k for k in listed if k not in found)
    extra = sorted(k for k in found if k not in listed and k != META_NAME)
    for what, names in (
        ("hash mismatch", changed),
        ("listed but missing", missing),
        ("not listed in the metadata", extra),
    ):
        if names:
            more = f" (and {len(names) - 3} more)" if len(names) > 3 else ""
            problems.append(f"{what}: {', '.join(names[:3])}{more}")
    return problems


def read_snapshot_seed(snapshot: Path) -> str | None:
    """The seed recorded in the snapshot's own cks.yaml (what the workspace was started with)."""
    from grader import safeyaml

    try:
        data = safeyaml.load_one((snapshot / META_FILE).read_bytes())
    except (OSError, safeyaml.YamlProblem):
        return None
    if not isinstance(data, dict) or data.get("seed") is None:
        return None
    return str(data["seed"])
