"""Every upstream Pod Security Admission fixture is allowed or denied as its folder says.

Layout: ../shared/conformance/psa/<level>/v1.<minor>/<pass|fail>/<checkid><n>.yaml (see its README).
A fail fixture must be denied by the check its file name names (the reason PSA would give), and
wrapping the same pod in a Deployment template must give the same verdict.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from grader.engines import podsec
from grader.engines.podsec.pss import CHECK_IDS, active_checks

pytestmark = pytest.mark.conformance

_IDS = {c.lower(): c for c in CHECK_IDS}
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built with it


def _fixtures(root: Path) -> list[tuple[str, int, bool, str, Path]]:
    out = []
    for path in sorted(root.glob("*/v1.*/*/*.yaml")):
        level, ver, verdict = path.parts[-4], path.parts[-3], path.parts[-2]
        out.append((level, int(ver.split(".")[1]), verdict == "pass", path.stem, path))
    return out


def _deciders(check_id: str, level: str, minor: int) -> set[str]:
    """The check id, or the restricted check that replaces it at this level and version."""
    active = active_checks(level, minor)
    ids = {c.id for c, _ in active}
    if check_id in ids:
        return {check_id}
    return {c.id for c, r in active if check_id in r.overrides}


def _wrap(pod: dict) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {"template": {"metadata": pod.get("metadata", {}), "spec": pod["spec"]}},
    }


def test_every_psa_fixture_agrees(shared_dir: Path) -> None:
    root = shared_dir / "conformance" / "psa"
    if not root.is_dir():
        pytest.skip(f"{root} is absent: PSA conformance data not available")
    fixtures = _fixtures(root)
    assert len(fixtures) > 4000, "the fixture tree looks incomplete"
    counts: Counter[str] = Counter()
    wrong: list[str] = []
    parsed: dict[bytes, dict] = {}  # 4,537 files hold 380 distinct pods: each text is parsed once
    for level, minor, expect_allowed, stem, path in fixtures:
        text = path.read_bytes()
        pod = parsed.get(text)
        if pod is None:
            pod = parsed[text] = yaml.load(text, Loader=_LOADER)  # noqa: S506 - a safe loader
        violations = podsec.evaluate_pss(pod, level, minor)
        rel = path.relative_to(root).as_posix()
        if expect_allowed:
            ok = not violations
        else:
            want = _IDS.get(re.sub(r"\d+$", "", stem))
            # denied, and by the check the fixture breaks (or the check that overrides it at this level)
            ok = bool(violations) and (
                want is None or bool(_deciders(want, level, minor) & {v.check_id for v in violations})
            )
        same_in_template = (not podsec.evaluate_pss(_wrap(pod), level, minor)) == (not violations)
        if not ok or not same_in_template:
            wrong.append(
                f"{rel}: expected {'allowed' if expect_allowed else 'denied'}, got "
                f"{podsec.admission_message(violations, level, f'v1.{minor}') or 'allowed'}"
            )
        counts[f"{level} {'pass' if expect_allowed else 'fail'}"] += 1
    total = sum(counts.values())
    print(f"\nPSA conformance: {total - len(wrong)}/{total} agree ({dict(sorted(counts.items()))})")
    assert not wrong, f"{len(wrong)} fixtures disagree:\n" + "\n".join(wrong[:40])


def test_latest_is_the_newest_fixture_version(shared_dir: Path) -> None:
    root = shared_dir / "conformance" / "psa" / "restricted"
    if not root.is_dir():
        pytest.skip("PSA conformance data not available")
    newest = max(int(p.name.split(".")[1]) for p in root.glob("v1.*"))
    assert podsec.parse_version("latest") == newest
