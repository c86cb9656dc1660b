"""`cks falco validate|test|explain` and the Falco checks, as a learner uses them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader.cli.falco import falco_group

GOOD = """
- rule: Shadow file read in container
  desc: d
  condition: open_read and container and fd.name in (/etc/shadow, /etc/gshadow)
  output: "%evt.time,%container.id,%container.name,%user.name,%proc.cmdline"
  priority: WARNING
"""

EVENTS = """
- _name: cat reads /etc/shadow in a container
  evt.type: openat
  evt.rawtime: 1741082461000000001
  evt.arg.flags: O_RDONLY
  fd.name: /etc/shadow
  proc.name: cat
  proc.args: [/etc/shadow]
  user.name: root
  container.id: 3ad7b26ded6d
  container.name: web
- _name: the same on the host
  evt.type: openat
  evt.arg.flags: O_RDONLY
  fd.name: /etc/shadow
  proc.name: cat
- _name: broken
  evt.type: no_such_syscall
"""


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name, text in {
        "good.yaml": GOOD,
        "bad.yaml": GOOD.replace("and container", "and contaner"),
        "events.yaml": EVENTS,
    }.items():
        out[name] = tmp_path / name
        out[name].write_text(text)
    return out


def run(*args: str):
    return CliRunner().invoke(falco_group, [str(a) for a in args], catch_exceptions=False)


def test_validate_ok_and_invalid(files) -> None:
    ok = run("validate", files["good.yaml"])
    assert ok.exit_code == 0 and ok.output.strip() == f"{files['good.yaml']}: Ok"
    bad = run("validate", files["bad.yaml"])
    assert bad.exit_code == 1
    assert f"{files['bad.yaml']}: Invalid" in bad.output
    assert (
        "LOAD_ERR_VALIDATE (Error validating rule/macro/list/exception objects): "
        "Undefined macro 'contaner' used in filter." in bad.output
    )
    assert "^" in bad.output  # the caret under the offending text


def test_validate_without_default_needs_the_macros(files) -> None:
    res = run("validate", "--no-default", files["good.yaml"])
    assert res.exit_code == 1 and "Undefined macro 'open_read'" in res.output


def test_validate_json(files) -> None:
    res = run("validate", "--format", "json", files["bad.yaml"])
    doc = json.loads(res.output)
    (entry,) = doc["falco_load_results"]
    assert entry["successful"] is False and entry["errors"][0]["code"] == "LOAD_ERR_VALIDATE"


def test_test_lists_firing_rules_and_alert_lines(files) -> None:
    res = run("test", files["good.yaml"], "--events", files["events.yaml"])
    assert res.exit_code == 0, res.output
    out = res.output
    assert "event 1 (cat reads /etc/shadow in a container): 2 rules fire" in out
    assert "Shadow file read in container [Warning]" in out
    assert "10:01:01.000000001: Warning 10:01:01.000000001,3ad7b26ded6d,web,root,cat /etc/shadow" in out
    assert (
        "event 2 (the same on the host)" in out
        and "Shadow file read in container" not in out.split("event 2")[1].split("event 3")[0]
    )
    assert "event 3 (broken): not a usable event: unknown event type 'no_such_syscall'" in out


def test_test_json_and_first_match(files) -> None:
    res = run(
        "test",
        files["good.yaml"],
        "--events",
        files["events.yaml"],
        "--format",
        "json",
        "--rule-matching",
        "first",
    )
    doc = json.loads(res.output)
    assert doc[0]["rules"] == ["Read sensitive file untrusted"]  # Falco emits the default file's rule first
    assert doc[1]["rules"] == ["Read sensitive file untrusted"]


def test_test_refuses_rules_that_do_not_load(files) -> None:
    res = run("test", files["bad.yaml"], "--events", files["events.yaml"])
    assert res.exit_code == 1 and "Falco would refuse to start" in res.output


def test_explain_rule_macro_list_and_typo(files) -> None:
    res = run("explain", "Shadow file read in container", "-r", files["good.yaml"])
    assert "evt.type in (open, openat, openat2)" in res.output and "container.id != host" in res.output
    assert "event types: open, openat, openat2" in res.output
    assert "fd.name in (/etc/shadow, /etc/gshadow)" in res.output
    assert "(evt.type in (execve, execveat))" in run("explain", "spawned_process").output
    assert "items: ash, bash" in run("explain", "shell_binaries").output
    typo = run("explain", "spawned_proces")
    assert typo.exit_code == 1 and "did you mean 'spawned_process'" in typo.output


# ---- checks -------------------------------------------------------------------------------------------


def _ctx(tmp_path: Path, log: str):
    from grader.checks import CheckContext
    from grader.labs import get_lab
    from grader.snapshot import Snapshot

    path = tmp_path / "nodes/controlplane/opt/course/lab4/falco.log"
    path.parent.mkdir(parents=True)
    path.write_text(log)
    lab = get_lab("lab4")
    return CheckContext(Snapshot(tmp_path), lab, lab.tasks[0], live=True)


def _line(t: str, cid: str = "3ad7b26ded6d") -> str:
    return f"{t},{cid},app,root"


@pytest.mark.parametrize(
    ("log", "ok", "words"),
    [
        (
            "\n".join(
                [_line("10:00:00.000000001"), _line("10:00:15.500000000"), _line("10:00:31.000000000")]
            ),
            True,
            "31 s",
        ),
        ("\n".join([_line("23:59:50.000000000"), _line("00:00:25.000000000")]), True, "35 s"),
        (
            "\n".join([_line("10:00:00.000000001"), _line("10:00:20.000000000")]),
            False,
            "capture for at least 30 s",
        ),
        # what `falco -M 30 ... | grep` writes: Falco's own "<time>: <Priority> " before the output
        # (issue 10 item 5)
        (
            "10:00:00.000000001: Critical 10:00:00.000000001,3ad7b26ded6d,app,root\n"
            + _line("10:00:40.000000000"),
            True,
            "40 s",
        ),
        (
            "10:00:00.000000001: Critical shadow 10:00:00.000000001,3ad7b26ded6d,app,root\n"
            + _line("10:00:40.000000000"),
            False,
            "do not have the format",
        ),
        (
            _line("10:00:00.000000001", "host") + "\n" + _line("10:00:40.000000000"),
            False,
            "do not have the format",
        ),
        ("", False, "is empty"),
    ],
)
def test_capture_log(tmp_path: Path, log: str, ok: bool, words: str) -> None:
    from grader.checks.falco import capture_log
    from grader.results import Status

    out = capture_log(_ctx(tmp_path, log), path="/opt/course/lab4/falco.log")
    assert (out.status is Status.PASS) == ok, out.message
    assert words in out.message


def test_offenders_come_from_the_starting_state() -> None:
    from grader.checks.falco import offenders_from
    from grader.labs import get_lab
    from grader.workspace import pristine

    lab = get_lab("lab4")
    start = pristine(lab, None)
    found = offenders_from(start, "shop", "controlplane", "/opt/course/lab4/alerts-earlier.log")
    assert sorted(found) == ["notifier", "orders", "reports"]  # the host alert maps to no Pod
