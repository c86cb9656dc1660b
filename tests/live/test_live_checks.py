"""The live.* checks over recorded facts: each passes on a healthy recording and fails (or errors) on the
specific problem a learner or an environment causes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from grader.labs import load_lab_dir
from grader.results import Status
from grader.runner import grade
from grader.snapshot import Snapshot
from tests.live.conftest import write_lab

MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml"
POLICY = "/etc/kubernetes/audit/policy.yaml"
ARGS = [
    "--advertise-address=10.0.0.1",
    "--audit-policy-file=/etc/kubernetes/audit/policy.yaml",
    "--audit-log-path=/var/log/kubernetes/audit/audit.log",
]
MANIFEST_TEXT = yaml.safe_dump(
    {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "kube-apiserver"},
        "spec": {"containers": [{"name": "kube-apiserver", "command": ["kube-apiserver", *ARGS]}]},
    }
)
POLICY_TEXT = """apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: None
  resources: [{group: "", resources: [configmaps]}]
- level: Metadata
  resources: [{group: "", resources: [secrets]}]
- level: RequestResponse
"""

TASKS = {
    "rules": {"check": "live.falco_validates", "params": {"rules": ["/etc/falco/falco_rules.local.yaml"]}},
    "alert": {
        "check": "live.falco_alert",
        "params": {
            "expect": "Shell spawned",
            "priority": "Warning",
            "namespace": "prod",
            "selector": "app=web",
        },
    },
}


@pytest.fixture
def lab(tmp_path):
    d = write_lab(
        tmp_path / "labs",
        "lab97",
        {
            "collect": {
                "files": [
                    {"node": "controlplane", "path": MANIFEST},
                    {"node": "controlplane", "path": POLICY},
                ]
            },
            "tasks": [
                {"id": tid, "title": tid, "points": 1, "hint": "h", "live": True, **spec}
                for tid, spec in TASKS.items()
            ],
        },
    )
    return load_lab_dir(d)


def healthy_facts() -> dict[str, dict]:
    return {
        "apiserver": {
            "running": True,
            "ready": True,
            "readyz": "ok",
            "state": "CONTAINER_RUNNING",
            "args": ["kube-apiserver", *ARGS],
            "manifest_mtime": 1000,
            "container": {"id": "abc", "state": "running", "attempt": 1, "created": 1005},
            "mirror_pod": {"ready": True, "restarts": 0, "state": "running"},
        },
        "probe-audit": {
            "log_exists": True,
            "requests": [
                {
                    "verb": "get",
                    "resource": "secrets",
                    "namespace": "prod",
                    "marker": "m1-0",
                    "status": 404,
                    "uri": "/api/v1/namespaces/prod/secrets/m1-0",
                },
                {
                    "verb": "get",
                    "resource": "configmaps",
                    "namespace": "prod",
                    "marker": "m1-1",
                    "status": 404,
                    "uri": "/api/v1/namespaces/prod/configmaps/m1-1",
                },
            ],
            "events": [
                {
                    "level": "Metadata",
                    "stage": "ResponseComplete",
                    "verb": "get",
                    "requestURI": "/api/v1/namespaces/prod/secrets/m1-0",
                    "user": {"username": "grader", "groups": ["system:authenticated"]},
                }
            ],
            "whoami": {"username": "grader", "groups": ["system:authenticated"]},
        },
        "falco": {
            "installed": True,
            "version": "Falco version: 0.39.2",
            "units": {"falco-modern-bpf": "active"},
            "service": "falco-modern-bpf",
            "running": True,
            "pids": ["42"],
            "validate": [
                {
                    "files": ["/etc/falco/falco_rules.yaml", "/etc/falco/falco_rules.local.yaml"],
                    "rc": 0,
                    "ok": True,
                    "output": "Ok",
                }
            ],
            "alerts": [],
        },
        "probe-alert": {
            "pod": "prod/web-1",
            "node": "controlplane",
            "command": ["sh", "-c", "true"],
            "exec": {"rc": 0},
            "alerts": [
                "10:00:01.123456789: Notice Other thing",
                "10:00:02.123456789: Warning Shell spawned in a container (user=root)",
            ],
        },
        "probe-ro": {
            "pod": "prod/web-1",
            "root_write_rc": 1,
            "tmp_write_rc": 0,
            "paths": {"root": "/x", "tmp": "/tmp/x"},
            "exec": {"rc": 0},
        },
    }


def snapshot(
    root: Path, facts: dict[str, dict], *, unavailable: dict | None = None, manifest: str = MANIFEST_TEXT
) -> Snapshot:
    for name, value in facts.items():
        path = root / "facts/controlplane" / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
    node = root / "nodes/controlplane"
    (node / MANIFEST.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
    (node / MANIFEST.lstrip("/")).write_text(manifest)
    (node / POLICY.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
    (node / POLICY.lstrip("/")).write_text(POLICY_TEXT)
    status = root / "facts/_collector/status.json"
    status.parent.mkdir(parents=True, exist_ok=True)
    status.write_text(
        json.dumps(
            {
                "collected": {"kinds": [], "files": {"controlplane": [MANIFEST, POLICY]}, "dirs": {}},
                "unavailable": {"api": None, "kinds": {}, "nodes": {}, "facts": unavailable or {}},
            }
        )
    )
    return Snapshot(root)


def results(lab, snap) -> dict:
    return {t.id: t for t in grade(lab, snap, live=True).tasks}


def test_healthy_recording_passes_everything(lab, tmp_path):
    res = results(lab, snapshot(tmp_path / "s", healthy_facts()))
    assert {tid: r.status for tid, r in res.items()} == {tid: Status.PASS for tid in TASKS}, {
        tid: r.message for tid, r in res.items()
    }


def test_offline_they_are_skipped(lab, tmp_path):
    report = grade(lab, snapshot(tmp_path / "s", healthy_facts()), live=False)
    assert {t.status for t in report.tasks} == {Status.SKIP}


def test_falco_rejecting_the_rules_fails_with_its_error(lab, tmp_path):
    facts = healthy_facts()
    facts["falco"]["validate"][0].update(
        ok=False, rc=1, output="Validating...\nError: undefined macro 'spawnd'\n"
    )
    r = results(lab, snapshot(tmp_path / "s", facts))["rules"]
    assert r.status is Status.FAIL and "undefined macro" in r.message


def test_falco_alert_needs_the_right_priority(lab, tmp_path):
    facts = healthy_facts()
    facts["probe-alert"]["alerts"] = ["10:00:02.1: Notice Shell spawned in a container (user=root)"]
    r = results(lab, snapshot(tmp_path / "a", facts))["alert"]
    assert r.status is Status.FAIL and "another priority" in r.message
    facts["probe-alert"]["alerts"] = []
    r = results(lab, snapshot(tmp_path / "b", facts))["alert"]
    assert r.status is Status.FAIL and "restart Falco" in r.message


def test_falco_alert_reads_json_output(lab, tmp_path):
    facts = healthy_facts()
    facts["probe-alert"]["alerts"] = [
        json.dumps(
            {"priority": "Warning", "rule": "Terminal shell", "output": "Shell spawned in a container"}
        )
    ]
    assert results(lab, snapshot(tmp_path / "s", facts))["alert"].status is Status.PASS


def test_a_fact_the_collector_could_not_gather_is_an_error_with_its_reason(lab, tmp_path):
    facts = healthy_facts()
    del facts["probe-alert"]
    snap = snapshot(
        tmp_path / "s",
        facts,
        unavailable={"controlplane/probe-alert": "exec was refused (403): grant pods/exec"},
    )
    r = results(lab, snap)["alert"]
    assert r.status is Status.ERROR and "grant pods/exec" in r.message


def _capture(tmp_path, lines: list[str]):
    from grader.labs import get_lab
    from grader.runner import grade
    from grader.selftest import build
    from grader.snapshot import Snapshot

    lab = get_lab("lab4")
    build(lab, tmp_path, None, solution=True)
    log = tmp_path / "nodes/controlplane/opt/course/lab4/falco.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("\n".join(lines) + "\n")
    return grade(lab, Snapshot(tmp_path), live=True, only=["t1"]).tasks[0]


def test_capture_accepts_what_the_taught_falco_command_writes(tmp_path):
    # `falco -M 30 -o webserver.enabled=false ... | grep` keeps Falco's "<time>: <Priority> " before each
    # output
    lines = [
        f"10:00:{s:02d}.000000001: Warning 10:00:{s:02d}.000000001,8197d862c794,app,root" for s in (0, 15, 31)
    ]
    assert _capture(tmp_path, lines).status.value == "pass"


def test_capture_still_refuses_other_text(tmp_path):
    lines = [
        f"10:00:{s:02d}.000000001: Warning Shadow read 10:00:{s:02d}.000000001,8197d862c794,app,root"
        for s in (0, 31)
    ]
    assert _capture(tmp_path, lines).status.value == "fail"
