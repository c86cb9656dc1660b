"""`cks apiserver check MANIFEST`: the study tool over the engine."""

from __future__ import annotations

import json

from click.testing import CliRunner

from grader.cli.apiserver import manifest_cmd
from grader.labs import get_lab
from grader.selftest import build

LAB = get_lab("lab2")
MANIFEST = "nodes/controlplane/etc/kubernetes/manifests/kube-apiserver.yaml"


def run(*args: str):
    return CliRunner().invoke(manifest_cmd, list(args))


def test_solution_shows_flags_paths_and_policy(tmp_path):
    build(LAB, tmp_path, None, solution=True)
    res = run(str(tmp_path / MANIFEST), "--host-root", str(tmp_path / "nodes/controlplane"))
    assert res.exit_code == 0, res.output
    assert "--audit-log-maxage = 30 days" in res.output
    assert "host /var/log/kubernetes/audit/audit.log" in res.output
    assert "loads" in res.output and "kube-apiserver pods: kube-apiserver.yaml" in res.output


def test_mistakes_give_exit_1_and_name_them(tmp_path):
    build(LAB, tmp_path, None, solution=True)
    path = tmp_path / MANIFEST
    path.write_text(path.read_text().replace("--audit-log-maxbackup=", "--audit-log-max-backups="))
    (path.parent / "kube-apiserver.yaml.bak").write_text(path.read_text())
    res = run(str(path), "--host-root", str(tmp_path / "nodes/controlplane"), "--format", "json")
    assert res.exit_code == 1
    out = json.loads(res.output)
    assert out["would_start"] is False
    assert out["unknown_audit_flags"][0]["did_you_mean"] == "--audit-log-maxbackup"
    assert out["static_pods"]["apiserver_files"] == ["kube-apiserver.yaml", "kube-apiserver.yaml.bak"]
    assert out["policy"]["status"] == "ok" and out["policy_mount"]["read_only"] is True


def test_without_host_root_it_still_reads_the_manifest(tmp_path):
    build(LAB, tmp_path, None, solution=False)
    res = run(str(tmp_path / MANIFEST))
    assert res.exit_code == 0 and "auditing is off" in res.output and "--host-root" in res.output


def test_bad_files(tmp_path):
    missing = run(str(tmp_path / "nope.yaml"))
    assert missing.exit_code == 2
    binary = tmp_path / "b.yaml"
    binary.write_bytes(b"\x00\x01" * 50)
    res = run(str(binary))
    assert res.exit_code == 2 and "binary" in res.output
    broken = tmp_path / "c.yaml"
    broken.write_text("kind: Pod\nspec: [\n")
    res = run(str(broken))
    assert res.exit_code == 1 and "not valid YAML" in res.output and "Traceback" not in res.output


def test_host_root_cannot_be_escaped(tmp_path):
    from grader.cli.apiserver import DirHost

    (tmp_path / "root").mkdir()
    (tmp_path / "secret").write_text("x")
    host = DirHost(tmp_path / "root")
    assert host.kind("/../secret") is None
    (tmp_path / "root" / "link").symlink_to(tmp_path / "secret")
    assert host.kind("/link") is None
