"""Combined per-event-type filters (compiler.compile_ruleset): the engine must emit exactly what calling each
candidate rule's own filter in turn emits, in both rule_matching modes."""

from __future__ import annotations

import random

import pytest

from grader.engines.falco.compiler import compile_condition, compile_ruleset, fold_evttype
from grader.engines.falco.engine import Engine
from grader.engines.falco.events import event_from_mapping
from grader.engines.falco.loader import default_rules_text, load_rules
from grader.engines.falco.parser import parse


def rule(name: str, condition: str) -> str:
    return (
        f'- rule: {name}\n  desc: d\n  condition: {condition}\n  output: "{name} %proc.name %fd.name"\n'
        "  priority: WARNING\n"
    )


def macro(name: str, condition: str) -> str:
    return f"- macro: {name}\n  condition: {condition}\n"


# Rules that read evt.type every way the folding must get right, share macros (cached once per event in the
# combined function), carry 4+ exclusions on one field (the dispatch table) and use computed fields.
LOCAL = (
    macro("wr", "(evt.type in (open, openat, openat2) and evt.is_open_write = true and fd.typechar = f)")
    + macro("etc_wr", "(wr and fd.name startswith /etc)")
    + rule("Etc write", "etc_wr and not proc.name in (vi, dpkg)")
    + rule("Etc write by shell", "etc_wr and proc.name in (bash, sh)")
    + rule("Not open", "evt.type != open and evt.type != openat and proc.name = nc")
    + rule("Negated list", "not evt.type in (execve, openat) and container.id != host and proc.name = cat")
    + rule(
        "Or of types", "(evt.type = connect and fd.sport = 443) or (evt.type = openat and fd.name = /tmp/x)"
    )
    + rule("Type exists", "evt.type exists and proc.pname = bash and proc.aname[2] = sshd")
    + rule("Transformed type", "toupper(evt.type) = OPENAT and fd.name endswith shadow")
    + rule("Ancestors", "evt.type = execve and proc.aname in (containerd, runc) and not proc.name in (ls)")
    + rule(
        "Exclusions",
        "evt.type in (execve, openat) and not (proc.name = a and fd.name = x) and not "
        "(proc.name in (b, c) and user.name = root) and not (proc.name = d) and not (proc.name = cat and "
        "user.uid = 0) and proc.name != zsh",
    )
    + rule("Net", "evt.type = connect and fd.net != 10.0.0.0/8 and not fd.snet in (192.168.0.0/16)")
    + rule("Catch all", "evt.type = openat and (etc_wr or wr or fd.directory = /tmp)")
)

PROCS = ["bash", "sh", "cat", "vi", "dpkg", "nc", "ls", "a", "b", "c", "d", "zsh", "python3"]
FILES = ["/etc/shadow", "/etc/passwd", "/tmp/x", "/tmp/y", "/var/log/x", "/etc/apt/sources.list"]
TYPES = ["open", "openat", "openat2", "execve", "connect", "read", "setuid", "unlinkat"]


def random_events(n: int, seed: int) -> list:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        data = {
            "evt.type": rnd.choice(TYPES),
            "proc.name": rnd.choice(PROCS),
            "proc.ancestors": rnd.sample(
                ["bash", "sshd", "containerd", "runc", "systemd"], k=rnd.randint(0, 4)
            ),
            "user.uid": rnd.choice([0, 1000]),
            "container.id": rnd.choice(["host", "3ad7b26ded6d"]),
        }
        if data["evt.type"].startswith("open"):
            data |= {
                "fd.name": rnd.choice(FILES),
                "evt.arg.flags": rnd.choice(["O_RDONLY", "O_WRONLY", "O_RDWR"]),
            }
        elif data["evt.type"] == "connect":
            data["fd.name"] = (
                f"10.0.0.1:40000->{rnd.choice(['10.0.0.2', '192.168.1.1', '8.8.8.8'])}:"
                f"{rnd.choice([80, 443])}"
            )
        out.append(event_from_mapping(data, num=i + 1))
    return out


def assert_same_as_one_by_one(rules, events) -> int:
    fired = 0
    for mode in ("first", "all"):
        combined = Engine(rules, rule_matching=mode)
        separate = Engine(rules, rule_matching=mode, combine=False)
        for e in events:
            got = [r.name for r in combined.matching_rules(e)]
            assert got == [r.name for r in separate.matching_rules(e)], (mode, dict(e))
            fired += len(got)
    return fired


def test_combined_filters_match_rule_by_rule_on_hand_written_rules() -> None:
    res = load_rules([("/etc/falco/falco_rules.yaml", default_rules_text()), ("local.yaml", LOCAL)])
    assert res.successful, res.problems
    fired = assert_same_as_one_by_one(res.rules, random_events(3000, seed=5))
    assert fired > 500  # the events do exercise the rules


def test_combined_filters_match_rule_by_rule_on_upstream_rules(shared_dir) -> None:
    rules_dir = shared_dir / "conformance" / "falco" / "rules"
    names = ["falco_rules.yaml", "falco-incubating_rules.yaml", "falco-sandbox_rules.yaml"]
    res = load_rules([(n, (rules_dir / n).read_text()) for n in names])
    assert res.successful
    fired = assert_same_as_one_by_one(res.rules, random_events(3000, seed=9))
    assert fired > 100


def test_events_without_a_type_and_plain_mappings_still_evaluate() -> None:
    res = load_rules([("r.yaml", rule("Any", "proc.name = cat") + rule("Typed", "evt.type = open"))])
    eng = Engine(res.rules, rule_matching="all")
    assert [r.name for r in eng.matching_rules({"proc.name": "cat"})] == ["Any"]
    assert [r.name for r in eng.matching_rules({"evt.type": "open", "proc.name": "cat"})] == ["Any", "Typed"]


@pytest.mark.parametrize(
    ("condition", "evttype", "folded"),
    [
        ("evt.type = open and proc.name = cat", "open", "proc.name = cat"),
        ("evt.type = open and proc.name = cat", "openat", False),
        ("evt.type != open or proc.name = cat", "openat", True),
        ("evt.type != open or proc.name = cat", "open", "proc.name = cat"),
        ("not evt.type in (execve, openat) and proc.name = cat", "openat", False),
        ("not evt.type in (execve, openat) and proc.name = cat", "open", "proc.name = cat"),
        ("evt.type exists and proc.name = cat", "open", "proc.name = cat"),
        ("evt.type intersects (open) or fd.name = x", "open", True),
        # transformers and other operators keep the check: only the plain comparisons are decided
        ("tolower(evt.type) = open", "open", "tolower(evt.type) = open"),
        ("evt.type startswith open", "openat", "evt.type startswith open"),
    ],
)
def test_fold_evttype_decides_only_plain_type_checks(condition: str, evttype: str, folded) -> None:
    got = fold_evttype(parse(condition), evttype)
    assert got == (folded if isinstance(folded, bool) else parse(folded))


def test_compile_ruleset_returns_first_index_or_all_indexes() -> None:
    filters = [
        compile_condition(c)
        for c in ("proc.name = cat", "evt.type = open and fd.name = /x", "evt.type = openat", "fd.name = /x")
    ]
    e = event_from_mapping({"evt.type": "open", "proc.name": "ls", "fd.name": "/x"})
    assert compile_ruleset(filters, "open")(e) == 1
    assert compile_ruleset(filters, "open", collect_all=True)(e) == [1, 3]
    assert compile_ruleset(filters[:1], "open")(e) == -1


def test_too_many_rules_for_one_type_fall_back_to_one_by_one() -> None:
    text = "".join(rule(f"R{i}", f"evt.type = open and fd.name = /f{i}") for i in range(300))
    res = load_rules([("many.yaml", text)])
    eng = Engine(res.rules, rule_matching="all")
    e = event_from_mapping({"evt.type": "open", "fd.name": "/f299", "proc.name": "cat"})
    assert [r.name for r in eng.matching_rules(e)] == ["R299"]
