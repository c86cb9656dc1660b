"""Witness requests: for each rule, one concrete request that the rule matches, if it can be reached.

Used to check guarantees over *every* request ("RequestReceived is never recorded") beyond a fixed probe
battery: a rule that some real request reaches is exercised even if no probe thought of it.
"""

from __future__ import annotations

from grader.engines.audit_policy.attributes import RequestAttributes, User, default_groups
from grader.engines.audit_policy.model import Policy, PolicyRule


def witness_for(rule: PolicyRule) -> RequestAttributes:
    """A request this rule matches on its own (ignoring the rules before it)."""
    username = rule.users[0] if rule.users else "alice"
    groups = (rule.user_groups[0],) if rule.user_groups else default_groups(username)
    user = User(username, groups)
    verb = rule.verbs[0] if rule.verbs else "get"
    if rule.namespaces or rule.resources:
        namespace = rule.namespaces[0] if rule.namespaces else "default"
        group, resource, sub, name = "", "pods", "", ""
        if rule.resources:
            gr = rule.resources[0]
            group = "" if gr.group == "*" else gr.group
            if not gr.resources:
                resource = "pods" if group == "" else "widgets"
            else:
                res = gr.resources[0]
                if res == "*":
                    resource = "pods" if group == "" else "widgets"
                elif res.startswith("*/"):
                    resource, sub = ("pods" if group == "" else "widgets"), res[2:]
                elif res.endswith("/*"):
                    resource = res[:-2]
                else:
                    resource, _, sub = res.partition("/")
                name = gr.resource_names[0] if gr.resource_names else ""
        return RequestAttributes(user, verb, namespace, group, "v1", resource, sub, name, True, "")
    if rule.non_resource_urls:
        spec = rule.non_resource_urls[0]
        path = "/version" if spec == "*" else (spec.rstrip("*") or "/")
        return RequestAttributes(user, verb, is_resource_request=False, path=path)
    return RequestAttributes(user, verb, "default", "", "v1", "pods", "", "", True, "")


def witness_requests(policy: Policy) -> list[tuple[int, RequestAttributes]]:
    """(rule index, request) for every rule whose witness actually reaches it (not shadowed)."""
    out = []
    for i, rule in enumerate(policy.rules):
        req = witness_for(rule)
        if policy.evaluate(req).rule_index == i:
            out.append((i, req))
    return out
