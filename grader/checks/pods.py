"""Pod security checks for lab5 (immutable containers) and lab6 (no elevated privileges).

Every check reads effective values through the pod security engine (container over pod, init and
ephemeral containers too), so any correct manifest passes and a plausible wrong one fails. Offenders and
"untouched" objects are derived from the pristine start (``ctx.start``), never from the learner's state.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from grader import safeyaml, variants, versions
from grader.checks import CheckContext, Needs, check
from grader.checks.identity import start_uid, uid
from grader.engines import podsec
from grader.results import Evidence, Outcome
from grader.snapshot import FileProblem

LABEL_ENFORCE = "pod-security.kubernetes.io/enforce"
LABEL_ENFORCE_VERSION = "pod-security.kubernetes.io/enforce-version"
_PSA_KEYS = {
    f"pod-security.kubernetes.io/{m}{s}" for m in ("enforce", "audit", "warn") for s in ("", "-version")
}
MAX_EVIDENCE = 20  # evidence rows per task: enough to act on, small enough for 10,000 pods


# ---- helpers ----------------------------------------------------------------------------------------


def _where(kind: str, ns: str, name: str) -> str:
    return podsec.describe(kind, ns, name)


def _rejections(ctx: CheckContext, obj: dict[str, Any]) -> list[podsec.ApiProblem]:
    """Why the API would refuse ``obj``. A workspace is edited like `kubectl apply`/`kubectl edit`, which
    validate strictly (unknown fields refused); a live object was accepted, so only Warn-mode rules apply."""
    return podsec.api_rejects(obj, "Warn" if ctx.live else "Strict")


def _refused(obj: dict[str, Any], problems: list[podsec.ApiProblem]) -> str:
    return (
        f"the API server would refuse it ({problems[0].status}: {podsec.rejection_message(obj, problems)}), "
        "so none of it is applied"
    )


_KIND_LINE = re.compile(r"^kind:\s*[\"']?(\w+)", re.M)
_NAME_LINE = re.compile(r"^\s{1,4}name:\s*[\"']?([\w.-]+)", re.M)
_NS_LINE = re.compile(r"^\s{1,4}namespace:\s*[\"']?([\w.-]+)", re.M)


def unreadable_documents(snap: Any, kind: str, names: set[tuple[str, str]] | None = None) -> list[Any]:
    """The documents under cluster/ that could not be read and may hold an object of ``kind`` (named one of
    ``names`` = {(namespace, name)}, when given): a YAML slip, not a deletion."""
    out = []
    for p in snap.object_problems:
        text = getattr(p, "text", "") or ""
        kinds = set(_KIND_LINE.findall(text))
        if kinds and kind not in kinds:
            continue
        if names is not None and text:
            found_names = set(_NAME_LINE.findall(text))
            found_ns = set(_NS_LINE.findall(text))
            if found_names and not any(
                n in found_names and (not found_ns or ns in found_ns) for ns, n in names
            ):
                continue
        out.append(p)
    return out


def _unreadable_outcome(problems: list[Any], what: str) -> Outcome:
    first = problems[0]
    more = (
        f" (and {len(problems) - 1} more unreadable document{'s' if len(problems) > 2 else ''})"
        if len(problems) > 1
        else ""
    )
    return Outcome.failed(
        f"{first.where}: {first.message}{more}; fix it so {what} can be graded",
        *[
            Evidence(p.where, "a YAML document the API would accept", p.message)
            for p in problems[:MAX_EVIDENCE]
        ],
    )


def _target(
    ctx: CheckContext, kind: str, namespace: str, name: str
) -> tuple[dict[str, Any] | None, Outcome | None]:
    """The learner's object, or a failed outcome that says it is missing, unreadable or refused."""
    obj = ctx.snap.object(kind, namespace, name)
    where = _where(kind, namespace, name)
    if obj is None:
        broken = unreadable_documents(ctx.snap, kind, {(namespace, name)})
        if broken:
            return None, _unreadable_outcome(broken, where)
        return None, Outcome.failed(f"{where} not found", Evidence(where, "the object", "absent"))
    refused = _rejections(ctx, obj)
    if refused:
        why = _refused(obj, refused)
        return None, Outcome.failed(
            f"{where}: {why}",
            *[
                Evidence(f"{where} {p.field}", "a value the API accepts", p.message)
                for p in refused[:MAX_EVIDENCE]
            ],
        )
    problems = [p for ref in podsec.pod_specs(obj) for p in ref.problems if p.blocking]
    if not podsec.pod_specs(obj) or problems:
        msg = str(problems[0]) if problems else f"{where} has no pod spec"
        return None, Outcome.failed(
            f"{where} cannot be checked: {msg}", Evidence(where, "a valid pod spec", msg)
        )
    return obj, None


# first_difference and template_without_api_defaults serve grader/checks/falco.py (lab3's untouched
# Deployments); the pod checks compare both ways with podsec.changes.
def first_difference(a: Any, b: Any, path: str = "") -> str | None:
    """Where ``b`` lacks or changes something ``a`` has (``a`` ⊆ ``b``): tolerant of fields the API adds."""
    if isinstance(a, dict):
        if not isinstance(b, dict):
            return path or "."
        for k, v in a.items():
            if v is None or v == {} or v == []:
                continue
            d = first_difference(v, b.get(k), f"{path}.{k}" if path else str(k))
            if d:
                return d
        return None
    if isinstance(a, list):
        if not isinstance(b, list) or len(a) != len(b):
            return path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            d = first_difference(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    return None if a == b else path


_POD_DEFAULTS = {
    "dnsPolicy": "ClusterFirst",
    "restartPolicy": "Always",
    "schedulerName": "default-scheduler",
    "terminationGracePeriodSeconds": 30,
    "securityContext": {},
}
_CONTAINER_DEFAULTS = {
    "terminationMessagePath": "/dev/termination-log",
    "terminationMessagePolicy": "File",
    "resources": {},
}


def template_without_api_defaults(template: Any) -> Any:
    """A pod template without the values the API server fills in (what `kubectl get -o yaml` adds)."""
    t = copy.deepcopy(template) if isinstance(template, dict) else {}
    meta = t.get("metadata")
    if isinstance(meta, dict) and meta.get("creationTimestamp") is None:
        meta.pop("creationTimestamp", None)
    spec = t.get("spec") if isinstance(t.get("spec"), dict) else {}
    for k, v in _POD_DEFAULTS.items():
        if spec.get(k) == v:
            del spec[k]
    for key in ("initContainers", "containers"):
        for c in spec.get(key) if isinstance(spec.get(key), list) else []:  # `containers: 7` is the learner's
            if not isinstance(c, dict):
                continue
            for k, v in _CONTAINER_DEFAULTS.items():
                if c.get(k) == v:
                    del c[k]
            image = str(c.get("image") or "")
            tagged = ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest")
            if c.get("imagePullPolicy") == ("IfNotPresent" if tagged or "@" in image else "Always"):
                del c["imagePullPolicy"]
            for port in c.get("ports") if isinstance(c.get("ports"), list) else []:
                if isinstance(port, dict) and port.get("protocol") == "TCP":
                    del port["protocol"]
    return t


def _untouched(ctx: CheckContext, start_obj: dict[str, Any], cur: dict[str, Any] | None) -> str | None:
    """None when ``cur`` is ``start_obj`` unchanged (same UID, the same spec both ways, the API's defaults
    aside), else what happened to it."""
    if cur is None:
        return "deleted"
    if cur == start_obj:
        return None  # the common case, at C speed
    want_uid = start_uid(ctx, start_obj)
    if want_uid and uid(cur) != want_uid:
        return f"recreated (UID {uid(cur)}, was {want_uid})"
    refused = _rejections(ctx, cur)
    if refused:
        return f"edited so that {_refused(cur, refused)}"
    diff = podsec.changes(start_obj, cur)
    if diff:
        return f"changed: {diff[0]}" + (f" (and {len(diff) - 1} more changes)" if len(diff) > 1 else "")
    return None


def _offence(obj: dict[str, Any]) -> str:
    found = podsec.elevated_findings(obj)
    if found:
        f = found[0]
        return f"{f.path}.{f.field}={f.value}: {f.message}"
    probs = [p for ref in podsec.pod_specs(obj) for p in ref.problems if p.blocking]
    return str(probs[0]) if probs else "invalid"


def _partial(ok: int, total: int) -> float:
    return ok / total if total else 0.0


# ---- lab5: immutable containers ---------------------------------------------------------------------


@check("pods.read_only_root")
def read_only_root(ctx: CheckContext, namespace: str, name: str, kind: str = "Deployment") -> Outcome:
    """Every container, init and ephemeral included, has readOnlyRootFilesystem: true (a container field:
    there is none at pod level)."""
    obj, bad = _target(ctx, kind, namespace, name)
    if bad:
        return bad
    ref = podsec.pod_specs(obj)[0]
    writable = [
        c for c in ref.containers if podsec.effective(ref, c).read_only_root_filesystem.value is not True
    ]
    if not writable:
        return Outcome.passed(f"all {len(ref.containers)} containers have a read-only root filesystem")
    ev = [
        Evidence(
            f"{c.path} ({c.name})",
            "securityContext.readOnlyRootFilesystem: true",
            podsec.effective(ref, c).read_only_root_filesystem.show(),
        )
        for c in writable
    ]
    msg = f"container {writable[0].name!r} ({writable[0].field}) still has a writable root filesystem"
    if "readOnlyRootFilesystem" in ref.sc:
        msg += (
            "; readOnlyRootFilesystem at pod level is not a field there (the API drops it): "
            "set it per container"
        )
    return Outcome.failed(msg, *ev, score=_partial(len(ref.containers) - len(writable), len(ref.containers)))


def _norm_path(p: str) -> str:
    return p.rstrip("/") or "/"


def _named_paths(
    ref: podsec.PodSpecRef, target: podsec.ContainerRef, wanted: set[str]
) -> tuple[int, list[Evidence]]:
    """How many of the named paths are writable emptyDir mounts of ``target``, and evidence for the
    others."""
    mounts = {_norm_path(m.mount_path): m for m in podsec.mounts(ref, target)}
    good, ev = 0, []
    for p in sorted(wanted):
        m = mounts.get(p)
        if m and m.source == "emptyDir" and m.writable:
            good += 1
            continue
        actual = (
            "not mounted"
            if m is None
            else (
                f"volume {m.volume!r} ({m.source or 'no such volume'})"
                + (", read-only" if not m.writable else "")
            )
        )
        ev.append(
            Evidence(f"{target.path} ({target.name}) mountPath {p}", "a writable emptyDir volume", actual)
        )
    return good, ev


def _volume_blockers(
    ref: podsec.PodSpecRef, start_ref: podsec.PodSpecRef | None
) -> list[tuple[str, Evidence]]:
    """Volumes that make the answer wrong whatever the mounts: a hostPath, or a new volume that is no
    emptyDir."""
    blockers: list[tuple[str, Evidence]] = []
    start_sources = podsec.volume_sources(start_ref) if start_ref else {}
    for vol, src in podsec.volume_sources(ref).items():
        if src == "hostPath":
            blockers.append(
                (
                    f"volume {vol!r} is a hostPath: the node's disk, not a scratch space",
                    Evidence(f"{ref.path}.volumes {vol}", "emptyDir", "hostPath"),
                )
            )
        elif vol not in start_sources and src != "emptyDir":
            blockers.append(
                (
                    f"volume {vol!r} ({src}) was added: only emptyDir volumes may be added",
                    Evidence(f"{ref.path}.volumes {vol}", "no new volume except emptyDir", src),
                )
            )
    return blockers


def _unnamed_writable(
    ref: podsec.PodSpecRef, start_ref: podsec.PodSpecRef | None, container: str, wanted: set[str]
) -> list[tuple[str, Evidence]]:
    """Writable mounts that were not writable at the start and are not one of the named paths."""
    start_writable = set()
    if start_ref:
        for c in start_ref.containers:
            start_writable |= {
                (c.name, _norm_path(m.mount_path), m.volume) for m in podsec.writable_paths(start_ref, c)
            }
    blockers: list[tuple[str, Evidence]] = []
    for c in ref.containers:
        for m in podsec.writable_paths(ref, c):
            key = (c.name, _norm_path(m.mount_path), m.volume)
            if key in start_writable or (c.name == container and key[1] in wanted):
                continue
            blockers.append(
                (
                    f"{m.mount_path} in container {c.name!r} is writable but is not one of the named paths "
                    f"({', '.join(sorted(wanted))})",
                    Evidence(
                        f"{c.path} ({c.name}) mountPath {m.mount_path}", "not writable", f"{m.source} volume"
                    ),
                )
            )
    return blockers


@check("pods.writable_paths")
def writable_paths(
    ctx: CheckContext, namespace: str, name: str, container: str, paths: list[str], kind: str = "Deployment"
) -> Outcome:
    """The named paths are writable emptyDir mounts of ``container``; no hostPath; no other volume added;
    nothing else became writable."""
    obj, bad = _target(ctx, kind, namespace, name)
    if bad:
        return bad
    ref = podsec.pod_specs(obj)[0]
    start_obj = ctx.start.object(kind, namespace, name)
    start_ref = podsec.pod_specs(start_obj)[0] if start_obj else None
    target = next((c for c in ref.containers if c.name == container), None)
    if target is None:
        return Outcome.failed(
            f"{_where(kind, namespace, name)} has no container {container!r}",
            Evidence(ref.path, f"a container named {container}", ", ".join(c.name for c in ref.containers)),
        )
    wanted = {_norm_path(p) for p in paths}
    good, ev = _named_paths(ref, target, wanted)
    blockers = _volume_blockers(ref, start_ref) + _unnamed_writable(ref, start_ref, container, wanted)
    if blockers:
        return Outcome.failed(
            blockers[0][0] + (f" (and {len(blockers) - 1} more)" if len(blockers) > 1 else ""),
            *[e for _, e in blockers],
            *ev,
        )
    if good == len(wanted):
        return Outcome.passed(f"only {', '.join(sorted(wanted))} are writable, each an emptyDir")
    missing = [e.where.rsplit(" ", 1)[-1] for e in ev]
    return Outcome.failed(
        f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not a writable emptyDir mount "
        f"of container {container!r}",
        *ev,
        score=_partial(good, len(wanted)),
    )


@check("pods.no_privilege_escalation")
def no_privilege_escalation(
    ctx: CheckContext, namespace: str, name: str, kind: str = "Deployment"
) -> Outcome:
    """Every container's effective allowPrivilegeEscalation is false (explicit false; privileged or
    CAP_SYS_ADMIN force it true; unset means allowed)."""
    obj, bad = _target(ctx, kind, namespace, name)
    if bad:
        return bad
    ref = podsec.pod_specs(obj)[0]
    allowed = [(c, podsec.effective(ref, c).allow_privilege_escalation) for c in ref.containers]
    allowed = [(c, s) for c, s in allowed if s.value is not False]
    if not allowed:
        return Outcome.passed(f"all {len(ref.containers)} containers have allowPrivilegeEscalation: false")
    ev = [
        Evidence(
            f"{c.path} ({c.name})",
            "securityContext.allowPrivilegeEscalation: false",
            {"default": "unset (escalation allowed)", "implied": f"true, implied by {s.raw}"}.get(
                s.source, s.show()
            ),
        )
        for c, s in allowed
    ]
    return Outcome.failed(
        f"container {allowed[0][0].name!r} may still gain privileges",
        *ev,
        score=_partial(len(ref.containers) - len(allowed), len(ref.containers)),
    )


LAB5_ALLOWED = frozenset({podsec.SECURITY_CONTEXTS, podsec.EMPTYDIR_VOLUMES})
LAB6_ALLOWED = frozenset({podsec.SECURITY_CONTEXTS, podsec.HOST_NAMESPACES_OFF})


def _changes_text(diff: list[podsec.Change]) -> str:
    return str(diff[0]) + (
        f" (and {len(diff) - 1} more change{'s' if len(diff) > 2 else ''})" if len(diff) > 1 else ""
    )


@check("pods.only_hardened")
def only_hardened(ctx: CheckContext, namespace: str, name: str, kind: str = "Deployment") -> Outcome:
    """The object was hardened, and nothing else changed, compared both ways (a value added counts as much
    as one removed): only security contexts, emptyDir volumes and mounts of emptyDir volumes may differ
    from the start. Values the API server sets on read-back are ignored (podsec.compare)."""
    obj, bad = _target(ctx, kind, namespace, name)
    if bad:
        return bad
    start_obj = ctx.start.object(kind, namespace, name)
    if start_obj is None:
        return Outcome.error(
            f"the lab's start has no {_where(kind, namespace, name)} (lab definition problem)"
        )
    if not podsec.changes(start_obj, obj):
        return Outcome.failed(
            f"the {kind}'s pod template is unchanged: nothing was hardened yet",
            Evidence(_where(kind, namespace, name), "a hardened pod template", "as at the start"),
        )
    ref, sref = podsec.pod_specs(obj)[0], podsec.pod_specs(start_obj)[0]
    names = [(c.field, c.name) for c in ref.containers]
    start_names = [(c.field, c.name) for c in sref.containers]
    if names != start_names:
        return Outcome.failed(
            "the containers changed: keep the same containers and init containers",
            Evidence(
                ref.path,
                ", ".join(f"{f}/{n}" for f, n in start_names),
                ", ".join(f"{f}/{n}" for f, n in names),
            ),
        )
    for c, sc in zip(ref.containers, sref.containers, strict=True):
        if c.data.get("image") != sc.data.get("image"):
            return Outcome.failed(
                f"the image of container {c.name!r} changed: keep the image",
                Evidence(f"{c.path}.image", str(sc.data.get("image")), str(c.data.get("image"))),
            )
    diff = podsec.changes(start_obj, obj, LAB5_ALLOWED)
    if diff:
        return Outcome.failed(
            f"{_changes_text(diff)}: only security contexts, emptyDir volumes and their mounts may change",
            *[
                Evidence(
                    f"{_where(kind, namespace, name)} {d.path}",
                    "as at the start" if d.what != "added" else "absent, as at the start",
                    str(d),
                )
                for d in diff[:MAX_EVIDENCE]
            ],
        )
    return Outcome.passed("hardened, with the same containers, images and other settings as at the start")


def _saved_object(text: str, kind: str, namespace: str, name: str) -> tuple[dict[str, Any] | None, str]:
    try:
        docs = safeyaml.load_all(text)
    except safeyaml.YamlProblem as exc:
        return None, str(exc)
    objs: list[Any] = []
    for d in docs:
        if (
            isinstance(d, dict)
            and str(d.get("kind", "")).endswith("List")
            and isinstance(d.get("items"), list)
        ):
            objs.extend(d["items"])
        elif d is not None:
            objs.append(d)
    for o in objs:
        k, ns, n = podsec.identity(o)
        if k == kind and n == name and ns in ("", namespace):
            return o, ""
    found = (
        ", ".join(_where(*podsec.identity(o)) for o in objs if isinstance(o, dict)) or "no Kubernetes object"
    )
    return None, f"it holds {found}, not {_where(kind, namespace, name)}"


@check("pods.saved_manifest")
def saved_manifest(
    ctx: CheckContext, node: str, path: str, namespace: str, name: str, kind: str = "Deployment"
) -> Outcome:
    """The changed manifest is saved at ``path``, `kubectl apply -f` would accept it, and its spec equals the
    applied object's both ways (server defaults aside); a copy of the unchanged start does not count."""
    where = f"{node}:{path}"
    try:
        text = ctx.snap.read_text(node, path)
    except FileProblem as exc:
        out = Outcome.error if exc.is_environment_problem else Outcome.failed
        return out(str(exc), Evidence(where, f"the changed {kind} manifest", exc.kind.replace("_", " ")))
    saved, why = _saved_object(text, kind, namespace, name)
    if saved is None:
        return Outcome.failed(f"{where}: {why}", Evidence(where, _where(kind, namespace, name), why))
    refused = podsec.api_rejects(saved, "Strict")  # `kubectl apply -f` validates strictly, even on a cluster
    if refused:
        return Outcome.failed(
            f"{where}: `kubectl apply -f` would fail: {_refused(saved, refused)}",
            *[
                Evidence(f"{where} {p.field}", "a value the API accepts", p.message)
                for p in refused[:MAX_EVIDENCE]
            ],
        )
    applied, bad = _target(ctx, kind, namespace, name)
    if bad:
        return bad
    start_obj = ctx.start.object(kind, namespace, name)
    if start_obj is not None and not podsec.changes(start_obj, saved):
        return Outcome.failed(
            f"{where} is the unchanged starting manifest: save the changed one",
            Evidence(where, "the hardened manifest", "the starting manifest"),
        )
    diff = podsec.changes(saved, applied)
    if diff:
        return Outcome.failed(
            f"{where} differs from the applied {kind} ({_changes_text(diff)}, in the applied one): "
            "apply the file you saved, or save what you applied",
            *[
                Evidence(f"{where} {d.path}", "the same as the applied object", str(d))
                for d in diff[:MAX_EVIDENCE]
            ],
        )
    return Outcome.passed(f"{where} matches the applied {kind}")


# ---- lab5 live tasks --------------------------------------------------------------------------------


@check("pods.rollout_complete")
def rollout_complete(ctx: CheckContext, namespace: str, name: str) -> Outcome:
    """As `kubectl rollout status`, after a change: the Deployment's generation is newer than the one recorded
    at `cks start` (somebody changed its spec), the controller observed it (observedGeneration >= generation),
    every replica is updated and available, and no old replica is left. Absent counters read as 0 (the API
    omits zero counters). Reads the Deployment's status from the live snapshot."""
    obj = ctx.snap.object("Deployment", namespace, name)
    where = _where("Deployment", namespace, name)
    if obj is None:
        return Outcome.failed(f"{where} not found", Evidence(where, "the Deployment", "absent"))
    status = obj.get("status")
    if not isinstance(status, dict):
        return Outcome.error(f"{where} has no status in the snapshot (collected without status?)")
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    want = spec.get("replicas", 1) if isinstance(spec.get("replicas", 1), int) else 1
    generation = meta.get("generation") if isinstance(meta.get("generation"), int) else 0

    def n(key: str) -> int:
        v = status.get(key)
        return v if isinstance(v, int) else 0

    started = start_generation(ctx, "Deployment", namespace, name)
    if started is None:
        return Outcome.error(
            f"the start record has no generation for {where}: start the lab with "
            "`cks start LAB --target ...` so the grader can tell a new rollout from the old one"
        )
    if generation <= started:
        return Outcome.failed(
            f"{where} has not been changed since the lab started (generation {generation}), so "
            "no new rollout happened",
            Evidence(f"{where} metadata.generation", f"> {started}", str(generation)),
        )
    if n("observedGeneration") < generation:
        return Outcome.failed(
            f"{where}: the controller has not seen the latest change yet",
            Evidence(f"{where} status.observedGeneration", str(generation), str(n("observedGeneration"))),
        )
    if n("updatedReplicas") < want:
        return Outcome.failed(
            f"{where}: {n('updatedReplicas')} of {want} replicas updated",
            Evidence(f"{where} status.updatedReplicas", str(want), str(n("updatedReplicas"))),
        )
    if n("replicas") > n("updatedReplicas"):
        return Outcome.failed(
            f"{where}: {n('replicas') - n('updatedReplicas')} old replicas are still running",
            Evidence(f"{where} status.replicas", str(n("updatedReplicas")), str(n("replicas"))),
        )
    if n("availableReplicas") < n("updatedReplicas") or n("readyReplicas") < want:
        return Outcome.failed(
            f"{where}: {n('readyReplicas')} of {want} new pods are Ready (a read-only root often "
            "breaks a path the app writes: check `kubectl logs`)",
            Evidence(f"{where} status.readyReplicas", str(want), str(n("readyReplicas"))),
        )
    return Outcome.passed(f"{where} rolled out: {want}/{want} new pods Ready")


def start_generation(ctx: CheckContext, kind: str, namespace: str, name: str) -> int | None:
    """The generation ``kind namespace/name`` had when `cks start --target` recorded the lab (None if
    unknown)."""
    record = ctx.snap.fact("_cluster", "fingerprints")
    for o in (record or {}).get("objects") or [] if isinstance(record, dict) else []:
        if isinstance(o, dict) and (o.get("kind"), o.get("namespace") or "", o.get("name")) == (
            kind,
            namespace,
            name,
        ):
            gen = o.get("generation")
            return gen if isinstance(gen, int) else None
    return None


def _read_only_part(pod: str, d: str, r: dict | None) -> tuple[bool, str, Evidence | None]:
    """Writing into ``d`` (probe result ``r``) failed because the file system is read-only."""
    out = str((r or {}).get("output", ""))
    ok = r is not None and r.get("ok") is False and "read-only" in out.lower()
    if r is None:
        what = "was not tried"
    elif r.get("ok"):
        what = "succeeded"
    else:
        what = f"failed, but not because it is read-only ({out.strip()[:80]})"
    return (
        ok,
        f"writing to {d} in {pod} {what}",
        Evidence(
            f"{pod}: touch {d}",
            "Read-only file system",
            "not probed" if r is None else out.strip()[:120] or "ok",
        ),
    )


def _writable_part(pod: str, d: str, r: dict | None) -> tuple[bool, str, Evidence | None]:
    """Writing into ``d`` (probe result ``r``) worked."""
    ok = r is not None and r.get("ok") is True
    return (
        ok,
        f"writing to {d} in {pod} " + ("was not tried" if r is None else "failed"),
        Evidence(
            f"{pod}: touch {d}",
            "written",
            "not probed" if r is None else str(r.get("output", "")).strip()[:120],
        ),
    )


@check("pods.write_probe", needs=Needs(probe="write"))
def write_probe(
    ctx: CheckContext,
    node: str,
    fact: str,
    must_fail: list[str],
    must_succeed: list[str],
    namespace: str | None = None,
    name: str | None = None,
) -> Outcome:
    """Inside a pod of the Deployment ``namespace/name``, writing into each ``must_fail`` dir fails with a
    read-only file system and writing into each ``must_succeed`` dir works (the live collector runs the
    probe in that Deployment's pod; the check reads its result)."""
    data = ctx.snap.fact(node, fact)
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        return Outcome.error(
            f"the live collector recorded no write probe (fact {fact!r} on {node}); "
            "run `grade` against the cluster"
        )
    by_dir = {str(r.get("dir")): r for r in data["results"] if isinstance(r, dict)}
    pod = f"pod {data.get('pod', '?')} container {data.get('container', '?')}"
    parts = [_read_only_part(pod, d, by_dir.get(d)) for d in must_fail]
    parts += [_writable_part(pod, d, by_dir.get(d)) for d in must_succeed]
    summary = f"in {pod}: {', '.join(must_fail)} read-only, {', '.join(must_succeed)} writable"
    if not all(ok for ok, _m, _e in parts[: len(must_fail)]):
        # a writable root makes every directory writable: the writable paths earn nothing until the root
        # is read-only (an untouched Deployment must score 0)
        failed = Outcome.from_parts(parts, summary)
        return Outcome.failed(failed.message, *failed.evidence, score=0.0)
    return Outcome.from_parts(parts, summary)


# ---- lab6: elevated privileges ---------------------------------------------------------------------


def _objects_in(snap: Any, kind: str, namespaces: list[str]) -> list[dict[str, Any]]:
    return [o for ns in namespaces for o in snap.objects(kind, ns)]


class _Index:
    """(kind, namespace, name) -> the learner's object (the last document wins, as Snapshot.object does),
    built once per check so a snapshot of 10,000 pods is not scanned 10,000 times."""

    def __init__(self, snap: Any, kind: str, namespaces: list[str]):
        self.objs: dict[tuple[str, str, str], dict[str, Any]] = {}
        for o in _objects_in(snap, kind, namespaces):
            self.objs[podsec.identity(o)] = o

    def current(self, start_obj: dict[str, Any]) -> dict[str, Any] | None:
        return self.objs.get(podsec.identity(start_obj))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _names(objs: list[dict[str, Any]]) -> str:
    shown = [f"{podsec.identity(o)[1]}/{podsec.identity(o)[2]}" for o in objs[:5]]
    return ", ".join(shown) + (f" and {len(objs) - 5} more" if len(objs) > 5 else "")


@check("pods.offending_pods_deleted")
def offending_pods_deleted(ctx: CheckContext, namespaces: list[str]) -> Outcome:
    """Every bare Pod that ran with elevated privileges at the start is gone (or replaced by a compliant
    Pod); every compliant Pod is untouched (same UID and spec, both ways). Deleting everything earns nothing.

    Teach, don't tell: the reason counts the offenders still running and names only Pods the learner
    touched (a compliant one changed or deleted, an offender edited in place or recreated still elevated)."""
    start_pods = _objects_in(ctx.start, "Pod", namespaces)
    if not start_pods:
        return Outcome.error(
            f"the lab's start has no Pods in {', '.join(namespaces)} (lab definition problem)"
        )
    elevated = _offending(ctx, "offending_pods", start_pods)
    offenders = [p for p, e in zip(start_pods, elevated, strict=True) if e]
    compliant = [p for p, e in zip(start_pods, elevated, strict=True) if not e]
    index = _Index(ctx.snap, "Pod", namespaces)
    absent = {podsec.identity(p)[1:] for p in start_pods if index.current(p) is None}
    broken = unreadable_documents(ctx.snap, "Pod", absent) if absent else []
    if broken:  # a YAML slip must not read as "deleted"
        return _unreadable_outcome(broken, "the Pods in it")
    touched = [(p, what) for p in compliant if (what := _untouched(ctx, p, index.current(p)))]
    still, edited = 0, []
    for p in offenders:
        unchanged, why = _offending_pod_verdict(ctx, p, index.current(p))
        still += unchanged  # untouched: counted, never named
        if why:
            edited.append((p, why))
    ev = [
        Evidence(_where(*podsec.identity(p)), "untouched (it was compliant)", what)
        for p, what in touched[:MAX_EVIDENCE]
    ]
    ev += [Evidence(_where(*podsec.identity(p)), "deleted", why) for p, why in edited[:MAX_EVIDENCE]]
    if still:
        ev.append(
            Evidence(
                f"bare Pods in {', '.join(namespaces)}",
                "none with elevated privileges",
                f"{_plural(still, 'offending Pod')} still running",
            )
        )
    if touched:
        what = touched[0][1]
        head = (
            f"{_plural(len(touched), 'compliant Pod')} you changed or deleted must stay as "
            f"{'it was' if len(touched) == 1 else 'they were'}: {_names([p for p, _ in touched])} ({what})"
        )
        return Outcome.failed(head, *ev)
    left = still + len(edited)
    if left:
        message = _left_message(still, "of the offending Pods", "still running", "Pod", edited)
        return Outcome.failed(message, *ev, score=_partial(len(offenders) - left, len(offenders)))
    return Outcome.passed(
        f"the {len(offenders)} offending Pods are deleted; the {len(compliant)} compliant Pods are untouched"
    )


def _offending_pod_verdict(
    ctx: CheckContext, start_pod: dict[str, Any], cur: dict[str, Any] | None
) -> tuple[bool, str | None]:
    """(still as it started, what is wrong with the learner's change) for an offending bare Pod; (False,
    None) when it is deleted or replaced by one that is compliant and accepted."""
    if cur is None:
        return False, None
    same = uid(cur) == start_uid(ctx, start_pod)
    if same and not _untouched(ctx, start_pod, cur):
        return True, None
    if same:
        return False, (
            "was edited in place: a running Pod's security settings cannot be changed "
            "(the API refuses it); delete it"
        )
    if _rejections(ctx, cur) or podsec.is_elevated(cur):
        return False, (
            "was recreated but still runs with elevated privileges"
            if not _rejections(ctx, cur)
            else f"was recreated, but {_refused(cur, _rejections(ctx, cur))}"
        )
    return False, None


def _left_message(
    still: int, of_what: str, still_state: str, label: str, wrong: list[tuple[dict[str, Any], str]]
) -> str:
    """The failing reason of a remediation task: how many offenders are as they started (counted, never
    named), and the first object the learner changed wrongly (named) with how many more."""
    parts = []
    if still:
        parts.append(f"{still} {of_what} {'is' if still == 1 else 'are'} {still_state}")
    if wrong:
        obj, why = wrong[0]
        parts.append(
            f"{label} {_names([obj])} {why}" + (f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else "")
        )
    return "; ".join(parts)


def _workload_fix_problem(
    ctx: CheckContext, start_obj: dict[str, Any], cur: dict[str, Any] | None, shown: int
) -> str | None:
    """What is wrong with the learner's change to an offending workload (None when fixed in place or not
    changed at all; ``shown``: reasons already given in full)."""
    if cur is None:
        return "was deleted: fix it instead, its pods must keep running"
    if start_uid(ctx, start_obj) and uid(cur) != start_uid(ctx, start_obj):
        return "was recreated (new UID): fix it in place"
    if not _untouched(ctx, start_obj, cur):
        return None
    if refused := _rejections(ctx, cur):
        return f"was edited, but {_refused(cur, refused)}"
    if podsec.is_elevated(cur):
        return (
            f"was edited but still runs with elevated privileges ({_offence(cur)})"
            if shown < MAX_EVIDENCE
            else "still elevated"
        )
    if diff := podsec.changes(start_obj, cur, LAB6_ALLOWED):
        return f"was changed beyond its security settings: {_changes_text(diff)}"
    return None


def _offending(ctx: CheckContext, name: str, objs: list[Any]) -> list[bool]:
    """Which start objects offend: the pod security engine in the full kit, digests in a course bundle."""
    keys = ["/".join(podsec.identity(o)) for o in objs]
    bad = variants.answers(ctx).select(
        name, keys, lambda: [k for k, o in zip(keys, objs, strict=True) if podsec.is_elevated(o)]
    )
    return [k in bad for k in keys]


@check("pods.offending_workloads_fixed")
def offending_workloads_fixed(ctx: CheckContext, namespaces: list[str], kind: str = "Deployment") -> Outcome:
    """Every workload whose pods ran with elevated privileges at the start is fixed in place (same UID, now
    compliant by effective values, accepted by the API, nothing changed but security contexts and host
    namespaces turned off, compared both ways); every compliant one is untouched.

    Untouched offenders are counted, never named; a workload the learner changed wrongly is named."""
    start_objs = _objects_in(ctx.start, kind, namespaces)
    if not start_objs:
        return Outcome.error(
            f"the lab's start has no {kind}s in {', '.join(namespaces)} (lab definition problem)"
        )
    elevated = _offending(ctx, f"offending_{kind}", start_objs)
    offenders = [o for o, e in zip(start_objs, elevated, strict=True) if e]
    compliant = [o for o, e in zip(start_objs, elevated, strict=True) if not e]
    index = _Index(ctx.snap, kind, namespaces)
    absent = {podsec.identity(o)[1:] for o in start_objs if index.current(o) is None}
    broken = unreadable_documents(ctx.snap, kind, absent) if absent else []
    if broken:
        return _unreadable_outcome(broken, f"the {kind}s in it")
    touched = [(o, what) for o in compliant if (what := _untouched(ctx, o, index.current(o)))]
    if touched:
        what = touched[0][1]
        return Outcome.failed(
            f"{_plural(len(touched), f'compliant {kind}')} you changed must stay exactly as "
            f"{'it was' if len(touched) == 1 else 'they were'}: {_names([o for o, _ in touched])} ({what})",
            *[
                Evidence(_where(*podsec.identity(x)), "untouched (it was compliant)", w)
                for x, w in touched[:MAX_EVIDENCE]
            ],
        )
    still = 0
    bad: list[tuple[dict[str, Any], str]] = []
    for o in offenders:
        cur = index.current(o)
        why = _workload_fix_problem(ctx, o, cur, len(bad))
        if why:
            bad.append((o, why))
        elif cur is not None and not _untouched(ctx, o, cur):
            still += 1  # untouched: counted, never named
    ev = [
        Evidence(
            _where(*podsec.identity(x)), "compliant pods, same object, only security settings changed", w
        )
        for x, w in bad[:MAX_EVIDENCE]
    ]
    if still:
        ev.append(
            Evidence(
                f"{kind}s in {', '.join(namespaces)}",
                "none with elevated privileges",
                f"{_plural(still, f'offending {kind}')} not changed yet",
            )
        )
    if bad or still:
        message = _left_message(still, f"of the offending {kind}s", "not fixed yet", kind, bad)
        return Outcome.failed(message, *ev, score=_partial(len(offenders) - len(bad) - still, len(offenders)))
    return Outcome.passed(
        f"the {len(offenders)} offending {kind}s are fixed in place; the {len(compliant)} compliant "
        "ones are untouched"
    )


def _why_not_enforcing(psa: dict[str, Any], got_level: Any) -> str:
    """Why the Pod Security Admission labels ``psa`` do not enforce the level asked for. The learner's own
    labels may be named; the answer (the key to write) is not: a nudge, not the text."""
    lookalikes = [k for k in psa if k not in _PSA_KEYS]
    if lookalikes:
        return f"{lookalikes[0]!r} is not a label Pod Security Admission reads (check its spelling)"
    if got_level is not None:
        return f"its enforce label says {got_level!r}" + (
            "" if got_level in podsec.LEVELS else ", which is not a level PSA knows (they are lower-case)"
        )
    modes = [k.rsplit("/", 1)[-1] for k in psa if k.rsplit("/", 1)[-1] in ("warn", "audit")]
    if modes:
        return f"it only {' and '.join(m + 's' for m in modes)}: those modes never refuse a Pod"
    return "nothing enforces a standard there yet"


@check("pods.namespace_enforces")
def namespace_enforces(ctx: CheckContext, namespace: str, level: str, version: str = "latest") -> Outcome:
    """The namespace's labels make Pod Security Admission enforce ``level`` at ``version`` (a missing
    enforce-version label means latest)."""
    ns = ctx.snap.object("Namespace", "", namespace)
    where = f"Namespace {namespace}"
    if ns is None:
        broken = unreadable_documents(ctx.snap, "Namespace", {("", namespace)})
        if broken:
            return _unreadable_outcome(broken, where)
        return Outcome.failed(f"{where} not found", Evidence(where, "the namespace", "absent"))
    labels = (ns.get("metadata") or {}).get("labels") or {}
    if not isinstance(labels, dict):
        return Outcome.failed(
            f"{where}: metadata.labels is not a mapping", Evidence(where, "labels", str(labels))
        )
    got_level = labels.get(LABEL_ENFORCE)
    got_version = labels.get(LABEL_ENFORCE_VERSION, "latest")
    psa = {k: v for k, v in labels.items() if isinstance(k, str) and "pod-security" in k}
    shown = ", ".join(f"{k}={v}" for k, v in psa.items()) or "no Pod Security Admission labels"
    if got_level != level:
        return Outcome.failed(
            f"{where} does not enforce the {level} standard: {_why_not_enforcing(psa, got_level)}",
            Evidence(f"{where} labels", f"Pod Security Admission enforcing {level} at {version}", shown),
        )
    cluster_minor = versions.kubernetes_minor()[1]
    try:
        want_minor = podsec.parse_version(version, cluster_minor)
        got_minor = podsec.parse_version(str(got_version), cluster_minor)
    except podsec.PolicyVersionError as exc:
        return Outcome.failed(
            f"{where}: {LABEL_ENFORCE_VERSION}: {exc}; Pod Security Admission refuses a Namespace "
            "with that value",
            Evidence(f"{where} labels", f"enforce version {version}", shown),
        )
    if str(version) == "latest" and str(got_version) != "latest" or want_minor != got_minor:
        return Outcome.failed(
            f"{where} enforces {level} at {got_version}, not at {version}"
            + (" (a pinned version stays there when the cluster is upgraded)" if version == "latest" else ""),
            Evidence(f"{where} labels", f"enforce version {version} (or no version label)", shown),
        )
    return Outcome.passed(f"{where} enforces Pod Security Standards {level} at {got_version}")
