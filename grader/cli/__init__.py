"""`cks` and `grade`: the command line. Subcommand modules load lazily so `grade --help` stays fast.

Exit codes: 0 every graded task passes, 1 a task failed, 2 usage error, 3 could not check.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import click

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_ERROR = 0, 1, 2, 3
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class LazyGroup(click.Group):
    """A group whose subcommands live in other modules and are imported only when used."""

    def __init__(self, *args, lazy: dict[str, tuple[str, str]] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = lazy or {}  # name -> ("module:attr", short help)

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
        rows = []
        for name in self.list_commands(ctx):
            if name in self.lazy:
                rows.append((name, self.lazy[name][1]))
            else:
                cmd = super().get_command(ctx, name)
                if cmd is not None and not cmd.hidden:
                    rows.append((name, cmd.get_short_help_str(limit=80)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _unavailable(name: str, short: str, exc: Exception) -> click.Command:
    @click.command(name, help=f"{short} (not available: {exc})", context_settings={"ignore_unknown_options": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def cmd(args: tuple[str, ...]) -> None:
        raise click.UsageError(f"`{name}` is not available in this install: {exc}")

    return cmd


def fail_usage(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(EXIT_USAGE)


def _load_lab(lab_id: str | None):
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


def lab_argument(f):
    """LAB, optional to click so a missing one gets a message that lists the labs (exit 2)."""
    return click.argument("lab", required=False, metavar="LAB")(f)


def _workspace_for(lab, workspace: str | None) -> Path:
    from grader.workspace import default_dir

    return Path(workspace) if workspace else default_dir(lab)


def _ws_flag(lab, ws: Path) -> str:
    """` --workspace DIR` when DIR is not the default one, so suggested commands work as typed."""
    return "" if ws == _workspace_for(lab, None) else f" --workspace {ws}"


def _check_workspace(lab, ws: Path) -> dict:
    """The metadata of the workspace at ``ws`` for ``lab``, or exit 2 saying what to do instead."""
    from grader.snapshot import META_FILE, Snapshot

    if not (ws / META_FILE).is_file():
        if ws.is_dir():
            fail_usage(f"{ws} is not a cks workspace (no {META_FILE}); start one with "
                       f"`cks start {lab.id} --workspace DIR` in a new or empty folder")
        if ws.exists():
            fail_usage(f"{ws} is a file, not a workspace; start one with `cks start {lab.id}`")
        fail_usage(f"no workspace for {lab.id} at {ws}; start one with `cks start {lab.id}{_ws_flag(lab, ws)}`")
    meta = Snapshot(ws).meta
    recorded = meta.get("lab")
    if recorded and recorded != lab.id:
        fail_usage(f"{ws} is a workspace for {recorded}, not {lab.id}: use `{_prog()} {recorded} --workspace {ws}`, "
                   f"or start {lab.id} with `cks start {lab.id}`")
    return meta


# ---- grade ----------------------------------------------------------------------------------------

GRADE_HELP = """Grade LAB: each task with its status, points, a one-line reason, and hints for what failed.

\b
LAB is a lab id such as lab1 (`cks list` shows them). Where it grades:
  --workspace DIR      an offline practice workspace (default ./cks-workspace/LAB)
  --target T           kind[:NAME] | vagrant[:MACHINE] | local | ssh://HOST | workspace:DIR
With neither, it grades the local node when run on a control-plane node, else the workspace.

\b
Examples:
  cks start lab1 && grade lab1          start the practice workspace, then grade it
  grade lab1 -v                         also show evidence: where, expected, actual
  grade lab1 --format json -o r.json    machine-readable result (table still printed)
  grade lab1 --format junit > r.xml     JUnit XML for CI (pytest's shape)
  grade lab1 --task t3 --task t4        only these tasks
  grade lab3 --target vagrant:controlplane

\b
Exit codes: 0 all graded tasks pass, 1 a task failed, 2 usage error, 3 could not check
(cluster down, file unreadable). Tasks that need a live cluster are skipped offline.
"""


def _grade_options(f):
    for opt in reversed([
        click.argument("lab", required=False, metavar="LAB"),
        click.option("--workspace", "-w", metavar="DIR", help="Practice workspace to grade (default ./cks-workspace/LAB)."),
        click.option("--target", "-t", metavar="T", help="kind[:NAME] | vagrant[:MACHINE] | local | ssh://HOST | workspace:DIR"),
        click.option("--kubeconfig", metavar="FILE", help="Kubeconfig for live targets (default $KUBECONFIG)."),
        click.option("--context", "kube_context", metavar="NAME", help="Kubeconfig context for live targets."),
        click.option("--in-cluster", is_flag=True, help="Use the Pod's ServiceAccount (grader running in a Job)."),
        click.option("--format", "-f", "fmt", type=click.Choice(["table", "json", "junit"]), default="table",
                     show_default=True, help="Output format."),
        click.option("--output", "--out", "-o", "output", metavar="FILE",
                     help="Write the chosen format to FILE (the table still prints)."),
        click.option("--task", "tasks", multiple=True, metavar="ID", help="Grade only these tasks (repeatable)."),
        click.option("-v", "--verbose", is_flag=True, help="Show evidence (where, expected, actual) for every task."),
        click.option("--debug", is_flag=True, hidden=True, help="Let internal errors raise (for grader developers)."),
    ]):
        f = opt(f)
    return f


def _grade(lab_id: str, workspace: str | None, target: str | None, kubeconfig: str | None, kube_context: str | None,
           in_cluster: bool, fmt: str, output: str | None, tasks: tuple[str, ...], verbose: bool, debug: bool) -> None:
    if debug:
        os.environ["CKS_DEBUG"] = "1"
    lab = _load_lab(lab_id)
    for tid in tasks:
        if tid not in {t.id for t in lab.tasks}:
            fail_usage(f"{lab.id} has no task {tid!r}; its tasks are {', '.join(t.id for t in lab.tasks)}")
    if target and target.startswith("workspace:"):
        workspace, target = target.split(":", 1)[1], None
    if workspace is None and target is None and not in_cluster:
        target = "local" if Path("/etc/kubernetes/manifests/kube-apiserver.yaml").is_file() else None
    if target is None and not in_cluster:
        report = _grade_workspace(lab, _workspace_for(lab, workspace), tasks)
    else:
        report = _grade_live(lab, target or "local", kubeconfig, kube_context, in_cluster, tasks)
    _emit(report, fmt, output, verbose)
    sys.exit(report.exit_code)


def _grade_workspace(lab, ws: Path, tasks: tuple[str, ...]):
    from grader.runner import grade
    from grader.snapshot import Snapshot

    _check_workspace(lab, ws)
    snap = Snapshot(ws)
    if snap.meta.get("lab_version") not in (None, lab.version):
        click.echo(f"Warning: {ws} was started with {lab.id} version {snap.meta.get('lab_version')}, "
                   f"the installed lab is version {lab.version}; `cks reset {lab.id}` starts it afresh.", err=True)
    return grade(lab, snap, target=f"workspace {ws}", only=list(tasks) or None)


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
    with tempfile.TemporaryDirectory(prefix="cks-collect-") as tmp, _spinner(f"collecting {lab.id} from {target}") as status:
        result = collectors.collect(lab, parsed, Path(tmp), kubeconfig=kubeconfig, context=kube_context,
                                    in_cluster=in_cluster, progress=status)
        return grade(lab, Snapshot(result.snapshot_dir), target=result.label, live=True, only=list(tasks) or None)


class _spinner:
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


def _emit(report, fmt: str, output: str | None, verbose: bool) -> None:
    from grader.reporters import render

    if output:
        try:
            Path(output).write_text(render(report, fmt, verbose=verbose, color=False))
        except OSError as exc:
            fail_usage(f"cannot write {output}: {exc.strerror}")
        if fmt != "table":
            click.echo(render(report, "table", verbose=verbose, color=_color()), nl=False)
        return
    click.echo(render(report, fmt, verbose=verbose, color=_color() if fmt == "table" else False), nl=False)


def _color() -> bool:
    return "NO_COLOR" not in os.environ and sys.stdout.isatty()


@click.command("grade", help=GRADE_HELP, context_settings=CONTEXT,
               short_help="Grade a lab: status, points, a reason and hints per task.")
@_grade_options
def grade_cmd(**kw) -> None:
    _grade(kw.pop("lab"), **kw)


# ---- cks ------------------------------------------------------------------------------------------

CKS_HELP = """CKS runtime-security lab kit: audit logging, Falco, immutable and unprivileged containers.

\b
Learners:     cks list · cks show lab1 · cks start lab1 · grade lab1 · cks hint lab1
Study tools:  cks audit validate|simulate|query · cks falco validate|test|explain · cks pods check
Instructors:  cks selftest · cks solve · cks dist · cks submit · cks regrade · cks exam
"""


@click.group("cks", cls=LazyGroup, help=CKS_HELP, context_settings=CONTEXT, lazy={
    "audit": ("grader.cli.study:audit_group", "Audit policies and logs: validate, simulate, query."),
    "falco": ("grader.cli.falco:falco_group", "Falco rules: validate, test on events, explain."),
    "pods": ("grader.cli.pods:pods_group", "Pod security: check manifests against PSS and CKS hardening."),
    "apiserver": ("grader.cli.study:apiserver_group", "kube-apiserver manifest: audit flags and mounts."),
    "collect": ("grader.cli.live:collect_cmd", "Collect a live lab's evidence into a snapshot archive."),
    "submit": ("grader.cli.instructor:submit_cmd", "Pack your lab's evidence and result for your instructor."),
    "regrade": ("grader.cli.instructor:regrade_cmd", "Regrade submitted bundles into a class CSV and HTML report."),
    "dist": ("grader.cli.instructor:dist_cmd", "Build a learner bundle with chosen labs and no solutions."),
    "solve": ("grader.cli.instructor:solve_cmd", "Apply the reference solution for a seed (instructors)."),
    "exam": ("grader.cli.exam:exam_group", "Timed mock exam: start, status, finish."),
})
@click.version_option(package_name="cks-kit", prog_name="cks")
def cks() -> None:
    pass


cks.add_command(grade_cmd)


@cks.command("list", context_settings=CONTEXT, short_help="List the labs with their topics, time and points.")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="Output format.")
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
        import json

        click.echo(json.dumps([{"id": lab.id, "title": lab.title, "topics": list(lab.topics), "minutes": lab.minutes,
                                "points": lab.max_points, "live_tasks": [t.id for t in lab.tasks if t.live]}
                               for lab in labs], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("Lab", "Title", "Topics", "Minutes", "Points", "Live-only tasks")
    for lab in labs:
        table.add_row(lab.id, lab.title, ", ".join(lab.topics), str(lab.minutes), f"{lab.max_points:g}",
                      ", ".join(t.id for t in lab.tasks if t.live) or "-")
    from grader.reporters.table import _width

    Console(no_color=not _color(), width=_width()).print(table)


def _variant_values(lab, workspace: str | None, seed: str | None) -> tuple[dict, str | None]:
    """The values a learner's instance uses: from --seed, else the seed recorded in the workspace."""
    from grader import variants
    from grader.snapshot import Snapshot

    if seed is None:
        ws = _workspace_for(lab, workspace)
        if workspace:  # named on purpose: it must be this lab's workspace
            _check_workspace(lab, ws)
        recorded = Snapshot(ws).meta.get("seed") if ws.is_dir() else None
        seed = str(recorded) if recorded is not None else None
    return variants.values_for(lab, seed), seed


@cks.command("show", context_settings=CONTEXT, short_help="Show a lab's exercise, with your variant's values.")
@lab_argument
@click.option("--workspace", "-w", metavar="DIR", help="Show the variant of this workspace (default ./cks-workspace/LAB).")
@click.option("--seed", metavar="ID", help="Show the variant for this seed.")
@click.option("--target", "-t", metavar="T", help="The cluster you do the lab on: on kind:NAME it adds how to edit node files.")
def show_cmd(lab: str, workspace: str | None, seed: str | None, target: str | None = None) -> None:
    """Show LAB's exercise text (its README), with your variant's names and values filled in.

    \b
    Examples:
      cks show lab1                        the exercise for ./cks-workspace/lab1
      cks show lab1 --workspace ~/exam/q1  the variant of another workspace
      cks show lab1 | less -R              page through it
    """
    the_lab = _load_lab(lab)
    from rich.console import Console
    from rich.markdown import Markdown

    from grader import variants

    values, _ = _variant_values(the_lab, workspace, seed)
    text = variants.render_text(the_lab.readme.read_text(), values)
    if target:
        from grader.cli.live import target_note

        text += target_note(the_lab, target, values)
    Console(no_color=not _color()).print(Markdown(text))


@cks.command("start", context_settings=CONTEXT, short_help="Start a lab: create its practice workspace.")
@lab_argument
@click.option("--workspace", "-w", metavar="DIR", help="Where to create the workspace (default ./cks-workspace/LAB).")
@click.option("--seed", metavar="ID", help="Per-learner variant: names and values drawn from ID.")
@click.option("--force", is_flag=True, help="Replace an existing workspace (your changes are lost).")
@click.option("--target", "-t", metavar="T", help="Set the lab up on a live cluster instead (kind:NAME, vagrant, local, ...).")
@click.option("--kubeconfig", metavar="FILE", help="Kubeconfig for live targets (default $KUBECONFIG).")
@click.option("--context", "kube_context", metavar="NAME", help="Kubeconfig context for live targets.")
def start_cmd(lab: str, workspace: str | None, seed: str | None, force: bool, target: str | None,
              kubeconfig: str | None, kube_context: str | None) -> None:
    """Start LAB: create its practice workspace, or set it up on a live cluster with --target.

    \b
    Examples:
      cks start lab1                       ./cks-workspace/lab1, the default variant
      cks start lab1 --seed alice          your own variant (names and values drawn from "alice")
      cks start lab3 -w ~/cks/lab3         somewhere else; grade with `grade lab3 -w ~/cks/lab3`
      cks start lab1 --force               throw your work away and start again
      cks start lab2 --target kind:cks     on a live kind cluster
    """
    the_lab = _load_lab(lab)
    if target and not target.startswith("workspace:"):
        _live_action("start_live", the_lab, target, seed=seed, kubeconfig=kubeconfig, context=kube_context)
        return
    if target:
        workspace = target.split(":", 1)[1]
    from grader.workspace import WorkspaceError, start

    ws = _workspace_for(the_lab, workspace)
    if ws.exists() and not ws.is_dir():
        fail_usage(f"{ws} is a file; choose a new folder with --workspace DIR")
    if ws.is_dir() and any(ws.iterdir()) and not force:
        from grader.snapshot import Snapshot

        flag = _ws_flag(the_lab, ws)
        recorded = Snapshot(ws).meta.get("lab")
        if recorded == the_lab.id:
            fail_usage(f"{ws} already exists; grade it with `grade {the_lab.id}{flag}`, start over with "
                       f"`cks reset {the_lab.id}{flag}`, or replace it with `cks start {the_lab.id}{flag} --force`")
        fail_usage(f"{ws} already exists and is not a workspace of {the_lab.id}"
                   + (f" (it holds {recorded})" if recorded else "") + "; choose another folder with --workspace DIR")
    try:
        with _spinner(f"starting {the_lab.id}") as _:
            start(the_lab, ws, seed=seed, force=force)
    except WorkspaceError as exc:
        fail_usage(str(exc))
    except OSError as exc:
        fail_usage(f"cannot create the workspace at {ws}: {exc.strerror or exc}")
    click.echo(f"Started {the_lab.id} ({the_lab.title}) in {ws}" + (f" with seed {seed}" if seed else "") + ".")
    flag = _ws_flag(the_lab, ws)
    click.echo(f"Read the exercise with `cks show {the_lab.id}{flag}`; node files are under {ws}/nodes/, API objects "
               f"under {ws}/cluster/. Grade with `grade {the_lab.id}{flag}`.")


@cks.command("reset", context_settings=CONTEXT, short_help="Bring a lab back to its starting state (same seed).")
@lab_argument
@click.option("--workspace", "-w", metavar="DIR", help="The workspace to reset (default ./cks-workspace/LAB).")
@click.option("--target", "-t", metavar="T", help="Reset the lab on a live cluster instead.")
@click.option("--kubeconfig", metavar="FILE", help="Kubeconfig for live targets (default $KUBECONFIG).")
@click.option("--context", "kube_context", metavar="NAME", help="Kubeconfig context for live targets.")
@click.option("--seed", hidden=True, metavar="ID")  # accepted only to explain that reset keeps the seed
def reset_cmd(lab: str, workspace: str | None, target: str | None, kubeconfig: str | None,
              kube_context: str | None, seed: str | None) -> None:
    """Bring LAB back to its starting state, with the same seed. Your changes are lost.

    \b
    Examples:
      cks reset lab1
      cks reset lab3 -w ~/cks/lab3
      cks start lab1 --seed bob --force    a different variant: start again with another seed
    """
    the_lab = _load_lab(lab)
    if seed is not None:
        where = f" --workspace {workspace}" if workspace else ""
        fail_usage(f"reset keeps the workspace's seed; for another variant run "
                   f"`cks start {the_lab.id}{where} --seed {seed} --force`")
    if target and not target.startswith("workspace:"):
        _live_action("reset_live", the_lab, target, kubeconfig=kubeconfig, context=kube_context)
        return
    if target:
        workspace = target.split(":", 1)[1]
    from grader.workspace import WorkspaceError, reset_dir, start

    ws = _workspace_for(the_lab, workspace)
    existed = ws.exists()
    if existed:  # never delete a folder that is not this lab's workspace
        seed = _check_workspace(the_lab, ws).get("seed")
    try:
        if existed:
            reset_dir(ws)
        start(the_lab, ws, seed=seed)
    except WorkspaceError as exc:
        fail_usage(str(exc))
    except OSError as exc:
        fail_usage(f"cannot reset the workspace at {ws}: {exc.strerror or exc}")
    verb = "Reset" if existed else "No workspace yet: started"
    click.echo(f"{verb} {the_lab.id} in {ws}" + (f" (seed {seed})" if seed else "") + ".")


def _live_action(name: str, lab, target: str, **kw) -> None:
    collectors, parsed = _live_target(target)
    with _spinner(f"{name.split('_')[0]} {lab.id} on {target}") as status:
        try:
            getattr(collectors, name)(lab, parsed, progress=status, **kw)
        except Exception as exc:  # the cluster said no: say what and exit "could not"
            click.echo(f"Error: {exc}", err=True)
            sys.exit(EXIT_ERROR)
    click.echo(f"{name.split('_')[0].capitalize()} {lab.id} on {target}: done.")


@cks.command("hint", context_settings=CONTEXT, short_help="Show the hints for a lab's tasks.")
@lab_argument
@click.argument("task", required=False)
@click.option("--workspace", "-w", metavar="DIR", help="Hints for this workspace's variant (default ./cks-workspace/LAB).")
def hint_cmd(lab: str, task: str | None, workspace: str | None) -> None:
    """Show the hints for LAB's tasks, or for one TASK (t1, t2, ...).

    \b
    Examples:
      cks hint lab1        every task's hint
      cks hint lab1 t3     only task t3
    """
    the_lab = _load_lab(lab)
    from grader import variants
    from grader.labs import LabError

    try:
        tasks = [the_lab.task(task)] if task else list(the_lab.tasks)
    except LabError as exc:
        fail_usage(str(exc))
    import shutil
    import textwrap

    values, _ = _variant_values(the_lab, workspace, None)
    width = max(40, min(shutil.get_terminal_size((100, 24)).columns, 100))
    for t in tasks:
        unit = "point" if t.points == 1 else "points"
        hint = textwrap.fill(variants.render_text(t.hint, values), width, initial_indent="  hint: ",
                             subsequent_indent="        ", break_long_words=False, break_on_hyphens=False)
        click.echo(variants.render_text(f"{t.id} ({t.points:g} {unit}) {t.title}\n", values) + hint + "\n")


@cks.command("selftest", context_settings=CONTEXT,
             short_help="Prove the labs: start scores 0, solution full marks, wrong answers fail.")
@click.argument("labs", nargs=-1)
@click.option("--seed", "seeds", multiple=True, metavar="ID",
              help="Seeds to test start and solution under (repeatable; default: the default lab plus two seeds).")
@click.option("-v", "--verbose", is_flag=True, help="List every case, not only the problems.")
def selftest_cmd(labs: tuple[str, ...], seeds: tuple[str, ...], verbose: bool) -> None:
    """Prove the labs: start scores 0, the solution full marks, wrong answers fail exactly what they declare.

    Needs a source checkout (solutions/ and tests/labs/). Exit 0 when every lab proves itself, 1 otherwise.

    \b
    Examples:
      cks selftest                 every lab, default variant plus two seeds
      cks selftest lab3 -v         one lab, every case listed
      cks selftest --seed alice    start and solution under seed "alice" only
    """
    from grader.labs import LabError, all_labs, repo_root
    from grader.selftest import DEFAULT_SEEDS, run_lab

    if repo_root() is None:
        fail_usage("selftest needs a source checkout of the kit (solutions/ and tests/labs/)")
    try:
        chosen = [_load_lab(x) for x in labs] if labs else all_labs()
    except LabError as exc:
        fail_usage(str(exc))
    seed_list = tuple(None if s in ("", "default") else s for s in seeds) if seeds else DEFAULT_SEEDS
    bad = 0
    total = 0
    for lab in chosen:
        with _spinner(f"selftest {lab.id}") as status:
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


def main() -> None:
    _run(cks)


def grade_main() -> None:
    _run(grade_cmd)


def _run(cmd: click.Command) -> None:
    try:
        cmd.main(prog_name=None, standalone_mode=True)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
