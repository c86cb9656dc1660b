"""Catalog of the syscall-source fields (libsinsp + the container plugin), with types and flags.

``FIELDS`` maps a field name to its ``FieldInfo``; ``lookup(name, arg)`` resolves a name as written in
a condition, including the dotted argument forms libsinsp accepts (``evt.arg.flags``,
``evt.type.is.open``, ``k8s.pod.label.app``) and the bracket form (``proc.aname[2]``).
The data comes from ``fields_catalog.py`` (generated at dev time by tools/gen_falco_fields_catalog.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from .fields_catalog import EVENTS
from .fields_catalog import FIELDS as _RAW_FIELDS

NUMERIC_TYPES = frozenset(
    {
        "INT8",
        "INT16",
        "INT32",
        "INT64",
        "UINT8",
        "UINT16",
        "UINT32",
        "UINT64",
        "ERRNO",
        "FD",
        "PID",
        "SYSCALLID",
        "SIGTYPE",
        "RELTIME",
        "ABSTIME",
        "PORT",
        "FLAGS8",
        "FLAGS16",
        "FLAGS32",
        "DOUBLE",
        "MODE",
        "ENUMFLAGS8",
        "ENUMFLAGS16",
        "ENUMFLAGS32",
        "UID",
        "GID",
    }
)
STRING_TYPES = frozenset({"CHARBUF", "FSPATH", "FSRELPATH"})
IP_TYPES = frozenset({"IPADDR", "IPNET", "IPV4ADDR", "IPV4NET", "IPV6ADDR", "IPV6NET"})

# Integer widths for values written on the right-hand side (libsinsp casts them to the field's type).
INT_WIDTH = {
    "INT8": (8, True),
    "INT16": (16, True),
    "INT32": (32, True),
    "INT64": (64, True),
    "ERRNO": (64, True),
    "FD": (64, True),
    "PID": (64, True),
    "UINT8": (8, False),
    "UINT16": (16, False),
    "UINT32": (32, False),
    "UINT64": (64, False),
    "SYSCALLID": (16, False),
    "SIGTYPE": (8, False),
    "RELTIME": (64, False),
    "ABSTIME": (64, False),
    "PORT": (16, False),
    "FLAGS8": (8, False),
    "FLAGS16": (16, False),
    "FLAGS32": (32, False),
    "MODE": (32, False),
    "ENUMFLAGS8": (8, False),
    "ENUMFLAGS16": (16, False),
    "ENUMFLAGS32": (32, False),
    "UID": (32, False),
    "GID": (32, False),
}

# Fields whose argument can also be written after a dot (libsinsp parses the rest of the name).
DOTTED_ARG_FIELDS = (
    "evt.arg",
    "evt.rawarg",
    "evt.type.is",
    "evt.abspath",
    "thread.cgroup",
    "container.label",
    "k8s.pod.label",
    "k8s.rc.label",
    "k8s.svc.label",
    "k8s.ns.label",
    "k8s.rs.label",
    "k8s.deployment.label",
)

# "Any ancestor" fields: without an argument a filter matches when any ancestor (not the process itself) does.
ANCESTOR_FIELDS = frozenset(
    {"proc.aname", "proc.aexe", "proc.aexepath", "proc.acmdline", "proc.aargs", "proc.aenv", "proc.apid"}
)


def type_kind(ftype: str) -> str:
    """Operator family of a libsinsp type: string, numeric, bool, ip, buffer, dyn, or other."""
    if ftype in STRING_TYPES:
        return "string"
    if ftype in NUMERIC_TYPES:
        return "numeric"
    if ftype == "BOOL":
        return "bool"
    if ftype in IP_TYPES:
        return "ip"
    if ftype == "BYTEBUF":
        return "buffer"
    if ftype in ("DYN", "DYNAMIC"):
        return "dyn"
    return "other"


@dataclass(frozen=True, slots=True)
class FieldInfo:
    name: str
    type: str  # libsinsp type name: CHARBUF, UINT64, BOOL, IPADDR, IPNET, PORT, BYTEBUF, ABSTIME, ...
    field_class: str  # event, thread, fd, user, group, fspath, container ...
    flags: frozenset[str]

    @property
    def kind(self) -> str:
        return "list" if self.is_list else type_kind(self.type)

    @property
    def arg_required(self) -> bool:
        return "ARG_REQUIRED" in self.flags

    @property
    def takes_arg(self) -> bool:
        return bool({"ARG_REQUIRED", "ARG_ALLOWED"} & self.flags)

    @property
    def is_list(self) -> bool:
        return "IS_LIST" in self.flags

    @property
    def no_rhs(self) -> bool:
        return "NO_RHS" in self.flags

    @property
    def no_transformer(self) -> bool:
        return "NO_TRANSFORMER" in self.flags

    @property
    def filter_only(self) -> bool:
        return "FILTER_ONLY" in self.flags

    @property
    def print_only(self) -> bool:
        return "PRINT_ONLY" in self.flags

    @property
    def deprecated(self) -> bool:
        return "DEPRECATED" in self.flags


FIELDS: dict[str, FieldInfo] = {
    name: FieldInfo(name, ftype, cls, frozenset(flags)) for name, (ftype, cls, flags) in _RAW_FIELDS.items()
}
# libsinsp's table marks evt.abspath ARG_REQUIRED, yet plain ``evt.abspath`` filters compile upstream
# (filterchecks/invalid_utf8.cpp): the argument (.src/.dst) is optional in practice.
FIELDS["evt.abspath"] = FieldInfo("evt.abspath", "CHARBUF", "event", frozenset({"ARG_ALLOWED"}))

EVENT_TYPES: frozenset[str] = frozenset(EVENTS)
SYSCALL_EVENT_TYPES: frozenset[str] = frozenset(
    n for n, e in EVENTS.items() if e["section"] == "Syscall events"
)


def event_params(evtype: str) -> list[tuple[str, str]]:
    """Parameters (name, type) of an event type, exit event first (as Falco's rules see it)."""
    ev = EVENTS.get(evtype)
    if ev is None:
        return []
    out = list(ev["<"])
    names = {p for p, _ in out}
    out += [p for p in ev[">"] if p[0] not in names]
    return out


ALL_PARAMS: dict[str, str] = {}
for _ev in EVENTS.values():
    for _pname, _ptype in _ev["<"] + _ev[">"]:
        ALL_PARAMS.setdefault(_pname, _ptype)


def split_name(name: str, arg: str | None = None) -> tuple[FieldInfo, str | None] | None:
    """(FieldInfo, argument) for a field as written, or None when libsinsp does not know it."""
    info = FIELDS.get(name)
    if info is not None:
        if arg is not None and not info.takes_arg:
            return None
        return info, arg
    if arg is not None:
        return None
    for base in DOTTED_ARG_FIELDS:
        if name.startswith(base + ".") and len(name) > len(base) + 1:
            return FIELDS[base], name[len(base) + 1 :]
    return None


def lookup(name: str, arg: str | None = None) -> FieldInfo | None:
    """The catalog entry for ``name`` (``arg`` = the ``[...]`` part), or None for an unknown field."""
    found = split_name(name, arg)
    return None if found is None else found[0]
