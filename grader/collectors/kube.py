"""The Kubernetes API through the official ``kubernetes`` client, kept at arm's length.

The client is used for what it is good at (kubeconfig and in-cluster config loading, TLS, auth plugins, token
refresh, its REST layer and websocket exec); objects stay plain dicts (``_preload_content=False`` + json):
fast, immune to model churn, identical to what a workspace holds. Every call has a timeout and one retry;
every failure becomes a :class:`KubeError` whose message says what to do.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# kind -> (API path prefix, plural, namespaced). The kinds the labs read or write; others via discovery.
KINDS: dict[str, tuple[str, str, bool]] = {
    "Namespace": ("/api/v1", "namespaces", False),
    "Node": ("/api/v1", "nodes", False),
    "Pod": ("/api/v1", "pods", True),
    "Secret": ("/api/v1", "secrets", True),
    "ConfigMap": ("/api/v1", "configmaps", True),
    "ServiceAccount": ("/api/v1", "serviceaccounts", True),
    "Service": ("/api/v1", "services", True),
    "Event": ("/api/v1", "events", True),
    "PersistentVolumeClaim": ("/api/v1", "persistentvolumeclaims", True),
    "LimitRange": ("/api/v1", "limitranges", True),
    "ResourceQuota": ("/api/v1", "resourcequotas", True),
    "Deployment": ("/apis/apps/v1", "deployments", True),
    "DaemonSet": ("/apis/apps/v1", "daemonsets", True),
    "StatefulSet": ("/apis/apps/v1", "statefulsets", True),
    "ReplicaSet": ("/apis/apps/v1", "replicasets", True),
    "Job": ("/apis/batch/v1", "jobs", True),
    "CronJob": ("/apis/batch/v1", "cronjobs", True),
    "Role": ("/apis/rbac.authorization.k8s.io/v1", "roles", True),
    "RoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "rolebindings", True),
    "ClusterRole": ("/apis/rbac.authorization.k8s.io/v1", "clusterroles", False),
    "ClusterRoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "clusterrolebindings", False),
    "NetworkPolicy": ("/apis/networking.k8s.io/v1", "networkpolicies", True),
    "RuntimeClass": ("/apis/node.k8s.io/v1", "runtimeclasses", False),
    "PodDisruptionBudget": ("/apis/policy/v1", "poddisruptionbudgets", True),
    "ValidatingAdmissionPolicy": (
        "/apis/admissionregistration.k8s.io/v1",
        "validatingadmissionpolicies",
        False,
    ),
}

DEFAULT_TIMEOUT = float(os.environ.get("CKS_TIMEOUT", "15"))
MAX_REPLY_BYTES = int(float(os.environ.get("CKS_MAX_REPLY_MB", "64")) * 1024 * 1024)  # one reply, decoded
FIELD_MANAGER = "cks-kit"
CRICTL_HINT = (
    "on the control-plane node run `sudo crictl ps -a | grep kube-apiserver` and "
    "`sudo crictl logs <container-id>` to see why kube-apiserver is not running; "
    "`cks reset LAB --target ...` restores a working manifest"
)


class KubeError(Exception):
    """``reason``: unreachable, timeout, unauthorized, forbidden, not_found, conflict, invalid, config,
    other."""

    def __init__(self, reason: str, message: str, status: int = 0):
        super().__init__(message)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class KindInfo:
    kind: str
    prefix: str
    plural: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return self.prefix.removeprefix("/apis/").removeprefix("/api/")

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        parts = [self.prefix]
        if self.namespaced and namespace:
            parts.append(f"namespaces/{urllib.parse.quote(namespace, safe='')}")
        parts.append(self.plural)
        if name:
            parts.append(urllib.parse.quote(name, safe=""))
        return "/".join(p.strip("/") if i else p.rstrip("/") for i, p in enumerate(parts))


def kind_info(kind: str) -> KindInfo | None:
    if kind in KINDS:
        prefix, plural, namespaced = KINDS[kind]
        return KindInfo(kind, prefix, plural, namespaced)
    return None


# ---- configuration --------------------------------------------------------------------------------------


def load_configuration(
    *,
    kubeconfig: str | None = None,
    context: str | None = None,
    in_cluster: bool = False,
    config_dict: dict[str, Any] | None = None,
    default_context: str | None = None,
    source: str | None = None,
):
    """A ``kubernetes.client.Configuration`` for the chosen identity, or KubeError('config', what to do)."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    cfg = client.Configuration()
    if in_cluster:
        try:
            config.load_incluster_config(client_configuration=cfg)
        except ConfigException as exc:
            raise KubeError(
                "config",
                f"--in-cluster needs to run inside a Pod with a ServiceAccount token "
                f"({exc}); outside a cluster use --kubeconfig or --target",
            ) from None
        return cfg
    if config_dict is not None:
        where = source or "the node's kubeconfig"
        ctx = context or default_context
        _check_context(config_dict, ctx, where)
        try:
            config.load_kube_config_from_dict(
                config_dict, context=ctx, client_configuration=cfg, persist_config=False
            )
        except (ConfigException, ValueError, TypeError, KeyError) as exc:
            raise KubeError("config", f"{where} cannot be used: {exc}") from None
        return cfg
    path = (
        kubeconfig
        or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
        or str(Path.home() / ".kube" / "config")
    )
    where = f"kubeconfig {path}"
    if Path(path).exists() and not Path(path).is_file():
        raise KubeError(
            "config",
            f"{where} is not a regular file (a directory, a pipe or a device); pass --kubeconfig FILE",
        )
    if not Path(path).is_file():
        raise KubeError(
            "config",
            f"{where} does not exist: pass --kubeconfig FILE, set KUBECONFIG, or for kind "
            "run `kind export kubeconfig --name NAME`",
        )
    from grader import safeio, safeyaml

    try:
        data = safeyaml.load_one(safeio.read_bytes(path, max_bytes=4 * 1024 * 1024, what=where))
    except (safeio.ReadRefused, safeyaml.YamlProblem) as exc:
        raise KubeError("config", f"{where} cannot be read: {exc}") from None
    if not isinstance(data, dict):
        raise KubeError("config", f"{where} is not a kubeconfig (no contexts)")
    ctx = context or default_context  # a kind target means its own context, whatever the current one is
    _check_context(data, ctx, where)
    try:
        config.load_kube_config(config_file=path, context=ctx, client_configuration=cfg, persist_config=False)
    except (ConfigException, ValueError, TypeError, KeyError) as exc:
        raise KubeError("config", f"{where} cannot be used: {exc}") from None
    return cfg


def _check_context(data: dict[str, Any], ctx: str | None, where: str) -> None:
    names = [c.get("name") for c in data.get("contexts") or [] if isinstance(c, dict)]
    if ctx is None:
        if not data.get("current-context"):
            choice = f" (contexts: {', '.join(map(str, names))})" if names else " (it has no contexts at all)"
            raise KubeError(
                "config",
                f"{where} has no current context{choice}: pass --context NAME or run "
                "`kubectl config use-context NAME`",
            )
        ctx = data["current-context"]
    if ctx not in names:
        listed = ", ".join(map(str, names)) or "none"
        raise KubeError(
            "config",
            f"{where} has no context {ctx!r} (contexts: {listed}); pass --context NAME"
            + (" or run `kind export kubeconfig --name NAME`" if str(ctx).startswith("kind-") else ""),
        )


# ---- the API --------------------------------------------------------------------------------------------


class KubeApi:
    """Raw, dict-in dict-out access to one API server with timeouts and one retry per call."""

    def __init__(
        self,
        configuration,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = 1,
        identity: str = "",
        deadline: float | None = None,
    ):
        from kubernetes import client

        configuration.retries = 0  # urllib3 must not retry behind our back: we retry once, visibly
        self.configuration = configuration
        self.api_client = client.ApiClient(configuration)
        self.api_client.user_agent = "cks-kit-grader"
        self.timeout = timeout
        self.retries = retries
        self.identity = identity
        self.deadline = deadline  # time.monotonic() after which no new call starts
        self._discovered: dict[str, KindInfo] = {}

    @property
    def server(self) -> str:
        return str(self.configuration.host)

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing must never raise
            self.api_client.close()

    # -- HTTP --
    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        content_type: str | None = None,
        timeout: float | None = None,
        retry: bool = True,
    ) -> Any:
        """JSON-decoded response body; KubeError on any failure (after one retry for transient ones).

        Each attempt has an overall time limit (``timeout``, and never past the collection's deadline), not
        only a per-read one: a server that drips a byte at a time is cut off. Replies are capped at
        MAX_REPLY_BYTES and must be a JSON object (a non-JSON body, e.g. /readyz's "ok", is {"raw": text})."""
        attempts = 1 + (self.retries if retry else 0)
        last: KubeError | None = None
        for attempt in range(attempts):
            limit = timeout or self.timeout
            if self.deadline is not None:
                left = self.deadline - time.monotonic()
                if left <= 0:
                    raise KubeError(
                        "timeout",
                        f"{method} {path} not tried: collection ran out of time "
                        "(raise CKS_DEADLINE if the cluster is slow)",
                    )
                limit = min(limit, left)
            try:
                status, data = self._send_within(method, path, query, body, content_type, limit)
            except KubeError as exc:
                last = exc
                if exc.reason in {"unreachable", "timeout"} and attempt + 1 < attempts:
                    time.sleep(0.3)
                    continue
                raise
            if 200 <= status < 300:
                if not data:
                    return {}
                try:
                    decoded = json.loads(data)
                except ValueError:
                    return {"raw": data.decode("utf-8", "replace")}
                except RecursionError:
                    raise KubeError(
                        "invalid_reply",
                        f"the API server's reply to {method} {path} is nested too deeply to read",
                    ) from None
                if not isinstance(decoded, dict):
                    raise KubeError(
                        "invalid_reply",
                        f"the API server's reply to {method} {path} is a JSON "
                        f"{type(decoded).__name__}, not an object",
                    )
                return decoded
            err = self._http_error(method, path, status, data)
            last = err
            if status in {429, 500, 502, 503, 504} and attempt + 1 < attempts:
                time.sleep(0.5)
                continue
            raise err
        assert last is not None
        raise last

    def _send_within(
        self,
        method: str,
        path: str,
        query: dict[str, Any] | None,
        body: Any,
        content_type: str | None,
        limit: float,
    ) -> tuple[int, bytes]:
        """``_send`` in a worker thread, given up after ``limit`` seconds whatever the server does."""
        box: dict[str, Any] = {}

        def work() -> None:
            try:
                box["ok"] = self._send(method, path, query, body, content_type, limit)
            except BaseException as exc:  # handed to the caller's thread
                box["err"] = exc

        worker = threading.Thread(target=work, name="cks-kube-request", daemon=True)
        worker.start()
        worker.join(limit)
        if worker.is_alive():  # abandoned: a daemon thread, its socket is dropped with the pool
            with contextlib.suppress(Exception):
                self.api_client.rest_client.pool_manager.clear()
            raise KubeError(
                "timeout",
                f"the API server at {self.server} did not answer {method} {path} in full "
                f"within {limit:g}s (raise CKS_TIMEOUT or CKS_DEADLINE if it is only slow)",
            )
        if "err" in box:
            raise box["err"]
        return box["ok"]

    def _send(
        self,
        method: str,
        path: str,
        query: dict[str, Any] | None,
        body: Any,
        content_type: str | None,
        timeout: float,
    ) -> tuple[int, bytes]:
        import urllib3
        from kubernetes.client.exceptions import ApiException

        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        if isinstance(body, dict | list) and content_type and "json" not in content_type:
            body = json.dumps(body).encode()  # JSON is YAML: apply-patch+yaml takes it as is
        query_list = [(k, v) for k, v in (query or {}).items() if v is not None]
        to = (min(timeout, 10.0), timeout)
        try:
            if hasattr(self.api_client, "param_serialize"):  # kubernetes >= 31 (new generator)
                req = self.api_client.param_serialize(
                    method,
                    path,
                    query_params=query_list,
                    header_params=headers,
                    body=body,
                    auth_settings=["BearerToken"],
                )
                resp = self.api_client.call_api(*req, _request_timeout=to)
                return int(resp.status), _read_capped(resp.response, method, path, self.server)
            resp = self.api_client.call_api(  # kubernetes <= 30 (python-legacy generator)
                path,
                method,
                query_params=query_list,
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
                _preload_content=False,
                _request_timeout=to,
            )
            r = resp[0] if isinstance(resp, tuple) else resp
            return int(r.status), _read_capped(r, method, path, self.server)
        except KubeError:
            raise
        except ApiException as exc:
            if exc.status:
                return int(exc.status), (exc.body.encode() if isinstance(exc.body, str) else exc.body or b"")[
                    :65536
                ]
            raise KubeError(
                "unreachable", f"cannot talk to the API server at {self.server}: {exc.reason}"
            ) from None
        except urllib3.exceptions.NewConnectionError as exc:  # (a ConnectTimeoutError subclass in urllib3)
            raise KubeError(
                "unreachable", f"cannot reach the API server at {self.server} ({_short(exc)})"
            ) from None
        except (urllib3.exceptions.TimeoutError, TimeoutError) as exc:
            raise KubeError(
                "timeout",
                f"the API server at {self.server} did not answer {method} {path} within "
                f"{timeout:g}s ({type(exc).__name__})",
            ) from None
        except urllib3.exceptions.MaxRetryError as exc:
            inner = exc.reason
            if isinstance(inner, urllib3.exceptions.TimeoutError) and not isinstance(
                inner, urllib3.exceptions.NewConnectionError
            ):
                raise KubeError(
                    "timeout", f"the API server at {self.server} did not answer within {timeout:g}s"
                ) from None
            raise KubeError(
                "unreachable", f"cannot reach the API server at {self.server} ({_short(inner)})"
            ) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise KubeError(
                "unreachable", f"cannot reach the API server at {self.server} ({_short(exc)})"
            ) from None

    def _http_error(self, method: str, path: str, status: int, data: bytes) -> KubeError:
        message = ""
        try:
            message = str(json.loads(data).get("message", ""))
        except (ValueError, AttributeError):
            message = data[:200].decode("utf-8", "replace")
        who = f" as {self.identity}" if self.identity else ""
        if status == 401:
            return KubeError(
                "unauthorized",
                f"the API server at {self.server} rejected the credentials{who} "
                "(401 Unauthorized: expired or wrong token/certificate); refresh the "
                "kubeconfig (kind: `kind export kubeconfig --name NAME`; kubeadm: copy "
                "/etc/kubernetes/admin.conf again)",
                401,
            )
        if status == 403:
            return KubeError(
                "forbidden",
                f"{method} {path} was denied{who} (403 Forbidden: {message}); grant the "
                "grader's identity read access with `kubectl apply -f deploy/rbac.yaml` "
                "or grade with an admin kubeconfig",
                403,
            )
        if status == 404:
            return KubeError("not_found", f"{path} not found (404): {message}", 404)
        if status == 409:
            return KubeError("conflict", f"{method} {path}: conflict (409): {message}", 409)
        if status in {400, 422}:
            return KubeError(
                "invalid", f"{method} {path} was refused as invalid ({status}): {message}", status
            )
        if status == 503 or status == 500:
            return KubeError(
                "unreachable",
                f"the API server at {self.server} is not healthy ({status}: {message}); " + CRICTL_HINT,
                status,
            )
        return KubeError("other", f"{method} {path} failed ({status}): {message}", status)

    # -- objects --
    def info(self, kind: str) -> KindInfo:
        found = kind_info(kind) or self._discovered.get(kind)
        if found:
            return found
        found = self._discover(kind)
        if not found:
            raise KubeError("not_found", f"the API server serves no kind {kind!r} (is its API enabled?)")
        return found

    def _discover(self, kind: str) -> KindInfo | None:
        groups = self.request("GET", "/apis")
        for group in _dicts(groups.get("groups")):
            preferred = group.get("preferredVersion")
            version = preferred.get("groupVersion") if isinstance(preferred, dict) else None
            if not isinstance(version, str) or not version:
                continue
            try:
                resources = self.request("GET", f"/apis/{version}")
            except KubeError:
                continue
            for res in _dicts(resources.get("resources")):
                plural = res.get("name")
                if res.get("kind") == kind and isinstance(plural, str) and plural and "/" not in plural:
                    info = KindInfo(kind, f"/apis/{version}", plural, bool(res.get("namespaced")))
                    self._discovered[kind] = info
                    return info
        return None

    def list(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """All objects of ``kind`` (one list call), each with kind and apiVersion filled in, no
        managedFields."""
        info = self.info(kind)
        data = self.request("GET", info.path(namespace))
        items = data.get("items") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise KubeError("invalid_reply", f"listing {kind}: the API server's reply has no items list")
        return [_clean(_object_or_error(item, info, f"listing {kind}"), info) for item in items]

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        info = self.info(kind)
        try:
            return _clean(
                _object_or_error(
                    self.request("GET", info.path(namespace, name)), info, f"GET {info.path(namespace, name)}"
                ),
                info,
            )
        except KubeError as exc:
            if exc.reason == "not_found":
                return None
            raise

    def apply(self, obj: dict[str, Any], *, force: bool = True) -> dict[str, Any]:
        """Server-side apply (field manager cks-kit), creating or updating the object."""
        kind = str(obj.get("kind", ""))
        info = self.info(kind)
        meta = obj.get("metadata") or {}
        ns = meta.get("namespace") or ("default" if info.namespaced else None)
        body = dict(obj)
        body.setdefault("apiVersion", info.api_version)
        if info.namespaced:
            body["metadata"] = {**meta, "namespace": ns}
        query = {"fieldManager": FIELD_MANAGER, "force": "true" if force else None}
        return self.request(
            "PATCH",
            info.path(ns, meta.get("name")),
            query=query,
            body=body,
            content_type="application/apply-patch+yaml",
        )

    def patch(self, kind: str, namespace: str | None, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        info = self.info(kind)
        return self.request(
            "PATCH", info.path(namespace, name), body=patch, content_type="application/merge-patch+json"
        )

    def delete(self, kind: str, namespace: str | None, name: str, *, wait: float = 0) -> bool:
        """Delete; False if it was already gone. With ``wait``, poll until it is gone (or the time is up)."""
        info = self.info(kind)
        try:
            self.request("DELETE", info.path(namespace, name), query={"propagationPolicy": "Background"})
        except KubeError as exc:
            if exc.reason == "not_found":
                return False
            raise
        end = time.monotonic() + wait
        while wait and time.monotonic() < end:
            if self.get(kind, namespace, name) is None:
                break
            time.sleep(0.5)
        return True

    def readyz(self) -> dict[str, Any]:
        """``/readyz?verbose``: {ok, status, body} - never raises for an unhealthy answer."""
        try:
            self.request("GET", "/readyz", query={"verbose": "true"}, retry=False)
            return {"ok": True, "status": 200, "body": ""}
        except KubeError as exc:
            return {"ok": False, "status": exc.status, "reason": exc.reason, "body": str(exc)[:2000]}

    def exec(
        self,
        namespace: str,
        pod: str,
        command: list[str],
        *,
        container: str | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Run ``command`` in a pod (websocket exec): {rc, stdout, stderr}; KubeError if exec is refused."""
        from kubernetes import client
        from kubernetes.stream import stream

        core = client.CoreV1Api(self.api_client)
        kwargs: dict[str, Any] = {
            "command": command,
            "stderr": True,
            "stdin": False,
            "stdout": True,
            "tty": False,
            "_preload_content": False,
            "_request_timeout": timeout or self.timeout,
        }
        if container:
            kwargs["container"] = container
        try:
            ws = stream(core.connect_get_namespaced_pod_exec, pod, namespace, **kwargs)
        except (
            Exception
        ) as exc:  # ApiException or a websocket handshake error, depending on the client version
            status = int(getattr(exc, "status", 0) or getattr(exc, "status_code", 0) or 0)
            if not status:
                m = re.search(r"Handshake status (\d{3})", str(exc))
                status = int(m.group(1)) if m else 0
            if status == 403:
                raise KubeError(
                    "forbidden",
                    f"exec into {namespace}/{pod} was refused (403 Forbidden): the grader's "
                    "identity needs `create` on pods/exec in the lab namespace "
                    "(deploy/rbac.yaml grants it to the probe role)",
                    403,
                ) from None
            if status == 401:
                raise KubeError(
                    "unauthorized", f"exec into {namespace}/{pod}: credentials rejected (401)", 401
                ) from None
            if status == 404:
                raise KubeError("not_found", f"exec into {namespace}/{pod}: no such pod (404)", 404) from None
            raise KubeError("other", f"exec into {namespace}/{pod} failed: {_short(exc)}", status) from None
        end = time.monotonic() + (timeout or self.timeout)
        out, err = [], []
        try:
            while ws.is_open() and time.monotonic() < end:
                ws.update(timeout=min(1.0, max(0.05, end - time.monotonic())))
                if ws.peek_stdout():
                    out.append(ws.read_stdout())
                if ws.peek_stderr():
                    err.append(ws.read_stderr())
            timed_out = ws.is_open()
            rc = ws.returncode if not timed_out else None
        finally:
            ws.close()
        if timed_out:
            raise KubeError(
                "timeout", f"exec into {namespace}/{pod} did not finish within {timeout or self.timeout:g}s"
            )
        return {"rc": rc, "stdout": "".join(out)[-4000:], "stderr": "".join(err)[-4000:]}


def _read_capped(raw: Any, method: str, path: str, server: str) -> bytes:
    """A urllib3 response body, at most MAX_REPLY_BYTES (a larger reply is refused, not read whole)."""
    length = raw.headers.get("Content-Length") if getattr(raw, "headers", None) is not None else None
    if length and str(length).isdigit() and int(length) > MAX_REPLY_BYTES:
        with contextlib.suppress(Exception):
            raw.close()
        raise KubeError(
            "too_large",
            f"the API server at {server} answered {method} {path} with "
            f"{int(length) / 1048576:.0f} MB, more than the {MAX_REPLY_BYTES // 1048576} MB "
            "the grader reads (raise CKS_MAX_REPLY_MB if the cluster is that big)",
        )
    chunks: list[bytes] = []
    total = 0
    try:
        while True:
            block = raw.read(1 << 16)
            if not block:
                break
            total += len(block)
            if total > MAX_REPLY_BYTES:
                raise KubeError(
                    "too_large",
                    f"the API server at {server} answered {method} {path} with more "
                    f"than the {MAX_REPLY_BYTES // 1048576} MB the grader reads (raise "
                    "CKS_MAX_REPLY_MB if the cluster is that big)",
                )
            chunks.append(block)
    finally:
        with contextlib.suppress(Exception):
            raw.release_conn() if total <= MAX_REPLY_BYTES else raw.close()
    return b"".join(chunks)


def _object_or_error(obj: Any, info: KindInfo, what: str) -> dict[str, Any]:
    """An API object as the API serves it (a mapping with metadata.name), or KubeError: a reply of the
    wrong shape is an error on the tasks that need it, never a KeyError further on."""
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
        raise KubeError(
            "invalid_reply", f"{what}: the API server's reply is not a {info.kind} object (no metadata.name)"
        )
    if obj.get("kind") not in (None, info.kind):
        raise KubeError(
            "invalid_reply", f"{what}: the API server answered with a {obj.get('kind')}, not a {info.kind}"
        )
    return obj


def _clean(obj: dict[str, Any], info: KindInfo) -> dict[str, Any]:
    obj.setdefault("kind", info.kind)
    obj.setdefault("apiVersion", info.api_version)
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
    return obj


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _short(exc: Any) -> str:
    text = str(exc)
    for marker in (
        "Connection refused",
        "Name or service not known",
        "timed out",
        "No route to host",
        "certificate verify failed",
        "Connection reset",
    ):
        if marker in text:
            return marker
    return text[:200]
