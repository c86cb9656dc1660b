"""Checks on the kube-apiserver static pod: audit flags, their mounts, the static pod folder, live state.

Every check reads the manifest through ``grader.engines.apiserver`` (the way kubelet and kube-apiserver read
it) and the node's files through the snapshot. Live checks read facts the live collector records (see
docs/apiserver.md for their names and shapes).
"""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING, Any

from grader.checks import CheckContext, Needs, check
from grader.engines.apiserver import (
    AUDIT_FLAGS,
    CallableHost,
    DirEntry,
    HostFileError,
    ManifestAnalysis,
    analyze_manifest,
    analyze_manifest_dir,
    comment_mentions,
    load_manifest_policy,
    parse_argv,
    parse_manifest_text,
    policy_host_path,
)
from grader.results import Evidence, Outcome
from grader.snapshot import FileProblem, Snapshot
from grader.text import plural

if TYPE_CHECKING:
    from grader.engines.audit_policy import RequestAttributes

MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml"
# Problems that come from the command line itself: kube-apiserver stops before doing anything.
_ARGV_CODES = {
    "unknown-flag",
    "invalid-value",
    "flag-and-value-in-one-word",
    "single-dash-flag",
    "positional-argument",
    "bad-flag-syntax",
    "flag-needs-value",
    "no-command",
}
# Problems that make kubelet reject the pod whatever the audit paths are.
_POD_CODES = {
    "volume-not-found",
    "volume-duplicate",
    "mount-path-duplicate",
    "mount-incomplete",
    "volume-source",
    "hostpath-no-path",
    "hostpath-bad-type",
    "volume-no-name",
    "file-not-mounted",
    "file-remapped",
}


# ---- reading the node -----------------------------------------------------------------------------


def snapshot_host(snap: Snapshot, node: str) -> CallableHost:
    """The engine's view of a node, over the snapshot (a path not in the snapshot is 'missing')."""

    def kind(path: str) -> str | None:
        try:
            snap.node_path(node, path)
        except FileProblem:
            return None
        if snap.is_dir(node, path):
            return "dir"
        return "file" if snap.exists(node, path) else "missing"

    def read_text(path: str) -> str:
        try:
            return snap.read_text(node, path)
        except FileProblem as exc:
            raise HostFileError(str(exc)) from None

    return CallableHost(kind, read_text)


class _Loaded:
    def __init__(self, analysis: ManifestAnalysis, text: str, where: str):
        self.a, self.text, self.where = analysis, text, where


def _load(ctx: CheckContext, node: str, manifest: str) -> _Loaded | Outcome:
    """The manifest's analysis, or the Outcome that says why there is nothing to grade."""
    where = f"{node}:{manifest}"
    try:
        text = ctx.snap.read_text(node, manifest)
    except FileProblem as exc:
        if exc.is_environment_problem:
            return Outcome.error(str(exc), Evidence(where, "the kube-apiserver manifest", exc.kind))
        extra = " (kubelet runs no kube-apiserver without it)" if exc.kind == "missing" else ""
        return Outcome.failed(f"{exc}{extra}", Evidence(where, "the kube-apiserver manifest", exc.kind))
    doc, problems = parse_manifest_text(text)
    a = analyze_manifest(doc, snapshot_host(ctx.snap, node))
    a.problems[:0] = problems
    fatal = [p for p in a.problems if p.severity == "fatal"]
    if fatal:
        return Outcome.failed(
            f"kubelet cannot run {manifest}: {fatal[0].message}",
            Evidence(f"{where} {fatal[0].where}".strip(), "a Pod kubelet can decode", fatal[0].message),
        )
    return _Loaded(a, text, where)


def _why_unset(loaded: _Loaded, flag: str) -> str:
    """Explain a missing flag: set in a comment, in another container, or misspelled."""
    name = flag.lstrip("-")
    for written, _where, hint in loaded.a.unknown_audit_flags:
        if hint == name:
            return f"; {written} is not a kube-apiserver flag (did you mean --{name}?)"
    for p in loaded.a.with_code("flags-in-other-container", "flag-and-value-in-one-word", "single-dash-flag"):
        if flag in p.message:
            return f"; {p.message}"
    lines = comment_mentions(loaded.text, flag)
    if lines:
        return f"; it appears only in a YAML comment (line {lines[0]}), which kube-apiserver never sees"
    return ""


def _flag_evidence(loaded: _Loaded, flag: str, expected: str) -> Evidence:
    eff = loaded.a.flag(flag)
    return Evidence(f"{loaded.where} {eff.where or 'command/args'}", expected, eff.describe())


def _same_path(a: str, b: str) -> bool:
    return posixpath.normpath(a or "/") == posixpath.normpath(b or "/")


def _path_flag(
    ctx: CheckContext, node: str, manifest: str, flag: str, expected: str, off: str
) -> tuple[_Loaded, Any, Evidence] | Outcome:
    """The manifest and a path flag's effective setting, or why there is none (unset, refused, empty)."""
    loaded = _load(ctx, node, manifest)
    if isinstance(loaded, Outcome):
        return loaded
    eff = loaded.a.flag(flag)
    ev = _flag_evidence(loaded, flag, expected)
    if not eff.set:
        return Outcome.failed(f"kube-apiserver has no {flag}{off}{_why_unset(loaded, flag)}", ev)
    if eff.error:
        return Outcome.failed(eff.error, ev)
    if not eff.value:
        return Outcome.failed(f"{flag} is empty{off or ': no policy, so no events'}", ev)
    return loaded, eff, ev


# Problems kube-apiserver starts with anyway (it runs, only not as the task asks): their own task grades them.
_STARTS_ANYWAY = {"log-not-mounted", "log-file-mount", "log-not-hostpath"}
# Warnings that do stop it: a certificate or key flag whose file is under no mount does not exist in the
# container.
_STOPS_IT = {"file-not-mounted"}


def start_blockers(ctx: CheckContext, loaded: _Loaded, node: str) -> list[tuple[str, str]]:
    """(reason, where) for each thing with which kubelet or kube-apiserver would not run this manifest at all:
    an unknown flag, a value that does not parse, a mount naming no volume, two volumes of one name, the
    policy not mounted where the flag points, a policy this kube-apiserver version refuses, ..."""
    a = loaded.a
    # the command line first, then what kubelet refuses, then the audit paths: the root cause leads
    order = [_ARGV_CODES, _POD_CODES | {"volume-not-found"}]
    problems = sorted(
        (p for p in a.problems if (p.blocking and p.code not in _STARTS_ANYWAY) or p.code in _STOPS_IT),
        key=lambda p: next((i for i, codes in enumerate(order) if p.code in codes), len(order)),
    )
    out = [(p.message.removesuffix(": kube-apiserver would not start"), p.where) for p in problems]
    if (
        a.flag("audit-policy-file").value
        and a.policy is not None
        and not any(p.blocking for p in a.policy.problems)
    ):
        load = load_manifest_policy(a, snapshot_host(ctx.snap, node))
        if load.status not in {"ok", "engine-unavailable"}:
            message = load.message
            if load.errors:
                from grader.checks.audit_policy import explain_load_error

                message = message.replace(load.errors[0], explain_load_error(load.errors[0]))
            out.append((message, load.host_path))
    return out


def _would_not_start(loaded: _Loaded, blockers: list[tuple[str, str]]) -> Outcome:
    message, _ = blockers[0]
    more = (
        f" (and {len(blockers) - 1} more problem{'s' if len(blockers) > 2 else ''})"
        if len(blockers) > 1
        else ""
    )
    return Outcome.failed(
        f"kube-apiserver would not start with this manifest: {message}{more}",
        *[
            Evidence(f"{loaded.where} {where}".strip(), "a manifest kube-apiserver starts with", msg)
            for msg, where in blockers[:5]
        ],
    )


# ---- offline checks -------------------------------------------------------------------------------


@check("apiserver.audit_policy")
def audit_policy(
    ctx: CheckContext, path: str, node: str = "controlplane", manifest: str = MANIFEST
) -> Outcome:
    """kube-apiserver would start with the manifest, and --audit-policy-file names the policy at ``path`` on
    the node (through its mount), which loads. Only a failure because kube-apiserver would not start blocks
    the tasks that ``require`` this one: without the flag, or with another policy, it still runs."""
    flag = "--audit-policy-file"
    loaded = _load(ctx, node, manifest)
    if isinstance(loaded, Outcome):
        return loaded
    blockers = start_blockers(ctx, loaded, node)
    if blockers:
        return _would_not_start(loaded, blockers)
    got = _path_flag(ctx, node, manifest, flag, f"the policy at {path} on {node}", "")
    if isinstance(got, Outcome):
        got.blocks_dependents = False
        return got
    loaded, eff, ev = got
    a = loaded.a
    host_path, mounted = policy_host_path(a)
    if not _same_path(host_path, path):
        via = (
            f" (on the node: {host_path}, through mount {a.policy.mount.mount_path})"
            if mounted and a.policy and a.policy.mount and not _same_path(host_path, str(eff.value))
            else ""
        )
        other = Outcome.failed(
            f"{flag} names {eff.value}{via}, not the policy {path}",
            Evidence(ev.where, path, host_path or str(eff.value)),
        )
        other.blocks_dependents = False  # it starts, with another policy
        return other
    load = load_manifest_policy(a, snapshot_host(ctx.snap, node))
    if load.status == "engine-unavailable":
        return Outcome.error(load.message, ev)
    if not load.ok:
        return Outcome.failed(
            load.message,
            Evidence(
                f"{node}:{host_path}",
                "a policy kube-apiserver loads",
                "; ".join(load.errors[:3]) or load.status,
            ),
        )
    rules = len(getattr(getattr(load.result, "policy", None), "rules", ()) or ())
    return Outcome.passed(f"{flag} names {path}, which kube-apiserver loads ({rules} rules)", ev)


@check("apiserver.audit_log")
def audit_log(ctx: CheckContext, path: str, node: str = "controlplane", manifest: str = MANIFEST) -> Outcome:
    """--audit-log-path writes to ``path`` on the node (through the mount of its directory)."""
    flag = "--audit-log-path"
    got = _path_flag(ctx, node, manifest, flag, path, ": the log backend is off")
    if isinstance(got, Outcome):
        return got
    loaded, eff, ev = got
    a = loaded.a
    if eff.value == "-":
        return Outcome.failed(
            f"{flag}=- sends events to standard output (the container log), not to {path}", ev
        )
    host = a.log.host_path if a.log and a.log.host_path else str(eff.value)
    if not _same_path(host, path):
        via = f" (on the node: {host})" if host != eff.value else ""
        return Outcome.failed(f"the log goes to {eff.value}{via}, not {path}", Evidence(ev.where, path, host))
    return Outcome.passed(f"kube-apiserver logs audit events to {path}", ev)


def _matches(expected: Any, actual: Any) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return str(expected).lower() == str(actual).lower()
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return expected == actual
    try:
        return int(str(expected)) == actual if isinstance(actual, int) else str(expected) == str(actual)
    except ValueError:
        return False


@check("apiserver.flags")
def flags(ctx: CheckContext, expect: dict, node: str = "controlplane", manifest: str = MANIFEST) -> Outcome:
    """Each flag in ``expect`` ({flag: value}) has that effective value, and kube-apiserver accepts its
    command line (an unknown audit flag or a value it refuses stops it: no points then)."""
    bad = [f for f in expect if str(f).lstrip("-") not in AUDIT_FLAGS]
    if bad:
        return Outcome.error(f"lab definition: {bad[0]!r} is not a kube-apiserver audit flag")
    loaded = _load(ctx, node, manifest)
    if isinstance(loaded, Outcome):
        return loaded
    a = loaded.a
    parts: list[tuple[bool, str, Evidence | None]] = []
    for raw_flag, want in expect.items():
        flag = "--" + str(raw_flag).lstrip("-")
        eff = a.flag(flag)
        unit = f" {eff.spec.unit}" if eff.spec.unit else ""
        ev = _flag_evidence(loaded, flag, f"{want}{unit}")
        if not eff.set:
            parts.append((False, f"{flag} is not set{_why_unset(loaded, flag)}", ev))
        elif eff.error:
            parts.append((False, eff.error, ev))
        elif not _matches(want, eff.value):
            swapped = [
                f"--{n}"
                for n, w in expect.items()
                if _matches(w, eff.value) and f"--{str(n).lstrip('-')}" != flag
            ]
            tip = f" (that is the value asked for {swapped[0]}: swapped?)" if swapped else ""
            parts.append((False, f"{flag} is {eff.value}{unit}, expected {want}{unit}{tip}", ev))
        else:
            parts.append((True, "", ev))
    blocking = [p for p in a.problems if p.code in _ARGV_CODES]
    outcome = Outcome.from_parts(
        parts, "all values as asked: " + ", ".join(f"--{str(k).lstrip('-')}={v}" for k, v in expect.items())
    )
    if blocking:
        msg = f"kube-apiserver would not start: {blocking[0].message}"
        wrong = sum(1 for ok, _, _ in parts if not ok)
        if wrong:
            msg += f" ({wrong} of {len(parts)} values are not as asked either)"
        return Outcome.failed(
            msg,
            Evidence(
                f"{loaded.where} {blocking[0].where}",
                "a command line kube-apiserver accepts",
                blocking[0].message,
            ),
            *outcome.evidence,
        )
    return outcome


def _policy_mount_part(loaded: _Loaded, policy_read_only: bool) -> tuple[bool, str, Evidence | None]:
    """Half of audit_mounts: the policy file reaches the container from a hostPath (read-only when asked)."""
    a = loaded.a
    if not a.flag("audit-policy-file").value:
        return (
            False,
            "no --audit-policy-file yet, so no policy mount to check",
            Evidence(loaded.where, "a policy file mounted from a hostPath volume", "no --audit-policy-file"),
        )
    acc = a.policy
    assert acc is not None
    probs = [
        p for p in acc.problems if p.blocking or (policy_read_only and p.code == "policy-mount-writable")
    ]
    ev = Evidence(
        f"{loaded.where} {acc.mount.where if acc.mount else 'volumeMounts'}",
        "policy file on a hostPath volume (type File, or its directory), readOnly",
        acc.describe(),
    )
    return (not probs, probs[0].message if probs else "", ev)


def _log_mount_part(loaded: _Loaded) -> tuple[bool, str, Evidence | None]:
    """Half of audit_mounts: the log directory is a writable hostPath on the node."""
    a = loaded.a
    path = a.flag("audit-log-path")
    if not path.value:
        return (
            False,
            "no --audit-log-path yet, so no log directory to mount",
            Evidence(loaded.where, "the log directory mounted from a hostPath volume", "no --audit-log-path"),
        )
    if path.value == "-":
        return (
            False,
            "--audit-log-path=- logs to standard output: there is no log directory on the node",
            Evidence(loaded.where, "a log file on the node", "standard output"),
        )
    if a.log is None:
        return (False, f"--audit-log-path is not usable: {path.error}", None)
    probs = [p for p in a.log.problems if p.blocking]
    ev = Evidence(
        f"{loaded.where} {a.log.mount.where if a.log.mount else 'volumeMounts'}",
        "log directory on a writable hostPath volume (Directory/DirectoryOrCreate)",
        a.log.describe(),
    )
    return (not probs, probs[0].message if probs else "", ev)


@check("apiserver.audit_mounts")
def audit_mounts(
    ctx: CheckContext, node: str = "controlplane", manifest: str = MANIFEST, policy_read_only: bool = True
) -> Outcome:
    """The policy file and the log directory reach the node through hostPath volumes of a suitable type;
    the policy mount is read-only, the log mount writable; no mount or volume breaks the pod."""
    loaded = _load(ctx, node, manifest)
    if isinstance(loaded, Outcome):
        return loaded
    a = loaded.a
    pod = [p for p in a.problems if p.code in _POD_CODES and (p.blocking or p.code.startswith("file-"))]
    if pod:
        return Outcome.failed(
            f"the pod would not work: {pod[0].message}",
            *[Evidence(f"{loaded.where} {p.where}", None, p.message) for p in pod[:5]],
        )
    parts = [_policy_mount_part(loaded, policy_read_only), _log_mount_part(loaded)]
    return Outcome.from_parts(parts, "the policy (read-only) and the log directory are mounted from the node")


@check("apiserver.single_static_pod")
def single_static_pod(
    ctx: CheckContext, node: str = "controlplane", manifest: str = MANIFEST, require_flags: list | None = None
) -> Outcome:
    """``manifest`` is the only static pod running kube-apiserver (no backup or copy left in its folder),
    and it carries ``require_flags`` (so the edit was made to the file kubelet runs)."""
    folder, primary = posixpath.split(manifest)
    where = f"{node}:{folder}"
    loaded = _load(ctx, node, manifest)
    if isinstance(loaded, Outcome):
        return loaded
    missing = [f for f in require_flags or [] if not loaded.a.flag(str(f)).value]
    if missing:
        return Outcome.failed(
            f"{manifest} does not set --{str(missing[0]).lstrip('-')} yet: the change is not in "
            "the manifest kubelet runs",
            Evidence(loaded.where, "the edited manifest", "no " + ", ".join(map(str, missing))),
        )
    try:
        names = ctx.snap.list_dir(node, folder)
    except FileProblem as exc:
        return (Outcome.error if exc.is_environment_problem else Outcome.failed)(str(exc))
    entries = []
    for name in names:
        path = posixpath.join(folder, name)
        if ctx.snap.is_dir(node, path):
            entries.append(DirEntry(name, "dir"))
            continue
        try:
            entries.append(DirEntry(name, "file", ctx.snap.read_text(node, path)))
        except FileProblem as exc:
            entries.append(DirEntry(name, "file", None, str(exc)))
    result = analyze_manifest_dir(entries, folder, primary)
    bad = [p for p in result.problems if p.code in {"second-apiserver", "duplicate-static-pod"}]
    if bad:
        what = {
            "second-apiserver": "a second kube-apiserver static pod",
            "duplicate-static-pod": "several files defining the same static pod",
        }
        return Outcome.failed(
            bad[0].message,
            *[Evidence(f"{node}:{p.where}", f"only {manifest}", what[p.code]) for p in bad[:5]],
        )
    notes = [p.message for p in result.problems if p.severity == "warning"]
    msg = f"{primary} is the only kube-apiserver static pod in {folder}"
    return Outcome.passed(
        msg + (f" (note: {notes[0]})" if notes else ""),
        Evidence(where, "one kube-apiserver manifest", ", ".join(result.apiserver_files)),
    )


# ---- live checks (facts recorded by the live collector; docs/apiserver.md) ------------------------


def _fact(ctx: CheckContext, node: str, name: str) -> dict | Outcome:
    fact = ctx.snap.fact(node, name)
    if fact is None:
        return Outcome.error(
            f"the live collection has no fact {name!r} for node {node} (the collector could not "
            "gather it; see docs/apiserver.md)"
        )
    if not isinstance(fact, dict):
        return Outcome.error(f"fact {name!r} for node {node} is not a mapping")
    if fact.get("error"):
        return Outcome.error(f"collecting {name!r} on {node} failed: {fact['error']}")
    return fact


@check("apiserver.running", needs=Needs(node_facts=("apiserver",)))
def running(
    ctx: CheckContext,
    node: str = "controlplane",
    manifest: str = MANIFEST,
    require_flags: tuple[str, ...] = ("audit-policy-file", "audit-log-path"),
) -> Outcome:
    """Live: kube-apiserver runs, answers /readyz, and runs with the manifest's audit flags (restarted); the
    manifest must set ``require_flags`` (the untouched start earns nothing)."""
    fact = _fact(ctx, node, "apiserver")
    if isinstance(fact, Outcome):
        return fact
    where = f"{node}: kube-apiserver process and /readyz"
    hint = "check `crictl ps -a | grep kube-apiserver` and `crictl logs <id>` on the node"
    if not fact.get("running"):
        return Outcome.failed(
            f"kube-apiserver is not running ({fact.get('state') or 'no process'}); {hint}",
            Evidence(where, "running", str(fact.get("state") or "not running")),
        )
    if not fact.get("ready"):
        return Outcome.failed(
            f"kube-apiserver runs but /readyz does not answer ok ({fact.get('readyz')!r}); {hint}",
            Evidence(where, "/readyz ok", str(fact.get("readyz"))),
        )
    loaded = _load(ctx, node, manifest)
    if isinstance(loaded, Outcome):
        return loaded
    missing = [f"--{name}" for name in require_flags if not loaded.a.flag(name).set]
    if missing:
        # a kube-apiserver running without the lab's flags is the untouched start: it earns nothing
        return Outcome.failed(
            f"the manifest does not set {', '.join(missing)} yet, so the running kube-apiserver "
            "cannot be running with them",
            Evidence(where, "running with the audit flags", f"{', '.join(missing)} not in the manifest"),
        )
    args = fact.get("args")
    if isinstance(args, list) and args:
        parsed = parse_argv([(f"args[{i}]", str(w)) for i, w in enumerate(args)])
        differ = []
        for name in (
            "audit-policy-file",
            "audit-log-path",
            "audit-log-maxage",
            "audit-log-maxbackup",
            "audit-log-maxsize",
        ):
            want = loaded.a.flag(name)
            got = parsed.last(name)
            if want.set and (got is None or got.value != want.raw):
                differ.append(f"--{name}: manifest {want.raw!r}, running {got.value if got else 'unset'!r}")
        if differ:
            return Outcome.failed(
                "the running kube-apiserver was not started from the current manifest ("
                + "; ".join(differ)
                + "); kubelet restarts it when the file changes: wait, or "
                f"{hint}",
                Evidence(where, "the manifest's audit flags", differ[0]),
            )
    return Outcome.passed("kube-apiserver is running and ready with the manifest's audit flags")


def _probe_request(fact: dict) -> RequestAttributes | Outcome:
    """The probe request the collector sent, as the audit policy engine's RequestAttributes (or the
    Outcome saying why it cannot be read)."""
    try:
        from grader.engines.audit_policy import RequestAttributes, RequestError
    except ImportError as exc:  # pragma: no cover - the engine ships with the package
        return Outcome.error(f"the audit policy engine is unavailable: {exc}")
    try:
        return RequestAttributes.from_mapping(fact.get("request"), "fact audit-probe.request")
    except RequestError as exc:
        return Outcome.error(f"the collector recorded a probe request the grader cannot read: {exc}")


def _fresh_probe_events(fact: dict, marker: str) -> list[dict]:
    """The recorded events of the probe: they carry its marker and were received after it was sent."""
    sent_at = str(fact.get("sent_at") or "")
    return [
        e
        for e in fact.get("events") or []
        if isinstance(e, dict)
        and marker
        and marker in str(e.get("requestURI", "")) + str((e.get("objectRef") or {}).get("name", ""))
        and str(e.get("requestReceivedTimestamp", "")) >= sent_at
    ]


@check("apiserver.probe_event")
def probe_event(ctx: CheckContext, node: str = "controlplane", manifest: str = MANIFEST) -> Outcome:
    """Live: the grader's probe request produced a fresh event in the log, at the level the policy gives
    it."""
    fact = _fact(ctx, node, "audit-probe")
    if isinstance(fact, Outcome):
        return fact
    loaded = _load(ctx, node, manifest)
    if isinstance(loaded, Outcome):
        return loaded
    load = load_manifest_policy(loaded.a, snapshot_host(ctx.snap, node))
    if load.status == "engine-unavailable":
        return Outcome.error(load.message)
    if not load.ok:
        return Outcome.failed(f"no policy to compare with: {load.message}")
    attrs = _probe_request(fact)
    if isinstance(attrs, Outcome):
        return attrs
    decision = load.result.policy.evaluate(attrs)
    marker = str(fact.get("marker") or "")
    events = _fresh_probe_events(fact, marker)
    where = f"{node}:{fact.get('log_path') or loaded.a.flag('audit-log-path').value}"
    want = decision.level
    if want == "None":
        if events:
            return Outcome.failed(
                f"the policy gives {attrs.describe()} level None, yet the log has "
                f"{plural(len(events), 'event')} for it",
                Evidence(where, "no event", f"{len(events)} events"),
            )
        return Outcome.passed(f"no event for {attrs.describe()}, as the policy says (level None)")
    if not events:
        return Outcome.failed(
            f"no fresh event for the probe {attrs.describe()} (marker {marker}) in the log; the "
            f"policy gives it level {want}",
            Evidence(where, f"an event at level {want}", "none"),
        )
    levels = sorted({str(e.get("level")) for e in events})
    if levels != [want]:
        return Outcome.failed(
            f"the probe's event is at level {', '.join(levels)}, but the policy gives it {want}: "
            "is kube-apiserver running with another policy?",
            Evidence(where, want, ", ".join(levels)),
        )
    stages = sorted({str(e.get("stage")) for e in events})
    omitted = [s for s in stages if s in decision.omit_stages]
    if omitted:
        return Outcome.failed(
            f"the log has stage {omitted[0]}, which the policy omits",
            Evidence(where, f"no {omitted[0]}", ", ".join(stages)),
        )
    return Outcome.passed(
        f"the probe {attrs.describe()} was logged at level {want} ({', '.join(stages)})",
        Evidence(where, want, want),
    )
