"""What the tests' two fake API servers (``kubeapi.FakeKube`` and the cluster double) share: a handler that
answers JSON, reads request bodies and sends every method to one router, where a request points, and the
API's JSON merge patch."""

from __future__ import annotations

import copy
import json
from http.server import BaseHTTPRequestHandler
from typing import Any


class JSONHandler(BaseHTTPRequestHandler):
    """Keep-alive HTTP/1.1; a subclass implements ``_route(method)``."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def _send(self, code: int, body: Any, headers: dict[str, str] | None = None) -> None:
        """``body`` as JSON, or bytes as plain text."""
        raw = isinstance(body, bytes)
        data = body if raw else json.dumps(body).encode()
        self._code = code
        self.send_response(code)
        self.send_header("Content-Type", "text/plain" if raw else "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _route(self, method: str) -> None:
        raise NotImplementedError

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_PUT(self) -> None:
        self._route("PUT")

    def do_PATCH(self) -> None:
        self._route("PATCH")

    def do_DELETE(self) -> None:
        self._route("DELETE")


class ResourcePath:
    """Where a request for an object or a collection points: namespace, resource (plural), name and
    subresource, read from the path after the group version; ``method`` is the HTTP method."""

    method: str
    ns, plural, name, sub = "", "", None, None

    def locate(self, rest: list[str]) -> None:
        if len(rest) >= 3 and rest[0] == "namespaces":
            self.ns, rest = rest[1], rest[2:]
        self.plural = rest[0] if rest else ""
        self.name = rest[1] if len(rest) > 1 else None
        self.sub = rest[2] if len(rest) > 2 else None

    @property
    def action(self) -> str:
        """The method, with GET of a collection told apart as LIST."""
        return "LIST" if self.method == "GET" and self.name is None else self.method


def merge_object(base: Any, patch: dict[str, Any], merge: Any) -> dict[str, Any]:
    """``patch`` (an object) merged into ``base``: a null removes a key, other values are merged by
    ``merge(old, new, key)`` (the JSON merge patch and the strategic merge differ only there)."""
    out = copy.deepcopy(base) if isinstance(base, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge(out.get(k), v, k)
    return out


def merge_patch(base: Any, patch: Any, _key: str = "") -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    return merge_object(base, patch, merge_patch)
