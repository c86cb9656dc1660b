"""The fast paths of the audit log engine give the answers of the plain pipeline (read every line, count each
request once, filter): the fused single-series loop, the split over two processes, and the input bounds."""

from __future__ import annotations

import gzip
import io
import json
import re
import time
from collections import Counter
from typing import Any

import pytest
from click.testing import CliRunner

from grader.cli.audit_log import query_cmd
from grader.engines.audit_log import (
    Deduplicator,
    Query,
    ReadStats,
    compile_query,
    count_by,
    iter_entries,
    parallel,
    read_events,
)
from grader.labgen import lab7
from grader.labs import get_lab
from grader.variants import values_for


@pytest.fixture(scope="module")
def lab7_log() -> bytes:
    """A realistic log: kubelet watches, controllers, humans, failed logins, several stage lines per
    request."""
    lab = get_lab("lab7")
    events = lab7.build_log(lab7.plan("fast", values_for(lab, "fast")))
    return lab7.join_lines(events[:9000])  # the first 9,000 lines hold every kind of request


def reference(data: bytes, query: Query | None, dedupe: bool = True) -> list[bytes]:
    """The plain pipeline, one stage after another, every line parsed."""
    stats = ReadStats()
    compiled = compile_query(query)
    entries = iter_entries(io.BytesIO(data), "a", stats)
    if dedupe:
        entries = Deduplicator(stats).run(entries)
    return [e.raw or json.dumps(e.event).encode() for e in entries if compiled.match(e.event)]


def fused(data: bytes, query: Query | None, dedupe: bool = True, fast: bool = True) -> list[bytes]:
    stats = ReadStats()
    return [
        e.raw or json.dumps(e.event).encode()
        for e in read_events([[("a", io.BytesIO(data))]], stats, query, dedupe=dedupe, fast=fast)
    ]


QUERIES = [
    None,
    Query(resources=("secrets",), verbs=("get", "list", "watch")),
    Query(codes=("401",)),
    Query(users=("system:node:*",), verbs=("get", "watch")),
    Query(api_groups=("core",)),
    Query(since="2024-01-01T00:00:00Z", until="2100-01-01T00:00:00Z", codes=("2xx",)),
]


@pytest.mark.usefixtures("scanner_backend")
@pytest.mark.parametrize("query", QUERIES, ids=range(len(QUERIES)))
def test_fused_loop_gives_the_plain_pipelines_events_in_order(lab7_log, query):
    want = reference(lab7_log, query)
    assert want, "the query selects something"
    assert fused(lab7_log, query) == want
    assert fused(lab7_log, query, fast=False) == want


def test_fused_loop_keeps_the_rules_for_odd_request_lines():
    def line(aid, stage, code=None, name="s"):
        e = {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": "Metadata",
            "auditID": aid,
            "stage": stage,
            "verb": "get",
            "user": {"username": "u"},
            "objectRef": {"resource": "secrets", "name": name},
            "requestReceivedTimestamp": "2024-05-01T10:00:00Z",
            "stageTimestamp": "2024-05-01T10:00:00Z",
        }
        if code:
            e["responseStatus"] = {"code": code}
        return json.dumps(e, separators=(",", ":")).encode()

    cut = line("c", "RequestReceived")[:-1] + b",,}"  # corrupt after its auditID, never completed
    data = (
        b"\n".join(
            [
                line("a", "RequestReceived"),
                line("a", "ResponseComplete", 200),  # the usual pair
                line("w", "RequestReceived"),
                line("w", "ResponseStarted", 200),  # a watch still open at the end
                line("f", "ResponseStarted", 401),  # a failed login: final on its own
                line("a", "RequestReceived"),  # a repeated line of a finished request
                line("", "RequestReceived", name="no-id"),  # no auditID: a request of its own
                cut,
                b"",
                b"",
                line('x\\"y', "RequestReceived"),
                line('x\\"y', "ResponseComplete", 200),  # an escaped auditID
            ]
        )
        + b"\n"
    )
    assert fused(data, None) == reference(data, None)
    stats = ReadStats()
    list(read_events([[("a", io.BytesIO(data))]], stats))
    assert stats.problems == Counter({"not-json": 1})  # the cut line was used (never completed) and reported


def test_fused_loop_evicts_like_the_deduplicator_when_too_many_requests_are_open():
    lines = [
        json.dumps(
            {
                "kind": "Event",
                "apiVersion": "audit.k8s.io/v1",
                "auditID": f"p{i}",
                "stage": "RequestReceived",
                "verb": "get",
                "requestReceivedTimestamp": "2024-05-01T10:00:00Z",
            },
            separators=(",", ":"),
        )
        for i in range(5200)
    ]
    data = ("\n".join(lines) + "\n").encode()
    assert fused(data, None) == reference(data, None)
    assert len(fused(data, None)) == 5200


def mangled(data: bytes, seed: int) -> bytes:
    """A log with what real ones hold now and then: lost, repeated and reordered lines, a line cut short, a
    failed login in the middle of a watch (401 at ResponseStarted), a Panic."""
    import random

    rng = random.Random(seed)
    out: list[bytes] = []
    for line in data.split(b"\n")[:-1]:
        r = rng.random()
        if r < 0.002:
            continue
        if r < 0.004:
            out += [line, line]
        elif r < 0.006 and out:
            out.insert(len(out) - rng.randrange(1, 60), line)
        elif r < 0.0065:
            out.append(line[: len(line) // 2] + b"}")
        elif r < 0.008:
            out.append(line.replace(b'"code":200', b'"code":401'))
        elif r < 0.009:
            out.append(line.replace(b'"stage":"ResponseComplete"', b'"stage":"Panic"'))
        elif r < 0.012:  # impersonation, and a user name written with an escape
            out.append(
                line.replace(
                    b',"sourceIPs"', b',"impersonatedUser":{"username":"imp"},"sourceIPs"', 1
                ).replace(b'"username":"system:', b'"username":"system\\u003a', 1)
            )
        else:
            out.append(line)
    return b"\n".join(out) + b"\n"


def record_bulk(m: pytest.MonkeyPatch, taken: list[bool]) -> None:
    """Wrap RequestScanner._bulk (through ``m``) to append to ``taken`` whether it read each region it was
    offered at once."""
    from grader.engines.audit_log import scan

    bulk = scan.RequestScanner._bulk

    def counting(self, region, name):
        got = bulk(self, region, name)
        taken.append(got is not None)
        return got

    m.setattr(scan.RequestScanner, "_bulk", counting)


@pytest.mark.usefixtures("scanner_backend")
@pytest.mark.parametrize("seed", [1, 2])
def test_blocks_read_at_once_give_the_one_line_answers(lab7_log, monkeypatch, seed):
    """Requests that begin and end inside a block are de-duplicated at once (only their final lines
    parsed): on a mangled log, the same events, counts and report as reading line by line, and the shortcut
    is taken."""
    from grader.engines.audit_log import scan

    data = mangled(lab7_log, seed)
    taken: list[bool] = []

    def read(query, fast=True):
        stats = ReadStats()
        got = [(e.raw, e.line) for e in read_events([[("a", io.BytesIO(data))]], stats, query, fast=fast)]
        return got, stats.report(), (stats.events, stats.requests, stats.duplicates, stats.problems)

    for query in QUERIES:
        with monkeypatch.context() as m:
            m.setattr(scan.RequestScanner, "_bulk", lambda self, region, name: None)
            line_by_line = read(query)
        with monkeypatch.context() as m:
            record_bulk(m, taken)
            at_once = read(query)
        assert at_once == line_by_line and at_once[0]
    assert taken.count(True) > 10  # regions were read at once

    def users_counted(log: bytes, user_only: bool) -> tuple[Counter, list[str], int]:
        stats = ReadStats()
        scanner = scan.RequestScanner(stats, compile_query(None), user_only=user_only)
        entries = list(scanner.scan(io.BytesIO(log), "a")) + list(scanner.flush())
        unparsed = sum(e.event.keys() == {"user"} for e in entries)
        return count_by(entries, ["user"]), stats.report(), unparsed

    for log in (data, lab7_log):  # --count-by user of every request: final lines read for their user only
        plain, light = users_counted(log, False), users_counted(log, True)
        assert light[:2] == plain[:2] and "system:anonymous" in {k[0] for k in plain[0]} and plain[2] == 0
    assert "imp" in {k[0] for k in users_counted(data, False)[0]}
    assert light[2] > 1000


# ---- two processes ---------------------------------------------------------------------------------------


def split_run(data: bytes, tmp_path, fields=None, fmt="jsonl", monkeypatch=None, query=None):
    path = tmp_path / "audit.log"
    path.write_bytes(data)
    args = [str(path), "-q", "-f", fmt] + (["--count-by", ",".join(fields)] if fields else []) + (query or [])
    with monkeypatch.context() as m:
        m.setattr(parallel, "PARALLEL_MIN_BYTES", 1)
        return CliRunner().invoke(query_cmd, args)


@pytest.mark.parametrize("fmt", ["jsonl", "json", "table"])
def test_two_processes_print_what_one_pass_prints(lab7_log, tmp_path, monkeypatch, fmt):
    path = tmp_path / "one.log"
    path.write_bytes(lab7_log)
    one = CliRunner().invoke(query_cmd, [str(path), "-q", "-f", fmt])
    two = split_run(lab7_log, tmp_path, fmt=fmt, monkeypatch=monkeypatch)
    assert one.exit_code == two.exit_code == 0
    assert two.stdout == one.stdout and len(one.stdout) > 1000
    if fmt == "jsonl":  # final lines copied unparsed (nothing to filter): still the plain pipeline's answer
        assert one.stdout_bytes == b"".join(line + b"\n" for line in reference(lab7_log, None))


@pytest.mark.usefixtures("scanner_backend")
def test_two_processes_count_what_one_pass_counts(lab7_log, tmp_path, monkeypatch):
    path = tmp_path / "one.log"
    path.write_bytes(lab7_log)
    for fields in (["user"], ["apigroup", "code"], ["sourceip", "verb"]):
        one = CliRunner().invoke(query_cmd, [str(path), "-q", "-f", "json", "--count-by", ",".join(fields)])
        two = split_run(lab7_log, tmp_path, fields=fields, fmt="json", monkeypatch=monkeypatch)
        assert json.loads(two.stdout) == json.loads(one.stdout)


def odd_users(data: bytes) -> bytes:
    """``data`` with the users of some final lines made unusual: null, a number, no name, an impersonated
    user with an empty name or with one."""
    users = [
        b',"user":null',
        b',"user":{"username":5}',
        b',"user":{}',
        b',"user":{"username":"u"},"impersonatedUser":{"username":""}',
        b',"user":{"username":"u"},"impersonatedUser":{"username":"boss"}',
        b',"user":{"username":"u"},"impersonatedUser":null',
    ]
    lines = data.split(b"\n")
    for n, i in enumerate(range(7, len(lines), 97)):
        if b'"stage":"ResponseComplete"' in lines[i]:
            lines[i] = re.sub(rb',"user":\{[^{}]*\}', users[n % len(users)], lines[i], count=1)
    return b"\n".join(lines)


@pytest.mark.usefixtures("scanner_backend")
@pytest.mark.parametrize("odd", [False, True])
def test_counts_by_user_added_in_place_keep_the_order_of_ties(lab7_log, tmp_path, monkeypatch, odd):
    """--count-by user: the requests read at once are counted straight into the answer; rows, counts and
    the order of equal counts are those of the plain pipeline (--no-fast), in one process and in two, also
    with unusual users (null, a number, impersonation)."""
    data = odd_users(lab7_log) if odd else lab7_log
    path = tmp_path / "one.log"
    path.write_bytes(data)
    args = [str(path), "-q", "-f", "json", "--count-by", "user"]
    plain = CliRunner().invoke(query_cmd, args + ["--no-fast"])
    one = CliRunner().invoke(query_cmd, args)
    two = split_run(data, tmp_path, fields=["user"], fmt="json", monkeypatch=monkeypatch)
    rows = json.loads(plain.stdout)
    counts = [r["count"] for r in rows]
    assert len(counts) > len(set(counts)) > 3  # ties whose order is checked
    assert json.loads(one.stdout) == rows and json.loads(two.stdout) == rows
    if odd:
        assert {"boss", "5", ""} <= {r["user"] for r in rows}


def watch_line(aid: str, stage: str, user: str, name: str | None = None) -> str:
    """A kube-apiserver line of a watch (of pods ``name`` when given), as kube-apiserver writes it."""
    event: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": aid,
        "stage": stage,
        "verb": "watch",
        "user": {"username": user},
    }
    if name is not None:
        event["objectRef"] = {"resource": "pods", "name": name}
    event["responseStatus"] = {"code": 200}
    event["requestReceivedTimestamp"] = event["stageTimestamp"] = "2024-05-01T10:00:00Z"
    return json.dumps(event, separators=(",", ":"))


def test_requests_open_across_the_middle_are_joined_or_read_again(tmp_path, monkeypatch):
    """A watch opened in the first half and closed in the second counts once; a request the first half
    finished and the second half repeats makes the parent read the second half itself (same answer as one
    pass)."""

    def line(aid: str, stage: str, name: str) -> str:
        return watch_line(aid, stage, "u", name)

    first, second = (
        [line(f"f{i}", s, "fill") for i in range(k, k + 400) for s in ("RequestReceived", "ResponseComplete")]
        for k in (0, 400)
    )
    joins = []
    monkeypatch.setattr(
        parallel, "_joinable", lambda *a, real=parallel._joinable: joins.append(real(*a)) or joins[-1]
    )
    for tail in (
        [line("w", "ResponseStarted", "late"), line("w", "ResponseComplete", "late")],  # joined
        [line("done", "ResponseComplete", "again")],  # repeated after it finished: read again
        [],
    ):  # still open at the end: counted at its latest stage
        lines = (
            [line("w", "RequestReceived", "w"), line("done", "ResponseComplete", "d")]
            + first
            + second[:20]
            + tail
            + second[20:]
        )
        data = ("\n".join(lines) + "\n").encode()
        path = tmp_path / "one.log"
        path.write_bytes(data)
        one = CliRunner().invoke(query_cmd, [str(path), "-q", "-f", "jsonl"])
        two = split_run(data, tmp_path, monkeypatch=monkeypatch)
        assert two.stdout == one.stdout
        assert one.stdout.count('"auditID":"w"') == 1
    assert joins == [True, False, True]


def test_requests_started_before_the_middle_and_ended_late_after_it_count_once(tmp_path, monkeypatch):
    """The worker also records the requests it meets without their start once its window of finished
    requests is full, in blocks read at once: the parent drops them from its open ones (else it would
    count them again at the end)."""
    from grader.engines.audit_log import proof, reader, scan

    monkeypatch.setitem(scan.RequestScanner.__init__.__kwdefaults__, "done_window", 64)
    monkeypatch.setattr(reader, "CHUNK_BYTES", 16 * 1024)  # many blocks in each half
    monkeypatch.setattr(proof, "BUILD_AFTER", 0)
    taken = tmp_path / "worker-read-blocks-at-once"  # written by the forked worker
    bulk = scan.RequestScanner._bulk

    def counting(self, *args):
        got = bulk(self, *args)
        if got is not None and self.record and len(self.done) >= 64:
            with taken.open("a") as f:
                f.write("x")
        return got

    monkeypatch.setattr(scan.RequestScanner, "_bulk", counting)

    def line(aid: str, stage: str) -> str:
        return watch_line(aid, stage, f"user-{aid}")

    fill = [line(f"f{i}", s) for i in range(800) for s in ("RequestReceived", "ResponseComplete")]
    late = [f"w{i}" for i in range(5)]
    lines = (
        fill[:700]
        + [line(a, "RequestReceived") for a in late]  # open across the middle
        + fill[700:1400]
        + [line(a, s) for a in late for s in ("ResponseStarted", "ResponseComplete")]  # far past the window
        + fill[1400:]
    )
    data = ("\n".join(lines) + "\n").encode()
    path = tmp_path / "one.log"
    path.write_bytes(data)
    for fmt, fields in (("jsonl", None), ("json", ["user"])):
        args = [str(path), "-q", "-f", fmt] + (["--count-by", "user"] if fields else [])
        one = CliRunner().invoke(query_cmd, args)
        two = split_run(data, tmp_path, fields=fields, fmt=fmt, monkeypatch=monkeypatch)
        assert two.stdout == one.stdout
        assert one.stdout.count('"user-w0"') == 1
    assert len(taken.read_text()) > 5  # the worker read blocks at once with its window full


# ---- bounds ----------------------------------------------------------------------------------------------


def test_a_gzip_bomb_of_newlines_stops_quickly_with_a_reason(tmp_path):
    bomb = tmp_path / "audit.log.gz"
    bomb.write_bytes(gzip.compress(b"\n" * (100 * 1024 * 1024), compresslevel=9))
    assert bomb.stat().st_size < 200_000
    start = time.monotonic()
    r = CliRunner().invoke(query_cmd, [str(bomb)])
    assert time.monotonic() - start < 10
    assert r.exit_code == 0 and "expanding more than 200 times" in r.stderr


def test_excerpts_only_from_files_that_hold_audit_events(tmp_path):
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$very-secret-hash:19000:0:99999:7:::\n")
    r = CliRunner().invoke(query_cmd, [str(secret)])
    assert "very-secret" not in r.output and "not JSON" in r.stderr
    log = tmp_path / "audit.log"
    good = json.dumps(
        {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "auditID": "1",
            "stage": "ResponseComplete",
            "verb": "get",
            "requestReceivedTimestamp": "2024-05-01T10:00:00Z",
        }
    )
    log.write_text(good + "\nhello broken line\n")
    r = CliRunner().invoke(query_cmd, [str(log)])
    assert "'hello broken line'" in r.stderr  # an audit log's bad line is shown to help fix it


def test_api_group_core_is_the_legacy_group_not_requests_without_an_object(tmp_path):
    def line(aid, ref, uri):
        e = {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "auditID": aid,
            "stage": "ResponseComplete",
            "verb": "get",
            "requestURI": uri,
            "user": {"username": "u"},
            "responseStatus": {"code": 200},
            "requestReceivedTimestamp": "2024-05-01T10:00:00Z",
        }
        if ref is not None:
            e["objectRef"] = ref
        return json.dumps(e)

    log = tmp_path / "audit.log"
    log.write_text(
        "\n".join(
            [
                line("1", {"resource": "pods", "apiVersion": "v1"}, "/api/v1/pods"),
                line("2", {"resource": "deployments", "apiGroup": "apps"}, "/apis/apps/v1/deployments"),
                line("3", None, "/healthz"),
                line("4", None, "/apis"),
            ]
        )
        + "\n"
    )
    r = CliRunner().invoke(query_cmd, [str(log), "--api-group", "core", "-f", "jsonl", "-q"])
    assert [json.loads(x)["auditID"] for x in r.stdout.splitlines()] == ["1"]
    r = CliRunner().invoke(query_cmd, [str(log), "--count-by", "apigroup", "-f", "json", "-q"])
    assert {d["apigroup"]: d["count"] for d in json.loads(r.stdout)} == {"core": 1, "apps": 1, "": 2}
    r = CliRunner().invoke(query_cmd, [str(log), "--count-by", "apigroup", "-q"])
    assert "2        -" in r.stdout and "core" in r.stdout
    stats = ReadStats()
    got = count_by(read_events([[("a", io.BytesIO(log.read_bytes()))]], stats), ["apigroup"])
    assert got[("",)] == 2


@pytest.mark.usefixtures("scanner_backend")
def test_code_prefilter_keeps_every_spelling_of_the_code():
    """`--code` skips lines without the code unparsed; a code written with a space or as a string (hand-made
    lines) still matches as it does when every line is parsed."""
    base = (
        '{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"%s","stage":"ResponseComplete","verb":"get",'
        '"responseStatus":{"code":%s},"requestReceivedTimestamp":"2024-05-01T10:00:00Z"}'
    )
    spellings = ["403", " 403", '"403"', ' "403"', "4030", "404", "200", '"4ab"', '"40"', "403.0", '"٤٠٣"']
    data = "\n".join(base % (i, c) for i, c in enumerate(spellings))
    data = (data + "\n").encode()
    for codes in (("403",), ("4xx",), ("2xx", "404"), ("٤٠٣",), ("٤٠٣", "4xx")):
        assert fused(data, Query(codes=codes)) == fused(data, Query(codes=codes), fast=False), codes
    assert len(fused(data, Query(codes=("403",)))) == 4
    assert len(fused(data, Query(codes=("4xx",)))) == 5  # not "4ab": a class is three digits


def test_code_test_finds_what_the_code_pattern_finds():
    """The prefilter's code test (no re) says what the regex it replaces says, on lines with the code
    spelled in every way and cut anywhere."""
    import random
    import re

    from grader.engines.audit_log.query import compile_query

    rng = random.Random(3)
    pieces = ['"code":', '"code": ', '"code":"', '"code": "', "4", "0", "3", "1", "x", '"', " ", "}", "9"]
    lines = [b"".join(rng.choice(pieces).encode() for _ in range(rng.randint(1, 8))) for _ in range(5000)]
    for codes in (("403",), ("4xx",), ("2xx", "404"), ("401", "5xx", "4xx")):
        compiled = compile_query(Query(codes=codes))
        regex = re.compile(compiled.code_pattern.source)
        assert [compiled.code_test(x) for x in lines] == [regex.search(x) is not None for x in lines], codes


@pytest.mark.usefixtures("scanner_backend")
def test_values_json_escapes_are_not_searched_for_as_they_are():
    """A filter value that JSON writes escaped (a newline, a quote, a backslash) is not searched for as raw
    bytes: its events are found as when every line is parsed (a regex's `$` once let a trailing newline
    through as a plain needle)."""
    base = (
        '{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"%s","stage":"ResponseComplete","verb":"get",'
        '"user":{"username":%s},"objectRef":{"resource":%s,"namespace":"ns"},'
        '"responseStatus":{"code":200},"requestReceivedTimestamp":"2024-05-01T10:00:00Z"}'
    )
    names = ["alice\n", 'a"b', "c\\d", "plain", "tab\there"]
    data = "\n".join(base % (i, json.dumps(n), json.dumps(n)) for i, n in enumerate(names * 20)) + "\n"
    for name in names:
        for q in (Query(users=(name,)), Query(resources=(name,)), Query(users=(name + "*",))):
            got = fused(data.encode(), q)
            assert got == fused(data.encode(), q, fast=False) and len(got) == 20, (name, q)


@pytest.mark.usefixtures("scanner_backend")
def test_lines_skipped_by_searching_blocks_keep_their_numbers(lab7_log):
    """With a needle, whole blocks of apiserver lines are searched and only the lines holding it are split
    out: events keep the line numbers, and a bad line among them is still reported."""
    data = lab7_log.replace(b"\n", b"\nnot json at all\n", 1)  # the second line is bad: blocks not uniform
    head, last = lab7_log.rsplit(b"\n", 1)
    late = head + b"\nnot json at all\n" + last  # the bad line after the last match: known only at the end
    for blob in (lab7_log, data, late):
        for q in (Query(resources=("secrets",)), Query(codes=("4xx",)), Query(users=("system:node:*",))):
            fast = [(e.line, e.raw) for e in read_events([[("a", io.BytesIO(blob))]], ReadStats(), q)]
            slow = [
                (e.line, e.raw) for e in read_events([[("a", io.BytesIO(blob))]], ReadStats(), q, fast=False)
            ]
            assert fast == slow and fast, q
    stats = ReadStats()
    list(read_events([[("a", io.BytesIO(data))]], stats, Query(resources=("secrets",))))
    assert stats.problems == Counter({"not-json": 1}) and stats.samples[0].line == 2
    assert stats.lines == lab7_log.count(b"\n") + 1 and stats.prefiltered > 0


# ---- lines used unparsed ---------------------------------------------------------------------------------

# a final line kept starting with {"kind":"Event" and ending with "}", but no longer what kube-apiserver
# writes: the full decoder refuses it or reads other values than the bytes at their usual place say
_HOSTILE = [
    lambda line: line[:-1] + b',"user":{"username":"mallory"}}',  # a key twice: the last one wins
    lambda line: line.replace(b'"username":"', b'"username":"\xc3\xa9', 1),  # valid UTF-8: read alike
    lambda line: line.replace(b'"username":"', b'"username":"a\\"b', 1),  # an escaped quote in the name
    lambda line: line.replace(b',"user":{', b',"user":{"uid":"1",', 1),  # keys in another order
    # no user, but a nested object named so later in the line
    lambda line: re.sub(rb',"user":\{[^{}]*\}', b',"user":{}', line, count=1).replace(
        b'"responseStatus":{', b'"responseStatus":{"details":{"a":1,"user":{"username":"evil"}},', 1
    ),
    # a number past a double's range: the full decoder reads it as infinity (jq too), the proof skips it
    lambda line: line.replace(b'"code":', b'"code":1e999,"c":', 1),
    # the lines above are events still; those below are not, or not the same request
    lambda line: line.replace(b',"sourceIPs"', b',garbage,"sourceIPs"', 1),  # not JSON
    lambda line: line[:-1] + b',"kind":"Other"}',
    lambda line: line[:-1] + b',"stage":"RequestReceived"}',
    lambda line: line[:-1] + b',"apiVersion":"audit.k8s.io/v1beta1"}',
    lambda line: line[:-1] + b',"auditID":"other"}',
    lambda line: line.replace(b'"verb":"', b'"verb":"\\q', 1),  # a bad escape
    lambda line: line.replace(b'"verb":"', b'"verb":"\t', 1),  # a raw control character
    lambda line: line.replace(b'"verb":"', b'"verb":"\\ud800', 1),  # a lone surrogate
    lambda line: line.replace(b'"verb":"', b'"verb":"\xff', 1),  # not UTF-8
    lambda line: line.replace(b'"verb":"', b'"verb":"\x00', 1),  # binary
    lambda line: line + b"x}",  # garbage after the object
    lambda line: line.replace(b'"code":', b'"code":123456789012345678901234567890,"c":', 1),
]


def hostile(data: bytes, seed: int, lone: bool, kinds: int = len(_HOSTILE)) -> bytes:
    """``data`` with some final and ResponseStarted lines changed by each of the first ``kinds`` of
    :data:`_HOSTILE`; ``lone``: their requests' other lines dropped, so the changed line alone decides what
    is counted."""
    import random

    rng = random.Random(seed)
    lines = data.split(b"\n")[:-1]
    finals = [i for i, line in enumerate(lines) if b'"stage":"ResponseComplete"' in line]
    started = [i for i, line in enumerate(lines) if b'"stage":"ResponseStarted"' in line]
    assert len(started) > 100
    changed = {}
    for i in rng.sample(finals, 6 * kinds) + rng.sample(started, 3 * kinds):
        changed[i] = _HOSTILE[len(changed) % kinds](lines[i])
    if lone:
        ids = {json.loads(lines[i])["auditID"] for i in changed}
        lines = [
            line if i in changed or not any(f'"auditID":"{a}"'.encode() in line for a in ids) else b""
            for i, line in enumerate(lines)
        ]
    return b"\n".join(changed.get(i, line) for i, line in enumerate(lines) if changed.get(i, line)) + b"\n"


_EVENTS_STILL = 6  # the first kinds of _HOSTILE


@pytest.mark.usefixtures("scanner_backend")
@pytest.mark.parametrize(
    ("lone", "kinds"), [(False, len(_HOSTILE)), (True, len(_HOSTILE)), (False, _EVENTS_STILL)]
)
def test_lines_used_unparsed_are_proven_first(lab7_log, monkeypatch, lone, kinds):
    """Final lines printed as they are (jsonl of every request) or read for their user only (--count-by user)
    are used unparsed only when proven to be what kube-apiserver writes: garbled lines, keys written twice,
    bad escapes give the answers, counts and report of the full decoder."""
    from grader.engines.audit_log import proof, scan

    monkeypatch.setattr(proof, "BUILD_AFTER", 0)  # prove from the first line on
    data = hostile(lab7_log, 5, lone, kinds)
    taken: list[bool] = []
    record_bulk(monkeypatch, taken)

    def full() -> tuple[list[bytes], Counter, list[str], tuple[int, int, int]]:
        stats = ReadStats()
        entries = list(Deduplicator(stats).run(iter_entries(io.BytesIO(data), "a", stats)))
        stats.requests = len(entries)
        counted = count_by(entries, ["user"])
        return [e.raw for e in entries], counted, stats.report(), (stats.events, stats.requests, stats.lines)

    def fast(
        tally: bool = False, **mode: bool
    ) -> tuple[list[bytes], Counter, list[str], tuple[int, int, int]]:
        stats = ReadStats()
        scanner = scan.RequestScanner(stats, compile_query(None), **mode)
        if tally:  # as `--count-by user` runs it: blocks read at once add to the counts directly
            scanner.tally = Counter()
        entries = list(scanner.scan(io.BytesIO(data), "a")) + list(scanner.flush())
        counted = count_by(entries, ["user"]) if mode.get("user_only") else Counter()
        if tally:
            counted = scanner.tally + counted
        return [e.raw for e in entries], counted, stats.report(), (stats.events, stats.requests, stats.lines)

    raws, users, report, numbers = full()
    if kinds > _EVENTS_STILL:
        assert len(report) > 5 and numbers[0] < numbers[2]  # lines were refused
    assert fast() == (raws, Counter(), report, numbers)
    assert fast(raw_only=True) == (raws, Counter(), report, numbers)
    light = fast(user_only=True)
    assert (light[1], light[2], light[3]) == (users, report, numbers)
    tallied = fast(tally=True, user_only=True)
    assert (tallied[1], tallied[2], tallied[3]) == (users, report, numbers)
    assert "mallory" in {k[0] for k in users} and light[1]["mallory",] == users["mallory",]
    if kinds == _EVENTS_STILL:
        assert taken.count(True) > 10  # blocks were read at once
        assert "evil" not in {k[0] for k in users} and users["",] > 5


def _event_line(draw: Any) -> bytes:
    """A kube-apiserver-like line with arbitrary text in its values, then maybe damaged."""
    from hypothesis import strategies as st

    # mostly ASCII, with quotes, backslashes and control characters among it
    text = st.text(st.characters(max_codepoint=127), max_size=12) | st.text(max_size=6)
    user = draw(st.fixed_dictionaries({}, optional={"username": text, "uid": text, "groups": st.lists(text)}))
    event = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": draw(text),
        "stage": draw(st.sampled_from(["RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"])),
        "requestURI": draw(text),
        "verb": draw(text),
        "user": user,
    }
    if draw(st.booleans()):
        event["impersonatedUser"] = {"username": draw(text)}
    if draw(st.booleans()):
        nested = st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text,
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
            max_leaves=6,
        )
        status = draw(st.dictionaries(text, nested, max_size=3))
        if draw(st.booleans()):
            status["code"] = draw(
                st.sampled_from([401, "401", 401.0, 4.01e2, 403, "4010", None, [401], {"code": 1}])
            )
        event["responseStatus"] = status
    event["requestReceivedTimestamp"] = draw(text)
    event["stageTimestamp"] = draw(text)
    line = json.dumps(event, separators=(",", ":"), ensure_ascii=draw(st.booleans())).encode()
    damage = draw(st.sampled_from(["none", "none", "none", "insert", "cut", "append"]))
    if damage != "none":
        at = draw(st.integers(0, len(line)))
        piece = draw(st.binary(max_size=6) | st.sampled_from([b'"', b"\\", b",", b'"user":{}', b"}", b"{"]))
        if damage == "insert":
            line = line[:at] + piece + line[at:]
        elif damage == "cut":
            line = line[:at] + line[at + len(piece) :]
        else:
            line = (
                line[:-1]
                + b","
                + json.dumps(draw(text)).encode()
                + b":"
                + json.dumps(draw(text)).encode()
                + b"}"
            )
    return line.replace(b"\n", b"")


@pytest.mark.usefixtures("scanner_backend")
@pytest.mark.slow
def test_a_proven_line_reads_as_the_full_decoder_reads_it():
    """Whatever the text and damage: a line the proof accepts is read by the full decoder (not refused) as an
    audit event whose auditID, stage, user and code are the ones its head holds."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from grader.engines.audit_log import proof
    from grader.engines.audit_log.query import effective_user
    from grader.engines.audit_log.reader import json_loads

    accepted = []

    @settings(max_examples=1000, deadline=None)
    @given(st.composite(_event_line)())
    def check(line: bytes) -> None:
        found = proof.heads(line, 1)
        if found is None:
            return
        accepted.append(line)
        ev = json_loads(line)
        aids, stages, names, failed = found
        assert ev["kind"] == "Event" and ev["apiVersion"] == "audit.k8s.io/v1"
        assert "requestReceivedTimestamp" in ev
        assert (ev["auditID"], ev["stage"]) == (aids[0], stages[0])
        assert names == [effective_user(ev)]
        status = ev.get("responseStatus")
        code = status.get("code") if isinstance(status, dict) else None
        assert (failed == [0]) == (ev["stage"] == "ResponseStarted" and str(code) == "401")

    check()
    assert len(accepted) > 60  # undamaged lines are proven


# ---- the decoder of small queries ------------------------------------------------------------------------

_DECODER_CASES = [
    b'{"a":1,"a":2}',  # a key twice: the last one wins with both
    b"-0",
    b"-0.0",
    b"[1.0,2.5e-3,1E5,1e99,-1e-99,0.1e1,1.5E+20]",
    b"1e400",  # overflow: orjson refuses, json would give inf
    b'{"code":1e999}',
    b'{"code": -2.5E+308}',
    b"123456789012345678901234567890",  # past 64 bits: orjson gives a float, json an int
    b"18446744073709551615",
    b"18446744073709551616",
    b'{"n":-9223372036854775809}',
    b'"\\ud800"',  # a lone surrogate: orjson refuses it
    b'"\\ud83d\\ude00"',
    b'"\\udc00\\ud800"',
    b'"\\u0026\\u003c\\u00e9\\u0000"',
    b"NaN",
    b'{"a":NaN}',
    b'{"a":-Infinity}',
    b"[Infinity]",
    b' {"a" : 1 } \n',
    b'{"a":"\x1f"}',  # a raw control character
    b'{"a":"\\q"}',
    b"[" * 2000 + b"]" * 2000,  # deeper than json's recursion
    b"[" * 900 + b"]" * 900,
    b'{"a":1}x',
    b"",
    b"{",
    b'{"a":"\xc3\xa9"}',  # not ASCII: orjson reads it
    b'{"a":"\xff"}',
    b"\xef\xbb\xbf{}",
    b'{"uid":"5e123456-0123-4567-89ab-cdef01234567","ts":"2026-12-02T04:47:57.123456Z"}',
    b'{"a":"\xe2\x82\xac\xf0\x9f\x98\x80","b":"\xed\xa0\x80"}',  # a surrogate written in UTF-8
    b'{"a":"\xc0\xaf"}',  # an overlong form
    b"[0.1234567890123456789,1234567890123456.5,1e-400,-0e5,9007199254740993]",
    b"[999999999999999999,-999999999999999999,9223372036854775808,-9223372036854775808]",
    b'{"a":1,}',
    b"[01]",
    b"[1.]",
    b'"\\u00e9\\ud83d"',
]


def _orjson_reading(case: bytes) -> tuple[str, str]:
    """orjson's value or refusal, but a number past a double's range: read as json reads it (infinity), when
    nothing else in the line is refused (NaN, a lone surrogate)."""
    import orjson

    try:
        return ("value", repr(orjson.loads(case)))
    except orjson.JSONDecodeError as refused:
        if "number is infinity" not in str(refused):
            return ("refused", "")

    def no_constants(name: str) -> None:
        raise ValueError(name)

    try:
        value = json.loads(case.decode(), parse_constant=no_constants)
        orjson.dumps(value)
    except (ValueError, TypeError, RecursionError):
        return ("refused", "")
    return ("value", repr(value))


def test_a_number_out_of_range_is_read_as_infinity_unless_the_line_is_refused_otherwise():
    from grader.engines.audit_log.reader import JSON_ERRORS, json_loads

    assert json_loads(b'{"code":1e999,"n":[-2.5E+308]}') == {"code": float("inf"), "n": [float("-inf")]}
    lone, nan, binary = b'{"a":1e400,"b":"\\ud800"}', b'{"a":1e400,"b":NaN}', b'{"a":1e400,"b":"\xff"}'
    for refused in (lone, nan, binary, b"[1e400"):
        with pytest.raises(JSON_ERRORS):
            json_loads(refused)


@pytest.mark.usefixtures("scanner_backend")
def test_lines_read_before_orjson_is_imported_read_as_orjson_reads_them(lab7_log, monkeypatch):
    """A small query reads lines with the standard library until one needs orjson: each line gives the
    value orjson gives (same repr: -0.0, big numbers) or is refused as orjson refuses it (a number past a
    double's range aside: infinity, see _orjson_reading)."""
    from grader.engines.audit_log import reader

    line = lab7_log.split(b"\n", 3)[2]
    cases = _DECODER_CASES + [change(line) for change in _HOSTILE] + [line]
    light_taken = 0
    for case in cases:
        monkeypatch.setattr(reader, "_orjson_loads", None)
        monkeypatch.setattr(reader, "_stdlib_left", 1)
        try:
            got = ("value", repr(reader.json_loads(case)))
        except reader.JSON_ERRORS:
            got = ("refused", "")
        light_taken += reader._orjson_loads is None
        assert got == _orjson_reading(case), case[:80]
    assert light_taken >= len(cases) // 2  # the standard library read most of them


def test_counts_written_without_orjson_are_orjsons_bytes(monkeypatch):
    import sys

    import orjson

    from grader.audit_query import _dumps_counts

    items = [
        {"user": 'a"b\\c\n\t\x01\x1f\x7f', "namespace": "é ü 中 \u2028", "count": 3},
        {"user": "", "namespace": "-", "count": 123456789},
    ]
    monkeypatch.delitem(sys.modules, "orjson")
    assert _dumps_counts(items) == orjson.dumps(items)
    assert [_dumps_counts(i) for i in items] == [orjson.dumps(i) for i in items]
