"""Issue 15 class 7: start/reset hold the workspace's lock and write atomically; grade refuses (error) while a
reset or start holds it; two `cks start --force` at once leave one whole variant, never a mix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from grader import fsutil, safeio
from grader.labs import get_lab
from grader.workspace import materialize
from tests.robustness.bounded import REPO, assert_clean, new_workspace, run_kit, tree

FAST = 20.0


def test_grade_refuses_while_a_reset_holds_the_lock(tmp_path: Path) -> None:
    ws = new_workspace(tmp_path, "lab1")
    with fsutil.locked(ws):
        res = run_kit("grade", "lab1", "-w", str(ws), "--format", "json", cwd=tmp_path, seconds=FAST)
    assert_clean(res, rc=3, seconds=FAST)
    tasks = json.loads(res.out)["tasks"]
    assert tasks and all(t["status"] == "error" for t in tasks)
    assert "being reset" in tasks[0]["message"]


def test_reset_waits_for_the_lock_then_gives_up_with_a_message(tmp_path: Path) -> None:
    ws = new_workspace(tmp_path, "lab1")
    with fsutil.shared_lock(ws):  # a grade in progress
        res = run_kit("reset", "lab1", "-w", str(ws), cwd=tmp_path, seconds=FAST, env={"CKS_LOCK_WAIT": "1"})
    assert_clean(res, rc=2, seconds=FAST)
    assert "in use by another cks command" in res.err


@pytest.mark.slow
def test_two_start_force_at_once_leave_one_whole_variant(tmp_path: Path) -> None:
    lab = get_lab("lab2")
    ws = new_workspace(tmp_path, "lab2", seed="first")
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1"}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "grader",
                "start",
                "lab2",
                "-w",
                str(ws),
                "--force",
                "--no-backup",
                "--seed",
                seed,
            ],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for seed in ("alice", "bob", "carol")
    ]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0 and b"Traceback" not in err, err.decode()
    seed = fsutil.read_marker(ws)["seed"]
    assert seed in ("alice", "bob", "carol")
    expected = tmp_path / "expected"
    materialize(lab, expected, seed)
    assert tree(ws) == tree(expected), "the workspace mixes two variants"
    assert "seed: " + seed in (ws / "cks.yaml").read_text()


def test_atomic_write_never_shows_half_a_file(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    payloads = [json.dumps({"n": i, "pad": "x" * 200_000}) for i in range(2)]
    safeio.atomic_write(target, payloads[0])
    stop = time.monotonic() + 1.0
    bad: list[str] = []

    def writer(i: int) -> None:
        while time.monotonic() < stop:
            safeio.atomic_write(target, payloads[i])

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    while time.monotonic() < stop:
        text = target.read_text()
        if text not in payloads:
            bad.append(text[:80])
    for t in threads:
        t.join()
    assert not bad
    assert not [p for p in tmp_path.iterdir() if p.name != "state.json"], "temporary files were left"
