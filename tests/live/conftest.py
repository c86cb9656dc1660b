"""Fixtures for the live paths without a cluster: the fake API server, a loopback sshd, small test labs."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml

pytest.importorskip("kubernetes", reason="the live extras (kubernetes) are not installed")
pytest.importorskip("testinfra", reason="the live extras (pytest-testinfra) are not installed")

from tests.live.double import Cluster  # noqa: E402
from tests.live.kubeapi import FakeKube  # noqa: E402

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if Path("/usr/sbin/sshd").exists() else None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def kube():
    with FakeKube() as server:
        yield server


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    """An OpenSSH server on 127.0.0.1:<free port> accepting a throwaway key for the current user."""
    if SSHD is None:
        pytest.skip("sshd not installed (apt-get install openssh-server) - the ssh backend test needs it")
    if shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        pytest.skip("the ssh client is not installed")
    d = tmp_path_factory.mktemp("sshd")
    for name in ("host_key", "user_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)], check=True)
    (d / "authorized_keys").write_text((d / "user_key.pub").read_text())
    os.chmod(d / "authorized_keys", 0o600)
    port = free_port()
    user = getpass.getuser()
    Path("/run/sshd").mkdir(exist_ok=True) if os.geteuid() == 0 else None
    (d / "sshd_config").write_text(f"""Port {port}
ListenAddress 127.0.0.1
HostKey {d}/host_key
AuthorizedKeysFile {d}/authorized_keys
PidFile {d}/sshd.pid
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
""")
    proc = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(d / "sshd_config")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    (d / "ssh_config").write_text(f"""Host *
  User {user}
  Port {port}
  IdentityFile {d}/user_key
  IdentitiesOnly yes
  StrictHostKeyChecking no
  UserKnownHostsFile /dev/null
  LogLevel ERROR
  BatchMode yes
""")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.skip(f"sshd did not start: {proc.stderr.read().decode()[-300:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    else:
        proc.kill()
        pytest.skip("sshd did not listen within 10 s")
    yield {"port": port, "config": d / "ssh_config", "user": user}
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()


def write_lab(root: Path, lab_id: str, data: dict) -> Path:
    d = root / f"{lab_id}-live"
    d.mkdir(parents=True, exist_ok=True)
    data = {"id": lab_id, "version": 1, "title": "Live test lab", "minutes": 5, **data}
    (d / "lab.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return d


class QuickPolls:
    """The time module for the collector's and the lifecycle's polling loops, on a virtual clock: a sleep
    really waits at most 0.1 s (the double settles at once) and moves the clock the full amount, so every
    deadline-based loop takes the same number of turns, and reaches the same outcome, as on a cluster."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def __getattr__(self, name):
        return getattr(time, name)

    def monotonic(self) -> float:
        return time.monotonic() + self.ahead

    def time(self) -> float:
        return time.time() + self.ahead

    def sleep(self, seconds: float) -> None:
        real = min(seconds, 0.1)
        time.sleep(real)
        self.ahead += max(0.0, seconds - real)


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    """Nodes through the ssh client stand-in (the loopback sshd costs ~0.5 s per command here)."""
    from grader.collectors import facts, lifecycle

    c = Cluster(tmp_path / "cluster", real_sshd=False)
    monkeypatch.setenv("PATH", f"{c.nodes.bin}:{os.environ['PATH']}")
    clock = QuickPolls()
    for module in (facts, lifecycle):
        monkeypatch.setattr(module, "time", clock)
    yield c
    c.close()


@pytest.fixture
def cluster_sshd(tmp_path):
    """Nodes behind the real loopback OpenSSH server."""
    c = Cluster(tmp_path / "cluster")
    yield c
    c.close()
