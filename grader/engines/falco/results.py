"""Load results as Falco reports them: codes, contexts (item, file, line, column) and snippets.

Mirrors ``falco_load_result.cpp`` and ``rule_loader::context``: every problem carries a chain of
locations (``rules content`` -> ``rule 'X'`` -> ``condition expression`` ...). Lines and columns are
0-based like yaml-cpp marks, which is what ``falco -V`` prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ERROR_CODES = {
    "LOAD_ERR_FILE_READ": "File read error",
    "LOAD_ERR_YAML_PARSE": "YAML parse error",
    "LOAD_ERR_YAML_VALIDATE": "Error validating internal structure of YAML file",
    "LOAD_ERR_COMPILE_CONDITION": "Error compiling condition",
    "LOAD_ERR_COMPILE_OUTPUT": "Error compiling output",
    "LOAD_ERR_VALIDATE": "Error validating rule/macro/list/exception objects",
    "LOAD_ERR_EXTENSION": "Error in extension item",
}

WARNING_CODES = {
    "LOAD_UNKNOWN_SOURCE": "Unknown event source",
    "LOAD_UNSAFE_NA_CHECK": "Unsafe <NA> comparison in condition",
    "LOAD_NO_EVTTYPE": "Condition has no event-type restriction",
    "LOAD_UNKNOWN_FILTER": "Unknown field or event-type in condition or output",
    "LOAD_UNUSED_MACRO": "Unused macro",
    "LOAD_UNUSED_LIST": "Unused list",
    "LOAD_UNKNOWN_ITEM": "Unknown rules file item",
    "LOAD_DEPRECATED_ITEM": "Used deprecated item",
    "LOAD_WARNING_EXTENSION": "Warning in extension item",
    "LOAD_APPEND_NO_VALUES": "Overriding/appending with no values",
    "LOAD_EXCEPTION_NAME_NOT_UNIQUE": "Multiple exceptions defined with the same name",
    "LOAD_INVALID_MACRO_NAME": "Invalid macro name",
    "LOAD_INVALID_LIST_NAME": "Invalid list name",
    "LOAD_COMPILE_CONDITION": "Warning in rule condition",
    "LOAD_UNKNOWN_KEY": "Unknown key in item definition",
}

WARNING_DESCS = {
    "LOAD_UNKNOWN_SOURCE": "A rule has a unknown event source. This can occur when reading rules content "
    "without having a corresponding plugin loaded, etc. The rule will be silently ignored.",
    "LOAD_UNSAFE_NA_CHECK": "Comparing a field value with <NA> is unsafe and can lead to unpredictable "
    "behavior of the rule condition. If you need to check for the existence of a field, consider using the "
    "'exists' operator instead.",
    "LOAD_NO_EVTTYPE": "A rule condition matches too many evt.type values. This has a significant "
    "performance penalty. Make the condition more specific by adding an evt.type field or further "
    "restricting the number of evt.type values in the condition.",
    "LOAD_UNKNOWN_FILTER": "A rule condition or output refers to a field or evt.type that does not exist. "
    "This is normally an error, but if a rule has a skip-if-unknown-filter property, the error is "
    "downgraded to a warning.",
    "LOAD_UNUSED_MACRO": "A macro is defined in the rules content but is not used by any other macro or "
    "rule.",
    "LOAD_UNUSED_LIST": "A list is defined in the rules content but is not used by any other list, macro, "
    "or rule.",
    "LOAD_UNKNOWN_ITEM": "An unknown top-level object is in the rules content. It will be ignored.",
    "LOAD_DEPRECATED_ITEM": "A deprecated item is employed by lists, macros, or rules.",
    "LOAD_WARNING_EXTENSION": "An extension item has a warning",
    "LOAD_APPEND_NO_VALUES": "A rule exception is overriding/appending with no values",
    "LOAD_EXCEPTION_NAME_NOT_UNIQUE": "A rule is defining multiple exceptions with the same name",
    "LOAD_INVALID_MACRO_NAME": "A macro is defined with an invalid name",
    "LOAD_INVALID_LIST_NAME": "A list is defined with an invalid name",
    "LOAD_COMPILE_CONDITION": "A rule condition or output have been parsed with a warning",
    "LOAD_UNKNOWN_KEY": "An item in the rules content contains an unrecognized key. The key will be "
    "ignored. This may indicate a typo or a property placed on the wrong item type.",
}

# Item types exactly as Falco names them in contexts.
RULES_CONTENT = "rules content"
RULES_CONTENT_ITEM = "rules content item"
VALUE_FOR = "value for"
EXCEPTIONS = "exceptions"
EXCEPTION = "exception"
EXCEPTION_VALUES = "exception values"
EXCEPTION_VALUE = "exception value"
REQUIRED_ENGINE_VERSION = "required_engine_version"
REQUIRED_PLUGIN_VERSIONS = "required plugin versions"
REQUIRED_PLUGIN_VERSIONS_ENTRY = "required plugin versions entry"
REQUIRED_PLUGIN_VERSIONS_ALTERNATIVE = "required plugin versions alternative"
LIST = "list"
LIST_ITEM = "list item"
MACRO = "macro"
MACRO_CONDITION = "macro condition"
RULE = "rule"
RULE_CONDITION = "rule condition"
CONDITION_EXPRESSION = "condition expression"
RULE_OUTPUT = "rule output"
RULE_PRIORITY = "rule priority"
OVERRIDE = "overrides"


@dataclass(frozen=True)
class Location:
    item_type: str
    item_name: str
    name: str  # the file name, or for a condition expression a short quote of the condition
    line: int = 0
    column: int = 0
    offset: int = 0

    def to_dict(self) -> dict:
        return {
            "item_type": self.item_type,
            "item_name": self.item_name,
            "position": {"name": self.name, "line": self.line, "column": self.column, "offset": self.offset},
        }


@dataclass(frozen=True)
class Context:
    """A chain of locations, outermost first. ``alt_content`` is the condition text for condition contexts."""

    locations: tuple[Location, ...]
    alt_content: str = ""

    @classmethod
    def root(cls, filename: str) -> Context:
        return cls((Location(RULES_CONTENT, "", filename),))

    @property
    def filename(self) -> str:
        return self.locations[0].name

    def child(self, item_type: str, item_name: str, line: int, column: int, offset: int) -> Context:
        return Context(
            self.locations + (Location(item_type, item_name, self.filename, line, column, offset),)
        )

    def at_condition(self, condition: str, index: int) -> Context:
        """A ``condition expression`` location at ``index`` inside ``condition`` (as libsinsp positions
        it)."""
        short = '"' + (condition[:17] + '..."' if len(condition) > 20 else condition + '"')
        short = short.replace("\n", " ").replace("\r", " ")
        index = max(0, min(index, len(condition)))
        line = condition.count("\n", 0, index) + 1  # the parser's lines and columns are 1-based
        col = index - (condition.rfind("\n", 0, index) + 1) + 1
        last = self.locations[-1]
        loc = Location(
            CONDITION_EXPRESSION, "", short, last.line + line, last.column + col, last.offset + index
        )
        return Context(self.locations + (loc,), alt_content=condition)

    def as_string(self) -> str:
        out = []
        for i, loc in enumerate(self.locations):
            name = f" '{loc.item_name}'" if loc.item_name else ""
            out.append(
                f"{'In ' if i == 0 else '    '}{loc.item_type}{name}: ({loc.name}:{loc.line}:{loc.column})\n"
            )
        return "".join(out)

    def snippet(self, contents: dict[str, str], width: int = 160) -> str:
        """The line holding the position with a caret under it (Falco's ``context::snippet``)."""
        loc = self.locations[-1]
        if self.alt_content:
            text = self.alt_content
        elif loc.name in contents:
            text = contents[loc.name]
        else:
            return f"<No context for file + {loc.name}>\n"
        if not text:
            return "<No context available>\n"
        pos = loc.offset
        while pos > 0 and (pos >= len(text) or text[pos] == "\n"):
            pos -= 1
        half = width // 2
        start = pos
        while start > 0 and text[start] != "\n" and pos - start < half:
            start -= 1
        end = pos
        while end < len(text) - 1 and text[end] != "\n" and end - pos < half:
            end += 1
        if start < len(text) and text[start] == "\n":
            start += 1
        if end < len(text) and text[end] == "\n":
            end -= 1
        snip = text[start : end + 1]
        if not snip:
            return "<No context available>\n"
        if pos - start >= half:
            snip = "..." + snip[3:]
        if end - pos >= half:
            snip = snip[:-3] + "..."
        snip += "\n"
        if pos - start <= len(snip) - 1:
            snip += " " * (pos - start) + "^\n"
        return snip

    def names(self, item_type: str) -> list[str]:
        return [loc.item_name for loc in self.locations if loc.item_type == item_type]


@dataclass(frozen=True)
class Problem:
    """One error or warning of a rules file."""

    code: str
    message: str
    context: Context
    is_error: bool

    def _named(self) -> Location | None:
        for loc in reversed(self.context.locations):
            if loc.item_name and loc.item_type not in (VALUE_FOR, OVERRIDE):
                return loc
        return None

    @property
    def item_type(self) -> str:
        """The innermost named item (rule, macro, list, exception ...), for short messages."""
        loc = self._named()
        return loc.item_type if loc else self.context.locations[-1].item_type

    @property
    def item_name(self) -> str:
        loc = self._named()
        return loc.item_name if loc else ""

    @property
    def line(self) -> int:
        """1-based line in the rules file of the innermost file location (for humans)."""
        for loc in reversed(self.context.locations):
            if loc.item_type != CONDITION_EXPRESSION:
                return loc.line + 1
        return 1

    @property
    def column(self) -> int:
        for loc in reversed(self.context.locations):
            if loc.item_type != CONDITION_EXPRESSION:
                return loc.column + 1
        return 1

    @property
    def code_text(self) -> str:
        return ERROR_CODES.get(self.code) or WARNING_CODES.get(self.code, "")

    def matches(
        self,
        code: str | None = None,
        item_type: str | None = None,
        item_name: str | None = None,
        message: str | None = None,
    ) -> bool:
        """Falco testing's ``OfCode().OfItemType().OfItemName().OfMessage()`` filter."""
        if code is not None and self.code != code:
            return False
        if message is not None and self.message != message:
            return False
        locs = self.context.locations
        if item_type is not None and not any(loc.item_type.lower() == item_type.lower() for loc in locs):
            return False
        return item_name is None or any(loc.item_name == item_name for loc in locs)

    def short(self) -> str:
        """``file:line:col: CODE: message (rule 'X')`` for one-line reports."""
        name = self.item_name
        what = f" ({self.item_type} '{name}')" if name else ""
        return f"{self.context.filename}:{self.line}:{self.column}: {self.code}: {self.message}{what}"


@dataclass
class FileResult:
    """What loading one rules file produced (Falco's per-file ``load_result``)."""

    name: str
    content: str
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def successful(self) -> bool:
        return not self.errors

    def add(self, problem: Problem) -> None:
        (self.errors if problem.is_error else self.warnings).append(problem)
