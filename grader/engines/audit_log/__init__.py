"""Audit log engine: stream kube-apiserver audit events (JSON lines, rotated, gzip), count each request once,
filter and summarise. No file or network I/O here: callers hand in binary streams or iterables of lines.

    from grader.engines.audit_log import Query, ReadStats, order_log_names, read_events
    stats = ReadStats()
    series = [[(name, open(name, "rb")) for name in names] for names in order_log_names(paths)]
    for entry in read_events(series, stats, Query(users=("system:serviceaccount:ci:deployer",))):
        print(entry.event["verb"], entry.event.get("objectRef"))
    print("\\n".join(stats.report()))
"""

from grader.engines.audit_log import parallel
from grader.engines.audit_log.query import (
    FIELDS,
    READ_VERBS,
    CompiledQuery,
    Deduplicator,
    Query,
    QueryError,
    compile_query,
    count_by,
    effective_user,
    field_name,
    field_values,
    parse_time,
    read_events,
    time_key,
)
from grader.engines.audit_log.reader import (
    PROBLEM_KINDS,
    Entry,
    Prefilter,
    Problem,
    ReadStats,
    iter_entries,
    open_stream,
)
from grader.engines.audit_log.rotation import classify, order_log_names

__all__ = [
    "FIELDS",
    "PROBLEM_KINDS",
    "READ_VERBS",
    "CompiledQuery",
    "Deduplicator",
    "Entry",
    "Prefilter",
    "Problem",
    "Query",
    "QueryError",
    "ReadStats",
    "classify",
    "compile_query",
    "count_by",
    "effective_user",
    "field_name",
    "field_values",
    "iter_entries",
    "open_stream",
    "order_log_names",
    "parallel",
    "parse_time",
    "read_events",
    "time_key",
]
