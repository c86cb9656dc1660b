"""Node facts and live probes: what the checks need beyond files and objects.

Facts a lab declares by name in ``collect.facts`` (``name`` or ``name@node``; node defaults to controlplane):

    apiserver        the running kube-apiserver: {running, pid, args, started, manifest_mtime, containers
                     (crictl ps -a), container (the newest), mirror_pod {ready, restarts, command},
                     readyz {ok, status, body}}
    apiserver-args   just the running kube-apiserver's argument list (argv[1:]), or null if none runs
    falco            {installed, version, units {unit: state}, service, running, pids, validate [{files, ok,
                     rc, output}], alerts [lines since lab start or the last 15 minutes]}
    files            {path: {type, size, mode, uid, gid, mtime, sha256, truncated}} for the declared files

Probes run for tasks whose check declares one (``needs=Needs(probe=...)`` in grader/checks): the write probe
into the fact the task names, the Falco trigger into ``facts/<node>/probe-<task id>.json``; the audit probe is
the fact ``audit-probe``.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from typing import Any

from grader.collectors.kube import KubeApi, KubeError
from grader.collectors.nodes import Node, NodeError
from grader.text import plural

SECTION = "@@CKS@@"
FALCO_UNITS = ("falco-modern-bpf", "falco", "falco-bpf", "falco-kmod", "falco-custom")
NODE_FACTS = {"apiserver", "apiserver-args", "falco"}
APISERVER_MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml"

_APISERVER_SH = r"""
echo '@@CKS@@ apiserver-process'
for d in /proc/[0-9]*; do
  [ "$(cat "$d/comm" 2>/dev/null)" = kube-apiserver ] || continue
  printf 'pid %s\nstart %s\n' "${d#/proc/}" "$(stat -c %Y "$d" 2>/dev/null)"
  tr '\000' '\n' < "$d/cmdline" 2>/dev/null
  printf '\n@@END@@\n'
done
echo '@@CKS@@ apiserver-crictl'
if command -v crictl >/dev/null 2>&1; then crictl ps -a --name kube-apiserver -o json 2>&1 | head -c 400000
else echo '{"error": "crictl not found"}'; fi
echo '@@CKS@@ apiserver-manifest'
stat -c '%Y' /etc/kubernetes/manifests/kube-apiserver.yaml 2>/dev/null
echo '@@CKS@@ now'
date +%s
"""

_FALCO_SH = r"""
echo '@@CKS@@ falco-version'
command -v falco >/dev/null 2>&1 && falco --version 2>&1 | head -n 5
echo '@@CKS@@ falco-units'
for u in falco-modern-bpf falco falco-bpf falco-kmod falco-custom; do
  printf '%s %s\n' "$u" "$(systemctl is-active "$u" 2>/dev/null || true)"
done
echo '@@CKS@@ falco-process'
for d in /proc/[0-9]*; do
  [ "$(cat "$d/comm" 2>/dev/null)" = falco ] || continue
  printf '%s ' "${d#/proc/}"; tr '\000' ' ' < "$d/cmdline" 2>/dev/null; echo
done
echo '@@CKS@@ falco-alerts'
since="${CKS_SINCE:--15min}"
for u in falco-modern-bpf falco falco-bpf falco-kmod falco-custom; do
  if [ "$(systemctl is-active "$u" 2>/dev/null)" = active ]; then
    journalctl -u "$u" --since "$since" -o cat --no-pager 2>/dev/null | tail -n 400
  fi
done
"""


def node_fact_script(names: set[str], falco_validate: list[list[str]], since: int | None) -> str:
    parts = []
    if names & {"apiserver", "apiserver-args"}:
        parts.append(_APISERVER_SH)
    if "falco" in names:
        parts.append(f"CKS_SINCE='@{int(since)}'" if since else "")
        parts.append(_FALCO_SH)
        for i, files in enumerate(falco_validate):
            args = " ".join(f"-V '{f}'" for f in files if "'" not in f)
            parts.append(
                f"echo '@@CKS@@ falco-validate-{i}'\n"
                f"if command -v falco >/dev/null 2>&1; then timeout 60 falco {args} 2>&1 | tail -n 60; "
                "echo \"@@RC@@ $?\"; else echo '@@RC@@ 127'; fi"
            )
    return "\n".join(parts)


def sections(text: str) -> dict[str, str]:
    out: dict[str, list[str]] = {}
    cur = None
    for line in text.splitlines():
        if line.startswith(SECTION + " "):
            cur = line[len(SECTION) + 1 :].strip()
            out.setdefault(cur, [])
            continue
        if cur is not None:
            out[cur].append(line)
    return {k: "\n".join(v) for k, v in out.items()}


def gather_node_facts(
    node: Node, names: set[str], *, falco_validate: list[list[str]] | None = None, since: int | None = None
) -> dict[str, Any]:
    """Run one script on the node and turn its sections into facts; NodeError if the node is unreachable."""
    names = names & NODE_FACTS
    if not names:
        return {}
    res = node.run(node_fact_script(names, falco_validate or [], since), timeout=max(node.timeout, 90))
    sec = sections(res.text)
    facts: dict[str, Any] = {}
    if names & {"apiserver", "apiserver-args"}:
        facts["apiserver"] = parse_apiserver(sec)
        facts["apiserver-args"] = facts["apiserver"]["args"][1:] if facts["apiserver"]["args"] else None
    if "falco" in names:
        facts["falco"] = parse_falco(sec, falco_validate or [])
    return facts


def parse_apiserver(sec: dict[str, str]) -> dict[str, Any]:
    procs = []
    for block in sec.get("apiserver-process", "").split("@@END@@"):
        lines = [ln for ln in block.strip("\n").splitlines()]
        if not lines or not lines[0].startswith("pid "):
            continue
        pid = _int(lines[0][4:])
        start = _int(lines[1][6:]) if len(lines) > 1 and lines[1].startswith("start ") else None
        argv = [a for a in lines[2:] if a != ""]
        procs.append({"pid": pid, "started": start, "argv": argv})
    containers = []
    raw = sec.get("apiserver-crictl", "").strip()
    crictl_error = None
    if raw:
        try:
            data = json.loads(raw)
            crictl_error = data.get("error")
            for c in data.get("containers") or []:
                containers.append(
                    {
                        "id": str(c.get("id", ""))[:13],
                        "state": str(c.get("state", "")).replace("CONTAINER_", "").lower(),
                        "attempt": (c.get("metadata") or {}).get("attempt"),
                        "created": _ns_to_s(c.get("createdAt")),
                    }
                )
        except ValueError:
            crictl_error = raw.splitlines()[0][:200] if raw else None
    containers.sort(key=lambda c: c.get("created") or 0, reverse=True)
    proc = procs[0] if procs else None
    newest = containers[0] if containers else None
    return {
        "running": proc is not None or bool(newest and newest["state"] == "running"),
        "state": f"CONTAINER_{newest['state'].upper()}"
        if newest
        else ("running" if proc else "no container"),
        "restarts": newest.get("attempt") if newest else None,
        "error": None,
        "pid": proc["pid"] if proc else None,
        "started": proc["started"] if proc else None,
        "args": proc["argv"] if proc else [],  # argv, kube-apiserver first
        "manifest_mtime": _int(sec.get("apiserver-manifest", "").strip()),
        "containers": containers[:10],
        "container": newest,
        "crictl_error": crictl_error,
        "node_time": _int(sec.get("now", "").strip()),
    }


def parse_falco(sec: dict[str, str], validate: list[list[str]]) -> dict[str, Any]:
    units = {}
    for line in sec.get("falco-units", "").splitlines():
        name, _, state = line.partition(" ")
        if name:
            units[name] = state.strip() or "unknown"
    active = [u for u, s in units.items() if s == "active"]
    pids = [ln.split(" ", 1) for ln in sec.get("falco-process", "").splitlines() if ln.strip()]
    version = sec.get("falco-version", "").strip()
    results = []
    for i, files in enumerate(validate):
        out = sec.get(f"falco-validate-{i}", "")
        rc_match = re.search(r"@@RC@@ (\d+)", out)
        rc = int(rc_match.group(1)) if rc_match else None
        text = re.sub(r"@@RC@@ \d+\s*$", "", out).strip()
        results.append({"files": files, "rc": rc, "ok": rc == 0, "output": text[-4000:]})
    alerts = [ln for ln in sec.get("falco-alerts", "").splitlines() if ln.strip()]
    return {
        "installed": bool(version),
        "version": version.splitlines()[0] if version else None,
        "units": units,
        "service": active[0] if active else None,
        "running": bool(active) or bool(pids),
        "pids": [p[0] for p in pids],
        "validate": results,
        "alerts": alerts[-400:],
    }


def apiserver_api_part(api: KubeApi | None, api_problem: str | None) -> dict[str, Any]:
    """Mirror pod state and /readyz, from the API (or why not): ready, readyz (text), readyz_detail,
    mirror_pod."""
    if api is None or api_problem:
        detail = {"ok": False, "status": 0, "body": api_problem or "no API access"}
        return {"mirror_pod": None, "ready": False, "readyz": detail["body"], "readyz_detail": detail}
    mirror = None
    try:
        data = api.request(
            "GET", "/api/v1/namespaces/kube-system/pods", query={"labelSelector": "component=kube-apiserver"}
        )
        pods = data.get("items") or []
        if pods:
            pod = pods[0]
            statuses = (pod.get("status") or {}).get("containerStatuses") or []
            conds = {
                c.get("type"): c.get("status") for c in (pod.get("status") or {}).get("conditions") or []
            }
            spec_c = ((pod.get("spec") or {}).get("containers") or [{}])[0]
            mirror = {
                "name": (pod.get("metadata") or {}).get("name"),
                "ready": conds.get("Ready") == "True",
                "restarts": sum(int(s.get("restartCount") or 0) for s in statuses),
                "state": next(iter((statuses[0].get("state") or {}).keys()), None) if statuses else None,
                "command": list(spec_c.get("command") or []) + list(spec_c.get("args") or []),
                "config_hash": ((pod.get("metadata") or {}).get("annotations") or {}).get(
                    "kubernetes.io/config.hash"
                ),
            }
    except KubeError as exc:
        mirror = {"error": str(exc)}
    detail = api.readyz()
    return {
        "mirror_pod": mirror,
        "ready": bool(detail["ok"]),
        "readyz": "ok" if detail["ok"] else detail["body"],
        "readyz_detail": detail,
    }


# ---- probes for live.* tasks ------------------------------------------------------------------------------


def nonce() -> str:
    return f"cksprobe{secrets.token_hex(5)}"


def pick_pod(
    api: KubeApi, namespace: str, *, pod: str | None = None, selector: str | None = None
) -> dict[str, Any]:
    """A Running pod by name or label selector; KubeError('not_found') with what was looked for."""
    if pod:
        found = api.get("Pod", namespace, pod)
        if found is None:
            raise KubeError("not_found", f"pod {namespace}/{pod} does not exist")
        return found
    data = api.request(
        "GET", f"/api/v1/namespaces/{namespace}/pods", query={"labelSelector": selector or None}
    )
    items = [p for p in data.get("items") or [] if not (p.get("metadata") or {}).get("deletionTimestamp")]
    running = [p for p in items if (p.get("status") or {}).get("phase") == "Running"]
    if not running:
        raise KubeError(
            "not_found",
            f"no Running pod in namespace {namespace}"
            + (f" with labels {selector}" if selector else "")
            + f" ({plural(len(items), 'pod')} not running)",
        )
    return sorted(running, key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or "")[-1]


def probe_falco_trigger(
    api: KubeApi, nodes_by_k8s: dict[str, Node], params: dict[str, Any]
) -> dict[str, Any]:
    """Run a harmless trigger in the lab's pod, then read the alerts of the Falco on that pod's node."""
    ns = str(params.get("namespace", "default"))
    pod = pick_pod(api, ns, pod=params.get("pod"), selector=params.get("selector"))
    name = pod["metadata"]["name"]
    node_name = (pod.get("spec") or {}).get("nodeName")
    node = nodes_by_k8s.get(str(node_name))
    if node is None:
        raise NodeError(
            "unreachable", f"pod {ns}/{name} runs on node {node_name}, which the grader cannot reach"
        )
    start = _node_now(node)
    command = params.get("command") or ["cat", "/etc/shadow"]
    if isinstance(command, str):
        command = ["sh", "-c", command]
    try:
        res = api.exec(ns, name, [str(c) for c in command], container=params.get("container"), timeout=20)
    except KubeError as exc:
        if exc.reason in {"forbidden", "unauthorized"}:
            raise
        res = {"error": str(exc)}
    alerts: list[str] = []
    end = time.monotonic() + float(params.get("wait", 8))
    pattern = params.get("expect")
    while True:
        time.sleep(1.5)
        out = node.run(
            f"CKS_SINCE='@{start}'\n" + _FALCO_SH.split("echo '@@CKS@@ falco-alerts'")[1], timeout=30
        )
        alerts = [ln for ln in out.text.splitlines() if ln.strip()]
        if pattern and any(re.search(str(pattern), a) for a in alerts):
            break
        if time.monotonic() >= end:
            break
    return {
        "pod": f"{ns}/{name}",
        "node": node.name,
        "command": command,
        "exec": res,
        "since": start,
        "alerts": alerts[-200:],
    }


def _node_now(node: Node) -> int:
    res = node.run("date +%s")
    return _int(res.text.strip()) or int(time.time())


def _int(text: Any) -> int | None:
    try:
        return int(str(text).strip())
    except (TypeError, ValueError):
        return None


def _ns_to_s(value: Any) -> int | None:
    n = _int(value)
    if n is None:
        return None
    return n // 1_000_000_000 if n > 10**12 else n


# ---- facts the labs' own checks read (docs/apiserver.md, grader/checks/pods.py) ------------------------


def audit_probe_fact(
    api: KubeApi, node: Node, manifest_text: str | None, *, wait: float = 6
) -> dict[str, Any]:
    """``audit-probe`` (docs/apiserver.md): GET a configmap named with a fresh marker, then the events for it
    from the host file the manifest's --audit-log-path reaches (and its rotated siblings)."""
    marker = f"cks-probe-{secrets.token_hex(4)}"
    fact: dict[str, Any] = {
        "marker": marker,
        "sent_at": None,
        "request": None,
        "log_path": None,
        "events": [],
        "error": None,
    }
    log_path = audit_log_host_path(manifest_text) if manifest_text else None
    fact["log_path"] = log_path
    res = node.run("date -u +%Y-%m-%dT%H:%M:%S.%6NZ")
    fact["sent_at"] = res.text.strip() or None
    who = whoami(api)
    fact["request"] = {
        "user": who,
        "verb": "get",
        "namespace": "default",
        "apiGroup": "",
        "apiVersion": "v1",
        "resource": "configmaps",
        "name": marker,
    }
    try:
        api.request("GET", f"/api/v1/namespaces/default/configmaps/{marker}", retry=False)
    except KubeError as exc:
        if exc.reason in {"unreachable", "timeout", "unauthorized"}:
            fact["error"] = str(exc)
            return fact
    if not log_path:
        return fact  # no log file on the node: the check says what is wrong with the manifest
    end = time.monotonic() + wait
    script = (
        'd=$(dirname -- "$1"); b=$(basename -- "$1"); s=${b%.*}; '
        'for f in "$1" "$d/$s"-*; do [ -f "$f" ] && grep -hF -- "$2" "$f"; done; true'
    )
    while True:
        out = node.run(script, log_path, marker, timeout=30)
        events = []
        for line in out.text.splitlines():
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if isinstance(ev, dict):
                events.append(ev)
        fact["events"] = events
        if who is None and events:
            user = events[0].get("user") or {}
            fact["request"]["user"] = {
                "username": user.get("username", ""),
                "groups": user.get("groups") or [],
            }
        if any(e.get("stage") == "ResponseComplete" for e in events) or time.monotonic() >= end:
            break
        time.sleep(1.0)
    return fact


def audit_log_host_path(manifest_text: str) -> str | None:
    """Where --audit-log-path lands on the node, through the manifest's hostPath volumes (None: nowhere)."""
    import posixpath

    try:
        from grader.engines.apiserver.manifest import analyze_manifest, parse_manifest_text
    except ImportError:
        return None
    try:
        doc, _problems = parse_manifest_text(manifest_text)
        analysis = analyze_manifest(doc)
        path = analysis.flag("audit-log-path").value
    except Exception:  # noqa: BLE001 - a learner's broken manifest: no log to read
        return None
    access = analysis.log
    if not path or path == "-" or access is None or not access.host_path:
        return None
    if access.file_mount or posixpath.normpath(access.container_path) == posixpath.normpath(str(path)):
        return access.host_path
    rel = posixpath.relpath(str(path), access.container_path)
    return posixpath.normpath(posixpath.join(access.host_path, rel))


def whoami(api: KubeApi) -> dict[str, Any] | None:
    try:
        review = api.request(
            "POST",
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            retry=False,
            body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
            content_type="application/json",
        )
    except KubeError:
        return None
    info = (review.get("status") or {}).get("userInfo") or {}
    return {"username": info.get("username", ""), "groups": list(info.get("groups") or [])} if info else None


_WRITE_SH = (
    'for d in "$@"; do f="${d%/}/.cksprobe$$"; out=$(touch "$f" 2>&1); rc=$?; rm -f "$f" 2>/dev/null; '
    'printf "%s\t%s\t%s\n" "$d" "$rc" "$(printf %s "$out" | tr "\t\n" "  ")"; done'
)


def write_probe_fact(
    api: KubeApi,
    namespace: str,
    selector: str | None,
    dirs: list[str],
    *,
    pod: str | None = None,
    container: str | None = None,
) -> dict[str, Any]:
    """``<lab>-write-probe`` (grader/checks/pods.py write_probe): touch a file in each dir inside a Running
    pod: {pod, container, results: [{dir, ok, output}]}."""
    found = pick_pod(api, namespace, pod=pod, selector=selector)
    name = found["metadata"]["name"]
    container = container or (((found.get("spec") or {}).get("containers") or [{}])[0]).get("name")
    res = api.exec(namespace, name, ["sh", "-c", _WRITE_SH, "sh", *dirs], container=container, timeout=20)
    results = []
    for line in str(res.get("stdout", "")).splitlines():
        parts = line.split("\t")
        if len(parts) >= 2 and parts[0] in dirs:
            results.append(
                {"dir": parts[0], "ok": parts[1].strip() == "0", "output": parts[2] if len(parts) > 2 else ""}
            )
    if not results:
        raise KubeError(
            "other",
            f"could not run sh in {namespace}/{name} container {container} "
            f"(rc {res.get('rc')}: {str(res.get('stderr', ''))[:200]})",
        )
    return {"pod": f"{namespace}/{name}", "container": container, "results": results}
