"""The body of `cks audit query`, without click: `python -m grader audit query ...` with plain options is
read here before the click CLI is imported (:func:`fast_main`), so a query of a small log does not wait for
the command line's start-up. Anything unusual (--help, an unknown or malformed option, a usage error) goes
to the click command (grader.cli.audit_log), which gives the usual messages.
"""

from __future__ import annotations

import os
import sys

from grader.text import plural

TYPE_CHECKING = False  # typing is not imported at run time (start-up counts)
if TYPE_CHECKING:
    from typing import IO, Any

_TABLE = [
    ("TIME", 27),
    ("USER", 44),
    ("VERB", 8),
    ("RESOURCE", 22),
    ("NAMESPACE", 16),
    ("NAME", 32),
    ("CODE", 5),
    ("SOURCE-IP", 0),
]


def _split(values: tuple[str, ...]) -> tuple[str, ...]:
    out: list[str] = []
    for v in values:
        out.extend(p.strip() for p in v.split(",") if p.strip() or v.strip() == "")
    return tuple(out)


def _expand(logs: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """File names to read (directories expanded) and the problems found. Names are written as pathlib
    writes them (``./a//b`` -> ``a/b``), without importing it (start-up counts)."""
    from grader.engines.audit_log.rotation import normal_path

    names, problems = [], []
    for log in logs:
        if log == "-":
            names.append("-")
            continue
        path = normal_path(log)  # "" is "." for pathlib
        if os.path.isdir(path):
            with os.scandir(path) as entries:
                files = sorted(
                    normal_path(f"{path}/{entry.name}")
                    for entry in entries
                    if entry.is_file() and not entry.name.startswith(".")
                )
            if not files:
                problems.append(f"{log}: directory has no files")
            names.extend(files)
        elif os.path.isfile(path):
            names.append(path)
        elif os.path.exists(path):
            problems.append(f"{log}: not a regular file")
        else:
            problems.append(f"{log}: no such file")
    return names, problems


class QueryParams:
    """The options of `cks audit query` (as click passes them: multiple options are tuples)."""

    def __init__(self, logs: tuple[str, ...] = (), **options: Any):
        self.logs = logs
        self.users: tuple[str, ...] = ()
        self.groups: tuple[str, ...] = ()
        self.verbs: tuple[str, ...] = ()
        self.resources: tuple[str, ...] = ()
        self.subresources: tuple[str, ...] = ()
        self.namespaces: tuple[str, ...] = ()
        self.names: tuple[str, ...] = ()
        self.api_groups: tuple[str, ...] = ()
        self.codes: tuple[str, ...] = ()
        self.source_ips: tuple[str, ...] = ()
        self.user_agents: tuple[str, ...] = ()
        self.stages: tuple[str, ...] = ()
        self.since: str | None = None
        self.until: str | None = None
        self.fmt = "table"
        self.count_by: str | None = None
        self.dedupe = True
        self.limit: int | None = None
        self.quiet = False
        self.no_fast = False
        for key, value in options.items():
            if not hasattr(self, key):
                raise TypeError(key)
            setattr(self, key, value)


# the options fast_main reads: name -> (attribute, multiple); flags apart
_VALUE_OPTIONS = {
    "--user": ("users", True),
    "-u": ("users", True),
    "--group": ("groups", True),
    "-g": ("groups", True),
    "--verb": ("verbs", True),
    "--resource": ("resources", True),
    "-r": ("resources", True),
    "--subresource": ("subresources", True),
    "--namespace": ("namespaces", True),
    "-n": ("namespaces", True),
    "--name": ("names", True),
    "--api-group": ("api_groups", True),
    "--code": ("codes", True),
    "--source-ip": ("source_ips", True),
    "--user-agent": ("user_agents", True),
    "--stage": ("stages", True),
    "--since": ("since", False),
    "--until": ("until", False),
    "--format": ("fmt", False),
    "-f": ("fmt", False),
    "--count-by": ("count_by", False),
    "--limit": ("limit", False),
}
_FLAGS = {
    "--dedupe": ("dedupe", True),
    "--no-dedupe": ("dedupe", False),
    "--quiet": ("quiet", True),
    "-q": ("quiet", True),
    "--no-fast": ("no_fast", True),
}


def parse_args(argv: list[str]) -> QueryParams | None:
    """The options of a plain command line, or None when click should read it (help, anything unusual)."""
    logs: list[str] = []
    multi: dict[str, list[str]] = {}
    single: dict[str, Any] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "-" or not arg.startswith("-"):
            logs.append(arg)
            continue
        name, eq, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if name in _FLAGS and not eq:
            key, flag = _FLAGS[name]
            single[key] = flag
            continue
        if name not in _VALUE_OPTIONS:
            return None  # --help, -qf, --, an unknown option: click's business
        if not eq:
            if i >= len(argv):
                return None
            value = argv[i]
            i += 1
        key, many = _VALUE_OPTIONS[name]
        if many:
            multi.setdefault(key, []).append(value)
        else:
            single[key] = value
    if not logs:
        return None
    if single.get("fmt", "table") not in ("table", "json", "jsonl"):
        return None
    if "limit" in single:
        text = single["limit"].strip()
        if not text.isdigit() or int(text) < 1:
            return None
        single["limit"] = int(text)
    return QueryParams(tuple(logs), **{k: tuple(v) for k, v in multi.items()}, **single)


def fast_main(argv: list[str]) -> None:
    """`cks audit query ARGV` when the command line is plain (exits), else returns for click to read it."""
    params = parse_args(argv)
    if params is None:
        return
    import _signal as signal  # the signal module's C half: the module itself imports enum (~5 ms of start)

    from grader.engines.audit_log import QueryError

    def leave(signum: int, _frame: Any) -> None:  # as the CLI does: unwind, so a worker process is killed
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, leave)
    try:
        code = run(params)
    except QueryError:
        return  # a usage error: click reports it (nothing was read or printed yet)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        code = 130
    sys.exit(code)


def _say(message: str) -> None:
    sys.stderr.write(f"cks audit query: {message}\n")


def _compile(p: QueryParams) -> Any:
    """The compiled filters of the options (QueryError for a bad value)."""
    from grader.engines.audit_log import Query, compile_query

    query = Query(
        users=_split(p.users),
        groups=_split(p.groups),
        verbs=_split(p.verbs),
        resources=_split(p.resources),
        subresources=_split(p.subresources),
        namespaces=_split(p.namespaces),
        names=_split(p.names),
        api_groups=_split(p.api_groups),
        codes=_split(p.codes),
        source_ips=_split(p.source_ips),
        user_agents=tuple(p.user_agents),
        stages=_split(p.stages),
        since=p.since,
        until=p.until,
    )
    return compile_query(query)


def run(p: QueryParams) -> int:
    """Run a query; the exit code. Raises QueryError (before reading anything) for a bad query."""
    from grader.engines.audit_log import ReadStats, field_name, order_log_names

    compiled = _compile(p)
    fields = [field_name(f) for f in p.count_by.split(",")] if p.count_by is not None else None
    paths, problems = _expand(p.logs)
    for problem in problems:
        _say(problem)
    if not paths:
        return 3
    stats = ReadStats()
    opened: list[Any] = []  # closed at the end (contextlib.ExitStack costs its import at start-up)
    try:
        # the log series to read (rotated files of one log in order), stdin last
        series: list[list[tuple[str, Any]]] = []
        for group in order_log_names([x for x in paths if x != "-"]):
            series.append([])
            for name in group:
                opened.append(open(name, "rb"))  # noqa: SIM115 - closed in finally
                series[-1].append((name, opened[-1]))
        if "-" in paths:
            series.append([("<stdin>", sys.stdin.buffer)])
        _query(series, stats, compiled, fields, p)
    except BrokenPipeError:  # `| head` closed the pipe: stop quietly
        sys.stderr.close()
        return 0
    except OSError as exc:
        _say(f"cannot read: {exc}")
        return 3
    finally:
        for f in opened:
            f.close()
    if not p.quiet:
        _report(stats, p.dedupe)
    if problems or stats.problems.get("unreadable"):
        return 3
    return 0


def _query(series: list[Any], stats: Any, compiled: Any, fields: list[str] | None, p: QueryParams) -> None:
    """Read the series and print the answer: counts, or the matching events as they come."""
    from grader.engines.audit_log import parallel

    out = sys.stdout.buffer
    fmt, limit = p.fmt, p.limit
    sink: Any
    if fields is not None:
        sink = _CountSink(fields)
        make_worker: Any = _CountSink.maker(fields)
    else:
        if fmt == "table":
            out.write(_row([h for h, _ in _TABLE]))
        elif fmt == "json":
            out.write(b"[")
        sink = _WriteSink(out, fmt)
        make_worker = _WriteSink.maker(fmt)
        if limit is not None:  # stops early: one pass
            make_worker = None
            sink.limit = limit
    parallel.run(
        series,
        stats,
        compiled,
        sink,
        make_worker,
        dedupe=p.dedupe,
        fast=not p.no_fast,
        raw_only=fields is None and fmt == "jsonl",
        user_only=fields == ["user"],
        raw_blocks=fields is None and fmt == "jsonl" and limit is None,  # _WriteSink writes RawLines whole
    )
    if fields is not None:
        _print_counts(out, sink.counts, fields, fmt, limit)
    else:
        sink.close()
    out.flush()


def _report(stats: Any, dedupe: bool) -> None:
    lines = stats.report()
    if stats.lines and not stats.events:
        lines.insert(
            0,
            f"no audit events found in {plural(stats.lines, 'line')}: is this a kube-apiserver audit log "
            "(--audit-log-format=json)?",
        )
    for line in lines:
        _say(line)


def _dumps_counts(obj: Any) -> bytes:
    """Counts (strings and integers only) as compact JSON: with orjson when a line needed it, else with the
    standard library, which writes such values byte for byte as orjson does (start-up counts)."""
    if "orjson" in sys.modules:
        return _dumps(obj)
    return _json_text(obj).encode("utf-8", "surrogatepass")


def _json_text(obj: Any) -> str:
    """``json.dumps(obj, separators=(",", ":"), ensure_ascii=False)`` for lists, dicts of strings, strings and
    integers, written with json's C string encoder (``_json``): json itself imports re (~8 ms of a query's
    start). json for anything else."""
    kind = type(obj)
    try:
        from _json import encode_basestring
    except ImportError:  # pragma: no cover - CPython has it
        kind = None
    if kind is str:
        return encode_basestring(obj)
    if kind is int:
        return int.__repr__(obj)
    if kind is list:
        return "[" + ",".join(map(_json_text, obj)) + "]"
    if kind is dict and all(type(k) is str for k in obj):
        return "{" + ",".join(encode_basestring(k) + ":" + _json_text(v) for k, v in obj.items()) + "}"
    import json

    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def _dumps(obj: Any) -> bytes:
    try:
        import orjson

        return orjson.dumps(obj)
    except ImportError:  # pragma: no cover
        import json

        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


class _WriteSink:
    """Matching events rendered as they come (the parallel reader's worker writes to a spool file)."""

    def __init__(self, out: IO[bytes], fmt: str, leading: bool = True):
        self.out, self.fmt = out, fmt
        self.count = 0  # events written (here and absorbed)
        self.leading = leading  # output starts here (the worker's JSON items always start with a comma)
        self.limit: int | None = None
        self.mark = 0
        if fmt == "table":
            from grader.engines.audit_log import FIELDS

            self.get = {
                k: FIELDS[k][0]
                for k in ("time", "user", "verb", "resource", "namespace", "name", "code", "sourceip")
            }

    @staticmethod
    def maker(fmt: str) -> Any:
        return lambda spool: _WriteSink(spool, fmt, leading=False)

    def feed(self, entries: Any) -> None:
        write, fmt = self.out.write, self.fmt
        if self.limit is not None:
            import itertools

            entries = itertools.islice(entries, max(0, self.limit - self.count))
        n = self.count
        if fmt == "jsonl":
            from grader.engines.audit_log.reader import RawLines

            for e in entries:
                if type(e) is RawLines:  # a block's requests at once (no --limit)
                    write(e.data)
                    n += e.count
                    continue
                write((_dumps(e.event) if e.raw is None else e.raw) + b"\n")
                n += 1
        elif fmt == "json":
            for e in entries:
                write((b"\n" if n == 0 and self.leading else b",\n") + _dumps(e.event))
                n += 1
        else:
            get = self.get
            for e in entries:
                ev = e.event
                write(
                    _row(
                        [
                            get["time"](ev),
                            get["user"](ev) or "(unauthenticated)",
                            get["verb"](ev),
                            get["resource"](ev),
                            get["namespace"](ev),
                            get["name"](ev),
                            get["code"](ev),
                            ",".join(get["sourceip"](ev)),
                        ]
                    )
                )
                n += 1
        self.count = n

    def take(self) -> tuple[int, int, int]:
        """(worker) the spool's byte range written since the last take, and how many events it holds."""
        self.out.flush()
        end = self.out.tell()
        summary = (self.mark, end, self.count)
        self.mark, self.count = end, 0
        return summary

    def absorb(self, summary: tuple[int, int, int], spool: Any) -> None:
        import os

        start, end, n = summary
        if not n:
            return
        if self.fmt == "json" and self.count == 0:  # the worker's first item starts the array here
            self.out.write(b"\n")
            start += 2
        fd = spool.fileno()
        while start < end:
            data = os.pread(fd, min(1 << 20, end - start), start)
            if not data:
                break
            self.out.write(data)
            start += len(data)
        self.count += n

    def close(self) -> None:
        if self.fmt == "json":
            self.out.write(b"\n]\n" if self.count else b"]\n")
        elif self.fmt == "table" and self.count == 0:
            self.out.write(b"(no matching events)\n")


class _CountSink:
    """Counts per value of the --count-by fields."""

    def __init__(self, fields: list[str]):
        from collections import Counter

        from grader.engines.audit_log import field_name

        self.fields = fields
        self.names = [field_name(f) for f in fields]
        self.counts: Any = Counter()  # one object throughout: the scanner may add to it (``tally``)
        # counts by user: the scanner adds the requests it reads at once here directly, in their order
        self.tally = self.counts if self.names == ["user"] else None

    @staticmethod
    def maker(fields: list[str]) -> Any:
        return lambda spool: _CountSink(fields)

    def feed(self, entries: Any) -> None:
        from grader.engines.audit_log import count_by
        from grader.engines.audit_log.query import count_into

        if self.tally is not None:  # counted in place: keys stay in the order first met
            count_into(entries, self.names, self.tally)
        else:
            self.counts.update(count_by(entries, self.fields))

    def take(self) -> Any:
        counts = dict(self.counts)  # a plain dict (marshal), in the order first met
        self.counts.clear()
        return counts

    def absorb(self, summary: Any, spool: Any) -> None:
        self.counts.update(summary)


def _row(cells: list[str]) -> bytes:
    parts = [c.ljust(w) if w else c for c, (_, w) in zip(cells, _TABLE, strict=True)]
    return (" ".join(parts).rstrip() + "\n").encode("utf-8", "replace")


def _print_counts(out: IO[bytes], counts: Any, fields: list[str], fmt: str, limit: int | None) -> None:
    rows = counts.most_common(limit)
    if fmt in ("json", "jsonl"):
        items = [{**dict(zip(fields, key, strict=True)), "count": n} for key, n in rows]
        if fmt == "json":
            out.write(_dumps_counts(items) + b"\n")
        else:
            for item in items:
                out.write(_dumps_counts(item) + b"\n")
        return
    widths = [max([len(f)] + [len(k[i]) for k, _ in rows]) for i, f in enumerate(fields)]
    out.write(
        ("COUNT    " + "  ".join(f.upper().ljust(w) for f, w in zip(fields, widths, strict=True)))
        .rstrip()
        .encode()
        + b"\n"
    )
    for key, n in rows:
        line = f"{n:<8} " + "  ".join((v or "-").ljust(w) for v, w in zip(key, widths, strict=True))
        out.write(line.rstrip().encode("utf-8", "replace") + b"\n")
    if not rows:
        out.write(b"(no matching events)\n")
