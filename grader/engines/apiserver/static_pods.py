"""The static pod folder as kubelet sees it.

kubelet reads every regular file in ``/etc/kubernetes/manifests/`` whose name does not start with a dot,
whatever its extension (``kube-apiserver.yaml.bak``, ``kube-apiserver.yaml~`` and ``old.json`` are all pods),
does not recurse into sub-folders, and logs and skips files it cannot decode. A copy of the kube-apiserver
manifest left there is therefore a second kube-apiserver: with the same pod name kubelet keeps only one of
the two (maybe not the edited one); with another name both fight over port 6443 on the host network.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Any

from grader.engines.apiserver.manifest import parse_manifest_text
from grader.engines.apiserver.problems import Problem


@dataclass(frozen=True)
class DirEntry:
    """One entry of the folder, as the caller found it: kind is 'file', 'dir' or 'other'.

    For files, ``text`` holds the content (or ``error`` why it could not be read)."""

    name: str
    kind: str = "file"
    text: str | bytes | None = None
    error: str | None = None


@dataclass
class StaticPod:
    file: str
    namespace: str
    name: str
    runs_apiserver: bool


@dataclass
class StaticPodDir:
    path: str
    pods: list[StaticPod] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # hidden files and folders kubelet skips
    problems: list[Problem] = field(default_factory=list)

    @property
    def apiserver_files(self) -> list[str]:
        return [p.file for p in self.pods if p.runs_apiserver]

    def stray_apiservers(self, primary: str) -> list[str]:
        return [f for f in self.apiserver_files if f != primary]


def _runs_apiserver(doc: dict[str, Any]) -> bool:
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    labels = meta.get("labels") if isinstance(meta.get("labels"), dict) else {}
    if labels.get("component") == "kube-apiserver" or meta.get("name") == "kube-apiserver":
        return True
    spec = doc.get("spec") if isinstance(doc.get("spec"), dict) else {}
    containers = spec.get("containers") if isinstance(spec.get("containers"), list) else []
    for c in containers:
        if not isinstance(c, dict):
            continue
        if c.get("name") == "kube-apiserver":
            return True
        cmd = c.get("command") if isinstance(c.get("command"), list) else c.get("args")
        if (
            isinstance(cmd, list)
            and cmd
            and isinstance(cmd[0], str)
            and posixpath.basename(cmd[0]) == "kube-apiserver"
        ):
            return True
    return False


def analyze_manifest_dir(
    entries: list[DirEntry], path: str = "/etc/kubernetes/manifests", primary: str = "kube-apiserver.yaml"
) -> StaticPodDir:
    out = StaticPodDir(path)
    for e in sorted(entries, key=lambda e: e.name):
        where = posixpath.join(path, e.name)
        if e.name.startswith("."):
            out.ignored.append(e.name)
            continue
        if e.kind == "dir":
            out.ignored.append(e.name)
            out.problems.append(
                Problem(
                    "info",
                    "manifest-subdir",
                    f"{where} is a folder: kubelet does not look "
                    "inside it (a safe place is still outside the manifests folder)",
                    where,
                )
            )
            continue
        if e.kind != "file":
            out.problems.append(
                Problem("warning", "manifest-not-file", f"{where} is not a regular file", where)
            )
            continue
        if e.error or e.text is None:
            out.problems.append(
                Problem("warning", "manifest-unreadable", f"{where}: {e.error or 'not read'}", where)
            )
            continue
        doc, probs = parse_manifest_text(e.text)
        if doc is None or not isinstance(doc, dict) or doc.get("kind") != "Pod":
            why = probs[0].message if probs and doc is None else "it is not a Pod"
            out.problems.append(
                Problem(
                    "warning",
                    "manifest-not-pod",
                    f"{where}: kubelet tries to read every file "
                    f"here as a pod and fails ({why}); keep other files elsewhere",
                    where,
                )
            )
            continue
        meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
        out.pods.append(
            StaticPod(
                e.name,
                str(meta.get("namespace") or "default"),
                str(meta.get("name") or ""),
                _runs_apiserver(doc),
            )
        )
    by_name: dict[tuple[str, str], list[str]] = {}
    for pod in out.pods:
        by_name.setdefault((pod.namespace, pod.name), []).append(pod.file)
    for (ns, name), files in by_name.items():
        if len(files) > 1:
            out.problems.append(
                Problem(
                    "error",
                    "duplicate-static-pod",
                    f"{len(files)} files define the pod "
                    f"{ns}/{name}: {', '.join(files)}; kubelet runs only one of them and rejects "
                    "the others as duplicates, so your edit may not be the one that runs",
                    posixpath.join(path, files[1]),
                )
            )
    apis = out.apiserver_files
    for f in apis:
        if f == primary or len(apis) < 2:
            continue
        out.problems.append(
            Problem(
                "error",
                "second-apiserver",
                f"{posixpath.join(path, f)} is a second "
                "kube-apiserver static pod: kubelet reads every file in the folder, whatever its "
                "name; move backups outside /etc/kubernetes/manifests",
                posixpath.join(path, f),
            )
        )
    if primary not in {p.file for p in out.pods}:
        out.problems.append(
            Problem(
                "error",
                "primary-missing",
                f"{posixpath.join(path, primary)} is not a pod kubelet can run",
                posixpath.join(path, primary),
            )
        )
    return out
