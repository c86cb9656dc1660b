"""Generic file checks, for tasks whose answer is a file the learner writes."""

from __future__ import annotations

from grader.checks import CheckContext, check
from grader.results import Evidence, Outcome
from grader.snapshot import FileProblem


@check("files.present")
def present(ctx: CheckContext, node: str, path: str) -> Outcome:
    """The file exists on the node and is not empty."""
    where = f"{node}:{path}"
    try:
        text = ctx.snap.read_text(node, path)
    except FileProblem as exc:
        outcome = Outcome.error if exc.is_environment_problem else Outcome.failed
        return outcome(str(exc), Evidence(where, "a non-empty file", exc.kind.replace("_", " ")))
    if not text.strip():
        return Outcome.failed(f"{where} is empty", Evidence(where, "a non-empty file", "empty"))
    return Outcome.passed(
        f"{where} is present", Evidence(where, "a non-empty file", f"{len(text)} characters")
    )
