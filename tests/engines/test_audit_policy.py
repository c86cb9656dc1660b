"""Audit policy evaluation: kube-apiserver's checker.go, rule by rule."""

from __future__ import annotations

import pytest

from grader.engines.audit_policy import (
    Policy,
    RequestAttributes,
    User,
    load_policy,
    load_policy_object,
    parse_request,
    witness_requests,
)


def policy(*rules: dict, **top) -> Policy:
    result = load_policy_object(
        {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": list(rules), **top}
    )
    assert result.ok, result.errors
    return result.policy


def level(p: Policy, request: str) -> str:
    return p.evaluate(parse_request(request)).level


def test_first_matching_rule_wins_and_reports_its_index() -> None:
    p = policy({"level": "None", "verbs": ["watch"]}, {"level": "Metadata"}, {"level": "RequestResponse"})
    assert p.evaluate(parse_request("watch pods -n a")).rule_index == 0
    d = p.evaluate(parse_request("get pods -n a"))
    assert (d.level, d.rule_index) == ("Metadata", 1)


def test_no_match_is_level_none_with_policy_omit_stages() -> None:
    p = policy(
        {"level": "Metadata", "verbs": ["create"]}, omitStages=["RequestReceived"], omitManagedFields=True
    )
    d = p.evaluate(parse_request("get pods -n a"))
    assert (d.level, d.rule_index, d.omit_stages, d.omit_managed_fields) == (
        "None",
        None,
        frozenset({"RequestReceived"}),
        True,
    )


def test_omit_stages_are_the_union_of_policy_and_rule() -> None:
    p = policy({"level": "Metadata", "omitStages": ["Panic"]}, omitStages=["RequestReceived"])
    assert p.evaluate(parse_request("get pods")).omit_stages == {"RequestReceived", "Panic"}


def test_rule_omit_managed_fields_overrides_the_policy_both_ways() -> None:
    p = policy(
        {"level": "Request", "verbs": ["get"], "omitManagedFields": False},
        {"level": "Request"},
        omitManagedFields=True,
    )
    assert p.evaluate(parse_request("get pods")).omit_managed_fields is False
    assert p.evaluate(parse_request("list pods")).omit_managed_fields is True


def test_users_and_groups_need_a_user() -> None:
    p = policy(
        {"level": "None", "users": ["alice"]},
        {"level": "Request", "userGroups": ["devs"]},
        {"level": "Metadata"},
    )
    assert level(p, "get pods as alice") == "None"
    assert level(p, "get pods as bob in devs,ops") == "Request"
    assert level(p, "get pods as bob") == "Metadata"
    assert level(p, "get pods unauthenticated") == "Metadata"


def test_user_match_is_exact() -> None:
    p = policy({"level": "None", "users": ["system:kube-proxy"]}, {"level": "Metadata"})
    assert level(p, "watch services as system:serviceaccount:kube-system:kube-proxy") == "Metadata"
    assert level(p, "watch services as system:kube-proxy") == "None"


def test_verbs_are_exact_no_wildcard() -> None:
    p = policy({"level": "None", "verbs": ["*"]}, {"level": "Metadata"})
    assert level(p, "get pods") == "Metadata"


def test_namespaces_empty_string_selects_cluster_scoped() -> None:
    p = policy({"level": "Request", "namespaces": [""]}, {"level": "Metadata"})
    assert level(p, "get nodes") == "Request"
    assert level(p, "list pods") == "Request"  # list across namespaces has namespace ""
    assert level(p, "get pods -n a") == "Metadata"


def test_namespace_rule_does_not_match_non_resource_requests() -> None:
    p = policy({"level": "Request", "namespaces": ["prod"]}, {"level": "Metadata"})
    assert level(p, "get /healthz") == "Metadata"


def test_core_group_is_empty_string_and_omitted_group_is_core() -> None:
    p = policy(
        {"level": "Request", "resources": [{"resources": ["deployments"]}]},
        {"level": "RequestResponse", "resources": [{"group": "apps", "resources": ["deployments"]}]},
        {"level": "Metadata"},
    )
    assert level(p, "create deployments.apps -n a") == "RequestResponse"
    assert level(p, "create deployments -n a") == "Request"


def test_group_without_resources_matches_every_resource_and_subresource() -> None:
    p = policy({"level": "Request", "resources": [{"group": "apps"}]}, {"level": "Metadata"})
    assert level(p, "update deployments.apps/scale x -n a") == "Request"
    assert level(p, "get pods -n a") == "Metadata"


@pytest.mark.parametrize(
    "spec,request_text,matches",
    [
        ("pods", "get pods x -n a", True),
        ("pods", "get pods/log x -n a", False),
        ("pods/log", "get pods/log x -n a", True),
        ("pods/log", "get pods x -n a", False),
        ("*", "get pods x -n a", True),
        ("*", "create pods/exec x -n a", True),
        ("*/scale", "update deployments/scale x -n a", True),
        ("*/scale", "update deployments x -n a", False),
        ("pods/*", "create pods/exec x -n a", True),
        ("pods/*", "create pods x -n a", True),  # upstream matches the bare resource too
        ("pods/*", "get services/proxy x -n a", False),
        ("secret", "get secrets x -n a", False),
    ],
)
def test_resource_patterns(spec: str, request_text: str, matches: bool) -> None:
    p = policy({"level": "Request", "resources": [{"group": "", "resources": [spec]}]}, {"level": "Metadata"})
    assert (level(p, request_text) == "Request") is matches


def test_resource_names_need_a_name() -> None:
    p = policy(
        {"level": "None", "resources": [{"resources": ["configmaps"], "resourceNames": ["leader"]}]},
        {"level": "Metadata"},
    )
    assert level(p, "get configmaps leader -n a") == "None"
    assert level(p, "get configmaps other -n a") == "Metadata"
    assert level(p, "list configmaps -n a") == "Metadata"


def test_group_wildcard_depends_on_kubernetes_version() -> None:
    data = {"rules": [{"level": "Request", "resources": [{"group": "*", "resources": ["*/status"]}]}]}
    latest = load_policy_object(data, "1.36", require_type_meta=False)
    assert latest.ok
    assert (
        latest.policy.evaluate(parse_request("update clusterroles.rbac.authorization.k8s.io/status x")).level
        == "Request"
    )
    old = load_policy_object(data, "1.35", require_type_meta=False)
    assert not old.ok and old.errors[0].startswith('rules[0].resources.group: Invalid value: "*"')
    # without a version, the lab cluster's kube-apiserver decides (tests/engines/test_audit_policy_version.py)


@pytest.mark.parametrize(
    "spec,path,matches",
    [
        ("/healthz", "/healthz", True),
        ("/healthz", "/healthz/etcd", False),
        ("/healthz*", "/healthz/etcd", True),
        ("/healthz*", "/healthzfoo", True),
        ("/api*", "/apis/apps/v1", True),
        ("*", "/anything", True),
        ("/logs/*", "/logs", False),
    ],
)
def test_non_resource_urls(spec: str, path: str, matches: bool) -> None:
    p = policy({"level": "None", "nonResourceURLs": [spec]}, {"level": "Metadata"})
    assert (level(p, f"get {path}") == "None") is matches


def test_non_resource_rule_never_matches_resource_requests() -> None:
    p = policy({"level": "None", "nonResourceURLs": ["*"]}, {"level": "Metadata"})
    assert level(p, "get pods -n a") == "Metadata"


def test_rule_without_scope_matches_resource_and_non_resource_requests() -> None:
    p = policy({"level": "None", "users": ["probe"]}, {"level": "Metadata"})
    assert level(p, "get /healthz as probe") == "None"
    assert level(p, "get pods -n a as probe") == "None"


def test_attributes_from_mapping_drive_evaluation() -> None:
    p = policy(
        {"level": "Request", "userGroups": ["humans"], "resources": [{"resources": ["pods/log"]}]},
        {"level": "Metadata"},
    )
    attrs = RequestAttributes.from_mapping(
        {
            "user": {"username": "tim", "groups": ["humans"]},
            "verb": "get",
            "namespace": "default",
            "apiGroup": "",
            "apiVersion": "v1",
            "resource": "pods",
            "subresource": "log",
            "name": "busybox",
            "isResourceRequest": True,
            "path": "/api/v1/namespaces/default/pods/busybox/log",
        }
    )
    assert p.evaluate(attrs).level == "Request"
    assert (
        p.evaluate(RequestAttributes(User("tim", ("humans",)), "get", "default", "", "v1", "pods")).level
        == "Metadata"
    )


def test_decision_to_dict_is_the_simulate_json_shape() -> None:
    p = policy({"level": "Metadata", "omitStages": ["ResponseStarted"]}, omitStages=["RequestReceived"])
    assert p.evaluate(parse_request("get pods")).to_dict() == {
        "level": "Metadata",
        "omitStages": ["RequestReceived", "ResponseStarted"],
        "omitManagedFields": False,
        "rule": 0,
    }


def test_witnesses_reach_their_rule_and_skip_shadowed_ones() -> None:
    p = policy({"level": "Metadata"}, {"level": "Request", "resources": [{"resources": ["pods/exec"]}]})
    assert [i for i, _ in witness_requests(p)] == [0]
    p = policy(
        {"level": "None", "nonResourceURLs": ["/healthz*"]},
        {
            "level": "Request",
            "users": ["bob"],
            "verbs": ["create"],
            "resources": [{"group": "apps", "resources": ["*/scale"], "resourceNames": ["web"]}],
        },
        {"level": "RequestResponse", "namespaces": ["prod"]},
        {"level": "Metadata"},
    )
    reached = dict(witness_requests(p))
    assert sorted(reached) == [0, 1, 2, 3]
    assert reached[1].api_group == "apps" and reached[1].subresource == "scale" and reached[1].name == "web"


def test_gce_style_policy_from_text() -> None:
    text = """
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: None
    users: ["system:kube-proxy"]
    verbs: ["watch"]
    resources:
      - group: "" # core
        resources: ["endpoints", "services", "services/status"]
  - level: Metadata
    resources:
      - group: ""
        resources: ["secrets", "configmaps", "serviceaccounts/token"]
    omitStages: ["RequestReceived"]
  - level: Request
    verbs: ["get", "list", "watch"]
    resources: [{group: ""}, {group: "apps"}]
  - level: Metadata
"""
    p = load_policy(text).policy
    assert level(p, "watch services/status -n a as system:kube-proxy") == "None"
    assert level(p, "get services -n a as system:kube-proxy") == "Request"
    assert level(p, "create serviceaccounts/token default -n a") == "Metadata"
    assert level(p, "get serviceaccounts default -n a") == "Request"
    assert level(p, "create pods -n a") == "Metadata"
