"""apiserver.* checks: lab2's fixtures under several seeds, and the live checks fed with recorded facts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grader import variants
from grader.labs import get_lab
from grader.results import Status
from grader.runner import grade
from grader.selftest import build, fixture_cases
from grader.snapshot import Snapshot

LAB = get_lab("lab2")
SEEDS = (None, "alpha", "s-17", "learner-042")
CASES = fixture_cases(LAB)
MANIFEST = "nodes/controlplane/etc/kubernetes/manifests/kube-apiserver.yaml"


def failing(report) -> set[str]:
    return {t.id for t in report.tasks if t.status is Status.FAIL}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_fixture_fails_exactly_its_tasks_under_every_seed(tmp_path, case, seed):
    name, folder, fails, _ = case
    report = grade(LAB, build(LAB, tmp_path, seed, solution=True, overlay=folder))
    assert not [t for t in report.tasks if t.status is Status.ERROR], [t.message for t in report.tasks]
    assert failing(report) == fails, {t.id: t.message for t in report.tasks if t.status is Status.FAIL}


def test_fixtures_cover_the_wrong_answers_issue_3_names():
    names = {c[0] for c in CASES}
    for required in (
        "misspelled-flag",
        "swapped-retention",
        "missing-volume",
        "missing-mount",
        "policy-directoryorcreate",
        "log-not-mounted",
        "bak-left-in-manifests",
        "retention-in-comment",
        "flags-in-other-container",
    ):
        assert f"wrong/{required}" in names
    assert sum(n.startswith("correct/") for n in names) >= 5


def test_a_solution_for_one_seed_fails_on_another(tmp_path):
    """Per-learner variants: a copied manifest carries the other learner's values."""
    seeds = ("alpha", "bravo", "charlie", "delta")
    values = {s: variants.values_for(LAB, s) for s in seeds}
    a, b = next((x, y) for x in seeds for y in seeds if x != y and values[x] != values[y])
    mine = build(LAB, tmp_path / "mine", a, solution=True)
    theirs = build(LAB, tmp_path / "theirs", b, solution=True)
    (tmp_path / "theirs" / MANIFEST).write_bytes((tmp_path / "mine" / MANIFEST).read_bytes())
    assert grade(LAB, mine).score == 10
    assert grade(LAB, theirs).score < 10


def test_messages_name_the_mistake(tmp_path):
    folder = dict((c[0], c[1]) for c in CASES)
    report = grade(LAB, build(LAB, tmp_path, None, solution=True, overlay=folder["wrong/misspelled-flag"]))
    t1, t3 = (next(t for t in report.tasks if t.id == tid) for tid in ("t1", "t3"))
    assert "--audit-log-max-backups" in t1.message and "did you mean --audit-log-maxbackup" in t1.message
    assert "would not start" in t1.message
    # kube-apiserver would not start: no credit, and the error is told once, in t1
    assert t3.points == 0 and t3.message.startswith("depends on t1") and "max-backups" not in t3.message
    report = grade(
        LAB, build(LAB, tmp_path / "2", None, solution=True, overlay=folder["wrong/swapped-retention"])
    )
    t3 = next(t for t in report.tasks if t.id == "t3")
    assert "swapped?" in t3.message and 0 < t3.points < 3
    report = grade(
        LAB, build(LAB, tmp_path / "3", None, solution=True, overlay=folder["wrong/retention-in-comment"])
    )
    assert "YAML comment" in next(t for t in report.tasks if t.id == "t3").message


def test_missing_manifest_fails_every_task_with_a_message(tmp_path):
    snap = build(LAB, tmp_path, None, solution=True)
    (tmp_path / MANIFEST).unlink()
    report = grade(LAB, snap)
    t1, *dependents = [t for t in report.tasks if not t.live]
    assert t1.status is Status.FAIL and "does not exist" in t1.message
    assert all(t.status is Status.FAIL and t.message.startswith("depends on t1") for t in dependents)


def test_flags_check_rejects_a_lab_asking_for_a_flag_that_does_not_exist(tmp_path):
    from grader.checks import CheckContext, get_check

    snap = build(LAB, tmp_path, None, solution=True)
    out = get_check("apiserver.flags")(
        CheckContext(snap, LAB, LAB.tasks[2]), expect={"audit-log-max-backups": 5}
    )
    assert out.status is Status.ERROR and "lab definition" in out.message


# ---- live checks: facts as the live collector records them (docs/apiserver.md) ----------------------


def live_snapshot(
    tmp_path: Path, seed: str | None = None, *, apiserver: dict | None = None, probe: dict | None = None
) -> Snapshot:
    snap = build(LAB, tmp_path, seed, solution=True)
    facts = tmp_path / "facts" / "controlplane"
    facts.mkdir(parents=True)
    if apiserver is not None:
        (facts / "apiserver.json").write_text(json.dumps(apiserver))
    if probe is not None:
        (facts / "audit-probe.json").write_text(json.dumps(probe))
    return snap


def running_args(seed: str | None = None) -> list[str]:
    v = variants.values_for(LAB, seed)
    return [
        "kube-apiserver",
        "--advertise-address=10.0.0.10",
        "--audit-policy-file=/etc/kubernetes/audit/policy.yaml",
        f"--audit-log-path={v['log_dir']}/{v['log_file']}",
        f"--audit-log-maxage={v['maxage']}",
        f"--audit-log-maxbackup={v['maxbackup']}",
        f"--audit-log-maxsize={v['maxsize']}",
    ]


PROBE_REQUEST = {
    "user": {"username": "cks-grader", "groups": ["system:authenticated"]},
    "verb": "get",
    "namespace": "default",
    "apiVersion": "v1",
    "resource": "configmaps",
    "name": "cks-probe-7f3a",
}


def event(level: str, stage: str = "ResponseComplete", ts: str = "2024-05-01T10:00:02.000000Z") -> dict:
    return {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": level,
        "auditID": "a1",
        "stage": stage,
        "requestURI": "/api/v1/namespaces/default/configmaps/cks-probe-7f3a",
        "verb": "get",
        "user": {"username": "cks-grader"},
        "objectRef": {"resource": "configmaps", "name": "cks-probe-7f3a"},
        "requestReceivedTimestamp": ts,
        "stageTimestamp": ts,
    }


def probe(events: list[dict]) -> dict:
    return {
        "marker": "cks-probe-7f3a",
        "sent_at": "2024-05-01T10:00:01.000000Z",
        "request": PROBE_REQUEST,
        "log_path": "/var/log/kubernetes/audit/audit.log",
        "events": events,
        "error": None,
    }


def live(report, task: str):
    return next(t for t in report.tasks if t.id == task)


def test_live_tasks_are_skipped_offline(tmp_path):
    report = grade(LAB, live_snapshot(tmp_path, apiserver={"running": True}))
    assert live(report, "t6").status is Status.SKIP and live(report, "t7").status is Status.SKIP


def test_running_and_ready_with_the_new_flags(tmp_path):
    snap = live_snapshot(
        tmp_path,
        "alpha",
        apiserver={"running": True, "ready": True, "readyz": "ok", "args": running_args("alpha")},
        probe=probe([event("Metadata")]),
    )
    report = grade(LAB, snap, live=True)
    assert live(report, "t6").status is Status.PASS
    assert live(report, "t7").status is Status.PASS, live(report, "t7").message
    assert report.score == 12


@pytest.mark.parametrize(
    "fact, phrase",
    [
        ({"running": False, "state": "CONTAINER_EXITED"}, "crictl"),
        ({"running": True, "ready": False, "readyz": "[-]poststarthook failed"}, "/readyz"),
        (
            {"running": True, "ready": True, "args": ["kube-apiserver", "--advertise-address=10.0.0.10"]},
            "not started from the current manifest",
        ),
    ],
)
def test_running_failures(tmp_path, fact, phrase):
    report = grade(LAB, live_snapshot(tmp_path, apiserver=fact, probe=probe([])), live=True)
    t6 = live(report, "t6")
    assert t6.status is Status.FAIL and phrase in t6.message


def test_missing_or_failed_facts_are_errors_not_failures(tmp_path):
    report = grade(LAB, live_snapshot(tmp_path), live=True)
    assert live(report, "t6").status is Status.ERROR and live(report, "t7").status is Status.ERROR
    report = grade(
        LAB,
        live_snapshot(
            tmp_path / "b",
            apiserver={"error": "ssh: connection refused"},
            probe={"error": "permission denied reading the log"},
        ),
        live=True,
    )
    assert "connection refused" in live(report, "t6").message
    assert live(report, "t7").status is Status.ERROR


@pytest.mark.parametrize(
    "events, phrase",
    [
        ([], "no fresh event"),
        ([event("Metadata", ts="2024-05-01T09:59:00.000000Z")], "no fresh event"),  # stale: before the probe
        ([event("RequestResponse")], "policy gives it Metadata"),
        ([event("Metadata", stage="RequestReceived"), event("Metadata")], "RequestReceived"),
    ],
)
def test_probe_event_failures(tmp_path, events, phrase):
    snap = live_snapshot(tmp_path, apiserver={"running": True, "ready": True}, probe=probe(events))
    t7 = live(grade(LAB, snap, live=True), "t7")
    assert t7.status is Status.FAIL and phrase in t7.message


def test_probe_at_level_none_expects_no_event(tmp_path):
    p = probe([])
    p["request"] = {
        "user": {"username": "u", "groups": []},
        "verb": "get",
        "path": "/healthz",
        "isResourceRequest": False,
    }
    snap = live_snapshot(tmp_path, apiserver={"running": True, "ready": True}, probe=p)
    assert live(grade(LAB, snap, live=True), "t7").status is Status.PASS
    p["events"] = [dict(event("Metadata"), requestURI="/healthz?cks-probe-7f3a")]
    snap = live_snapshot(tmp_path / "b", apiserver={"running": True, "ready": True}, probe=p)
    assert live(grade(LAB, snap, live=True), "t7").status is Status.FAIL


def test_a_manifest_that_starts_without_the_policy_flag_blocks_nothing(tmp_path):
    """No --audit-policy-file: kube-apiserver still runs, so t1 fails alone and t2-t5 are graded."""
    snap = build(LAB, tmp_path, None, solution=True)
    manifest = tmp_path / MANIFEST
    manifest.write_text(
        "\n".join(line for line in manifest.read_text().splitlines() if "--audit-policy-file" not in line)
        + "\n"
    )
    tasks = {t.id: t for t in grade(LAB, snap).tasks}
    assert tasks["t1"].status is Status.FAIL and "no --audit-policy-file" in tasks["t1"].message
    assert tasks["t3"].status is Status.PASS and tasks["t3"].blocked_by is None
    assert tasks["t2"].blocked_by is None


def test_would_not_start_names_the_cause_once_in_words(tmp_path):
    folder = dict((c[0], c[1]) for c in CASES)
    report = grade(
        LAB, build(LAB, tmp_path, None, solution=True, overlay=folder["wrong/duplicate-volume-names"])
    )
    t1 = report.tasks[0]
    assert t1.message.startswith("kube-apiserver would not start with this manifest: two volumes are named")
    said = " ".join(f"{e.where} {e.expected} {e.actual}" for t in report.tasks for e in t.evidence)
    assert "volume-duplicate" not in said and "unknown-flag" not in said  # no internal codes
    assert sum("two volumes are named" in t.message for t in report.tasks) == 1


@pytest.mark.slow
def test_no_fixture_shows_an_internal_code_as_evidence(tmp_path):
    import re

    code = re.compile(r"^[a-z]+(-[a-z]+)+$")  # duplicate-static-pod, unknown-flag, ...
    for i, (name, folder, _, _) in enumerate(CASES):
        report = grade(LAB, build(LAB, tmp_path / str(i), None, solution=True, overlay=folder))
        for t in report.tasks:
            for e in t.evidence:
                assert not code.match(str(e.actual or "")), (name, t.id, e)
                assert not code.match(str(e.expected or "")), (name, t.id, e)
