"""Bench: Falco condition evaluation (compiled Python) on generated syscall events.

    python bench/bench_falco_eval.py [--events 100000] [--seed 7] [--shared ../shared]

1. Conditions: every macro and rule condition of the upstream stable + incubating + sandbox rules files
   (macros expanded by the rules loader), compiled by the engine. The same ASTs are also evaluated by a
   straightforward tree-walking interpreter written here (the peer), on the same events, and the report
   gives the speed ratio; both must agree on every (rule, event) pair.
Rules indexed by event type, events per second per rules file and load times are in bench/bench_falco.py
(the loader's bench); this one measures the condition compiler itself.

Times are CPU time of this process (time.process_time), so other work on the machine does not skew the
figures. Needs ../shared/conformance/falco/rules (the upstream rules files); says so and stops without them.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from grader.engines.falco import ast as A  # noqa: E402
from grader.engines.falco.events import event_from_mapping, get  # noqa: E402
from grader.engines.falco.fnmatch_compat import fnmatch  # noqa: E402

FILES = ("falco_rules.yaml", "falco-incubating_rules.yaml", "falco-sandbox_rules.yaml")

EVTTYPES = (
    ["execve"] * 30
    + ["openat"] * 30
    + [
        "open",
        "openat2",
        "connect",
        "accept",
        "close",
        "read",
        "write",
        "setuid",
        "unlinkat",
        "renameat2",
        "mkdirat",
        "ptrace",
        "socket",
        "bind",
        "chmod",
        "mount",
        "clone",
        "sendto",
    ]
)
PROCS = [
    "bash",
    "sh",
    "cat",
    "curl",
    "wget",
    "nc",
    "python3",
    "sudo",
    "su",
    "apt-get",
    "dpkg",
    "kubectl",
    "nginx",
    "node",
    "java",
    "sshd",
    "runc",
    "containerd-shim",
    "systemd",
    "cron",
    "tar",
    "base64",
    "find",
    "rm",
    "chmod",
    "mkfifo",
    "socat",
    "ncat",
    "nmap",
    "iptables",
    "mount",
    "insmod",
    "hostname",
]
FILES_ = [
    "/etc/shadow",
    "/etc/passwd",
    "/etc/sudoers",
    "/root/.ssh/id_rsa",
    "/tmp/x",
    "/var/log/auth.log",
    "/dev/shm/payload",
    "/proc/self/environ",
    "/usr/bin/ls",
    "/home/u/.bash_history",
    "/etc/pam.d/sshd",
    "/var/run/docker.sock",
    "/etc/ld.so.preload",
    "/boot/vmlinuz",
    "/lib/modules/x.ko",
    "/tmp/.hidden",
]
IMAGES = ["docker.io/library/nginx", "registry.k8s.io/kube-proxy", "quay.io/prometheus/node-exporter", ""]
FLAGS = ["O_RDONLY", "O_WRONLY|O_CREAT", "O_RDWR", "O_RDONLY|O_CLOEXEC", "O_WRONLY|O_TRUNC"]


def generate_events(n: int, seed: int) -> list:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        evtype = rnd.choice(EVTTYPES)
        name = rnd.choice(PROCS)
        data: dict = {
            "evt.type": evtype,
            "proc.name": name,
            "proc.exepath": f"/usr/bin/{name}",
            "proc.args": rnd.sample(
                ["-c", "id", "-la", "/tmp", "--force", "http://x", "-e", "/bin/sh"], k=rnd.randint(0, 3)
            ),
            "proc.ancestors": rnd.sample(PROCS, k=rnd.randint(1, 5)),
            "user.name": rnd.choice(["root", "www", "app"]),
            "user.uid": rnd.choice([0, 33, 1000]),
            "proc.tty": rnd.choice([0, 0, 34816]),
            "evt.rawtime": 1_700_000_000_000_000_000 + i * 1000,
        }
        if rnd.random() < 0.6:
            data["container.id"] = f"{rnd.getrandbits(48):012x}"
            data["container.name"] = rnd.choice(["web", "db", "k8s_POD"])
            data["container.image.repository"] = rnd.choice(IMAGES)
            data["k8s.ns.name"] = rnd.choice(["default", "kube-system", "team-a"])
            data["k8s.pod.name"] = f"pod-{rnd.randint(1, 50)}"
        if evtype.startswith("open"):
            data["fd.name"] = rnd.choice(FILES_)
            data["evt.arg.flags"] = rnd.choice(FLAGS)
        elif evtype in ("connect", "accept", "sendto"):
            data["fd.name"] = (
                f"10.0.0.{rnd.randint(1, 9)}:{rnd.randint(30000, 60000)}->"
                f"{rnd.choice(['10.0.0.1', '93.184.216.34', '169.254.169.254'])}:"
                f"{rnd.choice([80, 443, 4444])}"
            )
        out.append(event_from_mapping(data, num=i + 1))
    return out


# ---------------------------------------------------------------- the peer: a tree-walking interpreter


def _cmp(op: str, lhs, rhs) -> bool:
    if op in ("=", "=="):
        return str(lhs) == rhs if not isinstance(lhs, bool) else lhs == (rhs == "true")
    if op == "!=":
        return not _cmp("=", lhs, rhs)
    if op == "contains":
        return rhs in lhs
    if op == "icontains":
        return rhs.lower() in lhs.lower()
    if op == "startswith":
        return lhs.startswith(rhs)
    if op == "endswith":
        return lhs.endswith(rhs)
    if op == "glob":
        return fnmatch(rhs, lhs)
    if op in ("<", "<=", ">", ">="):
        a, b = (lhs, int(rhs)) if isinstance(lhs, int) else (lhs, rhs)
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
    raise NotImplementedError(op)


def interpret(node: A.Node, ev) -> bool | None:
    """None when the peer does not support a construct (the pair is then left out of the comparison)."""
    if isinstance(node, A.And):
        return all(interpret(c, ev) for c in node.children)
    if isinstance(node, A.Or):
        return any(interpret(c, ev) for c in node.children)
    if isinstance(node, A.Not):
        return not interpret(node.child, ev)
    if isinstance(node, A.Check):
        if (
            not isinstance(node.field, A.FieldRef)
            or node.modifier
            or isinstance(node.value, (A.FieldRef, A.Transform))
        ):
            raise NotImplementedError
        value = get(ev, node.field)
        if node.op == "exists":
            return value is not None and value != () and value.__class__.__name__ != "_Missing"
        if value.__class__.__name__ == "_Missing":
            return False
        values = value if isinstance(value, tuple) else (value,)
        if node.op in ("in", "intersects"):
            items = node.value if isinstance(node.value, tuple) else (node.value,)
            return any(
                str(v) in items or (isinstance(v, bool) and ("true" if v else "false") in items)
                for v in values
            )
        if node.op == "pmatch":
            raise NotImplementedError
        return any(_cmp(node.op, v, node.value) for v in values)
    raise NotImplementedError


PEER_OPS = {
    "=",
    "==",
    "!=",
    "contains",
    "icontains",
    "startswith",
    "endswith",
    "glob",
    "<",
    "<=",
    ">",
    ">=",
    "in",
    "intersects",
    "exists",
}


def _peer_supports(check: A.Check) -> bool:
    return (
        isinstance(check.field, A.FieldRef)
        and not check.modifier
        and check.op in PEER_OPS
        and not isinstance(check.value, (A.FieldRef, A.Transform, A.ListRef))
        and not check.field.name.startswith(("fd.ip", "fd.net", "fd.sip", "fd.cip", "fd.snet", "fd.cnet"))
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--shared", default=str(REPO.parent / "shared"))
    args = ap.parse_args()
    rules_dir = Path(args.shared) / "conformance" / "falco" / "rules"
    if not rules_dir.is_dir():
        print(
            f"bench_falco_eval: {rules_dir} not found; the upstream rules files are needed. Nothing measured."
        )
        return
    from grader.engines.falco.loader import load_rules

    texts = [(f, (rules_dir / f).read_text(encoding="utf-8")) for f in FILES]
    t0 = time.process_time()
    events = generate_events(args.events, args.seed)
    t_gen = time.process_time() - t0
    print(
        f"Falco condition bench: {len(events):,} generated events (built in {t_gen:.2f}s), seed {args.seed}"
    )

    # ---- 1. compiled conditions vs the tree-walking peer
    result = load_rules(texts)
    rules = [r for r in result.rules if True]
    sample = events[: min(len(events), 20_000)]
    nodes = []
    for r in rules:
        node = getattr(r.filter, "node", None)
        if node is None:
            continue
        if all(_peer_supports(c) for c in A.checks(node)):
            nodes.append((r, node))
    t0 = time.process_time()
    compiled_hits = [[r.filter.matches(ev) for r, _ in nodes] for ev in sample]
    t_compiled = time.process_time() - t0
    t0 = time.process_time()
    peer_hits = [[bool(interpret(n, ev)) for _, n in nodes] for ev in sample]
    t_peer = time.process_time() - t0
    pairs = len(sample) * len(nodes)
    disagree = sum(
        a != b
        for row_a, row_b in zip(compiled_hits, peer_hits, strict=True)
        for a, b in zip(row_a, row_b, strict=True)
    )
    print(
        f"\n1. {len(nodes)} rule conditions (of {len(rules)}) x {len(sample):,} events, no index "
        f"({pairs:,} evaluations)"
    )
    print(f"   compiled : {t_compiled:7.2f}s  {pairs / t_compiled:12,.0f} evaluations/s")
    print(f"   peer     : {t_peer:7.2f}s  {pairs / t_peer:12,.0f} evaluations/s (tree-walking interpreter)")
    print(f"   ratio    : compiled is {t_peer / t_compiled:.1f}x faster; disagreements: {disagree}")
    print("\n(rules indexed by event type, load times and events/s per rules file: bench/bench_falco.py)")


if __name__ == "__main__":
    main()
