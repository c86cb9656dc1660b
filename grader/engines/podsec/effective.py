"""Effective security settings of a container as the kubelet computes them, and the CKS hardening findings.

- ``runAsUser``, ``runAsGroup``, ``runAsNonRoot``, ``seccompProfile``, ``seLinuxOptions``, ``windowsOptions``,
  ``appArmorProfile``: the container's ``securityContext`` wins, else the pod's, else unset (image default).
- ``privileged``, ``readOnlyRootFilesystem``, ``capabilities``, ``procMount``, ``allowPrivilegeEscalation``:
  container only (the pod securityContext has no such fields).
- Privilege escalation is allowed when ``allowPrivilegeEscalation`` is true or unset (the kubelet sets
  no_new_privs only for an explicit false), and always when the container is privileged or adds
  ``CAP_SYS_ADMIN`` (the API documents both as "AllowPrivilegeEscalation is true always").
- Invalid types (``runAsUser: "0"``) are reported by :func:`model.validate`; here they read pessimistically:
  an invalid value never counts as the safe one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from grader.engines.podsec.model import ContainerRef, PodSpecRef, locate, type_ok

INVALID = object()  # a value of the wrong type

# Volume sources the kubelet always mounts read-only.
READ_ONLY_SOURCES = frozenset({"configMap", "secret", "downwardAPI", "projected", "image"})
# Known volume source keys (anything else in a volume is an unknown source).
VOLUME_SOURCES = frozenset(
    {
        "hostPath",
        "emptyDir",
        "gcePersistentDisk",
        "awsElasticBlockStore",
        "gitRepo",
        "secret",
        "nfs",
        "iscsi",
        "glusterfs",
        "persistentVolumeClaim",
        "rbd",
        "flexVolume",
        "cinder",
        "cephfs",
        "flocker",
        "downwardAPI",
        "fc",
        "azureFile",
        "configMap",
        "vsphereVolume",
        "quobyte",
        "azureDisk",
        "photonPersistentDisk",
        "projected",
        "portworxVolume",
        "scaleIO",
        "storageos",
        "csi",
        "ephemeral",
        "image",
    }
)


def _typed(d: dict[str, Any], key: str, want: str) -> Any:
    if key not in d or d[key] is None:
        return None
    return d[key] if type_ok(d[key], want) else INVALID


@dataclass(frozen=True)
class Setting:
    """An effective value and where it came from: "container", "pod", "default" or "implied"."""

    value: Any
    source: str
    raw: Any = None

    @property
    def invalid(self) -> bool:
        return self.value is INVALID

    def show(self) -> str:
        if self.value is INVALID:
            return f"{self.raw!r} (invalid type)"
        if self.source == "default":
            return "unset"
        return _yaml_scalar(self.value)


def _yaml_scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    return str(v)


@dataclass(frozen=True)
class Effective:
    privileged: Setting
    allow_privilege_escalation: Setting  # value True/False; source "implied" when privileged/CAP_SYS_ADMIN
    read_only_root_filesystem: Setting
    run_as_user: Setting
    run_as_group: Setting
    run_as_non_root: Setting
    seccomp_type: Setting
    se_linux: Setting
    proc_mount: Setting
    caps_add: tuple[str, ...]
    caps_drop: tuple[str, ...]

    @property
    def runs_as_root(self) -> bool | None:
        """True: uid 0 for sure; False: proven non-root; None: the image decides (maybe root)."""
        uid = self.run_as_user
        if uid.invalid:
            return True  # pessimistic: cannot prove non-root
        if uid.value == 0:
            return True
        if isinstance(uid.value, int):
            return False
        nonroot = self.run_as_non_root
        if nonroot.value is True:
            return False  # the kubelet refuses to start a root image
        return None


def _layered(c: dict[str, Any], p: dict[str, Any], key: str, want: str) -> Setting:
    if key in c and c[key] is not None:
        v = _typed(c, key, want)
        return Setting(v, "container", c[key])
    if key in p and p[key] is not None:
        v = _typed(p, key, want)
        return Setting(v, "pod", p[key])
    return Setting(None, "default")


def _own(c: dict[str, Any], key: str, want: str) -> Setting:
    if key in c and c[key] is not None:
        return Setting(_typed(c, key, want), "container", c[key])
    return Setting(None, "default")


def _str_list(v: Any) -> tuple[str, ...]:
    if not isinstance(v, list):
        return ()
    return tuple(x if isinstance(x, str) else str(x) for x in v)


def effective(ref: PodSpecRef, container: ContainerRef) -> Effective:
    c, p = container.sc, ref.sc
    priv = _own(c, "privileged", "boolean")
    caps = c.get("capabilities") if isinstance(c.get("capabilities"), dict) else {}
    add, drop = _str_list(caps.get("add")), _str_list(caps.get("drop"))
    ape = _own(c, "allowPrivilegeEscalation", "boolean")
    if priv.value is True or priv.invalid:
        ape = Setting(True, "implied", "privileged: true")
    elif "CAP_SYS_ADMIN" in add or "SYS_ADMIN" in add:
        ape = Setting(True, "implied", "capabilities.add SYS_ADMIN")
    elif ape.invalid:
        ape = Setting(True, "container", c.get("allowPrivilegeEscalation"))
    elif ape.value is None:
        ape = Setting(True, "default")
    seccomp = _layered(c, p, "seccompProfile", "object")
    if isinstance(seccomp.value, dict):
        seccomp = Setting(seccomp.value.get("type"), seccomp.source, seccomp.raw)
    return Effective(
        privileged=priv,
        allow_privilege_escalation=ape,
        read_only_root_filesystem=_own(c, "readOnlyRootFilesystem", "boolean"),
        run_as_user=_layered(c, p, "runAsUser", "integer"),
        run_as_group=_layered(c, p, "runAsGroup", "integer"),
        run_as_non_root=_layered(c, p, "runAsNonRoot", "boolean"),
        seccomp_type=seccomp,
        se_linux=_layered(c, p, "seLinuxOptions", "object"),
        proc_mount=_own(c, "procMount", "string"),
        caps_add=add,
        caps_drop=drop,
    )


# ---- volumes and mounts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Mount:
    container: str
    container_path: str  # e.g. spec.template.spec.containers[0]
    mount_path: str
    volume: str
    source: (
        str | None
    )  # emptyDir, hostPath, configMap, ... ; None = no such volume; "unknown" = unknown source
    writable: bool
    sub_path: str | None = None


def volume_sources(ref: PodSpecRef) -> dict[str, str]:
    """volume name -> its source type (API defaulting: a volume with no source is an emptyDir)."""
    out: dict[str, str] = {}
    vols = ref.spec.get("volumes")
    if not isinstance(vols, list):
        return out
    for v in vols:
        if not isinstance(v, dict) or not isinstance(v.get("name"), str):
            continue
        keys = [k for k in v if k != "name" and v[k] is not None]
        known = [k for k in keys if k in VOLUME_SOURCES]
        out[v["name"]] = known[0] if known else ("unknown" if keys else "emptyDir")
    return out


def _volume_read_only(vol: dict[str, Any], source: str) -> bool:
    if source in READ_ONLY_SOURCES:
        return True
    body = vol.get(source)
    return isinstance(body, dict) and body.get("readOnly") is True


def mounts(ref: PodSpecRef, container: ContainerRef) -> list[Mount]:
    vols = (
        {
            v["name"]: v
            for v in ref.spec.get("volumes") or []
            if isinstance(v, dict) and isinstance(v.get("name"), str)
        }
        if isinstance(ref.spec.get("volumes"), list)
        else {}
    )
    sources = volume_sources(ref)
    out = []
    vms = container.data.get("volumeMounts")
    for vm in vms if isinstance(vms, list) else []:
        if not isinstance(vm, dict):
            continue
        name = vm.get("name") if isinstance(vm.get("name"), str) else ""
        src = sources.get(name)
        ro = vm.get("readOnly") is True or (src is not None and _volume_read_only(vols.get(name, {}), src))
        out.append(
            Mount(
                container.name,
                container.path,
                str(vm.get("mountPath") or ""),
                name,
                src,
                writable=src is not None and not ro,
                sub_path=vm.get("subPath") if isinstance(vm.get("subPath"), str) else None,
            )
        )
    return out


def writable_paths(ref: PodSpecRef, container: ContainerRef) -> list[Mount]:
    return [m for m in mounts(ref, container) if m.writable]


# ---- CKS hardening findings -----------------------------------------------------------------------
# The settings the CKS labs care about, by effective value. Not Pod Security Standards: see pss.py.

HARDENING_IDS = (
    "privileged",
    "hostNamespaces",
    "allowPrivilegeEscalation",
    "runAsRoot",
    "readOnlyRootFilesystem",
)
ELEVATED_IDS = ("privileged", "hostNamespaces", "allowPrivilegeEscalation", "runAsRoot")


@dataclass(frozen=True)
class Finding:
    check_id: str
    message: str
    path: str  # container path, or the pod spec path for pod-level settings
    field: str
    value: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check_id,
            "message": self.message,
            "path": self.path,
            "field": self.field,
            "value": self.value,
        }


def _field_of(setting: Setting, key: str) -> str:
    return f"securityContext.{key}" + (" (from the pod)" if setting.source == "pod" else "")


def hardening_findings(obj_or_ref: Any, only: tuple[str, ...] = HARDENING_IDS) -> list[Finding]:
    """Elevated or writable settings by effective value, for every container (init and ephemeral too)."""
    refs = [obj_or_ref] if isinstance(obj_or_ref, PodSpecRef) else locate(obj_or_ref)[0]
    out: list[Finding] = []
    want = set(only)
    for ref in refs:
        if "hostNamespaces" in want:
            for key in ("hostNetwork", "hostPID", "hostIPC"):
                v = ref.spec.get(key)
                if v is True or (v is not None and not isinstance(v, bool)):
                    out.append(
                        Finding(
                            "hostNamespaces",
                            f"shares the node's {key[4:].lower()} namespace",
                            ref.path,
                            key,
                            _yaml_scalar(v) if isinstance(v, bool) else f"{v!r} (invalid type)",
                        )
                    )
        for c in ref.containers:
            eff = effective(ref, c)
            if "privileged" in want and (eff.privileged.value is True or eff.privileged.invalid):
                out.append(
                    Finding(
                        "privileged",
                        f"container {c.name!r} is privileged",
                        c.path,
                        "securityContext.privileged",
                        eff.privileged.show(),
                    )
                )
            ape = eff.allow_privilege_escalation
            if "allowPrivilegeEscalation" in want and ape.value is not False:
                why = {"implied": f"implied by {ape.raw}", "default": "unset (the kubelet allows escalation)"}
                out.append(
                    Finding(
                        "allowPrivilegeEscalation",
                        f"container {c.name!r} may gain privileges (allowPrivilegeEscalation is not false)",
                        c.path,
                        "securityContext.allowPrivilegeEscalation",
                        why.get(ape.source, ape.show()),
                    )
                )
            if "runAsRoot" in want:
                root = eff.runs_as_root
                if root is not False:
                    uid = eff.run_as_user
                    if root:
                        msg = f"container {c.name!r} runs as root (uid 0)"
                        value = uid.show()
                        fld = _field_of(uid, "runAsUser")
                    else:
                        msg = (
                            f"container {c.name!r} may run as root: no runAsUser > 0 and no runAsNonRoot: "
                            "true, so the image's user decides (runAsNonRoot: true suits only an image "
                            "that runs as non-root: the kubelet refuses to start a root image, e.g. nginx, "
                            "with it)"
                        )
                        value = "unset"
                        fld = "securityContext.runAsUser"
                    out.append(Finding("runAsRoot", msg, c.path, fld, value))
            ro = eff.read_only_root_filesystem
            if "readOnlyRootFilesystem" in want and ro.value is not True:
                out.append(
                    Finding(
                        "readOnlyRootFilesystem",
                        f"container {c.name!r} has a writable root filesystem",
                        c.path,
                        "securityContext.readOnlyRootFilesystem",
                        ro.show(),
                    )
                )
    return out


def elevated_findings(obj_or_ref: Any) -> list[Finding]:
    """Only the elevated-privilege findings (what lab6 calls an offender)."""
    return hardening_findings(obj_or_ref, ELEVATED_IDS)
