"""Collection end to end without a cluster: the real kubernetes client against the test API server, node
files through testinfra's local backend, then the real runner. Faults become `error` on the tasks they affect
only."""

from __future__ import annotations

import json
import time

import pytest

from grader.checks import CheckContext, check
from grader.collectors import collect, parse_target
from grader.labs import load_lab_dir
from grader.results import Evidence, Outcome, Status
from grader.runner import grade
from grader.snapshot import FileProblem, Snapshot
from tests.live.conftest import write_lab

# -- two small checks over API objects, registered for these tests only ------------------------------------


@check("testlive.secret_exists")
def _secret_exists(ctx: CheckContext, namespace: str, name: str) -> Outcome:
    obj = ctx.snap.object("Secret", namespace, name)
    if obj is None:
        return Outcome.failed(
            f"secret {namespace}/{name} not found", Evidence(f"Secret {namespace}/{name}", "exists")
        )
    return Outcome.passed("found")


@check("testlive.configmap_value")
def _configmap_value(ctx: CheckContext, namespace: str, name: str, key: str, value: str) -> Outcome:
    obj = ctx.snap.object("ConfigMap", namespace, name)
    if obj is None or (obj.get("data") or {}).get(key) != value:
        return Outcome.failed(f"configmap {namespace}/{name} lacks {key}={value}")
    return Outcome.passed("ok")


OBJECTS = [
    {
        "kind": "Secret",
        "apiVersion": "v1",
        "metadata": {"name": "creds", "namespace": "prod"},
        "data": {"p": "eA=="},
    },
    {"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "other", "namespace": "kube-system"}},
    {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"name": "app", "namespace": "prod"},
        "data": {"mode": "safe"},
    },
    {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {"name": "web-1", "namespace": "prod", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "nginx"}], "nodeName": "controlplane"},
        "status": {"phase": "Running"},
    },
]


@pytest.fixture
def lab(tmp_path):
    node = tmp_path / "node"
    (node / "etc/kubernetes/audit").mkdir(parents=True)
    (node / "etc/kubernetes/audit/policy.yaml").write_text(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: []\n"
    )
    policy = f"{node}/etc/kubernetes/audit/policy.yaml"
    d = write_lab(
        tmp_path / "labs",
        "lab95",
        {
            "collect": {
                "files": [{"node": "controlplane", "path": policy}],
                "kinds": ["Secret", "ConfigMap", "Pod"],
                "namespaces": ["prod"],
            },
            "tasks": [
                {
                    "id": "t1",
                    "title": "policy file",
                    "points": 1,
                    "check": "files.present",
                    "params": {"node": "controlplane", "path": policy},
                    "hint": "write it",
                },
                {
                    "id": "t2",
                    "title": "secret",
                    "points": 1,
                    "check": "testlive.secret_exists",
                    "params": {"namespace": "prod", "name": "creds"},
                    "hint": "create it",
                },
                {
                    "id": "t3",
                    "title": "configmap",
                    "points": 1,
                    "check": "testlive.configmap_value",
                    "params": {"namespace": "prod", "name": "app", "key": "mode", "value": "safe"},
                    "hint": "set it",
                },
                {
                    "id": "t4",
                    "title": "immutable",
                    "points": 2,
                    "check": "pods.write_probe",
                    "live": True,
                    "params": {
                        "node": "controlplane",
                        "fact": "lab95-write-probe",
                        "namespace": "prod",
                        "must_fail": ["/"],
                        "must_succeed": ["/tmp"],
                    },
                    "hint": "readOnlyRootFilesystem",
                },
            ],
        },
    )
    return load_lab_dir(d)


@pytest.fixture
def server(kube):
    for obj in OBJECTS:
        kube.put(obj)
    return kube


def run(lab, tmp_path, kubeconfig, **kw):
    result = collect(lab, parse_target("local"), tmp_path / "snap", kubeconfig=kubeconfig, **kw)
    report = grade(lab, Snapshot(result.snapshot_dir), target=result.label, live=True)
    return result, {t.id: t for t in report.tasks}


def test_collects_a_snapshot_the_checks_grade(lab, server, tmp_path):
    result, tasks = run(lab, tmp_path, server.kubeconfig(tmp_path / "kc"))
    assert tasks["t1"].status is Status.PASS
    assert tasks["t2"].status is Status.PASS
    assert tasks["t3"].status is Status.PASS
    secrets = json.loads((result.snapshot_dir / "cluster/Secret.json").read_text())["items"]
    assert [s["metadata"]["name"] for s in secrets] == ["creds"]  # only the lab's namespaces
    assert secrets[0]["kind"] == "Secret" and secrets[0]["apiVersion"] == "v1"
    assert "managedFields" not in secrets[0]["metadata"]
    assert result.label == "this node (local)"
    # one list call per kind and lab namespace (the grader's Secret rights stop at the lab's namespaces)
    lists = [p for m, p in server.requests if m == "GET" and p.endswith(("/secrets", "/configmaps", "/pods"))]
    assert sorted(set(lists)) == [
        "/api/v1/namespaces/prod/configmaps",
        "/api/v1/namespaces/prod/pods",
        "/api/v1/namespaces/prod/secrets",
    ]
    assert "/api/v1/secrets" not in [p for _m, p in server.requests]  # never cluster-wide


def test_exec_refusal_is_an_error_on_the_probe_task_only(lab, server, tmp_path):
    result, tasks = run(lab, tmp_path, server.kubeconfig(tmp_path / "kc"))
    assert tasks["t4"].status is Status.ERROR
    assert "pods/exec" in tasks["t4"].message and "403" in tasks["t4"].message
    assert "fact:controlplane/lab95-write-probe" in dict(result.problems)
    assert {tasks[t].status for t in ("t1", "t2", "t3")} == {Status.PASS}


def test_api_server_down_errors_api_tasks_with_crictl_hint_and_still_grades_files(lab, server, tmp_path):
    kc = server.kubeconfig(tmp_path / "kc")
    server.stop()
    start = time.monotonic()
    result, tasks = run(lab, tmp_path, kc)
    assert time.monotonic() - start < 30
    assert tasks["t1"].status is Status.PASS
    for tid in ("t2", "t3", "t4"):
        assert tasks[tid].status is Status.ERROR, tid
        assert "crictl ps -a" in tasks[tid].message and "crictl logs" in tasks[tid].message
    assert "api" in dict(result.problems)


def test_expired_credentials_say_refresh_the_kubeconfig(lab, server, tmp_path):
    _, tasks = run(lab, tmp_path, server.kubeconfig(tmp_path / "kc", token="expired"))
    assert tasks["t2"].status is Status.ERROR and "401" in tasks["t2"].message
    assert "refresh the kubeconfig" in tasks["t2"].message
    assert tasks["t1"].status is Status.PASS


def test_kubeconfig_without_current_context_says_pass_context(lab, server, tmp_path):
    kc = server.kubeconfig(tmp_path / "kc", current=False, name="practice")
    _, tasks = run(lab, tmp_path, kc)
    assert tasks["t3"].status is Status.ERROR
    assert "no current context" in tasks["t3"].message and "--context" in tasks["t3"].message
    assert "practice" in tasks["t3"].message  # names the contexts it has
    assert tasks["t1"].status is Status.PASS
    # and --context fixes it
    _, tasks = run(lab, tmp_path / "again", kc, context="practice")
    assert tasks["t3"].status is Status.PASS


def test_rbac_denial_on_one_kind_errors_only_its_tasks(lab, server, tmp_path):
    server.forbidden.add("secrets")
    _, tasks = run(lab, tmp_path, server.kubeconfig(tmp_path / "kc"))
    assert tasks["t2"].status is Status.ERROR
    assert "403" in tasks["t2"].message and "deploy/rbac.yaml" in tasks["t2"].message
    assert tasks["t3"].status is Status.PASS and tasks["t1"].status is Status.PASS


@pytest.mark.slow  # waits for real timeouts
def test_timeout_mid_collection_errors_that_kind_and_nothing_hangs(lab, server, tmp_path):
    server.hang["configmaps"] = 4
    start = time.monotonic()
    _, tasks = run(lab, tmp_path, server.kubeconfig(tmp_path / "kc"), timeout=1)
    elapsed = time.monotonic() - start
    assert tasks["t3"].status is Status.ERROR and "did not answer" in tasks["t3"].message
    assert tasks["t2"].status is Status.PASS and tasks["t1"].status is Status.PASS
    assert elapsed < 15  # two attempts of 1 s each, not the server's stall


def test_overall_deadline_stops_further_work(lab, server, tmp_path):
    server.hang["secrets"] = 2
    _, tasks = run(lab, tmp_path, server.kubeconfig(tmp_path / "kc"), deadline=1.0)
    assert tasks["t3"].status is Status.ERROR and "ran out of time" in tasks["t3"].message


def test_node_refusing_ssh_errors_file_tasks_and_grades_api_tasks(lab, server, sshd, tmp_path):
    from tests.live.conftest import free_port

    target = parse_target(f"ssh://{sshd['user']}@127.0.0.1:{free_port()}?ssh_config={sshd['config']}")
    result = collect(lab, target, tmp_path / "snap", kubeconfig=server.kubeconfig(tmp_path / "kc"), timeout=5)
    tasks = {t.id: t for t in grade(lab, Snapshot(result.snapshot_dir), live=True).tasks}
    assert tasks["t1"].status is Status.ERROR and "cannot reach node controlplane" in tasks["t1"].message
    assert tasks["t2"].status is Status.PASS and tasks["t3"].status is Status.PASS


def test_snapshot_reports_undeclared_kinds_and_files_as_not_collected(lab, server, tmp_path):
    result, _ = run(lab, tmp_path, server.kubeconfig(tmp_path / "kc"))
    snap = Snapshot(result.snapshot_dir)
    with pytest.raises(FileProblem) as err:
        snap.objects("Role")
    assert err.value.kind == "not_collected" and "collect.kinds" in str(err.value)
    with pytest.raises(FileProblem) as err:
        snap.read_text("controlplane", "/etc/shadow")
    assert err.value.kind == "not_collected" and err.value.is_environment_problem


def test_workspace_snapshots_are_unaffected(lab, tmp_path):
    ws = tmp_path / "ws"
    (ws / "cluster").mkdir(parents=True)
    assert Snapshot(ws).objects("Role") == []
    assert Snapshot(ws).fact("controlplane", "apiserver") is None


def test_cks_collect_writes_an_archive_that_grades_the_same(lab, server, tmp_path, monkeypatch):
    import tarfile

    from click.testing import CliRunner

    from grader.cli.live import collect_cmd

    monkeypatch.setattr("grader.cli.load_lab", lambda _id: lab)
    monkeypatch.setattr("grader.cli.live.load_lab", lambda _id: lab)
    out = tmp_path / "lab95.tar.gz"
    res = CliRunner().invoke(
        collect_cmd,
        ["lab95", "--out", str(out), "--target", "local", "--kubeconfig", server.kubeconfig(tmp_path / "kc")],
    )
    assert res.exit_code == 0, res.output
    assert "Collected lab95" in res.output and "pods/exec" in res.output  # the probe's problem is reported
    with tarfile.open(out) as tar:
        names = tar.getnames()
        assert "snapshot/cluster/Secret.json" in names and "snapshot/cks.yaml" in names
        assert not any(n.rsplit("/", 1)[-1] == "kc" for n in names)  # credentials never travel
        tar.extractall(tmp_path / "x", filter="data")
    tasks = {t.id: t.status.value for t in grade(lab, Snapshot(tmp_path / "x/snapshot"), live=True).tasks}
    assert tasks == {"t1": "pass", "t2": "pass", "t3": "pass", "t4": "error"}


def test_cks_collect_rejects_a_bad_target(lab, monkeypatch, tmp_path):
    from click.testing import CliRunner

    from grader.cli.live import collect_cmd

    monkeypatch.setattr("grader.cli.live.load_lab", lambda _id: lab)
    res = CliRunner().invoke(
        collect_cmd, ["lab95", "--out", str(tmp_path / "x.tar.gz"), "--target", "kube:foo"]
    )
    assert res.exit_code == 2 and "unknown target" in res.output
