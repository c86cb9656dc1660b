"""Checks that need a live cluster. They read only facts the collector gathered (grader/collectors/facts.py):
``ctx.snap.fact(node, "falco")`` and ``ctx.snap.fact(node, "probe-<task id>")`` for probes. Each declares what
the collector must gather for it (``needs=``); the live checks of other topics live in their modules
(``pods.rollout_complete``, ``pods.write_probe``, ``apiserver.running``, ``apiserver.probe_event``).

Mark their tasks ``live: true`` in lab.yaml (offline they are skipped). A fact that could not be gathered
raises an environment FileProblem inside ``fact()``: the task becomes ``error`` with the collector's reason.
"""

from __future__ import annotations

import json
import re
from typing import Any

from grader.checks import CheckContext, Needs, check
from grader.results import Evidence, Outcome
from grader.snapshot import FileProblem
from grader.text import plural


def _fact(ctx: CheckContext, node: str, name: str) -> Any:
    value = ctx.snap.fact(node, name)
    if value is None:
        raise FileProblem(
            "not_collected",
            f"the live fact {name!r} for node {node} was not collected (grade with "
            "--target on the cluster; labs declare node facts in collect.facts)",
            f"{node}:{name}",
        )
    return value


def _probe(ctx: CheckContext, node: str) -> dict[str, Any]:
    value = _fact(ctx, node, f"probe-{ctx.task.id}")
    if not isinstance(value, dict):
        raise FileProblem("unreadable", f"the probe result for {ctx.task.id} is damaged; collect again", node)
    return value


# ---- Falco -----------------------------------------------------------------------------------------------


def _falco(ctx: CheckContext, node: str) -> dict[str, Any] | Outcome:
    fact = _fact(ctx, node, "falco")
    if not fact.get("installed"):
        return Outcome.error(
            f"Falco is not installed on node {node}: the Falco labs need the Vagrant cluster "
            "(Falco needs a kernel driver; see docs/live.md)"
        )
    return fact


@check("live.falco_validates", needs=Needs(node_facts=("falco",), falco_rules_param="rules"))
def falco_validates(
    ctx: CheckContext, rules: list[str] | str | None = None, node: str = "controlplane"
) -> Outcome:
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
        return Outcome.failed(
            f"{', '.join(mine)} still holds what the lab started with: write your rules there first",
            Evidence(f"{node}:{mine[0]}", "your rules", "the starting file"),
        )
    if not bad:
        return Outcome.passed(f"falco -V accepts {files}", Evidence(f"{node}:falco -V", "ok", "ok"))
    out = str(bad[0].get("output", "")).strip().splitlines()
    detail = next(
        (ln for ln in out if re.search(r"error|invalid|undefined|fail", ln, re.I)), out[-1] if out else ""
    )
    return Outcome.failed(
        f"Falco on {node} rejects the rules: {detail[:300]}",
        Evidence(f"{node}:falco -V", "ok", f"exit {bad[0].get('rc')}"),
    )


def _unchanged_since_start(ctx: CheckContext, node: str, path: str) -> bool:
    try:
        return ctx.snap.read_text(node, path) == ctx.start.read_text(node, path)
    except FileProblem:
        return False


@check("live.falco_alert", needs=Needs(probe="falco-trigger"))
def falco_alert(
    ctx: CheckContext,
    expect: str,
    node: str = "controlplane",
    namespace: str = "default",
    pod: str | None = None,
    selector: str | None = None,
    container: str | None = None,
    command: list[str] | str | None = None,
    priority: str | None = None,
    rule: str | None = None,
    wait: float = 8,
) -> Outcome:
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
        return Outcome.passed(
            f"Falco raised the alert: {matches[0][:200]}", Evidence(where, expect, matches[0][:300])
        )
    near = [a for a in alerts if pattern.search(a)]
    if near:
        return Outcome.failed(
            f"the alert came with another priority or rule than {priority or rule}: {near[0][:200]}",
            Evidence(where, f"{priority or ''} {rule or ''} {expect}".strip(), near[0][:300]),
        )
    return Outcome.failed(
        f"no Falco alert matched {expect!r} within {wait:g}s of the trigger "
        f"({plural(len(alerts), 'other alert')}): is the rule loaded (restart Falco after editing rules) "
        "and does its condition match what the trigger does?",
        Evidence(where, expect, plural(len(alerts), "other alert")),
    )


def _alert_matches(line: str, pattern: re.Pattern[str], priority: str | None, rule: str | None) -> bool:
    text, prio, name = line, None, None
    if line.lstrip().startswith("{"):
        try:
            data = json.loads(line)
            text, prio, name = str(data.get("output", "")), data.get("priority"), data.get("rule")
        except ValueError:
            pass
    else:
        m = re.match(
            r"^\S+:\s+(Emergency|Alert|Critical|Error|Warning|Notice|Informational|Info|Debug)\b", line
        )
        prio = m.group(1) if m else None
    if not pattern.search(text) and not pattern.search(line):
        return False
    if priority and (prio or "").lower() not in {priority.lower(), priority.lower()[:4]}:
        return False
    return not (rule and name is not None and name != rule)


def _cmd(command: Any) -> str:
    return " ".join(map(str, command)) if isinstance(command, list) else str(command)


# ---- immutability -----------------------------------------------------------------------------------------
