"""Run jobs (one per bundle) in long-lived forked workers, each job with a time and memory budget.

A bundle that loops or balloons must not stall or sink the class: every worker has an address-space limit
(RLIMIT_AS) and every job a wall-clock deadline; past it the worker is killed, the bundle gets a row saying
why, and a fresh worker takes its place. Workers are forked from a parent that has already imported the
grader and live for many jobs, so their caches (compiled Falco rules, parsed labs) stay warm.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import pickle
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any


@dataclass(frozen=True)
class Budget:
    seconds: float = 180.0  # wall clock per bundle (lab7 takes ~0.4 s)
    memory_mb: int = 3072  # address space per worker (lab7's reader peaks well under 1 GB)


def _worker(
    conn: Connection, fn: Callable[[Any], Any], budget: Budget, setup: Callable[[], None] | None
) -> None:
    import resource

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; it kills us if needed
    try:
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        cap = budget.memory_mb * 1024 * 1024
        resource.setrlimit(
            resource.RLIMIT_AS, (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard)
        )
    except (ValueError, OSError):
        pass
    if setup:
        setup()
    while True:
        try:
            item = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):
            os._exit(0)
        out_of_memory = False
        try:
            payload = pickle.dumps(("ok", fn(item)))
        except MemoryError:
            out_of_memory = True
            payload = pickle.dumps(("memory", None))
        except BaseException as exc:  # reported in the bundle's row, never a traceback
            payload = pickle.dumps(("crash", f"{type(exc).__name__}: {exc}"[:300]))
        try:
            conn.send_bytes(payload)
        except (OSError, ValueError):
            os._exit(0)
        if out_of_memory:
            os._exit(0)  # after a MemoryError the heap may be in any state: the parent starts a fresh worker


@dataclass
class _Slot:
    proc: Any
    conn: Connection
    job: tuple[int, Any] | None = None
    deadline: float = 0.0


class _Workers:
    """The worker processes and the job each one holds; a worker that died, ran out of memory or ran
    past its deadline is replaced by a fresh one."""

    def __init__(self, fn: Callable[[Any], Any], budget: Budget, setup: Callable[[], None] | None):
        self.ctx = mp.get_context("fork")
        self.fn, self.budget, self.setup = fn, budget, setup
        self.slots: list[_Slot] = []

    def start(self, count: int) -> None:
        self.slots = [self._spawn() for _ in range(count)]

    def _spawn(self) -> _Slot:
        parent, child = self.ctx.Pipe(duplex=True)
        proc = self.ctx.Process(target=_worker, args=(child, self.fn, self.budget, self.setup), daemon=True)
        proc.start()
        child.close()
        return _Slot(proc, parent)

    @staticmethod
    def _retire(slot: _Slot) -> None:
        slot.proc.kill()
        slot.proc.join(5)
        slot.conn.close()

    def _replace(self, i: int) -> None:
        self._retire(self.slots[i])
        self.slots[i] = self._spawn()

    def close(self) -> None:
        for slot in self.slots:
            self._retire(slot)

    def busy(self) -> list[_Slot]:
        return [s for s in self.slots if s.job]

    def dispatch(self, pending: list[tuple[int, Any]]) -> None:
        """Hand the next pending job to every idle worker, starting its deadline."""
        for slot in self.slots:
            if slot.job is None and pending:
                slot.job = pending.pop()
                slot.deadline = time.monotonic() + self.budget.seconds
                with contextlib.suppress(OSError, ValueError):  # a dead worker shows below as EOF
                    slot.conn.send_bytes(pickle.dumps(slot.job[1]))

    def wait_ready(self, busy: list[_Slot]) -> set[Any]:
        """The connections of busy workers with something to read, waiting until the nearest deadline."""
        timeout = max(0.0, min(s.deadline for s in busy) - time.monotonic())
        return set(wait([s.conn for s in busy], timeout=timeout))

    def settle(self, i: int, ready: set[Any], failed: Callable[[Any, str], Any]) -> tuple[int, Any] | None:
        """(index, result) of worker ``i``'s job if it finished or ran out of time, else None."""
        slot = self.slots[i]
        if slot.job is None:
            return None
        idx, item = slot.job
        if slot.conn in ready:
            return idx, self._receive(i, item, failed)
        if time.monotonic() >= slot.deadline:
            self._replace(i)
            return idx, failed(item, f"over the time budget ({self.budget.seconds:g} s per bundle); stopped")
        return None

    def _receive(self, i: int, item: Any, failed: Callable[[Any, str], Any]) -> Any:
        slot = self.slots[i]
        try:
            status, value = pickle.loads(slot.conn.recv_bytes())
        except (EOFError, OSError, pickle.UnpicklingError):
            why = self._death_reason(slot)
            self._replace(i)
            return failed(item, why)
        slot.job = None
        if status == "ok":
            return value
        if status == "memory":
            self._replace(i)
            return failed(item, f"over the memory budget ({self.budget.memory_mb} MB per bundle)")
        return failed(item, f"could not regrade: {value}")

    def _death_reason(self, slot: _Slot) -> str:
        slot.proc.join(5)
        code = slot.proc.exitcode
        why = (
            f"the regrade process died (signal {-code})" if code and code < 0 else "the regrade process died"
        )
        return why + f"; over {self.budget.memory_mb} MB is the usual cause"


def run(
    items: list[Any],
    fn: Callable[[Any], Any],
    *,
    jobs: int,
    budget: Budget,
    failed: Callable[[Any, str], Any],
    setup: Callable[[], None] | None = None,
) -> Iterator[tuple[int, Any]]:
    """Yield (index, result) as jobs finish; ``failed(item, why)`` makes the result of one that did not."""
    pending = list(enumerate(items))
    pending.reverse()
    workers = _Workers(fn, budget, setup)
    try:
        workers.start(max(1, min(jobs, len(items))))
        while pending or workers.busy():
            workers.dispatch(pending)
            busy = workers.busy()
            if not busy:
                break
            ready = workers.wait_ready(busy)
            for i in range(len(workers.slots)):
                done = workers.settle(i, ready, failed)
                if done is not None:
                    yield done
    finally:
        workers.close()
