"""`cks exam start|status|finish`: a timed mock exam (see docs/exam.md).

The clock comes from ``ctx.obj["clock"]`` when a caller (a test) passes one, else the system's UTC time.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from grader.cli import CONTEXT, EXIT_FAILED, EXIT_OK, fail_usage
from grader.cli.options import format_option, seed_option, verbose_option
from grader.text import plural

if TYPE_CHECKING:
    from grader.exam import Exam, Question

DIR_OPTION = click.option(
    "--dir",
    "exam_dir",
    metavar="DIR",
    default=None,
    help="Exam directory (default $CKS_EXAM_DIR or ./cks-workspace/exam).",
)


def _clock(ctx: click.Context):
    from grader.exam import utc_now

    obj = ctx.find_root().obj
    return obj["clock"] if isinstance(obj, dict) and "clock" in obj else utc_now


def _dir(exam_dir: str | None) -> Path:
    """--dir, else $CKS_EXAM_DIR, else the exam this directory is in (the nearest exam.yaml upwards, as git
    finds .git, so `cks exam status` works from inside the exam or one of its questions), else the default."""
    from grader import fsutil
    from grader.exam import DEFAULT_DIR, STATE_FILE

    if exam_dir or os.environ.get("CKS_EXAM_DIR"):
        return Path(exam_dir or os.environ["CKS_EXAM_DIR"])
    found = fsutil.find_up(Path.cwd(), STATE_FILE)
    return found if found is not None else DEFAULT_DIR


def _refuse_nesting(exam_dir: str | None) -> None:
    """An exam is never started inside a lab's workspace (its questions would nest in the lab's files)."""
    from grader import fsutil
    from grader.exam import STATE_FILE

    if exam_dir or os.environ.get("CKS_EXAM_DIR") or fsutil.find_up(Path.cwd(), STATE_FILE) is not None:
        return  # inside an exam: `start` itself says that one exists
    inside = fsutil.find_up(Path.cwd(), "cks.yaml")
    if inside is not None:
        fail_usage(
            f"{inside} is a lab's workspace: start the exam outside it, e.g. `cd {inside.parent} && "
            "cks exam start`, or choose a folder with --dir DIR"
        )


def _color() -> bool:
    return "NO_COLOR" not in os.environ and sys.stdout.isatty()


def _left(td: timedelta) -> str:
    secs = int(td.total_seconds())
    h, rem = divmod(secs, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h {m:02d}m" if h else f"{m}m {s:02d}s"


@click.group(
    "exam",
    context_settings=CONTEXT,
    help="""A timed mock exam: several labs under one clock.

\b
  cks exam start                      lab8 (the mock exam), its own time limit, a fresh seed
  cks exam start --labs lab1,lab3,lab5 --minutes 60 --seed alice
  cks exam status                     time left and which questions you have touched (no results)
  cks exam finish                     grade everything: score, pass mark 67%, feedback per task

The deadline is stored as an absolute UTC time in the exam directory, so a closed terminal does not stop
the clock. Once time is up, any `cks exam` command grades the exam; work after the deadline is reported.
Exit codes of finish: 0 passed (67% or more), 1 not passed, 2 usage error.
""",
)
def exam_group() -> None:
    pass


@exam_group.command(
    "start", context_settings=CONTEXT, short_help="Create a workspace per question and start the clock."
)
@click.option("--labs", metavar="LIST", help="Comma-separated labs (default: lab8, the mock exam).")
@click.option(
    "--minutes", type=click.IntRange(1, 24 * 60), help="Time limit (default: the labs' estimates added up)."
)
@seed_option("Variant seed (default: a fresh random one, shown).")
@click.option("--force", is_flag=True, help="Discard an existing exam in the directory and start afresh.")
@DIR_OPTION
@click.pass_context
def start_cmd(
    ctx: click.Context,
    labs: str | None,
    minutes: int | None,
    seed: str | None,
    force: bool,
    exam_dir: str | None,
) -> None:
    """Start the exam: create a workspace per question and start the clock."""
    from grader import exam
    from grader.labs import LabError, get_lab

    _refuse_nesting(exam_dir)
    base, now = _dir(exam_dir), _clock(ctx)
    try:
        due = exam.finish_if_due(base, now)
    except exam.ExamError:
        due = None
    if due is not None and not force:
        click.echo("The previous exam's time is up; here is its result.\n")
        _print_result(due)
    ids = [x.strip() for x in labs.split(",") if x.strip()] if labs else exam.default_labs()
    try:
        chosen = [get_lab(x) for x in ids]
        state = exam.start(chosen, base=base, minutes=minutes, seed=seed, now=now, force=force)
    except (LabError, exam.ExamError) as exc:
        fail_usage(str(exc))
    click.echo(
        f"Exam started: {plural(len(state.labs), 'question')}, {plural(state.minutes, 'minute')}, "
        f"seed {state.seed}."
    )
    click.echo(f"Deadline: {state.deadline:%Y-%m-%d %H:%M:%S} UTC.")
    for lab_id in state.labs:
        ws = state.workspace(lab_id)
        click.echo(f"  {lab_id}: workspace {ws}  (read it with `cks show {lab_id} --workspace {ws}`)")
    click.echo("Check the clock with `cks exam status`; hand in with `cks exam finish`.")


@exam_group.command(
    "status", context_settings=CONTEXT, short_help="Time left and which questions you have touched."
)
@format_option("table", "json")
@DIR_OPTION
@click.pass_context
def status_cmd(ctx: click.Context, fmt: str, exam_dir: str | None) -> None:
    """Time left and which questions are attempted (changed since the start). No results until the end."""
    from grader import exam

    base, now = _dir(exam_dir), _clock(ctx)
    try:
        state = exam.load(base)
        if state.finished is None and state.is_over(now()):
            click.echo("Time is up. The exam has been graded.\n")
            result = exam.finish(state, now)
            _print_result(result, fmt)
            sys.exit(EXIT_OK if result.passed else EXIT_FAILED)
        if state.finished is not None:
            click.echo(f"The exam finished at {state.finished:%H:%M:%S} UTC; its result:\n")
            _print_result(exam.finish(state, now), fmt)
            return
        tries = exam.questions(state)
    except exam.ExamError as exc:
        fail_usage(str(exc))
    left = state.time_left(now())
    if fmt == "json":
        click.echo(_status_json(state, left, tries))
    else:
        _print_status(state, left, tries)


def _status_json(state: Exam, left: timedelta, tries: list[Question]) -> str:
    return json.dumps(
        {
            "deadline": f"{state.deadline:%Y-%m-%dT%H:%M:%SZ}",
            "seconds_left": int(left.total_seconds()),
            "questions": [
                {
                    "lab": a.lab,
                    "question": a.id,
                    "title": a.title,
                    "points": a.points,
                    "attempted": a.attempted,
                    "changed_files": a.changed,
                }
                for a in tries
            ],
        },
        indent=2,
    )


def _print_status(state: Exam, left: timedelta, tries: list[Question]) -> None:
    """Time left, then one row per question: attempted or not, how many files changed (never a result)."""
    from rich.console import Console
    from rich.table import Table

    console = Console(no_color=not _color(), highlight=False)
    console.print(
        f"[bold]Time left: {_left(left)}[/bold] (deadline {state.deadline:%H:%M:%S} UTC, "
        f"{state.minutes} minutes in all) · seed {state.seed}"
    )
    table = Table("Question", "Title", "Points", "Attempted", "Files changed")
    many = len({a.lab for a in tries}) > 1
    for a in tries:
        name = f"{a.lab} {a.id}" if many and a.id != a.lab else a.id
        table.add_row(name, a.title, f"{a.points:g}", "yes" if a.attempted else "no", str(len(a.changed)))
    console.print(table)
    console.print(
        f"{sum(a.attempted for a in tries)} of {len(tries)} attempted. Results come at `cks exam finish`."
    )


@exam_group.command(
    "finish", context_settings=CONTEXT, short_help="Hand in: grade every question against the pass mark."
)
@format_option("table", "json")
@verbose_option()
@DIR_OPTION
@click.pass_context
def finish_cmd(ctx: click.Context, fmt: str, verbose: bool, exam_dir: str | None) -> None:
    """Hand in: grade every question and show the score against the 67% pass mark."""
    from grader import exam

    try:
        result = exam.finish(exam.load(_dir(exam_dir)), _clock(ctx))
    except exam.ExamError as exc:
        fail_usage(str(exc))
    _print_result(result, fmt, verbose)
    sys.exit(EXIT_OK if result.passed else EXIT_FAILED)


def _print_result(result, fmt: str = "table", verbose: bool = False) -> None:
    from grader.exam import PASS_MARK

    if fmt == "json":
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    from grader.reporters import render

    for report in result.reports:
        # after hand-in the feedback teaches: each missed task's hint, the shape of the answer
        click.echo(render(report, "table", verbose=verbose, color=_color(), hints=True), nl=False)
        click.echo()
    for p in result.problems:
        click.echo(f"Problem: {p}")
    if result.late:
        more = f" (and {len(result.late) - 5} more)" if len(result.late) > 5 else ""
        click.echo(
            f"Changed after the deadline (graded as found, but note it): {', '.join(result.late[:5])}{more}"
        )
    verdict = "PASSED" if result.passed else "NOT PASSED"
    spent = result.exam.finished - result.exam.started if result.exam.finished else None
    click.echo(
        f"Exam score: {result.score:g}/{result.max_score:g} ({result.percent:g}%), pass mark "
        f"{PASS_MARK * 100:.0f}%: {verdict}" + (f" · time used {_left(spent)}" if spent else "")
    )
