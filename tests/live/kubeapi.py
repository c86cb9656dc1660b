"""A small Kubernetes API server for tests: the kinds and verbs the kit uses, over plain HTTP on loopback.

It speaks enough of the real API for the real ``kubernetes`` client: list (with labelSelector), get,
server-side apply (PATCH application/apply-patch+yaml, creating or updating), JSON merge patch, create
(POST, honouring dryRun), delete, /version, /readyz, /apis discovery; exec is refused with 403 the way an
RBAC-limited identity sees it. Objects are fed in the API's JSON shape. Faults are switches on the server:
a bearer token it insists on (401 otherwise), kinds it forbids (403), paths on which it hangs, and stopping.
"""

from __future__ import annotations

import copy
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

from grader.collectors.kube import KINDS

PLURALS = {plural: (kind, prefix, namespaced) for kind, (prefix, plural, namespaced) in KINDS.items()}


class FakeKube:
    def __init__(self, objects: list[dict[str, Any]] | None = None, *, token: str = "test-token"):
        self.token = token
        self.forbidden: set[str] = set()  # plurals that answer 403
        self.hang: dict[str, float] = {}  # plural -> seconds to stall before answering
        self.requests: list[tuple[str, str]] = []
        self.audit_log = None  # a Path: every request is appended as an audit event (level audit_level)
        self.audit_level = "Metadata"
        self.store: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._rv = 100
        self._lock = threading.Lock()
        for obj in objects or []:
            self.put(obj)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.server.handle_error = lambda *a: None  # a client that gave up (timeout tests) is not an error
        # a short poll interval: shutdown() waits for it, and every test stops a server
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeKube:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- store --
    def put(self, obj: dict[str, Any]) -> dict[str, Any]:
        obj = copy.deepcopy(obj)
        kind = obj["kind"]
        prefix, plural, namespaced = KINDS[kind]
        meta = obj.setdefault("metadata", {})
        if namespaced:
            meta.setdefault("namespace", "default")
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", "2024-01-01T00:00:00Z")
        meta["resourceVersion"] = self._next_rv()
        meta["managedFields"] = [{"manager": "test", "operation": "Apply"}]
        obj.setdefault("apiVersion", prefix.split("/", 2)[-1] if prefix.startswith("/apis/") else "v1")
        if kind == "Deployment":  # no controllers here: a Deployment is ready as soon as it exists
            want = (obj.get("spec") or {}).get("replicas", 1)
            obj["status"] = {"replicas": want, "readyReplicas": want, "availableReplicas": want}
        self.store[(plural, meta.get("namespace", ""), meta["name"])] = obj
        return obj

    def _next_rv(self) -> str:
        with self._lock:
            self._rv += 1
            return str(self._rv)

    def get(self, kind: str, ns: str, name: str) -> dict[str, Any] | None:
        return self.store.get((KINDS[kind][1], ns, name))

    def kubeconfig(self, path, *, token: str | None = None, current: bool = True, name: str = "test") -> str:
        data = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": name, "cluster": {"server": self.url}}],
            "users": [{"name": name, "user": {"token": token or self.token}}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        }
        if current:
            data["current-context"] = name
        path.write_text(yaml.safe_dump(data))
        return str(path)


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def _merge(base: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (server-side apply is approximated by it: fine for one field manager)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(base) if isinstance(base, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = _merge(out.get(k), v)
    return out


def _selects(obj: dict[str, Any], selector: str | None) -> bool:
    if not selector:
        return True
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for term in selector.split(","):
        key, _, val = term.partition("=")
        if labels.get(key.strip()) != val.strip():
            return False
    return True


def _handler(api: FakeKube):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # keep pytest output clean
            pass

        def _send(self, code: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        def _route(self, method: str) -> None:
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            body = self._body()  # always drain it: an unread body would corrupt the kept-alive connection
            api.requests.append((method, url.path))
            if api.audit_log is not None and api.audit_level != "None":
                event = {
                    "kind": "Event",
                    "apiVersion": "audit.k8s.io/v1",
                    "level": api.audit_level,
                    "auditID": str(uuid.uuid4()),
                    "stage": "ResponseComplete",
                    "requestURI": self.path,
                    "verb": method.lower(),
                    "user": {"username": "grader", "groups": ["system:authenticated"]},
                    "requestReceivedTimestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime()),
                }
                with open(api.audit_log, "a") as fh:
                    fh.write(json.dumps(event) + "\n")
            if self.headers.get("Authorization") != f"Bearer {api.token}":
                return self._send(401, _status(401, "Unauthorized", "Unauthorized"))
            path = url.path.rstrip("/")
            if path == "/version":
                return self._send(200, {"major": "1", "minor": "31", "gitVersion": "v1.31.0"})
            if path in {"/readyz", "/livez", "/healthz"}:
                return self._send(200, {}) if False else self._text(200, "ok")
            if path == "/apis":
                return self._send(200, {"kind": "APIGroupList", "groups": []})
            parts = [unquote(p) for p in path.split("/") if p]
            # /api/v1/... or /apis/<group>/<version>/...
            rest = parts[2:] if parts[:1] == ["api"] else parts[3:]
            ns = ""
            if len(rest) >= 2 and rest[0] == "namespaces" and len(rest) > 2:
                ns, rest = rest[1], rest[2:]
            if not rest:
                return self._send(
                    404, _status(404, "NotFound", "the server could not find the requested resource")
                )
            plural, name = rest[0], rest[1] if len(rest) > 1 else None
            sub = rest[2] if len(rest) > 2 else None
            if plural not in PLURALS:
                return self._send(404, _status(404, "NotFound", f"no resource {plural}"))
            kind, _prefix, namespaced = PLURALS[plural]
            if sub == "exec":
                return self._send(
                    403,
                    _status(
                        403,
                        "Forbidden",
                        f'pods "{name}" is forbidden: User "grader" cannot '
                        f'create resource "pods/exec" in the namespace "{ns}"',
                    ),
                )
            if plural in api.hang:
                time.sleep(api.hang[plural])
            if plural in api.forbidden:
                verb = {"GET": "list" if name is None else "get"}.get(method, method.lower())
                return self._send(
                    403,
                    _status(
                        403,
                        "Forbidden",
                        f'{plural} is forbidden: User "grader" cannot {verb} '
                        f'resource "{plural}" at the cluster scope',
                    ),
                )
            if method == "GET" and name is None:
                items = [
                    copy.deepcopy(o)
                    for (p, ons, _), o in sorted(api.store.items())
                    if p == plural and (not ns or ons == ns) and _selects(o, query.get("labelSelector"))
                ]
                for item in items:  # a real list omits these on items
                    item.pop("kind", None)
                    item.pop("apiVersion", None)
                return self._send(
                    200,
                    {
                        "kind": f"{kind}List",
                        "apiVersion": "v1",
                        "metadata": {"resourceVersion": str(api._rv)},
                        "items": items,
                    },
                )
            key = (plural, ns if namespaced else "", name or "")
            if method == "GET":
                obj = api.store.get(key)
                if obj is None:
                    return self._send(404, _status(404, "NotFound", f'{plural} "{name}" not found'))
                return self._send(200, obj)
            dry = query.get("dryRun") == "All"
            if method == "POST":
                obj = json.loads(body or b"{}")
                obj.setdefault("metadata", {})
                if namespaced:
                    obj["metadata"]["namespace"] = ns or "default"
                k2 = (plural, obj["metadata"].get("namespace", ""), obj["metadata"].get("name", ""))
                if k2 in api.store:
                    return self._send(
                        409, _status(409, "AlreadyExists", f'{plural} "{k2[2]}" already exists')
                    )
                obj["kind"] = kind
                return self._send(201, obj if dry else api.put(obj))
            if method == "PATCH":
                ctype = self.headers.get("Content-Type", "")
                try:
                    patch = yaml.safe_load(body) if "yaml" in ctype else json.loads(body or b"{}")
                except (ValueError, yaml.YAMLError):
                    return self._send(400, _status(400, "BadRequest", "cannot decode the patch"))
                current = api.store.get(key)
                if current is None and "apply-patch" not in ctype:
                    return self._send(404, _status(404, "NotFound", f'{plural} "{name}" not found'))
                if "apply-patch" in ctype and query.get("fieldManager") is None:
                    return self._send(400, _status(400, "BadRequest", "fieldManager is required for apply"))
                merged = _merge(current or {}, patch)
                merged["kind"] = kind
                merged.setdefault("metadata", {})["name"] = name
                if namespaced:
                    merged["metadata"]["namespace"] = ns
                if current:
                    merged["metadata"]["uid"] = current["metadata"]["uid"]
                    if merged == current:
                        return self._send(200, current)  # no change: resourceVersion stays
                if dry:
                    return self._send(200, merged)
                return self._send(201 if current is None else 200, api.put(merged))
            if method == "DELETE":
                if key not in api.store:
                    return self._send(404, _status(404, "NotFound", f'{plural} "{name}" not found'))
                obj = api.store[key] if dry else api.store.pop(key)
                if plural == "namespaces" and not dry:  # the namespace controller's cascade, at once
                    for k in [k for k in api.store if k[1] == name]:
                        api.store.pop(k)
                return self._send(200, obj)
            return self._send(405, _status(405, "MethodNotAllowed", method))

        def _text(self, code: int, text: str) -> None:
            data = text.encode()
            self.send_response(code)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

        def do_PATCH(self) -> None:
            self._route("PATCH")

        def do_DELETE(self) -> None:
            self._route("DELETE")

        def do_PUT(self) -> None:
            self._route("PUT")

    return Handler
