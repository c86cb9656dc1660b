"""Node access through pytest-testinfra backends, with a deadline on every command.

testinfra picks and builds the transport from a host spec (``docker://root@cks-control-plane``,
``ssh://controlplane?ssh_config=...&sudo=true``, ``local://``); we add what a grader needs on top: a hard
timeout per command (the process group is killed, nothing hangs), stdin for writing files, one batched
command per job (all files in one tar stream, all facts in one script) and ssh connection sharing.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import io
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from grader.collectors import LiveError, Target

DEFAULT_TIMEOUT = float(os.environ.get("CKS_NODE_TIMEOUT", "30"))
MAX_FILE = 20 * 1024 * 1024  # the snapshot reads at most this much of a file; larger files keep their tail
MAX_DIR_ENTRIES = 400
SEPARATOR = b"\n--CKS-DATA--\n"


class NodeError(Exception):
    """``reason``: unreachable, timeout, denied, other. ``str()`` says what to do."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass
class RunResult:
    rc: int
    stdout: bytes
    stderr: bytes

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", "replace")


class Node:
    """One node (``name`` is the lab's logical name, e.g. controlplane) reached through a testinfra
    backend."""

    def __init__(
        self,
        name: str,
        hostspec: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        how: str = "",
        cleanup: list[Any] | None = None,
    ):
        self.name = name
        self.hostspec = hostspec
        self.timeout = timeout
        self.how = how or hostspec.split("?", 1)[0]
        self._cleanup = cleanup or []
        self.backend = deadline_backend(hostspec, timeout)

    # -- commands --
    def run(
        self, script: str, *args: str, stdin: bytes | None = None, timeout: float | None = None
    ) -> RunResult:
        """Run a POSIX sh script (``args`` become $1..$n) on the node; NodeError if the node cannot be
        reached."""
        backend = self.backend
        backend.stdin = stdin
        backend.deadline = timeout or self.timeout
        quoted = " ".join(["/bin/sh", "-c", "%s", "cks"] + ["%s"] * len(args))
        try:
            result = backend.run(quoted, script, *args)
        except NodeError:
            raise
        except RuntimeError as exc:  # testinfra's ssh backend: exit 255 = ssh itself failed
            out = exc.args[0] if exc.args else exc
            err = getattr(out, "stderr", str(out))
            raise NodeError(
                "unreachable",
                f"cannot reach node {self.name} via {self.how}: {_first_line(err)}" + self._reach_hint(),
            ) from None
        finally:
            backend.stdin = None
        rc = int(result.rc)
        if (
            backend.NAME in {"docker", "podman"}
            and rc in {125, 126, 127}
            and b"No such container" in result.stderr_bytes
        ):
            raise NodeError(
                "unreachable",
                f"node {self.name} is not running: {_first_line(result.stderr)}" + self._reach_hint(),
            )
        if (
            rc == 1
            and backend.sudo
            and b"sudo:" in result.stderr_bytes
            and b"password" in result.stderr_bytes
        ):
            raise NodeError(
                "denied",
                f"sudo on node {self.name} wants a password: run as root or allow "
                "passwordless sudo for the grader",
            )
        return RunResult(rc, result.stdout_bytes, result.stderr_bytes)

    def _reach_hint(self) -> str:
        if self.hostspec.startswith("docker://") or self.hostspec.startswith("podman://"):
            return " (is the kind cluster running? `kind get clusters`, `docker ps`)"
        if self.how.startswith("vagrant "):
            return " (is the VM up? `vagrant status`; then `vagrant ssh-config`)"
        if self.hostspec.startswith("ssh://"):
            return " (check that sshd runs on the node and that your key is accepted: `ssh -v HOST true`)"
        return ""

    def close(self) -> None:
        for item in self._cleanup:
            if callable(item):
                with contextlib.suppress(Exception):  # cleanup must not raise
                    item()

    # -- files --
    def fetch(
        self, files: list[str], dirs: list[str], dest_root: Path, *, max_bytes: int = MAX_FILE
    ) -> dict[str, Any]:
        """Copy ``files`` and the regular files under ``dirs`` into ``dest_root/<abs path>``, in one command.

        Returns the manifest {path: {type, size, mode, uid, gid, mtime, sha256, truncated}}; absent paths
        are recorded as ``{"type": "missing"}`` so checks can say "does not exist" (a learner's fact).
        """
        paths = [p for p in dict.fromkeys(files + dirs) if _safe_abs(p)]
        if not paths:
            return {}
        res = self.run(FETCH_SCRIPT, str(max_bytes), str(MAX_DIR_ENTRIES), *paths)
        if res.rc == 97:
            raise NodeError("other", f"node {self.name}: cannot create a staging directory in /tmp")
        head, sep, payload = res.stdout.partition(SEPARATOR)
        if not sep:
            raise NodeError(
                "other",
                f"node {self.name}: the file fetch gave no data (rc {res.rc}): "
                f"{_first_line(res.stderr.decode('utf-8', 'replace'))}",
            )
        manifest: dict[str, Any] = {}
        for line in head.decode("utf-8", "replace").splitlines():
            kind = line.split("\t", 1)[0]  # the path comes last and may hold tabs itself
            parts = line.split("\t", 6 if kind in {"file", "dir"} else 1)
            if len(parts) < 2:
                continue
            path = parts[-1]
            entry: dict[str, Any] = {"type": kind}
            if kind in {"file", "dir"} and len(parts) >= 7:
                entry.update(
                    size=_int(parts[1]),
                    mode=parts[2],
                    uid=_int(parts[3]),
                    gid=_int(parts[4]),
                    mtime=_int(parts[5]),
                )
                if kind == "file":
                    entry["truncated"] = entry["size"] is not None and entry["size"] > max_bytes
            manifest[path] = entry
        try:
            raw = gzip.decompress(base64.b64decode(payload.strip() or b""))
        except (ValueError, OSError, EOFError) as exc:
            raise NodeError(
                "other", f"node {self.name}: the file data was damaged in transit ({exc})"
            ) from None
        if raw:
            self._unpack(raw, dest_root, manifest)
        return manifest

    def _unpack(self, raw: bytes, dest_root: Path, manifest: dict[str, Any]) -> None:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                rel = PurePosixPath(member.name.lstrip("./").lstrip("/"))
                if not rel.parts or ".." in rel.parts:
                    continue
                src = tar.extractfile(member)
                if src is None:
                    continue
                data = src.read()
                target = dest_root.joinpath(*rel.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
                entry = manifest.setdefault("/" + rel.as_posix(), {"type": "file"})
                entry["sha256"] = hashlib.sha256(data).hexdigest()

    def read_file(self, path: str, *, max_bytes: int = MAX_FILE) -> bytes | None:
        """One file's bytes, or None if it does not exist."""
        res = self.run('[ -f "$1" ] || exit 3; head -c "$2" -- "$1"', path, str(max_bytes))
        if res.rc == 3:
            return None
        if res.rc != 0:
            raise NodeError(
                "other",
                f"node {self.name}: cannot read {path}: {_first_line(res.stderr.decode('utf-8', 'replace'))}",
            )
        return res.stdout

    def write_file(self, path: str, data: bytes, *, mode: str = "0644") -> None:
        """Write atomically (temp file + rename in the same directory), creating parent directories."""
        if not _safe_abs(path):
            raise NodeError("other", f"refusing to write {path!r}: not a clean absolute path")
        res = self.run(WRITE_SCRIPT, path, mode, stdin=data)
        if res.rc != 0:
            raise NodeError(
                "other",
                f"node {self.name}: cannot write {path}: "
                f"{_first_line(res.stderr.decode('utf-8', 'replace'))}",
            )

    def remove(self, path: str) -> None:
        if _safe_abs(path):
            self.run('rm -f -- "$1"', path)


# The scripts run under /bin/sh (dash on Ubuntu/Debian, busybox elsewhere): POSIX only.
FETCH_SCRIPT = r"""
maxb=$1; maxn=$2; shift 2
stage=$(mktemp -d /tmp/cks-fetch.XXXXXX) || exit 97
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/data"
nl='
'
ADD='add() {
  f=$1
  info=$(stat -L -c "%s	%a	%u	%g	%Y" -- "$f" 2>/dev/null) || { printf "unreadable\t%s\n" "$f"; return; }
  printf "file\t%s\t%s\n" "$info" "$f"
  d="$stage/data$(dirname -- "$f")"
  mkdir -p "$d"
  size=${info%%	*}
  if [ "$size" -gt "$maxb" ]; then tail -c "$maxb" -- "$f" > "$d/$(basename -- "$f")" 2>/dev/null
  else cat -- "$f" > "$d/$(basename -- "$f")" 2>/dev/null || printf "unreadable\t%s\n" "$f"; fi
}'
export ADD
eval "$ADD"
for p in "$@"; do
  if [ -d "$p" ]; then
    info=$(stat -L -c '%s	%a	%u	%g	%Y' -- "$p" 2>/dev/null)
    printf 'dir\t%s\t%s\n' "$info" "$p"
    # NUL-separated names (spaces, tabs, glob characters survive); names holding a newline are skipped
    # because the manifest is line-based. xargs hands batches to a fresh sh that defines add() again.
    find -L "$p" -maxdepth 4 -type f ! -name "*$nl*" -print0 2>/dev/null \
      | xargs -0 -n 64 sh -c 'eval "$ADD"; stage=$1; maxb=$2; shift 2; for f do add "$f"; done' \
        sh "$stage" "$maxb" \
      | head -n "$maxn"
  elif [ -f "$p" ]; then add "$p"
  elif [ -L "$p" ]; then printf 'broken-link\t%s\n' "$p"
  elif [ -e "$p" ]; then printf 'other\t%s\n' "$p"
  else printf 'missing\t%s\n' "$p"; fi
done
printf '\n--CKS-DATA--\n'
tar -C "$stage/data" -cf - . 2>/dev/null | gzip -c | base64
"""

WRITE_SCRIPT = r"""
p=$1; mode=$2
mkdir -p -- "$(dirname -- "$p")" || exit 1
tmp="$(dirname -- "$p")/.cks-write.$$"
cat > "$tmp" && chmod "$mode" "$tmp" && mv -f -- "$tmp" "$p" || { rm -f -- "$tmp"; exit 1; }
"""


def deadline_backend(hostspec: str, timeout: float):
    """testinfra's backend for ``hostspec`` (its own parsing and command building: docker exec, ssh with our
    ssh_config, sudo, local), as a subclass that runs the built command itself: a deadline on every command
    (the process group is killed) and optional stdin. Only ``run`` is used. ``controlpath`` is passed as an
    argument because testinfra reads it from the constructor, not from the host spec."""
    try:
        from testinfra.backend import get_backend_class, parse_hostspec
    except ImportError as exc:
        raise LiveError(f"live grading needs pytest-testinfra: pip install 'cks-kit[live]' ({exc})") from None

    host, kw = parse_hostspec(hostspec)
    control_path = _spec_option(hostspec, "controlpath")
    if control_path:
        kw["controlpath"] = control_path
    base = get_backend_class(kw.setdefault("connection", "local"))
    cls = _DEADLINE_CLASSES.get(base)
    if cls is None:
        cls = _DEADLINE_CLASSES[base] = type(
            f"Deadline{base.__name__}",
            (base,),
            {"stdin": None, "deadline": DEFAULT_TIMEOUT, "run_local": _run_local_with_deadline},
        )
    backend = cls(**kw) if kw["connection"] == "local" else cls(host, **kw)
    backend.deadline = timeout
    return backend


_DEADLINE_CLASSES: dict[type, type] = {}


def _run_local_with_deadline(self, command: str, *args: str):
    """The backend's run_local (it runs the command line the backend built) with a deadline and stdin."""
    stdin_data = self.stdin
    timeout = self.deadline
    if (
        stdin_data is not None
        and self.NAME in {"docker", "podman"}
        and command.startswith(f"{self.NAME} exec ")
    ):
        command = command.replace(f"{self.NAME} exec ", f"{self.NAME} exec -i ", 1)  # forward stdin
    command = self.quote(command, *args)
    cmd = self.encode(command)
    proc = subprocess.Popen(
        cmd,
        shell=True,
        stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(stdin_data, timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            proc.communicate(timeout=5)
        raise NodeError(
            "timeout",
            f"node {self.hostname}: a command did not finish within {timeout:g}s "
            "(the node or its connection is hung; raise CKS_NODE_TIMEOUT if it is only slow)",
        ) from None
    return self.result(proc.returncode, cmd, stdout, stderr)


def _spec_option(hostspec: str, key: str) -> str | None:
    import urllib.parse

    query = urllib.parse.parse_qs(urllib.parse.urlsplit(hostspec).query)
    return query.get(key, [None])[0]


def _safe_abs(path: str) -> bool:
    pure = PurePosixPath(path)
    return pure.is_absolute() and ".." not in pure.parts and "\n" not in path and "\t" not in path


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _first_line(text: Any) -> str:
    text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "no message"


# ---- from a target to nodes ---------------------------------------------------------------------------


def node_hostspec(target: Target, node: str, *, workdir: Path, timeout: float) -> tuple[str, str]:
    """(testinfra host spec, how it is reached) for the lab's logical ``node`` on ``target``."""
    t = int(max(1, min(timeout, 60)))
    if target.kind == "kind":
        engine = "podman" if os.environ.get("KIND_EXPERIMENTAL_PROVIDER") == "podman" else "docker"
        if shutil.which(engine) is None:
            raise NodeError(
                "unreachable",
                f"`{engine}` is not installed here: the kind target reads node files with "
                f"`{engine} exec` into the kind node containers",
            )
        container = kind_node_container(target.name, node)
        return f"{engine}://root@{container}", f"{engine} exec {container}"
    if target.kind == "local":
        if node != "controlplane":
            raise NodeError(
                "unreachable",
                f"node {node} is not this machine: --target local reaches only the "
                "control-plane node it runs on; grade from the host with --target vagrant",
            )
        sudo = "&sudo=true" if os.geteuid() != 0 else ""
        return f"local://?{sudo.lstrip('&')}" if sudo else "local://", "this machine" + (
            " (sudo)" if sudo else ""
        )
    if target.kind == "vagrant":
        machine = target.name if node == "controlplane" else node
        config = vagrant_ssh_config(workdir, timeout)
        ctl = _control_path(workdir, node)
        return (
            f"ssh://{machine}?ssh_config={config}&sudo=true&timeout={t}&controlpersist=30&controlpath={ctl}",
            f"vagrant ssh {machine}",
        )
    if target.kind == "ssh":
        host = target.name if node == "controlplane" else node
        user = f"{target.user}@" if target.user else ""
        port = f":{target.port}" if target.port else ""
        sudo = target.option("sudo", "false" if target.user == "root" else "true")
        query = [
            f"sudo={'true' if str(sudo).lower() == 'true' else 'false'}",
            f"timeout={t}",
            f"controlpath={_control_path(workdir, node)}",
            "controlpersist=30",
        ]
        if target.option("ssh_config"):
            query.append(f"ssh_config={target.option('ssh_config')}")
        if target.option("identity"):
            query.append(f"ssh_identity_file={target.option('identity')}")
        return f"ssh://{user}{host}{port}?{'&'.join(query)}", f"ssh {user}{host}{port}"
    raise NodeError("other", f"target {target.kind} has no nodes")


def kind_node_container(cluster: str, node: str) -> str:
    """kind names node containers NAME-control-plane, NAME-worker, NAME-worker2, ..."""
    if node == "controlplane":
        return f"{cluster}-control-plane"
    if node.startswith("node") and node[4:].isdigit():
        n = int(node[4:])
        return f"{cluster}-worker" + ("" if n <= 1 else str(n))
    return f"{cluster}-{node}"


def _control_path(workdir: Path, node: str) -> str:
    """The ssh master socket of one node for this run: in the run's private work directory (removed with it),
    short enough for a Unix socket path (ssh adds a random suffix while it creates it)."""
    d = workdir if len(str(workdir)) < 60 else Path(tempfile.mkdtemp(prefix="cks-ssh-"))
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    return str(d / f"ssh-{node[:20]}")


_SSH_CONFIG: dict[str, Path] = {}


def vagrant_ssh_config(workdir: Path, timeout: float) -> Path:
    """`vagrant ssh-config` for every machine, once per run, written beside the snapshot."""
    cwd = os.environ.get("VAGRANT_CWD") or os.environ.get("CKS_VAGRANT_DIR") or os.getcwd()
    if cwd in _SSH_CONFIG and _SSH_CONFIG[cwd].is_file():
        return _SSH_CONFIG[cwd]
    if shutil.which("vagrant") is None:
        raise NodeError(
            "unreachable",
            "`vagrant` is not installed here; the vagrant target runs `vagrant ssh-config` "
            "(or run `grade` inside the VM: `vagrant ssh controlplane -c 'grade LAB'`)",
        )
    try:
        proc = subprocess.run(
            ["vagrant", "ssh-config"],
            cwd=cwd,
            capture_output=True,
            timeout=max(timeout, 60),
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise NodeError("timeout", "`vagrant ssh-config` did not answer within a minute") from None
    if proc.returncode != 0 or not proc.stdout.strip():
        raise NodeError(
            "unreachable",
            f"`vagrant ssh-config` failed in {cwd}: {_first_line(proc.stderr)} "
            "(run it from the folder with the Vagrantfile, or set VAGRANT_CWD; "
            "is the cluster up? `vagrant up`)",
        )
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "vagrant-ssh-config"
    path.write_bytes(proc.stdout + b"\nHost *\n  BatchMode yes\n")
    _SSH_CONFIG[cwd] = path
    return path


def open_node(target: Target, node: str, *, workdir: Path, timeout: float = DEFAULT_TIMEOUT) -> Node:
    spec, how = node_hostspec(target, node, workdir=workdir, timeout=timeout)
    cleanup = []
    if "controlpath=" in spec:
        ctl = spec.split("controlpath=", 1)[1].split("&", 1)[0]
        cleanup.append(
            lambda: subprocess.run(
                ["ssh", "-o", f"ControlPath={ctl}", "-O", "exit", "x"],
                capture_output=True,
                timeout=5,
                stdin=subprocess.DEVNULL,
            )
        )
    try:
        return Node(node, spec, timeout=timeout, how=how, cleanup=cleanup)
    except ImportError as exc:
        raise LiveError(f"live grading needs pytest-testinfra: pip install 'cks-kit[live]' ({exc})") from None
