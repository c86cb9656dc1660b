"""The Falco rules loader against upstream: every rules file in ../shared/conformance/falco/rules/ loads as
Falco loads it, and every transcribed loader case (Falco's test_rule_loader.cpp, test_filter_warning_resolver
.cpp) gives the same result, errors and warnings."""

from __future__ import annotations

import json

import pytest

from grader.engines.falco.loader import load_rules, resolve_warnings
from grader.engines.falco.parser import parse
from tests.conftest import conformance_path

pytestmark = pytest.mark.conformance

FALCO = conformance_path("falco")
RULES = FALCO / "rules"
CASES = json.loads((FALCO / "cases.json").read_text())


def _load(*names: str):
    return load_rules([(n, (RULES / n).read_text()) for n in names])


# ---- upstream rules files -------------------------------------------------------------------------

STACKS = [
    ("falco_rules.yaml",),
    ("falco_rules.yaml", "falco-incubating_rules.yaml"),
    ("falco_rules.yaml", "falco-sandbox_rules.yaml"),
    ("falco_rules.yaml", "falco-incubating_rules.yaml", "falco-sandbox_rules.yaml"),
    ("falco_rules.yaml", "falco-deprecated_rules.yaml"),
    ("falco_rules.yaml", "application_rules.yaml"),
    ("falco_rules.v4.0.0.yaml",),
    ("falco_rules.v3.2.0.yaml",),
]


@pytest.mark.parametrize("stack", STACKS, ids=["+".join(s) for s in STACKS])
def test_upstream_rules_files_load(stack: tuple[str, ...]) -> None:
    res = _load(*stack)
    assert res.successful, [p.short() for p in res.errors]
    assert res.rules, "no rule compiled"


def test_stable_file_counts_and_order() -> None:
    res = _load("falco_rules.yaml")
    assert len(res.rules) == 25
    assert len(res.macros) == 87 and len(res.lists) == 49
    assert res.rules[0].name == "Directory traversal monitored file read"
    assert res.required_engine_version == (0, 57, 0)
    # the stable file is tidy: nothing unused, every rule narrowed to some event types
    assert not [w.short() for w in res.warnings if w.code in ("LOAD_UNUSED_MACRO", "LOAD_UNUSED_LIST")]


@pytest.mark.parametrize("name", ["falco-incubating_rules.yaml", "falco-sandbox_rules.yaml"])
def test_incubating_and_sandbox_also_load_alone(name: str) -> None:
    # they repeat the shared macros (spawned_process, container ...), so they stand alone too
    res = _load(name)
    assert res.successful, [p.short() for p in res.errors]


def test_v3_file_warns_about_evt_dir() -> None:
    res = _load("falco_rules.v3.2.0.yaml")
    assert res.successful
    assert any(w.code == "LOAD_DEPRECATED_ITEM" and "evt.dir" in w.message for w in res.warnings)


def test_disabled_rules_are_loaded_but_disabled() -> None:
    res = _load("falco_rules.yaml", "falco-sandbox_rules.yaml")
    disabled = [r.name for r in res.rules if not r.enabled]
    assert len(disabled) == 12, "sandbox ships 12 rules with enabled: false"
    assert [r.name for r in res.engine().rules] == [r.name for r in res.rules if r.enabled]


# ---- test_rule_loader.cpp ---------------------------------------------------------------------------

LOADER_CASES = CASES["falco_rule_loader"]
# extra assertions we do not model: Falco's add_extra_output_format() API (a falco.yaml feature)
SKIPPED_EXTRAS = ("add_extra_output_format",)


def _describe(rule, key: str):
    return {
        "condition": rule.condition,
        "output": rule.output,
        "description": rule.desc,
        "priority": rule.priority_name,
        "capture": rule.capture,
        "capture_duration": rule.capture_duration,
    }[key]


@pytest.mark.parametrize("case", LOADER_CASES, ids=[c["name"] for c in LOADER_CASES])
def test_rule_loader_case(case: dict) -> None:
    if any(e.startswith(SKIPPED_EXTRAS) for e in case["extra"]):
        pytest.skip("extra output formats (falco.yaml append_output) are not modelled by the study engine")
    res = load_rules([(f"rules_{i}.yaml", text) for i, text in enumerate(case["rules"])])
    for i, expected in enumerate(case["load"]):
        assert res.files[i].successful == expected, [p.short() for p in res.errors]
    errors = [p.message for p in res.errors]
    warnings = [p.message for p in res.warnings]
    for e in case["errors"]:
        assert any(e in m for m in errors), (e, errors)
    for e in case["not_errors"]:
        assert not any(e in m for m in errors), (e, errors)
    for w in case["warnings"]:
        assert any(w in m for m in warnings), (w, warnings)
    for w in case["not_warnings"]:
        assert not any(w in m for m in warnings), (w, warnings)
    if case["has_warnings"] is not None:
        assert bool(res.warnings) == case["has_warnings"], [p.short() for p in res.warnings]
    for name, text in case["compiled_condition"].items():
        rule = res.rule(name)
        assert rule is not None, f"rule {name} not compiled"
        assert rule.condition_compiled == text
    for n in case["num_rules"]:
        assert len(res.rules) == n
    for extra in case["extra"]:
        lhs, rhs = extra.split(" == ", 1)
        key = lhs.removeprefix("describe.info.")
        rule = res.rules[0]
        value = json.loads(rhs.rstrip("u")) if rhs not in ("true", "false") else rhs == "true"
        assert _describe(rule, key) == value, extra


# ---- test_filter_warning_resolver.cpp ----------------------------------------------------------------

RESOLVER = CASES["falco_warning_resolver"]


@pytest.mark.parametrize("case", RESOLVER, ids=[c["input"] for c in RESOLVER])
def test_warning_resolver(case: dict) -> None:
    codes = [code for code, _ in resolve_warnings(parse(case["input"]))]
    assert bool(codes) == case["warns"], codes
    if case["warns"]:
        assert case["note"].split(" ")[0] in codes
