"""The kube-apiserver static pod, read the way kubelet and kube-apiserver read it.

``analyze_manifest(doc, host)`` takes the parsed manifest (any value: bad input is reported, never raised)
and an optional :class:`HostView` of the node, and returns a :class:`ManifestAnalysis`: the effective audit
flags, where each audit path lands on the host, and every problem found.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from typing import Any

from grader import safeyaml
from grader.engines.apiserver.flags import (
    AUDIT_FLAGS,
    FlagSpec,
    ParsedArgs,
    convert,
    is_audit_name,
    parse_argv,
    suggest,
    validate,
)
from grader.engines.apiserver.host import HostView
from grader.engines.apiserver.problems import Problem
from grader.text import plural

HOSTPATH_TYPES = (
    "",
    "DirectoryOrCreate",
    "Directory",
    "FileOrCreate",
    "File",
    "Socket",
    "CharDevice",
    "BlockDevice",
)
_FILE_TYPES = {"", "File", "FileOrCreate"}
_DIR_TYPES = {"", "Directory", "DirectoryOrCreate"}
# Flags (besides audit ones) whose value is a file kube-apiserver reads at start-up.
_FILE_FLAG = re.compile(r"(-file|-cafile|-certfile|-keyfile|-certificate|-key)$")
MAX_REPORTED = 200  # problems of one kind kept; a 100 000-item command must not make a 100 000-line report


@dataclass(frozen=True)
class Mount:
    index: int
    name: str
    mount_path: str  # normalised (no trailing slash)
    read_only: bool
    sub_path: str
    where: str


@dataclass(frozen=True)
class Volume:
    index: int
    name: str
    source: str  # hostPath, emptyDir, configMap, ... ("" when none)
    host_path: str | None
    host_type: str
    where: str


@dataclass
class EffectiveFlag:
    """An audit flag's effective value: the last occurrence, or the default when it is not set."""

    spec: FlagSpec
    set: bool = False
    raw: str | None = None
    value: Any = None
    where: str = ""
    occurrences: int = 0
    error: str | None = None  # kube-apiserver refuses this value

    @property
    def name(self) -> str:
        return self.spec.name

    def describe(self) -> str:
        if not self.set:
            return f"not set (default {self.spec.pinned_default!r})"
        return f"{self.raw!r}" + (f" -> {self.value!r}" if str(self.value) != self.raw else "")


@dataclass
class PathAccess:
    """How a path an audit flag names is reached from inside the container."""

    purpose: str  # "policy file" | "log directory"
    flag: str
    container_path: str
    mount: Mount | None = None
    volume: Volume | None = None
    host_path: str | None = None  # where the path is on the node (None: not on the node at all)
    file_mount: bool = False
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(p.blocking for p in self.problems)

    @property
    def clean(self) -> bool:
        """No problem at all, warnings included (e.g. a writable policy mount)."""
        return not any(p.severity in {"fatal", "error", "warning"} for p in self.problems)

    def describe(self) -> str:
        if self.mount is None:
            return f"{self.container_path}: not mounted"
        vol = self.volume
        src = (
            f"hostPath {vol.host_path} (type {vol.host_type or 'unset'})"
            if vol and vol.source == "hostPath"
            else (f"{vol.source} volume" if vol else "no such volume")
        )
        ro = "read-only" if self.mount.read_only else "writable"
        return (
            f"{self.container_path} -> mount {self.mount.name!r} at {self.mount.mount_path} ({ro}) -> {src}"
            + (f" -> host {self.host_path}" if self.host_path else "")
        )


@dataclass
class ManifestAnalysis:
    is_pod: bool = False
    pod_name: str = ""
    namespace: str = ""
    container_name: str = ""
    container_where: str = ""
    argv: list[str] = field(default_factory=list)
    parsed: ParsedArgs | None = None
    audit: dict[str, EffectiveFlag] = field(default_factory=dict)
    unknown_audit_flags: list[tuple[str, str, str | None]] = field(
        default_factory=list
    )  # (written, where, hint)
    mounts: list[Mount] = field(default_factory=list)
    volumes: dict[str, Volume] = field(default_factory=dict)
    policy: PathAccess | None = None
    log: PathAccess | None = None
    problems: list[Problem] = field(default_factory=list)

    def flag(self, name: str) -> EffectiveFlag:
        name = name.lstrip("-")
        if name not in self.audit:
            spec = AUDIT_FLAGS.get(name)
            if spec is None:
                raise KeyError(f"--{name} is not a kube-apiserver audit flag")
            self.audit[name] = EffectiveFlag(spec, value=spec.pinned_default)
        return self.audit[name]

    def value(self, name: str) -> Any:
        return self.flag(name).value

    @property
    def readable(self) -> bool:
        """kubelet can decode the manifest and it has a kube-apiserver container whose flags were read."""
        return self.parsed is not None and not any(p.severity == "fatal" for p in self.problems)

    @property
    def log_to_stdout(self) -> bool:
        return self.flag("audit-log-path").value == "-"

    @property
    def log_enabled(self) -> bool:
        return bool(self.flag("audit-log-path").value)

    @property
    def blocking(self) -> list[Problem]:
        return [p for p in self.problems if p.blocking]

    @property
    def would_start(self) -> bool:
        return self.readable and not self.blocking

    def with_code(self, *codes: str) -> list[Problem]:
        return [p for p in self.problems if p.code in codes]


# ---- entry points ---------------------------------------------------------------------------------


def parse_manifest_text(text: str | bytes) -> tuple[Any, list[Problem]]:
    """YAML/JSON text -> the document kubelet would decode (the first one) and problems; never raises."""
    if "\x00" in (text[:65536] if isinstance(text, str) else text[:65536].decode("latin-1")):
        return None, [Problem("fatal", "binary", "the manifest is binary, not YAML: kubelet cannot read it")]
    try:
        docs = safeyaml.load_all(text)
    except safeyaml.YamlProblem as exc:
        return None, [Problem("fatal", "not-yaml", f"kubelet cannot read the manifest: {exc}")]
    present = [d for d in docs if d is not None]
    problems = []
    if not present:
        problems.append(Problem("fatal", "empty", "the manifest is empty: kubelet runs nothing from it"))
        return None, problems
    if len(present) > 1:
        problems.append(
            Problem(
                "warning",
                "several-documents",
                f"the file holds {len(present)} YAML documents; "
                "kubelet reads one pod per file and ignores the rest",
            )
        )
    return present[0], problems


def analyze_manifest(doc: Any, host: HostView | None = None) -> ManifestAnalysis:
    """Everything the grader needs to know about a kube-apiserver static pod manifest."""
    a = ManifestAnalysis()
    spec = _pod_spec(doc, a)
    if spec is None:
        return a
    containers = _containers(spec, a)
    idx = _pick_container(containers, a)
    _other_containers(spec, containers, idx, a)
    a.volumes = _volumes(spec, a)
    _check_all_mount_names(spec, a)
    if idx is None:
        return a
    container = containers[idx]
    a.container_name = str(container.get("name") or "")
    a.container_where = f"spec.containers[{idx}]"
    words = _argv(container, a.container_where, a)
    if words is None:
        return a
    a.argv = [w for _, w in words]
    if words and words[0][1].startswith("-"):
        a.problems.append(
            Problem(
                "error",
                "no-command",
                f"the first word is the flag {words[0][1]!r}: without "
                "`command: [kube-apiserver, ...]` the image runs the args as the command and "
                "fails",
                words[0][0],
            )
        )
        words = [("(image entrypoint)", "kube-apiserver"), *words]
    elif words and posixpath.basename(words[0][1]) != "kube-apiserver":
        a.problems.append(
            Problem(
                "warning",
                "not-kube-apiserver",
                f"the container runs {words[0][1]!r}, not "
                "kube-apiserver; its flags are read as kube-apiserver's anyway",
                words[0][0],
            )
        )
    elif not words:
        a.problems.append(
            Problem(
                "error",
                "no-command",
                "the kube-apiserver container has no command or args: "
                "kube-apiserver is not started with any flag (and the image may not start it)",
                a.container_where,
            )
        )
    a.parsed = parse_argv(words)
    a.problems.extend(a.parsed.problems)
    _audit_flags(a)
    a.mounts = _mounts(container, a.container_where, a)
    _audit_paths(a, host)
    _other_file_flags(a)
    return a


def comment_mentions(text: str, flag: str) -> list[int]:
    """Line numbers where ``flag`` appears only inside a YAML comment (a flag there does nothing)."""
    out = []
    for no, line in enumerate(text.splitlines(), 1):
        if "#" in line:
            code, _, comment = line.partition("#")
            if flag in comment and flag not in code:
                out.append(no)
    return out


# ---- pod structure --------------------------------------------------------------------------------


def _pod_spec(doc: Any, a: ManifestAnalysis) -> dict | None:
    if not isinstance(doc, dict):
        what = "empty" if doc is None else f"a {type(doc).__name__}"
        a.problems.append(
            Problem(
                "fatal",
                "not-a-pod",
                f"the manifest is {what}, not a Pod object: kubelet "
                "ignores it, so no kube-apiserver runs from it",
            )
        )
        return None
    kind, version = doc.get("kind"), doc.get("apiVersion")
    if kind != "Pod" or version != "v1":
        a.problems.append(
            Problem(
                "fatal",
                "not-a-pod",
                f"the manifest is kind {kind!r} apiVersion {version!r}; "
                "a static pod must be kind: Pod, apiVersion: v1 (kubelet ignores anything else)",
                "kind",
            )
        )
        return None
    a.is_pod = True
    meta = doc.get("metadata")
    if isinstance(meta, dict):
        a.pod_name = str(meta.get("name") or "")
        a.namespace = str(meta.get("namespace") or "default")
    if not a.pod_name:
        a.problems.append(
            Problem("error", "no-name", "metadata.name is missing: kubelet rejects the pod", "metadata.name")
        )
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        a.problems.append(Problem("fatal", "no-spec", "the Pod has no spec mapping", "spec"))
        return None
    return spec


def _containers(spec: dict, a: ManifestAnalysis) -> list[dict]:
    raw = spec.get("containers")
    if not isinstance(raw, list) or not raw:
        a.problems.append(
            Problem(
                "fatal",
                "no-containers",
                "spec.containers is missing or empty: the Pod runs nothing (kubelet rejects it)",
                "spec.containers",
            )
        )
        return []
    out = []
    for i, c in enumerate(raw):
        if isinstance(c, dict):
            out.append(c)
        else:
            a.problems.append(
                Problem(
                    "fatal",
                    "bad-container",
                    f"spec.containers[{i}] is a {type(c).__name__}, "
                    "not a container mapping: kubelet cannot decode the pod",
                    f"spec.containers[{i}]",
                )
            )
            out.append({})
    return out


def _command_words(c: dict) -> list[str]:
    words = []
    for key in ("command", "args"):
        v = c.get(key)
        if isinstance(v, list):
            words.extend(str(x) for x in v[:5] if isinstance(x, str))
    return words


def _pick_container(containers: list[dict], a: ManifestAnalysis) -> int | None:
    if not containers:
        return None
    for i, c in enumerate(containers):
        if c.get("name") == "kube-apiserver":
            return i
    for i, c in enumerate(containers):
        words = _command_words(c)
        if words and posixpath.basename(words[0]) == "kube-apiserver":
            a.problems.append(
                Problem(
                    "info",
                    "container-name",
                    f"the container running kube-apiserver is named "
                    f"{c.get('name')!r} (kubeadm names it kube-apiserver)",
                    f"spec.containers[{i}]",
                )
            )
            return i
    names = ", ".join(repr(c.get("name")) for c in containers)
    a.problems.append(
        Problem(
            "fatal",
            "no-apiserver-container",
            f"no container runs kube-apiserver (containers: "
            f"{names}); none is named kube-apiserver or has command kube-apiserver",
            "spec.containers",
        )
    )
    return None


def _other_containers(spec: dict, containers: list[dict], idx: int | None, a: ManifestAnalysis) -> None:
    """Audit flags in another container configure nothing: say so, they are a classic mistake."""
    groups = [("containers", containers)] + [
        (k, spec.get(k)) for k in ("initContainers", "ephemeralContainers")
    ]
    for key, items in groups:
        if not isinstance(items, list):
            continue
        for i, c in enumerate(items):
            if not isinstance(c, dict) or (key == "containers" and i == idx):
                continue
            words = []
            for part in ("command", "args"):
                v = c.get(part)
                if isinstance(v, list):
                    words.extend(x for x in v if isinstance(x, str) and "--audit" in x)
            if words:
                a.problems.append(
                    Problem(
                        "warning",
                        "flags-in-other-container",
                        f"{plural(len(words), 'audit flag')} ({words[0]}{', ...' if len(words) > 1 else ''})"
                        f" are in {key}[{i}] ({c.get('name')!r}), not in the kube-apiserver "
                        "container: they configure nothing",
                        f"spec.{key}[{i}]",
                    )
                )


def _argv(c: dict, where: str, a: ManifestAnalysis) -> list[tuple[str, str]] | None:
    words: list[tuple[str, str]] = []
    ok = True
    for key in ("command", "args"):
        v = c.get(key)
        if v is None:
            continue
        if not isinstance(v, list):
            a.problems.append(
                Problem(
                    "fatal",
                    f"{key}-not-list",
                    f"{key} is a {type(v).__name__}, not a list: kubelet "
                    f"cannot decode the pod (write one list item per word: `{key}: [kube-apiserver, "
                    "--flag=value]`)",
                    f"{where}.{key}",
                )
            )
            ok = False
            continue
        for i, item in enumerate(v):
            w = f"{where}.{key}[{i}]"
            if isinstance(item, str):
                words.append((w, item))
            elif item is None:
                words.append((w, ""))
            else:
                ok = False
                if sum(p.code == "arg-not-string" for p in a.problems) < 5:
                    a.problems.append(
                        Problem(
                            "fatal",
                            "arg-not-string",
                            f"{key}[{i}] is {_a(item)} "
                            f"({item!r:.40}), not a string: kubelet cannot decode the pod (quote it)",
                            w,
                        )
                    )
    return words if ok else None


def _a(value: Any) -> str:
    """'a number', 'a mapping', ... for messages about YAML values."""
    names = {bool: "a boolean", int: "a number", float: "a number", dict: "a mapping", list: "a list"}
    return names.get(type(value), f"a {type(value).__name__}")


# ---- audit flags ----------------------------------------------------------------------------------


def _audit_flags(a: ManifestAnalysis) -> None:
    assert a.parsed is not None
    _collect_audit_flags(a)
    for name, spec in AUDIT_FLAGS.items():
        eff = a.audit.get(name)
        if eff is None:
            a.audit[name] = EffectiveFlag(spec, value=spec.pinned_default)
        else:
            _read_audit_flag(a, name, spec, eff)
    # Validate() runs only for the enabled backends (log: a path; webhook: a config file).
    enabled = {
        "log": bool(a.audit["audit-log-path"].value),
        "webhook": bool(a.audit["audit-webhook-config-file"].value),
    }
    _validate_audit_flags(a, enabled)
    _audit_backend_problems(a, webhook=enabled["webhook"])


def _collect_audit_flags(a: ManifestAnalysis) -> None:
    """The audit flags as written (the last of each wins); unknown ``audit`` flags are fatal."""
    assert a.parsed is not None
    unknown_reported = 0
    for s in a.parsed.settings:
        if not is_audit_name(s.name):
            continue
        spec = AUDIT_FLAGS.get(s.name)
        if spec is None:
            hint = suggest(s.name)
            a.unknown_audit_flags.append((s.written, s.where, hint))
            if unknown_reported < MAX_REPORTED:
                unknown_reported += 1
                tip = f"; did you mean --{hint}?" if hint else ""
                a.problems.append(
                    Problem(
                        "error",
                        "unknown-flag",
                        f"{s.written} is not a kube-apiserver flag "
                        f"(kube-apiserver stops at start-up: 'unknown flag: {s.written}'){tip}",
                        s.where,
                    )
                )
            continue
        eff = a.audit.get(spec.name) or EffectiveFlag(spec)
        eff.occurrences += 1
        eff.set, eff.raw, eff.where = True, s.value, s.where
        a.audit[spec.name] = eff


def _read_audit_flag(a: ManifestAnalysis, name: str, spec: FlagSpec, eff: EffectiveFlag) -> None:
    """One given audit flag's typed value, and what is worth saying about how it was written."""
    if eff.occurrences > 1:
        a.problems.append(
            Problem(
                "info",
                "flag-repeated",
                f"--{name} is given {eff.occurrences} times; the last one wins: {eff.raw!r}",
                eff.where,
            )
        )
    if spec.deprecated:
        a.problems.append(
            Problem("info", "flag-deprecated", f"--{name} is deprecated: {spec.deprecated}", eff.where)
        )
    typed, err = convert(spec, eff.raw or "") if spec.kind not in {"string", "path"} else (eff.raw, None)
    eff.value = typed if err is None else spec.pinned_default
    if err:
        eff.error = err
        a.problems.append(
            Problem("error", "invalid-value", f"{err}: kube-apiserver would not start", eff.where)
        )
    elif spec.kind == "int" and re.match(r"^[+-]?0[0-7_]+$", eff.raw or ""):
        a.problems.append(
            Problem(
                "info",
                "octal-number",
                f"--{name}={eff.raw} is read as an octal number "
                f"({typed}) by kube-apiserver; drop the leading 0",
                eff.where,
            )
        )


def _validate_audit_flags(a: ManifestAnalysis, enabled: dict[str, bool]) -> None:
    """kube-apiserver's Validate() of the given flags of each enabled backend (and of the shared ones)."""
    for name, eff in a.audit.items():
        if not eff.set or eff.error:
            continue
        backend = (
            "log" if name.startswith("audit-log-") else "webhook" if name.startswith("audit-webhook-") else ""
        )
        if backend and not enabled[backend]:
            continue
        err = validate(eff.spec, eff.value)
        if err:
            eff.error = err
            a.problems.append(
                Problem("error", "invalid-value", f"{err}: kube-apiserver would not start", eff.where)
            )


def _audit_backend_problems(a: ManifestAnalysis, *, webhook: bool) -> None:
    """The log backend off or on stdout, a backend without a policy, a policy without a backend."""
    policy, path = a.audit["audit-policy-file"], a.audit["audit-log-path"]
    if path.set and path.value == "":
        a.problems.append(
            Problem("info", "log-disabled", "--audit-log-path is empty: the log backend is off", path.where)
        )
    if path.value == "-":
        a.problems.append(
            Problem(
                "info",
                "log-stdout",
                "--audit-log-path=- writes events to standard output (the container log), not to a file",
                path.where,
            )
        )
    if path.value and not policy.value:
        a.problems.append(
            Problem(
                "warning",
                "no-policy",
                "--audit-log-path is set but --audit-policy-file is not: "
                "without a policy kube-apiserver records no events at all",
                path.where,
            )
        )
    if policy.value and not path.value and not webhook:
        a.problems.append(
            Problem(
                "warning",
                "no-backend",
                "--audit-policy-file is set but no backend is enabled "
                "(--audit-log-path or --audit-webhook-config-file): events go nowhere",
                policy.where,
            )
        )


# ---- volumes and mounts ---------------------------------------------------------------------------


def _norm(path: str) -> str:
    p = posixpath.normpath(path) if path else path
    return "/" if p == "//" else p


def _volumes(spec: dict, a: ManifestAnalysis) -> dict[str, Volume]:
    raw = spec.get("volumes")
    out: dict[str, Volume] = {}
    if raw is None:
        return out
    if not isinstance(raw, list):
        a.problems.append(
            Problem(
                "fatal",
                "volumes-not-list",
                "spec.volumes is not a list: kubelet cannot decode the pod",
                "spec.volumes",
            )
        )
        return out
    for i, v in enumerate(raw):
        where = f"spec.volumes[{i}]"
        if not isinstance(v, dict):
            a.problems.append(Problem("fatal", "bad-volume", f"{where} is not a mapping", where))
            continue
        name = v.get("name")
        if not isinstance(name, str) or not name:
            a.problems.append(
                Problem("error", "volume-no-name", f"{where} has no name: kubelet rejects the pod", where)
            )
            continue
        sources = [k for k in v if k != "name"]
        source = sources[0] if len(sources) == 1 else ""
        if len(sources) != 1:
            a.problems.append(
                Problem(
                    "error",
                    "volume-source",
                    f"volume {name!r} has {len(sources)} sources "
                    f"({', '.join(sources) or 'none'}); it needs exactly one: kubelet rejects the pod",
                    where,
                )
            )
        host_path, host_type = None, ""
        if source == "hostPath":
            hp = v.get("hostPath")
            if not isinstance(hp, dict) or not isinstance(hp.get("path"), str) or not hp.get("path"):
                a.problems.append(
                    Problem(
                        "error",
                        "hostpath-no-path",
                        f"volume {name!r}: hostPath.path is missing: kubelet rejects the pod",
                        f"{where}.hostPath",
                    )
                )
            else:
                host_path = _norm(hp["path"])
                host_type = hp.get("type") or ""
                if host_type not in HOSTPATH_TYPES:
                    a.problems.append(
                        Problem(
                            "error",
                            "hostpath-bad-type",
                            f"volume {name!r}: hostPath type "
                            f"{host_type!r} is not one of {', '.join(t for t in HOSTPATH_TYPES if t)}: "
                            "kubelet rejects the pod",
                            f"{where}.hostPath.type",
                        )
                    )
        if name in out:
            a.problems.append(
                Problem(
                    "error",
                    "volume-duplicate",
                    f"two volumes are named {name!r}: kubelet rejects "
                    "the pod (spec.volumes: Duplicate value)",
                    where,
                )
            )
            continue
        out[name] = Volume(i, name, source, host_path, str(host_type), where)
    return out


def _check_all_mount_names(spec: dict, a: ManifestAnalysis) -> None:
    """A mount naming no volume makes the whole pod invalid, whichever container it is in."""
    used: set[str] = set()
    for key in ("containers", "initContainers", "ephemeralContainers"):
        items = spec.get(key)
        if not isinstance(items, list):
            continue
        for i, c in enumerate(items):
            mounts = c.get("volumeMounts") if isinstance(c, dict) else None
            if not isinstance(mounts, list):
                continue
            for j, m in enumerate(mounts):
                if not isinstance(m, dict):
                    continue
                name = m.get("name")
                used.add(str(name))
                if isinstance(name, str) and name and name not in a.volumes:
                    close = sorted((v for v in a.volumes if _close(name, v)), key=lambda v: -_ratio(name, v))
                    tip = f"; did you mean {close[0]!r}?" if close else ""
                    a.problems.append(
                        Problem(
                            "error",
                            "volume-not-found",
                            f"{key}[{i}].volumeMounts[{j}] uses volume "
                            f"{name!r}, which is not in spec.volumes: kubelet rejects the pod "
                            f"(Not found){tip}",
                            f"spec.{key}[{i}].volumeMounts[{j}].name",
                        )
                    )
    for name, vol in a.volumes.items():
        if name not in used:
            close = sorted(
                (n for n in used if n not in a.volumes and _close(name, n)), key=lambda n: -_ratio(name, n)
            )
            tip = f" (a mount uses {close[0]!r}: a typo?)" if close else ""
            a.problems.append(
                Problem(
                    "warning",
                    "volume-unused",
                    f"volume {name!r} is not mounted by any container{tip}",
                    vol.where,
                )
            )


def _ratio(a: str, b: str) -> float:
    import difflib

    return difflib.SequenceMatcher(None, a, b).ratio()


def _close(a: str, b: str) -> bool:
    return a != b and _ratio(a, b) >= 0.75


def _mounts(c: dict, where: str, a: ManifestAnalysis) -> list[Mount]:
    raw = c.get("volumeMounts")
    out: list[Mount] = []
    if raw is None:
        return out
    if not isinstance(raw, list):
        a.problems.append(
            Problem(
                "fatal",
                "mounts-not-list",
                "volumeMounts is not a list: kubelet cannot decode the pod",
                f"{where}.volumeMounts",
            )
        )
        return out
    seen: dict[str, int] = {}
    for i, m in enumerate(raw):
        w = f"{where}.volumeMounts[{i}]"
        if not isinstance(m, dict):
            a.problems.append(Problem("fatal", "bad-mount", f"{w} is not a mapping", w))
            continue
        name, path = m.get("name"), m.get("mountPath")
        if not isinstance(name, str) or not name or not isinstance(path, str) or not path:
            a.problems.append(
                Problem(
                    "error",
                    "mount-incomplete",
                    f"{w} needs both name and mountPath: kubelet rejects the pod",
                    w,
                )
            )
            continue
        npath = _norm(path)
        if npath in seen:
            a.problems.append(
                Problem(
                    "error",
                    "mount-path-duplicate",
                    f"two mounts use mountPath {npath}: kubelet rejects the pod (must be unique)",
                    w,
                )
            )
        seen[npath] = i
        if "readOnly" in m and m["readOnly"] is not None and not isinstance(m["readOnly"], bool):
            a.problems.append(
                Problem(
                    "fatal",
                    "mount-readonly-not-bool",
                    f"{w}.readOnly is {m['readOnly']!r}, not "
                    "true or false: kubelet cannot decode the pod (write readOnly: true unquoted)",
                    w,
                )
            )
        ro = m.get("readOnly") is True
        sub = m.get("subPath") if isinstance(m.get("subPath"), str) else ""
        if m.get("subPathExpr"):
            a.problems.append(
                Problem(
                    "warning", "subpath-expr", f"{w} uses subPathExpr, which the grader does not expand", w
                )
            )
        out.append(Mount(i, name, npath, ro, sub, w))
    return out


def resolve_mount(path: str, mounts: list[Mount]) -> Mount | None:
    """The mount a container path is reached through: the deepest mountPath that is the path or an
    ancestor."""
    path = _norm(path)
    best: Mount | None = None
    for m in mounts:
        mp = m.mount_path
        covers = path == mp or mp == "/" or path.startswith(mp + "/")
        if covers and (best is None or len(mp) >= len(best.mount_path)):
            best = m
    return best


def _host_path(path: str, m: Mount, vol: Volume) -> str | None:
    if vol.host_path is None:
        return None
    base = _norm(posixpath.join(vol.host_path, m.sub_path)) if m.sub_path else vol.host_path
    rel = _norm(path)[len(m.mount_path) :].lstrip("/") if m.mount_path != "/" else _norm(path).lstrip("/")
    return _norm(posixpath.join(base, rel)) if rel else base


def _reach(purpose: str, flag: str, path: str, a: ManifestAnalysis) -> PathAccess:
    acc = PathAccess(purpose, flag, path)
    if not path.startswith("/"):
        acc.problems.append(
            Problem(
                "warning",
                "relative-path",
                f"{flag}={path} is relative: kube-apiserver resolves "
                "it against its working directory (/); write an absolute path",
                flag,
            )
        )
        path = acc.container_path = _norm("/" + path)
    acc.mount = resolve_mount(path, a.mounts)
    if acc.mount is None:
        return acc
    acc.volume = a.volumes.get(acc.mount.name)
    if acc.volume is not None:
        acc.host_path = _host_path(path, acc.mount, acc.volume)
    return acc


def _audit_paths(a: ManifestAnalysis, host: HostView | None) -> None:
    policy = a.audit["audit-policy-file"]
    if policy.value and not policy.error:
        a.policy = _policy_access(str(policy.value), a, host)
        a.problems.extend(a.policy.problems)
    path = a.audit["audit-log-path"]
    if path.value and path.value != "-" and not path.error:
        a.log = _log_access(str(path.value), a, host)
        a.problems.extend(a.log.problems)


def _no_volume(acc: PathAccess, what: str) -> bool:
    m, p = acc.mount, acc.problems
    assert m is not None
    if acc.volume is None:
        p.append(
            Problem(
                "error",
                f"{what}-volume-not-found",
                f"{acc.container_path} ({acc.purpose}) is under mount "
                f"{m.mount_path}, whose volume {m.name!r} does not exist: kubelet rejects the pod",
                m.where,
            )
        )
        return True
    if acc.volume.source != "hostPath":
        p.append(
            Problem(
                "error",
                f"{what}-not-hostpath",
                f"{acc.container_path} ({acc.purpose}) is on volume "
                f"{m.name!r} of type {acc.volume.source or 'none'}, not a hostPath: "
                + (
                    "the policy file on the node is not there"
                    if what == "policy"
                    else "the log never reaches the node's disk"
                ),
                acc.volume.where,
            )
        )
        return True
    return acc.host_path is None


def _policy_access(path: str, a: ManifestAnalysis, host: HostView | None) -> PathAccess:
    acc = _reach("policy file", "--audit-policy-file", path, a)
    p = acc.problems
    if acc.mount is None:
        p.append(
            Problem(
                "error",
                "policy-not-mounted",
                f"no volumeMount covers {acc.container_path}: inside the "
                "container the file does not exist and kube-apiserver fails to start (mount the file or "
                "its directory from a hostPath volume)",
                "--audit-policy-file",
            )
        )
        return acc
    if _no_volume(acc, "policy"):
        return acc
    m, vol = acc.mount, acc.volume
    assert vol is not None and acc.host_path is not None
    acc.file_mount = m.mount_path == acc.container_path
    src = vol.host_path if not m.sub_path else _norm(posixpath.join(vol.host_path or "", m.sub_path))
    src_kind = host.kind(src) if host else None
    if acc.file_mount and m.sub_path:
        _policy_subpath_problems(acc, src, src_kind, host)
    elif acc.file_mount:
        _policy_file_mount_problems(acc, src, src_kind)
    else:
        _policy_dir_mount_problems(acc, src, src_kind, host)
    if not m.read_only:
        p.append(
            Problem(
                "warning",
                "policy-mount-writable",
                f"mount {m.name!r} ({m.mount_path}) is writable; "
                "kube-apiserver only reads the policy: mount it readOnly: true",
                m.where,
            )
        )
    return acc


def _policy_subpath_problems(
    acc: PathAccess, src: str | None, src_kind: str | None, host: HostView | None
) -> None:
    """The policy file mounted alone, picked by a subPath from a hostPath directory."""
    assert acc.mount is not None and acc.volume is not None
    m, vol, p = acc.mount, acc.volume, acc.problems
    t = vol.host_type
    # kubelet checks the hostPath type against the volume's own path; the subPath then picks the file in it
    vol_kind = host.kind(vol.host_path) if host and vol.host_path else None
    if t not in _DIR_TYPES:
        p.append(
            Problem(
                "error",
                "policy-dir-type",
                f"mount {m.name!r} takes subPath {m.sub_path} from hostPath "
                f"{vol.host_path} with type {t}: a subPath needs a directory volume (Directory or "
                "DirectoryOrCreate)",
                vol.where,
            )
        )
    elif t == "Directory" and vol_kind == "missing":
        p.append(
            Problem(
                "error",
                "policy-dir-missing",
                f"hostPath {vol.host_path} (type Directory) does not exist "
                "on the node: the pod does not start",
                vol.host_path,
            )
        )
    elif src_kind == "dir":
        p.append(
            Problem(
                "error",
                "policy-is-directory",
                f"{src} on the node is a directory, not a policy file",
                src,
            )
        )
    elif src_kind == "missing":
        p.append(
            Problem(
                "error",
                "policy-missing-on-host",
                f"{src} does not exist on the node: kubelet creates an "
                "empty directory for the subPath and kube-apiserver crashes reading the policy",
                src,
            )
        )


def _policy_file_mount_problems(acc: PathAccess, src: str | None, src_kind: str | None) -> None:
    """The policy file mounted alone from a hostPath file."""
    assert acc.mount is not None and acc.volume is not None
    m, vol, p = acc.mount, acc.volume, acc.problems
    t = vol.host_type
    tname = t or "unset"
    if t in {"DirectoryOrCreate", "Directory"}:
        why = (
            "the host path is a file, so kubelet's type check fails and the pod does not start"
            if src_kind == "file"
            else "kubelet creates an empty directory there and kube-apiserver crashes reading the policy "
            "(it is a directory)"
            if t == "DirectoryOrCreate"
            else "the pod does not start"
        )
        p.append(
            Problem(
                "error",
                "policy-type-directory",
                f"the policy file is mounted from hostPath {src} with type {t}: {why}; use type File",
                vol.where,
            )
        )
    elif t not in _FILE_TYPES:
        p.append(
            Problem(
                "error",
                "policy-type",
                f"the policy file is mounted with hostPath type {t}; use File",
                vol.where,
            )
        )
    elif src_kind == "dir":
        p.append(
            Problem(
                "error",
                "policy-is-directory",
                f"hostPath {src} is a directory on the node, but it is "
                f"mounted at the policy file path {m.mount_path}",
                vol.where,
            )
        )
    elif src_kind == "missing":
        why = {
            "File": "kubelet's type check fails (no such file) and the pod does not start",
            "FileOrCreate": "kubelet creates an empty file and kube-apiserver stops: "
            "'loaded illegal policy with 0 rules'",
            "": "the runtime creates an empty directory there and kube-apiserver crashes",
        }[t]
        p.append(
            Problem(
                "error",
                "policy-missing-on-host",
                f"{src} does not exist on the node (hostPath type {tname}): {why}",
                src,
            )
        )


def _policy_dir_mount_problems(
    acc: PathAccess, src: str | None, src_kind: str | None, host: HostView | None
) -> None:
    """The policy's directory mounted from a hostPath directory."""
    assert acc.mount is not None and acc.volume is not None
    m, vol, p = acc.mount, acc.volume, acc.problems
    t = vol.host_type
    if t in {"File", "FileOrCreate"} or t not in _DIR_TYPES:
        p.append(
            Problem(
                "error",
                "policy-dir-type",
                f"the policy's directory {m.mount_path} is mounted from "
                f"hostPath {src} with type {t}, which must be a file: kubelet's type check fails; use "
                "Directory or DirectoryOrCreate",
                vol.where,
            )
        )
    elif t == "Directory" and src_kind == "missing":
        p.append(
            Problem(
                "error",
                "policy-dir-missing",
                f"hostPath {src} (type Directory) does not exist on the node: the pod does not start",
                src,
            )
        )
    if host and not any(q.blocking for q in p):
        kind = host.kind(acc.host_path)
        if kind == "missing":
            p.append(
                Problem(
                    "error",
                    "policy-missing-on-host",
                    f"the policy is read from {acc.host_path} on the "
                    f"node (through mount {m.mount_path} -> {src}), which does not exist: kube-apiserver "
                    "fails to start",
                    acc.host_path,
                )
            )
        elif kind == "dir":
            p.append(
                Problem(
                    "error",
                    "policy-is-directory",
                    f"{acc.host_path} on the node is a directory, not a policy file",
                    acc.host_path,
                )
            )


def _log_access(path: str, a: ManifestAnalysis, host: HostView | None) -> PathAccess:
    acc = _reach("log directory", "--audit-log-path", path, a)
    p = acc.problems
    log_file = acc.container_path
    log_dir = posixpath.dirname(log_file) or "/"
    if acc.mount is not None and acc.mount.mount_path != log_file:
        acc.mount = resolve_mount(log_dir, a.mounts)
        acc.volume = a.volumes.get(acc.mount.name) if acc.mount else None
        acc.host_path = _host_path(log_file, acc.mount, acc.volume) if acc.mount and acc.volume else None
    if acc.mount is None:
        p.append(
            Problem(
                "error",
                "log-not-mounted",
                f"no volumeMount covers the log directory {log_dir}: "
                "kube-apiserver writes the log inside the container's own filesystem, not on the node, and "
                "it is lost when the container restarts (mount the directory from a hostPath volume)",
                "--audit-log-path",
            )
        )
        return acc
    if _no_volume(acc, "log"):
        return acc
    m, vol = acc.mount, acc.volume
    assert vol is not None
    t = vol.host_type
    src = vol.host_path if not m.sub_path else _norm(posixpath.join(vol.host_path or "", m.sub_path))
    src_kind = host.kind(src) if host and src else None
    if m.mount_path == log_file and (t in _DIR_TYPES - {""} or src_kind == "dir"):
        # the flag names the mounted directory itself, not a file in it
        p.append(
            Problem(
                "error",
                "log-path-is-directory",
                f"--audit-log-path names the mounted directory "
                f"{m.mount_path} itself: kube-apiserver cannot open a directory as its log file; name a "
                f"file inside it, e.g. {posixpath.join(m.mount_path, 'audit.log')}",
                "--audit-log-path",
            )
        )
    elif m.mount_path == log_file:
        acc.file_mount = True
        p.append(
            Problem(
                "error",
                "log-file-mount",
                f"only the log file itself is mounted ({m.mount_path}): rotation "
                "renames it inside its directory, which fails on a mounted file (device or resource busy), "
                "and rotated files would stay in the container; mount the directory "
                f"{log_dir} instead",
                m.where,
            )
        )
    elif t not in _DIR_TYPES:
        p.append(
            Problem(
                "error",
                "log-dir-type",
                f"the log directory is mounted from hostPath {src} with type {t}, "
                "which must be a file: kubelet's type check fails; use DirectoryOrCreate",
                vol.where,
            )
        )
    elif t == "Directory" and src_kind == "missing":
        p.append(
            Problem(
                "error",
                "log-dir-missing",
                f"hostPath {src} (type Directory) does not exist on the node: "
                "kubelet does not start the pod; create it or use DirectoryOrCreate",
                src,
            )
        )
    elif src_kind == "file":
        p.append(
            Problem(
                "error",
                "log-dir-is-file",
                f"hostPath {src} is a file on the node, but the log directory is mounted from it",
                src,
            )
        )
    if m.read_only:
        p.append(
            Problem(
                "error",
                "log-mount-read-only",
                f"mount {m.name!r} ({m.mount_path}) is readOnly: "
                "kube-apiserver cannot create the log file and stops at start-up",
                m.where,
            )
        )
    if (
        host
        and acc.host_path
        and not acc.file_mount
        and host.kind(acc.host_path) == "dir"
        and not any(x.code == "log-path-is-directory" for x in p)
    ):
        p.append(
            Problem(
                "error",
                "log-path-is-directory",
                f"the log file path {acc.host_path} is a directory on the "
                "node: kube-apiserver cannot open it",
                acc.host_path,
            )
        )
    return acc


def _other_file_flags(a: ManifestAnalysis) -> None:
    """Certificates and keys must stay reachable: a new mount must not hide /etc/kubernetes/pki."""
    assert a.parsed is not None
    seen: set[str] = set()
    for s in a.parsed.settings:
        if (
            is_audit_name(s.name)
            or not _FILE_FLAG.search(s.name)
            or not s.value.startswith("/")
            or s.name in seen
        ):
            continue
        seen.add(s.name)
        m = resolve_mount(s.value, a.mounts)
        if m is None:
            a.problems.append(
                Problem(
                    "warning",
                    "file-not-mounted",
                    f"--{s.name}={s.value} is not under any volumeMount: kube-apiserver will not find it",
                    s.where,
                )
            )
            continue
        vol = a.volumes.get(m.name)
        hp = _host_path(s.value, m, vol) if vol else None
        if hp and hp != _norm(s.value):
            a.problems.append(
                Problem(
                    "warning",
                    "file-remapped",
                    f"--{s.name}={s.value} is now read from {hp} on the "
                    f"node (mount {m.mount_path} -> {vol.host_path if vol else '?'}); did a new mount "
                    "hide it?",
                    s.where,
                )
            )
