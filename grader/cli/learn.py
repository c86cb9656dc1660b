"""`cks hint`, `cks solution`, `cks progress`: help on request, recorded in the learner's workspace.

Hints come in three tiers (a nudge toward the concept, where to look, the shape of the answer), one per
request; the reference solution only after a confirmation. Both are recorded in ``.cks/hints.json`` of the
workspace (see :mod:`grader.progress`), which `cks submit` bundles carry to the instructor.
"""

from __future__ import annotations

import json
import re
import shutil
import textwrap
from pathlib import Path
from typing import Any

import click

from grader.cli import (
    CONTEXT,
    check_workspace,
    color,
    fail_usage,
    load_lab,
    recorded_lab,
    render_markdown,
    variant_values,
    workspace_for,
    ws_flag,
)
from grader.cli.options import format_option, lab_argument, seed_option, workspace_option
from grader.text import plural


def _width() -> int:
    return max(40, min(shutil.get_terminal_size((100, 24)).columns, 100))


def _fill(text: str, indent: str) -> str:
    """Wrap prose to the terminal, but never inside a `command`: it stays on one line, ready to copy."""
    keep = "\ue000"  # a private-use character, not whitespace: textwrap does not break there
    text = re.sub(r"`([^`\n]+)`", lambda m: "`" + m.group(1).replace(" ", keep) + "`", text)
    return textwrap.fill(
        text,
        _width(),
        initial_indent=indent,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    ).replace(keep, " ")


def _record_dir(lab, workspace: str | None) -> Path | None:
    """The workspace that keeps the record, or None when there is none (hints still show)."""
    from grader.snapshot import META_FILE

    ws = workspace_for(lab, workspace)
    if workspace:  # named on purpose: it must be this lab's workspace
        check_workspace(lab, ws)
    if not (ws / META_FILE).is_file() or recorded_lab(ws, lab.id) not in (lab.id, None):
        return None  # none, or another lab's (cks-workspace/lab5 started as lab1): not this lab's record
    return ws


def exam_in_progress(ws: Path | None) -> bool:
    """Whether ``ws`` is a question of a timed mock exam that is still running."""
    from grader import exam

    if ws is None or not (ws.parent / exam.STATE_FILE).is_file():
        return False
    try:
        state = exam.load(ws.parent)
    except exam.ExamError:
        return False
    return state.finished is None and not state.is_over(exam.utc_now())


def _refuse_during_exam(ws: Path | None, what: str) -> None:
    """A timed mock exam is taken as the real one: no hints, no solutions until it is handed in."""
    if exam_in_progress(ws):
        fail_usage(
            f"no {what} during the timed exam, as in the real one; `cks exam finish` hands it in and shows "
            "each task's feedback with its hint"
        )


# ---- cks hint -------------------------------------------------------------------------------------------


@click.command("hint", context_settings=CONTEXT, short_help="A task's hint, one tier at a time.")
@lab_argument
@click.argument("task", required=False)
@click.option(
    "--tier",
    type=click.IntRange(1, 3),
    metavar="N",
    help="Show tiers 1..N now: 1 a nudge, 2 where to look, 3 the shape of the answer.",
)
@workspace_option("The workspace whose variant and record to use (default ./cks-workspace/LAB).")
def hint_cmd(lab: str, task: str | None, tier: int | None, workspace: str | None) -> None:
    """Give TASK's next hint tier, or list LAB's tasks with the hints you have seen.

    \b
    Each task has three tiers, given one per request:
      1  a nudge toward the concept
      2  where to look: the doc section, the command to explore with
      3  the shape of the answer
    The tiers you have seen are shown again with the new one, and recorded in your workspace
    (.cks/hints.json), which `cks submit` carries to your instructor.

    \b
    Examples:
      cks hint lab1            every task, with the tiers you have seen
      cks hint lab1 t4         the next tier for task t4
      cks hint lab1 t4 --tier 3
    """
    from grader import progress
    from grader.labs import LabError

    the_lab = load_lab(lab)
    values, _ = variant_values(the_lab, workspace, None)
    ws = _record_dir(the_lab, workspace)
    _refuse_during_exam(ws, "hints")
    seen = progress.tiers_seen(ws) if ws else {}
    flag = ws_flag(the_lab, ws) if ws else ""
    if not task:
        _list_hints(the_lab, seen, values, ws, flag)
        return
    try:
        the_task = the_lab.task(task)
    except LabError as exc:
        fail_usage(str(exc))
    tiers = the_task.hint_tiers
    if not tiers:
        click.echo(f"{the_task.id} has no hint.")
        return
    if tier is not None and tier not in tiers:
        fail_usage(f"{the_lab.id} {the_task.id} has hint tier(s) {', '.join(map(str, tiers))} only")
    shown_up_to = (
        tier if tier is not None else next((t for t in tiers if t > seen.get(the_task.id, 0)), tiers[-1])
    )
    _print_tiers(the_lab, the_task, values, seen.get(the_task.id, 0), shown_up_to)
    recorded = progress.record_hint(ws, the_lab.id, the_task.id, shown_up_to) if ws else False
    _print_next_step(the_lab, the_task, shown_up_to, flag, ws, recorded)


def _print_tiers(the_lab, the_task, values: dict, seen_up_to: int, shown_up_to: int) -> None:
    """The task's title, then every tier up to ``shown_up_to`` (those not seen before marked new)."""
    from grader import variants
    from grader.labs import HINT_TIERS

    title = variants.render_text(the_task.title, values)
    click.echo(f"{the_lab.id} {the_task.id} ({plural(the_task.points, 'point')}) {title}\n")
    for n in [t for t in the_task.hint_tiers if t <= shown_up_to]:
        new = " (new)" if n > seen_up_to else ""
        click.echo(f"  Hint {n} of 3, {HINT_TIERS[n - 1]}{new}:")
        click.echo(_fill(variants.render_text(the_task.hints[n - 1], values), "    ") + "\n")


def _print_next_step(the_lab, the_task, shown_up_to: int, flag: str, ws: Path | None, recorded: bool) -> None:
    """What to do after this hint (the next tier, or grading and the solution), and whether it was
    recorded."""
    from grader.labs import HINT_TIERS

    later = [t for t in the_task.hint_tiers if t > shown_up_to]
    if later:
        nxt = (
            f"`cks hint {the_lab.id} {the_task.id}{flag}` gives hint {later[0]} of 3, "
            f"{HINT_TIERS[later[0] - 1]}."
        )
        click.echo(_fill(f"Still stuck? Try it first, then {nxt}", ""))
    else:
        click.echo(
            _fill(
                f"That is the last hint. Grade again with `grade {the_lab.id}{flag}`; the reference answer "
                f"with its explanation is `cks solution {the_lab.id}{flag}`.",
                "",
            )
        )
    if ws is None:
        click.echo(
            _fill(
                f"(Not recorded: there is no workspace of {the_lab.id} here; `cks start {the_lab.id}` "
                "creates one.)",
                "",
            )
        )
    elif not recorded:
        click.echo(f"(Not recorded: {ws} cannot be written.)")


def _list_hints(lab, seen: dict[str, int], values: dict, ws: Path | None, flag: str) -> None:
    from grader import progress, variants

    last = progress.progress_record(ws).get("last", {}) if ws else {}
    statuses = last.get("tasks", {}) if isinstance(last, dict) and isinstance(last.get("tasks"), dict) else {}
    for t in lab.tasks:
        title = variants.render_text(t.title, values)
        click.echo(f"{t.id} ({plural(t.points, 'point')}) {title}")
        total = len(t.hint_tiers)
        got = len([n for n in t.hint_tiers if n <= seen.get(t.id, 0)])
        status = statuses.get(t.id)
        graded = f"last graded: {status}; " if isinstance(status, str) else ""
        if got >= total or status == "pass":
            click.echo(
                f"  {graded}hints seen: {'all ' + str(total) if got >= total else f'{got} of {total}'}"
            )
        else:
            click.echo(f"  {graded}hints seen: {got} of {total} · next: cks hint {lab.id} {t.id}{flag}")
    click.echo()
    click.echo(
        _fill(
            "Each `cks hint LAB TASK` gives the next tier: 1 a nudge toward the concept, 2 where to look, "
            "3 the shape of the answer.",
            "",
        )
    )


# ---- cks solution ------------------------------------------------------------------------------------------


@click.command(
    "solution", context_settings=CONTEXT, short_help="The reference answer and why, after you confirm."
)
@lab_argument
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@workspace_option("The workspace whose variant and record to use (default ./cks-workspace/LAB).")
@seed_option("Show the answer for this seed's variant instead of the workspace's.")
def solution_cmd(lab: str, yes: bool, workspace: str | None, seed: str | None) -> None:
    """Show LAB's reference answer for your variant, with the explanation of why it is shaped that way.

    Try the hints first (`cks hint LAB TASK`): the answer ends the exercise. Seeing it is recorded in your
    workspace (.cks/hints.json), which `cks submit` carries to your instructor. A course install made with
    `cks dist` has no solutions.

    \b
    Examples:
      cks solution lab1          asks first, then shows the answer and its explanation
      cks solution lab1 --yes    no question (scripts)
    """
    from grader import progress, variants

    the_lab = load_lab(lab)
    src = solution_source(the_lab)
    if src is None:
        fail_usage(
            f"this install has no reference solution for {the_lab.id} (a course install made with "
            "`cks dist` leaves them out: ask your instructor)"
        )
    values, used_seed = variant_values(the_lab, workspace, seed)
    ws = _record_dir(the_lab, workspace)
    _refuse_during_exam(ws, "solutions")
    if not yes:
        question = (
            f"Show the reference answer of {the_lab.id}? It ends the exercise"
            + (", and is recorded in your workspace" if ws else "")
            + "."
        )
        try:
            sure = click.confirm(question, default=False)
        except click.Abort:  # no answer (end of input): the safe choice
            sure = False
        if not sure:
            click.echo(
                f"Not shown. `cks hint {the_lab.id} TASK` gives smaller steps; --yes skips the question."
            )
            return
    readme = src / "README.md"
    if readme.is_file():
        click.echo(render_markdown(variants.render_text(readme.read_text(), values)), nl=False)
    changes = _answer_changes(the_lab, src, values, used_seed)
    if changes:
        variant = f" (seed {used_seed})" if used_seed else " (the default variant)"
        click.echo(f"\nThe reference answer for your variant{variant}, as changes to the starting state:\n")
        for line in changes:
            click.echo(_diff_color(line) if color() else line)
    if ws is not None and not progress.record_solution(ws, the_lab.id):
        click.echo(f"(Not recorded: {ws} cannot be written.)")


def solution_source(lab) -> Path | None:
    """solutions/LAB of a source checkout, else the copy a default install ships (grader/_solutions/LAB);
    None in a course install (`cks dist` ships no solutions)."""
    from grader.labs import repo_root

    root = repo_root()
    candidates = [root / "solutions" / lab.id] if root is not None else []
    candidates.append(Path(__file__).resolve().parent.parent / "_solutions" / lab.id)
    return next((c for c in candidates if c.is_dir()), None)


def _answer_changes(lab, src: Path, values: dict, seed: str | None) -> list[str]:
    """Unified diffs from the starting state to the reference answer, file by file."""
    import difflib
    import tempfile

    from grader import variants
    from grader.solutions import apply_overlay
    from grader.workspace import pristine

    start_root = pristine(lab, seed).root
    out: list[str] = []
    with tempfile.TemporaryDirectory(prefix="cks-solution-") as tmp:
        answer = Path(tmp)
        if (src / "overlay").is_dir():
            apply_overlay(src, answer, values)  # delete.txt is read below, against the starting state
        for path in sorted(p for p in answer.rglob("*") if p.is_file()):
            rel = path.relative_to(answer).as_posix()
            before = start_root / rel
            old = _text(before) if before.is_file() else []
            new = _text(path)
            if old == new:
                continue
            out.extend(
                difflib.unified_diff(
                    old, new, f"start/{rel}" if old else "/dev/null", f"answer/{rel}", lineterm=""
                )
            )
            out.append("")
        listing = src / "delete.txt"
        if listing.is_file():
            for line in listing.read_text().splitlines():
                rel = variants.render_text(line.strip(), values)
                if rel and not rel.startswith("#"):
                    out.append(f"delete {rel}")
    return out


def _text(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return ["(binary file)"]


def _diff_color(line: str) -> str:
    if line.startswith(("+++", "---")):
        return click.style(line, bold=True)
    if line.startswith("+"):
        return click.style(line, fg="green")
    if line.startswith("-"):
        return click.style(line, fg="red")
    if line.startswith("@@"):
        return click.style(line, fg="cyan")
    return line


# ---- cks progress ------------------------------------------------------------------------------------------


@click.command(
    "progress", context_settings=CONTEXT, short_help="Every lab: best score, hints used, what next."
)
@format_option("table", "json")
def progress_cmd(fmt: str) -> None:
    """List every lab with its best score, when it was last graded, the hints and solutions you have seen,
    and what to do next. Read from the workspaces under ./cks-workspace/ (their .cks/ folders).

    \b
    Examples:
      cks progress
      cks progress --format json | jq '.[] | select(.best_score == null) | .lab'
    """
    from grader.labs import LabError, all_labs

    try:
        labs = all_labs()
    except LabError as exc:
        fail_usage(str(exc))
    rows = [_lab_progress(lab) for lab in labs]
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    _print_progress(rows)


def _lab_progress(lab) -> dict:
    from grader import progress
    from grader.snapshot import META_FILE

    ws = workspace_for(lab, None)
    other = recorded_lab(ws, lab.id) if (ws / META_FILE).is_file() else None
    ours = (ws / META_FILE).is_file() and other in (lab.id, None)
    row = {
        "lab": lab.id,
        "title": lab.title,
        "workspace": str(ws) if ours else None,
        "max_points": lab.max_points,
        "best_score": None,
        "best_max_score": None,
        "last_graded": None,
        "last_score": None,
        "hints_seen": {},
        "solution_seen": None,
        "failing": [],
        "next": "",
    }
    if row["workspace"] is None:
        row["next"] = (
            f"cks start {lab.id}" if not other else f"{ws} holds {other}: cks start {lab.id} --workspace DIR"
        )
        return row
    record = progress.progress_record(ws)
    best, last = record.get("best"), record.get("last")
    if isinstance(best, dict):
        row["best_score"], row["best_max_score"] = best.get("score"), best.get("max_score")
    if isinstance(last, dict):
        row["last_graded"], row["last_score"] = last.get("at"), last.get("score")
        tasks = last.get("tasks") if isinstance(last.get("tasks"), dict) else {}
        row["failing"] = [tid for tid, st in tasks.items() if st in ("fail", "error")]
    row["hints_seen"] = progress.tiers_seen(ws)
    row["solution_seen"] = progress.solution_seen(ws)
    row["next"] = _next_step(lab, row, last, ws_flag(lab, ws))
    return row


def _next_step(lab, row: dict, last: Any, flag: str) -> str:
    """What the learner does next in a lab they started: read and grade, fix (with a hint or the
    solution), grade again, or nothing (done)."""
    if row["last_graded"] is None:
        return f"cks show {lab.id}{flag}, then grade {lab.id}{flag}"
    if row["failing"]:
        first = row["failing"][0]
        more = f" (+{len(row['failing']) - 1} more)" if len(row["failing"]) > 1 else ""
        if row["hints_seen"].get(first, 0) < 3:
            return f"fix {first}{more}; cks hint {lab.id} {first}{flag}"
        # every tier of it seen: another `cks hint` would only repeat them
        return f"fix {first}{more}" + ("" if row["solution_seen"] else f"; cks solution {lab.id}{flag}")
    if isinstance(last, dict) and last.get("score") == last.get("max_score"):
        return "done"
    return f"grade {lab.id}{flag}"


def _print_progress(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    from grader.reporters.table import terminal_width

    table = Table("Lab", "Best", "Last graded", "Hints seen (task:tier)", "Solution", "Next", pad_edge=False)
    for r in rows:
        best = f"{r['best_score']:g}/{r['best_max_score']:g}" if r["best_score"] is not None else "-"
        hints = r["hints_seen"]
        shown = [f"{tid}:{tier}" for tid, tier in sorted(hints.items())]
        used = " ".join(shown[:3]) + (f" +{len(shown) - 3}" if len(shown) > 3 else "") if hints else "-"
        when = r["last_graded"].replace("T", " ").replace("Z", " UTC") if r["last_graded"] else "-"
        table.add_row(r["lab"], best, when, used, "seen" if r["solution_seen"] else "-", r["next"])
    Console(no_color=not color(), width=terminal_width(), highlight=False).print(table)
    started = [r for r in rows if r["workspace"]]
    if not started:
        click.echo("No lab started here yet: `cks start lab1` begins with the first.")
    else:
        todo = next((r for r in rows if r["next"] != "done"), None)
        click.echo(
            f"Next: {todo['next']}" if todo else "Every lab is done. `cks exam start` for a mock exam."
        )
