"""The real `kubeadm init` kube-apiserver manifest (../shared/conformance/kubernetes) read by the engine."""

from __future__ import annotations

import copy

import pytest

from grader.engines.apiserver import DictHost, analyze_manifest, analyze_manifest_dir, parse_manifest_text
from grader.engines.apiserver.static_pods import DirEntry

pytestmark = pytest.mark.conformance


@pytest.fixture(scope="module")
def kubeadm_text(shared_dir) -> str:
    path = shared_dir / "conformance" / "kubernetes" / "kube-apiserver.kubeadm.yaml"
    if not path.is_file():
        pytest.skip(f"{path} is absent: conformance data not available")
    return path.read_text()


def test_parses_as_the_kube_apiserver_pod(kubeadm_text):
    doc, problems = parse_manifest_text(kubeadm_text)
    assert not problems
    a = analyze_manifest(doc)
    assert (a.namespace, a.pod_name, a.container_name) == ("kube-system", "kube-apiserver", "kube-apiserver")
    assert a.argv[0] == "kube-apiserver" and len(a.argv) > 20
    assert a.parsed.last("secure-port").value == "6443"
    assert a.parsed.last("authorization-mode").value == "Node,RBAC"


def test_has_no_audit_flags(kubeadm_text):
    doc, _ = parse_manifest_text(kubeadm_text)
    a = analyze_manifest(doc)
    assert not [f for f in a.audit.values() if f.set] and not a.unknown_audit_flags
    assert not a.log_enabled and a.policy is None and a.log is None
    assert a.parsed.audit_settings() == []


def test_volumes_and_mounts_analyse_cleanly(kubeadm_text):
    doc, _ = parse_manifest_text(kubeadm_text)
    a = analyze_manifest(doc, DictHost({}, dirs=("/etc/kubernetes/pki", "/etc/ssl/certs")))
    assert a.problems == [] and a.would_start
    assert len(a.volumes) == len(a.mounts) >= 6
    assert all(v.source == "hostPath" and v.host_type == "DirectoryOrCreate" for v in a.volumes.values())
    assert all(m.read_only for m in a.mounts)


def test_docs_recipe_on_the_real_manifest_passes_and_typo_fails(kubeadm_text):
    doc, _ = parse_manifest_text(kubeadm_text)
    doc = copy.deepcopy(doc)
    c = doc["spec"]["containers"][0]
    c["command"] += [
        "--audit-policy-file=/etc/kubernetes/audit-policy.yaml",
        "--audit-log-path=/var/log/kubernetes/audit/audit.log",
    ]
    c["volumeMounts"] += [
        {"mountPath": "/etc/kubernetes/audit-policy.yaml", "name": "audit", "readOnly": True},
        {"mountPath": "/var/log/kubernetes/audit/", "name": "audit-log", "readOnly": False},
    ]
    doc["spec"]["volumes"] += [
        {"name": "audit", "hostPath": {"path": "/etc/kubernetes/audit-policy.yaml", "type": "File"}},
        {
            "name": "audit-log",
            "hostPath": {"path": "/var/log/kubernetes/audit/", "type": "DirectoryOrCreate"},
        },
    ]
    host = DictHost({"/etc/kubernetes/audit-policy.yaml": "apiVersion: audit.k8s.io/v1\nkind: Policy\n"})
    a = analyze_manifest(doc, host)
    assert a.would_start, a.problems
    assert a.log.host_path == "/var/log/kubernetes/audit/audit.log"
    c["volumeMounts"][-1]["name"] = "audit-logs"
    assert "volume-not-found" in {p.code for p in analyze_manifest(doc, host).problems}


def test_a_copy_beside_it_is_a_second_apiserver(kubeadm_text):
    d = analyze_manifest_dir(
        [
            DirEntry("kube-apiserver.yaml", text=kubeadm_text),
            DirEntry("kube-apiserver.yaml.bak", text=kubeadm_text),
        ]
    )
    assert d.stray_apiservers("kube-apiserver.yaml") == ["kube-apiserver.yaml.bak"]
