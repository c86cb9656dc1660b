"""Rule outputs as Falco prints them: ``%field`` substitution, text alert lines and JSON alerts.

An output format (libsinsp ``sinsp_evt_formatter``) is literal text with ``%field``, ``%field[arg]``,
``%tolower(field)`` and ``%Nfield`` (pad or cut to N characters) tokens; a field with no value prints
``<NA>``. An unknown field is Falco's ``invalid formatting token <rest of the format>`` error, which the
loader reports as LOAD_ERR_COMPILE_OUTPUT.

The alert line is ``<time>: <Priority> <output>`` where the time is the event's ``evt.time``
(``13:53:31.726060287``, local time) or ISO 8601 with ``time_format_iso_8601``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

_FIELD = re.compile(r"[a-zA-Z][a-zA-Z0-9_]*(?:\.[a-zA-Z0-9_]+)*")


class OutputFormatError(ValueError):
    pass


@dataclass(frozen=True)
class Token:
    literal: str | None  # literal text, or None for a field
    field: str = ""  # the field as written after '%' (``proc.name``, ``proc.aname[2]``, ``tolower(fd.name)``)
    width: int = 0


@dataclass(frozen=True)
class OutputFormat:
    text: str
    tokens: tuple[Token, ...]

    @property
    def fields(self) -> list[str]:
        return [t.field for t in self.tokens if t.literal is None]

    @classmethod
    def parse(cls, fmt: str) -> OutputFormat:
        return _parse_format(fmt)

    def render(self, event: Any, getter: Callable[[Any, str], Any] | None = None) -> str:
        getter = getter or field_value
        out = []
        for t in self.tokens:
            if t.literal is not None:
                out.append(t.literal)
                continue
            text = value_text(getter(event, t.field))
            if t.width:
                text = text[: t.width].ljust(t.width)
            out.append(text)
        return "".join(out)

    def values(self, event: Any, getter: Callable[[Any, str], Any] | None = None) -> dict[str, Any]:
        """``output_fields`` of a JSON alert: each field's raw value (None when it has none)."""
        getter = getter or field_value
        out: dict[str, Any] = {}
        for f in self.fields:
            v = getter(event, f)
            out[f] = None if _missing(v) else jsonable(v)
        return out


@lru_cache(maxsize=4096)
def _parse_format(fmt: str) -> OutputFormat:
    tokens: list[Token] = []
    i, start, n = 0, 0, len(fmt)
    while i < n:
        if fmt[i] != "%":
            i += 1
            continue
        if start != i:
            tokens.append(Token(fmt[start:i]))
        if i == n - 1:
            raise OutputFormatError("invalid formatting syntax: formatting cannot end with a %")
        j = i + 1
        width = 0
        m = re.match(r"\d+", fmt[j:])
        if m:
            width = int(m.group(0))
            j += len(m.group(0))
            if j >= n:
                raise OutputFormatError("invalid formatting syntax: formatting cannot end with a number")
        token = _field_token(fmt, j)
        if token is None or not _known_field(token):
            raise OutputFormatError(f"invalid formatting token {fmt[j:]}")
        tokens.append(Token(None, token, width))
        i = j + len(token)
        start = i
    if start < n:
        tokens.append(Token(fmt[start:]))
    return OutputFormat(fmt, tuple(tokens))


def _field_token(fmt: str, j: int) -> str | None:
    """The longest field (or transformer call) text starting at ``j``."""
    m = _FIELD.match(fmt, j)
    if not m:
        return None
    end = m.end()
    if end < len(fmt) and fmt[end] == "(":  # a transformer: tolower(proc.name)
        depth, k = 0, end
        while k < len(fmt):
            if fmt[k] == "(":
                depth += 1
            elif fmt[k] == ")":
                depth -= 1
                if depth == 0:
                    break
            k += 1
        if depth != 0:
            return None
        end = k + 1
    if end < len(fmt) and fmt[end] == "[":
        close = fmt.find("]", end)
        if close == -1:
            return None
        end = close + 1
    token = fmt[j:end]
    if "(" not in token and not _known_field(token) and "[" not in token:
        # libsinsp matches the longest known field name: "%proc.name.x" is proc.name then ".x"
        parts = token.split(".")
        for k in range(len(parts) - 1, 1, -1):
            if _known_field(".".join(parts[:k])):
                return ".".join(parts[:k])
    return token


@lru_cache(maxsize=4096)
def _known_field(token: str) -> bool:
    from .rule_loader_collector import is_field_defined as _is_field_defined

    return _is_field_defined(token)


# ---------------------------------------------------------------------------------------------- values


def _missing(v: Any) -> bool:
    return v is None or v is _events_missing()


@lru_cache(maxsize=1)
def _events_missing() -> Any:
    try:
        from .events import MISSING

        return MISSING
    except ImportError:  # pragma: no cover - the events module ships with the engine
        return None


def jsonable(v: Any) -> Any:
    if isinstance(v, (str, int, float, bool)):
        return v
    if isinstance(v, (list, tuple, set, frozenset)):
        return [jsonable(x) for x in v]
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return str(v)


def value_text(v: Any) -> str:
    if _missing(v):
        return "<NA>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return " ".join(value_text(x) for x in v)
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return str(v)


@lru_cache(maxsize=4096)
def token_reader(token: str) -> Callable[[Any], Any]:
    """A reader for output token ``token``, resolved once (the field's getter and its transformers)."""
    from .events import apply_transformer, getter
    from .parser import parse

    try:
        ref = parse(f"{token} exists").field
        read, _, multi = getter(ref.name, ref.arg)
    except Exception:  # noqa: BLE001 - a token the engine cannot read has no value
        return lambda event: None
    transformers = tuple(reversed(ref.transformers))

    def read_token(event: Any) -> Any:
        value = read(event)
        for t in transformers:
            if multi and isinstance(value, tuple) and t != "len":
                value = tuple(apply_transformer(t, v) for v in value)
            else:
                value = apply_transformer(t, value)
        return value

    return read_token


def field_value(event: Any, token: str) -> Any:
    """The value of output token ``token`` (``proc.name``, ``proc.aname[2]``, ``tolower(fd.name)``)."""
    try:
        return token_reader(token)(event)
    except Exception:  # noqa: BLE001 - a missing or malformed event value prints <NA>
        return None


# ---------------------------------------------------------------------------------------------- alerts


def event_time_ns(event: Any) -> int | None:
    v = field_value(event, "evt.rawtime")
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    return None


def format_time(ns: int | None, iso: bool = False, utc: bool = True) -> str:
    """``13:53:31.726060287`` (or ``2016-08-04T16:17:57.881781397+0000`` with ``iso``); UTC by default so a
    grader's output does not depend on the machine's time zone."""
    if ns is None:
        return "<NA>"
    secs, frac = divmod(ns, 1_000_000_000)
    dt = datetime.fromtimestamp(secs, UTC) if utc else datetime.fromtimestamp(secs).astimezone()
    if iso:
        return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}" + dt.strftime("%z")
    return dt.strftime("%H:%M:%S") + f".{frac:09d}"


@dataclass(frozen=True)
class Alert:
    rule: str
    priority: str  # "Warning"
    output: str  # the rendered rule output (without the time/priority prefix)
    time_ns: int | None
    output_fields: dict[str, Any]
    tags: tuple[str, ...]
    source: str = "syscall"
    hostname: str = "cks-grader"

    def line(self, iso: bool = False) -> str:
        """The text line Falco prints: ``13:53:31.726060287: Critical <output>``."""
        return f"{format_time(self.time_ns, iso)}: {self.priority} {self.output}"

    def to_dict(self, iso: bool = True) -> dict[str, Any]:
        secs_time = None
        if self.time_ns is not None:
            secs, frac = divmod(self.time_ns, 1_000_000_000)
            secs_time = datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"
        fields = {("evt.time.iso8601" if iso else "evt.time"): self.time_ns} | self.output_fields
        return {
            "hostname": self.hostname,
            "output": self.line(iso),
            "output_fields": fields,
            "priority": self.priority,
            "rule": self.rule,
            "source": self.source,
            "tags": list(self.tags),
            "time": secs_time,
        }

    def json(self, iso: bool = True) -> str:
        return json.dumps(self.to_dict(iso), separators=(",", ":"))
