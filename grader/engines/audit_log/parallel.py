"""Both cores on one large log: the second half is read by a forked worker, the results are merged.

A plain (not gzip) log of kube-apiserver JSON lines of at least :data:`PARALLEL_MIN_BYTES`, given as the only
file of the only series, is split at the first line boundary after its middle. The parent reads the first
half, a forked worker the second; both run the same :class:`~.scan.RequestScanner` and feed a sink (counts,
or rendered output written to a temporary file by the worker). No file is opened here: the worker reads the
caller's descriptor with ``os.pread``.

The two halves are joined as one pass would have read them. Requests still open at the end of the first half
(a watch, a request whose final stage is in the second half) are matched against the worker's record of
request IDs it met without their start; a request the worker saw finish is dropped from the first half's open
requests (the one pass would have replaced it), the others are counted where the one pass counts them (at
the end, before the second half's own open requests). When the halves cannot be joined exactly (a request
ID the first half already finished appears again in the second half's head, more requests open than the
de-duplicator keeps, or the worker's record overflows) the parent reads the second half itself, so results
never differ from one pass. The worker is killed if the parent stops early (``| head``).
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Callable, Iterable

from grader.engines.audit_log.reader import APISERVER_PREFIX, GZIP_MAGIC, Entry, ReadStats
from grader.engines.audit_log.scan import RequestScanner

TYPE_CHECKING = False  # typing is not imported at run time (start-up counts)
if TYPE_CHECKING:
    from typing import Any, Protocol
else:
    Protocol = object  # Sink is a protocol for type checkers; at run time a plain class

PARALLEL_MIN_BYTES = 16 * 1024 * 1024  # below this, forking costs more than it saves
# a filtered query skips most lines unparsed: its work per byte is a few times less, so the fork (and the
# imports it needs) pays only on a log this many times larger (at 20 MB it cost ~30 ms of ~60)
FILTERED_FACTOR = 4
_MAX_SEARCH = 16 * 1024 * 1024  # how far past the middle a line end is looked for


class Sink(Protocol):
    """Where matching requests go: counts, or rendered lines."""

    def feed(self, entries: Iterable[Entry]) -> None: ...

    def take(self) -> Any:
        """(worker) what was fed since the last take, as a picklable summary."""

    def absorb(self, summary: Any, spool: Any) -> None:
        """(parent) add a worker's summary, in output order."""


class RangeReader(io.RawIOBase):
    """Bytes ``start`` to ``end`` of an open file, read with pread (the file's offset is left alone)."""

    def __init__(self, fd: int, start: int, end: int):
        super().__init__()
        self.fd, self.pos, self.end = fd, start, end

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self.end - self.pos)
        if n <= 0:
            return 0
        got = os.preadv(self.fd, [memoryview(buffer)[:n]], self.pos)  # into the buffer: no copy
        self.pos += got
        return got


def split_point(fd: int, size: int) -> int | None:
    """The offset just after the first newline past the middle, or None."""
    pos = mid = size // 2
    while pos < size and pos - mid < _MAX_SEARCH:
        chunk = os.pread(fd, 65536, pos)
        if not chunk:
            return None
        i = chunk.find(b"\n")
        if i >= 0:
            cut = pos + i + 1
            return cut if cut < size else None
        pos += len(chunk)
    return None


def _splittable(source: Any, min_bytes: int) -> tuple[int, int, int] | None:
    """(fd, size, cut) when ``source`` is a regular file of apiserver JSON lines of at least ``min_bytes``,
    read from its start."""
    if not hasattr(os, "fork") or not hasattr(source, "fileno"):
        return None
    try:
        fd = source.fileno()
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size < min_bytes or source.tell() != 0:
            return None
        head = os.pread(fd, len(APISERVER_PREFIX), 0)
    except (OSError, ValueError, io.UnsupportedOperation):
        return None
    if head[:2] == GZIP_MAGIC or head != APISERVER_PREFIX:
        return None
    cut = split_point(fd, info.st_size)
    return (fd, info.st_size, cut) if cut else None


def run(
    series: list[list[tuple[str, Any]]],
    stats: ReadStats,
    compiled: Any,
    sink: Sink,
    make_worker_sink: Callable[[Any], Sink] | None,
    *,
    dedupe: bool = True,
    fast: bool = True,
    raw_only: bool = False,
    user_only: bool = False,
    raw_blocks: bool = False,
) -> None:
    """Feed ``sink`` the matching requests of ``series`` (as ``read_events`` would yield them), with a
    worker process for a single large file when ``make_worker_sink`` is given (it makes the worker's sink
    from a temporary file it may write to). ``raw_only``: the sink uses only ``Entry.raw`` when it is set
    (entries of unparsed lines then have no event); ``raw_blocks``: it also takes
    :class:`~.reader.RawLines` (many requests' lines at once). ``user_only``: the sink reads only the user
    of events (``--count-by user`` of every request): see :class:`~.scan.RequestScanner`."""
    live = [s for s in series if s]
    split = None
    if make_worker_sink and len(live) == 1 and len(live[0]) == 1:
        min_bytes = PARALLEL_MIN_BYTES * (1 if compiled.is_empty else FILTERED_FACTOR)
        split = _splittable(live[0][0][1], min_bytes)
    if split is None:
        if len(live) == 1:
            scanner = RequestScanner(
                stats,
                compiled,
                dedupe=dedupe,
                fast=fast,
                raw_only=raw_only,
                user_only=user_only,
                raw_blocks=raw_blocks,
            )
            _count_direct(scanner, sink)
            for name, source in live[0]:
                sink.feed(scanner.scan(source, name))
            sink.feed(scanner.flush())
            return
        from grader.engines.audit_log.query import read_events

        sink.feed(read_events(series, stats, compiled, dedupe=dedupe, fast=fast))
        return
    if (
        fast and dedupe and compiled.is_empty and (raw_only or user_only)
    ):  # every line is offered to the proof: its decoder is built once, for both
        from grader.engines.audit_log.proof import prepare

        prepare()
    name = live[0][0][0]
    fd, size, cut = split
    with _spool() as out_tmp, _spool() as meta_tmp:
        _run_split(
            fd,
            size,
            cut,
            name,
            stats,
            compiled,
            sink,
            make_worker_sink,
            out_tmp,
            meta_tmp,
            dedupe,
            fast,
            {"raw_only": raw_only, "user_only": user_only, "raw_blocks": raw_blocks},
        )


def _count_direct(scanner: RequestScanner, sink: Sink) -> None:
    """Counts by user: the scanner adds what it reads at once to the sink's counts (its ``tally``), when the
    sink offers them."""
    tally = getattr(sink, "tally", None)
    if tally is not None and scanner.user_only:
        scanner.tally = tally


def _spool() -> Any:
    """An anonymous temporary file (gone when closed). Opened directly where the system can: the tempfile
    module takes a few milliseconds to import."""
    flag = getattr(os, "O_TMPFILE", 0)
    if flag:
        try:
            fd = os.open(os.environ.get("TMPDIR") or "/tmp", flag | os.O_RDWR, 0o600)
        except OSError:
            pass
        else:
            return open(fd, "w+b")
    import tempfile

    return tempfile.TemporaryFile(prefix="cks-audit-")


def _run_split(
    fd: int,
    size: int,
    cut: int,
    name: str,
    stats: ReadStats,
    compiled: Any,
    sink: Sink,
    make_worker_sink: Callable[[Any], Sink],
    out_tmp: Any,
    meta_tmp: Any,
    dedupe: bool,
    fast: bool,
    modes: dict[str, bool],
) -> None:
    import _signal as signal  # the signal module's C half (the module imports enum: ~5 ms of a query's start)
    import marshal  # built in; pickle costs ~5 ms to import (the worker sends plain values)

    pid = os.fork()
    if pid == 0:  # the worker: the second half, then exit without running the parent's cleanup
        code = 1
        try:
            code = _worker(
                fd, cut, size, name, compiled, dedupe, fast, modes, make_worker_sink(out_tmp), meta_tmp
            )
        finally:
            os._exit(code)
    reaped = False
    try:
        scanner = RequestScanner(stats, compiled, dedupe=dedupe, fast=fast, **modes)
        _count_direct(scanner, sink)
        sink.feed(scanner.scan(RangeReader(fd, 0, cut), name))
        first_lines = stats.lines
        _, status = os.waitpid(pid, 0)
        reaped = True
        meta = None
        if os.waitstatus_to_exitcode(status) == 0:
            meta_tmp.seek(0)
            meta = marshal.loads(meta_tmp.read())  # load(file) reads piece by piece: ~8 ms for 20 MB
            meta["stats"] = ReadStats.from_state(meta["stats"])
        if meta is None or not _joinable(scanner, meta):
            # read the second half here, as one pass would
            sink.feed(
                scanner.scan(
                    RangeReader(fd, cut, size), name, line_offset=first_lines, at_start=False, continued=True
                )
            )
            sink.feed(scanner.flush())
            return
        _merge_stats(stats, meta["stats"], first_lines, name)
        seen = meta["seen"]
        pending = scanner.pending
        for aid in [a for a in pending if a in seen]:  # replaced or finished in the second half
            del pending[aid]
            stats.duplicates += 1
        sink.absorb(meta["main"], out_tmp)
        sink.feed(scanner.flush())
        sink.absorb(meta["flush"], out_tmp)
    finally:
        if not reaped:  # the parent stopped early: the worker's results are not wanted
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass


def _joinable(scanner: RequestScanner, meta: dict[str, Any]) -> bool:
    if meta["overflow"] or len(scanner.pending) + meta["max_open"] > scanner.max_pending:
        return False
    done = scanner.done
    return done.keys().isdisjoint(meta["seen"])  # in C


def _merge_stats(stats: ReadStats, other: ReadStats, line_offset: int, name: str) -> None:
    stats.lines += other.lines
    stats.events += other.events
    stats.prefiltered += other.prefiltered
    stats.duplicates += other.duplicates
    stats.requests += other.requests
    stats.problems.update(other.problems)
    stats.notes.update(other.notes)
    stats.audit_sources |= other.audit_sources
    for p in other.samples:
        if len(stats.samples) >= 20:
            break
        stats.samples.append(p._replace(line=p.line + line_offset) if p.line else p)


def _worker(
    fd: int,
    cut: int,
    size: int,
    name: str,
    compiled: Any,
    dedupe: bool,
    fast: bool,
    modes: dict[str, bool],
    sink: Sink,
    meta_out: Any,
) -> int:
    import _signal as signal  # see _run_split
    import marshal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    stats = ReadStats()
    scanner = RequestScanner(stats, compiled, dedupe=dedupe, fast=fast, record=True, **modes)
    _count_direct(scanner, sink)
    sink.feed(scanner.scan(RangeReader(fd, cut, size), name, at_start=False))
    main = sink.take()
    sink.feed(scanner.flush())
    flush = sink.take()
    stats.sources.clear()
    meta = {
        "stats": stats,
        "main": main,
        "flush": flush,
        "seen": scanner.seen,
        "overflow": scanner.overflow,
        "max_open": scanner.max_open,
    }
    meta["stats"] = stats.state()
    marshal.dump(meta, meta_out)  # plain values only (else ValueError: the parent reads the half itself)
    meta_out.flush()
    return 0
