"""Every real audit log in ../shared/conformance/audit/logs/ is read completely, with the quirks its
README documents (envelopes, BOM, pretty-printing, v1beta1, missing apiVersion), and counted correctly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grader.engines.audit_log import Query, ReadStats, read_events
from tests.conftest import conformance_path

LOGS = conformance_path("audit", "logs")
FILES = sorted(p for p in LOGS.rglob("*") if p.is_file() and p.suffix in {".log", ".json"})

pytestmark = pytest.mark.conformance


def read(path: Path, dedupe: bool = False, query: Query | None = None):
    stats = ReadStats()
    with open(path, "rb") as fh:
        events = [e.event for e in read_events([[(path.name, fh)]], stats, query, dedupe=dedupe)]
    return events, stats


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(LOGS)) for p in FILES])
def test_every_real_log_reads_without_a_skipped_line(path):
    events, stats = read(path)
    assert events, f"no events read from {path.name}"
    assert not stats.problems, stats.report()
    for e in events:
        assert isinstance(e.get("verb"), str) and isinstance(e.get("requestReceivedTimestamp"), str)


def test_event_totals_match_the_readme():
    """Counts from the README's summary table (README.md beside the logs)."""

    def total(pattern: str) -> int:
        return sum(len(read(p)[0]) for p in sorted(LOGS.glob(pattern)))

    assert total("openshift-cluster-logging-operator/audit_in.log") == 100
    assert total("liggitt-audit2rbac/demo.raw-v1beta1.log") == 757
    assert total("liggitt-audit2rbac/demo.v1-relabelled.log") == 37
    assert total("falco-k8s_audit-trace-files/*.json") == 51
    assert total("sysdiglabs-aks-audit-log/event.json") == 22  # inside an Azure envelope
    assert total("sysdiglabs-aks-audit-log/sample_KubeAuditLog_event.json") == 1  # BOM + pretty-printed
    assert total("alcideio-rbac-tool/*.json") == 6


def test_lenient_readings_are_reported_as_notes():
    _, stats = read(LOGS / "liggitt-audit2rbac" / "demo.raw-v1beta1.log")
    assert stats.notes["audit.k8s.io/v1beta1 events (read as audit.k8s.io/v1)"] == 757
    _, stats = read(LOGS / "sysdiglabs-aks-audit-log" / "sample_KubeAuditLog_event.json")
    assert any("byte-order mark" in n for n in stats.notes)
    _, stats = read(LOGS / "falco-k8s_audit-trace-files" / "attach_pod.json")
    assert any("without apiVersion" in n for n in stats.notes)


def test_deduplication_counts_each_audit_id_once_on_real_request_pairs():
    path = LOGS / "liggitt-audit2rbac" / "demo.raw-v1beta1.log"
    ids = {json.loads(line)["auditID"] for line in path.read_text().splitlines() if line.strip()}
    events, stats = read(path, dedupe=True)
    assert len(events) == len(ids) == stats.requests
    assert {e["stage"] for e in events} == {"ResponseComplete"}


def test_queries_agree_with_a_plain_json_scan():
    path = LOGS / "openshift-cluster-logging-operator" / "audit_in.log"
    raw = [json.loads(line) for line in path.read_text().splitlines()]
    want = [
        e["auditID"]
        for e in raw
        if e["verb"] == "create"
        and e["objectRef"]["resource"] == "pods"
        and e["responseStatus"]["code"] == 403
    ]
    got, _ = read(path, query=Query(verbs=("create",), resources=("pods",), codes=("403",)))
    assert [e["auditID"] for e in got] == want and len(want) == 4
    watches = [e for e in raw if e["verb"] == "watch"]
    got, _ = read(path, query=Query(verbs=("watch",)))
    assert len(got) == len(watches)
