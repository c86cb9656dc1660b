"""Regrade a class of generated evidence bundles and report the wall time (target: 500 bundles < 30 s).

Bundles are made from every lab that has a reference solution, spread evenly (learner ``i`` takes lab
``i mod n``), lab7 included: its starting state (a 20,000+ event audit log) is generated per seed, so the
grader rebuilds it for every lab7 learner, and that cost belongs in the figure. Each learner gets a seed and
hands in the starting state, the solution or a wrong-answer fixture, so grading does real work on every
path. The same run regrades a sample of each lab with one worker: the per-lab cost, and the speed-up from
using every core (a peer in the same run, not an absolute figure from another machine).

    python bench/bench_regrade.py                 # 500 bundles, all cores, all labs
    python bench/bench_regrade.py --count 100 --jobs 2 --labs lab1,lab2
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _usable_labs(wanted: list[str] | None) -> list[str]:
    from grader.labs import LabError, get_lab, lab_dirs

    out = []
    for lab_id in wanted or list(lab_dirs()):
        try:
            get_lab(lab_id)
        except LabError as exc:
            print(f"  skipping {lab_id}: {exc}", file=sys.stderr)
            continue
        if (ROOT / "solutions" / lab_id).is_dir():
            out.append(lab_id)
    return out


def _scratch() -> None:
    from grader.instructor.regrade import scratch_dir

    tempfile.tempdir = scratch_dir() or tempfile.gettempdir()


def _make_bundle(args: tuple[int, str, int, str]) -> str:
    """Learner ``i`` of the class: a workspace for their seed; ``turn`` (the learner's rank within the lab)
    picks the start, the solution, or the solution with a wrong-answer fixture on top (two turns in four)."""
    i, lab_id, turn, out_dir = args
    from grader import __version__, variants
    from grader.instructor.bundle import write_bundle
    from grader.labs import get_lab
    from grader.selftest import fixture_cases
    from grader.snapshot import Snapshot
    from grader.solutions import apply_overlay, solution_dir
    from grader.workspace import forget_pristine, materialize

    lab = get_lab(lab_id)
    seed = f"learner{i:04d}"
    ws = Path(tempfile.mkdtemp(prefix="cks-bench-ws-"))
    try:
        materialize(lab, ws / "w", seed)
        values = variants.values_for(lab, seed)
        wrong = [
            d for name, d, _fails, fseed in fixture_cases(lab) if name.startswith("wrong/") and fseed is None
        ]
        kind = turn % 4
        if kind >= 1:
            apply_overlay(solution_dir(lab), ws / "w", values)
        if kind >= 2 and wrong:
            apply_overlay(wrong[turn % len(wrong)], ws / "w", values)
        out = Path(out_dir) / f"{seed}-{lab_id}.tar.gz"
        # what `cks submit` writes, minus its own grading (the regrade never trusts it; this keeps setup
        # short)
        write_bundle(
            out,
            ws / "w",
            lab_id=lab.id,
            lab_version=lab.version,
            lab_fingerprint=lab.fingerprint(),
            grader_version=__version__,
            seed=seed,
            learner=seed,
            result={"lab": lab.id},
            snapshot_meta=Snapshot(ws / "w").meta,
        )
        return str(out)
    finally:
        shutil.rmtree(ws, ignore_errors=True)
        forget_pristine(lab, seed)  # pool workers exit without atexit handlers: clean up here


def _make_class(labs: list[str], count: int, jobs: int, out_dir: Path) -> list[str]:
    """``count`` bundles in an even spread: learner i takes lab i mod n, and each lab sees every kind of
    hand-in in turn."""
    work = [(i, labs[i % len(labs)], i // len(labs), str(out_dir)) for i in range(count)]
    with ProcessPoolExecutor(max_workers=jobs, initializer=_scratch) as pool:
        return list(pool.map(_make_bundle, work, chunksize=8))


def _per_lab_cost(bundles: list[str], labs: list[str], k: int) -> dict[str, float]:
    """The peer in the same run: seconds per bundle with one worker, over the first ``k`` bundles of each
    lab (which lab costs what)."""
    from grader.instructor.regrade import regrade_many

    per_lab: dict[str, float] = {}
    for lab_id in labs:
        sample = [b for b in bundles if b.endswith(f"-{lab_id}.tar.gz")][:k]
        t0 = time.perf_counter()
        regrade_many(sample, jobs=1)
        per_lab[lab_id] = (time.perf_counter() - t0) / len(sample)
    return per_lab


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=500, help="bundles to regrade (default 500)")
    ap.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="worker processes (default: all cores)"
    )
    ap.add_argument("--labs", help="comma-separated labs for the class (default: every lab with a solution)")
    ap.add_argument(
        "--sample", type=int, default=60, help="bundles regraded with one worker for the per-lab cost"
    )
    args = ap.parse_args()

    from grader.instructor.regrade import regrade_many, write_csv

    labs = _usable_labs(args.labs.split(",") if args.labs else None)
    if not labs:
        print("no lab with a reference solution is available to generate bundles from", file=sys.stderr)
        return 2
    from grader.instructor.regrade import scratch_dir

    tmp = Path(tempfile.mkdtemp(prefix="cks-bench-regrade-", dir=scratch_dir()))
    try:
        t0 = time.perf_counter()
        bundles = _make_class(labs, args.count, args.jobs, tmp)
        gen = time.perf_counter() - t0
        size = sum(Path(b).stat().st_size for b in bundles)

        t0 = time.perf_counter()
        cls = regrade_many(bundles, jobs=args.jobs)
        rows = write_csv(cls, tmp / "class.csv")
        from grader.instructor.html import write_html

        write_html(cls, tmp / "class.html")
        wall = time.perf_counter() - t0

        k = max(2, args.sample // len(labs))
        per_lab = _per_lab_cost(bundles, labs, k)
        share = {lab_id: sum(1 for b in bundles if b.endswith(f"-{lab_id}.tar.gz")) for lab_id in labs}
        serial = sum(per_lab[x] * share[x] for x in labs)  # the class regraded by one worker, estimated
        bad = sum(1 for b in cls.bundles if b.error)
        # the class's scores per lab: start, solution and wrong answers mixed
        marks: dict[str, list[float]] = {}
        for b in cls.bundles:
            if b.lab and b.max_score and not b.error:
                marks.setdefault(b.lab, []).append(b.score / b.max_score)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    per = wall / len(bundles)
    print(
        f"regrade bench: {len(bundles)} bundles, {len(labs)} labs spread evenly ({size / 1048576:.1f} MB, "
        f"generated in {gen:.1f} s)"
    )
    print(
        f"  regrade + CSV + HTML, {args.jobs} workers: {wall:6.2f} s wall  ({per * 1000:.1f} ms/bundle, "
        f"{len(rows)} learners, {bad} bad bundles)"
    )
    print(
        f"  one worker, {k} bundles per lab: {serial / len(bundles) * 1000:.1f} ms/bundle for this mix "
        f"-> speed-up {serial / wall:.2f}x with {args.jobs} workers"
    )
    print("  per lab, one worker:   lab    bundles  ms/bundle  share of the work  mean score")
    for x in labs:
        mean = sum(marks.get(x, [])) / max(1, len(marks.get(x, [])))
        print(
            f"{'':25}{x:<6} {share[x]:7d} {per_lab[x] * 1000:10.0f} {per_lab[x] * share[x] / serial:11.0%}"
            f" {mean:17.0%}"
        )
    target = 30.0 * len(bundles) / 500
    print(f"  target: {len(bundles)} bundles in < {target:.0f} s -> {'met' if wall < target else 'NOT met'}")
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
