"""audit_log.* checks (lab7): messages that name what the learner did."""

from __future__ import annotations

import yaml

from grader import variants
from grader.labs import get_lab
from grader.results import Status
from grader.runner import grade
from grader.selftest import build
from grader.text import plural

LAB = get_lab("lab7")


def _task(report, tid):
    return next(t for t in report.tasks if t.id == tid)


def test_a_secret_defined_twice_is_named_in_the_failure(tmp_path):
    """An edited copy beside the untouched original: say that two definitions exist, not only 'old data'."""
    start = build(LAB, tmp_path / "start", None, solution=False)
    ws = build(LAB, tmp_path / "ws", None, solution=True)
    secrets = ws.root / "cluster" / "secrets"
    rotated = next(
        p
        for p in sorted(secrets.glob("*.yaml"))
        if (start.root / "cluster/secrets" / p.name).read_bytes() != p.read_bytes()
    )
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
    (ws.root / "nodes/controlplane/opt/course/lab7/secrets.txt").write_text("\n".join(names) + "\n")
    t2 = _task(grade(LAB, ws), "t2")
    read = set(variants.values_for(LAB, None)["read_secrets"].split(","))
    assert t2.status is Status.FAIL and "not exactly the Secrets the intruder read" in t2.message
    # no count of missing or extra names: adding names one at a time and regrading must not find the answer
    assert str(len(names) - len(read)) not in t2.message.replace(f"({plural(len(names), 'name')} listed)", "")
    assert not any(n in t2.message for n in names)


# ---- nothing in a report gives the investigation away (issue 12) ------------------------------------------


def _answers() -> dict:
    values = variants.values_for(LAB, None)
    return {
        "attacker": values["attacker"],
        "sa": values["sa"],
        **{f"read_{i}": values[f"read_{i}"] for i in range(1, 5)},
    }


def _everything_said(report) -> str:
    from grader.reporters.json_report import render_json
    from grader.reporters.table import render_table

    return render_json(report) + render_table(report, verbose=True, color=False, width=200)


def _without_hints(report):
    for t in report.tasks:
        t.hint = ""  # hints are written by the lab author for every learner; this test is about verdicts
    return report


def test_untouched_workspace_names_neither_intruder_nor_read_secrets(tmp_path):
    said = _everything_said(_without_hints(grade(LAB, build(LAB, tmp_path / "ws", None, solution=False))))
    for what, value in _answers().items():
        assert value not in said, what


def _start_with(tmp_path, name: str, edit) -> object:
    ws = build(LAB, tmp_path / name, None, solution=False)
    edit(ws.root)
    return grade(LAB, ws)


def _rotate(secret: str):
    def edit(root):
        path = root / "cluster" / "secrets" / f"{secret}.yaml"
        doc = yaml.safe_load(path.read_text())
        doc["stringData"] = {k: "changed-by-learner" for k in doc.get("data", {})}
        path.write_text(yaml.safe_dump(doc))

    return edit


def test_rotating_one_secret_does_not_tell_whether_it_was_read(tmp_path):
    """Before the list (t2) is right, a read and an unread Secret changed give the same report."""
    values = variants.values_for(LAB, None)
    read = _start_with(tmp_path, "read", _rotate(values["read_1"]))
    unread = _start_with(tmp_path, "unread", _rotate(values["unread_1"]))
    assert [(t.id, t.status, t.points, t.message) for t in read.tasks] == [
        (t.id, t.status, t.points, t.message) for t in unread.tasks
    ]
    assert _task(read, "t3").blocked_by == "t2"


def test_deleting_the_binding_is_not_named_before_the_intruder_is(tmp_path):
    values = variants.values_for(LAB, None)

    def drop_binding(root):
        (root / "cluster" / "rbac" / f"rolebinding-{values['sa']}.yaml").unlink()

    t4 = _task(_start_with(tmp_path, "a", drop_binding), "t4")
    assert t4.status is Status.FAIL and t4.points == 0 and "lost permissions" in t4.message
    assert values["sa"] not in t4.message
    named = build(LAB, tmp_path / "b", None, solution=False)
    drop_binding(named.root)
    (named.root / "nodes/controlplane/opt/course/lab7").mkdir(parents=True, exist_ok=True)
    (named.root / "nodes/controlplane/opt/course/lab7/intruder.txt").write_text(values["attacker"] + "\n")
    t4 = _task(grade(LAB, named), "t4")
    assert f"RoleBinding {values['ns']}/{values['sa']}" in t4.message  # t1 solved: nothing left to give away


def test_rotation_needs_every_secret_value_changed():
    from grader.checks.audit_log import rotation_problem

    before = {"username": b"app", "password": b"s3cret"}
    assert rotation_problem(before, {"username": b"app", "password": b"new"}) is None  # a user name may stay
    assert rotation_problem(before, {"username": b"app2", "password": b"new", "note": b"x"}) is None
    assert "still holds" in rotation_problem(
        before, {"username": b"app", "password": b"s3cret", "password-new": b"new"}
    )
    assert "another key" in rotation_problem(
        before, {"username": b"app", "password": b"new", "old": b"s3cret"}
    )
    assert "removed" in rotation_problem(before, {"username": b"app"})
    assert "empty" in rotation_problem(before, {"username": b"app", "password": b""})
