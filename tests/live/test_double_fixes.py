"""Issue 10's live-path defects, each shown on the cluster double (each of these failed before its fix)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from grader import variants
from grader.collectors import parse_target, reset_live, start_live
from grader.collectors.nodes import open_node
from grader.labs import get_lab
from tests.live.double import node_support

WHY = node_support()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(WHY is not None, reason=str(WHY))]


def test_workloads_falco_must_see_run_on_the_control_plane(cluster):
    # item 2: the double's scheduler prefers workers, as the default two-node cluster would place them
    for lab_id in ("lab3", "lab4"):
        start_live(get_lab(lab_id), parse_target(cluster.target), seed=None, settle=20)
    pods = cluster.api.objects("Pod", "lab3") + cluster.api.objects("Pod", "shop")
    assert len(pods) >= 10
    assert {p["spec"]["nodeName"] for p in pods} == {"controlplane"}


def test_lab4_live_form_runs_real_offenders_and_renders_the_earlier_alerts(cluster):
    # item 4: only Deployments are applied (the captured Pods/ReplicaSets would be garbage-collected), every
    # pod runs a long-lived command, and the earlier alerts name containers that exist
    lab = get_lab("lab4")
    start_live(lab, parse_target(cluster.target), seed=None, settle=20)
    values = variants.values_for(lab, None)
    ns = values["ns"]
    deployments = cluster.api.objects("Deployment", ns)
    assert len(deployments) == 6
    assert all(d["status"].get("availableReplicas") == d["spec"]["replicas"] for d in deployments)
    pods = cluster.api.objects("Pod", ns)
    assert not any(p["metadata"]["name"].startswith("frontend-dd17e2ea77") for p in pods)  # not the picture's
    commands = {
        d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0].get("command")
        for d in deployments
    }
    assert "cat /etc/shadow" in " ".join(commands[values["shadow_app"]])
    assert "apt-get" in " ".join(commands[values["pkg_app"]])
    assert "sh -c id" in " ".join(commands[values["shell_app"]])
    live_ids = {s["containerID"].split("//")[-1][:12] for p in pods for s in p["status"]["containerStatuses"]}
    alerts = cluster.cp.read("/opt/course/lab4/alerts-earlier.log")
    import re

    named = set(re.findall(r"container_id=([0-9a-f]{12})", alerts))
    assert named and named <= live_ids
    by_pod = {
        s["containerID"].split("//")[-1][:12]: p["metadata"]["labels"]["app"]
        for p in pods
        for s in p["status"]["containerStatuses"]
    }
    assert {by_pod[c] for c in named} == {values["shadow_app"], values["shell_app"], values["pkg_app"]}


def test_reset_restores_the_pristine_apiserver_manifest_not_an_earlier_labs_edit(cluster):
    # item 7: an earlier lab left kube-apiserver with extra flags; this lab's reset brings back provisioning's
    # copy
    pristine = cluster.cp.read("/etc/kubernetes/manifests/kube-apiserver.yaml")
    edited = pristine.replace(
        "- --authorization-mode", "- --audit-log-maxage=9\n    - --authorization-mode", 1
    )
    assert edited != pristine
    cluster.cp.write("/etc/kubernetes/manifests/kube-apiserver.yaml", edited)
    lab = get_lab("lab2")
    start_live(lab, parse_target(cluster.target), seed=None, settle=20)
    reset_live(lab, parse_target(cluster.target), settle=20)
    assert cluster.cp.read("/etc/kubernetes/manifests/kube-apiserver.yaml") == pristine


def test_ssh_connections_are_shared(cluster_sshd, tmp_path):
    # item 10: testinfra ignored controlpath= in the host spec; the master socket now exists and is reused
    work = Path(tempfile.mkdtemp(prefix="w", dir="/tmp"))
    node = open_node(parse_target(cluster_sshd.target), "controlplane", workdir=work)
    try:
        assert node.run("echo hi").text.strip() == "hi"
        sockets = [p for p in work.iterdir() if p.is_socket()]
        assert sockets, list(work.iterdir())
        assert node.run("echo again").rc == 0
    finally:
        node.close()
