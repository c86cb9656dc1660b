"""docs/learner-walkthrough.md is a recorded session: replay it and compare, so the transcript the README
points learners to stays what the kit really prints.

The session is replayed in a fresh folder with the same settings as the recording (NO_COLOR=1 COLUMNS=100)
up to the first `$ #` line (an edit made in an editor, which the transcript shows only through `sed -n`).
Clock times are the only difference allowed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "learner-walkthrough.md"
_TIMES = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\dZ?")


def _steps(doc: str) -> list[tuple[str, str]]:
    """(command, expected output) for each `$ ` line of the transcript, a heredoc kept with its command."""
    block = doc.split("```text\n", 1)[1].split("\n```", 1)[0]
    steps: list[tuple[str, list[str]]] = []
    lines = iter(block.splitlines())
    for line in lines:
        if line.startswith("$ "):
            command = line[2:]
            if command.endswith("<<'EOF'"):
                body = []
                for more in lines:
                    body.append(more)
                    if more == "EOF":
                        break
                command += "\n" + "\n".join(body)
            steps.append((command, []))
        elif steps:
            steps[-1][1].append(line)
    return [(cmd, "\n".join(out).strip("\n")) for cmd, out in steps]


def _tools(bin_dir: Path) -> None:
    bin_dir.mkdir()
    for name, code in (
        ("cks", "from grader.cli import main; main()"),
        ("grade", "from grader.cli import grade_main; grade_main()"),
    ):
        tool = bin_dir / name
        tool.write_text(f"#!/bin/sh\nexec {sys.executable} -c '{code}' \"$@\"\n")
        tool.chmod(0o755)


@pytest.mark.slow
def test_the_recorded_walkthrough_is_what_the_kit_prints(tmp_path: Path) -> None:
    steps = _steps(DOC.read_text())
    assert len(steps) > 8 and steps[0][0] == "cks start lab1"
    _tools(tmp_path / "bin")
    work = tmp_path / "session"
    work.mkdir()
    env = {
        **os.environ,
        "NO_COLOR": "1",
        "COLUMNS": "100",
        "PYTHONPATH": str(REPO),
        "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    env.pop("CKS_LABS_DIR", None)
    script = ""  # one shell for the whole session: variables such as $P carry over, as they did
    replayed = 0
    for command, _ in steps:
        if command.startswith("#"):
            break
        marker = f"@@step{replayed}@@"
        script += f"{{\n{command}\n}} 2>&1\necho {marker}\n"
        replayed += 1
    result = subprocess.run(
        ["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True, timeout=300
    )
    outputs = result.stdout.split("@@step")
    for i, (command, expected) in enumerate(steps[:replayed]):
        got = outputs[i].split("@@\n", 1)[-1] if i else outputs[0]
        got = "\n".join(line.rstrip() for line in got.splitlines()).strip("\n")
        assert _TIMES.sub("T", got) == _TIMES.sub("T", expected), f"`{command}` prints differently now"
    assert replayed >= 8, "the replay must cover the hint tiers"
