"""Node access through real testinfra backends: local over a temp dir, ssh against a loopback sshd."""

from __future__ import annotations

import time

import pytest

from grader.collectors import parse_target
from grader.collectors.nodes import Node, NodeError, open_node


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "node"
    (root / "etc/kubernetes/manifests").mkdir(parents=True)
    (root / "etc/kubernetes/manifests/kube-apiserver.yaml").write_text("kind: Pod\n")
    (root / "etc/kubernetes/manifests/etcd.yaml").write_text("kind: Pod # etcd\n")
    (root / "etc/kubernetes/audit").mkdir(parents=True)
    (root / "etc/kubernetes/audit/policy.yaml").write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\n")
    (root / "bin.dat").write_bytes(bytes(range(256)) * 4)
    (root / "with space.txt").write_text("spaced\n")
    return root


def local_node(tmp_path, **kw) -> Node:
    return open_node(parse_target("local"), "controlplane", workdir=tmp_path / "w", **kw)


def test_local_fetch_files_dirs_and_missing(tree, tmp_path):
    node = local_node(tmp_path)
    dest = tmp_path / "snap"
    manifest = node.fetch(
        [
            f"{tree}/etc/kubernetes/audit/policy.yaml",
            f"{tree}/nope.yaml",
            f"{tree}/bin.dat",
            f"{tree}/with space.txt",
        ],
        [f"{tree}/etc/kubernetes/manifests"],
        dest,
    )
    got = dest / str(tree).lstrip("/")
    assert (got / "etc/kubernetes/audit/policy.yaml").read_text().startswith("apiVersion: audit.k8s.io/v1")
    assert (got / "etc/kubernetes/manifests/etcd.yaml").read_text() == "kind: Pod # etcd\n"
    assert (got / "bin.dat").read_bytes() == bytes(range(256)) * 4  # binary survives the trip
    assert (got / "with space.txt").read_text() == "spaced\n"
    assert manifest[f"{tree}/nope.yaml"]["type"] == "missing"
    assert manifest[f"{tree}/etc/kubernetes/manifests"]["type"] == "dir"
    entry = manifest[f"{tree}/etc/kubernetes/audit/policy.yaml"]
    assert entry["type"] == "file" and len(entry["sha256"]) == 64 and entry["mode"] and not entry["truncated"]


def test_large_file_keeps_its_tail(tree, tmp_path):
    big = tree / "audit.log"
    big.write_bytes(b"old\n" * 1000 + b"NEWEST-LINE\n")
    manifest = local_node(tmp_path).fetch([str(big)], [], tmp_path / "snap", max_bytes=100)
    data = (tmp_path / "snap" / str(big).lstrip("/")).read_bytes()
    assert len(data) == 100 and data.endswith(b"NEWEST-LINE\n")
    assert manifest[str(big)]["truncated"] is True


def test_write_file_is_atomic_and_creates_dirs(tmp_path):
    node = local_node(tmp_path)
    target = tmp_path / "a/b/c.yaml"
    node.write_file(str(target), b"x: 1\n", mode="0600")
    assert target.read_bytes() == b"x: 1\n"
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    node.write_file(str(target), b"x: 2\n" * 50000)  # larger than one argv: goes through stdin
    assert target.read_bytes() == b"x: 2\n" * 50000
    assert [p.name for p in target.parent.iterdir()] == ["c.yaml"]  # no temp file left behind
    assert node.read_file(str(target))[:5] == b"x: 2\n"
    assert node.read_file(str(tmp_path / "absent")) is None


def test_a_hung_command_is_killed_at_the_timeout(tmp_path):
    node = local_node(tmp_path, timeout=1)
    start = time.monotonic()
    with pytest.raises(NodeError) as err:
        node.run("sleep 30")
    assert err.value.reason == "timeout"
    assert "did not finish within 1s" in str(err.value)
    assert time.monotonic() - start < 10


def test_refuses_unclean_paths(tmp_path):
    with pytest.raises(NodeError):
        local_node(tmp_path).write_file("../etc/passwd", b"x")


def test_ssh_backend_fetches_through_a_real_sshd(sshd, tree, tmp_path):
    target = parse_target(
        f"ssh://{sshd['user']}@127.0.0.1:{sshd['port']}?ssh_config={sshd['config']}&sudo=false"
    )
    node = open_node(target, "controlplane", workdir=tmp_path / "w", timeout=20)
    try:
        manifest = node.fetch(
            [f"{tree}/etc/kubernetes/audit/policy.yaml"],
            [f"{tree}/etc/kubernetes/manifests"],
            tmp_path / "snap",
        )
        assert manifest[f"{tree}/etc/kubernetes/manifests/kube-apiserver.yaml"]["type"] == "file"
        assert (tmp_path / "snap" / str(tree).lstrip("/") / "etc/kubernetes/audit/policy.yaml").is_file()
        node.write_file(str(tmp_path / "via-ssh.txt"), b"hello over ssh\n")
        assert (tmp_path / "via-ssh.txt").read_bytes() == b"hello over ssh\n"
    finally:
        node.close()


def test_node_refusing_ssh_is_unreachable_with_a_hint(sshd, tmp_path):
    from tests.live.conftest import free_port

    port = free_port()  # nothing listens there
    target = parse_target(f"ssh://{sshd['user']}@127.0.0.1:{port}?ssh_config={sshd['config']}&sudo=false")
    node = open_node(target, "controlplane", workdir=tmp_path / "w", timeout=5)
    start = time.monotonic()
    with pytest.raises(NodeError) as err:
        node.run("true")
    assert err.value.reason == "unreachable"
    assert "cannot reach node controlplane" in str(err.value) and "sshd" in str(err.value)
    assert time.monotonic() - start < 15
