"""Helpers for .github/workflows/kind-e2e.yml: which labs kind supports, applying a lab's reference
solution to a live cluster, and checking a grade result. Run from the repository root with the kit
installed ([live])."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


FALCO_CHECKS = {"live.falco_validates", "live.falco_alert", "falco.capture_log"}


def kind_exempt(lab) -> dict[str, str]:
    """Tasks that cannot pass on kind, with why: they need Falco on the node (kind nodes are containers
    without a kernel driver; the falco job covers Falco on a real kernel instead)."""
    return {
        t.id: "needs Falco running on the node (covered by the falco job)"
        for t in lab.tasks
        if t.check in FALCO_CHECKS
    }


def cmd_labs(_args) -> int:
    from grader.labs import all_labs

    out = []
    for lab in all_labs():
        exempt = kind_exempt(lab)
        note = f" (error expected on kind for {', '.join(sorted(exempt))}: Falco)" if exempt else ""
        print(f"{lab.id}: kind{note}", file=sys.stderr)
        out.append(lab.id)
    print(json.dumps(out))
    return 0


def cmd_solve(args) -> int:
    """Make the cluster look like the lab's reference solution (start state + solutions/LAB/overlay, minus
    delete.txt), the way a learner would get there: changed objects replaced (Pods deleted and created again,
    since their spec cannot be edited), objects the solution removes deleted, node files written or removed,
    and the kube-apiserver manifest edited in place on the node (the solution's flag and volume changes laid
    over the node's real manifest, through the node backend: `docker exec` on kind, ssh on Vagrant)."""
    import tempfile

    from grader.collectors import parse_target
    from grader.labs import get_lab
    from grader.selftest import build

    lab = get_lab(args.lab)
    with tempfile.TemporaryDirectory() as tmp:
        build(lab, Path(tmp) / "solved", args.seed, solution=True)
        for line in sync(
            lab, parse_target(args.target), args.seed, Path(tmp) / "solved", kubeconfig=args.kubeconfig
        ):
            print(line)
    return 0


SERVER_FIELDS = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "generation",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
)


def _key(obj: dict) -> tuple[str, str, str]:
    meta = obj.get("metadata") or {}
    return str(obj.get("kind")), str(meta.get("namespace") or ""), str(meta.get("name"))


def _desired(obj: dict) -> dict:
    body = json.loads(json.dumps(obj))
    for k in SERVER_FIELDS:
        (body.get("metadata") or {}).pop(k, None)
    body.pop("status", None)
    return body


def _managed(obj: dict) -> bool:
    """Objects a controller owns (ReplicaSets, Pods of a Deployment) are the controller's to make."""
    return bool((obj.get("metadata") or {}).get("ownerReferences"))


def _uid(obj: dict) -> str | None:
    return (obj.get("metadata") or {}).get("uid")


def sync(lab, target, seed, solved: Path, *, kubeconfig: str | None = None) -> list[str]:
    """Bring the live lab from its start state to the workspace ``solved``; returns what was done."""
    import tempfile

    from grader.collectors.gather import connect_api
    from grader.collectors.nodes import open_node
    from grader.snapshot import Snapshot
    from grader.workspace import materialize

    done: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        start_dir = Path(tmp) / "start"
        materialize(lab, start_dir, seed)
        before = {_key(o): o for o in Snapshot(start_dir).objects() if not _managed(o)}
        after = {_key(o): o for o in Snapshot(solved).objects() if not _managed(o)}
        nodes = {}

        def node(name):
            if name not in nodes:
                nodes[name] = open_node(target, name, workdir=Path(tmp) / "w")
            return nodes[name]

        api = connect_api(
            target,
            kubeconfig=kubeconfig,
            context=None,
            in_cluster=False,
            node=node("controlplane"),
            admin=True,
        )
        try:
            done += _sync_objects(api, before, after)
            done += _sync_node_files(node, start_dir, solved)
        finally:
            api.close()
            for n in nodes.values():
                n.close()
    return done


def _sync_objects(api, before: dict, after: dict) -> list[str]:
    """Delete the objects the solution removed, create or replace those it added or changed."""
    done: list[str] = []
    for key in sorted(set(before) - set(after), key=lambda k: k[0] == "Namespace"):
        api.delete(key[0], key[1] or None, key[2], wait=30)
        done.append(f"deleted {'/'.join(key)}")
    for key, obj in after.items():
        old = before.get(key)
        if old is not None and _desired(old) == _desired(obj) and _uid(old) == _uid(obj):
            continue
        live = api.get(key[0], key[1] or None, key[2])
        recreate = live is not None and (key[0] == "Pod" or (old is not None and _uid(old) != _uid(obj)))
        if recreate:
            api.delete(key[0], key[1] or None, key[2], wait=60)
            live = None
        body = _desired(obj)
        info = api.info(key[0])
        if live is None:
            api.request(
                "POST",
                info.path(key[1] or None),
                body={**body, "apiVersion": info.api_version},
                content_type="application/json",
            )
            done.append(f"{'recreated' if recreate else 'created'} {'/'.join(key)}")
        else:
            body["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
            api.request(
                "PUT",
                info.path(key[1] or None, key[2]),
                body={**body, "apiVersion": info.api_version},
                content_type="application/json",
            )
            done.append(f"replaced {'/'.join(key)}")
    return done


def _sync_node_files(node, start_dir: Path, solved: Path) -> list[str]:
    """Write, edit in place or remove the node files the solution changed (never the node's protected
    ones)."""
    from grader.collectors.lifecycle import apiserver_manifest, is_protected_path, node_files_of

    done: list[str] = []
    old_files, new_files = node_files_of(start_dir), node_files_of(solved)
    manifest = apiserver_manifest()
    for node_name in sorted(set(old_files) | set(new_files)):
        was, now = old_files.get(node_name, {}), new_files.get(node_name, {})
        for path in sorted(set(was) | set(now)):
            if was.get(path) == now.get(path):
                continue
            if path.endswith("/manifests/kube-apiserver.yaml") and path in was and path in now:
                real = node(node_name).read_file(manifest)
                patched = patch_manifest(real.decode(), was[path].decode(), now[path].decode())
                node(node_name).write_file(manifest, patched.encode(), mode="0600")
                done.append(f"edited {node_name}:{manifest} in place")
            elif is_protected_path(path):
                continue
            elif path in now:
                node(node_name).write_file(path, now[path])
                done.append(f"wrote {node_name}:{path}")
            else:
                node(node_name).remove(path)
                done.append(f"removed {node_name}:{path}")
    return done


def _flags(command: list) -> dict[str, str]:
    out = {}
    for a in command[1:]:
        k, _, v = str(a).partition("=")
        out[k] = v
    return out


def patch_manifest(real: str, start: str, solved: str) -> str:
    """The solution's edits of the kube-apiserver manifest (flags added, changed or removed; volumes and
    volumeMounts added or changed, by name) laid over the node's real manifest."""
    import yaml

    r, a, b = (yaml.safe_load(t) for t in (real, start, solved))
    rc, ac, bc = (d["spec"]["containers"][0] for d in (r, a, b))
    fa, fb = _flags(ac.get("command") or []), _flags(bc.get("command") or [])
    cmd = list(rc.get("command") or [])
    for flag in fa.keys() - fb.keys():
        cmd = [c for c in cmd if str(c).partition("=")[0] != flag]
    for flag, value in fb.items():
        if fa.get(flag) == value and flag in fa:
            continue
        entry = f"{flag}={value}" if value else flag
        idx = next((i for i, c in enumerate(cmd) if str(c).partition("=")[0] == flag), None)
        if idx is None:
            cmd.append(entry)
        else:
            cmd[idx] = entry
    rc["command"] = cmd
    for holder, field, key, real_holder in (
        (ac, "volumeMounts", "name", rc),
        (a["spec"], "volumes", "name", r["spec"]),
    ):
        solved_holder = bc if holder is ac else b["spec"]
        old = {x[key]: x for x in holder.get(field) or []}
        for item in solved_holder.get(field) or []:
            if old.get(item[key]) == item:
                continue
            items = [x for x in real_holder.get(field) or [] if x.get(key) != item[key]]
            real_holder[field] = [*items, item]
    return yaml.safe_dump(r, sort_keys=False)


def cmd_expect(args) -> int:
    from grader.labs import get_lab

    data = json.loads(Path(args.result).read_text())
    score, top = data["score"], data["max_score"]
    exempt = kind_exempt(get_lab(data["lab"])) if args.on_kind else {}
    for t in data["tasks"]:
        if t["id"] in exempt:
            print(f"{data['lab']} {t['id']}: {t['status']} (not judged on kind: {exempt[t['id']]})")
    tasks = [t for t in data["tasks"] if t["id"] not in exempt]
    bad = [
        t
        for t in tasks
        if (args.want == "full" and t["status"] != "pass") or (args.want == "zero" and t["points"] != 0)
    ]
    if args.want == "full":
        score, top = sum(t["points"] for t in tasks), sum(t["max_points"] for t in tasks)
    for t in bad:
        score_text = f"{t['points']}/{t['max_points']}"
        print(f"::error::{data['lab']} {t['id']} {t['status']} ({score_text}): {t['message']}")
    print(f"{data['lab']}: {score}/{top} ({args.want} expected)")
    return 1 if bad or (args.want == "full" and score != top) else 0


def rules_cases() -> list[tuple[str, Path]]:
    """(label, rules file) for lab3 and lab8: the reference solution and every fixture's local rules file,
    rendered for the default variant."""
    import tempfile

    from grader.labs import get_lab
    from grader.selftest import build, fixture_cases

    out = []
    tmp = Path(tempfile.mkdtemp(prefix="falco-rules-"))
    for lab_id in ("lab3", "lab8"):
        lab = get_lab(lab_id)
        cases = [("solution", None)] + [
            (name, d) for name, d, _fails, seed in fixture_cases(lab) if seed is None
        ]
        for i, (name, overlay) in enumerate(cases):
            ws = tmp / f"{lab_id}-{i}"
            build(lab, ws, None, solution=True, overlay=overlay)
            for f in sorted((ws / "nodes/controlplane/etc/falco").rglob("*.y*ml")):
                if f.name not in {"falco_rules.yaml", "falco.yaml"}:
                    out.append((f"{lab_id} {name} {f.relative_to(ws)}", f))
    return out


def cmd_falco_rules(args) -> int:
    """The kit's engine and the real Falco agree on every rules file the labs grade."""
    import subprocess

    from grader.engines.falco.loader import RulesLoader

    default = Path(args.default_rules)
    disagree = 0
    for label, f in rules_cases():
        loader = RulesLoader()
        loader.load(str(default), default.read_bytes())
        loader.load(str(f), f.read_bytes())
        engine_ok = all(r.successful for r in loader.result().files)
        proc = subprocess.run(
            [args.falco, "-V", str(default), "-V", str(f)], capture_output=True, text=True, timeout=120
        )
        real_ok = proc.returncode == 0
        mark = "ok" if engine_ok == real_ok else "DISAGREE"
        disagree += engine_ok != real_ok
        print(
            f"{mark}: {label}: engine {'loads' if engine_ok else 'refuses'}, falco -V "
            f"{'loads' if real_ok else 'refuses'}"
        )
        if engine_ok != real_ok:
            print("::error::" + label + ": " + (proc.stdout + proc.stderr).strip().replace("\n", " | ")[:800])
    return 1 if disagree else 0


def cmd_falco_capture(args) -> int:
    """lab4's offenders (the commands of its start Deployments) in containers on this host, and a real
    `falco -M` capture as the README teaches it: the shadow reader's container must raise alerts."""
    import subprocess
    import tempfile

    import yaml

    from grader.labs import get_lab
    from grader.workspace import materialize

    lab = get_lab("lab4")
    ws = Path(tempfile.mkdtemp(prefix="lab4-"))
    values = materialize(lab, ws, None) or {}
    docs = [
        d
        for f in sorted((ws / "cluster").glob("*.yaml"))
        for d in yaml.safe_load_all(f.read_text())
        if isinstance(d, dict) and d.get("kind") == "Deployment"
    ]
    started = {}
    for d in docs:
        c = d["spec"]["template"]["spec"]["containers"][0]
        if not c.get("command"):
            continue
        name = d["metadata"]["name"]
        out = subprocess.run(
            ["docker", "run", "-d", "--name", f"lab4-{name}", c["image"], *c["command"]],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        started[name] = out[:12]
        print(f"started {name} ({c['image']}) as container {out[:12]}")
    proc = subprocess.run(
        [
            "sudo",
            "falco",
            "-M",
            str(args.seconds),
            "-o",
            "webserver.enabled=false",
            "-o",
            "json_output=false",
        ],
        capture_output=True,
        text=True,
        timeout=args.seconds + 120,
    )
    alerts = [ln for ln in proc.stdout.splitlines() if ln[:2].isdigit()]
    print(f"{len(alerts)} alerts in {args.seconds}s")
    seen = {name: [a for a in alerts if cid in a] for name, cid in started.items()}
    for name, lines in seen.items():
        print(f"{name}: {len(lines)} alerts" + (f", e.g. {lines[0][:200]}" if lines else ""))
    shadow = str(values.get("shadow_app", "reports"))
    if not seen.get(shadow):
        print(f"::error::the /etc/shadow reader ({shadow}) raised no alert; stderr: {proc.stderr[-800:]}")
        return 1
    return 0


def main() -> int:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("labs")
    s = sub.add_parser("solve")
    s.add_argument("lab")
    s.add_argument("--target", required=True)
    s.add_argument("--seed")
    s.add_argument("--kubeconfig", help="an admin kubeconfig (default: the target's own)")
    e = sub.add_parser("expect")
    e.add_argument("result")
    e.add_argument("want", choices=["full", "zero"])
    e.add_argument("--on-kind", action="store_true", help="tasks that need Falco on the node are not judged")
    f = sub.add_parser(
        "falco-rules",
        help="every lab3/lab8 reference and wrong rules file: the real `falco -V` "
        "agrees with the kit's engine",
    )
    f.add_argument("--falco", default="falco")
    f.add_argument("--default-rules", default="/etc/falco/falco_rules.yaml")
    c = sub.add_parser(
        "falco-capture", help="run lab4's offenders in containers; a real `falco -M` sees them"
    )
    c.add_argument("--seconds", type=int, default=30)
    args = p.parse_args()
    return {
        "labs": cmd_labs,
        "solve": cmd_solve,
        "expect": cmd_expect,
        "falco-rules": cmd_falco_rules,
        "falco-capture": cmd_falco_capture,
    }[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
