"""Instructor commands: `cks submit` (learners hand in), `cks regrade`, `cks dist`, `cks solve`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from grader.cli import CONTEXT, EXIT_ERROR, EXIT_FAILED, EXIT_OK, fail_usage, load_lab, workspace_for
from grader.cli.options import output_option, seed_option, workspace_option

if TYPE_CHECKING:
    from grader.instructor.regrade import ClassResult, LearnerRow, Policy

SOURCE_OPTION = click.option(
    "--source",
    metavar="DIR",
    help="The kit's source checkout (default: $CKS_SOURCE, else found from the current directory upward).",
)


def _source(command: str, source: str | None) -> Path:
    from grader.instructor.source import SourceNotFound, activate

    try:
        return activate(source)
    except SourceNotFound as exc:
        fail_usage(f"`cks {command}`: {exc}")
        raise  # unreachable: fail_usage exits


@click.command(
    "submit", context_settings=CONTEXT, short_help="Pack your evidence and result for your instructor."
)
@click.argument("lab")
@output_option("Bundle to write (default <learner>-<lab>.tar.gz).", metavar="NAME.tar.gz", dest="out")
@workspace_option("Workspace or live-collected snapshot directory (default ./cks-workspace/LAB).")
@click.option("--learner", metavar="ID", help="Your learner id (default $CKS_LEARNER or your login name).")
def submit_cmd(lab: str, out: str | None, workspace: str | None, learner: str | None) -> None:
    """Pack LAB's evidence for your instructor: the snapshot, your result and a SHA-256 of every file.

    Your instructor regrades the evidence (`cks regrade`); the score in the bundle is only for comparison.
    """
    from grader.instructor.bundle import BundleError
    from grader.instructor.submit import default_learner, submit

    the_lab = load_lab(lab)
    learner = learner or default_learner()
    dest = Path(out) if out else Path(f"{learner}-{the_lab.id}.tar.gz")
    try:
        sub = submit(the_lab, workspace_for(the_lab, workspace), dest, learner)
    except BundleError as exc:
        fail_usage(str(exc))
    except OSError as exc:
        fail_usage(f"cannot write {dest}: {exc.strerror}")
    r = sub.report
    click.echo(
        f"Wrote {dest}: {the_lab.id} for learner {learner}"
        + (f", seed {sub.meta['seed']}" if sub.meta.get("seed") else "")
        + f", {len(sub.meta['files'])} files, score {r.score:g}/{r.max_score:g}."
    )
    for s in sub.meta.get("skipped", []):
        click.echo(f"  not included: {s}", err=True)


@click.command(
    "regrade", context_settings=CONTEXT, short_help="Regrade bundles into class reports and gradebooks."
)
@click.argument("bundles", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--csv", "csv_out", metavar="FILE", help="Class CSV: a row per learner, a column per lab and task."
)
@click.option("--html", "html_out", metavar="FILE", help="Self-contained HTML class report.")
@click.option("--stats", "stats_out", metavar="FILE", help="Per-task statistics CSV.")
@click.option("--canvas", "canvas_out", metavar="FILE", help="Gradebook CSV in Canvas's import layout.")
@click.option("--moodle", "moodle_out", metavar="FILE", help="Gradebook CSV in Moodle's import layout.")
@click.option(
    "--feedback", "feedback_dir", metavar="DIR", help="Write LEARNER.md and LEARNER.html feedback here."
)
@click.option(
    "--roster",
    metavar="FILE",
    type=click.Path(exists=True, dir_okay=False),
    help="CSV learner,seed[,name,email,sis_id,section]: every learner gets a row; others are flagged.",
)
@click.option(
    "--overrides",
    metavar="FILE",
    type=click.Path(exists=True, dir_okay=False),
    help="CSV learner,lab,task,points,comment (task 'accept' accepts a held bundle).",
)
@click.option(
    "--accept", multiple=True, metavar="LEARNER[:LAB]", help="Count this learner's held bundles (repeatable)."
)
@click.option(
    "--deadline", metavar="TIME", help="Deadline, e.g. 2026-12-01T18:00Z: later bundles are flagged late."
)
@click.option(
    "--late-penalty",
    type=click.FloatRange(0, 100),
    default=0,
    metavar="PERCENT",
    help="Percent of a lab's points taken off per started day late (once accepted).",
)
@click.option(
    "--similarity",
    type=click.FloatRange(0.1, 1.0),
    default=0.8,
    show_default=True,
    help="Share of normalised answer parts two learners must share to be flagged similar.",
)
@click.option(
    "--jobs", "-j", type=click.IntRange(1, 256), help="Bundles graded at once (default: one per core)."
)
@click.option(
    "--bundle-timeout",
    type=click.FloatRange(1, 3600),
    default=180,
    show_default=True,
    metavar="SECONDS",
    help="Time budget per bundle; a bundle over it gets a row saying so.",
)
@click.option(
    "--bundle-memory",
    type=click.IntRange(256, 65536),
    default=3072,
    show_default=True,
    metavar="MB",
    help="Memory (address space) budget per bundle.",
)
@click.option("--title", default="CKS class report", show_default=True, help="Title of the HTML report.")
def regrade_cmd(
    bundles: tuple[str, ...],
    csv_out: str | None,
    html_out: str | None,
    stats_out: str | None,
    canvas_out: str | None,
    moodle_out: str | None,
    feedback_dir: str | None,
    roster: str | None,
    overrides: str | None,
    accept: tuple[str, ...],
    deadline: str | None,
    late_penalty: float,
    similarity: float,
    jobs: int | None,
    bundle_timeout: float,
    bundle_memory: int,
    title: str,
) -> None:
    """Regrade submitted bundles from their evidence into a class CSV, HTML report, statistics, gradebooks
    and per-learner feedback.

    \b
    Never trusts the learner's score. A flagged bundle (tampering, score or seed mismatch, late, similar or
    identical to another learner's, not on the roster, exam record problems) is held: its score is shown
    apart and not counted until --accept LEARNER or an overrides line `LEARNER,LAB,accept,,why` accepts it.
    A bundle that cannot be used (damaged, path traversal, links, over the size, time or memory budget) is
    reported in its row and the rest of the class is graded. Exit 0 when every bundle was regraded cleanly
    and nothing is held, 1 when something is flagged or bad, 2 on usage errors.
    """
    from grader.instructor.pool import Budget
    from grader.instructor.regrade import learner_rows, regrade_many

    outputs = (csv_out, html_out, stats_out, canvas_out, moodle_out, feedback_dir)
    if not any(outputs):
        fail_usage(
            "say where the report goes: "
            "--csv FILE, --html FILE, --stats, --canvas, --moodle or --feedback DIR"
        )
    policy = _regrade_policy(accept, late_penalty, similarity, roster, overrides, deadline)
    result = regrade_many(
        bundles, jobs=jobs, policy=policy, budget=Budget(seconds=bundle_timeout, memory_mb=bundle_memory)
    )
    try:
        _write_reports(result, dict(zip(_REPORT_KINDS, outputs, strict=True)), title)
    except OSError as exc:
        fail_usage(f"cannot write the report: {exc.strerror}")
    rows = learner_rows(result)
    held = [r for r in rows if r.held_labs]
    bad = [r for r in rows if r.errors]
    _echo_summary(len(bundles), rows, [x for x in outputs if x])
    for w in policy.warnings:
        click.echo(f"Warning: {w}", err=True)
    sys.exit(EXIT_OK if not held and not bad else EXIT_FAILED)


_REPORT_KINDS = ("csv", "html", "stats", "canvas", "moodle", "feedback")


def _regrade_policy(
    accept: tuple[str, ...],
    late_penalty: float,
    similarity: float,
    roster: str | None,
    overrides: str | None,
    deadline: str | None,
) -> Policy:
    """The grading policy from the options, with the roster and overrides files read (usage error when
    one cannot be read or the deadline is not a time)."""
    from grader.instructor.regrade import Policy, parse_time, read_overrides, read_roster_entries

    policy = Policy(accept=set(accept), late_penalty=late_penalty, similarity=similarity)
    for what, path, reader in (
        ("roster", roster, read_roster_entries),
        ("overrides", overrides, read_overrides),
    ):
        if not path:
            continue
        try:
            value = reader(Path(path))
        except (OSError, ValueError, UnicodeDecodeError, csv_error()) as exc:
            fail_usage(f"cannot read the {what} file {path}: {exc}")
        if what == "roster":
            policy.roster = value
        else:
            policy.overrides = value
    if deadline:
        policy.deadline = parse_time(deadline)
        if policy.deadline is None:
            fail_usage(
                f"--deadline {deadline!r}: give a time like 2026-12-01T18:00Z or 2026-12-01T18:00+01:00"
            )
    return policy


def _write_reports(result: ClassResult, outputs: dict[str, str | None], title: str) -> None:
    """Write each report that was asked for (kind -> path, None when not asked)."""
    from grader.instructor.exports import write_canvas, write_feedback, write_moodle, write_stats_csv
    from grader.instructor.html import write_html
    from grader.instructor.regrade import write_csv

    writers = {
        "csv": write_csv,
        "html": lambda cls, path: write_html(cls, path, title=title),
        "stats": write_stats_csv,
        "canvas": write_canvas,
        "moodle": write_moodle,
        "feedback": write_feedback,
    }
    for kind in _REPORT_KINDS:
        path = outputs[kind]
        if path:
            writers[kind](result, Path(path))


def _echo_summary(bundle_count: int, rows: list[LearnerRow], written: list[str]) -> None:
    """One line of counts, then the first flags and errors of up to 20 learners."""
    flagged = [r for r in rows if r.flags]
    held = [r for r in rows if r.held_labs]
    bad = [r for r in rows if r.errors]
    missing = [r for r in rows if r.status == "no submission"]
    click.echo(
        f"Regraded {bundle_count} bundles for {len(rows)} learners: {len(flagged)} flagged "
        f"({len(held)} held, not counted), {len(bad)} with bad bundles, {len(missing)} without a submission. "
        f"Wrote {', '.join(written)}."
    )
    for r in (flagged + [b for b in bad if b not in flagged])[:20]:
        for f in r.flags[:3] + r.errors[:3]:
            click.echo(f"  {r.learner}: {f}")


def csv_error() -> type[Exception]:
    import csv

    return csv.Error


@click.command(
    "dist", context_settings=CONTEXT, short_help="Build learner bundles: chosen labs, no solutions."
)
@click.option("--labs", required=True, metavar="LIST", help="Comma-separated labs to ship, e.g. lab1,lab3.")
@output_option("Output directory.", metavar="DIR", dest="out", required=True)
@click.option(
    "--roster",
    metavar="FILE",
    type=click.Path(exists=True, dir_okay=False),
    help="CSV learner,seed[,...]: one bundle per learner in DIR/LEARNER/, id and seed built in.",
)
@click.option("--no-wheel", is_flag=True, help="Only stage the pip-installable folder; do not build a wheel.")
@SOURCE_OPTION
def dist_cmd(labs: str, out: str, roster: str | None, no_wheel: bool, source: str | None) -> None:
    """Build learner bundles: the grader with only the chosen labs and no solutions, explanations or answer
    fixtures.

    \b
    Without --roster: DIR/cks-kit/ (pip install ./cks-kit) and, unless --no-wheel, a wheel built from it.
    With --roster: DIR/LEARNER/ for each learner, with the learner's id and seed built in, each lab pinned to
    that learner's variant (starting state pre-built, no generator) and the answers of find tasks as salted
    digests only. Each build gets its own version, so a later bundle upgrades an earlier one.
    """
    from grader.instructor.dist import DistError, build_dist
    from grader.instructor.regrade import read_roster_entries

    repo = _source("dist", source)
    chosen = [load_lab(x.strip()) for x in labs.split(",") if x.strip()]
    learners = None
    if roster:
        try:
            learners = read_roster_entries(Path(roster))
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            fail_usage(f"cannot read the roster: {exc}")
        if not learners:
            fail_usage(f"the roster {roster} names no learner")
    try:
        if learners is None:
            results = [build_dist(chosen, Path(out), repo=repo, wheel=not no_wheel)]
        else:
            from datetime import UTC, datetime

            from grader.instructor.bundle import LEARNER_ID

            build_id = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
            results = []
            for entry in learners.values():
                if not LEARNER_ID.match(entry.learner):
                    fail_usage(f"roster: learner id {entry.learner!r} must be letters, digits or . _ @ + -")
                results.append(
                    build_dist(
                        chosen,
                        Path(out) / entry.learner,
                        repo=repo,
                        wheel=not no_wheel,
                        learner=entry.learner,
                        seed=entry.seed or entry.learner,
                        build_id=build_id,
                    )
                )
    except DistError as exc:
        fail_usage(str(exc))
    failed = False
    for res in results:
        click.echo(
            f"Staged {res.files} files for {', '.join(res.labs)} in {res.folder} (pip install {res.folder})."
        )
        if res.wheel:
            click.echo(f"Wheel: {res.wheel} (checked: no solution or answer-fixture content).")
        elif not no_wheel:
            click.echo(
                f"Could not build the wheel ({res.wheel_error}); the folder is installable as is.", err=True
            )
            failed = True
    sys.exit(EXIT_ERROR if failed else EXIT_OK)


@click.command(
    "solve", context_settings=CONTEXT, short_help="Apply the reference solution for a seed (instructors)."
)
@click.argument("lab")
@seed_option("The learner's seed (default: the lab's default variant).")
@workspace_option(
    "Where to write the solved workspace (default ./cks-solutions/LAB[-SEED]). An existing "
    "workspace of LAB gets the solution laid over it."
)
@click.option("--show/--no-show", default=True, help="Print the solution's explanation.")
@SOURCE_OPTION
def solve_cmd(lab: str, seed: str | None, workspace: str | None, show: bool, source: str | None) -> None:
    """Apply LAB's reference solution for a seed (instructors; needs a source checkout with solutions/).

    Prints the variant's values, the files the answer writes, and the grade the result earns.
    """
    _source("solve", source)
    try:
        from grader.instructor.solve import SolveError, solve
        from grader.solutions import SolutionsUnavailable
    except ImportError:
        fail_usage("`cks solve` is not part of a learner's install")
    the_lab = load_lab(lab)
    dest = (
        Path(workspace) if workspace else Path("cks-solutions") / (the_lab.id + (f"-{seed}" if seed else ""))
    )
    try:
        res = solve(the_lab, dest, seed)
    except (SolutionsUnavailable, SolveError) as exc:
        fail_usage(str(exc))
    click.echo(f"{the_lab.id} solved for seed {res.seed or '(default)'} in {dest}.")
    if res.values:
        click.echo("Variant values: " + ", ".join(f"{k}={v}" for k, v in sorted(res.values.items())))
    for line in res.changed:
        click.echo(f"  {line}")
    click.echo(f"Grade of the solved workspace: {res.report.score:g}/{res.report.max_score:g}")
    if show and res.explanation:
        click.echo("\n" + res.explanation.rstrip())
    sys.exit(EXIT_OK if res.report.exit_code == 0 else EXIT_FAILED)
