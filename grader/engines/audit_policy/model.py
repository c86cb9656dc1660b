"""The decoded policy and its evaluator (kube-apiserver pkg/audit/policy/checker.go, exactly).

Rules are precompiled into sets and per-group tables, so evaluating a request is a short loop of set
look-ups: first matching rule wins, no match means level None.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from grader.engines.audit_policy.attributes import RequestAttributes

LEVELS = ("None", "Metadata", "Request", "RequestResponse")
STAGES = ("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")


@dataclass(frozen=True)
class Decision:
    """What kube-apiserver does with one request: its level, the stages it does not record, whether
    managedFields are dropped from logged bodies, and the (0-based) index of the rule that matched."""

    level: str
    omit_stages: frozenset[str]
    omit_managed_fields: bool
    rule_index: int | None

    def to_dict(self) -> dict:
        return {
            "level": self.level,
            "omitStages": sorted(self.omit_stages),
            "omitManagedFields": self.omit_managed_fields,
            "rule": self.rule_index,
        }

    def records(self, stage: str) -> bool:
        """Whether an event is written for ``stage`` (a None level writes nothing)."""
        return self.level != "None" and stage not in self.omit_stages


@dataclass(frozen=True)
class GroupResources:
    group: str = ""
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class PolicyRule:
    level: str = ""
    users: tuple[str, ...] = ()
    user_groups: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()
    resources: tuple[GroupResources, ...] = ()
    namespaces: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()
    omit_stages: tuple[str, ...] = ()
    omit_managed_fields: bool | None = None

    def summary(self) -> str:
        """A short human description, e.g. ``Metadata: resources ""/secrets,configmaps``."""
        parts = []
        if self.users:
            parts.append("users " + ",".join(self.users))
        if self.user_groups:
            parts.append("userGroups " + ",".join(self.user_groups))
        if self.verbs:
            parts.append("verbs " + ",".join(self.verbs))
        if self.namespaces:
            parts.append("namespaces " + ",".join(repr(n) if n == "" else n for n in self.namespaces))
        for gr in self.resources:
            group = '""' if gr.group == "" else gr.group
            text = f"{group}/" + (",".join(gr.resources) if gr.resources else "*")
            if gr.resource_names:
                text += " names " + ",".join(gr.resource_names)
            parts.append("resources " + text)
        if self.non_resource_urls:
            parts.append("nonResourceURLs " + ",".join(self.non_resource_urls))
        if self.omit_stages:
            parts.append("omitStages " + ",".join(self.omit_stages))
        return f"{self.level or '(no level)'}: " + ("; ".join(parts) if parts else "every request")


@dataclass(frozen=True)
class _CompiledGR:
    names: frozenset[str] | None  # resourceNames; None = any name
    any_resource: bool  # no resources listed: the whole group, subresources included
    exact: frozenset[str]  # "pods", "pods/log"
    star: bool  # "*": every resource and subresource
    sub_wild: frozenset[str]  # "*/scale" -> "scale"
    res_wild: frozenset[str]  # "pods/*" -> "pods" (also matches bare "pods", as upstream does)


@dataclass
class Policy:
    rules: tuple[PolicyRule, ...]
    omit_stages: tuple[str, ...] = ()
    omit_managed_fields: bool = False
    group_wildcard: bool = True  # group "*" matches every group (kube-apiserver 1.36+)
    _compiled: list = field(default_factory=list, repr=False, compare=False)
    _default: Decision | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._compile()

    def _compile(self) -> None:
        policy_omit = frozenset(self.omit_stages)
        self._default = Decision("None", policy_omit, bool(self.omit_managed_fields), None)
        compiled = []
        for i, r in enumerate(self.rules):
            omf = (
                r.omit_managed_fields if r.omit_managed_fields is not None else bool(self.omit_managed_fields)
            )
            decision = Decision(r.level, policy_omit | frozenset(r.omit_stages), omf, i)
            if r.namespaces or r.resources:
                kind = 1
            elif r.non_resource_urls:
                kind = 2
            else:
                kind = 0
            by_group: dict[str, list[_CompiledGR]] = {}
            star_groups: list[_CompiledGR] = []
            for gr in r.resources:
                res = gr.resources
                cgr = _CompiledGR(
                    frozenset(gr.resource_names) if gr.resource_names else None,
                    not res,
                    frozenset(res),
                    "*" in res,
                    frozenset(x[2:] for x in res if x.startswith("*/")),
                    frozenset(x[:-2] for x in res if x.endswith("/*")),
                )
                if gr.group == "*" and self.group_wildcard:
                    star_groups.append(cgr)
                else:
                    by_group.setdefault(gr.group, []).append(cgr)
            urls = r.non_resource_urls
            compiled.append(
                (
                    frozenset(r.users) if r.users else None,
                    frozenset(r.user_groups) if r.user_groups else None,
                    frozenset(r.verbs) if r.verbs else None,
                    kind,
                    frozenset(r.namespaces) if r.namespaces else None,
                    None if not r.resources else {g: tuple(v) for g, v in by_group.items()},
                    tuple(star_groups),
                    frozenset(urls),
                    "*" in urls,
                    tuple(u.rstrip("*") for u in urls if u.endswith("*") and u != "*"),
                    decision,
                )
            )
        self._compiled = compiled

    def evaluate(self, a: RequestAttributes) -> Decision:
        """The decision kube-apiserver's policy checker makes for ``a``: the first matching rule wins."""
        user = a.user
        is_res = a.is_resource_request
        sub = a.subresource
        resource = a.resource
        combined = f"{resource}/{sub}" if sub else resource
        for (
            users,
            groups,
            verbs,
            kind,
            nss,
            by_group,
            star_groups,
            url_exact,
            url_star,
            url_prefixes,
            decision,
        ) in self._compiled:
            # who and what verb (checker.go ruleMatches); inline, as this loop is the hot path
            if (
                (users is not None and (user is None or user.username not in users))
                or (groups is not None and (user is None or groups.isdisjoint(user.groups)))
                or (verbs is not None and a.verb not in verbs)
            ):
                continue
            if kind == 0:
                return decision
            if kind == 1:
                if not is_res or (nss is not None and a.namespace not in nss):
                    continue
                if by_group is None:
                    return decision
                grs = by_group.get(a.api_group, ())
                if star_groups:
                    grs = grs + star_groups
                for g in grs:
                    if g.any_resource:
                        return decision
                    if g.names is not None and a.name not in g.names:
                        continue
                    if combined in g.exact or g.star or (sub and sub in g.sub_wild) or resource in g.res_wild:
                        return decision
                continue
            # non-resource URLs (str.startswith takes the tuple of prefixes at once)
            if not is_res and (url_star or a.path in url_exact or a.path.startswith(url_prefixes)):
                return decision
        return self._default  # type: ignore[return-value]

    def evaluate_many(self, requests) -> list[Decision]:
        ev = self.evaluate
        return [ev(a) for a in requests]
