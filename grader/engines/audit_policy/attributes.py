"""Request attributes as kube-apiserver's audit policy checker sees them (authorizer.Attributes).

Three ways to build one: :meth:`RequestAttributes.from_mapping` (the cases.yaml / ``--requests`` shape),
:meth:`RequestAttributes.from_url` (an HTTP method and URL, parsed like requestinfo.go) and
:func:`parse_request` (a one-line shorthand used by lab probes, e.g. ``"get secrets -n prod as alice"``).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

RESOURCE_VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
_METHOD_VERBS = {
    "POST": "create",
    "GET": "get",
    "HEAD": "get",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}
_VERB_METHODS = {
    "get": "GET",
    "list": "GET",
    "watch": "GET",
    "create": "POST",
    "update": "PUT",
    "patch": "PATCH",
    "delete": "DELETE",
    "deletecollection": "DELETE",
}
AUTHENTICATED = "system:authenticated"
MAPPING_KEYS = (
    "user",
    "verb",
    "namespace",
    "apiGroup",
    "apiVersion",
    "resource",
    "subresource",
    "name",
    "isResourceRequest",
    "path",
)


class RequestError(ValueError):
    """A request description is not understood; ``str()`` says which key and what is allowed."""


@dataclass(frozen=True, slots=True)
class User:
    username: str
    groups: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RequestAttributes:
    """One request. ``user=None`` is a request that failed authentication (no user at all)."""

    user: User | None = None
    verb: str = "get"
    namespace: str = ""
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    is_resource_request: bool = True
    path: str = ""

    # ---- builders ---------------------------------------------------------------------------------

    @classmethod
    def from_mapping(cls, d: Any, where: str = "request") -> RequestAttributes:
        """The kube-apiserver attribute shape: ``user`` ({username, groups} or null), ``verb``,
        ``namespace``, ``apiGroup``, ``apiVersion``, ``resource``, ``subresource``, ``name``,
        ``isResourceRequest``, ``path``.

        ``isResourceRequest`` defaults to true when ``resource`` is set, else false when ``path`` is set.
        """
        if not isinstance(d, dict):
            raise RequestError(
                f"{where}: must be a mapping with keys {', '.join(MAPPING_KEYS)}, got {_kind(d)}"
            )
        unknown = sorted(str(k) for k in d if k not in MAPPING_KEYS)
        if unknown:
            raise RequestError(
                f"{where}: unknown key {unknown[0]!r}; allowed keys: {', '.join(MAPPING_KEYS)}"
            )
        user = _user(d.get("user"), f"{where}.user")
        strs = {
            k: _str(d.get(k), f"{where}.{k}")
            for k in (
                "verb",
                "namespace",
                "apiGroup",
                "apiVersion",
                "resource",
                "subresource",
                "name",
                "path",
            )
        }
        is_res = d.get("isResourceRequest")
        if is_res is None:
            is_res = bool(strs["resource"]) or not strs["path"]
        elif not isinstance(is_res, bool):
            raise RequestError(f"{where}.isResourceRequest: must be true or false, got {is_res!r}")
        verb = strs["verb"] or "get"
        return cls(
            user,
            verb,
            strs["namespace"],
            strs["apiGroup"],
            strs["apiVersion"],
            strs["resource"],
            strs["subresource"],
            strs["name"],
            is_res,
            strs["path"],
        )

    @classmethod
    def from_url(cls, method: str, url: str, user: User | None = None) -> RequestAttributes:
        """Parse ``url`` the way kube-apiserver's RequestInfoFactory does (api prefixes ``api`` and ``apis``).

        ``method`` is an HTTP method (GET, POST, ...) or a kube verb (get, list, create, ...); a verb given
        explicitly is kept, a method is turned into the verb kube-apiserver would derive.
        """
        explicit_verb = method if method in RESOURCE_VERBS else None
        http = _VERB_METHODS.get(method, method.upper())
        parts_url = urlsplit(url)
        path = parts_url.path or "/"
        parts = [p for p in path.strip("/").split("/") if p != ""] if path.strip("/") else []
        non_resource = cls(user, http.lower(), is_resource_request=False, path=path)
        if len(parts) < 3 or parts[0] not in ("api", "apis"):
            return non_resource
        prefix, rest = parts[0], parts[1:]
        group = ""
        if prefix == "apis":
            if len(rest) < 3:
                return non_resource
            group, rest = rest[0], rest[1:]
        version, rest = rest[0], rest[1:]
        if rest and rest[0] in ("watch", "proxy"):
            if len(rest) < 2:  # kube-apiserver: "unable to determine kind and namespace"
                return non_resource
            verb, rest = rest[0], rest[1:]
        else:
            verb = _METHOD_VERBS.get(http, "")
        namespace = ""
        if rest[0] == "namespaces" and len(rest) > 1:
            namespace = rest[1]
            if len(rest) > 2 and rest[2] not in ("status", "finalize"):
                rest = rest[2:]
        resource = rest[0] if rest else ""
        name = rest[1] if len(rest) >= 2 else ""
        sub = rest[2] if len(rest) >= 3 and verb != "proxy" else ""
        query = parse_qs(parts_url.query)
        if not name and verb == "get":
            verb = "watch" if query.get("watch", [""])[0] in ("true", "1") else "list"
            for sel in query.get("fieldSelector", []):
                for term in sel.split(","):
                    if term.startswith("metadata.name="):
                        name = term.split("=", 1)[1]
        if not name and verb == "delete":
            verb = "deletecollection"
        if explicit_verb:
            verb = explicit_verb
        return cls(user, verb, namespace, group, version, resource, sub, name, True, path)

    # ---- presentation -----------------------------------------------------------------------------
    def describe(self) -> str:
        """A one-line description in the probe shorthand, e.g. ``get secrets -n prod as alice``."""
        if self.is_resource_request:
            res = self.resource + (f".{self.api_group}" if self.api_group else "")
            if self.subresource:
                res += f"/{self.subresource}"
            text = f"{self.verb} {res}"
            if self.name:
                text += f" {self.name}"
            text += f" -n {self.namespace}" if self.namespace else " (cluster-wide)"
        else:
            text = f"{self.verb} {self.path or '(empty path)'}"
        if self.user is None:
            return text + " unauthenticated"
        text += f" as {self.user.username}"
        if self.user.groups != default_groups(self.user.username):
            text += f" in {','.join(self.user.groups)}" if self.user.groups else " (no groups)"
        return text

    def to_mapping(self) -> dict[str, Any]:
        return {
            "user": None
            if self.user is None
            else {"username": self.user.username, "groups": list(self.user.groups)},
            "verb": self.verb,
            "namespace": self.namespace,
            "apiGroup": self.api_group,
            "apiVersion": self.api_version,
            "resource": self.resource,
            "subresource": self.subresource,
            "name": self.name,
            "isResourceRequest": self.is_resource_request,
            "path": self.path,
        }


def default_groups(username: str) -> tuple[str, ...]:
    """The groups kube-apiserver's authenticators give a user of that name (what a probe assumes)."""
    if username == "system:anonymous":
        return ("system:unauthenticated",)
    if username.startswith("system:serviceaccount:"):
        ns = username.split(":")[2] if username.count(":") >= 3 else ""
        return ("system:serviceaccounts", f"system:serviceaccounts:{ns}", AUTHENTICATED)
    if username.startswith("system:node:"):
        return ("system:nodes", AUTHENTICATED)
    return (AUTHENTICATED,)


def parse_request(text: str) -> RequestAttributes:
    """The probe shorthand, close to kubectl:

        VERB RESOURCE[.GROUP][/SUBRESOURCE] [NAME] [-n NAMESPACE] [as USER] [in GROUP,GROUP] [unauthenticated]
        VERB /non/resource/path [as USER] ...

    ``deployments.apps``, ``endpointslices.discovery.k8s.io``; no ``-n`` means cluster-scoped (namespace "").
    Without ``in``, the user gets the groups kube-apiserver would give it (system:authenticated, ...).
    """
    words = _request_words(text)
    verb, target = words[0], words[1]
    namespace, name, user = _request_options(text, target, words[2:])
    if target.startswith("/"):
        return RequestAttributes(user, verb, is_resource_request=False, path=target)
    res, _, sub = target.partition("/")
    resource, _, group = res.partition(".")
    if not resource:
        raise RequestError(f"request {text!r}: no resource in {target!r}")
    version = "v1"
    path = resource_path(group, version, namespace, resource, name, sub)
    return RequestAttributes(user, verb, namespace, group, version, resource, sub, name, True, path)


def _request_words(text: str) -> list[str]:
    """The shorthand's words (shell quoting allowed); at least a verb and a target."""
    if "'" in text or '"' in text or "\\" in text:
        try:
            words = shlex.split(text)
        except ValueError as exc:
            raise RequestError(f"request {text!r}: {exc}") from None
    else:  # the common case; shlex is slow and lab probes number in the hundreds
        words = text.split()
    if len(words) < 2:
        raise RequestError(
            f"request {text!r}: write at least a verb and a resource or path, "
            "e.g. 'get secrets -n prod as alice' or 'get /healthz'"
        )
    return words


def _request_options(text: str, target: str, rest: list[str]) -> tuple[str, str, User | None]:
    """(namespace, name, user) from the words after the target: ``-n``, ``as``, ``in``,
    ``unauthenticated`` and the object's name."""
    namespace = name = ""
    username: str | None = "alice"
    groups: tuple[str, ...] | None = None
    i = 0
    while i < len(rest):
        w = rest[i]
        if w in ("-n", "--namespace", "as", "in") and i + 1 >= len(rest):
            raise RequestError(f"request {text!r}: {w!r} needs a value")
        if w in ("-n", "--namespace"):
            namespace = rest[i + 1]
            i += 2
        elif w == "as":
            username = rest[i + 1]
            i += 2
        elif w == "in":
            groups = tuple(g for g in rest[i + 1].split(",") if g)
            i += 2
        elif w == "unauthenticated":
            username = None
            i += 1
        elif not name and not target.startswith("/"):
            name = w
            i += 1
        else:
            raise RequestError(
                f"request {text!r}: unexpected {w!r}; the shape is "
                "'VERB RESOURCE[.GROUP][/SUB] [NAME] [-n NS] [as USER] [in G1,G2]'"
            )
    if username is None:
        return namespace, name, None
    return namespace, name, User(username, groups if groups is not None else default_groups(username))


def resource_path(group: str, version: str, ns: str, resource: str, name: str, sub: str) -> str:
    base = f"/apis/{group}/{version}" if group else f"/api/{version}"
    if ns:
        base += f"/namespaces/{ns}"
    base += f"/{resource}"
    if name:
        base += f"/{name}"
        if sub:
            base += f"/{sub}"
    return base


def _user(raw: Any, where: str) -> User | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise RequestError(f"{where}: must be null (unauthenticated) or a mapping with username and groups")
    unknown = sorted(str(k) for k in raw if k not in ("username", "groups", "uid", "extra"))
    if unknown:
        raise RequestError(f"{where}: unknown key {unknown[0]!r}; allowed keys: username, groups")
    groups = raw.get("groups") or []
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise RequestError(f"{where}.groups: must be a list of strings")
    return User(_str(raw.get("username"), f"{where}.username"), tuple(groups))


def _str(val: Any, where: str) -> str:
    if val is None:
        return ""
    if not isinstance(val, str):
        raise RequestError(f"{where}: must be a string, got {_kind(val)} {val!r}")
    return val


def _kind(val: Any) -> str:
    return {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "null",
    }.get(type(val), type(val).__name__)
