"""A throwaway lab, written into a temporary folder the way an author outside the kit writes one: a lab
collection laid out like the kit's checkout, found through ``$CKS_LABS_PATH``, with a check of its own.

    <collection>/labs/lab990-audit-days/       lab.yaml, README.md, start/, checks/tlab.py (the new check)
    <collection>/solutions/lab990/             overlay/ + README.md
    <collection>/tests/labs/lab990/wrong/      three plausible wrong answers
    <collection>/tests/checks/fixtures/tlab.running_flag/   the new check's passing and failing inputs

lab990: t1 (offline, 2 points) the kube-apiserver manifest keeps audit logs ``{{ days }}`` days (the kit's
``apiserver.flags``); t2 (live, 1 point) the kube-apiserver that runs was started with that flag (the new
``tlab.running_flag``, which declares the node fact it needs, ``apiserver-args``).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
LAB_ID = "lab990"
CHECK_ID = "tlab.running_flag"
MANIFEST = "etc/kubernetes/manifests/kube-apiserver.yaml"
# the kubeadm manifest lab2 starts from (read only); the offline task judges it with the apiserver engine
START_MANIFEST = REPO / "labs" / "lab2-audit-backend" / "start" / "nodes" / "controlplane" / MANIFEST

CHECK_PY = '''\
"""The flags of the kube-apiserver that runs on a node (lab990's own check)."""

from __future__ import annotations

from grader.checks import CheckContext, Needs, check
from grader.results import Evidence, Outcome
from grader.snapshot import FileProblem


def last_value(args: list, flag: str) -> str | None:
    """The value the flag ends up with (the last one wins), as ``--flag=value`` or ``--flag value``."""
    found = None
    for i, arg in enumerate(args):
        if str(arg).startswith(f"--{flag}="):
            found = str(arg).split("=", 1)[1]
        elif str(arg) == f"--{flag}" and i + 1 < len(args):
            found = str(args[i + 1])
    return found


@check("tlab.running_flag", needs=Needs(node_facts=("apiserver-args",)))
def running_flag(ctx: CheckContext, flag: str, value: str, node: str = "controlplane") -> Outcome:
    """Live: the kube-apiserver running on ``node`` was started with ``--flag=value``."""
    where = f"{node}: the running kube-apiserver's command line"
    try:
        args = ctx.snap.fact(node, "apiserver-args")
    except FileProblem as exc:
        return Outcome.error(f"the running kube-apiserver could not be looked at: {exc}")
    if args is None:  # nothing runs: an absent process never passes
        return Outcome.failed(
            f"no kube-apiserver is running on {node}; kubelet restarts it from its manifest",
            Evidence(where, f"--{flag}={value}", "no kube-apiserver process"),
        )
    if not isinstance(args, list):
        return Outcome.error(f"the apiserver-args fact of {node} is not a list of arguments")
    got = last_value(args, flag)
    if got != str(value):
        said = f"--{flag}={got}" if got is not None else f"no --{flag}"
        return Outcome.failed(
            f"the running kube-apiserver has {said}; it must run with the value asked for",
            Evidence(where, f"--{flag}={value}", said),
        )
    return Outcome.passed(f"the running kube-apiserver has --{flag}={value}")
'''

LAB_YAML = {
    "id": LAB_ID,
    "version": 1,
    "title": "Keep audit logs for a set number of days",
    "summary": "Set kube-apiserver's audit log retention in days, and make the running server use it",
    "topics": ["audit", "kube-apiserver"],
    "minutes": 5,
    "nodes": ["controlplane"],
    "variables": {"days": {"default": 7, "choices": [7, 9, 12]}},
    "collect": {"files": [{"node": "controlplane", "path": "/" + MANIFEST}]},
    "tasks": [
        {
            "id": "t1",
            "title": "The manifest keeps audit logs {{ days }} days",
            "points": 2,
            "check": "apiserver.flags",
            "params": {"node": "controlplane", "expect": {"audit-log-maxage": "{{ days }}"}},
            "hints": [
                "Retention is a kube-apiserver flag, counted in days.",
                "Kubernetes docs, Auditing > Log backend: the flags and their units.",
                "One item in the kube-apiserver container's command: --audit-log-maxage=<days>.",
            ],
        },
        {
            "id": "t2",
            "title": "The running kube-apiserver keeps them {{ days }} days",
            "points": 1,
            "check": CHECK_ID,
            "params": {"node": "controlplane", "flag": "audit-log-maxage", "value": "{{ days }}"},
            "live": True,
            "hints": [
                "A static pod's manifest is read by kubelet, not by the process that already runs.",
                "crictl ps --name kube-apiserver on the node shows when it was (re)started.",
                "Save the manifest once and wait for kubelet to start kube-apiserver again.",
            ],
        },
    ],
}

# Wrong answers: (name, how the manifest's command is changed from the start, the tasks it fails offline).
# Applied to a cluster, every one of them also fails t2 (the running server has no such retention).
WRONG = {
    "maxage-in-comment": ("    # - --audit-log-maxage={{ days }}", {"t1"}),
    "other-days": ("    - --audit-log-maxage=30", {"t1"}),
    "flag-typo": ("    - --audit-log-max-age={{ days }}", {"t1"}),
}
SOLUTION_LINE = "    - --audit-log-maxage={{ days }}"

# The new check's own fixtures: case -> (case.yaml, the apiserver-args fact or None for no process).
ARGS = ["--advertise-address=10.0.0.10", "--secure-port=6443"]
CHECK_CASES = {
    "pass-running-with-flag": (
        {"expect": "pass", "message": "has --audit-log-maxage=7"},
        [*ARGS, "--audit-log-maxage=7"],
    ),
    "pass-separate-value": ({"expect": "pass", "message": "maxage=7"}, [*ARGS, "--audit-log-maxage", "7"]),
    "fail-flag-absent": ({"expect": "fail", "message": "no --audit-log-maxage"}, ARGS),
    "fail-last-value-wins": (
        {"expect": "fail", "message": "has --audit-log-maxage=30"},
        [*ARGS, "--audit-log-maxage=7", "--audit-log-maxage=30"],
    ),
    "fail-not-running": ({"expect": "fail", "message": "no kube-apiserver is running"}, None),
}


def _with_line(manifest: str, line: str) -> str:
    """The manifest with ``line`` added after the command's last flag (before ``image:``)."""
    head, sep, tail = manifest.partition("    image:")
    assert sep, "the start manifest has no image: line to insert before"
    return f"{head}{line}\n{sep}{tail}"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def write_collection(root: Path) -> Path:
    """Write the lab collection under ``root``; returns its labs folder (what ``$CKS_LABS_PATH`` lists)."""
    start = START_MANIFEST.read_text()
    assert "{{" not in start and "audit-log-maxage" not in start
    lab = root / "labs" / f"{LAB_ID}-audit-days"
    _write(lab / "lab.yaml", yaml.safe_dump(LAB_YAML, sort_keys=False))
    _write(
        lab / "README.md",
        textwrap.dedent("""\
            # lab990: Keep audit logs for a set number of days

            1. Make kube-apiserver keep its audit log files {{ days }} days (the manifest on controlplane).
            2. (live) Make sure the kube-apiserver that runs uses it.

            Grade with `grade lab990`.
            """),
    )
    _write(lab / "start" / "nodes" / "controlplane" / MANIFEST, start)
    _write(lab / "checks" / "tlab.py", CHECK_PY)
    solution = root / "solutions" / LAB_ID
    _write(solution / "overlay" / "nodes" / "controlplane" / MANIFEST, _with_line(start, SOLUTION_LINE))
    _write(
        solution / "README.md",
        "--audit-log-maxage=<days> in the kube-apiserver command; kubelet restarts it.\n",
    )
    for name, (line, fails) in WRONG.items():
        fixture = root / "tests" / "labs" / LAB_ID / "wrong" / name
        _write(fixture / "fixture.yaml", yaml.safe_dump({"fails": sorted(fails)}))
        _write(fixture / "overlay" / "nodes" / "controlplane" / MANIFEST, _with_line(start, line))
    for name, (case, args) in CHECK_CASES.items():
        case_dir = root / "tests" / "checks" / "fixtures" / CHECK_ID / name
        params = {"node": "controlplane", "flag": "audit-log-maxage", "value": "7"}
        _write(case_dir / "case.yaml", yaml.safe_dump({"params": params, "live": True, **case}))
        facts = case_dir / "snapshot" / "facts" / "controlplane"
        if args is None:
            _write(facts / ".keep", "")
        else:
            _write(facts / "apiserver-args.json", json.dumps(args))
    return root / "labs"
