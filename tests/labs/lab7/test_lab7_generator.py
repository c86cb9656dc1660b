"""lab7's generated break-in: realistic, deterministic per seed, and the grader's reading of the log (audit
log engine + Secrets' creation times) agrees with the story the generator planned."""

from __future__ import annotations

import functools
import gzip
import hashlib
from collections import Counter
from pathlib import Path

import orjson
import pytest

from grader.checks.audit_log import secrets_read
from grader.labgen import lab7
from grader.labs import get_lab
from grader.snapshot import Snapshot
from grader.variants import values_for
from grader.workspace import materialize, pristine

LAB = get_lab("lab7")
LOG_DIR = Path("nodes/controlplane/var/log/kubernetes/audit-lab7")


@pytest.fixture(scope="module")
def default_ws() -> Path:
    return pristine(LAB, None).root  # generated once per seed and test process (the selftest uses it too)


@functools.lru_cache(maxsize=2)
def log_lines(ws: Path) -> list[dict]:
    d = ws / LOG_DIR
    backups = sorted(d.glob("audit-*.log.gz"))
    assert len(backups) == 1, "the starting state has one rotated, compressed backup"
    raw = gzip.decompress(backups[0].read_bytes()) + (d / "audit.log").read_bytes()
    return [orjson.loads(line) for line in raw.splitlines()]


def test_log_has_realistic_traffic(default_ws):
    events = log_lines(default_ws)
    assert len(events) >= 20_000
    users = Counter(e["user"].get("username", "") for e in events)
    assert sum(n for u, n in users.items() if u.startswith("system:node:")) > 1000
    assert users["system:serviceaccount:kube-system:kube-proxy"] > 0
    assert users["system:kube-controller-manager"] > 0 and users["alice@corp.example"] > 0
    assert users["system:serviceaccount:ci:deployer"] > 0
    failed = [e for e in events if e["user"] == {}]
    assert failed and all(
        e["stage"] == "ResponseStarted" and e["responseStatus"]["code"] == 401 for e in failed
    )
    stages = Counter((e["verb"], e["stage"]) for e in events)
    assert stages[("watch", "ResponseStarted")] == stages[("watch", "ResponseComplete")] > 50
    assert stages[("get", "RequestReceived")] > 0  # several lines per request: counting needs auditIDs
    assert all(e["apiVersion"] == "audit.k8s.io/v1" for e in events)
    times = [e["stageTimestamp"] for e in events]
    assert times == sorted(times)


@pytest.mark.parametrize("seed", [None, "alpha", "bravo", "s1", "s2"])
def test_grader_reading_of_the_log_matches_the_plan(seed):
    start = pristine(LAB, seed).root
    values = values_for(LAB, seed)
    read, stats = secrets_read(
        Snapshot(start), "controlplane", "/var/log/kubernetes/audit-lab7", values["ns"], values["attacker"]
    )
    assert sorted(read) == values["read_secrets"].split(",")
    assert not stats.problems
    secrets = {p.name for p in (start / "cluster" / "secrets").glob("*.yaml")}
    assert len(secrets) == 7 and set(read) < {s[:-5] for s in secrets}


def test_traps_are_present(default_ws):
    v = values_for(LAB, None)
    events = log_lines(default_ws)
    mine = [
        e
        for e in events
        if e["user"].get("username") == v["attacker"]
        and e["stage"] == "ResponseComplete"
        and e.get("objectRef", {}).get("resource") == "secrets"
    ]
    assert any(
        e["verb"] == "list"
        and "name" not in e["objectRef"]
        and e["objectRef"]["namespace"] == v["ns"]
        and e["responseStatus"]["code"] == 200
        for e in mine
    ), "the namespace-wide list"
    assert any(
        e["objectRef"].get("name") == v["unread_2"] and e["responseStatus"]["code"] == 404 for e in mine
    )
    assert any(e["responseStatus"]["code"] == 403 for e in mine)
    lookalike = v["attacker"] + "-v2"
    assert any(
        e["user"].get("username") == lookalike and e.get("objectRef", {}).get("name") == v["unread_3"]
        for e in events
    )
    backup = gzip.decompress(next((default_ws / LOG_DIR).glob("audit-*.log.gz")).read_bytes())
    assert b'"verb":"list"' in backup and f"/namespaces/{v['ns']}/secrets?limit=500".encode() in backup


def test_same_seed_same_lab_other_seed_other_answer(tmp_path):
    def digest(ws: Path) -> str:
        h = hashlib.sha256()
        for p in sorted(ws.rglob("*")):
            if p.is_file() and p.name != "cks.yaml":
                h.update(p.relative_to(ws).as_posix().encode() + p.read_bytes())
        return h.hexdigest()

    materialize(LAB, tmp_path / "a", "alpha")
    materialize(LAB, tmp_path / "b", "alpha")
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    answers = {tuple(sorted(values_for(LAB, s).items())) for s in (None, "alpha", "bravo", "charlie")}
    assert len(answers) == 4
    assert (
        lab7.derive(None, {"ns": "payments", "sa": "report-runner"})["attacker"]
        == "system:serviceaccount:payments:report-runner"
    )


def test_workspace_holds_no_answer(default_ws):
    answers_dir = default_ws / "nodes" / "controlplane" / "opt" / "course" / "7"
    assert [p.name for p in answers_dir.iterdir()] == ["task.txt"]
    text = (answers_dir / "task.txt").read_text()
    v = values_for(LAB, None)
    assert v["ns"] in text and v["attacker"] not in text and v["read_1"] not in text
