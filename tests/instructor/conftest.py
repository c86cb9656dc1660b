"""Fixtures for the instructor tools: a seeded lab of our own (see _instructor_lab.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.instructor._instructor_lab import make_labs_root


@pytest.fixture()
def labs_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_labs_root(tmp_path / "labs")
    monkeypatch.setenv("CKS_LABS_DIR", str(root))
    return root


@pytest.fixture()
def lab90(labs_root: Path):
    from grader.labs import get_lab

    return get_lab("lab90")
