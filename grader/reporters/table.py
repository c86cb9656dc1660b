"""The learner's view: a rich table with status, points and a one-line reason.

A failing task with a hint says how to ask for it (`cks hint LAB TASK`, one tier at a time); the hint text
itself is printed only with ``hints=True`` (`grade --hints`).
"""

from __future__ import annotations

import io
import os

from rich.console import Console, Group
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from grader.results import Report, Status

_STYLE = {Status.PASS: "green", Status.FAIL: "red", Status.ERROR: "yellow", Status.SKIP: "dim"}
_MARK = {Status.PASS: "PASS", Status.FAIL: "FAIL", Status.ERROR: "ERROR", Status.SKIP: "SKIP"}


def render_table(
    report: Report,
    *,
    verbose: bool = False,
    color: bool | None = None,
    width: int | None = None,
    hints: bool = False,
    hint_command: str | None = None,
) -> str:
    from grader.text import printable

    if color is None:
        color = "NO_COLOR" not in os.environ
    ask = hint_command or f"cks hint {report.lab} {{task}}"
    buf = io.StringIO()
    console = Console(
        file=buf,
        force_terminal=color,
        no_color=not color,
        width=width or terminal_width(),
        highlight=False,
        soft_wrap=False,
    )
    seed = f" · seed {report.seed}" if report.seed else ""
    console.print(
        Text.assemble(
            (f"{report.lab}", "bold"), printable(f" · {report.title} · target: {report.target}{seed}")
        )
    )
    console.print(_task_table(report, verbose=verbose, hints=hints, ask=ask))
    console.print(_score_line(report))
    _print_advice(console, report, verbose=verbose, hints=hints)
    # rich pads grid cells to their width: drop the trailing blanks so files and diffs stay clean
    return "".join(line.rstrip() + "\n" for line in buf.getvalue().splitlines())


def _task_table(report: Report, *, verbose: bool, hints: bool, ask: str) -> Table:
    """One row per task: id, status, points, title and reason (and the evidence rows with -v)."""
    from grader.text import printable

    table = Table(show_lines=False, expand=False, pad_edge=False)
    table.add_column("Task", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    table.add_column("Points", justify="right", no_wrap=True)
    table.add_column("Title / reason", overflow="fold")
    first_said: dict[str, str] = {}  # a failing reason -> the task that gave it first (JSON keeps each whole)
    for t in report.tasks:
        message = t.message
        if t.status in (Status.FAIL, Status.ERROR) and not message.startswith("depends on "):  # already short
            earlier = first_said.setdefault(message, t.id)
            if earlier != t.id:  # one broken or missing file fails many tasks alike: say it once
                message = f"same problem as {earlier}"
        reason = Text.assemble(
            (printable(t.title), "bold"),
            "\n",
            (printable(message), "" if t.status is Status.PASS else _STYLE[t.status]),
        )
        if t.status is Status.FAIL and t.hint and not hints:
            reason.append(f"\nhint: {ask.format(task=t.id)}", style="dim")
        table.add_row(
            t.id, Text(_MARK[t.status], style=_STYLE[t.status]), f"{t.points:g}/{t.max_points:g}", reason
        )
        if verbose and t.evidence:
            for ev in t.evidence:
                table.add_row("", "", "", _evidence(ev))
    return table


def _score_line(report: Report) -> Text:
    from grader.text import plural

    score = Text(f"Score: {report.score:g}/{report.max_score:g}", style="bold")
    if report.skipped_points:
        need = "needs" if report.skipped_points == 1 else "need"
        score.append(f"  ({plural(report.skipped_points, 'more point')} {need} a live cluster)", style="dim")
    return score


def _print_advice(console: Console, report: Report, *, verbose: bool, hints: bool) -> None:
    """After the score: what an error means, the hints (with --hints) or how they come, and -v."""
    from grader.text import printable

    errors = report.count(Status.ERROR)
    if errors:
        verb = "task could" if errors == 1 else "tasks could"
        console.print(
            Text(
                f"{errors} {verb} not be checked: that is an environment problem, not a wrong "
                "answer. Fix what the message says and grade again.",
                style="yellow",
            )
        )
    todo = [t for t in report.tasks if t.status is Status.FAIL and t.hint]
    if todo and hints:
        console.print(Text("Hints", style="bold"))
        grid = Table.grid(padding=(0, 1))  # a grid, so a long hint wraps under itself, not under the task id
        grid.add_column(no_wrap=True)
        grid.add_column(overflow="fold")
        for t in todo:
            grid.add_row(Text(f"{t.id}:", style="bold"), Text(printable(t.hint)))  # Text: no markup
        console.print(Padding(grid, (0, 0, 0, 2)))
    if todo and not hints:
        console.print(
            Text(
                "Hints come one tier at a time: a nudge, where to look, then the shape of the answer.",
                style="dim",
            )
        )
    if todo and not verbose:
        console.print(Text("Run with -v to see the evidence (where, expected, actual).", style="dim"))


def _evidence(ev) -> Padding:
    """Where, then expected and actual as a grid, indented: a wrapped value stays under its column."""
    from grader.text import printable

    where = Text(printable(str(ev.where)), style="cyan", overflow="fold")
    if ev.expected is None and ev.actual is None:
        return Padding(where, (0, 0, 0, 2))
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row("expected:", Text(printable(str(ev.expected))))
    grid.add_row("actual:", Text(printable(str(ev.actual))))
    return Padding(Group(where, Padding(grid, (0, 0, 0, 2))), (0, 0, 0, 2))


def terminal_width() -> int:
    """The terminal's width (COLUMNS first, as shells and rich do), within 40..140; 110 when not a
    terminal."""
    import shutil

    columns = shutil.get_terminal_size(fallback=(0, 0)).columns
    if columns <= 0:
        return 110
    return max(40, min(columns, 140))
