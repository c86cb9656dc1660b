"""Load an audit policy exactly as kube-apiserver does (pkg/audit/policy/reader.go + validation.go).

1. YAML -> object (through grader.safeyaml: bombs, binary, deep nesting become clear errors).
2. apiVersion/kind: only ``audit.k8s.io/v1`` ``Policy`` (v1alpha1/v1beta1 were removed in 1.24).
3. Strict decode; on unknown or duplicate fields kube-apiserver falls back to lenient decoding and only
   logs a warning, so those keys are DROPPED. We do the same and name every dropped key and where.
   Type errors (a string where a list belongs) are fatal ("failed decoding").
4. ValidatePolicy, with errors worded as kube-apiserver's field errors.
5. A policy with 0 rules is refused.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import yaml

from grader import safeyaml
from grader.engines.audit_policy.model import LEVELS, STAGES, GroupResources, Policy, PolicyRule
from grader.engines.objectmeta import OBJECT_META_FIELDS

API_VERSION = "audit.k8s.io/v1"
LATEST = (1, 36)  # the newest behaviour this engine knows


def pinned_kube_version() -> tuple[int, int]:
    """The lab cluster's kube-apiserver (K8S_VERSION in provision/versions.env): the default for every load,
    so a policy is judged by the release the labs run. The newest known behaviour when the file is absent."""
    try:
        from grader import versions

        return versions.kubernetes_minor()
    except Exception:  # a missing or broken versions file must not stop a policy check
        return LATEST


_GROUP_WILDCARD_SINCE = (1, 36)

_POLICY_FIELDS = ("apiVersion", "kind", "metadata", "rules", "omitStages", "omitManagedFields")
_RULE_FIELDS = (
    "level",
    "users",
    "userGroups",
    "verbs",
    "resources",
    "namespaces",
    "nonResourceURLs",
    "omitStages",
    "omitManagedFields",
)
_GR_FIELDS = ("group", "resources", "resourceNames")

_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1123_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_SUPPORTED_LEVELS = ", ".join(f'"{lv}"' for lv in LEVELS)


@dataclass
class LoadResult:
    """``policy`` is set when kube-apiserver would load the file. ``warnings`` are what it would log;
    ``dropped`` is the subset about keys it drops (unknown or duplicate fields)."""

    policy: Policy | None = None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.policy is not None and not self.errors


class _DecodeError(Exception):
    pass


def parse_kube_version(version: str | tuple[int, int] | None) -> tuple[int, int]:
    """``"1.35"``, ``"v1.35.2"`` or ``(1, 35)`` -> ``(1, 35)``; None = the lab cluster's version."""
    if version is None:
        return pinned_kube_version()
    if isinstance(version, tuple):
        return version
    m = re.match(r"^v?(\d+)\.(\d+)", str(version).strip())
    if not m:
        raise ValueError(f"kube_version {version!r}: write it as 1.35 or v1.35.2")
    return int(m.group(1)), int(m.group(2))


def load_policy(text: str | bytes, kube_version: str | tuple[int, int] | None = None) -> LoadResult:
    """Load the text of ``--audit-policy-file`` as kube-apiserver ``kube_version`` would (default: the lab
    cluster's)."""
    result = LoadResult()
    if isinstance(text, bytes | bytearray) and b"\x00" in text[:65536]:
        result.errors.append("the file is binary (it contains NUL bytes), not YAML")
        return result
    if not (text.strip() if isinstance(text, str) else bytes(text).strip()):
        result.errors.append(
            "the file is empty; kube-apiserver refuses it (a policy needs apiVersion: "
            "audit.k8s.io/v1, kind: Policy and at least one rule)"
        )
        return result
    try:
        docs = safeyaml.load_all(text)
    except safeyaml.YamlProblem as exc:
        result.errors.append(f"failed decoding: {exc}")
        return result
    present = [d for d in docs if d is not None]
    if not present:
        result.errors.append(
            "the file holds no YAML document (only comments?); kube-apiserver refuses it "
            "(a policy needs apiVersion: audit.k8s.io/v1, kind: Policy and at least one rule)"
        )
        return result
    if len(docs) > 1:
        result.warnings.append(
            f"the file holds {len(docs)} YAML documents; kube-apiserver reads only the first"
        )
    lines, duplicates = _node_info(text)
    result.dropped.extend(duplicates)
    return _load_object(
        docs[0] if docs[0] is not None else present[0],
        result,
        kube_version,
        lines,
        require_type_meta=True,
        allow_empty=False,
    )


def load_policy_object(
    data: Any,
    kube_version: str | tuple[int, int] | None = None,
    *,
    require_type_meta: bool = True,
    allow_empty: bool = False,
) -> LoadResult:
    """The same from an already parsed object (e.g. a policy embedded in test data).

    ``require_type_meta=False, allow_empty=True`` is kube-apiserver's ``ValidatePolicy`` alone."""
    return _load_object(
        data, LoadResult(), kube_version, {}, require_type_meta=require_type_meta, allow_empty=allow_empty
    )


def _load_object(
    data: Any,
    result: LoadResult,
    kube_version: Any,
    lines: dict[str, int],
    *,
    require_type_meta: bool,
    allow_empty: bool,
) -> LoadResult:
    version = parse_kube_version(kube_version)
    if not isinstance(data, dict):
        result.errors.append(
            f"failed decoding: the policy must be a mapping (apiVersion, kind, rules), got {_kind(data)}"
        )
        return result
    if require_type_meta and not _type_meta_ok(data, result):
        return result
    dec = _Decoder(lines)
    try:
        policy = dec.policy(data, version)
    except _DecodeError as exc:
        policy = None
        result.errors.append(f"failed decoding: {exc}")
    result.dropped.extend(dec.dropped)
    result.warnings[:0] = result.dropped  # dropped keys first: they explain most surprises
    if policy is None:
        return result
    errors = validate(policy, version)
    if errors:
        result.errors.extend(errors)
        return result
    if not policy.rules and not allow_empty:
        result.errors.append("loaded illegal policy with 0 rules")
        return result
    result.policy = policy
    return result


def _type_meta_ok(data: dict, result: LoadResult) -> bool:
    api = data.get("apiVersion")
    kind = data.get("kind")
    if api is None or api == "":
        result.errors.append(
            "unknown group version field: apiVersion is missing "
            f"(kube-apiserver needs apiVersion: {API_VERSION} and kind: Policy)"
        )
        return False
    if not isinstance(api, str) or not isinstance(kind, str | type(None)):
        result.errors.append("failed decoding: apiVersion and kind must be strings")
        return False
    if api != API_VERSION:
        hint = (
            " (audit.k8s.io/v1alpha1 and v1beta1 were removed in Kubernetes 1.24; use audit.k8s.io/v1)"
            if api.startswith("audit.k8s.io/")
            else f" (use apiVersion: {API_VERSION})"
        )
        result.errors.append(
            f'failed decoding: no kind "{kind or "Policy"}" is registered for version "{api}"{hint}'
        )
        return False
    if kind is None or kind == "":
        # the decoder defaults a missing kind from the target type, so this still loads
        result.warnings.append("kind is missing; kube-apiserver assumes kind: Policy (write it out)")
        return True
    if kind != "Policy":
        result.errors.append(
            f'failed decoding: no kind "{kind}" is registered for version "{api}" (the kind must be Policy)'
        )
        return False
    return True


class _Decoder:
    """Lenient decoding into typed rules, remembering each key strict decoding would reject."""

    def __init__(self, lines: dict[str, int]):
        self.lines = lines
        self.dropped: list[str] = []

    def _at(self, path: str) -> str:
        line = self.lines.get(path)
        return f" (line {line})" if line else ""

    def _fields(self, obj: dict, allowed: Collection[str], path: str) -> None:
        for key in obj:
            if key not in allowed:
                where = f"{path}." if path else ""
                keypath = f"{where}{key}"
                self.dropped.append(
                    f'{path or "(top level)"}: unknown field "{key}" dropped{self._at(keypath)}'
                )

    def policy(self, d: dict, version: tuple[int, int]) -> Policy:
        self._fields(d, _POLICY_FIELDS, "")
        meta = d.get("metadata")
        if meta is not None:
            if not isinstance(meta, dict):
                raise _DecodeError(f"metadata: expected a mapping, got {_kind(meta)}")
            self._fields(meta, OBJECT_META_FIELDS, "metadata")
        raw_rules = self._list(d.get("rules"), "rules")
        rules = tuple(self.rule(r, f"rules[{i}]") for i, r in enumerate(raw_rules))
        return Policy(
            rules,
            self._strs(d.get("omitStages"), "omitStages"),
            bool(self._bool(d.get("omitManagedFields"), "omitManagedFields")),
            group_wildcard=version >= _GROUP_WILDCARD_SINCE,
        )

    def rule(self, r: Any, path: str) -> PolicyRule:
        if r is None:
            return PolicyRule()
        if not isinstance(r, dict):
            raise _DecodeError(
                f"{path}: expected a mapping (a rule with level, resources, ...), got {_kind(r)}"
            )
        self._fields(r, _RULE_FIELDS, path)
        level = self._str(r.get("level"), f"{path}.level")
        resources = tuple(
            self.group_resources(g, f"{path}.resources[{i}]")
            for i, g in enumerate(self._list(r.get("resources"), f"{path}.resources"))
        )
        return PolicyRule(
            level=level,
            users=self._strs(r.get("users"), f"{path}.users"),
            user_groups=self._strs(r.get("userGroups"), f"{path}.userGroups"),
            verbs=self._strs(r.get("verbs"), f"{path}.verbs"),
            resources=resources,
            namespaces=self._strs(r.get("namespaces"), f"{path}.namespaces"),
            non_resource_urls=self._strs(r.get("nonResourceURLs"), f"{path}.nonResourceURLs"),
            omit_stages=self._strs(r.get("omitStages"), f"{path}.omitStages"),
            omit_managed_fields=self._bool(r.get("omitManagedFields"), f"{path}.omitManagedFields"),
        )

    def group_resources(self, g: Any, path: str) -> GroupResources:
        if g is None:
            return GroupResources()
        if not isinstance(g, dict):
            raise _DecodeError(
                f"{path}: expected a mapping with group, resources, resourceNames, got {_kind(g)}"
                + (f" ({g!r})" if isinstance(g, str) else "")
            )
        self._fields(g, _GR_FIELDS, path)
        return GroupResources(
            self._str(g.get("group"), f"{path}.group"),
            self._strs(g.get("resources"), f"{path}.resources"),
            self._strs(g.get("resourceNames"), f"{path}.resourceNames"),
        )

    # ---- scalar decoding, as Go's encoding/json would into string / []string / *bool fields ---------
    def _list(self, v: Any, path: str) -> list:
        if v is None:
            return []
        if not isinstance(v, list):
            raise _DecodeError(f"{path}: expected a list, got {_kind(v)}{_show(v)}{self._at(path)}")
        return v

    def _strs(self, v: Any, path: str) -> tuple[str, ...]:
        return tuple(self._str(x, f"{path}[{i}]") for i, x in enumerate(self._list(v, path)))

    def _str(self, v: Any, path: str) -> str:
        if v is None:
            return ""
        if isinstance(v, str):
            return v
        if isinstance(v, _dt.date | _dt.datetime):  # YAML timestamps reach Go as strings
            return v.isoformat()
        raise _DecodeError(f"{path}: expected a string, got {_kind(v)}{_show(v)}{self._at(path)}")

    def _bool(self, v: Any, path: str) -> bool | None:
        if v is None:
            return None
        if isinstance(v, bool):
            return v
        raise _DecodeError(f"{path}: expected true or false, got {_kind(v)}{_show(v)}{self._at(path)}")


def validate(policy: Policy, kube_version: tuple[int, int] | None = None) -> list[str]:
    """kube-apiserver's ValidatePolicy, with its field-error wording."""
    kube_version = kube_version or pinned_kube_version()
    errs = _omit_stages(policy.omit_stages, "omitStages")
    for i, rule in enumerate(policy.rules):
        p = f"rules[{i}]"
        if rule.level == "":
            errs.append(f"{p}.level: Required value")
        elif rule.level not in LEVELS:
            errs.append(
                f'{p}.level: Unsupported value: "{rule.level}": supported values: {_SUPPORTED_LEVELS}'
            )
        for j, url in enumerate(rule.non_resource_urls):
            if url == "*":
                continue
            if not url.startswith("/"):
                errs.append(
                    f"{p}.nonResourceURLs[{j}]: Invalid value: {_q(url)}: non-resource URL rules must "
                    "begin with a '/' character"
                )
            if url and "*" in url[:-1]:
                errs.append(
                    f"{p}.nonResourceURLs[{j}]: Invalid value: {_q(url)}: non-resource URL wildcards "
                    "'*' must be the final character of the rule"
                )
        for gr in rule.resources:
            wildcard_ok = gr.group == "*" and kube_version >= _GROUP_WILDCARD_SINCE
            if gr.group and not wildcard_ok:
                msgs = []
                if len(gr.group) > 253:
                    msgs.append("must be no more than 253 characters")
                if not _DNS1123_SUBDOMAIN.match(gr.group):
                    msgs.append(_DNS1123_MSG)
                if msgs:
                    errs.append(f"{p}.resources.group: Invalid value: {_q(gr.group)}: {','.join(msgs)}")
            if gr.resource_names and not gr.resources:
                errs.append(
                    f"{p}.resources.resourceNames: Invalid value: {_json(gr.resource_names)}: "
                    "using resourceNames requires at least one resource"
                )
        errs.extend(_omit_stages(rule.omit_stages, f"{p}.omitStages"))
        if rule.non_resource_urls and (rule.resources or rule.namespaces):
            errs.append(
                f"{p}.nonResourceURLs: Invalid value: {_json(rule.non_resource_urls)}: rules cannot "
                "apply to both regular resources and non-resource URLs"
            )
    return errs


def _omit_stages(stages: tuple[str, ...], path: str) -> list[str]:
    return [
        f"{path}[{i}]: Invalid value: {_q(s)}: allowed stages are {','.join(STAGES)}"
        for i, s in enumerate(stages)
        if s not in STAGES
    ]


def _q(s: str) -> str:
    import json

    return json.dumps(s, ensure_ascii=False)


def _json(items: tuple[str, ...]) -> str:
    import json

    return json.dumps(list(items), ensure_ascii=False, separators=(",", ":"))


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int | float):
        return "a number"
    return {dict: "a mapping", list: "a list", str: "a string", type(None): "null"}.get(
        type(v), type(v).__name__
    )


def _show(v: Any) -> str:
    if isinstance(v, str | int | float | bool):
        text = repr(v)
        return f" ({text[:60]})"
    return ""


# ---- line numbers and duplicate keys, from the composed YAML ----------------------------------------
_MAX_NODES_FOR_LINES = 100_000


def _node_info(text: str | bytes) -> tuple[dict[str, int], list[str]]:
    """Map field paths (``rules[2].resources[0].resource``) to line numbers, and list duplicate keys.

    Runs only after safeyaml accepted the text, so composing it again is bounded."""
    lines: dict[str, int] = {}
    dups: list[str] = []
    try:
        loader_cls = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        root = yaml.compose(text, Loader=loader_cls)
    except yaml.YAMLError:
        return lines, dups
    except Exception:  # several documents or anything odd: line numbers are a nicety
        return lines, dups
    if root is None:
        return lines, dups
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, str]] = [(root, "")]
    count = 0
    while stack and count < _MAX_NODES_FOR_LINES:
        node, path = stack.pop()
        count += 1
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            keys: dict[str, int] = {}
            for k, v in node.value:
                if not isinstance(k, yaml.ScalarNode):
                    continue
                name = str(k.value)
                sub = f"{path}.{name}" if path else name
                line = k.start_mark.line + 1
                if name in keys and name != "<<":
                    dups.append(
                        f'{path or "(top level)"}: duplicate field "{name}" (lines {keys[name]} and '
                        f"{line}); kube-apiserver keeps only the last value"
                    )
                keys[name] = line
                lines.setdefault(sub, line)
                stack.append((v, sub))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                sub = f"{path}[{i}]"
                lines.setdefault(sub, item.start_mark.line + 1)
                stack.append((item, sub))
    return lines, dups
