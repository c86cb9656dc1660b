"""What a learner or instructor notices at the terminal: wrong usage says what to do (exit 2, no traceback),
suggested commands work as typed, option names are consistent, and the table stays readable when narrow."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from grader.cli import cks, grade_cmd
from grader.results import Evidence, Report, Status, TaskResult

FIXTURE_LABS = Path(__file__).resolve().parents[1] / "fixtures" / "labs"


def run(cmd, *args: str):
    result = CliRunner().invoke(cmd, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert "Traceback" not in result.output
    return result


def usage_error(cmd, *args: str) -> str:
    result = run(cmd, *args)
    assert result.exit_code == 2, result.output
    return result.output


def relabel(ws: Path, lab_id: str) -> None:
    meta = yaml.safe_load((ws / "cks.yaml").read_text())
    meta["lab"] = lab_id
    (ws / "cks.yaml").write_text(yaml.safe_dump(meta))


def test_missing_lab_lists_the_labs(demo):
    assert "which lab?" in usage_error(grade_cmd) and "lab90" in usage_error(grade_cmd)
    for sub in ("show", "start", "reset", "hint"):
        out = usage_error(cks, sub)
        assert f"cks {sub} lab1" in out and "lab90" in out


def test_missing_workspace_suggests_a_command_that_works(demo, tmp_path):
    out = usage_error(grade_cmd, "lab90", "-w", str(tmp_path / "nowhere"))
    assert f"`cks start lab90 --workspace {tmp_path / 'nowhere'}`" in out
    (tmp_path / "plain").mkdir()
    assert "is not a cks workspace" in usage_error(grade_cmd, "lab90", "-w", str(tmp_path / "plain"))
    (tmp_path / "a-file").write_text("x")
    assert "is a file" in usage_error(grade_cmd, "lab90", "-w", str(tmp_path / "a-file"))


def test_workspace_of_another_lab_names_the_right_command(demo):
    relabel(demo, "lab91")
    out = usage_error(grade_cmd, "lab90", "-w", str(demo))
    assert "is a workspace for lab91, not lab90" in out and f"grade lab91 --workspace {demo}" in out
    assert "lab91" in usage_error(cks, "show", "lab90", "-w", str(demo))
    assert "lab91" in usage_error(cks, "hint", "lab90", "-w", str(demo))


def test_reset_never_deletes_another_labs_workspace(demo):
    (demo / "nodes" / "cp" / "etc").mkdir(parents=True, exist_ok=True)
    (demo / "nodes" / "cp" / "etc" / "greeting").write_text("keep me")
    relabel(demo, "lab91")
    assert "not lab90" in usage_error(cks, "reset", "lab90", "-w", str(demo))
    assert (demo / "nodes" / "cp" / "etc" / "greeting").read_text() == "keep me"


def test_reset_with_seed_explains_how_to_change_the_variant(demo):
    out = usage_error(cks, "reset", "lab90", "-w", str(demo), "--seed", "bob")
    assert f"`cks start lab90 --workspace {demo} --seed bob --force`" in out


def test_start_over_existing_workspace_offers_grade_reset_and_force(demo):
    out = usage_error(cks, "start", "lab90", "-w", str(demo))
    assert f"grade lab90 --workspace {demo}" in out and "--force" in out
    (demo / "nodes" / "cp" / "etc").mkdir(parents=True, exist_ok=True)
    (demo / "nodes" / "cp" / "etc" / "greeting").write_text("hello")
    assert run(cks, "start", "lab90", "-w", str(demo), "--force").exit_code == 0
    assert not (demo / "nodes" / "cp" / "etc" / "greeting").exists()


def test_start_on_a_file_or_below_one_is_a_usage_error(demo, tmp_path):
    (tmp_path / "a-file").write_text("x")
    assert "is a file" in usage_error(cks, "start", "lab90", "-w", str(tmp_path / "a-file"))
    assert "cannot create the workspace" in usage_error(
        cks, "start", "lab90", "-w", str(tmp_path / "a-file" / "ws")
    )
    relabel(demo, "lab91")
    assert "holds lab91" in usage_error(cks, "start", "lab90", "-w", str(demo))


def test_default_workspace_messages_do_not_repeat_the_default(demo, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = run(cks, "start", "lab90").output
    assert "Grade with `grade lab90`." in out
    assert "grade it with `grade lab90`," in usage_error(cks, "start", "lab90")


def test_hint_says_point_for_one_point(demo):
    out = run(cks, "hint", "lab90").output
    assert "t3 (1 point) Live only" in out and "t2 (3 points)" in out


def test_output_aliases_and_unwritable_output(demo, tmp_path):
    out = tmp_path / "r.json"
    assert run(grade_cmd, "lab90", "-w", str(demo), "-f", "json", "--out", str(out)).exit_code == 1
    assert '"lab": "lab90"' in out.read_text()
    (tmp_path / "a-file").write_text("x")
    assert "cannot write" in usage_error(
        grade_cmd, "lab90", "-w", str(demo), "-f", "json", "--output", str(tmp_path / "a-file" / "r.json")
    )
    bundle = tmp_path / "b.tar.gz"
    assert (
        run(cks, "submit", "lab90", "-w", str(demo), "--learner", "zoe", "--output", str(bundle)).exit_code
        == 0
    )
    assert bundle.is_file()


def test_regrade_of_a_missing_bundle_is_a_usage_error(demo, tmp_path):
    out = usage_error(cks, "regrade", str(tmp_path / "typo.tar.gz"), "--csv", str(tmp_path / "c.csv"))
    assert "does not exist" in out and not (tmp_path / "c.csv").exists()


def test_every_study_format_option_has_a_short_f(tmp_path):
    rules = tmp_path / "r.yaml"
    rules.write_text("- rule: r\n  desc: d\n  condition: evt.type = open\n  output: o\n  priority: INFO\n")
    r = run(cks, "falco", "validate", "--no-default", "-f", "json", str(rules))
    assert r.exit_code == 0 and r.output.lstrip().startswith(("{", "["))
    manifest = tmp_path / "kube-apiserver.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: kube-apiserver}\n"
        "spec:\n  containers:\n  - name: kube-apiserver\n    command: [kube-apiserver]\n"
    )
    r = run(cks, "apiserver", "check", "-f", "json", str(manifest))
    assert r.exit_code in (0, 1) and r.output.lstrip().startswith("{")


@pytest.mark.parametrize("sub", ["list", "show", "start", "reset", "hint", "grade", "selftest"])
def test_learner_commands_teach_with_examples(sub):
    out = run(cks, sub, "--help").output
    assert "Examples:" in out and f"{sub} " in out.split("Examples:")[1]
    commands = run(cks, "--help").output.split("Learners:")[-1]
    assert "..." not in commands  # the command list is never cut mid-sentence


def _report() -> Report:
    hint = "Put `omitStages: [RequestReceived]` at the top level; " + "a long explanation that wraps " * 6
    return Report(
        lab="lab1",
        title="Write an audit policy",
        lab_version=1,
        target="workspace ws",
        tasks=[
            TaskResult(
                "t1",
                "The RequestReceived stage is never recorded",
                Status.FAIL,
                0,
                2,
                "rule 1 records RequestReceived for get secrets -n prod as alice",
                [
                    Evidence(
                        "controlplane:/etc/kubernetes/audit/policy.yaml",
                        "omitStages contains RequestReceived",
                        "rules[1] omitStages: [] " + "and more detail that needs wrapping " * 4,
                    )
                ],
                hint,
            ),
            TaskResult("t2", "Everything else at Metadata", Status.PASS, 1, 1, "ok", [], "catch-all"),
        ],
    )


def test_narrow_table_fits_and_wrapped_text_stays_indented():
    from grader.reporters.table import render_table

    text = render_table(_report(), verbose=True, color=False, width=60, hints=True)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 60
    assert not [line for line in lines if line != line.rstrip()]  # no trailing blanks in files
    assert "[RequestReceived]" in text  # hints are text, never rich markup
    hint_at = next(i for i, line in enumerate(lines) if line.startswith("  t1: "))
    assert lines[hint_at + 1].startswith(" " * 6)  # a wrapped hint continues under itself
    actual_at = next(i for i, line in enumerate(lines) if "actual:" in line)
    value_col = re.search(r"actual:\s+", lines[actual_at]).end()
    # the wrapped value continues in the value's column, not at the cell's left edge
    assert re.match(rf"\s{{{value_col}}}\S", lines[actual_at + 1].replace("│", " "))


def test_columns_env_sets_the_width_and_pipes_get_no_ansi(demo):
    env = {**os.environ, "CKS_LABS_DIR": str(FIXTURE_LABS), "COLUMNS": "60"}
    env.pop("NO_COLOR", None)
    r = subprocess.run(
        [sys.executable, "-m", "grader", "grade", "lab90", "-w", str(demo)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert r.returncode == 1 and "\x1b[" not in r.stdout
    assert max(len(line) for line in r.stdout.splitlines()) <= 60
