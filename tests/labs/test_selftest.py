"""`cks selftest` inside the suite: every shipped lab proves itself (start 0, solution full, fixtures
exact)."""

from __future__ import annotations

import pytest

from grader.labs import all_labs
from grader.selftest import DEFAULT_SEEDS, run_lab

LABS = all_labs()
# self-tests over ~3 s here (lab7 generates and queries its audit log per seed, lab8 is the mock exam: every
# area at once): the whole suite runs them, the fast tier the others (CI's `cks selftest` runs every lab too)
HEAVY = {"lab7", "lab8"}


@pytest.mark.parametrize(
    "lab",
    [pytest.param(lab, marks=pytest.mark.slow) if lab.id in HEAVY else lab for lab in LABS],
    ids=[lab.id for lab in LABS],
)
def test_lab_proves_itself(lab):
    cases = run_lab(lab, DEFAULT_SEEDS)
    kinds = {c.name.split("/")[0] for c in cases}
    assert {"start", "solution"} <= kinds
    bad = [f"{c.label}: {'; '.join(c.problems)}" for c in cases if not c.ok]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("lab", LABS, ids=[lab.id for lab in LABS])
def test_lab_has_wrong_answer_fixtures(lab):
    from grader.selftest import fixture_cases

    wrong = [name for name, *_ in fixture_cases(lab) if name.startswith("wrong/")]
    assert len(wrong) >= 3, f"{lab.id} needs wrong-answer fixtures under tests/labs/{lab.id}/wrong/"


def test_selftest_catches_a_lab_that_gives_points_for_nothing(tmp_path, monkeypatch):
    """The self-test itself must be able to fail: a start state that already passes is reported."""
    from pathlib import Path

    from grader.labs import load_lab_dir
    from grader.runner import grade
    from grader.selftest import Case, check_case
    from grader.snapshot import Snapshot

    lab = load_lab_dir(Path(__file__).resolve().parents[1] / "fixtures" / "labs" / "lab90-demo")
    ws = tmp_path / "nodes" / "cp" / "etc"
    ws.mkdir(parents=True)
    (ws / "greeting").write_text("hi")
    case = Case(lab.id, "start", None, None)
    check_case(case, grade(lab, Snapshot(tmp_path)), lab)
    assert not case.ok and "t1 earns 2 points in the starting state" in case.problems[0]
    case = Case(lab.id, "wrong/x", None, {"t1"})
    check_case(case, grade(lab, Snapshot(tmp_path)), lab)
    assert any("t1 should fail but pass" in p for p in case.problems)
    assert any("t2 should pass but fail" in p for p in case.problems)


def test_lab_tree_file_names_have_no_spaces_or_braces():
    """Templated names use the placeholder form (`role-__sa__.yaml`) in every lab tree (starting states,
    reference solutions, test fixtures): spaces and braces break globbing, `xargs` and editors' quick-open."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    trees = [root / "labs", root / "solutions", root / "tests" / "labs"]
    assert all(t.is_dir() for t in trees)
    bad = [str(p.relative_to(root)) for t in trees for p in t.rglob("*") if any(c in p.name for c in " {}")]
    assert not bad, bad


def test_placeholders_in_names_become_the_variants_values(tmp_path):
    from grader.variants import render_path
    from grader.workspace import copy_tree

    values = {"sa": "report-runner", "save_file": "shadow.txt", "read_1": "db-password"}
    assert render_path("cluster/rbac/role-__sa__.yaml", values) == "cluster/rbac/role-report-runner.yaml"
    assert render_path("opt/__save_file__", values) == "opt/shadow.txt"
    assert render_path("secrets/__read_1__.yaml", values) == "secrets/db-password.yaml"
    assert render_path("pkg/__init__.py", values) == "pkg/__init__.py"  # not a variable: unchanged
    assert render_path("rbac/role-{{ sa }}.yaml", values) == "rbac/role-report-runner.yaml"  # older form
    tree = tmp_path / "tree"
    (tree / "rbac").mkdir(parents=True)
    (tree / "rbac" / "role-__sa__.yaml").write_text("name: {{ sa }}\n")
    copy_tree(tree, tmp_path / "out", values)
    assert (tmp_path / "out" / "rbac" / "role-report-runner.yaml").read_text() == "name: report-runner\n"


# Fixture edits: small changes stated in fixture.yaml instead of full copies of the solution's files.

POLICY = "nodes/cp/etc/policy.yaml"
POLICY_TEXT = "rules:\n  - level: None\n    users: [kube-proxy]\n  - level: Metadata\n"


def _fixture(tmp_path, edits: str, overlay: dict[str, str] | None = None, delete: str | None = None):
    """A built workspace (one policy file, one notes file) and a fixture folder holding ``edits``."""
    ws = tmp_path / "ws"
    (ws / "nodes" / "cp" / "etc").mkdir(parents=True)
    (ws / POLICY).write_text(POLICY_TEXT)
    (ws / "nodes" / "cp" / "etc" / "notes.txt").write_text("keep\n")
    fx = tmp_path / "fx"
    fx.mkdir()
    (fx / "fixture.yaml").write_text("fails: [t1]\nedits:\n" + edits)
    for rel, text in (overlay or {}).items():
        (fx / "overlay" / rel).parent.mkdir(parents=True, exist_ok=True)
        (fx / "overlay" / rel).write_text(text)
    if delete is not None:
        (fx / "delete.txt").write_text(delete)
    return fx, ws


def test_edit_forms_replace_insert_and_delete(tmp_path):
    from grader.selftest import apply_fixture

    cases = {
        "  - {file: %s, replace: 'level: Metadata', with: 'level: Request'}\n": POLICY_TEXT.replace(
            "level: Metadata", "level: Request"
        ),
        "  - {file: %s, after: 'users: [kube-proxy]', insert: '    verbs: [watch]'}\n": POLICY_TEXT.replace(
            "[kube-proxy]\n", "[kube-proxy]\n    verbs: [watch]\n"
        ),
        "  - {file: %s, before: '- level: Metadata', insert: '  - level: Request'}\n": POLICY_TEXT.replace(
            "  - level: Metadata", "  - level: Request\n  - level: Metadata"
        ),
        "  - {file: %s, delete: 'users: [kube-proxy]'}\n": POLICY_TEXT.replace(
            "    users: [kube-proxy]\n", ""
        ),
        "  - {file: %s, delete: '- level: None', through: 'kube-proxy'}\n": "rules:\n  - level: Metadata\n",
    }
    for i, (edit, expected) in enumerate(cases.items()):
        fx, ws = _fixture(tmp_path / str(i), edit % POLICY)
        apply_fixture(fx, ws, {})
        assert (ws / POLICY).read_text() == expected, edit


def test_edits_apply_in_order_after_overlay_and_delete_txt(tmp_path):
    """Edits compose: each sees the text the previous one left, and they run after overlay/ and delete.txt
    (so an edit may change a file the overlay brought)."""
    from grader.selftest import apply_fixture

    edits = (
        f"  - {{file: {POLICY}, replace: 'level: None', with: 'level: Request'}}\n"
        f"  - {{file: {POLICY}, after: 'level: Request', insert: '    verbs: [get]'}}\n"
        "  - {file: nodes/cp/etc/extra.yaml, replace: '{{ who }}', with: 'bob'}\n"
    )
    overlay = {"nodes/cp/etc/extra.yaml": "user: {{ who }}\n"}
    fx, ws = _fixture(tmp_path, edits, overlay=overlay, delete="nodes/cp/etc/notes.txt\n")
    apply_fixture(fx, ws, {"who": "alice"})
    assert (ws / POLICY).read_text().startswith("rules:\n  - level: Request\n    verbs: [get]\n    users:")
    assert (ws / "nodes/cp/etc/extra.yaml").read_text() == "user: bob\n"  # the anchor rendered: alice
    assert not (ws / "nodes/cp/etc/notes.txt").exists()


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        ("replace: 'level: Requestt', with: x", "anchor 'level: Requestt' is not in the file"),
        (
            "replace: '- level:', with: x",
            "anchor '- level:' occurs 2 times; an anchor must occur exactly once",
        ),
        ("after: 'level', insert: x", "anchor 'level' occurs 2 times"),
        ("delete: 'level: None', through: 'nowhere'", "anchor 'nowhere' is not in the file"),
        ("delete: 'level: Metadata', through: 'kube-proxy'", "comes before"),
        ("replace: 'level: None', with: 'level: None'", "the edit changes nothing"),
    ],
)
def test_a_missing_or_repeated_anchor_is_a_clear_error(tmp_path, edit, says):
    from grader.selftest import FixtureError, apply_fixture

    fx, ws = _fixture(tmp_path, f"  - {{file: {POLICY}, {edit}}}\n")
    with pytest.raises(FixtureError) as err:
        apply_fixture(fx, ws, {})
    assert says in str(err.value)
    assert (
        str(fx / "fixture.yaml") in str(err.value) and "edit 1" in str(err.value) and POLICY in str(err.value)
    )


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        ("{file: nodes/cp/etc/absent.yaml, delete: x}", "is not a file of the built workspace"),
        ("{file: ../outside, delete: x}", "is outside the workspace"),
        ("{file: POLICY, replace: x}", "a replace edit needs 'with'"),
        (
            "{file: POLICY, replace: x, with: y, after: z}",
            "exactly one of replace, after, before, delete",
        ),
        ("{file: POLICY, delete: x, width: 3}", "unknown keys width"),
        ("{file: POLICY, replace: 'replicas: 2', with: 3}", "'with' must be a string (quote it)"),
        ("{file: POLICY, delete: ''}", "the delete anchor is empty"),
    ],
)
def test_a_malformed_edit_is_a_clear_error(tmp_path, edit, says):
    from grader.selftest import FixtureError, apply_fixture

    fx, ws = _fixture(tmp_path, "  - " + edit.replace("POLICY", POLICY) + "\n")
    with pytest.raises(FixtureError, match="edit 1") as err:
        apply_fixture(fx, ws, {})
    assert says in str(err.value)


def test_a_broken_fixture_fails_the_selftest_loudly(tmp_path, monkeypatch):
    """A fixture whose anchor is gone is a self-test failure naming the anchor, never a silent pass."""
    from pathlib import Path

    from grader import selftest
    from grader.labs import load_lab_dir

    lab = load_lab_dir(Path(__file__).resolve().parents[1] / "fixtures" / "labs" / "lab90-demo")
    solution = tmp_path / "solution" / "overlay" / "nodes" / "cp" / "etc"
    solution.mkdir(parents=True)
    (solution / "greeting").write_text("hello\n")
    (solution / "farewell").write_text("bye\n")
    fixtures = tmp_path / "fixtures"
    good = fixtures / "correct" / "other-words"
    good.mkdir(parents=True)
    (good / "fixture.yaml").write_text(
        "fails: []\nedits:\n  - {file: nodes/cp/etc/greeting, replace: hello, with: hi}\n"
    )
    broken = fixtures / "wrong" / "stale-anchor"
    broken.mkdir(parents=True)
    (broken / "fixture.yaml").write_text(
        "fails: [t2]\nedits:\n  - {file: nodes/cp/etc/farewell, delete: ciao}\n"
    )
    monkeypatch.setattr(selftest, "solution_dir", lambda _lab: tmp_path / "solution")
    monkeypatch.setattr(selftest, "fixtures_dir", lambda _lab: fixtures)
    cases = {c.name: c for c in selftest.run_lab(lab, (None,))}
    assert cases["solution"].ok and cases["start"].ok and cases["correct/other-words"].ok
    assert not cases["wrong/stale-anchor"].ok
    assert "anchor 'ciao' is not in the file" in cases["wrong/stale-anchor"].problems[0]
    assert "nodes/cp/etc/farewell" in cases["wrong/stale-anchor"].problems[0]


def test_fixture_yaml_with_an_unknown_key_is_refused(tmp_path, monkeypatch):
    """A misspelt `edits` (`edit:`) would leave the fixture equal to the solution: refused, not ignored."""
    from pathlib import Path

    from grader import selftest
    from grader.labs import load_lab_dir

    lab = load_lab_dir(Path(__file__).resolve().parents[1] / "fixtures" / "labs" / "lab90-demo")
    (tmp_path / "correct" / "x").mkdir(parents=True)
    (tmp_path / "correct" / "x" / "fixture.yaml").write_text("fails: []\nedit:\n  - {file: a, delete: b}\n")
    monkeypatch.setattr(selftest, "fixtures_dir", lambda _lab: tmp_path)
    with pytest.raises(ValueError, match="unknown keys edit"):
        selftest.fixture_cases(lab)


def test_an_unreadable_fixture_yaml_fails_the_selftest_with_its_name(tmp_path, monkeypatch):
    from pathlib import Path

    from grader import selftest
    from grader.labs import load_lab_dir

    lab = load_lab_dir(Path(__file__).resolve().parents[1] / "fixtures" / "labs" / "lab90-demo")
    (tmp_path / "wrong" / "x").mkdir(parents=True)
    (tmp_path / "wrong" / "x" / "fixture.yaml").write_text("fails: [t1]\nedits:\n  - {file: a, delete: b\n")
    monkeypatch.setattr(selftest, "fixtures_dir", lambda _lab: tmp_path)
    monkeypatch.setattr(selftest, "solution_dir", lambda _lab: tmp_path / "no-solution")
    bad = [c for c in selftest.run_lab(lab, (None,)) if c.name == "fixtures"]
    assert bad and "wrong/x/fixture.yaml: not valid YAML" in bad[0].problems[0]
