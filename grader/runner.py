"""Grade a lab against a snapshot: run each task's check and turn its outcome into a scored result."""

from __future__ import annotations

import os
from collections.abc import Callable

from grader import variants
from grader.checks import CheckContext, get_check
from grader.labs import Lab, Task
from grader.results import Outcome, Report, Status, TaskResult
from grader.snapshot import FileProblem, Snapshot

LIVE_SKIP = "needs a live cluster: run `grade {lab} --target ...` on the cluster (see the lab README)"


def grade(
    lab: Lab,
    snap: Snapshot,
    *,
    target: str = "workspace",
    live: bool = False,
    only: list[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Report:
    if snap.meta_problem:  # the seed is unknown: grading against the default variant would mislead
        return all_error_report(lab, snap.meta_problem, target, only)
    seed = snap.meta.get("seed")
    seed = str(seed) if seed is not None else None
    values = variants.values_for(lab, seed)
    start_factory = None
    if lab.generator or lab.variables:
        from grader.workspace import pristine

        def start_factory() -> Snapshot:
            return pristine(lab, seed)

    outcomes: dict[str, Outcome] = {}
    blockers: dict[str, str] = {}

    def outcome_of(task: Task) -> Outcome:
        # required tasks are graded first (even when ``only`` leaves them out), each once
        if task.id not in outcomes:
            outcomes[task.id] = _grade_task(task)
        return outcomes[task.id]

    def _grade_task(task: Task) -> Outcome:
        if task.live and not live:
            return Outcome.skipped(LIVE_SKIP.format(lab=lab.id))
        for req_id in task.requires:
            required = lab.task(req_id)
            got = outcome_of(required)
            if got.status in (Status.FAIL, Status.ERROR) and got.blocks_dependents:
                blockers[task.id] = req_id
                return blocked_outcome(req_id, variants.render_text(required.title, values), got.status)
        ctx = CheckContext(snap, lab, task, live, values, start_factory)
        return run_check(ctx, task.check, variants.render(task.params, values))

    results = []
    for task in lab.tasks:
        if only and task.id not in only:
            continue
        if progress:
            progress(task.id)
        results.append(_task_result(task, outcome_of(task), values, blockers.get(task.id)))
    return Report(lab.id, variants.render_text(lab.title, values), lab.version, target, results, seed)


def _task_result(task: Task, outcome: Outcome, values: dict, blocked_by: str | None) -> TaskResult:
    """The scored result of one task: its points earned, title and hint rendered for the variant."""
    earned = round(task.points * (1.0 if outcome.status is Status.PASS else outcome.score), 2)
    return TaskResult(
        task.id,
        variants.render_text(task.title, values),
        outcome.status,
        earned,
        task.points,
        outcome.message,
        outcome.evidence,
        variants.render_text(task.hint, values),
        task.live,
        blocked_by,
    )


def blocked_outcome(req_id: str, req_title: str, status: Status) -> Outcome:
    """A task whose required task failed: 0 points and one short reason; the root error is shown once,
    there."""
    title = req_title[:1].lower() + req_title[1:] if req_title[1:2].islower() else req_title  # not "Q6:"
    if status is Status.ERROR:
        return Outcome.error(f"depends on {req_id} ({title}), which could not be checked")
    return Outcome.failed(f"depends on {req_id} ({title}), which failed: fix {req_id} first")


def all_error_report(lab: Lab, message: str, target: str, only: list[str] | None) -> Report:
    """A report in which every task (or each of ``only``) is an error with ``message``: nothing could be
    graded (the workspace or the snapshot cannot be read)."""
    values = variants.values_for(lab, None)  # titles only; nothing is graded against this variant
    results = [
        TaskResult(
            t.id, variants.render_text(t.title, values), Status.ERROR, 0.0, t.points, message, [], "", t.live
        )
        for t in lab.tasks
        if not only or t.id in only
    ]
    return Report(lab.id, variants.render_text(lab.title, values), lab.version, target, results, None)


def run_check(ctx: CheckContext, check_id: str, params: dict) -> Outcome:
    """Run one check; whatever goes wrong inside becomes an honest error, never a traceback."""
    try:
        outcome = get_check(check_id)(ctx, **params)
    except FileProblem as exc:
        if exc.is_environment_problem:
            return Outcome.error(str(exc))
        return Outcome.failed(str(exc))
    except RecursionError:
        return Outcome.error(f"check {check_id} gave up: the input is nested too deeply to check")
    except Exception as exc:  # a grader bug must not look like the learner's mistake
        if os.environ.get("CKS_DEBUG"):
            raise
        return Outcome.error(
            f"internal error in check {check_id}: {type(exc).__name__}: {exc} "
            "(please report it with `grade --debug`)"
        )
    if not isinstance(outcome, Outcome):
        return Outcome.error(f"internal error: check {check_id} returned {type(outcome).__name__}")
    return outcome
