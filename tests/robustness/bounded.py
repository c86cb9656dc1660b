"""Run a kit command in a subprocess with a time and memory bound, and say how it ended.

Each hostile case runs ``python -m grader ...`` with ``RLIMIT_AS`` (address space) set, a wall-clock
timeout (the process group is killed: a hang is a failure, never a stuck test run), and measures the
child's own peak RSS through ``wait4``. The outcome is classified the way the attack run of issue 15
counted them: clean (an exit code of 0-3 and no traceback), traceback, hang (timeout) or memory (the
address-space limit was hit: MemoryError).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MB = 1024 * 1024
# Python with the kit imported maps ~150-300 MB of address space (threads reserve more): bounds sit above it.
DEFAULT_AS_MB = 1024
DEFAULT_SECONDS = 30.0


@dataclass
class Outcome:
    args: tuple[str, ...]
    rc: int | None
    out: str
    err: str
    seconds: float
    max_rss_mb: float
    hung: bool

    @property
    def traceback(self) -> bool:
        return (
            "Traceback (most recent call last)" in self.err or "Traceback (most recent call last)" in self.out
        )

    @property
    def memory(self) -> bool:
        return "MemoryError" in self.err

    @property
    def verdict(self) -> str:
        if self.hung:
            return "hang"
        if self.memory:
            return "memory"
        if self.traceback:
            return "traceback"
        return "clean" if self.rc in (0, 1, 2, 3) else f"exit {self.rc}"

    def explain(self) -> str:
        return (
            f"`{' '.join(self.args)}`: {self.verdict}, exit {self.rc}, {self.seconds:.1f} s, "
            f"{self.max_rss_mb:.0f} MB\n--- stdout ---\n{self.out[-1500:]}\n"
            f"--- stderr ---\n{self.err[-3000:]}"
        )


# Linux counts the RSS a child inherited at fork in its peak RSS, so a command forked straight from a big
# pytest worker would report the worker's size. A small launcher forks the command instead and reports the
# peak RSS of that grandchild (through wait4); limits are set in the grandchild before exec, and a signal that
# killed it is re-raised so the caller sees the same end.
_LAUNCHER = """
import os, resource, signal, sys
limit, report, cmd = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
pid = os.fork()
if pid == 0:
    try:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        os.execvp(cmd[0], cmd)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
with open(report, "w") as f:
    f.write(str(usage.ru_maxrss))
code = os.waitstatus_to_exitcode(status)
if code < 0:
    signal.signal(-code, signal.SIG_DFL)
    os.kill(os.getpid(), -code)
sys.exit(code)
"""


def run_kit(
    *args: str,
    cwd: Path,
    seconds: float = DEFAULT_SECONDS,
    as_mb: int = DEFAULT_AS_MB,
    env: dict[str, str] | None = None,
    prelude: str = "",
    stdin: bytes | None = None,
) -> Outcome:
    """``python -m grader ARGS`` (the `cks` command) in ``cwd`` under the bounds. ``prelude`` is Python run
    before the CLI (e.g. to hide the live extras)."""
    code = f"{prelude}\nimport sys\nsys.argv = ['cks'] + sys.argv[1:]\nfrom grader.cli import main\nmain()\n"
    return run_bounded(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        seconds=seconds,
        as_mb=as_mb,
        env=env,
        label=("cks", *args),
        stdin=stdin,
    )


def run_bounded(
    cmd: list[str],
    *,
    cwd: Path,
    seconds: float,
    as_mb: int,
    env: dict[str, str] | None = None,
    label: tuple[str, ...] = (),
    stdin: bytes | None = None,
) -> Outcome:
    full_env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1", "COLUMNS": "200", **(env or {})}
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.TemporaryFile() as inp,
        tempfile.TemporaryDirectory() as scratch,
    ):
        if stdin is not None:
            inp.write(stdin)
            inp.seek(0)
        report = Path(scratch) / "maxrss"
        start = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-S", "-c", _LAUNCHER, str(as_mb * MB), str(report), *cmd],
            cwd=cwd,
            env=full_env,
            stdout=out,
            stderr=err,
            stdin=inp if stdin is not None else subprocess.DEVNULL,
            start_new_session=True,
        )
        hung = False
        status = 0
        usage = None
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - start > seconds:
                hung = True
                os.killpg(proc.pid, signal.SIGKILL)
                _, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        elapsed = time.monotonic() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: keep Popen from waiting again
        with_group_gone(proc.pid)
        out.seek(0)
        err.seek(0)
        text_out = out.read().decode("utf-8", "replace")
        text_err = err.read().decode("utf-8", "replace")
        try:  # the command's own peak; a hung command killed with its launcher has no report
            rss_kib = int(report.read_text())
        except (OSError, ValueError):
            rss_kib = usage.ru_maxrss if usage else 0
    rss_mb = rss_kib / 1024  # Linux: KiB
    result = Outcome(label or tuple(cmd), proc.returncode, text_out, text_err, elapsed, rss_mb, hung)
    _log(result)
    return result


def _log(result: Outcome) -> None:
    """CKS_ATTACK_LOG=FILE: one JSON line per case (to count the attack run: clean, traceback, hang, ...)."""
    path = os.environ.get("CKS_ATTACK_LOG")
    if path:
        import json

        with open(path, "a") as fh:
            fh.write(
                json.dumps(
                    {
                        "args": list(result.args)[:12],
                        "verdict": result.verdict,
                        "rc": result.rc,
                        "seconds": round(result.seconds, 2),
                        "rss_mb": round(result.max_rss_mb),
                    }
                )
                + "\n"
            )


def with_group_gone(pgid: int) -> None:
    """Kill what the case left running in its process group (a helper it spawned), if anything."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def assert_clean(
    result: Outcome,
    *,
    rc: set[int] | int | None = None,
    seconds: float | None = None,
    rss_mb: float | None = None,
) -> None:
    """The case ended cleanly within its bounds (and with one of the expected exit codes)."""
    assert result.verdict == "clean", result.explain()
    if rc is not None:
        wanted = {rc} if isinstance(rc, int) else rc
        assert result.rc in wanted, result.explain()
    if seconds is not None:
        assert result.seconds <= seconds, f"took {result.seconds:.1f} s > {seconds} s\n" + result.explain()
    if rss_mb is not None:
        assert result.max_rss_mb <= rss_mb, (
            f"peak RSS {result.max_rss_mb:.0f} MB > {rss_mb} MB\n" + result.explain()
        )


# ---- workspaces -------------------------------------------------------------------------------------------

POLICY = "nodes/controlplane/etc/kubernetes/audit/policy.yaml"  # lab1's learner file
BOOKKEEPING = (".cks-lock", ".cks-backup", "cks.yaml", ".cks-created")


def tree(root: Path, skip: tuple[str, ...] = BOOKKEEPING) -> dict[str, str]:
    """{relative path: sha256} of the files under ``root`` (the kit's bookkeeping left out)."""
    import hashlib

    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            if rel.split("/", 1)[0] in skip:
                continue
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "special"
    return out


def new_workspace(root: Path, lab_id: str = "lab1", seed: str | None = None) -> Path:
    """A fresh workspace at ``root/cks-workspace/LAB``, made the way `cks start LAB` makes it."""
    from grader.labs import get_lab
    from grader.workspace import start

    ws = root / "cks-workspace" / lab_id
    start(get_lab(lab_id), ws, seed=seed)
    return ws
