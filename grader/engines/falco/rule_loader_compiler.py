"""Falco's ``rule_loader_compiler``: everything collected so far into what the engine runs. Lists expand
(one level), conditions get Falco's textual list substitution, macros resolve in order of visibility (a
macro's resolved tree is shared by every place that uses it), exceptions are appended as text, outputs and
conditions compile, and Falco's warnings are raised. Also the grader's limits on the work one rules set may
cause."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import results as R
from . import rule_loading_messages as M
from .ast import MAX_EXPANDED_NODES, And, Check, FieldRef, Identifier, Node, Not, Or, expanded_size, to_text
from .results import Context, FileResult, Problem
from .rule_loader_collector import (
    LIST_OPERATORS,
    PRIORITIES,
    Collector,
    ExceptionInfo,
    LoadError,
    RuleInfo,
    throw,
    transform_fields,
    warn,
)

MAX_CONDITION_NODES = MAX_EXPANDED_NODES  # and/or/not/checks of a condition once its macros are expanded


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


Compiled = tuple[list[CompiledRule], list[CompiledMacro], list[CompiledList]]


class Compiler:
    """Compiles a collector's content; keeps the parsed and compiled conditions across files (a condition
    compiled for the first file is not compiled again when the second file is loaded)."""

    def __init__(self, col: Collector) -> None:
        self.col = col
        self.parse_cache: dict[str, Node | Exception] = {}
        self.compile_cache: dict[Node, Any] = {}
        self.list_order: tuple[Any, ...] | None = None

    def compile(self, res: FileResult) -> Compiled | None:
        """Compile everything collected so far; the problems go to ``res`` (None after an error)."""
        warnings: list[Problem] = []
        try:
            lists, list_used = self._compile_lists()
            macros, macro_used = self._compile_macros(lists, list_used)
            rules = self._compile_rules(lists, list_used, macros, macro_used, warnings)
        except LoadError as exc:
            for w in warnings:
                res.add(w)
            res.add(Problem(exc.code, exc.message, exc.ctx, True))
            return None
        for w in warnings:
            res.add(w)
        compiled_macros = []
        for name, info in self.col.macros.items():
            used = name in macro_used
            if not used:
                warn(res, "LOAD_UNUSED_MACRO", M.WARNING_UNUSED_MACRO, info.ctx)
            compiled_macros.append(
                CompiledMacro(
                    name, info.cond, macros[name], used, info.ctx.filename, info.ctx.locations[-1].line + 1
                )
            )
        compiled_lists = []
        for name, info in self.col.lists.items():
            used = name in list_used
            if not used:
                warn(res, "LOAD_UNUSED_LIST", M.WARNING_UNUSED_LIST, info.ctx)
            compiled_lists.append(
                CompiledList(name, lists[name], used, info.ctx.filename, info.ctx.locations[-1].line + 1)
            )
        return rules, compiled_macros, compiled_lists

    def _compile_lists(self) -> tuple[dict[str, list[str]], set[str]]:
        out: dict[str, list[str]] = {}
        used: set[str] = set()
        for info in self.col.lists.values():
            items: list[str] = []
            for it in info.items:
                ref = self.col.lists.get(it)
                if ref is not None and ref.index < info.visibility:
                    used.add(ref.name)
                    items.extend(ref.items)
                else:
                    items.append(it)
                if len(items) > M.MAX_LIST_ITEMS:
                    raise LoadError("LOAD_ERR_VALIDATE", M.too_many_list_items(info.name), info.ctx)
            out[info.name] = items
        return out, used

    def _parse(self, condition: str, lists: dict[str, list[str]], list_used: set[str], ctx: Context) -> Node:
        from .parser import ParseError, parse

        if len(condition) > M.MAX_CONDITION_CHARS:
            raise LoadError(
                "LOAD_ERR_COMPILE_CONDITION", M.condition_too_long(_item_label(ctx), len(condition)), ctx
            )
        text = self._substitute_lists(condition, lists, list_used, ctx)
        cached = self.parse_cache.get(text)
        if cached is None:
            try:
                cached = parse(text)
            except ParseError as exc:
                cached = exc
            except RecursionError:
                cached = ParseError("condition is nested too deeply", 0, text)
            self.parse_cache[text] = cached
        if isinstance(cached, Exception):
            raise LoadError(
                "LOAD_ERR_COMPILE_CONDITION", str(cached), ctx.at_condition(text, cached.position)
            )
        return cached

    def _substitute_lists(
        self, text: str, lists: dict[str, list[str]], list_used: set[str], ctx: Context
    ) -> str:
        """Falco's textual list substitution, list by list in definition order, visiting only the lists whose
        name occurs in the text (a rules set with thousands of lists and conditions stays linear)."""
        import heapq

        order = self.list_order
        if order is None or order[0] is not lists:
            names = list(lists)
            plain = {n: i for i, n in enumerate(names) if not _has_delimiter(n)}
            odd = [(i, n) for i, n in enumerate(names) if _has_delimiter(n)]  # rare: matched by search
            order = self.list_order = (lists, names, plain, odd)
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
            text, hit = resolve_list(text, name, items, M.MAX_EXPANDED_CHARS)
            if len(text) > M.MAX_EXPANDED_CHARS:
                raise LoadError(
                    "LOAD_ERR_COMPILE_CONDITION", M.condition_grows_too_long(_item_label(ctx), name), ctx
                )
            if hit:
                list_used.add(name)
                for i in found_in(" ".join(items), index):
                    heapq.heappush(pending, i)
        return text

    def _compile_macros(
        self, lists: dict[str, list[str]], list_used: set[str]
    ) -> tuple[dict[str, Node], set[str]]:
        asts: dict[str, Node] = {}
        for info in self.col.macros.values():
            asts[info.name] = self._parse(info.cond, lists, list_used, info.cond_ctx)
        used: set[str] = set()
        for info in self.col.macros.values():

            def visible(name: str, cutoff: int = info.visibility) -> Node | None:
                macro = self.col.macros.get(name)
                return asts[name] if macro is not None and macro.index < cutoff else None

            asts[info.name] = self._resolve(asts[info.name], visible, info.cond, info.ctx, used)
        return asts, used

    def _resolve(
        self, node: Node, macros: Mapping[str, Node] | Any, condition: str, ctx: Context, used: set[str]
    ) -> Node:
        lookup = macros.get if isinstance(macros, Mapping) else macros
        errors: list[str] = []
        unknown: list[str] = []
        resolved: set[str] = set()
        try:
            out = _substitute(node, lookup, [], errors, unknown, resolved, {})
        except RecursionError:
            raise LoadError(
                "LOAD_ERR_COMPILE_CONDITION",
                "the condition is nested too deeply once its macros are expanded",
                ctx,
            ) from None
        if errors or unknown:
            msg = errors[0] if errors else f"Undefined macro '{unknown[0]}' used in filter."
            word = re.search(r"'([^']*)'", msg)
            pos = _word_position(condition, word.group(1) if word else "")
            raise LoadError("LOAD_ERR_VALIDATE", msg, ctx.at_condition(condition, pos))
        size = expanded_size(out, MAX_CONDITION_NODES)
        if size > MAX_CONDITION_NODES:
            biggest = sorted(
                resolved & set(self.col.macros),
                key=lambda m: -expanded_size(lookup(m) or Identifier(m), MAX_CONDITION_NODES),
            )[:1]
            raise LoadError(
                "LOAD_ERR_COMPILE_CONDITION",
                M.condition_too_large(_item_label(ctx), MAX_CONDITION_NODES, biggest[0] if biggest else None),
                ctx,
            )
        used |= resolved
        return out

    def _compile_rules(
        self,
        lists: dict[str, list[str]],
        list_used: set[str],
        macros: dict[str, Node],
        macro_used: set[str],
        warnings: list[Problem],
    ) -> list[CompiledRule]:
        out: list[CompiledRule] = []
        total_nodes = 0
        for r in self.col.rules.values():
            if r.unknown_source:
                continue
            condition = r.cond
            exception_fields: list[str] = []
            if r.exceptions:
                condition = build_exceptions(r.exceptions, condition, exception_fields, r.ctx)
            parsed_output = _rule_output(r, warnings)
            if parsed_output is None:
                continue
            output, fmt = parsed_output
            cond_ctx = r.cond_ctx or r.ctx
            ast = self._parse(condition, lists, list_used, cond_ctx)
            ast = self._resolve(ast, macros, condition, r.ctx, macro_used)
            total_nodes += expanded_size(ast)
            if total_nodes > M.MAX_TOTAL_NODES:
                raise LoadError("LOAD_ERR_COMPILE_CONDITION", M.rules_too_large(_item_label(r.ctx)), r.ctx)
            for code, message in resolve_warnings(ast):
                warnings.append(Problem(code, message, cond_ctx, False))
            compiled = self._compile_condition(ast)
            if isinstance(compiled, Exception):
                _skip_or_raise_condition_error(r, compiled, condition, cond_ctx, warnings)
                continue
            for w in getattr(compiled, "warnings", []) or []:
                warnings.append(
                    Problem("LOAD_COMPILE_CONDITION", str(w), cond_ctx.at_condition(condition, 0), False)
                )
            if r.warn_evttypes and (compiled.evttypes is None or len(compiled.evttypes) > 100):
                warnings.append(Problem("LOAD_NO_EVTTYPE", M.WARNING_NO_EVTTYPE, r.ctx, False))
            out.append(_compiled_rule(r, condition, ast, compiled, output, fmt, exception_fields))
        return out

    def _compile_condition(self, ast: Node) -> Any:
        """The compiled filter of a resolved condition, or the error compiling it (both cached: equal
        conditions of several rules compile once)."""
        from . import compiler as filter_compiler
        from .parser import ParseError

        compiled = self.compile_cache.get(ast)
        if compiled is None:
            try:
                compiled = filter_compiler.compile_filter(ast, {})
            except filter_compiler.CompileError as exc:
                compiled = exc
            except (ParseError, RecursionError) as exc:
                compiled = filter_compiler.CompileError(f"cannot compile the condition: {exc}")
            self.compile_cache[ast] = compiled
        return compiled


def _rule_output(r: RuleInfo, warnings: list[Problem]) -> tuple[str, Any] | None:
    """A rule's output text and its parsed format, with Falco's deprecation warnings; None when the rule
    is skipped (an unknown field in the output of a rule with ``skip-if-unknown-filter``)."""
    from . import outputs

    output = r.output
    if "%container.info" in output:
        warnings.append(Problem("LOAD_DEPRECATED_ITEM", M.WARNING_CONTAINER_INFO, r.ctx, False))
        output = output.replace("%container.info", "")
    try:
        fmt = outputs.OutputFormat.parse(output)
    except outputs.OutputFormatError as exc:
        if r.skip_if_unknown_filter and _is_unknown_filter_error(str(exc)):
            warnings.append(Problem("LOAD_UNKNOWN_FILTER", str(exc), r.output_ctx or r.ctx, False))
            return None
        raise LoadError("LOAD_ERR_COMPILE_OUTPUT", str(exc), r.output_ctx or r.ctx) from None
    for f in fmt.fields:
        if f in _DEPRECATED_FIELDS:
            warnings.append(
                Problem(
                    "LOAD_DEPRECATED_ITEM",
                    f"usage of deprecated field '{f}' has been detected in the rule output",
                    r.output_ctx or r.ctx,
                    False,
                )
            )
    return output, fmt


def _skip_or_raise_condition_error(
    r: RuleInfo, error: Exception, condition: str, cond_ctx: Context, warnings: list[Problem]
) -> None:
    """A condition that does not compile: a warning for a rule with ``skip-if-unknown-filter`` whose
    condition names an unknown field, else the load fails, pointing into the condition."""
    msg = str(error)
    pos = getattr(error, "position", None) or 0
    ctx = cond_ctx.at_condition(condition, pos if isinstance(pos, int) else 0)
    if r.skip_if_unknown_filter and _is_unknown_filter_error(msg):
        warnings.append(Problem("LOAD_UNKNOWN_FILTER", msg, ctx, False))
        return
    raise LoadError("LOAD_ERR_COMPILE_CONDITION", msg, ctx)


def _compiled_rule(
    r: RuleInfo,
    condition: str,
    ast: Node,
    compiled: Any,
    output: str,
    fmt: Any,
    exception_fields: list[str],
) -> CompiledRule:
    return CompiledRule(
        r.name,
        r.desc,
        condition,
        ast,
        compiled,
        output,
        fmt,
        r.priority,
        r.source,
        tuple(sorted(r.tags)),
        r.enabled,
        compiled.evttypes,
        tuple(exception_fields),
        r.capture,
        r.capture_duration,
        r.ctx.filename,
        r.ctx.locations[-1].line + 1,
    )


def _is_unknown_filter_error(msg: str) -> bool:
    return (
        "nonexistent field" in msg
        or "invalid formatting token" in msg
        or "unknown event type" in msg
        or "unknown filter" in msg
    )


def _quote_item(e: str) -> str:
    if " " in e and e[:1] not in ("'", '"'):
        return '"' + e + '"'
    return e


def _paren_item(e: str) -> str:
    return e if e.startswith("(") else "(" + e + ")"


def build_exceptions(
    exceptions: list[ExceptionInfo], condition: str, exception_fields: list[str], ctx: Context
) -> str:
    """Falco's ``build_rule_exception_infos``: the exceptions appended to the condition as text."""
    condition = "(" + condition + ")"
    for ex in exceptions:
        icond = ""
        if not ex.fields.is_list:
            for val in ex.values:
                throw(val.is_list, M.MSG_EXPECTED_VALUES_ARRAY_TO_CONTAIN_A, ex.ctx, "LOAD_ERR_VALIDATE")
                icond += ("(" + ex.fields.item + " " + ex.comps.item + " (") if not icond else ", "
                if ex.fields.item not in exception_fields:
                    exception_fields.append(ex.fields.item)
                icond += _quote_item(val.item)
            icond += "))" if icond else ""
        else:
            icond = "("
            for values in ex.values:
                throw(
                    len(ex.fields.items) != len(values.items),
                    M.MSG_FIELDS_AND_VALUES_LISTS_MUST_HAVE,
                    ex.ctx,
                    "LOAD_ERR_VALIDATE",
                )
                icond += "" if icond == "(" else " or "
                icond += "("
                for k, fld in enumerate(ex.fields.items):
                    icond += "" if k == 0 else " and "
                    value = values.items[k]
                    comp = ex.comps.items[k].item
                    if value.is_list:
                        istr = "(" + ", ".join(_quote_item(v.item) for v in value.items) + ")"
                    elif comp in LIST_OPERATORS:
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


class _Pieces:
    """The finished prefix of a string being rebuilt, kept in pieces (none empty) and joined once."""

    __slots__ = ("items", "length")

    def __init__(self) -> None:
        self.items: list[str] = []
        self.length = 0

    def append(self, text: str) -> None:
        self.items.append(text)
        self.length += len(text)

    def last_char(self) -> str:
        return self.items[-1][-1] if self.items else ""

    def drop_last_char(self) -> None:
        self.items[-1] = self.items[-1][:-1]
        if not self.items[-1]:
            self.items.pop()
        self.length -= 1

    def drop_trailing_blanks(self) -> None:
        while self.items and self.last_char() in _BLANKS:
            self.drop_last_char()


def resolve_list(cnd: str, name: str, items: list[str], limit: int | None = None) -> tuple[str, bool]:
    """Falco's textual list substitution (``resolve_list``): ``name`` bounded by delimiters -> its items.

    Falco rebuilds the whole string at each occurrence; this builds the result in pieces (same result), so
    a condition naming a list thousands of times costs linear time, and stops once it passes ``limit``."""
    sub = ", ".join(_quote_item(v) for v in items)
    done = _Pieces()
    pos = 0  # the current string is "".join(done.items) + cnd[pos:]
    used = False
    start = cnd.find(name)
    while start != -1:
        end = start + len(name)
        before = cnd[start - 1] if start > pos else done.last_char()
        if not ((before == "" or before in _DELIMS) and (end >= len(cnd) or cnd[end] in _DELIMS)):
            start = cnd.find(name, start + 1)
            continue
        start, end = _span_to_replace(cnd, pos, start, end, done, not sub)
        if start > pos:
            done.append(cnd[pos:start])
        had_prefix = done.length > 0
        if had_prefix:
            done.append(" ")
        done.append(sub + " ")
        pos = end
        used = True
        if limit is not None and done.length > limit:
            break
        # Falco resumes one character further when the substitution started the string
        start = cnd.find(name, pos if had_prefix else pos + 1)
    if not used:
        return cnd, False
    done.append(cnd[pos:])
    return "".join(done.items), True


def _span_to_replace(cnd: str, pos: int, start: int, end: int, done: _Pieces, empty: bool) -> tuple[int, int]:
    """The span of one use of a list name, widened as Falco widens it: over the blanks on both sides and,
    for an ``empty`` list, over one comma next to it. Where the span reaches back to ``pos``, the blanks
    (and that comma) are taken off the end of the finished prefix ``done`` instead."""
    while start > pos and cnd[start - 1] in _BLANKS:
        start -= 1
    if start == pos:
        done.drop_trailing_blanks()
    while end < len(cnd) and cnd[end] in _BLANKS:
        end += 1
    if empty:
        prev = cnd[start - 1] if start > pos else done.last_char()
        if prev == ",":
            if start > pos:
                start -= 1
            else:
                done.drop_last_char()
        elif end < len(cnd) and cnd[end] == ",":
            end += 1
    return start, end


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


def _substitute(
    node: Node,
    lookup: Any,
    path: list[str],
    errors: list[str],
    unknown: list[str],
    resolved: set[str],
    memo: dict[int, Node],
) -> Node:
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


_DEPRECATED_FIELDS = (
    "evt.dir",
    "evt.latency",
    "evt.latency.s",
    "evt.latency.ns",
    "evt.latency.human",
    "evt.wait_latency",
)
_DEPRECATED_DESC = {
    "evt.dir": "due to the drop of enter events, 'evt.dir = <' always evaluates to true, and "
    "'evt.dir = >' always evaluates to false. The rule expression can be simplified by removing the "
    "condition on 'evt.dir'",
}
_LATENCY_DESC = "field is not available due to the drop of enter events."
_EQUALITY_OPS = frozenset({"==", "=", "!=", "in", "intersects", "pmatch"})


def resolve_warnings(node: Node) -> list[tuple[str, str]]:
    """Falco's ``filter_warning_resolver``: unsafe ``<NA>`` comparisons on ka./jevt. fields, deprecated
    fields."""
    from .ast import walk

    codes: list[str] = []
    deprecated: list[str] = []
    for n in walk(node):
        if not isinstance(n, Check):
            continue
        lhs = n.field
        names = [lhs.name] if isinstance(lhs, FieldRef) else [f.name for f in transform_fields(lhs)]
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
