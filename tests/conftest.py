from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CKS_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared beside the checkout; tests that need it skip, saying so, when it is absent."""
    if not SHARED.is_dir():
        pytest.skip(
            f"conformance data not found at {SHARED} (set CKS_SHARED or place ../shared beside the repo)"
        )
    return SHARED


def conformance_path(*parts: str) -> Path:
    """For module-level parametrisation: the path, or a skip when the folder is absent."""
    path = SHARED.joinpath("conformance", *parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: conformance data not available", allow_module_level=True)
    return path
