"""`cks audit query`: filter, de-duplicate and count kube-apiserver audit events (study tool).

The engine (grader.engines.audit_log) is imported inside the command, so `--help` stays fast.
"""

from __future__ import annotations

import sys
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

import click

from grader.text import plural

QUERY_HELP = """Filter and count audit events in LOG files (JSON lines, as kube-apiserver writes them).

\b
LOG may be a file, a gzip file (rotated backups with --audit-log-compress), a directory (every file in
it) or - for standard input. Rotated files are read oldest first: audit-<timestamp>.log(.gz) backups,
then audit.log; files of different apiservers are merged by time. A request is counted once (its stage
lines share an auditID; see --no-dedupe). Lines that are not audit events are skipped, counted and
reported on stderr; reading never stops at a bad line.

\b
Filters (repeat an option or use commas for OR; different options AND):
  --user       the user the request acted as, or the authenticated user (exact; * is a wildcard)
  --resource   secrets | pods/exec (a plain resource matches all its subresources)
  --code       403 or a class such as 4xx        --user-agent  a substring
  --since/--until  RFC 3339 times (UTC if no offset), compared with requestReceivedTimestamp

\b
Examples:
  # who read Secrets in namespace prod, and how often
  cks audit query /var/log/kubernetes/audit/ --resource secrets --namespace prod \\
      --verb get,list,watch --count-by user
  # everything one ServiceAccount did, oldest first (exact name: ...:app does not match ...:app-v2)
  cks audit query audit.log --user system:serviceaccount:prod:app
  # which Secrets it read, as JSON lines for jq
  cks audit query audit.log -u system:serviceaccount:prod:app -r secrets -f jsonl | jq -r .objectRef.name
  # denied requests per user and resource, in one time window
  cks audit query audit.log --code 403 --count-by user,resource --since 2024-05-01T10:00:00Z
  # failed logins (401) by source IP
  cks audit query audit.log --code 401 --count-by sourceip

\b
Fields for --count-by: user, authuser, group, verb, resource, subresource, namespace, name, apigroup,
code, sourceip, useragent, stage, level, decision, uri, hour, minute (join several with commas).
Exit codes: 0 done (even with skipped lines), 2 usage error, 3 a LOG could not be read.
"""

_TABLE = [("TIME", 27), ("USER", 44), ("VERB", 8), ("RESOURCE", 22), ("NAMESPACE", 16), ("NAME", 32),
          ("CODE", 5), ("SOURCE-IP", 0)]


def _split(values: tuple[str, ...]) -> tuple[str, ...]:
    out: list[str] = []
    for v in values:
        out.extend(p.strip() for p in v.split(",") if p.strip() or v.strip() == "")
    return tuple(out)


def _expand(logs: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """File names to read (directories expanded) and the problems found."""
    names, problems = [], []
    for log in logs:
        if log == "-":
            names.append("-")
            continue
        p = Path(log)
        if p.is_dir():
            files = sorted(str(f) for f in p.iterdir() if f.is_file() and not f.name.startswith("."))
            if not files:
                problems.append(f"{log}: directory has no files")
            names.extend(files)
        elif p.is_file():
            names.append(str(p))
        elif p.exists():
            problems.append(f"{log}: not a regular file")
        else:
            problems.append(f"{log}: no such file")
    return names, problems


@click.command("query", help=QUERY_HELP, context_settings={"help_option_names": ["-h", "--help"],
                                                             "max_content_width": 100})
@click.argument("logs", nargs=-1, required=True, metavar="LOG...")
@click.option("--user", "-u", "users", multiple=True, metavar="NAME", help="User (or impersonated user).")
@click.option("--group", "-g", "groups", multiple=True, metavar="GROUP", help="One of the user's groups.")
@click.option("--verb", "verbs", multiple=True, metavar="VERB", help="get, list, watch, create, ...")
@click.option("--resource", "-r", "resources", multiple=True, metavar="RES", help="secrets, pods/exec, ...")
@click.option("--subresource", "subresources", multiple=True, metavar="SUB", help="exec, log, status, ...")
@click.option("--namespace", "-n", "namespaces", multiple=True, metavar="NS", help="Object namespace.")
@click.option("--name", "names", multiple=True, metavar="NAME", help="Object name.")
@click.option("--api-group", "api_groups", multiple=True, metavar="GROUP", help="API group; core = \"\".")
@click.option("--code", "codes", multiple=True, metavar="CODE", help="Response code: 403, 4xx.")
@click.option("--source-ip", "source_ips", multiple=True, metavar="IP", help="One of the source IPs.")
@click.option("--user-agent", "user_agents", multiple=True, metavar="TEXT", help="Substring of the user agent.")
@click.option("--stage", "stages", multiple=True, metavar="STAGE", help="Event stage (best with --no-dedupe).")
@click.option("--since", metavar="TIME", help="Requests received at or after TIME.")
@click.option("--until", metavar="TIME", help="Requests received before TIME.")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json", "jsonl"]), default="table",
              show_default=True, help="Output format (jsonl prints the original lines).")
@click.option("--count-by", "count_by", metavar="FIELD[,FIELD]", help="Print counts per value instead of events.")
@click.option("--dedupe/--no-dedupe", default=True, show_default=True,
              help="Count each request once (by auditID), or print every stage line.")
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="Stop after N results.")
@click.option("--quiet", "-q", is_flag=True, help="Do not report skipped lines on stderr.")
@click.option("--no-fast", is_flag=True, hidden=True, help="Parse every line (disable the byte prefilter).")
def query_cmd(logs: tuple[str, ...], users: tuple[str, ...], groups: tuple[str, ...], verbs: tuple[str, ...],
              resources: tuple[str, ...], subresources: tuple[str, ...], namespaces: tuple[str, ...],
              names: tuple[str, ...], api_groups: tuple[str, ...], codes: tuple[str, ...],
              source_ips: tuple[str, ...], user_agents: tuple[str, ...], stages: tuple[str, ...],
              since: str | None, until: str | None, fmt: str, count_by: str | None, dedupe: bool,
              limit: int | None, quiet: bool, no_fast: bool) -> None:
    from grader.engines.audit_log import (
        Query,
        QueryError,
        ReadStats,
        compile_query,
        field_name,
        order_log_names,
    )

    try:
        query = Query(users=_split(users), groups=_split(groups), verbs=_split(verbs),
                      resources=_split(resources), subresources=_split(subresources),
                      namespaces=_split(namespaces), names=_split(names), api_groups=_split(api_groups),
                      codes=_split(codes), source_ips=_split(source_ips), user_agents=tuple(user_agents),
                      stages=_split(stages), since=since, until=until)
        compiled = compile_query(query)
        fields = [field_name(f) for f in count_by.split(",")] if count_by is not None else None
    except QueryError as exc:
        raise click.UsageError(str(exc)) from None

    paths, problems = _expand(logs)
    for p in problems:
        click.echo(f"cks audit query: {p}", err=True)
    if not paths:
        sys.exit(3)
    stats = ReadStats()
    out = sys.stdout.buffer
    try:
        with ExitStack() as stack:
            series = []
            for group in order_log_names([p for p in paths if p != "-"]):
                series.append([(name, stack.enter_context(open(name, "rb"))) for name in group])
            if "-" in paths:
                series.append([("<stdin>", sys.stdin.buffer)])
            from grader.engines.audit_log import read_events

            entries = read_events(series, stats, compiled, dedupe=dedupe, fast=not no_fast)
            if limit is not None and fields is None:
                import itertools

                entries = itertools.islice(entries, limit)
            if fields is not None:
                _print_counts(out, entries, fields, fmt, limit)
            else:
                _print_events(out, entries, fmt)
            out.flush()
    except BrokenPipeError:  # `| head` closed the pipe: stop quietly
        sys.stderr.close()
        sys.exit(0)
    except OSError as exc:
        click.echo(f"cks audit query: cannot read: {exc}", err=True)
        sys.exit(3)
    if not quiet:
        _report(stats, dedupe)
    if problems or stats.problems.get("unreadable"):
        sys.exit(3)


def _report(stats: Any, dedupe: bool) -> None:
    lines = stats.report()
    if stats.lines and not stats.events:
        lines.insert(0, f"no audit events found in {plural(stats.lines, 'line')}: is this a kube-apiserver audit log "
                        "(--audit-log-format=json)?")
    for line in lines:
        click.echo(f"cks audit query: {line}", err=True)


def _dumps(obj: Any) -> bytes:
    try:
        import orjson

        return orjson.dumps(obj)
    except ImportError:  # pragma: no cover
        import json

        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _print_events(out: IO[bytes], entries: Any, fmt: str) -> None:
    if fmt == "jsonl":
        for e in entries:
            out.write((_dumps(e.event) if e.raw is None else e.raw) + b"\n")
        return
    if fmt == "json":
        out.write(b"[")
        first = True
        for e in entries:
            out.write((b"\n" if first else b",\n") + _dumps(e.event))
            first = False
        out.write(b"\n]\n" if not first else b"]\n")
        return
    from grader.engines.audit_log import FIELDS

    get = {k: FIELDS[k][0] for k in ("time", "user", "verb", "resource", "namespace", "name", "code", "sourceip")}
    out.write(_row([h for h, _ in _TABLE]))
    n = 0
    for e in entries:
        ev = e.event
        ips = get["sourceip"](ev)
        out.write(_row([get["time"](ev), get["user"](ev) or "(unauthenticated)", get["verb"](ev),
                        get["resource"](ev), get["namespace"](ev), get["name"](ev), get["code"](ev),
                        ",".join(ips)]))
        n += 1
    if n == 0:
        out.write(b"(no matching events)\n")


def _row(cells: list[str]) -> bytes:
    parts = [c.ljust(w) if w else c for c, (_, w) in zip(cells, _TABLE, strict=True)]
    return (" ".join(parts).rstrip() + "\n").encode("utf-8", "replace")


def _print_counts(out: IO[bytes], entries: Any, fields: list[str], fmt: str, limit: int | None) -> None:
    from grader.engines.audit_log import count_by

    rows = count_by(entries, fields).most_common(limit)
    if fmt in ("json", "jsonl"):
        items = [{**dict(zip(fields, key, strict=True)), "count": n} for key, n in rows]
        if fmt == "json":
            out.write(_dumps(items) + b"\n")
        else:
            for item in items:
                out.write(_dumps(item) + b"\n")
        return
    widths = [max([len(f)] + [len(k[i]) for k, _ in rows]) for i, f in enumerate(fields)]
    out.write(("COUNT    " + "  ".join(f.upper().ljust(w) for f, w in zip(fields, widths, strict=True))).rstrip()
              .encode() + b"\n")
    for key, n in rows:
        line = f"{n:<8} " + "  ".join((v or "-").ljust(w) for v, w in zip(key, widths, strict=True))
        out.write(line.rstrip().encode("utf-8", "replace") + b"\n")
    if not rows:
        out.write(b"(no matching events)\n")
