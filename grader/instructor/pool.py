"""Run one job per bundle in a forked child with a time and memory budget, ``jobs`` at a time.

A bundle that loops or balloons must not stall or sink the class: each child gets an address-space limit
(RLIMIT_AS) and a wall-clock deadline; past it the child is killed and the bundle gets a row saying why.
Children are forked from a parent that has already imported the grader, so a child starts in milliseconds.
"""

from __future__ import annotations

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
    memory_mb: int = 3072  # address space per bundle (lab7's reader peaks well under 1 GB)


def _child(conn: Connection, fn: Callable[[Any], Any], item: Any, budget: Budget,
           setup: Callable[[], None] | None) -> None:
    import resource

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; it kills us if needed
    limit = budget.memory_mb * 1024 * 1024
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        cap = limit if hard == resource.RLIM_INFINITY else min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    except (ValueError, OSError):
        pass
    try:
        if setup:
            setup()
        result = fn(item)
        payload = pickle.dumps(("ok", result))
    except MemoryError:
        payload = pickle.dumps(("memory", None))
    except BaseException as exc:  # reported in the bundle's row, never a traceback
        payload = pickle.dumps(("crash", f"{type(exc).__name__}: {exc}"[:300]))
    try:
        conn.send_bytes(payload)
    finally:
        conn.close()
        os._exit(0)


def run(items: list[Any], fn: Callable[[Any], Any], *, jobs: int, budget: Budget,
        failed: Callable[[Any, str], Any], setup: Callable[[], None] | None = None) -> Iterator[tuple[int, Any]]:
    """Yield (index, result) as children finish; ``failed(item, why)`` makes the result of one that did not."""
    ctx = mp.get_context("fork")
    pending = list(enumerate(items))
    pending.reverse()
    running: dict[Connection, tuple[int, Any, Any, float]] = {}
    try:
        while pending or running:
            while pending and len(running) < max(1, jobs):
                idx, item = pending.pop()
                recv, send = ctx.Pipe(duplex=False)
                proc = ctx.Process(target=_child, args=(send, fn, item, budget, setup), daemon=True)
                proc.start()
                send.close()
                running[recv] = (idx, item, proc, time.monotonic() + budget.seconds)
            now = time.monotonic()
            soonest = min(dl for _i, _it, _p, dl in running.values())
            ready = wait(list(running), timeout=max(0.0, soonest - now))
            for conn in ready:
                idx, item, proc, _dl = running.pop(conn)
                try:
                    status, value = pickle.loads(conn.recv_bytes())
                except (EOFError, OSError, pickle.UnpicklingError):
                    proc.join(5)
                    code = proc.exitcode
                    why = (f"the regrade process died (signal {-code})" if code and code < 0
                           else "the regrade process died") + f"; over {budget.memory_mb} MB is the usual cause"
                    yield idx, failed(item, why)
                    continue
                finally:
                    conn.close()
                proc.join(5)
                if status == "ok":
                    yield idx, value
                elif status == "memory":
                    yield idx, failed(item, f"over the memory budget ({budget.memory_mb} MB per bundle)")
                else:
                    yield idx, failed(item, f"could not regrade: {value}")
            now = time.monotonic()
            for conn, (idx, item, proc, dl) in list(running.items()):
                if now >= dl and conn not in ready:
                    proc.kill()
                    proc.join(5)
                    conn.close()
                    del running[conn]
                    yield idx, failed(item, f"over the time budget ({budget.seconds:g} s per bundle); stopped")
    finally:
        for conn, (_i, _it, proc, _dl) in running.items():
            proc.kill()
            proc.join(5)
            conn.close()
