"""Helpers for .github/workflows/kind-e2e.yml: which labs kind supports, applying a lab's reference solution to a
live cluster, and checking a grade result. Run from the repository root with the kit installed ([live])."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def kind_support(lab) -> tuple[bool, str]:
    """(supported, why not). Falco needs the host kernel's driver; solutions that edit the static-pod
    manifests cannot be laid over a real control plane by copying files."""
    from grader.collectors.lifecycle import PROTECTED

    if "falco" in lab.topics:
        return False, "Falco needs a kernel driver: use the Vagrant cluster"
    overlay = ROOT / "solutions" / lab.id / "overlay" / "nodes"
    for f in overlay.rglob("*") if overlay.is_dir() else []:
        if f.is_file():
            path = "/" + f.relative_to(overlay).as_posix().split("/", 1)[1]
            if any(path.startswith(p) or path == p.rstrip("/") for p in PROTECTED):
                return False, f"the solution edits {path}, which the kit never overwrites on a real node"
    return True, ""


def cmd_labs(_args) -> int:
    from grader.labs import all_labs

    out = []
    for lab in all_labs():
        ok, why = kind_support(lab)
        print(f"{lab.id}: {'kind' if ok else 'skip - ' + why}", file=sys.stderr)
        if ok:
            out.append(lab.id)
    print(json.dumps(out))
    return 0


def cmd_solve(args) -> int:
    """Lay solutions/LAB/overlay over the cluster: cluster/*.yaml by server-side apply, node files through the
    node backend; delete.txt entries removed."""
    import tempfile

    from grader import variants
    from grader.collectors import parse_target
    from grader.collectors.gather import connect_api
    from grader.collectors.lifecycle import _protected, _start_files
    from grader.collectors.nodes import open_node
    from grader.labs import get_lab
    from grader.snapshot import Snapshot
    from grader.workspace import copy_tree

    lab = get_lab(args.lab)
    target = parse_target(args.target)
    values = variants.pick(lab.id, args.seed, lab.variables)
    sol = ROOT / "solutions" / lab.id
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "overlay"
        copy_tree(sol / "overlay", work, values)
        node = open_node(target, "controlplane", workdir=Path(tmp) / "w")
        api = connect_api(target, kubeconfig=None, context=None, in_cluster=False, node=node, admin=True)
        for obj in Snapshot(work).objects():
            api.apply(obj)
            print(f"applied {obj['kind']} {obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}")
        for node_name, files in _start_files(work).items():
            n = node if node_name == "controlplane" else open_node(target, node_name, workdir=Path(tmp) / "w")
            for path, data in files.items():
                if not _protected(path):
                    n.write_file(path, data)
                    print(f"wrote {node_name}:{path}")
        delete = sol / "delete.txt"
        for line in (delete.read_text().splitlines() if delete.is_file() else []):
            rel = variants.render_text(line.strip(), values)
            if rel.startswith("nodes/"):
                _, node_name, path = rel.split("/", 2)
                open_node(target, node_name, workdir=Path(tmp) / "w").remove("/" + path)
                print(f"removed {node_name}:/{path}")
    return 0


def cmd_expect(args) -> int:
    data = json.loads(Path(args.result).read_text())
    score, top = data["score"], data["max_score"]
    bad = [t for t in data["tasks"] if (args.want == "full" and t["status"] != "pass")
           or (args.want == "zero" and t["points"] != 0)]
    for t in bad:
        print(f"::error::{data['lab']} {t['id']} {t['status']} ({t['points']}/{t['max_points']}): {t['message']}")
    print(f"{data['lab']}: {score}/{top} ({args.want} expected)")
    return 1 if bad or (args.want == "full" and score != top) else 0


def main() -> int:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("labs")
    s = sub.add_parser("solve")
    s.add_argument("lab")
    s.add_argument("--target", required=True)
    s.add_argument("--seed")
    e = sub.add_parser("expect")
    e.add_argument("result")
    e.add_argument("want", choices=["full", "zero"])
    args = p.parse_args()
    return {"labs": cmd_labs, "solve": cmd_solve, "expect": cmd_expect}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
