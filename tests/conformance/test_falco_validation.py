"""``falco -V`` cases from falcosecurity/testing (legacy_test.go): the same files give the same error and
warning codes, item types, item names and messages; plus the expected alert lines of the output tests."""

from __future__ import annotations

import json
import re

import pytest

from grader.engines.falco.loader import load_rules
from grader.engines.falco.validation import validation_json, validation_text
from tests.conftest import conformance_path

pytestmark = pytest.mark.conformance

TESTING = conformance_path("falco", "testing")
INDEX = {e["var"]: e for e in json.loads((TESTING / "rules-index.json").read_text())}
CASES = json.loads((TESTING.parent / "cases.json").read_text())["testing_validation"]


def _md_cases() -> list[dict]:
    """Section A of testing-cases.md (all 39 validation tests, same assertion language)."""
    text = (TESTING / "testing-cases.md").read_text()
    section = text.split("## A.", 1)[1].split("## B.", 1)[0]
    out = []
    for block in section.split("\n### ")[1:]:
        name = block.split()[0]
        files = re.findall(r"`(\w+)` \(rules/", block.split("\n")[1])
        asserts = [
            ln[2:] for ln in block.splitlines() if ln.startswith("- ") and not ln.startswith("- files")
        ]
        out.append({"name": name, "files": [f"rules.{f}" for f in files], "asserts": asserts})
    return out


ALL_CASES = CASES + [c for c in _md_cases() if c["name"] not in {x["name"] for x in CASES}]
# ``warnings``/``ruleWarnings`` are locals of the Go tests: the rule warnings of the code under test.
LOCALS = {"warnings": ("LOAD_NO_EVTTYPE", "rule"), "ruleWarnings": ("LOAD_UNKNOWN_FILTER", "rule")}


def _load_case(case: dict):
    files = []
    for ref in case["files"]:
        entry = INDEX[ref.split(".", 1)[1]]
        files.append((entry["upstream_name"], (TESTING / entry["file"]).read_text()))
    return load_rules(files)


def _select(res, expr: str) -> list:
    m = re.match(
        r"(?:res\.RuleValidation\(\)\.)?(AllErrors\(\)|AllWarnings\(\)|warnings|ruleWarnings)(.*)$", expr
    )
    assert m, expr
    source, chain = m.groups()
    if source == "AllErrors()":
        items = res.errors
    elif source == "AllWarnings()":
        items = res.warnings
    else:
        code, item_type = LOCALS[source]
        items = [w for w in res.warnings if w.matches(code=code, item_type=item_type)]
    for method, arg in re.findall(
        r'\.(OfCode|OfItemType|OfItemName|OfMessage)\("((?:[^"\\]|\\.)*)"\)', chain
    ):
        arg = arg.replace('\\"', '"')
        key = {
            "OfCode": "code",
            "OfItemType": "item_type",
            "OfItemName": "item_name",
            "OfMessage": "message",
        }[method]
        items = [p for p in items if p.matches(**{key: arg})]
    return items


def _check(res, assertion: str) -> None:
    a = (
        re.sub(r"^assert\.", "", assertion).replace("t, ", "", 1)
        if assertion.startswith("assert.")
        else assertion
    )
    failed = bool(res.errors)
    if a in ("Error(res.Err())",):
        assert failed
    elif a == "NoError(res.Err())":
        assert not failed, [p.short() for p in res.errors]
    elif m := re.fullmatch(r"Equal\((\d+), res\.ExitCode\(\)\)", a):
        assert int(failed) == int(m.group(1))
    elif m := re.fullmatch(r"True\((?:res\.RuleValidation\(\)\.)?At\((\d+)\)\.Successful\)", a):
        assert res.files[int(m.group(1))].successful
    elif m := re.fullmatch(r"Equal\((\d+), (.*)\.Count\(\)\)", a):
        assert len(_select(res, m.group(2))) == int(m.group(1)), [p.short() for p in _select(res, m.group(2))]
    elif m := re.fullmatch(r"NotNil\((.*)\)", a):
        found = _select(res, m.group(1))
        assert found, (a, [p.short() for p in res.errors + res.warnings])
    else:
        pytest.fail(f"assertion form not understood: {assertion}")


@pytest.mark.parametrize("case", ALL_CASES, ids=[c["name"] for c in ALL_CASES])
def test_validation_case(case: dict) -> None:
    res = _load_case(case)
    for assertion in case["asserts"]:
        _check(res, assertion)


def test_all_39_validation_cases_are_transcribed() -> None:
    assert len(ALL_CASES) == 39


def test_invalid_file_text_matches_falco_layout() -> None:
    res = _load_case({"files": ["rules.InvalidRuleWithoutOutput"]})
    out, _ = validation_text(res.files)
    lines = out.splitlines()
    assert lines[0] == "invalid_rule_without_output.yaml: Invalid"
    assert lines[1] == "1 Errors:"
    assert lines[2] == "In rules content: (invalid_rule_without_output.yaml:0:0)"
    assert lines[3].startswith("    rule 'no output rule': (invalid_rule_without_output.yaml:")
    assert "------" in lines
    assert lines[-1] == (
        "LOAD_ERR_YAML_VALIDATE (Error validating internal structure of YAML file): "
        "Item has no mapping for key 'output'"
    )


def test_validation_json_shape() -> None:
    res = _load_case({"files": ["rules.InvalidBaseMacro", "rules.InvalidAppendMacro"]})
    doc = validation_json(res.files)
    first, second = doc["falco_load_results"]
    assert first["successful"] is True and second["successful"] is False
    err = second["errors"][0]
    assert set(err) == {"code", "codedesc", "context", "message"}
    assert err["code"] == "LOAD_ERR_COMPILE_CONDITION"
    assert {loc["item_type"] for loc in err["context"]["locations"]} >= {"rules content", "macro"}
    pos = err["context"]["locations"][0]["position"]
    assert set(pos) == {"name", "line", "column", "offset"}
    assert err["context"]["snippet"].endswith("^\n")


def test_alert_output_matches_falco_testing_expected_lines() -> None:
    """tests/data/outputs: rule open_from_cat on cat_write.scap, text and JSON (iso 8601 times)."""
    from grader.engines.falco.events import event_from_mapping

    res = _load_case({"files": ["rules.SingleRuleWithTags"]})
    engine = res.engine()
    engine.hostname = "test-falco-hostname"
    text_lines = (
        (TESTING / "outputs/SingleRuleWithCatWriteText__single_rule_with_cat_write.txt")
        .read_text()
        .split("\n")
    )
    json_lines = (
        (TESTING / "outputs/SingleRuleWithCatWriteJSON__single_rule_with_cat_write.json")
        .read_text()
        .split("\n")
    )
    checked = 0
    for text, js in zip(text_lines, json_lines, strict=False):
        if not text.strip():
            continue
        expected = json.loads(js)
        ns = expected["output_fields"]["evt.time.iso8601"]
        event = event_from_mapping(
            {
                "evt.type": "open",
                "evt.rawtime": ns,
                "proc.name": "cat",
                "proc.args": ["/dev/null"],
                "fd.name": "/dev/null",
            }
        )
        (alert,) = engine.process(event)
        assert alert.line(iso=True) == text
        assert alert.to_dict(iso=True) == expected
        checked += 1
    assert checked >= 3
