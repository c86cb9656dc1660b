"""Hostile Falco rules files: each case runs in a subprocess with CPU-time and address-space limits, and must
end with a clean message and Falco's exit code 1 (rules refused), never a hang, a MemoryError or a traceback.

The cases are the attacks of issue 15 class 1: a macro used twice by each of twenty macros (2**20 checks once
expanded), a 3.8 MB `or` chain, a list of a million items, and their relatives (nested lists, thousands of
list references, thousands of rules sharing a large macro, appends that grow a condition).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SECONDS = 20  # wall-clock bound per case (the loader refuses each in well under 2 s on a quiet machine)
CPU_SECONDS = 15
MEMORY = 1536 * 1024 * 1024  # address space: the interpreter with the grader imported needs ~300 MB


def _rule(condition: str, name: str = "r") -> str:
    return f'- rule: {name}\n  desc: d\n  condition: {condition}\n  output: "%proc.name"\n  priority: INFO\n'


def macro_doubling(levels: int = 20) -> str:
    out = "- macro: m0\n  condition: proc.name=a\n"
    for k in range(1, levels + 1):
        out += f"- macro: m{k}\n  condition: (m{k - 1} or m{k - 1})\n"
    return out + _rule(f"evt.type=execve and m{levels}")


def macro_tripling_unused() -> str:
    """The same growth without any rule using it: macros are still compiled (Falco does too)."""
    out = "- macro: m0\n  condition: proc.name=a\n"
    for k in range(1, 16):
        out += f"- macro: m{k}\n  condition: (m{k - 1} or m{k - 1} and m{k - 1})\n"
    return out


def rule_doubling_inline() -> str:
    """A rule naming one mid-sized macro thousands of times."""
    out = "- macro: m0\n  condition: (proc.name=a or proc.name=b or proc.name=c)\n"
    return out + _rule("evt.type=execve and (" + " or ".join(["m0"] * 12000) + ")")


def or_chain(size: int = 3_800_000) -> str:
    parts = []
    total = 0
    i = 0
    while total < size:
        p = f"proc.name=x{i % 97}"
        parts.append(p)
        total += len(p) + 4
        i += 1
    return _rule("evt.type=execve and (" + " or ".join(parts) + ")")


def big_list(items: int = 1_000_000) -> str:
    return (
        "- list: l\n  items: ["
        + ", ".join(["a"] * items)
        + "]\n"
        + _rule("evt.type=execve and proc.name in (l)")
    )


def nested_lists() -> str:
    """Each list names the previous one 100 times: 200 * 100**3 items if every level were expanded."""
    out = "- list: l0\n  items: [" + ", ".join(f"a{i}" for i in range(200)) + "]\n"
    for k in range(1, 4):
        out += f"- list: l{k}\n  items: [" + ", ".join([f"l{k - 1}"] * 100) + "]\n"
    return out + _rule("evt.type=execve and proc.name in (l3)")


def many_list_references() -> str:
    """A 5,000-item list named 3,000 times in one condition: a 140 MB condition once substituted."""
    out = "- list: l\n  items: [" + ", ".join(f"item{i}" for i in range(5000)) + "]\n"
    return out + _rule("evt.type=execve and (" + " or ".join(["proc.name in (l)"] * 3000) + ")")


def many_rules_big_macro() -> str:
    """Thousands of rules, each using a 7,000-check macro with a different extra check."""
    out = "- macro: part\n  condition: (" + " or ".join(f"proc.name=p{i}" for i in range(70)) + ")\n"
    out += "- macro: big\n  condition: (" + " or ".join(["part"] * 100) + ")\n"
    return out + "".join(_rule(f"evt.type=execve and big and proc.pid={k}", f"r{k}") for k in range(3000))


def appended_condition() -> str:
    out = "- macro: m\n  condition: proc.name=a\n"
    out += "".join(
        f"- macro: m\n  condition: or proc.name=a-rather-long-program-name-{k}\n"
        "  override:\n    condition: append\n"
        for k in range(3000)
    )
    return out + _rule("evt.type=execve and m")


def many_macros() -> str:
    """Eight thousand macros, each naming the one before: linear, not quadratic, in their number."""
    out = "- macro: m0\n  condition: proc.name=a\n"
    out += "".join(f"- macro: m{k}\n  condition: m{k - 1}\n" for k in range(1, 8000))
    return out + _rule("evt.type=execve and m7999")


CASES = {
    "macro-doubling-20": (macro_doubling, "macro 'm13'"),
    "macro-tripling-unused": (macro_tripling_unused, "checks once its macros are expanded"),
    "rule-names-macro-12000-times": (rule_doubling_inline, "rule 'r'"),
    "or-chain-3.8MB": (or_chain, "characters long"),
    "list-1M-items": (big_list, "YAML values"),
    "nested-lists": (nested_lists, "list 'l1'"),
    "list-named-3000-times": (many_list_references, "once list 'l' is substituted"),
    "3000-rules-sharing-a-big-macro": (many_rules_big_macro, "checks in all"),
    "3000-condition-appends": (appended_condition, "characters long"),
}


def _limits() -> None:  # runs in the child before exec
    import resource

    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def _run(args: list[str], cwd: Path) -> tuple[int, str, str, float]:
    env = dict(os.environ, PYTHONPATH=str(REPO), COLUMNS="200")
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "grader", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=SECONDS,
        preexec_fn=_limits,
    )
    return proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_validate_refuses_cleanly_within_bounds(case: str, tmp_path: Path) -> None:
    make, expect = CASES[case]
    rules = tmp_path / "hostile.yaml"
    rules.write_text(make())
    code, out, err, took = _run(["falco", "validate", str(rules)], tmp_path)
    text = out + err
    assert "Traceback" not in text and "MemoryError" not in text, text[-2000:]
    assert code == 1, f"exit {code} after {took:.1f} s: {text[-2000:]}"
    assert "hostile.yaml: Invalid" in out, text[-2000:]
    assert expect in text, text[-2000:]


def test_many_macros_chained_load_in_linear_time(tmp_path: Path) -> None:
    """Not refused (each macro is small), and quick: the visible-macro lookup is not quadratic."""
    rules = tmp_path / "chain.yaml"
    rules.write_text(many_macros())
    code, out, err, took = _run(["falco", "validate", str(rules)], tmp_path)
    assert "Traceback" not in out + err
    assert code in (0, 1) and took < SECONDS, (code, took, (out + err)[-1000:])


@pytest.mark.slow
@pytest.mark.parametrize("case", ["macro-doubling-20", "or-chain-3.8MB", "list-1M-items"])
def test_grading_lab3_with_a_hostile_local_file_is_bounded(case: str, tmp_path: Path) -> None:
    from grader.labs import get_lab
    from grader.workspace import materialize

    ws = tmp_path / "ws"
    materialize(get_lab("lab3"), ws, None)
    (ws / "nodes/controlplane/etc/falco/falco_rules.local.yaml").write_text(CASES[case][0]())
    code, out, err, took = _run(["grade", "lab3", "--workspace", str(ws), "--format", "json"], tmp_path)
    text = out + err
    assert "Traceback" not in text and "internal error" not in text, text[-2000:]
    assert code == 1, f"exit {code} after {took:.1f} s: {text[-2000:]}"
    assert "Falco would not start" in text, text[-2000:]


def test_the_cases_are_what_they_claim() -> None:
    """Guard against a generator that silently shrinks: the issue's sizes are kept."""
    assert len(or_chain()) > 3_800_000
    assert big_list().count(", ") == 999_999
    assert macro_doubling().count("- macro:") == 21
    assert textwrap.dedent(_rule("x")).startswith("- rule: r")
