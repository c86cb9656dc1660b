"""Render a :class:`grader.results.Report`: table (terminal), json (stable, documented), junit (pytest's shape)."""

from __future__ import annotations

from grader.results import Report

FORMATS = ("table", "json", "junit")


def render(report: Report, fmt: str, *, verbose: bool = False, color: bool | None = None) -> str:
    if fmt == "json":
        from grader.reporters.json_report import render_json

        return render_json(report)
    if fmt == "junit":
        from grader.reporters.junit import render_junit

        return render_junit(report)
    from grader.reporters.table import render_table

    return render_table(report, verbose=verbose, color=color)
