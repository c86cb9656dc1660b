"""The learner's view: a rich table with status, points and a one-line reason; hints for what failed."""

from __future__ import annotations

import io
import os

from rich.console import Console
from rich.table import Table
from rich.text import Text

from grader.results import Report, Status

_STYLE = {Status.PASS: "green", Status.FAIL: "red", Status.ERROR: "yellow", Status.SKIP: "dim"}
_MARK = {Status.PASS: "PASS", Status.FAIL: "FAIL", Status.ERROR: "ERROR", Status.SKIP: "SKIP"}


def render_table(report: Report, *, verbose: bool = False, color: bool | None = None, width: int | None = None) -> str:
    if color is None:
        color = "NO_COLOR" not in os.environ
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=color, no_color=not color, width=width or _width(),
                      highlight=False, soft_wrap=False)
    seed = f" · seed {report.seed}" if report.seed else ""
    console.print(Text.assemble((f"{report.lab}", "bold"), f" · {report.title} · target: {report.target}{seed}"))
    table = Table(show_lines=False, expand=False, pad_edge=False)
    table.add_column("Task", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    table.add_column("Points", justify="right", no_wrap=True)
    table.add_column("Title / reason", overflow="fold")
    for t in report.tasks:
        reason = Text(t.title, style="bold")
        reason.append("\n" + t.message, style="" if t.status is Status.PASS else _STYLE[t.status])
        table.add_row(t.id, Text(_MARK[t.status], style=_STYLE[t.status]), f"{t.points:g}/{t.max_points:g}", reason)
        if verbose and t.evidence:
            for ev in t.evidence:
                line = Text(f"  {ev.where}", style="cyan")
                if ev.expected is not None or ev.actual is not None:
                    line.append(f"\n    expected: {ev.expected}\n    actual:   {ev.actual}")
                table.add_row("", "", "", line)
    console.print(table)
    score = Text(f"Score: {report.score:g}/{report.max_score:g}", style="bold")
    if report.skipped_points:
        score.append(f"  ({report.skipped_points:g} more points need a live cluster)", style="dim")
    console.print(score)
    errors = report.count(Status.ERROR)
    if errors:
        console.print(Text(f"{errors} task(s) could not be checked: that is an environment problem, not a wrong "
                           "answer. Fix what the message says and grade again.", style="yellow"))
    todo = [t for t in report.tasks if t.status is Status.FAIL and t.hint]
    if todo:
        console.print(Text("Hints", style="bold"))
        for t in todo:
            console.print(Text.assemble((f"  {t.id}: ", "bold"), t.hint))
        if not verbose:
            console.print(Text("Run with -v to see the evidence (where, expected, actual).", style="dim"))
    return buf.getvalue()


def _width() -> int:
    try:
        return max(80, min(os.get_terminal_size().columns, 140))
    except OSError:
        return 110
