"""Bench: `cks pods check` vs `checkov --framework kubernetes`, and 10,000 pods in one snapshot.

    python bench/bench_pods.py [--sizes 100,1000] [--checkov PATH] [--seed 7]

1. The same generated manifests (one object per file: Pods and Deployments with random privileged,
   hostNetwork, allowPrivilegeEscalation, runAsUser/runAsNonRoot at pod and container level, init
   containers, readOnlyRootFilesystem) are checked by both tools as whole processes; the report gives the
   wall-time ratio and, per check both make, how many objects they agree on, with every kind of
   disagreement counted and explained (docs/pods.md).
2. 10,000 pods in one snapshot (cluster/pods.yaml, and the same as cluster/pods.json): time to load the
   snapshot and time to evaluate every pod (CKS findings + PSS restricted).

checkov is looked for in /tmp/checkov-venv (`python -m venv /tmp/checkov-venv && /tmp/checkov-venv/bin/pip
install checkov`) or on PATH; without it part 1 reports our timing only and says so.
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
from collections import Counter
from pathlib import Path

import yaml

CHECKOV_IDS = {  # our check -> checkov's
    "privileged": "CKV_K8S_16",
    "hostNetwork": "CKV_K8S_19",
    "allowPrivilegeEscalation": "CKV_K8S_20",
    "runAsRoot": "CKV_K8S_23",
    "readOnlyRootFilesystem": "CKV_K8S_22",
}


def _maybe(rng: random.Random, choices: list[tuple[object, float]]) -> object:
    r, acc = rng.random(), 0.0
    for value, p in choices:
        acc += p
        if r < acc:
            return value
    return None  # unset


def gen_container(rng: random.Random, name: str) -> dict:
    sc = {}
    for key, choices in (
        ("privileged", [(True, 0.1), (False, 0.15)]),
        ("allowPrivilegeEscalation", [(True, 0.15), (False, 0.45)]),
        ("runAsUser", [(0, 0.1), (2000, 0.25)]),
        ("runAsNonRoot", [(True, 0.15)]),
        ("readOnlyRootFilesystem", [(True, 0.4), (False, 0.15)]),
    ):
        v = _maybe(rng, choices)
        if v is not None:
            sc[key] = v
    if sc.get("privileged") is True and sc.get("allowPrivilegeEscalation") is False:
        sc.pop("allowPrivilegeEscalation")  # the API rejects this combination
    c = {"name": name, "image": "registry.k8s.io/pause:3.10"}
    if sc:
        c["securityContext"] = sc
    return c


def gen_object(rng: random.Random, i: int) -> dict:
    spec: dict = {"containers": [gen_container(rng, f"c{j}") for j in range(rng.choice([1, 1, 2]))]}
    if rng.random() < 0.3:
        spec["initContainers"] = [gen_container(rng, "init")]
    hn = _maybe(rng, [(True, 0.15), (False, 0.1)])
    if hn is not None:
        spec["hostNetwork"] = hn
    psc = {}
    uid = _maybe(rng, [(0, 0.1), (1000, 0.2)])
    if uid is not None:
        psc["runAsUser"] = uid
    if rng.random() < 0.2:
        psc["runAsNonRoot"] = True
    if psc:
        spec["securityContext"] = psc
    name = f"obj{i}"
    if rng.random() < 0.5:
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": "bench"},
            "spec": spec,
        }
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "bench"},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": spec},
        },
    }


def write_manifests(dest: Path, n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    objs = [gen_object(rng, i) for i in range(n)]
    dest.mkdir(parents=True)
    for i, o in enumerate(objs):
        (dest / f"m{i:05d}.yaml").write_text(yaml.safe_dump(o, sort_keys=False))
    return objs


def find_checkov(explicit: str | None) -> str | None:
    for cand in (explicit, "/tmp/checkov-venv/bin/checkov", shutil.which("checkov")):
        if cand and Path(cand).is_file():
            return cand
    return None


def run_ours(d: Path) -> tuple[float, dict[str, set[str]]]:
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "grader", "pods", "check", str(d), "--only", "cks", "--format", "json"],
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t
    if proc.returncode not in (0, 1):
        raise SystemExit(f"cks pods check failed ({proc.returncode}): {proc.stderr[-2000:]}")
    flagged: dict[str, set[str]] = {k: set() for k in CHECKOV_IDS}
    for o in json.loads(proc.stdout)["objects"]:
        for f in o["findings"]:
            key = f["field"] if f["check"] == "hostNamespaces" else f["check"]
            if key in flagged:
                flagged[key].add(o["name"])
    return wall, flagged


def run_checkov(exe: str, d: Path) -> tuple[float, dict[str, set[str]]]:
    env = {
        **os.environ,
        "BC_SKIP_MAPPING": "TRUE",
        "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false",
        "LOG_LEVEL": "ERROR",
    }
    ids = ",".join(CHECKOV_IDS.values())
    t = time.perf_counter()
    proc = subprocess.run(
        [
            exe,
            "-d",
            str(d),
            "--framework",
            "kubernetes",
            "-o",
            "json",
            "--compact",
            "--quiet",
            "--skip-download",
            "--check",
            ids,
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    wall = time.perf_counter() - t
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        raise SystemExit(
            f"checkov output is not JSON (exit {proc.returncode}): {proc.stderr[-2000:]}"
        ) from None
    reports = data if isinstance(data, list) else [data]
    by_id = {v: k for k, v in CHECKOV_IDS.items()}
    flagged: dict[str, set[str]] = {k: set() for k in CHECKOV_IDS}
    for rep in reports:
        for r in rep.get("results", {}).get("failed_checks", []):
            key = by_id.get(r["check_id"])
            if key:
                flagged[key].add(r["resource"].split(".")[2])  # Kind.namespace.name
    return wall, flagged


def explain(check: str, obj: dict, ours: bool) -> str:
    """Which semantic difference makes the tools disagree on this object (see docs/pods.md)."""
    spec = obj["spec"] if obj["kind"] == "Pod" else obj["spec"]["template"]["spec"]
    cs = spec.get("initContainers", []) + spec["containers"]
    scs = [c.get("securityContext", {}) for c in cs]
    if check == "allowPrivilegeEscalation":
        if any(sc.get("privileged") is True and sc.get("allowPrivilegeEscalation") is not True for sc in scs):
            return (
                "privileged container: escalation implied (kubelet), not an explicit allowPrivilegeEscalation"
            )
        return (
            "allowPrivilegeEscalation unset: the kubelet allows escalation; checkov only flags explicit true"
            if ours
            else "other"
        )
    if check == "runAsRoot":
        from grader.engines import podsec

        ref = podsec.pod_specs(obj)[0]
        roots = [(c, podsec.effective(ref, c)) for c in ref.containers]
        roots = [(c, e) for c, e in roots if e.runs_as_root is not False]
        if ours and roots and all(c.field == "initContainers" for c, _ in roots):
            return "only an init container may run as root (checkov's CKV_K8S_23 reads containers only)"
        if ours and any(e.run_as_user.value == 0 and e.run_as_non_root.value is True for _, e in roots):
            return (
                "runAsUser 0 with runAsNonRoot: true (checkov passes it; the kubelet refuses to start it, "
                "cks flags the uid 0 asked for)"
            )
        return "other: " + ", ".join(
            f"{c.name} uid={e.run_as_user.show()}/nonroot={e.run_as_non_root.show()}" for c, e in roots
        )
    if check == "readOnlyRootFilesystem":
        return (
            "init container without readOnlyRootFilesystem (checkov does not check init containers)"
            if ours
            else "other"
        )
    return "other"


def compare(objs: list[dict], ours: dict[str, set[str]], theirs: dict[str, set[str]]) -> dict:
    names = {o["metadata"]["name"]: o for o in objs}
    out = {}
    for check in CHECKOV_IDS:
        agree = sum(1 for n in names if (n in ours[check]) == (n in theirs[check]))
        why: Counter[str] = Counter()
        for n in names:
            a, b = n in ours[check], n in theirs[check]
            if a != b:
                why[("only cks: " if a else "only checkov: ") + explain(check, names[n], a)] += 1
        out[check] = {"agree": agree, "total": len(names), "disagreements": dict(why)}
    return out


def bench_snapshot(n: int, seed: int) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from grader.checks import CheckContext, get_check
    from grader.engines import podsec
    from grader.labs import get_lab
    from grader.snapshot import Snapshot

    rng = random.Random(seed)
    pods = []
    for i in range(n):
        o = gen_object(rng, i)
        if o["kind"] != "Pod":
            o = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": o["metadata"],
                "spec": o["spec"]["template"]["spec"],
            }
        pods.append(o)
    out = {}
    for fmt in ("yaml", "json"):
        root = Path(tempfile.mkdtemp(prefix="cks-bench-snap-"))
        (root / "cluster").mkdir()
        if fmt == "yaml":
            (root / "cluster" / "pods.yaml").write_text(yaml.safe_dump_all(pods, sort_keys=False))
        else:
            (root / "cluster" / "pods.json").write_text(
                json.dumps({"apiVersion": "v1", "kind": "List", "items": pods})
            )
        t0 = time.perf_counter()
        snap = Snapshot(root)
        loaded = snap.objects("Pod")
        t1 = time.perf_counter()
        # lab6's real check over the snapshot (start = the same snapshot: every offender still there)
        lab = get_lab("lab6")
        ctx = CheckContext(snap, lab, lab.task("t1"), False, {}, lambda snap=snap: snap)
        outcome = get_check("pods.offending_pods_deleted")(ctx, namespaces=["bench"])
        t2 = time.perf_counter()
        reports = [podsec.analyze(p, "restricted") for p in loaded]
        t3 = time.perf_counter()
        shutil.rmtree(root)
        out[fmt] = {
            "pods": len(loaded),
            "load_s": t1 - t0,
            "grade_s": t2 - t1,
            "report_s": t3 - t2,
            "outcome": outcome.message[:70],
            "violations": sum(len(r.violations) for r in reports),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100,1000")
    ap.add_argument("--checkov", default=None)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--snapshot-pods", type=int, default=10_000)
    args = ap.parse_args()
    exe = find_checkov(args.checkov)
    print("== cks pods check vs checkov --framework kubernetes (whole processes, same files)")
    if exe is None:
        print(
            "   checkov not found: install it with `python -m venv /tmp/checkov-venv && "
            "/tmp/checkov-venv/bin/pip install checkov` (timing ours only)"
        )
    for n in (int(s) for s in args.sizes.split(",")):
        d = Path(tempfile.mkdtemp(prefix="cks-bench-pods-")) / "m"
        objs = write_manifests(d, n, args.seed + n)
        ours_t, ours = run_ours(d)
        if exe is None:
            print(f"   {n:>5} manifests: cks {ours_t:.2f}s")
            shutil.rmtree(d.parent)
            continue
        theirs_t, theirs = run_checkov(exe, d)
        print(
            f"   {n:>5} manifests: cks {ours_t:.2f}s, checkov {theirs_t:.2f}s "
            f"-> {theirs_t / ours_t:.1f}x faster"
        )
        for check, res in compare(objs, ours, theirs).items():
            print(f"      {check:<25} agree on {res['agree']}/{res['total']} objects ({CHECKOV_IDS[check]})")
            for why, count in sorted(res["disagreements"].items(), key=lambda kv: -kv[1]):
                print(f"         {count:>4}  {why}")
        shutil.rmtree(d.parent)
    print(f"== {args.snapshot_pods:,} pods in one snapshot")
    print(
        "   load = parse cluster/ (grader.snapshot); "
        "grade = lab6's pods.offending_pods_deleted over every pod;"
    )
    print("   report = every pod's CKS findings + PSS restricted violations (what `cks pods check` computes)")
    for fmt, r in bench_snapshot(args.snapshot_pods, args.seed).items():
        print(
            f"   cluster/pods.{fmt:<4}: load {r['load_s']:.2f}s, grade {r['grade_s']:.2f}s, "
            f"report {r['report_s']:.2f}s "
            f"({r['pods']} pods, {r['violations']} PSS violations; check said: {r['outcome']})"
        )


if __name__ == "__main__":
    main()
