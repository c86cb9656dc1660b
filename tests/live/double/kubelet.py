"""The control plane's kubelet and kube-apiserver, as far as static pods and auditing go.

A watcher thread re-reads ``/etc/kubernetes/manifests/kube-apiserver.yaml`` on the control-plane node every
0.2 s (kubelet's file check, shortened). When the file changes:
- a manifest the project's apiserver engine says would not start (unparseable, no kube-apiserver container,
  a fatal flag or mount problem) takes the API down: the port refuses connections, as when kubelet drops the
  static pod; the fake ``/proc`` entry and the crictl listing are emptied;
- otherwise the API comes (back) up, the fake process runs the manifest's command (``/proc/4242/cmdline``,
  started now), the mirror pod ``kube-system/kube-apiserver-<node>`` is Ready with that command, and auditing
  follows the flags: the policy named by ``--audit-policy-file`` is loaded (through the manifest's hostPath
  mounts, with the project's audit policy engine), and every request the double serves is evaluated against
  it and written as JSON lines (stages RequestReceived and ResponseComplete unless omitted) to the node file
  that ``--audit-log-path`` reaches through the mounts. A policy that does not load keeps the API down
  (kube-apiserver exits on a bad policy). Rotation and the webhook backend are not modelled.
"""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml"


class NodeHost:
    """The apiserver engine's HostView over a node directory."""

    def __init__(self, root: Path):
        self.root = root

    def kind(self, path: str) -> str | None:
        p = self.root / path.lstrip("/")
        return "dir" if p.is_dir() else "file" if p.is_file() else "missing"

    def read_text(self, path: str) -> str:
        from grader.engines.apiserver.host import HostFileError

        try:
            return (self.root / path.lstrip("/")).read_text()
        except OSError as exc:
            raise HostFileError(str(exc)) from None


class Kubelet:
    def __init__(self, cluster: Any, node: Any):
        self.cluster, self.node = cluster, node
        self.policy = None
        self.log_path: Path | None = None
        self._mtime: float | None = None
        self._stop = threading.Event()
        self.sync()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(0.2):
            with contextlib.suppress(Exception):  # a watcher must not die on a half-written file
                self.sync()

    def sync(self) -> None:
        f = self.node.path(MANIFEST)
        mtime = f.stat().st_mtime if f.is_file() else None
        if mtime == self._mtime:
            return
        self._mtime = mtime
        from grader.collectors.facts import audit_log_host_path
        from grader.engines.apiserver.manifest import analyze_manifest, parse_manifest_text
        from grader.engines.apiserver.policy import load_manifest_policy

        text = f.read_text() if f.is_file() else ""
        doc, problems = parse_manifest_text(text) if text else (None, [])
        host = NodeHost(self.node.root)
        analysis = analyze_manifest(doc, host) if doc is not None else None
        api = self.cluster.api
        # only what kube-apiserver cannot survive stops it (an unreadable manifest, fatal flag problems);
        # grading errors such as an unmounted log directory leave it running
        starts = (
            analysis is not None
            and analysis.readable
            and not any(getattr(p, "severity", "") == "fatal" for p in [*problems, *analysis.problems])
        )
        policy, log = None, None
        if starts and analysis.flag("audit-policy-file").value:
            load = load_manifest_policy(analysis, host)
            starts = load.ok
            policy = load.result.policy if load.ok else None
            host_log = audit_log_host_path(text)
            log = self.node.path(host_log) if host_log else None
        if not starts:
            api.audit_sink = None
            self.node.kubelet_sync_down()
            api.down()
            return
        self.policy, self.log_path = policy, log
        pod = self.node.kubelet_sync()
        api.up()
        api.audit_sink = self.audit if policy is not None and log is not None else None
        command = [str(a) for a in pod["spec"]["containers"][0].get("command") or []]
        api.mirror_pod(self.node.name, command)

    def audit(
        self, user: str, groups: list[str], method: str, uri: str, attrs: dict[str, Any], code: int
    ) -> None:
        from grader.engines.audit_policy import RequestAttributes

        if self.policy is None or self.log_path is None:
            return
        try:
            req = RequestAttributes.from_mapping({"user": {"username": user, "groups": groups}, **attrs})
        except Exception:  # noqa: BLE001 - an attribute shape the engine refuses: no event
            return
        decision = self.policy.evaluate(req)
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        audit_id = str(uuid.uuid4())
        obj_ref = {
            k: v
            for k, v in {
                "resource": attrs.get("resource"),
                "namespace": attrs.get("namespace"),
                "name": attrs.get("name"),
                "apiGroup": attrs.get("apiGroup"),
                "apiVersion": attrs.get("apiVersion"),
            }.items()
            if v
        }
        lines = []
        for stage in ("RequestReceived", "ResponseComplete"):
            if not decision.records(stage):
                continue
            ev = {
                "kind": "Event",
                "apiVersion": "audit.k8s.io/v1",
                "level": decision.level,
                "auditID": audit_id,
                "stage": stage,
                "requestURI": uri,
                "verb": attrs.get("verb"),
                "user": {"username": user, "groups": groups},
                "sourceIPs": ["127.0.0.1"],
                "userAgent": "cks-kit-grader",
                "requestReceivedTimestamp": now,
                "stageTimestamp": now,
            }
            if obj_ref and attrs.get("resource"):
                ev["objectRef"] = obj_ref
            if stage == "ResponseComplete":
                ev["responseStatus"] = {"metadata": {}, "code": code}
            lines.append(json.dumps(ev))
        if lines:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with self.log_path.open("a") as fh:
                fh.write("\n".join(lines) + "\n")
