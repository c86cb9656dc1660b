"""The kit's pinned versions, read from the one file that pins them (``provision/versions.env``).

The Vagrantfile and the provisioning scripts source the same file; the grader reads it here so that offline
judgement (kube-apiserver flags and audit policy loading, Pod Security Standards version, the Falco release
and its default rules) follows the cluster the labs run on. A wheel carries the file as
``grader/_versions.env``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

_HERE = Path(__file__).resolve().parent
_CANDIDATES = (_HERE / "_versions.env", _HERE.parent / "provision" / "versions.env")
_LINE = re.compile(r'^([A-Z][A-Z0-9_]*)="([^"$`\\]*)"$')


class VersionsError(RuntimeError):
    """The versions file is missing or has a line that is not ``KEY="value"``."""


def parse(text: str) -> dict[str, str]:
    """``KEY="value"`` lines (comments and blank lines skipped) -> dict; anything else is an error."""
    out: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if not match:
            raise VersionsError(f'versions.env line {number}: expected KEY="value", got {raw!r}')
        out[match.group(1)] = match.group(2)
    return out


@lru_cache(maxsize=1)
def pinned() -> dict[str, str]:
    for path in _CANDIDATES:
        if path.is_file():
            return parse(path.read_text(encoding="utf-8"))
    raise VersionsError("provision/versions.env not found beside the grader package (a broken install?)")


def minor(version: str) -> tuple[int, int]:
    """``v1.36``, ``1.36.4`` or ``v1.36.4`` -> ``(1, 36)``."""
    match = re.match(r"^v?(\d+)\.(\d+)", version)
    if not match:
        raise VersionsError(f"not a Kubernetes version: {version!r}")
    return int(match.group(1)), int(match.group(2))


def kubernetes() -> str:
    """The pinned Kubernetes release, e.g. ``1.36.4``."""
    return pinned()["K8S_VERSION"]


def kubernetes_minor() -> tuple[int, int]:
    return minor(kubernetes())


def pss_version() -> str:
    """The Pod Security Standards version of the pinned cluster, as PSA labels write it (``v1.36``)."""
    major, mnr = kubernetes_minor()
    return f"v{major}.{mnr}"


def falco() -> str:
    return pinned()["FALCO_VERSION"]


def falco_rules() -> str:
    return pinned()["FALCO_RULES_VERSION"]


def summary() -> str:
    """One line for `cks list` and docs: what the labs' cluster runs."""
    return f"Kubernetes {kubernetes()} · Falco {falco()} (rules {falco_rules()})"
