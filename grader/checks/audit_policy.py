"""Checks on a kube-apiserver audit policy file, graded by evaluating probe requests through the engine.

Probes are data (lab.yaml). A probe is one request or a ``space`` of requests (a product), with what the
policy must do with it:

    - request: "get secrets -n prod as alice"     # shorthand, see engine parse_request; or a mapping
      level: Metadata                             # or a list of allowed levels
    - space: {verbs: [create, patch], resources: [pods, deployments.apps], namespaces: [prod],
              users: [alice]}                     # or paths: [/healthz] for non-resource requests
      level: RequestResponse
    - request: "create pods -n prod"
      omits: RequestReceived                      # when the request is recorded, this stage must not be

Any policy with the required behaviour passes, whatever its rule order or grouping.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from grader.checks import CheckContext, check
from grader.engines.audit_policy import (
    LEVELS,
    STAGES,
    Decision,
    LoadResult,
    Policy,
    RequestAttributes,
    RequestError,
    User,
    default_groups,
    load_policy,
    parse_kube_version,
    parse_request,
    witness_requests,
)
from grader.engines.audit_policy.attributes import resource_path
from grader.results import Evidence, Outcome
from grader.snapshot import FileProblem
from grader.text import plural

MAX_POLICY_BYTES = 2 * 1024 * 1024  # real policies are a few KB; kube-apiserver has no limit, the grader does
MAX_EVIDENCE = 3


class ProbeSpecError(ValueError):
    """The lab's probe data is wrong (an instructor's mistake, reported as an error, not a fail)."""


@dataclass(frozen=True)
class Probe:
    request: RequestAttributes
    label: str
    levels: tuple[str, ...] = ()  # allowed levels; empty = any
    omits: tuple[str, ...] = ()  # stages that must not be recorded when the request is logged
    omit_managed_fields: bool | None = None


# ---- reading the policy -----------------------------------------------------------------------------


@lru_cache(maxsize=16)
def _load(text: str, kube_version: str | None) -> LoadResult:
    return load_policy(text, kube_version)


def read_policy(
    ctx: CheckContext, node: str, path: str, kube_version: str | None = None
) -> tuple[LoadResult | None, Outcome | None]:
    """(load result, None) or (None, the outcome to return: the file is missing, unreadable, ...)."""
    where = f"{node}:{path}"
    try:
        text = ctx.snap.read_text(node, path, max_bytes=MAX_POLICY_BYTES)
    except FileProblem as exc:
        ev = Evidence(where, "an audit policy file (audit.k8s.io/v1 Policy)", _file_actual(exc))
        if exc.is_environment_problem:
            return None, Outcome.error(f"could not read the policy: {exc}", ev)
        if exc.kind == "missing":
            return None, Outcome.failed(f"no audit policy at {where}: write it there", ev)
        return None, Outcome.failed(f"the policy cannot be used: {exc}", ev)
    return _load(text, kube_version), None


def _file_actual(exc: FileProblem) -> str:
    return {
        "missing": "no such file",
        "is_directory": "a directory",
        "not_a_file": "not a regular file",
        "too_large": "too large",
        "binary": "binary content",
    }.get(exc.kind, str(exc))


def explain_load_error(error: str, kube_version: str | None = None) -> str:
    """kube-apiserver's own words, plus why where they alone would puzzle (a wildcard the docs now show)."""
    if 'resources.group: Invalid value: "*"' in error:
        version = parse_kube_version(kube_version)
        return (
            f'{error.split(": a lowercase")[0]}: group "*" is accepted only from Kubernetes 1.36 on, and '
            f"this cluster runs {version[0]}.{version[1]}: list the API groups instead"
        )
    return error


def _not_loading(result: LoadResult, where: str, kube_version: str | None = None) -> Outcome:
    first = explain_load_error(result.errors[0], kube_version) if result.errors else "it does not load"
    more = f" (and {len(result.errors) - 1} more errors)" if len(result.errors) > 1 else ""
    return Outcome.failed(
        f"the policy does not load, so kube-apiserver would not start: {first}{more}",
        Evidence(where, "a policy kube-apiserver loads", "; ".join(result.errors[:MAX_EVIDENCE])),
    )


# ---- checks ------------------------------------------------------------------------------------------


@check("audit_policy.loads")
def loads(
    ctx: CheckContext, node: str, path: str, allow_dropped_keys: bool = False, kube_version: str | None = None
) -> Outcome:
    """The file is a policy kube-apiserver would load; unless ``allow_dropped_keys``, with no key it drops."""
    result, problem = read_policy(ctx, node, path, kube_version)
    if problem:
        return problem
    where = f"{node}:{path}"
    if not result.ok:
        errs = result.errors
        more = f" (and {len(errs) - 1} more)" if len(errs) > 1 else ""
        evidence = [Evidence(where, "a policy kube-apiserver loads", e) for e in errs[:MAX_EVIDENCE]]
        evidence += [Evidence(where, "no dropped keys", w) for w in result.dropped[:MAX_EVIDENCE]]
        return Outcome.failed(
            f"kube-apiserver would refuse this policy and not start: "
            f"{explain_load_error(errs[0], kube_version)}{more}",
            *evidence,
        )
    if result.dropped and not allow_dropped_keys:
        more = f" (and {len(result.dropped) - 1} more)" if len(result.dropped) > 1 else ""
        dropped = Outcome.failed(
            f"kube-apiserver loads it but silently drops keys, so rules match more than written: "
            f"{result.dropped[0]}{more}",
            *[
                Evidence(where, "every key is one kube-apiserver knows", w)
                for w in result.dropped[:MAX_EVIDENCE]
            ],
        )
        dropped.blocks_dependents = False  # kube-apiserver runs with it: later tasks judge what it does
        return dropped
    n = len(result.policy.rules)
    return Outcome.passed(
        f"kube-apiserver loads the policy ({n} rule{'s' if n != 1 else ''})",
        Evidence(where, "a policy kube-apiserver loads", f"loads, {n} rules"),
    )


@check("audit_policy.probes")
def probes(
    ctx: CheckContext,
    node: str,
    path: str,
    probes: list | None = None,
    requests_from: list | None = None,
    expect: dict | None = None,
    witnesses: bool = False,
    require_recorded: bool = False,
    kube_version: str | None = None,
) -> Outcome:
    """Evaluate every probe through the policy as kube-apiserver would; each must get what it expects.

    ``requests_from``: reuse the requests of these tasks' probes (their expectations are ignored) with
    ``expect`` (same keys as a probe: level, omits, omit_managed_fields). ``witnesses``: also one request
    per reachable rule of the learner's policy, with ``expect``, so a guarantee over every request is not
    limited to the probes. ``require_recorded``: fail when none of the requests is logged at all (a policy
    that logs nothing does not meet "stage X is never recorded" in any useful sense).
    """
    try:
        battery = build_probes(probes or [])
        if requests_from:
            battery += _borrowed(ctx, requests_from, expect or {})
        default = _expectation(expect or {}, "expect") if witnesses else None
    except ProbeSpecError as exc:
        return Outcome.error(f"the lab's probe data is wrong: {exc}")
    if not battery and not witnesses:
        return Outcome.error("the lab's task has no probes to evaluate")
    result, problem = read_policy(ctx, node, path, kube_version)
    if problem:
        return problem
    where = f"{node}:{path}"
    if not result.ok:
        return _not_loading(result, where, kube_version)
    policy = result.policy
    if witnesses and default is not None:
        levels, omits, omf = default
        for i, req in witness_requests(policy):
            battery.append(Probe(req, f"{req.describe()} [reaches rules[{i}]]", levels, omits, omf))
    failures, recorded = _judge_battery(policy, battery)
    if require_recorded and recorded == 0 and battery:
        return _nothing_recorded(policy, battery, where)
    if not failures:
        dropped = (
            f"; note: kube-apiserver drops {plural(len(result.dropped), 'key')}" if result.dropped else ""
        )
        return Outcome.passed(f"all {len(battery)} probe requests get what they should{dropped}")
    probe, decision, text = failures[0]
    more = f"; {len(failures) - 1} more of {len(battery)} probes fail" if len(failures) > 1 else ""
    hint = ""
    if result.dropped:
        hint = f" (kube-apiserver dropped keys from this policy: {result.dropped[0]})"
    evidence = [
        Evidence(f"{where} | {p.label}", _expected_text(p), _actual_text(d, policy))
        for p, d, _ in failures[:MAX_EVIDENCE]
    ]
    return Outcome.failed(f"{probe.label}: {text}{more}{hint}", *evidence)


def _judge_battery(policy: Policy, battery: list[Probe]) -> tuple[list[tuple[Probe, Decision, str]], int]:
    """(the probes that do not get what they expect, with the policy's decision and why; how many
    requests are recorded at all)."""
    failures: list[tuple[Probe, Decision, str]] = []
    recorded = 0
    for probe in battery:
        decision = policy.evaluate(probe.request)
        if decision.records(_COMPLETE):
            recorded += 1
        problem_text = judge(probe, decision)
        if problem_text:
            failures.append((probe, decision, problem_text))
    return failures, recorded


def _nothing_recorded(policy: Policy, battery: list[Probe], where: str) -> Outcome:
    """A policy that logs none of the probe requests records nothing to judge."""
    first = battery[0]
    d0 = policy.evaluate(first.request)
    got = (
        f"level None ({_rule_ref(d0)})"
        if d0.level == "None"
        else f"{d0.level} with {_COMPLETE} omitted ({_rule_ref(d0)})"
    )
    return Outcome.failed(
        f"{first.label}: expected an event, got {got}; the policy logs none of the {len(battery)} probe "
        f"requests (each gets level None or has its {_COMPLETE} stage omitted), so it records nothing "
        "to judge",
        Evidence(
            where, "requests that are logged", f"every probe request gets level None or omits {_COMPLETE}"
        ),
    )


# ---- judging -------------------------------------------------------------------------------------------


def judge(probe: Probe, d: Decision) -> str | None:
    """None when the decision meets the probe, else what is wrong (learner-facing)."""
    rule = _rule_ref(d)
    if probe.levels and d.level not in probe.levels:
        want = probe.levels[0] if len(probe.levels) == 1 else " or ".join(probe.levels)
        return f"expected {want}, got {d.level} ({rule})"
    if probe.levels and d.level != "None" and not d.records(_COMPLETE):
        # a logged request whose ResponseComplete stage is omitted writes no event once it completes
        # (at most RequestReceived, or ResponseStarted for watch/exec): in effect it is not logged
        return (
            f"expected {d.level} with a {_COMPLETE} event, got {d.level} with {_COMPLETE} omitted ({rule} "
            f"omits {_stages(d)}): no event is written when the request completes"
        )
    for stage in probe.omits:
        if d.records(stage):
            return f"{stage} is recorded (level {d.level}, {rule} omits {_stages(d)})"
    if (
        probe.omit_managed_fields is not None
        and d.level != "None"
        and d.omit_managed_fields is not probe.omit_managed_fields
    ):
        return (
            f"managedFields are {'omitted' if d.omit_managed_fields else 'kept'} ({rule}), expected "
            f"{'omitted' if probe.omit_managed_fields else 'kept'}"
        )
    return None


_COMPLETE = "ResponseComplete"


def _rule_ref(d: Decision) -> str:
    return "no rule matched: default None" if d.rule_index is None else f"rules[{d.rule_index}]"


def _stages(d: Decision) -> str:
    return ",".join(sorted(d.omit_stages)) or "no stage"


def _expected_text(p: Probe) -> str:
    parts = []
    if p.levels:
        parts.append("level " + " or ".join(p.levels))
    if p.omits:
        parts.append(", ".join(p.omits) + " not recorded")
    if p.omit_managed_fields is not None:
        parts.append("managedFields " + ("omitted" if p.omit_managed_fields else "kept"))
    return "; ".join(parts) or "(anything)"


def _actual_text(d: Decision, policy: Policy) -> str:
    if d.rule_index is None:
        return "level None (no rule matched)"
    text = f"level {d.level} by rules[{d.rule_index}] ({policy.rules[d.rule_index].summary()})"
    if d.omit_stages:
        text += f"; omitStages {_stages(d)}"
    return text


# ---- probe data -> requests -----------------------------------------------------------------------------

_PROBE_KEYS = {"request", "space", "level", "omits", "omit_managed_fields", "note"}
_SPACE_KEYS = {"verbs", "resources", "namespaces", "users", "paths", "names"}


def build_probes(raw: list) -> list[Probe]:
    """lab.yaml probe entries -> probes (a ``space`` entry expands to the product of its lists)."""
    if not isinstance(raw, list):
        raise ProbeSpecError("probes must be a list")
    out: list[Probe] = []
    for i, entry in enumerate(raw):
        where = f"probes[{i}]"
        if isinstance(entry, str):
            entry = {"request": entry}
        if not isinstance(entry, dict):
            raise ProbeSpecError(f"{where}: must be a mapping with request or space, and level/omits")
        unknown = sorted(set(entry) - _PROBE_KEYS)
        if unknown:
            raise ProbeSpecError(
                f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(sorted(_PROBE_KEYS))}"
            )
        levels, omits, omf = _expectation(entry, where)
        for req, label in _requests(entry, where):
            out.append(Probe(req, label, levels, omits, omf))
    return out


def _expectation(entry: dict, where: str) -> tuple[tuple[str, ...], tuple[str, ...], bool | None]:
    level = entry.get("level")
    levels = tuple(level) if isinstance(level, list) else ((level,) if level is not None else ())
    for lv in levels:
        if lv not in LEVELS:
            raise ProbeSpecError(f"{where}: level {lv!r} is not one of {', '.join(LEVELS)}")
    omits_raw = entry.get("omits")
    omits = tuple(omits_raw) if isinstance(omits_raw, list) else ((omits_raw,) if omits_raw else ())
    for st in omits:
        if st not in STAGES:
            raise ProbeSpecError(f"{where}: omits {st!r} is not one of {', '.join(STAGES)}")
    omf = entry.get("omit_managed_fields")
    if omf is not None and not isinstance(omf, bool):
        raise ProbeSpecError(f"{where}: omit_managed_fields must be true or false")
    return levels, omits, omf


def _requests(entry: dict, where: str) -> list[tuple[RequestAttributes, str]]:
    if ("request" in entry) == ("space" in entry):
        raise ProbeSpecError(f"{where}: give exactly one of request or space")
    try:
        if "request" in entry:
            raw = entry["request"]
            if isinstance(raw, str):
                req = parse_request(raw)
                return [(req, raw)]
            req = RequestAttributes.from_mapping(raw, f"{where}.request")
            return [(req, req.describe())]
        return [(req, req.describe()) for req in _space(entry["space"], f"{where}.space")]
    except RequestError as exc:
        raise ProbeSpecError(str(exc)) from None


def _space(space: Any, where: str) -> list[RequestAttributes]:
    if not isinstance(space, dict):
        raise ProbeSpecError(f"{where}: must be a mapping of lists ({', '.join(sorted(_SPACE_KEYS))})")
    unknown = sorted(set(space) - _SPACE_KEYS)
    if unknown:
        raise ProbeSpecError(
            f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(sorted(_SPACE_KEYS))}"
        )

    def lst(key: str, default: list) -> list:
        val = space.get(key, default)
        if not isinstance(val, list) or not val:
            raise ProbeSpecError(f"{where}.{key}: must be a non-empty list")
        return val

    if ("resources" in space) == ("paths" in space):
        raise ProbeSpecError(f"{where}: give resources (resource requests) or paths (non-resource URLs)")
    verbs = [str(v) for v in lst("verbs", ["get"])]
    users = [None if u is None else User(str(u), default_groups(str(u))) for u in lst("users", ["alice"])]
    out = []
    if "paths" in space:
        for verb, p, user in itertools.product(verbs, lst("paths", []), users):
            out.append(RequestAttributes(user, verb, is_resource_request=False, path=str(p)))
        return out
    # parse each resource once, through the shorthand so a space means what a single probe would
    targets = [parse_request(f"get {res}") for res in lst("resources", [])]
    for verb, t, ns, name, user in itertools.product(
        verbs, targets, lst("namespaces", [""]), lst("names", [""]), users
    ):
        ns, name = str(ns or ""), str(name or "")
        out.append(
            RequestAttributes(
                user,
                verb,
                ns,
                t.api_group,
                t.api_version,
                t.resource,
                t.subresource,
                name,
                True,
                resource_path(t.api_group, t.api_version, ns, t.resource, name, t.subresource),
            )
        )
    return out


def _borrowed(ctx: CheckContext, task_ids: list, expect: dict) -> list[Probe]:
    """The requests of other tasks' probes (rendered for this learner's variant) with ``expect``."""
    from grader.variants import render

    levels, omits, omf = _expectation(expect, "expect")
    by_id = {t.id: t for t in ctx.lab.tasks}
    out: list[Probe] = []
    for tid in task_ids:
        task = by_id.get(tid)
        if task is None:
            raise ProbeSpecError(f"requests_from: no task {tid!r} in {ctx.lab.id}")
        params = render(task.params, ctx.variant)
        for p in build_probes(params.get("probes") or []):
            out.append(Probe(p.request, p.label, levels, omits, omf))
    return out
