"""audit_log.* checks (lab7): messages that name what the learner did."""

from __future__ import annotations

import yaml

from grader import variants
from grader.labs import get_lab
from grader.results import Status
from grader.runner import grade
from grader.selftest import build

LAB = get_lab("lab7")


def _task(report, tid):
    return next(t for t in report.tasks if t.id == tid)


def test_a_secret_defined_twice_is_named_in_the_failure(tmp_path):
    """An edited copy beside the untouched original: say that two definitions exist, not only 'old data'."""
    start = build(LAB, tmp_path / "start", None, solution=False)
    ws = build(LAB, tmp_path / "ws", None, solution=True)
    secrets = ws.root / "cluster" / "secrets"
    rotated = next(p for p in sorted(secrets.glob("*.yaml"))
                   if (start.root / "cluster/secrets" / p.name).read_bytes() != p.read_bytes())
    (secrets / f"{rotated.stem}-rotated.yaml").write_bytes(rotated.read_bytes())  # sorts before the original
    rotated.write_bytes((start.root / "cluster/secrets" / rotated.name).read_bytes())
    t3 = _task(grade(LAB, ws), "t3")
    assert t3.status is Status.FAIL and f"{rotated.stem} is defined more than once" in t3.message


def test_a_gained_permission_in_another_api_group_says_which_group(tmp_path):
    ws = build(LAB, tmp_path / "ws", None, solution=True)
    sa = variants.values_for(LAB, None)["sa"]
    role_file = ws.root / "cluster" / "rbac" / f"role-{sa}.yaml"
    role = yaml.safe_load(role_file.read_text())
    role["rules"][0]["apiGroups"] = ["*"]
    role_file.write_text(yaml.safe_dump(role))
    t4 = _task(grade(LAB, ws), "t4")
    assert t4.status is Status.FAIL and "gained" in t4.message and "(API group " in t4.message


def test_listing_every_secret_does_not_reveal_which_were_not_read(tmp_path):
    ws = build(LAB, tmp_path / "ws", None, solution=True)
    names = sorted(p.stem for p in (ws.root / "cluster" / "secrets").glob("*.yaml"))
    (ws.root / "nodes/controlplane/opt/course/7/secrets.txt").write_text("\n".join(names) + "\n")
    t2 = _task(grade(LAB, ws), "t2")
    read = set(variants.values_for(LAB, None)["read_secrets"].split(","))
    assert t2.status is Status.FAIL and f"{len(names) - len(read)} listed that were not read" in t2.message
    assert not any(n in t2.message for n in names)
