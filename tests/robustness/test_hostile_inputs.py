"""Issue 15, classes 2, 3, 6 and 8 (and issue 12 item 4): hostile files and folders, each case a real
`cks`/`grade` run in a subprocess under a time and memory bound (see bounded.py). A case passes when the
command ends cleanly (exit 0-3, no traceback, no hang, no MemoryError) within its bound and does what a
user would expect: refuses with a message, grades as error, never deletes what the kit did not create.
"""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest

from tests.robustness.bounded import POLICY, assert_clean, new_workspace, run_bounded, run_kit, tree

pytestmark = pytest.mark.slow  # a subprocess per case: the attack suite, run with -m slow or in full

FAST = 15.0  # seconds: a refusal is immediate; the bound leaves room for a loaded 2-core machine
SMALL_RSS = 300  # MB: the kit imported and a lab graded stays far below
BIG_DIGITS = "9" * 5000  # past Python's 4,300-digit int() limit


@pytest.fixture()
def lab1_ws(tmp_path: Path) -> Path:
    return new_workspace(tmp_path, "lab1")


def _foreign(tmp_path: Path) -> Path:
    """A user's folder that merely holds a file named cks.yaml (the kit did not create it)."""
    mine = tmp_path / "mine"
    (mine / "notes").mkdir(parents=True)
    (mine / "cks.yaml").write_text("kind: workspace\nlab: lab1\n")
    (mine / "notes" / "thesis.txt").write_text("years of work\n")
    return mine


# ---- class 2: never delete what the kit did not create -----------------------------------------------------


@pytest.mark.parametrize(
    "args", [("reset", "lab1"), ("start", "lab1", "--force"), ("start", "lab1", "--force", "--replace-lab")]
)
def test_a_folder_the_kit_did_not_create_is_never_emptied(tmp_path: Path, args: tuple[str, ...]) -> None:
    mine = _foreign(tmp_path)
    before = tree(mine, skip=())
    res = run_kit(*args, "-w", str(mine), cwd=tmp_path, seconds=FAST)
    assert_clean(res, rc=2, seconds=FAST, rss_mb=SMALL_RSS)
    assert "not created by the kit" in res.err
    assert tree(mine, skip=()) == before


def test_start_force_does_not_silently_replace_another_labs_workspace(tmp_path: Path, lab1_ws: Path) -> None:
    (lab1_ws / POLICY).write_text("# my answer\n")
    res = run_kit("start", "lab2", "-w", str(lab1_ws), "--force", cwd=tmp_path, seconds=FAST)
    assert_clean(res, rc=2, seconds=FAST)
    assert "workspace of lab1" in res.err and "--replace-lab" in res.err
    assert (lab1_ws / POLICY).read_text() == "# my answer\n"
    res = run_kit("start", "lab2", "-w", str(lab1_ws), "--force", "--replace-lab", cwd=tmp_path, seconds=FAST)
    assert_clean(res, rc=0, seconds=FAST)
    kept = list((lab1_ws / ".cks-backup").glob(f"*/{POLICY}"))
    assert len(kept) == 1 and kept[0].read_text() == "# my answer\n"


def test_reset_lists_and_backs_up_the_learners_files(tmp_path: Path, lab1_ws: Path) -> None:
    start_state = tree(lab1_ws)
    (lab1_ws / POLICY).write_text("# my answer\n")
    (lab1_ws / "nodes" / "controlplane" / "notes.txt").write_text("my notes\n")
    res = run_kit("reset", "lab1", "-w", str(lab1_ws), cwd=tmp_path, seconds=FAST)
    assert_clean(res, rc=0, seconds=FAST)
    assert "2 files you had changed" in res.err and POLICY in res.err and "notes.txt" in res.err
    backups = list((lab1_ws / ".cks-backup").iterdir())
    assert len(backups) == 1
    assert (backups[0] / POLICY).read_text() == "# my answer\n"
    assert (backups[0] / "nodes" / "controlplane" / "notes.txt").read_text() == "my notes\n"
    assert tree(lab1_ws) == start_state  # back to the start, the backup aside


def test_reset_no_backup_still_lists_what_it_drops(tmp_path: Path, lab1_ws: Path) -> None:
    (lab1_ws / POLICY).write_text("# my answer\n")
    res = run_kit("reset", "lab1", "-w", str(lab1_ws), "--no-backup", cwd=tmp_path, seconds=FAST)
    assert_clean(res, rc=0, seconds=FAST)
    assert POLICY in res.err and "no copy kept" in res.err
    assert not (lab1_ws / ".cks-backup").exists()


def test_reset_removes_links_in_the_workspace_not_what_they_point_to(tmp_path: Path, lab1_ws: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "deep").mkdir(parents=True)
    (outside / "deep" / "precious.txt").write_text("keep\n")
    (lab1_ws / "nodes" / "controlplane" / "link-dir").symlink_to(outside)
    (lab1_ws / "link-file").symlink_to(outside / "deep" / "precious.txt")
    before = tree(outside, skip=())
    res = run_kit("reset", "lab1", "-w", str(lab1_ws), cwd=tmp_path, seconds=FAST)
    assert_clean(res, rc=0, seconds=FAST)
    assert tree(outside, skip=()) == before
    assert not (lab1_ws / "link-file").exists() and not (lab1_ws / "link-file").is_symlink()
    kept = next((lab1_ws / ".cks-backup").iterdir())
    assert (kept / "link-file").is_symlink()  # kept as a link, not as a copy of what it points to


def test_reset_through_a_symlink_is_refused(tmp_path: Path, lab1_ws: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(lab1_ws)
    res = run_kit("reset", "lab1", "-w", str(link), cwd=tmp_path, seconds=FAST)
    assert_clean(res, rc=2, seconds=FAST)
    assert "symbolic link" in res.err


def test_dist_out_parent_of_a_checkout_named_cks_kit_never_deletes_it(tmp_path: Path) -> None:
    """`cks dist --out ..` from inside a checkout called cks-kit: the stage folder would be the checkout."""
    checkout = tmp_path / "cks-kit"
    (checkout / ".git").mkdir(parents=True)
    (checkout / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (checkout / "precious.py").write_text("print('mine')\n")
    script = textwrap.dedent(f"""
        from pathlib import Path
        from grader.instructor.dist import DistError, build_dist
        from grader.labs import get_lab, repo_root
        try:
            build_dist([get_lab("lab1")], Path({str(tmp_path)!r}), repo=repo_root(), wheel=False)
        except DistError as exc:
            print("refused:", exc)
            raise SystemExit(2)
    """)
    res = run_bounded(
        [sys.executable, "-c", script], cwd=checkout, seconds=60, as_mb=1024, label=("dist", "--out", "..")
    )
    assert_clean(res, rc=2, seconds=60)
    assert "refused" in res.out
    assert (checkout / ".git" / "HEAD").is_file() and (checkout / "precious.py").is_file()


# ---- class 3: one reader that refuses non-regular files and caps size --------------------------------------


def test_a_50mb_cks_yaml_is_refused_quickly(tmp_path: Path, lab1_ws: Path) -> None:
    with open(lab1_ws / "cks.yaml", "wb") as fh:
        fh.write(b"kind: workspace\nlab: lab1\nseed: x\npad: '")
        fh.write(b"a" * (50 * 1024 * 1024))
        fh.write(b"'\n")
    res = run_kit("grade", "lab1", "-w", str(lab1_ws), cwd=tmp_path, seconds=20)
    assert_clean(res, rc=3, seconds=20, rss_mb=SMALL_RSS)
    assert "cks.yaml" in res.err


@pytest.mark.parametrize("special", ["fifo", "devzero"])
def test_cks_yaml_that_is_a_fifo_or_a_device_does_not_hang(
    tmp_path: Path, lab1_ws: Path, special: str
) -> None:
    meta = lab1_ws / "cks.yaml"
    meta.unlink()
    if special == "fifo":
        os.mkfifo(meta)
    else:
        meta.symlink_to("/dev/zero")
    res = run_kit("grade", "lab1", "-w", str(lab1_ws), cwd=tmp_path, seconds=FAST)
    assert_clean(res, rc={2, 3}, seconds=FAST, rss_mb=SMALL_RSS)


@pytest.mark.parametrize("special", ["fifo", "devzero-link"])
def test_a_learner_file_that_is_a_fifo_or_device_grades_without_hanging(
    tmp_path: Path, lab1_ws: Path, special: str
) -> None:
    policy = lab1_ws / POLICY
    policy.unlink(missing_ok=True)
    if special == "fifo":
        os.mkfifo(policy)
    else:
        policy.symlink_to("/dev/zero")
    res = run_kit("grade", "lab1", "-w", str(lab1_ws), "--format", "json", cwd=tmp_path, seconds=FAST)
    assert_clean(res, rc={1, 3}, seconds=FAST, rss_mb=SMALL_RSS)
    assert "internal error" not in res.out
    # the reason names what is wrong with the learner's file (docs/robustness.md, row 3c)
    assert ("named pipe" if special == "fifo" else "leaves the node's files") in res.out, res.explain()


def _study_cases(tmp: Path) -> list[tuple[str, ...]]:
    fifo = tmp / "pipe.yaml"
    os.mkfifo(fifo)
    big = tmp / "big.yaml"
    with open(big, "wb") as fh:
        fh.write(b"# " + b"x" * (30 * 1024 * 1024) + b"\n")
    rules = tmp / "rules.yaml"
    rules.write_text("- rule: r\n  desc: d\n  condition: evt.type = open\n  output: o\n  priority: WARNING\n")
    cases: list[tuple[str, ...]] = []
    for bad in (str(fifo), "/dev/zero", str(big)):
        cases += [
            ("audit", "validate", bad),
            ("audit", "simulate", bad, "--user", "u", "--verb", "get", "--resource", "pods"),
            ("pods", "check", bad),
            ("falco", "validate", bad, "--no-default"),
            ("falco", "test", str(rules), "--no-default", "--events", bad),
            ("falco", "explain", "r", "-r", bad, "--no-default"),
            ("apiserver", "check", bad),
        ]
    return cases


def test_study_tools_refuse_fifos_devices_and_huge_files(tmp_path: Path) -> None:
    """21 hostile reads across the study tools: each ends in under FAST seconds and SMALL_RSS MB."""
    failures = []
    for args in _study_cases(tmp_path):
        res = run_kit(*args, cwd=tmp_path, seconds=FAST)
        codes = (0, 1, 2) if "big.yaml" in " ".join(args) else (1, 2)  # under some tools' caps: read, bounded
        if res.verdict != "clean" or res.rc not in codes or res.seconds > FAST or res.max_rss_mb > SMALL_RSS:
            failures.append(res.explain())
    assert not failures, "\n\n".join(failures)


def test_a_kubeconfig_that_is_a_device_is_refused(tmp_path: Path) -> None:
    res = run_kit(
        "grade",
        "lab6",
        "--target",
        "kind:x",
        "--kubeconfig",
        "/dev/zero",
        cwd=tmp_path,
        seconds=30,
        as_mb=2048,
        env={"CKS_DEADLINE": "10"},
    )
    assert_clean(res, rc=3, seconds=30, rss_mb=SMALL_RSS)
    assert "not a regular file" in res.out + res.err


# ---- class 6: integers of more than 4,300 digits -----------------------------------------------------------


def test_huge_integer_in_a_learner_file_is_a_failure_with_a_message(tmp_path: Path, lab1_ws: Path) -> None:
    (lab1_ws / POLICY).write_text(
        f"apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: {BIG_DIGITS}\nrules: [{{level: Metadata}}]\n"
    )
    res = run_kit("grade", "lab1", "-w", str(lab1_ws), "--format", "json", cwd=tmp_path, seconds=FAST)
    assert_clean(res, rc=1, seconds=FAST)
    assert "internal error" not in res.out and "4,300 digits" in res.out


def test_huge_integer_in_cks_yaml_is_an_error_not_the_default_variant(tmp_path: Path, lab1_ws: Path) -> None:
    (lab1_ws / "cks.yaml").write_text(f"kind: workspace\nlab: lab1\nseed: {BIG_DIGITS}\n")
    res = run_kit("grade", "lab1", "-w", str(lab1_ws), cwd=tmp_path, seconds=FAST)
    assert_clean(res, rc=3, seconds=FAST)
    assert "4,300 digits" in res.err


def test_huge_integers_in_study_tool_inputs(tmp_path: Path) -> None:
    pod = tmp_path / "pod.yaml"
    pod.write_text(
        f"apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  containers:\n  - name: c\n"
        f"    image: nginx\n    securityContext: {{runAsUser: {BIG_DIGITS}}}\n"
    )
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        f"- rule: r\n  desc: d\n  condition: evt.type = open and proc.pid = {BIG_DIGITS}\n"
        "  output: o\n  priority: WARNING\n"
    )
    good_rules = tmp_path / "good.yaml"
    good_rules.write_text(
        "- rule: r\n  desc: d\n  condition: evt.type = open\n  output: o\n  priority: WARNING\n"
    )
    events = tmp_path / "events.yaml"
    events.write_text(f"- evt.type: open\n  proc.pid: {BIG_DIGITS}\n")
    manifest = tmp_path / "kube-apiserver.yaml"
    manifest.write_text(
        f"apiVersion: v1\nkind: Pod\nmetadata: {{name: kube-apiserver, namespace: kube-system}}\n"
        f"spec: {{containers: [{{name: a, image: i, command: [kube-apiserver]}}], priority: {BIG_DIGITS}}}\n"
    )
    cases = [
        ("pods", "check", str(pod)),
        ("audit", "validate", str(pod)),
        ("apiserver", "check", str(manifest)),
        ("falco", "validate", str(rules), "--no-default"),
        ("falco", "explain", "r", "-r", str(rules), "--no-default"),
        ("falco", "test", str(good_rules), "--no-default", "--events", str(events)),
        ("falco", "test", str(rules), "--no-default", "--events", str(events)),
    ]
    failures = []
    for args in cases:
        res = run_kit(*args, cwd=tmp_path, seconds=FAST)
        if res.verdict != "clean" or res.rc not in (0, 1, 2) or res.seconds > FAST:
            failures.append(res.explain())
        elif args[:2] == ("falco", "validate") and "is not a valid number" not in res.out + res.err:
            failures.append("a 5,000-digit number in a condition is not reported as such\n" + res.explain())
        elif args[0] != "falco" and "4,300 digits" not in res.out + res.err:
            failures.append("the 5,000-digit number is not what the message names\n" + res.explain())
    assert not failures, "\n\n".join(failures)


def test_grade_target_without_the_live_extras_says_so(tmp_path: Path) -> None:
    hide = "import sys\nfor name in ('kubernetes', 'testinfra', 'urllib3'):\n    sys.modules[name] = None\n"
    for args in (
        ("grade", "lab6", "--target", "kind:x"),
        ("collect", "lab6", "--target", "kind:x", "--out", "c.tar.gz"),
    ):
        res = run_kit(*args, cwd=tmp_path, seconds=FAST, prelude=hide)
        assert_clean(res, rc={2, 3}, seconds=FAST)
        assert "cks-kit[live]" in res.err, res.explain()


# ---- class 8: an unreadable cks.yaml is an error, never the default variant --------------------------------


@pytest.mark.parametrize("damage", ["not-yaml", "binary", "a-list", "a-directory"])
def test_unreadable_cks_yaml_is_an_error_not_the_default_variant(tmp_path: Path, damage: str) -> None:
    ws = new_workspace(tmp_path, "lab1", seed="alice")
    meta = ws / "cks.yaml"
    if damage == "not-yaml":
        meta.write_text("kind: workspace\nlab: lab1\nseed: [alice\n")
    elif damage == "binary":
        meta.write_bytes(b"\x00\xff" * 100)
    elif damage == "a-list":
        meta.write_text("- lab1\n- alice\n")
    else:
        meta.unlink()
        meta.mkdir()
    res = run_kit("grade", "lab1", "-w", str(ws), "--format", "json", cwd=tmp_path, seconds=FAST)
    assert_clean(res, seconds=FAST)
    assert res.rc in ({2} if damage == "a-directory" else {3}), res.explain()
    assert "cks.yaml" in res.err
    assert '"pass"' not in res.out


def test_unreadable_cks_yaml_gives_error_rows_through_the_runner(tmp_path: Path) -> None:
    """Bundles and submissions reach the runner without the CLI's check: the runner errs too."""
    from grader.labs import get_lab
    from grader.results import Status
    from grader.runner import grade
    from grader.snapshot import Snapshot

    ws = new_workspace(tmp_path, "lab1", seed="alice")
    (ws / "cks.yaml").write_text("seed: [alice\n")
    report = grade(get_lab("lab1"), Snapshot(ws))
    assert report.tasks and all(r.status is Status.ERROR for r in report.tasks)
    assert "cks.yaml" in report.tasks[0].message


# ---- issue 12 item 4: commands find their workspace from anywhere inside it --------------------------------


def test_grade_from_deep_inside_the_workspace(tmp_path: Path, lab1_ws: Path) -> None:
    deep = lab1_ws / "nodes" / "controlplane" / "etc"
    res = run_kit("grade", "lab1", "--format", "json", cwd=deep, seconds=FAST)
    assert_clean(res, rc=1, seconds=FAST)
    assert str(lab1_ws) in res.out or '"target": "workspace ' in res.out


def test_grade_another_lab_from_inside_a_workspace_finds_its_sibling(tmp_path: Path, lab1_ws: Path) -> None:
    new_workspace(tmp_path, "lab2")
    res = run_kit("grade", "lab2", "--format", "json", cwd=lab1_ws / "nodes", seconds=FAST)
    assert_clean(res, rc=1, seconds=FAST)
    assert "lab2" in res.out


def test_start_inside_a_workspace_never_nests(tmp_path: Path, lab1_ws: Path) -> None:
    res = run_kit("start", "lab3", "-w", "sub", cwd=lab1_ws, seconds=FAST)
    assert_clean(res, rc=2, seconds=FAST)
    assert "do not nest" in res.err and not (lab1_ws / "sub").exists()
    suggested = str(lab1_ws.parent / "lab3")
    assert suggested in res.err
    res = run_kit("start", "lab3", cwd=lab1_ws / "nodes", seconds=FAST)  # no -w: beside lab1, not inside
    assert_clean(res, rc=0, seconds=FAST)
    assert (lab1_ws.parent / "lab3" / "cks.yaml").is_file()
    assert not any(p.name == "lab3" for p in lab1_ws.rglob("*"))


def test_messages_never_suggest_a_folder_inside_a_workspace(tmp_path: Path, lab1_ws: Path) -> None:
    for args in (("grade", "lab4"), ("reset", "lab1", "-w", "x"), ("show", "lab4", "-w", "y")):
        res = run_kit(*args, cwd=lab1_ws / "nodes", seconds=FAST)
        assert res.verdict == "clean", res.explain()
        for word in res.err.replace("`", " ").split():
            if "cks-workspace/lab1/" in word:
                pytest.fail(f"{args}: suggests {word} inside lab1's workspace\n{res.err}")


def test_grade_from_the_cks_workspace_folder(tmp_path: Path, lab1_ws: Path) -> None:
    res = run_kit("grade", "lab1", cwd=lab1_ws.parent, seconds=FAST)
    assert_clean(res, rc=1, seconds=FAST)


def test_reset_from_inside_the_workspace_keeps_the_folder(tmp_path: Path, lab1_ws: Path) -> None:
    inside = lab1_ws / "nodes" / "controlplane" / "etc" / "kubernetes"
    (lab1_ws / POLICY).write_text("# mine\n")
    res = run_kit("reset", "lab1", cwd=inside, seconds=FAST)
    assert_clean(res, rc=0, seconds=FAST)
    assert lab1_ws.is_dir() and (lab1_ws / "cks.yaml").is_file()
    res = run_kit("grade", "lab1", cwd=inside, seconds=FAST)  # the shell's folder is still there
    assert_clean(res, rc=1, seconds=FAST)


def test_grade_from_a_removed_folder_says_so(tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    res = run_bounded(
        [
            sys.executable,
            "-c",
            "import os, sys; os.rmdir(sys.argv[1]); sys.argv = ['grade', 'lab1'];"
            "from grader.cli import grade_main; grade_main()",
            str(gone),
        ],
        cwd=gone,
        seconds=FAST,
        as_mb=1024,
        label=("grade", "lab1", "(cwd removed)"),
    )
    assert_clean(res, rc=2, seconds=FAST)
    assert "no longer exists" in res.err
