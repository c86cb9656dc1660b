"""kube-apiserver audit policy engine: load a policy exactly as kube-apiserver does and evaluate requests.

Pure: takes text, dicts and request attributes; no file or network I/O, no CLI.

    result = load_policy(text)              # LoadResult(policy, errors, warnings, dropped); result.ok
    attrs = parse_request("get secrets -n prod as alice")
    result.policy.evaluate(attrs)           # Decision(level, omit_stages, omit_managed_fields, rule_index)
"""

from grader.engines.audit_policy.attributes import (
    RequestAttributes,
    RequestError,
    User,
    default_groups,
    parse_request,
)
from grader.engines.audit_policy.loader import (
    API_VERSION,
    LoadResult,
    load_policy,
    load_policy_object,
    parse_kube_version,
    pinned_kube_version,
    validate,
)
from grader.engines.audit_policy.model import LEVELS, STAGES, Decision, GroupResources, Policy, PolicyRule
from grader.engines.audit_policy.witness import witness_requests

__all__ = [
    "API_VERSION",
    "LEVELS",
    "STAGES",
    "Decision",
    "GroupResources",
    "LoadResult",
    "Policy",
    "PolicyRule",
    "RequestAttributes",
    "RequestError",
    "User",
    "default_groups",
    "load_policy",
    "load_policy_object",
    "parse_kube_version",
    "parse_request",
    "pinned_kube_version",
    "validate",
    "witness_requests",
]
