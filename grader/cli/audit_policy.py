"""`cks audit validate` and `cks audit simulate`: kube-apiserver's audit policy behaviour as study tools.

Module-level imports stay light (click only): the engine and rich load inside the commands.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from grader.cli.options import format_option

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
MAX_INPUT_BYTES = 10 * 1024 * 1024  # a real policy is a few KB; refuse to parse a 50 MB file
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _usage_error(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(EXIT_USAGE)


def _read_input(name: str, what: str) -> bytes:
    """The bytes of FILE ('-' = stdin), or a clear usage error (exit 2): missing, directory, unreadable,
    huge."""
    if name == "-":
        data = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
    else:
        from grader import safeio

        try:
            data = safeio.read_bytes(name, max_bytes=MAX_INPUT_BYTES, what=f"{what} {name}")
        except safeio.ReadRefused as exc:
            if exc.kind == "is_directory":
                _usage_error(f"{what} {name} is a directory; give the path of a file")
            if exc.kind == "too_large":
                _usage_error(f"{exc} (an audit policy is a few KB)")
            _usage_error(str(exc))
    if len(data) > MAX_INPUT_BYTES:
        _usage_error(f"{what} on stdin is larger than {MAX_INPUT_BYTES // 1048576} MB")
    return data


def _load(policy_file: str, kube_version: str | None):
    from grader.engines.audit_policy import load_policy

    data = _read_input(policy_file, "policy file")
    try:
        return load_policy(data, kube_version)
    except ValueError as exc:  # a bad --kube-version
        _usage_error(str(exc))


_KUBE_VERSION = click.option(
    "--kube-version",
    metavar="X.Y",
    default=None,
    help="Behave as this kube-apiserver release (default: the lab cluster's, see `cks list`); releases "
    'before 1.36 reject group "*".',
)


# ---- validate -------------------------------------------------------------------------------------

VALIDATE_HELP = """Would kube-apiserver load this audit policy file? Errors and warnings as it reports them.

\b
POLICY is the file given to kube-apiserver's --audit-policy-file ('-' reads stdin).
kube-apiserver accepts only apiVersion audit.k8s.io/v1, kind Policy, with at least one
valid rule. Unknown keys (a singular `verb:`, `resource:`, a mis-indented key) do not
stop it: it DROPS them with a warning, so the rule then matches more than written.
This tool names every dropped key and where it was.

\b
Examples:
  cks audit validate /etc/kubernetes/audit/policy.yaml
  cks audit validate policy.yaml --strict          # dropped keys count as failure
  cks audit validate policy.yaml --format json
  cks audit validate policy.yaml --kube-version 1.35   # as an older cluster would

\b
Exit codes: 0 kube-apiserver loads it (with --strict: and drops no key),
1 it would refuse it (kube-apiserver does not start), 2 usage error (no such file, ...).
"""


@click.command("validate", help=VALIDATE_HELP, context_settings=CONTEXT)
@click.argument("policy_file", metavar="POLICY")
@format_option("text", "json")
@click.option("--strict", is_flag=True, help="Also fail (exit 1) when kube-apiserver would drop keys.")
@_KUBE_VERSION
def validate_cmd(policy_file: str, fmt: str, strict: bool, kube_version: str | None) -> None:
    result = _load(policy_file, kube_version)
    loads = result.ok
    ok = loads and not (strict and result.dropped)
    if fmt == "json":
        click.echo(
            json.dumps(
                {
                    "file": policy_file,
                    "loads": loads,
                    "rules": len(result.policy.rules) if result.policy else None,
                    "errors": result.errors,
                    "warnings": result.warnings,
                    "dropped": result.dropped,
                },
                indent=2,
            )
        )
        sys.exit(EXIT_OK if ok else EXIT_INVALID)
    if loads:
        n = len(result.policy.rules)
        click.echo(f"OK: kube-apiserver would load {policy_file} ({n} rule{'s' if n != 1 else ''}).")
    else:
        click.echo(f"INVALID: kube-apiserver would refuse {policy_file} and fail to start:")
        for err in result.errors:
            click.echo(f"  error: {err}")
    for warning in result.warnings:
        click.echo(f"  warning: {warning}")
    if loads and result.dropped:
        click.echo(
            "  Dropped keys are ignored, so those rules match more requests than written."
            + (" (--strict: failing)" if strict else "")
        )
    sys.exit(EXIT_OK if ok else EXIT_INVALID)


# ---- simulate -------------------------------------------------------------------------------------

SIMULATE_HELP = """Which audit level does a request get, and which rule decides? Evaluated as kube-apiserver
does.

\b
One request from options, or many with --requests FILE. Rules are tried in order; the
first match wins; no match means level None (nothing logged). Rule numbers are 0-based
indexes into `rules:` (rules[0] is the first rule).

\b
One request:
  cks audit simulate policy.yaml --user alice --verb get --resource secrets --namespace prod
  cks audit simulate policy.yaml --user bob --verb create --resource pods/exec --namespace dev
  cks audit simulate policy.yaml --user alice --verb patch --resource deployments --api-group apps -n prod
  cks audit simulate policy.yaml --user system:kube-proxy --user-group system:authenticated \\
      --verb watch --resource endpointslices --api-group discovery.k8s.io
  cks audit simulate policy.yaml --user system:anonymous --verb get --path /healthz/etcd
  cks audit simulate policy.yaml --user alice --verb get --path /api/v1/namespaces/prod/secrets/db

\b
Without --user the request is unauthenticated (no user at all: rules with users or
userGroups never match it). Without --user-group the user gets the groups kube-apiserver
would add (system:authenticated; service accounts also system:serviceaccounts and
system:serviceaccounts:NS); --user-group replaces them. The API group of the resource is
--api-group (or RESOURCE.GROUP); there is no --group, which could mean either. --resource also takes
RESOURCE/SUBRESOURCE and RESOURCE.GROUP (pods/log, deployments.apps). Without --namespace a resource
request is cluster-scoped (namespace ""). --path alone is a non-resource URL (/healthz, /version);
an /api/... or /apis/... path is parsed into resource, namespace and name as
kube-apiserver does.

\b
Many requests: --requests FILE, a YAML or JSON list. Each item is either a mapping shaped
like kube-apiserver's request attributes:
  - user: {username: alice, groups: [system:authenticated]}   # null = unauthenticated
    verb: get
    namespace: prod
    apiGroup: ""
    apiVersion: v1
    resource: secrets
    subresource: ""
    name: db
    isResourceRequest: true
    path: /api/v1/namespaces/prod/secrets/db
or a one-line shorthand:
  - "get secrets db -n prod as alice"
  - "create pods/exec web -n dev as bob in devs,system:authenticated"
  - "get /healthz unauthenticated"

\b
--format json prints a list, one entry per request in order:
  {"level": "Metadata", "omitStages": ["RequestReceived"], "omitManagedFields": false, "rule": 2}
("rule" is null when no rule matched). Exit codes: 0 simulated, 1 the policy does not
load (kube-apiserver would not start), 2 usage error.
"""


@click.command("simulate", help=SIMULATE_HELP, context_settings=CONTEXT)
@click.argument("policy_file", metavar="POLICY")
@click.option("--user", "-u", metavar="NAME", help="Username (omit for an unauthenticated request).")
@click.option(
    "--user-group",
    "groups",
    multiple=True,
    metavar="GROUP",
    help="A group of the user, as userGroups matches (repeatable; default: the groups kube-apiserver adds).",
)
@click.option(
    "--group",
    "-g",
    "ambiguous_group",
    multiple=True,
    hidden=True,
    expose_value=False,
    callback=lambda ctx, param, value: _ambiguous_group(value),
)
@click.option(
    "--verb",
    metavar="VERB",
    help="get list watch create update patch delete deletecollection "
    "(non-resource: the lower-case HTTP method). Default: get.",
)
@click.option("--resource", "-r", metavar="RES", help="Resource, e.g. secrets, pods/log, deployments.apps.")
@click.option("--subresource", metavar="SUB", help="Subresource, e.g. exec, log, status.")
@click.option(
    "--api-group",
    metavar="GROUP",
    help='API group without version: apps, rbac.authorization.k8s.io (default "" = core).',
)
@click.option("--namespace", "-n", metavar="NS", help='Namespace (default "" = cluster-scoped).')
@click.option("--name", metavar="NAME", help="Object name (matters for resourceNames).")
@click.option("--path", metavar="PATH", help="Non-resource URL path (/healthz), or an /api/... URL to parse.")
@click.option("--requests", "requests_file", metavar="FILE", help="YAML/JSON list of requests ('-' = stdin).")
@format_option("table", "json")
@_KUBE_VERSION
def simulate_cmd(
    policy_file: str,
    user: str | None,
    groups: tuple[str, ...],
    verb: str | None,
    resource: str | None,
    subresource: str | None,
    api_group: str | None,
    namespace: str | None,
    name: str | None,
    path: str | None,
    requests_file: str | None,
    fmt: str,
    kube_version: str | None,
) -> None:
    single = any(
        v is not None for v in (user, verb, resource, subresource, api_group, namespace, name, path)
    ) or bool(groups)
    if requests_file and single:
        _usage_error("give either --requests FILE or the options of one request, not both")
    if requests_file:
        requests = _requests_from_file(requests_file)
    elif resource or path:
        requests = [
            _request_from_options(user, groups, verb, resource, subresource, api_group, namespace, name, path)
        ]
    else:
        _usage_error(
            "say which request to simulate: --resource (e.g. --verb get --resource secrets "
            "--namespace prod --user alice), --path (e.g. --path /healthz), or --requests FILE. "
            "See `cks audit simulate --help`."
        )
    result = _load(policy_file, kube_version)
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    if not result.ok:
        click.echo(
            f"Error: kube-apiserver would refuse {policy_file} and fail to start, so no request is audited:",
            err=True,
        )
        for err in result.errors:
            click.echo(f"  {err}", err=True)
        sys.exit(EXIT_INVALID)
    policy = result.policy
    decisions = [policy.evaluate(r) for r in requests]
    if fmt == "json":
        click.echo(json.dumps([d.to_dict() for d in decisions], indent=2))
        return
    _print_table(policy, requests, decisions)


def _ambiguous_group(value: tuple[str, ...]) -> None:
    """--group reads as the API group to some and as a user group to others: make the learner choose."""
    if value:
        raise click.UsageError(
            f"--group {value[0]} is ambiguous: use --user-group {value[0]} for a group of the user (what "
            f"userGroups matches, e.g. system:nodes) or --api-group {value[0]} for the API group of the "
            "resource "
            "(what resources[].group matches, e.g. apps)"
        )


def _request_from_options(user, groups, verb, resource, subresource, api_group, namespace, name, path):
    from grader.engines.audit_policy import RequestAttributes, User, default_groups

    if groups:
        who = User(user or "", tuple(groups))
    else:  # the groups kube-apiserver's authenticators add (system:authenticated, ...)
        who = User(user, default_groups(user)) if user is not None else None
    if resource:
        res, _, sub = resource.partition("/")
        if subresource and sub and subresource != sub:
            _usage_error(
                f"--resource {resource} already names subresource {sub!r}; --subresource says {subresource!r}"
            )
        sub = subresource or sub
        if "." in res:
            res, _, dotted_group = res.partition(".")
            if api_group is not None and api_group != dotted_group:
                _usage_error(
                    f"--resource {resource} names group {dotted_group!r}; --api-group says {api_group!r}"
                )
            api_group = dotted_group
        return RequestAttributes(
            who, verb or "get", namespace or "", api_group or "", "v1", res, sub, name or "", True, path or ""
        )
    # no --verb: derive it from the URL as kube-apiserver does (GET without a name is list, ...)
    parsed = RequestAttributes.from_url(verb or "GET", path, who)
    if parsed.is_resource_request:
        if namespace or name or api_group or subresource:
            _usage_error(
                "--path already names the resource (an /api/... URL); drop --namespace, --name, "
                "--api-group and --subresource"
            )
        return parsed
    if namespace or name or api_group or subresource:
        _usage_error(f"--path {path} is a non-resource URL: it has no namespace, name, group or subresource")
    return parsed


def _requests_from_file(name: str) -> list:
    from grader import safeyaml
    from grader.engines.audit_policy import RequestAttributes, RequestError, parse_request

    data = _read_input(name, "requests file")
    try:
        items = safeyaml.load_one(data)
    except safeyaml.YamlProblem as exc:
        _usage_error(f"requests file {name}: {exc}")
    if isinstance(items, dict) and isinstance(items.get("requests"), list):
        items = items["requests"]
    if not isinstance(items, list) or not items:
        _usage_error(
            f"requests file {name}: must be a non-empty YAML or JSON list of requests "
            "(mappings with user, verb, namespace, apiGroup, resource, ... or shorthand strings)"
        )
    out: list[Any] = []
    for i, item in enumerate(items):
        try:
            if isinstance(item, str):
                out.append(parse_request(item))
            else:
                out.append(RequestAttributes.from_mapping(item, f"requests[{i}]"))
        except RequestError as exc:
            _usage_error(f"requests file {name}: {exc}")
    return out


def _print_table(policy, requests, decisions) -> None:
    import os

    from rich.console import Console
    from rich.table import Table

    table = Table(show_lines=False, header_style="bold")
    table.add_column("#", justify="right")
    table.add_column("request")
    table.add_column("level")
    table.add_column("omitStages")
    table.add_column("rule")
    styles = {"None": "dim", "Metadata": "green", "Request": "yellow", "RequestResponse": "red"}
    for i, (req, d) in enumerate(zip(requests, decisions, strict=True)):
        rule = (
            "none matched (default None)"
            if d.rule_index is None
            else f"rules[{d.rule_index}] {policy.rules[d.rule_index].summary()}"
        )
        table.add_row(
            str(i),
            req.describe(),
            f"[{styles.get(d.level, '')}]{d.level}[/]",
            ",".join(sorted(d.omit_stages)) or "-",
            rule,
        )
    no_color = bool(os.environ.get("NO_COLOR")) or not sys.stdout.isatty()
    Console(no_color=no_color, soft_wrap=False, width=None if sys.stdout.isatty() else 160).print(table)
