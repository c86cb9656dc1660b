"""Render a :class:`grader.results.Report`: table (terminal), json (stable, documented), junit (pytest's
shape).

Hint text appears only when asked for (``hints=True``, `grade --hints`); by default a failing task says
that a hint exists and how to ask for it (``hint_command``, e.g. ``cks hint lab1 {task}``).
"""

from __future__ import annotations

from grader.results import Report

FORMATS = ("table", "json", "junit")


def render(
    report: Report,
    fmt: str,
    *,
    verbose: bool = False,
    color: bool | None = None,
    hints: bool = False,
    hint_command: str | None = None,
) -> str:
    if fmt == "json":
        from grader.reporters.json_report import render_json

        return render_json(report, hints=hints)
    if fmt == "junit":
        from grader.reporters.junit import render_junit

        return render_junit(report, hints=hints)
    from grader.reporters.table import render_table

    return render_table(report, verbose=verbose, color=color, hints=hints, hint_command=hint_command)
