"""Collect a lab from a live target into a snapshot directory (the workspace layout).

    cks.yaml                         kind: collected, lab, lab_version, seed (from the start record), target
    cluster/<Kind>.json              one List per declared kind (one list call each), lab namespaces only
    nodes/<node>/<abs path>          declared files and directories (one command per node)
    facts/<node>/<name>.json         declared facts + probe-<task>.json for live.* tasks
    facts/_cluster/fingerprints.json what `cks start --target` recorded (UIDs, resourceVersions, file hashes)
    facts/_collector/status.json     what was collected, what could not be and why (read by Snapshot)

Nothing here raises for an environment problem: each becomes an entry under ``unavailable`` with a message
that says what to do, and the snapshot turns reads of those parts into ``error`` results.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from grader import __version__, variants
from grader.collectors import CollectResult, LiveError, Progress, Target
from grader.collectors.kube import CRICTL_HINT, KubeApi, KubeError, kind_info, load_configuration
from grader.collectors.nodes import Node, NodeError, open_node
from grader.labs import Lab

STATUS_FILE = "facts/_collector/status.json"
FINGERPRINT_NS = "cks-system"
GRADER_KUBECONFIG = "/etc/cks/grader.kubeconfig"
ADMIN_KUBECONFIG = "/etc/kubernetes/admin.conf"
DEADLINE = float(os.environ.get("CKS_DEADLINE", "240"))


def _needs(task) -> Any:
    """What the task's check declares it needs (grader.checks.Needs); the collector knows no check by name."""
    from grader.checks import needs_of

    return needs_of(task.check)


class Recorder:
    """What was collected and what could not be, written to facts/_collector/status.json."""

    def __init__(self, dest: Path):
        self.dest = dest
        self.problems: list[tuple[str, str]] = []
        self.unavailable: dict[str, Any] = {"api": None, "kinds": {}, "nodes": {}, "facts": {}}
        self.collected: dict[str, Any] = {"kinds": [], "files": {}, "dirs": {}, "facts": []}

    def problem(self, scope: str, message: str) -> None:
        self.problems.append((scope, message))

    def api_down(self, message: str) -> None:
        self.unavailable["api"] = message
        self.problem("api", message)

    def kind(self, kind: str, message: str) -> None:
        self.unavailable["kinds"][kind] = message
        self.problem(f"kind:{kind}", message)

    def node(self, node: str, message: str) -> None:
        self.unavailable["nodes"][node] = message
        self.problem(f"node:{node}", message)

    def fact(self, node: str, name: str, message: str) -> None:
        self.unavailable["facts"][f"{node}/{name}"] = message
        self.problem(f"fact:{node}/{name}", message)

    def write(self) -> None:
        path = self.dest / STATUS_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps(
                {
                    "collected": self.collected,
                    "unavailable": self.unavailable,
                    "problems": [{"scope": s, "message": m} for s, m in self.problems],
                },
                indent=1,
            )
        )


def write_fact(dest: Path, node: str, name: str, value: Any) -> None:
    path = dest / "facts" / node / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=1, default=str))


def fact_names(lab: Lab) -> dict[str, set[str]]:
    """node -> fact names, from collect.facts (``name`` or ``name@node``) and the live.* tasks."""
    out: dict[str, set[str]] = {}
    for raw in lab.collect.facts:
        name, _, node = raw.partition("@")
        out.setdefault(node or "controlplane", set()).add(name)
    for task in lab.tasks:
        needs = _needs(task)
        for name in needs.node_facts:
            out.setdefault(str(task.params.get("node", "controlplane")), set()).add(name)
        if needs.probe == "write" and isinstance(task.params.get("fact"), str):
            out.setdefault(str(task.params.get("node", "controlplane")), set()).add(str(task.params["fact"]))
    return out


def connect_api(
    target: Target,
    *,
    kubeconfig: str | None,
    context: str | None,
    in_cluster: bool,
    node: Node | None,
    admin: bool = False,
    deadline: float | None = None,
    timeout: float | None = None,
) -> KubeApi:
    """The API identity: in-cluster > --kubeconfig/--context > kind's own context > the node's kubeconfig
    (/etc/cks/grader.kubeconfig, the read-only grader identity, then /etc/kubernetes/admin.conf)."""
    opts = {"timeout": timeout} if timeout else {}
    if in_cluster:
        return KubeApi(
            load_configuration(in_cluster=True),
            identity="the Pod's ServiceAccount",
            deadline=deadline,
            **opts,
        )
    explicit = (
        kubeconfig
        or context
        or (target.kind not in {"local", "vagrant", "ssh"})
        or (target.kind == "local" and os.environ.get("KUBECONFIG"))
    )
    if explicit:
        # kind's own context unless the caller chose a kubeconfig (e.g. the grader ServiceAccount's)
        default = f"kind-{target.name}" if target.kind == "kind" and not kubeconfig else None
        cfg = load_configuration(kubeconfig=kubeconfig, context=context, default_context=default)
        return KubeApi(cfg, deadline=deadline, **opts)
    if node is None:
        raise KubeError(
            "config",
            "no kubeconfig: the control-plane node could not be reached to read one; pass --kubeconfig FILE",
        )
    for path in [ADMIN_KUBECONFIG] if admin else [GRADER_KUBECONFIG, ADMIN_KUBECONFIG]:
        try:
            raw = node.read_file(path, max_bytes=1_000_000)
        except NodeError as exc:
            raise KubeError("config", f"cannot read {path} on node {node.name}: {exc}") from None
        if raw is None:
            continue
        from grader import safeyaml

        try:
            data = safeyaml.load_one(raw)
        except safeyaml.YamlProblem as exc:
            raise KubeError("config", f"{node.name}:{path} is not a kubeconfig: {exc}") from None
        if not isinstance(data, dict):
            continue
        cfg = load_configuration(config_dict=data, context=context, source=f"{node.name}:{path}")
        who = "the grader's read-only identity" if path == GRADER_KUBECONFIG else "the node's admin.conf"
        return KubeApi(cfg, identity=who, deadline=deadline, **opts)
    raise KubeError(
        "config",
        f"node {node.name} has neither {GRADER_KUBECONFIG} nor {ADMIN_KUBECONFIG}; pass --kubeconfig FILE",
    )


def _connect_nodes(
    lab: Lab,
    target: Target,
    in_cluster: bool,
    rec: Recorder,
    workdir: Path,
    timeout: float | None,
    say: Progress,
    nodes: dict[str, Node],
) -> None:
    """Open every node the lab reads into ``nodes`` (filled as they open, so the caller closes those even
    when one fails); a node that cannot be reached is recorded as unavailable."""
    if in_cluster:
        for name in _wanted_nodes(lab, False):
            if name != "controlplane" or lab.collect.files or lab.collect.dirs or fact_names(lab):
                rec.node(
                    name,
                    f"node {name} is not reachable from inside a Pod: --in-cluster reads the API "
                    "only; grade node files with `grade LAB --target local` on the node",
                )
    for name in _wanted_nodes(lab, in_cluster):
        say(f"connecting to node {name}")
        try:
            node = open_node(target, name, workdir=workdir, **({"timeout": timeout} if timeout else {}))
            node.run("true")
            nodes[name] = node
        except NodeError as exc:
            rec.node(name, str(exc))


def _write_meta(dest: Path, lab: Lab, seed: Any, target_label: str, fingerprints: dict | None) -> None:
    """The collected snapshot's cks.yaml: which lab, variant and target, and when."""
    meta = {
        "kind": "collected",
        "lab": lab.id,
        "lab_version": lab.version,
        "seed": seed,
        "target": target_label,
        "collected": _now(),
        "grader_version": __version__,
    }
    if fingerprints:
        meta["started"] = fingerprints.get("started")
    (dest / "cks.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))


def run_collect(
    lab: Lab,
    target: Target,
    dest: Path,
    *,
    kubeconfig: str | None = None,
    context: str | None = None,
    in_cluster: bool = False,
    progress: Progress | None = None,
    timeout: float | None = None,
    deadline: float | None = None,
) -> CollectResult:
    say = progress or (lambda _m: None)
    dest.mkdir(parents=True, exist_ok=True)
    rec = Recorder(dest)
    end = time.monotonic() + (deadline or DEADLINE)
    workdir = Path(tempfile.mkdtemp(prefix="cks-live-"))
    nodes: dict[str, Node] = {}
    api: KubeApi | None = None
    try:
        _connect_nodes(lab, target, in_cluster, rec, workdir, timeout, say, nodes)
        say("connecting to the API server")
        api = _api_or_record(
            rec, target, kubeconfig, context, in_cluster, nodes.get("controlplane"), end, timeout
        )
        fingerprints = _collect_fingerprints(api, lab, dest, rec) if api else None
        if fingerprints is None:  # API down: the start record is on the control-plane node too (the seed)
            fingerprints = _node_record(lab, nodes.get("controlplane"), dest)
        seed = (fingerprints or {}).get("seed")
        values = variants.values_for(lab, seed)
        if api:
            _collect_objects(api, lab, dest, rec, values, say)
        else:
            for kind in lab.collect.kinds:
                rec.unavailable["kinds"].setdefault(kind, rec.unavailable["api"] or "no API access")
        manifests = _collect_files(lab, nodes, dest, rec, values, say, end)
        _collect_facts(lab, nodes, api, dest, rec, manifests, fingerprints, say, values)
        _run_probes(lab, target, nodes, api, dest, rec, values, say, end)
        _write_meta(dest, lab, seed, "in-cluster" if in_cluster else target.label, fingerprints)
    finally:
        rec.write()
        for node in nodes.values():
            node.close()
        if api:
            api.close()
        shutil.rmtree(workdir, ignore_errors=True)
    label = "in-cluster (the Pod's ServiceAccount)" if in_cluster else target.label
    return CollectResult(dest, label, rec.problems)


def _wanted_nodes(lab: Lab, in_cluster: bool) -> list[str]:
    if in_cluster:
        return []  # a Job reads the API only; node files need a node target
    names = {f.node for f in lab.collect.files + lab.collect.dirs}
    names |= set(fact_names(lab))
    names |= {str(t.params.get("node", "controlplane")) for t in lab.tasks if _needs(t).probe}
    names.add("controlplane")
    return sorted(names, key=lambda n: (n != "controlplane", n))


def _api_or_record(
    rec: Recorder, target: Target, kubeconfig, context, in_cluster, node, end, timeout
) -> KubeApi | None:
    try:
        api = connect_api(
            target,
            kubeconfig=kubeconfig,
            context=context,
            in_cluster=in_cluster,
            node=node,
            deadline=end,
            timeout=timeout,
        )
    except KubeError as exc:
        rec.api_down(str(exc))
        return None
    except ImportError as exc:
        rec.api_down(f"the kubernetes client is not installed: pip install 'cks-kit[live]' ({exc})")
        return None
    try:
        api.request("GET", "/version")
    except KubeError as exc:
        msg = str(exc)
        if exc.reason in {"unreachable", "timeout"}:
            msg += "; if you just edited /etc/kubernetes/manifests/kube-apiserver.yaml, " + CRICTL_HINT
        rec.api_down(msg)
        api.close()
        return None
    return api


def _collect_fingerprints(api: KubeApi, lab: Lab, dest: Path, rec: Recorder) -> dict[str, Any] | None:
    try:
        cm = api.get("ConfigMap", FINGERPRINT_NS, f"lab-{lab.id}")
    except KubeError as exc:
        rec.problem("fingerprints", f"the start record cks-system/lab-{lab.id} could not be read: {exc}")
        return None
    if not cm:
        rec.problem(
            "fingerprints",
            f"no start record cks-system/lab-{lab.id}: was the lab started with "
            f"`cks start {lab.id} --target ...`? (grading goes on with the default variant)",
        )
        return None
    data = cm.get("data") or {}
    try:
        record = json.loads(data.get("record.json", "{}"))
    except ValueError:
        record = {}
    record["configmap"] = {
        "uid": cm["metadata"].get("uid"),
        "resourceVersion": cm["metadata"].get("resourceVersion"),
    }
    write_record(dest, record)
    return record


def write_record(dest: Path, record: dict[str, Any]) -> None:
    """The start record as facts: _cluster/fingerprints, and per node start-files ({path: "sha256:<hex>"} of
    the node's own files the lab must leave untouched)."""
    write_fact(dest, "_cluster", "fingerprints", record)
    for node, files in (record.get("start_files") or {}).items():
        if isinstance(files, dict):
            write_fact(dest, str(node), "start-files", files)


def _node_record(lab: Lab, node: Node | None, dest: Path) -> dict[str, Any] | None:
    from grader.collectors.lifecycle import state_dir

    if node is None:
        return None
    try:
        raw = node.read_file(f"{state_dir(lab)}/record.json", max_bytes=2_000_000)
        record = json.loads(raw) if raw else None
    except (NodeError, ValueError):
        return None
    if isinstance(record, dict):
        write_record(dest, record)
        return record
    return None


def _collect_objects(api: KubeApi, lab: Lab, dest: Path, rec: Recorder, values: dict[str, Any], say) -> None:
    namespaces = {variants.render_text(ns, values) for ns in lab.collect.namespaces}
    out = dest / "cluster"
    out.mkdir(parents=True, exist_ok=True)
    for kind in lab.collect.kinds:
        say(f"listing {kind}")
        info = kind_info(kind)
        try:
            if namespaces and info is not None and info.namespaced:
                # one list per lab namespace: the grader's rights on Secrets stop at the labs' namespaces
                items = [o for ns in sorted(namespaces) for o in _list_or_none(api, kind, ns)]
            else:
                items = api.list(kind)
        except KubeError as exc:
            rec.kind(kind, str(exc))
            if exc.reason in {"unreachable", "unauthorized"} and not rec.unavailable["api"]:
                rec.api_down(str(exc))
            continue
        if namespaces:
            items = [
                o
                for o in items
                if not (o.get("metadata") or {}).get("namespace") or o["metadata"]["namespace"] in namespaces
            ]
        (out / f"{kind}.json").write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
        rec.collected["kinds"].append(kind)


def _list_or_none(api: KubeApi, kind: str, namespace: str) -> list[dict[str, Any]]:
    """A namespace's objects; none when the namespace does not exist (a deleted lab namespace is the learner's
    fact, graded as absent objects)."""
    try:
        return api.list(kind, namespace)
    except KubeError as exc:
        if exc.reason == "not_found":
            return []
        raise


def _collect_files(
    lab: Lab, nodes: dict[str, Node], dest: Path, rec: Recorder, values, say, end
) -> dict[str, Any]:
    by_node: dict[str, tuple[list[str], list[str]]] = {}
    for spec in lab.collect.files:
        by_node.setdefault(spec.node, ([], []))[0].append(variants.render_text(spec.path, values))
    for spec in lab.collect.dirs:
        by_node.setdefault(spec.node, ([], []))[1].append(variants.render_text(spec.path, values))
    manifests: dict[str, Any] = {}
    for name, (files, dirs) in by_node.items():
        node = nodes.get(name)
        if node is None:
            continue  # already recorded as unavailable
        if time.monotonic() > end:
            rec.node(name, f"node {name}: not read, the collection ran out of time (raise CKS_DEADLINE)")
            continue
        say(f"reading files on {name}")
        try:
            manifest = node.fetch(files, dirs, dest / "nodes" / name)
        except NodeError as exc:
            rec.node(name, str(exc))
            continue
        manifests[name] = manifest
        rec.collected["files"][name] = files
        rec.collected["dirs"][name] = dirs
        write_fact(dest, name, "files", manifest)
        for path, entry in manifest.items():
            if entry.get("type") == "unreadable":
                rec.problem(
                    f"file:{name}:{path}", f"{name}:{path} exists but could not be read (permissions?)"
                )
    return manifests


def _write_probe_tasks(lab: Lab) -> dict[str, dict[str, Any]]:
    """fact name -> params of the task whose check needs a write probe into it (lab5's
    ``lab5-write-probe``)."""
    return {
        str(t.params["fact"]): dict(t.params)
        for t in lab.tasks
        if _needs(t).probe == "write" and isinstance(t.params.get("fact"), str)
    }


def _collect_facts(lab, nodes, api, dest, rec: Recorder, manifests, fingerprints, say, values=None) -> None:
    from grader.collectors.facts import NODE_FACTS, apiserver_api_part, gather_node_facts

    since = (fingerprints or {}).get("started_epoch")
    write_probes = _write_probe_tasks(lab)
    api_facts = {"audit-probe", "start-uids"} | set(write_probes)
    known = NODE_FACTS | {"files"} | api_facts
    for name, wanted in fact_names(lab).items():
        for fact in sorted(wanted - known):
            rec.fact(
                name,
                fact,
                f"fact {fact!r} is not one the collector knows "
                f"(known: {', '.join(sorted(known))}): fix the lab's collect.facts",
            )
        node = nodes.get(name)
        for fact in sorted(wanted & api_facts):
            say(f"gathering {fact}")
            _api_fact(lab, fact, name, node, api, dest, rec, fingerprints, write_probes, values or {})
        wanted = wanted & NODE_FACTS
        if not wanted:
            continue
        if node is None:
            for fact in wanted:
                rec.fact(name, fact, rec.unavailable["nodes"].get(name, f"node {name} not reachable"))
            continue
        say(f"reading facts on {name}")
        validate = _falco_validate_sets(lab, manifests.get(name, {}), name) if "falco" in wanted else []
        try:
            facts = gather_node_facts(node, set(wanted), falco_validate=validate, since=since)
        except NodeError as exc:
            for fact in wanted:
                rec.fact(name, fact, str(exc))
            continue
        if "apiserver" in facts:
            facts["apiserver"].update(apiserver_api_part(api, rec.unavailable["api"]))
        for fact, value in facts.items():
            write_fact(dest, name, fact, value)
            rec.collected["facts"].append(f"{name}/{fact}")


def _api_fact(
    lab, fact, node_name, node, api, dest, rec: Recorder, fingerprints, write_probes, values
) -> None:
    from grader.collectors import facts as F

    if fact == "start-uids":
        if not fingerprints:
            rec.fact(
                node_name,
                fact,
                f"no start record on the cluster: start the lab with `cks start {lab.id} --target ...` "
                "so the grader knows which objects it created",
            )
            return
        uids = {
            f"{o['kind']}/{o.get('namespace') or ''}/{o['name']}": o.get("uid")
            for o in fingerprints.get("objects") or []
            if o.get("uid")
        }
        write_fact(dest, node_name, fact, uids)
        rec.collected["facts"].append(f"{node_name}/{fact}")
        return
    if api is None:
        rec.fact(node_name, fact, rec.unavailable["api"] or "no API access")
        return
    try:
        if fact == "audit-probe":
            if node is None:
                rec.fact(
                    node_name,
                    fact,
                    rec.unavailable["nodes"].get(node_name, f"node {node_name} not reachable"),
                )
                return
            manifest = node.read_file(F.APISERVER_MANIFEST)
            value = F.audit_probe_fact(api, node, manifest.decode("utf-8", "replace") if manifest else None)
        else:
            params = variants.render(write_probes[fact], values)
            dirs = [
                str(d) for d in list(params.get("must_fail") or []) + list(params.get("must_succeed") or [])
            ]
            ns, selector = _lab_workload(lab, dest, params, values)
            value = F.write_probe_fact(
                api, ns, selector, dirs, pod=params.get("pod"), container=params.get("container")
            )
    except (KubeError, NodeError) as exc:
        rec.fact(node_name, fact, str(exc))
        return
    write_fact(dest, node_name, fact, value)
    rec.collected["facts"].append(f"{node_name}/{fact}")


def _lab_workload(
    lab: Lab, dest: Path, params: dict[str, Any], values: dict[str, Any]
) -> tuple[str, str | None]:
    """(namespace, label selector) of the Deployment a probe runs in: the task's namespace/name params, else
    the lab's only Deployment among the collected objects."""
    deployments = []
    path = dest / "cluster" / "Deployment.json"
    if path.is_file():
        deployments = json.loads(path.read_text()).get("items") or []
    name, ns = params.get("name") or params.get("deployment"), params.get("namespace")
    chosen = [
        d
        for d in deployments
        if (not name or d["metadata"]["name"] == name) and (not ns or d["metadata"].get("namespace") == ns)
    ]
    if len(chosen) != 1:
        namespaces = [variants.render_text(n, values) for n in lab.collect.namespaces]
        if ns and not name:
            return str(ns), params.get("selector")
        raise KubeError(
            "not_found",
            f"cannot tell which Deployment to probe ({len(chosen)} candidates in "
            f"{', '.join(namespaces) or 'the cluster'}); the task needs namespace and name params",
        )
    labels = ((chosen[0].get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or None
    return str(chosen[0]["metadata"].get("namespace") or "default"), selector


def _falco_validate_sets(lab: Lab, manifest: dict[str, Any], node: str) -> list[list[str]]:
    """Validate the learner's rules files together with Falco's default rules (overrides need its macros)."""
    files = []
    for task in lab.tasks:
        param = _needs(task).falco_rules_param
        if param:
            rules = task.params.get(param) or []
            files.extend([rules] if isinstance(rules, str) else list(rules))
    if not files:
        for path, entry in manifest.items():
            p = PurePosixPath(path)
            if (
                entry.get("type") == "file"
                and str(p).startswith("/etc/falco/")
                and p.suffix in {".yaml", ".yml"}
                and p.name not in {"falco.yaml", "falco_rules.yaml"}
                and "config.d" not in p.parts
            ):
                files.append(path)
    return [["/etc/falco/falco_rules.yaml", *sorted(dict.fromkeys(files))]] if files else []


def _run_probes(lab: Lab, target: Target, nodes, api, dest, rec: Recorder, values, say, end) -> None:
    """Per-task probes whose result is fact ``probe-<task id>`` (the Falco trigger)."""
    from grader.collectors import facts as F

    for task in lab.tasks:
        if _needs(task).probe != "falco-trigger":
            continue
        params = variants.render(task.params, values)
        node_name = str(params.get("node", "controlplane"))
        fact = f"probe-{task.id}"
        if api is None:
            rec.fact(node_name, fact, rec.unavailable["api"] or "no API access")
            continue
        if time.monotonic() > end:
            rec.fact(node_name, fact, "probe not run: the collection ran out of time (raise CKS_DEADLINE)")
            continue
        say(f"probing {task.id}")
        try:
            value = F.probe_falco_trigger(api, _nodes_by_k8s_name(target, nodes), params)
        except (KubeError, NodeError) as exc:
            rec.fact(node_name, fact, str(exc))
            continue
        write_fact(dest, node_name, fact, value)
        rec.collected["facts"].append(f"{node_name}/{fact}")


def _nodes_by_k8s_name(target: Target, nodes: dict[str, Node]) -> dict[str, Node]:
    from grader.collectors.nodes import kind_node_container

    out = {}
    for logical, node in nodes.items():
        out[logical] = node
        if target.kind == "kind":
            out[kind_node_container(target.name, logical)] = node
    return out


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def archive(snapshot_dir: Path, out: Path) -> Path:
    """``cks collect --out FILE.tar.gz``: the snapshot as a tarball (no credentials are ever in it)."""
    import tarfile

    if not str(out).endswith((".tar.gz", ".tgz")):
        raise LiveError(f"--out {out}: the archive name must end in .tar.gz")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out, "w:gz") as tar:
        tar.add(snapshot_dir, arcname="snapshot")
    return out
