"""Falco's rules-file loader: lists, macros and rules from one or more files into one engine.

A port of Falco's ``rule_loader_reader`` (YAML -> items), ``rule_loader_collector`` (define, append,
override, enable) and ``rule_loader_compiler`` (list expansion, macro resolution, exceptions, output and
condition compilation, warnings). Files load in order as ``falco -r a -r b`` does: each file is read
into the shared collector and then *everything collected so far* is compiled, so the errors and
warnings of a file are those Falco reports for it (an unused macro of the default file is reported with
the default file; a local file that breaks a default rule gets the error).

No I/O: callers pass ``(name, text)`` pairs. Nothing here raises on bad input: every problem becomes a
:class:`~grader.engines.falco.results.Problem` with Falco's code, item and position.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from grader import safeyaml

from . import results as R
from .ast import (
    MAX_EXPANDED_NODES,
    And,
    Check,
    FieldRef,
    Identifier,
    Node,
    Not,
    Or,
    Transform,
    expanded_size,
    to_text,
)
from .results import Context, FileResult, Problem

ENGINE_VERSION = (0, 62, 0)  # Falco 0.44's engine
DEFAULT_PLUGINS = {"container": (0, 6, 0)}  # the default config loads the container plugin
KNOWN_SOURCES = frozenset({"syscall"})
MAX_RULES_BYTES = 4 * 1024 * 1024  # upstream rules files are < 100 KB; bigger is not a rules file to grade
# Limits on the work one rules set may cause (Falco has none; its own rules stay far below each: 33 list
# items, 1,190-character conditions, 124 nodes per expanded rule). A learner's file past them is refused
# with a message that names the item, instead of running for minutes (a macro used twice by each of twenty
# macros expands to 2**20 checks).
MAX_YAML_VALUES = 50_000  # YAML nodes in one rules file
MAX_LIST_ITEMS = 10_000  # items of one list, nested lists expanded
MAX_CONDITION_CHARS = 64 * 1024  # a condition as written (appends included)
MAX_EXPANDED_CHARS = 256 * 1024  # a condition once its lists are substituted
MAX_CONDITION_NODES = MAX_EXPANDED_NODES  # and/or/not/checks of a condition once its macros are expanded
MAX_TOTAL_NODES = 20_000  # the same, summed over every rule loaded
_SCAN_ABOVE = 64 * 1024  # smaller files cannot hold MAX_YAML_VALUES nodes

PRIORITIES = ("Emergency", "Alert", "Critical", "Error", "Warning", "Notice", "Informational", "Debug")
_PRIORITY_BY_NAME = {p.lower(): i for i, p in enumerate(PRIORITIES)} | {"info": 6}

WARNING_APPEND = ("'append' key is deprecated. Add an 'append' entry (e.g. 'condition: append') under "
                  "'override' instead.")
WARNING_ENABLED = ("The standalone 'enabled' key usage is deprecated. The correct approach requires also a "
                   "'replace' entry under the 'override' key (i.e. 'enabled: replace').")
ERROR_OVERRIDE_APPEND = ("Keys 'override' and 'append: true' cannot be used together. Add an 'append' entry "
                         "(e.g. 'condition: append') under 'override' instead.")
ERROR_NO_PREVIOUS_LIST = "List uses 'append' or 'override.items: append' but no list by that name already exists"
ERROR_NO_PREVIOUS_MACRO = ("Macro uses 'append' or 'override.condition: append' but no macro by that name "
                           "already exists")
ERROR_NO_PREVIOUS_RULE_APPEND = ("Rule uses 'append' or 'override.<key>: append' but no rule by that name "
                                 "already exists")
ERROR_NO_PREVIOUS_RULE_REPLACE = ("An 'override.<key>: replace' to a rule was requested but no rule by that "
                                  "name already exists")
RGX_IDENTIFIER = "([a-zA-Z]+[a-zA-Z0-9_]*)"
RGX_BARESTR = "([^()\"'[:space:]=,]+)"
_RE_IDENTIFIER = re.compile(r"[a-zA-Z]+[a-zA-Z0-9_]*")
_RE_BARESTR = re.compile(r"[^()\"' \t\n\v\f\r=,]+")

_STR_OPS = ("==", "=", "!=", "contains", "icontains", "bcontains", "startswith", "bstartswith", "endswith",
            "glob", "iglob", "regex")
_OPERATORS = frozenset(_STR_OPS + ("<=", "<", ">=", ">", "in", "intersects", "pmatch", "exists"))
_LIST_OPERATORS = frozenset({"in", "intersects", "pmatch"})
_MODIFIERS = ("oneof", "anyof", "allof")

_KNOWN_KEYS = {
    "list": {"list", "items", "append", "override"},
    "macro": {"macro", "condition", "append", "override"},
    "rule": {"rule", "desc", "condition", "output", "priority", "source", "enabled", "tags", "exceptions",
             "warn_evttypes", "skip-if-unknown-filter", "capture", "capture_duration", "append", "override"},
}
_RULE_APPENDABLE = ("condition", "output", "desc", "tags", "exceptions")
_RULE_REPLACEABLE = ("condition", "output", "desc", "priority", "tags", "exceptions", "enabled", "warn_evttypes",
                     "skip-if-unknown-filter", "capture", "capture_duration")


class LoadError(Exception):
    """Raised inside the loader to stop a file at its first error (Falco's ``rule_load_exception``)."""

    def __init__(self, code: str, message: str, ctx: Context):
        super().__init__(message)
        self.code = code
        self.message = message
        self.ctx = ctx


def _throw(cond: bool, message: str, ctx: Context, code: str = "LOAD_ERR_YAML_VALIDATE") -> None:
    if cond:
        raise LoadError(code, message, ctx)


def parse_priority(text: str) -> int | None:
    """Severity number (0 Emergency .. 7 Debug), case-insensitive, ``info`` accepted; None if invalid."""
    return _PRIORITY_BY_NAME.get(str(text).strip().lower())


def _parse_version(text: str) -> tuple[int, int, int] | None:
    m = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", text.strip())
    return (int(m[1]), int(m[2]), int(m[3])) if m else None


def _version_text(v: tuple[int, int, int]) -> str:
    return ".".join(str(x) for x in v)


# ---------------------------------------------------------------------------------------------- YAML nodes

_NULL_TAG = "tag:yaml.org,2002:null"


def _is_map(node: Any) -> bool:
    return isinstance(node, yaml.MappingNode)


def _is_seq(node: Any) -> bool:
    return isinstance(node, yaml.SequenceNode)


def _is_null(node: Any) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == _NULL_TAG


def _is_scalar(node: Any) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag != _NULL_TAG


def _get(item: yaml.MappingNode, key: str) -> yaml.Node | None:
    for k, v in item.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return v
    return None


def _keys(item: yaml.MappingNode) -> list[tuple[str, yaml.Node]]:
    return [(k.value, k) for k, _ in item.value if isinstance(k, yaml.ScalarNode)]


def _ctx(parent: Context, node: yaml.Node, item_type: str, name: str = "") -> Context:
    m = node.start_mark
    return parent.child(item_type, name, m.line, m.column, m.index)


_TRUE = {"y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"}
_FALSE = {"n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"}


def _decode(item: yaml.MappingNode, key: str, kind: type, ctx: Context, optional: bool = False) -> Any:
    """yaml-cpp ``decode_val``: the scalar under ``key`` as str, bool or unsigned int."""
    val = _get(item, key)
    if val is None:
        _throw(not optional, f"Item has no mapping for key '{key}'", ctx)
        return None
    _throw(_is_null(val), f"Mapping for key '{key}' is empty", ctx)
    valctx = _ctx(ctx, val, R.VALUE_FOR, key)
    _throw(not isinstance(val, yaml.ScalarNode), "Value is not a scalar value", valctx)
    text = val.value
    _throw(text == "", "Value must be non-empty", valctx)
    if kind is bool:
        _throw(text not in _TRUE and text not in _FALSE, "Can't decode YAML scalar value", valctx)
        return text in _TRUE
    if kind is int:
        _throw(not text.isdigit() or int(text) > 0xFFFFFFFF, "Can't decode YAML scalar value", valctx)
        return int(text)
    return text


def _decode_seq(item: yaml.MappingNode, key: str, ctx: Context, optional: bool) -> list[str] | None:
    val = _get(item, key)
    if val is None:
        _throw(not optional, f"Item has no mapping for key '{key}'", ctx)
        return None
    valctx = _ctx(ctx, val, R.VALUE_FOR, key)
    _throw(not _is_seq(val), "Value is not a sequence", valctx)
    out = []
    for v in val.value:
        ictx = _ctx(valctx, v, R.LIST_ITEM)
        _throw(not _is_scalar(v), "sequence value is not scalar", ictx)
        out.append(v.value)
    return out


# ---------------------------------------------------------------------------------------------- collected items


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


# ---------------------------------------------------------------------------------------------- compiled output


@dataclass
class CompiledRule:
    """A rule as the engine runs it. ``condition`` is the text after appends and exceptions."""

    name: str
    desc: str
    condition: str
    ast: Node
    filter: Any  # CompiledFilter
    output: str
    output_format: Any  # outputs.OutputFormat
    priority: int
    source: str
    tags: tuple[str, ...]
    enabled: bool
    evttypes: frozenset[str] | None
    exception_fields: tuple[str, ...]
    capture: bool
    capture_duration: int
    file: str
    line: int

    @property
    def priority_name(self) -> str:
        return PRIORITIES[self.priority]

    @property
    def condition_compiled(self) -> str:
        return to_text(self.ast)


@dataclass
class CompiledMacro:
    name: str
    condition: str
    ast: Node
    used: bool
    file: str
    line: int


@dataclass
class CompiledList:
    name: str
    items: list[str]
    used: bool
    file: str
    line: int


@dataclass
class LoadResult:
    """Everything a set of rules files produced, in load order."""

    files: list[FileResult]
    rules: list[CompiledRule]
    macros: list[CompiledMacro]
    lists: list[CompiledList]
    required_engine_version: tuple[int, int, int] | None = None

    @property
    def successful(self) -> bool:
        return all(f.successful for f in self.files)

    @property
    def errors(self) -> list[Problem]:
        return [p for f in self.files for p in f.errors]

    @property
    def warnings(self) -> list[Problem]:
        return [p for f in self.files for p in f.warnings]

    @property
    def contents(self) -> dict[str, str]:
        return {f.name: f.content for f in self.files}

    def rule(self, name: str) -> CompiledRule | None:
        for r in self.rules:
            if r.name == name:
                return r
        return None

    def macro(self, name: str) -> CompiledMacro | None:
        for m in self.macros:
            if m.name == name:
                return m
        return None

    def list(self, name: str) -> CompiledList | None:
        for li in self.lists:
            if li.name == name:
                return li
        return None

    def engine(self, *, priority: str | int = "debug", rule_matching: str = "first"):
        from .engine import Engine

        return Engine(self.rules, priority=priority, rule_matching=rule_matching)


# ---------------------------------------------------------------------------------------------- the loader


class RulesLoader:
    """Load rules files one after the other into one engine, like repeated ``falco -r``."""

    def __init__(self, *, engine_version: tuple[int, int, int] = ENGINE_VERSION,
                 plugins: Mapping[str, tuple[int, int, int]] | None = None,
                 sources: Iterable[str] = KNOWN_SOURCES) -> None:
        self.engine_version = engine_version
        self.plugins = dict(DEFAULT_PLUGINS if plugins is None else plugins)
        self.sources = frozenset(sources)
        self.files: list[FileResult] = []
        self._lists: dict[str, ListInfo] = {}
        self._macros: dict[str, MacroInfo] = {}
        self._rules: dict[str, RuleInfo] = {}
        self._cur_index = 0
        self._required_engine: tuple[int, int, int] | None = None
        self._required_plugins: list[tuple[list[tuple[str, str]], Context]] = []
        self._parse_cache: dict[str, Node | Exception] = {}
        self._compile_cache: dict[Node, Any] = {}
        self._list_order: tuple[Any, ...] | None = None
        self._compiled: tuple[list[CompiledRule], list[CompiledMacro], list[CompiledList]] = ([], [], [])

    # ---- public
    def load(self, name: str, content: str | bytes) -> FileResult:
        res = FileResult(name, "")
        self.files.append(res)
        text = self._decode_content(name, content, res)
        if text is None:
            return res
        res.content = text
        if not self._read(name, text, res):
            return res
        self._compile(res)
        if res.successful:
            self._check_plugins(res)
        return res

    def result(self) -> LoadResult:
        rules, macros, lists = self._compiled
        return LoadResult(list(self.files), rules, macros, lists, self._required_engine)

    # ---- input checks
    def _decode_content(self, name: str, content: str | bytes, res: FileResult) -> str | None:
        root = Context.root(name)
        size = len(content)
        if size > MAX_RULES_BYTES:
            res.add(Problem("LOAD_ERR_FILE_READ", f"the rules file is {size / 1048576:.1f} MB; the grader reads "
                            f"rules files up to {MAX_RULES_BYTES // 1048576} MB (Falco's own files are under "
                            "100 KB)", root, True))
            return None
        if isinstance(content, bytes):
            try:
                content = content.decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                res.add(Problem("LOAD_ERR_YAML_PARSE", f"the rules file is not UTF-8 text (invalid byte 0x"
                                f"{content[exc.start]:02x} at offset {exc.start})", root, True))
                return None
        if "\x00" in content:
            res.add(Problem("LOAD_ERR_YAML_PARSE", "the rules file contains NUL bytes: it is binary, not YAML",
                            root, True))
            return None
        return content

    # ---- reader
    def _read(self, name: str, text: str, res: FileResult) -> bool:
        root = Context.root(name)
        if len(text) > _SCAN_ABOVE and _yaml_values_over(text, MAX_YAML_VALUES):
            res.add(Problem("LOAD_ERR_YAML_VALIDATE", f"the rules file holds more than {MAX_YAML_VALUES:,} YAML "
                            "values; the grader reads rules files up to that size (Falco's own default rules "
                            "file holds under 2,000)", root, True))
            return False
        docs = _compose_all(text, root, res)
        if docs is None:
            return False
        for doc in docs:
            if doc is None or _is_null(doc):
                continue
            try:
                _throw(not _is_map(doc) and not _is_seq(doc), "Rules content is not yaml", root)
                _throw(not _is_seq(doc), "Rules content is not yaml array of objects", root)
                for item in doc.value:
                    if not _is_null(item):
                        self._read_item(item, root, res)
            except LoadError as exc:
                res.add(Problem(exc.code, exc.message, exc.ctx, True))
                return False
            except RecursionError:
                res.add(Problem("LOAD_ERR_YAML_VALIDATE", "the rules content is nested too deeply", root, True))
                return False
        return True

    def _warn(self, res: FileResult, code: str, message: str, ctx: Context) -> None:
        res.add(Problem(code, message, ctx, False))

    def _unknown_keys(self, kind: str, item: yaml.MappingNode, ctx: Context, res: FileResult) -> None:
        for key, knode in _keys(item):
            if key not in _KNOWN_KEYS[kind]:
                self._warn(res, "LOAD_UNKNOWN_KEY", f"Unknown key '{key}'. The key will be ignored.",
                           _ctx(ctx, knode, R.VALUE_FOR, key))

    def _read_item(self, item: yaml.Node, parent: Context, res: FileResult) -> None:
        _throw(not _is_map(item), "Unexpected element type. Each element should be a yaml associative array.",
               _ctx(parent, item, R.RULES_CONTENT_ITEM))
        if _get(item, "required_engine_version") is not None:
            self._read_engine_version(item, parent)
        elif _get(item, "required_plugin_versions") is not None:
            self._read_plugin_versions(item, parent)
        elif _get(item, "list") is not None:
            self._read_list(item, parent, res)
        elif _get(item, "macro") is not None:
            self._read_macro(item, parent, res)
        elif _get(item, "rule") is not None:
            self._read_rule(item, parent, res)
        else:
            self._warn(res, "LOAD_UNKNOWN_ITEM", "Unknown top level item", _ctx(parent, item, R.RULES_CONTENT_ITEM))

    def _read_engine_version(self, item: yaml.MappingNode, parent: Context) -> None:
        ctx = _ctx(parent, item, R.REQUIRED_ENGINE_VERSION)
        text = _decode(item, "required_engine_version", str, ctx)
        if text.isdigit():
            version = (0, int(text), 0)
        else:
            parsed = _parse_version(text)
            _throw(parsed is None, f"Unable to parse engine version '{text}' as a semver string. Expected "
                   "\"x.y.z\" semver format.", ctx)
            version = parsed
        ours = self.engine_version
        _throw(version[0] != ours[0] or version > ours, f"Rules require engine version {_version_text(version)}, "
               f"but engine version is {_version_text(ours)}", ctx, "LOAD_ERR_VALIDATE")
        if self._required_engine is None or self._required_engine < version:
            self._required_engine = version

    def _read_plugin_versions(self, item: yaml.MappingNode, parent: Context) -> None:
        node = _get(item, "required_plugin_versions")
        ctx = _ctx(parent, node, R.REQUIRED_PLUGIN_VERSIONS)
        _throw(not _is_seq(node), "Value of required_plugin_versions must be a sequence", ctx)
        for plugin in node.value:
            tmp = _ctx(ctx, plugin, R.REQUIRED_PLUGIN_VERSIONS_ENTRY)
            _throw(not _is_map(plugin), "Plugin version must be a mapping", tmp)
            pname = _decode(plugin, "name", str, tmp)
            pctx = _ctx(ctx, plugin, R.REQUIRED_PLUGIN_VERSIONS_ENTRY, pname)
            alternatives = [(pname, _decode(plugin, "version", str, pctx))]
            alts = _get(plugin, "alternatives")
            if alts is not None:
                _throw(not _is_seq(alts), "Value of plugin version alternatives must be a sequence", pctx)
                for req in alts.value:
                    actx = _ctx(pctx, req, R.REQUIRED_PLUGIN_VERSIONS_ALTERNATIVE)
                    _throw(not _is_map(req), "Plugin version alternative must be a mapping", actx)
                    aname = _decode(req, "name", str, actx)
                    actx = _ctx(pctx, req, R.REQUIRED_PLUGIN_VERSIONS_ALTERNATIVE, aname)
                    alternatives.append((aname, _decode(req, "version", str, actx)))
            seen = set()
            for n, v in alternatives:
                _throw(_parse_version(v) is None, f"Invalid required version '{v}' for plugin '{n}'", pctx,
                       "LOAD_ERR_VALIDATE")
                _throw(n in seen, f"Defined multiple alternative version requirements for plugin '{n}'", pctx,
                       "LOAD_ERR_VALIDATE")
                seen.add(n)
            self._required_plugins.append((alternatives, pctx))

    def _check_plugins(self, res: FileResult) -> None:
        for alternatives, ctx in self._required_plugins:
            ok = any(n in self.plugins and self.plugins[n] >= (_parse_version(v) or (0, 0, 0))
                     for n, v in alternatives)
            if not ok and ctx.filename == res.name:
                wanted = ", ".join(f"{n} (>= {v})" for n, v in alternatives)
                res.add(Problem("LOAD_ERR_VALIDATE", f"Plugin requirement not satisfied, must load one of: {wanted}",
                                ctx, True))

    def _overrides(self, item: yaml.MappingNode, appendable: Sequence[str], replaceable: Sequence[str],
                   ctx: Context) -> tuple[list[str], list[str]]:
        val = _get(item, "override")
        app: list[str] = []
        rep: list[str] = []
        if val is None:
            return app, rep
        octx = _ctx(ctx, item, R.OVERRIDE)
        _throw(not _is_map(val), "Value of 'override' must be a mapping of key: append|replace", octx)
        for knode, vnode in val.value:
            key = knode.value if isinstance(knode, yaml.ScalarNode) else ""
            _throw(not _is_scalar(vnode), "Can't decode YAML scalar value", _ctx(octx, vnode, R.VALUE_FOR, key))
            op = vnode.value
            can_append, can_replace = key in appendable, key in replaceable
            if op == "append":
                _throw(not can_append, f"Key '{key}' cannot be appended to, use 'replace' instead",
                       _ctx(octx, knode, R.OVERRIDE, key))
                app.append(key)
            elif op == "replace":
                _throw(not can_replace, f"Key '{key}' cannot be replaced", _ctx(octx, knode, R.OVERRIDE, key))
                rep.append(key)
            else:
                allowed = ("append " if can_append else "") + ("replace " if can_replace else "")
                _throw(True, f"Invalid override operation for key '{key}': '{op}'. Allowed values are: {allowed}",
                       _ctx(octx, vnode, R.VALUE_FOR, key))
        return app, rep

    def _read_list(self, item: yaml.MappingNode, parent: Context, res: FileResult) -> None:
        name = _decode(item, "list", str, _ctx(parent, item, R.LIST))
        ctx = _ctx(parent, item, R.LIST, name)
        if not _RE_BARESTR.fullmatch(name):
            self._warn(res, "LOAD_INVALID_LIST_NAME", "List has an invalid name. List names should match a "
                       f"regular expression: {RGX_BARESTR}", ctx)
        self._unknown_keys("list", item, ctx, res)
        items = _decode_seq(item, "items", ctx, optional=False)
        append = bool(_decode(item, "append", bool, ctx, optional=True))
        if append:
            self._warn(res, "LOAD_DEPRECATED_ITEM", WARNING_APPEND, ctx)
        app, rep = self._overrides(item, ("items",), ("items",), ctx)
        _throw(append and bool(app or rep), ERROR_OVERRIDE_APPEND, ctx)
        info = ListInfo(name, items, ctx)
        if append or "items" in app:
            prev = self._lists.get(name)
            _throw(prev is None, ERROR_NO_PREVIOUS_LIST, ctx, "LOAD_ERR_VALIDATE")
            prev.items.extend(items)  # in place: ten thousand appends must not copy the list each time
            prev.visibility = self._next()
        else:
            self._define(self._lists, info)

    def _read_macro(self, item: yaml.MappingNode, parent: Context, res: FileResult) -> None:
        name = _decode(item, "macro", str, _ctx(parent, item, R.MACRO))
        ctx = _ctx(parent, item, R.MACRO, name)
        if not _RE_IDENTIFIER.fullmatch(name):
            self._warn(res, "LOAD_INVALID_MACRO_NAME", "Macro has an invalid name. Macro names should match a "
                       f"regular expression: {RGX_IDENTIFIER}", ctx)
        self._unknown_keys("macro", item, ctx, res)
        cond = _decode(item, "condition", str, ctx)
        cond_ctx = _ctx(ctx, _get(item, "condition"), R.MACRO_CONDITION)
        append = bool(_decode(item, "append", bool, ctx, optional=True))
        if append:
            self._warn(res, "LOAD_DEPRECATED_ITEM", WARNING_APPEND, ctx)
        app, rep = self._overrides(item, ("condition",), ("condition",), ctx)
        _throw(append and bool(app or rep), ERROR_OVERRIDE_APPEND, ctx)
        if append or "condition" in app:
            prev = self._macros.get(name)
            _throw(prev is None, ERROR_NO_PREVIOUS_MACRO, ctx, "LOAD_ERR_VALIDATE")
            prev.cond = prev.cond + " " + cond
            prev.visibility = self._next()
        else:
            self._define(self._macros, MacroInfo(name, cond, ctx, cond_ctx))

    def _next(self) -> int:
        idx = self._cur_index
        self._cur_index += 1
        return idx

    def _define(self, infos: dict[str, Any], info: Any) -> None:
        idx = self._next()
        prev = infos.get(info.name)
        if prev is not None:
            info.index, info.visibility = prev.index, idx
        else:
            info.index, info.visibility = idx, idx
        infos[info.name] = info  # dicts keep the first insertion's position: a redefinition stays in place

    def _read_rule(self, item: yaml.MappingNode, parent: Context, res: FileResult) -> None:
        name = _decode(item, "rule", str, _ctx(parent, item, R.RULE))
        ctx = _ctx(parent, item, R.RULE, name)
        self._unknown_keys("rule", item, ctx, res)
        has_append = bool(_decode(item, "append", bool, ctx, optional=True))
        if has_append:
            self._warn(res, "LOAD_DEPRECATED_ITEM", WARNING_APPEND, ctx)
        app, rep = self._overrides(item, _RULE_APPENDABLE, _RULE_REPLACEABLE, ctx)
        _throw(has_append and bool(app or rep), ERROR_OVERRIDE_APPEND, ctx)
        if app or rep:
            expected = {k for k in set(_RULE_APPENDABLE) | set(_RULE_REPLACEABLE) if _get(item, k) is not None}
            self._check_source(item, name, ctx)
            for kind, keys in (("append", app), ("replace", rep)):
                if not keys:
                    continue
                upd = RuleUpdate(name, ctx)
                for key in (_RULE_APPENDABLE if kind == "append" else _RULE_REPLACEABLE):
                    if key not in keys:
                        continue
                    _throw(key not in expected, f"An {kind} override for '{key}' was specified but '{key}' is not "
                           "defined", ctx)
                    expected.discard(key)
                    upd.values[key] = self._rule_value(item, key, ctx, res, append_mode=kind == "append")
                    if key == "condition":
                        upd.cond_ctx = _ctx(ctx, _get(item, "condition"), R.RULE_CONDITION)
                if kind == "append":
                    self._append_rule(upd)
                else:
                    self._replace_rule(upd)
            for key in sorted(expected):
                _throw(True, f"Unexpected key '{key}': no corresponding entry under 'override' is defined.",
                       _ctx(ctx, _get(item, key), R.OVERRIDE, key))
            return
        if has_append:
            self._check_source(item, name, ctx)
            upd = RuleUpdate(name, ctx)
            if _get(item, "condition") is not None:
                upd.values["condition"] = _decode(item, "condition", str, ctx)
                upd.cond_ctx = _ctx(ctx, _get(item, "condition"), R.RULE_CONDITION)
            if _get(item, "exceptions") is not None:
                upd.values["exceptions"] = self._read_exceptions(item, ctx, res, append=True)
            self._append_rule(upd)
            return
        if all(_get(item, k) is None for k in ("condition", "output", "desc", "priority")):
            enabled = _decode(item, "enabled", bool, ctx)
            self._warn(res, "LOAD_DEPRECATED_ITEM", WARNING_ENABLED, ctx)
            prev = self._rules.get(name)
            _throw(prev is None, "Rule has 'enabled' key but no rule by that name already exists", ctx,
                   "LOAD_ERR_VALIDATE")
            prev.enabled = enabled
            return
        info = RuleInfo(name, ctx)
        info.cond = _decode(item, "condition", str, ctx)
        info.cond_ctx = _ctx(ctx, _get(item, "condition"), R.RULE_CONDITION)
        info.output = _decode(item, "output", str, ctx).strip()
        info.output_ctx = _ctx(ctx, _get(item, "output"), R.RULE_OUTPUT)
        info.desc = _decode(item, "desc", str, ctx)
        info.priority = self._rule_value(item, "priority", ctx, res, False)
        source = _decode(item, "source", str, ctx, optional=True)
        info.source = source if source is not None else "syscall"
        for key, attr in (("enabled", "enabled"), ("warn_evttypes", "warn_evttypes"),
                          ("skip-if-unknown-filter", "skip_if_unknown_filter"), ("capture", "capture")):
            val = _decode(item, key, bool, ctx, optional=True)
            if val is not None:
                setattr(info, attr, val)
        dur = _decode(item, "capture_duration", int, ctx, optional=True)
        info.capture_duration = dur or 0
        info.tags = set(_decode_seq(item, "tags", ctx, optional=True) or [])
        info.exceptions = self._read_exceptions(item, ctx, res, append=False)
        self._define_rule(info, res)

    def _check_source(self, item: yaml.MappingNode, name: str, ctx: Context) -> None:
        node = _get(item, "source")
        prev = self._rules.get(name)
        if node is None or not _is_scalar(node) or not node.value or prev is None:
            return
        _throw(prev.source != node.value, "Rule has been re-defined with a different source", ctx,
               "LOAD_ERR_VALIDATE")

    def _rule_value(self, item: yaml.MappingNode, key: str, ctx: Context, res: FileResult,
                    append_mode: bool) -> Any:
        if key in ("condition", "output", "desc"):
            return _decode(item, key, str, ctx)
        if key == "tags":
            return set(_decode_seq(item, "tags", ctx, optional=True) or [])
        if key == "exceptions":
            return self._read_exceptions(item, ctx, res, append=append_mode)
        if key == "priority":
            text = _decode(item, "priority", str, ctx)
            prio = parse_priority(text)
            _throw(prio is None, "Invalid priority", _ctx(ctx, _get(item, "priority"), R.RULE_PRIORITY))
            return prio
        if key == "capture_duration":
            return _decode(item, key, int, ctx)
        return _decode(item, key, bool, ctx)

    # ---- exceptions
    def _read_exceptions(self, item: yaml.MappingNode, parent: Context, res: FileResult,
                         append: bool) -> list[ExceptionInfo]:
        exs = _get(item, "exceptions")
        out: list[ExceptionInfo] = []
        if exs is None or _is_null(exs):
            return out
        exes_ctx = _ctx(parent, exs, R.EXCEPTIONS)
        _throw(not _is_seq(exs), "Rule exceptions must be a sequence", exes_ctx)
        for ex in exs.value:
            tmp = _ctx(exes_ctx, ex, R.EXCEPTION)
            _throw(not _is_map(ex), "Rule exception must be a mapping", tmp)
            name = _decode(ex, "name", str, tmp)
            ex_ctx = _ctx(parent, ex, R.EXCEPTION, name)
            info = ExceptionInfo(name, ex_ctx)
            if any(e.name == name for e in out):
                self._warn(res, "LOAD_EXCEPTION_NAME_NOT_UNIQUE",
                           f"Multiple definitions of exception '{name}' in the same rule", ex_ctx)
            info.fields = _exception_entry(ex, "fields", ex_ctx, optional=append)
            info.comps = _exception_entry(ex, "comps", ex_ctx, optional=True)
            vals = _get(ex, "values")
            if vals is not None:
                vals_ctx = _ctx(ex_ctx, vals, R.EXCEPTION_VALUES)
                _throw(not _is_seq(vals), "Rule exception values must be a sequence", vals_ctx)
                for v in vals.value:
                    info.values.append(_exception_node(v, _ctx(vals_ctx, v, R.EXCEPTION_VALUE)))
            elif append:
                self._warn(res, "LOAD_APPEND_NO_VALUES", "Overriding/appending exception with no values", ex_ctx)
            out.append(info)
        return out

    def _validate_exception(self, ex: ExceptionInfo, source_known: bool) -> None:
        ctx = ex.ctx
        if ex.fields.is_list:
            if not ex.comps.is_valid:
                ex.comps = Entry(True, "", [Entry(False, "=") for _ in ex.fields.items])
            _throw(not ex.comps.is_list or len(ex.fields.items) != len(ex.comps.items),
                   "Fields and comps lists must have equal length", ctx, "LOAD_ERR_VALIDATE")
            for comp in ex.comps.items:
                comp.item = " ".join(comp.item.split())
                _throw(not _is_operator(comp.item), f"'{comp.item}' is not a supported comparison operator", ctx,
                       "LOAD_ERR_VALIDATE")
            if source_known:
                for f in ex.fields.items:
                    _throw(not _is_field_defined(f.item), f"'{f.item}' is not a supported filter field", ctx,
                           "LOAD_ERR_VALIDATE")
        else:
            if not ex.comps.is_valid:
                ex.comps = Entry(False, "in")
            _throw(ex.comps.is_list, "Fields and comps must both be strings", ctx, "LOAD_ERR_VALIDATE")
            ex.comps.item = " ".join(ex.comps.item.split())
            _throw(ex.comps.item not in ("in", "pmatch", "intersects"),
                   "When fields is a single value, comps must be one of (in, pmatch, intersects)", ctx,
                   "LOAD_ERR_VALIDATE")
            if source_known:
                _throw(not _is_field_defined(ex.fields.item), f"'{ex.fields.item}' is not a supported filter field",
                       ctx, "LOAD_ERR_VALIDATE")

    # ---- collector operations on rules
    def _define_rule(self, info: RuleInfo, res: FileResult) -> None:
        prev = self._rules.get(info.name)
        _throw(prev is not None and prev.source != info.source, "Rule has been re-defined with a different source",
               info.ctx, "LOAD_ERR_VALIDATE")
        if info.source not in self.sources:
            info.unknown_source = True
            self._warn(res, "LOAD_UNKNOWN_SOURCE", f"Unknown source {info.source}, skipping", info.ctx)
        for ex in info.exceptions:
            _throw(not ex.fields.is_valid, "Rule exception item must have fields property with a list of fields",
                   ex.ctx, "LOAD_ERR_VALIDATE")
            self._validate_exception(ex, not info.unknown_source)
        self._define(self._rules, info)

    def _append_rule(self, upd: RuleUpdate) -> None:
        prev = self._rules.get(upd.name)
        _throw(prev is None, ERROR_NO_PREVIOUS_RULE_APPEND, upd.ctx, "LOAD_ERR_VALIDATE")
        _throw(not upd.values, "Appended rule must have exceptions or condition property", upd.ctx,
               "LOAD_ERR_VALIDATE")
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
                _throw(not ex.fields.is_valid, "Rule exception must have fields property with a list of fields",
                       ex.ctx, "LOAD_ERR_VALIDATE")
                _throw(not ex.values, "Rule exception must have values property with a list of values", ex.ctx,
                       "LOAD_ERR_VALIDATE")
                self._validate_exception(ex, not prev.unknown_source)
                prev.exceptions.append(ex)
            else:
                _throw(ex.fields.is_valid, "Can not append exception fields to existing exception, only values",
                       ex.ctx, "LOAD_ERR_VALIDATE")
                _throw(ex.comps.is_valid, "Can not append exception comps to existing exception, only values",
                       ex.ctx, "LOAD_ERR_VALIDATE")
                old.values = old.values + ex.values
        prev.visibility = self._next()

    def _replace_rule(self, upd: RuleUpdate) -> None:
        prev = self._rules.get(upd.name)
        _throw(prev is None, ERROR_NO_PREVIOUS_RULE_REPLACE, upd.ctx, "LOAD_ERR_VALIDATE")
        _throw(not upd.values, "The rule must have at least one field that can be replaced", upd.ctx,
               "LOAD_ERR_VALIDATE")
        attrs = {"condition": "cond", "skip-if-unknown-filter": "skip_if_unknown_filter"}
        for key, val in upd.values.items():
            if key == "exceptions":
                for ex in val:
                    _throw(not ex.fields.is_valid, "Item has no mapping for key 'fields'", ex.ctx)
                    self._validate_exception(ex, not prev.unknown_source)
            setattr(prev, attrs.get(key, key), val)
        if upd.cond_ctx is not None:
            prev.cond_ctx = upd.cond_ctx
        prev.visibility = self._next()

    # ---- compiler
    def _compile(self, res: FileResult) -> None:
        from . import compiler as C

        warnings: list[Problem] = []
        try:
            lists, list_used = self._compile_lists()
            macros, macro_used = self._compile_macros(lists, list_used)
            rules = self._compile_rules(lists, list_used, macros, macro_used, warnings, C)
        except LoadError as exc:
            for w in warnings:
                res.add(w)
            res.add(Problem(exc.code, exc.message, exc.ctx, True))
            return
        for w in warnings:
            res.add(w)
        compiled_macros = []
        for name, info in self._macros.items():
            used = name in macro_used
            if not used:
                self._warn(res, "LOAD_UNUSED_MACRO", "Macro not referred to by any other rule/macro", info.ctx)
            compiled_macros.append(CompiledMacro(name, info.cond, macros[name], used, info.ctx.filename,
                                                 info.ctx.locations[-1].line + 1))
        compiled_lists = []
        for name, info in self._lists.items():
            used = name in list_used
            if not used:
                self._warn(res, "LOAD_UNUSED_LIST", "List not referred to by any other rule/macro", info.ctx)
            compiled_lists.append(CompiledList(name, lists[name], used, info.ctx.filename,
                                               info.ctx.locations[-1].line + 1))
        self._compiled = (rules, compiled_macros, compiled_lists)

    def _compile_lists(self) -> tuple[dict[str, list[str]], set[str]]:
        out: dict[str, list[str]] = {}
        used: set[str] = set()
        for info in self._lists.values():
            items: list[str] = []
            for it in info.items:
                ref = self._lists.get(it)
                if ref is not None and ref.index < info.visibility:
                    used.add(ref.name)
                    items.extend(ref.items)
                else:
                    items.append(it)
                if len(items) > MAX_LIST_ITEMS:
                    raise LoadError("LOAD_ERR_VALIDATE", f"list '{info.name}' has more than {MAX_LIST_ITEMS:,} "
                                    "items once the lists it names are expanded; the grader refuses lists that "
                                    "long (Falco's own lists hold fewer than 100)", info.ctx)
            out[info.name] = items
        return out, used

    def _parse(self, condition: str, lists: dict[str, list[str]], list_used: set[str], ctx: Context) -> Node:
        from .parser import ParseError, parse

        if len(condition) > MAX_CONDITION_CHARS:
            raise LoadError("LOAD_ERR_COMPILE_CONDITION", f"the condition of {_item_label(ctx)} is "
                            f"{len(condition):,} characters long; the grader refuses conditions over "
                            f"{MAX_CONDITION_CHARS:,} characters (Falco's own stay under 2,000): use lists and "
                            "macros", ctx)
        text = self._substitute_lists(condition, lists, list_used, ctx)
        cached = self._parse_cache.get(text)
        if cached is None:
            try:
                cached = parse(text)
            except ParseError as exc:
                cached = exc
            except RecursionError:
                cached = ParseError("condition is nested too deeply", 0, text)
            self._parse_cache[text] = cached
        if isinstance(cached, Exception):
            raise LoadError("LOAD_ERR_COMPILE_CONDITION", str(cached), ctx.at_condition(text, cached.position))
        return cached

    def _substitute_lists(self, text: str, lists: dict[str, list[str]], list_used: set[str], ctx: Context) -> str:
        """Falco's textual list substitution, list by list in definition order, visiting only the lists whose
        name occurs in the text (a rules set with thousands of lists and conditions stays linear)."""
        import heapq

        order = self._list_order
        if order is None or order[0] is not lists:
            names = list(lists)
            plain = {n: i for i, n in enumerate(names) if not _has_delimiter(n)}
            odd = [(i, n) for i, n in enumerate(names) if _has_delimiter(n)]  # rare: matched by search
            order = self._list_order = (lists, names, plain, odd)
        _, names, plain, odd = order

        def found_in(fragment: str, after: int) -> list[int]:
            hits = [plain[t] for t in _DELIM_SPLIT.split(fragment) if t in plain]
            hits += [i for i, n in odd if n in fragment]
            return [i for i in hits if i > after]

        pending = found_in(text, -1)
        heapq.heapify(pending)
        done = -1
        while pending:
            index = heapq.heappop(pending)
            if index <= done:
                continue
            done = index
            name = names[index]
            items = lists[name]
            text, hit = resolve_list(text, name, items, MAX_EXPANDED_CHARS)
            if len(text) > MAX_EXPANDED_CHARS:
                raise LoadError("LOAD_ERR_COMPILE_CONDITION", f"the condition of {_item_label(ctx)} grows past "
                                f"{MAX_EXPANDED_CHARS:,} characters once list '{name}' is substituted; the grader "
                                "refuses conditions that long", ctx)
            if hit:
                list_used.add(name)
                for i in found_in(" ".join(items), index):
                    heapq.heappush(pending, i)
        return text

    def _compile_macros(self, lists: dict[str, list[str]], list_used: set[str]) -> tuple[dict[str, Node], set[str]]:
        asts: dict[str, Node] = {}
        for info in self._macros.values():
            asts[info.name] = self._parse(info.cond, lists, list_used, info.cond_ctx)
        used: set[str] = set()
        for info in self._macros.values():
            def visible(name: str, cutoff: int = info.visibility) -> Node | None:
                macro = self._macros.get(name)
                return asts[name] if macro is not None and macro.index < cutoff else None

            asts[info.name] = self._resolve(asts[info.name], visible, info.cond, info.ctx, used)
        return asts, used

    def _resolve(self, node: Node, macros: Mapping[str, Node] | Any, condition: str, ctx: Context,
                 used: set[str]) -> Node:
        lookup = macros.get if isinstance(macros, Mapping) else macros
        errors: list[str] = []
        unknown: list[str] = []
        resolved: set[str] = set()
        try:
            out = _substitute(node, lookup, [], errors, unknown, resolved, {})
        except RecursionError:
            raise LoadError("LOAD_ERR_COMPILE_CONDITION", "the condition is nested too deeply once its macros "
                            "are expanded", ctx) from None
        if errors or unknown:
            msg = errors[0] if errors else f"Undefined macro '{unknown[0]}' used in filter."
            word = re.search(r"'([^']*)'", msg)
            pos = _word_position(condition, word.group(1) if word else "")
            raise LoadError("LOAD_ERR_VALIDATE", msg, ctx.at_condition(condition, pos))
        size = expanded_size(out, MAX_CONDITION_NODES)
        if size > MAX_CONDITION_NODES:
            biggest = sorted(resolved & set(self._macros), key=lambda m: -expanded_size(
                lookup(m) or Identifier(m), MAX_CONDITION_NODES))[:1]
            via = f" (through macro '{biggest[0]}')" if biggest else ""
            raise LoadError("LOAD_ERR_COMPILE_CONDITION", f"the condition of {_item_label(ctx)} expands to more "
                            f"than {MAX_CONDITION_NODES:,} checks once its macros are expanded{via}; the grader "
                            "refuses conditions that large (Falco's own rules stay under 200): a macro that uses "
                            "another macro several times doubles its size at each level", ctx)
        used |= resolved
        return out

    def _compile_rules(self, lists, list_used, macros, macro_used, warnings: list[Problem], C) -> list[CompiledRule]:
        from . import outputs as O
        from .parser import ParseError

        out: list[CompiledRule] = []
        total_nodes = 0
        for r in self._rules.values():
            if r.unknown_source:
                continue
            condition = r.cond
            exception_fields: list[str] = []
            if r.exceptions:
                condition = build_exceptions(r.exceptions, condition, exception_fields, r.ctx)
            output = r.output
            if "%container.info" in output:
                warnings.append(Problem("LOAD_DEPRECATED_ITEM", "%container.info is deprecated and no more useful, "
                                        "and will be dropped by Falco 1.0.0. The container plugin will automatically "
                                        "add required fields to the output message.", r.ctx, False))
                output = output.replace("%container.info", "")
            try:
                fmt = O.OutputFormat.parse(output)
            except O.OutputFormatError as exc:
                if r.skip_if_unknown_filter and _is_unknown_filter_error(str(exc)):
                    warnings.append(Problem("LOAD_UNKNOWN_FILTER", str(exc), r.output_ctx or r.ctx, False))
                    continue
                raise LoadError("LOAD_ERR_COMPILE_OUTPUT", str(exc), r.output_ctx or r.ctx) from None
            for f in fmt.fields:
                if f in ("evt.dir", "evt.latency", "evt.latency.s", "evt.latency.ns", "evt.latency.human",
                         "evt.wait_latency"):
                    warnings.append(Problem("LOAD_DEPRECATED_ITEM", f"usage of deprecated field '{f}' has been "
                                            "detected in the rule output", r.output_ctx or r.ctx, False))
            cond_ctx = r.cond_ctx or r.ctx
            ast = self._parse(condition, lists, list_used, cond_ctx)
            ast = self._resolve(ast, macros, condition, r.ctx, macro_used)
            total_nodes += expanded_size(ast)
            if total_nodes > MAX_TOTAL_NODES:
                raise LoadError("LOAD_ERR_COMPILE_CONDITION", f"the rules loaded up to {_item_label(r.ctx)} expand "
                                f"to more than {MAX_TOTAL_NODES:,} checks in all; the grader refuses rules sets "
                                "that large (all of Falco's published rules files together hold under 2,500)", r.ctx)
            for code, message in resolve_warnings(ast):
                warnings.append(Problem(code, message, cond_ctx, False))
            compiled = self._compile_cache.get(ast)
            if compiled is None:
                try:
                    compiled = C.compile_filter(ast, {})
                except C.CompileError as exc:
                    compiled = exc
                except (ParseError, RecursionError) as exc:
                    compiled = C.CompileError(f"cannot compile the condition: {exc}")
                self._compile_cache[ast] = compiled
            if isinstance(compiled, Exception):
                msg = str(compiled)
                pos = getattr(compiled, "position", None) or 0
                ctx = cond_ctx.at_condition(condition, pos if isinstance(pos, int) else 0)
                if r.skip_if_unknown_filter and _is_unknown_filter_error(msg):
                    warnings.append(Problem("LOAD_UNKNOWN_FILTER", msg, ctx, False))
                    continue
                raise LoadError("LOAD_ERR_COMPILE_CONDITION", msg, ctx)
            for w in getattr(compiled, "warnings", []) or []:
                warnings.append(Problem("LOAD_COMPILE_CONDITION", str(w), cond_ctx.at_condition(condition, 0), False))
            evttypes = compiled.evttypes
            if r.warn_evttypes and (evttypes is None or len(evttypes) > 100):
                warnings.append(Problem("LOAD_NO_EVTTYPE", "Rule matches too many evt.type values. This has a "
                                        "significant performance penalty.", r.ctx, False))
            loc = r.ctx.locations[-1]
            out.append(CompiledRule(
                r.name, r.desc, condition, ast, compiled, output, fmt, r.priority, r.source,
                tuple(sorted(r.tags)), r.enabled, evttypes, tuple(exception_fields), r.capture,
                r.capture_duration, r.ctx.filename, loc.line + 1))
        return out


# ---------------------------------------------------------------------------------------------- helpers


def _yaml_values_over(text: str, limit: int) -> bool:
    """More than ``limit`` YAML nodes, counted on the parser's events (cheap) before anything is built."""
    loader = safeyaml._Loader(text)
    count = 0
    try:
        while loader.check_event():
            loader.get_event()
            count += 1
            if count > limit:
                return True
    except yaml.YAMLError:
        return False  # the composer reports it with its position
    finally:
        loader.dispose()
    return False


def _compose_all(text: str, root: Context, res: FileResult) -> list[yaml.Node | None] | None:
    """YAML documents as node trees (with marks), behind safeyaml's bomb and depth guards."""
    loader = safeyaml._Loader(text)
    docs: list[yaml.Node | None] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                safeyaml._measure(node)
            docs.append(node)
    except safeyaml.YamlProblem as exc:
        ctx = root if exc.line is None else root.child(R.VALUE_FOR, "", exc.line - 1, 0, 0)
        res.add(Problem("LOAD_ERR_YAML_PARSE", str(exc), ctx, True))
        return None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = _YAML_CPP_TEXT.get(exc.problem or "", exc.problem or exc.context or "invalid YAML")
        if mark is None:
            res.add(Problem("LOAD_ERR_YAML_PARSE", f"yaml-cpp: error: {problem}", root, True))
        else:
            ctx = root.child(R.VALUE_FOR, "", mark.line, mark.column, mark.index)
            res.add(Problem("LOAD_ERR_YAML_PARSE", f"yaml-cpp: error at line {mark.line + 1}, column "
                            f"{mark.column + 1}: {problem}", ctx, True))
        return None
    except yaml.YAMLError as exc:
        res.add(Problem("LOAD_ERR_YAML_PARSE", f"not valid YAML: {exc}", root, True))
        return None
    except RecursionError:
        res.add(Problem("LOAD_ERR_YAML_PARSE", "the YAML is nested too deeply", root, True))
        return None
    finally:
        loader.dispose()
    return docs


# PyYAML's wording -> yaml-cpp's (Falco prints yaml-cpp's); unknown problems keep PyYAML's text.
_YAML_CPP_TEXT = {
    "mapping values are not allowed here": "illegal map value",
    "mapping values are not allowed in this context": "illegal map value",
    "did not find expected key": "end of map not found",
    "did not find expected ',' or ']'": "end of sequence flow not found",
    "did not find expected ',' or '}'": "end of map flow not found",
    "found unexpected end of stream": "unexpected end of stream",
    "did not find expected '-' indicator": "end of sequence not found",
}


def _exception_node(node: yaml.Node, ctx: Context) -> Entry:
    if isinstance(node, yaml.ScalarNode) and not _is_null(node):
        _throw(node.value == "", "Value must be non-empty", ctx)
        return Entry(False, node.value)
    if _is_seq(node):
        return Entry(True, "", [_exception_node(v, _ctx(ctx, v, R.EXCEPTION)) for v in node.value])
    return Entry(False, "")


def _exception_entry(ex: yaml.MappingNode, key: str, ctx: Context, optional: bool) -> Entry:
    val = _get(ex, key)
    if val is None:
        _throw(not optional, f"Item has no mapping for key '{key}'", ctx)
        return Entry()
    return _exception_node(val, _ctx(ctx, val, R.VALUE_FOR, key))


def _is_operator(op: str) -> bool:
    if op in _OPERATORS:
        return True
    parts = op.split(" ")
    return len(parts) == 2 and parts[0] in _STR_OPS and parts[1] in _MODIFIERS


def _is_field_defined(text: str) -> bool:
    """Is ``text`` (a field, ``f[arg]`` or a transformer over one) a field the syscall source has?"""
    from .fields import lookup
    from .parser import ParseError, parse

    try:
        node = parse(f"{text} exists")
    except (ParseError, RecursionError):
        return False
    if not isinstance(node, Check) or node.value is not None:
        return False
    refs = [node.field] if isinstance(node.field, FieldRef) else _transform_fields(node.field)
    return bool(refs) and all(lookup(r.name, r.arg) is not None for r in refs)


def _is_unknown_filter_error(msg: str) -> bool:
    return ("nonexistent field" in msg or "invalid formatting token" in msg or "unknown event type" in msg
            or "unknown filter" in msg)


def _quote_item(e: str) -> str:
    if " " in e and e[:1] not in ("'", '"'):
        return '"' + e + '"'
    return e


def _paren_item(e: str) -> str:
    return e if e.startswith("(") else "(" + e + ")"


def build_exceptions(exceptions: list[ExceptionInfo], condition: str, exception_fields: list[str],
                     ctx: Context) -> str:
    """Falco's ``build_rule_exception_infos``: the exceptions appended to the condition as text."""
    condition = "(" + condition + ")"
    for ex in exceptions:
        icond = ""
        if not ex.fields.is_list:
            for val in ex.values:
                _throw(val.is_list, "Expected values array to contain a list of strings", ex.ctx, "LOAD_ERR_VALIDATE")
                icond += ("(" + ex.fields.item + " " + ex.comps.item + " (") if not icond else ", "
                if ex.fields.item not in exception_fields:
                    exception_fields.append(ex.fields.item)
                icond += _quote_item(val.item)
            icond += "))" if icond else ""
        else:
            icond = "("
            for values in ex.values:
                _throw(len(ex.fields.items) != len(values.items), "Fields and values lists must have equal length",
                       ex.ctx, "LOAD_ERR_VALIDATE")
                icond += "" if icond == "(" else " or "
                icond += "("
                for k, fld in enumerate(ex.fields.items):
                    icond += "" if k == 0 else " and "
                    value = values.items[k]
                    comp = ex.comps.items[k].item
                    if value.is_list:
                        istr = "(" + ", ".join(_quote_item(v.item) for v in value.items) + ")"
                    elif comp in _LIST_OPERATORS:
                        istr = _paren_item(value.item)
                    else:
                        istr = _quote_item(value.item)
                    icond += " " + fld.item + " " + comp + " " + istr
                    if fld.item not in exception_fields:
                        exception_fields.append(fld.item)
                icond += ")"
            icond += ")"
            if icond == "()":
                icond = ""
        condition += "" if not icond else " and not " + icond
    return condition


_BLANKS = " \t\n\r"
_DELIMS = _BLANKS + "(),="
_DELIM_SPLIT = re.compile(r"[ \t\n\r(),=]+")


def _has_delimiter(name: str) -> bool:
    return any(c in _DELIMS for c in name)


def _item_label(ctx: Context) -> str:
    """``macro 'x'`` / ``rule 'y'``: the item a context belongs to, for messages."""
    for loc in reversed(ctx.locations):
        if loc.item_type in (R.MACRO, R.RULE, R.LIST) and loc.item_name:
            return f"{loc.item_type} '{loc.item_name}'"
    return "this item"


def resolve_list(cnd: str, name: str, items: list[str], limit: int | None = None) -> tuple[str, bool]:
    """Falco's textual list substitution (``resolve_list``): ``name`` bounded by delimiters -> its items.

    Falco rebuilds the whole string at each occurrence; this builds the result in pieces (same result), so
    a condition naming a list thousands of times costs linear time, and stops once it passes ``limit``."""
    sub = ", ".join(_quote_item(v) for v in items)
    out: list[str] = []  # the finished prefix of the current string, in pieces
    out_len = 0
    pos = 0  # the current string is "".join(out) + cnd[pos:]
    used = False

    def last_char() -> str:
        return out[-1][-1] if out else ""

    def drop_last_char() -> None:
        nonlocal out_len
        out[-1] = out[-1][:-1]
        if not out[-1]:
            out.pop()
        out_len -= 1

    start = cnd.find(name)
    while start != -1:
        end = start + len(name)
        before = cnd[start - 1] if start > pos else last_char()
        if (before == "" or before in _DELIMS) and (end >= len(cnd) or cnd[end] in _DELIMS):
            while start > pos and cnd[start - 1] in _BLANKS:
                start -= 1
            if start == pos:
                while out and last_char() in _BLANKS:
                    drop_last_char()
            while end < len(cnd) and cnd[end] in _BLANKS:
                end += 1
            if not sub:
                prev = cnd[start - 1] if start > pos else last_char()
                if prev == ",":
                    if start > pos:
                        start -= 1
                    else:
                        drop_last_char()
                elif end < len(cnd) and cnd[end] == ",":
                    end += 1
            if start > pos:
                out.append(cnd[pos:start])
                out_len += start - pos
            had_prefix = out_len > 0
            if had_prefix:
                out.append(" ")
            out.append(sub + " ")
            out_len += int(had_prefix) + len(sub) + 1
            pos = end
            used = True
            if limit is not None and out_len > limit:
                break
            # Falco resumes one character further when the substitution started the string
            start = cnd.find(name, pos if had_prefix else pos + 1)
            continue
        start = cnd.find(name, start + 1)
    if not used:
        return cnd, False
    out.append(cnd[pos:])
    return "".join(out), True


def _resolve_list_falco(cnd: str, name: str, items: list[str]) -> tuple[str, bool]:
    """Falco's algorithm as written (quadratic); kept to test :func:`resolve_list` against."""
    used = False
    start = cnd.find(name)
    while start != -1:
        end = start + len(name)
        if (start == 0 or cnd[start - 1] in _DELIMS) and (end >= len(cnd) or cnd[end] in _DELIMS):
            while start > 0 and cnd[start - 1] in _BLANKS:
                start -= 1
            while end < len(cnd) and cnd[end] in _BLANKS:
                end += 1
            sub = ", ".join(_quote_item(v) for v in items)
            if not sub:
                if start > 0 and cnd[start - 1] == ",":
                    start -= 1
                elif end < len(cnd) and cnd[end] == ",":
                    end += 1
            new = ""
            if start > 0:
                new += cnd[:start] + " "
            new += sub + " "
            if end <= len(cnd):
                new += cnd[end:]
            cnd = new
            start += len(sub) + 1
            used = True
        start = cnd.find(name, start + 1)
    return cnd, used


def _substitute(node: Node, lookup: Any, path: list[str], errors: list[str], unknown: list[str],
                resolved: set[str], memo: dict[int, Node]) -> Node:
    """Falco's ``filter_macro_resolver``: replace macro identifiers by their (recursively resolved) ASTs.

    Memoised per node: a macro's resolved tree is shared by every place that uses it, so the work is
    linear in the written conditions, not in their (possibly exponential) expansion."""
    hit = memo.get(id(node))
    if hit is not None:
        return hit
    out: Node = node
    if isinstance(node, Identifier):
        macro = lookup(node.name)
        if macro is None:
            if node.name not in unknown:
                unknown.append(node.name)
            return node
        if node.name in path:
            errors.append(f"reference loop in macro '{node.name}'")
            return node
        path.append(node.name)
        try:
            out = _substitute(macro, lookup, path, errors, unknown, resolved, memo)
        finally:
            path.pop()
        resolved.add(node.name)
        return out  # not memoised by the identifier's id: equal identifiers are distinct objects anyway
    if isinstance(node, Not):
        child = _substitute(node.child, lookup, path, errors, unknown, resolved, memo)
        out = node if child is node.child else Not(child)
    elif isinstance(node, (And, Or)):
        kids = tuple(_substitute(c, lookup, path, errors, unknown, resolved, memo) for c in node.children)
        if not all(a is b for a, b in zip(kids, node.children, strict=True)):
            out = type(node)(kids)
    if not errors and not unknown:
        memo[id(node)] = out  # the nodes are alive for the whole call (they belong to the macros' trees)
    return out


def _word_position(text: str, word: str) -> int:
    if not word:
        return 0
    m = re.search(r"(?<![\w.])" + re.escape(word) + r"(?![\w.])", text)
    return m.start() if m else 0


_DEPRECATED_FIELDS = ("evt.dir", "evt.latency", "evt.latency.s", "evt.latency.ns", "evt.latency.human",
                      "evt.wait_latency")
_DEPRECATED_DESC = {
    "evt.dir": "due to the drop of enter events, 'evt.dir = <' always evaluates to true, and 'evt.dir = >' always "
    "evaluates to false. The rule expression can be simplified by removing the condition on 'evt.dir'",
}
_LATENCY_DESC = "field is not available due to the drop of enter events."
_EQUALITY_OPS = frozenset({"==", "=", "!=", "in", "intersects", "pmatch"})


def resolve_warnings(node: Node) -> list[tuple[str, str]]:
    """Falco's ``filter_warning_resolver``: unsafe ``<NA>`` comparisons on ka./jevt. fields, deprecated fields."""
    from .ast import walk

    codes: list[str] = []
    deprecated: list[str] = []
    for n in walk(node):
        if not isinstance(n, Check):
            continue
        lhs = n.field
        names = [lhs.name] if isinstance(lhs, FieldRef) else [f.name for f in _transform_fields(lhs)]
        for name in names:
            if name in _DEPRECATED_FIELDS and name not in deprecated:
                deprecated.append(name)
        unsafe = isinstance(lhs, FieldRef) and lhs.name.startswith(("ka.", "jevt."))
        if unsafe and n.op in _EQUALITY_OPS:
            v = n.value
            has_na = v == "<NA>" or (isinstance(v, tuple) and "<NA>" in v)
            if has_na and "LOAD_UNSAFE_NA_CHECK" not in codes:
                codes.append("LOAD_UNSAFE_NA_CHECK")
    out = [(c, "") for c in codes]
    out += [("LOAD_DEPRECATED_ITEM", _DEPRECATED_DESC.get(f, _LATENCY_DESC)) for f in deprecated]
    return out


def _transform_fields(t: Transform) -> list[FieldRef]:
    out: list[FieldRef] = []
    for a in t.args:
        if isinstance(a, FieldRef):
            out.append(a)
        elif isinstance(a, Transform):
            out.extend(_transform_fields(a))
    return out


def load_rules(files: Iterable[tuple[str, str | bytes]], **options: Any) -> LoadResult:
    """Load ``(name, text)`` rules files in order into one engine and return what Falco would report."""
    loader = RulesLoader(**options)
    for name, text in files:
        loader.load(name, text)
    return loader.result()


def default_rules_text() -> str:
    """The project's own compact default rules file (package data)."""
    from importlib.resources import files

    return files("grader.engines.falco").joinpath("default_rules.yaml").read_text(encoding="utf-8")
