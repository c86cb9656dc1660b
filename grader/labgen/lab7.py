"""lab7: a break-in to investigate. Generates, from a seed, a day-in-the-life audit log of a small cluster
(~34,000 events, ~17,000 requests: kubelets, controllers, kube-proxy, humans, CI, failed logins, watches) in
which one ServiceAccount reads some of the Secrets of one namespace, plus that namespace's Secrets,
ServiceAccounts, Roles and RoleBindings as API objects.

The story is the same shape for every seed, so that the answer always has the same parts (and the
solution and fixtures can name them with placeholders); names, times, keys, uids and the order of the
decoys change with the seed. Seven Secrets, in plan order:

  read_1   existed when the intruder listed the namespace's Secrets, and was also fetched by name
  read_2   existed at the list (read only through the list)
  read_3   existed at the list (read only through the list)
  read_4   created after the list; the intruder fetched it by name later (get, or a watch on its name)
  unread_1 created after the list; read by CI and the kubelet, never by the intruder
  unread_2 created after the list; the intruder asked for it *before* it existed (404: nothing read)
  unread_3 created after the list; read by a look-alike ServiceAccount (<sa>-v2), not the intruder

The log is rotated like kube-apiserver does: ``audit-<time>.log.gz`` (the list happens there) and
``audit.log`` (the later get). The grader never trusts this plan for the answer: checks recompute the
answer from the pristine log with the audit log engine, and a test asserts the two agree.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import Any

import orjson
import yaml

from grader import versions

# lab7's own folder: lab2's kube-apiserver writes /var/log/kubernetes/audit
LOG_DIR = "/var/log/kubernetes/audit-lab7"
NODE = "controlplane"
K8S = "v" + versions.kubernetes()  # the cluster components speak with the pinned release
GIT = "kubernetes/39683505b630ff2121012f3c5b16215a1449d5ed"
WINDOW = 9000.0  # seconds of traffic (2.5 hours)

SECRET_POOL: list[tuple[str, str, tuple[str, ...]]] = [
    ("db-credentials", "Opaque", ("username", "password")),
    ("stripe-api-key", "Opaque", ("api-key",)),
    ("smtp-password", "Opaque", ("username", "password")),
    ("jwt-signing-key", "Opaque", ("private.pem",)),
    ("registry-pull", "kubernetes.io/dockerconfigjson", (".dockerconfigjson",)),
    ("tls-frontend", "kubernetes.io/tls", ("tls.crt", "tls.key")),
    ("s3-backup-keys", "Opaque", ("access-key-id", "secret-access-key")),
    ("redis-auth", "Opaque", ("password",)),
    ("oauth-client", "Opaque", ("client-id", "client-secret")),
    ("webhook-hmac", "Opaque", ("hmac-key",)),
    ("ldap-bind", "Opaque", ("bind-dn", "bind-password")),
    ("sentry-dsn", "Opaque", ("dsn",)),
]
SLOTS = ("read_1", "read_2", "read_3", "read_4", "unread_1", "unread_2", "unread_3")


@dataclass
class SecretPlan:
    slot: str
    name: str
    type: str
    keys: tuple[str, ...]
    created: datetime
    uid: str
    resource_version: int
    data: dict[str, str] = field(default_factory=dict)


@dataclass
class Plan:
    seed: str | None
    ns: str
    sa: str
    role: str
    base: datetime
    list_at: datetime
    secrets: list[SecretPlan]
    read_4_by_watch: bool
    attacker_ip: str
    rng_state: Any = None

    @property
    def attacker(self) -> str:
        return f"system:serviceaccount:{self.ns}:{self.sa}"

    def slot(self, slot: str) -> SecretPlan:
        return next(s for s in self.secrets if s.slot == slot)

    @property
    def read(self) -> list[str]:
        return sorted(s.name for s in self.secrets if s.slot.startswith("read_"))


def _rng(seed: str | None, values: dict[str, Any]) -> random.Random:
    key = f"lab7\0{seed if seed is not None else '<default>'}\0{values.get('ns')}\0{values.get('sa')}"
    return random.Random(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big"))


def _uid(rng: random.Random) -> str:
    return _uuid4(rng.getrandbits(128))


def plan(seed: str | None, values: dict[str, Any]) -> Plan:
    rng = _rng(seed, values)
    ns, sa = str(values.get("ns", "payments")), str(values.get("sa", "report-runner"))
    base = datetime(2026, 3, 14, 7, 30, tzinfo=UTC) + timedelta(
        days=rng.randrange(0, 60), minutes=rng.randrange(0, 240)
    )
    chosen = rng.sample(SECRET_POOL, len(SLOTS))
    list_at = base + timedelta(seconds=WINDOW * rng.uniform(0.28, 0.36))
    after = {  # seconds into the window when the later Secrets are created
        "read_4": 0.46,
        "unread_1": 0.50,
        "unread_2": 0.58,
        "unread_3": 0.42,
    }
    secrets = []
    rv = 100000 + rng.randrange(0, 50000)
    for slot, (name, typ, keys) in zip(SLOTS, chosen, strict=True):
        if slot in after:
            created = base + timedelta(seconds=WINDOW * (after[slot] + rng.uniform(0.0, 0.03)))
        else:
            created = base - timedelta(days=rng.randrange(3, 200), seconds=rng.randrange(0, 86400))
        created = created.replace(microsecond=0)
        rv += rng.randrange(50, 5000)
        data = {k: base64.b64encode(_secret_value(rng, name, k).encode()).decode() for k in keys}
        secrets.append(SecretPlan(slot, name, typ, keys, created, _uid(rng), rv, data))
    return Plan(
        seed,
        ns,
        sa,
        sa,
        base,
        list_at,
        secrets,
        rng.random() < 0.5,
        f"10.244.{rng.randrange(1, 4)}.{rng.randrange(100, 250)}",
    )


def _secret_value(rng: random.Random, name: str, key: str) -> str:
    if key == ".dockerconfigjson":
        auth = base64.b64encode(f"robot:{rng.getrandbits(64):x}".encode()).decode()
        return orjson.dumps({"auths": {"registry.example.com": {"auth": auth}}}).decode()
    if key in ("tls.crt", "tls.key", "private.pem"):
        kind = "CERTIFICATE" if key == "tls.crt" else "PRIVATE KEY"
        body = base64.b64encode(rng.randbytes(48)).decode()
        return f"-----BEGIN {kind}-----\n{body}\n-----END {kind}-----\n"
    if key in ("username", "bind-dn", "client-id", "access-key-id"):
        return f"{name.split('-')[0]}-{rng.getrandbits(24):06x}"
    return base64.b64encode(rng.randbytes(18)).decode()


def derive(seed: str | None, values: dict[str, Any]) -> dict[str, Any]:
    """Answer-carrying values for checks, the solution and fixtures (placeholders ``{{ read_1 }}``...)."""
    p = plan(seed, values)
    out: dict[str, Any] = {
        "attacker": p.attacker,
        "role": p.role,
        "read_secrets": ",".join(p.read),
        "read_secrets_lines": "\n".join(p.read),
        "got_secrets_lines": "\n".join(sorted([p.slot("read_1").name, p.slot("read_4").name])),
    }
    for s in p.secrets:
        out[s.slot] = s.name
        out[f"uid_{s.slot}"] = s.uid
        out[f"type_{s.slot}"] = s.type
        out[f"created_{s.slot}"] = _ts(s.created, micro=False)
        out[f"data_{s.slot}"] = orjson.dumps(s.data).decode()
        # the data a careful learner would write: same keys, new values (JSON is valid YAML flow style)
        out[f"newdata_{s.slot}"] = orjson.dumps(
            {k: base64.b64encode(_rotated(s, k).encode()).decode() for k in s.keys}
        ).decode()
    return out


def _rotated(s: SecretPlan, key: str) -> str:
    if key == ".dockerconfigjson":
        return '{"auths":{"registry.example.com":{"auth":"cm9ib3Q6cm90YXRlZA=="}}}'
    if key in ("tls.crt", "tls.key"):
        label = "CERTIFICATE" if key == "tls.crt" else "PRIVATE KEY"
        return f"-----BEGIN {label}-----\nrotated\n-----END-----\n"
    return f"rotated-{s.name}-{key}"


def _ts(dt: datetime, micro: bool = True) -> str:
    """RFC 3339 UTC as kube-apiserver writes it (microseconds). The log itself uses LogBuilder.stamp."""
    sec = dt.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{sec}.{dt.microsecond:06d}Z" if micro else f"{sec}Z"


# ---- the log --------------------------------------------------------------------------------------------
#
# Speed matters here: the grader rebuilds a learner's starting state to recompute the answer, so a class
# regrade runs this once per lab7 learner (~120 ms for the log, was ~550 ms with a dict + orjson.dumps +
# datetime arithmetic per line). The log is built as bytes: each actor's ``user`` / ``sourceIPs`` /
# ``userAgent`` part is serialised once, each request's constant part once for all its stage lines, times
# are integer microseconds from ``base`` (one isoformat per second), and each file is joined from the
# pieces in one go. The text is byte for byte what serialising each event dict with orjson gives (same key
# order; tests/labs/lab7/test_lab7_log_format.py) and the same random draws in the same order, so a seed
# gives the same log as before the rewrite.

_US = 1_000_000
_UUID_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_UUID_SET = (0x8000 << 48) | (4 << 76)


def _uuid4(bits: int) -> str:
    """``str(uuid.UUID(int=bits, version=4))`` without building the object (17,000 calls per log)."""
    h = "%032x" % ((bits & _UUID_CLEAR) | _UUID_SET)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _offset_us(seconds: float) -> int:
    """``timedelta(seconds=seconds)`` in microseconds, rounded the same way (half to even)."""
    frac, whole = math.modf(seconds)
    return int(whole) * _US + round(frac * _US)


@dataclass
class Actor:
    username: str
    groups: tuple[str, ...]
    ip: str
    ua: str
    uid: str = ""
    extra: dict[str, list[str]] | None = None
    _json: bytes | None = field(default=None, init=False, repr=False, compare=False)

    def user(self) -> dict[str, Any]:
        u: dict[str, Any] = {"username": self.username}
        if self.uid:
            u["uid"] = self.uid
        u["groups"] = list(self.groups)
        if self.extra:
            u["extra"] = self.extra
        return u

    def who_json(self, authenticated: bool = True) -> bytes:
        """``,"user":{...},"sourceIPs":[...][,"userAgent":...]`` as in an event (cached when
        authenticated)."""
        if authenticated and self._json is not None:
            return self._json
        out = (
            b',"user":'
            + (orjson.dumps(self.user()) if authenticated else b"{}")
            + b',"sourceIPs":['
            + orjson.dumps(self.ip)
            + b"]"
            + (b',"userAgent":' + orjson.dumps(self.ua) if self.ua else b"")
        )
        if authenticated:
            self._json = out
        return out


_NO_ACTOR = b',"user":{},"sourceIPs":["10.0.0.1"]'
_dumps = orjson.dumps
_FAILED_AUTHN = (
    b',"responseStatus":{"metadata":{},"message":"Authentication failed, attempted: bearer","code":401}'
)


def _sa(ns: str, name: str, ip: str, ua: str, rng: random.Random) -> Actor:
    return Actor(
        f"system:serviceaccount:{ns}:{name}",
        ("system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"),
        ip,
        ua,
        _uid(rng),
    )


def _kcm_ua(controller: str) -> str:
    return f"kube-controller-manager/{K8S} (linux/amd64) {GIT}/system:serviceaccount:kube-system:{controller}"


Line = tuple[bytes, ...]  # the pieces of one JSON line; joined once, for the whole file (one allocation)


class LogBuilder:
    """Collects events as (stage time in microseconds from ``base``, line pieces); gives them in time
    order."""

    def __init__(self, rng: random.Random, base: datetime):
        if base.microsecond or base.utcoffset():
            raise ValueError("the log's base time must be a whole second in UTC")
        self.rng = rng
        self.base = base
        self.events: list[tuple[int, Line]] = []
        # isoformat() of a naive whole second: no offset, no micro
        self._naive_base = base.replace(tzinfo=None)
        self._seconds: dict[int, bytes] = {}
        self._annotations: dict[tuple[str, str], bytes] = {}
        self._status: dict[int, bytes] = {}

    def stamp(self, us: int) -> bytes:
        """The RFC 3339 time ``us`` microseconds after ``base``, as kube-apiserver writes it."""
        sec, micro = divmod(us, _US)
        text = self._seconds.get(sec)
        if text is None:
            text = self._seconds[sec] = (self._naive_base + timedelta(seconds=sec)).isoformat().encode()
        return b"%s.%06dZ" % (text, micro)

    def request(
        self,
        t: float,
        actor: Actor | None,
        verb: str,
        uri: str,
        ref: dict[str, Any] | None,
        code: int,
        *,
        long_running: float = 0.0,
        reason: str = "",
        level: str = "Metadata",
        failed_authn: bool = False,
        message: str = "",
    ) -> None:
        """One request: RequestReceived + (ResponseStarted for watches/exec) + ResponseComplete lines."""
        rng = self.rng
        aid = _uuid4(rng.getrandbits(128))
        recv = _offset_us(t)
        head = b'{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"%s","auditID":"%s","stage":"' % (
            level.encode(),
            aid.encode(),
        )
        who = actor.who_json(not failed_authn) if actor else _NO_ACTOR
        body = (
            b'","requestURI":'
            + _dumps(uri)
            + b',"verb":'
            + _dumps(verb)
            + who
            + (b',"objectRef":' + _dumps(ref) if ref is not None else b"")
        )
        stamp = self.stamp
        recv_at = stamp(recv)
        received = b',"requestReceivedTimestamp":"' + recv_at + b'","stageTimestamp":"'
        add = self.events.append
        if failed_authn:
            at = recv + rng.randrange(80, 600)
            add((at, (head, b"ResponseStarted", body, _FAILED_AUTHN, received, stamp(at), b'"}\n')))
            return
        add((recv, (head, b"RequestReceived", body, received, recv_at, b'"}\n')))
        status = self._status.get(code) if code < 400 else None
        if status is None:
            status = self._response_status(code, ref, message)
        decision = "forbid" if code == 403 else "allow"
        ann = self._annotations.get((decision, reason))
        if ann is None:
            ann = self._annotations[(decision, reason)] = (
                b'","annotations":'
                + _dumps({"authorization.k8s.io/decision": decision, "authorization.k8s.io/reason": reason})
                + b"}\n"
            )
        if long_running:
            started = recv + rng.randrange(900, 4000)
            add((started, (head, b"ResponseStarted", body, status, received, stamp(started), ann)))
            done = started + _offset_us(long_running)
        else:
            done = recv + rng.randrange(700, 25000)
        add((done, (head, b"ResponseComplete", body, status, received, stamp(done), ann)))

    def _response_status(self, code: int, ref: dict[str, Any] | None, message: str) -> bytes:
        if code < 400:  # the same for every request with this code
            out = self._status[code] = b',"responseStatus":{"metadata":{},"code":%d}' % code
            return out
        st: dict[str, Any] = {
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": {403: "Forbidden", 404: "NotFound", 409: "AlreadyExists", 422: "Invalid"}.get(
                code, "Unknown"
            ),
        }
        if ref is not None:
            st["details"] = {"name": ref.get("name", ""), "kind": ref.get("resource", "")}
            if not st["details"]["name"]:
                del st["details"]["name"]
        st["code"] = code
        return b',"responseStatus":' + _dumps(st)

    def sorted_events(self) -> list[tuple[int, Line]]:
        """(microseconds from base, line pieces) by stage time; the sort is stable: ties keep the request
        order."""
        return sorted(self.events, key=itemgetter(0))


def join_lines(events: list[tuple[int, Line]]) -> bytes:
    """The JSON-lines text of ``events``."""
    return b"".join(chain.from_iterable(line for _, line in events))


def object_ref(
    resource: str,
    ns: str | None,
    name: str | None,
    group: str = "",
    version: str = "v1",
    sub: str | None = None,
) -> dict[str, Any]:
    """An event's objectRef, keys in the order kube-apiserver writes them (Go's ObjectReference)."""
    r: dict[str, Any] = {"resource": resource}
    if ns:
        r["namespace"] = ns
    if name:
        r["name"] = name
    if group:
        r["apiGroup"] = group
    r["apiVersion"] = version
    if sub:
        r["subresource"] = sub
    return r


def request_uri(
    resource: str,
    ns: str | None,
    name: str | None,
    group: str = "",
    version: str = "v1",
    sub: str | None = None,
    query: str = "",
) -> str:
    """The requestURI of a request for ``resource`` (a collection when ``name`` is None)."""
    base = f"/apis/{group}/{version}" if group else "/api/v1"
    path = (
        base
        + (f"/namespaces/{ns}" if ns else "")
        + f"/{resource}"
        + (f"/{name}" if name else "")
        + (f"/{sub}" if sub else "")
    )
    return path + (f"?{query}" if query else "")


_NODES = (
    ("cp-1", "10.0.0.10"),
    ("worker-1", "10.0.0.11"),
    ("worker-2", "10.0.0.12"),
    ("worker-3", "10.0.0.13"),
)
_APP_NODE = "worker-2"
_NODE_AUTH = '""'  # Node authorizer: empty reason
_CONTROLLERS = (
    "replicaset-controller",
    "deployment-controller",
    "endpointslice-controller",
    "endpoint-controller",
    "generic-garbage-collector",
    "namespace-controller",
    "job-controller",
    "cronjob-controller",
)
_KCM_REASON = (
    'RBAC: allowed by ClusterRoleBinding "system:kube-controller-manager" of ClusterRole '
    '"system:kube-controller-manager" to User "system:kube-controller-manager"'
)
_CI_REASON = (
    'RBAC: allowed by ClusterRoleBinding "ci-deployer" of ClusterRole "edit" to ServiceAccount "deployer/ci"'
)


@dataclass
class Cast:
    """Everyone who talks to the API server in the log (uids are drawn from the log's random stream)."""

    kubelets: dict[str, Actor]
    kcm: Actor
    sched: Actor
    apisrv: Actor
    ctrl: dict[str, Actor]
    proxies: dict[str, Actor]
    coredns: Actor
    ci: Actor
    app: Actor
    runner: Actor
    lookalike: Actor
    staging_twin: Actor
    intruder: Actor
    alice: Actor
    admin: Actor
    anon: Actor


def _control_plane_actors(rng: random.Random) -> dict[str, Any]:
    """Kubelets, controllers, scheduler, kube-apiserver itself, kube-proxy and CoreDNS."""
    return {
        "kubelets": {
            n: Actor(
                f"system:node:{n}",
                ("system:nodes", "system:authenticated"),
                ip,
                f"kubelet/{K8S} (linux/amd64) {GIT}",
            )
            for n, ip in _NODES
        },
        "kcm": Actor(
            "system:kube-controller-manager",
            ("system:authenticated",),
            "10.0.0.10",
            f"kube-controller-manager/{K8S} (linux/amd64) {GIT}/leader-election",
        ),
        "sched": Actor(
            "system:kube-scheduler",
            ("system:authenticated",),
            "10.0.0.10",
            f"kube-scheduler/{K8S} (linux/amd64) {GIT}/leader-election",
        ),
        "apisrv": Actor(
            "system:apiserver",
            ("system:authenticated", "system:masters"),
            "::1",
            f"kube-apiserver/{K8S} (linux/amd64) {GIT}",
            _uid(rng),
        ),
        "ctrl": {c: _sa("kube-system", c, "10.0.0.10", _kcm_ua(c), rng) for c in _CONTROLLERS},
        "proxies": {
            n: _sa("kube-system", "kube-proxy", ip, f"kube-proxy/{K8S} (linux/amd64) {GIT}", rng)
            for n, ip in _NODES
        },
        "coredns": _sa(
            "kube-system", "coredns", "10.244.0.3", "coredns/v1.11.1 (linux/amd64) kubernetes/...", rng
        ),
    }


def _cast(p: Plan, rng: random.Random) -> Cast:
    """The actors, drawn in a fixed order (the order of the uids is part of what a seed gives)."""
    ns, sa = p.ns, p.sa
    system = _control_plane_actors(rng)
    ci = _sa("ci", "deployer", "10.244.1.40", "helm/v3.14.2 (linux/amd64) kubernetes/abc1234", rng)
    app = _sa(ns, f"{ns}-api", "10.244.2.31", "Go-http-client/2.0", rng)
    runner = _sa(ns, sa, "10.244.2.57", "kubernetes-python-client/29.0.0", rng)
    lookalike = _sa(ns, f"{sa}-v2", "10.244.2.58", "kubernetes-python-client/29.0.0", rng)
    staging_twin = _sa("staging", sa, "10.244.3.21", "kubernetes-python-client/29.0.0", rng)
    intruder = Actor(
        runner.username,
        runner.groups,
        p.attacker_ip,
        "kubectl/v1.29.3 (linux/amd64) kubernetes/6813625",
        runner.uid,
    )
    alice = Actor(
        "alice@corp.example",
        ("oncall", "system:authenticated"),
        "192.168.10.23",
        f"kubectl/{K8S} (darwin/arm64) {GIT}",
        "",
        {"authentication.kubernetes.io/credential-id": ["JTI=7f3d2c1a-0b9e-4c55-8d1e-2a6b4f9e0c11"]},
    )
    admin = Actor(
        "kubernetes-admin",
        ("kubeadm:cluster-admins", "system:authenticated"),
        "10.0.0.10",
        f"kubectl/{K8S} (linux/amd64) {GIT}",
    )
    anon = Actor("system:anonymous", ("system:unauthenticated",), "10.0.0.2", "kube-probe/1.30")
    return Cast(
        **system,
        ci=ci,
        app=app,
        runner=runner,
        lookalike=lookalike,
        staging_twin=staging_twin,
        intruder=intruder,
        alice=alice,
        admin=admin,
        anon=anon,
    )


def _created_at(p: Plan) -> dict[str, float]:
    """Each Secret's creation time in seconds after ``p.base``."""
    return {s.name: (s.created - p.base).total_seconds() for s in p.secrets}


def _exists(created: dict[str, float], name: str, t: float) -> bool:
    """Whether the Secret ``name`` exists ``t`` seconds after the base time."""
    return created.get(name, -1e9) <= t


def _own_reason(ns: str, sa: str) -> str:
    return f'RBAC: allowed by RoleBinding "{sa}/{ns}" of Role "{sa}" to ServiceAccount "{sa}/{ns}"'


def _watch_query(rng: random.Random, dur: float, selector: str = "", timeout: bool = True) -> str:
    """A client's watch query (the resourceVersion is drawn here, after the duration)."""
    rv = rng.randrange(10**6, 10**7)
    return (
        "allowWatchBookmarks=true"
        + (f"&fieldSelector={selector}" if selector else "")
        + f"&resourceVersion={rv}"
        + (f"&timeout={int(dur)}s" if timeout else "")
        + f"&timeoutSeconds={int(dur)}&watch=true"
    )


# -- control plane heartbeats (the bulk of a real log) --


def _node_leases(b: LogBuilder, c: Cast) -> None:
    rng = b.rng
    t = rng.uniform(0, 2)
    while t < WINDOW:
        for n, _ in _NODES:
            tt = t + rng.uniform(0, 0.9)
            b.request(
                tt,
                c.kubelets[n],
                "update",
                request_uri("leases", "kube-node-lease", n, "coordination.k8s.io"),
                object_ref("leases", "kube-node-lease", n, "coordination.k8s.io"),
                200,
                reason=_NODE_AUTH,
            )
        t += 10.0


def _leader_leases(b: LogBuilder, c: Cast) -> None:
    """Leader election of the controller manager and the scheduler, and the API server's identity lease."""
    rng = b.rng
    apiserver_lease = "apiserver-7xk2nq4abvg3wmh5q6f2zb7yqe"
    t = rng.uniform(0, 2)
    while t < WINDOW:
        for actor, lease in ((c.kcm, "kube-controller-manager"), (c.sched, "kube-scheduler")):
            tt = t + rng.uniform(0, 1)
            ref = object_ref("leases", "kube-system", lease, "coordination.k8s.io")
            reason = (
                f'RBAC: allowed by ClusterRoleBinding "system:{lease}" of ClusterRole "system:{lease}" '
                f'to User "system:{lease}"'
            )
            uri = request_uri("leases", "kube-system", lease, "coordination.k8s.io")
            b.request(tt, actor, "get", uri, ref, 200, reason=reason)
            b.request(tt + 0.004, actor, "update", uri, ref, 200, reason=reason)
        b.request(
            t + rng.uniform(0, 2),
            c.apisrv,
            "update",
            request_uri("leases", "kube-system", apiserver_lease, "coordination.k8s.io"),
            object_ref("leases", "kube-system", apiserver_lease, "coordination.k8s.io"),
            200,
            reason="",
        )
        t += 6.0


def _node_status(b: LogBuilder, c: Cast) -> None:
    rng = b.rng
    t = rng.uniform(0, 10)
    while t < WINDOW:
        for n, _ in _NODES:
            tt = t + rng.uniform(0, 5)
            b.request(
                tt,
                c.kubelets[n],
                "get",
                request_uri("nodes", None, n, query="resourceVersion=0&timeout=10s"),
                object_ref("nodes", None, n),
                200,
                reason=_NODE_AUTH,
            )
            b.request(
                tt + 0.01,
                c.kubelets[n],
                "patch",
                request_uri("nodes", None, n, sub="status"),
                object_ref("nodes", None, n, sub="status"),
                200,
                reason=_NODE_AUTH,
            )
        t += 60.0


def _readiness_probes(b: LogBuilder, c: Cast) -> None:
    """Anonymous readiness probes from the load balancer (non-resource requests: no objectRef)."""
    rng = b.rng
    t = rng.uniform(0, 5)
    while t < WINDOW:
        b.request(
            t,
            c.anon,
            "get",
            "/readyz",
            None,
            200,
            reason='RBAC: allowed by ClusterRoleBinding "system:public-info-viewer" of ClusterRole '
            '"system:public-info-viewer" to Group "system:unauthenticated"',
        )
        t += rng.uniform(8, 14)


# -- watches (ResponseStarted now, ResponseComplete when they time out) --


def _watch_loop(
    b: LogBuilder,
    actor: Actor,
    t: float,
    resource: str,
    ns: str | None,
    name: str | None,
    group: str,
    selector: str,
    timeout: bool,
    reason: str,
) -> None:
    """One client's back-to-back watches on one resource from ``t`` to the end of the window."""
    rng = b.rng
    while t < WINDOW:
        dur = rng.uniform(300, 560)
        b.request(
            t,
            actor,
            "watch",
            request_uri(resource, ns, None, group, query=_watch_query(rng, dur, selector, timeout)),
            object_ref(resource, ns, name, group),
            200,
            long_running=dur,
            reason=reason,
        )
        t += dur + rng.uniform(0.1, 2)


def _node_watches(b: LogBuilder, c: Cast) -> None:
    """Each node's kube-proxy watches endpointslices and services, its kubelet its own pods."""
    rng = b.rng
    proxier = (
        'RBAC: allowed by ClusterRoleBinding "kubeadm:node-proxier" of ClusterRole '
        '"system:node-proxier" to ServiceAccount "kube-proxy/kube-system"'
    )
    for n, _ in _NODES:
        for resource, group in (("endpointslices", "discovery.k8s.io"), ("services", "")):
            t = rng.uniform(0, 30)
            _watch_loop(b, c.proxies[n], t, resource, None, None, group, "", True, proxier)
        t = rng.uniform(0, 30)
        _watch_loop(b, c.kubelets[n], t, "pods", None, None, "", f"spec.nodeName%3D{n}", False, _NODE_AUTH)


def _coredns_watches(b: LogBuilder, c: Cast) -> None:
    rng = b.rng
    reason = (
        'RBAC: allowed by ClusterRoleBinding "system:coredns" of ClusterRole "system:coredns" '
        'to ServiceAccount "coredns/kube-system"'
    )
    for resource in ("endpointslices", "services", "namespaces"):
        t = rng.uniform(0, 30)
        group = "discovery.k8s.io" if resource == "endpointslices" else ""
        _watch_loop(b, c.coredns, t, resource, None, None, group, "", False, reason)


def _mounted_watches(b: LogBuilder, c: Cast, p: Plan, created: dict[str, float]) -> None:
    """The kubelet of the app's node watches the Secrets and ConfigMaps its pods mount (a read, but not
    the ServiceAccount's)."""
    rng = b.rng
    mounted = [p.slot("read_1").name, p.slot("read_2").name, p.slot("unread_1").name]
    for name in mounted + [f"{p.ns}-api-config"]:
        resource = "configmaps" if name.endswith("-config") else "secrets"
        t = max(rng.uniform(0, 60), created.get(name, 0) + rng.uniform(20, 90))
        selector = f"metadata.name%3D{name}"
        _watch_loop(b, c.kubelets[_APP_NODE], t, resource, p.ns, name, "", selector, True, _NODE_AUTH)


# -- controllers reconciling --


def _controller_request(
    b: LogBuilder, t: float, ctl: Actor, name: str, ns: str, deployments: list[str]
) -> None:
    """What one controller does in one pass (the request depends on which controller it is)."""
    rng = b.rng
    cr = f"system:controller:{name}"
    reason = (
        f'RBAC: allowed by ClusterRoleBinding "{cr}" of ClusterRole "{cr}" to ServiceAccount '
        f'"{name}/kube-system"'
    )
    if name == "replicaset-controller":
        d = rng.choice(deployments)
        rs = f"{d}-{rng.choice(['5d8f7c9b6', '7c4b9d8f5', '6f9c8b7d4'])}"
        uri, ref = (
            request_uri("replicasets", ns, rs, "apps", sub="status"),
            object_ref("replicasets", ns, rs, "apps", sub="status"),
        )
        b.request(t, ctl, "update", uri, ref, 200, reason=reason)
    elif name == "deployment-controller":
        d = rng.choice(deployments)
        b.request(
            t,
            ctl,
            "update",
            request_uri("deployments", ns, d, "apps", sub="status"),
            object_ref("deployments", ns, d, "apps", sub="status"),
            rng.choice([200, 200, 200, 409]),
            reason=reason,
            message=f'Operation cannot be fulfilled on deployments.apps "{d}": the object '
            "has been modified; please apply your changes to the latest version",
        )
    elif name in ("endpointslice-controller", "endpoint-controller"):
        svc = rng.choice(deployments)
        res, grp = (
            ("endpointslices", "discovery.k8s.io") if name.startswith("endpointslice") else ("endpoints", "")
        )
        obj = f"{svc}-{rng.choice(['x7k2p', 'm9q4t', 'b3n8d'])}" if grp else svc
        b.request(
            t,
            ctl,
            "update",
            request_uri(res, ns, obj, grp),
            object_ref(res, ns, obj, grp),
            200,
            reason=reason,
        )
    elif name in ("job-controller", "cronjob-controller"):
        uri, ref = (
            request_uri("jobs", ns, None, "batch", query="limit=500"),
            object_ref("jobs", ns, None, "batch"),
        )
        b.request(t, ctl, "list", uri, ref, 200, reason=reason)
    else:
        b.request(
            t,
            ctl,
            "get",
            request_uri("namespaces", None, ns),
            object_ref("namespaces", ns, ns),
            200,
            reason=reason,
        )


def _controllers(b: LogBuilder, c: Cast, ns: str, deployments: list[str]) -> None:
    """A random controller reconciles, and the controller manager records an Event."""
    rng = b.rng
    t = rng.uniform(0, 20)
    while t < WINDOW:
        ctl = rng.choice(list(c.ctrl.values()))
        _controller_request(b, t, ctl, ctl.username.rsplit(":", 1)[1], ns, deployments)
        b.request(
            t + 0.03,
            c.kcm,
            "create",
            request_uri("events", ns, None),
            object_ref("events", ns, f"{rng.choice(deployments)}.{rng.getrandbits(40):x}"),
            201,
            reason=_KCM_REASON,
        )
        t += rng.uniform(3, 9)


# -- the workloads of the namespace --


def _app_config_reads(b: LogBuilder, c: Cast, ns: str) -> None:
    rng = b.rng
    t = rng.uniform(0, 30)
    while t < WINDOW:
        b.request(
            t,
            c.app,
            "get",
            request_uri("configmaps", ns, f"{ns}-api-config"),
            object_ref("configmaps", ns, f"{ns}-api-config"),
            200,
            reason=f'RBAC: allowed by RoleBinding "{ns}-api/{ns}" of Role "{ns}-api" to ServiceAccount '
            f'"{ns}-api/{ns}"',
        )
        t += rng.uniform(25, 35)


def _runner_routine(b: LogBuilder, c: Cast, ns: str, own: str) -> None:
    """The ServiceAccount's normal work: configmaps, pods, a report Job now and then."""
    rng = b.rng
    t = rng.uniform(0, 120)
    while t < WINDOW:
        uri = request_uri("configmaps", ns, None, query="labelSelector=app%3Dreports")
        b.request(t, c.runner, "list", uri, object_ref("configmaps", ns, None), 200, reason=own)
        uri = request_uri("pods", ns, None, query="labelSelector=app%3Dreports")
        b.request(t + 0.2, c.runner, "list", uri, object_ref("pods", ns, None), 200, reason=own)
        if rng.random() < 0.2:
            job = f"report-{rng.getrandbits(32):08x}"
            b.request(
                t + 0.5,
                c.runner,
                "create",
                request_uri("jobs", ns, None, "batch"),
                object_ref("jobs", ns, job, "batch"),
                201,
                reason=own,
                level="Request",
            )
        t += rng.uniform(240, 360)


def _lookalike_reads(b: LogBuilder, c: Cast, p: Plan, created: dict[str, float]) -> None:
    """The look-alike ServiceAccount (a substring match on the intruder's name catches it)."""
    rng = b.rng
    ns, sa = p.ns, p.sa
    v2 = f'RBAC: allowed by RoleBinding "{sa}-v2/{ns}" of Role "{sa}-v2" to ServiceAccount "{sa}-v2/{ns}"'
    decoy_secret = p.slot("unread_3").name
    t = created[decoy_secret] + rng.uniform(30, 120)
    while t < WINDOW:
        uri, ref = request_uri("secrets", ns, decoy_secret), object_ref("secrets", ns, decoy_secret)
        b.request(t, c.lookalike, "get", uri, ref, 200, reason=v2)
        uri, ref = request_uri("configmaps", ns, None), object_ref("configmaps", ns, None)
        b.request(t + 0.1, c.lookalike, "list", uri, ref, 200, reason=v2)
        t += rng.uniform(400, 700)


def _staging_twin_reads(b: LogBuilder, c: Cast, sa: str) -> None:
    """The same ServiceAccount name in another namespace reads that namespace's Secrets."""
    rng = b.rng
    t = rng.uniform(0, 600)
    while t < WINDOW:
        b.request(
            t,
            c.staging_twin,
            "list",
            request_uri("secrets", "staging", None),
            object_ref("secrets", "staging", None),
            200,
            reason=f'RBAC: allowed by RoleBinding "{sa}/staging" of Role "{sa}" to ServiceAccount '
            f'"{sa}/staging"',
        )
        t += rng.uniform(900, 1500)


# -- CI: deploys, creates the later Secrets, reads some --


def _ci_creates_secrets(b: LogBuilder, c: Cast, p: Plan, created: dict[str, float]) -> None:
    rng = b.rng
    for s in p.secrets:
        if s.slot in ("read_4", "unread_1", "unread_2", "unread_3"):
            ct = created[s.name] - rng.uniform(0.05, 0.4)
            uri, ref = request_uri("secrets", p.ns, None), object_ref("secrets", p.ns, s.name)
            b.request(ct, c.ci, "create", uri, ref, 201, reason=_CI_REASON, level="Metadata")


def _ci_deploys(b: LogBuilder, c: Cast, p: Plan, created: dict[str, float], deployments: list[str]) -> None:
    rng = b.rng
    ns = p.ns
    t = rng.uniform(60, 400)
    while t < WINDOW:
        d = rng.choice(deployments)
        uri, ref = request_uri("deployments", ns, d, "apps"), object_ref("deployments", ns, d, "apps")
        b.request(t, c.ci, "get", uri, ref, 200, reason=_CI_REASON)
        b.request(t + 0.4, c.ci, "patch", uri, ref, 200, reason=_CI_REASON, level="Request")
        for name in (p.slot("unread_1").name, p.slot("read_3").name):
            if _exists(created, name, t):
                uri, ref = request_uri("secrets", ns, name), object_ref("secrets", ns, name)
                b.request(t + 0.2, c.ci, "get", uri, ref, 200, reason=_CI_REASON)
        t += rng.uniform(500, 900)


# -- humans --


def _human_session(
    b: LogBuilder, t: float, who: Actor, is_admin: bool, ns: str, deployments: list[str]
) -> None:
    """An on-call look at the namespace: list pods, read a log; an admin sometimes execs, alice sometimes
    tries the Secrets (forbidden)."""
    rng = b.rng
    reason = (
        'RBAC: allowed by ClusterRoleBinding "kubeadm:cluster-admins" of ClusterRole '
        '"cluster-admin" to Group "kubeadm:cluster-admins"'
        if is_admin
        else 'RBAC: allowed by ClusterRoleBinding "oncall" of ClusterRole "view" to Group "oncall"'
    )
    uri, ref = request_uri("pods", ns, None, query="limit=500"), object_ref("pods", ns, None)
    b.request(t, who, "list", uri, ref, 200, reason=reason)
    pod = f"{rng.choice(deployments)}-{rng.choice(['5d8f7c9b6', '7c4b9d8f5'])}-{rng.getrandbits(20):05x}"
    b.request(
        t + rng.uniform(3, 20),
        who,
        "get",
        request_uri("pods", ns, pod, sub="log", query="container=app&tailLines=100"),
        object_ref("pods", ns, pod, sub="log"),
        200,
        reason=reason,
        long_running=rng.uniform(0.2, 3),
    )
    if is_admin and rng.random() < 0.5:
        b.request(
            t + rng.uniform(20, 40),
            who,
            "create",
            request_uri(
                "pods", ns, pod, sub="exec", query="command=sh&container=app&stdin=true&stdout=true&tty=true"
            ),
            object_ref("pods", ns, pod, sub="exec"),
            101,
            reason=reason,
            long_running=rng.uniform(30, 200),
        )
    if not is_admin and rng.random() < 0.4:
        b.request(
            t + rng.uniform(40, 60),
            who,
            "list",
            request_uri("secrets", ns, None),
            object_ref("secrets", ns, None),
            403,
            reason="",
            message=f'secrets is forbidden: User "alice@corp.example" cannot list resource '
            f'"secrets" in API group "" in the namespace "{ns}"',
        )


def _humans(b: LogBuilder, c: Cast, ns: str, deployments: list[str]) -> None:
    rng = b.rng
    t = rng.uniform(200, 900)
    while t < WINDOW:
        who = rng.choice([c.alice, c.alice, c.admin])
        _human_session(b, t, who, who is c.admin, ns, deployments)
        t += rng.uniform(400, 1100)


def _token_spray(b: LogBuilder, ns: str) -> None:
    """Failed logins: a token spray from outside."""
    rng = b.rng
    spray_at = rng.uniform(0.1, 0.25) * WINDOW
    spray = Actor("", (), "203.0.113.50", "curl/8.5.0")
    for i in range(rng.randrange(25, 40)):
        b.request(
            spray_at + i * rng.uniform(0.5, 3),
            spray,
            "list",
            request_uri("secrets", ns, None),
            object_ref("secrets", ns, None),
            401,
            failed_authn=True,
        )


# -- the intruder: the ServiceAccount's token used from elsewhere --


def _intruder_probes(b: LogBuilder, c: Cast, p: Plan) -> None:
    """Before the list: what may I do, and a try at kube-system's Secrets (forbidden)."""
    rng = b.rng
    t0 = (p.list_at - p.base).total_seconds() - rng.uniform(30, 90)
    b.request(
        t0,
        c.intruder,
        "create",
        "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
        object_ref("selfsubjectrulesreviews", None, None, "authorization.k8s.io"),
        201,
        reason='RBAC: allowed by ClusterRoleBinding "system:basic-user" of ClusterRole "system:basic-user" '
        'to Group "system:authenticated"',
        level="Request",
    )
    b.request(
        t0 + rng.uniform(5, 15),
        c.intruder,
        "list",
        request_uri("secrets", "kube-system", None),
        object_ref("secrets", "kube-system", None),
        403,
        reason="",
        message=f'secrets is forbidden: User "{p.attacker}" cannot list resource "secrets" in API group '
        '"" in the namespace "kube-system"',
    )


def _intruder_list_and_gets(b: LogBuilder, c: Cast, p: Plan, created: dict[str, float], own: str) -> None:
    """The namespace-wide list, a get of read_1, a get of unread_2 before it exists (404), a pod list."""
    rng = b.rng
    ns, intruder = p.ns, c.intruder
    t_list = (p.list_at - p.base).total_seconds()
    uri, ref = request_uri("secrets", ns, None, query="limit=500"), object_ref("secrets", ns, None)
    b.request(t_list, intruder, "list", uri, ref, 200, reason=own)
    r1 = p.slot("read_1").name
    uri, ref = request_uri("secrets", ns, r1), object_ref("secrets", ns, r1)
    b.request(t_list + rng.uniform(8, 20), intruder, "get", uri, ref, 200, reason=own)
    u2 = p.slot("unread_2").name
    assert not _exists(created, u2, t_list + 60)
    b.request(
        t_list + rng.uniform(25, 60),
        intruder,
        "get",
        request_uri("secrets", ns, u2),
        object_ref("secrets", ns, u2),
        404,
        reason=own,
        message=f'secrets "{u2}" not found',
    )
    uri, ref = request_uri("pods", ns, None), object_ref("pods", ns, None)
    b.request(t_list + rng.uniform(61, 90), intruder, "list", uri, ref, 200, reason=own)


def _intruder_later_reads(b: LogBuilder, c: Cast, p: Plan, created: dict[str, float], own: str) -> None:
    """Later: read_4 by name (a get, or a watch on its name), then a try at another namespace (forbidden)."""
    rng = b.rng
    ns, intruder = p.ns, c.intruder
    r4 = p.slot("read_4").name
    t4 = max(created[r4], created[p.slot("unread_2").name]) + rng.uniform(600, 900)
    if p.read_4_by_watch:
        b.request(
            t4,
            intruder,
            "watch",
            request_uri(
                "secrets", ns, None, query=f"fieldSelector=metadata.name%3D{r4}&watch=true&timeoutSeconds=60"
            ),
            object_ref("secrets", ns, r4),
            200,
            reason=own,
            long_running=60.0,
        )
    else:
        b.request(
            t4,
            intruder,
            "get",
            request_uri("secrets", ns, r4),
            object_ref("secrets", ns, r4),
            200,
            reason=own,
        )
    b.request(
        t4 + rng.uniform(10, 30),
        intruder,
        "get",
        request_uri("secrets", "default", "admin-token"),
        object_ref("secrets", "default", "admin-token"),
        403,
        reason="",
        message=f'secrets "admin-token" is forbidden: User "{p.attacker}" cannot get resource "secrets" in '
        'API group "" in the namespace "default"',
    )


def build_log(p: Plan) -> list[tuple[int, Line]]:
    """The whole log in time order: (microseconds after ``p.base``, the pieces of the JSON line).

    Each part of the story draws from one random stream in a fixed order: reordering the calls below
    changes the log of every seed."""
    rng = random.Random(
        int.from_bytes(hashlib.sha256(f"lab7-log\0{p.seed}\0{p.ns}\0{p.sa}".encode()).digest()[:8], "big")
    )
    b = LogBuilder(rng, p.base)
    c = _cast(p, rng)
    created = _created_at(p)
    ns = p.ns
    own = _own_reason(ns, p.sa)
    deployments = [f"{ns}-api", f"{ns}-worker", "frontend", "checkout-ui"]
    _node_leases(b, c)
    _leader_leases(b, c)
    _node_status(b, c)
    _readiness_probes(b, c)
    _node_watches(b, c)
    _coredns_watches(b, c)
    _mounted_watches(b, c, p, created)
    _controllers(b, c, ns, deployments)
    _app_config_reads(b, c, ns)
    _runner_routine(b, c, ns, own)
    _lookalike_reads(b, c, p, created)
    _staging_twin_reads(b, c, p.sa)
    _ci_creates_secrets(b, c, p, created)
    _ci_deploys(b, c, p, created, deployments)
    _humans(b, c, ns, deployments)
    _token_spray(b, ns)
    _intruder_probes(b, c, p)
    _intruder_list_and_gets(b, c, p, created, own)
    _intruder_later_reads(b, c, p, created, own)
    secret_names = {s.name for s in p.secrets}
    assert all(p.slot(slot).name in secret_names for slot in ("read_1", "read_4", "unread_2"))
    return b.sorted_events()


# ---- the API objects -----------------------------------------------------------------------------------


def _secret_doc(p: Plan, s: SecretPlan) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": s.name,
            "namespace": p.ns,
            "uid": s.uid,
            "resourceVersion": str(s.resource_version),
            "creationTimestamp": _ts(s.created, micro=False),
            "labels": {"app.kubernetes.io/part-of": p.ns},
        },
        "type": s.type,
        "data": dict(s.data),
    }


class _ObjectMaker:
    """Metadata, Roles and RoleBindings of the namespace; uids, resourceVersions and creation times are
    drawn from ``rng`` in the order the objects are made."""

    def __init__(self, p: Plan, rng: random.Random):
        self.p, self.rng = p, rng

    def meta(self, name: str) -> dict[str, Any]:
        rng = self.rng
        return {
            "name": name,
            "namespace": self.p.ns,
            "uid": _uid(rng),
            "resourceVersion": str(rng.randrange(10**5, 10**6)),
            "creationTimestamp": _ts(self.p.base - timedelta(days=rng.randrange(200, 400)), micro=False),
        }

    def role(self, name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": self.meta(name),
            "rules": rules,
        }

    def binding(self, name: str) -> dict[str, Any]:
        """RoleBinding ``name`` of Role ``name`` to ServiceAccount ``name`` (one per ServiceAccount here)."""
        return {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": self.meta(name),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": self.p.ns}],
        }


def _rbac_objects(p: Plan, make: _ObjectMaker) -> dict[str, list[dict[str, Any]]]:
    """The intruder's Role (reads every Secret), the look-alike's (one Secret by name) and the app's."""
    ns, sa = p.ns, p.sa
    decoy = p.slot("unread_3").name
    reads_secrets = {
        "apiGroups": [""],
        "resources": ["configmaps", "secrets"],
        "verbs": ["get", "list", "watch"],
    }
    return {
        f"rbac/role-{sa}": [
            make.role(
                sa,
                [
                    reads_secrets,
                    {"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list"]},
                    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get", "list", "create"]},
                ],
            )
        ],
        f"rbac/rolebinding-{sa}": [make.binding(sa)],
        f"rbac/role-{sa}-v2": [
            make.role(
                f"{sa}-v2",
                [
                    {"apiGroups": [""], "resources": ["secrets"], "resourceNames": [decoy], "verbs": ["get"]},
                    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]},
                ],
            )
        ],
        f"rbac/rolebinding-{sa}-v2": [make.binding(f"{sa}-v2")],
        f"rbac/role-{ns}-api": [
            make.role(
                f"{ns}-api",
                [
                    {
                        "apiGroups": [""],
                        "resources": ["configmaps"],
                        "resourceNames": [f"{ns}-api-config"],
                        "verbs": ["get"],
                    },
                ],
            )
        ],
        f"rbac/rolebinding-{ns}-api": [make.binding(f"{ns}-api")],
    }


def _objects(p: Plan, rng: random.Random) -> dict[str, list[dict[str, Any]]]:
    ns, sa = p.ns, p.sa
    make = _ObjectMaker(p, rng)
    out = _rbac_objects(p, make)
    out["serviceaccounts"] = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": make.meta(n)}
        for n in (f"{ns}-api", sa, f"{sa}-v2", "default")
    ]
    for s in p.secrets:
        out[f"secrets/{s.name}"] = [_secret_doc(p, s)]
    return out


_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml: same text as the Python emitter, 4x faster


def generate(dest: Path, seed: str | None = None, values: dict[str, Any] | None = None) -> None:
    """Write the starting state: the rotated audit log and the namespace's objects."""
    values = values or {}
    p = plan(seed, values)
    events = build_log(p)
    log_dir = dest / "nodes" / NODE / LOG_DIR.lstrip("/")
    log_dir.mkdir(parents=True, exist_ok=True)
    cut = int(len(events) * 0.55)
    list_at = (p.list_at - p.base) // timedelta(microseconds=1)
    while list_at >= events[cut][0]:  # the namespace-wide list must sit in the rotated backup
        cut += 1
    rotated_at = p.base + timedelta(microseconds=events[cut - 1][0] + 1000)
    backup = log_dir / f"audit-{rotated_at.strftime('%Y-%m-%dT%H-%M-%S.%f')[:-3]}.log.gz"
    # level 3: as fast as level 1 here and 15% smaller; levels 4+ switch to lazy matching and take twice
    # as long
    with gzip.GzipFile(backup, "wb", compresslevel=3, mtime=0) as gz:
        gz.write(join_lines(events[:cut]))
    (log_dir / "audit.log").write_bytes(join_lines(events[cut:]))
    rng = random.Random(
        int.from_bytes(hashlib.sha256(f"lab7-obj\0{seed}\0{p.ns}".encode()).digest()[:8], "big")
    )
    for rel, docs in _objects(p, rng).items():
        path = dest / "cluster" / f"{rel}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.dump_all(docs, Dumper=_DUMPER, sort_keys=False, width=1000))
    answers = dest / "nodes" / NODE / "opt" / "course" / "7"
    answers.mkdir(parents=True, exist_ok=True)
    (answers / "task.txt").write_text(
        f"Namespace under investigation: {p.ns}\n"
        f"Audit logs: {LOG_DIR}/ (audit.log and the rotated audit-<time>.log.gz)\n"
        "Write the intruder's username to /opt/course/lab7/intruder.txt\n"
        "and the names of the Secrets it read, one per line, to /opt/course/lab7/secrets.txt\n"
    )
