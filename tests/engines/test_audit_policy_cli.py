"""`cks audit validate` / `cks audit simulate`: formats, exit codes, bad input without tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader.cli.audit_policy import simulate_cmd, validate_cmd

POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: None
    nonResourceURLs: ["/healthz*"]
  - level: Metadata
    resources:
      - group: ""
        resources: ["secrets"]
  - level: RequestResponse
    namespaces: ["prod"]
    resources:
      - group: apps
        resources: ["deployments"]
    omitManagedFields: true
  - level: Request
    userGroups: ["system:authenticated"]
    resources:
      - group: ""
        resources: ["pods/exec"]
"""


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    p = tmp_path / "policy.yaml"
    p.write_text(POLICY)
    return p


def run(cmd, *args: str, input: str | None = None):
    result = CliRunner().invoke(cmd, [str(a) for a in args], input=input)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result


# ---- validate ---------------------------------------------------------------------------------------


def test_validate_ok(policy_file: Path) -> None:
    r = run(validate_cmd, policy_file)
    assert r.exit_code == 0 and "OK: kube-apiserver would load" in r.output and "(4 rules)" in r.output


def test_validate_invalid_exit_1_with_kube_apiserver_errors(tmp_path: Path) -> None:
    p = tmp_path / "p.yaml"
    p.write_text(POLICY.replace("level: Metadata", "level: metadata"))
    r = run(validate_cmd, p)
    assert r.exit_code == 1
    assert 'rules[1].level: Unsupported value: "metadata"' in r.output


def test_validate_reports_dropped_keys_and_strict_fails_on_them(tmp_path: Path) -> None:
    p = tmp_path / "p.yaml"
    p.write_text(POLICY.replace('resources: ["secrets"]', 'resource: ["secrets"]'))
    r = run(validate_cmd, p)
    assert r.exit_code == 0
    assert 'warning: rules[1].resources[0]: unknown field "resource" dropped (line 10)' in r.output
    assert run(validate_cmd, p, "--strict").exit_code == 1


def test_validate_json(tmp_path: Path, policy_file: Path) -> None:
    r = run(validate_cmd, policy_file, "--format", "json")
    data = json.loads(r.output)
    assert r.exit_code == 0 and data["loads"] is True and data["rules"] == 4 and data["errors"] == []
    bad = tmp_path / "bad.yaml"
    bad.write_text(POLICY.replace("audit.k8s.io/v1", "audit.k8s.io/v1beta1"))
    r = run(validate_cmd, bad, "--format", "json")
    data = json.loads(r.output)
    assert r.exit_code == 1 and data["loads"] is False and "v1beta1" in data["errors"][0]


def test_validate_kube_version(tmp_path: Path) -> None:
    p = tmp_path / "p.yaml"
    p.write_text(POLICY.replace("group: apps", 'group: "*"'))
    from grader.engines.audit_policy import pinned_kube_version

    assert run(validate_cmd, p).exit_code == (0 if pinned_kube_version() >= (1, 36) else 1)  # the cluster's
    assert run(validate_cmd, p, "--kube-version", "1.35").exit_code == 1
    assert run(validate_cmd, p, "--kube-version", "1.36").exit_code == 0
    assert run(validate_cmd, p, "--kube-version", "newest").exit_code == 2


def test_validate_reads_stdin() -> None:
    assert run(validate_cmd, "-", input=POLICY).exit_code == 0


@pytest.mark.parametrize(
    "content,code,needle",
    [
        (None, 2, "does not exist"),
        ("dir", 2, "is a directory"),
        (b"", 1, "the file is empty"),
        (b"\x00\x01ELF", 1, "binary"),
        (b"rules: [\n", 1, "not valid YAML"),
        ("bomb", 1, "YAML bomb"),
        ("huge", 2, "MB"),
    ],
)
def test_validate_bad_input(tmp_path: Path, content, code: int, needle: str) -> None:
    p = tmp_path / "p.yaml"
    if content == "dir":
        p.mkdir()
    elif content == "bomb":
        lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x","x"]']
        lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 12)]
        p.write_text("\n".join(lines))
    elif content == "huge":
        with open(p, "wb") as fh:
            fh.truncate(50 * 1024 * 1024)
    elif content is not None:
        p.write_bytes(content)
    r = run(validate_cmd, p)
    assert r.exit_code == code and needle in r.output, r.output


def test_validate_unreadable_file(policy_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if os.geteuid() == 0:  # root reads a chmod 000 file: make the read fail the way it would for a user
        from grader import safeio

        def denied(path, flags):
            raise PermissionError(13, "Permission denied", str(path))

        monkeypatch.setattr(safeio, "_os_open", denied)  # every file the kit reads goes through grader.safeio
    else:
        policy_file.chmod(0)
    r = run(validate_cmd, policy_file)
    assert r.exit_code == 2 and "permission denied" in r.output


# ---- simulate ---------------------------------------------------------------------------------------


def test_simulate_one_request_table(policy_file: Path) -> None:
    r = run(
        simulate_cmd, policy_file, "--user", "alice", "--verb", "get", "--resource", "secrets", "-n", "prod"
    )
    assert r.exit_code == 0
    assert "get secrets -n prod as alice" in r.output and "Metadata" in r.output and "rules[1]" in r.output


def test_simulate_one_request_json(policy_file: Path) -> None:
    r = run(
        simulate_cmd,
        policy_file,
        "--user",
        "alice",
        "--verb",
        "patch",
        "--resource",
        "deployments",
        "--api-group",
        "apps",
        "--namespace",
        "prod",
        "--format",
        "json",
    )
    assert json.loads(r.output) == [
        {"level": "RequestResponse", "omitStages": ["RequestReceived"], "omitManagedFields": True, "rule": 2}
    ]


def test_simulate_default_groups_and_explicit_groups(policy_file: Path) -> None:
    base = ["--verb", "create", "--resource", "pods/exec", "-n", "dev", "--format", "json"]
    assert json.loads(run(simulate_cmd, policy_file, "--user", "bob", *base).output)[0]["level"] == "Request"
    got = json.loads(run(simulate_cmd, policy_file, "--user", "bob", "--user-group", "devs", *base).output)[0]
    assert (got["level"], got["rule"]) == ("None", None)
    # no user at all: a userGroups rule cannot match
    assert json.loads(run(simulate_cmd, policy_file, *base).output)[0]["level"] == "None"


@pytest.mark.parametrize("flag", ["--group", "-g"])
def test_simulate_refuses_the_ambiguous_group_option(policy_file: Path, flag: str) -> None:
    r = CliRunner().invoke(
        simulate_cmd, [str(policy_file), "--user", "bob", flag, "apps", "--resource", "pods"]
    )
    assert r.exit_code == 2 and "ambiguous" in r.output
    assert "--user-group apps" in r.output and "--api-group apps" in r.output


def test_simulate_path_non_resource_and_api_url(policy_file: Path) -> None:
    r = run(simulate_cmd, policy_file, "--path", "/healthz/etcd", "--format", "json")
    assert json.loads(r.output)[0] == {
        "level": "None",
        "omitStages": ["RequestReceived"],
        "omitManagedFields": False,
        "rule": 0,
    }
    r = run(
        simulate_cmd, policy_file, "--user", "a", "--path", "/api/v1/namespaces/prod/secrets/db", "-f", "json"
    )
    assert json.loads(r.output)[0]["rule"] == 1


def test_simulate_requests_file_in_order(tmp_path: Path, policy_file: Path) -> None:
    reqs = tmp_path / "reqs.yaml"
    reqs.write_text("""
- user: {username: alice, groups: [system:authenticated]}
  verb: get
  namespace: prod
  apiGroup: ""
  apiVersion: v1
  resource: secrets
  subresource: ""
  name: db
  isResourceRequest: true
  path: /api/v1/namespaces/prod/secrets/db
- user: null
  verb: get
  isResourceRequest: false
  path: /healthz
- "create pods/exec web -n dev as bob"
- "get nodes as alice"
""")
    r = run(simulate_cmd, policy_file, "--requests", reqs, "--format", "json")
    assert r.exit_code == 0
    assert [(d["level"], d["rule"]) for d in json.loads(r.output)] == [
        ("Metadata", 1),
        ("None", 0),
        ("Request", 3),
        ("None", None),
    ]
    assert all(list(d) == ["level", "omitStages", "omitManagedFields", "rule"] for d in json.loads(r.output))
    table = run(simulate_cmd, policy_file, "--requests", reqs)
    assert "none matched" in table.output and "unauthenticated" in table.output


def test_simulate_requests_json_file(tmp_path: Path, policy_file: Path) -> None:
    reqs = tmp_path / "reqs.json"
    reqs.write_text(json.dumps([{"user": {"username": "x"}, "verb": "get", "resource": "secrets"}]))
    assert json.loads(run(simulate_cmd, policy_file, "--requests", reqs, "-f", "json").output)[0]["rule"] == 1


@pytest.mark.parametrize(
    "args,needle",
    [
        ([], "say which request to simulate"),
        (["--requests", "REQS", "--verb", "get"], "not both"),
        (["--requests", "/nonexistent.yaml"], "does not exist"),
        (["--path", "/healthz", "-n", "prod"], "non-resource URL"),
        (["--resource", "pods/log", "--subresource", "exec"], "already names subresource"),
        (["--format", "xml", "--resource", "pods"], "Invalid value"),
    ],
)
def test_simulate_usage_errors_exit_2(
    tmp_path: Path, policy_file: Path, args: list[str], needle: str
) -> None:
    reqs = tmp_path / "r.yaml"
    reqs.write_text("- get pods\n")
    r = run(simulate_cmd, policy_file, *[str(reqs) if a == "REQS" else a for a in args])
    assert r.exit_code == 2 and needle in r.output, r.output


@pytest.mark.parametrize(
    "content,needle",
    [
        ("{a: 1}", "must be a non-empty YAML or JSON list"),
        ("- verbs: get\n", "requests[0]: unknown key 'verbs'"),
        ("- 'get'\n", "write at least a verb"),
        ("[", "not valid YAML"),
    ],
)
def test_simulate_bad_requests_file(tmp_path: Path, policy_file: Path, content: str, needle: str) -> None:
    reqs = tmp_path / "r.yaml"
    reqs.write_text(content)
    r = run(simulate_cmd, policy_file, "--requests", reqs)
    assert r.exit_code == 2 and needle in r.output, r.output


def test_simulate_policy_that_does_not_load_exits_1(tmp_path: Path) -> None:
    p = tmp_path / "p.yaml"
    p.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: []\n")
    r = run(simulate_cmd, p, "--resource", "pods")
    assert r.exit_code == 1 and "loaded illegal policy with 0 rules" in r.output


def test_simulate_warns_about_dropped_keys_on_stderr(tmp_path: Path) -> None:
    p = tmp_path / "p.yaml"
    p.write_text(POLICY.replace("    namespaces:", "    namespace:"))
    r = CliRunner().invoke(
        simulate_cmd, [str(p), "--resource", "deployments.apps", "-n", "dev", "-f", "json"]
    )
    assert json.loads(r.stdout)[0]["rule"] == 2  # the dropped namespace scoping: every namespace matches
    assert 'unknown field "namespace" dropped' in r.stderr


def test_help_teaches_with_examples() -> None:
    for cmd in (validate_cmd, simulate_cmd):
        r = run(cmd, "--help")
        assert r.exit_code == 0
        assert "cks audit " + cmd.name + " policy.yaml" in r.output


def test_module_import_is_light() -> None:
    code = (
        "import sys, grader.cli.audit_policy as m; "
        "bad = [n for n in ('rich', 'yaml', 'grader.engines.audit_policy', 'kubernetes') "
        "if n in sys.modules]; "
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
