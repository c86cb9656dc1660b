"""RBAC evaluation used by lab7's "permission removed" check (grader/engines/rbac.py)."""

from __future__ import annotations

from grader.engines.rbac import Authorizer, Identity, Request, probes_for_rule, rule_allows

SA = Identity.service_account("prod", "app")


def role(name, rules, ns="prod", kind="Role"):
    meta = {"name": name} | ({"namespace": ns} if kind == "Role" else {})
    return {"kind": kind, "metadata": meta, "rules": rules}


def binding(name, role_name, subjects, ns="prod", role_kind="Role", kind="RoleBinding"):
    meta = {"name": name} | ({"namespace": ns} if kind == "RoleBinding" else {})
    return {
        "kind": kind,
        "metadata": meta,
        "roleRef": {"kind": role_kind, "name": role_name},
        "subjects": subjects,
    }


SECRETS = {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"]}


def test_rule_matching_wildcards_subresources_and_names():
    assert rule_allows(
        {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}, Request("delete", "pods", "x")
    )
    assert not rule_allows(
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
        Request("get", "pods", "x", subresource="log"),
    )
    assert rule_allows(
        {"apiGroups": [""], "resources": ["*/log"], "verbs": ["get"]},
        Request("get", "pods", "x", subresource="log"),
    )
    named = {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["a"], "verbs": ["get", "list"]}
    assert rule_allows(named, Request("get", "secrets", "x", "a"))
    assert not rule_allows(named, Request("get", "secrets", "x", "b"))
    assert not rule_allows(named, Request("list", "secrets", "x"))  # a list has no name
    assert not rule_allows(
        {"apiGroups": ["apps"], "resources": ["secrets"], "verbs": ["get"]}, Request("get", "secrets", "x")
    )


def test_subjects_bindings_and_scopes():
    objs = [
        role("r", [SECRETS]),
        binding("b", "r", [{"kind": "ServiceAccount", "name": "app"}]),
    ]  # ns defaults
    assert Authorizer(objs).allowed(SA, Request("get", "secrets", "prod", "db"))
    assert not Authorizer(objs).allowed(SA, Request("get", "secrets", "dev", "db"))  # a RoleBinding is local
    assert not Authorizer(objs).allowed(
        Identity.service_account("prod", "app-v2"), Request("get", "secrets", "prod")
    )
    groups = [
        role("r", [SECRETS]),
        binding("b", "r", [{"kind": "Group", "name": "system:serviceaccounts:prod"}]),
    ]
    assert Authorizer(groups).allowed(SA, Request("list", "secrets", "prod"))
    cluster = [
        role("cr", [SECRETS], kind="ClusterRole"),
        binding(
            "crb",
            "cr",
            [{"kind": "ServiceAccount", "name": "app", "namespace": "prod"}],
            role_kind="ClusterRole",
            kind="ClusterRoleBinding",
        ),
    ]
    assert Authorizer(cluster).allowed(SA, Request("watch", "secrets", "dev"))
    dangling = [binding("b", "missing", [{"kind": "ServiceAccount", "name": "app"}])]
    assert not Authorizer(dangling).allowed(SA, Request("get", "secrets", "prod"))
    why = Authorizer(objs).why(SA, Request("get", "secrets", "prod", "db"))
    assert why == "RoleBinding prod/b -> Role prod/r rules[0]"


def test_identity_parse_gives_service_accounts_their_groups():
    assert Identity.parse("system:serviceaccount:prod:app") == SA
    assert "system:serviceaccounts:prod" in SA.groups
    assert Identity.parse("alice").username == "alice"


def test_probes_expand_a_rule_into_concrete_requests():
    probes = probes_for_rule(
        {"apiGroups": [""], "resources": ["configmaps", "secrets"], "verbs": ["get", "list"]}, "p"
    )
    assert Request("list", "secrets", "p") in probes and Request("get", "configmaps", "p") in probes
    assert len(probes) == 4
    wild = probes_for_rule({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}, "p")
    assert Request("delete", "secrets", "p", api_group="") in wild


def test_malformed_rules_and_subjects_grant_nothing_instead_of_crashing():
    """`rules: 7` or `subjects: true` (a learner's typo) is rejected by the API server: it grants nothing."""
    good = binding("b", "r", [{"kind": "ServiceAccount", "name": "app"}])
    for odd in (7, True, "secrets", {"kind": "ServiceAccount", "name": "app"}):
        assert not Authorizer([role("r", odd), good]).allowed(SA, Request("get", "secrets", "prod"))
        assert not Authorizer([role("r", [SECRETS]), binding("b", "r", odd)]).allowed(
            SA, Request("get", "secrets", "prod")
        )
        cluster = [
            role("cr", odd, kind="ClusterRole"),
            binding(
                "crb",
                "cr",
                [{"kind": "ServiceAccount", "name": "app", "namespace": "prod"}],
                role_kind="ClusterRole",
                kind="ClusterRoleBinding",
            ),
        ]
        assert not Authorizer(cluster).allowed(SA, Request("get", "secrets", "prod"))
    assert Authorizer([role("r", [SECRETS]), good]).allowed(SA, Request("get", "secrets", "prod"))
