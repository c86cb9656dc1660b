"""Falco condition (filter) language: parser, AST, field catalog, events and a compiler to Python.

    from grader.engines.falco import parse, compile_filter, event_from_mapping
    flt = compile_filter(parse("evt.type = openat and fd.name startswith /etc"))
    flt.matches(event_from_mapping({"evt.type": "openat", "fd.name": "/etc/shadow"}))  # True

No file or network I/O here; the rules-file loader and the CLI build on this package.
"""

from .ast import And, Check, FieldRef, Identifier, ListRef, Node, Not, Or, TList, Transform, to_text
from .compiler import CompiledFilter, CompileError, compile_condition, compile_filter, evaluate
from .events import MISSING, Event, EventError, event_from_mapping, get
from .fields import FIELDS, FieldInfo, lookup
from .parser import ParseError, parse

__all__ = [
    "And",
    "Check",
    "CompileError",
    "CompiledFilter",
    "Event",
    "EventError",
    "FIELDS",
    "FieldInfo",
    "FieldRef",
    "Identifier",
    "ListRef",
    "MISSING",
    "Node",
    "Not",
    "Or",
    "ParseError",
    "TList",
    "Transform",
    "compile_condition",
    "compile_filter",
    "evaluate",
    "event_from_mapping",
    "get",
    "lookup",
    "parse",
    "to_text",
]
