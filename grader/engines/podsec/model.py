"""Where the pod spec sits in each workload kind, and the containers inside it, with their paths.

Objects are plain dicts in the API's JSON shape. Nothing here trusts the shape: a field of the wrong type
becomes a :class:`Problem` naming the path and what the API wants, never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# kind -> path of the pod spec (the pod metadata sits beside it: ".../template.metadata" or "metadata")
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "PodTemplate": ("template", "spec"),
    "Deployment": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
WORKLOAD_KINDS = tuple(POD_SPEC_PATHS)

# Kinds that never carry a pod spec: skipped quietly (anything else unknown is reported).
PODLESS_KINDS = frozenset(
    {
        "Namespace",
        "Service",
        "ConfigMap",
        "Secret",
        "ServiceAccount",
        "Role",
        "ClusterRole",
        "RoleBinding",
        "ClusterRoleBinding",
        "NetworkPolicy",
        "Ingress",
        "IngressClass",
        "PersistentVolume",
        "PersistentVolumeClaim",
        "StorageClass",
        "LimitRange",
        "ResourceQuota",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "Endpoints",
        "EndpointSlice",
        "Event",
        "Node",
        "Lease",
        "PriorityClass",
        "RuntimeClass",
        "CustomResourceDefinition",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "CSIDriver",
        "APIService",
        "ControllerRevision",
        "CertificateSigningRequest",
        "Policy",
        "AdmissionConfiguration",
        "Gateway",
        "HTTPRoute",
    }
)

CONTAINER_FIELDS = ("initContainers", "containers", "ephemeralContainers")  # PSA's visiting order
MAX_NAMES_IN_DETAIL = 5


@dataclass(frozen=True)
class Problem:
    """The object cannot be checked as written (wrong type, missing spec, unknown kind)."""

    path: str
    message: str
    severity: str = "error"  # "error": cannot be applied or checked as is; "warning": ignored by the API

    @property
    def blocking(self) -> bool:
        return self.severity == "error"

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


@dataclass
class ContainerRef:
    field: str  # initContainers | containers | ephemeralContainers
    index: int
    name: str
    path: str  # e.g. spec.template.spec.initContainers[0]
    data: dict[str, Any]
    sc: dict[str, Any] = field(init=False, repr=False)  # the container's securityContext ({} if absent)

    def __post_init__(self) -> None:
        sc = self.data.get("securityContext")
        self.sc = sc if isinstance(sc, dict) else {}


@dataclass
class PodSpecRef:
    """One pod spec inside an object (a Pod's own spec or a workload's pod template)."""

    kind: str
    namespace: str
    name: str
    path: str  # "spec" for a Pod, "spec.template.spec" for a Deployment, ...
    spec: dict[str, Any]
    meta: dict[str, Any]  # the pod's metadata (template metadata for workloads): annotations live here
    problems: list[Problem] = field(default_factory=list)
    _containers: list[ContainerRef] | None = None

    @property
    def sc(self) -> dict[str, Any]:
        sc = self.spec.get("securityContext")
        return sc if isinstance(sc, dict) else {}

    @property
    def annotations(self) -> dict[str, Any]:
        ann = self.meta.get("annotations")
        return ann if isinstance(ann, dict) else {}

    @property
    def containers(self) -> list[ContainerRef]:
        if self._containers is None:
            self._containers = _walk_containers(self)
        return self._containers

    @property
    def is_windows(self) -> bool:
        os_ = self.spec.get("os")
        return isinstance(os_, dict) and os_.get("name") == "windows"

    @property
    def host_users_false(self) -> bool:
        return self.spec.get("hostUsers") is False

    @property
    def where(self) -> str:
        return describe(self.kind, self.namespace, self.name)


def describe(kind: str, namespace: str, name: str) -> str:
    return f"{kind} {namespace + '/' if namespace else ''}{name or '(no name)'}"


def identity(obj: Any) -> tuple[str, str, str]:
    if not isinstance(obj, dict):
        return ("", "", "")
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    return (str(obj.get("kind") or ""), str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def has_pod_spec(kind: str) -> bool:
    return kind in POD_SPEC_PATHS


def pod_specs(obj: Any) -> list[PodSpecRef]:
    """The pod specs of ``obj`` ([] for kinds that have none). A workload with a broken or missing template
    still yields a ref (with an empty spec and a problem) so callers can report it."""
    refs, _ = locate(obj)
    return refs


def locate(obj: Any) -> tuple[list[PodSpecRef], list[Problem]]:
    """Pod specs plus object-level problems (unknown kind, not an object). Never raises."""
    if not isinstance(obj, dict):
        return [], [Problem("", f"a {type(obj).__name__} is not a Kubernetes object")]
    kind, ns, name = identity(obj)
    if kind not in POD_SPEC_PATHS:
        if kind in PODLESS_KINDS or kind.endswith("List"):
            return [], []
        hint = ""
        tmpl = _dig(obj, ("spec", "template", "spec"))
        if isinstance(tmpl, dict) and "containers" in tmpl:
            hint = " It has a pod template at spec.template.spec, which was NOT checked."
        known = ", ".join(WORKLOAD_KINDS)
        return [], [
            Problem(
                "kind", f"kind {kind or '(none)'!r} is not a workload kind the checker knows ({known}).{hint}"
            )
        ]
    parts = POD_SPEC_PATHS[kind]
    problems: list[Problem] = []
    node: Any = obj
    walked: list[str] = []
    for part in parts:
        walked.append(part)
        nxt = node.get(part) if isinstance(node, dict) else None
        if nxt is None:
            problems.append(
                Problem(
                    ".".join(walked),
                    f"missing: {describe(kind, ns, name)} has no "
                    f"{'.'.join(parts)}, so it runs no containers the checker can see "
                    "(the API would reject it)",
                )
            )
            node = {}
            break
        if not isinstance(nxt, dict):
            problems.append(Problem(".".join(walked), f"is {_article(_tname(nxt))}, the API wants an object"))
            node = {}
            break
        node = nxt
    spec = node if isinstance(node, dict) else {}
    if kind == "Pod":
        meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    else:
        tmeta = _dig(obj, parts[:-1] + ("metadata",))
        meta = tmeta if isinstance(tmeta, dict) else {}
    ref = PodSpecRef(kind, ns, name, ".".join(parts), spec, meta, problems)
    ref.problems.extend(validate(ref))
    return [ref], []


def pod_spec_of(
    pod_spec: dict[str, Any], meta: dict[str, Any] | None = None, path: str = "spec"
) -> PodSpecRef:
    """Wrap a bare pod spec dict (no surrounding object)."""
    ref = PodSpecRef("PodSpec", "", "", path, pod_spec if isinstance(pod_spec, dict) else {}, meta or {})
    if not isinstance(pod_spec, dict):
        ref.problems.append(Problem(path, f"is {_article(_tname(pod_spec))}, the API wants an object"))
    ref.problems.extend(validate(ref))
    return ref


def containers(ref: PodSpecRef) -> list[ContainerRef]:
    return ref.containers


def _walk_containers(ref: PodSpecRef) -> list[ContainerRef]:
    out: list[ContainerRef] = []
    for fld in CONTAINER_FIELDS:
        items = ref.spec.get(fld)
        if not isinstance(items, list):
            continue  # wrong types are reported by validate()
        for i, c in enumerate(items):
            if isinstance(c, dict):
                name = c.get("name")
                out.append(
                    ContainerRef(
                        fld, i, name if isinstance(name, str) else f"#{i}", f"{ref.path}.{fld}[{i}]", c
                    )
                )
    return out


# ---- type validation ------------------------------------------------------------------------------
# Only the fields the checks read. A wrong type is a problem the learner must fix (kubectl would refuse
# the manifest); the checks then read the value pessimistically (an invalid value never counts as safe).

_BOOL, _INT, _STR, _DICT, _LIST = "boolean", "integer", "string", "object", "list"
_SC_CONTAINER = {
    "privileged": _BOOL,
    "allowPrivilegeEscalation": _BOOL,
    "readOnlyRootFilesystem": _BOOL,
    "runAsNonRoot": _BOOL,
    "runAsUser": _INT,
    "runAsGroup": _INT,
    "procMount": _STR,
    "capabilities": _DICT,
    "seccompProfile": _DICT,
    "seLinuxOptions": _DICT,
    "windowsOptions": _DICT,
    "appArmorProfile": _DICT,
}
_SC_POD = {
    "runAsNonRoot": _BOOL,
    "runAsUser": _INT,
    "runAsGroup": _INT,
    "fsGroup": _INT,
    "sysctls": _LIST,
    "seccompProfile": _DICT,
    "seLinuxOptions": _DICT,
    "windowsOptions": _DICT,
    "appArmorProfile": _DICT,
    "supplementalGroups": _LIST,
}
_SPEC = {
    "hostNetwork": _BOOL,
    "hostPID": _BOOL,
    "hostIPC": _BOOL,
    "hostUsers": _BOOL,
    "volumes": _LIST,
    "securityContext": _DICT,
    "os": _DICT,
}
# Fields that do not exist where learners often put them; the API drops or rejects them.
_NOT_POD_LEVEL = {
    "readOnlyRootFilesystem",
    "allowPrivilegeEscalation",
    "privileged",
    "capabilities",
    "procMount",
}


def type_ok(value: Any, want: str) -> bool:
    if want == _BOOL:
        return isinstance(value, bool)
    if want == _INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if want == _STR:
        return isinstance(value, str)
    if want == _DICT:
        return isinstance(value, dict)
    return isinstance(value, list)


def _check_fields(d: dict[str, Any], schema: dict[str, str], path: str, out: list[Problem]) -> None:
    for key, want in schema.items():
        if key in d and d[key] is not None and not type_ok(d[key], want):
            out.append(
                Problem(
                    f"{path}.{key}",
                    f"is {_article(_tname(d[key]))} ({d[key]!r}), the API wants {_article(want)}; "
                    "kubectl would refuse this manifest",
                )
            )


def validate(ref: PodSpecRef) -> list[Problem]:
    out: list[Problem] = []
    spec, base = ref.spec, ref.path
    _check_fields(spec, _SPEC, base, out)
    psc = spec.get("securityContext")
    if isinstance(psc, dict):
        _check_fields(psc, _SC_POD, f"{base}.securityContext", out)
        for key in sorted(_NOT_POD_LEVEL & set(psc)):
            out.append(
                Problem(
                    f"{base}.securityContext.{key}",
                    "is not a field of the pod securityContext (it exists only per container); "
                    "the API ignores it here (kubectl --validate=strict refuses it)",
                    "warning",
                )
            )
    for fld in CONTAINER_FIELDS:
        items = spec.get(fld)
        if items is None:
            continue
        if isinstance(items, dict):
            out.append(
                Problem(
                    f"{base}.{fld}",
                    f"is a mapping ({len(items)} key{'s' if len(items) != 1 else ''}), the API wants a list "
                    "of containers (`- name: ...`); none of them was checked",
                )
            )
            continue
        if not isinstance(items, list):
            out.append(
                Problem(f"{base}.{fld}", f"is {_article(_tname(items))}, the API wants a list of containers")
            )
            continue
        for i, c in enumerate(items):
            cpath = f"{base}.{fld}[{i}]"
            if not isinstance(c, dict):
                out.append(Problem(cpath, f"is {_article(_tname(c))}, the API wants a container object"))
                continue
            sc = c.get("securityContext")
            if sc is not None and not isinstance(sc, dict):
                out.append(
                    Problem(f"{cpath}.securityContext", f"is {_article(_tname(sc))}, the API wants an object")
                )
            elif isinstance(sc, dict):
                _check_fields(sc, _SC_CONTAINER, f"{cpath}.securityContext", out)
            for key in ("volumeMounts", "ports"):
                if c.get(key) is not None and not isinstance(c.get(key), list):
                    out.append(
                        Problem(f"{cpath}.{key}", f"is {_article(_tname(c[key]))}, the API wants a list")
                    )
    if ("containers" not in spec or spec.get("containers") in (None, [])) and (spec or not ref.problems):
        out.append(Problem(f"{base}.containers", "missing or empty: a pod needs at least one container"))
    return out


def _article(word: str) -> str:
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


def _tname(v: Any) -> str:
    return {
        dict: "mapping",
        list: "list",
        str: "string",
        bool: "boolean",
        int: "integer",
        float: "number",
        type(None): "null",
    }.get(type(v), type(v).__name__)


def _dig(obj: Any, parts: tuple[str, ...]) -> Any:
    for p in parts:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(p)
    return obj


def quote_names(names: list[str], singular: str, plural: str) -> str:
    """PSA's `container "a"` / `containers "a", "b"` with a cap so 10,000 names stay readable."""
    shown = [f'"{n}"' for n in names[:MAX_NAMES_IN_DETAIL]]
    more = f" and {len(names) - MAX_NAMES_IN_DETAIL} more" if len(names) > MAX_NAMES_IN_DETAIL else ""
    return f"{singular if len(names) == 1 else plural} {', '.join(shown)}{more}"
