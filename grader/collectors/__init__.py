"""Live targets -> a snapshot directory in the workspace layout (the checks cannot tell the difference).

Cheap to import: only the standard library here. ``kubernetes`` and ``testinfra`` are imported inside the
functions of :mod:`grader.collectors.kube` and :mod:`grader.collectors.nodes`, and only on live paths.

    --target kind[:NAME]         kind cluster NAME (default "kind"): nodes via docker://root@NAME-control-plane
    --target vagrant[:MACHINE]   the Vagrant cluster of this repo: ssh with `vagrant ssh-config`
    --target local               this machine is the control-plane node (inside the VM)
    --target ssh://[USER@]HOST[:PORT][?ssh_config=F&identity=F&sudo=true]
    --target workspace:DIR       an offline practice workspace

Problems met while collecting (API server down, credentials expired, RBAC denial on a kind, a node that
refuses ssh, a timeout) never stop the collection: they are written to ``facts/_collector/`` and the
snapshot raises an environment ``FileProblem`` when a check reads what could not be fetched, so those tasks
become ``error`` with the collector's message while the rest are graded.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from grader.labs import Lab

Progress = Callable[[str], None]

TARGET_HELP = (
    "kind[:NAME] | vagrant[:MACHINE] | local | ssh://[USER@]HOST[:PORT] | workspace:DIR "
    "(e.g. --target kind:cks or --target vagrant:controlplane)"
)
APISERVER_MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml"
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$")


class LiveError(RuntimeError):
    """A live operation could not be done; ``str()`` says what happened and what to do."""


@dataclass(frozen=True)
class Target:
    """Where the lab lives. ``kind`` is one of kind, vagrant, local, ssh, workspace."""

    kind: str
    name: str = ""
    user: str | None = None
    port: int | None = None
    options: tuple[tuple[str, str], ...] = ()
    spec: str = ""

    def option(self, key: str, default: str | None = None) -> str | None:
        return dict(self.options).get(key, default)

    @property
    def label(self) -> str:
        if self.kind == "kind":
            return f"kind cluster {self.name}"
        if self.kind == "vagrant":
            return f"Vagrant machine {self.name}"
        if self.kind == "local":
            return "this node (local)"
        if self.kind == "ssh":
            user = self.user + "@" if self.user else ""
            port = ":" + str(self.port) if self.port else ""
            return f"ssh {user}{self.name}{port}"
        return f"workspace {self.name}"


@dataclass
class CollectResult:
    snapshot_dir: Path
    label: str
    problems: list[tuple[str, str]] = field(default_factory=list)  # (scope, message)


def parse_target(spec: str) -> Target:
    """``kind[:NAME] | vagrant[:MACHINE] | local | ssh://[USER@]HOST[:PORT] | workspace:DIR``."""
    raw = (spec or "").strip()
    if not raw:
        raise ValueError(f"empty target; use {TARGET_HELP}")
    if raw.startswith("ssh://"):
        url = urllib.parse.urlsplit(raw)
        if not url.hostname:
            raise ValueError(f"target {spec!r} names no host; write ssh://[USER@]HOST[:PORT]")
        try:
            port = url.port
        except ValueError:
            raise ValueError(f"target {spec!r} has a bad port; write ssh://HOST:2222") from None
        allowed = {"ssh_config", "identity", "sudo", "timeout"}
        query = urllib.parse.parse_qsl(url.query, keep_blank_values=True)
        for key, _ in query:
            if key not in allowed:
                raise ValueError(
                    f"target {spec!r}: unknown option {key!r}; allowed: {', '.join(sorted(allowed))}"
                )
        return Target(
            "ssh",
            url.hostname,
            urllib.parse.unquote(url.username) if url.username else None,
            port,
            tuple(query),
            raw,
        )
    if "://" in raw:
        raise ValueError(f"unknown target scheme in {spec!r}: only ssh:// is a URL; use {TARGET_HELP}")
    head, _, rest = raw.partition(":")
    if head == "workspace":
        if not rest:
            raise ValueError("target 'workspace:' needs a directory, e.g. workspace:cks-workspace/lab1")
        return Target("workspace", rest, spec=raw)
    if head == "local":
        if rest:
            raise ValueError("target 'local' takes no name: it grades the node it runs on")
        return Target("local", "localhost", spec=raw)
    if head in {"kind", "vagrant"}:
        name = rest or ("kind" if head == "kind" else "controlplane")
        if not _NAME.match(name):
            raise ValueError(
                f"target {spec!r}: {name!r} is not a valid {head} "
                f"{'cluster' if head == 'kind' else 'machine'} name"
            )
        return Target(head, name, spec=raw)
    raise ValueError(f"unknown target {spec!r}; use {TARGET_HELP}")


def default_target() -> str:
    """``local`` on a control-plane node, else ``workspace`` (the practice workspace)."""
    return (
        "local"
        if Path(os.environ.get("CKS_APISERVER_MANIFEST", APISERVER_MANIFEST)).is_file()
        else "workspace"
    )


def collect(
    lab: Lab,
    target: Target,
    dest: Path,
    *,
    kubeconfig: str | None = None,
    context: str | None = None,
    in_cluster: bool = False,
    progress: Progress | None = None,
    **options: Any,
) -> CollectResult:
    """Fetch what ``lab`` declares from ``target`` into ``dest`` (a snapshot directory)."""
    if target.kind == "workspace":
        path = Path(target.name)
        if not path.is_dir():
            raise LiveError(
                f"workspace {path} does not exist; start one with `cks start {lab.id} --workspace {path}`"
            )
        return CollectResult(path, target.label, [])
    from grader.collectors.gather import run_collect

    return run_collect(
        lab,
        target,
        Path(dest),
        kubeconfig=kubeconfig,
        context=context,
        in_cluster=in_cluster,
        progress=progress,
        **options,
    )


def start_live(
    lab: Lab,
    target: Target,
    *,
    seed: str | None = None,
    kubeconfig: str | None = None,
    context: str | None = None,
    progress: Progress | None = None,
    **options: Any,
) -> None:
    """``cks start LAB --target``: apply the lab's starting state to the cluster and record fingerprints."""
    _refuse_workspace(target, "start")
    from grader.collectors.lifecycle import start

    start(lab, target, seed=seed, kubeconfig=kubeconfig, context=context, progress=progress, **options)


def reset_live(
    lab: Lab,
    target: Target,
    *,
    seed: str | None = None,
    kubeconfig: str | None = None,
    context: str | None = None,
    progress: Progress | None = None,
    **options: Any,
) -> None:
    """``cks reset LAB --target``: restore the starting state (same seed), kube-apiserver included."""
    _refuse_workspace(target, "reset")
    from grader.collectors.lifecycle import reset

    reset(lab, target, seed=seed, kubeconfig=kubeconfig, context=context, progress=progress, **options)


def _refuse_workspace(target: Target, verb: str) -> None:
    if target.kind == "workspace":
        raise LiveError(f"`cks {verb} --target workspace:DIR` is the offline workspace: use --workspace DIR")
