"""glibc ``fnmatch(pattern, string, 0)`` (and ``FNM_CASEFOLD``) as Falco's ``glob``/``iglob`` use it.

Differences from Python's ``fnmatch`` that matter here: ``*`` and ``?`` also match ``/`` (flags 0),
``[!...]`` and ``[^...]`` both negate, ``[[:alpha:]]`` classes work, a backslash escapes the next
character, an unterminated ``[`` is a literal ``[``, and there is no normcase.

Matching is a two-pointer algorithm with one backtrack point per ``*``: O(len(pattern)*len(text)) in the
worst case, never exponential, whatever pattern a learner writes. Common shapes (no wildcard,
``prefix*``, ``*suffix``, ``*infix*``) compile to plain string operations.
"""

from __future__ import annotations

from collections.abc import Callable

_CLASSES: dict[str, Callable[[str], bool]] = {
    "alpha": str.isalpha,
    "digit": str.isdigit,
    "alnum": str.isalnum,
    "upper": str.isupper,
    "lower": str.islower,
    "space": lambda c: c in " \t\n\r\f\v",
    "blank": lambda c: c in " \t",
    "punct": lambda c: c.isascii() and not c.isalnum() and c.isprintable() and c != " ",
    "print": lambda c: c.isprintable(),
    "graph": lambda c: c.isprintable() and c != " ",
    "cntrl": lambda c: ord(c) < 32 or ord(c) == 127,
    "xdigit": lambda c: c in "0123456789abcdefABCDEF",
}

# Token kinds: ("lit", char), ("any",), ("star",), ("set", negate, items) where items are
# chars, (lo, hi) ranges or class predicates.
Token = tuple


def _parse_bracket(pattern: str, i: int) -> tuple[Token, int] | None:
    """Parse ``[...]`` starting after the ``[`` at ``i``; None when unterminated (then ``[`` is literal)."""
    n = len(pattern)
    negate = False
    if i < n and pattern[i] in "!^":
        negate = True
        i += 1
    items: list[object] = []
    first = True
    while i < n:
        c = pattern[i]
        if c == "]" and not first:
            return ("set", negate, tuple(items)), i + 1
        first = False
        if c == "[" and i + 1 < n and pattern[i + 1] == ":":
            end = pattern.find(":]", i + 2)
            if end >= 0 and pattern[i + 2 : end] in _CLASSES:
                items.append(_CLASSES[pattern[i + 2 : end]])
                i = end + 2
                continue
        if c == "\\" and i + 1 < n:
            i += 1
            c = pattern[i]
        if i + 2 < n and pattern[i + 1] == "-" and pattern[i + 2] != "]":
            hi = pattern[i + 2]
            j = i + 2
            if hi == "\\" and j + 1 < n:
                j += 1
                hi = pattern[j]
            items.append((c, hi))
            i = j + 1
            continue
        items.append(c)
        i += 1
    return None


def tokenize(pattern: str) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            if not tokens or tokens[-1] != ("star",):
                tokens.append(("star",))
            i += 1
        elif c == "?":
            tokens.append(("any",))
            i += 1
        elif c == "[":
            parsed = _parse_bracket(pattern, i + 1)
            if parsed is None:
                tokens.append(("lit", "["))
                i += 1
            else:
                tokens.append(parsed[0])
                i = parsed[1]
        elif c == "\\" and i + 1 < n:
            tokens.append(("lit", pattern[i + 1]))
            i += 2
        else:
            tokens.append(("lit", c))
            i += 1
    return tokens


def _set_matches(token: Token, c: str, casefold: bool) -> bool:
    _, negate, items = token
    candidates = (c, c.lower(), c.upper()) if casefold else (c,)
    hit = False
    for item in items:
        for ch in candidates:
            if isinstance(item, str):
                ok = item == ch
            elif isinstance(item, tuple):
                ok = item[0] <= ch <= item[1]
            else:
                ok = item(ch)
            if ok:
                hit = True
                break
        if hit:
            break
    return hit != negate


def _match_tokens(tokens: list[Token], text: str, casefold: bool) -> bool:
    t, s = 0, 0
    star_t, star_s = -1, -1
    nt, ns = len(tokens), len(text)
    while s < ns:
        if t < nt:
            tok = tokens[t]
            kind = tok[0]
            if kind == "star":
                star_t, star_s = t, s
                t += 1
                continue
            c = text[s]
            if (
                kind == "any"
                or (kind == "lit" and (tok[1] == c or (casefold and tok[1].lower() == c.lower())))
                or (kind == "set" and _set_matches(tok, c, casefold))
            ):
                t += 1
                s += 1
                continue
        if star_t >= 0:
            star_s += 1
            s = star_s
            t = star_t + 1
            continue
        return False
    while t < nt and tokens[t][0] == "star":
        t += 1
    return t == nt


def compile_glob(pattern: str, casefold: bool = False) -> Callable[[str], bool]:
    """A predicate ``text -> bool`` equal to ``fnmatch(pattern, text, casefold and FNM_CASEFOLD) == 0``."""
    tokens = tokenize(pattern)
    literal_only = all(tok[0] in ("lit", "star") for tok in tokens)
    if literal_only:
        stars = [i for i, tok in enumerate(tokens) if tok[0] == "star"]
        pieces = "".join(tok[1] if tok[0] == "lit" else "\0" for tok in tokens).split("\0")
        if casefold:
            pieces = [p.lower() for p in pieces]
        fold: Callable[[str], str] = str.lower if casefold else (lambda x: x)
        if not stars:
            whole = pieces[0]
            return lambda text: fold(text) == whole
        if len(stars) == 1:
            head, tail = pieces
            need = len(head) + len(tail)
            if not tail:
                return lambda text: fold(text).startswith(head)
            if not head:
                return lambda text: fold(text).endswith(tail)
            return lambda text: (
                len(text) >= need and fold(text).startswith(head) and fold(text).endswith(tail)
            )
        if len(stars) == 2 and stars == [0, len(tokens) - 1]:
            middle = pieces[1]
            return lambda text: middle in fold(text)

    def match(text: str) -> bool:
        return _match_tokens(tokens, text, casefold)

    return match


def fnmatch(pattern: str, text: str, casefold: bool = False) -> bool:
    return compile_glob(pattern, casefold)(text)
