"""The cluster double's nodes: directories with the files a kubeadm node has, reached through the kit's real
ssh node backend (``--target ssh://controlplane?ssh_config=...``) via a loopback OpenSSH server whose
ForceCommand runs each command ``chroot``-ed into that node's directory (in a private mount namespace, with
the host's /usr, /bin, /lib and /work bind-mounted so ordinary tools and the stand-ins work).

Files each node gets (kubeadm init + the kit's provisioning):
``/etc/kubernetes/manifests/{etcd,kube-apiserver,kube-controller-manager,kube-scheduler}.yaml`` (the API
server's is the upstream kubeadm manifest from ``../shared/conformance/kubernetes/``),
``/etc/kubernetes/cks-pristine/kube-apiserver.yaml`` (provisioning's pristine copy),
``/etc/kubernetes/admin.conf`` (the admin token), ``/etc/cks/grader.kubeconfig`` (the grader ServiceAccount's
token), ``/etc/kubernetes/pki/ca.crt``, ``/etc/kubernetes/audit/`` and ``/var/log/kubernetes/audit/``
(provisioning makes both), ``/opt/course/``, and on the control plane Falco's package layout:
``/etc/falco/falco.yaml``, the real upstream ``/etc/falco/falco_rules.yaml`` (falco-rules from
``../shared/conformance/falco/rules/``), ``falco_rules.local.yaml`` and ``rules.d/``.

Stand-in commands in ``/opt/double/bin`` (first on PATH), documented as stand-ins:
- ``falco`` runs the project's own Falco engine: ``--version`` prints the pinned version, ``-V f ...``
  validates like ``falco -V`` (exit 1 on an invalid file). It does not capture system calls.
- ``systemctl is-active falco-modern-bpf`` says ``active``; ``journalctl -u UNIT --since @EPOCH`` prints the
  alerts the double's Falco raised (the double evaluates each exec it serves as an execve/openat event
  against the node's rules files with the project's engine, and appends the alerts to the journal).
- ``crictl ps -a --name kube-apiserver -o json`` and ``/proc/<pid>/{comm,cmdline}`` describe the
  kube-apiserver the double's kubelet runs from the manifest (see :meth:`DoubleNode.kubelet_sync`).
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]
# ../shared beside the checkout (tests/conftest.py's rule, CKS_SHARED overrides); a worktree one level deeper
# too
SHARED = next(
    (
        p
        for p in (Path(os.environ.get("CKS_SHARED", REPO.parent / "shared")), REPO.parent.parent / "shared")
        if p.is_dir()
    ),
    REPO.parent / "shared",
)
NEEDED = ("conformance/kubernetes/kube-apiserver.kubeadm.yaml", "conformance/falco/rules/falco_rules.yaml")
SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if Path("/usr/sbin/sshd").exists() else None)

WRAPPER = r"""#!/bin/sh
# ForceCommand: run the requested command chroot-ed into the node directory $1 (private mount namespace).
R=$1
if [ "$(id -u)" = 0 ]; then U="unshare -m"; else U="unshare -rm"; fi
exec $U /bin/sh -c '
R=$0
for d in usr bin sbin lib lib64 lib32 work; do
  [ -e "/$d" ] || continue
  [ -L "/$d" ] && { [ -e "$R/$d" ] || ln -s "$(readlink "/$d")" "$R/$d"; continue; }
  mkdir -p "$R/$d" && mount --rbind "/$d" "$R/$d"
done
mkdir -p "$R/dev" "$R/tmp" && mount --rbind /dev "$R/dev"
# the interpreter of the stand-in commands, wherever it is installed (pyenv puts it under /root)
for p in @PYTHON_PREFIXES@; do
  [ -d "$p" ] && [ -z "$(ls -A "$R$p" 2>/dev/null)" ] && mkdir -p "$R$p" && mount --rbind "$p" "$R$p"
done
if [ -d /etc/alternatives ]; then
  mkdir -p "$R/etc/alternatives" && mount --rbind /etc/alternatives "$R/etc/alternatives"
fi
PATH=/opt/double/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
exec chroot "$R" /bin/sh -c "$SSH_ORIGINAL_COMMAND"
' "$R"
"""


SSH_SHIM = r"""#!/bin/sh
# A stand-in for the ssh client (first on PATH in the fast tests): it runs the command on the double's node
# directory exactly as the loopback sshd's ForceCommand would, without the ~0.5 s sshd spends per session
# here. Accepts what testinfra passes: ssh [-F f] [-o opt]... [-i f] [-O cmd] HOST COMMAND.
dir=$(dirname "$0")
while [ $# -gt 0 ]; do
  case "$1" in
    -O) exit 0 ;;
    -F|-o|-i|-p|-l) shift 2 ;;
    -F*|-o*|-i*|-p*|-l*|-[46qTtvx]) shift ;;
    *) break ;;
  esac
done
host=$1; shift
root=$(sed -n "s/^$host //p" "$dir/hosts")
[ -n "$root" ] || { echo "ssh: Could not resolve hostname $host: Name or service not known" >&2; exit 255; }
[ -e "$dir/refuse-$host" ] && { echo "ssh: connect to host $host port 22: Connection refused" >&2; exit 255; }
SSH_ORIGINAL_COMMAND="$*" exec "$dir/node-shell" "$root"
"""


def node_support() -> str | None:
    """None if nodes can be served here, else why not (the tests skip with it)."""
    missing = [p for p in NEEDED if not (SHARED / p).is_file()]
    if missing:
        return (
            f"conformance data not found ({SHARED / missing[0]}): "
            "set CKS_SHARED or place ../shared beside the repo"
        )
    if SSHD is None or shutil.which("ssh") is None:
        return "sshd/ssh not installed (apt-get install openssh-server openssh-client)"
    if shutil.which("unshare") is None or shutil.which("chroot") is None:
        return "unshare/chroot not available"
    probe = subprocess.run(["unshare", "-m" if os.geteuid() == 0 else "-rm", "true"], capture_output=True)
    if probe.returncode != 0:
        return f"mount namespaces not permitted here: {probe.stderr.decode()[:120]}"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _standin(path: Path, body: str) -> None:
    path.write_text(f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(REPO)!r})\n{body}")
    path.chmod(0o755)


FALCO = r"""
import json, os, time
from tests.live.double.node import falco_main
sys.exit(falco_main(sys.argv[1:]))
"""
SYSTEMCTL = r"""
args = sys.argv[1:]
if args[:1] == ["is-active"] and args[1:2] == ["falco-modern-bpf"]:
    print("active"); sys.exit(0)
print("inactive"); sys.exit(3)
"""
JOURNALCTL = r"""
args = sys.argv[1:]
since = 0
if "--since" in args:
    v = args[args.index("--since") + 1]
    since = int(v[1:]) if v.startswith("@") and v[1:].isdigit() else 0
try:
    lines = open("/var/log/double/falco-journal.log").read().splitlines()
except OSError:
    lines = []
for ln in lines:
    ts, _, text = ln.partition("\t")
    if int(ts) >= since:
        print(text)
"""
CRICTL = r"""
try:
    print(open("/var/lib/double/crictl.json").read())
except OSError:
    print('{"containers": []}')
"""


def falco_main(argv: list[str]) -> int:
    """The stand-in ``falco``: --version and -V validation through the project's engine."""
    from grader.engines.falco.loader import RulesLoader
    from grader.engines.falco.validation import validation_text

    if "--version" in argv:
        print(f"Falco version: {falco_version()} (x86_64)")
        return 0
    files = [argv[i + 1] for i, a in enumerate(argv) if a == "-V" and i + 1 < len(argv)]
    if not files:
        print("this falco is the cluster double's stand-in: it validates (-V) and prints --version only")
        return 1
    import hashlib

    contents = []
    for f in files:
        try:
            contents.append((f, Path(f).read_bytes()))
        except OSError as exc:
            print(f"Error: cannot read {f}: {exc.strerror}")
            return 1
    # the upstream rules file takes seconds to load here: answers are cached per content (same input, same
    # answer)
    key = hashlib.sha256(repr([(f, hashlib.sha256(d).hexdigest()) for f, d in contents]).encode()).hexdigest()
    cache = Path("/var/lib/double/falco-validate") / f"{key}.json"
    if cache.is_file():
        out, err, rc = json.loads(cache.read_text())
    else:
        loader = RulesLoader()
        for f, data in contents:
            loader.load(f, data)
        result = loader.result()
        out, err = validation_text(result.files)
        rc = 0 if all(f.successful for f in result.files) else 1
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps([out, err, rc]))
    sys.stdout.write(out)
    sys.stderr.write(err)
    return rc


def falco_version() -> str:
    env = REPO / "provision" / "versions.env"
    for line in env.read_text().splitlines() if env.is_file() else []:
        if line.startswith("FALCO_VERSION="):
            return line.split("=", 1)[1].strip().strip('"')
    return "0.44.1"


class DoubleNode:
    def __init__(self, name: str, root: Path, port: int):
        self.name, self.root, self.port = name, root, port

    def path(self, p: str) -> Path:
        return self.root / p.lstrip("/")

    def read(self, p: str) -> str:
        return self.path(p).read_text()

    def write(self, p: str, text: str | bytes) -> None:
        f = self.path(p)
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(text.encode() if isinstance(text, str) else text)

    def journal(self, epoch: int, line: str) -> None:
        f = self.path("/var/log/double/falco-journal.log")
        f.parent.mkdir(parents=True, exist_ok=True)
        with f.open("a") as fh:
            fh.write(f"{epoch}\t{line}\n")

    def kubelet_sync_down(self) -> None:
        """No kube-apiserver process; crictl shows the last container exited."""
        shutil.rmtree(self.path("/proc/4242"), ignore_errors=True)
        crictl = self.path("/var/lib/double/crictl.json")
        crictl.parent.mkdir(parents=True, exist_ok=True)
        crictl.write_text(
            json.dumps(
                {
                    "containers": [
                        {
                            "id": "a1b2c3d4e5f60718293a4b5c",
                            "state": "CONTAINER_EXITED",
                            "metadata": {"name": "kube-apiserver", "attempt": 1},
                            "createdAt": str(int(time.time()) * 1_000_000_000),
                        }
                    ]
                }
            )
        )

    def kubelet_sync(self, started: int | None = None) -> dict | None:
        """Read the kube-apiserver manifest as kubelet would: a parseable Pod -> a running process with its
        command (fake /proc entry and crictl listing); anything else -> no process. Returns the pod."""
        manifest = self.path("/etc/kubernetes/manifests/kube-apiserver.yaml")
        proc = self.path("/proc/4242")
        try:
            pod = yaml.safe_load(manifest.read_text()) if manifest.is_file() else None
            cmd = [str(a) for a in pod["spec"]["containers"][0]["command"]] if isinstance(pod, dict) else None
        except (yaml.YAMLError, KeyError, IndexError, TypeError):
            pod, cmd = None, None
        crictl = self.path("/var/lib/double/crictl.json")
        crictl.parent.mkdir(parents=True, exist_ok=True)
        if not cmd:
            shutil.rmtree(proc, ignore_errors=True)
            crictl.write_text(json.dumps({"containers": []}))
            return None
        proc.mkdir(parents=True, exist_ok=True)
        (proc / "comm").write_text("kube-apiserver\n")
        (proc / "cmdline").write_bytes(b"\0".join(a.encode() for a in cmd) + b"\0")
        now = started or int(time.time())
        os.utime(proc, (now, now))
        crictl.write_text(
            json.dumps(
                {
                    "containers": [
                        {
                            "id": "a1b2c3d4e5f60718293a4b5c",
                            "state": "CONTAINER_RUNNING",
                            "metadata": {"name": "kube-apiserver", "attempt": 0},
                            "createdAt": str(now * 1_000_000_000),
                        }
                    ]
                }
            )
        )
        return pod


class DoubleNodes:
    """Node directories + one loopback sshd serving them (one port per node)."""

    def __init__(
        self,
        workdir: Path,
        names: tuple[str, ...],
        *,
        admin_kubeconfig: dict,
        grader_kubeconfig: dict,
        ca_pem: bytes,
        real_sshd: bool = True,
    ):
        self.workdir = workdir
        self.nodes: dict[str, DoubleNode] = {}
        keys = workdir / "ssh"
        keys.mkdir(parents=True)
        for key in ("host_key", "user_key"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / key)], check=True)
        (keys / "authorized_keys").write_text((keys / "user_key.pub").read_text())
        os.chmod(keys / "authorized_keys", 0o600)
        wrapper = keys / "node-shell"
        # the stand-ins' shebang is this interpreter: its real prefix must exist inside the chroot (pyenv's
        # under /root, a virtualenv and the checkout wherever CI cloned them), and the checkout they import
        prefixes = sorted(
            {str(Path(p).resolve()) for p in (sys.base_prefix, sys.prefix, REPO)}
            | {str(Path(sys.executable).resolve().parent.parent)}
        )
        wrapper.write_text(WRAPPER.replace("@PYTHON_PREFIXES@", " ".join(f"'{p}'" for p in prefixes)))
        wrapper.chmod(0o755)
        ports = {}
        for name in names:
            root = workdir / "nodes" / name
            ports[name] = _free_port()
            self.nodes[name] = DoubleNode(name, root, ports[name])
            self._populate(self.nodes[name], name == names[0], admin_kubeconfig, grader_kubeconfig, ca_pem)
        user = getpass.getuser()
        match = "".join(
            f"Match LocalPort {p}\n  ForceCommand {wrapper} {self.nodes[n].root}\n" for n, p in ports.items()
        )
        (keys / "sshd_config").write_text(
            "".join(f"Port {p}\n" for p in ports.values())
            + f"ListenAddress 127.0.0.1\nHostKey {keys}/host_key\nAuthorizedKeysFile {keys}/authorized_keys\n"
            f"PidFile {keys}/sshd.pid\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "PubkeyAuthentication yes\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n"
            "UseDNS no\n"
            "PrintMotd no\nPrintLastLog no\nX11Forwarding no\nPermitTTY no\nSubsystem sftp internal-sftp\n"
            + match
        )
        self.ssh_config = keys / "ssh_config"
        self.ssh_config.write_text(
            "".join(f"Host {n}\n  HostName 127.0.0.1\n  Port {p}\n" for n, p in ports.items())
            + f"Host *\n  User {user}\n  IdentityFile {keys}/user_key\n  IdentitiesOnly yes\n"
            "  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n"
            "  BatchMode yes\n"
        )
        self.bin = keys / "bin"
        self.bin.mkdir()
        (self.bin / "ssh").write_text(SSH_SHIM)
        (self.bin / "ssh").chmod(0o755)
        shutil.copy(wrapper, self.bin / "node-shell")
        (self.bin / "hosts").write_text("".join(f"{n} {node.root}\n" for n, node in self.nodes.items()))
        self.proc = None
        if not real_sshd:
            return
        Path("/run/sshd").mkdir(exist_ok=True) if os.geteuid() == 0 else None
        self.proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(keys / "sshd_config")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        for port in ports.values():
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"sshd did not start: {self.proc.stderr.read().decode()[-300:]}")
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError("sshd did not listen within 10 s")
                time.sleep(0.05)

    @property
    def target(self) -> str:
        return f"ssh://{next(iter(self.nodes))}?ssh_config={self.ssh_config}&sudo=false"

    def __getitem__(self, name: str) -> DoubleNode:
        return self.nodes[name]

    def refuse(self) -> None:
        """Every node refuses ssh from now on."""
        for name in self.nodes:
            (self.bin / f"refuse-{name}").touch()
        self.stop()

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def _populate(
        self, node: DoubleNode, control_plane: bool, admin: dict, grader: dict, ca_pem: bytes
    ) -> None:
        node.root.mkdir(parents=True)
        for d in (
            "tmp",
            "etc/kubernetes/audit",
            "var/log/kubernetes/audit",
            "opt/course",
            "var/lib/kubelet",
            "opt/double/bin",
            "proc",
        ):
            node.path(d).mkdir(parents=True, exist_ok=True)
        node.write("/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")
        node.write("/etc/group", "root:x:0:\n")
        node.write("/etc/kubernetes/kubelet.conf", "# kubelet kubeconfig (double)\n")
        node.write(
            "/var/lib/kubelet/config.yaml",
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n",
        )
        node.write("/etc/kubernetes/pki/ca.crt", ca_pem)
        for name, body in (
            ("falco", FALCO),
            ("systemctl", SYSTEMCTL),
            ("journalctl", JOURNALCTL),
            ("crictl", CRICTL),
        ):
            _standin(node.path(f"/opt/double/bin/{name}"), body)
        if not control_plane:
            return
        node.write("/etc/kubernetes/admin.conf", yaml.safe_dump(admin))
        node.write("/etc/cks/grader.kubeconfig", yaml.safe_dump(grader))
        os.chmod(node.path("/etc/cks/grader.kubeconfig"), 0o600)
        manifest = (SHARED / "conformance/kubernetes/kube-apiserver.kubeadm.yaml").read_text()
        node.write("/etc/kubernetes/manifests/kube-apiserver.yaml", manifest)
        node.write("/etc/kubernetes/cks-pristine/kube-apiserver.yaml", manifest)
        for comp in ("etcd", "kube-controller-manager", "kube-scheduler"):
            node.write(
                f"/etc/kubernetes/manifests/{comp}.yaml",
                f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {comp}, namespace: kube-system}}\n"
                f"spec:\n  containers:\n  - name: {comp}\n    image: registry.k8s.io/{comp}\n",
            )
        rules = SHARED / "conformance/falco/rules/falco_rules.yaml"
        node.write("/etc/falco/falco_rules.yaml", rules.read_bytes())
        node.write("/etc/falco/falco_rules.local.yaml", "# Your custom rules!\n")
        node.path("/etc/falco/rules.d").mkdir(parents=True, exist_ok=True)
        node.write(
            "/etc/falco/falco.yaml",
            "rules_files:\n  - /etc/falco/falco_rules.yaml\n"
            "  - /etc/falco/falco_rules.local.yaml\n  - /etc/falco/rules.d\n"
            "webserver:\n  enabled: true\n  listen_port: 8765\n"
            "config_files:\n  - /etc/falco/config.d\n",
        )
        # what provision/falco.sh writes: every matching rule alerts, so a default rule cannot hide the
        # learner's own
        node.write("/etc/falco/config.d/cks.yaml", "rule_matching: all\n")
        node.kubelet_sync()
