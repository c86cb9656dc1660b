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
from tests.live.fakehttp import JSONHandler, ResourcePath, merge_patch

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


def _selects(obj: dict[str, Any], selector: str | None) -> bool:
    if not selector:
        return True
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for term in selector.split(","):
        key, _, val = term.partition("=")
        if labels.get(key.strip()) != val.strip():
            return False
    return True


def _handler(api: FakeKube) -> type[BaseHTTPRequestHandler]:
    return type("Handler", (_Handler,), {"api": api})


class _Request(ResourcePath):
    """One authenticated request for an object or a collection, with where it points."""

    def __init__(self, method: str, query: dict[str, str], body: bytes, rest: list[str]):
        self.method, self.query, self.body = method, query, body
        self.locate(rest)

    @property
    def kind(self) -> str:
        return PLURALS[self.plural][0]

    @property
    def namespaced(self) -> bool:
        return PLURALS[self.plural][2]

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.plural, self.ns if self.namespaced else "", self.name or "")

    @property
    def dry(self) -> bool:
        return self.query.get("dryRun") == "All"


class _Handler(JSONHandler):
    """Audit, authentication, the open paths, then the object routes of ``ROUTES``."""

    api: FakeKube  # set on the subclass :func:`_handler` makes for one server

    def _not_found(self, req: _Request) -> None:
        self._send(404, _status(404, "NotFound", f'{req.plural} "{req.name}" not found'))

    def _route(self, method: str) -> None:
        api = self.api
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        body = self._body()  # always drain it: an unread body would corrupt the kept-alive connection
        api.requests.append((method, url.path))
        if api.audit_log is not None and api.audit_level != "None":
            self._audit(method)
        if self.headers.get("Authorization") != f"Bearer {api.token}":
            return self._send(401, _status(401, "Unauthorized", "Unauthorized"))
        path = url.path.rstrip("/")
        if path in OPEN_PATHS:
            return OPEN_PATHS[path](self)
        parts = [unquote(p) for p in path.split("/") if p]
        # /api/v1/... or /apis/<group>/<version>/...
        req = _Request(method, query, body, parts[2:] if parts[:1] == ["api"] else parts[3:])
        if not req.plural:
            return self._send(
                404, _status(404, "NotFound", "the server could not find the requested resource")
            )
        if req.plural not in PLURALS:
            return self._send(404, _status(404, "NotFound", f"no resource {req.plural}"))
        if req.sub == "exec":
            return self._refuse_exec(req)
        if req.plural in api.hang:
            time.sleep(api.hang[req.plural])
        if req.plural in api.forbidden:
            return self._forbid(req)
        route = ROUTES.get(req.action)
        if route is None:
            return self._send(405, _status(405, "MethodNotAllowed", method))
        return route(self, req)

    def _audit(self, method: str) -> None:
        """Append the request to the audit log as an event at the server's audit level."""
        api = self.api
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

    def _version(self) -> None:
        self._send(200, {"major": "1", "minor": "31", "gitVersion": "v1.31.0"})

    def _health(self) -> None:
        self._send(200, b"ok")

    def _groups(self) -> None:
        self._send(200, {"kind": "APIGroupList", "groups": []})

    def _refuse_exec(self, req: _Request) -> None:
        """Exec answers 403, as it does for an RBAC-limited identity."""
        self._send(
            403,
            _status(
                403,
                "Forbidden",
                f'pods "{req.name}" is forbidden: User "grader" cannot '
                f'create resource "pods/exec" in the namespace "{req.ns}"',
            ),
        )

    def _forbid(self, req: _Request) -> None:
        verb = {"GET": "list" if req.name is None else "get"}.get(req.method, req.method.lower())
        self._send(
            403,
            _status(
                403,
                "Forbidden",
                f'{req.plural} is forbidden: User "grader" cannot {verb} '
                f'resource "{req.plural}" at the cluster scope',
            ),
        )

    # -- the object routes --
    def _list(self, req: _Request) -> None:
        api = self.api
        items = [
            copy.deepcopy(o)
            for (p, ons, _), o in sorted(api.store.items())
            if p == req.plural
            and (not req.ns or ons == req.ns)
            and _selects(o, req.query.get("labelSelector"))
        ]
        for item in items:  # a real list omits these on items
            item.pop("kind", None)
            item.pop("apiVersion", None)
        self._send(
            200,
            {
                "kind": f"{req.kind}List",
                "apiVersion": "v1",
                "metadata": {"resourceVersion": str(api._rv)},
                "items": items,
            },
        )

    def _get(self, req: _Request) -> None:
        obj = self.api.store.get(req.key)
        if obj is None:
            return self._not_found(req)
        self._send(200, obj)

    def _create(self, req: _Request) -> None:
        api = self.api
        obj = json.loads(req.body or b"{}")
        obj.setdefault("metadata", {})
        if req.namespaced:
            obj["metadata"]["namespace"] = req.ns or "default"
        k2 = (req.plural, obj["metadata"].get("namespace", ""), obj["metadata"].get("name", ""))
        if k2 in api.store:
            return self._send(409, _status(409, "AlreadyExists", f'{req.plural} "{k2[2]}" already exists'))
        obj["kind"] = req.kind
        self._send(201, obj if req.dry else api.put(obj))

    def _patch(self, req: _Request) -> None:
        """Server-side apply (creating when absent) or a JSON merge patch."""
        api = self.api
        ctype = self.headers.get("Content-Type", "")
        try:
            patch = yaml.safe_load(req.body) if "yaml" in ctype else json.loads(req.body or b"{}")
        except (ValueError, yaml.YAMLError):
            return self._send(400, _status(400, "BadRequest", "cannot decode the patch"))
        current = api.store.get(req.key)
        if current is None and "apply-patch" not in ctype:
            return self._not_found(req)
        if "apply-patch" in ctype and req.query.get("fieldManager") is None:
            return self._send(400, _status(400, "BadRequest", "fieldManager is required for apply"))
        merged = merge_patch(current or {}, patch)
        merged["kind"] = req.kind
        merged.setdefault("metadata", {})["name"] = req.name
        if req.namespaced:
            merged["metadata"]["namespace"] = req.ns
        if current:
            merged["metadata"]["uid"] = current["metadata"]["uid"]
            if merged == current:
                return self._send(200, current)  # no change: resourceVersion stays
        if req.dry:
            return self._send(200, merged)
        self._send(201 if current is None else 200, api.put(merged))

    def _delete(self, req: _Request) -> None:
        api = self.api
        if req.key not in api.store:
            return self._not_found(req)
        obj = api.store[req.key] if req.dry else api.store.pop(req.key)
        if req.plural == "namespaces" and not req.dry:  # the namespace controller's cascade, at once
            for k in [k for k in api.store if k[1] == req.name]:
                api.store.pop(k)
        self._send(200, obj)


# the paths open before any resource, and the object routes by action (GET of a collection being LIST);
# PUT has no route (405)
OPEN_PATHS = {
    "/version": _Handler._version,
    "/readyz": _Handler._health,
    "/livez": _Handler._health,
    "/healthz": _Handler._health,
    "/apis": _Handler._groups,
}
ROUTES = {
    "LIST": _Handler._list,
    "GET": _Handler._get,
    "POST": _Handler._create,
    "PATCH": _Handler._patch,
    "DELETE": _Handler._delete,
}
