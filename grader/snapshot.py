"""One read-only view over a workspace or a collected snapshot (they share a layout).

    <root>/cks.yaml                        metadata: lab, lab_version, started, seed, target, kind
    <root>/nodes/<node>/<absolute path>    files as they sit on that node
    <root>/cluster/*.yaml                  API objects (one or many documents, or kind: List)
    <root>/facts/<node>/<name>.json|yaml   facts a live collector gathered (process args, Falco state, ...)

Checks read only through :class:`Snapshot`, so they are pure functions of it: a workspace, a live
collection and an instructor's regrade of a submitted bundle all look the same to them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Any

from grader import safeio, safeyaml

META_FILE = "cks.yaml"
COLLECTOR_STATUS = "facts/_collector/status.json"  # written by grader.collectors: what could not be fetched
MAX_FILE_BYTES = 20 * 1024 * 1024  # a node file larger than this is not read (audit logs stream separately)
MAX_OBJECT_FILE_BYTES = 50 * 1024 * 1024
MAX_META_BYTES = 1024 * 1024  # cks.yaml is a few lines; a 50 MB one is refused before it is parsed
MAX_FACT_BYTES = 20 * 1024 * 1024


class FileProblem(Exception):
    """A node file could not be read as asked. ``kind`` says why; ``str()`` is the learner-facing message.

    kinds: missing, is_directory, not_a_file, too_large, binary, unreadable, outside, unavailable,
    not_collected.
    ``unreadable``, ``outside``, ``unavailable`` (a live collector could not fetch it: API server down, node
    unreachable, RBAC denial) and ``not_collected`` (the lab does not declare it for live collection) are
    environment problems (check -> error); the others are the learner's to fix.
    """

    def __init__(self, kind: str, message: str, where: str):
        super().__init__(message)
        self.kind = kind
        self.where = where

    @property
    def is_environment_problem(self) -> bool:
        return self.kind in {"unreadable", "outside", "unavailable", "not_collected"}


@dataclass(frozen=True)
class ObjectProblem:
    where: str
    message: str
    text: str = field(default="", repr=False, compare=False)  # the unreadable document, for checks to name it


def object_key(obj: dict[str, Any]) -> tuple[str, str, str]:
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    return (str(obj.get("kind", "")), str(meta.get("namespace") or ""), str(meta.get("name") or ""))


class Snapshot:
    """A snapshot rooted at a directory. Reads lazily; caches what it parsed."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)

    # ---- metadata ---------------------------------------------------------------------------------
    @cached_property
    def _meta(self) -> tuple[dict[str, Any], str | None]:
        path = self.root / META_FILE
        if not path.exists() and not path.is_symlink():
            return {}, None
        try:
            data = safeyaml.load_one(safeio.read_bytes(path, max_bytes=MAX_META_BYTES, what=META_FILE))
        except (safeio.ReadRefused, safeyaml.YamlProblem) as exc:
            return (
                {},
                f"{self.root / META_FILE} cannot be read ({exc}), so the variant (seed) of this work is "
                "unknown",
            )
        if data is not None and not isinstance(data, dict):
            return (
                {},
                f"{self.root / META_FILE} is not a mapping of lab, seed, ..., so the variant is unknown",
            )
        return data or {}, None

    @property
    def meta(self) -> dict[str, Any]:
        """cks.yaml ({} when absent or unreadable: see :attr:`meta_problem`)."""
        return self._meta[0]

    @property
    def meta_problem(self) -> str | None:
        """Why cks.yaml could not be read, or None. Grading must stop: the seed (the variant) is unknown."""
        return self._meta[1]

    # ---- node files -------------------------------------------------------------------------------
    def node_path(self, node: str, path: str) -> Path:
        """The local path of ``path`` on ``node``; refuses anything that would leave the snapshot."""
        where = f"{node}:{path}"
        pure = PurePosixPath(path)
        if not pure.is_absolute() or ".." in pure.parts or "/" in node or node in {"", ".", ".."}:
            raise FileProblem("outside", f"{where} is not an absolute path on a node", where)
        return self.root / "nodes" / node / str(pure).lstrip("/")

    def _checked(self, node: str, path: str) -> Path:
        local = self.node_path(node, path)
        where = f"{node}:{path}"
        self._check_collected(node, path, where)
        base = (self.root / "nodes" / node).resolve()
        try:
            real = local.resolve()
        except (OSError, RuntimeError):
            raise FileProblem(
                "unreadable", f"{where}: cannot resolve the path (a link loop?)", where
            ) from None
        if real != base and base not in real.parents:
            raise FileProblem("outside", f"{where} is a link that leaves the node's files", where)
        return local

    def exists(self, node: str, path: str) -> bool:
        try:
            return self._checked(node, path).exists()
        except FileProblem as exc:
            if exc.kind == "unavailable":  # "the node could not be reached" must not read as "absent"
                raise
            return False

    def is_dir(self, node: str, path: str) -> bool:
        try:
            return self._checked(node, path).is_dir()
        except FileProblem as exc:
            if exc.kind == "unavailable":
                raise
            return False

    def read_bytes(self, node: str, path: str, max_bytes: int = MAX_FILE_BYTES) -> bytes:
        local = self._checked(node, path)
        where = f"{node}:{path}"
        try:
            return safeio.read_bytes(local, max_bytes=max_bytes, what=where)
        except safeio.ReadRefused as exc:
            raise FileProblem(exc.kind, str(exc), where) from None

    def read_text(self, node: str, path: str, max_bytes: int = MAX_FILE_BYTES) -> str:
        data = self.read_bytes(node, path, max_bytes)
        where = f"{node}:{path}"
        if b"\x00" in data[:65536]:
            raise FileProblem("binary", f"{where} is binary, not text", where)
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise FileProblem(
                "binary", f"{where} is not UTF-8 text (bad byte at offset {exc.start})", where
            ) from None

    def list_dir(self, node: str, path: str) -> list[str]:
        """Names in a node directory, sorted; a missing directory is an empty list."""
        local = self._checked(node, path)
        if not local.exists():
            return []
        if not local.is_dir():
            raise FileProblem("not_a_file", f"{node}:{path} is not a directory", f"{node}:{path}")
        try:
            return sorted(p.name for p in local.iterdir())
        except OSError as exc:
            raise FileProblem(
                "unreadable", f"{node}:{path} cannot be listed: {exc.strerror}", f"{node}:{path}"
            ) from None

    def open_node_file(self, node: str, path: str):  # -> BinaryIO; for streaming large files (audit logs)
        local = self._checked(node, path)
        where = f"{node}:{path}"
        try:
            return safeio.open_regular(local, what=where)
        except safeio.ReadRefused as exc:
            raise FileProblem(exc.kind, str(exc), where) from None

    # ---- what a live collector could not fetch ---------------------------------------------------------
    @cached_property
    def collector_status(self) -> dict[str, Any]:
        """facts/_collector/status.json of a live collection ({} for a workspace)."""
        path = self.root / COLLECTOR_STATUS
        if not path.exists():
            return {}
        try:
            data = json.loads(safeio.read_bytes(path, max_bytes=MAX_FACT_BYTES))
        except (ValueError, RecursionError):  # ReadRefused is a ValueError; deep nesting a RecursionError
            return {"unavailable": {"api": "the collector's status file is damaged; collect again"}}
        return data if isinstance(data, dict) else {}

    def _unavailable(self) -> dict[str, Any]:
        value = self.collector_status.get("unavailable")
        return value if isinstance(value, dict) else {}

    def _check_collected(self, node: str, path: str, where: str) -> None:
        if not self.collector_status:
            return
        nodes = self._unavailable().get("nodes") or {}
        if node in nodes:
            raise FileProblem("unavailable", f"{where} could not be read: {nodes[node]}", where)
        collected = self.collector_status.get("collected") or {}
        files = (collected.get("files") or {}).get(node)
        dirs = (collected.get("dirs") or {}).get(node) or []
        if files is None and not dirs:
            raise FileProblem(
                "not_collected",
                f"{where}: no files were collected from node {node} (the lab's "
                "lab.yaml must list it under collect.files or collect.dirs)",
                where,
            )
        pure = PurePosixPath(path)
        if str(pure) in files or any(
            pure == PurePosixPath(d) or PurePosixPath(d) in pure.parents for d in dirs
        ):
            return
        raise FileProblem(
            "not_collected",
            f"{where} was not collected from the live node (the lab's lab.yaml "
            "must list it under collect.files or collect.dirs)",
            where,
        )

    def _check_kind(self, kind: str | None) -> None:
        if not self.collector_status:
            return
        gone = self._unavailable()
        kinds = gone.get("kinds") or {}
        collected = set((self.collector_status.get("collected") or {}).get("kinds") or [])
        where = f"cluster:{kind or 'all kinds'}"
        if kind is None:
            if kinds or gone.get("api"):
                first = next(iter(kinds.values()), None) or gone.get("api")
                raise FileProblem("unavailable", f"API objects could not all be read: {first}", where)
            return
        if kind in kinds or (gone.get("api") and kind not in collected):
            raise FileProblem(
                "unavailable",
                f"{kind} objects could not be read: {kinds.get(kind) or gone.get('api')}",
                where,
            )
        if kind not in collected:
            raise FileProblem(
                "not_collected",
                f"{kind} objects were not collected (the lab's lab.yaml must list "
                f"{kind} under collect.kinds)",
                where,
            )

    def nodes(self) -> list[str]:
        base = self.root / "nodes"
        return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []

    # ---- API objects ------------------------------------------------------------------------------
    @cached_property
    def _objects(self) -> tuple[list[dict[str, Any]], list[ObjectProblem]]:
        objs: list[dict[str, Any]] = []
        problems: list[ObjectProblem] = []
        base = self.root / "cluster"
        if not base.is_dir():
            return objs, problems
        for path in sorted(base.rglob("*")):
            if not path.is_file() or path.suffix not in {".yaml", ".yml", ".json"}:
                continue
            rel = f"cluster/{path.relative_to(base).as_posix()}"
            try:
                raw = safeio.read_bytes(path, max_bytes=MAX_OBJECT_FILE_BYTES, what=rel)
            except safeio.ReadRefused as exc:
                problems.append(
                    ObjectProblem(rel, "file too large to read" if exc.kind == "too_large" else str(exc))
                )
                continue
            for doc_no, doc in read_documents(raw, rel, problems):
                flatten_objects(doc, f"{rel}#{doc_no}", objs, problems)
        return objs, problems

    @property
    def object_problems(self) -> list[ObjectProblem]:
        return self._objects[1]

    def objects(
        self, kind: str | None = None, namespace: str | None = None, name: str | None = None
    ) -> list[dict[str, Any]]:
        self._check_kind(kind)
        out = []
        for obj in self._objects[0]:
            k, ns, n = object_key(obj)
            if (
                (kind is None or k == kind)
                and (namespace is None or ns == namespace)
                and (name is None or n == name)
            ):
                out.append(obj)
        return out

    def object(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        found = self.objects(kind, namespace, name)
        return found[-1] if found else None  # the last document wins, as a later `kubectl apply` would

    # ---- facts from live collection ---------------------------------------------------------------
    def fact(self, node: str, name: str) -> Any | None:
        """A fact a live collector gathered, or None; FileProblem('unavailable') if it could not be
        gathered."""
        gone = self._unavailable()
        reason = (gone.get("facts") or {}).get(f"{node}/{name}") or (gone.get("nodes") or {}).get(node)
        if reason:
            raise FileProblem(
                "unavailable", f"{name} on {node} could not be gathered: {reason}", f"{node}:{name}"
            )
        for suffix in (".json", ".yaml"):
            path = self.root / "facts" / node / f"{name}{suffix}"
            if path.is_file():
                try:
                    raw = safeio.read_bytes(path, max_bytes=MAX_FACT_BYTES)
                    return json.loads(raw) if suffix == ".json" else safeyaml.load_one(raw)
                except (ValueError, RecursionError):  # ReadRefused and YamlProblem are ValueErrors
                    return None
        return None


def read_documents(raw: bytes, rel: str, problems: list[ObjectProblem]):
    """Parse a file's documents one by one so a broken document in the middle spoils only itself."""
    if rel.endswith(".json"):
        try:
            yield 0, json.loads(raw)
        except ValueError as exc:
            problems.append(ObjectProblem(rel, f"not valid JSON: {exc}"))
        except RecursionError:
            problems.append(ObjectProblem(rel, "not valid JSON: nested too deeply for any Kubernetes object"))
        return
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        problems.append(ObjectProblem(rel, "not UTF-8 text"))
        return
    try:  # the common case: the whole file parses; only a broken file is split to save its good documents
        yield from enumerate(d for d in safeyaml.load_all(text) if d is not None)
        return
    except safeyaml.YamlProblem:
        pass
    chunks = _split_documents(text)
    for no, (first_line, chunk) in enumerate(chunks):
        try:
            for doc in safeyaml.load_all(chunk):
                if doc is not None:
                    yield no, doc
        except safeyaml.YamlProblem as exc:
            msg = str(exc)
            if exc.line is not None:  # the chunk's line -> the file's line, where the learner looks
                msg = msg.replace(f"line {exc.line}", f"line {exc.line + first_line - 1}", 1)
            problems.append(ObjectProblem(f"{rel}#{no}", msg, chunk))


def _split_documents(text: str) -> list[tuple[int, str]]:
    """(first line number in the file, text) of each document."""
    chunks: list[tuple[int, str]] = []
    cur: list[str] = []
    start = 1
    for no, line in enumerate(text.splitlines(keepends=True), 1):
        if line.startswith("---") and (len(line) == 3 or line[3] in " \t\r\n"):
            chunks.append((start, "".join(cur)))
            cur = [line[3:].lstrip() if line[3:].strip() else ""]
            start = no if line[3:].strip() else no + 1
            continue
        cur.append(line)
    chunks.append((start, "".join(cur)))
    return [(n, c) for n, c in chunks if c.strip()]


def flatten_objects(doc: Any, where: str, out: list[dict[str, Any]], problems: list[ObjectProblem]) -> None:
    """Append the Kubernetes objects of one document to ``out`` (a List one item at a time); what is no
    object becomes a problem at ``where``."""
    if not isinstance(doc, dict):
        problems.append(
            ObjectProblem(where, f"a document is a {type(doc).__name__}, not a Kubernetes object")
        )
        return
    if str(doc.get("kind", "")).endswith("List") and isinstance(doc.get("items"), list):
        for i, item in enumerate(doc["items"]):
            flatten_objects(item, f"{where}/items[{i}]", out, problems)
        return
    if not doc.get("kind") or not isinstance(doc.get("metadata"), dict):
        problems.append(ObjectProblem(where, "not a Kubernetes object (no kind or metadata)"))
        return
    out.append(doc)
