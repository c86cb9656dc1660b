"""RBAC authorisation as kube-apiserver's RBAC authorizer decides it, over plain API objects (dicts).

Used to judge "the permission was removed" by meaning: can this identity still get Secrets in that
namespace, given every Role, ClusterRole, RoleBinding and ClusterRoleBinding in the snapshot? Semantics
(k8s.io/kubernetes/plugin/pkg/auth/authorizer/rbac and pkg/apis/rbac/v1/evaluation_helpers.go):

* a rule matches when its verbs, apiGroups, resources (``res`` or ``res/sub``; ``*``, ``*/sub``) and
  resourceNames (empty = any; never matches a request without a name) all match; ``*`` is a wildcard;
* a RoleBinding grants its Role (same namespace) or ClusterRole inside its own namespace; a
  ClusterRoleBinding grants a ClusterRole everywhere; a binding whose role does not exist grants nothing;
* subjects: User by name, Group by any of the user's groups, ServiceAccount by
  ``system:serviceaccount:<namespace>:<name>`` (the binding's namespace when the subject has none).
Aggregated ClusterRoles are taken as stored (the controller has already filled their rules).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

SA_PREFIX = "system:serviceaccount:"


@dataclass(frozen=True)
class Request:
    verb: str
    resource: str
    namespace: str
    name: str = ""
    api_group: str = ""
    subresource: str = ""


@dataclass(frozen=True)
class Identity:
    username: str
    groups: tuple[str, ...] = ()

    @classmethod
    def service_account(cls, namespace: str, name: str) -> Identity:
        return cls(
            f"{SA_PREFIX}{namespace}:{name}",
            ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"),
        )

    @classmethod
    def parse(cls, username: str) -> Identity:
        """An identity from a username; ServiceAccounts get the groups the token authenticator gives them."""
        if username.startswith(SA_PREFIX) and username.count(":") == 3:
            ns, name = username[len(SA_PREFIX) :].split(":")
            return cls.service_account(ns, name)
        return cls(username, ("system:authenticated",))


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    m = obj.get("metadata")
    return m if isinstance(m, dict) else {}


def _list(value: Any) -> list[Any]:
    """A list field as stored (rules, subjects); anything else the API server would reject grants nothing."""
    return value if isinstance(value, list) else []


def _strs(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def rule_allows(rule: dict[str, Any], req: Request) -> bool:
    if not isinstance(rule, dict):
        return False
    verbs = _strs(rule.get("verbs"))
    if "*" not in verbs and req.verb not in verbs:
        return False
    groups = _strs(rule.get("apiGroups"))
    if "*" not in groups and req.api_group not in groups:
        return False
    combined = f"{req.resource}/{req.subresource}" if req.subresource else req.resource
    ok = False
    for res in _strs(rule.get("resources")):
        if res == "*" or res == combined:
            ok = True
            break
        if req.subresource and res == f"*/{req.subresource}":
            ok = True
            break
    if not ok:
        return False
    names = _strs(rule.get("resourceNames"))
    return not names or (bool(req.name) and req.name in names)


def subject_matches(subject: dict[str, Any], who: Identity, binding_ns: str) -> bool:
    if not isinstance(subject, dict):
        return False
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "User":
        return name == who.username
    if kind == "Group":
        return name in who.groups
    if kind == "ServiceAccount":
        ns = subject.get("namespace") or binding_ns
        return bool(ns) and who.username == f"{SA_PREFIX}{ns}:{name}"
    return False


class Authorizer:
    """RBAC over a set of objects. ``allowed(who, request)`` and ``why(...)`` (the granting binding/rule)."""

    def __init__(self, objects: Iterable[dict[str, Any]]):
        self.roles: dict[tuple[str, str], dict[str, Any]] = {}
        self.cluster_roles: dict[str, dict[str, Any]] = {}
        self.bindings: list[dict[str, Any]] = []
        self.cluster_bindings: list[dict[str, Any]] = []
        for obj in objects:
            if not isinstance(obj, dict):
                continue
            kind, meta = obj.get("kind"), _meta(obj)
            name, ns = str(meta.get("name") or ""), str(meta.get("namespace") or "")
            if kind == "Role":
                self.roles[(ns, name)] = obj
            elif kind == "ClusterRole":
                self.cluster_roles[name] = obj
            elif kind == "RoleBinding":
                self.bindings.append(obj)
            elif kind == "ClusterRoleBinding":
                self.cluster_bindings.append(obj)

    def _role_of(self, binding: dict[str, Any], ns: str) -> tuple[str, dict[str, Any] | None]:
        ref = binding.get("roleRef") if isinstance(binding.get("roleRef"), dict) else {}
        kind, name = ref.get("kind"), str(ref.get("name") or "")
        if kind == "Role" and ns:
            return f"Role {ns}/{name}", self.roles.get((ns, name))
        if kind == "ClusterRole":
            return f"ClusterRole {name}", self.cluster_roles.get(name)
        return f"{kind} {name}", None

    def grants(self, who: Identity, namespace: str) -> list[tuple[str, dict[str, Any]]]:
        """(where, rule) for every rule that applies to ``who`` in ``namespace``."""
        out = []
        for b in self.cluster_bindings:
            if any(subject_matches(s, who, "") for s in _list(b.get("subjects"))):
                where, role = self._role_of(b, "")
                for i, rule in enumerate(_list((role or {}).get("rules"))):
                    out.append((f"ClusterRoleBinding {_meta(b).get('name')} -> {where} rules[{i}]", rule))
        for b in self.bindings:
            bns = str(_meta(b).get("namespace") or "")
            if bns != namespace:
                continue
            if any(subject_matches(s, who, bns) for s in _list(b.get("subjects"))):
                where, role = self._role_of(b, bns)
                for i, rule in enumerate(_list((role or {}).get("rules"))):
                    out.append((f"RoleBinding {bns}/{_meta(b).get('name')} -> {where} rules[{i}]", rule))
        return out

    def why(self, who: Identity, req: Request) -> str | None:
        for where, rule in self.grants(who, req.namespace):
            if rule_allows(rule, req):
                return where
        return None

    def allowed(self, who: Identity, req: Request) -> bool:
        return self.why(who, req) is not None


# A sample of requests to probe what a rule grants when it uses wildcards.
SAMPLE_VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")


def probes_for_rule(rule: dict[str, Any], namespace: str) -> list[Request]:
    """Concrete requests that ``rule`` allows (wildcards expand to a sample), for before/after comparisons."""
    if not isinstance(rule, dict):
        return []
    verbs = _strs(rule.get("verbs"))
    verbs = list(SAMPLE_VERBS) if "*" in verbs else verbs
    groups = _strs(rule.get("apiGroups"))
    groups = ["", "apps", "batch"] if "*" in groups else groups
    resources = []
    for res in _strs(rule.get("resources")):
        if res == "*":
            resources += ["pods", "configmaps", "secrets", "deployments", "jobs", "pods/log"]
        elif res.startswith("*/"):
            resources.append("pods" + res[1:])
        elif res.endswith("/*"):
            resources += [res[:-2], res[:-1] + "status"]
        else:
            resources.append(res)
    names = _strs(rule.get("resourceNames")) or [""]
    out = []
    for v in verbs:
        for g in groups:
            for res in resources:
                base, _, sub = res.partition("/")
                for n in names:
                    out.append(Request(v, base, namespace, n, g, sub))
    return out
