"""Did a workload change beyond the edits a task allows? A two-way comparison of pod specs that ignores
what the API server adds on read-back.

``changes(start, current, allow=...)`` -> [:class:`Change`] (empty: the same settings). Both objects are
first reduced to their ``spec`` without the server's defaults (:func:`without_server_defaults`), then the
allowed edits are taken out of both, then every field is compared both ways: a value added, removed or
changed is a change.

Server-set values that are ignored (the pinned Kubernetes release's defaulting and admission; each only
when it has exactly the default value, so a learner's different value still counts):

- workload spec: ``replicas: 1``, ``progressDeadlineSeconds: 600``, ``revisionHistoryLimit: 10``,
  ``strategy`` RollingUpdate 25%/25%; pod template ``metadata.creationTimestamp: null`` and the
  ``kubectl.kubernetes.io/restartedAt`` annotation of ``kubectl rollout restart``;
- pod spec: ``dnsPolicy: ClusterFirst``, ``restartPolicy: Always``, ``schedulerName: default-scheduler``,
  ``terminationGracePeriodSeconds: 30``, ``securityContext: {}``, ``serviceAccount`` (the deprecated mirror
  of ``serviceAccountName``), ``serviceAccountName: default``, ``false`` host namespaces;
- any pod spec: ``enableServiceLinks: true`` and ``preemptionPolicy: PreemptLowerPriority`` (what absence
  means);
- bare Pods only (admission plugins and the scheduler): ``priority: 0``, the ``node.kubernetes.io/not-ready``
  and ``unreachable`` NoExecute tolerations (300 s), the ``kube-api-access-*`` projected token volume and its
  mounts, and ``nodeName`` (set by the scheduler; a Pod's nodeName cannot be edited in place, so a changed
  one means a recreated Pod, which the UID shows);
- containers: ``terminationMessagePath: /dev/termination-log``, ``terminationMessagePolicy: File``,
  ``imagePullPolicy`` equal to the image's default (Always for ``:latest`` or no tag, else IfNotPresent),
  ``resources: {}``, port ``protocol: TCP``, a hostNetwork Pod's ``hostPort`` equal to its containerPort,
  probe ``timeoutSeconds: 1``, ``periodSeconds: 10``, ``successThreshold: 1``, ``failureThreshold: 3``,
  ``httpGet.scheme: HTTP``, env ``fieldRef.apiVersion: v1``;
- volumes: a volume without a source is an ``emptyDir``; ``defaultMode: 420`` of configMap, secret,
  downwardAPI and projected; ``hostPath.type: ""``; mounts' ``readOnly: false``.

Empty maps, empty lists and nulls read as absent everywhere (the API omits them).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from grader.engines.podsec.effective import VOLUME_SOURCES
from grader.engines.podsec.model import CONTAINER_FIELDS, POD_SPEC_PATHS

# Edits a task may allow
SECURITY_CONTEXTS = (
    "securityContexts"  # pod and container securityContext, any key; seccomp/AppArmor annotations
)
HOST_NAMESPACES_OFF = "hostNamespacesOff"  # hostNetwork / hostPID / hostIPC removed or set false
EMPTYDIR_VOLUMES = (
    "emptyDirVolumes"  # emptyDir volumes added (or their medium/size changed) and mounts of them
)

_DEFAULT_TOLERATIONS = [
    {
        "key": "node.kubernetes.io/not-ready",
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 300,
    },
    {
        "key": "node.kubernetes.io/unreachable",
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 300,
    },
]
_TOKEN_VOLUME = re.compile(r"kube-api-access-[a-z0-9]{5}")
_WORKLOAD_DEFAULTS = {"replicas": 1, "progressDeadlineSeconds": 600, "revisionHistoryLimit": 10}
_POD_DEFAULTS = {
    "dnsPolicy": "ClusterFirst",
    "restartPolicy": "Always",
    "schedulerName": "default-scheduler",
    "terminationGracePeriodSeconds": 30,
    "enableServiceLinks": True,
    "preemptionPolicy": "PreemptLowerPriority",
}  # absent means these (the kubelet/scheduler's defaults)
_BARE_POD_DEFAULTS = {"priority": 0}
_CONTAINER_DEFAULTS = {"terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}
_PROBE_DEFAULTS = {"timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
_MODE_SOURCES = ("configMap", "secret", "downwardAPI", "projected")


@dataclass(frozen=True)
class Change:
    path: str  # e.g. spec.template.spec.containers[nginx].command
    what: str  # "added" | "removed" | "changed"
    start: Any = None
    now: Any = None

    def __str__(self) -> str:
        if self.what == "added":
            return f"{self.path} was added ({_short(self.now)})"
        if self.what == "removed":
            return f"{self.path} was removed (was {_short(self.start)})"
        return f"{self.path} changed from {_short(self.start)} to {_short(self.now)}"


def _short(v: Any, limit: int = 60) -> str:
    if isinstance(v, bool):
        text = "true" if v else "false"
    elif isinstance(v, str):
        text = v
    else:
        import json

        text = json.dumps(v, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def default_pull_policy(image: Any) -> str:
    image = str(image or "")
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    if ":" not in last or last.endswith(":latest"):
        return "Always"
    return "IfNotPresent"


def _prune(v: Any) -> Any:
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            x = _prune(x)
            if x is None or x == [] or x == {} and k not in VOLUME_SOURCES:  # `emptyDir: {}` is a source
                continue
            out[k] = x
        return out
    if isinstance(v, list):
        return [_prune(x) for x in v]
    return v


def _probe(p: Any) -> Any:
    if not isinstance(p, dict):
        return p
    p = dict(p)
    for k, d in _PROBE_DEFAULTS.items():
        if p.get(k) == d:
            del p[k]
    for h in ("httpGet",):
        if isinstance(p.get(h), dict) and p[h].get("scheme") == "HTTP":
            p[h] = {k: v for k, v in p[h].items() if k != "scheme"}
    return p


def _container(c: Any, host_network: bool, token_volumes: set[str]) -> Any:
    if not isinstance(c, dict):
        return c
    c = dict(c)
    for k, d in _CONTAINER_DEFAULTS.items():
        if c.get(k) is None:
            c[k] = d  # absent means the default: a learner's other value then reads "changed from X to Y"
    if c.get("imagePullPolicy") is None:
        c["imagePullPolicy"] = default_pull_policy(c.get("image"))
    if isinstance(c.get("ports"), list):
        c["ports"] = [_port(p, host_network) for p in c["ports"]]
    for k in ("livenessProbe", "readinessProbe", "startupProbe"):
        if k in c:
            c[k] = _probe(c[k])
    if isinstance(c.get("env"), list):
        c["env"] = [_env_var(e) for e in c["env"]]
    if isinstance(c.get("volumeMounts"), list):
        c["volumeMounts"] = _volume_mounts(c["volumeMounts"], token_volumes)
    return c


def _port(p: Any, host_network: bool) -> Any:
    """Without ``protocol: TCP``, and without a hostNetwork Pod's hostPort equal to its containerPort."""
    if isinstance(p, dict):
        p = {k: v for k, v in p.items() if not (k == "protocol" and v == "TCP")}
        if host_network and p.get("hostPort") == p.get("containerPort"):
            p.pop("hostPort", None)
    return p


def _env_var(e: Any) -> Any:
    """Without the ``apiVersion: v1`` the server adds to a fieldRef."""
    if (
        isinstance(e, dict)
        and isinstance(e.get("valueFrom"), dict)
        and isinstance(e["valueFrom"].get("fieldRef"), dict)
        and e["valueFrom"]["fieldRef"].get("apiVersion") == "v1"
    ):
        e = copy.deepcopy(e)
        del e["valueFrom"]["fieldRef"]["apiVersion"]
    return e


def _volume_mounts(mounts_in: list[Any], token_volumes: set[str]) -> list[Any]:
    """Sorted by path, without the token volume's mounts, ``readOnly: false`` and ``subPath: ""``."""
    mounts = []
    for m in mounts_in:
        if isinstance(m, dict):
            if _name(m) in token_volumes:
                continue
            m = {
                k: v
                for k, v in m.items()
                if not (k == "readOnly" and v is False) and not (k == "subPath" and v == "")
            }
        mounts.append(m)
    return sorted(
        mounts,
        key=lambda m: (str(m.get("mountPath")), str(m.get("name"))) if isinstance(m, dict) else ("", ""),
    )


def _volume(v: Any) -> Any:
    if not isinstance(v, dict):
        return v
    v = dict(v)
    sources = [k for k in v if k != "name" and v[k] is not None]
    if not sources:
        v["emptyDir"] = {}
    for s in _MODE_SOURCES:
        if isinstance(v.get(s), dict) and v[s].get("defaultMode") == 420:
            v[s] = {k: x for k, x in v[s].items() if k != "defaultMode"}
    if isinstance(v.get("hostPath"), dict) and v["hostPath"].get("type") == "":
        v["hostPath"] = {k: x for k, x in v["hostPath"].items() if k != "type"}
    return v


def _pod_spec(spec: Any, bare_pod: bool) -> Any:
    if not isinstance(spec, dict):
        return spec
    spec = dict(spec)
    for k, d in _POD_DEFAULTS.items():
        if spec.get(k) is None:
            spec[k] = d
    for k in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(k) is False:
            del spec[k]
    if spec.get("serviceAccount") is not None:
        spec.setdefault("serviceAccountName", spec["serviceAccount"])
        del spec["serviceAccount"]
    if spec.get("serviceAccountName") == "default":
        del spec["serviceAccountName"]
    token_volumes = _drop_bare_pod_additions(spec) if bare_pod else set()
    if isinstance(spec.get("volumes"), list):
        spec["volumes"] = sorted(
            (_volume(v) for v in spec["volumes"] if not (isinstance(v, dict) and _name(v) in token_volumes)),
            key=lambda v: str(v.get("name")) if isinstance(v, dict) else "",
        )
    host_network = spec.get("hostNetwork") is True
    for fld in CONTAINER_FIELDS:
        if isinstance(spec.get(fld), list):
            spec[fld] = [_container(c, host_network, token_volumes) for c in spec[fld]]
    return spec


def _drop_bare_pod_additions(spec: dict[str, Any]) -> set[str]:
    """Take out of a bare Pod's spec what admission and the scheduler add; returns the names of the
    projected token volumes (dropped with their mounts by the caller)."""
    for k, d in _BARE_POD_DEFAULTS.items():
        if spec.get(k) == d:
            del spec[k]
    spec.pop("nodeName", None)
    if isinstance(spec.get("tolerations"), list):
        spec["tolerations"] = [t for t in spec["tolerations"] if t not in _DEFAULT_TOLERATIONS]
    token_volumes: set[str] = set()
    for v in spec["volumes"] if isinstance(spec.get("volumes"), list) else []:
        if (
            isinstance(v, dict)
            and isinstance(v.get("name"), str)
            and _TOKEN_VOLUME.fullmatch(v["name"])
            and isinstance(v.get("projected"), dict)
        ):
            token_volumes.add(v["name"])
    return token_volumes


def without_server_defaults(obj: Any) -> dict[str, Any]:
    """The object's ``spec`` with the server's defaults made explicit where they are plain values (so a
    learner's other value reads "changed from 1 to 3") and removed where they are admission additions."""
    if not isinstance(obj, dict):
        return {}
    kind = str(obj.get("kind") or "")
    spec = copy.deepcopy(obj.get("spec")) if isinstance(obj.get("spec"), dict) else {}
    if kind == "Pod":
        return _prune(_pod_spec(spec, bare_pod=True))
    filled = (
        _WORKLOAD_DEFAULTS
        if kind == "Deployment"
        else {"replicas": 1}
        if kind in ("ReplicaSet", "StatefulSet", "ReplicationController")
        else {}
    )
    for k, d in filled.items():
        if spec.get(k) is None:
            spec[k] = d
    if kind == "Deployment":
        strategy = spec.get("strategy") if isinstance(spec.get("strategy"), dict) else {}
        s = {
            "type": strategy.get("type") or "RollingUpdate",
            **{k: v for k, v in strategy.items() if k != "type"},
        }
        if s["type"] == "RollingUpdate":
            ru = s.get("rollingUpdate") if isinstance(s.get("rollingUpdate"), dict) else {}
            s["rollingUpdate"] = {
                "maxSurge": ru.get("maxSurge", "25%"),
                "maxUnavailable": ru.get("maxUnavailable", "25%"),
                **{k: v for k, v in ru.items() if k not in ("maxSurge", "maxUnavailable")},
            }
        spec["strategy"] = s
    template = spec.get("template")
    if isinstance(template, dict) and kind in POD_SPEC_PATHS:
        meta = template.get("metadata")
        if isinstance(meta, dict):
            meta.pop("creationTimestamp", None)
            ann = meta.get("annotations")
            if isinstance(ann, dict):
                ann.pop("kubectl.kubernetes.io/restartedAt", None)
        template["spec"] = _pod_spec(template.get("spec"), bare_pod=False)
    return _prune(spec)


def _pod_spec_in(spec: dict[str, Any], kind: str) -> dict[str, Any] | None:
    """The pod spec inside a normalized ``spec`` (which starts one level below the object)."""
    node: Any = spec
    for part in POD_SPEC_PATHS.get(kind, ("spec",))[1:]:
        node = node.get(part) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None


def _take_out_allowed(start: dict[str, Any], cur: dict[str, Any], allow: frozenset[str]) -> None:
    """Remove from both pod specs the parts the task lets the learner change."""
    if SECURITY_CONTEXTS in allow:
        for spec in (start, cur):
            _take_out_security_contexts(spec)
    if HOST_NAMESPACES_OFF in allow:
        for k in ("hostNetwork", "hostPID", "hostIPC"):
            if cur.get(k) is not True:
                start.pop(k, None)
                cur.pop(k, None)
    if EMPTYDIR_VOLUMES in allow:
        _take_out_emptydir_volumes(start, cur)
    for spec in (start, cur):
        _drop_empty_volume_lists(spec)


def _take_out_security_contexts(spec: dict[str, Any]) -> None:
    spec.pop("securityContext", None)
    for fld in CONTAINER_FIELDS:
        for c in _items(spec.get(fld)):
            c.pop("securityContext", None)


def _drop_empty_volume_lists(spec: dict[str, Any]) -> None:
    """``volumes: []`` and ``volumeMounts: []`` left by taking allowed parts out mean none."""
    if not spec.get("volumes"):
        spec.pop("volumes", None)
    for fld in CONTAINER_FIELDS:
        for c in _items(spec.get(fld)):
            if not c.get("volumeMounts"):
                c.pop("volumeMounts", None)


def _take_out_emptydir_volumes(start: dict[str, Any], cur: dict[str, Any]) -> None:
    """An emptyDir that stays an emptyDir may change its medium or size; a new one may be added, and
    mounted."""
    start_vols = {_name(v): v for v in _items(start.get("volumes"))}
    cur_vols = {_name(v): v for v in _items(cur.get("volumes"))}
    empty_now = {n for n, v in cur_vols.items() if _source(v) == "emptyDir"}
    for n in list(cur_vols):
        if n in empty_now and (n not in start_vols or _source(start_vols[n]) == "emptyDir"):
            cur_vols.pop(n)
            start_vols.pop(n, None)
    start["volumes"] = [v for v in _items(start.get("volumes")) if _name(v) in start_vols]
    cur["volumes"] = [v for v in _items(cur.get("volumes")) if _name(v) in cur_vols]
    for fld in CONTAINER_FIELDS:
        starts = {_name(c): c for c in _items(start.get(fld))}
        for c in _items(cur.get(fld)):
            sc = starts.get(_name(c))
            before = _items((sc or {}).get("volumeMounts"))
            mounts = []
            for m in c.get("volumeMounts") if isinstance(c.get("volumeMounts"), list) else []:
                if isinstance(m, dict) and m in before:
                    mounts.append(m)
                elif isinstance(m, dict) and _name(m) in empty_now:
                    continue  # a mount of an emptyDir volume: allowed
                else:
                    mounts.append(m)
            c["volumeMounts"] = mounts
            # the start's own mounts stay in both, so moving or dropping one is still a change


_SECURITY_ANNOTATIONS = (
    "container.apparmor.security.beta.kubernetes.io/",
    "seccomp.security.alpha.kubernetes.io/",
    "container.seccomp.security.alpha.kubernetes.io/",
)


def _template_annotations(spec: dict[str, Any], kind: str) -> dict[str, Any]:
    """The pod template's annotations inside a normalized ``spec`` ({} when none)."""
    node: Any = spec
    for part in POD_SPEC_PATHS.get(kind, ("spec",))[1:-1]:
        node = node.get(part) if isinstance(node, dict) else None
    meta = node.get("metadata") if isinstance(node, dict) else None
    ann = meta.get("annotations") if isinstance(meta, dict) else None
    return ann if isinstance(ann, dict) else {}


def _name(d: Any) -> str | None:
    """A dict's ``name`` when it is a string (a learner's `name: [a]` is no name, and no crash)."""
    n = d.get("name") if isinstance(d, dict) else None
    return n if isinstance(n, str) else None


def _items(v: Any) -> list[dict[str, Any]]:
    return [x for x in v if isinstance(x, dict)] if isinstance(v, list) else []


def _source(v: dict[str, Any]) -> str | None:
    keys = [k for k in v if k != "name" and k in VOLUME_SOURCES]
    return keys[0] if keys else None


def changes(
    start_obj: Any, cur_obj: Any, allow: frozenset[str] | set[str] | tuple[str, ...] = ()
) -> list[Change]:
    """Every difference between the two objects' specs, both ways, outside the allowed edits."""
    kind = str((start_obj or {}).get("kind") or "") if isinstance(start_obj, dict) else ""
    a, b = without_server_defaults(start_obj), without_server_defaults(cur_obj)
    allow = frozenset(allow)
    if allow:
        pa, pb = _pod_spec_in(a, kind), _pod_spec_in(b, kind)
        if pa is not None and pb is not None:
            _take_out_allowed(pa, pb, allow)
        if (
            SECURITY_CONTEXTS in allow
        ):  # the annotation forms of seccomp and AppArmor are security contexts too
            for spec in (a, b):
                ann = _template_annotations(spec, kind)
                for key in [k for k in ann if isinstance(k, str) and k.startswith(_SECURITY_ANNOTATIONS)]:
                    del ann[key]
        a, b = _prune(a), _prune(b)
    out: list[Change] = []
    _diff(a, b, "spec", out)
    return out


def _key(items: list[Any]) -> str | None:
    """Lists of named things (containers, volumes, env, ports by name) compare by name."""
    if items and all(isinstance(x, dict) and isinstance(x.get("name"), str) for x in items):
        names = [x["name"] for x in items]
        if len(set(names)) == len(names):
            return "name"
    return None


def _diff(a: Any, b: Any, path: str, out: list[Change]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        _diff_mappings(a, b, path, out)
        return
    if isinstance(a, list) and isinstance(b, list):
        if _key(a) and _key(b):
            _diff_named_lists(a, b, path, out)
            return
        if len(a) != len(b):
            out.append(Change(path, "changed", a, b))
            return
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _diff(x, y, f"{path}[{i}]", out)
        return
    if a != b:
        out.append(Change(path, "changed", a, b))


def _diff_mappings(a: dict[str, Any], b: dict[str, Any], path: str, out: list[Change]) -> None:
    for k in a:
        if k not in b:
            out.append(Change(f"{path}.{k}", "removed", a[k], None))
        else:
            _diff(a[k], b[k], f"{path}.{k}", out)
    for k in b:
        if k not in a:
            out.append(Change(f"{path}.{k}", "added", None, b[k]))


def _diff_named_lists(a: list[Any], b: list[Any], path: str, out: list[Change]) -> None:
    """Lists of uniquely named items, matched by name; only init containers' order matters."""
    da = {x["name"]: x for x in a}
    db = {x["name"]: x for x in b}
    order_a = [n for n in da if n in db]
    order_b = [n for n in db if n in da]
    for n, x in da.items():
        if n not in db:
            out.append(Change(f"{path}[{n}]", "removed", x, None))
        else:
            _diff(x, db[n], f"{path}[{n}]", out)
    for n, x in db.items():
        if n not in da:
            out.append(Change(f"{path}[{n}]", "added", None, x))
    if order_a != order_b and path.endswith("initContainers"):
        out.append(Change(path, "changed", order_a, order_b))  # init containers run in order


__all__ = [
    "EMPTYDIR_VOLUMES",
    "HOST_NAMESPACES_OFF",
    "SECURITY_CONTEXTS",
    "Change",
    "changes",
    "default_pull_policy",
    "without_server_defaults",
]
