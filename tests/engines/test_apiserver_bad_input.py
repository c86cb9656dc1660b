"""Bad input: clear messages, the rest still graded, never a traceback."""

from __future__ import annotations

import pytest

from grader.engines.apiserver import DictHost, analyze_manifest, analyze_manifest_dir, parse_manifest_text
from grader.engines.apiserver.static_pods import DirEntry
from grader.labs import get_lab
from grader.results import Status
from grader.runner import grade
from grader.snapshot import Snapshot
from grader.workspace import materialize

MANIFEST = "nodes/controlplane/etc/kubernetes/manifests/kube-apiserver.yaml"

BAD_TEXTS = {
    "broken-yaml": ("apiVersion: v1\nkind: Pod\nspec:\n  containers: [\n", "not valid YAML"),
    "binary": (b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4, "binary"),
    "not-utf8": (b"apiVersion: v1\nkind: Pod\nmetadata: {name: \xff\xfe}\n", "not UTF-8"),
    "empty": ("", "empty"),
    "a-list": ("- kube-apiserver\n- --audit-log-path=/x\n", "not a Pod"),
    "a-deployment": (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {}\n",
        "kind 'Deployment'",
    ),
    "no-containers": (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: kube-apiserver}\nspec: {containers: []}\n",
        "spec.containers is missing or empty",
    ),
    "command-string": (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: kube-apiserver}\nspec:\n  containers:\n"
        "  - name: kube-apiserver\n    command: kube-apiserver --audit-log-path=/x\n",
        "command is a str, not a list",
    ),
    "container-string": (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: kube-apiserver}\nspec:\n"
        "  containers: [kube-apiserver]\n",
        "not a container mapping",
    ),
    "arg-mapping": (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: kube-apiserver}\nspec:\n  containers:\n"
        "  - name: kube-apiserver\n    command: [kube-apiserver, {audit-log-path: /x}]\n",
        "is a mapping ({'audit-log-path': '/x'}), not a string",
    ),
    "alias-bomb": (
        "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
        "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
        "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n",
        "YAML bomb",
    ),
    "deep-nesting": ("a: " + "[" * 500 + "]" * 500 + "\n", "nested"),
}


@pytest.mark.parametrize("name", sorted(BAD_TEXTS))
def test_engine_explains_bad_manifests(name):
    text, phrase = BAD_TEXTS[name]
    doc, problems = parse_manifest_text(text)
    a = analyze_manifest(doc, DictHost({}))
    problems += a.problems
    assert not a.readable and not a.would_start
    assert any(phrase in p.message for p in problems), [p.message for p in problems]


@pytest.mark.parametrize(
    "doc",
    [
        None,
        42,
        "text",
        [],
        {"kind": "Pod"},
        {"apiVersion": "v1", "kind": "Pod", "spec": 3},
        {"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [None, 5]}},
        {"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [{"name": "x"}], "volumes": "nope"}},
    ],
)
def test_engine_never_raises_on_odd_documents(doc):
    a = analyze_manifest(doc, DictHost({}))
    assert a.problems and not a.would_start


def test_odd_values_inside_a_pod_are_reported_not_raised():
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "kube-apiserver"},
        "spec": {
            "containers": [
                {
                    "name": "kube-apiserver",
                    "command": ["kube-apiserver", None, "--audit-log-path=/l/a.log"],
                    "volumeMounts": [5, {"name": 3}, {"name": "v", "mountPath": "/l"}],
                }
            ],
            "volumes": [
                {"name": "v", "hostPath": "not-a-mapping"},
                {"name": "w", "hostPath": {"path": "/w", "type": "Fil"}},
                {"name": "x", "emptyDir": {}, "hostPath": {"path": "/x"}},
            ],
        },
    }
    a = analyze_manifest(pod, DictHost({}))
    found = {p.code for p in a.problems}
    assert {"bad-mount", "hostpath-no-path", "hostpath-bad-type", "volume-source"} <= found


def test_huge_flag_lists_are_read_with_a_bounded_report():
    # 10,000 items prove the report is bounded (500 lines) as well as 100,000 would, in a tenth of the time
    argv = ["kube-apiserver"] + [f"--audit-made-up-{i}=1" for i in range(5_000)] + ["x"] * 5_000
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "kube-apiserver"},
        "spec": {"containers": [{"name": "kube-apiserver", "command": argv + ["--audit-log-maxage=30"]}]},
    }
    a = analyze_manifest(pod)
    assert a.value("audit-log-maxage") == 30
    assert len(a.unknown_audit_flags) == 5_000
    assert len(a.problems) <= 500  # a 10 000-item command does not produce a 10 000-line report


def test_unreadable_files_in_the_manifest_folder_are_skipped_like_kubelet():
    good = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: kube-apiserver, namespace: kube-system}\n"
        "spec:\n  containers:\n  - name: kube-apiserver\n    command: [kube-apiserver]\n"
    )
    d = analyze_manifest_dir(
        [
            DirEntry("kube-apiserver.yaml", text=good),
            DirEntry("core", text=b"\x00\x01\x02" * 100),
            DirEntry("big.yaml", error="too large to read"),
        ]
    )
    assert d.apiserver_files == ["kube-apiserver.yaml"]
    assert {p.code for p in d.problems} == {"manifest-not-pod", "manifest-unreadable"}


# ---- through the grader: every task answers, with a message, and nothing crashes -------------------


@pytest.mark.parametrize("name", sorted(BAD_TEXTS))
def test_lab2_grades_a_bad_manifest_without_errors(tmp_path, name):
    lab = get_lab("lab2")
    materialize(lab, tmp_path, None)
    text, _ = BAD_TEXTS[name]
    path = tmp_path / MANIFEST
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    report = grade(lab, Snapshot(tmp_path))
    graded = [t for t in report.tasks if not t.live]
    assert all(t.status is Status.FAIL for t in graded), [(t.id, t.status, t.message) for t in graded]
    assert all(t.message and "internal error" not in t.message for t in graded)
    assert report.score == 0


def test_lab2_huge_manifest_file_is_refused_with_a_message(tmp_path):
    lab = get_lab("lab2")
    materialize(lab, tmp_path, None)
    (tmp_path / MANIFEST).write_bytes(b"# padding\n" * 2_200_000)  # 22 MB, over the snapshot's read limit
    report = grade(lab, Snapshot(tmp_path))
    t1 = report.tasks[0]
    assert t1.status is Status.FAIL and "MB" in t1.message


def test_lab2_a_binary_backup_does_not_hide_a_good_answer(tmp_path):
    """A corrupt file in manifests/ is skipped by kubelet: the rest is graded normally."""
    from grader.selftest import build

    lab = get_lab("lab2")
    snap = build(lab, tmp_path, None, solution=True)
    (tmp_path / "nodes/controlplane/etc/kubernetes/manifests/core.dump").write_bytes(b"\x00\xff" * 1000)
    report = grade(lab, snap)
    assert [t.status for t in report.tasks if not t.live] == [Status.PASS] * 5
    t5 = report.task("t5") if hasattr(report, "task") else report.tasks[4]
    assert "note:" in t5.message
