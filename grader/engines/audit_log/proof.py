"""Proof, without a full parse, that kube-apiserver lines read as the full decoder reads them.

The fast path uses some lines without parsing them into events (the original line printed as it is, the
user's name counted, a request's earlier stage line set aside). The full decoder (orjson, see
:func:`~.reader.json_loads`) would parse each such line and could refuse it (a line garbled in the middle
still starts with ``{"kind":"Event"`` and ends with ``}``) or see other values (a key written twice: the last
one wins). :func:`heads` reads a block of lines with a typed decoder, which validates each line whole as
JSON but builds only the few values the fast path needs (per line: auditID, stage, the effective user's
name, whether it is a failed login), at several times the speed of a full parse. It answers only when every
line is an audit event the full decoder reads alike:

* msgspec refuses what orjson refuses (bad syntax, escapes, control characters, lone surrogates, NaN),
  except in the values it skips: their UTF-8 (so the block must be ASCII or valid UTF-8, checked in C) and
  the range of numbers (``1e400`` parses; the full decoder reads it as infinity too, as jq does);
* keys are matched after unescaping and the last of a repeated key wins, as with orjson;
* each line is an object with ``kind`` ``Event``, ``apiVersion`` ``audit.k8s.io/v1``, a
  ``requestReceivedTimestamp``, a non-empty string ``auditID`` and a known ``stage``, checked by the decoder
  (else the caller reads the lines one by one, with the general rules).

The compiled scanner (:mod:`.fastscan`, when the install built it) does the same at about three times the
speed and without msgspec's import (~20-30 ms); it refuses more (anything it cannot read exactly), never
less. Else msgspec is imported once enough bytes were offered to make that pay (:func:`worth_proving`);
without either nothing is proven and the caller parses.
"""

from __future__ import annotations

import itertools
import operator

from grader.engines.audit_log import fastscan

TYPE_CHECKING = False  # typing is not imported at run time (start-up counts)
if TYPE_CHECKING:
    from typing import Any

    # (auditIDs, stages, names or None, indexes of failed logins) of a block's lines
    Heads = tuple[list[str], list[str], list[str] | None, list[int]]

STAGES = frozenset({"RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"})
# a query that offers fewer bytes than this parses them instead of importing msgspec
BUILD_AFTER = 2 << 20
_offered = 0
# once built: (decoder of heads, of heads without users, the errors they raise); False without msgspec
_decoder: Any = None


def worth_proving(size: int) -> bool:
    """Whether to prove ``size`` more bytes (else the caller parses them): the decoder is built, or enough
    bytes were offered to make building it pay."""
    global _offered
    if fastscan.native is not None:
        return True
    if _decoder is not None:
        return bool(_decoder)
    _offered += size
    return _offered >= BUILD_AFTER


def _build() -> Any:
    global _decoder
    if _decoder is None:
        try:
            import msgspec
        except ImportError:  # pragma: no cover - msgspec is a dependency
            _decoder = False
            return _decoder

        from typing import Annotated, Literal
        from typing import Any as Anything  # typing is imported by msgspec already

        # audit/v1 Event: what the fast path reads, checked in C (a line without them, or with other values,
        # is refused); the rest is validated and skipped. Of the two authentication/v1 UserInfo, the names;
        # of the meta/v1 Status, the code.
        # gc=False: no cycles can come from JSON, and untracked objects spare the collector (~25% faster)
        who = msgspec.defstruct("Who", [("username", Anything, None)], gc=False)
        status = msgspec.defstruct("Status", [("code", Anything, None)], gc=False)
        fields = [
            ("kind", Literal["Event"]),
            ("apiVersion", Literal["audit.k8s.io/v1"]),
            ("auditID", Annotated[str, msgspec.Meta(min_length=1)]),
            ("stage", Literal[tuple(sorted(STAGES))]),
            ("requestReceivedTimestamp", msgspec.Raw),
            ("responseStatus", status | None, None),
        ]
        users = [("user", who | None, None), ("impersonatedUser", who | None, None)]
        head = msgspec.defstruct("Head", fields + users, gc=False)
        # the same without the users (skipped, still validated) when they are not read: ~25% faster
        head_only = msgspec.defstruct("HeadOnly", fields, gc=False)
        errors = (msgspec.DecodeError, msgspec.ValidationError, RecursionError)
        _decoder = (
            msgspec.json.Decoder(head).decode_lines,
            msgspec.json.Decoder(head_only).decode_lines,
            errors,
        )
    return _decoder


def prepare() -> None:
    """Build the decoder now (before forking a worker that will need it too); nothing to build when the
    compiled scanner is there."""
    if fastscan.native is None:
        _build()


def heads(block: bytes, n: int, users: bool = True) -> Heads | None:
    """The heads of the ``n`` lines of ``block`` (joined by newlines, none empty) when every one is an audit
    event the full decoder reads alike (see the module), else None: (their auditIDs, their stages, the
    names their requests acted as (:func:`user_name`; None when not ``users``), the indexes of the failed
    logins (:func:`failed_login`))."""
    native = fastscan.native
    if native is not None:
        return native.heads(block, n, users)  # type: ignore[attr-defined]
    found = _msgspec_heads(block, n, users)
    if found is None:
        return None
    aids = list(map(_AUDIT_ID, found))
    stages = list(map(_STAGE, found))
    failed = []
    i = -1
    while True:
        try:
            i = stages.index("ResponseStarted", i + 1)
        except ValueError:
            break
        if failed_login(found[i]):
            failed.append(i)
    return aids, stages, _user_names(found) if users else None, failed


def _msgspec_heads(block: bytes, n: int, users: bool) -> list[Any] | None:
    """msgspec's heads of the lines (structs with the fields read), or None."""
    built = _build()
    if not built:
        return None
    decode = built[0] if users else built[1]
    errors = built[2]
    if not block.isascii():
        try:
            block.decode()  # strict UTF-8, as orjson: no surrogates, no overlong forms
        except UnicodeDecodeError:
            return None
    try:
        found = decode(block)
    except errors:
        return None
    if len(found) != n:  # a blank line (skipped by decode_lines)
        return None
    return found


_AUDIT_ID = operator.attrgetter("auditID")
_STAGE = operator.attrgetter("stage")
_IMPERSONATED = operator.attrgetter("impersonatedUser")
_USERNAME = operator.attrgetter("user.username")


def _user_names(found: list[Any]) -> list[str]:
    """The names the requests of msgspec heads ``found`` acted as (:func:`user_name`), read in C; only the
    heads of impersonated requests and of users without a string name (a failed login's empty user) are
    looked at one by one."""
    try:
        names = list(map(_USERNAME, found))
    except AttributeError:  # a user is null
        return [user_name(h) for h in found]
    n = len(found)
    odd = itertools.compress(range(n), map(operator.not_, map(isinstance, names, itertools.repeat(str, n))))
    for i in itertools.chain(odd, itertools.compress(range(n), map(_IMPERSONATED, found))):
        names[i] = user_name(found[i])
    return names


def user_name(head: Any) -> str:
    """(a msgspec head) The name the request acted as (query.effective_user): the impersonated user's if
    set, else the authenticated one's."""
    who = head.impersonatedUser
    name = who.username if who is not None and who.username else (head.user and head.user.username)
    return name if type(name) is str else ("" if name is None else str(name))


def failed_login(head: Any) -> bool:
    """(a msgspec head) A ResponseStarted line with code 401 (a failed authentication: its request ends
    there)."""
    status = head.responseStatus
    return head.stage == "ResponseStarted" and status is not None and str(status.code) == "401"
