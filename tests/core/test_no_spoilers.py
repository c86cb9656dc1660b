"""A learner who grades an untouched lab learns what is still wrong, not what to type.

For every lab and several seeds, the start state is graded in every default format (table, `-v`, JSON,
JUnit) and the output is searched for the lab's answer values, derived here from solutions/ (tests may read
it; the grader may not): the objects the reference answer deletes or changes where finding them is the task
(lab4 offending Deployments, lab6 offending Pods and Deployments, lab7 and lab8 Q6 the intruder, the Secrets
it read and the Role to change), the contents of the files the answer writes for investigation tasks, and the
text of every task's last hint tier (the shape of the answer), which `grade` prints only with --hints.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from grader import variants
from grader.cli import grade_cmd
from grader.labs import Lab, all_labs
from grader.solutions import apply_overlay
from grader.workspace import materialize

REPO = Path(__file__).resolve().parents[2]
SEEDS = (None, "alice", "bob")
FORMATS = (("table",), ("table", "-v"), ("json",), ("junit",))


@dataclass
class Spoilers:
    """What must not appear: exact strings (identities, file contents), names (matched as whole words) and
    patterns (how many Secrets were read, counted next to the word)."""

    strings: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)
    patterns: set[str] = field(default_factory=set)


# Where finding the objects is the task: (kind, files under cluster/ whose changed or deleted objects count).
FIND_OBJECTS: dict[str, list[tuple[str, str]]] = {
    "lab4": [("Deployment", "*.yaml")],
    "lab6": [("Pod", "*.yaml"), ("Deployment", "*.yaml")],
    "lab7": [("Secret", "secrets/*.yaml"), ("Role", "rbac/*.yaml")],
    "lab8": [("Secret", "q6-*.yaml"), ("Role", "q6-*.yaml")],
}
# Files the answer writes whose contents are the investigation's result.
FINDINGS = {
    "lab7": [
        "nodes/controlplane/opt/course/lab7/intruder.txt",
        "nodes/controlplane/opt/course/lab7/secrets.txt",
    ],
    "lab8": [
        "nodes/controlplane/opt/course/exam/q6/intruder.txt",
        "nodes/controlplane/opt/course/exam/q6/secrets.txt",
    ],
}
# Labs whose start output still gives part of the answer on this branch; the lab helpers' fixes to the
# checks' reasons remove them (the lead drops an entry when its fix is merged).
STILL_LEAKING: dict[str, str] = {}


def _objects(root: Path, pattern: str, kind: str) -> dict[str, str]:
    """name -> the object's YAML (minus status) for every ``kind`` under root/cluster/pattern."""
    out: dict[str, str] = {}
    for path in sorted((root / "cluster").glob(pattern)):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == kind:
                doc.pop("status", None)
                out[str(doc.get("metadata", {}).get("name"))] = yaml.safe_dump(doc, sort_keys=True)
    return out


def spoilers(lab: Lab, seed: str | None, start: Path, tmp: Path) -> Spoilers:
    values = variants.values_for(lab, seed)
    found = Spoilers()
    for task in lab.tasks:
        tier3 = variants.render_text(task.hint, values)
        found.strings.add(tier3[:60])  # the opening words of the shape of the answer
    answer = tmp / "answer"
    shutil.copytree(start, answer)
    apply_overlay(REPO / "solutions" / lab.id, answer, values)
    for kind, pattern in FIND_OBJECTS.get(lab.id, []):
        before, after = _objects(start, pattern, kind), _objects(answer, pattern, kind)
        found.names |= {name for name, text in before.items() if after.get(name) != text}
    for rel in FINDINGS.get(lab.id, []):
        lines = [line.strip() for line in (answer / rel).read_text().splitlines() if line.strip()]
        if rel.endswith("secrets.txt"):  # "4 Secrets that were read ..." counts the answer of the task
            found.patterns.add(rf"(?<![\d/]){len(lines)}\b[^\n.;:]{{0,30}}\bsecrets?\b")
        for line in lines:
            found.strings.add(line)
            # an identity also leaks as the account's own name, alone
            found.names.add(line.rsplit(":", 1)[1] if line.startswith("system:serviceaccount:") else line)
    return found


def leaks(output: str, found: Spoilers) -> list[str]:
    out = sorted(s for s in found.strings if s in output)
    out += sorted(n for n in found.names if re.search(rf"(?<![\w.]){re.escape(n)}(?![\w])", output))
    out += sorted(m.group(0) for p in found.patterns for m in [re.search(p, output, re.I)] if m)
    return out


LABS = all_labs(REPO / "labs")


@pytest.mark.slow
@pytest.mark.parametrize(
    "lab",
    [
        pytest.param(
            lab,
            marks=[pytest.mark.xfail(strict=False, reason=STILL_LEAKING[lab.id])]
            if lab.id in STILL_LEAKING
            else [],
        )
        for lab in LABS
    ],
    ids=[lab.id for lab in LABS],
)
def test_start_state_output_names_no_answer(lab: Lab, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")  # names are never cut by wrapping
    monkeypatch.delenv("CKS_LABS_DIR", raising=False)
    problems = []
    for seed in SEEDS:
        case = tmp_path / (seed or "default")
        start = case / "ws"
        materialize(lab, start, seed)
        found = spoilers(lab, seed, start, case)
        assert found.strings, "the test must have something to look for"
        for fmt in FORMATS:
            args = [lab.id, "--workspace", str(start)]
            args += ["--format", fmt[0]] + list(fmt[1:])
            result = CliRunner().invoke(grade_cmd, args)
            assert result.exit_code in (1, 3), result.output
            for leak in leaks(result.output, found):
                problems.append(f"seed {seed}, {' '.join(fmt)}: {leak!r}")
    assert not problems, f"{lab.id} start-state output gives away the answer:\n" + "\n".join(problems[:20])


def test_the_search_finds_a_leak_when_there_is_one() -> None:
    found = Spoilers(
        strings={"system:serviceaccount:payments:report-runner"}, names={"orders", "db-credentials"}
    )
    assert leaks("2 of the offending Pods are still running", found) == []
    assert leaks("Deployment orders-7d9 still runs", found) == ["orders"]
    assert leaks("rotate the credentials of db", found) == []
    found.patterns.add(r"(?<![\d/])4\b[^\n.;:]{0,30}\bsecrets?\b")
    assert leaks("0 read Secrets have new data; 14 Secrets in payments", found) == []
    assert leaks("4 Secret(s) that were read still have their old data", found) == ["4 Secret"]
    assert leaks("system:serviceaccount:payments:report-runner can get secrets", found) == [
        "system:serviceaccount:payments:report-runner"
    ]
