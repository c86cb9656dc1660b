"""Order audit log files the way kube-apiserver (lumberjack) wrote them: a pure function over names.

When ``audit.log`` grows past ``--audit-log-maxsize`` it is renamed to
``audit-<UTC 2006-01-02T15-04-05.000>.log`` (``.gz`` appended with ``--audit-log-compress``) and a new
``audit.log`` starts. So one *series* is: the backups, oldest timestamp first, then the live file.
logrotate-style names (``audit.log.1``, ``audit.log.2.gz``; higher number = older) are understood too.
Files of different series (another directory, another stem: a second apiserver) are separate series that a
reader merges by time.
"""

from __future__ import annotations

from collections import namedtuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# audit-2024-01-01T00-00-00.000.log(.gz)
_LUMBERJACK = (
    r"^(?P<stem>.+)-(?P<ts>\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}(?:\.\d{1,9})?)(?P<ext>\.[^./]+)?(?P<gz>\.gz)?$"
)
# audit.log.3(.gz)
_NUMBERED = r"^(?P<base>.+)\.(?P<num>\d+)(?P<gz>\.gz)?$"
_patterns: tuple[Any, Any] | None = None


def _match(base: str) -> tuple[Any, Any]:
    """(the lumberjack match, the numbered match) of a file name; the patterns are compiled (re imported:
    ~8 ms of a query's start) only for a name that could match one: a timestamp's "T", a number at the end."""
    global _patterns
    numbered = (base[:-3] if base.endswith(".gz") else base).rpartition(".")
    if "T" not in base and not (numbered[1] and numbered[2].isdecimal()):  # \d: what isdecimal() accepts
        return None, None
    if _patterns is None:
        import re

        _patterns = (re.compile(_LUMBERJACK), re.compile(_NUMBERED))
    return _patterns[0].match(base), _patterns[1].match(base)


class LogName(namedtuple("LogName", ["name", "series", "rank"])):
    """How one file name fits into a series: ``series`` groups, ``rank`` orders inside the group: (0 backup
    by time | 1 numbered backup | 2 live file, timestamp, -number). (Not a dataclass: start-up counts.)"""

    __slots__ = ()


def _root_and_parts(name: str) -> tuple[str, list[str]]:
    """How PurePosixPath reads ``name`` (without importing pathlib: start-up counts)."""
    root = (
        "//" if name.startswith("//") and not name.startswith("///") else "/" if name.startswith("/") else ""
    )
    return root, [p for p in name.split("/") if p and p != "."]


def normal_path(name: str) -> str:
    """``str(PurePosixPath(name))``: ``./logs//audit.log`` -> ``logs/audit.log``."""
    root, parts = _root_and_parts(name)
    return (root + "/".join(parts)) or "."


def _parent_and_base(name: str) -> tuple[str, str]:
    """``str(PurePosixPath(name).parent)`` and ``.name``."""
    root, parts = _root_and_parts(name)
    if not parts:
        return root or ".", ""
    return (root + "/".join(parts[:-1])) or ".", parts[-1]


def classify(name: str) -> LogName:
    parent, base = _parent_and_base(name)
    m, numbered = _match(base)
    if m:
        stem = m.group("stem") + (m.group("ext") or "")
        return LogName(name, f"{parent}/{stem}", (0, m.group("ts"), 0))
    m = numbered
    if m:
        return LogName(name, f"{parent}/{m.group('base')}", (1, "", -int(m.group("num"))))
    stem = base[:-3] if base.endswith(".gz") else base
    return LogName(name, f"{parent}/{stem}", (2, "", 0))


def order_log_names(names: list[str]) -> list[list[str]]:
    """Group file names into series and order each series oldest first.

    >>> order_log_names(["d/audit.log", "d/audit-2024-01-02T00-00-00.000.log.gz",
    ...                  "d/audit-2024-01-01T00-00-00.000.log"])
    [['d/audit-2024-01-01T00-00-00.000.log', 'd/audit-2024-01-02T00-00-00.000.log.gz', 'd/audit.log']]
    """
    groups: dict[str, list[LogName]] = {}
    for name in dict.fromkeys(names):  # the same name twice is read once
        item = classify(name)
        groups.setdefault(item.series, []).append(item)
    return [[item.name for item in sorted(items, key=lambda i: i.rank)] for items in groups.values()]
