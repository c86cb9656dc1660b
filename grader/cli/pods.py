"""`cks pods check`: Pod Security Standards violations and CKS hardening findings of manifests.

A study tool over the pod security engine (grader/engines/podsec). Two kinds of rows per object:

- ``PSS``: what Pod Security Admission would reject at ``--level``/``--version`` (reason strings as PSA's);
- ``CKS``: the hardening settings the labs grade, by effective value (container over pod, init and
  ephemeral containers too): privileged, hostNetwork/hostPID/hostIPC, allowPrivilegeEscalation not false,
  root or maybe-root user, writable root filesystem. They overlap with PSS on purpose: PSS never checks
  readOnlyRootFilesystem and baseline allows escalation and root.
- ``--profile lab5|lab6``: instead, every value that lab grades, right or wrong, with the lab's verdict
  (``podsec.profiles``); lab5's rows never ask for a non-root user (its nginx runs as root).

Every object is also checked for what kube-apiserver would refuse (``podsec.api_rejects``, strict field
validation as `kubectl apply` does): those are ``INVALID`` rows, as the labs grade them as not applied.

Exit codes: 0 nothing found, 1 violations, findings or unreadable documents, 2 usage error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from grader.cli.options import format_option, workspace_option

EXIT_CLEAN, EXIT_FOUND, EXIT_USAGE = 0, 1, 2
MAX_INPUT_BYTES = 50 * 1024 * 1024
SUFFIXES = {".yaml", ".yml", ".json"}

HELP = """Check manifests against Pod Security Standards and the CKS hardening settings.

\b
FILE may be a manifest (several documents, or kind: List), a directory (every *.yaml/*.yml/*.json under
it) or - for stdin. --workspace DIR checks a practice workspace's cluster/ objects.

\b
Rows:  PSS  what Pod Security Admission would reject at --level/--version (its reason strings)
       CKS  hardening by effective value (container over pod; init and ephemeral containers too):
            privileged, hostNamespaces, allowPrivilegeEscalation (unset = allowed), runAsRoot
            (uid 0, or nothing proves non-root), readOnlyRootFilesystem
  --profile lab5|lab6  every value that lab grades (right or wrong) with its verdict, instead
\b
Examples:
  cks pods check deploy.yaml
  cks pods check cks-workspace/lab5/cluster/deployment.yaml --profile lab5
  cks pods check --workspace cks-workspace/lab6 --level baseline --only pss
  kubectl get pods -A -o yaml | cks pods check - --format json

\b
Exit codes: 0 nothing found, 1 violations/findings/broken documents, 2 usage error.
"""


@click.group(
    "pods",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    help="Pod security: check manifests against PSS and CKS hardening.",
)
def pods_group() -> None:
    pass


@pods_group.command(
    "check", help=HELP, short_help="Check manifests against Pod Security Standards and CKS hardening."
)
@click.argument("files", nargs=-1, metavar="FILE...")
@workspace_option("Check the cluster/ objects of a workspace or snapshot.")
@click.option(
    "--level",
    type=click.Choice(["baseline", "restricted"]),
    default="restricted",
    show_default=True,
    help="Pod Security Standards level.",
)
@click.option(
    "--version",
    "policy_version",
    default="latest",
    show_default=True,
    metavar="V",
    help="Policy version: latest (the labs' Kubernetes minor) or v1.<minor> (e.g. v1.30).",
)
@click.option(
    "--only",
    type=click.Choice(["pss", "cks"]),
    default=None,
    help="Show only PSS violations or only CKS hardening findings (default both).",
)
@click.option(
    "--profile",
    type=click.Choice(["lab5", "lab6"]),
    default=None,
    help="Show every value that lab grades, with the lab's verdict (instead of PSS and CKS findings).",
)
@format_option("table", "json")
def check_cmd(
    files: tuple[str, ...],
    workspace: str | None,
    level: str,
    policy_version: str,
    only: str | None,
    profile: str | None,
    fmt: str,
) -> None:
    from grader import versions
    from grader.engines import podsec

    try:  # "latest" is what the labs' cluster (provision/versions.env) runs, as its PSA would read it
        minor = podsec.parse_version(policy_version, versions.kubernetes_minor()[1])
    except podsec.PolicyVersionError as exc:
        _usage(str(exc))
    except versions.VersionsError as exc:
        _usage(f"cannot tell which Kubernetes the labs run: {exc}")
    if not files and not workspace:
        _usage("give manifest FILEs, a directory, - for stdin, or --workspace DIR")
    sources: list[tuple[str, bytes | None, str | None]] = []  # (where, data, problem)
    for f in files:
        sources.extend(_expand(f))
    if workspace:
        base = Path(workspace)
        if not base.is_dir():
            _usage(f"--workspace {workspace}: not a directory")
        cluster = base / "cluster"
        if not cluster.is_dir():
            _usage(f"--workspace {workspace}: no cluster/ folder (is it a cks workspace or snapshot?)")
        sources.extend(_expand(str(cluster)))
    label = podsec.pss.version_label(minor, policy_version)
    result = check_sources(sources, level, minor, only, profile)
    result.update({"level": level, "version": label, "evaluated_as": f"v1.{minor}", "profile": profile})
    if fmt == "json":
        click.echo(json.dumps(result, indent=2))
    elif profile:
        _print_profile(result, profile)
    else:
        _print_table(result, level, label)
    sys.exit(EXIT_FOUND if result["summary"]["found"] else EXIT_CLEAN)


def _usage(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(EXIT_USAGE)


def _expand(arg: str) -> list[tuple[str, bytes | None, str | None]]:
    if arg == "-":
        return [("<stdin>", sys.stdin.buffer.read(MAX_INPUT_BYTES + 1), None)]
    p = Path(arg)
    if p.is_dir():
        found = sorted(q for q in p.rglob("*") if q.is_file() and q.suffix in SUFFIXES)
        if not found:
            return [(arg, None, "a directory with no .yaml, .yml or .json files")]
        return [x for q in found for x in _read(q)]
    if not p.exists():
        _usage(f"{arg}: no such file")
    return _read(p)


def _read(p: Path) -> list[tuple[str, bytes | None, str | None]]:
    from grader import safeio

    try:
        return [(str(p), safeio.read_bytes(p, max_bytes=MAX_INPUT_BYTES), None)]
    except safeio.ReadRefused as exc:
        if exc.kind == "too_large":
            return [(str(p), None, f"larger than the {MAX_INPUT_BYTES // 1048576} MB read")]
        return [(str(p), None, str(exc).removeprefix(str(p)).strip(" :") or "cannot be read")]


def parse_objects(where: str, data: bytes) -> tuple[list[tuple[str, Any]], list[dict[str, str]]]:
    """Objects with their location (file#doc[/items[i]]) and the documents that could not be read; a
    broken document spoils only itself (the snapshot's own parser)."""
    from grader.snapshot import ObjectProblem, flatten_objects, read_documents

    problems: list[ObjectProblem] = []
    out: list[tuple[str, Any]] = []
    name = where if where.endswith(tuple(SUFFIXES)) or where == "<stdin>" else where + ".yaml"
    rel = name if name != "<stdin>" else "<stdin>.yaml"
    for no, doc in read_documents(data, rel, problems):
        objs: list[dict[str, Any]] = []
        flatten_objects(doc, f"{where}#{no}", objs, problems)
        if len(objs) == 1:
            out.append((f"{where}#{no}", objs[0]))
        else:
            out.extend((f"{where}#{no}/items[{i}]", o) for i, o in enumerate(objs))
    return out, [{"where": p.where.replace(rel, where, 1), "message": p.message} for p in problems]


def check_sources(
    sources: list[tuple[str, bytes | None, str | None]],
    level: str,
    minor: int,
    only: str | None,
    profile: str | None = None,
) -> dict[str, Any]:
    from grader.engines import podsec
    from grader.engines.podsec.profiles import profile_rows

    objects: list[dict[str, Any]] = []
    doc_problems: list[dict[str, str]] = []
    skipped = 0
    for where, data, problem in sources:
        if data is None:
            doc_problems.append({"where": where, "message": problem or "cannot be read"})
            continue
        if len(data) > MAX_INPUT_BYTES:
            doc_problems.append({"where": where, "message": "larger than the 50 MB read"})
            continue
        objs, problems = parse_objects(where, data)
        doc_problems.extend(problems)
        for loc, obj in objs:
            rep = podsec.analyze(
                obj,
                level=None if only == "cks" or profile else level,
                version=minor,
                hardening=None if only == "pss" or profile else podsec.HARDENING_IDS,
            )
            if not rep.checked and not rep.problems:
                skipped += 1  # a Service, ConfigMap, ... carries no pod spec
                continue
            entry = rep.to_dict()
            entry["problems"] = _with_api_refusals(entry["problems"], obj)
            entry["source"] = loc
            entry["admission"] = podsec.admission_message(
                rep.violations, level, podsec.pss.version_label(minor)
            )
            if profile:
                entry["rows"] = [r.to_dict() for r in profile_rows(obj, profile)]
            objects.append(entry)
    summary = _summary(objects, doc_problems, skipped)
    return {"objects": objects, "problems": doc_problems, "summary": summary}


def _with_api_refusals(problems: list[dict[str, Any]], obj: dict[str, Any]) -> list[dict[str, Any]]:
    """The engine's problems plus why the API server would refuse the object (what they do not already
    say); an unknown field replaces the engine's "ignored here" warning, since kubectl refuses it."""
    from grader.engines import podsec

    known = {p["path"] for p in problems}
    for p in podsec.api_rejects(obj, "Strict"):
        if p.unknown_field:
            problems = [q for q in problems if q["path"] != p.field]
        elif p.field in known:
            continue
        detail = f'strict decoding error: unknown field "{p.field}"' if p.unknown_field else p.message
        problems.append(
            {
                "path": p.field,
                "message": f"the API server would refuse the object ({p.status}): {detail}",
                "severity": "error",
            }
        )
    return problems


def _summary(
    objects: list[dict[str, Any]], doc_problems: list[dict[str, str]], skipped: int
) -> dict[str, Any]:
    """Counts over every object checked (the JSON output's ``summary``)."""
    n_viol = sum(len(o["violations"]) for o in objects)
    n_find = sum(len(o["findings"]) for o in objects)
    n_prob = sum(len(o["problems"]) for o in objects) + len(doc_problems)
    n_wrong = sum(1 for o in objects for r in o.get("rows", []) if not r["ok"])
    summary = {
        "objects": len(objects),
        "skipped_without_pod_spec": skipped,
        "violations": n_viol,
        "findings": n_find,
        "problems": n_prob,
        "wrong_values": n_wrong,
        "found": bool(n_viol or n_find or n_prob or n_wrong),
        "clean_objects": sum(
            1
            for o in objects
            if not (
                o["violations"]
                or o["findings"]
                or o["problems"]
                or any(not r["ok"] for r in o.get("rows", []))
            )
        ),
    }
    return summary


def _print_table(result: dict[str, Any], level: str, label: str) -> None:
    echo = click.echo
    for p in result["problems"]:
        echo(click.style("BROKEN ", fg="red", bold=True) + f"{p['where']}: {p['message']}")
    for o in result["objects"]:
        ns = f"{o['namespace']}/" if o["namespace"] else ""
        head = f"{o['kind']} {ns}{o['name'] or '(no name)'}"
        if not (o["violations"] or o["findings"] or o["problems"]):
            echo(click.style("OK     ", fg="green") + f"{head}  ({o['source']})")
            continue
        echo(click.style("FOUND  ", fg="yellow", bold=True) + f"{head}  ({o['source']})")
        rows: list[tuple[str, str, str, str, str, str]] = []
        for p in o["problems"]:
            rows.append(
                (
                    "INVALID" if p.get("severity") != "warning" else "WARNING",
                    "",
                    p["path"],
                    "",
                    "",
                    p["message"],
                )
            )
        for v in o["violations"]:
            rows.append(
                (
                    f"PSS {level}",
                    v["check"],
                    _where(v["path"], v["container"]),
                    v["field"],
                    v["value"],
                    v["reason"],
                )
            )
        for f in o["findings"]:
            rows.append(("CKS", f["check"], f["path"], f["field"], f["value"], f["message"]))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        for r in rows:
            cells = [r[i].ljust(min(widths[i], 48)) for i in range(5)]
            echo("   " + "  ".join(cells) + "  " + r[5])
        if o["violations"]:
            echo("   " + click.style(o["admission"], dim=True))
    s = result["summary"]
    echo("")
    shown = f"{label} (= {result['evaluated_as']} on the labs' cluster)" if label == "latest" else label
    echo(
        f"{s['objects']} objects checked ({s['clean_objects']} clean), {s['violations']} PSS {level}:{shown} "
        f"violations, {s['findings']} CKS findings, {s['problems']} problems"
        + (
            f"; {s['skipped_without_pod_spec']} objects without a pod spec skipped"
            if s["skipped_without_pod_spec"]
            else ""
        )
    )


def _print_profile(result: dict[str, Any], profile: str) -> None:
    echo = click.echo
    for p in result["problems"]:
        echo(click.style("BROKEN ", fg="red", bold=True) + f"{p['where']}: {p['message']}")
    for o in result["objects"]:
        ns = f"{o['namespace']}/" if o["namespace"] else ""
        head = f"{o['kind']} {ns}{o['name'] or '(no name)'}  ({o['source']})"
        bad = o["problems"] or any(not r["ok"] for r in o.get("rows", []))
        echo(
            (click.style("FOUND  ", fg="yellow", bold=True) if bad else click.style("OK     ", fg="green"))
            + head
        )
        for p in o["problems"]:
            label = "INVALID" if p.get("severity") != "warning" else "WARNING"
            echo(f"   {label}  {p['path']}  {p['message']}")
        rows = o.get("rows", [])
        if not rows:
            continue
        cells = [(_where(r["path"], r["container"]), r["field"], r["value"]) for r in rows]
        widths = [min(max(len(c[i]) for c in cells), 48) for i in range(3)]
        for r, c in zip(rows, cells, strict=True):
            mark = click.style("ok   ", fg="green") if r["ok"] else click.style("WRONG", fg="red", bold=True)
            echo(f"   {mark}  " + "  ".join(c[i].ljust(widths[i]) for i in range(3)) + f"  {r['message']}")
    s = result["summary"]
    echo("")
    echo(
        f"{_n(s['objects'], 'object')} checked with the {profile} definitions "
        f"({s['clean_objects']} as the lab wants), {_n(s['wrong_values'], 'wrong value')}, "
        f"{_n(s['problems'], 'problem')}"
        + (
            f"; {s['skipped_without_pod_spec']} objects without a pod spec skipped"
            if s["skipped_without_pod_spec"]
            else ""
        )
    )


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _where(path: str, container: str | None) -> str:
    return f"{path} ({container})" if container and not path.endswith("annotations") else path


__all__ = ["check_cmd", "check_sources", "parse_objects", "pods_group"]
