"""Hostile and random input never crashes or hangs the condition engine: only ParseError/CompileError."""

from __future__ import annotations

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grader.engines.falco import (
    CompileError,
    ParseError,
    compile_condition,
    compile_filter,
    event_from_mapping,
    parse,
    to_text,
)

TOKENS = [
    "(",
    ")",
    ",",
    " ",
    "  ",
    "\n",
    "\t",
    "and",
    "or",
    "not",
    "not(",
    "and(",
    "or(",
    "=",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "contains",
    "icontains",
    "bcontains",
    "startswith",
    "bstartswith",
    "endswith",
    "glob",
    "iglob",
    "regex",
    "in",
    "intersects",
    "pmatch",
    "exists",
    "oneof",
    "anyof",
    "allof",
    "val(",
    "tolower(",
    "toupper(",
    "b64(",
    "basename(",
    "len(",
    "join(",
    "concat(",
    "getopt(",
    "proc.name",
    "fd.name",
    "evt.type",
    "fd.num",
    "proc.aname[2]",
    "evt.arg.flags",
    "evt.arg[",
    "]",
    "[",
    "'",
    '"',
    "\\",
    "\\'",
    '\\"',
    "execve",
    "openat",
    "/etc/shadow",
    "*",
    "?",
    "0x1F",
    "-1",
    "1.5e+3",
    "macro_x",
    "my_list",
    "\x00",
    "\udcff",
    "é",
    "<NA>",
]

EVENT = event_from_mapping(
    {
        "evt.type": "openat",
        "fd.name": "/etc/shadow",
        "proc.name": "cat",
        "proc.ancestors": ["bash"],
        "container.id": "abc",
    }
)


def _exercise(text: str) -> None:
    started = time.perf_counter()
    try:
        node = parse(text)
    except ParseError as err:
        assert isinstance(err.message, str) and 0 <= err.position <= len(text)
    else:
        assert parse(to_text(node)) == node
        try:
            flt = compile_filter(node, {"macro_x": parse("proc.name = x")})
        except CompileError as err:
            assert err.message
        else:
            assert flt.matches(EVENT) in (True, False)
    # a hang detector for inputs of a few thousand characters, not a performance target
    assert time.perf_counter() - started < 2.0


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_random_text_never_crashes(text: str) -> None:
    _exercise(text)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS), max_size=60).map(" ".join))
def test_token_soup_never_crashes(text: str) -> None:
    _exercise(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS), max_size=80).map("".join))
def test_glued_token_soup_never_crashes(text: str) -> None:
    _exercise(text)


def test_hundred_thousand_open_parentheses() -> None:
    started = time.perf_counter()
    try:
        parse("(" * 100_000)
    except ParseError as err:
        assert err.message == "exceeded max depth limit of 100"
    else:
        raise AssertionError("accepted")
    assert time.perf_counter() - started < 1.0


def test_long_flat_condition_is_fine() -> None:
    text = " or ".join(f"proc.name = p{i}" for i in range(5000))
    flt = compile_condition(text)
    assert not flt.matches(EVENT)
    assert flt.matches(event_from_mapping({"evt.type": "execve", "proc.name": "p4999"}))


def test_deep_macro_chain_compiles_without_recursion_limits() -> None:
    macros = {"m0": parse("proc.name = cat")}
    for i in range(1, 400):
        macros[f"m{i}"] = parse(f"not (not m{i - 1} or fd.num < 0)")
    flt = compile_filter(parse("m399"), macros)
    assert flt.matches(EVENT)


def test_pathological_regex_and_glob_do_not_hang() -> None:
    victim = event_from_mapping({"evt.type": "execve", "proc.cmdline": "a" * 50_000})
    started = time.perf_counter()
    assert not compile_condition("proc.cmdline regex '(a*)*b'").matches(victim)
    assert not compile_condition("proc.cmdline regex '(a|aa)+$b'").matches(victim)
    assert not compile_condition("proc.cmdline glob '" + "*a" * 30 + "*b'").matches(victim)
    assert time.perf_counter() - started < 5.0


def test_non_utf8_and_nul_input() -> None:
    bad = b"proc.name = caf\xe9 and fd.name = /\xff".decode("utf-8", "surrogateescape")
    flt = compile_condition(bad)
    assert flt.matches(
        event_from_mapping({"evt.type": "execve", "proc.name": b"caf\xe9", "fd.name": b"/\xff"})
    )
    try:
        parse("proc.name = a\x00 or x")
    except ParseError as err:
        assert "unexpected token" in err.message
    else:
        raise AssertionError("NUL accepted")
