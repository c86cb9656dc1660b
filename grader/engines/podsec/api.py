"""What kube-apiserver (the pinned release) would refuse in a Pod or workload manifest, with the status
and words it uses.

``api_rejects(obj, field_validation="Strict")`` returns every :class:`ApiProblem`; an empty list means the
API accepts the object's pod spec. Pure: no I/O. Shared with the cluster test double, which answers a
create/update with the first problem's ``status`` and ``message``.

Order and codes as the apiserver applies them (``../shared/reference/cluster-double.md`` section 4):

1. decoding, 400 BadRequest: a value of the wrong JSON type (``privileged: "true"``), whatever the field
   validation; with ``field_validation="Strict"`` (kubectl's default, ``--validate=strict``) also every
   unknown field (``spec.securityContext.readOnlyRootFilesystem``, which exists only per container).
   ``"Warn"`` (the server's default for API clients) and ``"Ignore"`` accept unknown fields and drop them:
   :func:`unknown_fields` lists them for the ``Warning`` headers.
2. validation, 422 Invalid: ``allowPrivilegeEscalation: false`` with ``privileged: true`` or with the literal
   capability ``CAP_SYS_ADMIN`` (``SYS_ADMIN`` passes validation), a volumeMount naming no volume, duplicate
   volume / container names or mount paths, a volume with two sources, a container without name or image,
   no containers, ``procMount: Unmasked`` without ``hostUsers: false``, negative ``runAsUser``, a Deployment
   whose selector does not match its template labels.

Only the fields that pod-security labs touch are type-checked and schema-checked: the object's top level and
metadata, the workload spec and template, the pod spec, containers, security contexts, volume mounts,
volumes (their top level), ports, capabilities and seccomp profiles. Anything deeper is left to the API.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from grader.engines.objectmeta import OBJECT_META_FIELDS
from grader.engines.podsec.effective import VOLUME_SOURCES
from grader.engines.podsec.model import CONTAINER_FIELDS, POD_SPEC_PATHS, identity

# kind -> (group for messages, API version in decoding messages)
_GROUPS = {
    "Pod": "",
    "PodTemplate": "",
    "ReplicationController": "",
    "Deployment": "apps",
    "ReplicaSet": "apps",
    "StatefulSet": "apps",
    "DaemonSet": "apps",
    "Job": "batch",
    "CronJob": "batch",
}

# ---- the schema (field names of the pinned release; generous: alpha fields the server's decoder knows) -----

_OBJECT = {"apiVersion", "kind", "metadata", "spec", "status"}
_POD_TEMPLATE_OBJECT = {"apiVersion", "kind", "metadata", "template"}
_WORKLOAD_SPEC = {
    "Deployment": {
        "replicas",
        "selector",
        "template",
        "strategy",
        "minReadySeconds",
        "revisionHistoryLimit",
        "paused",
        "progressDeadlineSeconds",
    },
    "ReplicaSet": {"replicas", "minReadySeconds", "selector", "template"},
    "ReplicationController": {"replicas", "minReadySeconds", "selector", "template"},
    "StatefulSet": {
        "replicas",
        "selector",
        "template",
        "volumeClaimTemplates",
        "serviceName",
        "podManagementPolicy",
        "updateStrategy",
        "revisionHistoryLimit",
        "minReadySeconds",
        "persistentVolumeClaimRetentionPolicy",
        "ordinals",
    },
    "DaemonSet": {"selector", "template", "updateStrategy", "minReadySeconds", "revisionHistoryLimit"},
    "Job": {
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "podFailurePolicy",
        "successPolicy",
        "backoffLimit",
        "backoffLimitPerIndex",
        "maxFailedIndexes",
        "selector",
        "manualSelector",
        "template",
        "ttlSecondsAfterFinished",
        "completionMode",
        "suspend",
        "podReplacementPolicy",
        "managedBy",
    },
}
_TEMPLATE = {"metadata", "spec"}
_POD_SPEC = {
    "volumes",
    "initContainers",
    "containers",
    "ephemeralContainers",
    "restartPolicy",
    "terminationGracePeriodSeconds",
    "activeDeadlineSeconds",
    "dnsPolicy",
    "nodeSelector",
    "serviceAccountName",
    "serviceAccount",
    "automountServiceAccountToken",
    "nodeName",
    "hostNetwork",
    "hostPID",
    "hostIPC",
    "shareProcessNamespace",
    "securityContext",
    "imagePullSecrets",
    "hostname",
    "subdomain",
    "affinity",
    "schedulerName",
    "tolerations",
    "hostAliases",
    "priorityClassName",
    "priority",
    "dnsConfig",
    "readinessGates",
    "runtimeClassName",
    "enableServiceLinks",
    "preemptionPolicy",
    "overhead",
    "topologySpreadConstraints",
    "setHostnameAsFQDN",
    "os",
    "hostUsers",
    "schedulingGates",
    "resourceClaims",
    "resources",
    "hostnameOverride",
    "workloadRef",
}
_CONTAINER = {
    "name",
    "image",
    "command",
    "args",
    "workingDir",
    "ports",
    "envFrom",
    "env",
    "resources",
    "resizePolicy",
    "restartPolicy",
    "restartPolicyRules",
    "volumeMounts",
    "volumeDevices",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "lifecycle",
    "terminationMessagePath",
    "terminationMessagePolicy",
    "imagePullPolicy",
    "securityContext",
    "stdin",
    "stdinOnce",
    "tty",
}
_EPHEMERAL_CONTAINER = _CONTAINER | {"targetContainerName"}
_SC_CONTAINER = {
    "capabilities",
    "privileged",
    "seLinuxOptions",
    "windowsOptions",
    "runAsUser",
    "runAsGroup",
    "runAsNonRoot",
    "readOnlyRootFilesystem",
    "allowPrivilegeEscalation",
    "procMount",
    "seccompProfile",
    "appArmorProfile",
}
_SC_POD = {
    "seLinuxOptions",
    "windowsOptions",
    "runAsUser",
    "runAsGroup",
    "runAsNonRoot",
    "supplementalGroups",
    "supplementalGroupsPolicy",
    "fsGroup",
    "sysctls",
    "fsGroupChangePolicy",
    "seccompProfile",
    "appArmorProfile",
    "seLinuxChangePolicy",
}
_VOLUME_MOUNT = {
    "name",
    "readOnly",
    "recursiveReadOnly",
    "mountPath",
    "subPath",
    "mountPropagation",
    "subPathExpr",
}
_PORT = {"name", "hostPort", "containerPort", "protocol", "hostIP"}
_CAPABILITIES = {"add", "drop"}
_SECCOMP = {"type", "localhostProfile"}

# Go types of the fields whose JSON type the decoder enforces (what a quoted YAML value breaks).
_B, _I, _S, _M, _L = "bool", "int", "string", "object", "list"
_TYPES_SC_CONTAINER = {
    "privileged": _B,
    "allowPrivilegeEscalation": _B,
    "readOnlyRootFilesystem": _B,
    "runAsNonRoot": _B,
    "runAsUser": _I,
    "runAsGroup": _I,
    "procMount": _S,
    "capabilities": _M,
    "seccompProfile": _M,
    "seLinuxOptions": _M,
    "windowsOptions": _M,
    "appArmorProfile": _M,
}
_TYPES_SC_POD = {
    "runAsNonRoot": _B,
    "runAsUser": _I,
    "runAsGroup": _I,
    "fsGroup": _I,
    "sysctls": _L,
    "supplementalGroups": _L,
    "seccompProfile": _M,
    "seLinuxOptions": _M,
    "windowsOptions": _M,
    "appArmorProfile": _M,
}
_TYPES_POD_SPEC = {
    "hostNetwork": _B,
    "hostPID": _B,
    "hostIPC": _B,
    "hostUsers": _B,
    "shareProcessNamespace": _B,
    "automountServiceAccountToken": _B,
    "enableServiceLinks": _B,
    "volumes": _L,
    "containers": _L,
    "initContainers": _L,
    "ephemeralContainers": _L,
    "securityContext": _M,
    "nodeName": _S,
    "serviceAccountName": _S,
    "terminationGracePeriodSeconds": _I,
    "tolerations": _L,
    "nodeSelector": _M,
}
_TYPES_CONTAINER = {
    "name": _S,
    "image": _S,
    "command": _L,
    "args": _L,
    "workingDir": _S,
    "ports": _L,
    "env": _L,
    "envFrom": _L,
    "volumeMounts": _L,
    "securityContext": _M,
    "resources": _M,
    "imagePullPolicy": _S,
    "stdin": _B,
    "tty": _B,
}
_TYPES_MOUNT = {"name": _S, "mountPath": _S, "readOnly": _B, "subPath": _S}
_TYPES_PORT = {"containerPort": _I, "hostPort": _I, "protocol": _S, "name": _S}
_GO_STRUCT = {
    "sc": "SecurityContext",
    "psc": "PodSecurityContext",
    "spec": "PodSpec",
    "c": "Container",
    "vm": "VolumeMount",
    "port": "ContainerPort",
}


@dataclass(frozen=True)
class ApiProblem:
    """One reason the API refuses the object."""

    status: int  # 400 (decoding / strict field validation) or 422 (validation)
    reason: str  # "BadRequest" | "Invalid"
    field: str  # the object's path, e.g. spec.template.spec.containers[0].securityContext
    message: str  # the API's own words for this problem (the detail)
    unknown_field: bool = False  # a field the strict decoder refuses and the Warn default drops

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


def api_rejects(obj: Any, field_validation: str = "Strict") -> list[ApiProblem]:
    """Every reason kube-apiserver would refuse ``obj`` (a Pod or a workload), decoding problems first.

    ``field_validation``: "Strict" (kubectl's default), "Warn" (the server's default without the
    parameter) or "Ignore"; only Strict refuses unknown fields."""
    if not isinstance(obj, dict):
        return [ApiProblem(400, "BadRequest", "", "the manifest is not a Kubernetes object")]
    kind = str(obj.get("kind") or "")
    if kind not in POD_SPEC_PATHS:
        return []
    decode: list[ApiProblem] = []
    _decode_object(obj, kind, decode)
    if field_validation != "Strict":
        decode = [p for p in decode if not p.unknown_field]
    if decode:
        return decode
    return _validate(obj, kind)


def unknown_fields(obj: Any) -> list[str]:
    """The unknown fields' paths (dotted, without indexes, as the API's warnings name them)."""
    if not isinstance(obj, dict) or str(obj.get("kind") or "") not in POD_SPEC_PATHS:
        return []
    out: list[ApiProblem] = []
    _decode_object(obj, str(obj.get("kind")), out)
    return [p.field for p in out if p.unknown_field]


def rejection_message(obj: Any, problems: list[ApiProblem]) -> str:
    """The ``message`` of the API's Status for these problems (the first phase that failed)."""
    if not problems:
        return ""
    kind, _ns, name = identity(obj)
    group = _GROUPS.get(kind, "")
    if problems[0].status == 400:
        version = "v1"
        head = f'{kind} in version "{version}" cannot be handled as {_a(kind)}: '
        strict = [p for p in problems if p.unknown_field]
        typed = [p for p in problems if not p.unknown_field]
        if typed:
            return head + typed[0].message
        return head + "strict decoding error: " + ", ".join(f'unknown field "{p.field}"' for p in strict)
    res = f'{kind}{"." + group if group else ""} "{name}" is invalid: '
    details = [str(p) for p in problems]
    return res + (details[0] if len(details) == 1 else "[" + ", ".join(details) + "]")


def _a(kind: str) -> str:
    return f"{'an' if kind[:1] in 'AEIOU' else 'a'} {kind}"


# ---- decoding ------------------------------------------------------------------------------------------


def _type_ok(v: Any, want: str) -> bool:
    if v is None:
        return True  # null is "unset" to the decoder
    return {
        _B: isinstance(v, bool),
        _I: isinstance(v, int) and not isinstance(v, bool),
        _S: isinstance(v, str),
        _M: isinstance(v, dict),
        _L: isinstance(v, list),
    }[want]


def _json_type(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "number"
    return {str: "string", dict: "object", list: "array"}.get(type(v), "value")


def _go_type(want: str) -> str:
    return {_B: "bool", _I: "int64", _S: "string", _M: "struct", _L: "slice"}[want]


def _strip_index(path: str) -> str:
    return re.sub(r"\[\d+\]", "", path)


def _check(
    d: dict[str, Any], known: set[str], types: dict[str, str], path: str, struct: str, out: list[ApiProblem]
) -> None:
    for key, v in d.items():
        if not isinstance(key, str) or key not in known:
            out.append(
                ApiProblem(
                    400,
                    "BadRequest",
                    _strip_index(f"{path}.{key}" if path else str(key)),
                    "unknown field",
                    unknown_field=True,
                )
            )
            continue
        want = types.get(key)
        if want and not _type_ok(v, want):
            go_path = _strip_index(f"{path}.{key}" if path else key)
            out.append(
                ApiProblem(
                    400,
                    "BadRequest",
                    f"{path}.{key}" if path else key,
                    f"json: cannot unmarshal {_json_type(v)} into Go struct field {struct}.{go_path} "
                    f"of type {_go_type(want)}",
                )
            )


def _decode_object(obj: dict[str, Any], kind: str, out: list[ApiProblem]) -> None:
    _check(obj, _POD_TEMPLATE_OBJECT if kind == "PodTemplate" else _OBJECT, {"metadata": _M}, "", kind, out)
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        _check(meta, OBJECT_META_FIELDS, {"labels": _M, "annotations": _M}, "metadata", "ObjectMeta", out)
    parts = POD_SPEC_PATHS[kind]
    node: Any = obj
    walked: list[str] = []
    for i, part in enumerate(parts[:-1]):
        node = node.get(part) if isinstance(node, dict) else None
        walked.append(part)
        if not isinstance(node, dict):
            return
        path = ".".join(walked)
        if part == "spec" and i == 0 and kind in _WORKLOAD_SPEC:
            _check(
                node,
                _WORKLOAD_SPEC[kind],
                {"template": _M, "selector": _M, "replicas": _I},
                path,
                f"{kind}Spec",
                out,
            )
        elif part == "template":
            _check(node, _TEMPLATE, {"spec": _M, "metadata": _M}, path, "PodTemplateSpec", out)
            tmeta = node.get("metadata")
            if isinstance(tmeta, dict):
                _check(
                    tmeta,
                    OBJECT_META_FIELDS,
                    {"labels": _M, "annotations": _M},
                    f"{path}.metadata",
                    "ObjectMeta",
                    out,
                )
    spec = node.get(parts[-1]) if isinstance(node, dict) else None
    if isinstance(spec, dict):
        _decode_pod_spec(spec, ".".join(parts), out)


def _decode_pod_spec(spec: dict[str, Any], base: str, out: list[ApiProblem]) -> None:
    _check(spec, _POD_SPEC, _TYPES_POD_SPEC, base, _GO_STRUCT["spec"], out)
    psc = spec.get("securityContext")
    if isinstance(psc, dict):
        _check(psc, _SC_POD, _TYPES_SC_POD, f"{base}.securityContext", _GO_STRUCT["psc"], out)
        _decode_seccomp(psc, f"{base}.securityContext", out)
    vols = spec.get("volumes")
    for i, v in enumerate(vols if isinstance(vols, list) else []):
        if isinstance(v, dict):
            _check(v, VOLUME_SOURCES | {"name"}, {"name": _S}, f"{base}.volumes[{i}]", "Volume", out)
        else:
            out.append(
                ApiProblem(
                    400,
                    "BadRequest",
                    f"{base}.volumes[{i}]",
                    f"json: cannot unmarshal {_json_type(v)} into Go value of type core.Volume",
                )
            )
    for fld in CONTAINER_FIELDS:
        items = spec.get(fld)
        for i, c in enumerate(items if isinstance(items, list) else []):
            cpath = f"{base}.{fld}[{i}]"
            if not isinstance(c, dict):
                out.append(
                    ApiProblem(
                        400,
                        "BadRequest",
                        cpath,
                        f"json: cannot unmarshal {_json_type(c)} into Go value of type core.Container",
                    )
                )
                continue
            _check(
                c,
                _EPHEMERAL_CONTAINER if fld == "ephemeralContainers" else _CONTAINER,
                _TYPES_CONTAINER,
                cpath,
                _GO_STRUCT["c"],
                out,
            )
            sc = c.get("securityContext")
            if isinstance(sc, dict):
                _check(
                    sc, _SC_CONTAINER, _TYPES_SC_CONTAINER, f"{cpath}.securityContext", _GO_STRUCT["sc"], out
                )
                caps = sc.get("capabilities")
                if isinstance(caps, dict):
                    _check(
                        caps,
                        _CAPABILITIES,
                        {"add": _L, "drop": _L},
                        f"{cpath}.securityContext.capabilities",
                        "Capabilities",
                        out,
                    )
                _decode_seccomp(sc, f"{cpath}.securityContext", out)
            for key, known, types, struct in (
                ("volumeMounts", _VOLUME_MOUNT, _TYPES_MOUNT, "vm"),
                ("ports", _PORT, _TYPES_PORT, "port"),
            ):
                items2 = c.get(key)
                for j, x in enumerate(items2 if isinstance(items2, list) else []):
                    if isinstance(x, dict):
                        _check(x, known, types, f"{cpath}.{key}[{j}]", _GO_STRUCT[struct], out)
                    else:
                        out.append(
                            ApiProblem(
                                400,
                                "BadRequest",
                                f"{cpath}.{key}[{j}]",
                                f"json: cannot unmarshal {_json_type(x)} into Go value of type "
                                f"core.{_GO_STRUCT[struct]}",
                            )
                        )


def _decode_seccomp(sc: dict[str, Any], path: str, out: list[ApiProblem]) -> None:
    prof = sc.get("seccompProfile")
    if isinstance(prof, dict):
        _check(prof, _SECCOMP, {"type": _S}, f"{path}.seccompProfile", "SeccompProfile", out)


# ---- validation (422) ------------------------------------------------------------------------------------


def _validate(obj: dict[str, Any], kind: str) -> list[ApiProblem]:
    out: list[ApiProblem] = []
    parts = POD_SPEC_PATHS[kind]
    node: Any = obj
    for part in parts:
        node = node.get(part) if isinstance(node, dict) else None
    base = ".".join(parts)
    spec = node if isinstance(node, dict) else None
    if spec is None:
        out.append(ApiProblem(422, "Invalid", base, "Required value"))
        return out
    vol_names = _validate_volumes(spec, base, out)
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        out.append(ApiProblem(422, "Invalid", f"{base}.containers", "Required value"))
    seen_names: set[str] = set()
    host_users_false = spec.get("hostUsers") is False
    psc = spec.get("securityContext") if isinstance(spec.get("securityContext"), dict) else {}
    _validate_ids(psc, f"{base}.securityContext", out)
    for fld in CONTAINER_FIELDS:
        items = spec.get(fld)
        for i, c in enumerate(items if isinstance(items, list) else []):
            if not isinstance(c, dict):
                continue
            cpath = f"{base}.{fld}[{i}]"
            _validate_container_name_and_image(c, cpath, fld, seen_names, out)
            _validate_mounts(c, cpath, vol_names, out)
            sc = c.get("securityContext") if isinstance(c.get("securityContext"), dict) else {}
            _validate_container_sc(sc, f"{cpath}.securityContext", host_users_false, out)
    if kind in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"):
        _validate_selector(obj, out)
    return out


def _validate_volumes(spec: dict[str, Any], base: str, out: list[ApiProblem]) -> dict[str, int]:
    """Each volume named once, with one source; returns name -> index for the mounts to refer to."""
    vol_names: dict[str, int] = {}
    vols = spec.get("volumes") if isinstance(spec.get("volumes"), list) else []
    for i, v in enumerate(vols):
        name = v.get("name") if isinstance(v, dict) else None
        vpath = f"{base}.volumes[{i}]"
        if not name:
            out.append(ApiProblem(422, "Invalid", f"{vpath}.name", "Required value"))
            continue
        if name in vol_names:
            out.append(ApiProblem(422, "Invalid", f"{vpath}.name", f'Duplicate value: "{name}"'))
        vol_names[name] = i
        sources = [k for k in v if k in VOLUME_SOURCES and v[k] is not None]
        if len(sources) > 1:
            out.append(
                ApiProblem(422, "Invalid", vpath, "Forbidden: may not specify more than 1 volume type")
            )
    return vol_names


def _validate_container_name_and_image(
    c: dict[str, Any], cpath: str, fld: str, seen_names: set[str], out: list[ApiProblem]
) -> None:
    """A container's name, unique across all kinds of containers, and its image (ephemeral ones aside)."""
    name = c.get("name")
    if not name:
        out.append(ApiProblem(422, "Invalid", f"{cpath}.name", "Required value"))
    elif name in seen_names:
        out.append(ApiProblem(422, "Invalid", f"{cpath}.name", f'Duplicate value: "{name}"'))
    else:
        seen_names.add(name)
    if fld != "ephemeralContainers" and not c.get("image"):
        out.append(ApiProblem(422, "Invalid", f"{cpath}.image", "Required value"))


def _validate_mounts(c: dict[str, Any], cpath: str, vol_names: dict[str, int], out: list[ApiProblem]) -> None:
    """A container's volumeMounts: each names a volume of the pod and has its own mountPath."""
    paths: set[str] = set()
    mounts = c.get("volumeMounts") if isinstance(c.get("volumeMounts"), list) else []
    for j, m in enumerate(mounts):
        if not isinstance(m, dict):
            continue
        mpath = f"{cpath}.volumeMounts[{j}]"
        if m.get("name") not in vol_names:
            out.append(ApiProblem(422, "Invalid", f"{mpath}.name", f'Not found: "{m.get("name")}"'))
        mount_path = m.get("mountPath")
        if not mount_path:
            out.append(ApiProblem(422, "Invalid", f"{mpath}.mountPath", "Required value"))
        elif mount_path in paths:
            out.append(
                ApiProblem(
                    422,
                    "Invalid",
                    f"{mpath}.mountPath",
                    f'Invalid value: "{mount_path}": must be unique',
                )
            )
        paths.add(mount_path)


def _validate_ids(sc: dict[str, Any], path: str, out: list[ApiProblem]) -> None:
    for key in ("runAsUser", "runAsGroup"):
        v = sc.get(key)
        if isinstance(v, int) and not isinstance(v, bool) and not 0 <= v <= 2147483647:
            out.append(
                ApiProblem(
                    422,
                    "Invalid",
                    f"{path}.{key}",
                    f"Invalid value: {v}: must be between 0 and 2147483647, inclusive",
                )
            )


def _validate_container_sc(
    sc: dict[str, Any], path: str, host_users_false: bool, out: list[ApiProblem]
) -> None:
    _validate_ids(sc, path, out)
    if sc.get("allowPrivilegeEscalation") is False:
        if sc.get("privileged") is True:
            out.append(
                ApiProblem(
                    422,
                    "Invalid",
                    path,
                    "Invalid value: cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
                )
            )
        caps = sc.get("capabilities") if isinstance(sc.get("capabilities"), dict) else {}
        add = caps.get("add") if isinstance(caps.get("add"), list) else []
        if "CAP_SYS_ADMIN" in add:  # exact string: the API does not know SYS_ADMIN is the same capability
            out.append(
                ApiProblem(
                    422,
                    "Invalid",
                    path,
                    "Invalid value: cannot set `allowPrivilegeEscalation` to "
                    "false and `capabilities.Add` CAP_SYS_ADMIN",
                )
            )
    pm = sc.get("procMount")
    if pm not in (None, "Default", "Unmasked"):
        out.append(
            ApiProblem(
                422,
                "Invalid",
                f"{path}.procMount",
                f'Unsupported value: "{pm}": supported values: "Default", "Unmasked"',
            )
        )
    elif pm == "Unmasked" and not host_users_false:
        out.append(
            ApiProblem(
                422,
                "Invalid",
                f"{path}.procMount",
                'Invalid value: "Unmasked": `hostUsers` must be false to use `Unmasked`',
            )
        )


def _validate_selector(obj: dict[str, Any], out: list[ApiProblem]) -> None:
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    sel = spec.get("selector")
    tmeta = (spec.get("template") or {}).get("metadata") if isinstance(spec.get("template"), dict) else None
    labels = tmeta.get("labels") if isinstance(tmeta, dict) and isinstance(tmeta.get("labels"), dict) else {}
    if not isinstance(sel, dict) or not (sel.get("matchLabels") or sel.get("matchExpressions")):
        out.append(ApiProblem(422, "Invalid", "spec.selector", "Required value"))
        return
    match = sel.get("matchLabels") if isinstance(sel.get("matchLabels"), dict) else {}
    if any(labels.get(k) != v for k, v in match.items()):
        out.append(
            ApiProblem(
                422,
                "Invalid",
                "spec.template.metadata.labels",
                "Invalid value: `selector` does not match template `labels`",
            )
        )
