"""Falco's ``rule_loader_reader``: a rules file's YAML, item by item, into the collector, with yaml-cpp's
positions and Falco's decode errors (the first error stops the file)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import yaml

from grader import safeyaml

from . import results as R
from . import rule_loading_messages as M
from .results import Context, FileResult, Problem
from .rule_loader_collector import (
    Collector,
    Entry,
    ExceptionInfo,
    ListInfo,
    LoadError,
    MacroInfo,
    RuleInfo,
    RuleUpdate,
    parse_priority,
    throw,
    warn,
)

_RE_IDENTIFIER = re.compile(r"[a-zA-Z]+[a-zA-Z0-9_]*")
_RE_BARESTR = re.compile(r"[^()\"' \t\n\v\f\r=,]+")
_KNOWN_KEYS = {
    "list": {"list", "items", "append", "override"},
    "macro": {"macro", "condition", "append", "override"},
    "rule": {
        "rule",
        "desc",
        "condition",
        "output",
        "priority",
        "source",
        "enabled",
        "tags",
        "exceptions",
        "warn_evttypes",
        "skip-if-unknown-filter",
        "capture",
        "capture_duration",
        "append",
        "override",
    },
}
_RULE_APPENDABLE = ("condition", "output", "desc", "tags", "exceptions")
_RULE_REPLACEABLE = (
    "condition",
    "output",
    "desc",
    "priority",
    "tags",
    "exceptions",
    "enabled",
    "warn_evttypes",
    "skip-if-unknown-filter",
    "capture",
    "capture_duration",
)


def parse_version(text: str) -> tuple[int, int, int] | None:
    m = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", text.strip())
    return (int(m[1]), int(m[2]), int(m[3])) if m else None


def version_text(v: tuple[int, int, int]) -> str:
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
        throw(not optional, f"Item has no mapping for key '{key}'", ctx)
        return None
    throw(_is_null(val), f"Mapping for key '{key}' is empty", ctx)
    valctx = _ctx(ctx, val, R.VALUE_FOR, key)
    throw(not isinstance(val, yaml.ScalarNode), "Value is not a scalar value", valctx)
    text = val.value
    throw(text == "", M.MSG_VALUE_MUST_BE_NON_EMPTY, valctx)
    if kind is bool:
        throw(text not in _TRUE and text not in _FALSE, M.MSG_CAN_T_DECODE_YAML_SCALAR_VALUE, valctx)
        return text in _TRUE
    if kind is int:
        throw(not text.isdigit() or int(text) > 0xFFFFFFFF, M.MSG_CAN_T_DECODE_YAML_SCALAR_VALUE, valctx)
        return int(text)
    return text


def _decode_seq(item: yaml.MappingNode, key: str, ctx: Context, optional: bool) -> list[str] | None:
    val = _get(item, key)
    if val is None:
        throw(not optional, f"Item has no mapping for key '{key}'", ctx)
        return None
    valctx = _ctx(ctx, val, R.VALUE_FOR, key)
    throw(not _is_seq(val), M.MSG_VALUE_IS_NOT_A_SEQUENCE, valctx)
    out = []
    for v in val.value:
        ictx = _ctx(valctx, v, R.LIST_ITEM)
        throw(not _is_scalar(v), M.MSG_SEQUENCE_VALUE_IS_NOT_SCALAR, ictx)
        out.append(v.value)
    return out


def decode_content(name: str, content: str | bytes, res: FileResult) -> str | None:
    root = Context.root(name)
    size = len(content)
    if size > M.MAX_RULES_BYTES:
        res.add(
            Problem(
                "LOAD_ERR_FILE_READ",
                f"the rules file is {size / 1048576:.1f} MB; the grader reads "
                f"rules files up to {M.MAX_RULES_BYTES // 1048576} MB (Falco's own files are under "
                "100 KB)",
                root,
                True,
            )
        )
        return None
    if isinstance(content, bytes):
        try:
            content = content.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            res.add(
                Problem(
                    "LOAD_ERR_YAML_PARSE",
                    f"the rules file is not UTF-8 text (invalid byte 0x"
                    f"{content[exc.start]:02x} at offset {exc.start})",
                    root,
                    True,
                )
            )
            return None
    if "\x00" in content:
        res.add(Problem("LOAD_ERR_YAML_PARSE", M.MSG_THE_RULES_FILE_CONTAINS_NUL_BYTES, root, True))
        return None
    return content


class Reader:
    """Reads files into ``col``, checking ``required_engine_version`` against ``engine_version``."""

    def __init__(self, col: Collector, engine_version: tuple[int, int, int]) -> None:
        self.col = col
        self.engine_version = engine_version

    def read(self, name: str, text: str, res: FileResult) -> bool:
        root = Context.root(name)
        if len(text) > M.SCAN_ABOVE and _yaml_values_over(text, M.MAX_YAML_VALUES):
            res.add(
                Problem(
                    "LOAD_ERR_YAML_VALIDATE",
                    f"the rules file holds more than {M.MAX_YAML_VALUES:,} YAML "
                    "values; the grader reads rules files up to that size (Falco's own default rules "
                    "file holds under 2,000)",
                    root,
                    True,
                )
            )
            return False
        docs = _compose_all(text, root, res)
        if docs is None:
            return False
        for doc in docs:
            if doc is None or _is_null(doc):
                continue
            try:
                throw(not _is_map(doc) and not _is_seq(doc), M.MSG_RULES_CONTENT_IS_NOT_YAML, root)
                throw(not _is_seq(doc), M.MSG_RULES_CONTENT_IS_NOT_YAML_ARRAY, root)
                for item in doc.value:
                    if not _is_null(item):
                        self._read_item(item, root, res)
            except LoadError as exc:
                res.add(Problem(exc.code, exc.message, exc.ctx, True))
                return False
            except RecursionError:
                res.add(Problem("LOAD_ERR_YAML_VALIDATE", M.MSG_THE_RULES_CONTENT_IS_NESTED_TOO, root, True))
                return False
        return True

    def _unknown_keys(self, kind: str, item: yaml.MappingNode, ctx: Context, res: FileResult) -> None:
        for key, knode in _keys(item):
            if key not in _KNOWN_KEYS[kind]:
                warn(
                    res,
                    "LOAD_UNKNOWN_KEY",
                    f"Unknown key '{key}'. The key will be ignored.",
                    _ctx(ctx, knode, R.VALUE_FOR, key),
                )

    def _read_item(self, item: yaml.Node, parent: Context, res: FileResult) -> None:
        throw(
            not _is_map(item),
            M.MSG_UNEXPECTED_ELEMENT_TYPE_EACH_ELEMENT_SHOULD,
            _ctx(parent, item, R.RULES_CONTENT_ITEM),
        )
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
            warn(
                res,
                "LOAD_UNKNOWN_ITEM",
                M.MSG_UNKNOWN_TOP_LEVEL_ITEM,
                _ctx(parent, item, R.RULES_CONTENT_ITEM),
            )

    def _read_engine_version(self, item: yaml.MappingNode, parent: Context) -> None:
        ctx = _ctx(parent, item, R.REQUIRED_ENGINE_VERSION)
        text = _decode(item, "required_engine_version", str, ctx)
        if text.isdigit():
            version = (0, int(text), 0)
        else:
            parsed = parse_version(text)
            throw(
                parsed is None,
                f"Unable to parse engine version '{text}' as a semver string. Expected "
                '"x.y.z" semver format.',
                ctx,
            )
            version = parsed
        ours = self.engine_version
        throw(
            version[0] != ours[0] or version > ours,
            f"Rules require engine version {version_text(version)}, "
            f"but engine version is {version_text(ours)}",
            ctx,
            "LOAD_ERR_VALIDATE",
        )
        if self.col.required_engine is None or self.col.required_engine < version:
            self.col.required_engine = version

    def _read_plugin_versions(self, item: yaml.MappingNode, parent: Context) -> None:
        node = _get(item, "required_plugin_versions")
        ctx = _ctx(parent, node, R.REQUIRED_PLUGIN_VERSIONS)
        throw(not _is_seq(node), M.MSG_VALUE_OF_REQUIRED_PLUGIN_VERSIONS_MUST, ctx)
        for plugin in node.value:
            tmp = _ctx(ctx, plugin, R.REQUIRED_PLUGIN_VERSIONS_ENTRY)
            throw(not _is_map(plugin), M.MSG_PLUGIN_VERSION_MUST_BE_A_MAPPING, tmp)
            pname = _decode(plugin, "name", str, tmp)
            pctx = _ctx(ctx, plugin, R.REQUIRED_PLUGIN_VERSIONS_ENTRY, pname)
            alternatives = [(pname, _decode(plugin, "version", str, pctx))]
            alts = _get(plugin, "alternatives")
            if alts is not None:
                throw(not _is_seq(alts), M.MSG_VALUE_OF_PLUGIN_VERSION_ALTERNATIVES_MUST, pctx)
                for req in alts.value:
                    actx = _ctx(pctx, req, R.REQUIRED_PLUGIN_VERSIONS_ALTERNATIVE)
                    throw(not _is_map(req), M.MSG_PLUGIN_VERSION_ALTERNATIVE_MUST_BE_A, actx)
                    aname = _decode(req, "name", str, actx)
                    actx = _ctx(pctx, req, R.REQUIRED_PLUGIN_VERSIONS_ALTERNATIVE, aname)
                    alternatives.append((aname, _decode(req, "version", str, actx)))
            seen = set()
            for n, v in alternatives:
                throw(
                    parse_version(v) is None,
                    f"Invalid required version '{v}' for plugin '{n}'",
                    pctx,
                    "LOAD_ERR_VALIDATE",
                )
                throw(
                    n in seen,
                    f"Defined multiple alternative version requirements for plugin '{n}'",
                    pctx,
                    "LOAD_ERR_VALIDATE",
                )
                seen.add(n)
            self.col.required_plugins.append((alternatives, pctx))

    def _overrides(
        self, item: yaml.MappingNode, appendable: Sequence[str], replaceable: Sequence[str], ctx: Context
    ) -> tuple[list[str], list[str]]:
        val = _get(item, "override")
        app: list[str] = []
        rep: list[str] = []
        if val is None:
            return app, rep
        octx = _ctx(ctx, item, R.OVERRIDE)
        throw(not _is_map(val), M.MSG_VALUE_OF_OVERRIDE_MUST_BE_A, octx)
        for knode, vnode in val.value:
            key = knode.value if isinstance(knode, yaml.ScalarNode) else ""
            throw(
                not _is_scalar(vnode),
                M.MSG_CAN_T_DECODE_YAML_SCALAR_VALUE,
                _ctx(octx, vnode, R.VALUE_FOR, key),
            )
            op = vnode.value
            can_append, can_replace = key in appendable, key in replaceable
            if op == "append":
                throw(
                    not can_append,
                    f"Key '{key}' cannot be appended to, use 'replace' instead",
                    _ctx(octx, knode, R.OVERRIDE, key),
                )
                app.append(key)
            elif op == "replace":
                throw(not can_replace, f"Key '{key}' cannot be replaced", _ctx(octx, knode, R.OVERRIDE, key))
                rep.append(key)
            else:
                allowed = ("append " if can_append else "") + ("replace " if can_replace else "")
                throw(
                    True,
                    f"Invalid override operation for key '{key}': '{op}'. Allowed values are: {allowed}",
                    _ctx(octx, vnode, R.VALUE_FOR, key),
                )
        return app, rep

    def _read_list(self, item: yaml.MappingNode, parent: Context, res: FileResult) -> None:
        name = _decode(item, "list", str, _ctx(parent, item, R.LIST))
        ctx = _ctx(parent, item, R.LIST, name)
        if not _RE_BARESTR.fullmatch(name):
            warn(res, "LOAD_INVALID_LIST_NAME", M.WARNING_INVALID_LIST_NAME, ctx)
        self._unknown_keys("list", item, ctx, res)
        items = _decode_seq(item, "items", ctx, optional=False)
        append = bool(_decode(item, "append", bool, ctx, optional=True))
        if append:
            warn(res, "LOAD_DEPRECATED_ITEM", M.WARNING_APPEND, ctx)
        app, rep = self._overrides(item, ("items",), ("items",), ctx)
        throw(append and bool(app or rep), M.ERROR_OVERRIDE_APPEND, ctx)
        info = ListInfo(name, items, ctx)
        if append or "items" in app:
            prev = self.col.lists.get(name)
            throw(prev is None, M.ERROR_NO_PREVIOUS_LIST, ctx, "LOAD_ERR_VALIDATE")
            prev.items.extend(items)  # in place: ten thousand appends must not copy the list each time
            prev.visibility = self.col.next_index()
        else:
            self.col.define(self.col.lists, info)

    def _read_macro(self, item: yaml.MappingNode, parent: Context, res: FileResult) -> None:
        name = _decode(item, "macro", str, _ctx(parent, item, R.MACRO))
        ctx = _ctx(parent, item, R.MACRO, name)
        if not _RE_IDENTIFIER.fullmatch(name):
            warn(res, "LOAD_INVALID_MACRO_NAME", M.WARNING_INVALID_MACRO_NAME, ctx)
        self._unknown_keys("macro", item, ctx, res)
        cond = _decode(item, "condition", str, ctx)
        cond_ctx = _ctx(ctx, _get(item, "condition"), R.MACRO_CONDITION)
        append = bool(_decode(item, "append", bool, ctx, optional=True))
        if append:
            warn(res, "LOAD_DEPRECATED_ITEM", M.WARNING_APPEND, ctx)
        app, rep = self._overrides(item, ("condition",), ("condition",), ctx)
        throw(append and bool(app or rep), M.ERROR_OVERRIDE_APPEND, ctx)
        if append or "condition" in app:
            prev = self.col.macros.get(name)
            throw(prev is None, M.ERROR_NO_PREVIOUS_MACRO, ctx, "LOAD_ERR_VALIDATE")
            prev.cond = prev.cond + " " + cond
            prev.visibility = self.col.next_index()
        else:
            self.col.define(self.col.macros, MacroInfo(name, cond, ctx, cond_ctx))

    def _read_rule(self, item: yaml.MappingNode, parent: Context, res: FileResult) -> None:
        name = _decode(item, "rule", str, _ctx(parent, item, R.RULE))
        ctx = _ctx(parent, item, R.RULE, name)
        self._unknown_keys("rule", item, ctx, res)
        has_append = bool(_decode(item, "append", bool, ctx, optional=True))
        if has_append:
            warn(res, "LOAD_DEPRECATED_ITEM", M.WARNING_APPEND, ctx)
        app, rep = self._overrides(item, _RULE_APPENDABLE, _RULE_REPLACEABLE, ctx)
        throw(has_append and bool(app or rep), M.ERROR_OVERRIDE_APPEND, ctx)
        if app or rep:
            self._read_rule_overrides(item, name, ctx, res, app, rep)
        elif has_append:
            self._read_rule_append(item, name, ctx, res)
        elif all(_get(item, k) is None for k in ("condition", "output", "desc", "priority")):
            self._read_rule_enabled_only(item, name, ctx, res)
        else:
            self.col.define_rule(self._read_rule_definition(item, name, ctx, res), res)

    def _read_rule_overrides(
        self,
        item: yaml.MappingNode,
        name: str,
        ctx: Context,
        res: FileResult,
        app: list[str],
        rep: list[str],
    ) -> None:
        """A rule with ``override:``: one append and one replace update, each key checked against the
        keys the item defines (an override for an absent key, or a key without its override, fails)."""
        expected = {k for k in set(_RULE_APPENDABLE) | set(_RULE_REPLACEABLE) if _get(item, k) is not None}
        self._check_source(item, name, ctx)
        for kind, keys in (("append", app), ("replace", rep)):
            if not keys:
                continue
            upd = RuleUpdate(name, ctx)
            for key in _RULE_APPENDABLE if kind == "append" else _RULE_REPLACEABLE:
                if key not in keys:
                    continue
                throw(
                    key not in expected,
                    f"An {kind} override for '{key}' was specified but '{key}' is not defined",
                    ctx,
                )
                expected.discard(key)
                upd.values[key] = self._rule_value(item, key, ctx, res, append_mode=kind == "append")
                if key == "condition":
                    upd.cond_ctx = _ctx(ctx, _get(item, "condition"), R.RULE_CONDITION)
            if kind == "append":
                self.col.append_rule(upd)
            else:
                self.col.replace_rule(upd)
        for key in sorted(expected):
            throw(
                True,
                f"Unexpected key '{key}': no corresponding entry under 'override' is defined.",
                _ctx(ctx, _get(item, key), R.OVERRIDE, key),
            )

    def _read_rule_append(self, item: yaml.MappingNode, name: str, ctx: Context, res: FileResult) -> None:
        """The deprecated ``append: true``: more condition text and exceptions for an earlier rule."""
        self._check_source(item, name, ctx)
        upd = RuleUpdate(name, ctx)
        if _get(item, "condition") is not None:
            upd.values["condition"] = _decode(item, "condition", str, ctx)
            upd.cond_ctx = _ctx(ctx, _get(item, "condition"), R.RULE_CONDITION)
        if _get(item, "exceptions") is not None:
            upd.values["exceptions"] = self._read_exceptions(item, ctx, res, append=True)
        self.col.append_rule(upd)

    def _read_rule_enabled_only(
        self, item: yaml.MappingNode, name: str, ctx: Context, res: FileResult
    ) -> None:
        """The deprecated ``- rule: x`` + ``enabled:`` alone: switches an earlier rule on or off."""
        enabled = _decode(item, "enabled", bool, ctx)
        warn(res, "LOAD_DEPRECATED_ITEM", M.WARNING_ENABLED, ctx)
        prev = self.col.rules.get(name)
        throw(prev is None, M.MSG_RULE_HAS_ENABLED_KEY_BUT_NO, ctx, "LOAD_ERR_VALIDATE")
        prev.enabled = enabled

    def _read_rule_definition(
        self, item: yaml.MappingNode, name: str, ctx: Context, res: FileResult
    ) -> RuleInfo:
        """A full rule: condition, output, desc and priority required, the rest optional."""
        info = RuleInfo(name, ctx)
        info.cond = _decode(item, "condition", str, ctx)
        info.cond_ctx = _ctx(ctx, _get(item, "condition"), R.RULE_CONDITION)
        info.output = _decode(item, "output", str, ctx).strip()
        info.output_ctx = _ctx(ctx, _get(item, "output"), R.RULE_OUTPUT)
        info.desc = _decode(item, "desc", str, ctx)
        info.priority = self._rule_value(item, "priority", ctx, res, False)
        source = _decode(item, "source", str, ctx, optional=True)
        info.source = source if source is not None else "syscall"
        for key, attr in (
            ("enabled", "enabled"),
            ("warn_evttypes", "warn_evttypes"),
            ("skip-if-unknown-filter", "skip_if_unknown_filter"),
            ("capture", "capture"),
        ):
            val = _decode(item, key, bool, ctx, optional=True)
            if val is not None:
                setattr(info, attr, val)
        dur = _decode(item, "capture_duration", int, ctx, optional=True)
        info.capture_duration = dur or 0
        info.tags = set(_decode_seq(item, "tags", ctx, optional=True) or [])
        info.exceptions = self._read_exceptions(item, ctx, res, append=False)
        return info

    def _check_source(self, item: yaml.MappingNode, name: str, ctx: Context) -> None:
        node = _get(item, "source")
        prev = self.col.rules.get(name)
        if node is None or not _is_scalar(node) or not node.value or prev is None:
            return
        throw(prev.source != node.value, M.MSG_RULE_HAS_BEEN_RE_DEFINED_WITH, ctx, "LOAD_ERR_VALIDATE")

    def _rule_value(
        self, item: yaml.MappingNode, key: str, ctx: Context, res: FileResult, append_mode: bool
    ) -> Any:
        if key in ("condition", "output", "desc"):
            return _decode(item, key, str, ctx)
        if key == "tags":
            return set(_decode_seq(item, "tags", ctx, optional=True) or [])
        if key == "exceptions":
            return self._read_exceptions(item, ctx, res, append=append_mode)
        if key == "priority":
            text = _decode(item, "priority", str, ctx)
            prio = parse_priority(text)
            throw(prio is None, M.MSG_INVALID_PRIORITY, _ctx(ctx, _get(item, "priority"), R.RULE_PRIORITY))
            return prio
        if key == "capture_duration":
            return _decode(item, key, int, ctx)
        return _decode(item, key, bool, ctx)

    def _read_exceptions(
        self, item: yaml.MappingNode, parent: Context, res: FileResult, append: bool
    ) -> list[ExceptionInfo]:
        exs = _get(item, "exceptions")
        out: list[ExceptionInfo] = []
        if exs is None or _is_null(exs):
            return out
        exes_ctx = _ctx(parent, exs, R.EXCEPTIONS)
        throw(not _is_seq(exs), M.MSG_RULE_EXCEPTIONS_MUST_BE_A_SEQUENCE, exes_ctx)
        for ex in exs.value:
            tmp = _ctx(exes_ctx, ex, R.EXCEPTION)
            throw(not _is_map(ex), M.MSG_RULE_EXCEPTION_MUST_BE_A_MAPPING, tmp)
            name = _decode(ex, "name", str, tmp)
            ex_ctx = _ctx(parent, ex, R.EXCEPTION, name)
            info = ExceptionInfo(name, ex_ctx)
            if any(e.name == name for e in out):
                warn(
                    res,
                    "LOAD_EXCEPTION_NAME_NOT_UNIQUE",
                    f"Multiple definitions of exception '{name}' in the same rule",
                    ex_ctx,
                )
            info.fields = _exception_entry(ex, "fields", ex_ctx, optional=append)
            info.comps = _exception_entry(ex, "comps", ex_ctx, optional=True)
            vals = _get(ex, "values")
            if vals is not None:
                vals_ctx = _ctx(ex_ctx, vals, R.EXCEPTION_VALUES)
                throw(not _is_seq(vals), M.MSG_RULE_EXCEPTION_VALUES_MUST_BE_A, vals_ctx)
                for v in vals.value:
                    info.values.append(_exception_node(v, _ctx(vals_ctx, v, R.EXCEPTION_VALUE)))
            elif append:
                warn(
                    res, "LOAD_APPEND_NO_VALUES", M.MSG_OVERRIDING_APPENDING_EXCEPTION_WITH_NO_VALUES, ex_ctx
                )
            out.append(info)
        return out


def _yaml_values_over(text: str, limit: int) -> bool:
    """More than ``limit`` YAML nodes, counted on the parser's events (cheap) before anything is built."""
    loader = safeyaml.Loader(text)
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
    loader = safeyaml.Loader(text)
    docs: list[yaml.Node | None] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                safeyaml.measure(node)
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
            res.add(
                Problem(
                    "LOAD_ERR_YAML_PARSE",
                    f"yaml-cpp: error at line {mark.line + 1}, column {mark.column + 1}: {problem}",
                    ctx,
                    True,
                )
            )
        return None
    except yaml.YAMLError as exc:
        res.add(Problem("LOAD_ERR_YAML_PARSE", f"not valid YAML: {exc}", root, True))
        return None
    except RecursionError:
        res.add(Problem("LOAD_ERR_YAML_PARSE", M.MSG_THE_YAML_IS_NESTED_TOO_DEEPLY, root, True))
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
        throw(node.value == "", M.MSG_VALUE_MUST_BE_NON_EMPTY, ctx)
        return Entry(False, node.value)
    if _is_seq(node):
        return Entry(True, "", [_exception_node(v, _ctx(ctx, v, R.EXCEPTION)) for v in node.value])
    return Entry(False, "")


def _exception_entry(ex: yaml.MappingNode, key: str, ctx: Context, optional: bool) -> Entry:
    val = _get(ex, key)
    if val is None:
        throw(not optional, f"Item has no mapping for key '{key}'", ctx)
        return Entry()
    return _exception_node(val, _ctx(ctx, val, R.VALUE_FOR, key))
