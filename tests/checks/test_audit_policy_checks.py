"""audit_policy.loads / audit_policy.probes on workspaces: verdicts, messages, evidence and bad input."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from grader.checks import CheckContext, get_check
from grader.checks.audit_policy import build_probes
from grader.labs import get_lab
from grader.results import Status
from grader.runner import grade
from grader.snapshot import Snapshot

NODE, PATH = "controlplane", "/etc/kubernetes/audit/policy.yaml"
LOCAL = "nodes/controlplane/etc/kubernetes/audit/policy.yaml"

GOOD = """apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    resources:
      - group: ""
        resources: ["secrets"]
  - level: RequestResponse
    namespaces: ["prod"]
  - level: Metadata
"""


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    (tmp_path / LOCAL).parent.mkdir(parents=True)
    return tmp_path


def write(ws: Path, text: str | bytes) -> Path:
    p = ws / LOCAL
    p.write_bytes(text.encode() if isinstance(text, str) else text)
    return p


def run_check(ws: Path, check_id: str, **params):
    lab = get_lab("lab1")
    task = lab.tasks[0]
    ctx = CheckContext(Snapshot(ws), lab, task, False, {"ns": "prod"})
    return get_check(check_id)(ctx, node=NODE, path=PATH, **params)


def probes(ws: Path, *entries, **params):
    return run_check(ws, "audit_policy.probes", probes=list(entries), **params)


# ---- loads ------------------------------------------------------------------------------------------


def test_loads_passes_a_valid_policy(ws: Path) -> None:
    write(ws, GOOD)
    out = run_check(ws, "audit_policy.loads")
    assert out.status is Status.PASS and "3 rules" in out.message


def test_loads_fails_on_dropped_keys_unless_allowed(ws: Path) -> None:
    write(ws, GOOD.replace("    namespaces:", "    namespace:"))
    out = run_check(ws, "audit_policy.loads")
    assert out.status is Status.FAIL
    assert 'rules[1]: unknown field "namespace" dropped (line 10)' in out.message
    assert out.evidence[0].where == f"{NODE}:{PATH}"
    assert run_check(ws, "audit_policy.loads", allow_dropped_keys=True).status is Status.PASS


def test_loads_fails_with_the_kube_apiserver_error(ws: Path) -> None:
    write(ws, GOOD.replace("audit.k8s.io/v1", "audit.k8s.io/v1beta1"))
    out = run_check(ws, "audit_policy.loads")
    assert (
        out.status is Status.FAIL and "would refuse this policy" in out.message and "v1beta1" in out.message
    )


# ---- probes -----------------------------------------------------------------------------------------


def test_probe_failure_names_the_request_expected_actual_and_rule(ws: Path) -> None:
    write(ws, GOOD.replace('resources: ["secrets"]', 'resources: ["secret"]'))
    out = probes(
        ws,
        {"request": "get secrets -n prod as alice", "level": "Metadata"},
        {"request": "get secrets -n dev as alice", "level": "Metadata"},
    )
    assert out.status is Status.FAIL
    assert out.message == "get secrets -n prod as alice: expected Metadata, got RequestResponse (rules[1])"
    ev = out.evidence[0]
    assert ev.where == f"{NODE}:{PATH} | get secrets -n prod as alice"
    assert ev.expected == "level Metadata"
    assert (
        ev.actual
        == "level RequestResponse by rules[1] (RequestResponse: namespaces prod); omitStages RequestReceived"
    )


def test_probe_pass_counts_requests_of_a_space(ws: Path) -> None:
    write(ws, GOOD)
    out = probes(
        ws,
        {
            "space": {
                "verbs": ["get", "create"],
                "resources": ["secrets"],
                "namespaces": ["prod", "dev", ""],
                "users": ["alice", None],
            },
            "level": "Metadata",
        },
    )
    assert out.status is Status.PASS and "all 12 probe requests" in out.message


def test_probe_default_none_is_named(ws: Path) -> None:
    write(ws, "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n  verbs: [create]\n")
    out = probes(ws, {"request": "get nodes as alice", "level": "Metadata"})
    assert "expected Metadata, got None (no rule matched: default None)" in out.message


def test_several_failures_are_counted(ws: Path) -> None:
    write(ws, GOOD)
    out = probes(
        ws,
        {
            "space": {"verbs": ["create", "delete"], "resources": ["pods"], "namespaces": ["prod"]},
            "level": "Metadata",
        },
        {"request": "get nodes", "level": "Metadata"},
    )
    assert out.message.endswith("; 1 more of 3 probes fail") and len(out.evidence) == 2


def test_omits_expectation_and_require_recorded(ws: Path) -> None:
    write(ws, GOOD.replace("omitStages: [RequestReceived]\n", ""))
    out = probes(ws, {"request": "get secrets -n dev", "omits": "RequestReceived"})
    assert out.status is Status.FAIL
    assert "RequestReceived is recorded (level Metadata, rules[0] omits no stage)" in out.message
    write(ws, "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n")
    out = probes(ws, {"request": "get secrets -n dev", "omits": "RequestReceived"}, require_recorded=True)
    assert out.status is Status.FAIL and "logs none of the 1 probe requests" in out.message


def test_witnesses_catch_a_rule_no_probe_reaches(ws: Path) -> None:
    write(
        ws,
        GOOD.replace(
            "rules:\n",
            "rules:\n  - level: Request\n    omitStages: [Panic]\n"
            "    resources: [{group: batch, resources: [cronjobs]}]\n",
        ).replace("omitStages: [RequestReceived]\n", ""),
    )
    out = probes(
        ws,
        {"request": "get secrets -n dev", "omits": "RequestReceived"},
        witnesses=True,
        expect={"omits": "RequestReceived"},
    )
    assert out.status is Status.FAIL
    assert out.message.startswith("get secrets -n dev: RequestReceived is recorded")
    assert any("get cronjobs.batch -n default as alice [reaches rules[0]]" in e.where for e in out.evidence)


def test_requests_from_reuses_other_tasks_requests(ws: Path) -> None:
    write(ws, GOOD)
    out = probes(ws, requests_from=["t5"], expect={"level": "Metadata"})
    assert out.status is Status.FAIL  # t5's exec requests in prod get RequestResponse here
    assert "-n prod" in out.message and "expected Metadata, got RequestResponse" in out.message


def test_level_alternatives_and_managed_fields(ws: Path) -> None:
    write(
        ws,
        GOOD.replace(
            "omitStages: [RequestReceived]\n", "omitStages: [RequestReceived]\nomitManagedFields: true\n"
        ),
    )
    assert (
        probes(
            ws,
            {
                "request": "create pods -n prod",
                "level": ["Request", "RequestResponse"],
                "omit_managed_fields": True,
            },
        ).status
        is Status.PASS
    )
    out = probes(ws, {"request": "create pods -n prod", "omit_managed_fields": False})
    assert out.status is Status.FAIL and "managedFields are omitted" in out.message


def test_policy_that_does_not_load_fails_every_behaviour_probe(ws: Path) -> None:
    write(ws, GOOD.replace("level: RequestResponse", "level: Everything"))
    out = probes(ws, {"request": "get nodes", "level": "Metadata"})
    assert out.status is Status.FAIL
    assert out.message.startswith(
        "the policy does not load, so kube-apiserver would not start: rules[1].level"
    )


def test_dropped_keys_are_mentioned_when_a_probe_fails(ws: Path) -> None:
    write(ws, GOOD.replace("    namespaces:", "    namespace:"))
    out = probes(ws, {"request": "create pods -n dev", "level": "Metadata"})
    assert "kube-apiserver dropped keys from this policy" in out.message


@pytest.mark.parametrize(
    "entry,needle",
    [
        ({"request": "get pods", "level": "metadata"}, "level 'metadata' is not one of"),
        ({"request": "get"}, "write at least a verb"),
        ({"space": {"verbs": ["get"]}}, "give resources"),
        ({"space": {"resources": ["pods"], "colour": ["x"]}}, "unknown key 'colour'"),
        ({"request": "get pods", "space": {}}, "exactly one of request or space"),
        ({"request": "get pods", "omits": "Received"}, "omits 'Received'"),
        ({"request": {"verbs": "get"}}, "unknown key 'verbs'"),
        ({"request": "get pods", "levels": "None"}, "unknown key 'levels'"),
    ],
)
def test_bad_probe_data_is_an_error_not_a_fail(ws: Path, entry: dict, needle: str) -> None:
    write(ws, GOOD)
    out = probes(ws, entry)
    assert out.status is Status.ERROR and needle in out.message, out.message


def test_a_task_without_probes_is_an_error(ws: Path) -> None:
    write(ws, GOOD)
    assert probes(ws).status is Status.ERROR


def test_every_lab1_probe_parses_for_every_variant() -> None:
    lab = get_lab("lab1")
    from grader.variants import render

    for ns in lab.variables["ns"]["choices"]:
        for task in lab.tasks:
            params = render(task.params, {"ns": ns})
            if "probes" in params:
                assert build_probes(params["probes"])


# ---- bad input: every task of lab1 gets a clear fail or error, nothing raises ---------------------------


def _bomb() -> str:
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x","x"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 12)]
    return "\n".join(lines) + "\n"


def _make(ws: Path, kind: str) -> None:
    p = ws / LOCAL
    if kind == "missing":
        return
    if kind == "not-yaml":
        p.write_text("apiVersion: audit.k8s.io/v1\nrules: [\n  - level: {Metadata\n")
    elif kind == "bomb":
        p.write_text(_bomb())
    elif kind == "huge":
        with open(p, "wb") as fh:
            fh.write(b"# " + b"x" * 100 + b"\n")
            fh.truncate(50 * 1024 * 1024)
    elif kind == "binary":
        p.write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00" + bytes(range(256)))
    elif kind == "latin1":
        p.write_bytes("apiVersion: audit.k8s.io/v1 # café\n".encode("latin-1"))
    elif kind == "directory":
        p.mkdir()
    elif kind == "empty":
        p.write_bytes(b"")
    elif kind == "deep":
        p.write_text("rules: " + "[" * 1000 + "]" * 1000 + "\n")
    elif kind == "unreadable":
        # a link loop cannot be resolved, whoever runs the tests (chmod 000 does not stop root)
        os.symlink(p.name, p)


BAD_INPUTS = {
    "missing": (Status.FAIL, "no audit policy at controlplane:/etc/kubernetes/audit/policy.yaml"),
    "not-yaml": (Status.FAIL, "not valid YAML at line 3"),
    "bomb": (Status.FAIL, "YAML bomb"),
    "huge": (Status.FAIL, "50.0 MB, more than the 2 MB"),
    "binary": (Status.FAIL, "is binary"),
    "latin1": (Status.FAIL, "not UTF-8"),
    "directory": (Status.FAIL, "is a directory"),
    "empty": (Status.FAIL, "the file is empty"),
    "deep": (Status.FAIL, "nested"),
    "unreadable": (Status.ERROR, "could not read the policy"),
}


@pytest.mark.parametrize("kind", list(BAD_INPUTS))
def test_bad_input_gives_every_task_a_clear_verdict(ws: Path, kind: str, capsys) -> None:
    _make(ws, kind)
    report = grade(get_lab("lab1"), Snapshot(ws))
    status, needle = BAD_INPUTS[kind]
    assert [t.id for t in report.tasks] == ["t1", "t2", "t3", "t4", "t5", "t6", "t7"]
    for t in report.tasks:
        assert t.status is status, (t.id, t.status, t.message)
        # the problem is told once, in t1; every other task names t1 instead of repeating it
        assert (needle in t.message) == (t.id == "t1"), (t.id, t.message)
        assert t.id == "t1" or t.blocked_by == "t1"
        assert "internal error" not in t.message and "Traceback" not in t.message
        assert t.points == 0
    assert report.score == 0
    assert "Traceback" not in capsys.readouterr().err


def test_permission_denied_is_an_error(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = write(ws, GOOD)
    if os.geteuid() == 0:  # root reads a chmod 000 file: fail the open the way it fails for a user

        def denied(*args, **kwargs):
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr("grader.safeio._os_open", denied)  # every read goes through grader.safeio
    else:
        p.chmod(0)
    out = run_check(ws, "audit_policy.loads")
    assert out.status is Status.ERROR and "cannot be read" in out.message
