"""Stream audit events out of JSON-lines logs, in constant memory, never stopping on a bad line.

Input is a binary stream (plain or gzip, told apart by its magic bytes, not its name) or any iterable of
lines. Output is :class:`Entry` objects: the parsed event, the raw line (for byte-exact JSON-lines output)
and where it came from. Everything that is not a readable event is counted in :class:`ReadStats` with a
learner-facing reason; the reader always goes on with the next line.

Formats read, besides plain ``audit.k8s.io/v1`` lines: ``v1beta1``/``v1alpha1`` events (timestamps taken
from ``timestamp``), events without ``apiVersion``, a UTF-8 BOM, pretty-printed JSON documents (up to
:data:`MAX_DOCUMENT_BYTES`), ``EventList`` batches (the webhook backend's shape), JSON arrays of events and
Azure AKS diagnostic-log envelopes (``{"records": [{"properties": {"log": "<event JSON>"}}]}``).
"""

from __future__ import annotations

import io
import itertools
import sys
from collections import Counter, namedtuple
from collections.abc import Callable, Iterable, Iterator

from grader.engines.audit_log import fastscan

TYPE_CHECKING = False  # typing is not imported at run time (start-up counts)
if TYPE_CHECKING:
    from typing import Any, BinaryIO

    LineSource = BinaryIO | Iterable[bytes] | Iterable[str]
else:
    LineSource = object  # the alias is for type checkers only

# what a decoder raises for a line that is not JSON (orjson's and json's errors are ValueErrors)
JSON_ERRORS: tuple[type[Exception], ...] = (ValueError,)
# a line on which the standard library's json and orjson may disagree: an escaped lone surrogate (orjson
# refuses it), 16 digits in a row (integers past 64 bits: orjson gives a float), a number with a 3-digit
# exponent (overflow: orjson refuses, json gives inf; a number starts a line or follows ":", "," or "[")
DECODERS_DIFFER = rb"\\u[dD][89a-fA-F]|[0-9]{16}|(?:^|[:,\[])[ \t\n\r]*-?[0-9]+(?:\.[0-9]*)?[eE][-+]?[0-9]{3}"
_orjson_loads: Callable[[bytes | str], Any] | None = None
_orjson_dumps: Callable[[Any], bytes] | None = None
_stdlib: Callable[[str], Any] | None = None  # json's decoder, refusing NaN and Infinity
# json parses a kube-apiserver line ~4-7 us slower than orjson, whose import costs ~13-18 ms here; the
# DECODERS_DIFFER search costs ~12 us more a line: after _STDLIB_LINES orjson is imported (~3 ms lost at
# worst), and a query that parses fewer gains the import. With the compiled check (fastscan.plain_json,
# ~1 us a line) the standard library reads up to _NATIVE_LINES (at worst ~15 ms lost, about the import).
_STDLIB_LINES = 150
_NATIVE_LINES = 3000
_stdlib_left: int | None = None  # lines the standard library may still read; set on first use


def json_loads(data: bytes | str) -> Any:
    """orjson.loads (3-5x faster than json), but orjson is imported (~13-18 ms with what it imports: a
    query of a small log waits for it) only for the first line the standard library would not read alike,
    or once :data:`_STDLIB_LINES` (:data:`_NATIVE_LINES`) lines were read. Lines the standard library
    reads alike: those ``fastscan.plain_json`` accepts (with the compiled scanner), and ASCII lines without
    the shapes of :data:`DECODERS_DIFFER`. They give the same value or the same refusal (NaN and Infinity
    are refused) with either. The standard library alone when orjson is missing."""
    global _stdlib_left
    if _orjson_loads is not None:
        try:
            return _orjson_loads(data)
        except ValueError as refused:
            return _out_of_range(data, refused)
    native = fastscan.native
    if _stdlib_left is None:
        _stdlib_left = _STDLIB_LINES if native is None else _NATIVE_LINES
    _stdlib_left -= 1
    if _stdlib_left >= 0 and type(data) is bytes:
        if native is not None and native.plain_json(data):  # valid, and read alike: ~1 us to know
            return (_plain or _plain_decoder())(data.decode())
        # else the search (~12 us): a refused line is refused alike by both when it finds no shape on
        # which they differ
        if data.isascii() and _differ(data) is None:
            try:
                return (_stdlib or _stdlib_decoder())(data.decode("ascii"))
            except RecursionError:  # nested too deep for json: orjson says (refuses it)
                pass
    try:
        return _load_orjson()(data)
    except ValueError as refused:
        return _out_of_range(data, refused)


def _out_of_range(data: bytes | str, refused: ValueError) -> Any:
    """A line orjson refused only for a number past a double's range (``1e400``) is read as the standard
    library reads it (as infinity; jq reads such a number too, and the fast path's decoder, which skips most
    values, cannot tell it apart), unless something else in it is refused as well (json's refusals, NaN,
    a lone surrogate, which orjson cannot write back). Any other refusal is raised again."""
    if "number is infinity" not in str(refused):
        raise refused
    decode = _stdlib or _stdlib_decoder()
    try:
        obj = decode(data if type(data) is str else data.decode())
        _load_orjson()
        if _orjson_dumps is not None:
            _orjson_dumps(obj)  # refuses a lone surrogate, as orjson's reader would have
    except (ValueError, TypeError, RecursionError):
        raise refused from None
    return obj


def _refuse(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def _stdlib_decoder() -> Callable[[str], Any]:
    """json's decoder refusing NaN and Infinity, made on first use (json imports re: start-up counts)."""
    global _stdlib
    import json

    _stdlib = json.JSONDecoder(parse_constant=_refuse).decode
    return _stdlib


_differ_search: Callable[[bytes], Any] | None = None


def _differ(data: bytes) -> Any:
    """The search for :data:`DECODERS_DIFFER` (re imported on first use)."""
    global _differ_search
    if _differ_search is None:
        import re

        _differ_search = re.compile(DECODERS_DIFFER).search
    return _differ_search(data)


_WHITESPACE = " \t\n\r"  # what json skips around a value
_plain: Callable[[str], Any] | None = None


def _plain_decoder() -> Callable[[str], Any]:
    """:func:`_stdlib_decoder`'s decoder for text known to be valid JSON (``fastscan.plain_json``), made
    from json's C scanner (``_json``) without importing json, whose decoder and encoder import re (~8 ms
    with enum, paid by every small query). Only for valid text: the scanner reports errors through
    json.decoder, which it expects imported. json's decoder where the C scanner is missing."""
    global _plain
    try:
        from _json import make_scanner
    except ImportError:  # pragma: no cover - CPython has it
        _plain = _stdlib or _stdlib_decoder()
        return _plain

    class Context:  # the attributes json.JSONDecoder hands its scanner
        strict = True
        object_hook = object_pairs_hook = None
        parse_float, parse_int, parse_constant = float, int, staticmethod(_refuse)

    scan = make_scanner(Context())

    def decode(s: str) -> Any:
        value, end = scan(s, len(s) - len(s.lstrip(_WHITESPACE)))
        if s[end:].strip(_WHITESPACE):  # plain_json saw one value: cannot happen
            raise ValueError(f"Extra data: char {end}")
        return value

    _plain = decode
    return _plain


def _load_orjson() -> Callable[[bytes | str], Any]:
    global _orjson_loads, _orjson_dumps
    try:
        import orjson

        _orjson_loads, _orjson_dumps = orjson.loads, orjson.dumps
    except ImportError:  # pragma: no cover - exercised when orjson is not installed
        import json

        _orjson_loads = json.loads
    return _orjson_loads


GZIP_MAGIC = b"\x1f\x8b"
BOM = b"\xef\xbb\xbf"
MAX_LINE_BYTES = 8 * 1024 * 1024  # an event over this is skipped unread (apiserver events stay far below)
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024  # a pretty-printed JSON document is read whole, up to this size
MAX_SAMPLES = 20  # problems kept with line numbers; the rest are only counted
# gzip input: an audit log expands 10-30 times; more is not an audit log (97 KB of gzipped newlines would be
# 100 MB of empty lines), and no rotated file is near the total cap
MAX_GZIP_RATIO = 200
GZIP_RATIO_AFTER = 1024 * 1024  # checked once this much is decompressed
MAX_DECOMPRESSED_BYTES = 8 * 1024**3
APISERVER_PREFIX = b'{"kind":"Event"'  # how kube-apiserver starts every v1 line (Go struct field order)

PROBLEM_KINDS = {
    "truncated": "cut off (incomplete JSON: a line still being written, or a file cut short)",
    "not-json": "not JSON",
    "binary": "binary garbage (NUL or bytes that are not UTF-8)",
    "too-long": f"longer than {MAX_LINE_BYTES // 1048576} MB (skipped unread)",
    "not-event": "valid JSON but not an audit Event",
    "legacy": "legacy text format (--audit-log-format=legacy); only the json format is read",
    "gzip-cut": "gzip data cut off (lines before the cut were read)",
    "gzip-corrupt": "gzip data corrupt (lines before the damage were read)",
    "unreadable": "read error",
    "too-large-document": f"a pretty-printed JSON document over {MAX_DOCUMENT_BYTES // 1048576} MB",
    "gzip-bomb": f"gzip data expanding more than {MAX_GZIP_RATIO} times (an audit log expands 10-30 times) "
    f"or past {MAX_DECOMPRESSED_BYTES // 1024**3} GB: not read further",
}


class Problem(namedtuple("Problem", ["source", "line", "kind", "message", "excerpt"], defaults=("",))):
    """One line skipped: ``line`` is 1-based (0 = the stream as a whole); ``excerpt`` is the start of the
    line, shown only for files that hold audit events (see ReadStats). (A named tuple, not a dataclass:
    importing dataclasses costs a small query's start-up ~8 ms.)"""

    __slots__ = ()

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        return f"{where}: {self.message}" + (f": {self.excerpt}" if self.excerpt else "")


class ReadStats:
    """What the reader saw. ``problems`` counts by kind; ``samples`` keeps the first few with line numbers;
    ``notes`` the lenient readings (e.g. "audit.k8s.io/v1beta1 events"); ``audit_sources`` the sources that
    held at least one audit event; ``prefiltered`` the lines skipped unparsed because they cannot match the
    query; ``duplicates`` further stage lines of requests already counted (when deduplicating)."""

    def __init__(self) -> None:
        self.lines = 0
        self.events = 0
        self.prefiltered = 0
        self.duplicates = 0
        self.requests = 0
        self.problems: Counter[str] = Counter()
        self.samples: list[Problem] = []
        self.notes: Counter[str] = Counter()
        self.sources: list[str] = []
        self.audit_sources: set[str] = set()

    def __repr__(self) -> str:
        return f"ReadStats({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"

    def __eq__(self, other: object) -> bool:
        return type(other) is ReadStats and vars(self) == vars(other)

    def state(self) -> dict[str, Any]:
        """The counts as plain values (what marshal writes: the parallel reader's worker sends them)."""
        state = vars(self).copy()
        state.update(
            problems=dict(self.problems), notes=dict(self.notes), samples=[tuple(p) for p in self.samples]
        )
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ReadStats:
        stats = cls()
        vars(stats).update(state)
        stats.problems, stats.notes = Counter(state["problems"]), Counter(state["notes"])
        stats.samples = [Problem(*p) for p in state["samples"]]
        return stats

    def problem(self, source: str, line: int, kind: str, detail: str = "", excerpt: str = "") -> None:
        self.problems[kind] += 1
        if len(self.samples) < MAX_SAMPLES:
            text = PROBLEM_KINDS.get(kind, kind) + (f": {detail}" if detail else "")
            self.samples.append(Problem(source, line, kind, text, excerpt))

    @property
    def malformed(self) -> int:
        return sum(self.problems.values())

    def report(self) -> list[str]:
        """Learner-facing lines: what was skipped and why, and what was read leniently."""
        out = []
        if self.problems:
            parts = ", ".join(
                f"{n} {PROBLEM_KINDS.get(k, k).split(' (')[0]}" for k, n in self.problems.most_common()
            )
            out.append(f"skipped {self.malformed} line(s) that are not readable audit events: {parts}")
            # excerpts of lines only from files that look like audit logs: `cks audit query /etc/shadow`
            # must not print the start of each line of a file that is not one
            out.extend(
                f"  {p}" if p.source in self.audit_sources else f"  {p._replace(excerpt='')}"
                for p in self.samples
            )
            if self.malformed > len(self.samples):
                out.append(f"  ... and {self.malformed - len(self.samples)} more")
        for note, n in self.notes.most_common():
            out.append(f"note: {n} {note}")
        return out


class RawLines:
    """The original lines of ``count`` requests at once, each ending with a newline: what the fast path
    yields for a block it read at once when its caller prints original lines only (``raw_blocks``: one
    write instead of one per request)."""

    __slots__ = ("data", "count")

    def __init__(self, data: bytes, count: int):
        self.data, self.count = data, count


class Entry:
    """One event read from a log. ``raw`` is the original line (without its newline) when the event was a
    line of its own; None for events unwrapped from an envelope or a pretty-printed document."""

    __slots__ = ("event", "raw", "source", "line")

    def __init__(self, event: dict[str, Any], raw: bytes | None, source: str, line: int):
        self.event = event
        self.raw = raw
        self.source = source
        self.line = line

    def __repr__(self) -> str:
        if self.event is None:  # a line kept raw (grader.engines.audit_log.scan)
            return f"Entry({self.source}:{self.line} raw)"
        return f"Entry({self.source}:{self.line} {self.event.get('auditID')} {self.event.get('stage')})"


def open_stream(stream: BinaryIO) -> BinaryIO:
    """The stream to read lines from: gzip data is decoded (by magic bytes, whatever the name)."""
    buffered = stream if hasattr(stream, "peek") else io.BufferedReader(stream)  # type: ignore[arg-type]
    head = buffered.peek(2)[:2]  # type: ignore[attr-defined]
    if len(head) < 2:  # peek does one read: a pipe may have handed over a single byte so far
        head = buffered.read(2)  # type: ignore[attr-defined]
        buffered = io.BufferedReader(_Prepended(head, buffered))  # type: ignore[assignment]
    if head == GZIP_MAGIC:
        import gzip  # only for gzip data: start-up stays light

        return gzip.GzipFile(fileobj=_CountingReader(buffered), mode="rb")  # type: ignore[return-value]
    return buffered


class _Prepended(io.RawIOBase):
    """``head`` (bytes already taken from ``rest``), then ``rest``."""

    def __init__(self, head: bytes, rest: Any):
        super().__init__()
        self.head, self.rest = head, rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.head:
            n = min(len(buffer), len(self.head))
            buffer[:n] = self.head[:n]
            self.head = self.head[n:]
            return n
        return self.rest.readinto(buffer)


class _CountingReader:
    """The compressed bytes gzip has taken so far (works on pipes, where tell() does not)."""

    def __init__(self, stream: BinaryIO):
        self.stream = stream
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.count += len(data)
        return data


def _gzip_too_big(stream: Any, decompressed: int) -> bool:
    raw = stream.fileobj
    taken = raw.count if isinstance(raw, _CountingReader) else 0
    return decompressed > MAX_DECOMPRESSED_BYTES or (
        decompressed > GZIP_RATIO_AFTER and taken and decompressed > MAX_GZIP_RATIO * taken
    )


CHUNK_BYTES = 1024 * 1024
_BATCH = 2048  # lines per batch when the source is an iterable of lines


class Prefilter(
    namedtuple(
        "Prefilter", ["needle", "test", "pattern", "literals", "groups"], defaults=(None, None, None, (), ())
    )
):
    """A cheap test on raw apiserver lines: skip a line when ``needle`` (bytes) is absent or ``test(line)``
    is False; ``pattern``: a regex every kept line matches (when there is no needle): blocks are searched
    with it, or for its ``literals`` (bytes, one of which every line it matches holds). ``test`` is: the
    pattern matches (if any) and the line holds a member of each of ``groups`` (tuples of bytes). Built by
    the query (grader.engines.audit_log.query), which guarantees it never rejects a line whose request
    could match."""

    __slots__ = ()


def raw_batches(
    source: LineSource,
    name: str,
    stats: ReadStats,
    *,
    limit: int | None = None,
    first_line: int = 1,
    blocks: bool = False,
) -> Iterator[tuple[int, Any]]:
    """Lines (without the newline) in batches, as (number of the first line, lines). They are split from large
    reads: fast, and an over-long line (a binary file, a 1 GB line) is skipped chunk by chunk, so memory stays
    bounded whatever the input. ``limit``: read at most that many bytes (a byte range of a plain file).
    ``blocks``: a stream's batches are not split but given as (number, bytes, :class:`LineCount`): whole lines
    joined by newlines (the caller splits only what it needs); an over-long line is emptied as in lists."""
    if not hasattr(source, "read"):
        yield from _iterable_batches(source)  # type: ignore[arg-type]
        return
    try:
        stream = open_stream(source)  # type: ignore[arg-type]
    except OSError as exc:
        stats.problem(name, 0, "unreadable", str(exc))
        return
    # gzip: read1 hands over what is decoded so far, so a cut-off file loses only its last piece
    gzip = sys.modules.get("gzip")  # imported by open_stream for gzip data only
    zipped = gzip is not None and isinstance(stream, gzip.GzipFile)
    cutter = _LineCutter(name, stats, first_line)
    cut = cutter.blocks if blocks else cutter.lists
    total = 0
    fill = blocks and not zipped and limit is None and hasattr(stream, "readinto")
    try:
        if fill:
            yield from _filled_blocks(stream, cutter)
            chunks: Iterable[bytes] = ()
        else:
            chunks = _chunks(stream.read1 if zipped else stream.read, limit)  # type: ignore[attr-defined]
        for chunk in chunks:
            if zipped:
                total += len(chunk)
                if _gzip_too_big(stream, total):  # type: ignore[arg-type]
                    stats.problem(name, cutter.no, "gzip-bomb", f"stopped after line {cutter.no - 1}")
                    return
            yield from cut(chunk)
    except EOFError:
        incomplete = " (its last line is incomplete)" if cutter.tail else ""
        stats.problem(name, cutter.no, "gzip-cut", f"after line {cutter.no - 1}" + incomplete)
        return
    except _zlib_error() as exc:  # evaluated only when something was raised
        stats.problem(name, cutter.no, "gzip-corrupt", str(exc))
        return
    except OSError as exc:  # gzip.BadGzipFile is an OSError
        corrupt = zipped and isinstance(exc, gzip.BadGzipFile)  # type: ignore[union-attr]
        stats.problem(name, cutter.no, "gzip-corrupt" if corrupt else "unreadable", str(exc))
        return
    if cutter.tail:
        yield (cutter.no, cutter.tail, LineCount(cutter.tail, 1)) if blocks else (cutter.no, [cutter.tail])


def _filled_blocks(stream: BinaryIO, cutter: _LineCutter) -> Iterator[tuple[int, bytes, LineCount]]:
    """:meth:`_LineCutter.blocks` of a plain stream read into one reused buffer: each block is then copied
    once, at its exact size, into a new bytes object (reading into a new object per read, then slicing and
    joining, made three fresh allocations of each MB and their page faults: ~10 ms a 20 MB log; cutting a
    read object down in place fragmented the heap, ~180 MB on a 1 GB log)."""
    readinto = stream.readinto  # type: ignore[attr-defined]
    scratch = bytearray(CHUNK_BYTES)
    view = memoryview(scratch)
    while True:
        if cutter.skipping:  # inside an over-long line: dropped chunk by chunk
            chunk = stream.read(CHUNK_BYTES)
            if not chunk:
                return
            yield from cutter.blocks(chunk)
            continue
        got = readinto(view)
        if not got:
            return
        last = scratch.rfind(b"\n", 0, got)
        if last < 0:
            yield from cutter.emit(None, b"".join((cutter.tail, view[:got])))
        else:
            yield from cutter.emit(b"".join((cutter.tail, view[:last])), bytes(view[last + 1 : got]))


def _zlib_error() -> type[Exception]:
    """zlib.error, imported only when an exception is being matched (gzip imports zlib anyway)."""
    import zlib

    return zlib.error


def _iterable_batches(source: Iterable[bytes] | Iterable[str]) -> Iterator[tuple[int, list[bytes]]]:
    """Lines of an iterable (text is encoded back to the bytes it came from) in batches."""
    batch: list[bytes] = []
    no = 1
    for line in source:
        data = line.encode("utf-8", "surrogateescape") if isinstance(line, str) else line
        batch.append(data[:-1] if data.endswith(b"\n") else data)
        if len(batch) >= _BATCH:
            yield no, batch
            no, batch = no + len(batch), []
    if batch:
        yield no, batch


def _chunks(read: Callable[[int], bytes], limit: int | None) -> Iterator[bytes]:
    """Large reads until the end of the stream, or until ``limit`` bytes."""
    while limit is None or limit > 0:
        chunk = read(CHUNK_BYTES if limit is None else min(CHUNK_BYTES, limit))
        if not chunk:
            return
        if limit is not None:
            limit -= len(chunk)
        yield chunk


class LineCount:
    """How many lines a block holds: told by its consumer (``n``, set once it split the block) or counted
    when first asked for (:meth:`get`)."""

    __slots__ = ("block", "n")

    def __init__(self, block: bytes, n: int | None = None):
        self.block, self.n = block, n

    def get(self) -> int:
        if self.n is None:
            self.n = self.block.count(b"\n") + 1
        return self.n


class _LineCutter:
    """Cuts chunks of a stream into batches of whole lines; an over-long line is reported and skipped (its
    bytes dropped until its newline). ``no`` is the number of the next line, ``tail`` the start of a line
    not yet ended."""

    def __init__(self, name: str, stats: ReadStats, first_line: int):
        self.name, self.stats = name, stats
        self.no = first_line
        self.tail = b""
        self.skipping = False  # inside an over-long line: drop bytes until its newline

    def _after_skipped(self, chunk: bytes) -> bytes | None:
        """The chunk past the end of an over-long line being skipped (None: all of it is skipped)."""
        i = chunk.find(b"\n")
        if i < 0:
            return None
        self.skipping = False
        return chunk[i + 1 :]

    def _check_tail(self) -> None:
        if len(self.tail) > MAX_LINE_BYTES:
            self.stats.lines += 1
            self.stats.problem(self.name, self.no, "too-long")
            self.no += 1
            self.tail, self.skipping = b"", True

    def blocks(self, chunk: bytes) -> Iterator[tuple[int, bytes, LineCount]]:
        """(number, whole lines joined by newlines, their count: the consumer often learns it as it splits
        the block, which spares a pass over the block to count newlines)."""
        if self.skipping and (chunk := self._after_skipped(chunk)) is None:  # type: ignore[assignment]
            return
        last = chunk.rfind(b"\n")
        if last < 0:
            yield from self.emit(None, self.tail + chunk)
        else:
            # one copy of the chunk (tail + chunk[:last] made two: a block is ~1 MB, copied per read)
            block = b"".join((self.tail, memoryview(chunk)[:last])) if self.tail else chunk[:last]
            yield from self.emit(block, chunk[last + 1 :])

    def emit(self, block: bytes | None, rest: bytes) -> Iterator[tuple[int, bytes, LineCount]]:
        """:meth:`blocks` of whole lines already cut (``block``, None when no line ended), ``rest`` being the
        start of the next line (the tail so far included)."""
        self.tail = rest
        if block is not None:
            first_end = block.find(b"\n")
            if (first_end if first_end >= 0 else len(block)) > MAX_LINE_BYTES:  # only the first can be
                self.stats.problem(self.name, self.no, "too-long")
                block = block[first_end:] if first_end >= 0 else b""
            count = LineCount(block)
            yield self.no, block, count
            self.no += count.get()
        self._check_tail()

    def lists(self, chunk: bytes) -> Iterator[tuple[int, list[bytes]]]:
        """(number, list of lines)."""
        if self.skipping and (chunk := self._after_skipped(chunk)) is None:  # type: ignore[assignment]
            return
        parts = chunk.split(b"\n")
        if self.tail:
            parts[0] = self.tail + parts[0]
        self.tail = parts.pop()
        if parts:
            if max(map(len, parts)) > MAX_LINE_BYTES:
                for i, line in enumerate(parts):
                    if len(line) > MAX_LINE_BYTES:
                        self.stats.problem(self.name, self.no + i, "too-long")
                        parts[i] = b""  # a blank line is skipped without a word
            yield self.no, parts
            self.no += len(parts)
        self._check_tail()


def _numbered(batches: Iterator[tuple[int, list[bytes]]]) -> Iterator[tuple[int, bytes]]:
    for start, lines in batches:
        yield from enumerate(lines, start)


def iter_entries(
    source: LineSource, name: str, stats: ReadStats, prefilter: Prefilter | None = None
) -> Iterator[Entry]:
    """Every audit event in one stream, in file order. ``prefilter`` may reject raw apiserver lines before
    parsing (see :mod:`.query`: it only rejects lines whose request cannot match)."""
    stats.sources.append(name)
    batches = raw_batches(source, name, stats)
    first = next(batches, None)
    if first is None:
        return
    start, lines = first
    if lines and lines[0].startswith(BOM):
        lines[0] = lines[0][3:]
        stats.notes["file(s) starting with a UTF-8 byte-order mark (ignored)"] += 1
    before = stats.events
    try:
        if lines and lines[0].strip() in (b"{", b"["):  # a pretty-printed document, not JSON lines
            rest = _numbered(batches)
            more = ((start + i, line) for i, line in enumerate(lines[1:], 1))
            yield from _document(lines[0], itertools.chain(more, rest), name, start, stats)
        else:
            yield from _json_lines(first, batches, name, stats, prefilter)
    finally:
        if stats.events > before:
            stats.audit_sources.add(name)


def _json_lines(
    first: tuple[int, list[bytes]],
    batches: Iterator[tuple[int, list[bytes]]],
    name: str,
    stats: ReadStats,
    prefilter: Prefilter | None,
) -> Iterator[Entry]:
    needle = prefilter.needle if prefilter else None
    test = prefilter.test if prefilter else None
    loads, prefix = json_loads, APISERVER_PREFIX
    for start, lines in itertools.chain((first,), batches):
        stats.lines += len(lines)
        skipped = 0
        for no, line in enumerate(lines, start):
            if not line:  # blank lines cost nothing (a file of newlines)
                continue
            # the fast path: a complete apiserver line that cannot match is not parsed
            if needle is not None and needle not in line and line.startswith(prefix) and line.endswith(b"}"):
                skipped += 1
                continue
            if test is not None and line.startswith(prefix) and line.endswith(b"}") and not test(line):
                skipped += 1
                continue
            try:
                obj = loads(line)
            except JSON_ERRORS:
                if line.strip():  # a blank line (trailing newline of a hand-made file) is not a problem
                    stats.problem(name, no, classify_bad_line(line), excerpt=line_excerpt(line))
                continue
            if is_apiserver_event(obj):
                stats.events += 1  # the common case, kept short
                yield Entry(obj, line, name, no)
                continue
            for event in unwrap_events(obj, name, no, stats):
                stats.events += 1
                yield Entry(event, line if event is obj else None, name, no)
        stats.prefiltered += skipped


def _document(
    first: bytes, lines: Iterator[tuple[int, bytes]], name: str, start: int, stats: ReadStats
) -> Iterator[Entry]:
    parts, size, last = [first], len(first), start
    for no, line in lines:
        size += len(line) + 1
        last = no
        if size > MAX_DOCUMENT_BYTES:
            stats.lines += 1
            stats.problem(name, start, "too-large-document", "convert it to JSON lines with `jq -c .`")
            for _ in lines:
                pass
            return
        parts.append(line)
    stats.lines += 1
    try:
        obj = json_loads(b"\n".join(parts))
    except JSON_ERRORS:
        stats.problem(
            name,
            start,
            "truncated" if _looks_cut(b"\n".join(parts)) else "not-json",
            f"a multi-line JSON document (lines {start}-{last})",
        )
        return
    stats.notes["pretty-printed JSON document(s) (read whole)"] += 1
    for event in unwrap_events(obj, name, start, stats):
        stats.events += 1
        yield Entry(event, None, name, start)


def is_apiserver_event(obj: Any) -> bool:
    """A parsed line that is one kube-apiserver audit event as written (not a list, an EventList or a
    cloud provider's record wrapping events: :func:`unwrap_events` reads those)."""
    return (
        type(obj) is dict
        and obj.get("kind") == "Event"
        and obj.get("apiVersion") == "audit.k8s.io/v1"
        and "requestReceivedTimestamp" in obj
    )


def unwrap_events(obj: Any, name: str, no: int, stats: ReadStats, depth: int = 0) -> Iterator[dict[str, Any]]:
    """The audit events inside one JSON value: an event, a batch, an array, or a known envelope."""
    if isinstance(obj, list) and depth < 3:
        for item in obj:
            yield from unwrap_events(item, name, no, stats, depth + 1)
        return
    if not isinstance(obj, dict):
        stats.problem(name, no, "not-event", f"a JSON {type(obj).__name__}")
        return
    kind = obj.get("kind")
    if kind == "EventList" and isinstance(obj.get("items"), list) and depth < 3:
        stats.notes["events inside EventList batches (webhook format)"] += 1
        for item in obj["items"]:
            yield from unwrap_events(item, name, no, stats, depth + 1)
        return
    if kind is None and isinstance(obj.get("records"), list) and depth < 3:
        yield from _aks_records(obj["records"], name, no, stats, depth)
        return
    if kind is None and "protoPayload" in obj:
        stats.problem(
            name,
            no,
            "not-event",
            "a Google Cloud Logging entry (protoPayload), not an audit.k8s.io "
            "Event; export GKE audit logs as Kubernetes events to read them",
        )
        return
    if kind == "Event" or (kind is None and ("auditID" in obj or "stage" in obj) and "verb" in obj):
        yield _normalise(obj, stats)
        return
    what = f"kind {kind!r}" if kind is not None else "no kind, auditID or stage"
    stats.problem(name, no, "not-event", f"a JSON object with {what}")


def _aks_records(
    records: list[Any], name: str, no: int, stats: ReadStats, depth: int
) -> Iterator[dict[str, Any]]:
    for rec in records:
        log = (
            rec.get("properties", {}).get("log")
            if isinstance(rec, dict) and isinstance(rec.get("properties"), dict)
            else None
        )
        if isinstance(log, str):
            try:
                log = json_loads(log)
            except JSON_ERRORS:
                stats.problem(name, no, "not-json", "an Azure record whose properties.log is not JSON")
                continue
        if log is None:
            stats.problem(name, no, "not-event", "an Azure record without properties.log")
            continue
        stats.notes["events inside Azure (AKS) diagnostic-log records"] += 1
        yield from unwrap_events(log, name, no, stats, depth + 1)


def _normalise(ev: dict[str, Any], stats: ReadStats) -> dict[str, Any]:
    version = ev.get("apiVersion")
    if version != "audit.k8s.io/v1":
        if version is None:
            stats.notes["events without apiVersion (read as audit.k8s.io/v1)"] += 1
        else:
            stats.notes[f"{version} events (read as audit.k8s.io/v1)"] += 1
    if "requestReceivedTimestamp" not in ev and isinstance(ev.get("timestamp"), str):  # v1alpha1/v1beta1 era
        stats.notes["events with only the old `timestamp` field (used as requestReceivedTimestamp)"] += 1
        ev["requestReceivedTimestamp"] = ev["timestamp"]
        ev.setdefault("stageTimestamp", ev["timestamp"])
    if not isinstance(ev.get("auditID"), str) or not ev.get("auditID"):
        stats.notes["events without auditID (each counted as a request of its own)"] += 1
    if not isinstance(ev.get("requestReceivedTimestamp"), str):
        stats.notes["events without a timestamp (never match a time range)"] += 1
    return ev


def _looks_cut(text: bytes) -> bool:
    body = text.rstrip()
    return body[:1] in (b"{", b"[") and not body.endswith((b"}", b"]"))


def classify_bad_line(line: bytes) -> str:
    if b"\x00" in line:
        return "binary"
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return "binary"
    if b" AUDIT: id=" in line:
        return "legacy"
    return "truncated" if _looks_cut(line) else "not-json"


def line_excerpt(line: bytes, width: int = 60) -> str:
    text = line.strip()[:width].decode("utf-8", "replace")
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return repr(text + ("..." if len(line.strip()) > width else ""))
