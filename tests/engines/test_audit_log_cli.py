"""`cks audit query`: what a learner sees on stdout, stderr and in the exit code."""

from __future__ import annotations

import gzip
import json

from click.testing import CliRunner

from grader.cli.audit_log import query_cmd


def ev(aid, user, verb, name, stage="ResponseComplete", code=200, t="2024-05-01T10:00:00.000001Z", ns="prod"):
    e = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": aid,
        "stage": stage,
        "requestURI": f"/api/v1/namespaces/{ns}/secrets/{name}",
        "verb": verb,
        "user": {"username": user, "groups": ["system:authenticated"]},
        "sourceIPs": ["10.0.0.9"],
        "userAgent": "kubectl/v1.30.0",
        "objectRef": {"resource": "secrets", "namespace": ns, "name": name, "apiVersion": "v1"},
        "requestReceivedTimestamp": t,
        "stageTimestamp": t,
    }
    if stage != "RequestReceived":
        e["responseStatus"] = {"metadata": {}, "code": code}
    return json.dumps(e, separators=(",", ":"))


SA = "system:serviceaccount:prod:app"


def write_logs(tmp_path):
    d = tmp_path / "audit"
    d.mkdir(parents=True)
    old = (
        "\n".join(
            [
                ev("1", SA, "get", "db", stage="RequestReceived", t="2024-05-01T09:00:00Z"),
                ev("1", SA, "get", "db", t="2024-05-01T09:00:00Z"),
                ev("2", SA + "-v2", "get", "api-key", t="2024-05-01T09:30:00Z"),
            ]
        )
        + "\n"
    )
    (d / "audit-2024-05-01T09-59-59.000.log.gz").write_bytes(gzip.compress(old.encode()))
    new = (
        "\n".join(
            [
                ev("3", SA, "list", "", t="2024-05-01T10:10:00Z"),
                ev("4", "alice", "get", "db", code=403, t="2024-05-01T10:20:00Z"),
                "not json at all",
                ev("5", SA, "get", "tls", t="2024-05-01T10:30:00Z"),
            ]
        )
        + "\n"
        + '{"kind":"Ev'
    )
    (d / "audit.log").write_text(new)
    return d


def invoke(*args):
    return CliRunner().invoke(query_cmd, [str(a) for a in args])


def test_directory_is_read_in_rotation_order_with_one_line_per_request(tmp_path):
    d = write_logs(tmp_path)
    r = invoke(d, "--user", SA, "-f", "jsonl")
    assert r.exit_code == 0, r.output
    ids = [json.loads(line)["auditID"] for line in r.stdout.splitlines()]
    assert ids == ["1", "3", "5"]  # oldest file first; the -v2 look-alike not included; request 1 once
    assert (
        "skipped 2 line(s)" in r.stderr
        and "audit.log:3: not JSON" in r.stderr
        and "audit.log:5: cut off" in r.stderr
    )  # non-JSON line and the cut last line


def test_count_by_answers_who_read_secrets(tmp_path):
    r = invoke(
        write_logs(tmp_path),
        "-r",
        "secrets",
        "--verb",
        "get,list,watch",
        "--code",
        "2xx",
        "--count-by",
        "user",
        "-q",
    )
    assert r.exit_code == 0
    rows = [line.split() for line in r.stdout.splitlines()]
    assert rows[0] == ["COUNT", "USER"]
    assert rows[1:] == [["3", SA], ["1", SA + "-v2"]]
    assert r.stderr == ""
    r = invoke(write_logs(tmp_path / "x"), "--count-by", "user,code", "-f", "json", "-q")
    assert {"user": "alice", "code": "403", "count": 1} in json.loads(r.stdout)


def test_table_and_json_formats(tmp_path):
    d = write_logs(tmp_path)
    table = invoke(d, "--user", "alice", "-q").stdout.splitlines()
    assert table[0].split()[:4] == ["TIME", "USER", "VERB", "RESOURCE"]
    assert "alice" in table[1] and "403" in table[1]
    events = json.loads(invoke(d, "--since", "2024-05-01T10:00:00Z", "-f", "json", "-q").stdout)
    assert [e["auditID"] for e in events] == ["3", "4", "5"]
    assert invoke(d, "--user", "nobody", "-q").stdout.strip().endswith("(no matching events)")


def test_no_dedupe_prints_every_stage_line(tmp_path):
    r = invoke(write_logs(tmp_path), "--user", SA, "--no-dedupe", "-f", "jsonl", "-q")
    assert [json.loads(line)["stage"] for line in r.stdout.splitlines()][:2] == [
        "RequestReceived",
        "ResponseComplete",
    ]


def test_usage_errors_and_missing_files_have_clear_messages(tmp_path):
    r = invoke(tmp_path / "nope.log")
    assert r.exit_code == 3 and "no such file" in r.stderr
    r = invoke(write_logs(tmp_path), "--since", "last tuesday")
    assert r.exit_code == 2 and "not a time" in r.output
    r = invoke(write_logs(tmp_path / "y"), "--count-by", "colour")
    assert r.exit_code == 2 and "unknown field 'colour'" in r.output


def test_a_file_that_is_not_an_audit_log_says_so(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_bytes(b"\x00\x01binary\nhello\n")
    r = invoke(p)
    assert r.exit_code == 0
    assert "no audit events found in 2 lines" in r.stderr and "Traceback" not in r.output


def test_help_teaches_with_examples():
    r = invoke("--help")
    assert r.exit_code == 0
    assert "--count-by user" in r.output and "Examples:" in r.output


def test_plain_command_lines_skip_click_and_print_the_same(tmp_path):
    """`python -m grader audit query` reads a plain command line without loading the click CLI (start-up);
    what it prints and its exit code are click's; anything unusual is left to click."""
    import os
    import re
    import subprocess
    import sys
    from pathlib import Path

    from grader.audit_query import parse_args

    d = write_logs(tmp_path)
    assert parse_args(["--help"]) is None and parse_args(["-qf", "json", "x"]) is None
    assert parse_args(["x", "--limit", "0"]) is None and parse_args(["--user"]) is None
    params = parse_args([str(d), "-u", SA, "--user=alice", "-q", "--count-by", "user", "--limit", "2"])
    assert params is not None and params.users == (SA, "alice") and params.limit == 2 and params.quiet
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    for args in (
        [str(d), "--count-by", "user"],
        [str(d), "-r", "secrets", "-f", "jsonl"],
        [str(d / "nope")],
        [str(d), "--count-by", "colour"],
    ):
        fast = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "grader", "audit", "query", *args],
            capture_output=True,
            env=env,
        )
        slow = CliRunner().invoke(query_cmd, args)
        assert fast.returncode == slow.exit_code
        assert fast.stdout == slow.stdout_bytes
        imported_click = re.search(rb"\|\s+click\r?\n", fast.stderr) is not None
        assert imported_click == (slow.exit_code == 2)  # only a usage error goes to click


def test_log_names_are_written_as_pathlib_writes_them(tmp_path, monkeypatch):
    """The fast path lists files without pathlib: the same names, in the same order, as pathlib gives."""
    from pathlib import Path

    from grader.audit_query import _expand
    from grader.engines.audit_log.rotation import normal_path

    logs = tmp_path / "logs"
    logs.mkdir()
    for name in ("audit.log", "audit-2024-01-01T00-00-00.000.log.gz", ".hidden", "b.log"):
        (logs / name).write_text("{}\n")
    (logs / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    names, problems = _expand(("logs/", "./logs//audit.log", "logs/sub", "missing", "-"))
    want = sorted(str(f) for f in Path("logs/").iterdir() if f.is_file() and not f.name.startswith("."))
    assert names == [*want, str(Path("./logs//audit.log")), "-"]
    assert problems == ["logs/sub: directory has no files", "missing: no such file"]
    for odd in ("", ".", "/", "//x/a", "///a//b/", "a/./b/..", "../x"):
        assert normal_path(odd) == str(Path(odd))
