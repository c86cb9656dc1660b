"""Similarity beyond byte identity: two learners' answers compared in a normalised form.

Each changed file (relative to the starting state for the learner's seed) is cut into *pieces*: for YAML,
each document parsed (comments and whitespace gone), every mapping's keys sorted, and lists of rules or
policy items split into one piece per item (so reordering rules changes nothing); for other text, each
non-blank line without trailing comments. The learner's variant values are masked back to ``{{ name }}``
so two seeds' copies of one answer compare equal. Pairs are scored by the Jaccard index of their pieces,
counting only pieces that few learners share (an answer most of the class wrote is not evidence of copying).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_FILE = 2 * 1024 * 1024  # larger files (logs) are evidence, not answers: they are left out
MAX_PIECES = 4000


def _mask(text: str, values: dict[str, Any]) -> str:
    from grader.instructor.regrade import generalise

    return generalise(text, values)


def _canon(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def _yaml_pieces(rel: str, data: bytes) -> list[str] | None:
    from grader import safeyaml

    try:
        docs = safeyaml.load_all(data)
    except Exception:  # not YAML: compared as lines
        return None
    out = []
    for doc in docs:
        if isinstance(doc, list):  # a Falco rules file: each rule, macro, list is a piece
            out.extend(f"{rel}#item:{_name(item)}|{_canon(item)}" for item in doc)
        elif isinstance(doc, dict):
            items = doc.get("rules") if isinstance(doc.get("rules"), list) else doc.get("items")
            if isinstance(items, list):  # an audit policy's rules, a List of objects
                rest = {k: v for k, v in doc.items() if k not in ("rules", "items")}
                out.append(f"{rel}#head:{_canon(rest)}")
                out.extend(f"{rel}#item:{_name(item)}|{_canon(item)}" for item in items)
            else:
                out.append(f"{rel}#doc:{_canon(doc)}")
        elif doc is not None:
            out.append(f"{rel}#scalar:{_canon(doc)}")
    return out


def _name(item: Any) -> str:
    """A readable label for a rules-file item or an object: ``rule 'X'``, ``Deployment web`` ('' if none)."""
    if isinstance(item, dict):
        for key in ("rule", "macro", "list"):
            if isinstance(item.get(key), str):
                return f"{key} '{item[key][:80]}'"
        meta = item.get("metadata")
        if isinstance(meta, dict) and isinstance(meta.get("name"), str):
            return f"{item.get('kind', 'object')} {meta['name'][:80]}"
    return ""


def _line_pieces(rel: str, text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        line = re.sub(r"\s+#.*$", "", line).strip()
        if line and not line.startswith("#"):
            out.append(f"{rel}#line:{' '.join(line.split())}")
    return out


def pieces(lab: Any, seed: str | None, root: Path, values: dict[str, Any]) -> list[str]:
    """The normalised pieces of what the learner changed, minus what the reference solution writes (two
    learners who both wrote the expected answer did not copy each other)."""
    from grader.workspace import pristine

    start = pristine(lab, seed).root
    reference = set(_solution_pieces(lab, seed, start, values))
    return [p for p in _changed_pieces(root, start, values) if p not in reference]


_SOLUTION_CACHE: dict[tuple[str, str | None], list[str]] = {}


def _solution_pieces(lab: Any, seed: str | None, start: Path, values: dict[str, Any]) -> list[str]:
    """The parts the reference solution writes for this seed: its overlay rendered into an empty folder
    (the start is not copied: a generated audit log is megabytes) and compared with the start's files."""
    import shutil
    import tempfile

    from grader.solutions import SolutionsUnavailable, solution_dir
    from grader.workspace import copy_tree

    key = (lab.id, seed)
    if key in _SOLUTION_CACHE:
        return _SOLUTION_CACHE[key]
    try:
        sol = solution_dir(lab)
    except SolutionsUnavailable:
        return []  # an install without solutions/: nothing to subtract
    out: list[str] = []
    if (sol / "overlay").is_dir():
        tmp = Path(tempfile.mkdtemp(prefix="cks-similar-"))
        try:
            copy_tree(sol / "overlay", tmp, values)
            out = _changed_pieces(tmp, start, values)
        except Exception:  # a broken solution must not stop the regrade; similarity just subtracts less
            out = []
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    _SOLUTION_CACHE[key] = out
    return out


def _changed_pieces(root: Path, start: Path, values: dict[str, Any]) -> list[str]:
    from grader.snapshot import META_FILE

    found: list[str] = []
    for dirpath, _dirs, files in os.walk(root):
        for name in sorted(files):
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            if rel == META_FILE or p.is_symlink() or not p.is_file() or p.stat().st_size > MAX_FILE:
                continue
            data = p.read_bytes()
            before = start / rel
            if before.is_file() and before.stat().st_size == len(data) and before.read_bytes() == data:
                continue
            old = set()
            if before.is_file() and before.stat().st_size <= MAX_FILE:
                old = set(_file_pieces(rel, before.read_bytes(), values))
            found.extend(x for x in _file_pieces(rel, data, values) if x not in old)
    return sorted({hashlib.sha256(x.encode()).hexdigest()[:20] + "|" + x[:160] for x in found})[:MAX_PIECES]


def _file_pieces(rel: str, data: bytes, values: dict[str, Any]) -> list[str]:
    text = data.decode("utf-8", errors="replace")
    masked = _mask(text, values)
    if rel.endswith((".yaml", ".yml", ".json")) or rel.startswith("cluster/"):
        got = _yaml_pieces(rel, masked.encode())
        if got is not None:
            return got
    return _line_pieces(rel, masked)


@dataclass
class Pair:
    lab: str
    a: str  # learner
    b: str
    score: float  # Jaccard index of the rare pieces
    shared: list[str]  # a few of the shared pieces, readable


def similar_pairs(results: list[Any], threshold: float = 0.8, common_share: float = 0.5) -> list[Pair]:
    """Pairs of learners (same lab) whose rare pieces overlap at least ``threshold``."""
    by_lab: dict[str, list[Any]] = defaultdict(list)
    for r in results:
        if r.error is None and r.lab and r.pieces:
            by_lab[r.lab].append(r)
    out = []
    for lab, group in by_lab.items():
        keys = [{p.split("|", 1)[0]: p.split("|", 1)[1] for p in r.pieces} for r in group]
        counts = Counter(k for ks in keys for k in ks)
        limit = max(2, int(common_share * len(group)))
        rare = [{k: v for k, v in ks.items() if counts[k] <= limit} for ks in keys]
        for i in range(len(group)):
            for j in range(i + 1, len(group)):
                if group[i].learner == group[j].learner:
                    continue
                a, b = set(rare[i]), set(rare[j])
                if not a or not b:
                    continue
                shared = a & b
                score = len(shared) / len(a | b)
                if score >= threshold:
                    out.append(
                        Pair(
                            lab,
                            group[i].learner,
                            group[j].learner,
                            round(score, 2),
                            sorted(rare[i][k] for k in shared)[:5],
                        )
                    )
    return out
