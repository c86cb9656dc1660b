"""Every lab through the cluster double, as a learner meets it: `cks start LAB --target` scores 0, the
reference solution applied through the API and node files scores full marks on every task (live-only tasks
included), wrong answers lose exactly the tasks they should, `cks reset` brings the start back, and a failure
of the double turns only the affected tasks into error. Grading uses the grader's own ServiceAccount (the
kubeconfig on the node), so its least-privilege RBAC is what is exercised."""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path

import pytest
import yaml

from grader.collectors import collect, parse_target, reset_live, start_live
from grader.labs import get_lab
from grader.results import Status
from grader.runner import grade
from grader.selftest import build, fixtures_dir
from grader.snapshot import Snapshot
from tests.live.double import Cluster, node_support

REPO = Path(__file__).resolve().parents[2]
WHY = node_support()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(WHY is not None, reason=str(WHY))]
SEED = "double-1"


def _e2e():
    spec = importlib.util.spec_from_file_location("live_e2e", REPO / ".github/scripts/live_e2e.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


E2E = _e2e()


def grade_live(cluster: Cluster, lab, tmp: Path, kubeconfig: str | None = None):
    res = collect(
        lab, parse_target(cluster.target), Path(tempfile.mkdtemp(dir=tmp)) / "snap", kubeconfig=kubeconfig
    )
    return grade(lab, Snapshot(res.snapshot_dir), live=True)


def solve(cluster: Cluster, lab, tmp: Path, fixture: str | None = None) -> None:
    solved = Path(tempfile.mkdtemp(dir=tmp))
    build(
        lab, solved, SEED, solution=True, overlay=fixtures_dir(lab) / "wrong" / fixture if fixture else None
    )
    E2E.sync(lab, parse_target(cluster.target), SEED, solved)
    cluster.api.settle()


def table(report) -> dict[str, tuple[str, str]]:
    return {t.id: (t.status.value, t.message[:200]) for t in report.tasks}


def assert_zero(report) -> None:
    assert report.score == 0, table(report)
    assert all(t.status is Status.FAIL for t in report.tasks), table(report)


def assert_full(report) -> None:
    known = KNOWN_DEFECTS.get(report.lab, {})
    assert all(t.status is Status.PASS for t in report.tasks if t.id not in known), {
        k: v for k, v in table(report).items() if v[0] != "pass"
    }
    fixed = [t.id for t in report.tasks if t.id in known and t.status is Status.PASS]
    assert not fixed, f"{report.lab} {fixed} pass now: drop them from KNOWN_DEFECTS"


def assert_fails_exactly(report, failing: set[str]) -> None:
    failing = failing | set(KNOWN_DEFECTS.get(report.lab, {}))
    got = {t.id for t in report.tasks if t.status is not Status.PASS}
    assert got == failing, table(report)
    assert all(t.status is Status.FAIL for t in report.tasks if t.id in failing), table(report)


# Wrong answers graded live: fixture -> the tasks that fail on a cluster (the offline ones, plus the
# live-only tasks the same mistake breaks there).
WRONG = {
    "lab1": {"no-catch-all": None, "v1beta1": None},
    "lab2": {"swapped-retention": None, "log-not-mounted": {"t4", "t7"}},
    "lab3": {"wrong_priority": None, "contains_shadow": None},
    "lab4": {"benign_scaled": None, "offender_deleted": None},
    "lab8": {"q2-retention-swapped": None, "q1-catch-all-first": None},
    # pod-level-field: applied through the API the field is dropped (Warn), so t2-t4 judge what is stored; the
    # saved file still holds it, and `kubectl apply` (strict) refuses that file: t5
    "lab5": {"pod-level-field": {"t1", "t5", "t7"}, "tmp-read-only": {"t2", "t7"}, "image-changed": None},
    "lab6": {"compliant-pod-deleted": None, "label-typo": None},
    "lab7": {"secret-recreated": None, "role-deleted": None},
}


def capture_alerts(cluster: Cluster, lab, tmp: Path) -> None:
    """lab4 t1 as taught: `falco -M 30 -o webserver.enabled=false ... | grep -E '^[0-9]{2}:'` on the node
    keeps Falco's '<time>: <Priority> ' before the rule output
    %evt.time,%container.id,%container.name,%user.name. The double's Falco does not run the offenders' loops,
    so the capture is written as that command leaves it, from the real container ids of the pods that
    misbehave."""
    from grader import variants

    values = variants.values_for(lab, SEED)
    pods = [
        p
        for p in cluster.api.objects("Pod", values["ns"])
        if p["metadata"]["labels"].get("app")
        in {values["shadow_app"], values["shell_app"], values["pkg_app"]}
    ]
    lines = []
    for i, sec in enumerate(range(0, 36, 5)):
        pod = pods[i % len(pods)]
        cid = pod["status"]["containerStatuses"][0]["containerID"].split("//")[-1][:12]
        t = f"10:00:{sec:02d}.{123456789 + i:09d}"
        lines.append(f"{t}: Warning {t},{cid},app,root")
    cluster.cp.write("/opt/course/lab4/falco.log", "\n".join(lines) + "\n")


LEARNER = {"lab4": capture_alerts}  # what a learner does on the node that no solution file holds


def _fixture_fails(lab, name: str) -> set[str]:
    import yaml

    data = yaml.safe_load((fixtures_dir(lab) / "wrong" / name / "fixture.yaml").read_text()) or {}
    return {str(t) for t in data.get("fails") or []}


# Tasks the double shows failing with the reference solution on a cluster, each with why. Each is asserted to
# still fail, so a fix shows up here as a test failure that says to drop the entry. (Fixed: lab3 t1-t3 and
# lab8 q3 judged the node's real falco_rules.yaml against the kit's copy; lab3 t5 ran without provisioning's
# `rule_matching: all`, so the upstream "Read sensitive file untrusted" rule hid the learner's alert.)
KNOWN_DEFECTS: dict[str, dict[str, str]] = {}


@pytest.mark.parametrize("lab_id", sorted(WRONG))
def test_lab_through_the_double(cluster, tmp_path, lab_id):
    lab = get_lab(lab_id)
    target = parse_target(cluster.target)
    start_live(lab, target, seed=SEED, settle=20)
    assert_zero(grade_live(cluster, lab, tmp_path))
    if lab_id in LEARNER:
        LEARNER[lab_id](cluster, lab, tmp_path)
    solve(cluster, lab, tmp_path)
    assert_full(grade_live(cluster, lab, tmp_path))
    for name, live_fails in WRONG[lab_id].items():
        reset_live(lab, target, settle=20)
        assert_zero(grade_live(cluster, lab, tmp_path))
        if lab_id in LEARNER:
            LEARNER[lab_id](cluster, lab, tmp_path)
        solve(cluster, lab, tmp_path, fixture=name)
        assert_fails_exactly(grade_live(cluster, lab, tmp_path), live_fails or _fixture_fails(lab, name))


def _by_status(report) -> dict[str, str]:
    return {t.id: t.status.value for t in report.tasks}


def test_faults_turn_only_the_affected_tasks_into_error(cluster_sshd, tmp_path):
    cluster = cluster_sshd  # the real sshd, so "refuses ssh" is a real refusal
    lab = get_lab(
        "lab7"
    )  # t1, t2: answer files on the node; t3, t4: Secrets and RBAC objects through the API
    start_live(lab, parse_target(cluster.target), seed=SEED, settle=20)
    solve(cluster, lab, tmp_path)
    cluster.api.forbidden.add("secrets")  # 403 on one kind: only the tasks that read Secrets (t3, t4)
    assert _by_status(grade_live(cluster, lab, tmp_path)) == {
        "t1": "pass",
        "t2": "pass",
        "t3": "error",
        "t4": "error",
    }
    cluster.api.forbidden.clear()
    cluster.api.forbidden.add("roles")  # t4 alone judges the Roles
    assert _by_status(grade_live(cluster, lab, tmp_path)) == {
        "t1": "pass",
        "t2": "pass",
        "t3": "pass",
        "t4": "error",
    }
    cluster.api.forbidden.clear()
    cluster.api.down()  # kube-apiserver gone: the API tasks, not the node files
    assert _by_status(grade_live(cluster, lab, tmp_path)) == {
        "t1": "pass",
        "t2": "pass",
        "t3": "error",
        "t4": "error",
    }
    cluster.api.up()
    kubeconfig = tmp_path / "grader.kubeconfig"  # the grader's identity, handed over since the node is gone
    kubeconfig.write_text(yaml.safe_dump(cluster.api.kubeconfig(cluster.grader_token)))
    cluster.nodes.refuse()  # the node refuses ssh: the node-file tasks only
    assert _by_status(grade_live(cluster, lab, tmp_path, str(kubeconfig))) == {
        "t1": "error",
        "t2": "error",
        "t3": "error",
        "t4": "pass",
    }  # t3 reads the audit log on the node


def test_exec_refused_errors_only_the_probe(cluster, tmp_path):
    lab = get_lab("lab5")
    start_live(lab, parse_target(cluster.target), seed=SEED, settle=20)
    solve(cluster, lab, tmp_path)
    cluster.api.refuse_exec = True
    got = _by_status(grade_live(cluster, lab, tmp_path))
    assert got == {**{t: "pass" for t in ("t1", "t2", "t3", "t4", "t5", "t6")}, "t7": "error"}
