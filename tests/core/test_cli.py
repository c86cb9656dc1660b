"""The learner's commands: formats, exit codes, messages — through the real CLI entry points."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from click.testing import CliRunner

from grader.cli import cks, grade_cmd

FIXTURE_LABS = Path(__file__).resolve().parents[1] / "fixtures" / "labs"


def write(ws: Path, path: str, text: str) -> None:
    p = ws / "nodes" / "cp" / path.lstrip("/")
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


def test_start_state_scores_zero_and_exit_1(demo):
    result = CliRunner().invoke(grade_cmd, ["lab90", "--workspace", str(demo)])
    assert result.exit_code == 1
    assert "Score: 0/5" in result.output
    assert "1 more point needs a live cluster" in result.output
    assert "echo hello > /etc/greeting" not in result.output  # no hint text unless asked for
    assert "hint: cks hint lab90 t1" in result.output and "hint: cks hint lab90 t2" in result.output


def test_hints_flag_prints_the_last_tier_and_records_it(demo):
    from grader.progress import tiers_seen

    result = CliRunner().invoke(grade_cmd, ["lab90", "--workspace", str(demo), "--hints"])
    assert result.exit_code == 1
    assert "echo hello > /etc/greeting" in result.output and "cks hint lab90" not in result.output
    assert tiers_seen(demo) == {"t1": 3, "t2": 3}


def test_all_pass_exit_0_and_json_shape(demo):
    write(demo, "/etc/greeting", "hello")
    write(demo, "/etc/farewell", "bye")
    result = CliRunner().invoke(grade_cmd, ["lab90", "--workspace", str(demo), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["lab"] == "lab90" and data["score"] == 5 and data["max_score"] == 5
    assert [t["status"] for t in data["tasks"]] == ["pass", "pass", "skip"]
    assert set(data["tasks"][0]) == {
        "id",
        "title",
        "status",
        "points",
        "max_points",
        "message",
        "evidence",
        "hint",
    }


def test_partial_json_points(demo):
    write(demo, "/etc/farewell", "bye")
    data = json.loads(CliRunner().invoke(grade_cmd, ["lab90", "-w", str(demo), "-f", "json"]).output)
    assert (data["score"], [t["points"] for t in data["tasks"]]) == (3, [0, 3, 0])
    assert data["tasks"][0]["evidence"][0]["where"] == "cp:/etc/greeting"


def test_junit_is_pytest_shaped(demo, tmp_path):
    write(demo, "/etc/greeting", "hello")
    out = tmp_path / "r.xml"
    result = CliRunner().invoke(grade_cmd, ["lab90", "-w", str(demo), "-f", "junit", "-o", str(out)])
    assert result.exit_code == 1
    assert "Score: 2/5" in result.output  # the table still prints when the machine format goes to a file
    suite = ET.parse(out).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped"), suite.get("errors")) == (
        "3",
        "1",
        "1",
        "0",
    )
    cases = suite.findall("testcase")
    assert cases[1].get("classname") == "lab90" and cases[1].get("name").startswith("t2:")
    assert cases[1].find("failure") is not None and cases[0].find("failure") is None


def test_unreadable_file_is_error_exit_3(demo):
    if os.geteuid() == 0:
        # root reads anything: make the path a link that leaves the node instead (also an environment problem)
        p = demo / "nodes" / "cp" / "etc" / "greeting"
        p.symlink_to("/etc/hostname")
    else:  # pragma: no cover
        write(demo, "/etc/greeting", "x")
        (demo / "nodes" / "cp" / "etc" / "greeting").chmod(0)
    write(demo, "/etc/farewell", "bye")
    result = CliRunner().invoke(grade_cmd, ["lab90", "-w", str(demo)])
    assert result.exit_code == 3, result.output
    assert "ERROR" in result.output


def test_usage_errors_exit_2(demo, tmp_path):
    r = CliRunner().invoke(grade_cmd, ["lab404", "-w", str(demo)])
    assert r.exit_code == 2 and "no lab 'lab404'" in r.output
    r = CliRunner().invoke(grade_cmd, ["lab90", "-w", str(tmp_path / "nothing")])
    assert r.exit_code == 2 and "cks start lab90" in r.output
    r = CliRunner().invoke(grade_cmd, ["lab90", "-w", str(demo), "--format", "xml"])
    assert r.exit_code == 2
    r = CliRunner().invoke(grade_cmd, ["lab90", "-w", str(demo), "--task", "t9"])
    assert r.exit_code == 2 and "no task 't9'" in r.output


def test_start_refuses_to_overwrite_and_reset_restores(demo):
    r = CliRunner().invoke(cks, ["start", "lab90", "-w", str(demo)])
    assert r.exit_code == 2 and "already exists" in r.output
    write(demo, "/etc/greeting", "hello")
    r = CliRunner().invoke(cks, ["reset", "lab90", "-w", str(demo)])
    assert r.exit_code == 0, r.output
    assert not (demo / "nodes" / "cp" / "etc" / "greeting").exists()


def test_hint_and_list(demo):
    r = CliRunner().invoke(cks, ["hint", "lab90", "t2", "-w", str(demo)])
    assert r.exit_code == 0 and "echo bye > /etc/farewell" in r.output and "greeting" not in r.output
    r = CliRunner().invoke(cks, ["list", "--format", "json"])
    assert json.loads(r.output)[0]["id"] == "lab90"


def test_no_color_respected(demo):
    r = subprocess.run(
        [sys.executable, "-m", "grader", "grade", "lab90", "-w", str(demo)],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1", "CKS_LABS_DIR": str(FIXTURE_LABS)},
    )
    assert r.returncode == 1 and "\x1b[" not in r.stdout


def test_grade_help_does_not_import_kubernetes():
    code = (
        "import sys; sys.argv=['grade','--help']\nfrom grader.cli import grade_main\n"
        "try:\n grade_main()\nexcept SystemExit: pass\n"
        "bad=[m for m in sys.modules if m.split('.')[0] in ('kubernetes','testinfra','rich')]\n"
        "print('IMPORTED', bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert "IMPORTED []" in out
