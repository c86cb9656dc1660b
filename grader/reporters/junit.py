"""JUnit XML in the shape pytest writes (xunit2), so CI systems and LMS importers read it.

One <testcase> per task: classname = lab id, name = "t2: title"; <failure>/<error>/<skipped> children with
the message as attribute and evidence as text (and the hint, when asked for); score and max score in the
suite's <properties>.
"""

from __future__ import annotations

import re
import socket
import xml.etree.ElementTree as ET
from datetime import datetime

from grader.results import Report, Status, TaskResult


def render_junit(report: Report, *, hints: bool = False) -> str:
    suites = ET.Element("testsuites", name="cks grader")
    suite = ET.SubElement(
        suites,
        "testsuite",
        {
            "name": report.lab,
            "errors": str(report.count(Status.ERROR)),
            "failures": str(report.count(Status.FAIL)),
            "skipped": str(report.count(Status.SKIP)),
            "tests": str(len(report.tasks)),
            "time": "0.000",
            "timestamp": datetime.now().isoformat(timespec="seconds"),
            "hostname": socket.gethostname(),
        },
    )
    _add_properties(suite, report)
    for task in report.tasks:
        _add_testcase(suite, report.lab, task, hints)
    ET.indent(suites)
    xml = ET.tostring(suites, encoding="unicode")
    # characters XML 1.0 cannot hold (a learner's value with ESC or NUL, a file name that is not UTF-8) are
    # written as text, \xNN / \udcNN: ElementTree would emit them raw and every JUnit reader would refuse the
    # file
    xml = _NOT_XML.sub(
        lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}", xml
    )
    return '<?xml version="1.0" encoding="utf-8"?>\n' + xml + "\n"


def _add_properties(suite: ET.Element, report: Report) -> None:
    props = ET.SubElement(suite, "properties")
    for name, value in (
        ("title", report.title),
        ("target", report.target),
        ("score", f"{report.score:g}"),
        ("max_score", f"{report.max_score:g}"),
        ("lab_version", report.lab_version),
        ("seed", report.seed or ""),
    ):
        ET.SubElement(props, "property", name=name, value=str(value))


def _add_testcase(suite: ET.Element, lab: str, task: TaskResult, hints: bool) -> None:
    """One <testcase>: the outcome as a failure/error/skipped child, evidence (and the hint) as its text."""
    case = ET.SubElement(suite, "testcase", classname=lab, name=f"{task.id}: {task.title}", time="0.000")
    body = "\n".join(
        [f"{ev.where}: expected {ev.expected!s}, actual {ev.actual!s}" for ev in task.evidence]
        + ([f"hint: {task.hint}"] if hints and task.hint else [])
    )
    points = f"{task.points:g}/{task.max_points:g} points"
    if task.status is Status.FAIL:
        # a task failed because of the task it requires: its root cause is another case
        kind = "DependencyFailure" if task.blocked_by else "GradingFailure"
        el = ET.SubElement(case, "failure", message=f"{task.message} ({points})", type=kind)
        el.text = body
    elif task.status is Status.ERROR:
        el = ET.SubElement(case, "error", message=f"could not check: {task.message}", type="GradingError")
        el.text = body
    elif task.status is Status.SKIP:
        ET.SubElement(case, "skipped", type="pytest.skip", message=task.message)
    ET.SubElement(case, "system-out").text = f"{points}: {task.message}"


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
