"""Syscall events for the condition engine: a mapping of field name to value, derived fields filled in.

An event is written as a flat YAML/JSON mapping of Falco field names (see docs/falco-events.md)::

    evt.type: openat
    evt.arg.flags: O_RDONLY
    fd.name: /etc/shadow
    proc.name: cat
    proc.args: [/etc/shadow]          # a list (argv[1..]) or one string
    proc.ancestors: [bash, containerd-shim, systemd]   # parent first; or mappings {name, exepath, ...}
    container.id: 3ad7b26ded6d

``event_from_mapping`` checks the names against the field catalog, converts values to the field's type
and derives what Falco derives (``proc.cmdline``, ``fd.directory``, ``container.id: host`` ...).
A field that is absent has no value: every comparison on it is false (``!=`` too); only ``not`` and
``exists`` see the difference. ``get(event, FieldRef)`` reads a field the way a condition does.
"""

from __future__ import annotations

import base64
import datetime as _dt
import functools
import ipaddress
import operator
import posixpath
from collections.abc import Callable, Mapping
from typing import Any

from .ast import FieldRef
from .fields import ALL_PARAMS, ANCESTOR_FIELDS, EVENTS, FIELDS, event_params, split_name, type_kind


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()


class EventError(ValueError):
    """An event mapping the engine cannot use (unknown field, value of the wrong type)."""


class Event(dict):
    """Field name -> value. Internal keys start with ``@`` (ancestors, event arguments, env)."""

    __slots__ = ()

    @property
    def evttype(self) -> str | None:
        return self.get("evt.type")


# ---------------------------------------------------------------- constants

OPEN_EVENTS = frozenset({"open", "openat", "openat2", "open_by_handle_at"})
EXEC_EVENTS = frozenset({"execve", "execveat"})
CLIENT_EVENTS = frozenset({"connect", "sendto", "sendmsg"})
SERVER_EVENTS = frozenset({"accept", "accept4", "listen", "bind", "recvfrom", "recvmsg"})

# libscap's PPM_O_* open flags (evt.rawarg.flags is this number; evt.arg.flags names them).
OPEN_FLAGS = {
    "O_NONE": 0,
    "O_RDONLY": 1 << 0,
    "O_WRONLY": 1 << 1,
    "O_RDWR": (1 << 0) | (1 << 1),
    "O_CREAT": 1 << 2,
    "O_APPEND": 1 << 3,
    "O_DSYNC": 1 << 4,
    "O_EXCL": 1 << 5,
    "O_NONBLOCK": 1 << 6,
    "O_SYNC": 1 << 7,
    "O_TRUNC": 1 << 8,
    "O_DIRECT": 1 << 9,
    "O_DIRECTORY": 1 << 10,
    "O_LARGEFILE": 1 << 11,
    "O_CLOEXEC": 1 << 12,
    "O_TMPFILE": 1 << 13,
    "O_F_CREATED": 1 << 14,
    "O_PATH": 1 << 15,
    "O_NOFOLLOW": 1 << 16,
    "O_NOATIME": 1 << 17,
    "O_NOCTTY": 1 << 18,
}
TYPECHAR_TYPES = {
    "f": "file",
    "d": "directory",
    "4": "ipv4",
    "6": "ipv6",
    "u": "unix",
    "p": "pipe",
    "e": "event",
    "s": "signalfd",
    "l": "eventpoll",
    "i": "inotify",
    "b": "bpf",
    "r": "io_uring",
    "m": "memfd",
    "o": "unknown",
}
TYPE_TYPECHARS = {v: k for k, v in TYPECHAR_TYPES.items()} | {"ipv4": "4", "ipv6": "6"}
PROC_NAME_MAX = 15  # the kernel's comm is 16 bytes with the NUL

ANCESTOR_KEYS = {
    "proc.aname": "name",
    "proc.aexe": "exe",
    "proc.aexepath": "exepath",
    "proc.acmdline": "cmdline",
    "proc.aargs": "args",
    "proc.aenv": "env",
    "proc.apid": "pid",
}
SELF_FIELDS = {
    "proc.aname": "proc.name",
    "proc.aexe": "proc.exe",
    "proc.aexepath": "proc.exepath",
    "proc.acmdline": "proc.cmdline",
    "proc.aargs": "proc.args",
    "proc.apid": "proc.pid",
}
PARENT_FIELDS = {
    "proc.pname": "name",
    "proc.pexe": "exe",
    "proc.pexepath": "exepath",
    "proc.pcmdline": "cmdline",
    "proc.ppid": "pid",
}
# Keys that are event-file conveniences, not catalog fields.
EXTRA_KEYS = frozenset({"proc.ancestors", "evt.arg", "evt.rawarg", "proc.env"})


# ---------------------------------------------------------------- value conversion


def to_text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _to_int(name: str, value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip(), 0)
    except ValueError:
        raise EventError(f"{name}: {value!r} is not a number") from None


def _to_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise EventError(f"{name}: {value!r} is not true or false")


def _to_ip(name: str, value: Any, net: bool = False) -> Any:
    try:
        text = to_text(value).strip().strip("[]")
        return ipaddress.ip_network(text, strict=False) if net else ipaddress.ip_address(text)
    except ValueError:
        raise EventError(f"{name}: {value!r} is not an IP address") from None


def convert(name: str, ftype: str, value: Any, is_list: bool = False) -> Any:
    """An event value in the representation the compiled filters compare against."""
    if is_list:
        items = value if isinstance(value, (list, tuple)) else [value]
        return tuple(to_text(v) for v in items)
    kind = type_kind(ftype)
    if kind == "numeric":
        if ftype == "DOUBLE":
            try:
                return float(value)
            except (TypeError, ValueError):
                raise EventError(f"{name}: {value!r} is not a number") from None
        return _to_int(name, value)
    if kind == "bool":
        return _to_bool(name, value)
    if kind == "ip":
        return _to_ip(name, value, net=ftype.endswith("NET"))
    if kind == "buffer":
        return value if isinstance(value, bytes) else to_text(value).encode("utf-8", "surrogateescape")
    if isinstance(value, (list, tuple)):
        return " ".join(to_text(v) for v in value)
    return to_text(value)


# ---------------------------------------------------------------- time


def _rawtime_of(value: Any) -> int:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, _dt.datetime):
        stamp = value if value.tzinfo else value.replace(tzinfo=_dt.UTC)
        return int(stamp.timestamp()) * 1_000_000_000 + stamp.microsecond * 1000
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    frac_ns = 0
    main = text
    if "." in text:  # keep nanoseconds that datetime cannot hold
        main, _, rest = text.partition(".")
        digits = ""
        for c in rest:
            if not c.isdigit():
                break
            digits += c
        tail = rest[len(digits) :]
        frac_ns = int((digits + "000000000")[:9])
        main += tail
    try:
        stamp = _dt.datetime.fromisoformat(main.replace("Z", "+00:00"))
    except ValueError:
        raise EventError(f"evt.time: {value!r} is not a timestamp (ISO 8601 or nanoseconds)") from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=_dt.UTC)
    return int(stamp.timestamp()) * 1_000_000_000 + frac_ns


def format_time(ns: int, kind: str = "evt.time", tz: _dt.tzinfo = _dt.UTC) -> str:
    """Falco's renderings of a timestamp (``%evt.time`` is ``HH:MM:SS.nnnnnnnnn`` in local time; UTC here)."""
    secs, frac = divmod(ns, 1_000_000_000)
    stamp = _dt.datetime.fromtimestamp(secs, tz)
    if kind == "evt.time":
        return f"{stamp:%H:%M:%S}.{frac:09d}"
    if kind == "evt.time.s":
        return f"{stamp:%H:%M:%S}"
    if kind == "evt.datetime":
        return f"{stamp:%Y-%m-%d %H:%M:%S}.{frac:09d}"
    if kind == "evt.datetime.s":
        return f"{stamp:%Y-%m-%d %H:%M:%S}"
    if kind == "evt.time.iso8601":
        utc = _dt.datetime.fromtimestamp(secs, _dt.UTC)
        return f"{utc:%Y-%m-%dT%H:%M:%S}.{frac:09d}Z"
    raise KeyError(kind)


TIME_FIELDS = ("evt.time", "evt.time.s", "evt.datetime", "evt.datetime.s", "evt.time.iso8601")


# ---------------------------------------------------------------- building an event


def _ancestor(entry: Any, index: int) -> dict[str, Any]:
    if isinstance(entry, Mapping):
        out = {
            k: v for k, v in entry.items() if k in ("name", "exe", "exepath", "cmdline", "args", "env", "pid")
        }
    else:
        out = {"name": to_text(entry)}
    if "name" not in out:
        source = out.get("exepath") or out.get("exe")
        if source is None:
            raise EventError(f"proc.ancestors[{index}] needs a name")
        out["name"] = posixpath.basename(to_text(source))
    out["name"] = to_text(out["name"])[:PROC_NAME_MAX]
    if isinstance(out.get("args"), (list, tuple)):
        out["args"] = " ".join(to_text(a) for a in out["args"])
    if "cmdline" not in out:
        out["cmdline"] = out["name"] + (" " + to_text(out["args"]) if out.get("args") else "")
    if "exe" not in out:
        out["exe"] = to_text(out.get("exepath", out["name"]))
    if "pid" in out:
        out["pid"] = _to_int(f"proc.ancestors[{index}].pid", out["pid"])
    return out


def _flag_value(text: str) -> int:
    total = 0
    for part in text.replace(" ", "").split("|"):
        if not part:
            continue
        if part in OPEN_FLAGS:
            total |= OPEN_FLAGS[part]
        elif part.isdigit():
            total |= int(part)
    return total


def _parse_tuple(text: str) -> tuple[str, int, str, int] | None:
    """``cip:cport->sip:sport`` (IPv6 addresses may be bracketed)."""
    if "->" not in text:
        return None
    left, _, right = text.partition("->")
    try:
        cip, _, cport = left.rpartition(":")
        sip, _, sport = right.rpartition(":")
        return cip.strip("[]"), int(cport), sip.strip("[]"), int(sport)
    except ValueError:
        return None


def event_from_mapping(data: Mapping[str, Any], *, num: int | None = None) -> Event:
    """Build an Event from a flat mapping of field names (see the module docstring and
    docs/falco-events.md)."""
    if not isinstance(data, Mapping):
        raise EventError("an event must be a mapping of field names to values")
    ev = Event()
    raw_args: dict[str, Any] = {}
    raw_rawargs: dict[str, Any] = {}
    for key, value in data.items():
        if not isinstance(key, str):
            raise EventError(f"field names must be strings, not {key!r}")
        if value is None:
            continue  # an explicit null is "no value"
        if key.startswith("_") or "." not in key:
            continue  # metadata (name, description, expect ...) is not part of the event
        if key == "evt.arg" or key == "evt.rawarg":
            if not isinstance(value, Mapping):
                raise EventError(f"{key} must be a mapping of argument names to values")
            (raw_args if key == "evt.arg" else raw_rawargs).update({str(k): v for k, v in value.items()})
            continue
        if key in ("proc.ancestors", "proc.env"):
            ev["@" + key] = value
            continue
        found = split_name(key.partition("[")[0], _bracket_arg(key))
        if found is None:
            raise EventError(f"unknown field '{key}'")
        info, arg = found
        if info.name == "evt.arg" and arg is not None:
            raw_args[arg] = value
            continue
        if info.name == "evt.rawarg" and arg is not None:
            raw_rawargs[arg] = value
            continue
        if info.name in TIME_FIELDS or info.name == "evt.rawtime":
            ev["evt.rawtime"] = _rawtime_of(value)
            continue
        if info.name == "proc.args" and arg is None:
            items = list(value) if isinstance(value, (list, tuple)) else None
            if items is not None:
                ev["@argv"] = tuple(to_text(a) for a in items)
                ev["proc.args"] = " ".join(ev["@argv"])
            else:
                ev["proc.args"] = to_text(value)
            continue
        name = info.name if arg is None else f"{info.name}[{arg}]"
        ev[name] = convert(name, info.type, value, info.is_list)
    _derive(ev, raw_args, raw_rawargs, num)
    return ev


def _bracket_arg(key: str) -> str | None:
    if "[" in key and key.endswith("]"):
        return key[key.index("[") + 1 : -1]
    return None


def _derive(ev: Event, raw_args: dict[str, Any], raw_rawargs: dict[str, Any], num: int | None) -> None:
    evtype = _derive_event_header(ev, num)
    _derive_process(ev)
    _derive_ancestors(ev)
    _derive_env(ev)
    _derive_user_and_container(ev)
    fdname = _derive_fd(ev, evtype)
    _derive_event_args(ev, evtype, fdname, raw_args, raw_rawargs)


def _derive_event_header(ev: Event, num: int | None) -> str:
    """Check ``evt.type`` and fill the ``evt.*`` fields every event has; returns the event type."""
    evtype = ev.get("evt.type")
    if evtype is None:
        raise EventError("an event needs evt.type (for example execve or openat)")
    if evtype not in EVENTS:
        raise EventError(f"unknown event type '{evtype}'")
    if EVENTS[evtype]["section"] == "Syscall events":
        ev.setdefault("syscall.type", evtype)
    ev.setdefault("evt.dir", "<")
    ev.setdefault("evt.source", "syscall")
    ev.setdefault("evt.num", num if num is not None else 1)
    ev.setdefault("evt.rawtime", 0)
    ev.setdefault("evt.res", "SUCCESS")
    ev.setdefault("evt.failed", ev["evt.res"] != "SUCCESS")
    return evtype


def _derive_process(ev: Event) -> None:
    """The process's name, exe and command line from what was given, and its argv one by one."""
    if "proc.name" not in ev:
        source = ev.get("proc.exepath") or ev.get("proc.exe")
        if source:
            ev["proc.name"] = posixpath.basename(source)
    if "proc.name" in ev:
        ev["proc.name"] = ev["proc.name"][:PROC_NAME_MAX]
        ev.setdefault("proc.exe", ev.get("proc.exepath", ev["proc.name"]))
        args = ev.get("proc.args", "")
        ev.setdefault("proc.cmdline", ev["proc.name"] + (" " + args if args else ""))
        ev.setdefault("proc.args", "")
    ev.setdefault("proc.tty", 0)
    for field, own in SELF_FIELDS.items():
        if own in ev:
            ev[f"{field}[0]"] = ev[own]
    argv = ev.get("@argv") or tuple(ev.get("proc.args", "").split())
    for i, arg_text in enumerate(argv):
        ev[f"proc.args[{i}]"] = arg_text


def _derive_ancestors(ev: Event) -> None:
    """``proc.aname[i]`` and friends from ``proc.ancestors`` (or from the ``proc.p*`` fields alone), and
    the parent's fields from the first ancestor."""
    ancestors_in = ev.pop("@proc.ancestors", None)
    ancestors: list[dict[str, Any]] = []
    if ancestors_in is not None:
        if not isinstance(ancestors_in, (list, tuple)):
            raise EventError("proc.ancestors must be a list, parent first")
        ancestors = [_ancestor(a, i) for i, a in enumerate(ancestors_in)]
    elif any(f in ev for f in PARENT_FIELDS):
        ancestors = [_ancestor({k: ev[f] for f, k in PARENT_FIELDS.items() if f in ev}, 0)]
    if not ancestors:
        return
    ev["@ancestors"] = tuple(ancestors)
    for i, anc in enumerate(ancestors, start=1):
        for field, key in ANCESTOR_KEYS.items():
            if key in anc:
                ev[f"{field}[{i}]"] = anc[key]
    for field, key in PARENT_FIELDS.items():
        if key in ancestors[0]:
            ev.setdefault(field, ancestors[0][key])
    if "proc.pname" in ev:
        ev["proc.pname"] = ev["proc.pname"][:PROC_NAME_MAX]


def _derive_env(ev: Event) -> None:
    """``proc.env`` given as a mapping, a list or one string: ``proc.env[NAME]`` and the joined text."""
    env = ev.pop("@proc.env", None)
    if env is None:
        return
    if isinstance(env, Mapping):
        env_map = {str(k): to_text(v) for k, v in env.items()}
    else:
        items = env if isinstance(env, (list, tuple)) else str(env).split()
        env_map = dict(str(i).partition("=")[::2] for i in items)
    ev["@env"] = env_map
    for k, v in env_map.items():
        ev[f"proc.env[{k}]"] = v
    ev["proc.env"] = " ".join(f"{k}={v}" for k, v in env_map.items())


def _derive_user_and_container(ev: Event) -> None:
    """root's uid and name from each other; ``container.id: host`` unless given, and the short id."""
    if "user.uid" in ev and "user.name" not in ev and ev["user.uid"] == 0:
        ev["user.name"] = "root"
    if "user.name" in ev and "user.uid" not in ev and ev["user.name"] == "root":
        ev["user.uid"] = 0
    ev.setdefault("container.id", "host")
    if ev["container.id"] == "host":
        ev.setdefault("container.name", "host")
    else:
        ev.setdefault("container.full_id", ev["container.id"])
        ev["container.id"] = ev["container.id"][:12]


def _derive_fd(ev: Event, evtype: str) -> str | None:
    """The file descriptor's type, number, directory/filename or network endpoints from ``fd.name``;
    returns ``fd.name`` (None when the event has none)."""
    fdname = ev.get("fd.name")
    if fdname is None:
        return None
    if "fd.typechar" not in ev:
        ev["fd.typechar"] = _fd_typechar(ev, fdname)
    ev.setdefault("fd.type", TYPECHAR_TYPES.get(ev["fd.typechar"], "unknown"))
    ev.setdefault("fd.num", -1 if ev["evt.failed"] else 3)
    if ev["fd.typechar"] in ("f", "d"):
        directory, filename = posixpath.split(fdname)
        ev.setdefault("fd.directory", directory or "/")
        ev.setdefault("fd.filename", filename)
    elif ev["fd.typechar"] in ("4", "6"):
        _derive_net(ev, fdname, evtype)
    return fdname


def _fd_typechar(ev: Event, fdname: str) -> str:
    """From ``fd.type`` when given, else a socket for ``ip:port->ip:port``, else a file."""
    if "fd.type" in ev and ev["fd.type"] in TYPE_TYPECHARS:
        return TYPE_TYPECHARS[ev["fd.type"]]
    if _parse_tuple(fdname):
        return "6" if fdname.count(":") > 3 else "4"
    return "f"


def _derive_event_args(
    ev: Event, evtype: str, fdname: str | None, raw_args: dict[str, Any], raw_rawargs: dict[str, Any]
) -> None:
    """The arguments an open or exec carries by default, then ``evt.arg.*`` and the open's read/write."""
    if evtype in OPEN_EVENTS:
        if fdname is not None:
            raw_args.setdefault("name", fdname)
            raw_args.setdefault("fd", ev.get("fd.num"))
        if "flags" not in raw_args and "flags" not in raw_rawargs:
            raw_args["flags"] = "O_RDONLY"
    if evtype in EXEC_EVENTS and "proc.exe" in ev:
        raw_args.setdefault("exe", ev["proc.exe"])
    _derive_args(ev, evtype, raw_args, raw_rawargs)
    if evtype in OPEN_EVENTS:
        flags = ev["@rawarg"].get("flags", 0)
        if isinstance(flags, int):
            ev.setdefault("evt.is_open_read", bool(flags & OPEN_FLAGS["O_RDONLY"]))
            ev.setdefault("evt.is_open_write", bool(flags & OPEN_FLAGS["O_WRONLY"]))
            ev.setdefault("evt.is_open_exec", False)


def _derive_net(ev: Event, fdname: str, evtype: str) -> None:
    parsed = _parse_tuple(fdname)
    if parsed is None:
        return
    cip, cport, sip, sport = parsed
    try:
        cip_v, sip_v = ipaddress.ip_address(cip), ipaddress.ip_address(sip)
    except ValueError:
        return
    ev.setdefault("fd.cip", cip_v)
    ev.setdefault("fd.sip", sip_v)
    ev.setdefault("fd.cport", cport)
    ev.setdefault("fd.sport", sport)
    server = evtype in SERVER_EVENTS
    ev.setdefault("fd.lip", sip_v if server else cip_v)
    ev.setdefault("fd.rip", cip_v if server else sip_v)
    ev.setdefault("fd.lport", sport if server else cport)
    ev.setdefault("fd.rport", cport if server else sport)
    ev.setdefault("fd.l4proto", "tcp")
    ev.setdefault("fd.is_server", server)


@functools.lru_cache(maxsize=512)
def _param_table(evtype: str) -> tuple[tuple[str, ...], dict[str, str], dict[str, int]]:
    """(names in order, name -> type, name -> position) of an event type's parameters, once per type."""
    listed = event_params(evtype)
    return (
        tuple(p for p, _ in listed),
        dict(listed),
        {p: i for i, (p, _) in reversed(list(enumerate(listed)))},
    )


def _derive_args(ev: Event, evtype: str, raw_args: dict[str, Any], raw_rawargs: dict[str, Any]) -> None:
    names, params, position = _param_table(evtype)
    args: dict[str, str] = {}
    rawargs: dict[str, Any] = {}
    for pname, value in raw_rawargs.items():
        ptype = params.get(pname) or ALL_PARAMS.get(pname, "CHARBUF")
        rawargs[pname] = _raw_param(pname, ptype, value)
    for pname, value in raw_args.items():
        if value is None:
            continue
        text = to_text(value)
        args[pname] = text
        if pname not in rawargs:
            ptype = params.get(pname) or ALL_PARAMS.get(pname, "CHARBUF")
            rawargs[pname] = _raw_param(pname, ptype, text, rendered=True)
    for pname, value in rawargs.items():
        args.setdefault(pname, to_text(value))
    ev["@arg"] = args
    ev["@rawarg"] = rawargs
    # Plain keys for what conditions read by name or index, so compiled filters use one dict lookup.
    for pname, text in args.items():
        ev[f"evt.arg.{pname}"] = text
    for pname, raw in rawargs.items():
        ev[f"evt.rawarg.{pname}"] = raw
    for i, pname in enumerate(names):
        if pname in args:
            ev[f"evt.arg[{i}]"] = args[pname]
    if args:
        last = len(names)
        ev.setdefault(
            "evt.args",
            " ".join(f"{p}={args[p]}" for p in sorted(args, key=lambda p: (position.get(p, last), p))),
        )


def _raw_param(pname: str, ptype: str, value: Any, rendered: bool = False) -> Any:
    kind = type_kind(ptype)
    if ptype.startswith("FLAGS") or ptype.startswith("ENUMFLAGS") or ptype == "MODE":
        if isinstance(value, int):
            return value
        text = to_text(value)
        try:
            return int(text, 0)
        except ValueError:
            return _flag_value(text)
    if kind == "numeric":
        try:
            return _to_int(pname, value)
        except EventError:
            if rendered:
                return to_text(value)
            raise
    if kind == "buffer":
        return value if isinstance(value, bytes) else to_text(value).encode("utf-8", "surrogateescape")
    return to_text(value)


# ---------------------------------------------------------------- reading fields

# Internal getters return None for "no value" (events never store None), which lets compiled filters
# test presence cheaply; the public get() turns that into MISSING.
Getter = Callable[[Event], Any]


def _plain(name: str) -> Getter:
    return operator.methodcaller("get", name)  # ev.get(name) without a Python frame (outputs read many)


def _time_getter(kind: str) -> Getter:
    def get_time(ev: Event) -> Any:
        ns = ev.get("evt.rawtime")
        return None if ns is None else format_time(ns, kind)

    return get_time


def _ancestor_getter(field: str, arg: str | None) -> tuple[Getter, bool]:
    """(getter, is_multi): with no argument the getter returns every ancestor's value (parent first)."""
    key = ANCESTOR_KEYS[field]
    self_field = {
        "name": "proc.name",
        "exe": "proc.exe",
        "exepath": "proc.exepath",
        "cmdline": "proc.cmdline",
        "args": "proc.args",
        "env": "proc.env",
        "pid": "proc.pid",
    }[key]
    if arg is None:

        def get_all(ev: Event) -> Any:
            return tuple(a[key] for a in ev.get("@ancestors", ()) if key in a)

        return get_all, True
    try:
        index = int(arg)
    except ValueError:
        index = -1

    def get_nth(ev: Event) -> Any:
        if index == 0:
            return ev.get(self_field)
        if index < 0:
            return None
        ancestors = ev.get("@ancestors", ())
        if index > len(ancestors):
            return None
        return ancestors[index - 1].get(key)

    return get_nth, False


def plain_key(name: str, arg: str | None) -> str | None:
    """The event key holding this field's value when it is a plain entry (None when it is computed)."""
    found = split_name(name, arg)
    if found is None:
        return None
    info, arg = found
    fname = info.name
    if fname in TIME_FIELDS or fname in ("evt.rawtime.s", "evt.rawtime.ns", "evt.type.is"):
        return None
    if fname in ANCESTOR_FIELDS:
        if arg is None:
            return None
        return f"{fname}[{int(arg)}]" if arg.isdigit() else None
    if fname in ("evt.arg", "evt.rawarg"):
        if not arg:
            return None
        if arg.isdigit():
            return f"evt.arg[{int(arg)}]" if fname == "evt.arg" else None
        return f"{fname}.{arg}"
    if fname == "proc.args" and arg is not None:
        return f"proc.args[{int(arg)}]" if arg.isdigit() else None
    if info.is_list:
        return None
    return fname if arg is None else f"{fname}[{arg}]"


def getter(name: str, arg: str | None) -> tuple[Getter, str, bool]:
    """(getter, libsinsp type, is_multi) for a field as written; raises KeyError when unknown.

    ``is_multi`` marks fields that yield several values (``proc.aname`` without argument, list fields):
    the getter then returns a tuple."""
    found = split_name(name, arg)
    if found is None:
        raise KeyError(name)
    info, arg = found
    fname = info.name
    if fname in ANCESTOR_FIELDS:
        get, multi = _ancestor_getter(fname, arg)
        return get, info.type, multi
    if fname == "evt.arg":
        return _arg_getter(arg or "", raw=False), "CHARBUF", False
    if fname == "evt.rawarg":
        ptype = ALL_PARAMS.get(arg or "", "CHARBUF")
        return _arg_getter(arg or "", raw=True), ptype, False
    if fname == "evt.type.is":
        target = arg or ""
        return (lambda ev: 1 if ev.get("evt.type") == target else 0), info.type, False
    if fname in TIME_FIELDS:
        return _time_getter(fname), info.type, False
    if fname == "evt.rawtime.s":
        return (lambda ev: ev.get("evt.rawtime", 0) // 1_000_000_000), info.type, False
    if fname == "evt.rawtime.ns":
        return (lambda ev: ev.get("evt.rawtime", 0) % 1_000_000_000), info.type, False
    if fname == "proc.args" and arg is not None:
        return _argv_getter(arg), info.type, False
    if fname == "proc.env" and arg is not None:
        key = arg
        return (lambda ev: ev.get("@env", {}).get(key)), info.type, False
    if fname == "fd.types":
        return _plain("fd.types"), info.type, True
    if arg is not None:
        return _plain(f"{fname}[{arg}]"), info.type, info.is_list
    return _plain(fname), info.type, info.is_list


def _argv_getter(arg: str) -> Getter:
    try:
        index = int(arg)
    except ValueError:
        index = -1

    def get_argv(ev: Event) -> Any:
        argv = ev.get("@argv")
        if argv is None:
            args = ev.get("proc.args")
            argv = tuple(args.split()) if args else ()
        return argv[index] if 0 <= index < len(argv) else None

    return get_argv


def _arg_getter(pname: str, raw: bool) -> Getter:
    index = int(pname) if pname.isdigit() else None
    store = "@rawarg" if raw else "@arg"

    def get_arg(ev: Event) -> Any:
        values = ev.get(store, {})
        if index is not None:
            params = event_params(ev.get("evt.type", ""))
            if index >= len(params):
                return None
            return values.get(params[index][0])
        return values.get(pname)

    return get_arg


def apply_transformer(name: str, value: Any) -> Any:
    """One unary transformer on one value (None, "no value", stays None)."""
    if value is None:
        return None
    if name == "tolower":
        return value.lower() if isinstance(value, str) else value
    if name == "toupper":
        return value.upper() if isinstance(value, str) else value
    if name == "b64":
        data = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else bytes(value)
        data += b"=" * (-len(data) % 4)  # libsinsp decodes unpadded base64 too
        try:
            return base64.b64decode(data, validate=False).decode("utf-8", "surrogateescape")
        except ValueError:
            return None
    if name == "basename":
        text = to_text(value)
        return "" if text.endswith("/") else posixpath.basename(text)
    if name == "len":
        return len(value) if isinstance(value, (str, bytes, tuple)) else len(to_text(value))
    raise ValueError(f"unknown transformer {name}")


def get(event: Event, ref: FieldRef) -> Any:
    """A field's value as a condition sees it (argument and transformers applied), or MISSING."""
    read, _, multi = getter(ref.name, ref.arg)
    value = read(event)
    for t in reversed(ref.transformers):
        if multi and isinstance(value, tuple) and t != "len":
            value = tuple(apply_transformer(t, v) for v in value)
        else:
            value = apply_transformer(t, value)
    return MISSING if value is None or (multi and value == ()) else value


def field_names() -> list[str]:
    return sorted(FIELDS)
