"""kube-apiserver's command line read the way it reads it (spf13/pflag + cobra + component-base).

What matters for grading:
- kubelet runs ``command + args``; argv[0] is the binary, the rest are flags.
- ``--name=value`` and ``--name value`` (a non-boolean flag takes the next word whatever it looks like);
  ``--bool`` alone means true; ``--`` ends the flags; the last occurrence of a flag wins.
- ``_`` in a flag name is read as ``-`` (component-base's WordSepNormalizeFunc).
- kube-apiserver takes no positional arguments and refuses unknown flags: either stops it from starting.
- int flags are parsed by Go's ``strconv.ParseInt(s, 0, 64)``: ``030`` is octal (24), ``0x1e`` is 30.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field
from typing import Any

from grader.engines.apiserver.problems import Problem


@dataclass(frozen=True)
class FlagSpec:
    """One kube-apiserver audit flag. ``default_136`` is the default from 1.36 on where it changed."""

    name: str
    kind: str  # string | path | int | bool | duration | float | enum
    default: Any
    help: str
    unit: str = ""
    choices: tuple[str, ...] = ()
    default_136: Any = None
    non_negative: bool = False
    deprecated: str = ""

    @property
    def flag(self) -> str:
        return f"--{self.name}"

    @property
    def pinned_default(self) -> Any:
        """The default of the lab cluster's release (1.36 changed the log retention defaults)."""
        if self.default_136 is None:
            return self.default
        from grader.engines.audit_policy.loader import pinned_kube_version

        return self.default_136 if pinned_kube_version() >= (1, 36) else self.default


def _int(
    name: str,
    default: int,
    help: str,
    unit: str = "",
    default_136: int | None = None,
    non_negative: bool = False,
) -> FlagSpec:
    return FlagSpec(name, "int", default, help, unit, default_136=default_136, non_negative=non_negative)


_BATCH = ("buffer-size", "max-size", "max-wait", "throttle-enable", "throttle-qps", "throttle-burst")


def _backend_flags(
    backend: str, *, mode: str, max_size: int, max_wait: str, throttle: bool, qps: float, burst: int
) -> list[FlagSpec]:
    p = f"audit-{backend}"
    return [
        FlagSpec(
            f"{p}-mode",
            "enum",
            mode,
            "strategy for sending events",
            choices=("batch", "blocking", "blocking-strict"),
        ),
        FlagSpec(
            f"{p}-version",
            "enum",
            "audit.k8s.io/v1",
            "API version of the events written",
            choices=("audit.k8s.io/v1",),
        ),
        _int(f"{p}-batch-buffer-size", 10000, "events buffered before batching (batch mode)"),
        _int(f"{p}-batch-max-size", max_size, "maximum events per batch (batch mode)"),
        FlagSpec(
            f"{p}-batch-max-wait", "duration", max_wait, "time before a partial batch is written (batch mode)"
        ),
        FlagSpec(f"{p}-batch-throttle-enable", "bool", throttle, "throttle batches (batch mode)"),
        FlagSpec(f"{p}-batch-throttle-qps", "float", qps, "average batches per second (batch mode)"),
        _int(f"{p}-batch-throttle-burst", burst, "batches sent at once when QPS was unused (batch mode)"),
        FlagSpec(f"{p}-truncate-enabled", "bool", False, "truncate large events and batches"),
        _int(f"{p}-truncate-max-batch-size", 10485760, "largest batch in bytes (truncation)", "bytes"),
        _int(f"{p}-truncate-max-event-size", 102400, "largest event in bytes (truncation)", "bytes"),
    ]


AUDIT_FLAGS: dict[str, FlagSpec] = {
    s.name: s
    for s in [
        FlagSpec("audit-policy-file", "path", "", "the audit policy; without it no event is recorded"),
        FlagSpec(
            "audit-log-path",
            "path",
            "",
            "the log backend's file; '-' = standard output; empty = no log backend",
        ),
        _int("audit-log-maxage", 0, "days to keep rotated files (0 = no limit by age)", "days", 366, True),
        _int("audit-log-maxbackup", 0, "rotated files to keep (0 = keep all)", "files", 100, True),
        _int(
            "audit-log-maxsize",
            0,
            "megabytes before the file is rotated (<=1.35: 0 means 100)",
            "MB",
            100,
            True,
        ),
        FlagSpec("audit-log-compress", "bool", False, "gzip rotated files"),
        FlagSpec("audit-log-format", "enum", "json", "event format", choices=("json", "legacy")),
        *_backend_flags("log", mode="blocking", max_size=1, max_wait="0s", throttle=False, qps=0.0, burst=0),
        FlagSpec(
            "audit-webhook-config-file", "path", "", "kubeconfig of the webhook backend; empty = no webhook"
        ),
        FlagSpec("audit-webhook-initial-backoff", "duration", "10s", "wait before retrying a failed request"),
        FlagSpec(
            "audit-webhook-batch-initial-backoff",
            "duration",
            "10s",
            "wait before retrying a failed request",
            deprecated="use --audit-webhook-initial-backoff",
        ),
        *_backend_flags(
            "webhook", mode="batch", max_size=400, max_wait="30s", throttle=True, qps=10.0, burst=15
        ),
    ]
}

# Misspellings seen in courses and simulators, mapped to the real flag (difflib finds the rest).
_ALIASES = {
    "audit-log-max-backups": "audit-log-maxbackup",
    "audit-log-max-backup": "audit-log-maxbackup",
    "audit-log-maxbackups": "audit-log-maxbackup",
    "audit-log-backups": "audit-log-maxbackup",
    "audit-log-max-age": "audit-log-maxage",
    "audit-log-max-size": "audit-log-maxsize",
    "audit-log-file": "audit-log-path",
    "audit-log": "audit-log-path",
    "audit-log-dir": "audit-log-path",
    "audit-policy": "audit-policy-file",
    "audit-policy-path": "audit-policy-file",
    "audit-file": "audit-policy-file",
    "audit-log-policy-file": "audit-policy-file",
    "audit-webhook-config": "audit-webhook-config-file",
    "audit-webhook-kubeconfig": "audit-webhook-config-file",
}

# kube-apiserver boolean flags: written bare (`--allow-privileged`) they take no value, so the next word is
# not theirs. Non-audit flags not listed here are assumed to take a value unless the next word is a flag.
BOOL_FLAGS = frozenset(
    {
        "allow-privileged",
        "anonymous-auth",
        "enable-bootstrap-token-auth",
        "enable-aggregator-routing",
        "enable-garbage-collector",
        "enable-logs-handler",
        "enable-priority-and-fairness",
        "profiling",
        "contention-profiling",
        "service-account-lookup",
        "service-account-extend-token-expiration",
        "aggregator-reject-forwarding-redirect",
        "delete-collection-workers-enabled",
        "watch-cache",
        "storage-media-type-json",
        "strict-transport-security-directives-enabled",
        "endpoint-reconciler-enabled",
        "enable-admission-plugins-strict",
        "add-dir-header",
        "alsologtostderr",
        "logtostderr",
        "one-output",
        "skip-headers",
        "skip-log-headers",
        "permit-port-sharing",
        "permit-address-sharing",
        "version-bool",
        "kubelet-https",
        "enable-swagger-ui",
        "insecure-allow-any-token",
        "experimental-logging-sanitization",
        "help",
        "disable-http2-serving",
    }
    | {s.name for s in AUDIT_FLAGS.values() if s.kind == "bool"}
)


@dataclass(frozen=True)
class FlagSetting:
    """One flag as written on the command line."""

    name: str  # normalised, without dashes: audit-log-path
    written: str  # as written, for messages: --audit_log_path
    value: str
    where: str  # command[12] or args[0..1]
    form: str  # "=" | "separate" | "bare"


@dataclass
class ParsedArgs:
    binary: str | None
    settings: list[FlagSetting] = field(default_factory=list)
    positional: list[tuple[str, str]] = field(default_factory=list)  # (where, word)
    problems: list[Problem] = field(default_factory=list)

    def last(self, name: str) -> FlagSetting | None:
        for s in reversed(self.settings):
            if s.name == name:
                return s
        return None

    def all(self, name: str) -> list[FlagSetting]:
        return [s for s in self.settings if s.name == name]

    def audit_settings(self) -> list[FlagSetting]:
        return [s for s in self.settings if "audit" in s.name]


def suggest(name: str) -> str | None:
    """The real audit flag a mistyped one probably meant."""
    key = name.strip().lower().replace("_", "-")
    key = key.split("=", 1)[0].split()[0] if key.split() else key
    if key in AUDIT_FLAGS:
        return key
    if key in _ALIASES:
        return _ALIASES[key]
    squashed = {n.replace("-", ""): n for n in AUDIT_FLAGS}
    if key.replace("-", "") in squashed:
        return squashed[key.replace("-", "")]
    close = difflib.get_close_matches(key, list(AUDIT_FLAGS), n=1, cutoff=0.75)
    return close[0] if close else None


def is_audit_name(name: str) -> bool:
    return "audit" in name.lower()


def parse_argv(words: list[tuple[str, str]], *, max_problems: int = 200) -> ParsedArgs:
    """Parse (where, word) pairs; words[0] is the binary. Never raises; mistakes become problems."""
    return _ArgvReader(words, max_problems).read()


class _ArgvReader:
    """kube-apiserver's flag parsing (pflag) over (where, word) pairs, one word at a time."""

    def __init__(self, words: list[tuple[str, str]], max_problems: int) -> None:
        self.words = words
        self.i = 1  # the next word to read; words[0] is the binary
        self.max_problems = max_problems
        self.parsed = ParsedArgs(binary=words[0][1] if words else None)

    def add(self, problem: Problem) -> None:
        if len(self.parsed.problems) < self.max_problems:
            self.parsed.problems.append(problem)

    def has_next(self) -> bool:
        return self.i < len(self.words)

    def take_next(self, where: str) -> tuple[str, str]:
        """The next word, as the value of the flag at ``where``: (value, where of both words)."""
        next_where, value = self.words[self.i]
        self.i += 1
        return value, f"{where}+{next_where}"

    def read(self) -> ParsedArgs:
        while self.has_next():
            where, word = self.words[self.i]
            self.i += 1
            if word == "--":
                self.parsed.positional.extend(w for w in self.words[self.i :] if w[1])
                break
            if word.startswith("--"):
                self.long_flag(where, word)
            elif word.startswith("-") and len(word) > 1:
                self.short_flag(where, word)
            elif word:
                self.parsed.positional.append((where, word))
        for where, word in self.parsed.positional[:20]:
            self.add(
                Problem(
                    "error",
                    "positional-argument",
                    f"{word!r} is not a flag: kube-apiserver takes no arguments "
                    "besides flags and would not start (every list item must start with --)",
                    where,
                )
            )
        return self.parsed

    def long_flag(self, where: str, word: str) -> None:
        """``--name=value``, ``--name value`` or a bare ``--name``."""
        body = word[2:]
        if "=" in body:
            raw_name, value, form = *body.split("=", 1), "="
        else:
            raw_name, value, form = body, None, ""
        name = raw_name.replace("_", "-")
        problem = _long_flag_syntax_problem(word, name, where)
        if problem is not None:
            self.add(problem)
            return
        if value is None:
            found = self.value_after(name, word, where)
            if found is None:
                return
            value, form, where = found
        self.parsed.settings.append(FlagSetting(name, "--" + raw_name, value, where, form))
        if raw_name != name and is_audit_name(name):
            self.add(
                Problem(
                    "info",
                    "flag-underscores",
                    f"--{raw_name} is read as --{name} (kube-apiserver turns '_' into '-' in flag names)",
                    where,
                )
            )

    def value_after(self, name: str, word: str, where: str) -> tuple[str, str, str] | None:
        """(value, form, where) of a long flag written without ``=``: true for a boolean flag, else the
        next word (an audit flag takes it even when it starts with a dash); None when an audit flag is
        the last word (kube-apiserver would not start)."""
        if name in BOOL_FLAGS:
            return "true", "bare", where
        if name in AUDIT_FLAGS or is_audit_name(name):
            if self.has_next():
                value, where = self.take_next(where)
                return value, "separate", where
            if name in AUDIT_FLAGS:
                self.add(
                    Problem(
                        "error",
                        "flag-needs-value",
                        f"{word} is the last argument and has no value "
                        f"(flag needs an argument): kube-apiserver would not start",
                        where,
                    )
                )
                return None
            return "", "bare", where
        if self.has_next() and not self.words[self.i][1].startswith("-"):
            value, where = self.take_next(where)
            return value, "separate", where
        return "", "bare", where

    def short_flag(self, where: str, word: str) -> None:
        """``-v``/``-v=2``/``-v2``/``-v 2`` (the only shorthand kube-apiserver has); any other is fatal."""
        body = word[1:]
        if body[:1] == "v" and (len(body) == 1 or body[1] == "=" or body[1:].isdigit()):
            value = body[2:] if body[1:2] == "=" else body[1:]
            if not value and self.has_next():
                value, where = self.take_next(where)
            self.parsed.settings.append(FlagSetting("v", "-v", value, where, "shorthand"))
            return
        hint = f"; write '-{word}'" if is_audit_name(body) else ""
        self.add(
            Problem(
                "error",
                "single-dash-flag",
                f"{word!r} starts with one dash: kube-apiserver reads it as "
                f"shorthand flags ('unknown shorthand flag: {body[0]!r}') and would not start{hint}",
                where,
            )
        )


def _long_flag_syntax_problem(word: str, name: str, where: str) -> Problem | None:
    """A long flag pflag cannot parse: an empty or dash-led name, or a name with a blank in it."""
    if not name or name.startswith(("-", "=")):
        return Problem(
            "error",
            "bad-flag-syntax",
            f"{word!r} is not a flag kube-apiserver can parse "
            "(bad flag syntax): kube-apiserver would not start",
            where,
        )
    if any(c.isspace() for c in name):
        first = name.split()[0]
        return Problem(
            "error",
            "flag-and-value-in-one-word",
            f"{word!r} is a single argument holding a flag and its value, so kube-apiserver sees "
            f"an unknown flag named {('--' + name)!r} and does not start; write "
            f"'--{first}={' '.join(name.split()[1:])}' (one list item per flag)",
            where,
        )
    return None


# ---- values --------------------------------------------------------------------------------------

_DURATION = re.compile(r"^[+-]?((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))+$")
_DIGITS = {2: "01", 8: "01234567", 10: "0123456789", 16: "0123456789abcdefABCDEF"}


def go_parse_int(text: str) -> int:
    """strconv.ParseInt(text, 0, 64), as pflag's int flags use it; raises ValueError with Go's wording.

    Base from the prefix: 0x hex, 0o or a bare leading 0 octal (so "030" is 24), 0b binary; '_' may
    separate digits. No spaces, no unit suffix.
    """
    syntax = ValueError(f'strconv.ParseInt: parsing "{text}": invalid syntax')
    s = text
    sign = 1
    if s[:1] in {"+", "-"}:
        sign, s = (-1 if s[0] == "-" else 1), s[1:]
    low = s.lower()
    if low[:2] in {"0x", "0o", "0b"}:
        base, body, prefixed = {"x": 16, "o": 8, "b": 2}[low[1]], s[2:], True
    elif len(s) > 1 and s[0] == "0":
        base, body, prefixed = 8, s[1:], True
    else:
        base, body, prefixed = 10, s, False
    if "__" in body or body.endswith("_") or (body.startswith("_") and not prefixed):
        raise syntax
    digits = body.replace("_", "")
    if not digits or any(c not in _DIGITS[base] for c in digits):
        raise syntax
    value = sign * int(digits, base)
    if not -(2**63) <= value < 2**63:
        raise ValueError(f'strconv.ParseInt: parsing "{text}": value out of range')
    return value


_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def convert(spec: FlagSpec, value: str) -> tuple[Any, str | None]:
    """(typed value, parse error) for a value given to ``spec``; a parse error stops kube-apiserver at
    once."""
    bad = f'invalid argument "{value}" for "--{spec.name}" flag'
    if spec.kind == "int":
        try:
            return go_parse_int(value), None
        except ValueError as exc:
            return None, f"{bad}: {exc}"
    if spec.kind == "bool":
        if value in _TRUE:
            return True, None
        if value in _FALSE:
            return False, None
        return None, f'{bad}: strconv.ParseBool: parsing "{value}": invalid syntax'
    if spec.kind == "float":
        try:
            f = float(value)
        except ValueError:
            return None, f'{bad}: strconv.ParseFloat: parsing "{value}": invalid syntax'
        return (f, None) if math.isfinite(f) else (None, f"{bad}: not a finite number")
    if spec.kind == "duration":
        if value in {"0", "+0", "-0"} or _DURATION.match(value):
            return value, None
        return None, f'{bad}: time: invalid duration "{value}"'
    return value, None


def validate(spec: FlagSpec, typed: Any) -> str | None:
    """kube-apiserver's Validate() for a parsed value (run only when the flag's backend is enabled)."""
    if spec.kind == "enum" and typed not in spec.choices:
        return f"--{spec.name}={typed!r} is not supported; allowed: {', '.join(spec.choices)}"
    if spec.non_negative and isinstance(typed, int) and typed < 0:
        return f"--{spec.name} {typed} can't be a negative number"
    return None
