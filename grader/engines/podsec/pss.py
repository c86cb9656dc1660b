"""Pod Security Standards, evaluated as the built-in Pod Security Admission does (policy/check_*.go).

Each check has versioned revisions; for a requested policy version the newest revision whose minimum
version is not newer applies, checks newer than the version do not apply, and at ``restricted`` a check
that overrides a baseline one (capabilities, seccomp, hostPath volumes, procMount) replaces it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from grader.engines.podsec.model import ContainerRef, PodSpecRef, locate, quote_names

LATEST_MINOR = 37  # the newest policy version this engine knows (v1.37); newer requests use it
LEVELS = ("privileged", "baseline", "restricted")


class PolicyVersionError(ValueError):
    pass


def parse_version(version: str | None, cluster_minor: int | None = None) -> int:
    """``v1.30`` / ``1.30`` / ``latest`` -> minor number, as the PSA of a cluster at ``cluster_minor``
    reads it: ``latest`` is the cluster's own minor, and a newer version than the cluster knows evaluates as
    its latest. Without ``cluster_minor`` the engine's newest known version plays the cluster (callers that
    grade a lab pass ``grader.versions.kubernetes_minor()``)."""
    newest = min(cluster_minor, LATEST_MINOR) if cluster_minor else LATEST_MINOR
    if version is None or str(version).strip() in ("", "latest"):
        return newest
    m = re.fullmatch(r"v?1\.(\d+)", str(version).strip())
    if not m:
        raise PolicyVersionError(f"policy version {version!r} is not 'latest' or 'v1.<minor>' (e.g. v1.30)")
    return min(int(m.group(1)), newest)


def version_label(minor: int, requested: str | None = None) -> str:
    if requested is None or str(requested).strip() in ("", "latest"):
        return "latest"
    return f"v1.{minor}"


@dataclass(frozen=True)
class Violation:
    check_id: str  # PSA's check id, e.g. allowPrivilegeEscalation
    reason: str  # PSA's forbiddenReason, e.g. "allowPrivilegeEscalation != false"
    detail: str  # what is wrong at this place, in PSA's words
    path: str  # the container path (spec.template.spec.containers[0]) or the pod spec / metadata path
    field: str  # e.g. securityContext.allowPrivilegeEscalation
    value: str  # what was found ("unset" when absent)
    container: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check_id,
            "reason": self.reason,
            "detail": self.detail,
            "path": self.path,
            "field": self.field,
            "value": self.value,
            "container": self.container,
        }


Hits = list[Violation]
CheckFn = Callable[[PodSpecRef], Hits]


def _show(v: Any) -> str:
    if v is None:
        return "unset"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return v if v else '""'
    return str(v)


def _g(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def _v(
    cid: str, reason: str, detail: str, path: str, fld: str, value: Any, c: ContainerRef | None = None
) -> Violation:
    return Violation(cid, reason, detail, path, fld, _show(value), c.name if c else None)


def _cname(c: ContainerRef) -> str:
    return f'container "{c.name}"'


# ---- baseline ---------------------------------------------------------------------------------------


def host_namespaces(ref: PodSpecRef) -> Hits:
    return [
        _v("hostNamespaces", "host namespaces", f"{k}=true", ref.path, k, True)
        for k in ("hostNetwork", "hostPID", "hostIPC")
        if ref.spec.get(k) is True
    ]


def privileged(ref: PodSpecRef) -> Hits:
    return [
        _v(
            "privileged",
            "privileged",
            f"{_cname(c)} must not set securityContext.privileged=true",
            c.path,
            "securityContext.privileged",
            True,
            c,
        )
        for c in ref.containers
        if c.sc.get("privileged") is True
    ]


BASELINE_CAPS = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)


def capabilities_baseline(ref: PodSpecRef) -> Hits:
    out = []
    for c in ref.containers:
        add = _g(c.sc, "capabilities", "add")
        for cap in add if isinstance(add, list) else []:
            if cap not in BASELINE_CAPS:
                out.append(
                    _v(
                        "capabilities_baseline",
                        "non-default capabilities",
                        f'{_cname(c)} must not include "{cap}" in securityContext.capabilities.add',
                        c.path,
                        "securityContext.capabilities.add",
                        cap,
                        c,
                    )
                )
    return out


def _volumes(ref: PodSpecRef) -> list[tuple[int, dict[str, Any]]]:
    vols = ref.spec.get("volumes")
    return [(i, v) for i, v in enumerate(vols) if isinstance(v, dict)] if isinstance(vols, list) else []


def host_path_volumes(ref: PodSpecRef) -> Hits:
    return [
        _v(
            "hostPathVolumes",
            "hostPath volumes",
            f'volume "{v.get("name")}"',
            f"{ref.path}.volumes[{i}]",
            "hostPath",
            _g(v, "hostPath", "path") or "hostPath",
        )
        for i, v in _volumes(ref)
        if v.get("hostPath") is not None
    ]


def host_ports(ref: PodSpecRef) -> Hits:
    out = []
    for c in ref.containers:
        ports = c.data.get("ports")
        for j, p in enumerate(ports if isinstance(ports, list) else []):
            hp = _g(p, "hostPort")
            if hp not in (None, 0):
                out.append(
                    _v(
                        "hostPorts",
                        "hostPort",
                        f"{_cname(c)} uses hostPort {hp}",
                        c.path,
                        f"ports[{j}].hostPort",
                        hp,
                        c,
                    )
                )
    return out


_APPARMOR_ANN = "container.apparmor.security.beta.kubernetes.io/"


def app_armor(ref: PodSpecRef) -> Hits:
    out = []
    meta_path = ref.path.rsplit("spec", 1)[0] + "metadata" if ref.path != "spec" else "metadata"
    for key, val in sorted(ref.annotations.items(), key=lambda kv: str(kv[0])):
        if isinstance(key, str) and key.startswith(_APPARMOR_ANN):
            sval = val if isinstance(val, str) else str(val)
            if not (sval == "" or sval == "runtime/default" or sval.startswith("localhost/")):
                out.append(
                    _v(
                        "appArmorProfile",
                        "forbidden AppArmor profile",
                        f'{key}="{sval}"',
                        f"{meta_path}.annotations",
                        key,
                        sval,
                    )
                )
    ok_types = ("RuntimeDefault", "Localhost")
    pod_t = ref.sc.get("appArmorProfile")
    if isinstance(pod_t, dict) and pod_t.get("type") not in ok_types:
        out.append(
            _v(
                "appArmorProfile",
                "forbidden AppArmor profile",
                f'pod must not set securityContext.appArmorProfile.type to "{pod_t.get("type")}"',
                f"{ref.path}.securityContext",
                "appArmorProfile.type",
                pod_t.get("type"),
            )
        )
    for c in ref.containers:
        t = c.sc.get("appArmorProfile")
        if isinstance(t, dict) and t.get("type") not in ok_types:
            out.append(
                _v(
                    "appArmorProfile",
                    "forbidden AppArmor profile",
                    f'{_cname(c)} must not set securityContext.appArmorProfile.type to "{t.get("type")}"',
                    c.path,
                    "securityContext.appArmorProfile.type",
                    t.get("type"),
                    c,
                )
            )
    return out


_SELINUX_TYPES_1_0 = frozenset({"", "container_t", "container_init_t", "container_kvm_t"})
_SELINUX_TYPES_1_31 = _SELINUX_TYPES_1_0 | {"container_engine_t"}


def _selinux(types: frozenset[str]) -> CheckFn:
    def check(ref: PodSpecRef) -> Hits:
        out = []
        places: list[tuple[str, str, Any, ContainerRef | None]] = [
            ("pod", f"{ref.path}.securityContext", ref.sc.get("seLinuxOptions"), None)
        ]
        places += [(_cname(c), c.path, c.sc.get("seLinuxOptions"), c) for c in ref.containers]
        for who, path, opts, c in places:
            if not isinstance(opts, dict):
                continue
            field_prefix = "seLinuxOptions" if c is None else "securityContext.seLinuxOptions"
            t = opts.get("type") or ""
            if t not in types:
                out.append(
                    _v(
                        "seLinuxOptions",
                        "seLinuxOptions",
                        f'{who} set forbidden securityContext.seLinuxOptions: type "{t}"',
                        path,
                        f"{field_prefix}.type",
                        t,
                        c,
                    )
                )
            for key in ("user", "role"):
                if opts.get(key):
                    out.append(
                        _v(
                            "seLinuxOptions",
                            "seLinuxOptions",
                            f'{who} set forbidden securityContext.seLinuxOptions: {key} "{opts[key]}"',
                            path,
                            f"{field_prefix}.{key}",
                            opts[key],
                            c,
                        )
                    )
        return out

    return check


def _proc_mount(user_ns_relaxed: bool, cid: str) -> CheckFn:
    def check(ref: PodSpecRef) -> Hits:
        if user_ns_relaxed and ref.host_users_false:
            return []
        return [
            _v(
                cid,
                "procMount",
                f'{_cname(c)} must not set securityContext.procMount to "{c.sc.get("procMount")}"',
                c.path,
                "securityContext.procMount",
                c.sc.get("procMount"),
                c,
            )
            for c in ref.containers
            if c.sc.get("procMount") not in (None, "Default")
        ]

    return check


_SECCOMP_POD_ANN = "seccomp.security.alpha.kubernetes.io/pod"
_SECCOMP_CONTAINER_ANN = "container.seccomp.security.alpha.kubernetes.io/"


def _seccomp_ann_ok(val: Any) -> bool:
    return isinstance(val, str) and (
        val in ("runtime/default", "docker/default") or val.startswith("localhost/")
    )


def seccomp_baseline_1_0(ref: PodSpecRef) -> Hits:
    out = []
    meta_path = ref.path.rsplit("spec", 1)[0] + "metadata" if ref.path != "spec" else "metadata"
    ann = ref.annotations
    if _SECCOMP_POD_ANN in ann and not _seccomp_ann_ok(ann[_SECCOMP_POD_ANN]):
        out.append(
            _v(
                "seccompProfile_baseline",
                "seccompProfile",
                f'forbidden annotation {_SECCOMP_POD_ANN}="{ann[_SECCOMP_POD_ANN]}"',
                f"{meta_path}.annotations",
                _SECCOMP_POD_ANN,
                ann[_SECCOMP_POD_ANN],
            )
        )
    names = {c.name: c for c in ref.containers}
    for key, val in sorted(ann.items(), key=lambda kv: str(kv[0])):
        if isinstance(key, str) and key.startswith(_SECCOMP_CONTAINER_ANN) and not _seccomp_ann_ok(val):
            out.append(
                _v(
                    "seccompProfile_baseline",
                    "seccompProfile",
                    f'forbidden annotation {key}="{val}"',
                    f"{meta_path}.annotations",
                    key,
                    val,
                    names.get(key[len(_SECCOMP_CONTAINER_ANN) :]),
                )
            )
    return out


_SECCOMP_OK = ("RuntimeDefault", "Localhost")


def seccomp_baseline_1_19(ref: PodSpecRef) -> Hits:
    out = []
    pod_t = _g(ref.sc, "seccompProfile", "type")
    if isinstance(ref.sc.get("seccompProfile"), dict) and pod_t not in _SECCOMP_OK and pod_t is not None:
        out.append(
            _v(
                "seccompProfile_baseline",
                "seccompProfile",
                f'pod must not set securityContext.seccompProfile.type to "{pod_t}"',
                f"{ref.path}.securityContext",
                "seccompProfile.type",
                pod_t,
            )
        )
    for c in ref.containers:
        t = _g(c.sc, "seccompProfile", "type")
        if isinstance(c.sc.get("seccompProfile"), dict) and t is not None and t not in _SECCOMP_OK:
            out.append(
                _v(
                    "seccompProfile_baseline",
                    "seccompProfile",
                    f'{_cname(c)} must not set securityContext.seccompProfile.type to "{t}"',
                    c.path,
                    "securityContext.seccompProfile.type",
                    t,
                    c,
                )
            )
    return out


_SYSCTLS: dict[int, frozenset[str]] = {}
_SYSCTLS[0] = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_unprivileged_port_start",
    }
)
_SYSCTLS[27] = _SYSCTLS[0] | {"net.ipv4.ip_local_reserved_ports"}
_SYSCTLS[29] = _SYSCTLS[27] | {
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
_SYSCTLS[32] = _SYSCTLS[29] | {"net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"}
_SYSCTLS[37] = _SYSCTLS[32] | {"net.ipv4.tcp_slow_start_after_idle", "net.ipv4.tcp_notsent_lowat"}


def _sysctls(allowed: frozenset[str]) -> CheckFn:
    def check(ref: PodSpecRef) -> Hits:
        items = ref.sc.get("sysctls")
        out = []
        for i, s in enumerate(items if isinstance(items, list) else []):
            name = _g(s, "name")
            if name not in allowed:
                out.append(
                    _v(
                        "sysctls",
                        "forbidden sysctls",
                        str(name),
                        f"{ref.path}.securityContext",
                        f"sysctls[{i}].name",
                        name,
                    )
                )
        return out

    return check


def windows_host_process(ref: PodSpecRef) -> Hits:
    out = []
    if _g(ref.sc, "windowsOptions", "hostProcess") is True:
        out.append(
            _v(
                "windowsHostProcess",
                "hostProcess",
                "pod must not set securityContext.windowsOptions.hostProcess=true",
                f"{ref.path}.securityContext",
                "windowsOptions.hostProcess",
                True,
            )
        )
    for c in ref.containers:
        if _g(c.sc, "windowsOptions", "hostProcess") is True:
            out.append(
                _v(
                    "windowsHostProcess",
                    "hostProcess",
                    f"{_cname(c)} must not set securityContext.windowsOptions.hostProcess=true",
                    c.path,
                    "securityContext.windowsOptions.hostProcess",
                    True,
                    c,
                )
            )
    return out


def host_probes(ref: PodSpecRef) -> Hits:
    out = []
    for c in ref.containers:
        handlers = [(p, c.data.get(p)) for p in ("livenessProbe", "readinessProbe", "startupProbe")]
        life = c.data.get("lifecycle")
        if isinstance(life, dict):
            handlers += [(f"lifecycle.{k}", life.get(k)) for k in ("postStart", "preStop")]
        for where, h in handlers:
            for kind in ("httpGet", "tcpSocket"):
                host = _g(h, kind, "host")
                if host not in (None, ""):
                    out.append(
                        _v(
                            "hostProbesAndHostLifecycle",
                            "probe or lifecycle host",
                            f'{_cname(c)} uses {where} {kind}.host "{host}"',
                            c.path,
                            f"{where}.{kind}.host",
                            host,
                            c,
                        )
                    )
    return out


# ---- restricted -------------------------------------------------------------------------------------

RESTRICTED_VOLUME_SOURCES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "image",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)


def restricted_volumes(ref: PodSpecRef) -> Hits:
    out = []
    for i, v in _volumes(ref):
        sources = [k for k in v if k != "name" and v[k] is not None]
        bad = [k for k in sources if k not in RESTRICTED_VOLUME_SOURCES]
        if bad:
            out.append(
                _v(
                    "restrictedVolumes",
                    "restricted volume types",
                    f'volume "{v.get("name")}" uses restricted volume type "{bad[0]}"',
                    f"{ref.path}.volumes[{i}]",
                    bad[0],
                    bad[0],
                )
            )
    return out


def _windows_exempt(check: CheckFn) -> CheckFn:
    def wrapped(ref: PodSpecRef) -> Hits:
        return [] if ref.is_windows else check(ref)

    return wrapped


def _host_users_exempt(check: CheckFn) -> CheckFn:
    def wrapped(ref: PodSpecRef) -> Hits:
        return [] if ref.host_users_false else check(ref)

    return wrapped


def allow_privilege_escalation(ref: PodSpecRef) -> Hits:
    return [
        _v(
            "allowPrivilegeEscalation",
            "allowPrivilegeEscalation != false",
            f"{_cname(c)} must set securityContext.allowPrivilegeEscalation=false",
            c.path,
            "securityContext.allowPrivilegeEscalation",
            c.sc.get("allowPrivilegeEscalation"),
            c,
        )
        for c in ref.containers
        if c.sc.get("allowPrivilegeEscalation") is not False
    ]


def run_as_non_root(ref: PodSpecRef) -> Hits:
    out = []
    pod_v = ref.sc.get("runAsNonRoot")
    if pod_v is False:
        out.append(
            _v(
                "runAsNonRoot",
                "runAsNonRoot != true",
                "pod must not set securityContext.runAsNonRoot=false",
                f"{ref.path}.securityContext",
                "runAsNonRoot",
                False,
            )
        )
    pod_true = pod_v is True
    for c in ref.containers:
        v = c.sc.get("runAsNonRoot")
        if v is not None:
            if v is not True:
                out.append(
                    _v(
                        "runAsNonRoot",
                        "runAsNonRoot != true",
                        f"{_cname(c)} must not set securityContext.runAsNonRoot=false",
                        c.path,
                        "securityContext.runAsNonRoot",
                        v,
                        c,
                    )
                )
        elif not pod_true:
            out.append(
                _v(
                    "runAsNonRoot",
                    "runAsNonRoot != true",
                    f"pod or {_cname(c)} must set securityContext.runAsNonRoot=true",
                    c.path,
                    "securityContext.runAsNonRoot",
                    None,
                    c,
                )
            )
    return out


def run_as_user(ref: PodSpecRef) -> Hits:
    out = []
    if ref.sc.get("runAsUser") == 0 and ref.sc.get("runAsUser") is not False:
        out.append(
            _v(
                "runAsUser",
                "runAsUser=0",
                "pod must not set runAsUser=0",
                f"{ref.path}.securityContext",
                "runAsUser",
                0,
            )
        )
    for c in ref.containers:
        v = c.sc.get("runAsUser")
        if v == 0 and v is not False:
            out.append(
                _v(
                    "runAsUser",
                    "runAsUser=0",
                    f"{_cname(c)} must not set runAsUser=0",
                    c.path,
                    "securityContext.runAsUser",
                    0,
                    c,
                )
            )
    return out


def seccomp_restricted(ref: PodSpecRef) -> Hits:
    out = []
    pod_prof = ref.sc.get("seccompProfile")
    pod_set = False
    if pod_prof is not None:
        t = _g(pod_prof, "type")
        if t in _SECCOMP_OK:
            pod_set = True
        else:
            out.append(
                _v(
                    "seccompProfile_restricted",
                    "seccompProfile",
                    f'pod must not set securityContext.seccompProfile.type to "{t}"',
                    f"{ref.path}.securityContext",
                    "seccompProfile.type",
                    t,
                )
            )
    for c in ref.containers:
        prof = c.sc.get("seccompProfile")
        if prof is not None:
            t = _g(prof, "type")
            if t not in _SECCOMP_OK:
                out.append(
                    _v(
                        "seccompProfile_restricted",
                        "seccompProfile",
                        f'{_cname(c)} must not set securityContext.seccompProfile.type to "{t}"',
                        c.path,
                        "securityContext.seccompProfile.type",
                        t,
                        c,
                    )
                )
        elif not pod_set:
            out.append(
                _v(
                    "seccompProfile_restricted",
                    "seccompProfile",
                    f"pod or {_cname(c)} must set securityContext.seccompProfile.type to "
                    '"RuntimeDefault" or "Localhost"',
                    c.path,
                    "securityContext.seccompProfile.type",
                    None,
                    c,
                )
            )
    return out


def capabilities_restricted(ref: PodSpecRef) -> Hits:
    out = []
    for c in ref.containers:
        caps = c.sc.get("capabilities")
        drop = _g(caps, "drop")
        if not (isinstance(drop, list) and "ALL" in drop):
            out.append(
                _v(
                    "capabilities_restricted",
                    "unrestricted capabilities",
                    f'{_cname(c)} must set securityContext.capabilities.drop=["ALL"]',
                    c.path,
                    "securityContext.capabilities.drop",
                    drop,
                    c,
                )
            )
        add = _g(caps, "add")
        for cap in add if isinstance(add, list) else []:
            if cap != "NET_BIND_SERVICE":
                out.append(
                    _v(
                        "capabilities_restricted",
                        "unrestricted capabilities",
                        f'{_cname(c)} must not include "{cap}" in securityContext.capabilities.add',
                        c.path,
                        "securityContext.capabilities.add",
                        cap,
                        c,
                    )
                )
    return out


# ---- the registry -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Revision:
    minimum: int  # minor version
    fn: CheckFn
    overrides: tuple[str, ...] = ()


@dataclass(frozen=True)
class Check:
    id: str
    level: str
    revisions: tuple[Revision, ...]

    def revision(self, minor: int) -> Revision | None:
        found = None
        for r in self.revisions:
            if r.minimum <= minor:
                found = r
        return found


CHECKS: tuple[Check, ...] = (
    Check("hostNamespaces", "baseline", (Revision(0, host_namespaces),)),
    Check("privileged", "baseline", (Revision(0, privileged),)),
    Check("capabilities_baseline", "baseline", (Revision(0, capabilities_baseline),)),
    Check("hostPathVolumes", "baseline", (Revision(0, host_path_volumes),)),
    Check("hostPorts", "baseline", (Revision(0, host_ports),)),
    Check("appArmorProfile", "baseline", (Revision(0, app_armor),)),
    Check(
        "seLinuxOptions",
        "baseline",
        (Revision(0, _selinux(_SELINUX_TYPES_1_0)), Revision(31, _selinux(_SELINUX_TYPES_1_31))),
    ),
    Check(
        "procMount",
        "baseline",
        (Revision(0, _proc_mount(False, "procMount")), Revision(35, _proc_mount(True, "procMount"))),
    ),
    Check(
        "seccompProfile_baseline",
        "baseline",
        (Revision(0, seccomp_baseline_1_0), Revision(19, seccomp_baseline_1_19)),
    ),
    Check("sysctls", "baseline", tuple(Revision(m, _sysctls(s)) for m, s in sorted(_SYSCTLS.items()))),
    Check("windowsHostProcess", "baseline", (Revision(0, windows_host_process),)),
    Check("hostProbesAndHostLifecycle", "baseline", (Revision(34, host_probes),)),
    Check("restrictedVolumes", "restricted", (Revision(0, restricted_volumes, ("hostPathVolumes",)),)),
    Check(
        "allowPrivilegeEscalation",
        "restricted",
        (Revision(8, allow_privilege_escalation), Revision(25, _windows_exempt(allow_privilege_escalation))),
    ),
    Check(
        "runAsNonRoot",
        "restricted",
        (Revision(0, run_as_non_root), Revision(35, _host_users_exempt(run_as_non_root))),
    ),
    Check(
        "runAsUser", "restricted", (Revision(23, run_as_user), Revision(35, _host_users_exempt(run_as_user)))
    ),
    Check(
        "seccompProfile_restricted",
        "restricted",
        (
            Revision(19, seccomp_restricted, ("seccompProfile_baseline",)),
            Revision(25, _windows_exempt(seccomp_restricted), ("seccompProfile_baseline",)),
        ),
    ),
    Check(
        "capabilities_restricted",
        "restricted",
        (
            Revision(22, capabilities_restricted, ("capabilities_baseline",)),
            Revision(25, _windows_exempt(capabilities_restricted), ("capabilities_baseline",)),
        ),
    ),
    Check(
        "procMount_restricted",
        "restricted",
        (Revision(35, _proc_mount(False, "procMount_restricted"), ("procMount",)),),
    ),
)
CHECK_IDS = tuple(c.id for c in CHECKS)


@cache
def active_checks(level: str, minor: int) -> tuple[tuple[Check, Revision], ...]:
    if level not in LEVELS:
        raise ValueError(f"level {level!r} is not one of {', '.join(LEVELS)}")
    if level == "privileged":
        return ()
    wanted = ("baseline",) if level == "baseline" else ("baseline", "restricted")
    chosen = [(c, r) for c in CHECKS if c.level in wanted and (r := c.revision(minor)) is not None]
    overridden = {o for _, r in chosen for o in r.overrides}
    return tuple((c, r) for c, r in chosen if c.id not in overridden)


def evaluate_pss(
    obj_or_ref: Any, level: str = "restricted", version: str | int | None = "latest"
) -> list[Violation]:
    """Violations of ``level`` at ``version`` for every pod spec in an object (or one :class:`PodSpecRef`)."""
    minor = version if isinstance(version, int) else parse_version(version)
    refs = [obj_or_ref] if isinstance(obj_or_ref, PodSpecRef) else locate(obj_or_ref)[0]
    out: list[Violation] = []
    checks = active_checks(level, minor)
    for ref in refs:
        for _check, rev in checks:
            out.extend(rev.fn(ref))
    return out


def allowed(obj_or_ref: Any, level: str, version: str | int | None = "latest") -> bool:
    return not evaluate_pss(obj_or_ref, level, version)


def admission_message(violations: list[Violation], level: str, version: str = "latest") -> str:
    """PSA's message: ``violates PodSecurity "<level>:<version>": <reason> (<detail>), ...``; "" when
    allowed."""
    if not violations:
        return ""
    groups: dict[str, list[Violation]] = {}
    for v in violations:
        groups.setdefault(v.check_id, []).append(v)
    parts = []
    for cid in CHECK_IDS:
        vs = groups.get(cid)
        if not vs:
            continue
        details = list(dict.fromkeys(v.detail for v in vs))
        if len(details) > 5:
            details = details[:5] + [f"and {len(details) - 5} more"]
        reason = vs[0].reason
        if cid == "appArmorProfile" and len(vs) > 1:
            reason = "forbidden AppArmor profiles"
        sep = ", " if cid in ("hostNamespaces", "sysctls") else "; "  # PSA lists these as one comma list
        parts.append(f"{reason} ({sep.join(details)})")
    return f'violates PodSecurity "{level}:{version}": {", ".join(parts)}'


__all__ = [
    "CHECKS",
    "CHECK_IDS",
    "LATEST_MINOR",
    "LEVELS",
    "PolicyVersionError",
    "Violation",
    "active_checks",
    "admission_message",
    "allowed",
    "evaluate_pss",
    "parse_version",
    "quote_names",
    "version_label",
]
