"""Audit policy evaluation speed: 100,000 generated requests against the GCE configure-helper policy.

Target: >= 50,000 requests/s on one core. Compared in the same run with a floor (a loop that only reads
the same attributes) and a peer: a naive line-by-line transcription of checker.go over the same rules, so the
ratio shows what precompiling the rules buys whatever the machine's load.

    python bench/bench_audit_simulate.py [--requests N] [--policy FILE]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

from grader.engines.audit_policy import RequestAttributes, User, default_groups, load_policy

REPO = Path(__file__).resolve().parents[1]
DEFAULT_POLICY = (
    REPO / ".." / "shared" / "conformance" / "audit" / "policies" / "gce-configure-helper-audit-policy.yaml"
)
TARGET = 50_000

_USERS = [
    "alice",
    "bob",
    "system:kube-proxy",
    "kubelet",
    "system:node:node-1",
    "system:apiserver",
    "system:kube-controller-manager",
    "system:kube-scheduler",
    "cluster-autoscaler",
    "system:serviceaccount:kube-system:namespace-controller",
    "system:serviceaccount:prod:deployer",
    "system:anonymous",
    "system:unsecured",
]
_RESOURCES = [
    ("", "pods", ""),
    ("", "pods", "log"),
    ("", "pods", "exec"),
    ("", "pods", "status"),
    ("", "secrets", ""),
    ("", "configmaps", ""),
    ("", "endpoints", ""),
    ("", "services", ""),
    ("", "nodes", ""),
    ("", "nodes", "status"),
    ("", "events", ""),
    ("", "namespaces", ""),
    ("", "serviceaccounts", "token"),
    ("apps", "deployments", ""),
    ("apps", "deployments", "scale"),
    ("rbac.authorization.k8s.io", "clusterroles", ""),
    ("metrics.k8s.io", "pods", ""),
    ("coordination.k8s.io", "leases", ""),
    ("authentication.k8s.io", "tokenreviews", ""),
    ("example.com", "widgets", ""),
]
_VERBS = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]
_NAMESPACES = ["default", "kube-system", "prod", ""]
_PATHS = [
    "/healthz",
    "/healthz/etcd",
    "/version",
    "/metrics",
    "/api",
    "/apis",
    "/openapi/v2",
    "/swagger.json",
]


def generate(n: int, seed: int = 7) -> list[RequestAttributes]:
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        name = rnd.choice(_USERS)
        user = None if rnd.random() < 0.01 else User(name, default_groups(name))
        if rnd.random() < 0.15:
            out.append(RequestAttributes(user, "get", is_resource_request=False, path=rnd.choice(_PATHS)))
            continue
        group, resource, sub = rnd.choice(_RESOURCES)
        out.append(
            RequestAttributes(
                user,
                rnd.choice(_VERBS),
                rnd.choice(_NAMESPACES),
                group,
                "v1",
                resource,
                sub,
                rnd.choice(["", "web", "controller-leader"]),
                True,
                "",
            )
        )
    return out


def naive_level(rules, a: RequestAttributes) -> str:
    """checker.go's rule loop, transcribed without precompilation (the peer)."""
    for r in rules:
        if naive_rule_matches(r, a):
            return r.level
    return "None"


def naive_rule_matches(r, a: RequestAttributes) -> bool:
    """checker.go ruleMatches."""
    if r.users and (a.user is None or a.user.username not in r.users):
        return False
    if r.user_groups and (a.user is None or not any(g in r.user_groups for g in a.user.groups)):
        return False
    if r.verbs and a.verb not in r.verbs:
        return False
    if r.namespaces or r.resources:
        return naive_rule_matches_resource(r, a)
    if r.non_resource_urls:
        return not a.is_resource_request and any(
            u == "*" or u == a.path or (u.endswith("*") and a.path.startswith(u.rstrip("*")))
            for u in r.non_resource_urls
        )
    return True


def naive_rule_matches_resource(r, a: RequestAttributes) -> bool:
    """checker.go ruleMatchesResource."""
    if not a.is_resource_request or (r.namespaces and a.namespace not in r.namespaces):
        return False
    if not r.resources:
        return True
    combined = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
    for gr in r.resources:
        if gr.group != a.api_group and gr.group != "*":
            continue
        if not gr.resources:
            return True
        for res in gr.resources:
            if gr.resource_names and a.name not in gr.resource_names:
                continue
            if (
                res in (combined, "*")
                or (a.subresource and res.startswith("*/") and res[2:] == a.subresource)
                or (res.endswith("/*") and res[:-2] == a.resource)
            ):
                return True
    return False


def time_passes(policy, requests: list[RequestAttributes], repeat: int) -> tuple[list, list, list]:
    """Seconds per pass of the floor, the engine and the peer, interleaved ``repeat`` times."""

    def floor() -> None:
        sink = None
        for a in requests:
            sink = (a.user, a.verb, a.namespace, a.api_group, a.resource)
        del sink

    def run() -> None:
        policy.evaluate_many(requests)

    def peer() -> None:
        rules = policy.rules
        for a in requests:
            naive_level(rules, a)

    floors, runs, peers = [], [], []
    for _ in range(repeat):
        for fn, times in ((floor, floors), (run, runs), (peer, peers)):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
    return floors, runs, peers


def level_counts(policy, requests: list[RequestAttributes]) -> dict[str, int] | None:
    """How many requests get each level; None (after printing it) at the first request where the engine
    and the peer disagree: the bench doubles as a differential check."""
    levels: dict[str, int] = {}
    for a, d in zip(requests, policy.evaluate_many(requests), strict=True):
        levels[d.level] = levels.get(d.level, 0) + 1
        if d.level != naive_level(policy.rules, a):
            print(f"MISMATCH: {a.describe()}: engine {d.level}, naive {naive_level(policy.rules, a)}")
            return None
    return levels


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=100_000)
    ap.add_argument("--policy", type=Path, default=DEFAULT_POLICY)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    if not args.policy.is_file():
        print(f"policy not found: {args.policy} (is ../shared beside the repo?)", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    result = load_policy(args.policy.read_text())
    load_ms = (time.perf_counter() - t0) * 1000
    if not result.ok:
        print("policy does not load:", *result.errors, sep="\n  ", file=sys.stderr)
        return 2
    policy = result.policy
    requests = generate(args.requests)
    floors, runs, peers = time_passes(policy, requests, args.repeat)
    med = statistics.median(runs)
    rate = args.requests / med
    levels = level_counts(policy, requests)
    if levels is None:
        return 1
    peer_med = statistics.median(peers)
    print(f"policy: {args.policy.name} ({len(policy.rules)} rules, loaded in {load_ms:.1f} ms)")
    print(f"requests: {args.requests:,} generated, median of {args.repeat} runs")
    print(f"evaluate: {med * 1000:8.1f} ms  -> {rate:,.0f} requests/s (target >= {TARGET:,}/s)")
    print(
        f"floor:    {statistics.median(floors) * 1000:8.1f} ms  (attribute access only; ratio "
        f"{med / statistics.median(floors):.1f}x)"
    )
    print(
        f"naive:    {peer_med * 1000:8.1f} ms  -> {args.requests / peer_med:,.0f} requests/s "
        f"(line-by-line checker.go; engine is {peer_med / med:.1f}x faster)"
    )
    print("levels:   " + ", ".join(f"{k} {v:,}" for k, v in sorted(levels.items())))
    print("result:   " + ("OK" if rate >= TARGET else "BELOW TARGET"))
    return 0 if rate >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
