"""Run loaded rules on events as Falco does.

Rules are indexed by event type (Falco's ``evttype_index_ruleset``): an event meets only the rules whose
condition can match its type, tried in load order. ``rule_matching: first`` (Falco's default) emits the
first matching rule per event, ``all`` every one. Disabled rules and rules less severe than the
``priority`` threshold are skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .loader import PRIORITIES, CompiledRule, parse_priority
from .outputs import Alert, event_time_ns


class Engine:
    def __init__(self, rules: Sequence[CompiledRule], *, priority: str | int = "debug",
                 rule_matching: str = "first", hostname: str = "cks-grader") -> None:
        if isinstance(priority, str):
            level = parse_priority(priority)
            if level is None:
                raise ValueError(f"unknown priority {priority!r}; use one of {', '.join(PRIORITIES)}")
        else:
            level = int(priority)
        if rule_matching not in ("first", "all"):
            raise ValueError("rule_matching must be 'first' or 'all'")
        self.rule_matching = rule_matching
        self.hostname = hostname
        self.rules = [r for r in rules if r.enabled and r.priority <= level]
        self._index: dict[str, tuple[CompiledRule, ...]] = {}
        self._matchers: dict[str, tuple[tuple[Any, CompiledRule], ...]] = {}

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
        pairs = self._matchers.get(key)
        if pairs is None:
            pairs = self._matchers[key] = tuple((r.filter.matches, r) for r in self.candidates(key))
        out = []
        first = self.rule_matching == "first"
        for matches, rule in pairs:
            if matches(event):
                out.append(rule)
                if first:
                    break
        return out

    def process(self, event: Any) -> list[Alert]:
        return [self.alert(rule, event) for rule in self.matching_rules(event)]

    def alert(self, rule: CompiledRule, event: Any) -> Alert:
        return Alert(rule.name, PRIORITIES[rule.priority], rule.output_format.render(event), event_time_ns(event),
                     rule.output_format.values(event), rule.tags, rule.source, self.hostname)

    def run(self, events: Iterable[Any]) -> list[Alert]:
        out: list[Alert] = []
        for e in events:
            out.extend(self.process(e))
        return out


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
