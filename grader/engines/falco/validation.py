"""``falco -V`` output for a :class:`~grader.engines.falco.loader.LoadResult`: text and JSON.

Pure functions of the result (Falco's ``load_result::as_string``/``as_json``): ``f.yaml: Ok``,
``f.yaml: Ok, with warnings`` or ``f.yaml: Invalid`` followed by every error with its context chain, the
offending line with a caret, and ``CODE (description): message``.
"""

from __future__ import annotations

from typing import Any

from .results import ERROR_CODES, WARNING_CODES, WARNING_DESCS, FileResult, Problem


def _problem_text(p: Problem, contents: dict[str, str]) -> str:
    desc = ERROR_CODES.get(p.code) if p.is_error else WARNING_CODES.get(p.code)
    return (
        p.context.as_string()
        + "------\n"
        + p.context.snippet(contents)
        + "------\n"
        + f"{p.code} ({desc}): {p.message}\n"
    )


def file_verbose(f: FileResult, contents: dict[str, str]) -> str:
    """Falco's verbose per-file text (what ``falco -V`` prints for an invalid file)."""
    head = f"{f.name}: " + ("Ok" + (", with warnings" if f.warnings else "") if f.successful else "Invalid")
    out = [head]
    if f.errors:
        out.append(f"\n{len(f.errors)} Errors:\n" + "".join(_problem_text(p, contents) for p in f.errors))
    if f.warnings:
        out.append(
            f"\n{len(f.warnings)} Warnings:\n" + "".join(_problem_text(p, contents) for p in f.warnings)
        )
    return "".join(out).rstrip("\n") + "\n"


def validation_text(files: list[FileResult]) -> tuple[str, str]:
    """(stdout, stderr) of ``falco -V f1 -V f2``: a summary line per valid file, full details for invalid
    files on stdout and the warnings of valid files on stderr."""
    contents = {f.name: f.content for f in files}
    out: list[str] = []
    err: list[str] = []
    for f in files:
        if f.successful:
            out.append(f"{f.name}: Ok" + (", with warnings" if f.warnings else "") + "\n")
            if f.warnings:
                err.append(file_verbose(f, contents))
        else:
            out.append(file_verbose(f, contents))
    return "".join(out), "".join(err)


def problem_json(p: Problem, contents: dict[str, str]) -> dict[str, Any]:
    ctx = {
        "locations": [loc.to_dict() for loc in p.context.locations],
        "snippet": p.context.snippet(contents),
    }
    desc = ERROR_CODES.get(p.code, "") if p.is_error else WARNING_DESCS.get(p.code, "")
    return {"code": p.code, "codedesc": desc, "context": ctx, "message": p.message}


def validation_json(files: list[FileResult]) -> dict[str, Any]:
    """``falco -o json_output=true -V ...``: ``{"falco_load_results": [...]}``."""
    contents = {f.name: f.content for f in files}
    return {
        "falco_load_results": [
            {
                "name": f.name,
                "successful": f.successful,
                "errors": [problem_json(p, contents) for p in f.errors],
                "warnings": [problem_json(p, contents) for p in f.warnings],
            }
            for f in files
        ]
    }
