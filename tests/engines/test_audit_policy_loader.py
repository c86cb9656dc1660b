"""Loading --audit-policy-file as kube-apiserver does: version, strict/lenient decode, validation, bad
input."""

from __future__ import annotations

import pytest

from grader.engines.audit_policy import load_policy, load_policy_object, parse_request

GOOD = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n"


def test_minimal_policy_loads() -> None:
    r = load_policy(GOOD)
    assert r.ok and r.errors == [] and r.warnings == [] and len(r.policy.rules) == 1


def test_bytes_and_bom_are_accepted() -> None:
    assert load_policy(b"\xef\xbb\xbf" + GOOD.encode()).ok


@pytest.mark.parametrize(
    "api,needle",
    [
        ("audit.k8s.io/v1beta1", 'no kind "Policy" is registered for version "audit.k8s.io/v1beta1"'),
        ("audit.k8s.io/v1alpha1", "removed in Kubernetes 1.24"),
        ("v1", 'registered for version "v1"'),
    ],
)
def test_only_audit_k8s_io_v1(api: str, needle: str) -> None:
    r = load_policy(GOOD.replace("audit.k8s.io/v1", api))
    assert not r.ok and needle in r.errors[0]


def test_missing_api_version_is_unknown_group_version() -> None:
    r = load_policy("kind: Policy\nrules:\n- level: Metadata\n")
    assert not r.ok and "unknown group version field" in r.errors[0]


def test_wrong_kind_is_refused_and_missing_kind_is_defaulted() -> None:
    r = load_policy(GOOD.replace("kind: Policy", "kind: AuditPolicy"))
    assert not r.ok and 'no kind "AuditPolicy"' in r.errors[0]
    r = load_policy(GOOD.replace("kind: Policy\n", ""))
    assert r.ok and any("kind is missing" in w for w in r.warnings)


def test_unknown_fields_are_dropped_with_path_and_line() -> None:
    text = """apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: None
  resources:
  - group: coordination.k8s.io
    resources: ["leases"]
    verbs: ["watch", "get", "list"]
- level: Metadata
  verb: [get]
  Level: Request
"""
    r = load_policy(text)
    assert r.ok
    assert r.dropped == [
        'rules[0].resources[0]: unknown field "verbs" dropped (line 8)',
        'rules[1]: unknown field "verb" dropped (line 10)',
        'rules[1]: unknown field "Level" dropped (line 11)',
    ]
    assert r.warnings[:3] == r.dropped
    # the dropped verbs are gone: the rule matches every verb on leases, as kube-apiserver does
    assert r.policy.evaluate(parse_request("update leases.coordination.k8s.io x -n a")).level == "None"
    assert r.policy.evaluate(parse_request("delete pods x -n a")).level == "Metadata"


def test_unknown_top_level_and_metadata_fields() -> None:
    r = load_policy(GOOD + "spec: {}\nmetadata: {name: p, colour: red}\n")
    assert r.ok
    assert r.dropped == [
        '(top level): unknown field "spec" dropped (line 5)',
        'metadata: unknown field "colour" dropped (line 6)',
    ]


def test_duplicate_keys_keep_the_last_value_with_a_warning() -> None:
    r = load_policy(GOOD + "  level: None\n")
    assert r.ok and r.policy.rules[0].level == "None"
    assert r.dropped == [
        'rules[0]: duplicate field "level" (lines 4 and 5); kube-apiserver keeps only the last value'
    ]


@pytest.mark.parametrize(
    "rule,needle",
    [
        ("- level: Metadata\n  verbs: get\n", "rules[0].verbs: expected a list, got a string ('get')"),
        ("- level: 5\n", "rules[0].level: expected a string, got a number (5)"),
        ("- level: Metadata\n  omitStages: RequestReceived\n", "rules[0].omitStages: expected a list"),
        ("- Metadata\n", "rules[0]: expected a mapping"),
        ("- level: Metadata\n  resources: [pods]\n", "rules[0].resources[0]: expected a mapping"),
        (
            "- level: Metadata\n  omitManagedFields: 'yes'\n",
            "rules[0].omitManagedFields: expected true or false",
        ),
        ("- level: Metadata\n  users: [1234]\n", "rules[0].users[0]: expected a string, got a number (1234)"),
    ],
)
def test_type_errors_fail_decoding(rule: str, needle: str) -> None:
    r = load_policy("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n" + rule)
    assert not r.ok
    assert r.errors[0].startswith("failed decoding: ") and needle in r.errors[0], r.errors


SUPPORTED = 'supported values: "None", "Metadata", "Request", "RequestResponse"'


@pytest.mark.parametrize(
    "rules,error",
    [
        ([{}], "rules[0].level: Required value"),
        ([{"level": "metadata"}], f'rules[0].level: Unsupported value: "metadata": {SUPPORTED}'),
        (
            [{"level": "Metadata", "omitStages": ["RequestRecieved"]}],
            'rules[0].omitStages[0]: Invalid value: "RequestRecieved": allowed stages are '
            "RequestReceived,ResponseStarted,ResponseComplete,Panic",
        ),
        (
            [{"level": "Metadata", "nonResourceURLs": ["healthz"]}],
            'rules[0].nonResourceURLs[0]: Invalid value: "healthz": '
            "non-resource URL rules must begin with a '/' character",
        ),
        (
            [{"level": "Metadata", "nonResourceURLs": ["/logs/*/x"]}],
            'rules[0].nonResourceURLs[0]: Invalid value: "/logs/*/x": '
            "non-resource URL wildcards '*' must be the final character of the rule",
        ),
        (
            [{"level": "Metadata", "namespaces": ["a"], "nonResourceURLs": ["/x"]}],
            'rules[0].nonResourceURLs: Invalid value: ["/x"]: '
            "rules cannot apply to both regular resources and non-resource URLs",
        ),
        (
            [{"level": "Metadata", "resources": [{"group": "apps/v1"}]}],
            'rules[0].resources.group: Invalid value: "apps/v1": '
            "a lowercase RFC 1123 subdomain must consist of",
        ),
        (
            [{"level": "Metadata", "resources": [{"group": "", "resourceNames": ["x"]}]}],
            'rules[0].resources.resourceNames: Invalid value: ["x"]: '
            "using resourceNames requires at least one resource",
        ),
    ],
)
def test_validation_errors_are_worded_as_kube_apiserver(rules: list, error: str) -> None:
    r = load_policy_object({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": rules})
    assert not r.ok and r.policy is None
    assert r.errors[0].startswith(error), r.errors


def test_policy_level_omit_stages_are_validated() -> None:
    r = load_policy(GOOD + "omitStages: [Foo]\n")
    assert r.errors == [
        'omitStages[0]: Invalid value: "Foo": allowed stages are '
        "RequestReceived,ResponseStarted,ResponseComplete,Panic"
    ]


def test_all_validation_errors_are_reported() -> None:
    r = load_policy_object(
        {
            "apiVersion": "audit.k8s.io/v1",
            "kind": "Policy",
            "rules": [{"level": "X"}, {}, {"level": "None", "nonResourceURLs": ["a*b"]}],
        }
    )
    assert len(r.errors) == 4


@pytest.mark.parametrize(
    "text",
    [GOOD.split("rules:")[0], GOOD.split("rules:")[0] + "rules: []\n", GOOD.split("rules:")[0] + "rules:\n"],
)
def test_zero_rules_is_an_error(text: str) -> None:
    r = load_policy(text)
    assert r.errors == ["loaded illegal policy with 0 rules"]


@pytest.mark.parametrize(
    "text,needle",
    [
        ("", "the file is empty"),
        ("   \n\n", "the file is empty"),
        ("# only a comment\n", "no YAML document"),
        ("rules: [level: Metadata\n", "failed decoding: not valid YAML at line"),
        ("- a\n- b\n", "must be a mapping"),
        ("just text", "must be a mapping"),
        (b"\x00\x01\x02binary", "binary"),
        (b"apiVersion: \xff\xfe\n", "not UTF-8"),
    ],
)
def test_bad_files_give_clear_errors(text, needle: str) -> None:
    r = load_policy(text)
    assert not r.ok and needle in r.errors[0], r.errors


def test_yaml_bomb_is_refused_quickly() -> None:
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 12):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]")
    r = load_policy("\n".join(lines) + "\n")
    assert not r.ok and "YAML bomb" in r.errors[0]


def test_deep_nesting_is_refused() -> None:
    r = load_policy("a: " + "[" * 500 + "]" * 500 + "\n")
    assert not r.ok and "nested" in r.errors[0]


def test_several_documents_use_the_first_with_a_warning() -> None:
    r = load_policy(GOOD + "---\n" + GOOD.replace("Metadata", "None"))
    assert r.ok and r.policy.rules[0].level == "Metadata"
    assert any("2 YAML documents" in w for w in r.warnings)


def test_json_policy_loads() -> None:
    r = load_policy('{"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [{"level": "None"}]}')
    assert r.ok and r.policy.rules[0].level == "None"


def test_validate_only_mode_accepts_empty_policy() -> None:
    assert load_policy_object({}, require_type_meta=False, allow_empty=True).ok
    assert not load_policy_object({}, require_type_meta=False).ok


def test_bad_kube_version_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        load_policy(GOOD, "latest")
