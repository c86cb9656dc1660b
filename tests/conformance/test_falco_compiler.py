"""libsinsp compiler/evaluator conformance: the cases transcribed from filter_compiler.ut.cpp,
filter_transformer.ut.cpp, filter_op_*.ut.cpp and filterchecks/*.cpp.

Each upstream test runs on a synthetic event (described in cases.json ``eval_contexts``); the events below
are this project's own rendering of those descriptions in the engine's event format. Cases the engine does
not support are listed in SKIPPED with the reason, and reported as skips.
"""

from __future__ import annotations

import json

import pytest

from grader.engines.falco import CompileError, ParseError, compile_filter, event_from_mapping, parse
from grader.engines.falco.fields import FieldInfo
from tests.conftest import conformance_path

pytestmark = pytest.mark.conformance

DATA = json.loads(conformance_path("falco", "cases.json").read_text(encoding="utf-8"))
CASES = DATA["libs_compiler_and_eval"]

# Fields of libsinsp's test plugins ("sample" source): not syscall fields, so not in the engine's catalog.
SKIPPED_PREFIXES = {"sample.": "field of libsinsp's test plugin (not a syscall field)"}


def skip_reason(case: dict) -> str | None:
    for prefix, reason in SKIPPED_PREFIXES.items():
        if prefix in case["input"]:
            return reason
    return None


# ---------------------------------------------------------------- events per upstream test file


def _bad(text: str) -> str:
    """Text carrying invalid UTF-8 bytes (\\xff), as the engine represents it (surrogateescape)."""
    return text.encode("latin-1").decode("utf-8", "surrogateescape")


EVENTS = {
    # getcwd failed on the init thread; evt.arg[1] is getcwd's path parameter
    "filter_compiler.ut.cpp": {
        "evt.type": "getcwd",
        "proc.name": "init",
        "evt.arg.res": "ENOENT",
        "evt.arg.path": "/test/dir",
        "evt.cpu": 1,
    },
    "filter_op_pmatch.ut.cpp": {"evt.type": "openat", "fd.name": "/opt/dir/subdir/file.txt"},
    "filter_op_contains.ut.cpp": {
        "evt.type": "openat",
        "fd.name": "/opt/dir/SUBDIR/file.txt",
        "evt.arg.flags": "O_RDWR|O_CREAT",
    },
    "filter_op_numeric_compare.ut.cpp": {"evt.type": "epoll_create", "evt.cpu": 1, "evt.rawarg.res": -22},
    "filter_op_numeric_compare.ut.cpp#open": {
        "evt.type": "openat",
        "evt.cpu": 1,
        "fd.name": "/tmp/the_file",
        "fd.num": -1,
        "evt.res": "ENOENT",
    },
    "filter_op_bytebuf.ut.cpp": {"evt.type": "read", "evt.buffer": "hello"},
    "filter_op_bytebuf.ut.cpp#nul": {"evt.type": "read", "evt.buffer": b"a\x00b"},
    # libsinsp picks fd.lip by asking whether an address is local to the machine; upstream's test machine
    # has the server address, so the events say so explicitly (the engine otherwise uses the fd's role).
    "filter_op_net_compare.ut.cpp": {
        "evt.type": "connect",
        "fd.name": "172.40.111.222:54321->142.251.111.147:443",
        "fd.lip": "142.251.111.147",
        "fd.rip": "172.40.111.222",
    },
    "filter_op_net_compare.ut.cpp#ipv6": {
        "evt.type": "connect",
        "fd.name": "[::1]:54321->[2001:4860:4860::8888]:443",
        "fd.typechar": "6",
        "fd.lip": "2001:4860:4860::8888",
        "fd.rip": "::1",
    },
    "filterchecks/cmp_operator_modifiers.cpp": {
        "evt.type": "execve",
        "proc.name": "myexe",
        "proc.exe": "/myexe",
    },
    "filter_transformer.ut.cpp": {
        "evt.type": "openat",
        "fd.name": "/tmp/file_to_run",
        "fd.types": ["file"],
        "evt.arg.data": "hello\n",
    },
    "filterchecks/proc.cpp": {
        "evt.type": "execve",
        "proc.name": "good-exe",
        "proc.ancestors": ["bash", "bash", "bash", "bash", "init"],
    },
    "filterchecks/evt/rawarg.cpp": {
        "evt.type": "read",
        "evt.rawarg.size": 514,
        "evt.rawarg.flags": 3,
        "evt.rawarg.pgid": 0,
        "evt.rawarg.gid": 0,
    },
    "filterchecks/invalid_utf8.cpp": {
        "evt.type": "openat",
        "fd.name": _bad("/p\xff/q\xff"),
        "proc.name": _bad("bad\xff"),
        "proc.exe": _bad("/usr/bin/bad\xff"),
        "fs.path.name": _bad("/tmp/a\xff"),
        "fs.path.source": _bad("/x\xff"),
        "evt.abspath": _bad("/tmp/a\xff"),
        "proc.cwd": _bad("/tmp/c\xff/"),
    },
}

# libsinsp's mock filter checks (filter_compiler.ut.cpp): c.true is always true, c.false always false.
MOCK_FIELDS = {
    name: FieldInfo(name, ftype, "mock", frozenset())
    for name, ftype in (
        ("c.true", "CHARBUF"),
        ("c.false", "CHARBUF"),
        ("c.singlequote", "CHARBUF"),
        ("c.doublequote", "CHARBUF"),
        ("c.buffer", "BYTEBUF"),
    )
}
MOCK_EVENT = {
    "evt.type": "getcwd",
    "c.true": "1",
    "c.false": "0",
    "c.singlequote": "hello 'quoted'",
    "c.doublequote": 'hello "quoted"',
    "c.buffer": b"hello",
}


def event_for(case: dict):
    name = case["file"]
    text = case["input"]
    if name == "filter_op_numeric_compare.ut.cpp" and "fd.num" in text:
        name += "#open"
    elif name == "filter_op_bytebuf.ut.cpp" and case["test"].endswith("bytebuf_matches_nul"):
        name += "#nul"
    elif name == "filter_op_net_compare.ut.cpp" and "ipv6" in case["test"]:
        name += "#ipv6"
    return event_from_mapping(EVENTS[name])


def _mock_event():
    from grader.engines.falco.events import Event

    ev = Event(MOCK_EVENT)
    return ev


def _compile(text: str, mock: bool = False):
    extra = MOCK_FIELDS if mock else None
    return compile_filter(parse(text), extra_fields=extra)


def _case_id(case: dict) -> str:
    return f"{case['test'].split('.')[-1]}:{case['input'][:60]}"


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_libs_compiler_case(case: dict) -> None:
    reason = skip_reason(case)
    if reason:
        pytest.skip(reason)
    mock = case["kind"] == "mock_eval" or case["input"].startswith("c.")
    expect = case["expect"]
    if expect in ("fail", "throws"):
        with pytest.raises((CompileError, ParseError)):
            flt = _compile(case["input"], mock)
            if case["kind"] == "eval":  # "throws" may happen at evaluation time upstream
                flt.matches(event_for(case))
        return
    flt = _compile(case["input"], mock)
    if "warnings" in case and case["warnings"] is not None and expect == "ok":
        assert len(flt.warnings) == case["warnings"], flt.warnings
    if expect in ("ok", "no_throw"):
        if case["kind"] == "eval":
            flt.matches(event_for(case))
        return
    event = _mock_event() if mock else event_for(case)
    assert flt.matches(event) is expect


def test_skipped_cases_are_few_and_listed() -> None:
    skipped = [(c["input"], skip_reason(c)) for c in CASES if skip_reason(c)]
    print("\nSkipped libs compiler/eval cases:")
    for text, reason in skipped:
        print(f"  {text!r}: {reason}")
    assert len(skipped) <= 5
