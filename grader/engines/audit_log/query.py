"""Questions over audit events: filters compiled once, request de-duplication, time-ordered merging, counts.

Semantics (docs/audit-log.md has the long form):

* A request is counted once. Its stage lines share an ``auditID``; the request is represented by its final
  event (``ResponseComplete`` or ``Panic``). A failed authentication writes a lone ``ResponseStarted`` with
  code 401: that is final too. Earlier stages wait (bounded) for their final event; a request whose final
  event never comes (the log ends while a watch is open, or the policy omits ``ResponseComplete``) is
  counted at its latest stage when the stream ends.
* Filters apply to that representative event; values of one filter are OR-ed, different filters AND-ed.
* ``user`` matches the authenticated user or the impersonated one; ``*`` in user, group, namespace and
  name values is a wildcard (``system:serviceaccount:ci:*``); everything else is exact, except
  ``user_agent`` which is a substring. ``resource`` may be ``pods`` (any subresource) or ``pods/exec``.
  ``codes`` take ``403`` or a class ``4xx``. Times are RFC 3339 (UTC when no offset is given);
  ``since`` is inclusive, ``until`` exclusive, compared with ``requestReceivedTimestamp``.
* Fast path: for filters whose values must appear verbatim in the line, raw lines written by kube-apiserver
  (they start with ``{"kind":"Event"``) are searched for those bytes before JSON parsing, and skipped when
  absent. Only values made of ``A-Z a-z 0-9 . : _ @ -`` get a needle: no JSON encoder escapes those
  characters (Go escapes only ``"``, ``\\``, control characters, ``<``, ``>``, ``&``; some encoders also
  ``/``), so a line holding the value holds its bytes and results are identical with and without the fast
  path.
  Other values (``kubectl/v1.30``) are matched after parsing only.
"""

from __future__ import annotations

import heapq
from collections import Counter, OrderedDict, namedtuple
from collections.abc import Callable, Iterable, Iterator

from grader.engines.audit_log.reader import Entry, LineSource, Prefilter, ReadStats, iter_entries

TYPE_CHECKING = False  # datetime and re are imported where used (~3 and ~8 ms of a small query's start)
if TYPE_CHECKING:
    import re
    from datetime import datetime

TYPE_CHECKING = False  # typing is not imported at run time (start-up counts)
if TYPE_CHECKING:
    from typing import Any

FINAL_STAGES = frozenset({"ResponseComplete", "Panic"})
READ_VERBS = ("get", "list", "watch")


class QueryError(ValueError):
    """A filter value that cannot be used; ``str()`` says what is accepted."""


# ---- fields -----------------------------------------------------------------------------------------------


def _user(ev: dict[str, Any]) -> dict[str, Any]:
    imp = ev.get("impersonatedUser")
    if isinstance(imp, dict) and imp.get("username"):
        return imp
    u = ev.get("user")
    return u if isinstance(u, dict) else {}


def _ref(ev: dict[str, Any]) -> dict[str, Any]:
    ref = ev.get("objectRef")
    return ref if isinstance(ref, dict) else {}


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def effective_user(ev: dict[str, Any]) -> str:
    """The identity the request acted as: the impersonated user if any, else the authenticated one."""
    return _str(_user(ev).get("username"))


def _resource(ev: dict[str, Any]) -> str:
    ref = _ref(ev)
    res, sub = _str(ref.get("resource")), _str(ref.get("subresource"))
    return f"{res}/{sub}" if sub else res


def _code(ev: dict[str, Any]) -> str:
    status = ev.get("responseStatus")
    return _str(status.get("code")) if isinstance(status, dict) else ""


def _time(ev: dict[str, Any]) -> str:
    return _str(ev.get("requestReceivedTimestamp") or ev.get("stageTimestamp"))


def _api_group(ev: dict[str, Any]) -> str | None:
    """The object's API group, ``core`` for the legacy group, None when the request has no object
    (discovery, /healthz, a failed login): those have no API group at all."""
    ref = ev.get("objectRef")
    if not isinstance(ref, dict):
        return None
    return _str(ref.get("apiGroup")) or "core"


def _list(value: Any) -> list[str]:
    return [_str(v) for v in value] if isinstance(value, list) else []


# name -> (extractor, description); list-valued extractors count each value
FIELDS: dict[str, tuple[Callable[[dict[str, Any]], Any], str]] = {
    "user": (effective_user, "who the request acted as (impersonated user if any)"),
    "authuser": (
        lambda e: _str((e.get("user") or {}).get("username") if isinstance(e.get("user"), dict) else ""),
        "the authenticated user",
    ),
    "group": (lambda e: _list(_user(e).get("groups")), "the user's groups (each counted)"),
    "verb": (lambda e: _str(e.get("verb")), "get, list, watch, create, update, patch, delete, ..."),
    "resource": (_resource, "resource, or resource/subresource"),
    "subresource": (lambda e: _str(_ref(e).get("subresource")), "exec, log, status, ..."),
    "namespace": (lambda e: _str(_ref(e).get("namespace")), "the object's namespace"),
    "name": (lambda e: _str(_ref(e).get("name")), "the object's name"),
    "apigroup": (
        lambda e: _api_group(e) or "",
        "API group (core for the legacy group; empty for requests "
        "without an object: discovery, /healthz, failed logins)",
    ),
    "code": (_code, "HTTP response code"),
    "sourceip": (lambda e: _list(e.get("sourceIPs")), "source IPs (each counted)"),
    "useragent": (lambda e: _str(e.get("userAgent")), "the client's user agent"),
    "stage": (lambda e: _str(e.get("stage")), "RequestReceived, ResponseStarted, ResponseComplete, Panic"),
    "level": (lambda e: _str(e.get("level")), "Metadata, Request, RequestResponse"),
    "decision": (
        lambda e: _str(
            (e.get("annotations") or {}).get("authorization.k8s.io/decision")
            if isinstance(e.get("annotations"), dict)
            else ""
        ),
        "allow or forbid",
    ),
    "uri": (lambda e: _str(e.get("requestURI")), "the request URI"),
    "auditid": (lambda e: _str(e.get("auditID")), "the request's audit ID"),
    "hour": (lambda e: _time(e)[:13], "requestReceivedTimestamp to the hour"),
    "minute": (lambda e: _time(e)[:16], "requestReceivedTimestamp to the minute"),
    "time": (_time, "requestReceivedTimestamp"),
}
_ALIASES = {
    "username": "user",
    "users": "user",
    "groups": "group",
    "ip": "sourceip",
    "sourceips": "sourceip",
    "ua": "useragent",
    "agent": "useragent",
    "ns": "namespace",
    "status": "code",
    "responsecode": "code",
    "resources": "resource",
    "verbs": "verb",
    "api": "apigroup",
    "id": "auditid",
}


def field_name(name: str) -> str:
    """Canonical field name (``user-agent`` -> ``useragent``); QueryError names the choices."""
    key = name.strip().lower().replace("-", "").replace("_", "")
    key = _ALIASES.get(key, key)
    if key not in FIELDS:
        raise QueryError(f"unknown field {name!r}; fields: {', '.join(FIELDS)}")
    return key


def field_values(ev: dict[str, Any], name: str) -> list[str]:
    value = FIELDS[field_name(name)][0](ev)
    return value if isinstance(value, list) else [value]


_LIST_FIELDS = frozenset({"group", "sourceip"})


def _fast_user(ev: dict[str, Any]) -> str:
    """effective_user for the usual shape (no impersonation, a string username), else the general rule."""
    if "impersonatedUser" not in ev:
        u = ev.get("user")
        if type(u) is dict:
            name = u.get("username")
            if type(name) is str:
                return name
    return effective_user(ev)


def _fast_ref_field(key: str) -> Callable[[dict[str, Any]], str]:
    def get(ev: dict[str, Any]) -> str:
        ref = ev.get("objectRef")
        if type(ref) is dict:
            value = ref.get(key)
            if type(value) is str:
                return value
        return _str(_ref(ev).get(key))

    return get


def _fast_top(key: str) -> Callable[[dict[str, Any]], str]:
    def get(ev: dict[str, Any]) -> str:
        value = ev.get(key)
        return value if type(value) is str else _str(value)

    return get


# the same values as FIELDS, with the common shape first (count_by calls these once per request)
_FAST_FIELDS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "user": _fast_user,
    "namespace": _fast_ref_field("namespace"),
    "name": _fast_ref_field("name"),
    "subresource": _fast_ref_field("subresource"),
    "verb": _fast_top("verb"),
    "useragent": _fast_top("userAgent"),
    "stage": _fast_top("stage"),
    "level": _fast_top("level"),
    "uri": _fast_top("requestURI"),
    "auditid": _fast_top("auditID"),
}


# ---- the query --------------------------------------------------------------------------------------------


class Query(
    namedtuple(
        "Query",
        [
            "users",
            "groups",
            "verbs",
            "resources",
            "subresources",
            "namespaces",
            "names",
            "api_groups",
            "codes",
            "source_ips",
            "user_agents",
            "stages",
            "since",
            "until",
        ],
        defaults=((),) * 12 + (None, None),
    )
):
    """What to select: each field a tuple of accepted values (empty: any); ``since``/``until`` a time (text
    or datetime) or None. (A named tuple, not a dataclass: importing dataclasses costs a small query's
    start-up ~8 ms.)"""

    __slots__ = ()


def parse_time(value: str | datetime) -> datetime:
    """RFC 3339 / ISO 8601; a value without an offset is UTC; a bare date is midnight UTC."""
    from datetime import UTC, datetime

    if isinstance(value, datetime):
        dt = value
    else:
        text = value.strip()
        try:
            dt = datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError:
            raise QueryError(f"not a time: {value!r}; use RFC 3339 such as 2024-01-31T10:00:00Z") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def time_key(ts: str) -> str:
    """A string that sorts like the instant: RFC 3339 UTC with the fraction padded to 9 digits."""
    if len(ts) >= 20 and ts[19:20] in (".", "Z") and ts.endswith("Z"):
        frac = ts[20:-1] if ts[19] == "." else ""
        return ts[:19] + "." + frac.ljust(9, "0")
    from datetime import UTC

    try:
        dt = parse_time(ts).astimezone(UTC)
    except QueryError:
        return ts
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond:06d}000"


# characters no JSON encoder escapes (a set, not a regex: `$` would let a trailing newline through)
_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.:_@ -")


def _safe(text: str) -> bool:
    return bool(text) and _SAFE.issuperset(text)


_DIGITS = frozenset("0123456789")  # what \\d matches in a bytes pattern


class _LazyPattern:
    """A bytes regex compiled on first use (re costs ~8 ms of a query's start; the compiled scanner searches
    for the pattern's literals and tests lines with _code_test instead)."""

    __slots__ = ("source", "_compiled")

    def __init__(self, source: bytes):
        self.source, self._compiled = source, None

    def search(self, data: bytes, pos: int = 0) -> Any:
        if self._compiled is None:
            import re

            self._compiled = re.compile(self.source)
        return self._compiled.search(data, pos)


def _code_test(exact: set[str], classes: set[str], pattern: _LazyPattern) -> Callable[[bytes], bool]:
    """Whether a line holds a matching response code, as the code pattern ``"code": ?"?(?:CODES)(?!\\d)``
    searches for it (a code, or a class's digit then two digits, not followed by a digit), without re."""
    codes = frozenset(c.encode() for c in exact)
    firsts = frozenset(ord(c) for c in classes)
    key = b'"code":'
    if any(len(c) != 3 for c in codes):  # a code in other digits (Arabic-Indic...): the regex itself
        return lambda line: pattern.search(line) is not None

    def test(line: bytes) -> bool:
        i = line.find(key)
        while i >= 0:
            j = i + 7
            if line[j : j + 1] == b" ":
                j += 1
            if line[j : j + 1] == b'"':
                j += 1
            head = line[j : j + 3]
            if (head in codes or (len(head) == 3 and head[0] in firsts and head[1:].isdigit())) and not line[
                j + 3 : j + 4
            ].isdigit():
                return True
            i = line.find(key, i + 1)
        return False

    return test


def _glob(pattern: str) -> re.Pattern[str] | None:
    if "*" not in pattern:
        return None
    import re  # only for a pattern (re costs ~8 ms of a query's start)

    return re.compile("^" + ".*".join(re.escape(p) for p in pattern.split("*")) + "$", re.DOTALL)


def _needle(value: str, exact: bool) -> bytes | None:
    """Bytes that a line holding ``value`` in a JSON string must contain, or None if not derivable."""
    if exact and "*" in value:
        parts = value.split("*")
        best = max(range(len(parts)), key=lambda i: len(parts[i]))
        lit = parts[best]
        if not _safe(lit):
            return None
        return (('"' if best == 0 else "") + lit + ('"' if best == len(parts) - 1 else "")).encode()
    if not _safe(value):
        return None
    return (f'"{value}"' if exact else value).encode()


class CompiledQuery:
    """A query ready to run: ``match(event)`` and, for the fast path, ``prefilter(raw_line)``."""

    def __init__(self, query: Query):
        self.query = query
        self._pred_list: list[Callable[[dict[str, Any]], bool]] = []
        self._groups: list[tuple[bytes, ...]] = []
        self.code_pattern: Any = None  # the response code, as a line holds it (a regex, compiled when used)
        self.code_test: Callable[[bytes], bool] | None = None  # the pattern's search, without re
        self.code_literals: tuple[bytes, ...] = ()
        q = query
        self._add_users(tuple(q.users))
        self._add(tuple(q.groups), lambda e: _list(_user(e).get("groups")))
        self._add(tuple(q.verbs), lambda e: _str(e.get("verb")))
        self._add_resources(tuple(q.resources))
        self._add(tuple(q.subresources), lambda e: _str(_ref(e).get("subresource")))
        self._add(tuple(q.namespaces), lambda e: _str(_ref(e).get("namespace")))
        self._add(tuple(q.names), lambda e: _str(_ref(e).get("name")))
        self._add_api_groups(tuple(q.api_groups))
        self._add(tuple(q.source_ips), lambda e: _list(e.get("sourceIPs")))
        self._add(tuple(q.user_agents), lambda e: _str(e.get("userAgent")), exact=False)
        self._add(tuple(q.stages), lambda e: _str(e.get("stage")), prefilter=False)
        self._add_codes(tuple(q.codes))
        self._add_time_range(q.since, q.until)
        self._preds = tuple(self._pred_list)
        self.needle_groups = tuple(g for g in self._groups if g)

    def _add(
        self,
        values: tuple[str, ...],
        extract: Callable[[dict[str, Any]], Any],
        *,
        exact: bool = True,
        prefilter: bool = True,
    ) -> None:
        """A filter: ``extract`` gives the event's value (or values); one of ``values`` must match it."""
        if not values:
            return
        plain = frozenset(v for v in values if not (exact and "*" in v))
        globs = [g for v in values if exact and (g := _glob(v))]
        if exact:

            def pred(ev: dict[str, Any]) -> bool:
                got = extract(ev)
                for item in got if isinstance(got, list) else (got,):
                    if item in plain or any(g.match(item) for g in globs):
                        return True
                return False
        else:

            def pred(ev: dict[str, Any]) -> bool:
                got = extract(ev)
                return any(v in got for v in values)

        self._pred_list.append(pred)
        if prefilter:
            needles = [_needle(v, exact) for v in values]
            if all(needles):
                self._groups.append(tuple(dict.fromkeys(n for n in needles if n)))

    def _add_users(self, users: tuple[str, ...]) -> None:
        """The authenticated user or the impersonated one."""
        if not users:
            return

        def both_users(ev: dict[str, Any]) -> list[str]:
            out = [effective_user(ev)]
            u = ev.get("user")
            if isinstance(u, dict) and _str(u.get("username")) not in out:
                out.append(_str(u.get("username")))
            return out

        self._add(users, both_users)

    def _add_resources(self, resources: tuple[str, ...]) -> None:
        """``pods`` (any subresource) or ``pods/exec``."""
        plain_res = tuple(r for r in resources if "/" not in r)
        full_res = tuple(r for r in resources if "/" in r)
        if plain_res and full_res:
            self._add(resources, lambda e: [_str(_ref(e).get("resource")), _resource(e)], prefilter=False)
            self._groups.append(
                tuple(dict.fromkeys(n for r in resources if (n := _needle(r.split("/")[0], True))))
            )
        elif full_res:
            self._add(full_res, _resource, prefilter=False)
            for i in (0, 1):
                ns_ = [_needle(r.split("/", 1)[i], True) for r in full_res]
                if all(ns_):
                    self._groups.append(tuple(dict.fromkeys(n for n in ns_ if n)))
        else:
            self._add(plain_res, lambda e: _str(_ref(e).get("resource")))

    def _add_api_groups(self, api_groups: tuple[str, ...]) -> None:
        if not api_groups:
            return
        wanted = tuple("core" if g in ("core", '""', "") else g for g in api_groups)

        def groups_of(ev: dict[str, Any]) -> list[str]:  # none without an object: it matches no group
            group = _api_group(ev)
            return [] if group is None else [group]

        self._add(wanted, groups_of, prefilter="core" not in wanted)

    def _add_codes(self, codes: tuple[str, ...]) -> None:
        """Codes such as ``403`` or classes such as ``4xx``."""
        if not codes:
            return
        exact_codes, classes = set(), set()
        for c in codes:
            c = str(c).strip().lower()
            if len(c) == 3 and c.isdecimal():  # what \d{3} matched
                exact_codes.add(c)
            elif len(c) == 3 and c[0] in "12345" and c[1:] == "xx":
                classes.add(c[0])
            else:
                raise QueryError(f"not a response code: {c!r}; use a code such as 403 or a class such as 4xx")

        def code_pred(ev: dict[str, Any]) -> bool:
            code = _code(ev)
            return code in exact_codes or (
                len(code) == 3 and code[0] in classes and code[1] in _DIGITS and code[2] in _DIGITS
            )

        self._pred_list.append(code_pred)
        # a line whose response code matches holds `"code":403` (or the class's first digit); a line
        # without a code (RequestReceived) cannot be the matching representative of its request
        codes_rx = "|".join(sorted(exact_codes) + [f"{d}\\d\\d" for d in sorted(classes)])
        self.code_pattern = _LazyPattern(f'"code": ?"?(?:{codes_rx})(?!\\d)'.encode())
        self.code_test = _code_test(exact_codes, classes, self.code_pattern)
        # what every line the pattern matches holds: "code": with or without a space and a quote, then the
        # code or the class's first digit
        alts = sorted(exact_codes) + sorted(classes)
        self.code_literals = tuple(
            f'"code":{sp}{q}{a}'.encode() for a in alts for sp in ("", " ") for q in ("", '"')
        )

    def _add_time_range(self, since: str | datetime | None, until: str | datetime | None) -> None:
        """``since`` inclusive, ``until`` exclusive, compared with ``requestReceivedTimestamp``."""
        if since is None and until is None:
            return

        def key(value: str | datetime | None) -> str | None:
            if value is None:
                return None
            from datetime import UTC

            return time_key(parse_time(value).astimezone(UTC).isoformat().replace("+00:00", "Z"))

        lo, hi = key(since), key(until)

        def time_pred(ev: dict[str, Any]) -> bool:
            ts = ev.get("requestReceivedTimestamp") or ev.get("stageTimestamp")
            if not isinstance(ts, str):
                return False
            k = time_key(ts)
            return (lo is None or k >= lo) and (hi is None or k < hi)

        self._pred_list.append(time_pred)

    @property
    def is_empty(self) -> bool:
        return not self._preds

    def match(self, ev: dict[str, Any]) -> bool:
        for pred in self._preds:  # noqa: SIM110 - a loop, not all(generator): this runs once per request
            if not pred(ev):
                return False
        return True

    def prefilter(self) -> Prefilter | None:
        """A raw-line test that rejects only lines whose request cannot match (or None): the most selective
        needle (a group of one, the longest) is searched inline, the other groups by a function."""
        groups = sorted(self.needle_groups, key=lambda g: (len(g), -min(len(n) for n in g)))
        code, code_test = self.code_pattern, self.code_test
        if not groups and code is None:
            return None
        if groups and len(groups[0]) == 1:
            needle, rest = groups[0][0], groups[1:]
        else:
            needle, rest = None, groups
        groups = tuple(rest)
        if code is not None and code_test is not None:  # the code, then the needle groups
            if not rest:
                return Prefilter(needle, code_test, code, self.code_literals)
            rest_test = self._groups_test(rest)
            return Prefilter(
                needle, lambda line: code_test(line) and rest_test(line), code, self.code_literals, groups
            )
        if not rest:
            return Prefilter(needle, None)
        return Prefilter(needle, self._groups_test(rest), None, (), groups)

    @staticmethod
    def _groups_test(rest: list[tuple[bytes, ...]]) -> Callable[[bytes], bool]:
        if len(rest) == 1 and len(rest[0]) == 1:
            ((only,),) = rest
            return lambda line: only in line

        def every_group(line: bytes) -> bool:  # loops, not generators: this runs on every line
            for group in rest:
                for n in group:
                    if n in line:
                        break
                else:
                    return False
            return True

        return every_group


def compile_query(query: Query | None) -> CompiledQuery:
    return CompiledQuery(query or Query())


# ---- requests once ----------------------------------------------------------------------------------------


class Deduplicator:
    """Turns stage lines into requests (see the module doc). Memory: at most ``max_pending`` open requests
    and a window of ``done_window`` recently finished audit IDs (to drop repeated lines)."""

    def __init__(self, stats: ReadStats | None = None, max_pending: int = 5000, done_window: int = 32768):
        self.stats = stats or ReadStats()
        self.max_pending = max_pending
        self.done_window = done_window
        self._pending: OrderedDict[str, Entry] = OrderedDict()
        self._done: OrderedDict[str, None] = OrderedDict()

    def _finish(self, aid: str) -> None:
        self._done[aid] = None
        if len(self._done) > self.done_window:
            self._done.popitem(last=False)

    def feed(self, entry: Entry) -> Iterator[Entry]:
        ev = entry.event
        aid = ev.get("auditID")
        if not isinstance(aid, str) or not aid:
            yield entry
            return
        if aid in self._done:
            self.stats.duplicates += 1
            return
        stage = ev.get("stage")
        if not isinstance(stage, str):  # a mangled line (`"stage": []`) counts as a stage-less, final event
            stage = None
        if stage in FINAL_STAGES or stage is None or (stage == "ResponseStarted" and _code(ev) == "401"):
            if self._pending.pop(aid, None) is not None:
                self.stats.duplicates += 1
            self._finish(aid)
            yield entry
            return
        if aid in self._pending:
            self.stats.duplicates += 1
        self._pending[aid] = entry  # a later stage replaces an earlier one
        self._pending.move_to_end(aid)
        if len(self._pending) > self.max_pending:
            old_aid, old = self._pending.popitem(last=False)
            self._finish(old_aid)
            yield old

    def flush(self) -> Iterator[Entry]:
        while self._pending:
            aid, entry = self._pending.popitem(last=False)
            self._finish(aid)
            yield entry

    def run(self, entries: Iterable[Entry]) -> Iterator[Entry]:
        feed = self.feed
        for entry in entries:
            yield from feed(entry)
        yield from self.flush()


# ---- putting it together ----------------------------------------------------------------------------------

Series = list[tuple[str, LineSource]]  # one log series: (name, stream) oldest file first


def _series_entries(series: Series, stats: ReadStats, prefilter: Prefilter | None) -> Iterator[Entry]:
    for name, source in series:
        yield from iter_entries(source, name, stats, prefilter)


def _entry_time(entry: Entry) -> str:
    ts = entry.event.get("stageTimestamp") or entry.event.get("requestReceivedTimestamp")
    return time_key(ts) if isinstance(ts, str) else ""


def read_events(
    series: list[Series],
    stats: ReadStats,
    query: Query | CompiledQuery | None = None,
    *,
    dedupe: bool = True,
    fast: bool = True,
) -> Iterator[Entry]:
    """Events of all series in time order (a series is read in file order; several series are merged by
    ``stageTimestamp``), counted once per request when ``dedupe``, that match ``query``."""
    compiled = query if isinstance(query, CompiledQuery) else compile_query(query)
    if len([s for s in series if s]) == 1:  # one series: the fused loop (same results, less work per line)
        from grader.engines.audit_log.scan import RequestScanner

        scanner = RequestScanner(stats, compiled, dedupe=dedupe, fast=fast)
        for name, source in next(s for s in series if s):
            yield from scanner.scan(source, name)
        yield from scanner.flush()
        return
    prefilter = compiled.prefilter() if fast else None
    streams = [_series_entries(s, stats, prefilter) for s in series if s]
    merged: Iterable[Entry] = streams[0] if len(streams) == 1 else heapq.merge(*streams, key=_entry_time)
    if dedupe:
        merged = Deduplicator(stats).run(merged)
    match = compiled.match
    empty = compiled.is_empty
    for entry in merged:
        if dedupe:
            stats.requests += 1
        if empty or match(entry.event):
            yield entry


def field_getter(name: str) -> Callable[[dict[str, Any]], Any]:
    """The function reading field ``name`` (a canonical name) of an event, fast for the usual shapes."""
    return _FAST_FIELDS.get(name) or FIELDS[name][0]


def count_into(entries: Iterable[Entry], names: list[str], tally: dict[tuple[str, ...], int]) -> None:
    """Adds to ``tally`` how many events per value of ``names`` (canonical names, none a list field), keys
    in the order first met."""
    extractors = [field_getter(n) for n in names]
    get = tally.get
    if len(extractors) == 1:
        (one,) = extractors
        for entry in entries:
            key = (one(entry.event),)
            tally[key] = get(key, 0) + 1
    else:
        for entry in entries:
            ev = entry.event
            key = tuple([ex(ev) for ex in extractors])
            tally[key] = get(key, 0) + 1


def count_by(entries: Iterable[Entry], fields: list[str]) -> Counter[tuple[str, ...]]:
    """How many events per value (tuple of values for several fields); list fields count each value."""
    names = [field_name(f) for f in fields]
    counts: Counter[tuple[str, ...]] = Counter()
    if all(n not in _LIST_FIELDS for n in names):  # one value per field: a plain loop
        tally: dict[tuple[str, ...], int] = {}
        count_into(entries, names, tally)
        counts.update(tally)
        return counts
    extractors = [field_getter(n) for n in names]
    for entry in entries:
        keys: list[tuple[str, ...]] = [()]
        for ex in extractors:
            got = ex(entry.event)
            vals = got if isinstance(got, list) else [got]
            keys = [k + (v,) for k in keys for v in (vals or [""])]
        for k in keys:
            counts[k] += 1
    return counts
