#!/usr/bin/env python3
"""Start-up and grading speed of the learner's command, against `python -c pass` in the same run.

Targets (issue 2): `grade lab1` on a workspace within 0.35 s of the floor; `grade --help` within 0.15 s.
Reports medians of N runs (default 15) of each command as a subprocess.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def median_time(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--lab", default="lab1")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cks-bench-"))
    try:
        ws = tmp / "ws"
        subprocess.run(
            [sys.executable, "-m", "grader", "start", args.lab, "--workspace", str(ws)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        floor = median_time([sys.executable, "-c", "pass"], args.runs)
        help_t = median_time(
            [sys.executable, "-c", "from grader.cli import grade_main; grade_main()", "--help"], args.runs
        )
        grade_t = median_time(
            [
                sys.executable,
                "-c",
                "from grader.cli import grade_main; grade_main()",
                args.lab,
                "--workspace",
                str(ws),
            ],
            args.runs,
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rows = [
        ("python -c pass (floor)", floor, None, None),
        ("grade --help", help_t, help_t - floor, 0.15),
        (f"grade {args.lab} (workspace)", grade_t, grade_t - floor, 0.35),
    ]
    print(f"{'command':32} {'median s':>9} {'over floor':>11} {'target':>8}")
    for name, t, over, target in rows:
        verdict = "" if target is None else ("  ok" if over <= target else "  OVER")
        print(
            f"{name:32} {t:9.3f} {'' if over is None else f'{over:11.3f}'} "
            f"{'' if target is None else f'{target:8.2f}'}{verdict}"
        )


if __name__ == "__main__":
    main()
