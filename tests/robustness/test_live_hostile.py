"""Issue 15 class 5 (and the live parts of 9): a hostile API server on 127.0.0.1 never hangs `grade --target`
or `cks collect` past the deadline, never makes them read a huge reply whole, and a reply of the wrong shape
is an error on the affected tasks, never a traceback. SIGTERM leaves no temporary folder behind. The node
fetch script keeps file names with spaces, tabs and glob characters whole.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.robustness.bounded import assert_clean, run_kit

pytestmark = pytest.mark.slow  # a subprocess per case: the attack suite, run with -m slow or in full

pytest.importorskip("kubernetes", reason="the live extras (kubernetes) are not installed")

SERVER = Path(__file__).with_name("hostile_api.py")
DEADLINE = 6  # CKS_DEADLINE for every case: the whole collection must end shortly after it
BOUND_SECONDS = DEADLINE + 14  # + start-up of Python and the kubernetes client on a loaded machine
LIVE_AS_MB = 2048  # the kubernetes client and its threads map more address space than the offline kit
LIVE_RSS_MB = 400  # an 800 MB reply must not be read whole (it was: 1.7 GB)


class Hostile:
    def __init__(self, mode: str, tmp: Path, seconds: float = 40):
        portfile = tmp / f"{mode}.port"
        self.proc = subprocess.Popen(
            [sys.executable, str(SERVER), mode, str(portfile), str(seconds)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        end = time.monotonic() + 15
        while not portfile.exists():
            if time.monotonic() > end or self.proc.poll() is not None:
                self.stop()
                pytest.fail("the hostile test server did not start")
            time.sleep(0.05)
        self.port = int(portfile.read_text())
        self.kubeconfig = tmp / f"{mode}.kubeconfig"
        self.kubeconfig.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "kind-x",
                    "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{self.port}"}}],
                    "users": [{"name": "u", "user": {"token": "t"}}],
                    "contexts": [{"name": "kind-x", "context": {"cluster": "c", "user": "u"}}],
                }
            )
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


@pytest.fixture()
def hostile(tmp_path: Path):
    servers: list[Hostile] = []

    def make(mode: str) -> Hostile:
        servers.append(Hostile(mode, tmp_path))
        return servers[-1]

    yield make
    for s in servers:
        s.stop()


ENV = {"CKS_DEADLINE": str(DEADLINE), "CKS_TIMEOUT": "4"}


def _grade(server: Hostile, tmp: Path):
    return run_kit(
        "grade",
        "lab6",
        "--target",
        "kind:x",
        "--kubeconfig",
        str(server.kubeconfig),
        "--format",
        "json",
        cwd=tmp,
        seconds=BOUND_SECONDS,
        as_mb=LIVE_AS_MB,
        env=ENV,
    )


# (mode, words the error rows must contain)
MODES = [
    ("drip", "did not answer"),
    ("huge", "more than the 64 MB"),
    ("hugenolen", "more than the 64 MB"),
    ("empty", "no items list"),
    ("notobject", "not an object"),
    ("badjson", "could not be read"),
    ("badshape", "not a"),
]


@pytest.mark.parametrize("mode,words", MODES, ids=[m for m, _ in MODES])
def test_grade_target_against_a_hostile_api_server(hostile, tmp_path: Path, mode: str, words: str) -> None:
    server = hostile(mode)
    res = _grade(server, tmp_path)
    assert_clean(res, rc=3, seconds=BOUND_SECONDS, rss_mb=LIVE_RSS_MB)
    report = json.loads(res.out)
    errors = [t for t in report["tasks"] if t["status"] == "error"]
    assert errors, res.explain()
    assert not any(t["status"] == "pass" for t in report["tasks"]), res.explain()
    api_rows = [t for t in errors if "objects could not be read" in t["message"]]
    assert api_rows and all(words in t["message"] for t in api_rows), res.explain()


@pytest.mark.parametrize("mode", ["drip", "huge", "empty"])
def test_collect_against_a_hostile_api_server(hostile, tmp_path: Path, mode: str) -> None:
    server = hostile(mode)
    res = run_kit(
        "collect",
        "lab6",
        "--target",
        "kind:x",
        "--kubeconfig",
        str(server.kubeconfig),
        "--out",
        str(tmp_path / "c.tar.gz"),
        cwd=tmp_path,
        seconds=BOUND_SECONDS,
        as_mb=LIVE_AS_MB,
        env=ENV,
    )
    assert_clean(res, rc={0, 3}, seconds=BOUND_SECONDS, rss_mb=LIVE_RSS_MB)
    assert "problem" in res.out + res.err


def test_sigterm_during_collection_leaves_no_temporary_folder(hostile, tmp_path: Path) -> None:
    server = hostile("drip")
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        "TMPDIR": str(tmpdir),
        "CKS_DEADLINE": "60",
        "CKS_TIMEOUT": "60",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "grader",
            "grade",
            "lab6",
            "--target",
            "kind:x",
            "--kubeconfig",
            str(server.kubeconfig),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    end = time.monotonic() + 20
    while not list(tmpdir.glob("cks-collect-*")) and time.monotonic() < end and proc.poll() is None:
        time.sleep(0.05)
    assert list(tmpdir.glob("cks-collect-*")), "the collection never started"
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("SIGTERM did not stop the collection")
    assert b"Traceback" not in err
    left = [p.name for p in tmpdir.iterdir() if p.name.startswith("cks-")]
    assert not left, f"left behind after SIGTERM: {left}"


def test_node_fetch_keeps_odd_file_names_whole(tmp_path: Path) -> None:
    pytest.importorskip("testinfra", reason="the live extras (pytest-testinfra) are not installed")
    from grader.collectors.nodes import Node

    src = tmp_path / "d"
    (src / "sub dir").mkdir(parents=True)
    names = ["sub dir/a b.yaml", "*", "x\ttab", "-dash", "$(touch pwned)"]
    for i, name in enumerate(names):
        (src / name).write_text(f"{i}\n")
    (src / "new\nline").write_text("skipped\n")
    out = tmp_path / "out"
    start = time.monotonic()
    manifest = Node("controlplane", "local://", timeout=20).fetch([], [str(src)], out)
    assert time.monotonic() - start < 20
    for i, name in enumerate(names):
        entry = manifest.get(f"{src}/{name}")
        assert entry and entry["type"] == "file", (name, manifest)
        assert (out / str(src).lstrip("/") / name).read_text() == f"{i}\n"
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()
    assert f"{src}/new\nline" not in manifest
