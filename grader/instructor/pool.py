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
    ctx = mp.get_context("fork")
    pending = list(enumerate(items))
    pending.reverse()
    slots: list[_Slot] = []

    def spawn() -> _Slot:
        parent, child = ctx.Pipe(duplex=True)
        proc = ctx.Process(target=_worker, args=(child, fn, budget, setup), daemon=True)
        proc.start()
        child.close()
        return _Slot(proc, parent)

    def retire(slot: _Slot) -> None:
        slot.proc.kill()
        slot.proc.join(5)
        slot.conn.close()

    try:
        slots = [spawn() for _ in range(max(1, min(jobs, len(items))))]
        while pending or any(s.job for s in slots):
            for slot in slots:
                if slot.job is None and pending:
                    slot.job = pending.pop()
                    slot.deadline = time.monotonic() + budget.seconds
                    with contextlib.suppress(OSError, ValueError):  # a dead worker shows below as EOF
                        slot.conn.send_bytes(pickle.dumps(slot.job[1]))
            busy = [s for s in slots if s.job]
            if not busy:
                break
            timeout = max(0.0, min(s.deadline for s in busy) - time.monotonic())
            ready = set(wait([s.conn for s in busy], timeout=timeout))
            for i, slot in enumerate(slots):
                if slot.job is None:
                    continue
                idx, item = slot.job
                if slot.conn in ready:
                    try:
                        status, value = pickle.loads(slot.conn.recv_bytes())
                    except (EOFError, OSError, pickle.UnpicklingError):
                        slot.proc.join(5)
                        code = slot.proc.exitcode
                        why = (
                            f"the regrade process died (signal {-code})"
                            if code and code < 0
                            else "the regrade process died"
                        ) + f"; over {budget.memory_mb} MB is the usual cause"
                        retire(slot)
                        slots[i] = spawn()
                        yield idx, failed(item, why)
                        continue
                    slot.job = None
                    if status == "ok":
                        yield idx, value
                    elif status == "memory":
                        retire(slot)
                        slots[i] = spawn()
                        yield idx, failed(item, f"over the memory budget ({budget.memory_mb} MB per bundle)")
                    else:
                        yield idx, failed(item, f"could not regrade: {value}")
                elif time.monotonic() >= slot.deadline:
                    retire(slot)
                    slots[i] = spawn()
                    yield (
                        idx,
                        failed(item, f"over the time budget ({budget.seconds:g} s per bundle); stopped"),
                    )
    finally:
        for slot in slots:
            retire(slot)
