"""Load the audit policy a manifest points at, from the node, with the audit policy engine."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from grader.engines.apiserver.host import HostFileError, HostView
from grader.engines.apiserver.manifest import ManifestAnalysis
from grader.text import plural

Loader = Callable[[str], Any]  # load_policy(text) -> LoadResult(.policy, .errors, .warnings, .ok)


@dataclass
class PolicyLoad:
    """The outcome of loading the policy named by --audit-policy-file.

    ``status``: ok | no-flag | missing | unreadable | invalid | engine-unavailable.
    ``host_path`` is where the file is on the node: through the mount when one covers it, else the flag's
    path itself (then ``mounted`` is False and kube-apiserver would not see it anyway)."""

    status: str
    message: str
    container_path: str = ""
    host_path: str = ""
    mounted: bool = False
    result: Any = None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _default_loader() -> Loader | None:
    try:
        from grader.engines.audit_policy import load_policy
    except ImportError:
        return None
    return load_policy


def policy_host_path(analysis: ManifestAnalysis) -> tuple[str, bool]:
    """(host path, mounted) of the policy the flag names; '' when the flag is not set."""
    eff = analysis.flag("audit-policy-file")
    if not eff.value:
        return "", False
    acc = analysis.policy
    if acc is not None and acc.host_path:
        return acc.host_path, True
    return str(eff.value), False


def load_manifest_policy(
    analysis: ManifestAnalysis, host: HostView, loader: Loader | None = None
) -> PolicyLoad:
    eff = analysis.flag("audit-policy-file")
    if not eff.value:
        return PolicyLoad("no-flag", "--audit-policy-file is not set: kube-apiserver records no events")
    path, mounted = policy_host_path(analysis)
    out = PolicyLoad("ok", "", str(eff.value), path, mounted)
    kind = host.kind(path)
    if kind == "missing":
        out.status, out.message = "missing", f"the policy file {path} does not exist on the node"
        return out
    if kind == "dir":
        out.status, out.message = "missing", f"{path} on the node is a directory, not a policy file"
        return out
    try:
        text = host.read_text(path)
    except HostFileError as exc:
        out.status, out.message = "unreadable", str(exc)
        return out
    loader = loader or _default_loader()
    if loader is None:
        out.status = "engine-unavailable"
        out.message = "the audit policy engine (grader.engines.audit_policy) is not installed"
        return out
    result = loader(text)
    out.result = result
    out.errors = [str(e) for e in getattr(result, "errors", []) or []]
    out.warnings = [str(w) for w in getattr(result, "warnings", []) or []]
    if not getattr(result, "ok", False):
        out.status = "invalid"
        first = out.errors[0] if out.errors else "it does not load"
        more = f" (and {len(out.errors) - 1} more)" if len(out.errors) > 1 else ""
        out.message = f"kube-apiserver would not load the policy {path}: {first}{more}; it fails to start"
        return out
    out.message = f"the policy {path} loads" + (
        f" ({plural(len(out.warnings), 'warning')})" if out.warnings else ""
    )
    return out
