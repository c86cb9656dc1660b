"""Falco checks: rules are graded by loading them as Falco does and running them on events; a response
is graded against the offenders recorded in the lab's starting state."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grader import safeyaml, variants
from grader.checks import CheckContext, check
from grader.checks.identity import start_uid, uid
from grader.results import Evidence, Outcome
from grader.snapshot import FileProblem, Snapshot, object_key

if TYPE_CHECKING:
    from grader.engines.falco.loader import CompiledRule

DEFAULT_RULES = "/etc/falco/falco_rules.yaml"
LOCAL_RULES = "/etc/falco/falco_rules.local.yaml"
RULES_DIR = "/etc/falco/rules.d"


# ---------------------------------------------------------------------------------------------- rules


def _rules_files(
    snap: Snapshot, node: str, default_path: str, local_path: str, rules_dir: str
) -> list[tuple[str, bytes]]:
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
            out.append((describe_event(raw), event_from_mapping(raw, num=i + 1)))
        return out

    return build("positive"), build("negative")


START_FILES_FACT = "start-files"  # live: {"<abs path>": "sha256:<hex>"} recorded on the node by `cks start`


def _recorded_hash(ctx: CheckContext, node: str, path: str) -> str | None:
    """The SHA-256 the start recorded for ``node:path``: the live start record (fact ``start-files``),
    else the workspace's cks.yaml (``start_files``, written by ``cks start``); None when nothing was
    recorded."""
    from grader.workspace import START_FILES_KEY

    fact = ctx.snap.fact(node, START_FILES_FACT)
    if isinstance(fact, dict) and isinstance(fact.get(path), str):
        return fact[path]
    meta = ctx.snap.meta.get(START_FILES_KEY)
    if isinstance(meta, dict) and isinstance(meta.get(f"{node}:{path}"), str):
        return meta[f"{node}:{path}"]
    return None


def default_file_untouched(ctx: CheckContext, node: str, path: str, current: bytes) -> bool | Outcome:
    """Whether the node's default rules file is the one the lab started with.

    Judged against the hash the start recorded (the node's own file: upstream falco-rules on a live node, the
    kit's stand-in in a workspace), never against the kit's copy. A workspace made before starts recorded
    hashes falls back to the lab's starting state; a live grade without a record cannot tell (error)."""
    import hashlib

    try:
        recorded = _recorded_hash(ctx, node, path)
    except FileProblem as exc:
        return Outcome.error(f"cannot tell whether {path} was edited: {exc}")
    if recorded is not None:
        algo, _, digest = recorded.partition(":")
        if algo != "sha256" or len(digest) != 64:
            return Outcome.error(f"the start record of {path} is not a sha256 digest ({recorded[:80]!r})")
        return hashlib.sha256(current).hexdigest() == digest.lower()
    if ctx.live:
        return Outcome.error(
            f"no start record for {path}: start the lab with `cks start {ctx.lab.id} --target ...` "
            "so the grader knows the file Falco was installed with"
        )
    try:
        return current == ctx.start.read_bytes(node, path)
    except FileProblem as exc:
        return Outcome.error(f"the lab's starting state has no default rules file ({exc})")


_OPENS = ("open", "openat", "openat2", "creat")
_EXECS = ("execve", "execveat")


def describe_event(raw: dict[str, Any]) -> str:
    """What an event is, in neutral words (the grader's messages name the events a rule gets wrong this way:
    what happened, never why the event is in the set)."""
    etype = str(raw.get("evt.type") or "an event")
    proc = str(raw.get("proc.name") or "a process")
    cid = raw.get("container.id")
    where = "in a container" if cid not in (None, "", "host") else "on the host (outside any container)"
    if etype in _EXECS:
        what = f"{proc} starting ({etype})"
    elif etype in _OPENS:
        target, flags = raw.get("fd.name") or "a file", raw.get("evt.arg.flags") or "no flags"
        what = f"{proc} opening {target} with {flags} ({etype})"
    else:
        what = f"{etype} by {proc}" + (f" on {raw['fd.name']}" if raw.get("fd.name") else "")
    return f"{what} {where}"


def _listed(names: list[str], limit: int = 3) -> str:
    shown = "; ".join(names[:limit])
    return shown + (f"; and {len(names) - limit} more" if len(names) > limit else "")


def _defined_in(files: list[tuple[str, bytes]], path: str, rule: str) -> bool:
    """The rule is defined in ``path`` even if a later file (rules.d) redefines or overrides it."""
    upto = files[: next((i for i, (p, _) in enumerate(files) if p == path), len(files)) + 1]
    res = _load_cached(tuple(upto))
    found = res.rule(rule) if res.successful else None
    return found is not None and found.file == path


def _default_file_problem(ctx: CheckContext, node: str, default_path: str) -> Outcome | None:
    """The default file must be the one the lab started with (Falco overwrites it on upgrade)."""
    try:
        current_default = ctx.snap.read_bytes(node, default_path)
    except FileProblem as exc:
        return Outcome.failed(
            f"{exc}: the default rules file must stay in place, unchanged",
            Evidence(f"{node}:{default_path}", "the file as installed", "missing or unreadable"),
        )
    untouched = default_file_untouched(ctx, node, default_path, current_default)
    if isinstance(untouched, Outcome):
        return untouched
    if not untouched:
        return Outcome.failed(
            f"{default_path} was edited: Falco's default rules file must stay as it was when the lab "
            "started (a package upgrade overwrites it); put your rules in falco_rules.local.yaml",
            Evidence(f"{node}:{default_path}", "unchanged since the lab started", "edited"),
        )
    return None


def _output_verdict(
    rule: str, where: str, got_fields: list[str], want_fields: list[str], got_text: str, separator: str
) -> tuple[bool, str, Evidence]:
    """Whether the rule's output is exactly the fields asked for, joined by ``separator``."""
    want_text = separator.join(want_fields)
    evidence = Evidence(f"{where} rule '{rule}' output", want_text, got_text[:200])
    if got_fields != want_fields:
        return (
            False,
            f"rule '{rule}' outputs the fields {','.join(got_fields) or '(none)'}; expected "
            f"exactly {','.join(want_fields)} in this order",
            evidence,
        )
    # the right fields: the output must also be nothing but them, joined by the separator
    return (
        got_text == want_text,
        f"rule '{rule}' has the right fields but other text around or between them: its output "
        f"must be exactly {want_text} (no other words, {separator!r} between the fields)",
        evidence,
    )


def _detection_problems(
    rule: str, missed: list[str], wrong: list[str], positives: int, negatives: int
) -> list[tuple[str, Evidence]]:
    """What the rule's condition gets wrong on the lab's event set: events it misses, events it must not
    fire on."""
    detection: list[tuple[str, Evidence]] = []
    if missed:
        detection.append(
            (
                f"rule '{rule}' misses {len(missed)} of the {positives} events it must catch: "
                f"{_listed(missed)}",
                Evidence(
                    f"rule '{rule}' on the events it must catch",
                    "fires on every one",
                    f"silent on {len(missed)} of {positives}",
                ),
            )
        )
    if wrong:
        detection.append(
            (
                f"rule '{rule}' fires on {len(wrong)} event{'s' if len(wrong) != 1 else ''} it must "
                f"not: {_listed(wrong)}",
                Evidence(
                    f"rule '{rule}' on look-alike events",
                    "fires on none",
                    f"fires on {len(wrong)} of {negatives}",
                ),
            )
        )
    return detection


def _local_rule(
    ctx: CheckContext, rule: str, node: str, default_path: str, local_path: str, rules_dir: str
) -> CompiledRule | Outcome:
    """The rule, loaded as Falco loads the default file, the local file and rules.d: defined in the local
    file and enabled; else why not (a file Falco refuses fails the task)."""
    where = f"{node}:{local_path}"
    if not ctx.snap.exists(node, local_path):
        return Outcome.failed(
            f"{local_path} does not exist: write your rules there",
            Evidence(where, f"rule '{rule}'", "no file"),
        )
    try:
        files = _rules_files(ctx.snap, node, default_path, local_path, rules_dir)
    except FileProblem as exc:
        return Outcome.failed(str(exc))
    res = _load_cached(tuple(files))
    if not res.successful:
        err = res.errors[0]
        return Outcome.failed(
            f"Falco would not start: {err.short()} (try `cks falco validate {local_path}`)",
            Evidence(f"{node}:{err.context.filename}", "the rules files load without errors", err.message),
        )
    compiled = res.rule(rule)
    if compiled is not None and compiled.file != local_path and not _defined_in(files, local_path, rule):
        return Outcome.failed(
            f"rule '{rule}' is defined in {compiled.file}, not in {local_path}: the task asks "
            f"for it in {local_path}",
            Evidence(where, f"rule '{rule}'", f"in {compiled.file}"),
        )
    if compiled is None:
        names = [r.name for r in res.rules if r.file == local_path]
        found = f"rules there: {', '.join(repr(n) for n in names)}" if names else "no rules there"
        return Outcome.failed(
            f"no rule named '{rule}' in {local_path} ({found}); the name must match exactly",
            Evidence(where, f"rule '{rule}'", found),
        )
    if not compiled.enabled:
        return Outcome.failed(
            f"rule '{rule}' is disabled (enabled: false)", Evidence(where, "enabled", "disabled")
        )
    return compiled


def _priority_verdict(
    rule: str, where: str, compiled: CompiledRule, priority: str
) -> tuple[bool, str, Evidence]:
    from grader.engines.falco.loader import PRIORITIES, parse_priority

    want = parse_priority(priority)
    return (
        compiled.priority == want,
        f"rule '{rule}' has priority {compiled.priority_name.upper()}, expected {priority.upper()}",
        Evidence(
            f"{where} rule '{rule}' priority",
            PRIORITIES[want].upper() if want is not None else priority,
            compiled.priority_name.upper(),
        ),
    )


@check("falco.rule_task")
def rule_task(
    ctx: CheckContext,
    *,
    rule: str,
    priority: str,
    fields: list[str],
    events: str,
    event_set: str = "events.yaml",
    node: str = "controlplane",
    default_path: str = DEFAULT_RULES,
    local_path: str = LOCAL_RULES,
    rules_dir: str = RULES_DIR,
    separator: str = ",",
) -> Outcome:
    """A detection rule: in the local file, loads on top of the node's default file (unchanged since the
    start recorded it), the priority asked for, an output of exactly the fields asked for joined by
    ``separator``, fires on every positive event of the lab's event set and on no negative one. Name,
    priority and output earn a third each; a wrong detection divides that by three."""
    where = f"{node}:{local_path}"
    default_problem = _default_file_problem(ctx, node, default_path)
    if default_problem is not None:
        return default_problem
    compiled = _local_rule(ctx, rule, node, default_path, local_path, rules_dir)
    if isinstance(compiled, Outcome):
        return compiled

    # Partial credit (the rule written in lab3's README): the rule's name, priority and output earn a third
    # of the task each; a detection that fires where it must not or misses what it must catch divides that by
    # three, so a broken detection keeps at most a third, and only for the parts that are right on their own.
    identity: list[tuple[bool, str, Evidence | None]] = [(True, "", None)]  # the name: found above
    identity.append(_priority_verdict(rule, where, compiled, priority))
    got_fields = ["%" + f for f in compiled.output_format.fields]
    want_fields = [f if f.startswith("%") else "%" + f for f in fields]
    got_text = compiled.output_format.text.strip()
    identity.append(_output_verdict(rule, where, got_fields, want_fields, got_text, separator))
    try:
        positives, negatives = _events(ctx, event_set, events)
    except (OSError, ValueError) as exc:
        return Outcome.error(f"the lab's event set cannot be read: {exc}")
    missed = [name for name, ev in positives if not compiled.filter.matches(ev)]
    wrong = [name for name, ev in negatives if compiled.filter.matches(ev)]
    detection = _detection_problems(rule, missed, wrong, len(positives), len(negatives))
    bad = [(msg, ev) for ok, msg, ev in identity if not ok]
    if not detection and not bad:
        return Outcome.passed(
            f"rule '{rule}' loads, has the right priority and output, and fires exactly on the "
            f"{len(positives)} events it must catch"
        )
    right = sum(1 for ok, _, _ in identity if ok)
    score = right / 3 * (1 / 3 if detection else 1)
    messages = [m for m, _ in detection] + [m for m, _ in bad]
    message = messages[0] if len(messages) == 1 else f"{messages[0]} (and {len(messages) - 1} more)"
    if detection:
        message += " - a detection that is wrong earns at most a third of the task"
    evidence = [ev for _, ev in detection] + [ev for _, ev in bad if ev is not None]
    return Outcome.failed(message, *evidence, score=score)


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
    """Deployment -> the container id that put it in the earlier capture's alerts (from the starting
    state)."""
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


def _document_where(where: str) -> str:
    """``cluster/x.yaml#2`` (the snapshot's 0-based document index) as a learner reads it; a broken file is
    split at its ``---`` lines, so the line of the message counts from the start of that document."""
    path, sep, index = where.rpartition("#")
    if sep and index.isdigit():
        return f"{path}, document {int(index) + 1} (lines counted from its start)"
    return where


def _spec(obj: dict) -> dict:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _replicas(dep: dict) -> int:
    """spec.replicas (1 when unset, as the API defaults it); -1 when it or spec is not what the API
    accepts."""
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


def _same_object(ctx: CheckContext, before: dict, after: dict) -> bool:
    """Same UID as at the start (on a live cluster: the UID the set-up recorded)."""
    want = start_uid(ctx, before)
    return want is None or uid(after) == want


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


def _broken_documents_outcome(ctx: CheckContext) -> Outcome | None:
    """A document that cannot be read hides its Deployments: say so, not "deleted"."""
    broken = ctx.snap.object_problems
    if not broken:
        return None
    first = broken[0]
    where = _document_where(first.where)
    more = f" (and {len(broken) - 1} more)" if len(broken) > 1 else ""
    return Outcome.failed(
        f"{where}: {first.message}{more}: fix the file first; the grader cannot tell "
        "which Deployments it holds, and kubectl would refuse it too",
        Evidence(where, "valid YAML", first.message),
    )


def _benign_problem(ctx: CheckContext, where: str, before: dict, after: dict | None) -> Outcome | None:
    """A Deployment no alert comes from must keep its object, replicas and pod template."""
    if after is None:
        return Outcome.failed(
            f"{where} (benign) was deleted: respond to the offenders only",
            Evidence(where, "kept", "deleted"),
        )
    if not _same_object(ctx, before, after):
        return Outcome.failed(
            f"{where} (benign) was recreated: leave the benign workloads alone",
            Evidence(f"{where} uid", start_uid(ctx, before), after["metadata"].get("uid")),
        )
    if _replicas(after) != _replicas(before):
        return Outcome.failed(
            f"{where} is benign (no alert comes from its pods) but its replicas went from "
            f"{_shown_replicas(before)} to {_shown_replicas(after)}: scale only the Deployments whose "
            "containers appear in the alerts",
            Evidence(f"{where} replicas", _shown_replicas(before), _shown_replicas(after)),
        )
    changed = _template_change(before, after)
    if changed:
        return Outcome.failed(
            f"{where} (benign) had its pod template changed at {changed}: leave it as it was",
            Evidence(f"{where} {changed}", "unchanged", "changed"),
        )
    return None


def _offender_mishandled(
    ctx: CheckContext, where: str, before: dict | None, after: dict | None
) -> tuple[str, Evidence] | None:
    """What the learner did wrongly to an offending Deployment (deleted, recreated, replicas that are not
    a number); None when it is the same object with a numeric replica count."""
    if after is None:
        return (
            f"{where} was deleted: scale it to 0 instead (keep the object for the investigation)",
            Evidence(where, "replicas 0, same object", "deleted"),
        )
    if before is not None and not _same_object(ctx, before, after):
        return (
            f"{where} was deleted and recreated (new UID): scale it, do not recreate it",
            Evidence(f"{where} uid", start_uid(ctx, before), after["metadata"].get("uid")),
        )
    if _replicas(after) < 0:
        return (
            f"{where} has spec.replicas {_shown_replicas(after)}",
            Evidence(f"{where} spec.replicas", "a number", _shown_replicas(after)),
        )
    return None


@check("falco.offenders_scaled")
def offenders_scaled(
    ctx: CheckContext, *, namespace: str, alerts_path: str, node: str = "controlplane"
) -> Outcome:
    """Every Deployment behind an alert of the earlier capture is scaled to 0 (same UID: scaled, not
    recreated); every other Deployment keeps its replicas and pod template."""
    try:
        answers = variants.answers(ctx)  # digests in a course bundle (grader/variants.py)
        plain = {} if answers.digests else offenders_from(ctx.start, namespace, node, alerts_path)
        names = answers.select("offenders", variants.object_names(ctx.start, "Deployment", namespace), plain)
        offenders = {n: plain.get(n, "listed there") for n in names}
    except FileProblem as exc:
        return Outcome.error(f"the lab's starting state has no alerts file: {exc}")
    if not offenders:
        return Outcome.error("the lab's starting state names no offending Deployment (lab data problem)")
    unreadable = _broken_documents_outcome(ctx)
    if unreadable is not None:
        return unreadable
    start_deps = {object_key(d)[2]: d for d in ctx.start.objects("Deployment", namespace)}
    now_deps = {object_key(d)[2]: d for d in ctx.snap.objects("Deployment", namespace)}  # name as text
    if not now_deps and not ctx.snap.objects("Deployment"):
        return Outcome.failed(
            f"no Deployments found in namespace {namespace}",
            Evidence(f"Deployments in {namespace}", "the lab's Deployments", "none"),
        )

    # benign Deployments: untouched, or the whole task earns nothing
    for name, before in sorted(start_deps.items()):
        if name in offenders:
            continue
        benign_problem = _benign_problem(ctx, f"Deployment {namespace}/{name}", before, now_deps.get(name))
        if benign_problem is not None:
            return benign_problem

    # The offenders are what the learner must find: reasons count them and name only the Deployments the
    # learner already acted on wrongly (deleted, recreated, replicas that are not a number).
    touched: list[tuple[str, Evidence]] = []
    scaled = running = 0
    for name in sorted(offenders):
        after = now_deps.get(name)
        wrongly = _offender_mishandled(ctx, f"Deployment {namespace}/{name}", start_deps.get(name), after)
        if wrongly is not None:
            touched.append(wrongly)
        elif after is not None and _replicas(after) == 0:
            scaled += 1
        else:
            running += 1
    total = len(offenders)
    if scaled == total:
        return Outcome.passed(
            f"the {total} offending Deployments are scaled to 0 and the others are untouched"
        )
    messages = [m for m, _ in touched]
    evidence = [e for _, e in touched]
    if running:
        messages.insert(
            0, f"{running} of the {total} Deployments behind the alerts still run (not scaled to 0)"
        )
        evidence.insert(
            0,
            Evidence(
                f"offending Deployments in {namespace}",
                f"{total} of {total} at 0 replicas",
                f"{scaled} of {total} at 0 replicas",
            ),
        )
    message = messages[0] if len(messages) == 1 else f"{messages[0]} (and {len(messages) - 1} more)"
    return Outcome.failed(message, *evidence, score=scaled / total)


_LINE = re.compile(r"^(\d\d):(\d\d):(\d\d)\.(\d{9}),([0-9a-f]{12}),([^,]+),([^,]+)$")
# What `falco -M 30 -o webserver.enabled=false ... | grep` keeps: Falco's text output puts
# "<time>: <Priority> " before every alert's output; that prefix is Falco's, not the learner's format, so
# it is accepted.
_FALCO_PREFIX = re.compile(
    r"^\d\d:\d\d:\d\d\.\d{9}: (Emergency|Alert|Critical|Error|Warning|Notice|"
    r"Informational|Info|Debug) "
)


def _capture_line(line: str) -> re.Match[str] | None:
    return _LINE.match(_FALCO_PREFIX.sub("", line.strip(), count=1))


@check("falco.capture_log")
def capture_log(
    ctx: CheckContext, *, path: str, node: str = "controlplane", min_seconds: int = 30
) -> Outcome:
    """The saved capture: every line exactly ``time,container-id,container-name,user-name``, spanning at
    least ``min_seconds``."""
    where = f"{node}:{path}"
    text = ctx.snap.read_text(node, path)
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return Outcome.failed(
            f"{where} is empty: run Falco long enough for the offenders to trigger alerts",
            Evidence(where, "alert lines", "empty"),
        )
    bad = [ln for ln in lines if not _capture_line(ln)]
    if bad:
        return Outcome.failed(
            f"{len(bad)} of {len(lines)} lines do not have the format "
            "time,container-id,container-name,user-name "
            f"(first: {bad[0][:120]!r}); use an output of exactly %evt.time,%container.id,%container.name,"
            "%user.name and no other text",
            Evidence(where, "HH:MM:SS.nnnnnnnnn,<12 hex>,<name>,<user>", bad[0][:120]),
        )
    secs = []
    for ln in lines:
        m = _capture_line(ln)
        assert m is not None
        secs.append(int(m[1]) * 3600 + int(m[2]) * 60 + int(m[3]) + int(m[4]) / 1e9)
    span = 0.0
    for a, b in zip(secs, secs[1:], strict=False):
        span += (b - a) % 86400  # a capture may cross midnight
    if span < min_seconds:
        return Outcome.failed(
            f"the alerts span {span:.1f} s; capture for at least {min_seconds} s (falco -M {min_seconds})",
            Evidence(where, f">= {min_seconds} s", f"{span:.1f} s"),
        )
    return Outcome.passed(f"{len(lines)} alert lines in the required format over {span:.0f} s")
