"""The fast path of :func:`~grader.engines.audit_log.query.read_events` for one log series.

Same results as reading every line, de-duplicating, then filtering (``iter_entries`` -> ``Deduplicator`` ->
``CompiledQuery.match``), in one loop and with less work per line:

* lines kube-apiserver wrote (``{"kind":"Event"...}``) that the byte prefilter proves cannot match are not
  parsed (as before);
* with de-duplication, a ``RequestReceived`` line is read only as far as its ``auditID`` and ``stage``
  (kube-apiserver writes them first, at a fixed place): the request it opens is counted at its final stage,
  which usually follows, so the line is kept raw and parsed only if it ends up representing its request (the
  log ends or too many requests are open). A corruption after the ``stage`` of such a line is reported only
  if the line is used;
* with ``raw_only`` (nothing filtered, original lines printed) a final line is not parsed into an event
  either, nor with ``user_only`` (counts by user: its user's name is read by :mod:`.proof`), once
  :mod:`.proof` shows that the full decoder would read it alike (else it is parsed);
* the reading, de-duplication and filtering share one loop (no generator per stage, no object per skipped
  line).

Files that do not start like JSON lines (a BOM, a pretty-printed document) go through ``iter_entries``.
"""

from __future__ import annotations

import itertools
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator

from grader.engines.audit_log import fastscan
from grader.engines.audit_log.proof import heads, worth_proving
from grader.engines.audit_log.reader import (
    APISERVER_PREFIX,
    BOM,
    JSON_ERRORS,
    Entry,
    LineCount,
    LineSource,
    RawLines,
    ReadStats,
    classify_bad_line,
    is_apiserver_event,
    iter_entries,
    json_loads,
    line_excerpt,
    raw_batches,
    unwrap_events,
)

TYPE_CHECKING = False  # typing is not imported at run time (start-up counts)
if TYPE_CHECKING:
    from typing import Any

    # a region of _plan: lines, numbers, their user names (.proof.heads, or None), audit IDs, stages, and
    # whether it is its whole block
    Region = tuple[list[bytes], Any, list[str] | None, list[str], list[str], bool]

_AID = b'"auditID":"'
_RR = b'","stage":"RequestReceived"'
_FINAL_RC = b'","stage":"ResponseComplete"'
_FINAL = frozenset({"ResponseComplete", "Panic"})
MAX_SEEN = 200_000  # request IDs a parallel worker records before giving up (the parent then reads alone)
RawLine = tuple[bytes, str, int]  # a line kept unparsed: (line, source, line number)
_PARSE = object()  # a line the shortcuts leave to the parser


def _status_code(ev: dict[str, Any]) -> Any:
    status = ev.get("responseStatus")
    return status.get("code") if isinstance(status, dict) else None


class RequestScanner:
    """De-duplication state plus the per-line loop. ``scan(source, name)`` yields the requests (or, without
    de-duplication, every event) that match, in the order :class:`Deduplicator` would emit them; ``flush()``
    yields the requests still open at the end."""

    def __init__(
        self,
        stats: ReadStats,
        compiled: Any,
        *,
        dedupe: bool = True,
        fast: bool = True,
        max_pending: int = 5000,
        done_window: int = 32768,
        record: bool = False,
        raw_only: bool = False,
        user_only: bool = False,
        raw_blocks: bool = False,
    ):
        self.stats = stats
        self.compiled = compiled
        self.dedupe = dedupe
        self.fast = fast
        self.max_pending = max_pending
        self.done_window = done_window
        self.pending: OrderedDict[str, Entry | RawLine] = OrderedDict()
        self.done: OrderedDict[str, None] = OrderedDict()
        self.max_open = 0  # the most requests open at once (the parallel reader checks it)
        # record (parallel worker): request IDs met without their start, and every ID while the done window
        # is not yet full, so the parent can join the halves (see .parallel)
        self.record = record and dedupe
        self.seen: dict[str, None] = {}
        self.overflow = False
        prefilter = compiled.prefilter() if fast else None
        self.needle = prefilter.needle if prefilter else None
        self.test = prefilter.test if prefilter else None
        self.pattern = prefilter.pattern if prefilter and prefilter.needle is None else None
        # what the compiled scanner searches blocks for: the needle, or the pattern's literals
        self.groups: tuple[tuple[bytes, ...], ...] = prefilter.groups if prefilter else ()
        self.needles: tuple[bytes, ...] = ()
        if self.needle is not None:
            self.needles = (self.needle,)
        elif self.pattern is not None:
            self.needles = prefilter.literals
        self.match = None if compiled.is_empty else compiled.match
        # raw_only: the caller prints raw lines only (jsonl) and nothing is filtered, so a final line needs
        # no parsing either: its auditID and stage are read from the line (its event is None)
        self.raw_only = raw_only and self.match is None and dedupe
        # raw_blocks (with raw_only): the requests of a block read at once come as one RawLines
        self.raw_blocks = raw_blocks and self.raw_only
        # user_only: the caller reads only the user of events (counts by user, nothing filtered), so a final
        # line of a proven block is not parsed: its event holds only the user's name, read from its head
        self.user_only = user_only and self.match is None and dedupe and not self.raw_only
        # user_only without a tally: the event of each user's name, shared
        self._users: dict[str, Any] = {}
        # user_only, set by the caller: its counts by user (a Counter, keys: 1-tuples, in the order first
        # met), to which the requests of a block read at once are added directly (no entry each)
        self.tally: Counter[tuple[str, ...]] | None = None

    # -- de-duplication (the rules of query.Deduplicator) --

    def _finish(self, aid: str) -> None:
        done = self.done
        done[aid] = None
        if len(done) > self.done_window:
            done.popitem(last=False)

    def _materialise(self, entry: Entry | RawLine) -> Iterator[Entry]:
        """A pending line kept raw (line, source, number) is parsed when it comes to represent its request."""
        if type(entry) is not tuple:
            yield entry  # type: ignore[misc]
            return
        raw, source, no = entry
        self.stats.events -= 1
        try:
            obj = json_loads(raw)
        except JSON_ERRORS:
            self.stats.problem(source, no, classify_bad_line(raw), excerpt=line_excerpt(raw))
            return
        for event in unwrap_events(obj, source, no, self.stats):
            self.stats.events += 1
            yield Entry(event, raw if event is obj else None, source, no)

    def _emit(self, entry: Entry | RawLine) -> Iterator[Entry]:
        match = self.match
        for e in self._materialise(entry):
            if self.dedupe:
                self.stats.requests += 1
            if match is None or match(e.event):
                yield e

    def _feed(self, entry: Entry) -> Iterator[Entry]:
        """Deduplicator.feed, for events that were parsed."""
        if not self.dedupe:
            yield from self._emit(entry)
            return
        ev = entry.event
        aid = ev.get("auditID")
        if not isinstance(aid, str) or not aid:
            yield from self._emit(entry)
            return
        if aid in self.done:
            self.stats.duplicates += 1
            return
        if self.record and (aid not in self.pending or len(self.done) < self.done_window):
            self._saw(aid)
        stage = ev.get("stage")
        if not isinstance(stage, str):
            stage = None
        if (
            stage in _FINAL
            or stage is None
            or (stage == "ResponseStarted" and str(_status_code(ev)) == "401")
        ):
            if self.pending.pop(aid, None) is not None:
                self.stats.duplicates += 1
            self._finish(aid)
            yield from self._emit(entry)
            return
        yield from self._open(aid, entry)

    def _open(self, aid: str, entry: Entry | RawLine) -> Iterator[Entry]:
        pending = self.pending
        if aid in pending:
            self.stats.duplicates += 1
            pending.move_to_end(aid)
        pending[aid] = entry
        if len(pending) > self.max_open:
            self.max_open = len(pending)
        if len(pending) > self.max_pending:
            old_aid, old = pending.popitem(last=False)
            self._finish(old_aid)
            yield from self._emit(old)

    def _saw(self, aid: str) -> None:
        self.seen[aid] = None
        if len(self.seen) > MAX_SEEN:
            self.overflow, self.record = True, False
            self.seen = {}

    def flush(self) -> Iterator[Entry]:
        pending = self.pending
        while pending:
            aid, entry = pending.popitem(last=False)
            self._finish(aid)
            yield from self._emit(entry)

    # -- the loop --

    def scan(
        self,
        source: LineSource,
        name: str,
        *,
        line_offset: int = 0,
        at_start: bool = True,
        continued: bool = False,
    ) -> Iterator[Entry]:
        """The matching requests of one stream. A byte range of a file (the parallel reader) is read with
        ``at_start=False`` (no BOM or document there); ``line_offset`` numbers its lines after the earlier
        range; ``continued``: the source was already listed."""
        # the requests come in batches (a list per block read at once): chained in C, not resumed per entry
        return itertools.chain.from_iterable(
            self._scan_batches(source, name, line_offset=line_offset, at_start=at_start, continued=continued)
        )

    def _scan_batches(
        self, source: LineSource, name: str, *, line_offset: int, at_start: bool, continued: bool
    ) -> Iterator[Iterable[Entry]]:
        """:meth:`scan`'s requests in batches."""
        stats = self.stats
        batches = raw_batches(source, name, stats, first_line=line_offset + 1, blocks=True)
        first = next(batches, None)
        if not continued:
            stats.sources.append(name)
        if first is None:
            return
        lines = first[1]
        if type(lines) is bytes:
            cut = lines.find(b"\n")
            head = lines if cut < 0 else lines[:cut]
        else:
            head = lines[0] if lines else b""
        if at_start and (head.startswith(BOM) or head.strip() in (b"{", b"[")):
            # the unusual shapes: the general reader, then the same de-duplication
            stats.sources.pop()
            for entry in iter_entries(_Replay(first, batches), name, stats, None):
                yield self._feed(entry)
            return
        before = stats.events
        try:
            yield from self._lines(first, batches, name)
        finally:
            if stats.events > before:
                stats.audit_sources.add(name)

    def _lines(
        self, first: tuple[int, list[bytes]], batches: Iterator[tuple[int, list[bytes]]], name: str
    ) -> Iterator[Iterable[Entry]]:
        """The requests of the stream's batches of lines, in batches (each one consumed before the next is
        asked for)."""
        stats = self.stats
        for start, batch, *counted in itertools.chain((first,), batches):
            if counted:  # a block (bytes) of lines, counted as it is split
                segments, skipped, test_now = self._segments(start, batch, counted[0])
                stats.lines += counted[0].get()
            else:
                stats.lines += len(batch)
                segments, skipped, test_now = [(enumerate(batch, start), None)], 0, self.test
            for pairs, region in segments:
                if region is not None:  # requests that begin and end here: read at once when simple
                    got = self._bulk(region, name)
                    if got is not None:
                        yield got
                        continue
                yield self._one_by_one(pairs, name, test_now)
            stats.prefiltered += skipped

    def _segments(self, start: int, batch: bytes, count: LineCount) -> tuple[list[tuple[Any, Any]], int, Any]:
        """A block of lines as (segments for :meth:`_plan`'s reader, lines skipped already, the prefilter
        test still to apply to each line); ``count`` is told how many lines it has when it is split."""
        prefix, needle, pattern, test = APISERVER_PREFIX, self.needle, self.pattern, self.test
        peek = self.dedupe and self.fast
        # kube-apiserver lines only (each ends with "}"): for the needle search, counted by _needle_lines;
        # for _plan, proven line by line by .proof
        outline = batch.startswith(prefix) and batch.endswith(b"}")
        searched = needle is not None or pattern is not None
        found = None
        if outline and searched:
            found, test = self._found_lines(batch, start, count)
        if found is not None:
            # a block of kube-apiserver lines only: lines without the needle are never split out
            pairs: Any = found
            skipped = count.get() - len(pairs)
            if not (peek and pairs):
                return [(pairs, None)], skipped, test
            if test is not None:
                kept = [p for p in pairs if test(p[1])]
                skipped += len(pairs) - len(kept)
                pairs, test = kept, None  # already applied
            lines = [line for _, line in pairs]
            return self._plan(b"\n".join(lines), lines, [no for no, _ in pairs]), skipped, test
        if outline and peek and test is None and not searched and self.tally is not None:
            planned = self._plan_lazily(batch, start, count)
            if planned is not None:
                return planned, 0, test
        lines = batch.split(b"\n")
        count.n = len(lines)
        if outline and peek and test is None and not searched:
            return self._plan(batch, lines, range(start, start + len(lines))), 0, test
        return [(enumerate(lines, start), None)], 0, test

    def _found_lines(self, block: bytes, start: int, count: LineCount) -> tuple[Any, Any]:
        """(_needle_lines, the prefilter test still to apply to them), by the compiled scanner when it is
        there: the lines with the needle, or one of the pattern's literals (a superset of the pattern's
        lines, which the test then narrows), and a member of each of the prefilter's groups (all of the test
        when there is no pattern)."""
        native = fastscan.native
        if native is None or not self.needles:
            return _needle_lines(block, start, self.needle, self.pattern, count.get()), self.test
        found = native.needle_lines(  # type: ignore[attr-defined]
            block, start, self.needles, APISERVER_PREFIX, self.groups
        )
        if found is None:
            return None, self.test
        pairs, count.n = found
        return pairs, (self.test if self.pattern is not None else None)

    def _one_by_one(self, pairs: Any, name: str, test: Any) -> Iterator[Entry]:
        """The matching requests of (number, line) pairs read one at a time; the lines the prefilter skipped
        are counted at the end."""
        stats, needle, prefix = self.stats, self.needle, APISERVER_PREFIX
        peek = self.dedupe and self.fast
        skipped = 0
        for no, line in pairs:
            if line.startswith(prefix) and line.endswith(b"}"):
                if (needle is not None and needle not in line) or (test is not None and not test(line)):
                    skipped += 1
                    continue
                if peek:
                    got = self._peek(line, no, name)
                    if got is not _PARSE:
                        if got is not None:
                            yield from got
                        continue
            elif not line:
                continue
            try:
                obj = json_loads(line)
            except JSON_ERRORS:
                if line.strip():
                    stats.problem(name, no, classify_bad_line(line), excerpt=line_excerpt(line))
                continue
            if is_apiserver_event(obj):
                stats.events += 1
                got = self._final(obj, line, name, no)
                if got is _PARSE:
                    yield from self._feed(Entry(obj, line, name, no))
                elif got is not None:
                    yield got
                continue
            for event in unwrap_events(obj, name, no, stats):
                stats.events += 1
                yield from self._feed(Entry(event, line if event is obj else None, name, no))
        stats.prefiltered += skipped

    def _peek(self, line: bytes, no: int, name: str) -> Any:
        """A kube-apiserver line read no further than its auditID and stage when that is enough: a
        RequestReceived line is kept raw, keyed by its auditID (the usual next line is its end); with
        ``raw_only``, a final line proven as written is counted raw. The entries to yield, None (nothing
        to yield), or _PARSE (parse the line)."""
        a = line.find(_AID, 30, 100)
        if a < 0:
            return _PARSE
        e = line.find(b'"', a + 11)
        if line.startswith(_RR, e):
            opening = True
        elif self.raw_only and line.startswith(_FINAL_RC, e):
            opening = False
        else:
            return _PARSE
        raw_aid = line[a + 11 : e]
        # else parsed, as orjson sees it
        if not raw_aid or not raw_aid.isascii() or line.find(b"\\", a + 11, e) >= 0:
            return _PARSE
        if not opening and not (worth_proving(len(line)) and _proven_final(line, raw_aid)):
            return _PARSE
        stats = self.stats
        stats.events += 1
        aid = raw_aid.decode()
        if aid in self.done:
            stats.duplicates += 1
            return None
        if opening:
            return self._keep_open(aid, (line, name, no))
        got = self._close(aid, Entry(None, line, name, no))  # type: ignore[arg-type]
        return None if got is None else (got,)

    def _keep_open(self, aid: str, raw: RawLine) -> list[Entry] | None:
        """A RequestReceived line kept raw (its auditID not finished before); a request it pushes out of
        the open ones is counted now (returned)."""
        pending = self.pending
        if self.record and len(self.done) < self.done_window:
            self._saw(aid)
        if aid in pending or len(pending) >= self.max_pending:
            return list(self._open(aid, raw))
        pending[aid] = raw
        if len(pending) > self.max_open:
            self.max_open = len(pending)
        return None

    def _close(self, aid: str, entry: Entry) -> Entry | None:
        """A final line of a request not finished before: the request is counted."""
        stats = self.stats
        if self.pending and self.pending.pop(aid, None) is not None:
            stats.duplicates += 1
        elif self.record:  # its start is in an earlier range (or nowhere)
            self._saw(aid)
        done = self.done
        done[aid] = None
        if len(done) > self.done_window:
            done.popitem(last=False)
        stats.requests += 1
        match = self.match
        return entry if match is None or match(entry.event) else None

    def _final(self, obj: dict[str, Any], line: bytes, name: str, no: int) -> Any:
        """The common cases of a parsed event, kept short: every event without de-duplication, the final
        stage line of a request with it. The entry to yield, None, or _PARSE (the general rules:
        :meth:`_feed`)."""
        if not self.dedupe:
            return Entry(obj, line, name, no) if self.match is None or self.match(obj) else None
        aid = obj.get("auditID")
        stage = obj.get("stage")
        if type(aid) is not str or not aid or (stage != "ResponseComplete" and stage != "Panic"):
            return _PARSE
        if aid in self.done:
            self.stats.duplicates += 1
            return None
        return self._close(aid, Entry(obj, line, name, no))

    # -- whole blocks --

    def _plan(self, block: bytes, lines: list[bytes], nos: Any) -> list[tuple[Any, Any]]:
        """``lines`` (kube-apiserver lines, ``block`` = them joined by newlines, ``nos`` their numbers) as
        segments (pairs, region): a region :meth:`_bulk` may read at once, after the lines (read one by one)
        of requests seen finished before the block (repeated lines), cut where no request crosses. The block
        is read at once only when :mod:`.proof` shows each line to be an audit event (its heads)."""
        m = len(lines)
        found = heads(block, m, self.user_only) if m >= _MIN_BULK and worth_proving(len(block)) else None
        if found is None:
            return [(zip(nos, lines, strict=True), None)]
        return self._plan_found(found, lines, nos)

    def _plan_lazily(self, block: bytes, start: int, count: LineCount) -> list[tuple[Any, Any]] | None:
        """:meth:`_plan` of a block whose lines are not split out first (counting by user: a block's lines
        are read from its heads, and only the few left open are cut out), by the compiled scanner; None when
        it cannot prove the block (the caller splits it)."""
        native = fastscan.native
        found = native.heads(block, -1, True, True) if native is not None else None  # type: ignore[attr-defined]
        if found is None or len(found[0]) < _MIN_BULK:
            return None
        m = count.n = len(found[0])
        lines = _Lines(block, memoryview(found[4]).cast("n"), 0, m)
        return self._plan_found(found[:4], lines, range(start, start + m))

    def _plan_found(self, found: Any, lines: Any, nos: Any) -> list[tuple[Any, Any]]:
        """:meth:`_plan` once the block's heads were read."""
        aids, stages, names, failed = found
        m = len(aids)
        for i in failed:  # a failed login (401) ends its request at its ResponseStarted line
            stages[i] = _STARTED_401
        h = 0
        done = self.done
        if not done.keys().isdisjoint(aids):  # lines of finished requests: read one by one
            last = dict(zip(aids, range(m), strict=True))
            ended = last.__getitem__
            h = 1 + max(map(ended, last.keys() & done.keys()))
            while 0 < h < m:  # move h past the requests that cross it
                reach = max(map(ended, aids[:h]))
                if reach < h:
                    break
                h = reach + 1
        if m - h < _MIN_BULK:
            return [(zip(nos, lines, strict=True), None)]
        region = (lines[h:], nos[h:], names[h:] if names else names, aids[h:], stages[h:], h == 0)
        return [(zip(nos[:h], lines[:h], strict=True), None), (zip(nos[h:], lines[h:], strict=True), region)]

    def _bulk(self, region: Region, name: str) -> list[Entry] | None:
        """The matching requests of a region of :meth:`_plan`, when reading its lines one by one follows the
        simple rules: a request's lines there are opening lines (RequestReceived, ResponseStarted) then at
        most one final line (its last there); none was finished before; no open request would be pushed out.
        Then only the lines the one-line reader parses are parsed, and the state (open and finished requests,
        counts, the parallel worker's record) is updated at once. Else None, with nothing changed (the caller
        reads the lines one by one)."""
        lines, nos, names, aids, stages, fresh = region
        shape = self._bulk_shape(aids, stages, fresh)
        if shape is None:
            return None
        last, fin, known, saw = shape
        events = self._bulk_read(lines, names, aids, stages, last, fin)
        if events is None:
            return None
        self._bulk_commit(len(lines), last, stages, [aids[i] for i in fin], known, saw)
        pending = self.pending
        opened = sorted(set(last.values()).difference(fin))  # requests left open, by their last line
        for i in opened:
            a = aids[i]
            if a in known:
                pending.move_to_end(a)
            pending[a] = (
                (lines[i], name, nos[i])
                if stages[i] == "RequestReceived"
                else Entry(events[i], lines[i], name, nos[i])
            )
        match = self.match
        if self.raw_blocks and fin:
            return [RawLines(b"\n".join(map(lines.__getitem__, fin)) + b"\n", len(fin))]
        if match is None:
            if self.tally is not None:
                self.tally.update(zip(map(names.__getitem__, fin)))  # in C, in order
                return []
            return [Entry(events[i], lines[i], name, nos[i]) for i in fin]
        return [Entry(events[i], lines[i], name, nos[i]) for i in fin if match(events[i])]

    def _bulk_shape(
        self, aids: list[str], stages: list[str], fresh: bool
    ) -> tuple[dict[str, int], list[int], Any, Any] | None:
        """(last line of each request, the final lines, the requests open before, the IDs the parallel
        worker records) when the region follows :meth:`_bulk`'s simple rules, else None. ``fresh``: the
        region is its whole block, whose requests :meth:`_plan` found none finished before."""
        m = len(aids)
        last = dict(zip(aids, range(m), strict=True))
        fin = list(itertools.compress(range(m), map(_FINAL_STAGES.__contains__, stages)))
        if list(map(last.__getitem__, map(aids.__getitem__, fin))) != fin:  # a line after a final one
            return None
        pending, done = self.pending, self.done
        if not fresh and not done.keys().isdisjoint(last):
            return None
        known = last.keys() & pending.keys() if pending else set()  # open before the region
        if len(pending) + len(last) - len(known) > self.max_pending:
            return None
        saw: Any = None
        if self.record:
            if len(done) + len(fin) < self.done_window:
                saw = last  # one line at a time, every request of the region is recorded
            elif len(done) >= self.done_window:  # those neither open before nor opened by a RequestReceived
                first = dict(zip(reversed(aids), reversed(range(m)), strict=True))  # each one's first line
                opened = map("RequestReceived".__ne__, map(stages.__getitem__, first.values()))
                saw = list(itertools.compress(first, opened))  # in C: a Python loop here cost ~10% of a run
                if known:
                    saw = [a for a in saw if a not in known]
            else:
                return None
        return last, fin, known, saw

    def _bulk_read(
        self,
        lines: list[bytes],
        names: list[str] | None,
        aids: list[str],
        stages: list[str],
        last: dict[str, int],
        fin: list[int],
    ) -> dict[int, Any] | None:
        """The events of the final lines and of the ResponseStarted lines left open, by line, when every
        line parsed is an audit event with the auditID and stage its head says; else None.

        Every line of the region is proven (:mod:`.proof`), so only the lines whose events are used are
        parsed: the final lines, but for the lines used unparsed (with ``raw_only`` their event is None, with
        ``user_only`` it holds the user only, from ``names``), and the ResponseStarted lines left open
        (those are not 401: see _plan)."""
        if self.raw_only or (self.user_only and self.tally is not None):  # the tally reads the heads
            light: dict[int, Any] = dict.fromkeys(fin)
        elif self.user_only:
            light = self._user_events(fin, names)
        else:
            light = {}
        started = itertools.compress(range(len(stages)), map("ResponseStarted".__eq__, stages))
        opened = [i for i in started if last[aids[i]] == i]
        parse = opened if light else fin + opened  # light: every final line
        try:
            parsed = [json_loads(lines[i]) for i in parse]
        except JSON_ERRORS:
            return None
        for ev, i in zip(parsed, parse, strict=True):
            if (
                not is_apiserver_event(ev)
                or ev.get("auditID") != aids[i]
                or ev.get("stage") != _STAGE_NAMES[stages[i]]
            ):
                return None
        events = dict(zip(parse, parsed, strict=True))
        if light:
            events.update(light)
        return events

    def _user_events(self, fin: list[int], names: list[str]) -> dict[int, Any]:
        """The events (the user only) of final lines, by line, from their names; one event per name, shared
        (nothing changes an event; up to _USER_EVENTS names are remembered)."""
        known = self._users
        out = {}
        for i in fin:
            name = names[i]
            event = known.get(name)
            if event is None:
                event = {"user": {"username": name}}
                if len(known) < _USER_EVENTS:
                    known[name] = event
            out[i] = event
        return out

    def _bulk_commit(
        self, m: int, last: dict[str, int], stages: list[str], fin_aids: list[str], known: Any, saw: Any
    ) -> None:
        """The state after reading a region of :meth:`_bulk` one line at a time, but for its open requests."""
        pending, done = self.pending, self.done
        stats = self.stats
        stats.events += m
        stats.requests += len(fin_aids)
        new = len(last) - len(known)
        stats.duplicates += m - new  # every line but the first of a request not open before
        if len(pending) + new > self.max_open:
            self.max_open = len(pending) + new  # at most this many were open at once
        if saw:
            self.seen.update(dict.fromkeys(saw))
            if len(self.seen) > MAX_SEEN:
                self.overflow, self.record = True, False
                self.seen = {}
        for a in known:
            if stages[last[a]] in _FINAL_STAGES:
                del pending[a]
        done.update(dict.fromkeys(fin_aids))
        for _ in range(len(done) - self.done_window):
            done.popitem(last=False)


_USER_EVENTS = 10_000
_STARTED_401 = "ResponseStarted 401"  # a ResponseStarted line of a failed login: final
_FINAL_STAGES = frozenset({"ResponseComplete", "Panic", _STARTED_401})
_STAGE_NAMES = {
    "RequestReceived": "RequestReceived",
    "ResponseStarted": "ResponseStarted",
    "ResponseComplete": "ResponseComplete",
    "Panic": "Panic",
    _STARTED_401: "ResponseStarted",
}
_MIN_BULK = 16  # lines: below this, reading one by one costs less than planning


def _proven_final(line: bytes, raw_aid: bytes) -> bool:
    """A ResponseComplete line proven (:mod:`.proof`) whose auditID is the one written first (a key
    written twice: the last one is the line's)."""
    found = heads(line, 1, users=False)
    return found is not None and found[1][0] == "ResponseComplete" and found[0][0] == raw_aid.decode()


def _needle_lines(
    block: bytes, start: int, needle: bytes | None, pattern: Any, n: int
) -> list[tuple[int, bytes]] | None:
    """(number, line) of the lines of ``block`` (``n`` lines) that hold ``needle`` (or match ``pattern``),
    found by searching the block: the other lines are never copied out. None unless ``block`` holds
    kube-apiserver lines only (each newline inside a ``}\\n{"kind":"Event"`` joint, see _segments), which
    is known only at the end: lines are counted by their joints as the search goes (a long pattern is found
    faster than single newlines), and every newline must have been one."""
    joint, reach = b"}\n" + APISERVER_PREFIX, len(APISERVER_PREFIX)
    out = []
    pos = counted = 0
    no = start
    end = len(block)
    while pos < end:
        if needle is not None:
            i = block.find(needle, pos)
            if i < 0:
                break
        else:
            m = pattern.search(block, pos)
            if m is None:
                break
            i = m.start()
        before = block.rfind(b"\n", pos, i)
        line_start = before + 1 if before >= 0 else pos  # pos is always the start of a line
        line_end = block.find(b"\n", i)
        if line_end < 0:
            line_end = end
        if line_start > counted:  # the joints of the newlines in [counted, line_start)
            no += block.count(joint, counted - 1 if counted else 0, line_start + reach)
        counted = line_start
        out.append((no, block[line_start:line_end]))
        pos = line_end + 1
    joints = no - start + block.count(joint, counted - 1 if counted else 0)  # every joint of the block
    return out if joints == n - 1 else None


class _Lines:
    """The lines of a block (``starts``: where each begins, and one past the end), each cut out when asked
    for: counting by user uses a few lines of each block, and splitting a 1 MB block costs ~0.5 ms."""

    __slots__ = ("block", "starts", "lo", "hi")

    def __init__(self, block: bytes, starts: Any, lo: int, hi: int):
        self.block, self.starts, self.lo, self.hi = block, starts, lo, hi

    def __len__(self) -> int:
        return self.hi - self.lo

    def __getitem__(self, i: Any) -> Any:
        if type(i) is slice:
            span = range(self.lo, self.hi)[i]
            if span.step != 1:
                raise ValueError("lines are sliced without a step")
            return _Lines(self.block, self.starts, span.start, span.stop)
        j = self.lo + i if i >= 0 else self.hi + i
        if not self.lo <= j < self.hi:
            raise IndexError(i)
        return self.block[self.starts[j] : self.starts[j + 1] - 1]

    def __iter__(self) -> Iterator[bytes]:
        block, starts = self.block, self.starts
        return (block[starts[j] : starts[j + 1] - 1] for j in range(self.lo, self.hi))


class _Replay:
    """Batches already taken from a stream, handed back to ``iter_entries`` as an iterable of lines."""

    def __init__(self, first: tuple[Any, ...], rest: Iterator[tuple[Any, ...]]):
        self.first, self.rest = first, rest

    def __iter__(self) -> Iterator[bytes]:
        for _, lines, *_n in itertools.chain((self.first,), self.rest):
            yield from (lines.split(b"\n") if type(lines) is bytes else lines)
