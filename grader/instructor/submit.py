"""`cks submit`: grade a workspace (or a live-collected snapshot directory) and pack the evidence."""

from __future__ import annotations

import getpass
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader import __version__
from grader.instructor.bundle import LEARNER_ID, BundleError, write_bundle
from grader.labs import Lab
from grader.results import Report
from grader.snapshot import META_FILE, Snapshot


@dataclass
class Submission:
    path: Path
    meta: dict[str, Any]
    report: Report


def default_learner() -> str:
    """$CKS_LEARNER, else the login name made into a plain id."""
    env = os.environ.get("CKS_LEARNER")
    if env:
        return env
    from grader.variants import course

    baked = course().get("learner")
    if isinstance(baked, str) and LEARNER_ID.match(baked):
        return baked  # a course bundle is built for one learner
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = "learner"
    name = re.sub(r"[^A-Za-z0-9._@+-]", "-", name).lstrip("-.") or "learner"
    return name[:100]


ALWAYS = ("cluster/", "facts/", ".cks/")  # API objects, live facts, the workspace's own records (hints used)


def collected_paths(lab: Lab, values: dict[str, Any]) -> Callable[[str], bool] | None:
    """Which workspace files belong in a bundle: cks.yaml, the API objects and the node files and folders
    the lab collects. Anything else (a learner's notes, a copy of ~/.ssh) stays on the learner's machine."""
    from grader import variants

    if not lab.collect.files and not lab.collect.dirs:
        return None  # a lab that declares nothing to collect (a test lab): the whole workspace
    files, dirs = set(), []
    for spec in lab.collect.files:
        files.add(f"nodes/{spec.node}/{variants.render_text(spec.path, values).strip('/')}")
    for spec in lab.collect.dirs:
        dirs.append(f"nodes/{spec.node}/{variants.render_text(spec.path, values).strip('/')}/")

    def wanted(rel: str) -> bool:
        return (
            rel == META_FILE or rel in files or rel.startswith(ALWAYS) or any(rel.startswith(d) for d in dirs)
        )

    return wanted


def submit(lab: Lab, snapshot_dir: Path, out: Path, learner: str) -> Submission:
    """Grade ``snapshot_dir`` as the learner would see it and write the bundle to ``out``."""
    from grader import variants
    from grader.runner import grade

    if not LEARNER_ID.match(learner):
        raise BundleError(
            f"learner id {learner!r} must be 1-100 letters, digits or . _ @ + - (use --learner)"
        )
    if not (snapshot_dir / META_FILE).is_file():
        raise BundleError(
            f"{snapshot_dir} is not a cks workspace or snapshot (no {META_FILE}); "
            f"start one with `cks start {lab.id}`"
        )
    from grader.exam import unfinished_exam_for

    running = unfinished_exam_for(snapshot_dir)
    if running is not None:  # handing in grades the work: not before the exam's results are due
        raise BundleError(
            f"{snapshot_dir} is a question of an exam that is still running; hand in after "
            f"`cks exam finish --dir {running.dir}`"
        )
    snap = Snapshot(snapshot_dir)
    recorded = snap.meta.get("lab")
    if recorded and recorded != lab.id:
        raise BundleError(f"{snapshot_dir} holds {recorded}, not {lab.id}")
    seed = snap.meta.get("seed")
    seed = None if seed is None else str(seed)
    extra: dict[str, Any] = {}
    record = exam_record_for(snapshot_dir, snap.meta)
    if record is not None:
        extra["exam"] = record
    from grader import fsutil

    try:  # a start or reset in progress: refuse rather than pack half a state
        with fsutil.shared_lock(snapshot_dir):
            report = grade(lab, snap, target=f"{snap.meta.get('kind') or 'workspace'} {snapshot_dir}")
            meta = write_bundle(
                out,
                snapshot_dir,
                lab_id=lab.id,
                lab_version=lab.version,
                lab_fingerprint=lab.fingerprint(),
                grader_version=__version__,
                seed=seed,
                learner=learner,
                result=report.to_dict(),
                snapshot_meta=snap.meta,
                collected=collected_paths(lab, variants.values_for(lab, seed)),
                extra=extra,
            )
    except fsutil.Busy as exc:
        raise BundleError(str(exc).replace("grade again", "submit again")) from None
    return Submission(out, meta, report)


def exam_record_for(workspace: Path, meta: dict[str, Any]) -> dict[str, Any] | None:
    """The exam record when ``workspace`` is a question of an exam (its parent holds exam.yaml)."""
    from grader import exam

    base = workspace.resolve().parent
    if not (base / exam.STATE_FILE).is_file():
        return None
    try:
        return exam.record(exam.load(base), meta)
    except exam.ExamError as exc:
        return {"error": str(exc)}
