"""Falco's rules-file loader: lists, macros and rules from one or more files into one engine.

Split as Falco splits it: ``rule_loader_reader`` (YAML -> items), ``rule_loader_collector`` (define, append,
override, enable), ``rule_loader_compiler`` (list expansion, macro resolution, exceptions, output and
condition compilation, warnings), with every message in ``rule_loading_messages``. Files load in order as
``falco -r a -r b`` does: each file is read into the shared collector and then *everything collected so far*
is compiled, so the errors and warnings of a file are those Falco reports for it (an unused macro of the
default file is reported with the default file; a local file that breaks a default rule gets the error).

No I/O: callers pass ``(name, text)`` pairs. Nothing here raises on bad input: every problem becomes a
:class:`~grader.engines.falco.results.Problem` with Falco's code, item and position.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .results import FileResult, Problem
from .rule_loader_collector import PRIORITIES, Collector, is_field_defined, parse_priority
from .rule_loader_compiler import (
    CompiledList,
    CompiledMacro,
    CompiledRule,
    Compiler,
    build_exceptions,
    resolve_list,
    resolve_warnings,
)
from .rule_loader_reader import Reader, decode_content, parse_version
from .rule_loading_messages import MAX_RULES_BYTES

ENGINE_VERSION = (0, 62, 0)  # Falco 0.44's engine
DEFAULT_PLUGINS = {"container": (0, 6, 0)}  # the default config loads the container plugin
KNOWN_SOURCES = frozenset({"syscall"})

__all__ = [
    "ENGINE_VERSION",
    "MAX_RULES_BYTES",
    "PRIORITIES",
    "CompiledList",
    "CompiledMacro",
    "CompiledRule",
    "LoadResult",
    "RulesLoader",
    "build_exceptions",
    "default_rules_text",
    "is_field_defined",
    "load_rules",
    "parse_priority",
    "resolve_list",
    "resolve_warnings",
]


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


class RulesLoader:
    """Load rules files one after the other into one engine, like repeated ``falco -r``."""

    def __init__(
        self,
        *,
        engine_version: tuple[int, int, int] = ENGINE_VERSION,
        plugins: Mapping[str, tuple[int, int, int]] | None = None,
        sources: Iterable[str] = KNOWN_SOURCES,
    ) -> None:
        self.plugins = dict(DEFAULT_PLUGINS if plugins is None else plugins)
        self.files: list[FileResult] = []
        self.collector = Collector(frozenset(sources))
        self.reader = Reader(self.collector, engine_version)
        self.compiler = Compiler(self.collector)
        self._compiled: tuple[list[CompiledRule], list[CompiledMacro], list[CompiledList]] = ([], [], [])

    def load(self, name: str, content: str | bytes) -> FileResult:
        res = FileResult(name, "")
        self.files.append(res)
        text = decode_content(name, content, res)
        if text is None:
            return res
        res.content = text
        if not self.reader.read(name, text, res):
            return res
        compiled = self.compiler.compile(res)
        if compiled is not None:
            self._compiled = compiled
        if res.successful:
            self._check_plugins(res)
        return res

    def result(self) -> LoadResult:
        rules, macros, lists = self._compiled
        return LoadResult(list(self.files), rules, macros, lists, self.collector.required_engine)

    def _check_plugins(self, res: FileResult) -> None:
        """``required_plugin_versions`` against the plugins the configuration loads (checked after a load)."""
        for alternatives, ctx in self.collector.required_plugins:
            ok = any(
                n in self.plugins and self.plugins[n] >= (parse_version(v) or (0, 0, 0))
                for n, v in alternatives
            )
            if not ok and ctx.filename == res.name:
                wanted = ", ".join(f"{n} (>= {v})" for n, v in alternatives)
                res.add(
                    Problem(
                        "LOAD_ERR_VALIDATE",
                        f"Plugin requirement not satisfied, must load one of: {wanted}",
                        ctx,
                        True,
                    )
                )


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
