"""Bad input to the pod security engine and `cks pods check`: a clear message, the rest still checked,
never a traceback."""

from __future__ import annotations

import json
import time

import pytest
from click.testing import CliRunner

from grader.cli.pods import pods_group
from grader.engines import podsec

GOOD_POD = """apiVersion: v1
kind: Pod
metadata: {name: good, namespace: ns}
spec:
  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: c
    image: x
    securityContext:
      {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
"""


def run(*args: str, input: str | None = None):
    result = CliRunner().invoke(pods_group, ["check", *args], input=input)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result


def test_object_without_spec():
    rep = podsec.analyze({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}})
    assert [p.path for p in rep.problems] == ["spec"]
    assert "has no spec.template.spec" in rep.problems[0].message
    assert rep.violations == [] and podsec.is_elevated({"kind": "Pod", "metadata": {"name": "p"}})


def test_containers_as_a_mapping():
    obj = {
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": {"app": {"image": "x", "securityContext": {"privileged": True}}}},
    }
    rep = podsec.analyze(obj)
    assert any(
        p.path == "spec.containers" and "is a mapping (1 key), the API wants a list" in p.message
        for p in rep.problems
    )
    assert podsec.is_elevated(obj), "an invalid pod never counts as compliant"


def test_run_as_user_as_a_string():
    obj = {
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "image": "x",
                    "securityContext": {"runAsUser": "0", "allowPrivilegeEscalation": False},
                }
            ]
        },
    }
    rep = podsec.analyze(obj)
    msgs = [str(p) for p in rep.problems]
    assert msgs == [
        "spec.containers[0].securityContext.runAsUser: is a string ('0'), the API wants an integer; "
        "kubectl would refuse this manifest"
    ]
    # read pessimistically: an invalid uid never proves non-root
    assert [f.value for f in rep.findings if f.check_id == "runAsRoot"] == ["'0' (invalid type)"]


def test_ten_thousand_containers_in_one_pod():
    containers = [
        {"name": f"c{i}", "image": "x", "securityContext": {"privileged": i % 2 == 0}} for i in range(10_000)
    ]
    obj = {"kind": "Pod", "metadata": {"name": "huge"}, "spec": {"containers": containers}}
    t = time.perf_counter()
    vs = podsec.evaluate_pss(obj, "baseline")
    elapsed = time.perf_counter() - t
    assert len(vs) == 5_000 and vs[1].path == "spec.containers[2]"
    msg = podsec.admission_message(vs, "baseline")
    assert "and 4995 more" in msg and len(msg) < 2_000, "the message stays readable"
    assert elapsed < 30  # a sanity bound against a quadratic walk, not a benchmark (bench/bench_pods.py)


def test_unknown_kind_is_reported_with_its_template():
    obj = {
        "kind": "Deploymnet",
        "metadata": {"name": "typo"},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "x"}]}}},
    }
    rep = podsec.analyze(obj)
    assert not rep.checked
    assert "kind 'Deploymnet' is not a workload kind" in rep.problems[0].message
    assert "spec.template.spec, which was NOT checked" in rep.problems[0].message
    # kinds that never hold pods are skipped without noise
    assert podsec.analyze({"kind": "ConfigMap", "metadata": {"name": "c"}}).problems == []


@pytest.mark.parametrize("junk", [None, 42, "text", [], {"kind": "Pod", "metadata": "x", "spec": []}])
def test_junk_values_never_raise(junk):
    rep = podsec.analyze(junk)
    assert rep.problems or not rep.checked


def test_cli_multi_document_with_a_broken_document_in_the_middle(tmp_path):
    priv = GOOD_POD.replace("name: good", "name: priv").replace(
        "allowPrivilegeEscalation: false", "privileged: true"
    )
    f = tmp_path / "many.yaml"
    f.write_text(GOOD_POD + "---\nkind: Pod\nmetadata: {name: broken\nspec: [\n---\n" + priv)
    res = run(str(f), "--format", "json", "--level", "baseline")
    assert res.exit_code == 1
    data = json.loads(res.output)
    assert [p["where"] for p in data["problems"]] == [f"{f}#1"]
    # the line of the file (where the learner looks), not of the document inside it
    broken_line = f.read_text().splitlines().index("spec: [") + 1
    assert f"not valid YAML at line {broken_line}," in data["problems"][0]["message"]
    names = {o["name"]: o for o in data["objects"]}
    assert set(names) == {"good", "priv"}, "the documents around the broken one are still checked"
    assert names["priv"]["source"] == f"{f}#2"
    assert [v["check"] for v in names["priv"]["violations"]] == ["privileged"]
    assert names["good"]["violations"] == [] and names["good"]["findings"] == []


@pytest.mark.parametrize(
    "content,needle",
    [
        (b"\x00\x01\x02binary", "NUL"),
        (b"a: &a [*a, *a]\n", "itself"),
        (b"- " * 300 + b"x\n", "nested"),
        (b"[1, 2", "not valid YAML"),
    ],
)
def test_cli_unreadable_files(tmp_path, content, needle):
    f = tmp_path / "bad.yaml"
    f.write_bytes(content)
    res = run(str(f), "--format", "json")
    assert res.exit_code == 1
    assert needle in json.loads(res.output)["problems"][0]["message"]


def test_cli_table_shows_problems_and_still_checks(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text(
        GOOD_POD.replace("allowPrivilegeEscalation: false", 'runAsUser: "0"') + "---\nkind: Deploymnet\n"
        "metadata: {name: t}\n"
    )
    res = run(str(f))
    assert res.exit_code == 1
    assert "INVALID" in res.output and "the API wants an integer" in res.output
    assert "not a workload kind" in res.output


def test_cli_usage_errors(tmp_path):
    assert run().exit_code == 2
    assert run(str(tmp_path / "missing.yaml")).exit_code == 2
    assert run("--version", "v2.1", str(tmp_path)).exit_code == 2
    assert run("--workspace", str(tmp_path)).exit_code == 2  # no cluster/ folder
