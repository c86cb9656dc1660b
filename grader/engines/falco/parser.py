"""Parser of Falco's condition language: the grammar of libsinsp's ``filter/parser.cpp`` (libs 0.25).

A hand-written recursive-descent parser that follows libsinsp function by function, so that it accepts
and rejects the same texts with the same messages:

* ``not`` > ``and`` > ``or``; ``and``/``or`` need a blank or ``(`` after them;
* word operators need a blank after them (``contains x``), symbol operators do not (``fd.num>=0``);
* bare strings stop at blanks, ``( ) , = " '``; quoted strings use libsinsp's escapes;
* field arguments ``f[arg]``, transformers (``tolower(...)``, ``join("-", (a, b))``, ``getopt(...)[t]``),
  ``val(field)`` on the right, ``oneof``/``anyof``/``allof`` modifiers (Falco 0.44);
* nesting is limited to depth 100 as libs master does ("exceeded max depth limit of 100"), so a
  hostile condition (100,000 open parentheses) fails fast instead of exhausting the stack.

Every failure is a ``ParseError`` with libsinsp's message and the 0-based offset where it happened.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from .ast import (
    UNARY_TRANSFORMERS,
    And,
    Check,
    FieldRef,
    Identifier,
    ListRef,
    Node,
    Not,
    Operand,
    Or,
    TList,
    Transform,
    Value,
)

MAX_DEPTH = 100


class ParseError(Exception):
    """A condition libsinsp would reject; ``message`` is libsinsp's text, ``position`` a 0-based offset."""

    def __init__(self, message: str, position: int = 0, text: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.position = position
        before = text[:position]
        self.line = before.count("\n") + before.count("\r") + 1
        last_break = max(before.rfind("\n"), before.rfind("\r"))
        self.column = position - last_break  # 1-based, as libsinsp's pos_info

    def __str__(self) -> str:
        return self.message


# libsinsp's lexer regexes ([[:space:]] is POSIX space: space \t \n \v \f \r).
_SPACE = " \t\n\v\f\r"
_RGX_NOT_BLANK = re.compile(r"not[ \t\n\v\f\r]+")
_RGX_IDENTIFIER = re.compile(r"[a-zA-Z]+[a-zA-Z0-9_]*")
_RGX_FIELD_NAME = re.compile(r"[a-zA-Z]+[a-zA-Z0-9_]*(?:\.[a-zA-Z]+[a-zA-Z0-9_]*)+")
_RGX_FIELD_ARG_BARESTR = re.compile(r"[^\]\[\"' \t\n\v\f\r]+")
_RGX_HEX_NUM = re.compile(r"0[xX][0-9a-fA-F]+")
_RGX_NUM = re.compile(r"[+\-]?[0-9]+\.?[0-9]*(?:[eE][+\-][0-9]+)?")
_RGX_BARESTR = re.compile(r"[^()\"' \t\n\v\f\r=,]+")
_RGX_MODIFIER = re.compile(r"(oneof|anyof|allof)[ \t\b\r\n]+")
_BLANKS = " \t\b\r\n"

UNARY_OPS = ("exists",)
NUM_OPS = ("<=", "<", ">=", ">")
# A trailing space marks operators that need a blank after them.
STR_OPS = (
    "==",
    "=",
    "!=",
    "glob ",
    "iglob ",
    "contains ",
    "icontains ",
    "bcontains ",
    "startswith ",
    "bstartswith ",
    "endswith ",
    "regex ",
)
LIST_OPS = ("intersects", "in", "pmatch")
MODIFIERS = ("oneof", "anyof", "allof")
FIELD_TRANSFORMERS = ("tolower(", "toupper(", "b64(", "basename(", "len(", "join(", "concat(", "getopt(")

SUPPORTED_OPERATORS = tuple(op.strip() for op in UNARY_OPS + NUM_OPS + STR_OPS + LIST_OPS)
_TRANSFORMER_NAMES = ["val"] + [t[:-1] for t in FIELD_TRANSFORMERS]


def _token_list(values: list[str] | tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


_OPS_TEXT = _token_list(SUPPORTED_OPERATORS)
_TRANSFORMERS_TEXT = _token_list(_TRANSFORMER_NAMES)


def unescape(token: str) -> str:
    """libsinsp ``unescape_str`` on a quoted token (delimiters included), plus libs master's ``\\xHH``.

    ``\\xHH`` escapes are bytes: the literal is re-decoded as UTF-8 with ``surrogateescape`` so that
    ``"\\xc3\\xa9"`` is ``é`` and an invalid byte such as ``"\\xff"`` matches event text that carried
    the same invalid byte (see events.py)."""
    quote = token[0]
    out: list[str] = []
    has_bytes = False
    i, end = 1, len(token) - 1
    while i < end:
        c = token[i]
        i += 1
        if c != "\\":
            out.append(c)
            continue
        e = token[i]
        i += 1
        simple = _SIMPLE_ESCAPES.get(e)
        if simple is not None:
            out.append(simple)
        elif e == '"' or e == "'":
            if quote != e:
                other = "'" if e == '"' else '"'
                raise ValueError(f"invalid \\{e} escape in {other}-quoted string")
            out.append(e)
        elif e == "x" and i + 2 <= end and _HEX2.fullmatch(token, i, i + 2):
            out.append(_BYTE_MARK + token[i : i + 2])
            has_bytes = True
            i += 2
        else:
            raise ValueError(f"unsupported string escape sequence: \\{e}")
    if not has_bytes:
        return "".join(out)
    raw = bytearray()
    for piece in out:
        if piece.startswith(_BYTE_MARK) and len(piece) == 3:
            raw.append(int(piece[1:], 16))
        else:
            raw += piece.encode("utf-8", "surrogateescape")
    return raw.decode("utf-8", "surrogateescape")


# "\ " is accepted as a backslash: libsinsp keeps it for old, wrongly escaped upstream rules.
_SIMPLE_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", " ": "\\", "\\": "\\", "/": "/"}
_HEX2 = re.compile(r"[0-9a-fA-F]{2}")
_BYTE_MARK = "\x00"  # internal marker; a real NUL is never followed by two hex digits in one piece


class _Parser:
    def __init__(self, text: str) -> None:
        self.full = text
        # libsinsp lexes a C string: a NUL byte ends the input it can see.
        nul = text.find("\0")
        self.text = text if nul < 0 else text[:nul]
        self.pos = 0
        self.depth = 0
        self.last = ""

    # ------------------------------------------------------------ errors and depth
    def fail(self, message: str) -> ParseError:
        return ParseError(message, self.pos, self.full)

    def enter(self) -> None:
        self.depth += 1
        if self.depth >= MAX_DEPTH:
            raise self.fail(f"exceeded max depth limit of {MAX_DEPTH}")

    # ------------------------------------------------------------ lexing helpers
    def blank(self) -> bool:
        start = self.pos
        text, n = self.text, len(self.text)
        while self.pos < n and text[self.pos] in _BLANKS:
            self.pos += 1
        return self.pos != start

    def lit(self, s: str) -> bool:
        if self.text.startswith(s, self.pos):
            self.last = s
            self.pos += len(s)
            return True
        return False

    def rgx(self, pattern: re.Pattern[str]) -> bool:
        m = pattern.match(self.text, self.pos)
        if m is None:
            return False
        self.last = m.group(0)
        self.pos = m.end()
        return True

    def lit_any(self, options: tuple[str, ...]) -> bool:
        return any(self.lit(o) for o in options)

    def operator(self, options: tuple[str, ...]) -> bool:
        for op in options:
            if not op.endswith(" "):
                if self.lit(op):
                    return True
                continue
            # libsinsp consumes the word, then demands a blank (without rewinding when there is none)
            if self.lit(op[:-1]):
                return self.blank()
        return False

    def quoted(self) -> bool:
        text, start = self.text, self.pos
        if start >= len(text) or text[start] not in "'\"":
            return False
        delimiter = text[start]
        prev = "\\"
        i = start
        self.last = ""
        while i < len(text):
            c = text[i]
            if c == delimiter and prev != "\\" and i > start:
                token = text[start : i + 1]
                self.pos = i + 1
                try:
                    self.last = unescape(token)
                except ValueError as err:
                    raise self.fail(str(err)) from None
                return True
            prev = c
            i += 1
        return False

    # ------------------------------------------------------------ grammar
    def parse(self) -> Node:
        if not self.full:
            raise ParseError("filter input string is empty", 0, self.full)
        result = self.parse_or()
        if self.pos != len(self.full):
            raise self.fail(f"unexpected token after '{self.last}', expecting 'or', 'and'")
        return result

    def parse_or(self) -> Node:
        return self._parse_nary("or", self.parse_and, Or)

    def parse_and(self) -> Node:
        return self._parse_nary("and", self.parse_not, And)

    def _parse_nary(self, keyword: str, operand: Callable[[], Node], node_type: type[And] | type[Or]) -> Node:
        """``operand (keyword (blank operand | '(' Or ')'))*`` as libsinsp's parse_or/parse_and."""
        self.enter()
        self.blank()
        children = [operand()]
        self.blank()
        while self.lit(keyword):
            if not self.blank():
                if self.lit("("):
                    children.append(self.parse_embedded_remainder())
                else:
                    raise self.fail(f"expected blank or '(' after '{keyword}'")
            else:
                children.append(operand())
            self.blank()
        self.depth -= 1
        return children[0] if len(children) == 1 else node_type(tuple(children))

    def parse_not(self) -> Node:
        self.enter()
        negate = False
        self.blank()
        while self.rgx(_RGX_NOT_BLANK):
            negate = not negate
        if self.lit("not("):
            negate = not negate
            child = self.parse_embedded_remainder()
        else:
            child = self.parse_check()
        self.depth -= 1
        return Not(child) if negate else child

    def parse_embedded_remainder(self) -> Node:
        self.enter()
        self.blank()
        child = self.parse_or()
        self.blank()
        if not self.lit(")"):
            raise self.fail("expected a ')' token")
        self.depth -= 1
        return child

    def parse_check(self) -> Node:
        self.enter()
        self.blank()
        if self.lit("("):
            node = self.parse_embedded_remainder()
        elif self.rgx(_RGX_FIELD_NAME):
            left = self.parse_field_remainder(self.last)
            node = self.parse_condition(left)
        elif self.lit_any(FIELD_TRANSFORMERS):
            self.blank()
            left = self.parse_transformer_remainder(self.last[:-1])
            node = self.parse_condition(left)
        elif self.rgx(_RGX_IDENTIFIER):
            node = Identifier(self.last)
        else:
            raise self.fail("expected a '(' token, a field check, or an identifier")
        self.depth -= 1
        return node

    def parse_field_arg(self) -> str | None:
        if not self.lit("["):
            return None
        if not self.quoted() and not self.rgx(_RGX_FIELD_ARG_BARESTR):
            raise self.fail("expected a valid field argument: a quoted string or a bare string")
        arg = self.last
        if not self.lit("]"):
            raise self.fail("expected a ']' token")
        return arg

    def parse_field_remainder(self, name: str) -> FieldRef:
        self.enter()
        arg = self.parse_field_arg()
        self.depth -= 1
        return FieldRef(name, arg)

    def parse_transformer_remainder(self, name: str) -> FieldRef | Transform:
        """After ``name(``: ``Arg (',' Arg)* ')' ['[' arg ']']``."""
        self.enter()
        self.blank()
        args: list[Operand] = []
        while True:
            args.append(self.parse_transformer_arg())
            self.blank()
            if not self.lit(","):
                break
        self.blank()
        if not self.lit(")"):
            raise self.fail("expected a ')' token closing the transformer")
        arg = self.parse_field_arg()
        self.depth -= 1
        return _make_transform(name, args, arg)

    def parse_transformer_arg(self) -> Operand:
        self.enter()
        self.blank()
        if self.rgx(_RGX_HEX_NUM) or self.rgx(_RGX_NUM) or self.quoted():
            result: Operand = self.last
        elif self.lit("("):
            result = self.parse_transformer_list()
        elif self.lit_any(FIELD_TRANSFORMERS):
            result = self.parse_transformer_remainder(self.last[:-1])
        elif self.rgx(_RGX_FIELD_NAME):
            result = self.parse_field_remainder(self.last)
        else:
            raise self.fail(
                "expected field transformer argument: "
                "field, transformer, quoted string, number, or transformer list"
            )
        self.depth -= 1
        return result

    def parse_transformer_list(self) -> TList:
        items: list[Operand] = []
        self.blank()
        if self.lit(")"):
            return TList(())
        items.append(self.parse_transformer_list_arg())
        self.blank()
        while self.lit(","):
            self.blank()
            items.append(self.parse_transformer_list_arg())
            self.blank()
        if not self.lit(")"):
            raise self.fail("expected ')'")
        return TList(tuple(items))

    def parse_transformer_list_arg(self) -> Operand:
        if self.rgx(_RGX_FIELD_NAME):
            return self.parse_field_remainder(self.last)
        if self.lit_any(FIELD_TRANSFORMERS):
            self.blank()
            return self.parse_transformer_remainder(self.last[:-1])
        if self.quoted() or self.rgx(_RGX_HEX_NUM) or self.rgx(_RGX_NUM):
            return self.last
        raise self.fail("expected transformer list argument: field, transformer, quoted string, or number")

    def parse_condition(self, left: FieldRef | Transform) -> Check:
        self.enter()
        self.blank()
        if self.operator(UNARY_OPS):
            self.depth -= 1
            return Check(left, self.last.strip(), None)
        self.blank()
        modifier = None
        if self.operator(NUM_OPS):
            op = self.last
            value: Value = self.parse_num_value_or_transformer()
        elif self.operator(STR_OPS):
            op = self.last
            modified = self.try_modifier(spaced=op.endswith(" ") or op[-1].isalpha())
            if modified is not None:
                modifier, value = modified
            else:
                value = self.parse_str_value_or_transformer(False)
        elif self.operator(LIST_OPS):
            op = self.last
            value = self.parse_list_value_or_transformer()
        else:
            raise self.fail(f"expected a valid check operator: one of {_OPS_TEXT}")
        self.depth -= 1
        return Check(left, op.strip(), value, modifier)

    def try_modifier(self, spaced: bool) -> tuple[str, tuple[str, ...] | ListRef] | None:
        """``op oneof|anyof|allof (list)`` or ``... list_name``; otherwise the word is a plain string.

        The modifier needs a blank on both sides (``==oneof (a)`` and ``== oneof(a)`` are rejected, as
        the word then reads as a bare string followed by leftover text)."""
        start, last = self.pos, self.last
        if not (self.blank() or spaced) or not self.rgx(_RGX_MODIFIER):
            self.pos, self.last = start, last
            return None
        modifier = self.last.rstrip(_BLANKS)
        if self.lit("("):
            return modifier, self.parse_paren_list()
        if self.rgx(_RGX_IDENTIFIER) and self.last not in ("and", "or"):
            return modifier, ListRef(self.last)
        self.pos, self.last = start, last
        return None

    def parse_num_value_or_transformer(self) -> Value:
        self.enter()
        self.blank()
        result = self.try_transformer_or_val()
        if result is None:
            if self.rgx(_RGX_HEX_NUM) or self.rgx(_RGX_NUM):
                result = self.last
            else:
                raise self.fail(
                    f"expected a number value or a field with a valid transformer: {_TRANSFORMERS_TEXT}"
                )
        self.depth -= 1
        return result

    def parse_str_value_or_transformer(self, no_transformer: bool) -> Value:
        self.enter()
        self.blank()
        if not no_transformer:
            result = self.try_transformer_or_val()
            if result is not None:
                self.depth -= 1
                return result
        if self.quoted() or self.rgx(_RGX_BARESTR):
            self.depth -= 1
            return self.last
        if no_transformer:
            raise self.fail("expected a string value")
        raise self.fail(f"expected a string value or a field with a valid transformer: {_TRANSFORMERS_TEXT}")

    def parse_paren_list(self) -> tuple[str, ...]:
        """After ``(``: string items only; ``()`` is an empty list, ``(a,)`` is an error."""
        values: list[str] = []
        self.blank()
        depth = self.depth
        try:
            first = self.parse_str_value_or_transformer(True)
        except ParseError:
            self.depth = depth
            first = None
        if first is not None:
            values.append(first)  # type: ignore[arg-type]
            self.blank()
            while self.lit(","):
                values.append(self.parse_str_value_or_transformer(True))  # type: ignore[arg-type]
                self.blank()
        if not self.lit(")"):
            raise self.fail("expected a ')' token")
        return tuple(values)

    def parse_list_value_or_transformer(self) -> Value:
        self.enter()
        self.blank()
        if self.lit("("):
            result: Value = self.parse_paren_list()
        else:
            transformed = self.try_transformer_or_val()
            if transformed is not None:
                result = transformed
            elif self.rgx(_RGX_IDENTIFIER):
                result = ListRef(self.last)
            else:
                raise self.fail(
                    "expected a list, an identifier, or a field with a valid transformer: "
                    f"{_TRANSFORMERS_TEXT}"
                )
        self.depth -= 1
        return result

    def try_transformer_or_val(self) -> FieldRef | Transform | None:
        self.enter()
        self.blank()
        result: FieldRef | Transform | None = None
        if self.lit("val("):
            self.blank()
            if not self.rgx(_RGX_FIELD_NAME):
                raise self.fail("expected a field within 'val' transformer")
            field = self.parse_field_remainder(self.last)
            self.blank()
            if not self.lit(")"):
                raise self.fail("expected a ')' token closing the transformer")
            arg = self.parse_field_arg()
            result = field if arg is None else Transform("val", (field,), arg)
        elif self.lit_any(FIELD_TRANSFORMERS):
            self.blank()
            result = self.parse_transformer_remainder(self.last[:-1])
        self.depth -= 1
        return result


def _make_transform(name: str, args: list[Operand], arg: str | None) -> FieldRef | Transform:
    # A chain of one-argument transformers over a plain field collapses into FieldRef.transformers.
    if name in UNARY_TRANSFORMERS and arg is None and len(args) == 1 and isinstance(args[0], FieldRef):
        inner = args[0]
        return FieldRef(inner.name, inner.arg, (name,) + inner.transformers)
    return Transform(name, tuple(args), arg)


def parse(text: str) -> Node:
    """Parse a condition into an AST; raises ``ParseError`` exactly where libsinsp would."""
    if not isinstance(text, str):
        raise ParseError("filter input string is not text", 0, "")
    return _Parser(text).parse()
