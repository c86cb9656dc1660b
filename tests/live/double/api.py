"""The cluster double's API server: an in-process fake of kube-apiserver plus the controllers and kubelet
behaviour the grader depends on, spoken to by the real ``kubernetes`` client over TLS.

What it imitates (Kubernetes minor from ``provision/versions.env`` K8S_MINOR, default 1.35; exercised with the
python client installed here, v37):
- TLS with its own CA (made with the ``openssl`` CLI; the serving certificate has an IP SAN for 127.0.0.1),
  bearer tokens (401 ``Unauthorized`` without one), users ``kubernetes-admin`` (group ``system:masters``,
  allowed everything) and ServiceAccounts (``system:serviceaccount:<ns>:<name>``, groups
  ``system:serviceaccounts[:<ns>]``, ``system:authenticated``).
- RBAC evaluated from the stored Roles/ClusterRoles/Bindings (verbs, groups, resources and
  ``resource/subresource``, resourceNames, RoleBindings grant only in their namespace); denial is the API's
  403 Status text. Non-resource URLs (/version, /readyz, /livez) and SelfSubjectReview are open to every
  authenticated user, as the default ``system:public-info-viewer``/``system:basic-user`` roles make them.
- Objects: list (labelSelector ``k=v`` terms), get, create (POST, ``dryRun=All``), server-side apply (PATCH
  ``application/apply-patch+yaml``, approximated by a JSON merge for one field manager), JSON merge patch,
  strategic merge patch (containers/volumes/env merged by ``name``, volumeMounts by ``mountPath``, other lists
  replaced), JSON patch (add/replace/remove), update (PUT, stale resourceVersion -> 409 Conflict), delete
  (namespaces cascade at once; Deployments/ReplicaSets cascade through the GC). List items carry no
  kind/apiVersion; zero status counters are omitted, never 0. Unknown fields are kept (no schema), which is
  *not* what the server's default Warn mode does (it drops them): a fidelity gap.
- Rejections in the apiserver's order: decode (400: a string where a securityContext boolean belongs, the
  Go unmarshal text), validation (422: ``allowPrivilegeEscalation: false`` with ``privileged: true`` or with
  ``capabilities.add: [CAP_SYS_ADMIN]``; pod spec updates other than image; Deployment selector changes),
  admission (403: Pod Security Admission ``enforce`` on Pod CREATE, through the project's podsec engine;
  writes into a missing namespace 404), storage (409 AlreadyExists).
- Controllers settle **synchronously after every write** (timing model: no clock; grace periods and the
  progress deadline are not waited for, the end state is simulated): Deployment -> ReplicaSet (one per
  template, ``<name>-<hash of the template>``, revision annotations) -> Pods (``<rs>-<5 chars>``) with
  generation/observedGeneration/updatedReplicas/readiness; old ReplicaSets scale to 0 once the new one is
  available, and keep their pods when the new pods cannot be created (PSA) or never become ready; a pod
  create refused by admission sets the RS condition ``ReplicaFailure``/``FailedCreate``. Garbage collection of
  objects whose owner is gone or has another UID. A scheduler honouring ``nodeName``, ``nodeSelector``,
  taints and tolerations (``PodScheduled`` False/``Unschedulable`` otherwise) and adding the two
  DefaultTolerationSeconds tolerations. A kubelet that starts every scheduled pod, except that
  ``runAsNonRoot: true`` without ``runAsUser`` on an image whose user is root gives
  ``CreateContainerConfigError`` (images here all run as root unless the pod says otherwise). Container IDs
  are ``containerd://<64 hex>``.
- Exec: WebSocket upgrade of GET .../pods/<name>/exec, always answering ``v4.channel.k8s.io``; needs ``get``
  and (1.35 mode) ``create`` on ``pods/exec``. Pre-upgrade failures are plain HTTP errors (404, 400 for a
  pod with no node, 403). After the upgrade: an empty stdout frame, the output frames, a channel-3 Status
  (Success, or NonZeroExitCode with the exit code as the first cause) and a close frame. Commands are
  *interpreted* against a scripted container file system (see :mod:`tests.live.double.container`): ``touch``
  (via the grader's write-probe script), ``cat``, ``id``, ``true``; others exit 127 ``not found``.
- Faults for tests: ``down()``/``up()`` (the port refuses connections, as a kube-apiserver killed by a broken
  manifest), ``forbid(plural)`` (403 for everyone), ``hang(plural, seconds)``, ``refuse_exec`` (403).

Not modelled (spec section 9 and 10): watch, pagination, protobuf, managedFields, real pod-template-hash
digits, exact scheduler message wording, events other than FailedCreate, TTY/stdin on exec, SPDY,
port-forward, logs, Services/networking, resource accounting, admission webhooks, field validation modes.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import json
import secrets
import ssl
import struct
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

from grader.engines import podsec
from tests.live.double import container as fs
from tests.live.fakehttp import JSONHandler, ResourcePath, merge_object, merge_patch

REPO = Path(__file__).resolve().parents[3]

# plural -> (kind, group, version, namespaced)
RESOURCES: dict[str, tuple[str, str, str, bool]] = {
    "namespaces": ("Namespace", "", "v1", False),
    "nodes": ("Node", "", "v1", False),
    "pods": ("Pod", "", "v1", True),
    "secrets": ("Secret", "", "v1", True),
    "configmaps": ("ConfigMap", "", "v1", True),
    "serviceaccounts": ("ServiceAccount", "", "v1", True),
    "services": ("Service", "", "v1", True),
    "events": ("Event", "", "v1", True),
    "deployments": ("Deployment", "apps", "v1", True),
    "replicasets": ("ReplicaSet", "apps", "v1", True),
    "daemonsets": ("DaemonSet", "apps", "v1", True),
    "statefulsets": ("StatefulSet", "apps", "v1", True),
    "roles": ("Role", "rbac.authorization.k8s.io", "v1", True),
    "rolebindings": ("RoleBinding", "rbac.authorization.k8s.io", "v1", True),
    "clusterroles": ("ClusterRole", "rbac.authorization.k8s.io", "v1", False),
    "clusterrolebindings": ("ClusterRoleBinding", "rbac.authorization.k8s.io", "v1", False),
    "networkpolicies": ("NetworkPolicy", "networking.k8s.io", "v1", True),
}
KIND_PLURAL = {v[0]: k for k, v in RESOURCES.items()}
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CP_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}
DEFAULT_TOLERATIONS = [
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


def k8s_minor() -> int:
    env = REPO / "provision" / "versions.env"
    text = env.read_text() if env.is_file() else ""
    for line in text.splitlines():
        if line.startswith("K8S_MINOR="):
            return int(line.split("=", 1)[1].strip().strip('"').rsplit(".", 1)[-1])
    return 35


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details or {}

    def status(self) -> dict[str, Any]:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": self.details,
            "code": self.code,
        }


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _res_name(plural: str) -> str:
    group = RESOURCES[plural][1]
    return f"{plural}.{group}" if group else plural


# ---- PKI ------------------------------------------------------------------------------------------------


def make_pki(d: Path) -> tuple[Path, Path, Path]:
    """(ca.crt, server.crt, server.key): a CA and a serving certificate for 127.0.0.1, via openssl."""
    d.mkdir(parents=True, exist_ok=True)
    run = lambda *a: subprocess.run(a, check=True, capture_output=True, cwd=d)  # noqa: E731
    run(
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=cluster-double-ca",
    )
    run(
        "openssl",
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=kube-apiserver",
    )
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes\n")
    run(
        "openssl",
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    )
    return d / "ca.crt", d / "server.crt", d / "server.key"


# ---- merging --------------------------------------------------------------------------------------------


MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "volumes": "name",
    "env": "name",
    "volumeMounts": "mountPath",
    "ownerReferences": "uid",
    "conditions": "type",
    "ports": "containerPort",
}


def strategic_merge(base: Any, patch: Any, key: str = "") -> Any:
    if isinstance(patch, list):
        mk = MERGE_KEYS.get(key)
        if mk and isinstance(base, list):
            out = copy.deepcopy(base)
            for item in patch:
                if not isinstance(item, dict):
                    continue
                idx = next(
                    (i for i, b in enumerate(out) if isinstance(b, dict) and b.get(mk) == item.get(mk)), None
                )
                if item.get("$patch") == "delete":
                    if idx is not None:
                        out.pop(idx)
                elif idx is None:
                    out.append(copy.deepcopy(item))
                else:
                    out[idx] = strategic_merge(out[idx], item)
            return out
        return copy.deepcopy(patch)
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    return merge_object(base, patch, strategic_merge)


def json_patch(doc: Any, ops: list[dict[str, Any]]) -> Any:
    doc = copy.deepcopy(doc)
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in str(op.get("path", "")).split("/")[1:]]
        parent = doc
        for p in parts[:-1]:
            parent = parent[int(p)] if isinstance(parent, list) else parent.setdefault(p, {})
        last = parts[-1]
        kind = op.get("op")
        if isinstance(parent, list):
            i = len(parent) if last == "-" else int(last)
            if kind == "add":
                parent.insert(i, op.get("value"))
            elif kind == "replace":
                parent[i] = op.get("value")
            elif kind == "remove":
                parent.pop(i)
        elif kind in {"add", "replace"}:
            parent[last] = op.get("value")
        elif kind == "remove":
            parent.pop(last, None)
    return doc


def selects(labels: dict[str, Any], selector: str | None) -> bool:
    if not selector:
        return True
    for term in selector.split(","):
        term = term.strip()
        if not term:
            continue
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k.strip()) == v.strip():
                return False
        elif "=" in term:
            k, v = term.split("=", 1)
            if labels.get(k.strip().rstrip("=")) != v.strip():
                return False
        elif term.strip() not in labels:
            return False
    return True


def _new_metadata(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """The metadata of an object being created: a name (from generateName if need be), none of the fields
    the server sets."""
    meta = obj.setdefault("metadata", {})
    if not meta.get("name") and meta.get("generateName"):
        meta["name"] = meta["generateName"] + secrets.token_hex(3)[:5]
    if not meta.get("name"):
        raise ApiError(
            422,
            "Invalid",
            f'{kind} "" is invalid: metadata.name: Required value: name or generateName is required',
        )
    for k in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp", "generation"):
        meta.pop(k, None)
    return meta


# ---- the server -----------------------------------------------------------------------------------------


class ClusterDouble:
    """A fake cluster: API server, controllers, scheduler, kubelet. ``nodes``: Kubernetes node names
    (the first is the control plane)."""

    def __init__(
        self, workdir: Path, *, nodes: tuple[str, ...] = ("controlplane", "node01"), minor: int | None = None
    ):
        self.workdir = Path(workdir)
        self.minor = minor or k8s_minor()
        self.ca, cert, key = make_pki(self.workdir / "pki")
        self.tokens: dict[str, tuple[str, list[str]]] = {}
        self.admin_token = self.add_token("kubernetes-admin", ["system:masters"])
        self.store: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.lock = threading.RLock()
        self._rv = 1000
        self.forbidden: set[str] = set()
        self.hangs: dict[str, float] = {}
        self.refuse_exec = False
        self.exec_log: list[dict[str, Any]] = []
        self.on_exec: list[Any] = []  # callbacks(pod, container, argv, result): the node's Falco listens here
        self.requests: list[tuple[str, str, str]] = []  # (user, method, path)
        self.audit_sink = None  # set by the kubelet when the manifest turns auditing on (see .kubelet)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(cert), str(key))
        self.port = 0
        self._server: ThreadingHTTPServer | None = None
        self._start_server()
        for i, name in enumerate(nodes):
            labels = {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
            }
            spec: dict[str, Any] = {}
            if i == 0:
                labels["node-role.kubernetes.io/control-plane"] = ""
                spec["taints"] = [dict(CP_TAINT)]
            self._put(
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {"name": name, "labels": labels},
                    "spec": spec,
                    "status": {"conditions": [{"type": "Ready", "status": "True"}]},
                }
            )
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self._put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})

    # -- lifecycle --
    def _start_server(self) -> None:
        handler = _handler(self)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

            def get_request(inner):  # noqa: N805 - TLS on every accepted socket
                sock, addr = inner.socket.accept()
                sock.settimeout(30)
                return sock, addr

            def finish_request(inner, request, client_address):  # noqa: N805
                try:
                    tls = self.ctx.wrap_socket(request, server_side=True)
                except (ssl.SSLError, OSError):
                    return
                handler(tls, client_address, inner)

            def handle_error(inner, *a):  # noqa: N805 - a client that gave up is not an error
                pass

        self._server = Server(("127.0.0.1", self.port), handler)
        self.port = self._server.server_address[1]
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def down(self) -> None:
        """Stop listening (connection refused), as after a broken kube-apiserver manifest."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def up(self) -> None:
        if self._server is None:
            self._start_server()

    @property
    def is_up(self) -> bool:
        return self._server is not None

    def close(self) -> None:
        self.down()

    # -- identities --
    def add_token(self, user: str, groups: list[str]) -> str:
        token = secrets.token_hex(16)
        self.tokens[token] = (user, [*groups, "system:authenticated"])
        return token

    def sa_token(self, namespace: str, name: str) -> str:
        return self.add_token(
            f"system:serviceaccount:{namespace}:{name}",
            ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"],
        )

    def kubeconfig(self, token: str, name: str = "double") -> dict[str, Any]:
        ca = base64.b64encode(self.ca.read_bytes()).decode()
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": name,
            "clusters": [{"name": name, "cluster": {"server": self.url, "certificate-authority-data": ca}}],
            "users": [{"name": name, "user": {"token": token}}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        }

    # -- store --
    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _put(self, obj: dict[str, Any]) -> dict[str, Any]:
        plural = KIND_PLURAL[obj["kind"]]
        kind, group, version, namespaced = RESOURCES[plural]
        obj["apiVersion"] = f"{group}/{version}" if group else version
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", _now())
        meta["resourceVersion"] = self._next_rv()
        self.store[(plural, meta.get("namespace", "") if namespaced else "", meta["name"])] = obj
        return obj

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.store.get((KIND_PLURAL[kind], namespace, name))

    def objects(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        plural = KIND_PLURAL[kind]
        return [
            o
            for (p, ns, _), o in sorted(self.store.items())
            if p == plural and (namespace is None or ns == namespace)
        ]

    def apply_yaml(self, text: str) -> None:
        """Bootstrapping as the admin (provisioning's `kubectl apply -f`)."""
        for doc in yaml.safe_load_all(text):
            if isinstance(doc, dict) and doc.get("kind") in KIND_PLURAL:
                plural = KIND_PLURAL[doc["kind"]]
                ns = (doc.get("metadata") or {}).get("namespace", "default") if RESOURCES[plural][3] else ""
                with self.lock:
                    self.create(plural, ns, doc)

    # -- RBAC --
    def authorize(
        self, user: str, groups: list[str], verb: str, plural: str, sub: str | None, ns: str, name: str | None
    ) -> None:
        if "system:masters" in groups:
            return
        group = RESOURCES[plural][1] if plural in RESOURCES else ""
        resource = f"{plural}/{sub}" if sub else plural
        for binding_kind, bns in [("ClusterRoleBinding", None)] + ([("RoleBinding", ns)] if ns else []):
            for b in self.objects(binding_kind, bns):
                if not any(
                    _subject_matches(s, user, groups, b["metadata"].get("namespace", ""))
                    for s in b.get("subjects") or []
                ):
                    continue
                ref = b.get("roleRef") or {}
                role = (
                    self.get("ClusterRole", "", ref.get("name", ""))
                    if ref.get("kind") == "ClusterRole"
                    else self.get("Role", bns or "", ref.get("name", ""))
                )
                for rule in (role or {}).get("rules") or []:
                    if _rule_allows(rule, verb, group, resource, plural, name):
                        return
        where = f'in the namespace "{ns}"' if ns else "at the cluster scope"
        what = f'{_res_name(plural)} "{name}"' if name else _res_name(plural)
        raise ApiError(
            403,
            "Forbidden",
            f'{what} is forbidden: User "{user}" cannot {verb} resource "{resource}" in '
            f'API group "{group}" {where}',
            {"name": name or "", "group": group, "kind": plural},
        )

    # -- writes --
    def create(
        self, plural: str, ns: str, obj: dict[str, Any], *, dry: bool = False, internal: bool = False
    ) -> dict[str, Any]:
        kind, group, version, namespaced = RESOURCES[plural]
        obj = copy.deepcopy(obj)
        obj["kind"] = kind
        meta = _new_metadata(kind, obj)
        if namespaced:
            meta["namespace"] = ns
            if self.get("Namespace", "", ns) is None:
                raise ApiError(
                    404, "NotFound", f'namespaces "{ns}" not found', {"name": ns, "kind": "namespaces"}
                )
        self._decode(kind, obj)
        self._validate(kind, obj, None)
        if kind == "Pod":
            self._admit_pod(obj, ns)
        key = (plural, ns if namespaced else "", meta["name"])
        if key in self.store:
            raise ApiError(
                409,
                "AlreadyExists",
                f'{_res_name(plural)} "{meta["name"]}" already exists',
                {"name": meta["name"], "group": group, "kind": plural},
            )
        if dry:
            return obj
        self._initial_state(kind, obj)
        stored = self._put(obj)
        if not internal:
            self.settle()
        return copy.deepcopy(stored)

    def _initial_state(self, kind: str, obj: dict[str, Any]) -> None:
        """What the server and its defaulting add to a new object: generation, status, tolerations, data."""
        if kind in {"Deployment", "ReplicaSet", "DaemonSet", "StatefulSet"}:
            obj["metadata"]["generation"] = 1
            obj["status"] = {}
            self._defaults(obj)
        if kind == "Pod":
            obj["spec"].setdefault("tolerations", [])
            for t in DEFAULT_TOLERATIONS:
                if t not in obj["spec"]["tolerations"]:
                    obj["spec"]["tolerations"].append(dict(t))
            obj["status"] = {"phase": "Pending"}
        if kind == "Secret":
            for k, v in (obj.pop("stringData", None) or {}).items():
                obj.setdefault("data", {})[k] = base64.b64encode(str(v).encode()).decode()

    def update(
        self,
        plural: str,
        ns: str,
        name: str,
        new: dict[str, Any],
        *,
        dry: bool = False,
        check_rv: bool = False,
    ) -> dict[str, Any]:
        kind, group, _v, namespaced = RESOURCES[plural]
        key = (plural, ns if namespaced else "", name)
        cur = self.store.get(key)
        if cur is None:
            raise ApiError(
                404,
                "NotFound",
                f'{_res_name(plural)} "{name}" not found',
                {"name": name, "group": group, "kind": plural},
            )
        new = copy.deepcopy(new)
        new["kind"] = kind
        meta = new.setdefault("metadata", {})
        if (
            check_rv
            and meta.get("resourceVersion")
            and meta["resourceVersion"] != cur["metadata"]["resourceVersion"]
        ):
            raise ApiError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {_res_name(plural)} "{name}": the object has been '
                "modified; please apply your changes to the latest version and try again",
            )
        for k in ("uid", "creationTimestamp", "generation", "deletionTimestamp"):
            if k in cur["metadata"]:
                meta[k] = cur["metadata"][k]
        meta["name"] = name
        meta.pop("managedFields", None)
        if namespaced:
            meta["namespace"] = ns
        if "status" in cur and kind != "Namespace":
            new["status"] = cur["status"]  # the main resource never writes status
        self._decode(kind, new)
        self._validate(kind, new, cur)
        if kind in {"Deployment", "ReplicaSet"}:
            self._defaults(new)
            changed = new.get("spec") != cur.get("spec") or (meta.get("annotations") or {}) != (
                cur["metadata"].get("annotations") or {}
            )
            meta["generation"] = cur["metadata"].get("generation", 1) + (1 if changed else 0)
        if kind == "Secret":
            for k, v in (new.pop("stringData", None) or {}).items():
                new.setdefault("data", {})[k] = base64.b64encode(str(v).encode()).decode()
        if dry:
            return new
        if _comparable(new) == _comparable(cur):
            return copy.deepcopy(cur)
        stored = self._put(new)
        self.settle()
        return copy.deepcopy(stored)

    def delete(self, plural: str, ns: str, name: str, *, dry: bool = False) -> dict[str, Any]:
        kind, group, _v, namespaced = RESOURCES[plural]
        key = (plural, ns if namespaced else "", name)
        cur = self.store.get(key)
        if cur is None:
            raise ApiError(
                404,
                "NotFound",
                f'{_res_name(plural)} "{name}" not found',
                {"name": name, "group": group, "kind": plural},
            )
        if dry:
            return copy.deepcopy(cur)
        self.store.pop(key)
        if kind == "Namespace":  # the namespace controller, at once
            for k in [k for k in self.store if k[1] == name and RESOURCES[k[0]][3]]:
                self.store.pop(k)
        self.settle()
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {"name": name, "group": group, "kind": plural, "uid": cur["metadata"]["uid"]},
        }

    # -- decode / validate / admit --
    def _decode(self, kind: str, obj: dict[str, Any]) -> None:
        # the project's own model of what the API refuses (grader.engines.podsec.api_rejects), decoding phase;
        # without fieldValidation the server default (Warn) drops unknown fields instead of refusing them
        decode = [p for p in podsec.api_rejects(obj, "Warn") if p.status == 400]
        if decode:
            raise ApiError(400, "BadRequest", podsec.rejection_message(obj, decode))

    def _validate(self, kind: str, obj: dict[str, Any], cur: dict[str, Any] | None) -> None:
        name = obj["metadata"]["name"]
        # validation phase of the same model (securityContext pairs, required fields, names, selector)
        errors = [
            f"{p.field}: {p.message}" if p.field else p.message
            for p in podsec.api_rejects(obj, "Warn")
            if p.status == 422
        ]
        if kind == "Deployment":
            sel = (obj.get("spec") or {}).get("selector")
            if cur is not None and sel != (cur.get("spec") or {}).get("selector"):
                errors.append(f"spec.selector: Invalid value: {json.dumps(sel)}: field is immutable")
        if kind == "Pod" and cur is not None:
            a, b = copy.deepcopy(obj.get("spec") or {}), copy.deepcopy(cur.get("spec") or {})
            if len(a.get("containers") or []) != len(b.get("containers") or []):
                errors.append("spec: Forbidden: pod updates may not add or remove containers")
            else:
                for x in (a, b):
                    for c in x.get("containers") or []:
                        c.pop("image", None)
                    x.pop("tolerations", None)
                    x.pop("nodeName", None)
                if a != b:
                    errors.append(
                        "spec: Forbidden: pod updates may not change fields other than "
                        "`spec.containers[*].image`,`spec.initContainers[*].image`,"
                        "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing "
                        "tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it "
                        "was previously negative)"
                    )
        if errors:
            group = "apps" if kind in {"Deployment", "ReplicaSet"} else ""
            label = f"{kind}.{group}" if group else kind
            msg = errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
            raise ApiError(
                422,
                "Invalid",
                f'{label} "{name}" is invalid: {msg}',
                {
                    "name": name,
                    "group": group,
                    "kind": kind,
                    "causes": [
                        {
                            "reason": "FieldValueInvalid",
                            "message": e.split(": ", 1)[-1],
                            "field": e.split(":", 1)[0],
                        }
                        for e in errors
                    ],
                },
            )

    def _admit_pod(self, pod: dict[str, Any], ns: str) -> None:

        labels = ((self.get("Namespace", "", ns) or {}).get("metadata") or {}).get("labels") or {}
        level = labels.get("pod-security.kubernetes.io/enforce", "privileged")
        version = labels.get("pod-security.kubernetes.io/enforce-version", "latest")
        if level == "privileged":
            return
        minor = podsec.parse_version(version) if version != "latest" else self.minor
        violations = podsec.evaluate_pss(pod, level, minor)
        if violations:
            name = pod["metadata"]["name"]
            raise ApiError(
                403,
                "Forbidden",
                f'pods "{name}" is forbidden: {podsec.admission_message(violations, level, version)}',
                {"name": name, "kind": "pods"},
            )

    def _defaults(self, obj: dict[str, Any]) -> None:
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        if obj["kind"] == "Deployment":
            spec.setdefault(
                "strategy",
                {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            )
            spec.setdefault("revisionHistoryLimit", 10)
            spec.setdefault("progressDeadlineSeconds", 600)

    # -- controllers (synchronous) --
    def settle(self) -> None:
        with self.lock:
            for _ in range(6):
                before = self._rv
                self._gc()
                for d in self.objects("Deployment"):
                    self._sync_deployment(d)
                for rs in self.objects("ReplicaSet"):
                    self._sync_replicaset(rs)
                for p in self.objects("Pod"):
                    self._schedule_and_run(p)
                for rs in self.objects("ReplicaSet"):
                    self._rs_status(rs)
                for d in self.objects("Deployment"):
                    self._deployment_status(d)
                if self._rv == before:
                    return

    def _gc(self) -> None:
        changed = True
        while changed:
            changed = False
            for key, obj in list(self.store.items()):
                refs = obj["metadata"].get("ownerReferences") or []
                if not refs:
                    continue
                ns = obj["metadata"].get("namespace", "")
                alive = False
                for r in refs:
                    plural = KIND_PLURAL.get(str(r.get("kind")))
                    if plural is None:
                        continue
                    owner = self.store.get((plural, ns if RESOURCES[plural][3] else "", str(r.get("name"))))
                    if owner is not None and owner["metadata"]["uid"] == r.get("uid"):
                        alive = True
                if not alive:
                    self.store.pop(key, None)
                    changed = True

    def _sync_deployment(self, d: dict[str, Any]) -> None:
        meta, spec = d["metadata"], d["spec"]
        ns = meta["namespace"]
        template = spec.get("template") or {}
        h = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]
        owned = [rs for rs in self.objects("ReplicaSet", ns) if _owned_by(rs, d)]
        new = next((rs for rs in owned if rs["metadata"]["labels"].get("pod-template-hash") == h), None)
        revision = max(
            [
                int((rs["metadata"].get("annotations") or {}).get("deployment.kubernetes.io/revision", "0"))
                for rs in owned
            ]
            or [0]
        )
        want = int(spec.get("replicas", 1))
        if new is None:
            tpl = copy.deepcopy(template)
            tpl.setdefault("metadata", {}).setdefault("labels", {})["pod-template-hash"] = h
            sel = copy.deepcopy(spec.get("selector") or {})
            sel.setdefault("matchLabels", {})["pod-template-hash"] = h
            rs = {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {
                    "name": f"{meta['name']}-{h}",
                    "namespace": ns,
                    "labels": dict(tpl["metadata"]["labels"]),
                    "annotations": {
                        "deployment.kubernetes.io/revision": str(revision + 1),
                        "deployment.kubernetes.io/desired-replicas": str(want),
                    },
                    "ownerReferences": [_owner_ref(d)],
                },
                "spec": {"replicas": want, "selector": sel, "template": tpl},
            }
            new = self.create("replicasets", ns, rs, internal=True)
            new = self.get("ReplicaSet", ns, new["metadata"]["name"])
            owned.append(new)
            d["metadata"].setdefault("annotations", {})["deployment.kubernetes.io/revision"] = str(
                revision + 1
            )
        assert new is not None
        if new["spec"].get("replicas") != want:
            new["spec"]["replicas"] = want
            new["metadata"]["resourceVersion"] = self._next_rv()
        new_ready = _ready_count(self, new) >= want
        for rs in owned:
            if rs is new:
                continue
            target = 0 if new_ready else rs["spec"].get("replicas", 0)
            if rs["spec"].get("replicas") != target:
                rs["spec"]["replicas"] = target
                rs["metadata"]["resourceVersion"] = self._next_rv()

    def _sync_replicaset(self, rs: dict[str, Any]) -> None:
        ns = rs["metadata"]["namespace"]
        pods = [p for p in self.objects("Pod", ns) if _owned_by(p, rs)]
        want = int(rs["spec"].get("replicas", 1))
        failure = None
        while len(pods) < want:
            tpl = copy.deepcopy(rs["spec"].get("template") or {})
            pod = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    **(tpl.get("metadata") or {}),
                    "generateName": rs["metadata"]["name"] + "-",
                    "ownerReferences": [_owner_ref(rs)],
                },
                "spec": tpl.get("spec") or {},
            }
            pod["metadata"].pop("name", None)
            try:
                made = self.create("pods", ns, pod, internal=True)
            except ApiError as exc:
                failure = exc.message
                break
            pods.append(self.get("Pod", ns, made["metadata"]["name"]))
        for p in pods[want:]:
            self.store.pop(("pods", ns, p["metadata"]["name"]), None)
            self._rv += 1
        conds = [
            c for c in (rs.get("status") or {}).get("conditions") or [] if c.get("type") != "ReplicaFailure"
        ]
        if failure:
            conds.append(
                {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": failure}
            )
        if conds != (rs.get("status") or {}).get("conditions", []):
            rs.setdefault("status", {})["conditions"] = conds
            if not conds:
                rs["status"].pop("conditions")

    def _schedule_and_run(self, p: dict[str, Any]) -> None:
        spec, status = p["spec"], p.setdefault("status", {})
        if not spec.get("nodeName"):
            fits = [n for n in self.objects("Node") if _fits(p, n)]
            if not fits:
                nodes = self.objects("Node")
                cond = {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": f"0/{len(nodes)} nodes are available: pod didn't tolerate or match any node.",
                }
                if status.get("conditions") != [cond]:
                    status.update(phase="Pending", conditions=[cond])
                    p["metadata"]["resourceVersion"] = self._next_rv()
                return
            spec["nodeName"] = fits[-1]["metadata"][
                "name"
            ]  # workers first (the control plane is listed first)
            p["metadata"]["resourceVersion"] = self._next_rv()
        if status.get("phase") == "Running" or status.get("containerStatuses"):
            return
        ok, waiting = _kubelet_can_start(p)
        cstat = []
        for c in spec.get("containers") or []:
            st: dict[str, Any] = {
                "name": c.get("name"),
                "image": c.get("image"),
                "restartCount": 0,
                "ready": ok,
                "started": ok,
                "containerID": "containerd://" + secrets.token_hex(32),
            }
            st["state"] = {"running": {"startedAt": _now()}} if ok else {"waiting": {"reason": waiting}}
            cstat.append(st)
        conds = [
            {"type": t, "status": "True" if (ok or t in {"PodScheduled", "Initialized"}) else "False"}
            for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
        ]
        status.update(
            phase="Running" if ok else "Pending",
            conditions=conds,
            containerStatuses=cstat,
            podIP=f"10.244.0.{len(self.store) % 250 + 2}",
            startTime=_now(),
        )
        p["metadata"]["resourceVersion"] = self._next_rv()

    def _rs_status(self, rs: dict[str, Any]) -> None:
        ns = rs["metadata"]["namespace"]
        pods = [p for p in self.objects("Pod", ns) if _owned_by(p, rs)]
        ready = sum(1 for p in pods if _pod_ready(p))
        st = {k: v for k, v in (rs.get("status") or {}).items() if k == "conditions"}
        st.update(
            _omit_zero(
                {
                    "replicas": len(pods),
                    "fullyLabeledReplicas": len(pods),
                    "readyReplicas": ready,
                    "availableReplicas": ready,
                    "observedGeneration": rs["metadata"].get("generation", 1),
                }
            )
        )
        if st != rs.get("status"):
            rs["status"] = st
            rs["metadata"]["resourceVersion"] = self._next_rv()

    def _deployment_status(self, d: dict[str, Any]) -> None:
        ns, spec = d["metadata"]["namespace"], d["spec"]
        owned = [rs for rs in self.objects("ReplicaSet", ns) if _owned_by(rs, d)]
        h = hashlib.sha256(json.dumps(spec.get("template") or {}, sort_keys=True).encode()).hexdigest()[:10]
        new = next((rs for rs in owned if rs["metadata"]["labels"].get("pod-template-hash") == h), None)
        rst = [rs.get("status") or {} for rs in owned]
        want = int(spec.get("replicas", 1))
        total = sum(s.get("replicas", 0) for s in rst)
        updated = (new or {}).get("status", {}).get("replicas", 0)
        ready = sum(s.get("readyReplicas", 0) for s in rst)
        available = sum(s.get("availableReplicas", 0) for s in rst)
        conds = [
            {
                "type": "Available",
                "status": "True" if available >= want - (want // 4) else "False",
                "reason": "MinimumReplicasAvailable"
                if available >= want - (want // 4)
                else "MinimumReplicasUnavailable",
            }
        ]
        complete = updated == total == available == want
        conds.append(
            {
                "type": "Progressing",
                "status": "True",
                "reason": "NewReplicaSetAvailable" if complete else "ReplicaSetUpdated",
            }
        )
        failure = next(
            (
                c
                for c in ((new or {}).get("status") or {}).get("conditions") or []
                if c.get("type") == "ReplicaFailure"
            ),
            None,
        )
        if failure:
            conds.append(dict(failure))
        st = _omit_zero(
            {
                "observedGeneration": d["metadata"].get("generation", 1),
                "replicas": total,
                "updatedReplicas": updated,
                "readyReplicas": ready,
                "availableReplicas": available,
                "unavailableReplicas": max(0, want - available),
            }
        )
        st["conditions"] = conds
        if st != d.get("status"):
            d["status"] = st
            d["metadata"]["resourceVersion"] = self._next_rv()

    def mirror_pod(self, node: str, command: list[str]) -> None:
        """The kubelet's mirror pod of the kube-apiserver static pod: Running, Ready, the manifest's
        command."""
        with self.lock:
            self._put(
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {
                        "name": f"kube-apiserver-{node}",
                        "namespace": "kube-system",
                        "labels": {"component": "kube-apiserver", "tier": "control-plane"},
                        "annotations": {"kubernetes.io/config.source": "file"},
                    },
                    "spec": {
                        "nodeName": node,
                        "containers": [
                            {
                                "name": "kube-apiserver",
                                "image": "registry.k8s.io/kube-apiserver",
                                "command": command,
                            }
                        ],
                    },
                    "status": {
                        "phase": "Running",
                        "conditions": [
                            {"type": t, "status": "True"}
                            for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
                        ],
                        "containerStatuses": [
                            {
                                "name": "kube-apiserver",
                                "ready": True,
                                "restartCount": 0,
                                "image": "registry.k8s.io/kube-apiserver",
                                "started": True,
                                "state": {"running": {"startedAt": _now()}},
                                "containerID": "containerd://" + secrets.token_hex(32),
                            }
                        ],
                    },
                }
            )

    # -- exec --
    def run_exec(self, pod: dict[str, Any], container: str, argv: list[str]) -> tuple[int, str, str]:
        result = fs.interpret(pod, container, argv)
        self.exec_log.append(
            {"pod": pod["metadata"]["name"], "container": container, "argv": argv, "rc": result[0]}
        )
        for cb in self.on_exec:
            cb(pod, container, argv, result)
        return result


def _comparable(obj: dict[str, Any]) -> dict[str, Any]:
    o = copy.deepcopy(obj)
    o.get("metadata", {}).pop("resourceVersion", None)
    return o


def _owner_ref(owner: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": owner.get("apiVersion", "apps/v1"),
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _owned_by(obj: dict[str, Any], owner: dict[str, Any]) -> bool:
    return any(r.get("uid") == owner["metadata"]["uid"] for r in obj["metadata"].get("ownerReferences") or [])


def _omit_zero(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v}


def _pod_ready(p: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (p.get("status") or {}).get("conditions") or []
    )


def _ready_count(double: ClusterDouble, rs: dict[str, Any]) -> int:
    ns = rs["metadata"]["namespace"]
    return sum(1 for p in double.objects("Pod", ns) if _owned_by(p, rs) and _pod_ready(p))


def _tolerates(tol: dict[str, Any], taint: dict[str, Any]) -> bool:
    if tol.get("effect") and tol.get("effect") != taint.get("effect"):
        return False
    if not tol.get("key"):
        return tol.get("operator") == "Exists"
    if tol.get("key") != taint.get("key"):
        return False
    if tol.get("operator") == "Exists":
        return True
    return (tol.get("value") or "") == (taint.get("value") or "")


def _fits(pod: dict[str, Any], node: dict[str, Any]) -> bool:
    spec = pod["spec"]
    labels = node["metadata"].get("labels") or {}
    if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") not in {"NoSchedule", "NoExecute"}:
            continue
        if not any(_tolerates(t, taint) for t in spec.get("tolerations") or []):
            return False
    return True


def _kubelet_can_start(pod: dict[str, Any]) -> tuple[bool, str]:
    """Every image here runs as root: runAsNonRoot without a non-zero runAsUser cannot start."""
    spec = pod["spec"]
    psc = spec.get("securityContext") or {}
    for c in spec.get("containers") or []:
        sc = c.get("securityContext") or {}
        non_root = sc.get("runAsNonRoot", psc.get("runAsNonRoot"))
        uid = sc.get("runAsUser", psc.get("runAsUser"))
        if non_root is True and not uid:
            return False, "CreateContainerConfigError"
    return True, ""


def _subject_matches(s: dict[str, Any], user: str, groups: list[str], binding_ns: str) -> bool:
    kind = s.get("kind")
    if kind == "User":
        return s.get("name") == user
    if kind == "Group":
        return s.get("name") in groups
    if kind == "ServiceAccount":
        return user == f"system:serviceaccount:{s.get('namespace') or binding_ns}:{s.get('name')}"
    return False


def _rule_allows(
    rule: dict[str, Any], verb: str, group: str, resource: str, plural: str, name: str | None
) -> bool:
    if not any(v in ("*", verb) for v in rule.get("verbs") or []):
        return False
    if not any(g in ("*", group) for g in rule.get("apiGroups") or []):
        return False
    res = rule.get("resources") or []
    sub = resource.split("/", 1)[1] if "/" in resource else None
    if not any(r == "*" or r == resource or (sub and r == f"*/{sub}") for r in res):
        return False
    names = rule.get("resourceNames") or []
    return not names or (name is not None and name in names)


# ---- HTTP ------------------------------------------------------------------------------------------------

OPEN_PATHS = {"/version", "/readyz", "/livez", "/healthz", "/api", "/apis"}


NOT_FOUND = "the server could not find the requested resource"
# an HTTP method (GET split into LIST for a collection) -> the RBAC verb it needs
VERBS = {
    "LIST": "list",
    "GET": "get",
    "POST": "create",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}


def _handler(api: ClusterDouble) -> type[BaseHTTPRequestHandler]:
    return type("Handler", (_Handler,), {"api": api})


class _Request(ResourcePath):
    """One authenticated request for an object or a collection, with where it points."""

    def __init__(self, method: str, query: dict[str, list[str]], body: bytes, user: str, groups: list[str]):
        self.method, self.query, self.body, self.user, self.groups = method, query, body, user, groups

    def locate(self, rest: list[str]) -> None:
        """Set namespace, resource, name and subresource from the path after the group version."""
        super().locate(rest)
        if self.plural not in RESOURCES:
            raise ApiError(404, "NotFound", NOT_FOUND)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.plural, self.ns if RESOURCES[self.plural][3] else "", self.name or "")

    @property
    def dry(self) -> bool:
        return self.query.get("dryRun", [""])[0] == "All"

    def not_found(self) -> ApiError:
        group = RESOURCES[self.plural][1]
        return ApiError(
            404,
            "NotFound",
            f'{_res_name(self.plural)} "{self.name}" not found',
            {"name": self.name, "group": group, "kind": self.plural},
        )


class _Handler(JSONHandler):
    """The HTTP side of the double: authentication, then open paths, SelfSubjectReview, discovery, exec or
    the object routes of ``ROUTES``; an ApiError becomes the API's Status answer."""

    api: ClusterDouble  # set on the subclass :func:`_handler` makes for one double

    def _authenticate(self) -> tuple[str, list[str]] | None:
        auth = self.headers.get("Authorization", "")
        return self.api.tokens.get(auth[7:]) if auth.startswith("Bearer ") else None

    def _route(self, method: str) -> None:
        api = self.api
        url = urlsplit(self.path)
        query = {k: v for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        who = self._authenticate()
        if who is None:
            return self._send(401, ApiError(401, "Unauthorized", "Unauthorized").status())
        user, groups = who
        path = url.path.rstrip("/") or "/"
        api.requests.append((user, method, path))
        self._code = 0
        self._attrs = {"verb": method.lower(), "path": path}
        try:
            self._dispatch(path, _Request(method, query, body, user, groups))
        except ApiError as exc:
            self._send(exc.code, exc.status())
        except (ValueError, KeyError, TypeError, IndexError, yaml.YAMLError) as exc:
            self._send(400, ApiError(400, "BadRequest", f"the request could not be decoded: {exc}").status())
        sink = api.audit_sink
        if sink is not None:
            sink(user, groups, method, self.path, self._attrs, self._code)

    def _dispatch(self, path: str, req: _Request) -> None:
        if path in OPEN_PATHS or path.startswith("/readyz") or path.startswith("/livez"):
            return self._open(path)
        if path == "/apis/authentication.k8s.io/v1/selfsubjectreviews" and req.method == "POST":
            return self._self_subject_review(req)
        parts = [unquote(p) for p in path.split("/") if p]
        if parts[:1] == ["apis"] and len(parts) == 3:
            return self._discovery(f"{parts[1]}/{parts[2]}")
        if parts[:1] == ["api"] and len(parts) >= 2:
            req.locate(parts[2:])
        elif parts[:1] == ["apis"] and len(parts) > 3:
            req.locate(parts[3:])
        else:
            raise ApiError(404, "NotFound", NOT_FOUND)
        self._resource(req)

    def _open(self, path: str) -> None:
        api = self.api
        if path == "/version":
            return self._send(200, {"major": "1", "minor": str(api.minor), "gitVersion": f"v1.{api.minor}.0"})
        if path == "/api":
            return self._send(200, {"kind": "APIVersions", "versions": ["v1"]})
        if path == "/apis":
            groups = sorted({g for _k, g, _v, _n in RESOURCES.values() if g})
            return self._send(
                200,
                {
                    "kind": "APIGroupList",
                    "apiVersion": "v1",
                    "groups": [
                        {
                            "name": g,
                            "versions": [{"groupVersion": f"{g}/v1", "version": "v1"}],
                            "preferredVersion": {"groupVersion": f"{g}/v1", "version": "v1"},
                        }
                        for g in groups
                    ],
                },
            )
        return self._send(200, b"ok")

    def _self_subject_review(self, req: _Request) -> None:
        self._send(
            201,
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "SelfSubjectReview",
                "status": {"userInfo": {"username": req.user, "groups": req.groups}},
            },
        )

    def _discovery(self, gv: str) -> None:
        """The resources of one group version."""
        res = [
            {"name": p, "kind": k, "namespaced": nsd, "verbs": ["get", "list"]}
            for p, (k, g, v, nsd) in RESOURCES.items()
            if f"{g}/{v}" == gv
        ]
        self._send(200, {"kind": "APIResourceList", "groupVersion": gv, "resources": res})

    def _resource(self, req: _Request) -> None:
        api = self.api
        self._apply_faults(req)
        if req.sub == "exec":
            return self._exec(req.ns, req.name, req.query, req.user, req.groups)
        _kind, group, version, _namespaced = RESOURCES[req.plural]
        verb = VERBS[req.action]
        self._attrs = {
            "verb": verb,
            "namespace": req.ns,
            "apiGroup": group,
            "apiVersion": version,
            "resource": req.plural,
            "subresource": req.sub or "",
            "name": req.name or "",
        }
        api.authorize(req.user, req.groups, verb, req.plural, req.sub, req.ns, req.name)
        with api.lock:
            ROUTES[req.action](self, req)

    def _apply_faults(self, req: _Request) -> None:
        """The test faults: a resource that hangs, or one forbidden to everyone."""
        api, plural = self.api, req.plural
        if plural in api.hangs:
            time.sleep(api.hangs[plural])
        if plural in api.forbidden:
            raise ApiError(
                403,
                "Forbidden",
                f'{_res_name(plural)} is forbidden: User "{req.user}" cannot '
                f'{"list" if req.name is None else "get"} resource "{plural}"',
            )

    # -- the object routes (called with the store locked) --
    def _list(self, req: _Request) -> None:
        api = self.api
        kind, group, version, _namespaced = RESOURCES[req.plural]
        sel = req.query.get("labelSelector", [None])[0]
        items = []
        for (p, ons, _), o in sorted(api.store.items()):
            if (
                p == req.plural
                and (not req.ns or ons == req.ns)
                and selects((o["metadata"].get("labels") or {}), sel)
            ):
                item = copy.deepcopy(o)
                item.pop("kind", None)
                item.pop("apiVersion", None)
                items.append(item)
        self._send(
            200,
            {
                "kind": f"{kind}List",
                "apiVersion": f"{group}/{version}" if group else version,
                "metadata": {"resourceVersion": str(api._rv)},
                "items": items,
            },
        )

    def _get(self, req: _Request) -> None:
        obj = self.api.store.get(req.key)
        if obj is None:
            raise req.not_found()
        self._send(200, obj)

    def _create(self, req: _Request) -> None:
        obj = json.loads(req.body or b"{}")
        self._send(201, self.api.create(req.plural, req.ns, obj, dry=req.dry))

    def _update(self, req: _Request) -> None:
        obj = json.loads(req.body or b"{}")
        self._send(200, self.api.update(req.plural, req.ns, str(req.name), obj, dry=req.dry, check_rv=True))

    def _delete(self, req: _Request) -> None:
        self._send(200, self.api.delete(req.plural, req.ns, str(req.name), dry=req.dry))

    def _patch(self, req: _Request) -> None:
        """Server-side apply (creating when absent), JSON patch, strategic or JSON merge patch."""
        api = self.api
        ctype = self.headers.get("Content-Type", "")
        patch = yaml.safe_load(req.body) if "yaml" in ctype else json.loads(req.body or b"{}")
        cur = api.store.get(req.key)
        if "apply-patch" in ctype:
            if not req.query.get("fieldManager"):
                raise ApiError(
                    422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value'
                )
            if cur is None:
                return self._send(201, api.create(req.plural, req.ns, patch, dry=req.dry))
            new = merge_patch(cur, patch)
        elif cur is None:
            raise req.not_found()
        elif "json-patch" in ctype:
            new = json_patch(cur, patch)
        elif "strategic" in ctype:
            new = strategic_merge(cur, patch)
        else:
            new = merge_patch(cur, patch)
        self._send(200, api.update(req.plural, req.ns, str(req.name), new, dry=req.dry))

    # -- exec over WebSocket (v4.channel.k8s.io) --
    def _exec(self, ns, name, query, user, groups) -> None:
        api = self.api
        if api.refuse_exec:
            raise ApiError(
                403, "Forbidden", f'pods "{name}" is forbidden: exec refused by the double (fault)'
            )
        api.authorize(user, groups, "get", "pods", "exec", ns, name)
        if api.minor >= 35:  # AuthorizePodWebsocketUpgradeCreatePermission
            api.authorize(user, groups, "create", "pods", "exec", ns, name)
        pod = api.get("Pod", ns, str(name))
        if pod is None:
            raise ApiError(404, "NotFound", f'pods "{name}" not found', {"name": name, "kind": "pods"})
        if not pod["spec"].get("nodeName"):
            raise ApiError(400, "BadRequest", f"pod {name} does not have a host assigned")
        container = _exec_container(pod, name, query.get("container", [None])[0])
        key = self.headers.get("Sec-WebSocket-Key")
        if self.headers.get("Upgrade", "").lower() != "websocket" or not key:
            raise ApiError(400, "BadRequest", "Upgrade request required")
        argv = query.get("command", [])
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        self.wfile.write(
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: v4.channel.k8s.io\r\n\r\n"
            ).encode()
        )
        rc, out, err = api.run_exec(pod, container, argv)
        for payload in _exec_frames(rc, out, err):
            self.wfile.write(_ws_frame(0x2, payload))
        self.wfile.write(_ws_frame(0x8, struct.pack("!H", 1000)))
        self.wfile.flush()
        self.close_connection = True
        with contextlib.suppress(OSError):  # TimeoutError included
            self.connection.settimeout(2)
            self.connection.recv(1024)  # the client's close frame, if it sends one


# the object routes by action (the HTTP method, GET of a collection being LIST)
ROUTES = {
    "LIST": _Handler._list,
    "GET": _Handler._get,
    "POST": _Handler._create,
    "PUT": _Handler._update,
    "PATCH": _Handler._patch,
    "DELETE": _Handler._delete,
}


def _exec_container(pod: dict[str, Any], name: str, container: str | None) -> Any:
    """The container an exec runs in (the only one when none is named), refused when not running."""
    names = [c.get("name") for c in pod["spec"].get("containers") or []]
    if container is None:
        if len(names) != 1:
            raise ApiError(
                400,
                "BadRequest",
                f"a container name must be specified for pod {name}, choose one of: {names}",
            )
        container = names[0]
    if container not in names:
        raise ApiError(400, "BadRequest", f"container {container} is not valid for pod {name}")
    if (pod.get("status") or {}).get("phase") != "Running":
        raise ApiError(400, "BadRequest", f"container {container} is not running in pod {name}")
    return container


def _exec_frames(rc: int, out: str, err: str) -> list[bytes]:
    """The channel frames of an exec: an empty stdout frame, stdout, stderr, then the Status on channel 3."""
    frames = [b"\x01"]
    if out:
        frames.append(b"\x01" + out.encode())
    if err:
        frames.append(b"\x02" + err.encode())
    status = (
        {"metadata": {}, "status": "Success"}
        if rc == 0
        else {
            "metadata": {},
            "status": "Failure",
            "message": f"command terminated with non-zero exit code: {rc}",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(rc)}]},
        }
    )
    frames.append(b"\x03" + json.dumps(status).encode())
    return frames


def _ws_frame(opcode: int, payload: bytes) -> bytes:
    head = bytes([0x80 | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([n])
    elif n < 65536:
        head += bytes([126]) + struct.pack("!H", n)
    else:
        head += bytes([127]) + struct.pack("!Q", n)
    return head + payload
