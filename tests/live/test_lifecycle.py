"""`cks start|reset --target` against the test API server and a local node rooted in a temp dir."""

from __future__ import annotations

import base64
import json

import pytest
import yaml

from grader.collectors import LiveError, collect, parse_target, reset_live, start_live
from grader.labs import load_lab_dir
from grader.runner import grade
from grader.snapshot import Snapshot
from tests.live.conftest import write_lab

GOOD_MANIFEST = b"apiVersion: v1\nkind: Pod\nmetadata: {name: kube-apiserver}\n# the cluster's own\n"


@pytest.fixture
def env(tmp_path, monkeypatch, kube):
    node = tmp_path / "node"
    manifests = node / "etc/kubernetes/manifests"
    manifests.mkdir(parents=True)
    (manifests / "kube-apiserver.yaml").write_bytes(GOOD_MANIFEST)
    (manifests / "etcd.yaml").write_text("kind: Pod\n")
    monkeypatch.setenv("CKS_APISERVER_MANIFEST", str(manifests / "kube-apiserver.yaml"))
    monkeypatch.setenv("CKS_STATE_DIR", str(tmp_path / "state"))
    policy = f"{node}/etc/kubernetes/audit/policy.yaml"
    answer = f"{node}/opt/course/answer.txt"
    d = write_lab(
        tmp_path / "labs",
        "lab96",
        {
            "collect": {
                "files": [{"node": "controlplane", "path": policy}, {"node": "controlplane", "path": answer}],
                "kinds": ["Namespace", "Secret", "Deployment"],
                "namespaces": ["prod"],
                "facts": ["start-uids"],
            },
            "tasks": [
                {
                    "id": "t1",
                    "title": "answer",
                    "points": 1,
                    "check": "files.present",
                    "params": {"node": "controlplane", "path": answer},
                    "hint": "write it",
                }
            ],
        },
    )
    start = d / "start"
    (start / "cluster").mkdir(parents=True)
    (start / "cluster/objects.yaml").write_text(
        yaml.safe_dump_all(
            [
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod"}},
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": "creds", "namespace": "prod"},
                    "data": {"password": base64.b64encode(b"start").decode()},
                },
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": {"name": "web", "namespace": "prod"},
                    "spec": {
                        "replicas": 2,
                        "selector": {"matchLabels": {"app": "web"}},
                        "template": {
                            "metadata": {"labels": {"app": "web"}},
                            "spec": {"containers": [{"name": "web", "image": "nginx"}]},
                        },
                    },
                },
            ]
        )
    )
    files = start / "nodes/controlplane" / str(node).lstrip("/")
    (files / "etc/kubernetes/audit").mkdir(parents=True)
    (files / "etc/kubernetes/audit/policy.yaml").write_text(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: []\n"
    )
    (files / "etc/kubernetes/manifests").mkdir(parents=True)
    (files / "etc/kubernetes/manifests/kube-apiserver.yaml").write_text("a workspace stand-in\n")
    return {
        "lab": load_lab_dir(d),
        "node": node,
        "kube": kube,
        "kc": kube.kubeconfig(tmp_path / "kc"),
        "policy": policy,
        "answer": answer,
        "manifests": manifests,
        "state": tmp_path / "state",
    }


def test_start_applies_objects_writes_files_and_records_fingerprints(env):
    kube, lab = env["kube"], env["lab"]
    start_live(lab, parse_target("local"), seed="s1", kubeconfig=env["kc"])
    secret = kube.get("Secret", "prod", "creds")
    assert base64.b64decode(secret["data"]["password"]) == b"start"
    assert kube.get("Namespace", "", "prod") is not None
    assert (env["node"] / "etc/kubernetes/audit/policy.yaml").is_file()
    # the node's real manifest is never replaced by the workspace stand-in, and is backed up outside
    # manifests/
    assert (env["manifests"] / "kube-apiserver.yaml").read_bytes() == GOOD_MANIFEST
    assert (env["state"] / "lab96/kube-apiserver.yaml").read_bytes() == GOOD_MANIFEST
    record = json.loads(kube.get("ConfigMap", "cks-system", "lab-lab96")["data"]["record.json"])
    assert record["seed"] == "s1"
    uids = {(o["kind"], o["name"]): o["uid"] for o in record["objects"]}
    assert uids[("Secret", "creds")] == secret["metadata"]["uid"]
    assert record["files"]["controlplane"][env["policy"]]
    assert any("kube-apiserver.yaml" in k for k in record["kept_node_files"])
    # applied with server-side apply under our field manager
    assert any(m == "PATCH" and p.endswith("/secrets/creds") for m, p in kube.requests)


def test_collect_reads_the_start_record_back(env, tmp_path):
    kube, lab = env["kube"], env["lab"]
    start_live(lab, parse_target("local"), seed="s1", kubeconfig=env["kc"])
    result = collect(lab, parse_target("local"), tmp_path / "snap", kubeconfig=env["kc"])
    snap = Snapshot(result.snapshot_dir)
    assert snap.meta["seed"] == "s1" and snap.meta["kind"] == "collected"
    assert (
        snap.fact("controlplane", "start-uids")["Secret/prod/creds"]
        == kube.get("Secret", "prod", "creds")["metadata"]["uid"]
    )
    assert snap.fact("_cluster", "fingerprints")["lab"] == "lab96"


@pytest.mark.slow  # a full reset cycle
def test_reset_restores_a_broken_apiserver_and_the_start_state(env, tmp_path):
    kube, lab = env["kube"], env["lab"]
    target = parse_target("local")
    start_live(lab, target, seed="s1", kubeconfig=env["kc"])
    old_uid = kube.get("Secret", "prod", "creds")["metadata"]["uid"]
    # the learner's session: a broken manifest, a backup left where kubelet runs it, an edited secret, an
    # answer
    (env["manifests"] / "kube-apiserver.yaml").write_text("this: [is not a pod\n")
    (env["manifests"] / "kube-apiserver.yaml.bak").write_bytes(GOOD_MANIFEST)
    kube.put({**kube.get("Secret", "prod", "creds"), "data": {"password": "Y2hhbmdlZA=="}})
    (env["node"] / "opt/course").mkdir(parents=True)
    (env["node"] / "opt/course/answer.txt").write_text("my answer\n")
    report = grade(
        lab, Snapshot(collect(lab, target, tmp_path / "s1", kubeconfig=env["kc"]).snapshot_dir), live=True
    )
    assert report.tasks[0].status.value == "pass"

    reset_live(lab, target, kubeconfig=env["kc"])
    assert (env["manifests"] / "kube-apiserver.yaml").read_bytes() == GOOD_MANIFEST
    assert not (env["manifests"] / "kube-apiserver.yaml.bak").exists()
    assert (env["state"] / "lab96/stray/kube-apiserver.yaml.bak").is_file()  # moved out, not lost
    assert not (env["node"] / "opt/course/answer.txt").exists()
    secret = kube.get("Secret", "prod", "creds")
    assert base64.b64decode(secret["data"]["password"]) == b"start"
    assert secret["metadata"]["uid"] != old_uid  # recreated by the reset
    record = json.loads(kube.get("ConfigMap", "cks-system", "lab-lab96")["data"]["record.json"])
    assert record["seed"] == "s1"  # the same variant comes back
    report = grade(
        lab, Snapshot(collect(lab, target, tmp_path / "s2", kubeconfig=env["kc"]).snapshot_dir), live=True
    )
    assert report.tasks[0].status.value == "fail"  # back to zero


def test_start_refuses_with_a_clear_message_when_the_api_is_down(env):
    env["kube"].stop()
    with pytest.raises(LiveError) as err:
        start_live(env["lab"], parse_target("local"), kubeconfig=env["kc"], timeout=2)
    assert "cannot reach the API server" in str(err.value) and "crictl" in str(err.value)


def test_workspace_target_is_refused_for_live_start(env):
    with pytest.raises(LiveError):
        start_live(env["lab"], parse_target("workspace:/tmp/x"))
