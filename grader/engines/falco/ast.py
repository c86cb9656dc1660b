"""AST of Falco's condition (filter) language, as libsinsp builds it.

Node shapes (all frozen dataclasses, hashable, safe to share between rules):

* ``And(children)`` / ``Or(children)``: n-ary, at least two children.
* ``Not(child)``.
* ``Identifier(name)``: a macro reference (a bare word where a check could stand).
* ``Check(field, op, value, modifier)``: one comparison.

  - ``field`` (the left-hand side) is a ``FieldRef`` or, for the multi-argument transformers of
    libs 0.24+ (``join``, ``concat``, ``getopt``) and transformers written with a ``[arg]``, a ``Transform``.
  - ``op`` is the operator exactly as written (``=``, ``==``, ``!=``, ``<``, ``contains``, ``in``,
    ``exists`` ...). ``==`` and ``=`` mean the same; ``to_text`` keeps the spelling.
  - ``value`` (the right-hand side, a ``Value``) is one of:

    - ``str``: a literal (already unescaped; numbers stay text, the compiler converts them by field type);
    - ``tuple[str, ...]``: a list literal ``(a, b)`` (``in``/``intersects``/``pmatch`` and the modifiers);
    - ``ListRef(name)``: a bare identifier where a list is expected (``proc.name in my_list`` when the
      loader did not substitute it); libsinsp treats it as the one-element list ``(my_list)``;
    - ``FieldRef``: a field compared field-to-field. ``val(proc.pname)`` is ``FieldRef("proc.pname")``;
      ``tolower(proc.pname)`` is ``FieldRef("proc.pname", transformers=("tolower",))``;
    - ``Transform``: a multi-argument transformer on the right-hand side;
    - ``None`` for ``exists``.
  - ``modifier``: ``"oneof"``, ``"anyof"``, ``"allof"`` (Falco 0.44 ``op oneof (...)``) or ``None``.

* ``FieldRef(name, arg, transformers)``: ``proc.aname[2]`` is ``FieldRef("proc.aname", "2")``;
  ``evt.arg.flags`` is kept as written (``FieldRef("evt.arg.flags")``; the field catalog splits the
  dotted argument). ``transformers`` lists unary transformers outer to inner:
  ``toupper(b64(x))`` is ``FieldRef("x", transformers=("toupper", "b64"))``.
* ``Transform(name, args, arg)``: a transformer call that a ``FieldRef`` cannot express: ``join("-",
  (fd.name, fd.directory))``, ``concat(a, "x")``, ``getopt(proc.args, "nt:")[t]``, ``toupper(fd.name)[x]``.
  ``args`` items are ``FieldRef``, ``Transform``, ``str`` literals (quoted strings and numbers) and
  ``TList`` (a parenthesised transformer list).

``to_text`` renders Falco's compiled form (``falco -L`` ``condition_compiled``): ``(a and b)``,
``(a or b)``, ``not x``, ``f op v``, lists ``(a, b)``, strings quoted and escaped only when needed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldRef:
    name: str
    arg: str | None = None
    transformers: tuple[str, ...] = ()  # outer -> inner

    @property
    def full_name(self) -> str:
        """``name[arg]`` (no transformers): how Falco names the field in outputs and messages."""
        return self.name if self.arg is None else f"{self.name}[{self.arg}]"


@dataclass(frozen=True, slots=True)
class TList:
    """A parenthesised list inside a transformer call: ``join("-", (fd.name, "x"))``."""

    items: tuple[Operand, ...]


@dataclass(frozen=True, slots=True)
class Transform:
    name: str
    args: tuple[Operand, ...]
    arg: str | None = None


@dataclass(frozen=True, slots=True)
class ListRef:
    """A bare list name on the right of ``in``/``intersects``/``pmatch`` or after a modifier."""

    name: str


Operand = FieldRef | Transform | TList | str
Value = str | tuple[str, ...] | ListRef | FieldRef | Transform


@dataclass(frozen=True, slots=True)
class Check:
    field: FieldRef | Transform
    op: str
    value: Value | None = None
    modifier: str | None = None


@dataclass(frozen=True, slots=True)
class Identifier:
    name: str


@dataclass(frozen=True, slots=True)
class Not:
    child: Node


@dataclass(frozen=True, slots=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Node, ...]


Node = And | Or | Not | Identifier | Check

UNARY_TRANSFORMERS = frozenset({"tolower", "toupper", "b64", "basename", "len"})
MULTI_TRANSFORMERS = frozenset({"join", "concat", "getopt"})
TRANSFORMERS = UNARY_TRANSFORMERS | MULTI_TRANSFORMERS


# ---------------------------------------------------------------- rendering

_ESCAPES = {"\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\", '"': '\\"'}
_QUOTE_TRIGGERS = frozenset(" '\b\f\n\r\t\\\"")


def escape_str(value: str) -> str:
    """libsinsp ``escape_str``: quote with ``"`` (escaping) when the text has blanks, quotes or backslashes.

    Empty strings are quoted too, so the rendered condition parses back to the same AST."""
    if value and not (_QUOTE_TRIGGERS & set(value)) and not _needs_quotes_for_grammar(value):
        return value
    return _quote(value)


def _quote(value: str) -> str:
    body = "".join(_ESCAPES.get(c, c) for c in value)
    if body.endswith("\\\\"):
        # libsinsp's lexer never closes a quote that follows a backslash; "\ " also reads as a backslash
        body = body[:-2] + "\\ "
    return '"' + body + '"'


def _needs_quotes_for_grammar(value: str) -> bool:
    # Characters a bare string cannot hold; libsinsp does not quote them, which makes its output
    # unparsable, so we quote (the text is otherwise identical for every upstream rule).
    return any(c in "(),=" for c in value) or any(ord(c) < 32 or c in "\v" for c in value)


_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+|[+\-]?[0-9]+\.?[0-9]*(?:[eE][+\-][0-9]+)?")


def _operand_text(op: Operand) -> str:
    if isinstance(op, str):
        # transformer arguments are quoted strings or numbers (never bare words)
        if _NUMBER.fullmatch(op):
            return op
        return _quote(op)
    if isinstance(op, TList):
        return "(" + ", ".join(_operand_text(i) for i in op.items) + ")"
    return field_text(op)


def field_text(field: FieldRef | Transform, rhs: bool = False) -> str:
    """Text of a field operand; a plain right-hand field is ``val(f)``."""
    if isinstance(field, Transform):
        text = f"{field.name}(" + ", ".join(_operand_text(a) for a in field.args) + ")"
        return text if field.arg is None else f"{text}[{_arg_text(field.arg)}]"
    text = field.name if field.arg is None else f"{field.name}[{_arg_text(field.arg)}]"
    if field.transformers:
        for t in reversed(field.transformers):
            text = f"{t}({text})"
    elif rhs:
        text = f"val({text})"
    return text


_BARE_ARG = re.compile(r"[^\]\[\"' \t\n\v\f\r]+")


def _arg_text(arg: str) -> str:
    return arg if _BARE_ARG.fullmatch(arg) else _quote(arg)


def value_text(value: Value | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return escape_str(value)
    if isinstance(value, tuple):
        return "(" + ", ".join(escape_str(v) for v in value) + ")"
    if isinstance(value, ListRef):
        return value.name
    return field_text(value, rhs=True)


def to_text(node: Node) -> str:
    """Falco's compiled form of a condition: ``(a and b)``, ``not x``, ``f op v``, ``(a, b)``."""
    if isinstance(node, Check):
        left = field_text(node.field)
        if node.value is None:
            return f"{left} {node.op}"
        mod = f"{node.modifier} " if node.modifier else ""
        return f"{left} {node.op} {mod}{value_text(node.value)}"
    if isinstance(node, Identifier):
        return node.name
    if isinstance(node, Not):
        # "not not x" would read back as x: a doubled negation keeps its parentheses
        inner = to_text(node.child)
        return "not " + (f"({inner})" if isinstance(node.child, Not) else inner)
    if isinstance(node, And):
        return "(" + " and ".join(to_text(c) for c in node.children) + ")"
    if isinstance(node, Or):
        return "(" + " or ".join(to_text(c) for c in node.children) + ")"
    raise TypeError(f"not a condition node: {node!r}")


# ---------------------------------------------------------------- traversal


def walk(node: Node) -> Iterator[Node]:
    """Every node, pre-order (iterative: safe on the deepest trees the parser accepts)."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        if isinstance(current, (And, Or)):
            stack.extend(reversed(current.children))
        elif isinstance(current, Not):
            stack.append(current.child)


def identifiers(node: Node) -> set[str]:
    """Names of the macros a condition references."""
    return {n.name for n in walk(node) if isinstance(n, Identifier)}


def _operand_fields(op: object) -> Iterator[FieldRef]:
    if isinstance(op, FieldRef):
        yield op
    elif isinstance(op, Transform):
        for a in op.args:
            yield from _operand_fields(a)
    elif isinstance(op, TList):
        for a in op.items:
            yield from _operand_fields(a)


def fields(node: Node) -> Iterator[FieldRef]:
    """Every field a condition reads, both sides of every check."""
    for n in walk(node):
        if isinstance(n, Check):
            yield from _operand_fields(n.field)
            yield from _operand_fields(n.value)


def checks(node: Node) -> Iterator[Check]:
    return (n for n in walk(node) if isinstance(n, Check))


def replace_identifiers(node: Node, macros: dict[str, Node]) -> Node:
    """Substitute macro references (one level; the loader passes already-expanded macro ASTs)."""
    if isinstance(node, Identifier):
        return macros.get(node.name, node)
    if isinstance(node, Not):
        child = replace_identifiers(node.child, macros)
        return node if child is node.child else Not(child)
    if isinstance(node, (And, Or)):
        children = tuple(replace_identifiers(c, macros) for c in node.children)
        if all(a is b for a, b in zip(children, node.children, strict=True)):
            return node
        return type(node)(children)
    return node


# and/or/not/checks of one condition once its macros are expanded; Falco's own rules stay under 200.
MAX_EXPANDED_NODES = 10_000


def expanded_size(node: Node, limit: int = MAX_EXPANDED_NODES) -> int:
    """Nodes of ``node`` as a tree (shared subtrees counted each time they occur), computed over the
    shared graph once per distinct node, so a macro used twice by each of twenty macros costs 20 steps,
    not 2**20. Stops counting past ``limit`` (returns ``limit + 1``)."""
    sizes: dict[int, int] = {}
    keep: list[Node] = []  # ids stay valid while the nodes are alive
    stack: list[tuple[Node, bool]] = [(node, False)]
    while stack:
        n, done = stack.pop()
        key = id(n)
        if key in sizes:
            continue
        kids: tuple[Node, ...] = (
            (n.child,) if isinstance(n, Not) else n.children if isinstance(n, (And, Or)) else ()
        )
        if done or not kids:
            sizes[key] = min(limit + 1, 1 + sum(sizes[id(k)] for k in kids))
            keep.append(n)
            continue
        stack.append((n, True))
        stack.extend((k, False) for k in kids if id(k) not in sizes)
    return sizes[id(node)]
