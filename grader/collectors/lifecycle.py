"""`cks start|reset LAB --target ...`: put a lab's starting state on a real cluster and take it back.

start:  materialize the start state (same seed) into a temp dir -> server-side apply cluster/*.yaml
        (Namespaces first) -> write node files through the node backend (never the node's own static-pod
        manifests, PKI, kubeconfigs or Falco's default rules: the workspace copies of those are stand-ins)
        -> back up the real kube-apiserver manifest to /var/lib/cks/<lab>/ (outside
        /etc/kubernetes/manifests, where kubelet would run a second copy) -> wait for Deployments and
        kube-apiserver to settle -> record fingerprints (UIDs, resourceVersions, generations, file hashes)
        in ConfigMap cks-system/lab-<id> and on the node.
reset:  restore the kube-apiserver manifest from the backup (even when the API server is down: the record
        is on the node too), move stray files out of the manifests folder, wait for /readyz, delete what
        the lab created and the learner's answer files, then start again with the same seed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from grader import variants
from grader.collectors import LiveError, Progress, Target
from grader.collectors.gather import FINGERPRINT_NS, connect_api
from grader.collectors.kube import CRICTL_HINT, KubeApi, KubeError
from grader.collectors.nodes import Node, NodeError, open_node
from grader.labs import Lab
from grader.snapshot import Snapshot

STATE_DIR = os.environ.get("CKS_STATE_DIR", "/var/lib/cks")
MANIFESTS = "/etc/kubernetes/manifests"
# Node paths a lab's start state never overwrites on a real node: the workspace holds stand-ins for them.
PROTECTED = (
    "/etc/kubernetes/manifests/",
    "/etc/kubernetes/pki/",
    "/etc/kubernetes/admin.conf",
    "/etc/kubernetes/kubelet.conf",
    "/etc/kubernetes/super-admin.conf",
    "/etc/falco/falco_rules.yaml",
    "/etc/falco/falco.yaml",
    "/var/lib/kubelet/",
)
KIND_ORDER = [
    "Namespace",
    "ServiceAccount",
    "ClusterRole",
    "Role",
    "ClusterRoleBinding",
    "RoleBinding",
    "ConfigMap",
    "Secret",
    "Service",
    "NetworkPolicy",
    "RuntimeClass",
]
PRISTINE_MANIFEST = "/etc/kubernetes/cks-pristine/kube-apiserver.yaml"  # written once by provisioning
FALCO_RULES = "/etc/falco/falco_rules.yaml"
SETTLE_TIMEOUT = float(os.environ.get("CKS_SETTLE_TIMEOUT", "180"))


def apiserver_manifest() -> str:
    return os.environ.get("CKS_APISERVER_MANIFEST", f"{MANIFESTS}/kube-apiserver.yaml")


def state_dir(lab: Lab) -> str:
    return f"{os.environ.get('CKS_STATE_DIR', STATE_DIR)}/{lab.id}"


def _say(progress: Progress | None):
    return progress or (lambda _m: None)


def _admin_api(
    target: Target, kubeconfig, context, node: Node | None, timeout: float | None = None
) -> KubeApi:
    try:
        return connect_api(
            target,
            kubeconfig=kubeconfig,
            context=context,
            in_cluster=False,
            node=node,
            admin=True,
            timeout=timeout,
        )
    except KubeError as exc:
        raise LiveError(str(exc)) from None


def _open_nodes(target: Target, names: set[str], workdir: Path, timeout: float | None) -> dict[str, Node]:
    nodes = {}
    for name in sorted(names | {"controlplane"}):
        try:
            node = open_node(target, name, workdir=workdir, **({"timeout": timeout} if timeout else {}))
            node.run("true")
        except NodeError as exc:
            for n in nodes.values():
                n.close()
            raise LiveError(str(exc)) from None
        nodes[name] = node
    return nodes


def is_protected_path(path: str) -> bool:
    """A node path a lab's start state never overwrites on a real node (PROTECTED, and the real
    kube-apiserver manifest)."""
    return any(path == p.rstrip("/") or path.startswith(p) for p in PROTECTED) or path == apiserver_manifest()


def node_files_of(start: Path) -> dict[str, dict[str, bytes]]:
    """node -> {absolute path: bytes} from a materialized start state."""
    out: dict[str, dict[str, bytes]] = {}
    base = start / "nodes"
    if not base.is_dir():
        return out
    for node_dir in sorted(p for p in base.iterdir() if p.is_dir()):
        for f in sorted(node_dir.rglob("*")):
            if f.is_file() and not f.is_symlink():
                out.setdefault(node_dir.name, {})["/" + f.relative_to(node_dir).as_posix()] = f.read_bytes()
    return out


def _ordered_objects(snap: Snapshot) -> list[dict[str, Any]]:
    objs = snap.objects()
    if snap.object_problems:
        p = snap.object_problems[0]
        raise LiveError(f"the lab's start state has a broken object ({p.where}: {p.message}); fix the lab")
    # a namespace the start state uses without declaring it (offline it is implicit): create it too, so the
    # objects in it can be applied and `cks reset` removes it with them
    declared = {o["metadata"].get("name") for o in objs if o.get("kind") == "Namespace"}
    used = sorted(
        {str(o["metadata"]["namespace"]) for o in objs if (o.get("metadata") or {}).get("namespace")}
        - declared
        - {"default", "kube-system", "kube-public", "kube-node-lease"}
    )
    objs = [*objs, *({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}} for ns in used)]
    # objects owned by a controller (the ReplicaSets and Pods of a Deployment in a captured picture) are the
    # controller's to create: applied by hand they would carry owner UIDs that do not exist and be collected
    objs = [o for o in objs if not (o.get("metadata") or {}).get("ownerReferences")]
    rank = {k: i for i, k in enumerate(KIND_ORDER)}
    return sorted(objs, key=lambda o: rank.get(str(o.get("kind")), len(rank)))


# ---- start ------------------------------------------------------------------------------------------------


def start(
    lab: Lab,
    target: Target,
    *,
    seed: str | None = None,
    kubeconfig: str | None = None,
    context: str | None = None,
    progress: Progress | None = None,
    timeout: float | None = None,
    settle: float | None = None,
) -> dict[str, Any]:
    from grader.workspace import materialize

    say = _say(progress)
    tmp = Path(tempfile.mkdtemp(prefix=f"cks-{lab.id}-start-"))
    try:
        say("preparing the starting state")
        materialize(lab, tmp, seed)
        files = node_files_of(tmp)
        nodes = _open_nodes(target, set(files), tmp / ".work", timeout)
        try:
            api = _admin_api(target, kubeconfig, context, nodes.get("controlplane"), timeout)
            try:
                return _start(lab, target, seed, tmp, files, nodes, api, say, settle)
            finally:
                api.close()
        finally:
            for node in nodes.values():
                node.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _start(lab, target, seed, tmp, files, nodes, api: KubeApi, say, settle) -> dict[str, Any]:
    cp = nodes["controlplane"]
    _check_api(api)
    backup = state_dir(lab)
    say("backing up kube-apiserver's manifest")
    listing = _back_up_manifest(cp, backup)
    say("applying API objects")
    objects = _apply_objects(api, Snapshot(tmp))
    say("granting the grader its lab rights")
    _grant_grader(api, lab_namespaces(lab, seed))
    say("writing node files")
    kept, hashes = _write_node_files(files, nodes)
    say("waiting for the lab to settle")
    _settle(api, objects, settle if settle is not None else SETTLE_TIMEOUT)
    rewritten = _render_container_ids(api, Snapshot(tmp), files, nodes)
    for node_name, path, data in rewritten:
        hashes.setdefault(node_name, {})[path] = hashlib.sha256(data).hexdigest()
    say("recording fingerprints")
    record = {
        "lab": lab.id,
        "lab_version": lab.version,
        "seed": seed,
        "target": target.label,
        "started": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "started_epoch": _node_epoch(cp),
        "objects": [_fingerprint(api, o) for o in objects],
        "files": hashes,
        "kept_node_files": kept,
        "backup_dir": backup,
        "manifests": listing,
        # the node's own files the lab must leave untouched (Falco's default rules), as they were at the
        # start: the checks judge "untouched" against these hashes (fact start-files), never against the
        # kit's copy
        "start_files": _kept_hashes(nodes, kept),
    }
    _save_record(cp, api, backup, lab.id, record)
    return record


def _back_up_manifest(cp: Node, backup: str) -> list[str]:
    """Keep the kube-apiserver manifest this lab's reset restores and the manifests folder's listing (both
    only on the first start); returns the listing."""
    manifest = apiserver_manifest()
    listing = cp.run('[ -d "$1" ] && ls -1A -- "$1"', str(PurePosixPath(manifest).parent)).text.split()
    # the manifest this lab's reset restores: provisioning's pristine copy when there is one (labs share the
    # cluster, so the live manifest may already carry an earlier lab's edits), else the first start's copy
    current = cp.read_file(PRISTINE_MANIFEST) or cp.read_file(manifest)
    if current is not None and cp.read_file(f"{backup}/kube-apiserver.yaml") is None:
        cp.write_file(f"{backup}/kube-apiserver.yaml", current, mode="0600")
    if cp.read_file(f"{backup}/manifests.txt") is None:
        cp.write_file(f"{backup}/manifests.txt", ("\n".join(listing) + "\n").encode(), mode="0600")
    return listing


def _apply_objects(api: KubeApi, start: Snapshot) -> list[dict[str, Any]]:
    """Server-side apply the start state's API objects (Namespaces first); returns them in that order."""
    objects = _ordered_objects(start)
    _ensure_namespace(api, FINGERPRINT_NS)
    for obj in objects:
        try:
            api.apply(_strip_server_fields(obj))
        except KubeError as exc:
            raise LiveError(f"cannot apply {obj.get('kind')} {_name(obj)}: {exc}") from None
    return objects


def _grant_grader(api: KubeApi, namespaces: list[str]) -> None:
    for ns in namespaces:
        try:
            api.apply(grader_binding(ns))
        except KubeError as exc:
            raise LiveError(
                f"cannot bind the grader's lab role in namespace {ns}: {exc} (apply deploy/rbac.yaml "
                "first: it defines ClusterRole cks-grader-lab)"
            ) from None


def _write_node_files(
    files: dict[str, dict[str, bytes]], nodes: dict[str, Node]
) -> tuple[list[str], dict[str, dict[str, str]]]:
    """Write the start state's node files, never the node's protected ones; returns (the protected ones
    kept as ``node:path``, node -> {path: sha256 of what was written})."""
    kept: list[str] = []
    hashes: dict[str, dict[str, str]] = {}
    for node_name, node_files in files.items():
        node = nodes[node_name]
        for path, data in node_files.items():
            if is_protected_path(path):
                kept.append(f"{node_name}:{path}")
                continue
            try:
                node.write_file(
                    path, data, mode="0600" if "/pki/" in path or path.endswith(".key") else "0644"
                )
            except NodeError as exc:
                raise LiveError(str(exc)) from None
            hashes.setdefault(node_name, {})[path] = hashlib.sha256(data).hexdigest()
    return kept, hashes


def _save_record(cp: Node, api: KubeApi, backup: str, lab_id: str, record: dict[str, Any]) -> None:
    """The start record on the node (reset reads it even when the API server is down) and in a ConfigMap."""
    cp.write_file(f"{backup}/record.json", json.dumps(record, indent=1).encode(), mode="0600")
    api.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": f"lab-{lab_id}",
                "namespace": FINGERPRINT_NS,
                "labels": {"app.kubernetes.io/managed-by": "cks-kit", "cks-kit/lab": lab_id},
            },
            "data": {"record.json": json.dumps(record)},
        }
    )


GRADER_LAB_ROLE = "cks-grader-lab"


def lab_namespaces(lab: Lab, seed: str | None) -> list[str]:
    """The namespaces a lab grades in (collect.namespaces and the tasks' namespace params), rendered."""
    values = variants.values_for(lab, seed)
    names = list(lab.collect.namespaces)
    for task in lab.tasks:
        for key in ("namespace", "namespaces"):
            v = task.params.get(key)
            names.extend([v] if isinstance(v, str) else [x for x in v or [] if isinstance(x, str)])
    rendered = {variants.render_text(n, values) for n in names}
    return sorted(n for n in rendered if n and "{" not in n)


def grader_binding(namespace: str) -> dict[str, Any]:
    """Secrets and exec for the grader's ServiceAccount in one lab namespace (never cluster-wide)."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {
            "name": GRADER_LAB_ROLE,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "cks-kit"},
        },
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": GRADER_LAB_ROLE},
        "subjects": [{"kind": "ServiceAccount", "name": "cks-grader", "namespace": FINGERPRINT_NS}],
    }


def _container_ids_by_deployment(
    pods: list[dict[str, Any]], replicasets: list[dict[str, Any]]
) -> dict[tuple[str, str], list[str]]:
    """(namespace, Deployment name) -> container ids (64 hex, runtime prefix dropped) of its pods, oldest
    first."""
    rs_owner = {}
    for rs in replicasets:
        meta = rs.get("metadata") or {}
        for ref in meta.get("ownerReferences") or []:
            if ref.get("kind") == "Deployment":
                rs_owner[(meta.get("namespace"), meta.get("name"))] = ref.get("name")
    out: dict[tuple[str, str], list[str]] = {}
    for pod in sorted(pods, key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or ""):
        meta = pod.get("metadata") or {}
        for ref in meta.get("ownerReferences") or []:
            dep = (
                rs_owner.get((meta.get("namespace"), ref.get("name")))
                if ref.get("kind") == "ReplicaSet"
                else None
            )
            if dep is None:
                continue
            for st in (pod.get("status") or {}).get("containerStatuses") or []:
                cid = str(st.get("containerID") or "").split("://")[-1]
                if cid:
                    out.setdefault((str(meta.get("namespace")), str(dep)), []).append(cid)
    return out


def _render_container_ids(
    api: KubeApi, start: Snapshot, files: dict[str, dict[str, bytes]], nodes: dict[str, Node]
) -> list[tuple[str, str, bytes]]:
    """A start state that pictures running pods (lab4: the earlier alerts name their container ids) meets
    real pods on a cluster: each pictured container id in the node files the start wrote is replaced by the
    id of a live pod of the same Deployment, so the evidence points at containers that exist."""
    pictured = _container_ids_by_deployment(start.objects("Pod"), start.objects("ReplicaSet"))
    if not pictured:
        return []
    try:
        live = _container_ids_by_deployment(api.list("Pod"), api.list("ReplicaSet"))
    except KubeError as exc:
        raise LiveError(f"cannot read the lab's pods to render its container ids: {exc}") from None
    mapping: dict[str, str] = {}
    for key, old_ids in pictured.items():
        new_ids = live.get(key) or []
        for i, old in enumerate(old_ids):
            if new_ids:
                mapping[old] = new_ids[i % len(new_ids)]
    out = []
    for node_name, node_files in files.items():
        for path, data in node_files.items():
            if is_protected_path(path) or node_name not in nodes:
                continue
            text = data.decode("utf-8", "replace")
            new = text
            for old, cid in mapping.items():
                new = new.replace(old, cid).replace(old[:12], cid[:12])
            if new != text:
                nodes[node_name].write_file(path, new.encode(), mode="0644")
                out.append((node_name, path, new.encode()))
    return out


def _check_api(api: KubeApi) -> None:
    try:
        api.request("GET", "/version")
    except KubeError as exc:
        extra = f"; {CRICTL_HINT}" if exc.reason in {"unreachable", "timeout"} else ""
        raise LiveError(f"{exc}{extra}") from None


def _ensure_namespace(api: KubeApi, name: str) -> None:
    api.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


def _strip_server_fields(obj: dict[str, Any]) -> dict[str, Any]:
    """What server-side apply accepts from a start file: no uid/resourceVersion/status of a recorded
    object."""
    body = json.loads(json.dumps(obj))
    meta = body.get("metadata") or {}
    for key in ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields", "selfLink"):
        meta.pop(key, None)
    body.pop("status", None)
    return body


def _name(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace') + '/' if meta.get('namespace') else ''}{meta.get('name')}"


def _fingerprint(api: KubeApi, obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    live = api.get(str(obj["kind"]), meta.get("namespace"), str(meta.get("name"))) or {}
    lm = live.get("metadata") or {}
    spec = live.get("spec") if "spec" in live else live.get("data")
    return {
        "kind": obj["kind"],
        "namespace": lm.get("namespace") or meta.get("namespace") or "",
        "name": meta.get("name"),
        "uid": lm.get("uid"),
        "resourceVersion": lm.get("resourceVersion"),
        "generation": lm.get("generation"),
        "hash": hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16] if spec else None,
    }


def _settle(api: KubeApi, objects: list[dict[str, Any]], timeout: float) -> None:
    """Deployments available, kube-apiserver ready: or a LiveError naming what did not settle."""
    end = time.monotonic() + timeout
    pending = [o for o in objects if o.get("kind") in {"Deployment", "StatefulSet", "DaemonSet"}]
    while True:
        waiting = []
        for o in pending:
            meta = o["metadata"]
            live = api.get(o["kind"], meta.get("namespace"), meta["name"])
            st = (live or {}).get("status") or {}
            want = int(((live or {}).get("spec") or {}).get("replicas", 1) or 0)
            ready = int(st.get("readyReplicas") or st.get("numberReady") or 0)
            if live is None or (want and ready < want):
                waiting.append(f"{o['kind']} {_name(o)} ({ready}/{want} ready)")
        if not waiting and api.readyz()["ok"]:
            return
        if time.monotonic() >= end:
            raise LiveError(
                f"the lab did not settle within {timeout:g}s: "
                f"{', '.join(waiting) or 'kube-apiserver not ready'}"
                " (check `kubectl get pods -A` and `kubectl describe`)"
            )
        time.sleep(2)


def _kept_hashes(nodes: dict[str, Node], kept: list[str]) -> dict[str, dict[str, str]]:
    """{node: {path: "sha256:<hex>"}} of the protected node files the start state has (and did not write)."""
    out: dict[str, dict[str, str]] = {}
    for entry in kept:
        node_name, _, path = entry.partition(":")
        if path != FALCO_RULES or node_name not in nodes:
            continue
        data = nodes[node_name].read_file(path)
        if data is not None:
            out.setdefault(node_name, {})[path] = "sha256:" + hashlib.sha256(data).hexdigest()
    return out


def _node_epoch(node: Node) -> int:
    text = node.run("date +%s").text.strip()
    return int(text) if text.isdigit() else int(time.time())


# ---- reset ------------------------------------------------------------------------------------------------


def reset(
    lab: Lab,
    target: Target,
    *,
    seed: str | None = None,
    kubeconfig: str | None = None,
    context: str | None = None,
    progress: Progress | None = None,
    timeout: float | None = None,
    settle: float | None = None,
) -> dict[str, Any]:
    from grader.workspace import materialize

    say = _say(progress)
    tmp = Path(tempfile.mkdtemp(prefix=f"cks-{lab.id}-reset-"))
    try:
        nodes = _open_nodes(target, {f.node for f in lab.collect.files}, tmp / ".work", timeout)
        try:
            cp = nodes["controlplane"]
            backup = state_dir(lab)
            raw = cp.read_file(f"{backup}/record.json")
            record = json.loads(raw) if raw else {}
            if seed is None:
                seed = record.get("seed")
            say("restoring kube-apiserver")
            _restore_apiserver(
                cp,
                backup,
                record,
                settle if settle is not None else SETTLE_TIMEOUT,
                lambda: _admin_api(target, kubeconfig, context, cp, timeout),
            )
            api = _admin_api(target, kubeconfig, context, cp, timeout)
            try:
                say("removing what the lab created")
                materialize(lab, tmp / "start", seed)
                objects = _ordered_objects(Snapshot(tmp / "start"))
                _delete_lab_objects(api, objects, record, settle if settle is not None else SETTLE_TIMEOUT)
                _clear_lab_files(
                    lab, nodes, node_files_of(tmp / "start"), variants.values_for(lab, seed), backup
                )
            finally:
                api.close()
        finally:
            for node in nodes.values():
                node.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return start(
        lab,
        target,
        seed=seed,
        kubeconfig=kubeconfig,
        context=context,
        progress=progress,
        timeout=timeout,
        settle=settle,
    )


def _clear_lab_files(
    lab: Lab,
    nodes: dict[str, Node],
    start_files: dict[str, dict[str, bytes]],
    values: dict[str, Any],
    backup: str,
) -> None:
    """Take the node back to the start's files: what the lab's folders gained since the start (logs
    written by a learner's kube-apiserver, answers) is moved aside, never deleted; the learner's answer
    files that the start state does not have are removed."""
    for spec in lab.collect.dirs:
        folder = variants.render_text(spec.path, values)
        if spec.node not in nodes or is_protected_path(folder):
            continue
        keep = [p for p in start_files.get(spec.node, {}) if p.startswith(folder.rstrip("/") + "/")]
        nodes[spec.node].run(SET_ASIDE_SCRIPT, folder, f"{backup}/set-aside/{int(time.time())}", *keep)
    for spec in lab.collect.files:
        path = variants.render_text(spec.path, values)
        if path not in start_files.get(spec.node, {}) and not is_protected_path(path) and spec.node in nodes:
            nodes[spec.node].remove(path)


SET_ASIDE_SCRIPT = r"""
dir=$1; dest=$2; shift 2
[ -d "$dir" ] || exit 0
find "$dir" -type f | while IFS= read -r f; do
  for k in "$@"; do [ "$f" = "$k" ] && continue 2; done
  mkdir -p "$dest$(dirname -- "$f")" && mv -f -- "$f" "$dest$f"
done
"""


def _restore_apiserver(cp: Node, backup: str, record: dict[str, Any], timeout: float, api_factory) -> None:
    manifest = apiserver_manifest()
    saved = cp.read_file(f"{backup}/kube-apiserver.yaml")
    if saved is None:
        return  # the lab was never started here: nothing of ours to restore
    changed = cp.read_file(manifest) != saved
    folder = str(PurePosixPath(manifest).parent)
    known = set(record.get("manifests") or [])
    if known:  # stray copies (kube-apiserver.yaml.bak, ...) make kubelet run a second static pod
        now = cp.run('[ -d "$1" ] && ls -1A -- "$1"', folder).text.split()
        for name in now:
            if name not in known:
                cp.run('mkdir -p -- "$2" && mv -f -- "$1/$3" "$2/$3"', folder, f"{backup}/stray", name)
    if not changed:
        return
    cp.write_file(manifest, saved, mode="0600")
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        time.sleep(3)
        try:
            api = api_factory()
        except LiveError:
            continue
        try:
            if api.readyz()["ok"]:
                return
        finally:
            api.close()
    raise LiveError(
        f"kube-apiserver did not come back within {timeout:g}s after restoring its manifest from "
        f"{backup}/kube-apiserver.yaml; {CRICTL_HINT}"
    )


def _delete_lab_objects(
    api: KubeApi, objects: list[dict[str, Any]], record: dict[str, Any], timeout: float
) -> None:
    seen = {
        (o["kind"], (o.get("metadata") or {}).get("namespace") or "", o["metadata"]["name"]) for o in objects
    }
    for o in record.get("objects") or []:
        seen.add((o["kind"], o.get("namespace") or "", o["name"]))
    namespaces = [name for kind, _, name in seen if kind == "Namespace"]
    for kind, ns, name in sorted(seen, key=lambda k: k[0] == "Namespace"):
        if kind == "Namespace" or ns in namespaces:
            continue  # namespaced objects go with their namespace
        try:
            api.delete(kind, ns or None, name)
        except KubeError as exc:
            raise LiveError(f"cannot delete {kind} {ns + '/' if ns else ''}{name}: {exc}") from None
    for name in namespaces:
        try:
            api.delete("Namespace", None, name)
        except KubeError as exc:
            raise LiveError(f"cannot delete namespace {name}: {exc}") from None
    end = time.monotonic() + timeout
    for name in namespaces:
        while api.get("Namespace", None, name) is not None:
            if time.monotonic() >= end:
                raise LiveError(
                    f"namespace {name} is still terminating after {timeout:g}s "
                    f"(`kubectl get ns {name} -o yaml` shows what holds it)"
                )
            time.sleep(1)
