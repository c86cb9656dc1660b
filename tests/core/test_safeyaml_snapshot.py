from __future__ import annotations

import pytest

from grader import safeyaml
from grader.snapshot import FileProblem, Snapshot


def bomb(levels: int = 12) -> str:
    text = 'a0: &a0 ["x","x","x","x","x","x","x","x","x","x"]\n'
    for i in range(1, levels):
        text += f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]\n"
    return text


@pytest.mark.parametrize(
    "text, words",
    [
        (bomb(), "YAML bomb"),
        ("[" * 3000 + "]" * 3000, "nested more than"),
        ("a: b: c", "not valid YAML at line 1"),
        (b"\xff\xfe\x00", "not UTF-8"),
        ("a: 1\x00", "NUL"),
    ],
)
def test_hostile_yaml_gets_a_message(text, words):
    with pytest.raises(safeyaml.YamlProblem, match=words):
        safeyaml.load_all(text)


def test_small_aliases_are_fine():
    assert safeyaml.load_one("a: &x [1, 2]\nb: *x\n") == {"a": [1, 2], "b": [1, 2]}


def test_load_one_rejects_many():
    with pytest.raises(safeyaml.YamlProblem, match="one YAML document"):
        safeyaml.load_one("a: 1\n---\nb: 2\n")


@pytest.fixture()
def snap(tmp_path):
    (tmp_path / "nodes" / "cp" / "etc" / "d").mkdir(parents=True)
    (tmp_path / "nodes" / "cp" / "etc" / "f.txt").write_text("hello")
    (tmp_path / "nodes" / "cp" / "etc" / "bin").write_bytes(b"\x00\x01\x02")
    (tmp_path / "cluster").mkdir()
    (tmp_path / "cluster" / "a.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p1, namespace: ns}\n---\nkind: [broken\n---\n"
        "apiVersion: v1\nkind: List\nitems:\n- {kind: Pod, metadata: {name: p2, namespace: ns}}\n- 42\n"
    )
    return Snapshot(tmp_path)


def test_node_files(snap):
    assert snap.read_text("cp", "/etc/f.txt") == "hello"
    for path, kind in [
        ("/etc/missing", "missing"),
        ("/etc/d", "is_directory"),
        ("/etc/bin", "binary"),
        ("/../../etc/passwd", "outside"),
        ("etc/f.txt", "outside"),
    ]:
        with pytest.raises(FileProblem) as exc:
            snap.read_text("cp", path)
        assert exc.value.kind == kind


def test_size_limit(snap):
    with pytest.raises(FileProblem) as exc:
        snap.read_bytes("cp", "/etc/f.txt", max_bytes=3)
    assert exc.value.kind == "too_large"


def test_broken_document_in_the_middle_spoils_only_itself(snap):
    assert [o["metadata"]["name"] for o in snap.objects("Pod")] == ["p1", "p2"]
    assert len(snap.object_problems) == 2  # the broken document and the list item that is not an object
    assert snap.object("Pod", "ns", "p2") is not None and snap.object("Pod", "ns", "p9") is None


def test_link_out_of_the_node_is_refused(snap, tmp_path):
    (tmp_path / "nodes" / "cp" / "etc" / "link").symlink_to("/etc/hostname")
    with pytest.raises(FileProblem) as exc:
        snap.read_text("cp", "/etc/link")
    assert exc.value.kind == "outside" and exc.value.is_environment_problem
