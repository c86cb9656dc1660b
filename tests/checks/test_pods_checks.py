"""Pod checks beyond the lab fixtures: the live-only tasks of lab5 (read from collected facts and status),
the live UID mapping of lab6, and `cks pods check` as the learner's study tool."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from grader.cli.pods import pods_group
from grader.labs import get_lab
from grader.results import Status
from grader.runner import grade
from grader.selftest import build


@pytest.fixture()
def lab5_solved(tmp_path) -> Path:
    build(get_lab("lab5"), tmp_path, None, solution=True)
    return tmp_path


def _set_status(ws: Path, generation: int = 3, started: int | None = 1, **status) -> None:
    path = ws / "cluster" / "deployment.yaml"
    obj = yaml.safe_load(path.read_text())
    obj["metadata"]["generation"] = generation
    obj["status"] = status
    path.write_text(yaml.safe_dump(obj))
    if started is not None:  # what `cks start --target` recorded
        d = ws / "facts" / "_cluster"
        d.mkdir(parents=True, exist_ok=True)
        meta = obj["metadata"]
        (d / "fingerprints.json").write_text(
            json.dumps(
                {
                    "objects": [
                        {
                            "kind": "Deployment",
                            "namespace": meta["namespace"],
                            "name": meta["name"],
                            "generation": started,
                        }
                    ]
                }
            )
        )


def _probe(ws: Path, results: list[dict]) -> None:
    d = ws / "facts" / "controlplane"
    d.mkdir(parents=True, exist_ok=True)
    (d / "lab5-write-probe.json").write_text(
        json.dumps({"pod": "web-abc", "container": "nginx", "results": results})
    )


def _live(ws: Path, task: str):
    from grader.snapshot import Snapshot

    return grade(get_lab("lab5"), Snapshot(ws), live=True, only=[task]).tasks[0]


def test_rollout_complete(lab5_solved):
    _set_status(
        lab5_solved, observedGeneration=3, replicas=2, updatedReplicas=2, readyReplicas=2, availableReplicas=2
    )
    assert _live(lab5_solved, "t6").status is Status.PASS


@pytest.mark.parametrize(
    "status,needle",
    [
        (
            {
                "observedGeneration": 2,
                "replicas": 2,
                "updatedReplicas": 2,
                "readyReplicas": 2,
                "availableReplicas": 2,
            },
            "not seen the latest change",
        ),
        (
            {
                "observedGeneration": 3,
                "replicas": 3,
                "updatedReplicas": 2,
                "readyReplicas": 2,
                "availableReplicas": 2,
            },
            "old replicas are still running",
        ),
        (
            {
                "observedGeneration": 3,
                "replicas": 2,
                "updatedReplicas": 2,
                "readyReplicas": 0,
                "availableReplicas": 0,
            },
            "0 of 2 new pods are Ready",
        ),
    ],
)
def test_rollout_not_complete(lab5_solved, status, needle):
    _set_status(lab5_solved, **status)
    res = _live(lab5_solved, "t6")
    assert res.status is Status.FAIL and needle in res.message


def test_an_untouched_deployment_has_not_rolled_out(lab5_solved):
    # a Deployment nobody changed is fully rolled out at its start generation: that earns nothing
    _set_status(
        lab5_solved,
        generation=1,
        started=1,
        observedGeneration=1,
        replicas=2,
        updatedReplicas=2,
        readyReplicas=2,
        availableReplicas=2,
    )
    res = _live(lab5_solved, "t6")
    assert res.status is Status.FAIL and "has not been changed since the lab started" in res.message


def test_absent_counters_read_as_zero(lab5_solved):
    # the API omits zero counters: a new generation with no updated replicas yet is not complete
    _set_status(lab5_solved, observedGeneration=3, replicas=2)
    res = _live(lab5_solved, "t6")
    assert res.status is Status.FAIL and "0 of 2 replicas updated" in res.message


def test_rollout_without_a_start_record_is_an_error(lab5_solved):
    _set_status(
        lab5_solved,
        started=None,
        observedGeneration=3,
        replicas=2,
        updatedReplicas=2,
        readyReplicas=2,
        availableReplicas=2,
    )
    res = _live(lab5_solved, "t6")
    assert res.status is Status.ERROR and "start record" in res.message


def test_rollout_without_status_is_an_error_not_a_fail(lab5_solved):
    res = _live(lab5_solved, "t6")
    assert res.status is Status.ERROR and "no status" in res.message


def test_write_probe(lab5_solved):
    _probe(
        lab5_solved,
        [
            {"dir": "/", "ok": False, "output": "touch: /cks-probe: Read-only file system"},
            {"dir": "/tmp", "ok": True, "output": ""},
        ],
    )
    assert _live(lab5_solved, "t7").status is Status.PASS


@pytest.mark.parametrize(
    "results,needle",
    [
        (
            [{"dir": "/", "ok": True}, {"dir": "/tmp", "ok": True}],
            "writing to / in pod web-abc container nginx succeeded",
        ),
        (
            [{"dir": "/", "ok": False, "output": "Permission denied"}, {"dir": "/tmp", "ok": True}],
            "not because it is read-only",
        ),
        (
            [
                {"dir": "/", "ok": False, "output": "Read-only file system"},
                {"dir": "/tmp", "ok": False, "output": "Read-only"},
            ],
            "writing to /tmp",
        ),
    ],
)
def test_write_probe_fails(lab5_solved, results, needle):
    _probe(lab5_solved, results)
    res = _live(lab5_solved, "t7")
    assert res.status is Status.FAIL and needle in res.message


def test_write_probe_without_fact_is_an_error(lab5_solved):
    res = _live(lab5_solved, "t7")
    assert res.status is Status.ERROR and "lab5-write-probe" in res.message


def test_live_tasks_skip_offline(lab5_solved):
    from grader.snapshot import Snapshot

    report = grade(get_lab("lab5"), Snapshot(lab5_solved))
    assert {t.id for t in report.tasks if t.status is Status.SKIP} == {"t6", "t7"}
    assert report.score == report.max_score == 12


def test_lab6_live_uses_the_recorded_start_uids(tmp_path):
    """On a cluster the API server picks UIDs: the set-up records them (fact start-uids) and the grader
    compares against those, so an untouched object is not mistaken for a recreated one."""
    from grader.snapshot import Snapshot

    lab = get_lab("lab6")
    build(lab, tmp_path, None, solution=True)
    pods = tmp_path / "cluster" / "pods.yaml"
    docs = [d for d in yaml.safe_load_all(pods.read_text()) if d]
    recorded = {}
    for d in docs:
        d["metadata"]["uid"] = "live-" + d["metadata"]["name"]
        recorded[f"Pod/{d['metadata']['namespace']}/{d['metadata']['name']}"] = d["metadata"]["uid"]
    pods.write_text(yaml.safe_dump_all(docs))
    facts = tmp_path / "facts" / "controlplane"
    facts.mkdir(parents=True)
    (facts / "start-uids.json").write_text(json.dumps(recorded))
    t1 = grade(lab, Snapshot(tmp_path), live=True, only=["t1"]).tasks[0]
    assert t1.status is Status.PASS, t1.message
    recorded["Pod/team-a/api"] = "another-uid"
    (facts / "start-uids.json").write_text(json.dumps(recorded))
    t1 = grade(lab, Snapshot(tmp_path), live=True, only=["t1"]).tasks[0]
    assert t1.status is Status.FAIL and "recreated" in t1.message


# ---- the study tool ---------------------------------------------------------------------------------


def _cli(*args: str, input: str | None = None):
    return CliRunner().invoke(pods_group, ["check", *args], input=input)


def test_cli_workspace_lists_lab6_offenders(tmp_path):
    build(get_lab("lab6"), tmp_path, None, solution=False)
    res = _cli("--workspace", str(tmp_path), "--only", "cks", "--format", "json")
    assert res.exit_code == 1
    data = json.loads(res.output)
    found = {
        o["name"]: {f["check"] for f in o["findings"]} - {"readOnlyRootFilesystem"} for o in data["objects"]
    }
    assert found["reporter"] == {"runAsRoot"}  # only through its init container
    assert found["legacy-app"] == set()  # pod-level 0 overridden
    assert found["escalator"] == {"allowPrivilegeEscalation"}
    assert found["sync"] == {"privileged", "allowPrivilegeEscalation"}
    assert data["summary"]["skipped_without_pod_spec"] == 2  # the two Namespaces


def test_cli_clean_manifest_exits_0_and_levels_differ(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("kind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: c, image: x}\n")
    assert _cli(str(f), "--level", "baseline", "--only", "pss").exit_code == 0
    res = _cli(str(f), "--level", "restricted", "--only", "pss")
    assert res.exit_code == 1 and "allowPrivilegeEscalation != false" in res.output
    assert 'violates PodSecurity "restricted:latest"' in res.output


def test_cli_stdin_and_version(tmp_path):
    pod = {
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": "c",
                    "image": "x",
                    "securityContext": {
                        "runAsUser": 0,
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }
    text = yaml.safe_dump(pod)
    assert (
        _cli("-", "--only", "pss", "--version", "v1.22", input=text).exit_code == 0
    )  # runAsUser check is 1.23+
    res = _cli("-", "--only", "pss", "--version", "v1.23", "-f", "json", input=text)
    data = json.loads(res.output)
    assert res.exit_code == 1 and data["version"] == "v1.23"
    v = data["objects"][0]["violations"][0]
    assert (v["check"], v["path"], v["field"], v["value"]) == (
        "runAsUser",
        "spec.containers[0]",
        "securityContext.runAsUser",
        "0",
    )


# ---- teach, don't tell (issue 12): lab6's reasons never name what the learner must find --------------------


def _grade_json(lab_id: str, ws: Path, *extra: str) -> str:
    from grader.cli import grade_cmd

    res = CliRunner().invoke(grade_cmd, [lab_id, "--workspace", str(ws), *extra])
    assert res.exit_code in (0, 1), res.output
    return res.output


def _lab6_names() -> set[str]:
    from grader.snapshot import Snapshot

    with __import__("tempfile").TemporaryDirectory() as t:
        build(get_lab("lab6"), Path(t), None, solution=False)
        snap = Snapshot(Path(t))
        return {o["metadata"]["name"] for kind in ("Pod", "Deployment") for o in snap.objects(kind)}


@pytest.mark.parametrize("fmt", [("--format", "table", "-v"), ("--format", "json")])
def test_lab6_untouched_output_names_no_pod_or_deployment(tmp_path, fmt):
    build(get_lab("lab6"), tmp_path, None, solution=False)
    out = _grade_json("lab6", tmp_path, *fmt)
    import re

    named = {n for n in _lab6_names() if re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", out)}
    assert not named, f"the start-state grade names {sorted(named)}"
    assert "5 of the offending Pods are still running" in out and "3 of the offending Deployments" in out


def test_lab6_names_only_what_the_learner_touched(tmp_path):
    from grader.snapshot import Snapshot

    lab = get_lab("lab6")
    build(lab, tmp_path, None, solution=True)
    pods = tmp_path / "cluster" / "pods.yaml"
    docs = [d for d in yaml.safe_load_all(pods.read_text()) if d and d["metadata"]["name"] != "worker"]
    pods.write_text(yaml.safe_dump_all(docs))  # a compliant Pod deleted by mistake
    t1 = grade(lab, Snapshot(tmp_path), only=["t1"]).tasks[0]
    assert t1.status is Status.FAIL and t1.points == 0
    assert "compliant Pod you changed or deleted" in t1.message and "worker" in t1.message


def test_lab6_yaml_slip_is_named_with_its_line_never_as_a_deletion(tmp_path):
    from grader.snapshot import Snapshot

    lab = get_lab("lab6")
    build(lab, tmp_path, None, solution=True)
    pods = tmp_path / "cluster" / "pods.yaml"
    lines = pods.read_text().splitlines()
    bad = lines.index("      runAsGroup: 999")
    lines[bad] = "     runAsGroup: 999"
    pods.write_text("\n".join(lines) + "\n")
    t1 = grade(lab, Snapshot(tmp_path), only=["t1"]).tasks[0]
    assert t1.status is Status.FAIL
    assert f"not valid YAML at line {bad + 1}, column" in t1.message
    assert "deleted" not in t1.message and "cache" not in t1.message


def test_lab6_refused_fix_earns_nothing_for_that_deployment(tmp_path):
    from grader.snapshot import Snapshot

    lab = get_lab("lab6")
    build(lab, tmp_path, None, solution=True)
    path = tmp_path / "cluster" / "deployments.yaml"
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    front = next(d for d in docs if d["metadata"]["name"] == "frontend")
    front["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privileged"] = (
        True  # beside APE false
    )
    path.write_text(yaml.safe_dump_all(docs))
    t2 = grade(lab, Snapshot(tmp_path), only=["t2"]).tasks[0]
    assert t2.status is Status.FAIL and t2.points == pytest.approx(4 * 2 / 3, abs=0.01)
    assert (
        "422" in t2.message
        and "cannot set `allowPrivilegeEscalation` to false and `privileged` to true" in t2.message
    )


def test_lab5_live_read_back_with_server_defaults_keeps_full_marks(lab5_solved):
    """On a cluster the grader reads the Deployment back with the API's defaults: not a change."""
    from grader.snapshot import Snapshot

    path = lab5_solved / "cluster" / "deployment.yaml"
    obj = yaml.safe_load(path.read_text())
    pod = obj["spec"]["template"]["spec"]
    pod.update(
        {
            "dnsPolicy": "ClusterFirst",
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "terminationGracePeriodSeconds": 30,
            "securityContext": {},
        }
    )
    for c in pod["initContainers"] + pod["containers"]:
        c.update(
            {
                "imagePullPolicy": "IfNotPresent",
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
            }
        )
    obj["spec"].update({"progressDeadlineSeconds": 600, "revisionHistoryLimit": 10})
    path.write_text(yaml.safe_dump(obj))
    report = grade(get_lab("lab5"), Snapshot(lab5_solved), only=["t4", "t5"])
    assert [t.status for t in report.tasks] == [Status.PASS, Status.PASS], [t.message for t in report.tasks]


# ---- the study tool speaks the labs' definitions (issue 12 item 5) -----------------------------------------


def test_cli_profile_lab5_shows_every_graded_value_and_never_asks_for_non_root(lab5_solved):
    saved = (
        next((lab5_solved / "nodes/controlplane/opt/course/lab5").glob("*immutable*.yaml"), None)
        or lab5_solved / "cluster" / "deployment.yaml"
    )
    res = _cli(str(saved), "--profile", "lab5", "--format", "json")
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)["objects"][0]["rows"]
    fields = {(r["container"], r["field"]) for r in rows}
    for c in ("render-page", "nginx", "exporter"):
        assert (c, "securityContext.readOnlyRootFilesystem") in fields
        assert (c, "securityContext.allowPrivilegeEscalation") in fields
    assert all(r["ok"] for r in rows)
    assert not any("root" in r["message"] and "filesystem" not in r["message"] for r in rows)
    table = _cli(str(saved), "--profile", "lab5").output
    assert "runAsNonRoot" not in table and "WRONG" not in table


def test_cli_profile_lab5_marks_the_start_and_refusals(tmp_path):
    build(get_lab("lab5"), tmp_path, None, solution=False)
    dep = tmp_path / "cluster" / "deployment.yaml"
    res = _cli(str(dep), "--profile", "lab5", "--format", "json")
    rows = json.loads(res.output)["objects"][0]["rows"]
    assert res.exit_code == 1
    assert {r["value"] for r in rows if r["field"].endswith("allowPrivilegeEscalation")} == {
        "unset (escalation allowed)"
    }
    obj = yaml.safe_load(dep.read_text())
    obj["spec"]["template"]["spec"]["securityContext"] = {"readOnlyRootFilesystem": True}
    dep.write_text(yaml.safe_dump(obj))
    out = _cli(str(dep), "--profile", "lab5").output
    assert (
        "INVALID" in out
        and 'unknown field "spec.template.spec.securityContext.readOnlyRootFilesystem"' in out
    )


def test_cli_profile_lab6_uses_the_labs_definition(tmp_path):
    build(get_lab("lab6"), tmp_path, None, solution=False)
    data = json.loads(_cli("--workspace", str(tmp_path), "--profile", "lab6", "--format", "json").output)
    wrong = {o["name"] for o in data["objects"] if any(not r["ok"] for r in o["rows"])}
    assert wrong == {
        o["name"]
        for o in data["objects"]
        if o["kind"] in ("Pod", "Deployment")
        and o["name"]
        in {
            "netshoot",
            "debug-tools",
            "reporter",
            "escalator",
            "node-inspector",
            "frontend",
            "ingest",
            "sync",
        }
    }
    assert not any(r["field"].endswith("readOnlyRootFilesystem") for o in data["objects"] for r in o["rows"])


def test_cli_latest_is_the_pinned_kubernetes_minor(tmp_path):
    from grader import versions

    f = tmp_path / "p.yaml"
    f.write_text("kind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: c, image: x}\n")
    data = json.loads(_cli(str(f), "--format", "json").output)
    assert data["version"] == "latest" and data["evaluated_as"] == versions.pss_version()
