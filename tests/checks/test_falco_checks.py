"""falco.offenders_scaled (lab4 t2) on malformed Deployments: a clear fail naming the problem, never
"internal error" (regressions found by tests/robustness/test_fuzz_labs.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from grader.labs import get_lab
from grader.results import Status
from grader.runner import grade
from grader.selftest import build
from grader.snapshot import Snapshot

BENIGN, OFFENDER = "frontend", "orders"  # lab4's default variant


def _grade_t2(tmp_path: Path, name: str, edit: Callable[[dict], None]):
    lab = get_lab("lab4")
    build(lab, tmp_path, None, solution=True)
    path = tmp_path / "cluster" / "deployments.yaml"
    docs = list(yaml.safe_load_all(path.read_text()))
    edit(next(d for d in docs if d["metadata"]["name"] == name))
    path.write_text(yaml.safe_dump_all(docs))
    return grade(lab, Snapshot(tmp_path), only=["t2"]).tasks[0]


@pytest.mark.parametrize("name", [BENIGN, OFFENDER])
@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda d: d.__setitem__("spec", [1]), "spec is not a mapping"),
        (lambda d: d["spec"].__setitem__("replicas", "0"), "'0' (not a number)"),
        (lambda d: d["metadata"].__setitem__("name", ["x"]), "deleted"),
        (lambda d: d["metadata"].pop("name"), "deleted"),
    ],
    ids=["spec-list", "replicas-string", "name-list", "name-missing"],
)
def test_malformed_deployment_fails_with_a_reason(tmp_path, name, edit, needle):
    task = _grade_t2(tmp_path, name, edit)
    assert task.status is Status.FAIL, task.message
    assert needle in task.message and name in task.message


@pytest.mark.parametrize("field", ["containers", "ports"])
def test_a_benign_template_with_a_non_list_field_is_a_changed_template(tmp_path, field):
    def edit(d: dict) -> None:
        spec = d["spec"]["template"]["spec"]
        (spec if field == "containers" else spec["containers"][0])[field] = 7

    task = _grade_t2(tmp_path, BENIGN, edit)
    assert task.status is Status.FAIL
    assert "pod template changed at spec.template.spec.containers" in task.message and field in task.message


# ---- falco.rule_task: the default rules file is judged against the start record, not the kit's copy --------

DEFAULT = "/etc/falco/falco_rules.yaml"
RULE_TASKS = {"lab3": ["t1", "t2", "t3"], "lab8": ["q3-rule"]}


def _record(ws: Path, node_path: str, data: bytes) -> None:
    """What `cks start` on a node carrying ``data`` records (cks.yaml start_files)."""
    import hashlib

    meta = yaml.safe_load((ws / "cks.yaml").read_text())
    meta.setdefault("start_files", {})[f"controlplane:{node_path}"] = (
        "sha256:" + hashlib.sha256(data).hexdigest()
    )
    (ws / "cks.yaml").write_text(yaml.safe_dump(meta))


def _rule_tasks(lab_id: str, ws: Path):
    lab = get_lab(lab_id)
    return {t.id: t for t in grade(lab, Snapshot(ws), only=RULE_TASKS[lab_id]).tasks}


@pytest.mark.parametrize("lab_id", sorted(RULE_TASKS))
@pytest.mark.parametrize("upstream", ["falco_rules.yaml", "falco_rules.v3.2.0.yaml"])
def test_a_node_with_the_real_upstream_default_file_grades_the_same(tmp_path, shared_dir, lab_id, upstream):
    real = shared_dir / "conformance" / "falco" / "rules" / upstream
    if not real.is_file():
        pytest.skip(f"{real} is absent")
    build(get_lab(lab_id), tmp_path, None, solution=True)
    (tmp_path / "nodes/controlplane" / DEFAULT.lstrip("/")).write_bytes(real.read_bytes())
    _record(tmp_path, DEFAULT, real.read_bytes())
    tasks = _rule_tasks(lab_id, tmp_path)
    assert all(t.status is Status.PASS for t in tasks.values()), {k: t.message for k, t in tasks.items()}


@pytest.mark.parametrize("lab_id", sorted(RULE_TASKS))
def test_a_default_file_edited_after_the_start_fails(tmp_path, lab_id):
    build(get_lab(lab_id), tmp_path, None, solution=True)
    path = tmp_path / "nodes/controlplane" / DEFAULT.lstrip("/")
    path.write_bytes(path.read_bytes() + b"\n# tuned\n")
    for task in _rule_tasks(lab_id, tmp_path).values():
        assert task.status is Status.FAIL and task.points == 0
        assert "was edited" in task.message


def test_the_record_not_the_kits_copy_decides(tmp_path):
    """A node whose default file differs from the kit's stand-in but matches its start record passes; one that
    matches the kit's copy but not the record fails."""
    build(get_lab("lab3"), tmp_path, None, solution=True)
    path = tmp_path / "nodes/controlplane" / DEFAULT.lstrip("/")
    node_file = path.read_bytes().replace(b"# cks-kit default rules", b"# the node's own default rules")
    path.write_bytes(node_file)
    _record(tmp_path, DEFAULT, node_file)
    assert all(t.status is Status.PASS for t in _rule_tasks("lab3", tmp_path).values())
    _record(tmp_path, DEFAULT, b"another file")
    assert all(t.status is Status.FAIL for t in _rule_tasks("lab3", tmp_path).values())


def test_a_live_start_record_fact_takes_precedence(tmp_path):
    import hashlib
    import json

    build(get_lab("lab3"), tmp_path, None, solution=True)
    data = (tmp_path / "nodes/controlplane" / DEFAULT.lstrip("/")).read_bytes()
    facts = tmp_path / "facts" / "controlplane"
    facts.mkdir(parents=True)
    (facts / "start-files.json").write_text(json.dumps({DEFAULT: "sha256:" + "0" * 64}))
    assert all(t.status is Status.FAIL for t in _rule_tasks("lab3", tmp_path).values())
    (facts / "start-files.json").write_text(
        json.dumps({DEFAULT: "sha256:" + hashlib.sha256(data).hexdigest()})
    )
    assert all(t.status is Status.PASS for t in _rule_tasks("lab3", tmp_path).values())


def test_a_workspace_started_before_records_existed_falls_back_to_the_start_state(tmp_path):
    build(get_lab("lab3"), tmp_path, None, solution=True)
    meta = yaml.safe_load((tmp_path / "cks.yaml").read_text())
    assert f"controlplane:{DEFAULT}" in meta.pop("start_files")
    (tmp_path / "cks.yaml").write_text(yaml.safe_dump(meta))
    assert all(t.status is Status.PASS for t in _rule_tasks("lab3", tmp_path).values())


# ---- answers stay hidden; reasons speak about what the learner did -----------------------------------------


@pytest.mark.parametrize("seed", [None, "alpha", "bravo"])
def test_lab4_start_output_names_no_offender(tmp_path, seed):
    from grader import variants
    from grader.checks.falco import offenders_from
    from grader.reporters import FORMATS, render

    lab = get_lab("lab4")
    snap = build(lab, tmp_path, seed, solution=False)
    values = variants.values_for(lab, seed)
    offenders = offenders_from(snap, values["ns"], "controlplane", "/opt/course/lab4/alerts-earlier.log")
    assert len(offenders) == 3
    report = grade(lab, snap)
    for fmt in FORMATS:
        for verbose in (False, True):
            text = render(report, fmt, verbose=verbose, color=False)
            for name, cid in offenders.items():
                assert name not in text and cid not in text, (fmt, verbose, name)


def test_lab4_names_only_what_the_learner_touched_wrongly(tmp_path):
    lab = get_lab("lab4")
    build(lab, tmp_path, None, solution=False)
    path = tmp_path / "cluster" / "deployments.yaml"
    docs = list(yaml.safe_load_all(path.read_text()))
    docs = [d for d in docs if d["metadata"]["name"] != OFFENDER]  # the learner deleted one offender
    path.write_text(yaml.safe_dump_all(docs))
    task = grade(lab, Snapshot(tmp_path), only=["t2"]).tasks[0]
    text = task.message + " ".join(f"{e.where} {e.expected} {e.actual}" for e in task.evidence)
    assert OFFENDER in text and "deleted" in text
    for other in ("reports", "notifier"):  # the two offenders still running are counted, not named
        assert other not in text
    assert "2 of the 3 Deployments behind the alerts still run" in text


def test_lab4_yaml_slip_is_named_as_such(tmp_path):
    lab = get_lab("lab4")
    build(lab, tmp_path, None, solution=True)
    path = tmp_path / "cluster" / "deployments.yaml"
    lines = path.read_text().splitlines()
    at = next(i for i, ln in enumerate(lines) if ln == "  replicas: 0")
    lines[at] = "   replicas: 0"
    path.write_text("\n".join(lines) + "\n")
    task = grade(lab, Snapshot(tmp_path), only=["t2"]).tasks[0]
    assert task.status is Status.FAIL
    assert "cluster/deployments.yaml, document" in task.message and "not valid YAML at line" in task.message
    assert "deleted" not in task.message


# ---- partial credit of a rule task (lab3 README): a wrong detection keeps at most a third ------------------


@pytest.mark.parametrize(
    ("fixture", "task", "points"),
    [
        ("no_container_filter", "t1", 1.0),  # fires on host processes
        ("no_parentheses", "t2", 1.0),
        ("contains_shadow", "t2", 1.0),
        ("shadow-flags-rdonly", "t2", 1.0),  # misses an O_RDWR read
        ("privesc-appended-alternative", "t1", 1.0),
        ("fields_reordered", "t2", 2.0),  # detection right, output wrong: 2 of 3
        ("wrong_priority", "t1", 2.0),
        ("package-mgmt-procs-macro", "t3", 0.0),  # Falco refuses the file
    ],
)
def test_lab3_partial_credit(tmp_path, fixture, task, points):
    lab = get_lab("lab3")
    snap = build(
        lab,
        tmp_path,
        None,
        solution=True,
        overlay=Path(__file__).resolve().parents[1] / "labs" / "lab3" / "wrong" / fixture,
    )
    result = {t.id: t for t in grade(lab, snap).tasks}[task]
    assert result.status is Status.FAIL
    assert result.points == pytest.approx(points), result.message


def test_lab3_reasons_describe_events_neutrally(tmp_path):
    lab = get_lab("lab3")
    snap = build(
        lab,
        tmp_path,
        None,
        solution=True,
        overlay=Path(__file__).resolve().parents[1] / "labs" / "lab3" / "wrong" / "no_container_filter",
    )
    t1 = {t.id: t for t in grade(lab, snap).tasks}["t1"]
    assert "sudo starting (execve) on the host (outside any container)" in t1.message
    assert "trap" not in t1.message and "without" not in t1.message
