"""Run loaded rules on events as Falco does.

Rules are indexed by event type (Falco's ``evttype_index_ruleset``): an event meets only the rules whose
condition can match its type, tried in load order. ``rule_matching: first`` (Falco's default) emits the
first matching rule per event, ``all`` every one. Disabled rules and rules less severe than the
``priority`` threshold are skipped.

Speed: the candidates of an event type are compiled together into one function
(``compiler.compile_ruleset``): their ``evt.type`` checks are decided for that type, fields several rules
read are read once, and subtrees they share (macros) are evaluated at most once per event. Filters are pure,
so the rules that fire are exactly those of calling each filter in turn (``combine=False`` does that).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .ast import FieldRef
from .compiler import CompiledFilter, CompileError, compile_ruleset
from .events import MISSING, getter
from .loader import PRIORITIES, CompiledRule, parse_priority
from .outputs import Alert, OutputFormat, event_time_ns, jsonable, token_reader, value_text
from .parser import parse


class Engine:
    def __init__(
        self,
        rules: Sequence[CompiledRule],
        *,
        priority: str | int = "debug",
        rule_matching: str = "first",
        hostname: str = "cks-grader",
        combine: bool = True,
    ) -> None:
        if isinstance(priority, str):
            level = parse_priority(priority)
            if level is None:
                raise ValueError(f"unknown priority {priority!r}; use one of {', '.join(PRIORITIES)}")
        else:
            level = int(priority)
        if rule_matching not in ("first", "all"):
            raise ValueError("rule_matching must be 'first' or 'all'")
        self.rule_matching = rule_matching
        self.combine = combine  # False: call each candidate's own filter in turn (the bench's peer)
        self.hostname = hostname
        self.rules = [r for r in rules if r.enabled and r.priority <= level]
        self._index: dict[str, tuple[CompiledRule, ...]] = {}
        self._matchers: dict[str, Callable[[Any], list[CompiledRule]]] = {}
        self._renderers: dict[int, tuple[OutputFormat, Callable[[Any], tuple[str, dict[str, Any]]]]] = {}

    def candidates(self, evt_type: str | None) -> tuple[CompiledRule, ...]:
        """The rules an event of this type can meet, in load order."""
        key = evt_type or ""
        found = self._index.get(key)
        if found is None:
            found = tuple(r for r in self.rules if r.evttypes is None or key in r.evttypes)
            self._index[key] = found
        return found

    def matching_rules(self, event: Any) -> list[CompiledRule]:
        key = _evt_type(event) or ""
        matcher = self._matchers.get(key)
        if matcher is None:
            matcher = self._matchers[key] = self._matcher(key)
        return matcher(event)

    def _matcher(self, key: str) -> Callable[[Any], list[CompiledRule]]:
        """event -> matching rules, for the events of one type. The candidates' filters are combined into
        one function (compiler.compile_ruleset: type checks decided, shared macros evaluated once);
        filters that cannot be combined are called one by one."""
        rules = self.candidates(key)
        first = self.rule_matching == "first"
        if not rules:
            return lambda event: []
        if self.combine and all(isinstance(r.filter, CompiledFilter) for r in rules):
            try:
                combined = compile_ruleset([r.filter for r in rules], key or None, collect_all=not first)
            except CompileError:
                pass
            else:
                if first:

                    def first_match(event: Any) -> list[CompiledRule]:
                        i = combined(event)
                        return [] if i < 0 else [rules[i]]

                    return first_match
                return lambda event: [rules[i] for i in combined(event)]
        return self._one_by_one(key)

    def _one_by_one(self, key: str) -> Callable[[Any], list[CompiledRule]]:
        first = self.rule_matching == "first"
        pairs = tuple((r.filter.matches, r) for r in self.candidates(key))

        def one_by_one(event: Any) -> list[CompiledRule]:
            out = []
            for matches, rule in pairs:
                if matches(event):
                    out.append(rule)
                    if first:
                        break
            return out

        return one_by_one

    def process(self, event: Any) -> list[Alert]:
        return [self.alert(rule, event) for rule in self.matching_rules(event)]

    def alert(self, rule: CompiledRule, event: Any) -> Alert:
        fmt = rule.output_format
        entry = self._renderers.get(id(fmt))  # by identity: hashing a format walks all its tokens
        if entry is None or entry[0] is not fmt:
            entry = self._renderers[id(fmt)] = (fmt, _renderer(fmt))
        text, values = entry[1](event)
        return Alert(
            rule.name,
            PRIORITIES[rule.priority],
            text,
            event_time_ns(event),
            values,
            rule.tags,
            rule.source,
            self.hostname,
        )

    def run(self, events: Iterable[Any]) -> list[Alert]:
        out: list[Alert] = []
        for e in events:
            out.extend(self.process(e))
        return out


def _renderer(fmt: OutputFormat) -> Callable[[Any], tuple[str, dict[str, Any]]]:
    """event -> (``fmt.render(event)``, ``fmt.values(event)``), reading each field once."""
    readers = {f: _plain_reader(f) or token_reader(f) for f in fmt.fields}
    parts = tuple((t.literal, t.field, t.width) for t in fmt.tokens)
    simple = tuple((t.literal, t.field) for t in fmt.tokens) if not any(t.width for t in fmt.tokens) else None

    def render(event: Any) -> tuple[str, dict[str, Any]]:
        raw: dict[str, Any] = {}
        for f, read in readers.items():
            try:
                raw[f] = read(event)
            except Exception:  # noqa: BLE001 - as outputs.field_value: a value that cannot be read prints <NA>
                raw[f] = None
        texts = {f: v if type(v) is str else value_text(v) for f, v in raw.items()}
        values = {
            f: v if type(v) is str or v is None else None if v is MISSING else jsonable(v)
            for f, v in raw.items()
        }
        if simple is not None:
            return "".join([texts[f] if literal is None else literal for literal, f in simple]), values
        out = []
        for literal, f, width in parts:
            if literal is not None:
                out.append(literal)
                continue
            text = texts[f]
            out.append(text[:width].ljust(width) if width else text)
        return "".join(out), values

    return render


def _plain_reader(token: str) -> Callable[[Any], Any] | None:
    """The field getter itself for a token without transformers (what outputs.token_reader wraps)."""
    try:
        ref = parse(f"{token} exists").field
        if not isinstance(ref, FieldRef) or ref.transformers:
            return None
        return getter(ref.name, ref.arg)[0]
    except Exception:  # noqa: BLE001 - outputs.token_reader decides what an unreadable token gives
        return None


def _evt_type(event: Any) -> str | None:
    if isinstance(event, dict):
        v = event.get("evt.type")
        return v if isinstance(v, str) else None
    getter = getattr(event, "get", None)
    if callable(getter):
        try:
            v = getter("evt.type")
        except Exception:  # noqa: BLE001 - an event without a type meets only type-less rules
            return None
        return v if isinstance(v, str) else None
    return None
