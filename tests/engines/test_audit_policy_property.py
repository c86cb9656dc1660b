"""The compiled evaluator agrees with a line-by-line transcription of kube-apiserver's checker.go."""

from __future__ import annotations

import itertools

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


# Small vocabularies shared by rules and requests, so rules often match and every branch is exercised.
USERS = [
    User("alice", ("devs", "system:authenticated")),
    User("system:kube-proxy", ("system:authenticated",)),
    None,
]
VERBS = ["get", "create"]
NAMESPACES = ["", "prod"]
GROUPS = ["", "apps"]
RESOURCES = ["pods", "secrets"]
SUBS = ["", "log", "scale"]
NAMES = ["", "web"]
PATHS = ["/healthz", "/healthz/etcd", "/api", "/apis/apps", "/version", "/logs/x"]


def universe() -> list[RequestAttributes]:
    """Every combination of the vocabularies: each generated policy is checked on all of them."""
    out = []
    for user, verb, ns, group, res, sub, name in itertools.product(
        USERS, VERBS, NAMESPACES, GROUPS, RESOURCES, SUBS, NAMES
    ):
        out.append(RequestAttributes(user, verb, ns, group, "v1", res, sub, name, True, ""))
    for user, verb, path in itertools.product(USERS, VERBS, PATHS):
        out.append(RequestAttributes(user, verb, is_resource_request=False, path=path))
    return out


UNIVERSE = universe()


def small_lists(values) -> st.SearchStrategy:
    # empty half the time: an empty list means "any" and lets the other fields decide
    return st.one_of(st.just(()), st.lists(st.sampled_from(values), min_size=1, max_size=2).map(tuple))


@st.composite
def res_specs(draw) -> str:
    r = draw(st.sampled_from(RESOURCES + ["*", "deployments"]))
    s = draw(st.sampled_from(SUBS + ["*"]))
    return r if s == "" else f"{r}/{s}"


@st.composite
def rules(draw) -> PolicyRule:
    kind = draw(st.sampled_from(["resource", "resource", "nonresource", "any"]))
    grs: tuple = ()
    nss: tuple = ()
    urls: tuple = ()
    if kind == "resource":
        grs = tuple(
            GroupResources(
                draw(st.sampled_from(GROUPS + ["*", "rbac.authorization.k8s.io"])),
                draw(small_lists([draw(res_specs()) for _ in range(3)])),
                draw(small_lists(["web", "db"])),
            )
            for _ in range(draw(st.integers(0, 2)))
        )
        nss = draw(small_lists(NAMESPACES + ["dev"]))
    elif kind == "nonresource":
        urls = tuple(
            draw(
                st.lists(
                    st.sampled_from(["/healthz", "/healthz*", "/api*", "*", "/logs/*", "/version"]),
                    min_size=1,
                    max_size=3,
                )
            )
        )
    return PolicyRule(
        level=draw(st.sampled_from(["None", "Metadata", "Request", "RequestResponse"])),
        users=draw(small_lists(["alice", "system:kube-proxy", "bob"])),
        user_groups=draw(small_lists(["devs", "system:authenticated", "system:nodes"])),
        verbs=draw(small_lists(VERBS + ["watch"])),
        resources=grs,
        namespaces=nss,
        non_resource_urls=urls,
    )


@settings(max_examples=150, deadline=None)
@given(st.lists(rules(), min_size=1, max_size=5))
def test_compiled_evaluator_matches_reference(rule_list) -> None:
    p = Policy(tuple(rule_list))
    for a in UNIVERSE:
        d = p.evaluate(a)
        assert (d.level, d.rule_index) == ref_level(p, a), a
