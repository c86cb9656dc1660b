"""YAML loading that is safe for learner input.

PyYAML (C loader when available) with three guards a learner's file can trip: alias bombs (the expanded
size of the node graph is measured before anything is built), deep nesting, and recursive anchors. Every
problem becomes a :class:`YamlProblem` with a message fit for a learner; nothing raises anything else.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import yaml

try:  # the C loader is 5-10x faster; fall back quietly where libyaml is missing
    _Base: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on the PyYAML build
    _Base = yaml.SafeLoader


class Loader(_Base):  # type: ignore[misc, valid-type]
    """Safe loader that keeps timestamps as text, as Kubernetes (YAML -> JSON) and Falco do: a
    `creationTimestamp` or an `evt.time` with nanoseconds must not become a lossy datetime."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in _Base.yaml_implicit_resolvers.items()
    }


MAX_NODES = 2_000_000  # expanded nodes in one document (a billion-laughs bomb blows far past this)
MAX_DEPTH = 200  # nesting levels; real manifests and rules stay under 30


class YamlProblem(ValueError):
    """The text is not YAML the grader will read; ``str()`` is the learner-facing message."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None):
        super().__init__(message)
        self.line = line
        self.column = column


def measure(root: yaml.Node) -> None:
    """Expanded node count and depth, iteratively and memoised per node so aliases cost O(graph)."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            kids = _children(node)
            size[key] = 1 + sum(size[id(k)] for k in kids)
            depth[key] = 1 + max((depth[id(k)] for k in kids), default=0)
            if size[key] > MAX_NODES:
                raise YamlProblem(
                    f"the YAML expands to more than {MAX_NODES:,} nodes through aliases (a 'YAML bomb'); "
                    "write the content out instead of nesting anchors",
                    node.start_mark.line + 1,
                )
            if depth[key] > MAX_DEPTH:
                raise YamlProblem(
                    f"the YAML is nested more than {MAX_DEPTH} levels deep", node.start_mark.line + 1
                )
            continue
        if key in size:
            continue
        if key in on_path:
            raise YamlProblem(
                "the YAML refers to itself through an anchor (a recursive alias)", node.start_mark.line + 1
            )
        on_path.add(key)
        stack.append((node, True))
        for kid in _children(node):
            if id(kid) not in size:
                stack.append((kid, False))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def load_all(text: str | bytes) -> list[Any]:
    """Every document of ``text``; empty documents are kept as None (callers decide what that means)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise YamlProblem(
                f"the file is not UTF-8 text (byte {exc.start}: {text[exc.start : exc.start + 1]!r})"
            ) from None
    if "\x00" in text:
        raise YamlProblem("the file contains NUL bytes: it is binary, not YAML")
    if not _MAY_ALIAS.search(text):
        return _load_plain(text)  # no anchors or aliases: no bomb is possible, skip the node-graph walk
    loader = Loader(text)
    docs: list[Any] = []
    with _as_problem():
        try:
            while loader.check_node():
                node = loader.get_node()
                if node is None:
                    docs.append(None)
                    continue
                measure(node)
                docs.append(loader.construct_document(node))
        finally:
            loader.dispose()
    return docs


_MAY_ALIAS = re.compile(r"[&*][^\s,\[\]{}]")


def _check_depth(doc: Any) -> None:
    """Iterative depth check of built data (no aliases here, so it is a tree)."""
    stack = [(doc, 1)]
    while stack:
        obj, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise YamlProblem(f"the YAML is nested more than {MAX_DEPTH} levels deep")
        if isinstance(obj, dict):
            stack.extend((v, depth + 1) for v in obj.values() if isinstance(v, (dict, list)))
        elif isinstance(obj, list):
            stack.extend((v, depth + 1) for v in obj if isinstance(v, (dict, list)))


def _load_plain(text: str) -> list[Any]:
    with _as_problem():
        docs = list(yaml.load_all(text, Loader=Loader))
    for doc in docs:
        _check_depth(doc)
    return docs


@contextmanager
def _as_problem() -> Iterator[None]:
    """PyYAML's errors as one learner-facing YamlProblem with line and column."""
    try:
        yield
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = exc.problem or exc.context or "invalid YAML"
        if "nesting depth" in what:  # newer libyaml stops at 1000 levels itself
            raise YamlProblem(f"the YAML is nested more than {MAX_DEPTH} levels deep{where}") from None
        raise YamlProblem(
            f"not valid YAML{where}: {what}",
            mark.line + 1 if mark else None,
            mark.column + 1 if mark else None,
        ) from None
    except yaml.YAMLError as exc:
        raise YamlProblem(f"not valid YAML: {exc}") from None
    except RecursionError:
        raise YamlProblem(f"the YAML is nested too deeply (more than {MAX_DEPTH} levels)") from None
    except ValueError as exc:  # PyYAML's int(): a number of more than 4,300 digits (Python's int limit)
        if isinstance(exc, YamlProblem):
            raise
        if "digits" in str(exc):
            raise YamlProblem(
                f"a number in the YAML has more than {sys.get_int_max_str_digits():,} digits; "
                "no Kubernetes or Falco field takes a number that long"
            ) from None
        raise YamlProblem(f"not valid YAML: {exc}") from None
    except (TypeError, OverflowError) as exc:  # odd scalars the constructor cannot build (e.g. a huge float)
        raise YamlProblem(f"not valid YAML: {exc}") from None


def load_one(text: str | bytes) -> Any:
    """Exactly one document (None for an empty file); several documents are an error."""
    docs = load_all(text)
    docs_present = [d for d in docs if d is not None]
    if len(docs) > 1 and len(docs_present) > 1:
        raise YamlProblem(f"expected one YAML document, found {len(docs)}")
    return docs_present[0] if docs_present else None
