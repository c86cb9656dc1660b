"""Hostile bundles, submissions and exam folders (issue 15: classes 4, 6, 7, 9 for the instructor tools).

Every case runs in a subprocess with a wall-clock bound and an address-space limit (``resource``), and must
end with exit 0, 1 or 2 and no traceback: no hang, no unbounded memory, no crash, nothing deleted that the
kit did not create. Cases that need a hanging or ballooning grader fork children from an interpreter whose
grader is patched in the child script itself.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import tarfile
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow  # a fresh interpreter per case: ~1-6 s each
MEMORY_MB = 2048  # per case, for the parent; regrade children get their own budget
LAB = "lab1"


def bounded(
    code: str,
    tmp: Path,
    *,
    seconds: float = 120,
    env: dict[str, str] | None = None,
    memory_mb: int = MEMORY_MB,
) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter bounded in time and memory; fail on a hang or a traceback."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory_mb * 1024 * 1024, resource.RLIM_INFINITY))
        os.setsid()

    full_env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1", **(env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=tmp,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=limit,
    )
    try:
        out, err = proc.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"hang: over {seconds} s")
    assert "Traceback" not in err, err[-3000:]
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _workspace(tmp: Path, name: str, seed: str | None = None) -> Path:
    from grader.labs import get_lab
    from grader.solutions import apply_solution
    from grader.workspace import materialize

    ws = tmp / name
    materialize(get_lab(LAB), ws, seed or name)
    apply_solution(get_lab(LAB), ws, seed or name)
    return ws


def _bundle(tmp: Path, learner: str) -> Path:
    from grader.instructor.submit import submit
    from grader.labs import get_lab

    return submit(get_lab(LAB), _workspace(tmp, f"ws-{learner}"), tmp / f"{learner}.tar.gz", learner).path


# ---- class 4: one bundle never stalls a class -------------------------------------------------------------

REGRADE_WITH = """
import json, sys, time
from grader.instructor import regrade
from grader.instructor.pool import Budget
real = regrade._regrade_with_roster
def patched(path, roster, limits):
    if "{trigger}" in path:
        {action}
    return real(path, roster, limits)
regrade._regrade_with_roster = patched
budget = Budget(seconds={seconds}, memory_mb={mb})
cls = regrade.regrade_many(sys.argv[1:] or {bundles!r}, jobs=2, budget=budget)
print(json.dumps([(b.bundle, b.learner, b.score, b.error) for b in cls.bundles]))
"""


@pytest.mark.parametrize(
    "action, expect",
    [
        ("time.sleep(3600)", "over the time budget"),
        ("x = bytearray(3 * 1024 ** 3)", "over the memory budget"),
        ("import os; os._exit(9)", "the regrade process died"),
    ],
)
def test_a_bundle_over_budget_gets_its_row_and_the_class_is_graded(
    tmp_path: Path, action: str, expect: str
) -> None:
    bundles = [str(_bundle(tmp_path, n)) for n in ("ann", "bob", "evil")]
    code = REGRADE_WITH.format(trigger="evil", action=action, bundles=bundles, seconds=4, mb=1024)
    t0 = time.monotonic()
    proc = bounded(code, tmp_path, seconds=90)
    assert proc.returncode == 0, proc.stderr
    rows = {b[0]: b for b in json.loads(proc.stdout.strip().splitlines()[-1])}
    assert expect in rows["evil.tar.gz"][3]
    assert rows["ann.tar.gz"][2] == rows["bob.tar.gz"][2] == 10 and rows["ann.tar.gz"][3] is None
    assert time.monotonic() - t0 < 60


def test_sigterm_during_regrade_leaves_no_scratch_folder_and_no_child(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    bundles = [str(_bundle(tmp_path, n)) for n in ("ann", "bob")]
    code = REGRADE_WITH.format(
        trigger="tar.gz", action="time.sleep(3600)", bundles=bundles, seconds=600, mb=1024
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "CKS_SCRATCH_DIR": str(scratch)}
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(scratch.glob("cks-regrade-*")):
            time.sleep(0.1)
        assert any(scratch.glob("cks-regrade-*")), "regrade never started"
        time.sleep(1.5)  # the children are forked and asleep in their bundle
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 128 + signal.SIGTERM and "Traceback" not in err, err[-2000:]
    assert list(scratch.iterdir()) == []  # the run's scratch folder (bundles, starting states) is gone
    time.sleep(0.5)
    ps = subprocess.run(["ps", "-o", "pid=", "-g", str(proc.pid)], capture_output=True, text=True)
    assert ps.stdout.strip() == "", f"children left: {ps.stdout}"


# ---- class 9: flags for claimed NaN and an all-internal-error bundle -------------------------------------


def _rewrite_meta(bundle: Path, **changes) -> None:
    from tests.instructor._instructor_lab import read_members, write_members

    members = read_members(bundle)
    meta = json.loads(members["cks-bundle.json"])
    meta.update(changes)
    members["cks-bundle.json"] = json.dumps(meta).encode().replace(b'"__NAN__"', b"NaN")
    write_members(bundle, members)


@pytest.mark.parametrize("claimed", ["__NAN__", "ten", None, True, [10]])
def test_a_claimed_score_that_is_not_a_number_is_flagged_and_held(tmp_path: Path, claimed) -> None:
    from grader.instructor.regrade import regrade_many

    bundle = _bundle(tmp_path, "nan")
    _rewrite_meta(bundle, claimed_score=claimed)
    [r] = regrade_many([bundle]).bundles
    assert r.error is None and r.score == 10
    assert any(f.startswith("claimed score") for f in r.flags) and r.held


def test_a_bundle_whose_every_task_is_an_internal_error_is_flagged(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path, "boom")
    code = f"""
import json
import grader.runner as runner
from grader.results import Outcome
runner.run_check = lambda ctx, check_id, params: Outcome.error(f"internal error in check {{check_id}}: boom")
from grader.instructor.regrade import regrade_many
[r] = regrade_many([{str(bundle)!r}]).bundles
print(json.dumps([r.flags, r.held]))
"""
    proc = bounded(code, tmp_path, seconds=60)
    flags, held = json.loads(proc.stdout.strip().splitlines()[-1])
    assert held and any(f.startswith("internal error: every task") for f in flags), flags


# ---- class 9: cks submit packs only the lab's collected paths, never links ---------------------------------


def test_submit_refuses_hard_links_symlinks_and_files_the_lab_does_not_collect(tmp_path: Path) -> None:
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$SECRET-HASH:19000:0:99999:7:::\n")
    from grader.labs import get_lab

    ws = _workspace(tmp_path, "ws")
    spec = get_lab(LAB).collect.files[0]  # a file the lab collects, replaced by a hard link to the secret
    collected = ws / "nodes" / spec.node / spec.path.strip("/")
    collected.unlink()
    os.link(secret, collected)
    policy_dir = collected.parent
    os.link(secret, policy_dir / "extra.yaml")  # a hard link beside it, in no collected path
    (policy_dir / "link.yaml").symlink_to(secret)
    (ws / "notes.txt").write_text("my private notes SECRET-NOTES\n")
    (ws / "nodes" / "controlplane" / "home").mkdir(parents=True)
    (ws / "nodes" / "controlplane" / "home" / "id_rsa").write_text("SECRET-KEY\n")
    out = tmp_path / "b.tar.gz"
    proc = bounded(
        f"""
from grader.cli import main
import sys
sys.argv = ["cks", "submit", "{LAB}", "-w", {str(ws)!r}, "--learner", "mal", "-o", {str(out)!r}]
main()
""",
        tmp_path,
        seconds=60,
    )
    assert proc.returncode == 0, proc.stderr
    with tarfile.open(out, "r:gz") as tar:
        names = tar.getnames()
        blob = b"".join(tar.extractfile(m).read() for m in tar.getmembers() if m.isfile())
    assert b"SECRET" not in blob, [n for n in names if "audit" in n or "notes" in n or "home" in n]
    assert not any(n.endswith(("extra.yaml", "link.yaml", "notes.txt", "id_rsa", spec.path)) for n in names)
    assert "hard link" in proc.stderr and "not part of what the lab grades" in proc.stderr


# ---- class 7: races ---------------------------------------------------------------------------------------


def test_four_submits_to_the_same_bundle_leave_one_whole_bundle(tmp_path: Path) -> None:
    ws = _workspace(tmp_path, "ws")
    out = tmp_path / "same.tgz"
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1"}
    code = (
        f"from grader.cli import main; import sys; sys.argv = ['cks', 'submit', '{LAB}', '-w', {str(ws)!r}, "
        f"'--learner', 'race', '-o', {str(out)!r}]; main()"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], results
    from grader.instructor.bundle import extract

    ex = extract(out, tmp_path / "x")
    assert ex.problems == [] and ex.meta["learner"] == "race"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".same.tgz")] == []  # no temp leftovers


def test_two_exam_starts_at_once_make_one_exam(tmp_path: Path) -> None:
    base = tmp_path / "exam"
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1"}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from grader.cli import main; import sys; "
                f"sys.argv = ['cks', 'exam', 'start', '--labs', 'lab1,lab3', '--seed', 's{i}', "
                f"'--dir', {str(base)!r}]; main()",
            ],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], results
    assert all("Traceback" not in err for _out, err in results)
    loser = next(err for p, (_o, err) in zip(procs, results, strict=True) if p.returncode == 2)
    assert "another `cks exam start`" in loser or "already exists" in loser
    from grader import exam

    state = exam.load(base)
    for lab_id in state.labs:  # every file is the winner's variant: the start hashes match the tree
        assert exam.tree_hashes(base / lab_id) == state.start_hashes[lab_id]


# ---- class 2 (dist): --out never replaces the checkout -----------------------------------------------------


def test_dist_refuses_an_out_folder_that_holds_the_checkout(tmp_path: Path) -> None:
    proc = bounded(
        f"""
from grader.cli import main
import sys
sys.argv = ["cks", "dist", "--labs", "lab1", "--out", {str(REPO.parent)!r}, "--no-wheel"]
sys.argv += ["--source", {str(REPO)!r}]
main()
""",
        tmp_path,
        seconds=60,
    )
    assert proc.returncode == 2 and "source checkout" in proc.stderr
    assert (REPO / ".git").exists() and (REPO / "grader").is_dir()


def test_dist_never_replaces_a_folder_it_did_not_stage(tmp_path: Path) -> None:
    from grader.instructor.dist import DistError, build_dist
    from grader.labs import get_lab

    clone = tmp_path / "src" / "cks-kit"  # another clone of the kit where the stage would go
    (clone / "grader").mkdir(parents=True)
    (clone / "pyproject.toml").write_text('[project]\nname = "cks-kit"\n')
    (clone / "my-work.txt").write_text("precious\n")
    with pytest.raises(DistError, match="choose another --out"):
        build_dist([get_lab("lab1")], tmp_path / "src", repo=REPO, wheel=False)
    assert (clone / "my-work.txt").read_text() == "precious\n"
    res = build_dist([get_lab("lab1")], tmp_path / "out", repo=REPO, wheel=False)
    again = build_dist([get_lab("lab1")], tmp_path / "out", repo=REPO, wheel=False)  # its own stage: replaced
    assert res.folder == again.folder and (again.folder / "grader").is_dir()


def test_submit_refuses_while_a_reset_holds_the_workspace_lock(tmp_path: Path) -> None:
    from grader import fsutil
    from grader.instructor.bundle import BundleError
    from grader.instructor.submit import submit
    from grader.labs import get_lab

    ws = _workspace(tmp_path, "ws")
    out = tmp_path / "b.tar.gz"
    with fsutil.locked(ws, wait=0):  # what `cks reset` / `cks start --force` hold while they rewrite
        t0 = time.monotonic()
        with pytest.raises(BundleError, match="submit again"):
            submit(get_lab(LAB), ws, out, "ann")
        assert time.monotonic() - t0 < 10
    assert not out.exists()
    assert submit(get_lab(LAB), ws, out, "ann").path == out  # and works once the lock is released
