"""Falco checks: rules are graded by loading them as Falco does and running them on events; a response
is graded against the offenders recorded in the lab's starting state."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from grader import safeyaml
from grader.checks import CheckContext, check
from grader.results import Evidence, Outcome
from grader.snapshot import FileProblem, Snapshot, object_key

DEFAULT_RULES = "/etc/falco/falco_rules.yaml"
LOCAL_RULES = "/etc/falco/falco_rules.local.yaml"
RULES_DIR = "/etc/falco/rules.d"


# ---------------------------------------------------------------------------------------------- rules


def _rules_files(snap: Snapshot, node: str, default_path: str, local_path: str,
                 rules_dir: str) -> list[tuple[str, bytes]]:
    """The files Falco loads by default, in its order: default file, local file, rules.d (*.yaml, *.yml)."""
    files = [(default_path, snap.read_bytes(node, default_path))]
    if snap.exists(node, local_path):
        files.append((local_path, snap.read_bytes(node, local_path)))
    if snap.is_dir(node, rules_dir):
        for name in snap.list_dir(node, rules_dir):
            path = f"{rules_dir.rstrip('/')}/{name}"
            if name.endswith((".yaml", ".yml")) and not snap.is_dir(node, path):
                files.append((path, snap.read_bytes(node, path)))
    return files


@lru_cache(maxsize=32)
def _load_cached(files: tuple[tuple[str, bytes], ...]):
    from grader.engines.falco.loader import load_rules

    return load_rules(list(files))


@lru_cache(maxsize=16)
def _event_set(path: str, mtime: float) -> dict[str, Any]:
    data = safeyaml.load_one(Path(path).read_bytes())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: the lab's event set must be a mapping of name -> {{positive, negative}}")
    return data


def _events(ctx: CheckContext, events_file: str, key: str) -> tuple[list, list]:
    from grader.engines.falco.events import event_from_mapping

    path = ctx.lab.dir / events_file
    sets = _event_set(str(path), path.stat().st_mtime)
    entry = sets.get(key)
    if not isinstance(entry, dict):
        raise ValueError(f"{path}: no event set {key!r}")

    def build(kind: str) -> list:
        out = []
        for i, raw in enumerate(entry.get(kind) or []):
            out.append((raw.get("_name", f"{kind} event {i + 1}"), event_from_mapping(raw, num=i + 1)))
        return out

    return build("positive"), build("negative")


def _defined_in(files: list[tuple[str, bytes]], path: str, rule: str) -> bool:
    """The rule is defined in ``path`` even if a later file (rules.d) redefines or overrides it."""
    upto = files[:next((i for i, (p, _) in enumerate(files) if p == path), len(files)) + 1]
    res = _load_cached(tuple(upto))
    found = res.rule(rule) if res.successful else None
    return found is not None and found.file == path


@check("falco.rule_task")
def rule_task(ctx: CheckContext, *, rule: str, priority: str, fields: list[str], events: str,
              event_set: str = "events.yaml", node: str = "controlplane", default_path: str = DEFAULT_RULES,
              local_path: str = LOCAL_RULES, rules_dir: str = RULES_DIR, separator: str = ",") -> Outcome:
    """A detection rule: in the local file, loads on top of the unchanged default file, the priority asked
    for, an output of exactly the fields asked for joined by ``separator``, fires on every positive event of
    the lab's event set and on no negative one."""
    from grader.engines.falco.loader import PRIORITIES, parse_priority

    where = f"{node}:{local_path}"
    # 1. the default file must be the pristine one (Falco overwrites it on upgrade)
    try:
        current_default = ctx.snap.read_bytes(node, default_path)
    except FileProblem as exc:
        return Outcome.failed(f"{exc}: the default rules file must stay in place, unchanged",
                              Evidence(f"{node}:{default_path}", "the file as installed", "missing or unreadable"))
    try:
        pristine = ctx.start.read_bytes(node, default_path)
    except FileProblem as exc:
        return Outcome.error(f"the lab's starting state has no default rules file ({exc})")
    if current_default != pristine:
        return Outcome.failed(
            f"{default_path} was edited: Falco's default rules file must stay byte-identical (a package upgrade "
            "overwrites it); put your rules in falco_rules.local.yaml",
            Evidence(f"{node}:{default_path}", "unchanged", "edited"))
    if not ctx.snap.exists(node, local_path):
        return Outcome.failed(f"{local_path} does not exist: write your rules there",
                              Evidence(where, f"rule '{rule}'", "no file"))
    try:
        files = _rules_files(ctx.snap, node, default_path, local_path, rules_dir)
    except FileProblem as exc:
        return Outcome.failed(str(exc))
    res = _load_cached(tuple(files))
    if not res.successful:
        err = res.errors[0]
        return Outcome.failed(
            f"Falco would not start: {err.short()} (try `cks falco validate {local_path}`)",
            Evidence(f"{node}:{err.context.filename}", "the rules files load without errors", err.message))
    compiled = res.rule(rule)
    if compiled is not None and compiled.file != local_path and not _defined_in(files, local_path, rule):
        return Outcome.failed(f"rule '{rule}' is defined in {compiled.file}, not in {local_path}: the task asks "
                              f"for it in {local_path}", Evidence(where, f"rule '{rule}'", f"in {compiled.file}"))
    if compiled is None:
        names = [r.name for r in res.rules if r.file == local_path]
        found = f"rules there: {', '.join(repr(n) for n in names)}" if names else "no rules there"
        return Outcome.failed(f"no rule named '{rule}' in {local_path} ({found}); the name must match exactly",
                              Evidence(where, f"rule '{rule}'", found))
    if not compiled.enabled:
        return Outcome.failed(f"rule '{rule}' is disabled (enabled: false)", Evidence(where, "enabled", "disabled"))

    parts: list[tuple[bool, str, Evidence | None]] = []
    want = parse_priority(priority)
    parts.append((compiled.priority == want,
                  f"rule '{rule}' has priority {compiled.priority_name.upper()}, expected {priority.upper()}",
                  Evidence(f"{where} rule '{rule}' priority", PRIORITIES[want].upper() if want is not None else priority,
                           compiled.priority_name.upper())))
    got_fields = ["%" + f for f in compiled.output_format.fields]
    want_fields = [f if f.startswith("%") else "%" + f for f in fields]
    want_text = separator.join(want_fields)
    got_text = compiled.output_format.text.strip()
    if got_fields != want_fields:
        parts.append((False, f"rule '{rule}' outputs the fields {','.join(got_fields) or '(none)'}; expected exactly "
                             f"{','.join(want_fields)} in this order",
                      Evidence(f"{where} rule '{rule}' output", want_text, got_text[:200])))
    else:  # the right fields: the output must also be nothing but them, joined by the separator
        parts.append((got_text == want_text,
                      f"rule '{rule}' has the right fields but other text around or between them: its output must "
                      f"be exactly {want_text} (no other words, {separator!r} between the fields)",
                      Evidence(f"{where} rule '{rule}' output", want_text, got_text[:200])))
    try:
        positives, negatives = _events(ctx, event_set, events)
    except (OSError, ValueError) as exc:
        return Outcome.error(f"the lab's event set cannot be read: {exc}")
    missed = [name for name, ev in positives if not compiled.filter.matches(ev)]
    wrong = [name for name, ev in negatives if compiled.filter.matches(ev)]
    parts.append((not missed, f"rule '{rule}' does not fire on: {'; '.join(missed)}",
                  Evidence(f"rule '{rule}' on the lab's positive events", "fires on every one",
                           f"silent on {len(missed)} of {len(positives)}")))
    parts.append((not wrong, f"rule '{rule}' fires where it should not: {'; '.join(wrong)}",
                  Evidence(f"rule '{rule}' on the lab's negative events", "fires on none",
                           f"fires on {len(wrong)} of {len(negatives)}")))
    return Outcome.from_parts(parts, f"rule '{rule}' loads, has the right priority and output, and fires "
                                     f"exactly on the {len(positives)} positive events")


# ---------------------------------------------------------------------------------------------- response

_ALERT_ID = re.compile(r"container_id=([0-9a-f]{12})\b")
_CSV_ID = re.compile(r"^\d\d:\d\d:\d\d\.\d{9},([0-9a-f]{12}),", re.M)


def _container_ids(text: str) -> set[str]:
    return set(_ALERT_ID.findall(text)) | set(_CSV_ID.findall(text))


def _pod_container_ids(pod: dict) -> list[str]:
    status = pod.get("status") or {}
    out = []
    for key in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"):
        for cs in status.get(key) or []:
            cid = str((cs or {}).get("containerID") or "")
            out.append(cid.split("://", 1)[-1])
    return out


def _owner(obj: dict, kind: str) -> str | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("kind") == kind:
            return ref.get("name")
    return None


def _deployment_of(pod: dict, snap: Snapshot, namespace: str) -> str | None:
    rs_name = _owner(pod, "ReplicaSet")
    if rs_name is None:
        return None
    rs = snap.object("ReplicaSet", namespace, rs_name)
    if rs is not None:
        return _owner(rs, "Deployment")
    return rs_name.rsplit("-", 1)[0]  # <deployment>-<pod-template-hash>


def offenders_from(start: Snapshot, namespace: str, node: str, alerts_path: str) -> dict[str, str]:
    """Deployment -> the container id that put it in the earlier capture's alerts (from the starting state)."""
    text = start.read_text(node, alerts_path)
    ids = _container_ids(text)
    out: dict[str, str] = {}
    for pod in start.objects("Pod", namespace):
        for cid in _pod_container_ids(pod):
            hit = next((i for i in ids if cid.startswith(i)), None)
            if hit:
                dep = _deployment_of(pod, start, namespace)
                if dep:
                    out.setdefault(dep, hit)
    return out


def _spec(obj: dict) -> dict:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _replicas(dep: dict) -> int:
    """spec.replicas (1 when unset, as the API defaults it); -1 when it or spec is not what the API accepts."""
    spec = dep.get("spec")
    if spec is not None and not isinstance(spec, dict):
        return -1
    r = (spec or {}).get("replicas", 1)
    return r if isinstance(r, int) and not isinstance(r, bool) else -1


def _shown_replicas(dep: dict) -> str:
    """spec.replicas for a message: the number, or what is wrong with it."""
    if dep.get("spec") is not None and not isinstance(dep.get("spec"), dict):
        return "unreadable (spec is not a mapping)"
    r = _spec(dep).get("replicas", 1)
    return str(r) if _replicas(dep) >= 0 else f"{r!r} (not a number)"


def _start_uid(ctx: CheckContext, obj: dict) -> str | None:
    from grader.checks.pods import _start_uid as start_uid

    return start_uid(ctx, obj)


def _same_object(ctx: CheckContext, before: dict, after: dict) -> bool:
    """Same UID as at the start (on a live cluster: the UID the set-up recorded)."""
    from grader.checks.pods import _uid

    want = _start_uid(ctx, before)
    return want is None or _uid(after) == want


def _template_change(before: dict, after: dict) -> str | None:
    """Where the pod template changed (labels, annotations and every setting), ignoring the defaults the
    API server adds, so a template read back from a live cluster still counts as unchanged."""
    from grader.checks.pods import first_difference, template_without_api_defaults

    a = _spec(before).get("template") or {}
    b = _spec(after).get("template") or {}
    if a == b:
        return None
    a, b = template_without_api_defaults(a), template_without_api_defaults(b)
    return first_difference(a, b, "spec.template") or first_difference(b, a, "spec.template")


@check("falco.offenders_scaled")
def offenders_scaled(ctx: CheckContext, *, namespace: str, alerts_path: str, node: str = "controlplane") -> Outcome:
    """Every Deployment behind an alert of the earlier capture is scaled to 0 (same UID: scaled, not
    recreated); every other Deployment keeps its replicas and pod template."""
    try:
        offenders = offenders_from(ctx.start, namespace, node, alerts_path)
    except FileProblem as exc:
        return Outcome.error(f"the lab's starting state has no alerts file: {exc}")
    if not offenders:
        return Outcome.error("the lab's starting state names no offending Deployment (lab data problem)")
    start_deps = {object_key(d)[2]: d for d in ctx.start.objects("Deployment", namespace)}
    now_deps = {object_key(d)[2]: d for d in ctx.snap.objects("Deployment", namespace)}  # name as text
    if not now_deps and not ctx.snap.objects("Deployment"):
        return Outcome.failed(f"no Deployments found in namespace {namespace}",
                              Evidence(f"Deployments in {namespace}", "the lab's Deployments", "none"))

    # benign Deployments: untouched, or the whole task earns nothing
    for name, before in sorted(start_deps.items()):
        if name in offenders:
            continue
        after = now_deps.get(name)
        where = f"Deployment {namespace}/{name}"
        if after is None:
            return Outcome.failed(f"{where} (benign) was deleted: respond to the offenders only",
                                  Evidence(where, "kept", "deleted"))
        if not _same_object(ctx, before, after):
            return Outcome.failed(f"{where} (benign) was recreated: leave the benign workloads alone",
                                  Evidence(f"{where} uid", _start_uid(ctx, before), after["metadata"].get("uid")))
        if _replicas(after) != _replicas(before):
            return Outcome.failed(
                f"{where} is benign (no alert comes from its pods) but its replicas went from {_shown_replicas(before)}"
                f" to {_shown_replicas(after)}: scale only the Deployments whose containers appear in the alerts",
                Evidence(f"{where} replicas", _shown_replicas(before), _shown_replicas(after)))
        changed = _template_change(before, after)
        if changed:
            return Outcome.failed(f"{where} (benign) had its pod template changed at {changed}: leave it as it was",
                                  Evidence(f"{where} {changed}", "unchanged", "changed"))

    parts: list[tuple[bool, str, Evidence | None]] = []
    for name in sorted(offenders):
        where = f"Deployment {namespace}/{name}"
        before, after = start_deps.get(name), now_deps.get(name)
        if after is None:
            parts.append((False, f"{where} was deleted: scale it to 0 instead (keep the object for the "
                                 "investigation)", Evidence(where, "replicas 0, same object", "deleted")))
            continue
        if before is not None and not _same_object(ctx, before, after):
            parts.append((False, f"{where} was deleted and recreated (new UID): scale it, do not recreate it",
                          Evidence(f"{where} uid", _start_uid(ctx, before), after["metadata"].get("uid"))))
            continue
        shown = _shown_replicas(after)
        problem = f"still has {shown} replicas" if _replicas(after) >= 0 else f"has spec.replicas {shown}"
        parts.append((_replicas(after) == 0, f"{where} {problem} (its container {offenders[name]} is in the alerts)",
                      Evidence(f"{where} spec.replicas", "0", shown)))
    return Outcome.from_parts(parts, f"the {len(offenders)} offending Deployments are scaled to 0 and the "
                                     "others are untouched")


_LINE = re.compile(r"^(\d\d):(\d\d):(\d\d)\.(\d{9}),([0-9a-f]{12}),([^,]+),([^,]+)$")
# What `falco -M 30 -o webserver.enabled=false ... | grep` keeps: Falco's text output puts "<time>: <Priority> "
# before every alert's output; that prefix is Falco's, not the learner's format, so it is accepted.
_FALCO_PREFIX = re.compile(r"^\d\d:\d\d:\d\d\.\d{9}: (Emergency|Alert|Critical|Error|Warning|Notice|"
                           r"Informational|Info|Debug) ")


def _capture_line(line: str) -> re.Match[str] | None:
    return _LINE.match(_FALCO_PREFIX.sub("", line.strip(), count=1))


@check("falco.capture_log")
def capture_log(ctx: CheckContext, *, path: str, node: str = "controlplane", min_seconds: int = 30) -> Outcome:
    """The saved capture: every line exactly ``time,container-id,container-name,user-name``, spanning at
    least ``min_seconds``."""
    where = f"{node}:{path}"
    text = ctx.snap.read_text(node, path)
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return Outcome.failed(f"{where} is empty: run Falco long enough for the offenders to trigger alerts",
                              Evidence(where, "alert lines", "empty"))
    bad = [ln for ln in lines if not _capture_line(ln)]
    if bad:
        return Outcome.failed(
            f"{len(bad)} of {len(lines)} lines do not have the format time,container-id,container-name,user-name "
            f"(first: {bad[0][:120]!r}); use an output of exactly %evt.time,%container.id,%container.name,"
            "%user.name and no other text", Evidence(where, "HH:MM:SS.nnnnnnnnn,<12 hex>,<name>,<user>", bad[0][:120]))
    secs = []
    for ln in lines:
        m = _capture_line(ln)
        assert m is not None
        secs.append(int(m[1]) * 3600 + int(m[2]) * 60 + int(m[3]) + int(m[4]) / 1e9)
    span = 0.0
    for a, b in zip(secs, secs[1:], strict=False):
        span += (b - a) % 86400  # a capture may cross midnight
    if span < min_seconds:
        return Outcome.failed(f"the alerts span {span:.1f} s; capture for at least {min_seconds} s (falco -M "
                              f"{min_seconds})", Evidence(where, f">= {min_seconds} s", f"{span:.1f} s"))
    return Outcome.passed(f"{len(lines)} alert lines in the required format over {span:.0f} s")
