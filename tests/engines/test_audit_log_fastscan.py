"""The compiled scanner (grader/engines/audit_log/_fastscan.c) proves and reads exactly what its Python
versions do, refuses what it cannot read exactly, and is built from the checkout's source."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import random
import shutil
import sysconfig
from pathlib import Path

import pytest

from grader.engines.audit_log import ReadStats, fastscan, proof, read_events, reader
from grader.engines.audit_log.query import effective_user
from grader.engines.audit_log.reader import APISERVER_PREFIX, json_loads
from grader.engines.audit_log.scan import _needle_lines
from grader.labgen import lab7
from grader.labs import get_lab
from grader.variants import values_for

SOURCE = Path(__file__).parents[2] / "grader" / "engines" / "audit_log" / "_fastscan.c"

native = pytest.mark.skipif(
    fastscan.native is None, reason="the compiled scanner is not built here (no C compiler or Python headers)"
)


def _compiler() -> str | None:
    cc = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(cc)


def test_compiled_scanner_is_built_from_this_source():
    """Where the install could build it (a C compiler and Python.h), the module is there and was built from
    the source in the checkout: an edited .c without a rebuild would leave the old code running."""
    if os.environ.get("CKS_NO_EXTENSIONS") or os.environ.get("CKS_AUDIT_NATIVE") == "0":
        pytest.skip("the compiled scanner is turned off in this environment")
    if _compiler() is None or not (Path(sysconfig.get_paths()["include"]) / "Python.h").exists():
        pytest.skip("no C compiler or Python headers here: the kit runs on its Python versions")
    assert fastscan.native is not None, "the compiled scanner is missing: run `pip install -e .` again"
    built = fastscan.native.SOURCE_HASH  # type: ignore[attr-defined]
    assert built == hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16], (
        "the compiled scanner is older than _fastscan.c: run `pip install -e .` again"
    )


def event(**fields: str) -> bytes:
    """A kube-apiserver line; each keyword replaces (or with None drops) the raw JSON of one member."""
    members = {
        "kind": '"Event"',
        "apiVersion": '"audit.k8s.io/v1"',
        "level": '"Metadata"',
        "auditID": '"a1"',
        "stage": '"ResponseComplete"',
        "requestURI": '"/api/v1/pods"',
        "verb": '"list"',
        "user": '{"username":"alice","groups":["dev"]}',
        "responseStatus": '{"metadata":{},"code":200}',
        "requestReceivedTimestamp": '"2024-05-01T10:00:00.000000Z"',
    }
    members.update(fields)
    return ("{" + ",".join(f'"{k}":{v}' for k, v in members.items() if v is not None) + "}").encode()


# (line, what the compiled scanner reads: (auditID, stage, name, failed login) or None: refused)
ACCEPTED = [
    (event(), ("a1", "ResponseComplete", "alice", False)),
    (
        event(stage='"ResponseStarted"', responseStatus='{"code":401}'),
        ("a1", "ResponseStarted", "alice", True),
    ),
    (
        event(stage='"ResponseStarted"', responseStatus='{"code":"401"}'),
        ("a1", "ResponseStarted", "alice", True),
    ),
    (
        event(stage='"ResponseStarted"', responseStatus='{"code":401.0}'),
        ("a1", "ResponseStarted", "alice", False),
    ),
    (
        event(stage='"ResponseStarted"', responseStatus='{"code":4010}'),
        ("a1", "ResponseStarted", "alice", False),
    ),
    (
        event(stage='"ResponseComplete"', responseStatus='{"code":401}'),
        ("a1", "ResponseComplete", "alice", False),
    ),
    (event(stage='"ResponseStarted"', responseStatus="null"), ("a1", "ResponseStarted", "alice", False)),
    (
        event(responseStatus='{"code":401,"code":200}', stage='"ResponseStarted"'),
        ("a1", "ResponseStarted", "alice", False),
    ),
    (event(responseStatus=None), ("a1", "ResponseComplete", "alice", False)),
    # a key written twice: the last one wins, a whole object at a time
    (event(stage='"RequestReceived"')[:-1] + b',"stage":"Panic"}', ("a1", "Panic", "alice", False)),
    (event()[:-1] + b',"user":{"uid":"7"}}', ("a1", "ResponseComplete", "", False)),
    (event(user='{"username":"a","username":"b"}'), ("a1", "ResponseComplete", "b", False)),
    # the impersonated user when it has a name, else the authenticated one
    (event(impersonatedUser='{"username":"bob"}'), ("a1", "ResponseComplete", "bob", False)),
    (event(impersonatedUser='{"username":""}'), ("a1", "ResponseComplete", "alice", False)),
    (event(impersonatedUser="null"), ("a1", "ResponseComplete", "alice", False)),
    (event(impersonatedUser='{"username":null}'), ("a1", "ResponseComplete", "alice", False)),
    (event(user="null"), ("a1", "ResponseComplete", "", False)),
    (event(user="{}"), ("a1", "ResponseComplete", "", False)),
    (event(user='{"username":null}'), ("a1", "ResponseComplete", "", False)),
    (event(user=None), ("a1", "ResponseComplete", "", False)),
    # values that are only validated, whatever they hold
    (event(requestReceivedTimestamp="12"), ("a1", "ResponseComplete", "alice", False)),
    (
        event(verb='"\\u00e9\\ud83d\\ude00\\n\\"\\\\\\/\\b\\f\\r\\t"'),
        ("a1", "ResponseComplete", "alice", False),
    ),
    (event(verb='"é€😀\x7f"'), ("a1", "ResponseComplete", "alice", False)),
    (event(user='{"username":"jürgen"}'), ("a1", "ResponseComplete", "jürgen", False)),
    (event(auditID='"ü-1"'), ("ü-1", "ResponseComplete", "alice", False)),
    (
        event(verb='[1,-0,0.5,-1.5e+3,2E-2,1e999,true,false,null,{},[],{"a":[{}]}]'),
        ("a1", "ResponseComplete", "alice", False),
    ),
    (event(verb="[" * 150 + "]" * 150), ("a1", "ResponseComplete", "alice", False)),
    (b" \t" + event().replace(b",", b" ,\t") + b" \r", ("a1", "ResponseComplete", "alice", False)),
]

REFUSED = {
    # not strict JSON, or not what orjson reads
    "garbage after": event() + b"x",
    "a trailing comma": event()[:-1] + b",}",
    "a bad escape": event(verb='"\\q"'),
    "a short unicode escape": event(verb='"\\u12"'),
    "a lone high surrogate": event(verb='"\\ud800"'),
    "a lone low surrogate": event(verb='"\\udc00x"'),
    "a high surrogate then not a low one": event(verb='"\\ud800\\u0041"'),
    "a raw control character": event(verb='"a\tb"'),
    "a raw NUL": event(verb='"a\x00b"'),
    "bytes that are not UTF-8": event().replace(b'"list"', b'"\xff"'),
    "an overlong form": event().replace(b'"list"', b'"\xc0\xaf"'),
    "a surrogate in UTF-8": event().replace(b'"list"', b'"\xed\xa0\x80"'),
    "past U+10FFFF": event().replace(b'"list"', b'"\xf4\x90\x80\x80"'),
    "a cut UTF-8 sequence": event().replace(b'"list"', b'"\xe2\x82"'),
    "a leading zero": event(verb="01"),
    "a bare dot": event(verb="1."),
    "a leading dot": event(verb=".5"),
    "a plus sign": event(verb="+1"),
    "an empty exponent": event(verb="1e"),
    "a lone minus": event(verb="-"),
    "NaN": event(verb="NaN"),
    "a long number": event(verb="1" * 101),
    "a misspelt literal": event(verb="tru"),
    "a longer literal": event(verb="nulll"),
    "nesting too deep": event(verb="[" * 250 + "]" * 250),
    "an array": b"[" + event() + b"]",
    "empty": b"",
    "blank": b"   ",
    # JSON, but not an audit event read exactly
    "no kind": event(kind=None),
    "another kind": event(kind='"EventList"'),
    "another version": event(apiVersion='"audit.k8s.io/v1beta1"'),
    "no auditID": event(auditID=None),
    "an empty auditID": event(auditID='""'),
    "a numeric auditID": event(auditID="1"),
    "an escaped auditID": event(auditID='"a\\u0031"'),
    "no stage": event(stage=None),
    "an unknown stage": event(stage='"Done"'),
    "an escaped stage": event(stage='"Panic\\u0000"'),
    "no requestReceivedTimestamp": event(requestReceivedTimestamp=None),
    "a string responseStatus": event(responseStatus='"401"'),
    "an escaped code": event(stage='"ResponseStarted"', responseStatus='{"code":"4\\u00301"}'),
    "a string user": event(user='"alice"'),
    "a numeric user name": event(user='{"username":5}'),
    "an escaped user name": event(user='{"username":"a\\"b"}'),
    "an escaped key where keys are read": event(**{"st\\u0061ge": '"Panic"'}),
    "an escaped key in the user": event(user='{"user\\u006eame":"x"}'),
}


@native
@pytest.mark.parametrize(("line", "want"), ACCEPTED, ids=range(len(ACCEPTED)))
def test_what_the_scanner_reads_is_what_the_full_decoder_reads(line, want):
    aids, stages, names, failed = fastscan.native.heads(line, 1, True)  # type: ignore[attr-defined]
    assert (aids[0], stages[0], names[0], failed == [0]) == want
    ev = json_loads(line)  # the full decoder reads the line, to the same values
    status = ev.get("responseStatus")
    code = status.get("code") if isinstance(status, dict) else None
    assert (ev["auditID"], ev["stage"], effective_user(ev)) == want[:3]
    assert (ev["stage"] == "ResponseStarted" and str(code) == "401") == want[3]
    assert fastscan.native.heads(line, 1, False) == ([want[0]], [want[1]], None, failed)  # type: ignore[attr-defined]


@native
@pytest.mark.parametrize("line", REFUSED.values(), ids=REFUSED.keys())
def test_the_scanner_refuses_what_it_cannot_read_exactly(line):
    assert fastscan.native.heads(line, 1, True) is None  # type: ignore[attr-defined]
    good = event()
    block = b"\n".join([good, line, good])  # one such line refuses its whole block
    assert fastscan.native.heads(block, 3, True) is None  # type: ignore[attr-defined]


@native
def test_a_block_is_proven_only_with_the_count_of_lines_it_was_told():
    block = b"\n".join([event(auditID=f'"{i}"') for i in range(5)])
    assert fastscan.native.heads(block, 5, True)[0] == ["0", "1", "2", "3", "4"]  # type: ignore[attr-defined]
    for n in (4, 6):
        assert fastscan.native.heads(block, n, True) is None  # type: ignore[attr-defined]
    assert fastscan.native.heads(block + b"\n", 5, True) is None  # type: ignore[attr-defined]  # an empty line
    anyhow = fastscan.native.heads(block, -1, True, True)  # type: ignore[attr-defined]  # any count, and starts
    starts = memoryview(anyhow[4]).cast("n")
    assert [block[starts[i] : starts[i + 1] - 1] for i in range(5)] == block.split(b"\n") and len(starts) == 6
    assert anyhow[:4] == fastscan.native.heads(block, 5, True)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def lab7_lines() -> list[bytes]:
    lab = get_lab("lab7")
    events = lab7.build_log(lab7.plan("fast", values_for(lab, "fast")))
    return lab7.join_lines(events[:6000]).split(b"\n")[:-1]


@native
def test_the_scanner_and_msgspec_read_a_real_log_alike(lab7_lines, monkeypatch):
    block = b"\n".join(lab7_lines)
    n = len(lab7_lines)
    for users in (True, False):
        mine = proof.heads(block, n, users)
        with monkeypatch.context() as m:
            m.setattr(fastscan, "native", None)
            theirs = proof.heads(block, n, users)
        assert mine is not None and mine == theirs
        assert mine[3], "failed logins are in the log"


@native
def test_needle_search_finds_the_lines_the_python_search_finds(lab7_lines):
    rng = random.Random(4)
    for _ in range(40):
        lines = rng.sample(lab7_lines, rng.randint(1, 300))
        block = b"\n".join(lines)
        start = rng.randint(1, 10_000)
        needle = rng.choice([b"secrets", b'"code":401', b"system:node:", b"zzz-none", b'"verb":"watch"'])
        got = fastscan.native.needle_lines(block, start, (needle,), APISERVER_PREFIX)  # type: ignore[attr-defined]
        assert got == (_needle_lines(block, start, needle, None, len(lines)), len(lines))
        # several needles: each line once, in order
        many = (needle, b'"code":40', b"kube-system")
        pairs, n = fastscan.native.needle_lines(block, start, many, APISERVER_PREFIX)  # type: ignore[attr-defined]
        want = [(start + i, line) for i, line in enumerate(lines) if any(x in line for x in many)]
        assert (pairs, n) == (want, len(lines))
        # and a member of every group (the prefilter's other filters: verbs, resources, ...)
        groups = ((b'"get"', b'"list"'), (b"kube-system", b"default", b"secrets"))
        pairs, n = fastscan.native.needle_lines(block, start, many, APISERVER_PREFIX, groups)  # type: ignore[attr-defined]
        assert pairs == [(i, line) for i, line in want if all(any(x in line for x in g) for g in groups)]
    bad = b"\n".join([lab7_lines[0], b"not an event", lab7_lines[1]])
    assert fastscan.native.needle_lines(bad, 1, (b"x",), APISERVER_PREFIX) is None  # type: ignore[attr-defined]
    cut = b"\n".join([lab7_lines[0], lab7_lines[1] + b" x"])  # a line that does not end with "}"
    assert fastscan.native.needle_lines(cut, 1, (b"x",), APISERVER_PREFIX) is None  # type: ignore[attr-defined]
    assert fastscan.native.needle_lines(b"", 1, (b"x",), APISERVER_PREFIX) is None  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        fastscan.native.needle_lines(bad, 1, (b"x",), APISERVER_PREFIX, (("x",),))  # type: ignore[attr-defined]


class Trickle(io.RawIOBase):
    """A stream that hands over a few bytes per read, as a pipe may."""

    def __init__(self, data: bytes, seed: int):
        self.data, self.pos, self.rng = data, 0, random.Random(seed)

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        n = min(len(buf), self.rng.choice([1, 7, 300, 5000, 70_000]), len(self.data) - self.pos)
        buf[:n] = self.data[self.pos : self.pos + n]
        self.pos += n
        return n


@native
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_blocks_read_into_a_reused_buffer_hold_the_lines(lab7_lines, monkeypatch, seed):
    """Blocks read into one reused buffer and cut at its last newline give, with the compiled scanner, the
    events, numbers and report of the chunk reader (what gzip data goes through, slicing each read) with
    the Python versions, whatever the reads return: a trickle, a last line without its newline, an
    over-long line among them."""
    monkeypatch.setattr(reader, "CHUNK_BYTES", 4096)
    monkeypatch.setattr(reader, "MAX_LINE_BYTES", 3000)
    rng = random.Random(seed)
    lines = list(lab7_lines[:400])
    lines.insert(rng.randrange(len(lines)), b"x" * 9000)  # over-long: skipped with a word
    lines.insert(rng.randrange(len(lines)), b"not json")
    data = b"\n".join(lines) + rng.choice([b"", b"\n"])

    def read(stream: io.RawIOBase) -> tuple[list[tuple[int, bytes]], list[str], int]:
        stats = ReadStats()
        got = [(e.line, e.raw) for e in read_events([[("a", stream)]], stats)]
        return got, stats.report(), stats.lines

    mine = read(Trickle(data, seed))
    with monkeypatch.context() as m:
        m.setattr(fastscan, "native", None)
        theirs = read(Trickle(gzip.compress(data), seed))
    assert mine == theirs and len(mine[0]) > 100
    assert any("longer than" in r for r in mine[1]) and any(
        "not JSON" in r or "not-json" in r for r in mine[1]
    )
