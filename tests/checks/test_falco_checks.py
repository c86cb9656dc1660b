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
@pytest.mark.parametrize(("edit", "needle"), [
    (lambda d: d.__setitem__("spec", [1]), "spec is not a mapping"),
    (lambda d: d["spec"].__setitem__("replicas", "0"), "'0' (not a number)"),
    (lambda d: d["metadata"].__setitem__("name", ["x"]), "deleted"),
    (lambda d: d["metadata"].pop("name"), "deleted"),
], ids=["spec-list", "replicas-string", "name-list", "name-missing"])
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
