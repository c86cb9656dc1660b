from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

FIXTURE_LABS = Path(__file__).resolve().parents[1] / "fixtures" / "labs"


@pytest.fixture()
def demo(tmp_path, monkeypatch):
    """A started workspace of the fixture lab lab90 (two files to write, one live-only task)."""
    from grader.cli import cks
    from grader.labs import load_lab_dir

    monkeypatch.setenv("CKS_LABS_DIR", str(FIXTURE_LABS))
    monkeypatch.setenv("NO_COLOR", "1")
    load_lab_dir.cache_clear()
    ws = tmp_path / "ws"
    result = CliRunner().invoke(cks, ["start", "lab90", "--workspace", str(ws)])
    assert result.exit_code == 0, result.output
    return ws
