"""`cks` and `grade`: the command line. Subcommand modules load lazily so `grade --help` stays fast.

Exit codes: 0 every graded task passes, 1 a task failed, 2 usage error, 3 could not check.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import click

from grader.cli.options import (
    context_option,
    format_option,
    kubeconfig_option,
    lab_argument,
    live_target_options,
    output_option,
    seed_option,
    target_option,
    verbose_option,
    workspace_option,
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_ERROR = 0, 1, 2, 3
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class LazyGroup(click.Group):
    """A group whose subcommands live in other modules and are imported only when used."""

    def __init__(
        self,
        *args,
        lazy: dict[str, tuple[str, str]] | None = None,
        sections: dict[str, tuple[str, ...]] | None = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.lazy = lazy or {}  # name -> ("module:attr", short help)
        # titled sections of the command list (learners first, instructors apart); the rest under "Commands"
        self.sections = sections or {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            target, short = self.lazy[name]
            module, attr = target.split(":")
            try:
                cmd = getattr(importlib.import_module(module), attr)
            except (ImportError, AttributeError) as exc:
                return _unavailable(name, short, exc)
            return cmd
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help from the static table: listing commands must not import every module.
        rows: dict[str, str] = {}
        for name in self.list_commands(ctx):
            if name in self.lazy:
                rows[name] = self.lazy[name][1]
            else:
                cmd = super().get_command(ctx, name)
                if cmd is not None and not cmd.hidden:
                    rows[name] = cmd.get_short_help_str(limit=80)
        placed: set[str] = set()
        for title, names in self.sections.items():
            listed = [(n, rows[n]) for n in names if n in rows]
            placed.update(n for n, _ in listed)
            if listed:
                with formatter.section(title):
                    formatter.write_dl(listed)
        rest = [(n, h) for n, h in rows.items() if n not in placed]
        if rest:
            with formatter.section("Commands" if not self.sections else "Other commands"):
                formatter.write_dl(rest)


def _unavailable(name: str, short: str, exc: Exception) -> click.Command:
    @click.command(
        name, help=f"{short} (not available: {exc})", context_settings={"ignore_unknown_options": True}
    )
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def cmd(args: tuple[str, ...]) -> None:
        raise click.UsageError(f"`{name}` is not available in this install: {exc}")

    return cmd


def fail_usage(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(EXIT_USAGE)


def load_lab(lab_id: str | None):
    """The lab named on the command line, or exit 2 listing the labs."""
    from grader.labs import LabError, all_labs, get_lab

    if not lab_id:  # LAB is declared optional so that forgetting it gets this message, not click's
        try:
            ids = ", ".join(lab.id for lab in all_labs())
        except LabError:
            ids = "see `cks list`"
        fail_usage(f"which lab? Name one, e.g. `{_prog()} lab1`; the labs are: {ids}")
    try:
        return get_lab(lab_id)
    except LabError as exc:
        fail_usage(str(exc))


def _prog() -> str:
    ctx = click.get_current_context(silent=True)
    return ctx.command_path if ctx else "cks"


def workspace_for(lab, workspace: str | None) -> Path:
    """--workspace DIR, else the workspace found from the current directory (see :func:`_find_workspace`)."""
    return _usable(Path(workspace)) if workspace else _find_workspace(lab)


def _usable(path: Path) -> Path:
    """``path``, or exit 2 when no file operation could use it (a name too long, a loop of links, ...):
    pathlib raises those from exists() and resolve(), as a traceback otherwise."""
    import errno

    try:
        os.stat(path)
        path.resolve()
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENAMETOOLONG):
            fail_usage(
                f"the folder {str(path)[:200]} cannot be used: {exc.strerror}; choose another with "
                "--workspace DIR"
            )
        # anything else (missing: a folder to create; below a file) is said by the command itself
    except RuntimeError as exc:  # resolve() on a loop of links
        fail_usage(f"the folder {str(path)[:200]} cannot be used: {exc}; choose another with --workspace DIR")
    return path


def _find_workspace(lab) -> Path:
    """Where LAB's workspace is when no --workspace is given, as git finds .git: walk up from the current
    directory to the nearest folder with a cks.yaml. Inside LAB's workspace: that one. Inside another lab's
    workspace (or an exam folder): LAB's sibling folder beside it. Elsewhere ./cks-workspace/LAB (or ./LAB
    when the current directory is itself a cks-workspace folder)."""
    from grader import fsutil
    from grader.exam import STATE_FILE as EXAM_FILE
    from grader.snapshot import META_FILE
    from grader.workspace import DEFAULT_WORKSPACE, default_dir

    try:
        cwd = Path.cwd()
    except OSError:  # the shell sits in a folder that was removed
        fail_usage(
            "the current folder no longer exists; `cd` to an existing folder (or pass --workspace DIR)"
        )
    found = fsutil.find_up(cwd, META_FILE)
    exam = fsutil.find_up(cwd, EXAM_FILE)
    if found is not None and (exam is None or exam == found or exam in found.parents):
        if recorded_lab(found, lab.id) in (lab.id, None):
            return fsutil.display(found)
        return fsutil.display(found.parent / lab.id)
    if exam is not None:
        return fsutil.display(exam / lab.id)
    if cwd.name == DEFAULT_WORKSPACE.name and not default_dir(lab).exists():
        return Path(lab.id)
    return default_dir(lab)


def recorded_lab(root: Path, asked: str | None = None) -> str | None:
    """The lab a workspace or snapshot records, None when it says none. Its cks.yaml and the kit's marker
    must agree: when one names a lab other than ``asked``, that one is returned (so nothing is replaced)."""
    from grader import fsutil
    from grader.snapshot import Snapshot

    marker = fsutil.read_marker(root) or {}
    found = [str(x) for x in (Snapshot(root).meta.get("lab"), marker.get("lab")) if x]
    other = [x for x in found if x != asked]
    return other[0] if other else (found[0] if found else None)


def _nesting_problem(lab, ws: Path) -> str | None:
    """Why a workspace at ``ws`` would sit inside another workspace or an exam folder (never allowed)."""
    from grader.exam import STATE_FILE as EXAM_FILE
    from grader.snapshot import META_FILE

    try:
        real = ws.resolve()
    except OSError:
        return None
    for parent in real.parents:
        if (parent / META_FILE).is_file():
            what = recorded_lab(parent)
            sibling = parent.parent / lab.id
            return (
                f"{ws} is inside the workspace{' of ' + what if what else ''} at {parent}; workspaces do not "
                f"nest: start {lab.id} beside it with `cks start {lab.id} --workspace {sibling}`"
            )
        if (parent / EXAM_FILE).is_file():
            return (
                f"{ws} is inside the exam folder {parent}; the exam made its own workspaces there: "
                f"see `cks exam status`, or start {lab.id} outside it with "
                f"`cks start {lab.id} --workspace DIR`"
            )
    return None


def ws_flag(lab, ws: Path) -> str:
    """` --workspace DIR` when DIR is not the default one, so suggested commands work as typed."""
    return "" if ws == workspace_for(lab, None) else f" --workspace {ws}"


def check_workspace(lab, ws: Path) -> dict:
    """The metadata of the workspace at ``ws`` for ``lab``, or exit 2 saying what to do instead."""
    from grader.snapshot import META_FILE, Snapshot

    if not (ws / META_FILE).is_file():
        if ws.is_dir():
            fail_usage(
                f"{ws} is not a cks workspace (no {META_FILE}); start one with "
                f"`cks start {lab.id} --workspace DIR` in a new or empty folder"
            )
        if ws.exists():
            fail_usage(f"{ws} is a file, not a workspace; start one with `cks start {lab.id}`")
        if _nesting_problem(lab, ws):  # `cks start` would refuse there: never suggest it
            fail_usage(
                f"no workspace for {lab.id} at {ws}, and none can be started there: "
                f"{_nesting_problem(lab, ws)}"
            )
        fail_usage(
            f"no workspace for {lab.id} at {ws}; start one with `cks start {lab.id}{ws_flag(lab, ws)}`"
        )
    snap = Snapshot(ws)
    if snap.meta_problem:
        click.echo(
            f"Error: {snap.meta_problem}; restore it, or start over with `cks reset {lab.id}"
            f"{ws_flag(lab, ws)}` (your changed files are backed up)",
            err=True,
        )
        sys.exit(EXIT_ERROR)
    meta = snap.meta
    recorded = meta.get("lab")
    if recorded and recorded != lab.id:
        fail_usage(
            f"{ws} is a workspace for {recorded}, not {lab.id}: use `{_prog()} {recorded} --workspace {ws}`, "
            f"or start {lab.id} with `cks start {lab.id}`"
        )
    return meta


# ---- grade ----------------------------------------------------------------------------------------

GRADE_HELP = """Grade LAB: each task with its status, points and a one-line reason.

\b
LAB is a lab id such as lab1 (`cks list` shows them). Where it grades:
  --workspace DIR      an offline practice workspace (default ./cks-workspace/LAB)
  --target T           kind[:NAME] | vagrant[:MACHINE] | local | ssh://HOST | workspace:DIR
With neither, it grades the local node when run on a control-plane node, else the workspace.

\b
A failing task says how to ask for its hint: `cks hint LAB TASK` gives one tier at a time
(a nudge, where to look, the shape of the answer). --hints prints the last tier right away.

\b
Examples:
  cks start lab1 && grade lab1          start the practice workspace, then grade it
  grade lab1 -v                         also show evidence: where, expected, actual
  grade lab1 --hints                    also print each failing task's hint (the shape of the answer)
  grade lab1 --format json -o r.json    machine-readable result (table still printed)
  grade lab1 --format junit > r.xml     JUnit XML for CI (pytest's shape)
  grade lab1 --task t3 --task t4        only these tasks
  grade lab3 --target vagrant:controlplane

\b
Exit codes: 0 all graded tasks pass, 1 a task failed, 2 usage error, 3 could not check
(cluster down, file unreadable). Tasks that need a live cluster are skipped offline.
"""


def _grade_options(f):
    for opt in reversed(
        [
            lab_argument,
            workspace_option("Practice workspace to grade (default ./cks-workspace/LAB)."),
            target_option(),
            kubeconfig_option(),
            context_option(),
            click.option(
                "--in-cluster", is_flag=True, help="Use the Pod's ServiceAccount (grader running in a Job)."
            ),
            format_option("table", "json", "junit"),
            output_option(),
            click.option(
                "--task", "tasks", multiple=True, metavar="ID", help="Grade only these tasks (repeatable)."
            ),
            verbose_option(),
            click.option(
                "--hints",
                is_flag=True,
                help="Print each failing task's hint, the shape of the answer (recorded as hints used).",
            ),
            click.option(
                "--debug",
                is_flag=True,
                hidden=True,
                help="Let internal errors raise (for grader developers).",
            ),
        ]
    ):
        f = opt(f)
    return f


def _grade(
    lab_id: str,
    workspace: str | None,
    target: str | None,
    kubeconfig: str | None,
    kube_context: str | None,
    in_cluster: bool,
    fmt: str,
    output: str | None,
    tasks: tuple[str, ...],
    verbose: bool,
    hints: bool,
    debug: bool,
) -> None:
    if debug:
        os.environ["CKS_DEBUG"] = "1"
    lab = load_lab(lab_id)
    for tid in tasks:
        if tid not in {t.id for t in lab.tasks}:
            fail_usage(f"{lab.id} has no task {tid!r}; its tasks are {', '.join(t.id for t in lab.tasks)}")
    if target and target.startswith("workspace:"):
        workspace, target = target.split(":", 1)[1], None
    if workspace is None and target is None and not in_cluster:
        target = "local" if Path("/etc/kubernetes/manifests/kube-apiserver.yaml").is_file() else None
    ws: Path | None = None
    in_exam = busy = False
    if target is None and not in_cluster:
        ws = workspace_for(lab, workspace)
        from grader.cli.learn import exam_in_progress

        in_exam = exam_in_progress(ws)
        if in_exam and hints:  # as `cks hint` refuses: the timed exam is taken as the real one
            fail_usage(
                "no hints during the timed exam, as in the real one; `cks exam finish` hands it in and "
                "shows each task's feedback with its hint"
            )
        report, busy = _grade_workspace(lab, ws, tasks)
        if in_exam:  # no "hint: cks hint ..." pointers to a command that refuses until the exam is over
            for t in report.tasks:
                t.hint = ""
    else:
        report = _grade_live(lab, target or "local", kubeconfig, kube_context, in_cluster, tasks)
    if ws is not None and not busy:  # a refusal (a start or reset held the workspace) is not a grading
        _record(lab, ws, report, full=not tasks, hints=hints)
    hint_command = f"cks hint {lab.id} {{task}}" + (ws_flag(lab, ws) if ws is not None else "")
    _emit(report, fmt, output, verbose, hints=hints, hint_command=hint_command)
    sys.exit(report.exit_code)


def _record(lab, ws: Path, report, *, full: bool, hints: bool) -> None:
    """Keep the learner's record in the workspace: the grading (when every task was graded) and, with
    --hints, the hints that were printed."""
    from grader import exam, progress
    from grader.results import Status

    if (ws.parent / exam.STATE_FILE).is_file():
        return  # an exam question: the exam keeps its own record, and its files must not change behind it
    if full:
        progress.record_grade(ws, report)
    if hints:
        for t in report.tasks:
            if t.status is Status.FAIL and t.hint:
                progress.record_hint(ws, lab.id, t.id, 3, via="grade --hints")


def _grade_workspace(lab, ws: Path, tasks: tuple[str, ...]):
    """(the report, whether the workspace was busy: a start or reset held it, every task is error)."""
    from grader import fsutil
    from grader.runner import all_error_report, grade
    from grader.snapshot import Snapshot

    check_workspace(lab, ws)
    from grader.exam import unfinished_exam_for

    running = unfinished_exam_for(ws)
    if running is not None:  # results come at the end, as announced: no grading question by question
        fail_usage(
            f"{ws} is a question of an exam that is still running (deadline {running.deadline:%H:%M} UTC): "
            f"results come with `cks exam finish --dir {running.dir}`; `cks exam status` shows the time left"
        )
    snap = Snapshot(ws)
    if snap.meta.get("lab_version") not in (None, lab.version):
        click.echo(
            f"Warning: {ws} was started with {lab.id} version {snap.meta.get('lab_version')}, "
            f"the installed lab is version {lab.version}; `cks reset {lab.id}` starts it afresh.",
            err=True,
        )
    try:
        with fsutil.shared_lock(ws):  # a start or reset in progress: refuse rather than grade half a state
            return grade(lab, snap, target=f"workspace {ws}", only=list(tasks) or None), False
    except fsutil.Busy as exc:
        click.echo(f"Error: {exc}", err=True)
        return all_error_report(lab, str(exc), f"workspace {ws}", list(tasks) or None), True


def _live_target(target: str):
    """The collectors module (stdlib-only to import) and the parsed target, or a usage error."""
    from grader import collectors

    try:
        return collectors, collectors.parse_target(target)
    except ValueError as exc:
        fail_usage(str(exc))


def _grade_live(lab, target: str, kubeconfig, kube_context, in_cluster: bool, tasks: tuple[str, ...]):
    import tempfile

    from grader.runner import grade
    from grader.snapshot import Snapshot

    collectors, parsed = _live_target(target)
    with (
        tempfile.TemporaryDirectory(prefix="cks-collect-") as tmp,
        spinner(f"collecting {lab.id} from {target}") as status,
    ):
        try:
            result = collectors.collect(
                lab,
                parsed,
                Path(tmp),
                kubeconfig=kubeconfig,
                context=kube_context,
                in_cluster=in_cluster,
                progress=status,
            )
        except collectors.LiveError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(EXIT_ERROR)
        except ImportError as exc:  # the live extras (kubernetes, pytest-testinfra) are not installed
            click.echo(
                f"Error: grading a live target needs the live extras: pip install 'cks-kit[live]' ({exc})",
                err=True,
            )
            sys.exit(EXIT_ERROR)
        return grade(
            lab, Snapshot(result.snapshot_dir), target=result.label, live=True, only=list(tasks) or None
        )


class spinner:  # lower case: used like a function, `with spinner(...)`
    """A spinner on stderr while slow steps run (only on a terminal); yields a progress callback."""

    def __init__(self, text: str):
        self.text = text
        self._status = None

    def __enter__(self):
        if sys.stderr.isatty():
            from rich.console import Console

            self._status = Console(stderr=True).status(self.text)
            self._status.__enter__()
        return self.update

    def update(self, message: str) -> None:
        if self._status is not None:
            self._status.update(f"{self.text}: {message}")

    def __exit__(self, *exc):
        if self._status is not None:
            self._status.__exit__(*exc)
        return False


def _emit(
    report,
    fmt: str,
    output: str | None,
    verbose: bool,
    *,
    hints: bool = False,
    hint_command: str | None = None,
) -> None:
    from grader.reporters import render

    opts = {"verbose": verbose, "hints": hints, "hint_command": hint_command}
    if output:
        try:
            # a path that is not UTF-8 (a folder named with a stray byte) is written as \udcNN, never a
            # traceback
            Path(output).write_text(render(report, fmt, color=False, **opts), errors="backslashreplace")
        except OSError as exc:
            fail_usage(f"cannot write {output}: {exc.strerror}")
        if fmt != "table":
            click.echo(render(report, "table", color=color(), **opts), nl=False)
        return
    click.echo(render(report, fmt, color=color() if fmt == "table" else False, **opts), nl=False)


def color() -> bool:
    return "NO_COLOR" not in os.environ and sys.stdout.isatty()


@click.command(
    "grade",
    help=GRADE_HELP,
    context_settings=CONTEXT,
    short_help="Grade a lab: status, points and a reason per task.",
)
@_grade_options
def grade_cmd(**kw) -> None:
    _grade(kw.pop("lab"), **kw)


# ---- cks ------------------------------------------------------------------------------------------

CKS_HELP = """CKS runtime-security lab kit: audit logging, Falco, immutable and unprivileged containers.

\b
Learners:     cks list · cks show lab1 · cks start lab1 · grade lab1 · cks hint lab1 t1 · cks progress
              cks solution lab1 · cks submit lab1 · cks exam start
Study tools:  cks audit validate|simulate|query · cks falco validate|test|explain · cks pods check
Instructors:  cks selftest · cks solve · cks dist · cks regrade
"""

LEARNER_COMMANDS = (
    "list",
    "show",
    "start",
    "grade",
    "hint",
    "progress",
    "solution",
    "reset",
    "submit",
    "collect",
    "exam",
)
STUDY_COMMANDS = ("audit", "falco", "pods", "apiserver")
INSTRUCTOR_COMMANDS = ("selftest", "solve", "dist", "regrade")


@click.group(
    "cks",
    cls=LazyGroup,
    help=CKS_HELP,
    context_settings=CONTEXT,
    sections={
        "Learners": LEARNER_COMMANDS,
        "Study tools": STUDY_COMMANDS,
        "Instructors": INSTRUCTOR_COMMANDS,
    },
    lazy={
        "audit": ("grader.cli.study:audit_group", "Audit policies and logs: validate, simulate, query."),
        "falco": ("grader.cli.falco:falco_group", "Falco rules: validate, test on events, explain."),
        "pods": (
            "grader.cli.pods:pods_group",
            "Pod security: check manifests against PSS and CKS hardening.",
        ),
        "apiserver": ("grader.cli.study:apiserver_group", "kube-apiserver manifest: audit flags and mounts."),
        "collect": ("grader.cli.live:collect_cmd", "Collect a live lab's evidence into a snapshot archive."),
        "submit": (
            "grader.cli.instructor:submit_cmd",
            "Pack your lab's evidence and result for your instructor.",
        ),
        "regrade": (
            "grader.cli.instructor:regrade_cmd",
            "Regrade submitted bundles into a class CSV and HTML report.",
        ),
        "dist": (
            "grader.cli.instructor:dist_cmd",
            "Build a learner bundle with chosen labs and no solutions.",
        ),
        "solve": (
            "grader.cli.instructor:solve_cmd",
            "Apply the reference solution for a seed to a workspace.",
        ),
        "exam": ("grader.cli.exam:exam_group", "Timed mock exam: start, status, finish."),
        "hint": (
            "grader.cli.learn:hint_cmd",
            "A task's hint, one tier at a time: nudge, where to look, answer's shape.",
        ),
        "solution": (
            "grader.cli.learn:solution_cmd",
            "The reference answer and why, after you confirm (recorded).",
        ),
        "progress": (
            "grader.cli.learn:progress_cmd",
            "Every lab: best score, last graded, hints used, what next.",
        ),
    },
)
@click.version_option(package_name="cks-kit", prog_name="cks")
def cks() -> None:
    pass


cks.add_command(grade_cmd)


@cks.command("list", context_settings=CONTEXT, short_help="List the labs with their topics, time and points.")
@format_option("table", "json")
def list_cmd(fmt: str) -> None:
    """List the labs with their topics, time estimate, points and the tasks that need a live cluster.

    \b
    Examples:
      cks list
      cks list --format json | jq -r '.[].id'
    """
    from grader.labs import LabError, all_labs

    try:
        labs = all_labs()
    except LabError as exc:
        fail_usage(str(exc))
    if fmt == "json":
        click.echo(_labs_json(labs))
    else:
        _print_labs(labs)


def _labs_json(labs: list) -> str:
    import json

    return json.dumps(
        [
            {
                "id": lab.id,
                "title": lab.title,
                "topics": list(lab.topics),
                "minutes": lab.minutes,
                "points": lab.max_points,
                "live_tasks": [t.id for t in lab.tasks if t.live],
            }
            for lab in labs
        ],
        indent=2,
    )


def _print_labs(labs: list) -> None:
    from rich.console import Console
    from rich.table import Table

    from grader import versions

    # The versions every lab is written and judged for (provision/versions.env).
    table = Table(
        "Lab",
        "Title",
        "Topics",
        "Minutes",
        "Points",
        "Live-only tasks",
        caption=f"Judged as on the labs' cluster: {versions.summary()}",
    )
    for lab in labs:
        table.add_row(
            lab.id,
            lab.title,
            ", ".join(lab.topics),
            str(lab.minutes),
            f"{lab.max_points:g}",
            ", ".join(t.id for t in lab.tasks if t.live) or "-",
        )
    from grader.reporters.table import terminal_width

    Console(no_color=not color(), width=terminal_width()).print(table)


def variant_values(lab, workspace: str | None, seed: str | None) -> tuple[dict, str | None]:
    """The values a learner's instance uses: from --seed, else the seed recorded in the workspace."""
    from grader import variants
    from grader.snapshot import Snapshot

    if seed is None:
        ws = workspace_for(lab, workspace)
        if workspace:  # named on purpose: it must be this lab's workspace
            check_workspace(lab, ws)
        snap = Snapshot(ws)
        if ws.is_dir() and snap.meta_problem:  # never fall back to the default variant silently
            check_workspace(lab, ws)
        recorded = snap.meta.get("seed") if ws.is_dir() else None
        if ws.is_dir() and recorded_lab(ws, lab.id) not in (lab.id, None):
            recorded = None  # another lab's workspace: its seed draws that lab's values, not this one's
        seed = str(recorded) if recorded is not None else None
    return variants.values_for(lab, seed), seed


@cks.command(
    "show", context_settings=CONTEXT, short_help="Show a lab's exercise, with your variant's values."
)
@lab_argument
@workspace_option("Show the variant of this workspace (default ./cks-workspace/LAB).")
@seed_option("Show the variant for this seed.")
@target_option("The cluster you do the lab on: on kind:NAME it adds how to edit node files.")
def show_cmd(lab: str, workspace: str | None, seed: str | None, target: str | None = None) -> None:
    """Show LAB's exercise text (its README), with your variant's names and values filled in.

    \b
    Examples:
      cks show lab1                        the exercise for ./cks-workspace/lab1
      cks show lab1 --workspace ~/exam/q1  the variant of another workspace
      cks show lab1 | less -R              page through it
    """
    the_lab = load_lab(lab)
    from grader import variants

    values, _ = variant_values(the_lab, workspace, seed)
    text = variants.render_text(the_lab.readme.read_text(), values)
    if target:
        from grader.cli.live import target_note

        text += target_note(the_lab, target, values)
    click.echo(render_markdown(text), nl=False)
    import textwrap

    from grader.cli.learn import exam_in_progress
    from grader.reporters.table import terminal_width

    first = the_lab.tasks[0].id
    about = (
        f"Stuck on a task? `cks hint {the_lab.id} {first}` gives its hint one tier at a time: a nudge, "
        "where to look, then the shape of the answer (the hints you use are recorded in your workspace). "
        f"`grade {the_lab.id}` prints no hint text unless you add --hints."
    )
    if exam_in_progress(workspace_for(the_lab, workspace)):
        about = (
            "This is a timed exam: no hints and no solutions until you hand it in with `cks exam finish`, "
            "which shows each task's feedback with its hint. `cks exam status` shows the time left."
        )
    click.echo("\n" + textwrap.fill(about, min(terminal_width(), 100), break_on_hyphens=False))


def render_markdown(text: str, width: int | None = None) -> str:
    """A README for the terminal. Code blocks are printed as written, never wrapped, so a command copied
    from them works; the prose around them wraps to the terminal (at most 100 columns)."""
    from markdown_it import MarkdownIt

    from grader.reporters.table import terminal_width

    width = width or min(terminal_width(), 100)
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    pos = 0
    for tok in MarkdownIt("commonmark").enable("table").parse(text):
        # top-level code only: a block inside a list item stays with its item
        if tok.level == 0 and tok.type in ("fence", "code_block") and tok.map:
            start, end = tok.map
            out.append(_prose("".join(lines[pos:start]), width))
            code = "".join(f"    {line}".rstrip() + "\n" for line in tok.content.rstrip("\n").splitlines())
            out.append(("\n" if out and out[-1] else "") + code + "\n")
            pos = end
    out.append(_prose("".join(lines[pos:]), width))
    return "".join(out)


def _prose(text: str, width: int) -> str:
    import io
    import re

    from rich.console import Console
    from rich.markdown import Markdown

    if not text.strip():
        return ""
    # an inline `command` moves to the next line whole rather than breaking at its spaces; one too long
    # for a line (a list item's indent included) breaks at its spaces, never inside a word
    text = re.sub(
        r"`([^`\n]+)`",
        lambda m: (
            "`" + (m.group(1).replace(" ", _KEEP_SPACE) if len(m.group(1)) <= width - 8 else m.group(1)) + "`"
        ),
        text,
    )
    buf = io.StringIO()
    use_color = color()
    Console(file=buf, width=width, force_terminal=use_color, no_color=not use_color, highlight=False).print(
        Markdown(text)
    )
    # rich pads every line to the width: trailing blanks only get in the way of copying and diffs
    return "".join(line.rstrip().replace(_KEEP_SPACE, " ") + "\n" for line in buf.getvalue().splitlines())


_KEEP_SPACE = "\ue000"  # a private-use character: one cell wide, and not a place to break a line


@cks.command("start", context_settings=CONTEXT, short_help="Start a lab: create its practice workspace.")
@lab_argument
@workspace_option("Where to create the workspace (default ./cks-workspace/LAB).")
@seed_option()
@click.option(
    "--force", is_flag=True, help="Replace this lab's existing workspace (your changed files are backed up)."
)
@click.option(
    "--replace-lab", is_flag=True, help="With --force: also replace another lab's workspace in that folder."
)
@click.option("--no-backup", is_flag=True, help="With --force: do not keep a copy of your changed files.")
@target_option("Set the lab up on a live cluster instead (kind:NAME, vagrant, local, ...).")
@live_target_options
def start_cmd(
    lab: str,
    workspace: str | None,
    seed: str | None,
    force: bool,
    replace_lab: bool,
    no_backup: bool,
    target: str | None,
    kubeconfig: str | None,
    kube_context: str | None,
) -> None:
    """Start LAB: create its practice workspace, or set it up on a live cluster with --target.

    Without --workspace the workspace is ./cks-workspace/LAB; run from inside another lab's workspace, it
    goes beside that one (workspaces never nest).

    \b
    Examples:
      cks start lab1                       ./cks-workspace/lab1, the default variant
      cks start lab1 --seed alice          your own variant (names and values drawn from "alice")
      cks start lab3 -w ~/cks/lab3         somewhere else; grade with `grade lab3 -w ~/cks/lab3`
      cks start lab1 --force               start again (files you changed go to .cks-backup/)
      cks start lab2 --target kind:cks     on a live kind cluster
    """
    the_lab = load_lab(lab)
    from grader.variants import default_seed

    seed = seed or default_seed()  # a course bundle carries its learner's seed
    if target and not target.startswith("workspace:"):
        _live_action("start_live", the_lab, target, seed=seed, kubeconfig=kubeconfig, context=kube_context)
        return
    if target:
        workspace = target.split(":", 1)[1]
    from grader.workspace import WorkspaceError, start

    ws = workspace_for(the_lab, workspace)
    _check_start_folder(the_lab, ws, force)
    flag = ws_flag(the_lab, ws)
    from grader.progress import kept_across_reset

    try:
        with spinner(f"starting {the_lab.id}") as _, kept_across_reset(ws, the_lab.id):
            done = start(the_lab, ws, seed=seed, force=force, replace_other=replace_lab, backup=not no_backup)
    except WorkspaceError as exc:
        fail_usage(str(exc))
    except OSError as exc:
        fail_usage(f"cannot create the workspace at {ws}: {exc.strerror or exc}")
    _report_dropped(done)
    click.echo(
        f"Started {the_lab.id} ({the_lab.title}) in {ws}" + (f" with seed {seed}" if seed else "") + "."
    )
    click.echo(
        f"Read the exercise with `cks show {the_lab.id}{flag}`; node files are under {ws}/nodes/, "
        f"API objects under {ws}/cluster/. Grade with `grade {the_lab.id}{flag}`."
    )


def _check_start_folder(the_lab, ws: Path, force: bool) -> None:
    """Refuse (usage error) a start into a file, a folder inside another workspace or the exam's, or a
    folder that already has content, unless --force."""
    if ws.exists() and not ws.is_dir():
        fail_usage(f"{ws} is a file; choose a new folder with --workspace DIR")
    nested = _nesting_problem(the_lab, ws)
    if nested:
        fail_usage(nested)
    flag = ws_flag(the_lab, ws)
    if _has_content(ws) and not force:
        recorded = recorded_lab(ws, the_lab.id)
        if recorded == the_lab.id:
            fail_usage(
                f"{ws} already exists; grade it with `grade {the_lab.id}{flag}`, start over with "
                f"`cks reset {the_lab.id}{flag}`, or replace it with `cks start {the_lab.id}{flag} --force`"
            )
        fail_usage(
            f"{ws} already exists and is not a workspace of {the_lab.id}"
            + (f" (it holds {recorded})" if recorded else "")
            + "; choose another folder with --workspace DIR"
        )


def _has_content(ws: Path) -> bool:
    from grader import fsutil

    try:
        return ws.is_dir() and any(e.name not in {fsutil.LOCK_FILE, fsutil.BACKUP_DIR} for e in ws.iterdir())
    except OSError:
        return True


def _report_dropped(done) -> None:
    """Say which of the learner's files a start --force or reset replaced, and where copies are."""
    from grader.text import plural

    if not done.dropped:
        return
    shown = done.dropped[:20]
    more = f" and {len(done.dropped) - len(shown)} more" if len(done.dropped) > len(shown) else ""
    where = f"copies are in {done.backup}" if done.backup else "no copy kept (--no-backup)"
    click.echo(
        f"Replaced {plural(len(done.dropped), 'file')} you had changed or added ({where}): "
        + ", ".join(shown)
        + more,
        err=True,
    )
    if done.skipped:
        click.echo(f"Not copied (not regular files): {', '.join(done.skipped[:20])}", err=True)


@cks.command(
    "reset", context_settings=CONTEXT, short_help="Bring a lab back to its starting state (same seed)."
)
@lab_argument
@workspace_option("The workspace to reset (default ./cks-workspace/LAB).")
@click.option("--no-backup", is_flag=True, help="Do not keep a copy of the files you changed or added.")
@target_option("Reset the lab on a live cluster instead.")
@live_target_options
@click.option("--seed", hidden=True, metavar="ID")  # accepted only to explain that reset keeps the seed
def reset_cmd(
    lab: str,
    workspace: str | None,
    no_backup: bool,
    target: str | None,
    kubeconfig: str | None,
    kube_context: str | None,
    seed: str | None,
) -> None:
    """Bring LAB back to its starting state, with the same seed.

    The files you changed or added are listed and copied to .cks-backup/<time>/ in the workspace first
    (unless --no-backup). Only a workspace the kit created is ever reset.

    \b
    Examples:
      cks reset lab1
      cks reset lab3 -w ~/cks/lab3
      cks start lab1 --seed bob --force    a different variant: start again with another seed
    """
    the_lab = load_lab(lab)
    if seed is not None:
        where = f" --workspace {workspace}" if workspace else ""
        fail_usage(
            f"reset keeps the workspace's seed; for another variant run "
            f"`cks start {the_lab.id}{where} --seed {seed} --force`"
        )
    if target and not target.startswith("workspace:"):
        _live_action("reset_live", the_lab, target, kubeconfig=kubeconfig, context=kube_context)
        return
    if target:
        workspace = target.split(":", 1)[1]
    from grader.workspace import WorkspaceError, start

    ws = workspace_for(the_lab, workspace)
    existed = _has_content(ws)
    _check_reset_folder(the_lab, ws, existed)
    from grader.progress import kept_across_reset

    try:
        with kept_across_reset(ws, the_lab.id):
            done = start(the_lab, ws, force=existed, backup=not no_backup, same_seed=True)
    except WorkspaceError as exc:
        fail_usage(str(exc))
    except OSError as exc:
        fail_usage(f"cannot reset the workspace at {ws}: {exc.strerror or exc}")
    _report_dropped(done)
    seed = done.meta.get("seed")
    verb = "Reset" if existed else "No workspace yet: started"
    click.echo(f"{verb} {the_lab.id} in {ws}" + (f" (seed {seed})" if seed else "") + ".")


def _check_reset_folder(the_lab, ws: Path, existed: bool) -> None:
    """Refuse (usage error) to touch a folder that is not this lab's workspace, made by the kit; a new
    one must not nest in another workspace."""
    from grader import fsutil

    if not existed:
        nested = _nesting_problem(the_lab, ws)
        if nested:
            fail_usage(nested)
        return
    if not ws.is_dir():
        fail_usage(f"{ws} is a file, not a workspace")
    recorded = recorded_lab(ws, the_lab.id)
    if recorded and recorded != the_lab.id:
        fail_usage(
            f"{ws} is a workspace for {recorded}, not {the_lab.id}: use "
            f"`cks reset {recorded} --workspace {ws}`, or start {the_lab.id} elsewhere with "
            f"`cks start {the_lab.id} --workspace DIR`"
        )
    problem = fsutil.ownership_problem(ws, "workspace", the_lab.id, whole=False)
    if problem:
        fail_usage(f"{problem}; refusing to reset it")


def _live_action(name: str, lab, target: str, **kw) -> None:
    collectors, parsed = _live_target(target)
    with spinner(f"{name.split('_')[0]} {lab.id} on {target}") as status:
        try:
            getattr(collectors, name)(lab, parsed, progress=status, **kw)
        except Exception as exc:  # the cluster said no: say what and exit "could not"
            click.echo(f"Error: {exc}", err=True)
            sys.exit(EXIT_ERROR)
    click.echo(f"{name.split('_')[0].capitalize()} {lab.id} on {target}: done.")


@cks.command(
    "selftest",
    context_settings=CONTEXT,
    short_help="Prove the labs: start scores 0, solution full marks, wrong answers fail.",
)
@click.argument("labs", nargs=-1)
@click.option(
    "--seed",
    "seeds",
    multiple=True,
    metavar="ID",
    help="Seeds to test start and solution under (repeatable; default: the default lab plus two seeds).",
)
@verbose_option("List every case, not only the problems.")
@click.option(
    "--source",
    metavar="DIR",
    help="The kit's source checkout (default: $CKS_SOURCE, else found from the current directory upward).",
)
def selftest_cmd(labs: tuple[str, ...], seeds: tuple[str, ...], verbose: bool, source: str | None) -> None:
    """Prove the labs: start scores 0, the solution full marks, wrong answers fail exactly what they declare.

    Needs a source checkout (solutions/ and tests/labs/). Exit 0 when every lab proves itself, 1 otherwise.

    \b
    Examples:
      cks selftest                 every lab, default variant plus two seeds
      cks selftest lab3 -v         one lab, every case listed
      cks selftest --seed alice    start and solution under seed "alice" only
    """
    from grader.instructor.source import SourceNotFound, activate

    try:
        activate(source)
    except SourceNotFound as exc:
        fail_usage(f"selftest: {exc}")
    from grader.labs import LabError, all_labs
    from grader.selftest import DEFAULT_SEEDS, run_lab

    try:
        chosen = [load_lab(x) for x in labs] if labs else all_labs()
    except LabError as exc:
        fail_usage(str(exc))
    seed_list = tuple(None if s in ("", "default") else s for s in seeds) if seeds else DEFAULT_SEEDS
    bad = 0
    total = 0
    for lab in chosen:
        with spinner(f"selftest {lab.id}") as status:
            cases = run_lab(lab, seed_list, progress=status)
        lab_bad = [c for c in cases if not c.ok]
        total += len(cases)
        bad += len(lab_bad)
        mark = "ok" if not lab_bad else "FAILED"
        click.echo(f"{lab.id}: {len(cases) - len(lab_bad)}/{len(cases)} cases {mark}")
        for c in cases:
            if verbose or not c.ok:
                score = f"{c.report.score:g}/{c.report.max_score:g}" if c.report else "-"
                click.echo(f"  {'ok ' if c.ok else 'BAD'} {c.label}: {score}")
                for p in c.problems:
                    click.echo(f"      {p}")
    click.echo(f"{total - bad} passed, {bad} failed")
    sys.exit(EXIT_OK if bad == 0 else EXIT_FAILED)


def _exit_on_signals() -> None:
    """SIGTERM and SIGHUP unwind like Ctrl-C, so temporary folders (cks-collect-*, cks-live-*, seeded start
    states) are removed by their context managers and atexit handlers instead of being left behind."""
    import contextlib
    import signal

    def leave(signum, _frame) -> None:
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(ValueError, OSError):  # not the main thread, or a platform without it
            signal.signal(sig, leave)


# Old private names, kept while branches that still import them are merged; new code uses the public ones.
_load_lab, _workspace_for, _check_workspace, _spinner = load_lab, workspace_for, check_workspace, spinner


def main() -> None:
    _run(cks)


def grade_main() -> None:
    _run(grade_cmd)


def _run(cmd: click.Command) -> None:
    _exit_on_signals()
    try:
        cmd.main(prog_name=None, standalone_mode=True)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
