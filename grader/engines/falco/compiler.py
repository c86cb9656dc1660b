"""Compiler of condition ASTs into fast Python predicates over events, with libsinsp's checks.

``compile_filter(node, macros)``:

1. replaces macro references by the macro ASTs (unknown: ``Undefined macro 'X' used in filter.``);
2. checks every field against the catalog (``filter_check called with nonexistent field X``), every
   operator against the field's type (``filter error: 'contains' operator not supported for numeric
   filters``), event type names (``unknown event type X``), values (numbers, booleans, IPs, hex buffers),
   transformers and ``val()``;
3. generates ONE Python function per filter: checks become inline expressions (``_e.get(k) == v``,
   ``v in frozenset``, ``.startswith``) joined with ``and``/``or``/``not``. Learner text never reaches the
   generated source: every literal and field name is passed in as a closure constant.

Evaluation semantics follow ``filter_compare.cpp``: a field without a value makes every comparison false
(``!=`` included); ``glob`` is fnmatch with flags 0; ``regex`` is RE2 (linear time) fully anchored;
``pmatch`` matches path prefixes component-wise; modifiers ``oneof/anyof/allof`` count matching items.
"""

from __future__ import annotations

import ipaddress
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import re2

from . import ast as A
from .events import MISSING, Event, apply_transformer, getter, plain_key, to_text
from .fields import (
    ANCESTOR_FIELDS,
    EVENT_TYPES,
    FIELDS,
    INT_WIDTH,
    FieldInfo,
    split_name,
    type_kind,
)
from .fnmatch_compat import compile_glob
from .parser import ParseError, parse

MAX_CODE_DEPTH = 40  # deeper boolean nesting is split into helper functions
MAX_RULESET = 256  # more candidates than this for one event type: no combined function (compile time)
RECURSION_LIMIT = 12_000


class CompileError(Exception):
    """A condition Falco would refuse to load. ``kind`` lets the loader honour skip-if-unknown-filter:
    ``unknown_field``, ``unknown_evttype``, ``undefined_macro``, ``macro_loop`` or ``invalid``."""

    def __init__(self, message: str, kind: str = "invalid") -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind

    def __str__(self) -> str:
        return self.message


@dataclass
class Diagnostic:
    code: str  # LOAD_COMPILE_CONDITION, LOAD_DEPRECATED_ITEM, LOAD_UNSAFE_NA_CHECK
    message: str


class CompiledFilter:
    """A compiled condition. ``matches(event)`` is the generated function itself (no dispatch cost)."""

    __slots__ = ("matches", "evttypes", "warnings", "diagnostics", "node", "source", "extra_fields")

    def __init__(
        self,
        matches: Callable[[Event], bool],
        evttypes: frozenset[str] | None,
        diagnostics: list[Diagnostic],
        node: A.Node,
        source: str,
        extra_fields: Mapping[str, FieldInfo] | None = None,
    ) -> None:
        self.extra_fields = extra_fields  # compile_ruleset recompiles ``node`` with the same fields
        self.matches = matches
        self.evttypes = evttypes
        self.diagnostics = diagnostics
        self.warnings = [d.message for d in diagnostics if d.code == "LOAD_COMPILE_CONDITION"]
        self.node = node
        self.source = source

    def __call__(self, event: Event) -> bool:
        return self.matches(event)

    @property
    def text(self) -> str:
        return A.to_text(self.node)


# ---------------------------------------------------------------- operators and types

NUM_OPS = frozenset({"=", "!=", "<", "<=", ">", ">=", "in", "intersects", "exists"})
BOOL_OPS = frozenset({"=", "!=", "in", "intersects", "exists"})
STRING_OPS = frozenset(
    {
        "=",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "contains",
        "in",
        "exists",
        "icontains",
        "startswith",
        "glob",
        "pmatch",
        "endswith",
        "intersects",
        "iglob",
        "regex",
    }
)
BUFFER_OPS = frozenset(
    {
        "=",
        "!=",
        "contains",
        "in",
        "exists",
        "startswith",
        "endswith",
        "intersects",
        "bcontains",
        "bstartswith",
    }
)
IP_OPS = frozenset({"=", "!=", "in", "exists", "intersects"})
LIST_FIELD_OPS = frozenset({"in", "exists", "intersects"})
LIST_OPS = frozenset({"in", "intersects", "pmatch"})

_KIND_OPS = {
    "numeric": (NUM_OPS, "numeric"),
    "bool": (BOOL_OPS, "numeric"),
    "string": (STRING_OPS, "string"),
    "buffer": (BUFFER_OPS, "buffer"),
    "ip": (IP_OPS, "ip address and network"),
}

# fd.ip / fd.port / fd.net match either endpoint of the connection.
EITHER_ENDPOINT = {
    "fd.ip": ("fd.cip", "fd.sip"),
    "fd.port": ("fd.cport", "fd.sport"),
    "fd.net": ("fd.cip", "fd.sip"),
    "fd.cnet": ("fd.cip",),
    "fd.snet": ("fd.sip",),
    "fd.lnet": ("fd.lip",),
    "fd.rnet": ("fd.rip",),
    "fd.proto": ("fd.l4proto",),
}
EVTTYPE_FIELDS = frozenset({"evt.type"})


def _check_op(kind: str, ftype: str, op: str, is_list: bool) -> None:
    if op == "exists":
        return
    if is_list:
        if op not in LIST_FIELD_OPS:
            raise CompileError(f"filter error: '{op}' operator not supported list filters")
        return
    allowed = _KIND_OPS.get(kind)
    if allowed is None:
        raise CompileError(f"filter error: '{op}' operator not supported for type '{ftype}'")
    ops, family = allowed
    if op not in ops:
        raise CompileError(f"filter error: '{op}' operator not supported for {family} filters")


# ---------------------------------------------------------------- literal values

_INT_RE = re.compile(r"[+-]?[0-9]+")
_SIGNED_INDEX = re.compile(r"[+-][0-9]+")


def _parse_number(text: str, ftype: str) -> int | float:
    raw = text.strip()
    if ftype == "DOUBLE":
        try:
            return float(raw)
        except ValueError:
            raise CompileError(f"{text} is not a valid number") from None
    # libsinsp's number parser takes decimal integers only (the grammar's 1.5 and 0x10 fail here)
    if not _INT_RE.fullmatch(raw) or len(raw) > 40:  # 40 digits is far past 64 bits; int() stops at 4,300
        raise CompileError(f"{text if len(text) <= 40 else text[:40] + '...'} is not a valid number")
    value = int(raw)
    bits, signed = INT_WIDTH.get(ftype, (64, True))
    value &= (1 << bits) - 1  # libsinsp stores the number in the field's own width
    if signed and value >= 1 << (bits - 1):
        value -= 1 << bits
    return value


def _parse_bool(text: str) -> bool:
    if text == "true":
        return True
    if text == "false":
        return False
    raise CompileError(f"filter error: unrecognized boolean value {text}")


def _parse_ip(text: str, net: bool) -> Any:
    try:
        if net or "/" in text:
            return ipaddress.ip_network(text.strip(), strict=False)
        return ipaddress.ip_address(text.strip())
    except ValueError:
        what = "network" if net else "IP address"
        raise CompileError(f"filter error: '{text}' is not a valid {what}") from None


def _parse_hex(text: str) -> bytes:
    if len(text) % 2 or not re.fullmatch(r"[0-9a-fA-F]*", text) or not text:
        raise CompileError("filter error: bcontains and bstartswith operator support hex strings only")
    return bytes.fromhex(text)


# getservbyname() names from a stock /etc/services (netbase), as libsinsp resolves them for port fields
SERVICES = {
    "tcpmux": 1,
    "echo": 7,
    "discard": 9,
    "systat": 11,
    "daytime": 13,
    "netstat": 15,
    "qotd": 17,
    "chargen": 19,
    "ftp-data": 20,
    "ftp": 21,
    "ssh": 22,
    "telnet": 23,
    "smtp": 25,
    "time": 37,
    "whois": 43,
    "tacacs": 49,
    "domain": 53,
    "gopher": 70,
    "finger": 79,
    "http": 80,
    "kerberos": 88,
    "iso-tsap": 102,
    "acr-nema": 104,
    "pop3": 110,
    "sunrpc": 111,
    "auth": 113,
    "nntp": 119,
    "ntp": 123,
    "epmap": 135,
    "netbios-ns": 137,
    "netbios-dgm": 138,
    "netbios-ssn": 139,
    "imap2": 143,
    "snmp": 161,
    "snmp-trap": 162,
    "cmip-man": 163,
    "cmip-agent": 164,
    "mailq": 174,
    "xdmcp": 177,
    "bgp": 179,
    "smux": 199,
    "qmtp": 209,
    "z3950": 210,
    "ipx": 213,
    "ptp-event": 319,
    "ptp-general": 320,
    "pawserv": 345,
    "zserv": 346,
    "rpc2portmap": 369,
    "codaauth2": 370,
    "clearcase": 371,
    "ldap": 389,
    "svrloc": 427,
    "https": 443,
    "snpp": 444,
    "microsoft-ds": 445,
    "kpasswd": 464,
    "submissions": 465,
    "saft": 487,
    "isakmp": 500,
    "rtsp": 554,
    "nqs": 607,
    "asf-rmcp": 623,
    "qmqp": 628,
    "ipp": 631,
    "ldp": 646,
    "exec": 512,
    "biff": 512,
    "login": 513,
    "who": 513,
    "shell": 514,
    "syslog": 514,
    "printer": 515,
    "talk": 517,
    "ntalk": 518,
    "route": 520,
    "gdomap": 538,
    "uucp": 540,
    "klogin": 543,
    "kshell": 544,
    "dhcpv6-client": 546,
    "dhcpv6-server": 547,
    "afpovertcp": 548,
    "nntps": 563,
    "submission": 587,
    "ldaps": 636,
    "tinc": 655,
    "silc": 706,
    "kerberos-adm": 749,
    "domain-s": 853,
    "rsync": 873,
    "ftps-data": 989,
    "ftps": 990,
    "telnets": 992,
    "imaps": 993,
    "pop3s": 995,
    "socks": 1080,
    "proofd": 1093,
    "rootd": 1094,
    "openvpn": 1194,
    "rmiregistry": 1099,
    "lotusnote": 1352,
    "ms-sql-s": 1433,
    "ms-sql-m": 1434,
    "ingreslock": 1524,
    "datametrics": 1645,
    "sa-msg-port": 1646,
    "kermit": 1649,
    "groupwise": 1677,
    "l2f": 1701,
    "radius": 1812,
    "radius-acct": 1813,
    "cisco-sccp": 2000,
    "nfs": 2049,
    "gnunet": 2086,
    "rtcm-sc104": 2101,
    "gsigatekeeper": 2119,
    "gris": 2135,
    "cvspserver": 2401,
    "venus": 2430,
    "venus-se": 2431,
    "codasrv": 2432,
    "codasrv-se": 2433,
    "mon": 2583,
    "dict": 2628,
    "f5-globalsite": 2792,
    "gsiftp": 2811,
    "gpsd": 2947,
    "gds-db": 3050,
    "icpv2": 3130,
    "isns": 3205,
    "iscsi-target": 3260,
    "mysql": 3306,
    "ms-wbt-server": 3389,
    "nut": 3493,
    "distcc": 3632,
    "daap": 3689,
    "svn": 3690,
    "suucp": 4031,
    "sysrqd": 4094,
    "sieve": 4190,
    "epmd": 4369,
    "remctl": 4373,
    "f5-iquery": 4353,
    "ntske": 4460,
    "ipsec-nat-t": 4500,
    "iax": 4569,
    "mtn": 4691,
    "radmin-port": 4899,
    "sip": 5060,
    "sip-tls": 5061,
    "xmpp-client": 5222,
    "xmpp-server": 5269,
    "cfengine": 5308,
    "mdns": 5353,
    "postgresql": 5432,
    "freeciv": 5556,
    "amqps": 5671,
    "amqp": 5672,
    "x11": 6000,
    "x11-1": 6001,
    "x11-2": 6002,
    "x11-3": 6003,
    "x11-4": 6004,
    "x11-5": 6005,
    "x11-6": 6006,
    "x11-7": 6007,
    "gnutella-svc": 6346,
    "gnutella-rtr": 6347,
    "redis": 6379,
    "sge-qmaster": 6444,
    "sge-execd": 6445,
    "mysql-proxy": 6446,
    "babel": 6696,
    "ircs-u": 6697,
    "bbs": 7000,
    "afs3-fileserver": 7000,
    "afs3-callback": 7001,
    "afs3-prserver": 7002,
    "afs3-vlserver": 7003,
    "afs3-kaserver": 7004,
    "afs3-volser": 7005,
    "afs3-bos": 7007,
    "afs3-update": 7008,
    "afs3-rmtsys": 7009,
    "font-service": 7100,
    "http-alt": 8080,
    "puppet": 8140,
    "bacula-dir": 9101,
    "bacula-fd": 9102,
    "bacula-sd": 9103,
    "xmms2": 9667,
    "nbd": 10809,
    "zabbix-agent": 10050,
    "zabbix-trapper": 10051,
    "amanda": 10080,
    "dicom": 11112,
    "hkp": 11371,
    "db-lsp": 17500,
    "dcap": 22125,
    "gsidcap": 22128,
    "wnn6": 22273,
}


def _parse_port(text: str) -> int:
    """libsinsp's PORT values: empty is 0, digits are a number (kept to 16 bits), anything else a service
    name looked up with getservbyname() ("ssh" is 22); a sign or an unknown name is refused."""
    if text == "":
        return 0
    if text.isascii() and text.isdigit():
        return int(text) & 0xFFFF
    port = SERVICES.get(text)
    if port is None:
        raise CompileError(f"unrecognized protocol {text}")
    return port


def _rhs_value(text: str, kind: str, ftype: str, op: str, net: bool) -> Any:
    if "\0" in text and kind != "buffer":
        raise CompileError("filter error: a filter value cannot contain a NUL byte")
    if ftype == "PORT" and kind == "numeric":
        return _parse_port(text)
    if kind == "numeric":
        return _parse_number(text, ftype)
    if kind == "bool":
        return _parse_bool(text)
    if kind == "ip":
        return _parse_ip(text, net)
    if kind == "buffer":
        if op in ("bcontains", "bstartswith"):
            return _parse_hex(text)
        return text.encode("utf-8", "surrogateescape")
    return text


# ---------------------------------------------------------------- resolved operands


@dataclass
class Operand:
    """A left- or right-hand field after catalog lookup: how to read it and what it yields."""

    read: Callable[[Event], Any]  # returns None when there is no value
    ftype: str
    kind: str  # numeric, bool, string, buffer, ip, other
    multi: str | None  # None, "any" (ancestor/endpoint fields) or "list" (list values)
    info: FieldInfo | None
    plain_key: str | None  # set when the value is a plain dict entry (fast inline access)
    name: str


def _raise_unknown(name: str) -> None:
    raise CompileError(f"filter_check called with nonexistent field {name}", "unknown_field")


class _Compiler:
    def __init__(self, extra_fields: Mapping[str, FieldInfo] | None) -> None:
        self.extra = dict(extra_fields or {})
        self.diagnostics: list[Diagnostic] = []
        self.consts: list[Any] = []
        self.hoisted: dict[str, str] = {}  # event key -> local variable read once per call
        self.shared: dict[A.Node, str] = {}  # subtree -> local caching its value (rule sets only)

    # ------------------------------------------------ constants
    def const(self, value: Any) -> str:
        self.consts.append(value)
        return f"_k{len(self.consts) - 1}"

    # ------------------------------------------------ fields
    def field_operand(self, ref: A.FieldRef, rhs: bool = False) -> Operand:
        written = ref.full_name
        info: FieldInfo | None
        if ref.name in self.extra:
            info = self.extra[ref.name]
            key = ref.name if ref.arg is None else written
            op = Operand(
                lambda ev, _k=key: ev.get(_k),
                info.type,
                info.kind if not info.is_list else "string",
                "list" if info.is_list else None,
                info,
                key,
                written,
            )
        else:
            found = split_name(ref.name, ref.arg)
            if found is None:
                _raise_unknown(written)
            info, arg = found  # type: ignore[misc]
            if info.name in ANCESTOR_FIELDS and arg and _SIGNED_INDEX.fullmatch(arg) and not arg.isdigit():
                # libs reads the index with parsed32: proc.aname[-1] is bare proc.aname (any ancestor),
                # another negative index walks no parent (the process itself), +2 is 2
                index = int(arg)
                arg = None if index == -1 else str(max(index, 0))
                ref = A.FieldRef(ref.name, arg, ref.transformers)
            self._check_field_arg(info, arg, written)
            if info.name in EITHER_ENDPOINT:
                op = self._endpoint_operand(info, written)
            else:
                read, ftype, multi = getter(ref.name, ref.arg)
                multi_kind = None
                if multi:
                    multi_kind = "list" if info.is_list else "any"
                plain = None if multi else plain_key(ref.name, ref.arg)
                op = Operand(read, ftype, type_kind(ftype), multi_kind, info, plain, written)
            if info.deprecated:
                self.diagnostics.append(
                    Diagnostic("LOAD_DEPRECATED_ITEM", f"field '{info.name}' is deprecated")
                )
            if info.print_only:
                raise CompileError(f"filter error: field '{info.name}' can only be used in outputs")
        if rhs and info is not None and info.no_rhs:
            raise CompileError(
                f"filter error: field '{written}' cannot be used in a field-to-field comparison"
            )
        for t in reversed(ref.transformers):
            op = self.apply_transformer(t, op)
        return op

    def _check_field_arg(self, info: FieldInfo, arg: str | None, written: str) -> None:
        if info.arg_required and (arg is None or arg == ""):
            raise CompileError(f"filter '{written}': {info.name} requires an argument but none provided")
        if arg is None:
            return
        if arg == "":
            raise CompileError(f"filter '{written}': {info.name} requires a non-empty argument")
        if info.name in ("evt.arg", "evt.rawarg") and not arg.isdigit():
            from .fields import ALL_PARAMS

            if arg not in ALL_PARAMS:
                raise CompileError(f"unknown event argument {arg}", "unknown_field")
        if info.name == "evt.rawarg" and arg.isdigit():
            raise CompileError(f"filter '{written}': evt.rawarg only accepts argument names", "unknown_field")
        if (info.name in ANCESTOR_FIELDS or info.name == "proc.args") and not arg.isdigit():
            raise CompileError(f"filter '{written}': {info.name} needs a numeric index", "unknown_field")
        if info.name == "evt.type.is" and arg not in EVENT_TYPES:
            raise CompileError(f"unknown event type {arg}", "unknown_evttype")

    def _endpoint_operand(self, info: FieldInfo, written: str) -> Operand:
        keys = EITHER_ENDPOINT[info.name]

        def read(ev: Event, _keys: tuple[str, ...] = keys) -> Any:
            values = tuple(ev[k] for k in _keys if k in ev)
            return values or None

        ftype = info.type
        kind = "string" if info.name == "fd.proto" else type_kind(ftype)
        return Operand(read, ftype, kind, "endpoint", info, None, written)

    def apply_transformer(self, name: str, op: Operand) -> Operand:
        if op.info is not None and op.info.no_transformer:
            raise CompileError(f"filter error: field '{op.name}' does not support transformers")
        if name in ("tolower", "toupper", "b64", "basename"):
            if op.kind != "string":
                raise CompileError(
                    f"filter error: transformer '{name}' is not supported for type '{op.ftype}'"
                )
            out_type, out_kind = "CHARBUF", "string"
        elif name == "len":
            if op.kind not in ("string", "buffer") and op.multi != "list":
                raise CompileError(f"filter error: transformer 'len' is not supported for type '{op.ftype}'")
            out_type, out_kind = "UINT64", "numeric"
        else:
            raise CompileError(f"filter error: unknown transformer '{name}'")
        inner, multi = op.read, op.multi
        if name == "len" and multi == "list":

            def read(ev: Event) -> Any:
                v = inner(ev)
                return None if v is None else len(v)

            multi = None
        elif multi:

            def read(ev: Event) -> Any:
                v = inner(ev)
                return None if v is None else tuple(apply_transformer(name, x) for x in v)
        else:

            def read(ev: Event) -> Any:
                return apply_transformer(name, inner(ev))

        return Operand(read, out_type, out_kind, multi, None, None, f"{name}({op.name})")

    # ------------------------------------------------ multi-argument transformers
    def transform_operand(self, tr: A.Transform, rhs: bool = False) -> Operand:
        if tr.arg is not None and tr.name != "getopt":
            raise CompileError(f"filter error: transformer '{tr.name}' does not support field arguments")
        if tr.name == "val":
            raise CompileError("filter error: transformer 'val' does not support field arguments")
        if tr.name in A.UNARY_TRANSFORMERS:
            if len(tr.args) != 1:
                raise CompileError(f"filter error: transformer '{tr.name}' expects exactly one argument")
            inner = self.scalar_arg(tr.args[0], tr.name)
            return self.apply_transformer(tr.name, inner)
        if tr.name == "join":
            return self._join(tr)
        if tr.name == "concat":
            return self._concat(tr)
        if tr.name == "getopt":
            return self._getopt(tr)
        raise CompileError(f"filter error: unknown transformer '{tr.name}'")

    def scalar_arg(self, arg: A.Operand, where: str) -> Operand:
        if isinstance(arg, A.TList):
            raise CompileError(f"filter error: transformer '{where}' does not accept a list here")
        if isinstance(arg, str):
            return Operand(lambda ev, _v=arg: _v, "CHARBUF", "string", None, None, None, repr(arg))
        op = self.field_operand(arg) if isinstance(arg, A.FieldRef) else self.transform_operand(arg)
        if op.multi == "list":
            raise CompileError(f"filter error: transformer '{where}' does not accept list field '{op.name}'")
        if where in ("concat", "getopt") and op.kind != "string":
            # libs' concat()/getopt() take string arguments only (a number field such as proc.pid is refused)
            raise CompileError(
                f"filter error: transformer '{where}' supports only string arguments, "
                f"'{op.name}' is of type {op.ftype}"
            )
        return op

    def _text_reader(self, op: Operand) -> Callable[[Event], Any]:
        read = op.read

        def as_text(ev: Event) -> Any:
            v = read(ev)
            if v is None:
                return None
            if isinstance(v, tuple):
                return " ".join(to_text(x) for x in v)
            return to_text(v)

        return as_text

    def _join(self, tr: A.Transform) -> Operand:
        if len(tr.args) != 2 or not isinstance(tr.args[1], A.TList):
            raise CompileError("filter error: transformer 'join' expects a separator and a list")
        sep = self._text_reader(self.scalar_arg(tr.args[0], "join"))
        items = [self._text_reader(self.scalar_arg(a, "join")) for a in tr.args[1].items]

        def read(ev: Event) -> Any:
            s = sep(ev)
            values = [i(ev) for i in items]
            if s is None or any(v is None for v in values):
                return None
            return s.join(values)

        return Operand(read, "CHARBUF", "string", None, None, None, "join(...)")

    def _concat(self, tr: A.Transform) -> Operand:
        if len(tr.args) < 2:
            raise CompileError("filter error: transformer 'concat' expects at least two arguments")
        items = [self._text_reader(self.scalar_arg(a, "concat")) for a in tr.args]

        def read(ev: Event) -> Any:
            values = [i(ev) for i in items]
            return None if any(v is None for v in values) else "".join(values)

        return Operand(read, "CHARBUF", "string", None, None, None, "concat(...)")

    def _getopt(self, tr: A.Transform) -> Operand:
        if len(tr.args) != 2 or not isinstance(tr.args[1], str):
            raise CompileError(
                "filter error: transformer 'getopt' expects an argument list and an option string"
            )
        optstring = tr.args[1]
        source = tr.args[0]
        if isinstance(source, A.TList):
            readers = [self._text_reader(self.scalar_arg(a, "getopt")) for a in source.items]

            def argv(ev: Event) -> Any:
                values = [r(ev) for r in readers]
                return None if any(v is None for v in values) else values
        elif isinstance(source, A.FieldRef) and source.name == "proc.args" and source.arg is None:

            def argv(ev: Event) -> Any:
                if "@argv" in ev:
                    return list(ev["@argv"])
                args = ev.get("proc.args")
                return None if args is None else args.split()
        elif isinstance(source, str):
            raise CompileError("filter error: transformer 'getopt' expects a list of arguments")
        else:
            text = self._text_reader(self.scalar_arg(source, "getopt"))

            def argv(ev: Event) -> Any:
                v = text(ev)
                return None if v is None else v.split()

        if tr.arg is not None:
            if tr.arg == "":
                raise CompileError("filter error: getopt() option argument cannot be empty")
            key = tr.arg

            def read(ev: Event) -> Any:
                args = argv(ev)
                if args is None:
                    return None
                return getopt_options(args, optstring).get(key)

            return Operand(read, "CHARBUF", "string", None, None, None, "getopt(...)")

        def read_all(ev: Event) -> Any:
            args = argv(ev)
            return None if args is None else tuple(getopt_values(args, optstring))

        return Operand(read_all, "CHARBUF", "string", "list", None, None, "getopt(...)")

    # ------------------------------------------------ checks
    def lhs(self, field: A.FieldRef | A.Transform) -> Operand:
        if isinstance(field, A.Transform):
            return self.transform_operand(field)
        return self.field_operand(field)

    def check_expr(self, check: A.Check) -> str:
        """Python expression (text) for one check."""
        left = self.lhs(check.field)
        op = "=" if check.op == "==" else check.op
        is_list = left.multi == "list"
        _check_op(left.kind, left.ftype, op, is_list)
        if op == "exists":
            return self.exists_expr(left)
        value = check.value
        if isinstance(value, (A.FieldRef, A.Transform)):
            return self.field_rhs_expr(left, op, value, check)
        if check.modifier is not None:
            items = (
                value
                if isinstance(value, tuple)
                else (value.name,)
                if isinstance(value, A.ListRef)
                else (value,)
            )
            return self.modifier_expr(left, op, check.modifier, tuple(items))  # type: ignore[arg-type]
        if isinstance(value, A.ListRef):
            values: tuple[str, ...] | str = (value.name,)
        else:
            values = value  # type: ignore[assignment]
        if op in LIST_OPS:
            items = values if isinstance(values, tuple) else (values,)
            return self.list_expr(left, op, items)
        if isinstance(values, tuple):
            raise CompileError(f"filter error: '{op}' operator does not accept a list")
        return self.scalar_expr(left, op, values)

    def reader_code(self, left: Operand) -> str:
        if left.plain_key is not None:
            local = self.hoisted.get(left.plain_key)
            if local is not None:
                return local
            return f"_e.get({self.const(left.plain_key)})"
        return f"{self.const(left.read)}(_e)"

    def exists_expr(self, left: Operand) -> str:
        read = self.reader_code(left)
        if left.multi:
            return f"bool({read})"
        return f"({read} is not None)"

    def _values(self, left: Operand, op: str, texts: tuple[str, ...]) -> list[Any]:
        net = left.ftype.endswith("NET")
        if (
            left.info is not None
            and left.info.name in EVTTYPE_FIELDS
            and op in ("=", "!=", "in", "intersects")
        ):
            for t in texts:
                if t not in EVENT_TYPES:
                    raise CompileError(f"unknown event type {t}", "unknown_evttype")
        kind = left.kind
        return [_rhs_value(t, kind, left.ftype, op, net) for t in texts]

    def scalar_expr(self, left: Operand, op: str, text: str) -> str:
        value = self._values(left, op, (text,))[0]
        self._warn_field_literal(text)
        if op == "regex":
            self._warn_regex(text)
        if left.multi:
            pred = scalar_predicate(left, op, value)
            return self._multi_expr(left, op, pred)
        read = self.reader_code(left)
        if left.kind == "ip":
            pred = scalar_predicate(left, op, value)
            return f"((_v := {read}) is not None and {self.const(pred)}(_v))"
        k = self.const(value)
        if op == "=":
            return f"({read} == {k})"
        inline = {
            "!=": f"_v != {k}",
            "<": f"_v < {k}",
            "<=": f"_v <= {k}",
            ">": f"_v > {k}",
            ">=": f"_v >= {k}",
            "startswith": f"_v.startswith({k})",
            "endswith": f"_v.endswith({k})",
        }.get(op)
        if op in ("contains", "bcontains"):
            inline = f"{k} in _v"
        elif op == "bstartswith":
            inline = f"_v.startswith({k})"
        if inline is None:
            pred = scalar_predicate(left, op, value)
            inline = f"{self.const(pred)}(_v)"
        return f"((_v := {read}) is not None and {inline})"

    def list_expr(self, left: Operand, op: str, texts: tuple[str, ...]) -> str:
        for t in texts:
            self._warn_field_literal(t)
        values = self._values(left, op if op != "pmatch" else "=", texts)
        read = self.reader_code(left)
        if op == "pmatch":
            if left.kind != "string":
                raise CompileError(f"filter error: 'pmatch' operator not supported for {left.kind} filters")
            pred = path_prefix_matcher(values)
            if left.multi:
                return self._multi_expr(left, op, pred)
            return f"((_v := {read}) is not None and {self.const(pred)}(_v))"
        if left.kind == "ip":
            pred = ip_set_predicate(values)
            if left.multi:
                return self._multi_expr(left, "in", pred)
            return f"((_v := {read}) is not None and {self.const(pred)}(_v))"
        members = frozenset(values)
        k = self.const(members)
        if left.multi == "list":
            if op == "in":
                return f"((_v := {read}) is not None and len(_v) > 0 and {k}.issuperset(_v))"
            return f"((_v := {read}) is not None and not {k}.isdisjoint(_v))"
        if left.multi:
            return f"((_v := {read}) is not None and not {k}.isdisjoint(_v))"
        return f"({read} in {k})"

    def _multi_expr(self, left: Operand, op: str, pred: Callable[[Any], bool]) -> str:
        read = self.reader_code(left)
        p = self.const(pred)
        if left.multi == "endpoint" and op == "!=":
            # "fd.ip != x": neither endpoint is x (the negation of "="), as libsinsp compares it
            return f"((_v := {read}) is not None and all({p}(_w) for _w in _v))"
        return f"((_v := {read}) is not None and any({p}(_w) for _w in _v))"

    def modifier_expr(self, left: Operand, op: str, modifier: str, texts: tuple[str, ...]) -> str:
        if op not in (
            "=",
            "!=",
            "contains",
            "icontains",
            "startswith",
            "endswith",
            "glob",
            "iglob",
            "regex",
            "bcontains",
            "bstartswith",
        ):
            raise CompileError(f"filter error: modifier '{modifier}' not supported for operator '{op}'")
        values = self._values(left, op, texts)
        preds = tuple(scalar_predicate(left, op, v) for v in values)
        if modifier == "anyof":

            def combined(v: Any, _p: tuple = preds) -> bool:
                return any(p(v) for p in _p)
        elif modifier == "allof":

            def combined(v: Any, _p: tuple = preds) -> bool:
                return bool(_p) and all(p(v) for p in _p)
        else:

            def combined(v: Any, _p: tuple = preds) -> bool:
                return sum(1 for p in _p if p(v)) == 1

        read = self.reader_code(left)
        c = self.const(combined)
        if left.multi:
            return f"((_v := {read}) is not None and any({c}(_w) for _w in _v))"
        return f"((_v := {read}) is not None and {c}(_v))"

    def field_rhs_expr(self, left: Operand, op: str, value: A.FieldRef | A.Transform, check: A.Check) -> str:
        if op in ("regex", "pmatch"):
            raise CompileError(
                f"filter error: '{op}' operator does not support a field on the right-hand side"
            )
        if left.info is not None and left.info.no_rhs:
            raise CompileError(
                f"filter error: field '{left.name}' cannot be used in a field-to-field comparison"
            )
        right = (
            self.transform_operand(value, rhs=True)
            if isinstance(value, A.Transform)
            else self.field_operand(value, rhs=True)
        )
        if right.kind != left.kind and not (
            left.kind in ("numeric", "bool") and right.kind in ("numeric", "bool")
        ):
            raise CompileError(
                f"filter error: cannot compare '{left.name}' ({left.ftype}) with "
                f"'{right.name}' ({right.ftype})"
            )
        compare = dynamic_compare(op, left.kind)
        lread, rread = left.read, right.read
        lmulti, rmulti = left.multi, right.multi

        def pred(ev: Event) -> bool:
            lv = lread(ev)
            rv = rread(ev)
            if lv is None or rv is None:
                return False
            rvals = rv if rmulti else (rv,)
            lvals = lv if lmulti else (lv,)
            if op in ("in", "intersects"):
                return any(x in rvals for x in lvals)
            return any(compare(x, y) for x in lvals for y in rvals)

        return f"{self.const(pred)}(_e)"

    # ------------------------------------------------ warnings
    def _warn_field_literal(self, text: str) -> None:
        candidate = text.strip()
        if not candidate:
            return
        if _looks_like_field(candidate):
            self.diagnostics.append(
                Diagnostic(
                    "LOAD_COMPILE_CONDITION", f"'{text}' may be a valid field misused as a const string value"
                )
            )
        elif "(" in candidate and candidate.endswith(")"):
            try:
                node = parse(candidate + " exists")
            except ParseError:
                return
            if isinstance(node, A.Check) and (
                node.field.transformers if isinstance(node.field, A.FieldRef) else True
            ):
                self.diagnostics.append(
                    Diagnostic(
                        "LOAD_COMPILE_CONDITION",
                        f"'{text}' may be a valid field transformer misused as a const string value",
                    )
                )

    def _warn_regex(self, pattern: str) -> None:
        core = pattern
        for prefix in (".*", ".+", ".?"):
            if core.startswith(prefix):
                core = core[len(prefix) :]
                break
        for suffix in (".*", ".+", ".?", "$"):
            if core.endswith(suffix) and not core.endswith("\\" + suffix):
                core = core[: -len(suffix)]
                break
        if core and re.fullmatch(r"[A-Za-z0-9_/\-:@ ]+", core):
            self.diagnostics.append(
                Diagnostic(
                    "LOAD_COMPILE_CONDITION",
                    f"regex check with '{pattern}' may be optimized with simpler operators "
                    "(=, startswith, endswith, contains)",
                )
            )

    # ------------------------------------------------ boolean structure
    def expr(self, node: A.Node | _Dispatch, depth: int = 0) -> str:
        if isinstance(node, _Dispatch):
            read = self.hoisted.get(node.key) or f"_e.get({self.const(node.key)})"
            return f"{self.const(node.make())}({read}, _e)"
        if depth > MAX_CODE_DEPTH:
            return f"{self.const(self.subfunction(node))}(_e)"
        if self.shared:
            var = self.shared.get(node)
            if var is not None:  # evaluated at most once per event, whichever rule needs it first
                inner = self._expr_uncached(node, depth + 1)
                return f"({var} if {var} is not None else ({var} := {inner}))"
        return self._expr_uncached(node, depth)

    def _expr_uncached(self, node: A.Node, depth: int) -> str:
        if isinstance(node, A.Check):
            return self.check_expr(node)
        if isinstance(node, A.Not):
            return f"(not {self.expr(node.child, depth + 1)})"
        if isinstance(node, (A.And, A.Or)):
            joiner = " and " if isinstance(node, A.And) else " or "
            return "(" + joiner.join(self.expr(c, depth + 1) for c in _flatten(node, self.shared)) + ")"
        if isinstance(node, A.Identifier):
            raise CompileError(f"Undefined macro '{node.name}' used in filter.", "undefined_macro")
        raise CompileError(f"filter error: unexpected node {node!r}")

    def subfunction(self, node: A.Node) -> Callable[[Event], bool]:
        sub = _Compiler(self.extra)
        sub.diagnostics = self.diagnostics
        fn, _ = sub.build(node)
        return fn

    def group_exclusions(self, conjuncts: list[A.Node]) -> list[A.Node | _Dispatch]:
        """Long exclusion chains ``not (proc.name = a and ...) and not (proc.name in (b, c) and ...)``
        become one dictionary lookup on the guard field's value, then only the matching exclusions run."""
        expanded: list[A.Node] = []
        for c in conjuncts:  # not (a or b) == not a and not b
            if isinstance(c, A.Not) and isinstance(c.child, A.Or):
                expanded.extend(A.Not(x) for x in _flatten(c.child))
            else:
                expanded.append(c)
        groups: dict[str, list[tuple[A.Check, A.Node | None]]] = {}
        for c in expanded:
            guard = _exclusion_guard(c)
            if guard is not None:
                groups.setdefault(guard[0], []).append(guard[1:])  # type: ignore[arg-type]
        out: list[A.Node | _Dispatch] = []
        placed: set[str] = set()
        for c in expanded:
            guard = _exclusion_guard(c)
            if guard is None or len(groups[guard[0]]) < DISPATCH_MIN:
                out.append(c)
                continue
            key = guard[0]
            if key in placed:
                continue
            placed.add(key)
            out.append(self.build_dispatch(key, groups[key]))
        return out

    def build_dispatch(self, key: str, members: list[tuple[A.Check, A.Node | None]]) -> _Dispatch:
        table: dict[Any, list[Callable[[Event], bool] | None]] = {}
        for check, remainder in members:
            self.check_expr(check)  # validates the guard exactly as a normal check
            left = self.lhs(check.field)
            op = "=" if check.op == "==" else check.op
            texts = check.value if isinstance(check.value, tuple) else (check.value,)
            values = self._values(left, op, texts)  # type: ignore[arg-type]
            pred = None if remainder is None else self.subfunction(remainder)
            for v in values:
                table.setdefault(v, []).append(pred)
        return _Dispatch(key, table)

    def build(self, node: A.Node) -> tuple[Callable[[Event], bool], str]:
        # A top-level "and" becomes early exits for its first checks (most events fail there, cheaply);
        # fields the rest reads more than once are then read once into locals.
        lines: list[str] = []
        if isinstance(node, A.And):
            children = _flatten(node)
            head, rest = children[:EARLY_EXITS], children[EARLY_EXITS:]
            for child in head:
                lines.append(f"if not {self.expr(child, 1)}: return False")
            rest = self.group_exclusions(rest)
            counts: dict[str, int] = {}
            for child in rest:
                for key in _plain_keys(child):
                    counts[key] = counts.get(key, 0) + 1
            for key, count in counts.items():
                if count >= 2:
                    local = f"_f{len(self.hoisted)}"
                    self.hoisted[key] = local
                    lines.append(f"{local} = _e.get({self.const(key)})")
            body = " and ".join(self.expr(c, 1) for c in rest) if rest else "True"
        else:
            body = self.expr(node)
        lines.append(f"return {body}")
        return self._assemble(lines)

    def build_ruleset(
        self, nodes: list[A.Node | bool], collect_all: bool
    ) -> tuple[Callable[[Event], Any], str]:
        """ONE function for the rules an event type meets, in order: with ``collect_all`` it returns the
        indexes of every matching rule, else the index of the first one (-1 for none). Plain fields read
        by several rules are read once; subtrees several rules share (macros such as ``open_write``,
        ``container``) are evaluated at most once per event, when a rule first needs them. Filters are
        pure, so this is the per-rule evaluation with the repeated work left out."""
        live = [(i, n) for i, n in enumerate(nodes) if n is not False]
        counts: dict[A.Node, int] = {}
        for _, node in live:
            if not isinstance(node, bool):
                for sub in _composite_subtrees(node):
                    counts[sub] = counts.get(sub, 0) + 1
        self.shared = {}
        for sub, count in counts.items():
            if count >= 2:
                self.shared[sub] = f"_c{len(self.shared)}"
        bodies: list[tuple[int, list[A.Node | _Dispatch]]] = []
        key_counts: dict[str, int] = {}
        for i, node in live:
            if isinstance(node, bool):
                bodies.append((i, []))
                continue
            whole = isinstance(node, A.And) and node not in self.shared
            conjuncts = _flatten(node, self.shared) if whole else [node]
            if len(conjuncts) > EARLY_EXITS:
                conjuncts = conjuncts[:EARLY_EXITS] + self.group_exclusions(conjuncts[EARLY_EXITS:])
            for key in _plain_keys(node):
                key_counts[key] = key_counts.get(key, 0) + 1
            bodies.append((i, conjuncts))
        lines: list[str] = []
        for key, count in key_counts.items():
            if count >= 2:
                local = f"_f{len(self.hoisted)}"
                self.hoisted[key] = local
                lines.append(f"{local} = _e.get({self.const(key)})")
        if self.shared:
            lines.append(" = ".join(self.shared.values()) + " = None")
        if collect_all:
            lines.append("_out = []")
        for i, conjuncts in bodies:
            cond = " and ".join(self.expr(c, 1) for c in conjuncts) if conjuncts else "True"
            lines.append(f"if {cond}: " + (f"_out.append({i})" if collect_all else f"return {i}"))
        lines.append("return _out" if collect_all else "return -1")
        return self._assemble(lines)

    def _assemble(self, lines: list[str]) -> tuple[Callable[[Event], Any], str]:
        names = [f"_k{i}" for i in range(len(self.consts))]
        source = (
            f"def _make({', '.join(names)}):\n"
            f"    def _match(_e):\n" + "".join(f"        {line}\n" for line in lines) + "    return _match\n"
        )
        namespace: dict[str, Any] = {}
        exec(compile(source, "<falco-filter>", "exec"), {"__builtins__": _SAFE_BUILTINS}, namespace)
        return namespace["_make"](*self.consts), source


def _composite_subtrees(node: A.Node) -> list[A.Node]:
    """The and/or/not subtrees with two checks or more (worth caching when several rules share them)."""
    out: list[A.Node] = []

    def visit(n: A.Node) -> int:
        if isinstance(n, A.Check):
            return 1
        if isinstance(n, A.Not):
            size = visit(n.child)
        elif isinstance(n, (A.And, A.Or)):
            size = sum(visit(c) for c in n.children)
        else:
            return 1
        if size >= 2:
            out.append(n)
        return size

    visit(node)
    return out


_SAFE_BUILTINS = {"bool": bool, "any": any, "all": all, "len": len}
EARLY_EXITS = 2
DISPATCH_MIN = 4  # exclusions sharing a guard field before a lookup table pays off


@dataclass
class _Dispatch:
    """``not (F = v1 and R1) and not (F in (v2, v3) and R2) ...`` as a table ``value -> [R...]``."""

    key: str
    table: dict[Any, list[Callable[[Event], bool] | None]]

    def make(self) -> Callable[[Any, Event], bool]:
        table = {v: tuple(preds) for v, preds in self.table.items()}

        def no_exclusion_matches(value: Any, ev: Event) -> bool:
            preds = table.get(value) if value is not None else None
            if preds is None:
                return True
            return all(not (p is None or p(ev)) for p in preds)

        return no_exclusion_matches


def _exclusion_guard(node: A.Node) -> tuple[str, A.Check, A.Node | None] | None:
    """For ``not (F = c ...)`` / ``not (F in (...) and ...)``: (event key of F, guard check, remainder)."""
    if not isinstance(node, A.Not):
        return None
    inner = node.child
    remainder: A.Node | None = None
    if isinstance(inner, A.And):
        parts = _flatten(inner)
        inner, rest = parts[0], parts[1:]
        remainder = rest[0] if len(rest) == 1 else A.And(tuple(rest))
    if not isinstance(inner, A.Check) or inner.modifier is not None:
        return None
    if inner.op not in ("=", "==", "in") or not isinstance(inner.value, (str, tuple)):
        return None
    field = inner.field
    if not isinstance(field, A.FieldRef) or field.transformers or field.name in EITHER_ENDPOINT:
        return None
    info = split_name(field.name, field.arg)
    if (
        info is None
        or info[0].kind not in ("string", "numeric")
        or info[0].name in ANCESTOR_FIELDS
        and field.arg is None
    ):
        return None
    key = plain_key(field.name, field.arg)
    return None if key is None else (key, inner, remainder)


def _plain_keys(node: A.Node) -> list[str]:
    """Event keys the plain (untransformed) fields of a subtree read, with repetitions."""
    out = []
    for check in A.checks(node):
        field = check.field
        if isinstance(field, A.FieldRef) and not field.transformers and field.name not in EITHER_ENDPOINT:
            key = plain_key(field.name, field.arg)
            if key is not None:
                out.append(key)
    return out


def _flatten(node: A.And | A.Or, keep: Mapping[A.Node, str] | None = None) -> list[A.Node]:
    """And inside And (and Or inside Or) is the same operation: flatten it to keep the code shallow.
    Subtrees in ``keep`` (shared between the rules of a rule set) stay whole."""
    out: list[A.Node] = []
    stack = list(reversed(node.children))
    kind = type(node)
    while stack:
        child = stack.pop()
        if type(child) is kind and not (keep and child in keep):
            stack.extend(reversed(child.children))  # type: ignore[union-attr]
        else:
            out.append(child)
    return out


def _looks_like_field(text: str) -> bool:
    name, _, rest = text.partition("[")
    if rest and not rest.endswith("]"):
        return False
    if not re.fullmatch(r"[a-zA-Z]+[a-zA-Z0-9_]*(\.[a-zA-Z]+[a-zA-Z0-9_]*)+", name):
        return False
    return split_name(name, rest[:-1] if rest else None) is not None


# ---------------------------------------------------------------- predicates


def _ascii_lower(text: str) -> str:
    return text.lower() if text.isascii() else "".join(c.lower() if c.isascii() else c for c in text)


_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.posix_syntax = True
_RE2_OPTIONS.longest_match = True
_RE2_OPTIONS.perl_classes = True  # libsinsp's RE2 accepts \d \s \w
_RE2_OPTIONS.word_boundary = True
_RE2_OPTIONS.log_errors = False


def compile_regex(pattern: str) -> Callable[[str], bool]:
    """RE2, fully anchored, linear time. Invalid UTF-8 in a value never matches ``.`` (as RE2 in C++)."""
    try:
        rx = re2.compile(pattern.encode("utf-8", "surrogateescape"), options=_RE2_OPTIONS)
    except Exception as err:  # re2.error, UnicodeError
        detail = err.args[0].decode() if err.args and isinstance(err.args[0], bytes) else str(err)
        raise CompileError(f"filter error: invalid regular expression '{pattern}': {detail}") from None

    def match(text: str) -> bool:
        return rx.fullmatch(text.encode("utf-8", "surrogateescape")) is not None

    return match


def scalar_predicate(left: Operand, op: str, value: Any) -> Callable[[Any], bool]:
    """value-of-the-field -> bool, for one right-hand value."""
    if left.kind == "ip":
        return _ip_predicate(op, value)
    make = _SCALAR_PREDICATES.get(op)
    if make is None:
        raise CompileError(f"filter error: unsupported operator '{op}'")
    return make(value)


def _ip_predicate(op: str, value: Any) -> Callable[[Any], bool]:
    """An address equals the value, or lies in it when the value is a network; other operators negate."""
    if isinstance(value, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        eq = _net_matcher([value])
    else:

        def eq(v: Any) -> bool:
            return v == value

    if op in ("=", "in", "intersects"):
        return eq
    return lambda v: not eq(v)


def _icontains_predicate(value: str) -> Callable[[Any], bool]:
    needle = _ascii_lower(value)
    return lambda v: needle in _ascii_lower(v)


# operator -> (right-hand value -> predicate on the field's value)
_SCALAR_PREDICATES: dict[str, Callable[[Any], Callable[[Any], bool]]] = {
    "=": lambda value: lambda v: v == value,
    "!=": lambda value: lambda v: v != value,
    "<": lambda value: lambda v: v < value,
    "<=": lambda value: lambda v: v <= value,
    ">": lambda value: lambda v: v > value,
    ">=": lambda value: lambda v: v >= value,
    "contains": lambda value: lambda v: value in v,
    "bcontains": lambda value: lambda v: value in v,
    "icontains": _icontains_predicate,
    "startswith": lambda value: lambda v: v.startswith(value),
    "bstartswith": lambda value: lambda v: v.startswith(value),
    "endswith": lambda value: lambda v: v.endswith(value),
    "glob": lambda value: compile_glob(value),
    "iglob": lambda value: compile_glob(value, casefold=True),
    "regex": compile_regex,
    "in": lambda value: lambda v: v == value,
    "intersects": lambda value: lambda v: v == value,
}


def _net_matcher(nets: list[Any]) -> Callable[[Any], bool]:
    """Membership in any of the networks, on integers (ipaddress's ``in`` is slow on a hot path)."""
    specs = tuple((n.version, int(n.network_address), int(n.netmask)) for n in nets)

    def in_nets(v: Any) -> bool:
        version, number = v.version, int(v)
        for net_version, address, mask in specs:
            if version == net_version and number & mask == address:
                return True
        return False

    return in_nets


def ip_set_predicate(values: list[Any]) -> Callable[[Any], bool]:
    addrs = frozenset(v for v in values if not isinstance(v, (ipaddress.IPv4Network, ipaddress.IPv6Network)))
    nets = [v for v in values if isinstance(v, (ipaddress.IPv4Network, ipaddress.IPv6Network))]
    if not nets:
        return addrs.__contains__
    in_nets = _net_matcher(nets)

    def pred(v: Any) -> bool:
        return v in addrs or in_nets(v)

    return pred


def dynamic_compare(op: str, kind: str) -> Callable[[Any, Any], bool]:
    """Field-to-field comparison: both values known only at evaluation time."""
    simple = {
        "=": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
        "contains": lambda a, b: b in a,
        "bcontains": lambda a, b: b in a,
        "icontains": lambda a, b: _ascii_lower(b) in _ascii_lower(a),
        "startswith": lambda a, b: a.startswith(b),
        "bstartswith": lambda a, b: a.startswith(b),
        "endswith": lambda a, b: a.endswith(b),
        "glob": lambda a, b: compile_glob(b)(a),
        "iglob": lambda a, b: compile_glob(b, True)(a),
    }
    if op not in simple:
        raise CompileError(f"filter error: '{op}' operator does not support a field on the right-hand side")
    return simple[op]


def path_prefix_matcher(prefixes: list[str]) -> Callable[[str], bool]:
    """libsinsp ``pmatch``: some prefix's path components match the value's leading components."""
    plain: set[tuple[str, ...]] = set()
    wild: list[list[Callable[[str], bool]]] = []
    for p in prefixes:
        comps = tuple(c for c in p.split("/") if c)
        if any(ch in p for ch in "*?["):
            wild.append([compile_glob(c) for c in comps])
        else:
            plain.add(comps)
    lengths = sorted({len(c) for c in plain})

    def match(value: str) -> bool:
        comps = tuple(c for c in value.split("/") if c)
        for n in lengths:
            if n <= len(comps) and comps[:n] in plain:
                return True
        for pattern in wild:
            if len(pattern) <= len(comps) and all(m(c) for m, c in zip(pattern, comps, strict=False)):
                return True
        return False

    return match


def getopt_options(argv: list[str], optstring: str) -> dict[str, str]:
    """POSIX getopt over argv (no program name): option -> argument ('' without one); last one wins."""
    return dict(_getopt(argv, optstring, pairs=True))  # type: ignore[arg-type]


def getopt_values(argv: list[str], optstring: str) -> list[str]:
    """Options and their arguments as one list (unknown options are '?'; a missing argument is '')."""
    return _getopt(argv, optstring, pairs=False)  # type: ignore[return-value]


def _getopt(argv: list[str], optstring: str, pairs: bool) -> list[Any]:
    spec = optstring[1:] if optstring.startswith(":") else optstring
    takes: dict[str, bool] = {}
    for i, c in enumerate(spec):
        if c != ":":
            takes[c] = i + 1 < len(spec) and spec[i + 1] == ":"
    out: list[Any] = []
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "--":
            break
        if len(word) < 2 or not word.startswith("-"):
            break  # POSIX: the first non-option ends the options
        j = 1
        i += 1
        while j < len(word):
            c = word[j]
            j += 1
            if c not in takes:
                out.append(("?", "") if pairs else "?")
                continue
            if not takes[c]:
                out.append((c, "") if pairs else c)
                continue
            if j < len(word):
                out.append((c, word[j:]) if pairs else c)
                if not pairs:
                    out.append(word[j:])
            elif i < len(argv):
                out.append((c, argv[i]) if pairs else c)
                if not pairs:
                    out.append(argv[i])
                i += 1
            else:
                out.append((c, "") if pairs else "")  # missing argument
            break
    return out


# ---------------------------------------------------------------- macros and event types


def expand_macros(node: A.Node, macros: Mapping[str, A.Node] | None) -> A.Node:
    """Replace macro references (recursively, with loop detection)."""
    macros = macros or {}
    cache: dict[str, A.Node] = {}

    def expand(n: A.Node, stack: tuple[str, ...]) -> A.Node:
        if isinstance(n, A.Identifier):
            name = n.name
            if name in stack:
                raise CompileError(f"reference loop in macro '{name}'", "macro_loop")
            if name not in macros:
                raise CompileError(f"Undefined macro '{name}' used in filter.", "undefined_macro")
            if name not in cache:
                cache[name] = expand(macros[name], stack + (name,))
            return cache[name]
        if isinstance(n, A.Not):
            child = expand(n.child, stack)
            return n if child is n.child else A.Not(child)
        if isinstance(n, (A.And, A.Or)):
            children = tuple(expand(c, stack) for c in n.children)
            if all(a is b for a, b in zip(children, n.children, strict=True)):
                return n
            return type(n)(children)
        return n

    return expand(node, ())


ALL_EVTTYPES = EVENT_TYPES


def resolve_evttypes(node: A.Node, negated: bool = False) -> frozenset[str]:
    """Event types a filter can match, as Falco's evttype resolver computes them (and = ∩, or = ∪)."""
    if isinstance(node, A.Check):
        field = node.field
        if isinstance(field, A.FieldRef) and not field.transformers and field.arg is None:
            op = "=" if node.op == "==" else node.op
            if field.name == "evt.type" and node.modifier is None and op in ("=", "!=", "in", "intersects"):
                value = node.value
                if isinstance(value, str):
                    names = frozenset({value})
                elif isinstance(value, tuple):
                    names = frozenset(value)
                elif isinstance(value, A.ListRef):
                    names = frozenset({value.name})
                else:
                    return ALL_EVTTYPES
                names &= ALL_EVTTYPES
                inverted = (op == "!=") != negated
                return ALL_EVTTYPES - names if inverted else names
            if field.name == "evt.num" and op == "=" and node.value == "0" and node.modifier is None:
                return ALL_EVTTYPES if negated else frozenset()
        return ALL_EVTTYPES
    if isinstance(node, A.Not):
        return resolve_evttypes(node.child, not negated)
    if isinstance(node, (A.And, A.Or)):
        sets = [resolve_evttypes(c, negated) for c in node.children]
        intersect = isinstance(node, A.And) != negated
        result = sets[0]
        for s in sets[1:]:
            result = result & s if intersect else result | s
        return result
    return ALL_EVTTYPES


def unsafe_na_checks(node: A.Node) -> list[str]:
    """``ka.*``/``jevt.*`` fields compared with ``<NA>`` (Falco's LOAD_UNSAFE_NA_CHECK)."""
    out = []
    for check in A.checks(node):
        field = check.field
        if not isinstance(field, A.FieldRef) or not field.name.startswith(("ka.", "jevt.")):
            continue
        values = check.value if isinstance(check.value, tuple) else (check.value,)
        if "<NA>" in values:
            out.append(A.field_text(field))
    return out


# ---------------------------------------------------------------- entry point


def compile_filter(
    node: A.Node,
    macros: Mapping[str, A.Node] | None = None,
    *,
    extra_fields: Mapping[str, FieldInfo] | None = None,
) -> CompiledFilter:
    """Compile a condition AST (macros substituted) into a CompiledFilter; raises CompileError."""
    limit = sys.getrecursionlimit()
    # Macro chains nest deeper than one parsed text can (the parser stops at depth 100); allow realistic
    # chains and turn anything beyond into a clean error instead of a traceback.
    sys.setrecursionlimit(max(limit, RECURSION_LIMIT))
    try:
        expanded = expand_macros(node, macros)
        if A.expanded_size(expanded) > A.MAX_EXPANDED_NODES:
            raise CompileError(
                f"filter error: the condition expands to more than {A.MAX_EXPANDED_NODES:,} checks "
                "once its macros are expanded (a macro that uses another several times doubles "
                "its size at each level)"
            )
        compiler = _Compiler(extra_fields)
        fn, source = compiler.build(expanded)
        types = resolve_evttypes(expanded)
    except RecursionError:
        raise CompileError("filter error: condition is nested too deeply after macro expansion") from None
    finally:
        sys.setrecursionlimit(limit)
    evttypes = None if types == ALL_EVTTYPES else types
    seen: set[tuple[str, str]] = set()
    diagnostics = []
    for d in compiler.diagnostics:
        if (d.code, d.message) not in seen:
            seen.add((d.code, d.message))
            diagnostics.append(d)
    return CompiledFilter(fn, evttypes, diagnostics, expanded, source, extra_fields)


def fold_evttype(node: A.Node, evttype: str) -> A.Node | bool:
    """``node`` for events whose ``evt.type`` is ``evttype``: the checks on ``evt.type`` alone (``=``,
    ``!=``, ``in``, ``intersects``, ``exists``, no transformer or modifier) are decided, and the and/or/not
    around them simplified. Exactly what the compiled check computes on such an event: the rule index
    already knows the type, so the filter need not test it again."""
    if isinstance(node, A.Check):
        field = node.field
        if (
            not isinstance(field, A.FieldRef)
            or field.name != "evt.type"
            or field.arg is not None
            or field.transformers
            or node.modifier is not None
        ):
            return node
        op = "=" if node.op == "==" else node.op
        value = node.value
        if op == "exists":
            return True
        if isinstance(value, A.ListRef):
            value = (value.name,)
        if op in ("=", "!=") and isinstance(value, str):
            return (evttype == value) == (op == "=")
        if op in ("in", "intersects") and isinstance(value, (str, tuple)):
            return evttype in ((value,) if isinstance(value, str) else value)
        return node
    if isinstance(node, A.Not):
        child = fold_evttype(node.child, evttype)
        if isinstance(child, bool):
            return not child
        return node if child is node.child else A.Not(child)
    if isinstance(node, (A.And, A.Or)):
        decisive = isinstance(node, A.Or)  # the value that decides the whole: True for or, False for and
        kept: list[A.Node] = []
        changed = False
        for c in node.children:
            folded = fold_evttype(c, evttype)
            if isinstance(folded, bool):
                if folded == decisive:
                    return decisive
                changed = True
                continue
            changed = changed or folded is not c
            kept.append(folded)
        if not changed:
            return node
        if not kept:
            return not decisive
        return kept[0] if len(kept) == 1 else type(node)(tuple(kept))
    return node


def compile_ruleset(
    filters: list[CompiledFilter], evttype: str | None, *, collect_all: bool = False
) -> Callable[[Event], Any]:
    """One function evaluating ``filters`` in order on events of type ``evttype`` (None: any type, nothing
    folded): the index of the first match (-1 for none), or with ``collect_all`` the list of indexes of
    every match. Same answers as calling each ``filter.matches`` in turn; raises CompileError when the
    filters cannot be combined (the caller then calls them one by one)."""
    if len(filters) > MAX_RULESET:
        raise CompileError(f"more than {MAX_RULESET} rules for one event type: evaluated one by one")
    extra = filters[0].extra_fields if filters else None
    if any(f.extra_fields is not extra for f in filters):
        raise CompileError("filters compiled with different field sets")
    nodes: list[A.Node | bool] = [fold_evttype(f.node, evttype) if evttype else f.node for f in filters]
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, RECURSION_LIMIT))
    try:
        fn, _ = _Compiler(extra).build_ruleset(nodes, collect_all)
    except (RecursionError, SyntaxError, MemoryError):
        raise CompileError("filter error: the rule set is too large to combine") from None
    finally:
        sys.setrecursionlimit(limit)
    return fn


def compile_condition(text: str, macros: Mapping[str, A.Node] | None = None, **kw: Any) -> CompiledFilter:
    """parse + compile (ParseError and CompileError both propagate)."""
    return compile_filter(parse(text), macros, **kw)


def evaluate(text: str, event: Event | Mapping[str, Any]) -> bool:
    """One-shot helper for the study tools and tests."""
    from .events import event_from_mapping

    ev = event if isinstance(event, Event) else event_from_mapping(event)
    return compile_condition(text).matches(ev)


__all__ = [
    "CompileError",
    "CompiledFilter",
    "Diagnostic",
    "compile_filter",
    "compile_condition",
    "compile_ruleset",
    "evaluate",
    "fold_evttype",
    "expand_macros",
    "resolve_evttypes",
    "unsafe_na_checks",
    "MISSING",
    "FIELDS",
]
