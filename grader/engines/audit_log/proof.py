"""Proof, without parsing, that kube-apiserver lines read as the full decoder reads them.

The fast path uses some lines without parsing them (the original line printed as it is, or only the user's
name read from its bytes). The full decoder would parse each such line and could refuse it (a line garbled
in the middle still starts with ``{"kind":"Event"`` and ends with ``}``) or see other values (a key written
twice: the last one wins). :func:`proven` says that lines are exactly what kube-apiserver writes: each one a
JSON object whose top-level keys come once each, in the order of Go's ``audit.Event`` struct, with ``kind``
``Event``, ``apiVersion`` ``audit.k8s.io/v1``, a ``requestReceivedTimestamp`` and a ``user`` object whose
keys come once each; values are valid JSON in a strict subset (ASCII strings, escapes other than lone
surrogates, numbers of at most 15 digits, no spaces). The full decoder reads such a line without a problem,
into an event whose ``auditID``, ``stage`` and ``user.username`` are the bytes written at their place.

The check is one RE2 match over many lines joined by newlines (linear time, a few times cheaper than
parsing). A line outside the subset (deeply nested values, non-ASCII text, request bodies at the
RequestResponse level) is simply not proven, and the caller parses it. Without RE2 nothing is proven.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time (start-up counts)
if TYPE_CHECKING:
    from typing import Any


_STRING = rb'"(?:[ !#-\[\]-~]|\\["\\/bfnrt]|\\u(?:[0-9a-cA-CefEF][0-9a-fA-F]{3}|[dD][0-7][0-9a-fA-F]{2}))*"'
_NUMBER = rb"-?(?:0|[1-9][0-9]{0,14})(?:\.[0-9]{1,17})?(?:[eE][-+]?[0-9]{1,2})?"


def _items(item: bytes) -> bytes:
    """Zero or more ``item`` separated by commas."""
    return b"(?:" + item + b"(?:," + item + b")*)?"


_STRINGS = rb"\[" + _items(_STRING) + rb"\]"
_FLAT = rb"\{" + _items(_STRING + b":" + _STRING) + rb"\}"


def _value(depth: int) -> bytes:
    """Any JSON value nested at most ``depth`` levels (objects or arrays)."""
    scalars = b"|".join([_STRING, _NUMBER, b"true", b"false", b"null"])
    value = b"(?:" + scalars + b")"
    for _ in range(depth):
        obj = rb"\{" + _items(_STRING + b":" + value) + rb"\}"
        array = rb"\[" + _items(value) + rb"\]"
        value = b"(?:" + b"|".join([scalars, obj, array]) + b")"
    return value


# authentication/v1 UserInfo: username, uid, groups, extra (all omitempty, in this order)
_USER = b"".join(
    [
        rb'\{(?:"username":' + _STRING,
        rb'(?:,"uid":' + _STRING + b")?",
        rb'(?:,"groups":' + _STRINGS + b")?",
        rb'(?:,"extra":\{' + _items(_STRING + b":" + _STRINGS) + rb"\})?",
        rb")?\}",
    ]
)
# audit/v1 Event, fields in Go's order; requestObject and responseObject (RequestResponse level) left out
_LINE = b"".join(
    [
        rb'\{"kind":"Event","apiVersion":"audit\.k8s\.io/v1",',
        rb'"level":"(?:None|Metadata|Request|RequestResponse)",',
        rb'"auditID":' + _STRING,
        rb',"stage":"(?:RequestReceived|ResponseStarted|ResponseComplete|Panic)"',
        rb',"requestURI":' + _STRING,
        rb',"verb":' + _STRING,
        rb',"user":' + _USER,
        rb'(?:,"impersonatedUser":' + _USER + b")?",
        rb'(?:,"sourceIPs":' + _STRINGS + b")?",
        rb'(?:,"userAgent":' + _STRING + b")?",
        rb'(?:,"objectRef":' + _FLAT + b")?",
        # a Status and the objects in it (metadata, details); deeper values (details.causes) are parsed: the
        # pattern is built three times faster than with one level more (4 ms, not 14), and matched as fast
        rb'(?:,"responseStatus":' + _value(2) + b")?",
        rb',"requestReceivedTimestamp":' + _STRING,
        rb',"stageTimestamp":' + _STRING,
        rb'(?:,"annotations":' + _FLAT + b")?",
        rb"\}",
    ]
)

_compiled: Any = None  # the RE2 pattern once built; False when RE2 is missing
# building the pattern takes about as long as parsing a few thousand lines: it is built once this many bytes
# were offered (a query that uses few lines unparsed, a small log, parses them instead)
BUILD_AFTER = 2 << 20
_offered = 0


def worth_proving(size: int) -> bool:
    """Whether to prove ``size`` more bytes (else the caller parses them): the pattern is built, or
    enough bytes were offered to make building it pay."""
    global _offered
    if _compiled is not None:
        return bool(_compiled)
    _offered += size
    return _offered >= BUILD_AFTER


def _pattern() -> Any:
    global _compiled
    if _compiled is None:
        try:
            import re2
        except ImportError:  # pragma: no cover - google-re2 is a dependency
            _compiled = False
            return _compiled
        options = re2.Options()
        options.encoding = re2.Options.Encoding.LATIN1  # bytes, not text
        options.max_mem = 64 << 20
        _compiled = re2.compile(_LINE + rb"(?:\n" + _LINE + rb")*", options)
    return _compiled


def prepare() -> None:
    """Build the pattern now (before forking a worker that will need it too)."""
    _pattern()


def proven(lines: bytes) -> bool:
    """True when every line of ``lines`` (lines joined by newlines, none empty) is proven (see the module)."""
    pattern = _pattern()
    return bool(pattern) and pattern.fullmatch(lines) is not None
