"""`cks audit query` against jq 1.6 on generated audit logs: same answers, wall and CPU time, peak memory.

Every query shape docs/audit-log.md shows is timed against the jq program a user would write for it (counts
with jq's `reduce`, events with `jq -c 'select(...)'`), each counting a request once as cks does (the final
stage line, or the lone 401 ResponseStarted of a failed login). Outputs are compared: counts as dictionaries,
events byte for byte. Targets: cks at least 5x faster than jq in WALL time on every shape and size, identical
results, peak RSS of the cks process under 100 MB.

Runs are interleaved (cks, jq, cks, jq, ...) after one warm-up each, and the median is taken, so load from
other processes on the machine hits both tools alike; CPU time (user + system, of cks and its worker
process: cks reads a large file with both cores) is printed too, so a parallel speed-up shows as such. Peak
RSS comes from GNU time (/usr/bin/time -f %M) when present. The load average is printed beside each row.
Logs are generated (kube-apiserver's JSON lines: RequestReceived + ResponseComplete pairs, watches with
ResponseStarted, failed logins as a lone 401 ResponseStarted).

    python bench/bench_audit_query.py                  # 20 MB and 200 MB
    python bench/bench_audit_query.py --big            # also 1,000 MB (needs ~1 GB in the temp dir)
    python bench/bench_audit_query.py --big --big-reps 3   # ... timed three times there (a ~10 min run)
    python bench/bench_audit_query.py --sizes 50 --reps 5
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from grader.labgen.lab7 import object_ref, request_uri

TARGET_RATIO = 5.0
TARGET_RSS_MB = 100
NS = "payments"
SA = "system:serviceaccount:payments:report-runner"
ONCE = '(.stage == "ResponseComplete" or (.stage == "ResponseStarted" and .responseStatus.code == 401))'
USER = '(.impersonatedUser.username // .user.username // "")'


def shapes(since: str, until: str) -> list[tuple[str, list[str], str, str]]:
    """(label, cks arguments, jq arguments, how to compare: counts | lines)."""
    jq_since, jq_until = since.replace("Z", ".000000Z"), until.replace("Z", ".000000Z")

    def reduce(select: str, key: str) -> str:
        return f"reduce (inputs | select({ONCE} and {select}) | {key}) as $k ({{}}; .[$k] += 1)"

    return [
        (
            "count-by user (every request)",
            ["--count-by", "user", "-f", "json"],
            reduce("true", USER),
            "counts",
        ),
        (
            "secrets get/list/watch, count-by user,namespace",
            ["-r", "secrets", "--verb", "get,list,watch", "--count-by", "user,namespace", "-f", "json"],
            reduce(
                '.objectRef.resource == "secrets" and '
                '(.verb == "get" or .verb == "list" or .verb == "watch")',
                f'([{USER}, (.objectRef.namespace // "")] | tojson)',
            ),
            "counts",
        ),
        (
            "403 in a time range, count-by user,resource",
            [
                "--code",
                "403",
                "--since",
                since,
                "--until",
                until,
                "--count-by",
                "user,resource",
                "-f",
                "json",
            ],
            reduce(
                f'.responseStatus.code == 403 and .requestReceivedTimestamp >= "{jq_since}" '
                f'and .requestReceivedTimestamp < "{jq_until}"',
                f'([{USER}, ((.objectRef.resource // "") + (if .objectRef.subresource then "/" + '
                f'.objectRef.subresource else "" end))] | tojson)',
            ),
            "counts",
        ),
        (
            "failed logins (401), count-by sourceip",
            ["--code", "401", "--count-by", "sourceip", "-f", "json"],
            reduce(".responseStatus.code == 401", ".sourceIPs[]"),
            "counts",
        ),
        (
            "one user's requests, events (jsonl)",
            ["--user", SA, "-f", "jsonl"],
            f'select({ONCE} and (.user.username == "{SA}" or .impersonatedUser.username == "{SA}"))',
            "lines",
        ),
        (
            "secrets in a namespace, events (jsonl)",
            ["-r", "secrets", "-n", NS, "--verb", "get,list,watch", "-f", "jsonl"],
            f'select({ONCE} and .objectRef.resource == "secrets" and .objectRef.namespace == "{NS}" and '
            '(.verb == "get" or .verb == "list" or .verb == "watch"))',
            "lines",
        ),
        ("every request, events (jsonl)", ["-f", "jsonl"], f"select({ONCE})", "lines"),
    ]


def _users() -> list[tuple[str, list[str], str, str]]:
    """(name, groups, source IP, user agent) of the clients."""
    users = [
        (
            f"system:node:worker-{i}",
            ["system:nodes", "system:authenticated"],
            f"10.0.0.{10 + i}",
            "kubelet/v1.36.4 (linux/amd64) kubernetes/3968350",
        )
        for i in range(4)
    ]
    users += [
        (
            f"system:serviceaccount:kube-system:{c}",
            ["system:serviceaccounts", "system:authenticated"],
            "10.0.0.10",
            f"kube-controller-manager/v1.36.4 (linux/amd64) kubernetes/3968350/{c}",
        )
        for c in ("replicaset-controller", "deployment-controller", "endpointslice-controller")
    ]
    users += [
        (
            "system:serviceaccount:payments:report-runner",
            ["system:serviceaccounts", "system:authenticated"],
            "10.244.2.57",
            "kubernetes-python-client/29.0.0",
        ),
        (
            "system:serviceaccount:payments:report-runner-v2",
            ["system:serviceaccounts", "system:authenticated"],
            "10.244.2.58",
            "kubernetes-python-client/29.0.0",
        ),
        ("alice@corp.example", ["oncall", "system:authenticated"], "192.168.10.23", "kubectl/v1.30.2"),
        ("system:kube-scheduler", ["system:authenticated"], "10.0.0.10", "kube-scheduler/v1.36.4"),
    ]
    return users


_RESOURCES = [
    ("leases", "coordination.k8s.io"),
    ("pods", ""),
    ("configmaps", ""),
    ("secrets", ""),
    ("endpointslices", "discovery.k8s.io"),
    ("deployments", "apps"),
    ("events", ""),
    ("nodes", ""),
]
_NAMESPACES = ["kube-system", "kube-node-lease", NS, "default", "staging"]


def _failed_login(aid: str, ts: str) -> list[bytes]:
    """A failed login: one line, no user."""
    e = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": aid,
        "stage": "ResponseStarted",
        "requestURI": f"/api/v1/namespaces/{NS}/secrets",
        "verb": "list",
        "user": {},
        "sourceIPs": ["203.0.113.50"],
        "userAgent": "curl/8.5.0",
        "objectRef": {"resource": "secrets", "namespace": NS, "apiVersion": "v1"},
        "responseStatus": {
            "metadata": {},
            "message": "Authentication failed, attempted: bearer",
            "code": 401,
        },
        "requestReceivedTimestamp": ts,
        "stageTimestamp": ts,
    }
    return [orjson.dumps(e) + b"\n"]


def _request(rng: random.Random, users: list[Any], aid: str, recv: datetime) -> list[bytes]:
    """The stage lines of one request: RequestReceived, ResponseStarted for a watch, ResponseComplete."""
    ts = recv.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    user, groups, ip, ua = rng.choice(users)
    res, grp = rng.choice(_RESOURCES)
    ns = rng.choice(_NAMESPACES) if res != "nodes" else None
    verb = rng.choice(["get", "get", "list", "watch", "update", "patch", "create"])
    name = None if verb in ("list", "watch") else f"{res[:-1]}-{rng.randrange(40)}"
    ref, uri = object_ref(res, ns, name, grp), request_uri(res, ns, name, grp)
    code = rng.choice([200] * 18 + [403, 404])
    head = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": aid}
    common = {
        "requestURI": uri,
        "verb": verb,
        "user": {"username": user, "groups": groups},
        "sourceIPs": [ip],
        "userAgent": ua,
        "objectRef": ref,
    }
    done = (recv + timedelta(seconds=rng.uniform(300, 500) if verb == "watch" else 0.004)).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ"
    )
    status = {"metadata": {}, "code": code}
    ann = {
        "authorization.k8s.io/decision": "forbid" if code == 403 else "allow",
        "authorization.k8s.io/reason": ""
        if code == 403
        else f'RBAC: allowed by RoleBinding "x/{ns}" of Role "x" to User "{user}"',
    }
    stages = [("RequestReceived", ts, None, None)]
    if verb == "watch":
        stages.append(("ResponseStarted", ts, status, ann))
    stages.append(("ResponseComplete", done, status, ann))
    out = []
    for stage, st, rs, an in stages:
        e = dict(head, stage=stage, **common)
        if rs:
            e["responseStatus"] = rs
        e["requestReceivedTimestamp"] = ts
        e["stageTimestamp"] = st
        if an:
            e["annotations"] = an
        out.append(orjson.dumps(e) + b"\n")
    return out


def generate(path: Path, size_mb: int, seed: int = 3) -> int:
    """Write about ``size_mb`` MB of realistic traffic; returns the number of lines."""
    rng = random.Random(seed)
    users = _users()
    base = datetime(2026, 3, 14, 8, 0, tzinfo=UTC)
    limit = size_mb * 1024 * 1024
    written = lines = 0
    t = 0.0
    with open(path, "wb", buffering=1 << 20) as out:
        while written < limit:
            t += rng.expovariate(40.0)
            recv = base + timedelta(seconds=t)
            aid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            if rng.random() < 0.004:
                chunks = _failed_login(aid, recv.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
            else:
                chunks = _request(rng, users, aid, recv)
            for chunk in chunks:
                out.write(chunk)
                written += len(chunk)
                lines += 1
    return lines


GNU_TIME = Path("/usr/bin/time").exists()
# cks runs as an installed package does, its bytecode cached (the warm-up writes it): an environment that
# forbids writing bytecode would have it compile its modules again on every run
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run(cmd: list[str], out: Path) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system, with the child's own children) and peak RSS (MB) of one
    command, stdout to ``out``. Peak RSS comes from GNU time when present: a child forked straight from this
    (large) bench process would report this process's resident pages as its own until it execs."""
    rss_file = out.with_suffix(".rss")
    full = ["/usr/bin/time", "-f", "%M", "-o", str(rss_file)] + cmd if GNU_TIME else cmd
    with open(out, "wb") as fh:
        start = time.perf_counter()
        proc = subprocess.Popen(full, stdout=fh, stderr=subprocess.PIPE, env=_ENV)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        err = proc.stderr.read().decode() if proc.stderr else ""
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{cmd[0]} failed ({code}): {err[:500]}")
    rss_mb = int(rss_file.read_text().split()[-1]) / 1024 if GNU_TIME else usage.ru_maxrss / 1024
    return wall, usage.ru_utime + usage.ru_stime, rss_mb


def answer(path: Path, kind: str, tool: str) -> tuple[object, int]:
    """The comparable answer of one output and its size (results)."""
    if kind == "lines":
        data = path.read_bytes()
        return data, data.count(b"\n")
    if tool == "jq":
        raw = json.loads(path.read_text())
        counts = {tuple(json.loads(k)) if k.startswith("[") else (k,): n for k, n in raw.items()}
    else:
        counts = {
            tuple(v for k, v in item.items() if k != "count"): item["count"]
            for item in json.loads(path.read_text())
        }
    return counts, sum(counts.values())


def time_span(log: Path) -> tuple[str, str]:
    """--since and --until covering the second quarter of the log's time."""
    with open(log, "rb") as fh:
        first = orjson.loads(fh.readline())["requestReceivedTimestamp"]
        fh.seek(max(0, log.stat().st_size - 65536))
        last = orjson.loads(fh.read().rstrip(b"\n").rsplit(b"\n", 1)[-1])["requestReceivedTimestamp"]
    t0 = datetime.fromisoformat(first.replace("Z", "+00:00"))
    t1 = datetime.fromisoformat(last.replace("Z", "+00:00"))
    span = t1 - t0
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    return (t0 + span / 4).strftime(fmt), (t0 + span / 2).strftime(fmt)


Row = tuple[int, str, int, float, float, float, float, float, float, bool, float]


def cached(log: Path) -> None:
    """Read ``log`` once, so the timed run finds it in the page cache: this host reclaims cold pages in the
    background (kdamond), and a 1 GB log read back from disk took 40 s of a run that needs 3 s of CPU."""
    with log.open("rb", buffering=0) as f:
        while f.read(8 << 20):
            pass


def time_shape(
    c_cmd: list[str], j_cmd: list[str], kind: str, work: Path, reps: int, warm: bool, log: Path
) -> tuple:
    """(results, cks wall, jq wall, cks CPU, jq CPU, cks peak RSS, identical) of one shape: medians of
    ``reps`` interleaved runs, after a warm-up of each tool when ``warm``; each run finds the log cached."""
    if warm:
        run(c_cmd, work / "cks.out")
        run(j_cmd, work / "jq.out")
    cw, cc, jw, jc, rss = [], [], [], [], 0.0
    for _ in range(reps):
        cached(log)
        w, c, r = run(c_cmd, work / "cks.out")
        cw.append(w), cc.append(c)
        rss = max(rss, r)
        cached(log)
        w, c, _ = run(j_cmd, work / "jq.out")
        jw.append(w), jc.append(c)
    mine, n = answer(work / "cks.out", kind, "cks")
    theirs, _ = answer(work / "jq.out", kind, "jq")
    c_wall, c_cpu, j_wall, j_cpu = (statistics.median(x) for x in (cw, cc, jw, jc))
    return n, c_wall, j_wall, c_cpu, j_cpu, rss, mine == theirs


def bench_size(size: int, work: Path, jq: str, args: argparse.Namespace) -> list[Row]:
    """Every shape on a log of ``size`` MB (generated, or reused from ``--dir``)."""
    cks = [sys.executable, "-m", "grader", "audit", "query"]
    log = work / f"audit-{size}mb.log"
    if not (args.dir and log.exists()):
        t = time.perf_counter()
        lines = generate(log, size)
        print(f"{size} MB: {lines:,} lines generated in {time.perf_counter() - t:.1f}s", flush=True)
    since, until = time_span(log)
    reps, warm = (args.big_reps, False) if size >= 1000 else (args.reps, True)
    rows = []
    for label, cargs, jprog, kind in shapes(since, until):
        if args.only and args.only not in label:
            continue
        c_cmd = cks + [str(log), "-q"] + cargs
        j_cmd = [jq, "-c", jprog, str(log)] if kind == "lines" else [jq, "-n", jprog, str(log)]
        n, c_wall, j_wall, c_cpu, j_cpu, rss, same = time_shape(c_cmd, j_cmd, kind, work, reps, warm, log)
        ratio = j_wall / c_wall
        load = os.getloadavg()[0]
        rows.append((size, label, n, c_wall, j_wall, ratio, c_cpu, j_cpu, rss, same, load))
        print(
            f"  {label:48} {n:>9,}  wall cks {c_wall:6.2f}s jq {j_wall:6.2f}s = {ratio:5.1f}x | "
            f"CPU cks {c_cpu:6.2f}s jq {j_cpu:6.2f}s = {j_cpu / c_cpu:5.1f}x | RSS {rss:3.0f} MB | "
            f"identical={same} | load {load:.1f}",
            flush=True,
        )
    if not args.dir:
        log.unlink()
    return rows


def print_table(rows: list[Row]) -> bool:
    """The Markdown table; whether every target was met."""
    print(
        "| size | query | results | cks wall | jq wall | jq/cks wall | cks CPU | jq CPU | jq/cks CPU "
        "| cks peak RSS | identical | load |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    ok = True
    for size, label, n, cw, jw, ratio, cc, jc, rss, same, load in rows:
        ok &= same and rss < TARGET_RSS_MB and ratio >= TARGET_RATIO
        print(
            f"| {size} MB | {label} | {n:,} | {cw:.2f} s | {jw:.2f} s | **{ratio:.1f}** | {cc:.2f} s "
            f"| {jc:.2f} s | {jc / cc:.1f} | {rss:.0f} MB | {'yes' if same else 'NO'} | {load:.1f} |"
        )
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="*", default=[20, 200], help="log sizes in MB")
    ap.add_argument("--big", action="store_true", help="also a 1,000 MB log (no warm-up: see --big-reps)")
    ap.add_argument(
        "--big-reps", type=int, default=1, help="timed runs per tool and shape at 1,000 MB (median)"
    )
    ap.add_argument("--reps", type=int, default=3, help="timed runs per tool and shape (median)")
    ap.add_argument("--only", help="run only shapes whose label contains this text")
    ap.add_argument(
        "--dir", type=Path, help="where to write the logs, kept and reused (default: a temp dir, removed)"
    )
    args = ap.parse_args()
    jq = shutil.which("jq")
    if not jq:
        print("jq not found: install jq to compare (apt-get install jq)", file=sys.stderr)
        return 2
    version = subprocess.run([jq, "--version"], capture_output=True, text=True).stdout.strip()
    work = args.dir or Path(tempfile.mkdtemp(prefix="cks-bench-audit-"))
    work.mkdir(parents=True, exist_ok=True)
    print(
        f"jq: {version}; cks: {sys.executable} -m grader audit query; load average at start: "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs",
        flush=True,
    )
    rows: list[Row] = []
    try:
        for size in args.sizes + ([1000] if args.big else []):
            rows += bench_size(size, work, jq, args)
    finally:
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)
    print(
        f"\nload average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; {version}; "
        f"median of {args.reps} interleaved runs after a warm-up (1,000 MB: {args.big_reps}, no warm-up)\n"
    )
    ok = print_table(rows)
    print(
        "\nPASS"
        if ok
        else f"\nFAIL: a target was missed (>= {TARGET_RATIO:.0f}x jq wall, identical, < {TARGET_RSS_MB} MB)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
