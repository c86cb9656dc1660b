"""Fixtures shared by the engine tests."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["native", "python"])
def scanner_backend(request, monkeypatch) -> str:
    """The test runs with the compiled scanner (grader.engines.audit_log._fastscan) and with its Python
    versions (msgspec, the needle search in Python): both must give the plain pipeline's answers."""
    from grader.engines.audit_log import fastscan

    if request.param == "native" and fastscan.native is None:
        pytest.skip("the compiled scanner is not built here (no C compiler or Python headers at install)")
    if request.param == "python":
        monkeypatch.setattr(fastscan, "native", None)
    return request.param
