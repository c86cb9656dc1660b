"""The compiled evaluator agrees with a line-by-line transcription of kube-apiserver's checker.go."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from grader.engines.audit_policy import GroupResources, Policy, PolicyRule, RequestAttributes, User


def _has(xs, x) -> bool:
    return x in xs


def ref_matches(r: PolicyRule, a: RequestAttributes) -> bool:
    """pkg/audit/policy/checker.go ruleMatches, transcribed without any precompilation."""
    if len(r.users) > 0 and (a.user is None or not _has(r.users, a.user.username)):
        return False
    if len(r.user_groups) > 0:
        if a.user is None:
            return False
        if not any(_has(r.user_groups, g) for g in a.user.groups):
            return False
    if len(r.verbs) > 0 and not _has(r.verbs, a.verb):
        return False
    if len(r.namespaces) > 0 or len(r.resources) > 0:
        return ref_matches_resource(r, a)
    if len(r.non_resource_urls) > 0:
        return ref_matches_non_resource(r, a)
    return True


def ref_matches_resource(r: PolicyRule, a: RequestAttributes) -> bool:
    if not a.is_resource_request:
        return False
    if len(r.namespaces) > 0 and not _has(r.namespaces, a.namespace):
        return False
    if len(r.resources) == 0:
        return True
    combined = a.resource + "/" + a.subresource if a.subresource != "" else a.resource
    for gr in r.resources:
        if gr.group == a.api_group or gr.group == "*":
            if len(gr.resources) == 0:
                return True
            for res in gr.resources:
                if len(gr.resource_names) == 0 or _has(gr.resource_names, a.name):
                    if res == combined or res == "*":
                        return True
                    if len(a.subresource) > 0 and res.startswith("*/") and a.subresource == res[2:]:
                        return True
                    if res.endswith("/*") and a.resource == res[:-2]:
                        return True
    return False


def ref_matches_non_resource(r: PolicyRule, a: RequestAttributes) -> bool:
    if a.is_resource_request:
        return False
    for spec in r.non_resource_urls:
        if spec == "*" or spec == a.path or (spec.endswith("*") and a.path.startswith(spec.rstrip("*"))):
            return True
    return False


def ref_level(p: Policy, a: RequestAttributes) -> tuple[str, int | None]:
    for i, r in enumerate(p.rules):
        if ref_matches(r, a):
            return r.level, i
    return "None", None


names = st.sampled_from(["alice", "bob", "system:kube-proxy", ""])
groups = st.sampled_from(["devs", "system:authenticated", "system:nodes"])
verbs = st.sampled_from(["get", "list", "watch", "create", "delete"])
namespaces = st.sampled_from(["", "prod", "dev"])
api_groups = st.sampled_from(["", "apps", "*", "rbac.authorization.k8s.io"])
resources = st.sampled_from(["pods", "deployments", "secrets", "*"])
subs = st.sampled_from(["", "log", "exec", "scale", "*"])
paths = st.sampled_from(["/healthz", "/healthz/etcd", "/api", "/apis/apps", "/version", "/logs/x"])
specs = st.sampled_from(["/healthz", "/healthz*", "/api*", "*", "/logs/*", "/version"])


@st.composite
def res_specs(draw) -> str:
    r, s = draw(resources), draw(subs)
    return r if s == "" else f"{r}/{s}"


@st.composite
def rules(draw) -> PolicyRule:
    kind = draw(st.sampled_from(["resource", "nonresource", "any"]))
    grs = ()
    nss = ()
    urls = ()
    if kind == "resource":
        grs = tuple(GroupResources(draw(api_groups), tuple(draw(st.lists(res_specs(), max_size=3))),
                                   tuple(draw(st.lists(st.sampled_from(["web", "db"]), max_size=1))))
                    for _ in range(draw(st.integers(0, 2))))
        nss = tuple(draw(st.lists(namespaces, max_size=2)))
    elif kind == "nonresource":
        urls = tuple(draw(st.lists(specs, min_size=1, max_size=3)))
    return PolicyRule(
        level=draw(st.sampled_from(["None", "Metadata", "Request", "RequestResponse"])),
        users=tuple(draw(st.lists(names, max_size=2))),
        user_groups=tuple(draw(st.lists(groups, max_size=2))),
        verbs=tuple(draw(st.lists(verbs, max_size=2))),
        resources=grs, namespaces=nss, non_resource_urls=urls)


@st.composite
def requests(draw) -> RequestAttributes:
    user = draw(st.one_of(st.none(), st.builds(User, names, st.lists(groups, max_size=2).map(tuple))))
    if draw(st.booleans()):
        return RequestAttributes(user, draw(verbs), is_resource_request=False, path=draw(paths))
    return RequestAttributes(user, draw(verbs), draw(namespaces), draw(st.sampled_from(["", "apps", "rbac.authorization.k8s.io"])),
                             "v1", draw(st.sampled_from(["pods", "deployments", "secrets"])),
                             draw(st.sampled_from(["", "log", "exec", "scale"])),
                             draw(st.sampled_from(["", "web", "db"])), True, "")


@settings(max_examples=400, deadline=None)
@given(st.lists(rules(), min_size=1, max_size=5), st.lists(requests(), min_size=1, max_size=10))
def test_compiled_evaluator_matches_reference(rule_list, reqs) -> None:
    p = Policy(tuple(rule_list))
    for a in reqs:
        d = p.evaluate(a)
        assert (d.level, d.rule_index) == ref_level(p, a)
