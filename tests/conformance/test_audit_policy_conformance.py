"""Every case of ../shared/conformance/audit/cases.yaml (transcribed kube-apiserver unit tests) and every
policy in ../shared/conformance/audit/policies/ must agree with the engine."""

from __future__ import annotations

import re

import pytest
import yaml

from grader.engines.audit_policy import RequestAttributes, load_policy, load_policy_object
from tests.conftest import conformance_path

pytestmark = pytest.mark.conformance

AUDIT = conformance_path("audit")
CASES = yaml.safe_load((AUDIT / "cases.yaml").read_text())
POLICIES = sorted((AUDIT / "policies").glob("*.yaml"))


def _ids(cases: list[dict]) -> list[str]:
    return [c["id"] for c in cases]


def _policy(case: dict, kube_version: str | None = None):
    result = load_policy_object(case["policy"], kube_version, require_type_meta=False)
    assert result.ok, f"{case['id']}: policy did not load: {result.errors}"
    return result.policy


@pytest.mark.parametrize("case", CASES["evaluation_cases"], ids=_ids(CASES["evaluation_cases"]))
def test_evaluation(case: dict) -> None:
    policy = _policy(case, case.get("minKubernetesVersion"))
    decision = policy.evaluate(RequestAttributes.from_mapping(case["attributes"]))
    assert decision.level == case["expect"]["level"]
    assert decision.omit_stages == frozenset(case["expect"].get("omitStages") or [])


@pytest.mark.parametrize(
    "case", [c for c in CASES["evaluation_cases"] if c.get("minKubernetesVersion")], ids=lambda c: c["id"]
)
def test_version_gated_cases_fail_on_older_kubernetes(case: dict) -> None:
    major, minor = (int(x) for x in case["minKubernetesVersion"].split("."))
    older = load_policy_object(case["policy"], f"{major}.{minor - 1}", require_type_meta=False)
    assert not older.ok
    assert any("Invalid value" in e for e in older.errors)


@pytest.mark.parametrize(
    "case", CASES["omit_managed_fields_cases"], ids=_ids(CASES["omit_managed_fields_cases"])
)
def test_omit_managed_fields(case: dict) -> None:
    decision = _policy(case).evaluate(RequestAttributes.from_mapping(case["attributes"]))
    assert decision.level == case["expect"]["level"]
    assert decision.omit_managed_fields is case["expect"]["omitManagedFields"]


@pytest.mark.parametrize("case", CASES["union_stage_cases"], ids=_ids(CASES["union_stage_cases"]))
def test_union_of_omit_stages(case: dict) -> None:
    data = {
        "omitStages": case["policyOmitStages"],
        "rules": [{"level": "Metadata", "omitStages": case["ruleOmitStages"]}],
    }
    result = load_policy_object(data, require_type_meta=False)
    assert result.ok, result.errors
    decision = result.policy.evaluate(RequestAttributes.from_mapping({"verb": "get", "resource": "pods"}))
    assert decision.omit_stages == frozenset(case["expectUnion"])


def _why_parts(why: str) -> tuple[str | None, list[str]]:
    """'rules[0].level: Unsupported value: "FooBar"' -> path and the phrases an error must contain."""
    first, _, rest = why.partition(": ")
    path = first if rest and re.match(r"^[A-Za-z]+(\[\d+\])?(\.[A-Za-z]+(\[\d+\])?)*$", first) else None
    text = rest if path else why
    text = re.sub(r"\s*\([^)]*\)", "", text)
    return path, [p.strip() for p in text.split(": ") if p.strip()]


@pytest.mark.parametrize("case", CASES["validation_cases"], ids=_ids(CASES["validation_cases"]))
def test_validation(case: dict) -> None:
    result = load_policy_object(case["policy"], require_type_meta=False, allow_empty=True)
    assert result.ok is case["valid"], result.errors
    if not case["valid"]:
        path, phrases = _why_parts(case["why"])
        matching = [e for e in result.errors if path is None or e.startswith(path + ":")]
        assert matching, f"no error for {path}: {result.errors}"
        assert any(all(p in e for p in phrases) for e in matching), (phrases, result.errors)


@pytest.mark.parametrize("case", CASES["loader_cases"], ids=_ids(CASES["loader_cases"]))
def test_loader(case: dict) -> None:
    result = load_policy(case["yaml"])
    assert result.ok is case["loads"], result.errors
    if "errorContains" in case:
        assert any(case["errorContains"] in e for e in result.errors), result.errors
    if "expectRules" in case:
        assert len(result.policy.rules) == case["expectRules"]
    if case["loads"] and "DROPPED" in case.get("note", ""):
        assert result.dropped, "a key kube-apiserver drops must be reported"


@pytest.mark.parametrize("path", POLICIES, ids=[p.name for p in POLICIES])
def test_shared_policies_load_cleanly(path) -> None:
    result = load_policy(path.read_text())
    assert result.ok, result.errors
    assert result.dropped == []
    assert result.policy.rules


def test_case_file_is_not_empty() -> None:
    assert len(CASES["evaluation_cases"]) > 50 and POLICIES
