"""`cks submit`: grade a workspace (or a live-collected snapshot directory) and pack the evidence."""

from __future__ import annotations

import getpass
import os
import re
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
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = "learner"
    name = re.sub(r"[^A-Za-z0-9._@+-]", "-", name).lstrip("-.") or "learner"
    return name[:100]


def submit(lab: Lab, snapshot_dir: Path, out: Path, learner: str) -> Submission:
    """Grade ``snapshot_dir`` as the learner would see it and write the bundle to ``out``."""
    from grader.runner import grade

    if not LEARNER_ID.match(learner):
        raise BundleError(f"learner id {learner!r} must be 1-100 letters, digits or . _ @ + - (use --learner)")
    if not (snapshot_dir / META_FILE).is_file():
        raise BundleError(f"{snapshot_dir} is not a cks workspace or snapshot (no {META_FILE}); "
                          f"start one with `cks start {lab.id}`")
    snap = Snapshot(snapshot_dir)
    recorded = snap.meta.get("lab")
    if recorded and recorded != lab.id:
        raise BundleError(f"{snapshot_dir} holds {recorded}, not {lab.id}")
    seed = snap.meta.get("seed")
    report = grade(lab, snap, target=f"{snap.meta.get('kind') or 'workspace'} {snapshot_dir}")
    meta = write_bundle(out, snapshot_dir, lab_id=lab.id, lab_version=lab.version,
                        lab_fingerprint=lab.fingerprint(), grader_version=__version__,
                        seed=None if seed is None else str(seed), learner=learner, result=report.to_dict(),
                        snapshot_meta=snap.meta)
    return Submission(out, meta, report)
