"""Target parsing, the default target, and the promise that offline paths never import the live libraries."""

from __future__ import annotations

import subprocess
import sys

import pytest

from grader.collectors import default_target, parse_target
from grader.collectors.nodes import kind_node_container, node_hostspec


@pytest.mark.parametrize(
    "spec, kind, name",
    [
        ("kind", "kind", "kind"),
        ("kind:cks", "kind", "cks"),
        ("vagrant", "vagrant", "controlplane"),
        ("vagrant:cp1", "vagrant", "cp1"),
        ("local", "local", "localhost"),
        ("workspace:ws/lab1", "workspace", "ws/lab1"),
        ("ssh://admin@10.1.2.3:2222", "ssh", "10.1.2.3"),
    ],
)
def test_valid_targets(spec, kind, name):
    t = parse_target(spec)
    assert (t.kind, t.name) == (kind, name)


def test_ssh_target_keeps_user_port_and_options():
    t = parse_target("ssh://admin@node.example:2222?ssh_config=/tmp/cfg&sudo=true")
    assert (t.user, t.port, t.option("ssh_config"), t.option("sudo")) == ("admin", 2222, "/tmp/cfg", "true")
    assert t.label == "ssh admin@node.example:2222"


@pytest.mark.parametrize(
    "spec, says",
    [
        ("", "empty target"),
        ("kube:cks", "unknown target"),
        ("http://x", "only ssh://"),
        ("workspace:", "needs a directory"),
        ("local:foo", "takes no name"),
        ("kind:bad name", "not a valid kind cluster name"),
        ("ssh://", "names no host"),
        ("ssh://h?password=x", "unknown option"),
    ],
)
def test_bad_targets_say_what_to_write(spec, says):
    with pytest.raises(ValueError) as err:
        parse_target(spec)
    assert says in str(err.value)


def test_kind_node_names():
    assert kind_node_container("cks", "controlplane") == "cks-control-plane"
    assert kind_node_container("cks", "node01") == "cks-worker"
    assert kind_node_container("cks", "node02") == "cks-worker2"


def test_kind_hostspec_uses_docker_exec_as_root(tmp_path, monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: f"/usr/bin/{name}")
    spec, how = node_hostspec(parse_target("kind:cks"), "controlplane", workdir=tmp_path, timeout=10)
    assert spec == "docker://root@cks-control-plane" and how == "docker exec cks-control-plane"


def test_default_target(tmp_path, monkeypatch):
    monkeypatch.setenv("CKS_APISERVER_MANIFEST", str(tmp_path / "kube-apiserver.yaml"))
    assert default_target() == "workspace"
    (tmp_path / "kube-apiserver.yaml").write_text("kind: Pod\n")
    assert default_target() == "local"


def test_offline_paths_never_import_kubernetes_or_testinfra():
    code = (
        "import sys, grader.collectors, grader.checks.live, grader.runner; "
        "from grader.collectors import parse_target; parse_target('kind:cks'); "
        "bad = [m for m in ('kubernetes', 'testinfra', 'urllib3') if m in sys.modules]; "
        "print(','.join(bad)); sys.exit(1 if bad else 0)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, f"imported on an offline path: {res.stdout} {res.stderr}"


def test_show_tells_kind_learners_how_to_edit_node_files():
    from click.testing import CliRunner

    from grader.cli import cks

    on_kind = CliRunner().invoke(cks, ["show", "lab2", "--target", "kind:cks"])
    assert on_kind.exit_code == 0, on_kind.output
    assert (
        "docker exec -it cks-control-plane bash" in on_kind.output and "editing node files" in on_kind.output
    )
    assert "/etc/kubernetes/manifests/kube-apiserver.yaml" in on_kind.output
    offline = CliRunner().invoke(cks, ["show", "lab2"])
    assert "editing node files" not in offline.output
    vagrant = CliRunner().invoke(cks, ["show", "lab2", "--target", "vagrant"])
    assert "editing node files" not in vagrant.output
