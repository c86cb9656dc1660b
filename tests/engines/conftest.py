"""Fixtures shared by the engine tests."""

from __future__ import annotations

import pytest


def _backends() -> list:
    """Both backends; where the compiled one is built, the Python one runs in the whole suite only (the
    fast tier stays under a minute), else it is the one the fast tier runs."""
    from grader.engines.audit_log import fastscan

    if fastscan.native is None:
        return ["native", "python"]
    return ["native", pytest.param("python", marks=pytest.mark.slow)]


@pytest.fixture(params=_backends())
def scanner_backend(request, monkeypatch) -> str:
    """The test runs with the compiled scanner (grader.engines.audit_log._fastscan) and with its Python
    versions (msgspec, the needle search in Python): both must give the plain pipeline's answers."""
    from grader.engines.audit_log import fastscan

    if request.param == "native" and fastscan.native is None:
        pytest.skip("the compiled scanner is not built here (no C compiler or Python headers at install)")
    if request.param == "python":
        monkeypatch.setattr(fastscan, "native", None)
    return request.param
