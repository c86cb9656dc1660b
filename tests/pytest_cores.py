"""Use every core for a whole-suite run when pytest-xdist is installed (the `test` extra installs it).

Loaded by `-p tests.pytest_cores` (pyproject addopts). `python -m pytest -q` and `-m "not slow"` run on
`-n auto` workers; a run naming test files or folders, an explicit `-n`, `-p no:xdist`, CKS_TEST_SERIAL=1
or a one-core machine run in one process (starting workers costs more than a few files take). Without
pytest-xdist nothing changes. Bytecode is cached for the run's modules (see below).
"""

from __future__ import annotations

import os
import sys
from typing import Any


def pytest_load_initial_conftests(early_config: Any, parser: Any, args: list[str]) -> None:
    # Keep compiled and assertion-rewritten modules even where PYTHONDONTWRITEBYTECODE is set (it is on the
    # build machine): rewriting every test module again costs ~5 s of each worker's start, a tenth of the
    # fast tier. They go to __pycache__ folders, which git ignores.
    sys.dont_write_bytecode = False
    ns = early_config.known_args_namespace
    if not early_config.pluginmanager.hasplugin("xdist") or os.environ.get("PYTEST_XDIST_WORKER"):
        return
    if getattr(ns, "numprocesses", None) is not None or getattr(ns, "file_or_dir", None):
        return
    if os.environ.get("CKS_TEST_SERIAL") or (os.cpu_count() or 1) < 2:
        return
    args[:0] = ["-n", "auto"]
