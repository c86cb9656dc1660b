"""libsinsp parser conformance: every accept/reject case transcribed from filter_parser.ut.cpp."""

from __future__ import annotations

import json
import time

import pytest

from grader.engines.falco import ParseError, parse, to_text
from tests.conftest import conformance_path

pytestmark = pytest.mark.conformance

CASES = json.loads(conformance_path("falco", "cases.json").read_text(encoding="utf-8"))["libs_parser"]


def _case_id(case: dict) -> str:
    text = case["input"] if len(case["input"]) < 60 else case["input"][:57] + "..."
    return f"{case['kind']}:{text}"


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_libs_parser_case(case: dict) -> None:
    text = case["input"] * case.get("repeat", 1)
    started = time.perf_counter()
    if case["kind"] in ("accept", "accept_ast"):
        node = parse(text)
        # the compiled form parses back to the same tree (what `falco -L` shows is a valid condition)
        assert parse(to_text(node)) == node
    else:
        with pytest.raises(ParseError) as err:
            parse(text)
        if case.get("msg"):
            assert err.value.message == case["msg"]
        assert 0 <= err.value.position <= len(text)
    # hostile inputs (100,000 open parentheses) fail fast; no timing assertion beyond "not pathological"
    assert time.perf_counter() - started < 5


def test_every_parser_case_kind_is_known() -> None:
    assert {c["kind"] for c in CASES} <= {"accept", "accept_ast", "reject", "reject_msg"}
