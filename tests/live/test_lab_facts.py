"""Facts in the shapes the labs' own checks read (docs/apiserver.md `audit-probe`, pods.write_probe),
produced by the real collector code against the test API server and a local node."""

from __future__ import annotations

import pytest
import yaml

from grader.collectors import parse_target
from grader.collectors.facts import audit_log_host_path, audit_probe_fact, write_probe_fact
from grader.collectors.kube import KubeApi, KubeError, load_configuration
from grader.collectors.nodes import open_node


def manifest(log_path: str, host_dir: str, mount: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "kube-apiserver", "namespace": "kube-system"},
            "spec": {
                "containers": [
                    {
                        "name": "kube-apiserver",
                        "image": "k",
                        "command": ["kube-apiserver", f"--audit-log-path={log_path}"],
                        "volumeMounts": [{"name": "logs", "mountPath": mount}],
                    }
                ],
                "volumes": [{"name": "logs", "hostPath": {"path": host_dir, "type": "DirectoryOrCreate"}}],
            },
        }
    )


def test_log_path_follows_the_hostpath_mount():
    assert (
        audit_log_host_path(manifest("/var/log/audit/a.log", "/srv/logs", "/var/log/audit"))
        == "/srv/logs/a.log"
    )
    assert (
        audit_log_host_path(manifest("/elsewhere/a.log", "/srv/logs", "/var/log/audit")) is None
    )  # not mounted
    assert audit_log_host_path("not: [yaml") is None


@pytest.fixture
def api(kube, tmp_path):
    api = KubeApi(load_configuration(kubeconfig=kube.kubeconfig(tmp_path / "kc")), timeout=5)
    yield api
    api.close()


def test_audit_probe_finds_its_fresh_event(kube, api, tmp_path):
    logs = tmp_path / "host-logs"
    logs.mkdir()
    (logs / "audit.log").write_text('{"level": "Metadata", "requestURI": "/old/stale"}\n')
    kube.audit_log = logs / "audit.log"
    node = open_node(parse_target("local"), "controlplane", workdir=tmp_path / "w")
    fact = audit_probe_fact(
        api,
        node,
        manifest("/var/log/kubernetes/audit/audit.log", str(logs), "/var/log/kubernetes/audit"),
        wait=3,
    )
    assert fact["log_path"] == str(logs / "audit.log")
    assert fact["request"]["resource"] == "configmaps" and fact["request"]["name"] == fact["marker"]
    assert fact["sent_at"] and fact["error"] is None
    assert len(fact["events"]) == 1 and fact["marker"] in fact["events"][0]["requestURI"]
    assert fact["request"]["user"]["username"] == "grader"  # from the event: the test server has no whoami


def test_audit_probe_with_a_none_policy_finds_no_event(kube, api, tmp_path):
    logs = tmp_path / "host-logs"
    logs.mkdir()
    kube.audit_log, kube.audit_level = logs / "audit.log", "None"
    node = open_node(parse_target("local"), "controlplane", workdir=tmp_path / "w")
    fact = audit_probe_fact(api, node, manifest("/l/audit.log", str(logs), "/l"), wait=1)
    assert fact["events"] == [] and fact["error"] is None


def test_write_probe_refused_exec_says_what_to_grant(kube, api):
    kube.put(
        {
            "kind": "Pod",
            "metadata": {"name": "web-1", "namespace": "prod", "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "nginx", "image": "nginx"}]},
            "status": {"phase": "Running"},
        }
    )
    with pytest.raises(KubeError) as err:
        write_probe_fact(api, "prod", "app=web", ["/", "/tmp"])
    assert err.value.reason == "forbidden" and "pods/exec" in str(err.value)


def test_write_probe_without_a_running_pod_says_so(kube, api):
    kube.put(
        {
            "kind": "Pod",
            "metadata": {"name": "web-1", "namespace": "prod", "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "nginx", "image": "nginx"}]},
            "status": {"phase": "Pending"},
        }
    )
    with pytest.raises(KubeError) as err:
        write_probe_fact(api, "prod", "app=web", ["/"])
    assert "no Running pod" in str(err.value) and "app=web" in str(err.value)
