"""Checks that need a live cluster. They read only facts the collector gathered (grader/collectors/facts.py):
``ctx.snap.fact(node, "apiserver" | "falco")`` and ``ctx.snap.fact(node, "probe-<task id>")`` for probes.

Mark their tasks ``live: true`` in lab.yaml (offline they are skipped). A fact that could not be gathered
raises an environment FileProblem inside ``fact()``: the task becomes ``error`` with the collector's reason.
"""

from __future__ import annotations

import json
import re
from typing import Any

from grader import safeyaml
from grader.checks import CheckContext, check
from grader.results import Evidence, Outcome
from grader.snapshot import FileProblem

APISERVER_MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml"
CRICTL = "on the node: `sudo crictl ps -a | grep kube-apiserver`, then `sudo crictl logs <id>`"


def _fact(ctx: CheckContext, node: str, name: str) -> Any:
    value = ctx.snap.fact(node, name)
    if value is None:
        raise FileProblem("not_collected", f"the live fact {name!r} for node {node} was not collected (grade with "
                                           "--target on the cluster; labs declare node facts in collect.facts)",
                          f"{node}:{name}")
    return value


def _probe(ctx: CheckContext, node: str) -> dict[str, Any]:
    value = _fact(ctx, node, f"probe-{ctx.task.id}")
    if not isinstance(value, dict):
        raise FileProblem("unreadable", f"the probe result for {ctx.task.id} is damaged; collect again", node)
    return value


# ---- kube-apiserver --------------------------------------------------------------------------------------

@check("live.apiserver_ready")
def apiserver_ready(ctx: CheckContext, node: str = "controlplane", manifest: str = APISERVER_MANIFEST,
                    flags: list[str] | None = None) -> Outcome:
    """kube-apiserver runs the manifest as edited: process up, mirror pod Ready, /readyz ok, started after the
    manifest's last change, running with the manifest's flags (and ``flags`` if given)."""
    fact = _fact(ctx, node, "apiserver")
    where = f"{node}:kube-apiserver"
    if not fact.get("running"):
        last = fact.get("container") or {}
        seen = f"newest container {last.get('id')} is {last.get('state')} (attempt {last.get('attempt')})" if last \
            else "no kube-apiserver container at all"
        return Outcome.failed(f"kube-apiserver is not running on {node}: {seen}; {CRICTL}",
                              Evidence(where, "a running kube-apiserver", seen))
    mirror = fact.get("mirror_pod") or {}
    args = [str(a) for a in fact.get("args") or []]
    parts: list[tuple[bool, str, Evidence | None]] = []
    parts.append((bool(fact.get("ready")), f"/readyz does not answer ok: {str(fact.get('readyz', ''))[:200]}",
                  Evidence("GET /readyz", "ok", str(fact.get("readyz"))[:100])))
    parts.append((bool(mirror.get("ready")), "the kube-apiserver mirror pod is not Ready "
                  f"({mirror.get('error') or mirror.get('state')}, {mirror.get('restarts')} restarts)",
                  Evidence("pod kube-system/kube-apiserver-*", "Ready", str(mirror.get("ready")))))
    started = (fact.get("container") or {}).get("created") or fact.get("started")
    mtime = fact.get("manifest_mtime")
    fresh = not (started and mtime and started + 1 < mtime)
    parts.append((fresh, f"{manifest} changed after kube-apiserver started: kubelet has not picked up the edit "
                         f"yet (wait ~30 s) or keeps the old one because the new one fails; {CRICTL}",
                  Evidence(where, f"started after {mtime}", str(started))))
    try:
        wanted = _manifest_args(ctx.snap.read_text(node, manifest))
    except (FileProblem, ValueError):
        wanted = None
    if wanted is not None:
        missing = sorted(set(wanted) - set(args))
        parts.append((not missing, "the running kube-apiserver does not use the manifest's "
                      f"{', '.join(missing[:3])}: it has not been restarted with your edit",
                      Evidence(where, " ".join(missing[:3]), "absent from the running process")))
    for flag in flags or []:
        name = flag.split("=", 1)[0]
        ok = any(a == flag or (a.split("=", 1)[0] == name and "=" not in flag) for a in args)
        parts.append((ok, f"the running kube-apiserver has no {flag}", Evidence(where, flag, _flag(args, name))))
    return Outcome.from_parts(parts, "kube-apiserver runs the edited manifest and is ready")


def _manifest_args(text: str) -> list[str]:
    data = safeyaml.load_one(text)
    containers = ((data or {}).get("spec") or {}).get("containers") or []
    for c in containers:
        if isinstance(c, dict) and c.get("name") == "kube-apiserver":
            return [str(a) for a in (c.get("command") or [])[1:] + (c.get("args") or [])]
    raise ValueError("no kube-apiserver container")


def _flag(args: list[str], name: str) -> str:
    found = [a for a in args if a.split("=", 1)[0] == name]
    return found[0] if found else "not set"


# ---- audit log -------------------------------------------------------------------------------------------

@check("live.audit_event")
def audit_event(ctx: CheckContext, policy: str, node: str = "controlplane",
                log: str = "/var/log/kubernetes/audit/audit.log", requests: list[Any] | None = None,
                wait: float = 6) -> Outcome:
    """Each nonce-tagged request the collector made is in the audit log at the level ``policy`` gives it
    (and absent when the policy says None), judged by evaluating the policy as kube-apiserver does."""
    from grader.engines.audit_policy import RequestAttributes, User, load_policy

    probe = _probe(ctx, node)
    if not probe.get("log_exists"):
        return Outcome.failed(f"{node}:{log} does not exist: kube-apiserver writes no audit log there (check "
                              "--audit-log-path and that its directory is a hostPath volume mounted in the pod)",
                              Evidence(f"{node}:{log}", "an audit log", "missing"))
    try:
        loaded = load_policy(ctx.snap.read_text(node, policy))
    except FileProblem as exc:
        return Outcome.failed(f"the policy cannot be read: {exc}")
    if not loaded.ok or loaded.policy is None:
        return Outcome.failed(f"{node}:{policy} does not load: {'; '.join(loaded.errors[:2])}")
    who = probe.get("whoami") or {}
    parts: list[tuple[bool, str, Evidence | None]] = []
    for sent in probe.get("requests") or []:
        marker = sent.get("marker", "")
        events = [e for e in probe.get("events") or [] if marker and marker in str(e.get("requestURI") or "")]
        user_raw = next((e.get("user") for e in events if isinstance(e.get("user"), dict)), None) or who
        user = User(str(user_raw.get("username", "")), tuple(user_raw.get("groups") or ())) if user_raw else None
        attrs = RequestAttributes.from_url(sent.get("verb", "get"), sent.get("uri", ""), user)
        decision = loaded.policy.evaluate(attrs)
        label = f"{sent.get('verb')} {sent.get('resource')}" + (f" -n {sent['namespace']}" if sent.get("namespace") else "")
        where = f"{node}:{log} ({label}, marker {marker})"
        logged = sorted({str(e.get("level")) for e in events})
        if decision.level == "None":
            parts.append((not events, f"{label} was logged at {', '.join(logged)} but your policy gives it None: "
                          "kube-apiserver runs another policy than the file (restart it after editing)",
                          Evidence(where, "no event", ", ".join(logged))))
            continue
        stages = [s for s in ("ResponseComplete", "ResponseStarted", "RequestReceived") if decision.records(s)]
        recorded = [e for e in events if e.get("stage") in stages]
        if not recorded:
            parts.append((False, f"no audit event for {label} reached {log} (expected level {decision.level}): "
                          "is kube-apiserver started with --audit-policy-file and --audit-log-path, both mounted?",
                          Evidence(where, decision.level, "no event")))
            continue
        levels = sorted({str(e.get("level")) for e in recorded})
        parts.append((levels == [decision.level], f"{label} was logged at {', '.join(levels)}, your policy gives "
                      f"{decision.level}: restart kube-apiserver so it loads the edited policy",
                      Evidence(where, decision.level, ", ".join(levels))))
    if not parts:
        return Outcome.error("the probe sent no requests; collect again")
    return Outcome.from_parts(parts, "fresh requests reach the audit log at the levels your policy gives them")


# ---- Falco -----------------------------------------------------------------------------------------------

def _falco(ctx: CheckContext, node: str) -> dict[str, Any] | Outcome:
    fact = _fact(ctx, node, "falco")
    if not fact.get("installed"):
        return Outcome.error(f"Falco is not installed on node {node}: the Falco labs need the Vagrant cluster "
                             "(Falco needs a kernel driver; see docs/live.md)")
    return fact


@check("live.falco_running")
def falco_running(ctx: CheckContext, node: str = "controlplane") -> Outcome:
    """A Falco service (or process) is running on the node."""
    fact = _falco(ctx, node)
    if isinstance(fact, Outcome):
        return fact
    units = fact.get("units") or {}
    where = f"{node}:falco"
    if fact.get("running"):
        return Outcome.passed(f"Falco runs on {node} ({fact.get('service') or 'process ' + ','.join(fact.get('pids') or [])})",
                              Evidence(where, "running", fact.get("service") or "process"))
    states = ", ".join(f"{u}={s}" for u, s in units.items() if s and s != "inactive") or "all inactive"
    return Outcome.failed(f"Falco is not running on {node} ({states}): `sudo systemctl restart falco-modern-bpf`, "
                          "then `sudo journalctl -u falco-modern-bpf -n 50` to see why it stops",
                          Evidence(where, "running", states))


@check("live.falco_validates")
def falco_validates(ctx: CheckContext, rules: list[str] | str | None = None, node: str = "controlplane") -> Outcome:
    """The node's Falco accepts the rules files (``falco -V``, with Falco's default rules loaded first)."""
    fact = _falco(ctx, node)
    if isinstance(fact, Outcome):
        return fact
    results = fact.get("validate") or []
    if not results:
        return Outcome.error("no rules file was validated (the lab collects no rules file under /etc/falco)")
    bad = [r for r in results if not r.get("ok")]
    files = ", ".join(f for r in results for f in r.get("files") or [])
    mine = sorted({f for r in results for f in r.get("files") or [] if not f.endswith("/falco_rules.yaml")})
    if mine and all(_unchanged_since_start(ctx, node, f) for f in mine):
        # the untouched starting file validates trivially: that earns nothing
        return Outcome.failed(f"{', '.join(mine)} still holds what the lab started with: write your rules there "
                              "first", Evidence(f"{node}:{mine[0]}", "your rules", "the starting file"))
    if not bad:
        return Outcome.passed(f"falco -V accepts {files}", Evidence(f"{node}:falco -V", "ok", "ok"))
    out = str(bad[0].get("output", "")).strip().splitlines()
    detail = next((ln for ln in out if re.search(r"error|invalid|undefined|fail", ln, re.I)), out[-1] if out else "")
    return Outcome.failed(f"Falco on {node} rejects the rules: {detail[:300]}",
                          Evidence(f"{node}:falco -V", "ok", f"exit {bad[0].get('rc')}"))


def _unchanged_since_start(ctx: CheckContext, node: str, path: str) -> bool:
    try:
        return ctx.snap.read_text(node, path) == ctx.start.read_text(node, path)
    except FileProblem:
        return False


@check("live.falco_alert")
def falco_alert(ctx: CheckContext, expect: str, node: str = "controlplane", namespace: str = "default",
                pod: str | None = None, selector: str | None = None, container: str | None = None,
                command: list[str] | str | None = None, priority: str | None = None, rule: str | None = None,
                wait: float = 8) -> Outcome:
    """A harmless trigger run in the lab's pod makes the node's Falco raise the expected alert."""
    probe = _probe(ctx, node)
    exec_res = probe.get("exec") or {}
    if exec_res.get("error"):
        return Outcome.error(f"the trigger could not run in {probe.get('pod')}: {exec_res['error']}")
    try:
        pattern = re.compile(expect)
    except re.error as exc:
        return Outcome.error(f"lab bug: expect is not a regular expression: {exc}")
    alerts = [str(a) for a in probe.get("alerts") or []]
    matches = [a for a in alerts if _alert_matches(a, pattern, priority, rule)]
    where = f"{probe.get('node')}:falco alerts after `{_cmd(probe.get('command'))}` in {probe.get('pod')}"
    if matches:
        return Outcome.passed(f"Falco raised the alert: {matches[0][:200]}", Evidence(where, expect, matches[0][:300]))
    near = [a for a in alerts if pattern.search(a)]
    if near:
        return Outcome.failed(f"the alert came with another priority or rule than {priority or rule}: {near[0][:200]}",
                              Evidence(where, f"{priority or ''} {rule or ''} {expect}".strip(), near[0][:300]))
    return Outcome.failed(f"no Falco alert matched {expect!r} within {wait:g}s of the trigger ({len(alerts)} other "
                          "alert(s)): is the rule loaded (restart Falco after editing rules) and does its condition "
                          "match what the trigger does?", Evidence(where, expect, f"{len(alerts)} other alert(s)"))


def _alert_matches(line: str, pattern: re.Pattern[str], priority: str | None, rule: str | None) -> bool:
    text, prio, name = line, None, None
    if line.lstrip().startswith("{"):
        try:
            data = json.loads(line)
            text, prio, name = str(data.get("output", "")), data.get("priority"), data.get("rule")
        except ValueError:
            pass
    else:
        m = re.match(r"^\S+:\s+(Emergency|Alert|Critical|Error|Warning|Notice|Informational|Info|Debug)\b", line)
        prio = m.group(1) if m else None
    if not pattern.search(text) and not pattern.search(line):
        return False
    if priority and (prio or "").lower() not in {priority.lower(), priority.lower()[:4]}:
        return False
    return not (rule and name is not None and name != rule)


def _cmd(command: Any) -> str:
    return " ".join(map(str, command)) if isinstance(command, list) else str(command)


# ---- immutability -----------------------------------------------------------------------------------------

@check("live.immutable")
def immutable(ctx: CheckContext, namespace: str = "default", pod: str | None = None, selector: str | None = None,
              container: str | None = None, readonly_path: str | None = None, writable_path: str | None = None,
              node: str = "controlplane") -> Outcome:
    """Inside the lab pod, writing to / fails and writing to /tmp succeeds."""
    probe = _probe(ctx, node)
    root_rc, tmp_rc = probe.get("root_write_rc"), probe.get("tmp_write_rc")
    where = f"pod {probe.get('pod')}"
    if root_rc is None or tmp_rc is None:
        res = probe.get("exec") or {}
        return Outcome.error(f"could not run `sh -c touch ...` in {probe.get('pod')} (rc {res.get('rc')}: "
                             f"{str(res.get('stderr', ''))[:200]}); the image needs sh and touch for this check")
    paths = probe.get("paths") or {}
    return Outcome.from_parts([
        (root_rc != 0, f"writing {paths.get('root')} succeeded: the root filesystem is writable "
                       "(set securityContext.readOnlyRootFilesystem: true on the container)",
         Evidence(f"{where}: touch {paths.get('root')}", "fails", "succeeded")),
        (tmp_rc == 0, f"writing {paths.get('tmp')} failed: /tmp must stay writable (mount an emptyDir at /tmp)",
         Evidence(f"{where}: touch {paths.get('tmp')}", "succeeds", f"exit {tmp_rc}")),
    ], "only /tmp is writable inside the pod")
