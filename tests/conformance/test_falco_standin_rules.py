"""The kit's stand-in default rules file follows the falco-rules release that the pinned Falco installs
(falco-rules 5.1.0 with Falco 0.44): every list, macro and rule it defines exists upstream under the same
name with the same meaning (compared after list and macro expansion, as Falco compiles them), and the
stand-in defines nothing that the node's real /etc/falco/falco_rules.yaml lacks."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.engines.falco.loader import default_rules_text, load_rules
from tests.conftest import REPO, conformance_path

UPSTREAM = conformance_path("falco", "rules", "falco_rules.yaml")
STAND_INS = [
    REPO / "grader/engines/falco/default_rules.yaml",
    REPO / "labs/lab3-falco-rules/start/nodes/controlplane/etc/falco/falco_rules.yaml",
    REPO / "labs/lab8-mock-exam/start/nodes/controlplane/etc/falco/falco_rules.yaml",
]


@pytest.fixture(scope="module")
def upstream():
    res = load_rules([("falco_rules.yaml", UPSTREAM.read_bytes())])
    assert res.successful, [e.short() for e in res.errors]
    return res


@pytest.fixture(scope="module")
def standin():
    res = load_rules([("falco_rules.yaml", default_rules_text())])
    assert res.successful and not res.warnings, [p.short() for p in res.files[0].problems]
    return res


def test_the_stand_in_copies_are_one_file() -> None:
    texts = {p: p.read_text() for p in STAND_INS}
    assert len(set(texts.values())) == 1, "the package's and the labs' stand-ins differ"


def test_same_required_versions(upstream, standin) -> None:
    assert standin.required_engine_version == upstream.required_engine_version


def test_every_list_is_upstream_with_the_same_items(upstream, standin) -> None:
    for lst in standin.lists:
        theirs = upstream.list(lst.name)
        assert theirs is not None, f"list {lst.name} is not in falco-rules 5.1.0"
        assert lst.items == theirs.items, lst.name


def test_every_macro_is_upstream_with_the_same_meaning(upstream, standin) -> None:
    for macro in standin.macros:
        theirs = upstream.macro(macro.name)
        assert theirs is not None, f"macro {macro.name} is not in falco-rules 5.1.0"
        from grader.engines.falco.ast import to_text

        assert to_text(macro.ast) == to_text(theirs.ast), macro.name


def test_every_rule_is_upstream_with_the_same_meaning(upstream, standin) -> None:
    for rule in standin.rules:
        theirs = upstream.rule(rule.name)
        assert theirs is not None, f"rule {rule.name} is not in falco-rules 5.1.0"
        assert rule.condition_compiled == theirs.condition_compiled, rule.name
        assert (rule.output, rule.priority, rule.enabled, rule.tags, rule.evttypes) == (
            theirs.output,
            theirs.priority,
            theirs.enabled,
            theirs.tags,
            theirs.evttypes,
        ), rule.name


@pytest.mark.parametrize(
    "name", ["package_mgmt_procs", "always_true", "user_known_package_manager_in_container"]
)
def test_names_of_the_incubating_and_sandbox_files_are_absent(name: str, upstream, standin) -> None:
    """A learner's rule that uses them is refused by the node's Falco, so it must be refused offline too."""
    assert upstream.macro(name) is None
    assert standin.macro(name) is None


def test_the_macros_learners_use_are_there(standin) -> None:
    for name in ("spawned_process", "container", "open_read", "open_write", "shell_procs", "sensitive_files"):
        assert standin.macro(name) is not None, name
    for name in ("shell_binaries", "package_mgmt_binaries", "sensitive_file_names"):
        assert standin.list(name) is not None, name


def test_paths_exist() -> None:
    assert all(Path(p).is_file() for p in STAND_INS)
