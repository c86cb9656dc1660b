"""Falco's ``rule_loader_collector``: the lists, macros and rules read so far, as the reader defines,
appends to, overrides and enables them (each keeps its definition index and the index at which it was last
changed, which decides which macros and lists it may see)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import rule_loading_messages as M
from .ast import Check, FieldRef, Transform
from .results import Context, FileResult, Problem

PRIORITIES = ("Emergency", "Alert", "Critical", "Error", "Warning", "Notice", "Informational", "Debug")
_PRIORITY_BY_NAME = {p.lower(): i for i, p in enumerate(PRIORITIES)} | {"info": 6}
_STR_OPS = (
    "==",
    "=",
    "!=",
    "contains",
    "icontains",
    "bcontains",
    "startswith",
    "bstartswith",
    "endswith",
    "glob",
    "iglob",
    "regex",
)
_OPERATORS = frozenset(_STR_OPS + ("<=", "<", ">=", ">", "in", "intersects", "pmatch", "exists"))
LIST_OPERATORS = frozenset({"in", "intersects", "pmatch"})
_MODIFIERS = ("oneof", "anyof", "allof")


class LoadError(Exception):
    """Raised inside the loader to stop a file at its first error (Falco's ``rule_load_exception``)."""

    def __init__(self, code: str, message: str, ctx: Context):
        super().__init__(message)
        self.code = code
        self.message = message
        self.ctx = ctx


def throw(cond: bool, message: str, ctx: Context, code: str = "LOAD_ERR_YAML_VALIDATE") -> None:
    if cond:
        raise LoadError(code, message, ctx)


def warn(res: FileResult, code: str, message: str, ctx: Context) -> None:
    res.add(Problem(code, message, ctx, False))


def parse_priority(text: str) -> int | None:
    """Severity number (0 Emergency .. 7 Debug), case-insensitive, ``info`` accepted; None if invalid."""
    return _PRIORITY_BY_NAME.get(str(text).strip().lower())


@dataclass
class Entry:
    """An exception's fields/comps/values entry: a scalar ``item`` or a list of entries."""

    is_list: bool = False
    item: str = ""
    items: list[Entry] = field(default_factory=list)

    @property
    def is_valid(self) -> bool:
        return self.is_list or bool(self.item)


@dataclass
class ExceptionInfo:
    name: str
    ctx: Context
    fields: Entry = field(default_factory=Entry)
    comps: Entry = field(default_factory=Entry)
    values: list[Entry] = field(default_factory=list)


@dataclass
class ListInfo:
    name: str
    items: list[str]
    ctx: Context
    index: int = 0
    visibility: int = 0


@dataclass
class MacroInfo:
    name: str
    cond: str
    ctx: Context
    cond_ctx: Context
    index: int = 0
    visibility: int = 0


@dataclass
class RuleInfo:
    name: str
    ctx: Context
    cond: str = ""
    cond_ctx: Context | None = None
    output: str = ""
    output_ctx: Context | None = None
    desc: str = ""
    priority: int = 7
    source: str = "syscall"
    enabled: bool = True
    warn_evttypes: bool = True
    skip_if_unknown_filter: bool = False
    capture: bool = False
    capture_duration: int = 0
    tags: set[str] = field(default_factory=set)
    exceptions: list[ExceptionInfo] = field(default_factory=list)
    unknown_source: bool = False
    index: int = 0
    visibility: int = 0


@dataclass
class RuleUpdate:
    name: str
    ctx: Context
    values: dict[str, Any] = field(default_factory=dict)
    cond_ctx: Context | None = None


class Collector:
    """Everything collected from the files read so far (one engine for all ``-r`` files)."""

    def __init__(self, sources: frozenset[str]) -> None:
        self.sources = sources
        self.lists: dict[str, ListInfo] = {}
        self.macros: dict[str, MacroInfo] = {}
        self.rules: dict[str, RuleInfo] = {}
        self.cur_index = 0
        self.required_engine: tuple[int, int, int] | None = None
        self.required_plugins: list[tuple[list[tuple[str, str]], Context]] = []

    def next_index(self) -> int:
        idx = self.cur_index
        self.cur_index += 1
        return idx

    def define(self, infos: dict[str, Any], info: Any) -> None:
        idx = self.next_index()
        prev = infos.get(info.name)
        if prev is not None:
            info.index, info.visibility = prev.index, idx
        else:
            info.index, info.visibility = idx, idx
        infos[info.name] = info  # dicts keep the first insertion's position: a redefinition stays in place

    def validate_exception(self, ex: ExceptionInfo, source_known: bool) -> None:
        ctx = ex.ctx
        if ex.fields.is_list:
            if not ex.comps.is_valid:
                ex.comps = Entry(True, "", [Entry(False, "=") for _ in ex.fields.items])
            throw(
                not ex.comps.is_list or len(ex.fields.items) != len(ex.comps.items),
                "Fields and comps lists must have equal length",
                ctx,
                "LOAD_ERR_VALIDATE",
            )
            for comp in ex.comps.items:
                comp.item = " ".join(comp.item.split())
                throw(
                    not is_operator(comp.item),
                    f"'{comp.item}' is not a supported comparison operator",
                    ctx,
                    "LOAD_ERR_VALIDATE",
                )
            if source_known:
                for f in ex.fields.items:
                    throw(
                        not is_field_defined(f.item),
                        f"'{f.item}' is not a supported filter field",
                        ctx,
                        "LOAD_ERR_VALIDATE",
                    )
        else:
            if not ex.comps.is_valid:
                ex.comps = Entry(False, "in")
            throw(ex.comps.is_list, M.MSG_FIELDS_AND_COMPS_MUST_BOTH_BE, ctx, "LOAD_ERR_VALIDATE")
            ex.comps.item = " ".join(ex.comps.item.split())
            throw(
                ex.comps.item not in ("in", "pmatch", "intersects"),
                "When fields is a single value, comps must be one of (in, pmatch, intersects)",
                ctx,
                "LOAD_ERR_VALIDATE",
            )
            if source_known:
                throw(
                    not is_field_defined(ex.fields.item),
                    f"'{ex.fields.item}' is not a supported filter field",
                    ctx,
                    "LOAD_ERR_VALIDATE",
                )

    def define_rule(self, info: RuleInfo, res: FileResult) -> None:
        prev = self.rules.get(info.name)
        throw(
            prev is not None and prev.source != info.source,
            M.MSG_RULE_HAS_BEEN_RE_DEFINED_WITH,
            info.ctx,
            "LOAD_ERR_VALIDATE",
        )
        if info.source not in self.sources:
            info.unknown_source = True
            warn(res, "LOAD_UNKNOWN_SOURCE", f"Unknown source {info.source}, skipping", info.ctx)
        for ex in info.exceptions:
            throw(
                not ex.fields.is_valid,
                M.MSG_RULE_EXCEPTION_ITEM_MUST_HAVE_FIELDS,
                ex.ctx,
                "LOAD_ERR_VALIDATE",
            )
            self.validate_exception(ex, not info.unknown_source)
        self.define(self.rules, info)

    def append_rule(self, upd: RuleUpdate) -> None:
        prev = self.rules.get(upd.name)
        throw(prev is None, M.ERROR_NO_PREVIOUS_RULE_APPEND, upd.ctx, "LOAD_ERR_VALIDATE")
        throw(not upd.values, M.MSG_APPENDED_RULE_MUST_HAVE_EXCEPTIONS_OR, upd.ctx, "LOAD_ERR_VALIDATE")
        v = upd.values
        for key in ("condition", "output", "desc"):
            if v.get(key):
                attr = "cond" if key == "condition" else key
                setattr(prev, attr, getattr(prev, attr) + " " + v[key])
        if "tags" in v:
            prev.tags |= v["tags"]
        for ex in v.get("exceptions", []):
            old = next((e for e in prev.exceptions if e.name == ex.name), None)
            if old is None:
                throw(
                    not ex.fields.is_valid,
                    M.MSG_RULE_EXCEPTION_MUST_HAVE_FIELDS_PROPERTY,
                    ex.ctx,
                    "LOAD_ERR_VALIDATE",
                )
                throw(
                    not ex.values, M.MSG_RULE_EXCEPTION_MUST_HAVE_VALUES_PROPERTY, ex.ctx, "LOAD_ERR_VALIDATE"
                )
                self.validate_exception(ex, not prev.unknown_source)
                prev.exceptions.append(ex)
            else:
                throw(
                    ex.fields.is_valid, M.MSG_CAN_NOT_APPEND_EXCEPTION_FIELDS_TO, ex.ctx, "LOAD_ERR_VALIDATE"
                )
                throw(ex.comps.is_valid, M.MSG_CAN_NOT_APPEND_EXCEPTION_COMPS_TO, ex.ctx, "LOAD_ERR_VALIDATE")
                old.values = old.values + ex.values
        prev.visibility = self.next_index()

    def replace_rule(self, upd: RuleUpdate) -> None:
        prev = self.rules.get(upd.name)
        throw(prev is None, M.ERROR_NO_PREVIOUS_RULE_REPLACE, upd.ctx, "LOAD_ERR_VALIDATE")
        throw(not upd.values, M.MSG_THE_RULE_MUST_HAVE_AT_LEAST, upd.ctx, "LOAD_ERR_VALIDATE")
        attrs = {"condition": "cond", "skip-if-unknown-filter": "skip_if_unknown_filter"}
        for key, val in upd.values.items():
            if key == "exceptions":
                for ex in val:
                    throw(not ex.fields.is_valid, M.MSG_NO_FIELDS_KEY, ex.ctx)
                    self.validate_exception(ex, not prev.unknown_source)
            setattr(prev, attrs.get(key, key), val)
        if upd.cond_ctx is not None:
            prev.cond_ctx = upd.cond_ctx
        prev.visibility = self.next_index()


def is_operator(op: str) -> bool:
    if op in _OPERATORS:
        return True
    parts = op.split(" ")
    return len(parts) == 2 and parts[0] in _STR_OPS and parts[1] in _MODIFIERS


def is_field_defined(text: str) -> bool:
    """Is ``text`` (a field, ``f[arg]`` or a transformer over one) a field the syscall source has?"""
    from .fields import lookup
    from .parser import ParseError, parse

    try:
        node = parse(f"{text} exists")
    except (ParseError, RecursionError):
        return False
    if not isinstance(node, Check) or node.value is not None:
        return False
    refs = [node.field] if isinstance(node.field, FieldRef) else transform_fields(node.field)
    return bool(refs) and all(lookup(r.name, r.arg) is not None for r in refs)


def transform_fields(t: Transform) -> list[FieldRef]:
    out: list[FieldRef] = []
    for a in t.args:
        if isinstance(a, FieldRef):
            out.append(a)
        elif isinstance(a, Transform):
            out.extend(transform_fields(a))
    return out
