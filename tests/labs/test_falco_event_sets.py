"""The event sets lab3 and lab8 (question 3) grade rules with.

* The shipped sets carry no explanations (only neutral ids); the why of each event lives here, in
  tests/labs/<lab>/events-explained.yaml, next to a plausible wrong condition that the event catches out.
* Each explained trap is real: the wrong condition fires on its negative event (or misses its positive one)
  while the reference rule does not, so no event is decoration.
* Every positive event has a negative neighbour that differs from it in exactly one respect.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import yaml

from grader.engines.falco.events import event_from_mapping
from grader.engines.falco.loader import default_rules_text, load_rules
from grader.labs import get_lab
from tests.conftest import REPO

# lab -> (event set key, reference condition as in the lab's solution)
SETS = {
    "lab3": {
        "privesc": "spawned_process and container and proc.name in (sudo, su, pkexec, doas)",
        "shadow": "open_read and container and fd.name in (/etc/shadow, /etc/gshadow)",
        "package_manager": (
            "spawned_process and container and "
            "proc.name in (apt, apt-get, dpkg, yum, dnf, rpm, apk, pip, pip3)"
        ),
    },
    "lab8": {
        "token": (
            "open_read and container and "
            "(fd.name startswith /var/run/secrets/kubernetes.io/serviceaccount/ or "
            "fd.name startswith /run/secrets/kubernetes.io/serviceaccount/)"
        ),
    },
}
CASES = [(lab, key) for lab, keys in SETS.items() for key in keys]
# what tells two events apart; a neighbour differs from a positive event in exactly one of these respects


def _syscall(e: dict) -> str:
    t = e.get("evt.type")
    return "exec" if t in ("execve", "execveat") else "open" if t in ("open", "openat", "openat2") else str(t)


def _mode(e: dict) -> str:
    flags = str(e.get("evt.arg.flags") or "")
    return "read" if "O_RDONLY" in flags or "O_RDWR" in flags else "write" if flags else "none"


RESPECTS = {
    "where": lambda e: "host" if e.get("container.id") in (None, "host") else "container",
    "syscall": _syscall,
}
EXEC_RESPECTS = RESPECTS | {"program": lambda e: e.get("proc.name")}
OPEN_RESPECTS = RESPECTS | {"path": lambda e: e.get("fd.name"), "mode": _mode}


def _sets(lab_id: str) -> dict:
    return yaml.safe_load((get_lab(lab_id).dir / "events.yaml").read_text())


def _explained(lab_id: str) -> dict:
    return yaml.safe_load((REPO / "tests" / "labs" / lab_id / "events-explained.yaml").read_text())


@functools.lru_cache(maxsize=1)
def _filters() -> dict:
    """Every reference and trap condition compiled in one load on top of the stand-in default rules."""
    conditions = {c for keys in SETS.values() for c in keys.values()}
    for lab_id in SETS:
        for entries in _explained(lab_id).values():
            conditions |= {e["trap"] for e in entries.values() if e.get("trap")}
    ordered = sorted(conditions)
    text = "".join(
        f"- rule: r{i}\n  desc: d\n  condition: {c}\n  output: x\n  priority: INFO\n"
        for i, c in enumerate(ordered)
    )
    res = load_rules([("falco_rules.yaml", default_rules_text()), ("local.yaml", text)])
    assert res.successful, [e.short() for e in res.errors]
    return {c: res.rule(f"r{i}").filter for i, c in enumerate(ordered)}


def _matches(condition: str, raw: dict) -> bool:
    return _filters()[condition].matches(event_from_mapping(raw))


@pytest.mark.parametrize("lab_id", sorted(SETS))
def test_the_shipped_sets_carry_no_explanations(lab_id: str) -> None:
    text = (get_lab(lab_id).dir / "events.yaml").read_text()
    comments = " ".join(line for line in text.splitlines() if line.lstrip().startswith("#")).lower()
    for word in ("trap", "without", "fires", "look-alike", "wrong", "plausible"):
        assert word not in comments, word
    for events in _sets(lab_id).values():
        for kind in ("positive", "negative"):
            for raw in events[kind]:
                private = [k for k in raw if k.startswith("_") and k != "_id"]
                assert not private, f"{raw['_id']}: {private}"


@pytest.mark.parametrize(("lab_id", "key"), CASES)
def test_every_event_is_explained_and_its_trap_is_real(lab_id: str, key: str) -> None:
    events = _sets(lab_id)[key]
    why = _explained(lab_id)[key]
    ids = [raw["_id"] for kind in ("positive", "negative") for raw in events[kind]]
    assert sorted(ids) == sorted(why), "events and explanations differ"
    reference = SETS[lab_id][key]
    for kind in ("positive", "negative"):
        for raw in events[kind]:
            entry = why[raw["_id"]]
            assert _matches(reference, raw) is (kind == "positive"), (raw["_id"], entry["why"])
            trap = entry.get("trap")
            if kind == "negative":
                assert trap, f"{raw['_id']}: a negative event needs the wrong condition it catches out"
            if trap:
                assert _matches(trap, raw) is (kind == "negative"), (raw["_id"], entry["why"], trap)
                # the wrong condition is plausible: it catches the task's ordinary events
                assert any(_matches(trap, p) for p in events["positive"] if p is not raw), trap


@pytest.mark.parametrize(("lab_id", "key"), CASES)
def test_every_positive_event_has_a_one_respect_neighbour(lab_id: str, key: str) -> None:
    events = _sets(lab_id)[key]

    respects = EXEC_RESPECTS if all(_syscall(p) == "exec" for p in events["positive"]) else OPEN_RESPECTS

    def differences(a: dict, b: dict) -> set[str]:
        return {name for name, get in respects.items() if get(a) != get(b)}

    lonely = [
        p["_id"]
        for p in events["positive"]
        if not any(len(differences(p, n)) == 1 for n in events["negative"])
    ]
    assert not lonely, lonely


def test_paths() -> None:
    for lab_id in SETS:
        assert (REPO / "tests" / "labs" / lab_id / "events-explained.yaml").is_file()
        assert Path(get_lab(lab_id).dir / "events.yaml").is_file()
