"""The fast tier of the robustness suite: the safe reader, the ownership marker and the live request layer
in-process (the subprocess attack suite with its time and memory bounds is marked slow)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from grader import fsutil, safeio, safeyaml
from grader.labs import get_lab
from grader.workspace import WorkspaceError, learner_files, start
from tests.robustness.bounded import POLICY, new_workspace


def _within(seconds: float, fn, *args, **kw):
    """Run ``fn`` in a thread: a hang fails the test instead of stalling the run."""
    box: dict = {}

    def work() -> None:
        try:
            box["value"] = fn(*args, **kw)
        except BaseException as exc:  # handed back to the test
            box["error"] = exc

    t = threading.Thread(target=work, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"{fn.__name__} did not return within {seconds} s"
    if "error" in box:
        raise box["error"]
    return box.get("value")


# ---- safeio -----------------------------------------------------------------------------------------------


def test_reader_refuses_a_fifo_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(safeio.ReadRefused) as exc:
        _within(5, safeio.read_bytes, fifo)
    assert exc.value.kind == "not_a_file" and "named pipe" in str(exc.value)


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_reader_refuses_devices_directly_and_through_a_link(tmp_path: Path, device: str) -> None:
    link = tmp_path / "link.yaml"
    link.symlink_to(device)
    for path in (device, link):
        with pytest.raises(safeio.ReadRefused) as exc:
            _within(5, safeio.read_bytes, path)
        assert exc.value.kind == "not_a_file" and "device" in str(exc.value)


def test_reader_caps_size_before_reading(tmp_path: Path) -> None:
    big = tmp_path / "big"
    with open(big, "wb") as fh:
        fh.truncate(200 * 1024 * 1024)  # sparse: costs nothing to make, would cost 200 MB to read
    with pytest.raises(safeio.ReadRefused) as exc:
        _within(5, safeio.read_bytes, big, max_bytes=1024 * 1024, what="cks.yaml")
    assert exc.value.kind == "too_large" and "200.0 MB" in str(exc.value)
    (tmp_path / "ok").write_bytes(b"x" * 10)
    assert safeio.read_bytes(tmp_path / "ok", max_bytes=10) == b"x" * 10


def test_reader_kinds_for_missing_directory_and_binary(tmp_path: Path) -> None:
    with pytest.raises(safeio.ReadRefused) as exc:
        safeio.read_bytes(tmp_path / "nope")
    assert exc.value.kind == "missing"
    with pytest.raises(safeio.ReadRefused) as exc:
        safeio.read_bytes(tmp_path)
    assert exc.value.kind == "is_directory"
    (tmp_path / "bin").write_bytes(b"a\x00b")
    with pytest.raises(safeio.ReadRefused) as exc:
        safeio.read_text(tmp_path / "bin")
    assert exc.value.kind == "binary"


def test_yaml_integer_past_4300_digits_is_a_yaml_problem() -> None:
    for text in (f"n: {'9' * 5000}\n", f"- &a {'1' * 5000}\n- *a\n"):  # (hex has no limit)
        with pytest.raises(safeyaml.YamlProblem) as exc:
            safeyaml.load_all(text)
        assert "digits" in str(exc.value) or "not valid YAML" in str(exc.value)


# ---- fsutil: ownership and removal -------------------------------------------------------------------------


def test_safe_remove_tree_removes_only_what_the_kit_marked(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "cks.yaml").write_text("kind: workspace\nlab: lab1\n")
    with pytest.raises(fsutil.RemoveRefused, match="not created by the kit"):
        fsutil.safe_remove_tree(plain, kind="workspace")
    assert (plain / "cks.yaml").is_file()

    checkout = tmp_path / "cks-kit"
    checkout.mkdir()
    (checkout / ".git").mkdir()
    fsutil.write_marker(checkout, "dist")  # even a forged marker does not make a checkout removable
    with pytest.raises(fsutil.RemoveRefused, match="git checkout"):
        fsutil.safe_remove_tree(checkout, kind="dist")

    ours = tmp_path / "ours"
    ours.mkdir()
    fsutil.write_marker(ours, "dist")
    with pytest.raises(fsutil.RemoveRefused, match="not a workspace folder"):
        fsutil.safe_remove_tree(ours, kind="workspace")
    fsutil.safe_remove_tree(ours, kind="dist")
    assert not ours.exists()


def test_safe_remove_tree_refuses_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours = tmp_path / "ours"
    (ours / "sub").mkdir(parents=True)
    fsutil.write_marker(ours, "exam")
    monkeypatch.chdir(ours / "sub")
    with pytest.raises(fsutil.RemoveRefused, match="current directory"):
        fsutil.safe_remove_tree(ours, kind="exam")


def test_start_force_refuses_a_foreign_folder_and_writes_nothing_there(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "cks.yaml").write_text("lab: lab1\n")
    with pytest.raises(WorkspaceError, match="not created by the kit"):
        start(get_lab("lab1"), mine, force=True)
    assert sorted(p.name for p in mine.iterdir()) == ["cks.yaml"]


def test_learner_files_are_the_changed_and_the_added(tmp_path: Path) -> None:
    ws = new_workspace(tmp_path, "lab1")
    assert learner_files(ws, fsutil.read_marker(ws)) == ([], [])
    (ws / POLICY).write_text("# mine\n")
    (ws / "extra.txt").write_text("x\n")
    os.mkfifo(ws / "pipe")
    changed, odd = learner_files(ws, fsutil.read_marker(ws))
    assert changed == [POLICY, "extra.txt"] or sorted(changed) == sorted([POLICY, "extra.txt"])
    assert odd == ["pipe"]
    done = start(get_lab("lab1"), ws, force=True)
    assert sorted(done.dropped) == sorted([POLICY, "extra.txt"]) and done.backup is not None
    assert (done.backup / POLICY).read_text() == "# mine\n"
    assert not (ws / "extra.txt").exists() and not (ws / "pipe").exists()


def test_find_up_is_bounded_and_finds_the_nearest(tmp_path: Path) -> None:
    outer = new_workspace(tmp_path, "lab1")
    deep = outer / "nodes" / "controlplane" / "etc"
    assert fsutil.find_up(deep, "cks.yaml") == outer.resolve()
    assert (
        fsutil.find_up(tmp_path, "cks.yaml") is None
        or fsutil.find_up(tmp_path, "cks.yaml") != outer.resolve()
    )


def test_shared_lock_refuses_while_the_exclusive_one_is_held(tmp_path: Path) -> None:
    ws = new_workspace(tmp_path, "lab1")
    with fsutil.locked(ws), pytest.raises(fsutil.Busy, match="being reset"), fsutil.shared_lock(ws):
        pass
    with fsutil.shared_lock(ws), pytest.raises(fsutil.Busy, match="in use"), fsutil.locked(ws, wait=0.2):
        pass


# ---- the live request layer, in-process --------------------------------------------------------------------

kube = pytest.importorskip("grader.collectors.kube")


@pytest.fixture()
def api(tmp_path: Path, request: pytest.FixtureRequest):
    pytest.importorskip("kubernetes", reason="the live extras (kubernetes) are not installed")
    from tests.robustness.test_live_hostile import Hostile

    server = Hostile(request.param, tmp_path)
    cfg = kube.load_configuration(kubeconfig=str(server.kubeconfig))
    client = kube.KubeApi(cfg, timeout=2.0, retries=0)
    yield client
    client.close()
    server.stop()


@pytest.mark.parametrize("api", ["empty"], indirect=True)
def test_a_200_empty_object_is_an_error_not_a_key_error(api) -> None:
    with pytest.raises(kube.KubeError) as exc:
        api.get("ConfigMap", "cks-system", "lab-lab1")
    assert exc.value.reason == "invalid_reply" and "not a ConfigMap" in str(exc.value)
    with pytest.raises(kube.KubeError, match="no items list"):
        api.list("Pod")
    with pytest.raises(kube.KubeError):
        api.info("Frobnicator")  # discovery on {} finds nothing: a clear not_found


@pytest.mark.parametrize("api", ["badshape"], indirect=True)
def test_list_items_that_are_not_objects_are_an_error(api) -> None:
    with pytest.raises(kube.KubeError, match="not a Pod object"):
        api.list("Pod")


@pytest.mark.parametrize("api", ["huge"], indirect=True)
def test_a_huge_reply_is_refused_by_its_length(api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kube, "MAX_REPLY_BYTES", 1024 * 1024)
    start_t = time.monotonic()
    with pytest.raises(kube.KubeError) as exc:
        api.list("Pod")
    assert exc.value.reason == "too_large" and time.monotonic() - start_t < 5


@pytest.mark.parametrize("api", ["hugenolen"], indirect=True)
def test_a_huge_reply_without_length_is_cut_at_the_cap(api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kube, "MAX_REPLY_BYTES", 2 * 1024 * 1024)
    with pytest.raises(kube.KubeError) as exc:
        api.list("Pod")
    assert exc.value.reason == "too_large"


@pytest.mark.parametrize("api", ["drip"], indirect=True)
def test_a_dripping_server_is_cut_off_by_the_overall_limit(api) -> None:
    start_t = time.monotonic()
    with pytest.raises(kube.KubeError) as exc:
        api.list("Pod")
    assert exc.value.reason == "timeout"
    assert time.monotonic() - start_t < 4  # timeout=2 s: the whole request, not each read


def test_planted_links_in_a_workspace_do_not_redirect_the_kit(tmp_path: Path) -> None:
    """A .cks-backup or .cks-lock planted as a link must not make the kit write outside the workspace."""
    ws = new_workspace(tmp_path, "lab1")
    outside = tmp_path / "outside"
    outside.mkdir()
    (ws / POLICY).write_text("# mine\n")
    (ws / ".cks-backup").symlink_to(outside)
    with pytest.raises(WorkspaceError, match="not a folder the kit made"):
        start(get_lab("lab1"), ws, force=True)
    assert list(outside.iterdir()) == [] and (ws / POLICY).read_text() == "# mine\n"
    (ws / ".cks-backup").unlink()
    (ws / ".cks-lock").unlink()
    (ws / ".cks-lock").symlink_to(outside / "lockfile")
    with pytest.raises(WorkspaceError, match="cannot be locked"):
        start(get_lab("lab1"), ws, force=True)
    assert not (outside / "lockfile").exists()


def test_a_start_killed_midway_can_be_started_again(tmp_path: Path) -> None:
    ws = new_workspace(tmp_path, "lab1")
    (ws / ".cks-staging-99999" / "nodes").mkdir(parents=True)  # what a SIGKILL during a start leaves
    done = start(get_lab("lab1"), ws, force=True)
    assert done.dropped == [] and not list(ws.glob(".cks-staging-*"))


@pytest.mark.parametrize("command", [("show", "lab1"), ("hint", "lab1", "t1"), ("solution", "lab1", "--yes")])
def test_commands_that_need_the_variant_refuse_an_unreadable_cks_yaml(tmp_path: Path, command) -> None:
    """docs/robustness.md row 8: with the seed unknown, `cks show`/`hint`/`solution` would show the default
    variant's values, not the learner's: they refuse (exit 3) and name cks.yaml."""
    from click.testing import CliRunner

    from grader.cli import cks

    ws = new_workspace(tmp_path, "lab1", seed="alice")
    (ws / "cks.yaml").write_text("seed: [alice\n")
    result = CliRunner().invoke(cks, [*command, "-w", str(ws)])
    assert result.exit_code == 3 and "cks.yaml" in result.output, result.output
    assert not (ws / ".cks" / "hints.json").exists()  # nothing recorded against an unknown variant


def test_a_damaged_hint_record_never_stops_a_learner(tmp_path: Path, monkeypatch) -> None:
    """.cks/hints.json nested 100,000 deep (under the size cap) made `cks hint` and `cks progress` end in a
    RecursionError traceback; a damaged record counts as empty. A link planted where the record's temporary
    file used to be (hints.json.tmp) is never written through."""
    from click.testing import CliRunner

    from grader.cli import cks

    monkeypatch.chdir(tmp_path)  # `cks progress` reads ./cks-workspace/
    ws = new_workspace(tmp_path, "lab1")
    (ws / ".cks").mkdir(exist_ok=True)
    (ws / ".cks" / "hints.json").write_text("[" * 100_000 + "]" * 100_000)
    (ws / ".cks" / "progress.json").write_text('{"a":' * 40_000 + "1" + "}" * 40_000)
    outside = tmp_path / "outside.txt"
    outside.write_text("mine\n")
    (ws / ".cks" / "hints.json.tmp").symlink_to(outside)
    for args in (["hint", "lab1", "t1", "-w", str(ws)], ["hint", "lab1", "-w", str(ws)], ["progress"]):
        result = CliRunner().invoke(cks, args)
        assert result.exit_code == 0 and result.exception is None, (args, result.output)
    assert outside.read_text() == "mine\n"
    assert '"tier": 1' in (ws / ".cks" / "hints.json").read_text()  # the record starts afresh


def test_json_nested_too_deeply_is_damaged_input_not_a_traceback(tmp_path: Path) -> None:
    """A .cks-created marker nested 100,000 deep made `cks reset` and `cks start --force` end in a
    RecursionError traceback: it is a damaged marker (refused, exit 2). A learner's cluster/*.json nested as
    deeply is a broken file (like invalid JSON), not an error of every task."""
    from click.testing import CliRunner

    from grader.cli import cks
    from grader.runner import grade
    from grader.snapshot import Snapshot

    ws = new_workspace(tmp_path, "lab6")
    deep = "[" * 100_000 + "]" * 100_000
    (ws / "cluster" / "extra.json").write_text(deep)
    report = grade(get_lab("lab6"), Snapshot(ws))
    assert report.tasks and not any("nested too deeply" in t.message for t in report.tasks)
    (ws / fsutil.MARKER).write_text(deep)
    for args in (["reset", "lab6"], ["start", "lab6", "--force"]):
        result = CliRunner().invoke(cks, [*args, "-w", str(ws)])
        assert result.exit_code == 2 and "not created by the kit" in result.output, (args, result.output)
    assert (ws / "cluster" / "extra.json").is_file()  # nothing removed


@pytest.mark.parametrize(
    "value,expected", [("abc", 30.0), ("", 30.0), ("nan", 30.0), ("-1", 30.0), ("inf", 3600.0), ("2.5", 2.5)]
)
def test_lock_wait_from_the_environment_never_crashes_or_waits_forever(monkeypatch, value, expected) -> None:
    monkeypatch.setenv("CKS_LOCK_WAIT", value)
    assert fsutil._lock_wait() == expected


def test_a_bad_cks_lock_wait_does_not_stop_grade(tmp_path: Path) -> None:
    """CKS_LOCK_WAIT=abc (or empty) raised ValueError when grader.fsutil was imported: every command ended in
    a traceback."""
    import subprocess
    import sys

    ws = new_workspace(tmp_path, "lab1")
    env = {**os.environ, "CKS_LOCK_WAIT": "abc", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    res = subprocess.run(
        [sys.executable, "-m", "grader", "grade", "lab1", "-w", str(ws)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 1 and "Traceback" not in res.stderr and "Score: 0/10" in res.stdout


@pytest.mark.parametrize("bad", ["loop", "loop/below", "a" * 300])
def test_a_workspace_path_no_file_operation_can_use_is_a_usage_error(
    tmp_path: Path, monkeypatch, bad: str
) -> None:
    """--workspace naming a loop of links or a name longer than the file system allows ended in a
    RuntimeError / OSError traceback in start, grade, hint, reset."""
    from click.testing import CliRunner

    from grader.cli import cks, grade_cmd

    monkeypatch.chdir(tmp_path)
    (tmp_path / "loop").symlink_to("loop")
    for cmd, args in (
        (cks, ["start", "lab1"]),
        (grade_cmd, ["lab1"]),
        (cks, ["hint", "lab1", "t1"]),
        (cks, ["reset", "lab1"]),
        (cks, ["show", "lab1"]),
    ):
        result = CliRunner().invoke(cmd, [*args, "-w", bad])
        assert result.exit_code == 2 and isinstance(result.exception, SystemExit), (args, result.output)
        assert "cannot be used" in result.output


def test_control_characters_from_a_learners_file_never_reach_the_terminal_or_break_junit(
    tmp_path: Path, monkeypatch
) -> None:
    """A policy value "\\e]0;pwned\\a\\0\\r..." was echoed raw into the reason and evidence: it retitled the
    reader's terminal (an instructor grading a learner's work too) and made the JUnit XML unreadable."""
    import xml.dom.minidom

    from click.testing import CliRunner

    from grader.cli import grade_cmd

    monkeypatch.setenv("NO_COLOR", "1")
    ws = new_workspace(tmp_path, "lab1")
    (ws / POLICY).write_text(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n"
        '- level: "\\e[2J\\e]0;pwned\\a\\0\\rMetadata\\x9b"\n'
    )
    for args in (["-v"], ["--hints"]):
        out = CliRunner().invoke(grade_cmd, ["lab1", "-w", str(ws), *args]).output
        assert not set(out) & {"\x1b", "\x07", "\x00", "\r", "\x9b"}, repr(out[:300])
        assert "\\x1b]0;pwned\\x07" in out  # shown, as text
    junit = CliRunner().invoke(grade_cmd, ["lab1", "-w", str(ws), "--format", "junit"]).output
    xml.dom.minidom.parseString(junit.encode("utf-8"))  # raises on a character XML cannot hold


def test_a_report_about_a_folder_named_with_a_stray_byte_is_written_to_a_file(tmp_path: Path) -> None:
    """`grade -o FILE` for a workspace whose name is not UTF-8 ended in a UnicodeEncodeError traceback."""
    import json
    import subprocess
    import sys

    ws = new_workspace(tmp_path, "lab1").rename(tmp_path / os.fsdecode(b"ws\xff"))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    for fmt in ("json", "table", "junit"):
        out = tmp_path / f"r.{fmt}"
        res = subprocess.run(
            [
                sys.executable,
                "-m",
                "grader",
                "grade",
                "lab1",
                "-w",
                os.fsencode(ws),
                "--format",
                fmt,
                "-o",
                str(out),
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            timeout=60,
        )
        assert res.returncode == 1 and b"Traceback" not in res.stderr, (
            fmt,
            res.stderr.decode(errors="replace"),
        )
        assert "ws" in out.read_text(encoding="utf-8")
    assert json.loads((tmp_path / "r.json").read_text())["target"].endswith("ws\udcff")


def test_a_start_state_interrupted_while_built_leaves_no_temporary_folder(
    tmp_path: Path, monkeypatch
) -> None:
    """SIGTERM during `grade` of a seeded lab (SystemExit inside the build of the start state it compares
    with) left /tmp/cks-LAB-start-* behind: atexit only removed the folders already built."""
    import tempfile

    from grader import workspace

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    def interrupted(*_args, **_kw):
        raise SystemExit(143)

    monkeypatch.setattr(workspace, "materialize", interrupted)
    with pytest.raises(SystemExit):
        workspace.pristine(get_lab("lab7"), "sigterm-seed")
    assert not list(tmp_path.glob("cks-*")), "a temporary start state was left behind"


def test_a_grade_refused_during_a_reset_is_not_recorded(tmp_path: Path) -> None:
    """grade refuses while a start or reset holds the workspace; it used to record that refusal in
    .cks/progress.json as a grading with every task in error (and wrote there during the reset)."""
    from click.testing import CliRunner

    from grader.cli import grade_cmd

    ws = new_workspace(tmp_path, "lab1")
    with fsutil.locked(ws):
        result = CliRunner().invoke(grade_cmd, ["lab1", "-w", str(ws)])
    assert result.exit_code == 3 and "being reset" in result.output
    assert not (ws / ".cks" / "progress.json").exists()
    assert CliRunner().invoke(grade_cmd, ["lab1", "-w", str(ws)]).exit_code == 1
    assert (ws / ".cks" / "progress.json").is_file()  # a real grading is recorded
