"""`cks falco ...`: study tools over the grader's own Falco engine (no Falco binary needed).

validate  like `falco -V`: does Falco load these rules files, with which errors and warnings?
test      which rules fire on each event of an events file, and the alert lines Falco would print
explain   a rule's (or macro's) condition after list and macro expansion, with its event types
"""

from __future__ import annotations

import json
import sys

import click

from grader.cli import CONTEXT
from grader.cli.options import format_option
from grader.text import plural

DEFAULT_NAME = "/etc/falco/falco_rules.yaml"
MAX_EVENTS_BYTES = 20 * 1024 * 1024


MAX_RULES_BYTES = 20 * 1024 * 1024


def _read(path: str, max_bytes: int = MAX_RULES_BYTES) -> tuple[str, bytes]:
    from grader import safeio

    try:
        return path, safeio.read_bytes(path, max_bytes=max_bytes)
    except safeio.ReadRefused as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)


def _load(files: tuple[str, ...], no_default: bool):
    from grader.engines.falco.loader import RulesLoader, default_rules_text

    loader = RulesLoader()
    if not no_default:
        loader.load(DEFAULT_NAME, default_rules_text())
    for f in files:
        name, data = _read(f)
        loader.load(name, data)
    return loader.result()


_NO_DEFAULT = click.option(
    "--no-default", is_flag=True, help="Do not load the kit's default rules file (falco_rules.yaml) first."
)


@click.group(
    "falco",
    context_settings=CONTEXT,
    help="""Falco rules: validate, test on events, explain.

The grader carries its own Falco engine (the loader, the condition language and the outputs of Falco
0.44), so you can check rules without a Falco binary. Files load in order into one engine, as
`falco -r a.yaml -r b.yaml` does; the kit's default rules file (the usual macros and lists such as
spawned_process, container, open_read, shell_procs) is loaded first unless you say --no-default.

\b
Examples:
  cks falco validate /etc/falco/falco_rules.local.yaml
  cks falco test falco_rules.local.yaml --events events.yaml
  cks falco explain "Shadow file read in container" -r falco_rules.local.yaml
""",
)
def falco_group() -> None:
    pass


@falco_group.command(
    "validate",
    context_settings=CONTEXT,
    help="""Check rules files like `falco -V`.

Prints `FILE: Ok`, `FILE: Ok, with warnings` (details follow) or `FILE: Invalid` with each error: where it
is (item, line and column, counted from 0 as Falco does), the offending line, Falco's error code and
message. Exit status 1 when any file has an error.

\b
Examples:
  cks falco validate falco_rules.local.yaml
  cks falco validate --format json a.yaml b.yaml      # like falco -o json_output=true -V
  cks falco validate --no-default my_full_rules.yaml
""",
)
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@format_option("text", "json")
@_NO_DEFAULT
def validate_cmd(files: tuple[str, ...], fmt: str, no_default: bool) -> None:
    from grader.engines.falco.validation import file_verbose, validation_json

    res = _load(files, no_default)
    shown = [f for f in res.files if f.name != DEFAULT_NAME or not f.successful]
    if fmt == "json":
        click.echo(json.dumps(validation_json(shown), indent=2))
    else:
        contents = res.contents
        for f in shown:
            click.echo(file_verbose(f, contents) if (f.errors or f.warnings) else f"{f.name}: Ok")
    sys.exit(0 if all(f.successful for f in res.files) else 1)


def _read_events(path: str) -> list[tuple[str, object]]:
    """(label, event or error text) for each event of a YAML/JSON file: a list, or {events: [...]}."""
    from grader import safeyaml
    from grader.engines.falco.events import EventError, event_from_mapping

    _, data = _read(path, MAX_EVENTS_BYTES)
    if len(data) > MAX_EVENTS_BYTES:
        click.echo(f"Error: {path} is larger than {MAX_EVENTS_BYTES // 1048576} MB", err=True)
        sys.exit(2)
    try:
        doc = safeyaml.load_one(data)
    except safeyaml.YamlProblem as exc:
        click.echo(f"Error: {path}: {exc}", err=True)
        sys.exit(2)
    if isinstance(doc, dict) and isinstance(doc.get("events"), list):
        doc = doc["events"]
    if isinstance(doc, dict):
        doc = [doc]
    if not isinstance(doc, list):
        click.echo(
            f"Error: {path}: expected a list of events (mappings of Falco field names to values)", err=True
        )
        sys.exit(2)
    out: list[tuple[str, object]] = []
    for i, raw in enumerate(doc):
        label = f"event {i + 1}"
        if isinstance(raw, dict) and raw.get("_name"):
            label += f" ({raw['_name']})"
        try:
            out.append((label, event_from_mapping(raw, num=i + 1)))
        except EventError as exc:
            out.append((label, f"not a usable event: {exc}"))
    return out


@falco_group.command(
    "test",
    context_settings=CONTEXT,
    help="""Which rules fire on each event, with Falco's alert lines.

EVENTS is a YAML or JSON list of syscall events, each a mapping of Falco field names to values; fields
Falco derives are filled in (proc.cmdline from proc.name and proc.args, fd.directory from fd.name,
container.id "host" when there is no container). A field you leave out has no value, and every
comparison on it is false.

\b
  - _name: cat reads /etc/shadow in a container
    evt.type: openat
    evt.time: 2024-05-01T10:00:00.000000001Z
    evt.arg.flags: O_RDONLY
    fd.name: /etc/shadow
    proc.name: cat
    proc.args: [/etc/shadow]
    user.name: root
    container.id: 3ad7b26ded6d
    container.name: web

Falco itself emits only the first matching rule per event (rule_matching: first, its default); this tool
lists every rule that matches (--rule-matching all) and marks the one Falco would emit.

\b
Examples:
  cks falco test falco_rules.local.yaml --events events.yaml
  cks falco test falco_rules.local.yaml --events events.yaml --format json
""",
)
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False))
@click.option(
    "--events",
    "events_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="YAML/JSON file with a list of events.",
)
@format_option("text", "json")
@click.option(
    "--rule-matching",
    type=click.Choice(["all", "first"]),
    default="all",
    show_default=True,
    help="all: every matching rule alerts; first: only the first (Falco's rule_matching).",
)
@click.option(
    "--priority",
    default="debug",
    show_default=True,
    metavar="LEVEL",
    help="Skip rules less severe than this (emergency ... debug).",
)
@_NO_DEFAULT
def test_cmd(
    files: tuple[str, ...], events_path: str, fmt: str, rule_matching: str, priority: str, no_default: bool
) -> None:
    from grader.engines.falco.validation import file_verbose

    res = _load(files, no_default)
    if not res.successful:
        for f in res.files:
            if not f.successful:
                click.echo(file_verbose(f, res.contents), err=True)
        click.echo("Error: the rules do not load (see above); Falco would refuse to start.", err=True)
        sys.exit(1)
    try:
        engine = res.engine(priority=priority, rule_matching="all")
    except ValueError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    results = []
    for label, ev in _read_events(events_path):
        if isinstance(ev, str):
            results.append({"event": label, "error": ev, "alerts": []})
            continue
        alerts = engine.process(ev)
        if rule_matching == "first":
            alerts = alerts[:1]
        results.append({"event": label, "alerts": alerts})
    if fmt == "json":
        out = [
            {
                "event": r["event"],
                "error": r.get("error"),
                "rules": [a.rule for a in r["alerts"]],
                "alerts": [a.to_dict(iso=False) for a in r["alerts"]],
            }
            for r in results
        ]
        click.echo(json.dumps(out, indent=2, default=str))
        return
    for r in results:
        if r.get("error"):
            click.echo(f"{r['event']}: {r['error']}")
            continue
        alerts = r["alerts"]
        if not alerts:
            click.echo(f"{r['event']}: no rule fires")
            continue
        click.echo(
            f"{r['event']}: {plural(len(alerts), 'rule')} " + ("fires" if len(alerts) == 1 else "fire")
        )
        for i, a in enumerate(alerts):
            mark = "  (Falco emits this one)" if i == 0 and len(alerts) > 1 else ""
            click.echo(f"  - {a.rule} [{a.priority}]{mark}")
            click.echo(f"    {a.line()}")


@falco_group.command(
    "explain",
    context_settings=CONTEXT,
    help="""Show a rule's condition after expansion.

Prints the condition as written (with appends and exceptions), then as Falco compiles it: list names
replaced by their items and macros replaced by their conditions, with the event types the rule is
indexed under. NAME may also be a macro or a list.

\b
Examples:
  cks falco explain "Terminal shell in container"
  cks falco explain spawned_process
  cks falco explain "Shadow file read in container" -r falco_rules.local.yaml
""",
)
@click.argument("name")
@click.option(
    "-r",
    "--rules",
    "files",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="Rules file to load after the default file (repeatable, in order).",
)
@_NO_DEFAULT
def explain_cmd(name: str, files: tuple[str, ...], no_default: bool) -> None:
    from grader.engines.falco.ast import to_text

    res = _load(files, no_default)
    for f in res.files:
        if not f.successful:
            click.echo(f"warning: {f.name} did not load: {f.errors[0].short()}", err=True)
    rule = res.rule(name)
    if rule is not None:
        types = (
            "any (no evt.type restriction)"
            if rule.evttypes is None
            else ", ".join(sorted(rule.evttypes)) or "none"
        )
        click.echo(
            f"rule: {rule.name}   ({rule.file}:{rule.line}, priority {rule.priority_name}, "
            f"{'enabled' if rule.enabled else 'disabled'})"
        )
        click.echo(f"condition as written:\n  {' '.join(rule.condition.split())}")
        click.echo(f"condition compiled:\n  {rule.condition_compiled}")
        click.echo(f"event types: {types}")
        click.echo(f"output: {rule.output}")
        if rule.tags:
            click.echo(f"tags: {', '.join(rule.tags)}")
        return
    macro = res.macro(name)
    if macro is not None:
        click.echo(f"macro: {macro.name}   ({macro.file}:{macro.line}{'' if macro.used else ', unused'})")
        click.echo(f"condition as written:\n  {' '.join(macro.condition.split())}")
        click.echo(f"condition expanded:\n  {to_text(macro.ast)}")
        return
    lst = res.list(name)
    if lst is not None:
        click.echo(f"list: {lst.name}   ({lst.file}:{lst.line}{'' if lst.used else ', unused'})")
        click.echo(f"items: {', '.join(lst.items) if lst.items else '(empty)'}")
        return
    import difflib

    names = [r.name for r in res.rules] + [m.name for m in res.macros] + [li.name for li in res.lists]
    close = difflib.get_close_matches(name, names, n=3)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    click.echo(f"Error: no rule, macro or list named {name!r}{hint}", err=True)
    sys.exit(1)
