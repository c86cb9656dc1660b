"""Help on request: tiered hints, the reference solution after a confirmation, progress, all recorded in the
workspace; `cks show` and `cks --help` as a new learner reads them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader.cli import cks, grade_cmd
from grader.labs import LabError, parse_lab
from grader.progress import MAX_HISTORY, progress_record, solution_seen, tiers_seen

REPO = Path(__file__).resolve().parents[2]
FIXTURE_LABS = REPO / "tests" / "fixtures" / "labs"


def run(cmd, *args: str, input: str | None = None):
    result = CliRunner().invoke(cmd, list(args), input=input)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert "Traceback" not in result.output
    return result


# ---- hints ------------------------------------------------------------------------------------------------


def test_each_request_gives_the_next_tier_and_records_it(demo):
    first = run(cks, "hint", "lab90", "t1", "-w", str(demo)).output
    assert "Hint 1 of 3, a nudge toward the concept (new)" in first and "must exist on the node" in first
    assert "nodes/cp/" not in first and "echo hello" not in first
    assert f"`cks hint lab90 t1 --workspace {demo}` gives hint 2 of 3, where to look" in first.replace(
        "\n", " "
    )
    assert tiers_seen(demo) == {"t1": 1}
    second = run(cks, "hint", "lab90", "t1", "-w", str(demo)).output
    assert (
        "Hint 1 of 3" in second
        and "Hint 2 of 3, where to look (new)" in second
        and "echo hello" not in second
    )
    third = run(cks, "hint", "lab90", "t1", "-w", str(demo)).output
    assert "Hint 3 of 3, the shape of the answer (new)" in third and "echo hello > /etc/greeting" in third
    assert "That is the last hint" in third and "cks solution lab90" in third
    assert tiers_seen(demo) == {"t1": 3}
    again = run(cks, "hint", "lab90", "t1", "-w", str(demo)).output
    assert "(new)" not in again and "echo hello" in again


def test_tier_option_jumps_and_never_lowers_the_record(demo):
    out = run(cks, "hint", "lab90", "t1", "--tier", "3", "-w", str(demo)).output
    assert "echo hello > /etc/greeting" in out and "Hint 2 of 3" in out
    assert tiers_seen(demo) == {"t1": 3}
    out = run(cks, "hint", "lab90", "t1", "--tier", "1", "-w", str(demo)).output
    assert "Hint 2 of 3" not in out and tiers_seen(demo) == {"t1": 3}
    assert run(cks, "hint", "lab90", "t1", "--tier", "4", "-w", str(demo)).exit_code == 2


def test_an_older_single_hint_is_tier_three(demo):
    out = run(cks, "hint", "lab90", "t2", "-w", str(demo)).output
    assert "Hint 3 of 3, the shape of the answer" in out and "echo bye" in out
    assert "usage" not in out.lower() and tiers_seen(demo) == {"t2": 3}
    assert run(cks, "hint", "lab90", "t2", "--tier", "1", "-w", str(demo)).exit_code == 2


def test_hint_list_shows_no_hint_text_and_what_was_seen(demo):
    run(cks, "hint", "lab90", "t1", "-w", str(demo))
    run(grade_cmd, "lab90", "-w", str(demo))
    out = run(cks, "hint", "lab90", "-w", str(demo)).output
    assert "echo hello" not in out and "echo bye" not in out and "must exist" not in out
    assert "last graded: fail; hints seen: 1 of 3" in out and "hints seen: 0 of 1" in out


def test_hints_show_without_a_workspace_and_say_they_were_not_recorded(demo, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = run(cks, "hint", "lab90", "t1").output
    assert "Hint 1 of 3" in out and "Not recorded" in out
    assert not (tmp_path / "cks-workspace").exists()


def test_hint_records_survive_reset_and_start_force(demo):
    run(cks, "hint", "lab90", "t1", "-w", str(demo))
    run(grade_cmd, "lab90", "-w", str(demo))
    assert run(cks, "reset", "lab90", "-w", str(demo)).exit_code == 0
    assert tiers_seen(demo) == {"t1": 1} and progress_record(demo)["gradings"] == 1
    assert run(cks, "start", "lab90", "-w", str(demo), "--force").exit_code == 0
    assert tiers_seen(demo) == {"t1": 1}


def test_default_json_and_junit_carry_no_hint_text(demo):
    data = json.loads(run(grade_cmd, "lab90", "-w", str(demo), "-f", "json").output)
    assert [t["hint"] for t in data["tasks"]] == [None, None, None]
    data = json.loads(run(grade_cmd, "lab90", "-w", str(demo), "-f", "json", "--hints").output)
    assert data["tasks"][0]["hint"] == "echo hello > /etc/greeting"
    assert "echo hello" not in run(grade_cmd, "lab90", "-w", str(demo), "-f", "junit").output


@pytest.mark.parametrize(
    "hints, words",
    [
        (["one", "two"], ["key 'hints'", "three hints", "got 2"]),
        (["one", "", "three"], ["key 'hints'", "non-empty"]),
        ("just one", ["key 'hints'", "three hints"]),
    ],
)
def test_lab_yaml_hints_are_validated(hints, words):
    data = {
        "id": "lab9",
        "version": 1,
        "title": "T",
        "minutes": 5,
        "tasks": [
            {
                "id": "t1",
                "title": "x",
                "points": 1,
                "check": "files.present",
                "params": {"node": "cp", "path": "/x"},
                "hints": hints,
            }
        ],
    }
    with pytest.raises(LabError) as exc:
        parse_lab(data, Path("/labs/lab9-x"), "labs/lab9-x/lab.yaml")
    assert all(w in str(exc.value) for w in words), str(exc.value)
    data["tasks"][0]["hint"] = "old"
    with pytest.raises(LabError, match="not both"):
        parse_lab(data, Path("/labs/lab9-x"), "labs/lab9-x/lab.yaml")


def test_every_shipped_task_has_three_tiers():
    from grader.labs import all_labs

    for lab in all_labs(REPO / "labs"):
        for task in lab.tasks:
            assert task.hint_tiers == [1, 2, 3], f"{lab.id} {task.id}"
            assert len(set(task.hints)) == 3, f"{lab.id} {task.id}: tiers repeat each other"


# ---- solution ---------------------------------------------------------------------------------------------


@pytest.fixture()
def lab1_ws(tmp_path, monkeypatch):
    from grader.labs import load_lab_dir

    monkeypatch.delenv("CKS_LABS_DIR", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    load_lab_dir.cache_clear()
    ws = tmp_path / "lab1"
    assert run(cks, "start", "lab1", "-w", str(ws), "--seed", "ana").exit_code == 0
    return ws


def test_solution_asks_first_and_records_only_when_shown(lab1_ws):
    out = run(cks, "solution", "lab1", "-w", str(lab1_ws), input="n\n").output
    assert "Not shown" in out and "omitStages" not in out and solution_seen(lab1_ws) is None
    out = run(cks, "solution", "lab1", "-w", str(lab1_ws), input="").output  # end of input: no
    assert "Not shown" in out and solution_seen(lab1_ws) is None
    out = run(cks, "solution", "lab1", "-w", str(lab1_ws), input="y\n").output
    assert "Why it is shaped this way" in out and solution_seen(lab1_ws) is not None


def test_solution_shows_the_answer_for_the_workspace_variant(lab1_ws):
    from grader import variants
    from grader.labs import get_lab

    ns = variants.values_for(get_lab("lab1"), "ana")["ns"]
    out = run(cks, "solution", "lab1", "-w", str(lab1_ws), "--yes").output
    assert "seed ana" in out and "+++ answer/nodes/controlplane/etc/kubernetes/audit/policy.yaml" in out
    assert f'+    namespaces: ["{ns}"]' in out or f"{ns}" in out.split("+++ answer/")[1]
    assert "{{" not in out


def test_solution_in_an_install_without_solutions_says_so(lab1_ws, monkeypatch):
    import grader.cli.learn as learn

    monkeypatch.setattr(learn, "solution_source", lambda lab: None)
    r = run(cks, "solution", "lab1", "-w", str(lab1_ws), "--yes")
    assert r.exit_code == 2 and "no reference solution" in r.output and "cks dist" in r.output


def test_wheel_config_ships_solutions_beside_the_package():
    """The default install carries the explanations (grader/_solutions); a folder without solutions/ (a `cks
    dist` course bundle) builds without them, because only-include skips what is absent."""
    text = (REPO / "pyproject.toml").read_text()
    assert 'only-include = ["grader", "solutions"]' in text
    assert '"solutions" = "grader/_solutions"' in text


# ---- progress ---------------------------------------------------------------------------------------------


def test_progress_lists_every_lab_with_best_last_hints_and_next(demo, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run(cks, "start", "lab90").exit_code == 0
    ws = tmp_path / "cks-workspace" / "lab90"
    (ws / "nodes" / "cp" / "etc" / "farewell").write_text("bye")
    run(grade_cmd, "lab90")
    (ws / "nodes" / "cp" / "etc" / "farewell").unlink()
    run(grade_cmd, "lab90")  # worse: the best stays 3/5
    run(cks, "hint", "lab90", "t1")
    rows = json.loads(run(cks, "progress", "-f", "json").output)
    row = next(r for r in rows if r["lab"] == "lab90")
    assert (row["best_score"], row["best_max_score"], row["last_score"]) == (3, 5, 0)
    assert row["hints_seen"] == {"t1": 1} and row["solution_seen"] is None
    assert row["failing"] == ["t1", "t2"] and row["next"] == "fix t1 (+1 more); cks hint lab90 t1"
    table = run(cks, "progress").output
    assert "3/5" in table and "t1:1" in table and "Next: fix t1" in table
    run(cks, "hint", "lab90", "t1", "--tier", "3")  # every tier seen: another hint would only repeat them
    row = next(r for r in json.loads(run(cks, "progress", "-f", "json").output) if r["lab"] == "lab90")
    assert row["next"] == "fix t1 (+1 more); cks solution lab90"


def test_progress_before_any_lab_says_how_to_begin(demo, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = run(cks, "progress").output
    assert "cks start lab90" in out and "No lab started here yet" in out


def test_progress_history_is_bounded_and_a_damaged_record_is_ignored(demo):
    from grader.progress import KIT_DIR, PROGRESS_FILE, record_grade
    from grader.results import Report

    report = Report("lab90", "Demo", 2, "workspace", [])
    for _ in range(MAX_HISTORY + 5):
        record_grade(demo, report)
    assert len(progress_record(demo)["history"]) == MAX_HISTORY
    (demo / KIT_DIR / PROGRESS_FILE).write_text("{not json")
    assert progress_record(demo) == {}
    assert run(grade_cmd, "lab90", "-w", str(demo)).exit_code == 1
    assert progress_record(demo)["gradings"] == 1


# ---- show and help ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("lab", [d.name.split("-")[0] for d in sorted((REPO / "labs").glob("lab*-*"))])
def test_show_never_wraps_a_command_at_80_columns(lab, tmp_path, monkeypatch):
    from grader.labs import load_lab_dir

    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("CKS_LABS_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    load_lab_dir.cache_clear()
    out = run(cks, "show", lab).output
    readme = next((REPO / "labs").glob(f"{lab}-*/README.md")).read_text()
    in_blocks = [
        line.strip()
        for line in readme.splitlines()
        if line.strip().startswith(("cks ", "grade ")) and "{{" not in line and "`" not in line
    ]
    inline = [c for c in re.findall(r"`((?:cks|grade) [^`{]+)`", readme) if len(c) <= 70]
    for command in in_blocks + inline:
        assert command in out, f"{lab}: {command!r} is wrapped or missing"
    assert "-v adds evidence and hints" not in out and f"cks hint {lab} " in out
    assert not [line for line in out.splitlines() if line != line.rstrip()]


def test_help_lists_instructor_commands_apart_from_the_learners():
    out = run(cks, "--help").output
    learners = out.split("Learners:")[-1].split("Study tools:")[0]
    instructors = out.split("Instructors:")[-1]
    for name in ("grade", "hint", "progress", "solution", "show", "start"):
        assert f"\n  {name} " in learners, name
    assert "\n  solve " not in learners and "\n  solve " in instructors


def test_submit_bundle_carries_the_hint_and_grading_record(demo, tmp_path):
    import tarfile

    run(cks, "hint", "lab90", "t1", "-w", str(demo))
    run(grade_cmd, "lab90", "-w", str(demo))
    bundle = tmp_path / "b.tar.gz"
    assert run(cks, "submit", "lab90", "-w", str(demo), "--learner", "zoe", "-o", str(bundle)).exit_code == 0
    with tarfile.open(bundle) as tar:
        names = tar.getnames()
        hints = json.loads(tar.extractfile("snapshot/.cks/hints.json").read())
    assert "snapshot/.cks/progress.json" in names and hints["tasks"]["t1"]["tier"] == 1


def test_every_explanation_renders_for_a_seed():
    from grader import variants
    from grader.labs import all_labs

    for lab in all_labs(REPO / "labs"):
        text = (REPO / "solutions" / lab.id / "README.md").read_text()
        rendered = variants.render_text(text, variants.values_for(lab, "s1"))
        assert "{{" not in rendered and rendered.startswith(f"# {lab.id}: reference answer"), lab.id


def test_no_hints_or_solution_during_a_timed_exam(tmp_path, monkeypatch):
    from grader.labs import load_lab_dir

    monkeypatch.delenv("CKS_LABS_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    load_lab_dir.cache_clear()
    assert run(cks, "exam", "start", "--seed", "x").exit_code == 0
    ws = tmp_path / "cks-workspace" / "exam" / "lab8"
    r = run(cks, "hint", "lab8", "q1-loads", "-w", str(ws))
    assert r.exit_code == 2 and "no hints during the timed exam" in r.output
    assert run(cks, "solution", "lab8", "--yes", "-w", str(ws)).exit_code == 2
    assert run(cks, "exam", "finish").exit_code in (0, 1)
    assert "Hint 1 of 3" in run(cks, "hint", "lab8", "q1-loads", "-w", str(ws)).output


def test_grading_an_exam_question_leaves_its_files_alone(tmp_path, monkeypatch):
    from grader.labs import load_lab_dir

    monkeypatch.delenv("CKS_LABS_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    load_lab_dir.cache_clear()
    assert run(cks, "exam", "start", "--seed", "x").exit_code == 0
    ws = tmp_path / "cks-workspace" / "exam" / "lab8"
    run(grade_cmd, "lab8", "-w", str(ws))
    assert not (ws / ".cks").exists()
    assert "0 of 6 attempted" in run(cks, "exam", "status").output  # lab8: a row per question


def test_grade_during_a_timed_exam_gives_no_hint_text_nor_pointers(tmp_path, monkeypatch):
    """`cks hint` refuses during the exam, so `grade --hints` must too, and no row may point to it."""
    from grader.labs import load_lab_dir

    monkeypatch.delenv("CKS_LABS_DIR", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.chdir(tmp_path)
    load_lab_dir.cache_clear()
    assert run(cks, "exam", "start", "--seed", "x").exit_code == 0
    ws = tmp_path / "cks-workspace" / "exam" / "lab8"
    r = run(grade_cmd, "lab8", "-w", str(ws), "--hints")
    assert r.exit_code == 2 and "no hints during the timed exam" in r.output and "Score:" not in r.output
    r = run(grade_cmd, "lab8", "-w", str(ws))  # results (and hints) come at the end, as announced
    assert r.exit_code == 2 and "still running" in r.output and "Score:" not in r.output
    assert "cks hint" not in r.output and "Hints come" not in r.output
    shown = run(cks, "show", "lab8", "-w", str(ws)).output
    assert "cks hint" not in shown and "no hints and no solutions" in shown
    assert run(cks, "exam", "finish").exit_code in (0, 1)
    assert "hint: cks hint lab8" in run(grade_cmd, "lab8", "-w", str(ws)).output  # handed in: hints again


def test_show_breaks_a_long_inline_command_only_between_its_words(tmp_path, monkeypatch):
    """lab5's `cks pods check .../web-immutable.yaml --profile lab5` is longer than a list item's line at 80
    columns: it may wrap between its words, never inside one ("--profil" / "e lab5")."""
    from grader import variants
    from grader.labs import get_lab, load_lab_dir

    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("CKS_LABS_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    load_lab_dir.cache_clear()
    for lab in [d.name.split("-")[0] for d in sorted((REPO / "labs").glob("lab*-*"))]:
        flowing = " ".join(run(cks, "show", lab).output.split())  # line breaks and indents as single spaces
        readme = next((REPO / "labs").glob(f"{lab}-*/README.md")).read_text()
        readme = variants.render_text(readme, variants.values_for(get_lab(lab), None))  # as `cks show` does
        for command in re.findall(r"`((?:cks|grade) [^`]+)`", readme):
            assert " ".join(command.split()) in flowing, f"{lab}: {command!r} is cut inside a word"


def test_reset_says_one_file_not_file_s(demo):
    (demo / "mine.txt").write_text("x")
    r = run(cks, "reset", "lab90", "-w", str(demo))
    assert r.exit_code == 0 and "Replaced 1 file you had changed or added" in r.output


def test_a_problem_shared_by_every_task_is_said_once_in_the_table(tmp_path, monkeypatch):
    """A rules file Falco refuses fails lab3's three rule tasks with one message: the table gives it in full
    once and points back to it; JSON keeps every task's message whole. A "depends on t1" line is already
    short and stays as it is."""
    from grader.labs import get_lab, load_lab_dir
    from grader.workspace import materialize

    monkeypatch.delenv("CKS_LABS_DIR", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    load_lab_dir.cache_clear()
    ws = tmp_path / "ws"
    materialize(get_lab("lab3"), ws)
    rules = ws / "nodes/controlplane/etc/falco/falco_rules.local.yaml"
    rules.write_text(rules.read_text() + "- rule: x\n  condition: evt.type = open and\n")
    table = run(grade_cmd, "lab3", "-w", str(ws)).output
    assert table.count("LOAD_ERR_YAML_VALIDATE") == 1 and table.count("same problem as t1") == 2
    report = json.loads(run(grade_cmd, "lab3", "-w", str(ws), "--format", "json").output)
    assert [t["id"] for t in report["tasks"] if "LOAD_ERR_YAML_VALIDATE" in t["message"]] == [
        "t1",
        "t2",
        "t3",
    ]
    lab1 = tmp_path / "lab1"
    materialize(get_lab("lab1"), lab1)
    table = run(grade_cmd, "lab1", "-w", str(lab1)).output
    assert "same problem as" not in table and table.count("depends on t1") >= 2


def test_grade_in_an_exam_folder_never_suggests_starting_a_lab_there(tmp_path, monkeypatch):
    """Issue 12 item 4: `grade lab2` inside the exam folder used to say "start one with `cks start lab2`",
    which `cks start` then refuses (workspaces never go inside an exam folder)."""
    from grader.labs import load_lab_dir

    monkeypatch.delenv("CKS_LABS_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    load_lab_dir.cache_clear()
    assert run(cks, "exam", "start", "--seed", "x").exit_code == 0
    monkeypatch.chdir(tmp_path / "cks-workspace" / "exam")
    r = run(grade_cmd, "lab2")
    assert r.exit_code == 2 and "start one with `cks start lab2`" not in r.output
    assert "outside it" in r.output and "--workspace DIR" in r.output
    assert run(cks, "start", "lab2").exit_code == 2  # what the old message suggested is indeed refused


def test_a_workspace_folder_holding_another_lab_is_not_this_labs_record(tmp_path, monkeypatch):
    """`cks start lab1 -w cks-workspace/lab5` (or a renamed folder): `cks progress` used to show lab1's score
    and failing tasks as lab5's, and `cks hint lab5`/`cks solution lab5` wrote lab5's record into lab1's
    workspace (and drew lab5's values from lab1's seed)."""
    from grader.labs import load_lab_dir

    monkeypatch.delenv("CKS_LABS_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    load_lab_dir.cache_clear()
    ws = tmp_path / "cks-workspace" / "lab5"
    assert run(cks, "start", "lab1", "-w", str(ws), "--seed", "zed").exit_code == 0
    run(grade_cmd, "lab1", "-w", str(ws))
    rows = {r["lab"]: r for r in json.loads(run(cks, "progress", "-f", "json").output)}
    assert rows["lab5"]["workspace"] is None and rows["lab5"]["best_score"] is None
    assert "holds lab1" in rows["lab5"]["next"]
    assert run(cks, "hint", "lab5", "t1").exit_code == 0
    assert run(cks, "solution", "lab5", "--yes").exit_code == 0
    assert not (ws / ".cks" / "hints.json").exists()
