"""`cks apiserver check MANIFEST`: what kube-apiserver would make of a static pod manifest (a study tool)."""

from __future__ import annotations

import json
import sys
from pathlib import Path, PurePosixPath

import click

from grader.cli.options import format_option

MAX_BYTES = 5 * 1024 * 1024
_COLORS = {"fatal": "red", "error": "red", "warning": "yellow", "info": "cyan"}


class DirHost:
    """The engine's HostView over a folder holding a node's files (a workspace's nodes/<node>/)."""

    def __init__(self, root: Path):
        self.root = root.resolve()

    def _local(self, path: str) -> Path | None:
        pure = PurePosixPath("/" + path.lstrip("/"))
        if ".." in pure.parts:
            return None
        local = self.root / str(pure).lstrip("/")
        try:
            real = local.resolve()
        except (OSError, RuntimeError):
            return None
        return local if real == self.root or self.root in real.parents else None

    def kind(self, path: str) -> str | None:
        local = self._local(path)
        if local is None:
            return None
        if local.is_dir():
            return "dir"
        return "file" if local.exists() else "missing"

    def read_text(self, path: str) -> str:
        from grader.engines.apiserver import HostFileError

        local = self._local(path)
        if local is None:
            raise HostFileError(f"{path} is outside {self.root}")
        try:
            data = _read(local)
        except ValueError as exc:
            raise HostFileError(str(exc)) from None
        return data


def _read(path: Path) -> str:
    from grader import safeio

    try:
        data = safeio.read_bytes(path, max_bytes=MAX_BYTES)
    except safeio.ReadRefused as exc:
        if exc.kind == "too_large":
            raise ValueError(
                f"{path} is too large for a manifest or policy (over {MAX_BYTES // 1048576} MB)"
            ) from None
        raise ValueError(str(exc)) from None
    if b"\x00" in data[:65536]:
        raise ValueError(f"{path} is binary, not YAML")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not UTF-8 text (bad byte at offset {exc.start})") from None


def _folder_entries(folder: Path):
    from grader.engines.apiserver import DirEntry

    entries = []
    for p in sorted(folder.iterdir())[:500]:
        if p.is_dir():
            entries.append(DirEntry(p.name, "dir"))
        elif p.is_file():
            try:
                entries.append(DirEntry(p.name, "file", _read(p)))
            except ValueError as exc:
                entries.append(DirEntry(p.name, "file", None, str(exc)))
        else:
            entries.append(DirEntry(p.name, "other"))
    return entries


@click.command("check", context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.argument("manifest", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--host-root",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    metavar="DIR",
    help="Folder holding the node's files (e.g. a workspace's nodes/controlplane): checks hostPaths, "
    "loads the policy, looks for stray manifests. Use / on the node itself.",
)
@format_option("text", "json")
def manifest_cmd(manifest: Path, host_root: Path | None, fmt: str) -> None:
    """Show what kube-apiserver would read from MANIFEST: the effective audit flags, where each audit path
    lands on the node, and every problem that would stop kubelet or kube-apiserver.

    \b
    Exit codes: 0 it would start, 1 something would stop it, 2 the file cannot be read.
    Example: cks apiserver check nodes/controlplane/etc/kubernetes/manifests/kube-apiserver.yaml \\
               --host-root nodes/controlplane
    """
    from grader.engines.apiserver import (
        ManifestAnalysis,
        analyze_manifest,
        analyze_manifest_dir,
        load_manifest_policy,
        parse_manifest_text,
    )

    try:
        text = _read(manifest)
    except ValueError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    host = DirHost(host_root) if host_root else None
    doc, problems = parse_manifest_text(text)
    a = ManifestAnalysis() if doc is None else analyze_manifest(doc, host)
    a.problems[:0] = problems
    policy = load_manifest_policy(a, host) if host and a.readable else None
    folder = None
    if host_root is not None:
        candidate = host_root / "etc" / "kubernetes" / "manifests"
        folder = candidate if candidate.is_dir() else None
    elif manifest.parent.name == "manifests":
        folder = manifest.parent
    stray = None
    if folder is not None:
        primary = manifest.name if manifest.resolve().parent == folder.resolve() else "kube-apiserver.yaml"
        stray = analyze_manifest_dir(_folder_entries(folder), "/etc/kubernetes/manifests", primary)
        a.problems.extend(p for p in stray.problems if p.code != "primary-missing")
    blocking = bool(a.blocking) or bool(policy and not policy.ok and policy.status != "no-flag")
    if fmt == "json":
        click.echo(json.dumps(_as_json(a, policy, stray), indent=2))
    else:
        _print_text(manifest, a, policy, stray, host is not None)
    sys.exit(1 if blocking or not a.readable else 0)


def _as_json(a, policy, stray) -> dict:
    return {
        "would_start": a.would_start and not (policy and not policy.ok and policy.status != "no-flag"),
        "container": a.container_name,
        "audit_flags": {
            n: {"set": f.set, "value": f.value, "raw": f.raw, "where": f.where, "error": f.error}
            for n, f in sorted(a.audit.items())
            if f.set
        },
        "unknown_audit_flags": [
            {"flag": w, "where": at, "did_you_mean": h and f"--{h}"} for w, at, h in a.unknown_audit_flags
        ],
        "policy_mount": _access(a.policy),
        "log_mount": _access(a.log),
        "policy": None
        if policy is None
        else {
            "status": policy.status,
            "host_path": policy.host_path,
            "message": policy.message,
            "errors": policy.errors,
            "warnings": policy.warnings,
        },
        "static_pods": None
        if stray is None
        else {"apiserver_files": stray.apiserver_files, "ignored": stray.ignored},
        "problems": [
            {"severity": p.severity, "code": p.code, "message": p.message, "where": p.where}
            for p in a.problems
        ],
    }


def _access(acc) -> dict | None:
    if acc is None:
        return None
    return {
        "container_path": acc.container_path,
        "mount": acc.mount.mount_path if acc.mount else None,
        "volume": acc.mount.name if acc.mount else None,
        "host_path": acc.host_path,
        "read_only": acc.mount.read_only if acc.mount else None,
        "ok": acc.ok,
    }


def _print_text(manifest: Path, a, policy, stray, has_host: bool) -> None:
    click.echo(click.style(f"{manifest}", bold=True))
    if a.container_name:
        click.echo(
            f"  container {a.container_name!r} ({a.container_where}), {max(len(a.argv) - 1, 0)} arguments"
        )
    _print_audit_flags(a)
    _print_paths(a)
    _print_policy(policy, has_host)
    _print_static_pod_folder(stray)
    _print_problems(a)


def _print_audit_flags(a) -> None:
    echo = click.echo
    echo(click.style("Audit flags (effective values; the last occurrence wins)", bold=True))
    shown = [f for f in a.audit.values() if f.set]
    if not shown:
        echo("  none set: auditing is off")
    for f in sorted(shown, key=lambda f: f.name):
        unit = f" {f.spec.unit}" if f.spec.unit and f.error is None else ""
        val = "standard output" if f.name == "audit-log-path" and f.value == "-" else f.value
        err = click.style(f"  <- {f.error}", fg="red") if f.error else ""
        echo(f"  --{f.name} = {val!r}{unit}{err}")
    for written, _where, hint in a.unknown_audit_flags[:20]:
        echo(
            click.style(
                f"  {written}: not a kube-apiserver flag" + (f" (did you mean --{hint}?)" if hint else ""),
                fg="red",
            )
        )


def _print_paths(a) -> None:
    click.echo(click.style("Paths", bold=True))
    for acc in (a.policy, a.log):
        if acc is not None:
            mark = click.style("ok", fg="green") if acc.clean else click.style("!!", fg="red")
            click.echo(f"  [{mark}] {acc.purpose}: {acc.describe()}")
    if a.policy is None and a.log is None:
        click.echo("  no audit path to mount")


def _print_policy(policy, has_host: bool) -> None:
    echo = click.echo
    if policy is not None:
        echo(click.style("Policy", bold=True))
        echo(f"  {policy.message}")
        for e in policy.errors[:10]:
            echo(click.style(f"    {e}", fg="red"))
        for w in policy.warnings[:10]:
            echo(click.style(f"    warning: {w}", fg="yellow"))
    elif not has_host:
        echo("  (give --host-root to check hostPaths on the node and load the policy)")


def _print_static_pod_folder(stray) -> None:
    if stray is None:
        return
    click.echo(click.style("Static pod folder", bold=True))
    click.echo(
        f"  kube-apiserver pods: {', '.join(stray.apiserver_files) or 'none'}"
        + (f"; ignored by kubelet: {', '.join(stray.ignored)}" if stray.ignored else "")
    )


def _print_problems(a) -> None:
    echo = click.echo
    echo(click.style("Problems", bold=True))
    if not a.problems:
        echo("  none")
    for p in a.problems[:100]:
        echo(
            click.style(f"  {p.severity:7}", fg=_COLORS.get(p.severity))
            + f" {p.message}"
            + (f"  [{p.where}]" if p.where else "")
        )
    if len(a.problems) > 100:
        echo(f"  ... and {len(a.problems) - 100} more")
