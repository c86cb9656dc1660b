"""`cks audit query` against `jq -c 'select(...)'` on generated audit logs: same answer, speed ratio, memory.

Targets: at least 3x faster than jq for the same question, identical results, peak memory of the cks process
under 100 MB whatever the log size. Both tools run as subprocesses in the same run; CPU time (user + system)
comes from os.wait4 (the child's own rusage), peak RSS from GNU time (/usr/bin/time -f %M). The ratio uses CPU time, which other load on the
machine does not distort; wall time is printed too. Logs are generated (kube-apiserver's JSON lines: RequestReceived +
ResponseComplete pairs, watches with ResponseStarted, failed logins as a lone 401 ResponseStarted).

    python bench/bench_audit_query.py              # 20 MB and 200 MB (about a minute or two)
    python bench/bench_audit_query.py --big        # also 1 GB
    python bench/bench_audit_query.py --sizes 50   # custom sizes in MB
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

TARGET_RATIO = 3.0
TARGET_RSS_MB = 100
NS = "payments"

# The question: who read Secrets in namespace payments, each request once.
CKS_ARGS = ["--resource", "secrets", "--namespace", NS, "--verb", "get,list,watch", "-f", "jsonl", "-q"]
JQ_FILTER = (
    'select((.stage == "ResponseComplete" or (.stage == "ResponseStarted" and .responseStatus.code == 401))'
    f' and .objectRef.resource == "secrets" and .objectRef.namespace == "{NS}"'
    ' and (.verb == "get" or .verb == "list" or .verb == "watch"))')
# A second question, for the count summary: one identity's whole activity.
CKS_USER_ARGS = ["--user", "system:serviceaccount:payments:report-runner", "-f", "jsonl", "-q"]
JQ_USER_FILTER = ('select((.stage == "ResponseComplete" or (.stage == "ResponseStarted" and '
                  '.responseStatus.code == 401)) and (.user.username == "system:serviceaccount:payments:report-runner"'
                  ' or .impersonatedUser.username == "system:serviceaccount:payments:report-runner"))')


def generate(path: Path, size_mb: int, seed: int = 3) -> int:
    """Write about ``size_mb`` MB of realistic traffic; returns the number of lines."""
    rng = random.Random(seed)
    users = [(f"system:node:worker-{i}", ["system:nodes", "system:authenticated"], f"10.0.0.{10 + i}",
              "kubelet/v1.30.2 (linux/amd64) kubernetes/3968350") for i in range(4)]
    users += [(f"system:serviceaccount:kube-system:{c}", ["system:serviceaccounts", "system:authenticated"],
               "10.0.0.10", f"kube-controller-manager/v1.30.2 (linux/amd64) kubernetes/3968350/{c}")
              for c in ("replicaset-controller", "deployment-controller", "endpointslice-controller")]
    users += [("system:serviceaccount:payments:report-runner", ["system:serviceaccounts", "system:authenticated"],
               "10.244.2.57", "kubernetes-python-client/29.0.0"),
              ("system:serviceaccount:payments:report-runner-v2", ["system:serviceaccounts", "system:authenticated"],
               "10.244.2.58", "kubernetes-python-client/29.0.0"),
              ("alice@corp.example", ["oncall", "system:authenticated"], "192.168.10.23", "kubectl/v1.30.2"),
              ("system:kube-scheduler", ["system:authenticated"], "10.0.0.10", "kube-scheduler/v1.30.2")]
    resources = [("leases", "coordination.k8s.io"), ("pods", ""), ("configmaps", ""), ("secrets", ""),
                 ("endpointslices", "discovery.k8s.io"), ("deployments", "apps"), ("events", ""), ("nodes", "")]
    namespaces = ["kube-system", "kube-node-lease", NS, "default", "staging"]
    base = datetime(2026, 3, 14, 8, 0, tzinfo=UTC)
    limit = size_mb * 1024 * 1024
    written = lines = 0
    t = 0.0
    with open(path, "wb", buffering=1 << 20) as out:
        while written < limit:
            t += rng.expovariate(40.0)
            recv = base + timedelta(seconds=t)
            ts = recv.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            aid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            if rng.random() < 0.004:  # failed login: one line, no user
                e = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": aid,
                     "stage": "ResponseStarted", "requestURI": f"/api/v1/namespaces/{NS}/secrets", "verb": "list",
                     "user": {}, "sourceIPs": ["203.0.113.50"], "userAgent": "curl/8.5.0",
                     "objectRef": {"resource": "secrets", "namespace": NS, "apiVersion": "v1"},
                     "responseStatus": {"metadata": {}, "message": "Authentication failed, attempted: bearer",
                                        "code": 401}, "requestReceivedTimestamp": ts, "stageTimestamp": ts}
                chunk = orjson.dumps(e) + b"\n"
                out.write(chunk)
                written += len(chunk)
                lines += 1
                continue
            user, groups, ip, ua = rng.choice(users)
            res, grp = rng.choice(resources)
            ns = rng.choice(namespaces) if res != "nodes" else None
            verb = rng.choice(["get", "get", "list", "watch", "update", "patch", "create"])
            name = None if verb in ("list", "watch") else f"{res[:-1]}-{rng.randrange(40)}"
            ref = {"resource": res}
            if ns:
                ref["namespace"] = ns
            if name:
                ref["name"] = name
            if grp:
                ref["apiGroup"] = grp
            ref["apiVersion"] = "v1"
            prefix = f"/apis/{grp}/v1" if grp else "/api/v1"
            uri = prefix + (f"/namespaces/{ns}" if ns else "") + f"/{res}" + (f"/{name}" if name else "")
            code = rng.choice([200] * 18 + [403, 404])
            head = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": aid}
            common = {"requestURI": uri, "verb": verb, "user": {"username": user, "groups": groups},
                      "sourceIPs": [ip], "userAgent": ua, "objectRef": ref}
            done = (recv + timedelta(seconds=rng.uniform(300, 500) if verb == "watch" else 0.004)
                    ).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            status = {"metadata": {}, "code": code}
            ann = {"authorization.k8s.io/decision": "forbid" if code == 403 else "allow",
                   "authorization.k8s.io/reason": "" if code == 403 else
                   f"RBAC: allowed by RoleBinding \"x/{ns}\" of Role \"x\" to User \"{user}\""}
            stages = [("RequestReceived", ts, None, None)]
            if verb == "watch":
                stages.append(("ResponseStarted", ts, status, ann))
            stages.append(("ResponseComplete", done, status, ann))
            for stage, st, rs, an in stages:
                e = dict(head, stage=stage, **common)
                if rs:
                    e["responseStatus"] = rs
                e["requestReceivedTimestamp"] = ts
                e["stageTimestamp"] = st
                if an:
                    e["annotations"] = an
                chunk = orjson.dumps(e) + b"\n"
                out.write(chunk)
                written += len(chunk)
                lines += 1
    return lines


GNU_TIME = shutil.which("time") if Path("/usr/bin/time").exists() else None


def run(cmd: list[str], out: Path) -> tuple[float, float, float]:
    """CPU seconds, peak RSS (MB) and wall seconds of one child process, stdout to ``out``.

    Peak RSS is measured by GNU time when present: a child forked straight from this (large) bench process
    would report this process's resident pages as its own until it execs."""
    rss_file = out.with_suffix(".rss")
    full = ["/usr/bin/time", "-f", "%M", "-o", str(rss_file)] + cmd if GNU_TIME else cmd
    with open(out, "wb") as fh:
        start = time.perf_counter()
        proc = subprocess.Popen(full, stdout=fh, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}): {err[:500]}")
    rss_mb = usage.ru_maxrss / 1024
    if GNU_TIME:
        rss_mb = int(rss_file.read_text().split()[-1]) / 1024
    return usage.ru_utime + usage.ru_stime, rss_mb, wall


def parsed(path: Path) -> list:
    with open(path, "rb") as fh:
        return [orjson.loads(line) for line in fh if line.strip()]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="*", default=[20, 200], help="log sizes in MB")
    ap.add_argument("--big", action="store_true", help="also a 1 GB log")
    ap.add_argument("--dir", type=Path, help="where to write the logs (default: a temp dir, removed after)")
    args = ap.parse_args()
    jq = shutil.which("jq")
    if not jq:
        print("jq not found: install jq to compare (apt-get install jq)", file=sys.stderr)
        return 2
    sizes = args.sizes + ([1024] if args.big else [])
    work = args.dir or Path(tempfile.mkdtemp(prefix="cks-bench-audit-"))
    work.mkdir(parents=True, exist_ok=True)
    cks = [sys.executable, "-m", "grader", "audit", "query"]
    rows, ok = [], True
    try:
        for size in sizes:
            log = work / f"audit-{size}mb.log"
            t = time.perf_counter()
            lines = generate(log, size)
            gen = time.perf_counter() - t
            print(f"{size} MB: {lines:,} lines generated in {gen:.1f}s", flush=True)
            for label, cargs, jfilter in (("secrets in ns", CKS_ARGS, JQ_FILTER), ("one user", CKS_USER_ARGS,
                                                                                    JQ_USER_FILTER)):
                c_time, c_rss, c_wall = run(cks + [str(log)] + cargs, work / "cks.out")
                j_time, j_rss, j_wall = run([jq, "-c", jfilter, str(log)], work / "jq.out")
                same = parsed(work / "cks.out") == parsed(work / "jq.out")
                n = len(parsed(work / "cks.out"))
                s_time, _, _ = run(cks + [str(log)] + cargs + ["--no-fast"], work / "slow.out")
                same = same and parsed(work / "slow.out") == parsed(work / "jq.out")
                # the speed target is for 200 MB and up; below that interpreter start-up (~0.15 s) dominates
                ok &= same and c_rss < TARGET_RSS_MB and (size < 200 or j_time / c_time >= TARGET_RATIO)
                rows.append((size, label, n, c_time, s_time, j_time, c_rss, j_rss, same, c_wall, j_wall))
                print(f"  {label:14} {n:>7,} results  CPU: cks {c_time:6.2f}s (no prefilter {s_time:6.2f}s) "
                      f"jq {j_time:6.2f}s ratio {j_time / c_time:5.1f}x | wall: cks {c_wall:5.2f}s jq {j_wall:5.2f}s"
                      f" | RSS cks {c_rss:4.0f} MB jq {j_rss:4.0f} MB | identical={same}", flush=True)
            log.unlink()
    finally:
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\nsummary (targets: >= {TARGET_RATIO:.0f}x faster than jq on 200 MB and up, identical results, "
          f"cks peak RSS < {TARGET_RSS_MB} MB at every size)")
    for size, label, n, c, s, j, cr, jr, same, cw, jw in rows:
        print(json.dumps({"size_mb": size, "question": label, "results": n, "cks_cpu_s": round(c, 2),
                          "cks_no_prefilter_cpu_s": round(s, 2), "jq_cpu_s": round(j, 2), "ratio": round(j / c, 1),
                          "cks_wall_s": round(cw, 2), "jq_wall_s": round(jw, 2), "cks_rss_mb": round(cr),
                          "jq_rss_mb": round(jr), "identical": same}))
    print("PASS" if ok else "FAIL: a target was missed (see above)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
