"""Pod security engine: pod specs in every workload kind, effective settings, Pod Security Standards.

Pure functions over plain dicts (the API's JSON shape); no I/O. Typical use::

    from grader.engines import podsec
    for ref in podsec.pod_specs(obj):              # Pod, Deployment, CronJob, ... -> PodSpecRef
        for c in podsec.containers(ref):           # init, regular and ephemeral, with paths
            eff = podsec.effective(ref, c)         # container over pod, privileged => escalation, ...
    podsec.evaluate_pss(obj, "restricted", "v1.30")   # -> [Violation(check_id, reason, detail, path, ...)]
    podsec.analyze(obj, level="baseline")           # violations + hardening findings + problems
    podsec.api_rejects(obj)                         # -> [ApiProblem(status 400/422, field, message)]
    podsec.changes(start, now, allow={podsec.SECURITY_CONTEXTS})  # two-way diff, server defaults ignored
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from grader.engines.podsec.api import ApiProblem, api_rejects, rejection_message, unknown_fields
from grader.engines.podsec.compare import (
    EMPTYDIR_VOLUMES,
    HOST_NAMESPACES_OFF,
    SECURITY_CONTEXTS,
    Change,
    changes,
    without_server_defaults,
)
from grader.engines.podsec.effective import (
    ELEVATED_IDS,
    HARDENING_IDS,
    Effective,
    Finding,
    Mount,
    Setting,
    effective,
    elevated_findings,
    hardening_findings,
    mounts,
    volume_sources,
    writable_paths,
)
from grader.engines.podsec.model import (
    POD_SPEC_PATHS,
    WORKLOAD_KINDS,
    ContainerRef,
    PodSpecRef,
    Problem,
    containers,
    describe,
    has_pod_spec,
    identity,
    locate,
    pod_spec_of,
    pod_specs,
)
from grader.engines.podsec.pss import (
    CHECK_IDS,
    LATEST_MINOR,
    LEVELS,
    PolicyVersionError,
    Violation,
    admission_message,
    allowed,
    evaluate_pss,
    parse_version,
)


@dataclass
class ObjectReport:
    kind: str
    namespace: str
    name: str
    violations: list[Violation] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    checked: bool = True  # False for kinds without a pod spec

    @property
    def where(self) -> str:
        return describe(self.kind, self.namespace, self.name)

    @property
    def clean(self) -> bool:
        return not (self.violations or self.findings or self.problems)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "violations": [v.to_dict() for v in self.violations],
            "findings": [f.to_dict() for f in self.findings],
            "problems": [
                {"path": p.path, "message": p.message, "severity": p.severity} for p in self.problems
            ],
        }


def analyze(
    obj: Any,
    level: str | None = "restricted",
    version: str | int | None = "latest",
    hardening: tuple[str, ...] | None = HARDENING_IDS,
) -> ObjectReport:
    """Everything the engine can say about one object. ``level=None`` skips PSS, ``hardening=None`` the
    CKS findings. Never raises on bad input: the problems say what is wrong."""
    kind, ns, name = identity(obj)
    refs, problems = locate(obj)
    rep = ObjectReport(kind, ns, name, problems=list(problems), checked=bool(refs))
    minor = version if isinstance(version, int) else parse_version(version)
    for ref in refs:
        rep.problems.extend(ref.problems)
        if level:
            rep.violations.extend(evaluate_pss(ref, level, minor))
        if hardening:
            rep.findings.extend(hardening_findings(ref, hardening))
    return rep


def is_elevated(obj: Any) -> bool:
    """True when any container of any pod spec has elevated privileges (privileged, host namespaces,
    escalation allowed, root or maybe-root user) or the object is invalid (never counts as compliant)."""
    refs, problems = locate(obj)
    if problems or any(p.blocking for r in refs for p in r.problems):
        return True
    return any(_elevated(r) for r in refs)


def _elevated(ref: PodSpecRef) -> bool:
    """``bool(elevated_findings(ref))`` without building messages: the hot path when grading many pods
    (tests/engines/test_podsec.py proves both agree)."""
    spec = ref.spec
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        v = spec.get(key)
        if v is True or (v is not None and not isinstance(v, bool)):
            return True
    psc = ref.sc
    pod_uid, pod_nonroot = psc.get("runAsUser"), psc.get("runAsNonRoot")
    for c in ref.containers:
        sc = c.sc
        priv = sc.get("privileged")
        if priv is not None and priv is not False:
            return True
        if sc.get("allowPrivilegeEscalation") is not False:
            return True
        caps = sc.get("capabilities")
        add = caps.get("add") if isinstance(caps, dict) else None
        if isinstance(add, list) and ("SYS_ADMIN" in add or "CAP_SYS_ADMIN" in add):
            return True
        uid = sc.get("runAsUser")
        if uid is None:
            uid = pod_uid
        if uid is not None:
            if isinstance(uid, bool) or not isinstance(uid, int) or uid == 0:
                return True
            continue
        nonroot = sc.get("runAsNonRoot")
        if nonroot is None:
            nonroot = pod_nonroot
        if nonroot is not True:
            return True
    return False


__all__ = [
    "EMPTYDIR_VOLUMES",
    "HOST_NAMESPACES_OFF",
    "SECURITY_CONTEXTS",
    "ApiProblem",
    "Change",
    "api_rejects",
    "changes",
    "rejection_message",
    "unknown_fields",
    "without_server_defaults",
    "CHECK_IDS",
    "ELEVATED_IDS",
    "HARDENING_IDS",
    "LATEST_MINOR",
    "LEVELS",
    "POD_SPEC_PATHS",
    "WORKLOAD_KINDS",
    "ContainerRef",
    "Effective",
    "Finding",
    "Mount",
    "ObjectReport",
    "PodSpecRef",
    "PolicyVersionError",
    "Problem",
    "Setting",
    "Violation",
    "admission_message",
    "allowed",
    "analyze",
    "containers",
    "describe",
    "effective",
    "elevated_findings",
    "evaluate_pss",
    "hardening_findings",
    "has_pod_spec",
    "identity",
    "is_elevated",
    "locate",
    "mounts",
    "parse_version",
    "pod_spec_of",
    "pod_specs",
    "volume_sources",
    "writable_paths",
]
