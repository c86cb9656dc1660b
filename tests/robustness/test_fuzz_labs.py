"""No learner input makes the grader crash.

For every lab, the files a learner edits (node files that differ between start and solution, and the
cluster/ objects) are mutated at random -- structurally (the parsed YAML tree: keys deleted, values of the
wrong type, kind/apiVersion changed, deep nesting, ...) and as raw bytes (truncated, binary, NUL, invalid
UTF-8, tabs, alias bombs, 5,000-level nesting, empty, a directory or a link in place of the file) -- and the
lab is graded. The runner turns an exception inside a check into ``error: internal error in check ...``,
which a learner reads as "could not check" when their answer is merely malformed: that is a grader bug.
The study tools get the same treatment through click's CliRunner: exit code 0/1/2, never a traceback.

Deterministic: every example has its own seed (``<lab>-<n>``), shown in the test id and the failure message,
so a failure replays with ``pytest tests/robustness -k 'lab3 and 17'``.
"""

from __future__ import annotations

import copy
import json
import os
import random
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from grader import safeyaml
from grader.labs import Lab, all_labs
from grader.reporters import FORMATS, render
from grader.results import Status
from grader.runner import grade
from grader.selftest import build
from grader.snapshot import Snapshot

# CKS_FUZZ_EXAMPLES=500 runs a longer campaign (the default keeps the whole file under ~30 s on 2 cores)
EXAMPLES_PER_LAB = int(os.environ.get("CKS_FUZZ_EXAMPLES", "40"))
SLOW_LABS = {"lab7": max(EXAMPLES_PER_LAB * 2 // 5, 1)}  # lab7 streams a 12 MB audit log on every grade
GRADE_SECONDS = 10.0  # a hang guard, not a benchmark: a lab grades in well under a second
MAX_TARGET_BYTES = 256 * 1024  # generated audit logs are never the learner's to edit
LABS = {lab.id: lab for lab in all_labs()}

KINDS = [
    "Pod",
    "Deployment",
    "ReplicaSet",
    "StatefulSet",
    "DaemonSet",
    "Job",
    "CronJob",
    "Namespace",
    "Secret",
    "Role",
    "RoleBinding",
    "ClusterRole",
    "List",
    "PodList",
    "Policy",
    "Frobnicator",
    "",
]
API_VERSIONS = [
    "v1",
    "apps/v1",
    "batch/v1",
    "audit.k8s.io/v1",
    "audit.k8s.io/v1beta1",
    "rbac.authorization.k8s.io/v1",
    "v2",
    "",
    "apps/v1/extra",
]


# ---- tree mutations -----------------------------------------------------------------------------------


def _nested(depth: int, leaf: Any = "x") -> Any:
    value = leaf
    for i in range(depth):
        value = {"k": value} if i % 2 else [value]
    return value


def _odd_value(rng: random.Random) -> Any:
    return rng.choice(
        [
            None,
            "",
            "x",
            "null",
            "true",
            "0",
            "-1",
            "1e999",
            "💥",
            "a:b",
            "[",
            "{{ x }}",
            "*",
            0,
            -1,
            1,
            2**70,
            3.5,
            float("inf"),
            True,
            False,
            [],
            [None],
            [1, "a", None],
            ["x"] * 3,
            [[[]]],
            {},
            {"a": 1},
            {None: "x"},
            {1: 2},
            {"": ""},
            "A" * 100_000,
            " \t\n",
            "line1\nline2",
            _nested(150),
            _nested(190, None),
        ]
    )


def _containers(tree: Any) -> list[tuple[Any, Any]]:
    """Every (container, key/index) slot in the tree, iteratively."""
    slots: list[tuple[Any, Any]] = []
    stack = [tree]
    seen: set[int] = set()
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, dict):
            for k, v in obj.items():
                slots.append((obj, k))
                if isinstance(v, (dict, list)):
                    stack.append(v)
        elif isinstance(obj, list):
            for i, v in enumerate(obj):
                slots.append((obj, i))
                if isinstance(v, (dict, list)):
                    stack.append(v)
    return slots


def mutate_tree(docs: list[Any], rng: random.Random) -> str:
    """Apply one structural mutation in place; return what it did."""
    slots = _containers(docs)
    if not slots:
        docs.append(_odd_value(rng))
        return "append an odd document"
    op = rng.choice(
        [
            "delete",
            "set",
            "set",
            "set",
            "long",
            "deep",
            "dup",
            "list2map",
            "map2list",
            "kind",
            "apiversion",
            "swap",
            "rename",
            "wrap",
            "empty_container",
        ]
    )
    parent, key = rng.choice(slots)
    value = parent[key]
    if op == "delete":
        del parent[key]
    elif op == "set":
        parent[key] = _odd_value(rng)
    elif op == "long":
        parent[key] = "x" * rng.choice([10_000, 300_000])
    elif op == "deep":
        parent[key] = _nested(rng.choice([50, 150, 195]))
    elif op == "dup":
        lists = [(p, k) for p, k in slots if isinstance(p[k], list) and p[k]]
        if lists:
            p, key = rng.choice(lists)
            p[key].extend(copy.deepcopy(p[key]) * rng.choice([1, 2]))
        else:
            parent[key] = [value, value]
    elif op == "list2map":
        lists = [(p, k) for p, k in slots if isinstance(p[k], list)]
        p, key = rng.choice(lists) if lists else (parent, key)
        items = p[key] if isinstance(p[key], list) else [p[key]]
        p[key] = {f"item{i}": v for i, v in enumerate(items)}
    elif op == "map2list":
        maps = [(p, k) for p, k in slots if isinstance(p[k], dict)]
        p, key = rng.choice(maps) if maps else (parent, key)
        p[key] = [list(x) for x in p[key].items()] if isinstance(p[key], dict) else [p[key]]
    elif op in {"kind", "apiversion"}:
        field_name, choices = ("kind", KINDS) if op == "kind" else ("apiVersion", API_VERSIONS)
        owners = [p for p, k in slots if isinstance(p, dict) and k == field_name]
        target = rng.choice(owners) if owners else (parent if isinstance(parent, dict) else {})
        target[field_name] = rng.choice(choices + [None, 1, ["x"], {"a": 1}])
        key = field_name
    elif op == "swap":
        p2, k2 = rng.choice(slots)
        parent[key], p2[k2] = p2[k2], value
        if _reaches_itself(docs):
            parent[key], p2[k2] = value, parent[key]  # swapping a value into its own subtree: undo
    elif op == "rename" and isinstance(parent, dict):
        new_key = rng.choice([None, 1, True, "", "x" * 300, f"{key}_", str(key).upper()])
        parent[new_key] = parent.pop(key)
    elif op == "wrap":
        parent[key] = rng.choice([[value], {"value": value}])
    else:
        parent[key] = {} if isinstance(value, dict) else []
    return f"{op} at {key!r}"[:120]


def _reaches_itself(tree: Any) -> bool:
    seen: set[int] = set()
    stack = [(tree, frozenset())]
    while stack:
        obj, path = stack.pop()
        if not isinstance(obj, (dict, list)):
            continue
        if id(obj) in path:
            return True
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        kids = obj.values() if isinstance(obj, dict) else obj
        stack.extend((k, path | {id(obj)}) for k in kids)
    return False


def dump(docs: list[Any], suffix: str) -> bytes:
    try:
        if suffix == ".json":
            return json.dumps(docs[0] if len(docs) == 1 else docs, default=str).encode()
        return yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=True).encode()
    except RecursionError:  # stacked "deep" mutations: PyYAML's dumper recurses; write the nesting as text
        return b"[" * 5000 + b"]" * 5000


# ---- raw mutations -------------------------------------------------------------------------------------

ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}, *{chr(97 + i)}]\n"
    for i in range(8)
)


def raw_mutation(data: bytes, rng: random.Random) -> tuple[str, bytes | None]:
    """(description, new bytes); None bytes means: special filesystem mutation named in the description."""
    cut = rng.randrange(len(data) + 1) if data else 0
    choices: list[tuple[str, Callable[[], bytes | None]]] = [
        ("truncate", lambda: data[:cut]),
        ("binary", lambda: data[:cut] + bytes(rng.randrange(256) for _ in range(64)) + data[cut:]),
        ("nul", lambda: data[:cut] + b"\x00" + data[cut:]),
        ("invalid-utf8", lambda: data[:cut] + b"\xff\xfe\xc3(" + data[cut:]),
        ("tabs", lambda: data.replace(b"\n  ", b"\n\t", rng.randrange(1, 4))),
        ("alias-bomb", lambda: ALIAS_BOMB.encode()),
        ("alias-bomb-appended", lambda: data + b"\n---\n" + ALIAS_BOMB.encode()),
        ("recursive-alias", lambda: b"a: &a\n  b: *a\n"),
        ("deep-flow-5000", lambda: b"[" * 5000 + b"]" * 5000),
        ("deep-block-5000", lambda: "".join(f"{'  ' * i}k:\n" for i in range(5000)).encode()),
        ("deep-json-5000", lambda: b'{"a":' * 5000 + b"1" + b"}" * 5000),
        ("empty", lambda: b""),
        ("whitespace", lambda: b"  \n\n\t\n"),
        ("doc-separators", lambda: b"---\n---\n...\n"),
        ("scalar", lambda: rng.choice([b"42\n", b"hello\n", b"null\n", b"~\n", b"'x'\n"])),
        ("list-doc", lambda: b"- a\n- 1\n- {b: c}\n"),
        ("bom-crlf", lambda: b"\xef\xbb\xbf" + data.replace(b"\n", b"\r\n")),
        ("cr-only", lambda: data.replace(b"\n", b"\r")),
        ("long-line", lambda: data[:cut] + b"x" * 300_000 + data[cut:]),
        ("many-docs", lambda: b"---\n".join([data] * 5)),
        ("dup-keys", lambda: data + b"\n" + data),
        (
            "garbage-yaml",
            lambda: rng.choice(
                [
                    b"{",
                    b"]",
                    b": :",
                    b"a: b: c",
                    b"- - -\n  x",
                    b"!!python/object:os.system {}",
                    b"%YAML 9.9\n---\na: 1",
                    b"a: !!binary ZZZ",
                    b"? [a, b]\n: c\n",
                    b"a: !!set {x, y}",
                    b"{[1]: 2}",
                    b"a: 2001-12-14t21:59:43.10-05:00",
                ]
            ),
        ),
        ("directory", lambda: None),
        ("symlink-outside", lambda: None),
        ("symlink-loop", lambda: None),
        ("sparse-huge", lambda: None),
        ("fifo", lambda: None),
    ]
    name, make = rng.choice(choices)
    return name, make()


# ---- the learner's files ---------------------------------------------------------------------------------


@dataclass
class LabFiles:
    lab: Lab
    seed: str | None
    start: Path
    solution: Path
    targets: list[str]  # workspace-relative paths


def _files(root: Path) -> dict[str, bytes]:
    out = {}
    for sub in ("nodes", "cluster"):
        for p in (root / sub).rglob("*") if (root / sub).is_dir() else []:
            if p.is_file() and p.stat().st_size <= MAX_TARGET_BYTES:
                out[p.relative_to(root).as_posix()] = p.read_bytes()
    return out


_BUILT: dict[str, LabFiles] = {}


def lab_files(lab_id: str, base: Path) -> LabFiles:
    if lab_id not in _BUILT:
        lab = LABS[lab_id]
        seed = "alpha" if lab.variables else None  # a seeded variant: the checks see rendered params
        start = build(lab, base / lab_id / "start", seed, solution=False)
        solution = build(lab, base / lab_id / "solution", seed, solution=True)
        s_files, o_files = _files(start.root), _files(solution.root)
        changed = {p for p in s_files.keys() | o_files.keys() if s_files.get(p) != o_files.get(p)}
        cluster = {p for p in s_files if p.startswith("cluster/")}
        targets = sorted(changed | cluster)
        assert targets, f"{lab_id}: nothing for a learner to edit?"
        _BUILT[lab_id] = LabFiles(lab, seed, start.root, solution.root, targets)
    return _BUILT[lab_id]


@pytest.fixture(scope="session")
def fuzz_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-labs")


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CKS_DEBUG", raising=False)  # CKS_DEBUG re-raises; we want the runner's verdict


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file() or path.is_fifo():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def _write(path: Path, data: bytes | None, how: str) -> None:
    _remove(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if data is not None:
        path.write_bytes(data)
    elif how == "directory":
        (path / "inner").mkdir(parents=True)
        (path / "inner" / "x.yaml").write_text("kind: Pod\nmetadata: {name: x}\n")
    elif how == "symlink-outside":
        path.symlink_to("/etc/passwd")
    elif how == "symlink-loop":
        path.symlink_to(path.name)
    elif how == "sparse-huge":
        with open(path, "wb") as fh:
            fh.truncate(60 * 1024 * 1024)
    elif how == "fifo":
        os.mkfifo(path)
    else:
        raise AssertionError(how)


@contextmanager
def mutate(files: LabFiles, rng: random.Random) -> Iterator[tuple[Path, list[str]]]:
    """(workspace root, what was done) with the mutations applied; the files are restored afterwards."""
    root = files.solution if rng.random() < 0.75 else files.start
    chosen = rng.sample(files.targets, k=min(len(files.targets), rng.choice([1, 1, 1, 2])))
    saved = {rel: ((root / rel).read_bytes() if (root / rel).is_file() else None) for rel in chosen}
    done: list[str] = []
    try:
        for rel in chosen:
            path = root / rel
            data = saved[rel] if saved[rel] is not None else (files.solution / rel).read_bytes()
            if rng.random() < 0.6:
                try:
                    docs = safeyaml.load_all(data)
                except safeyaml.YamlProblem:
                    docs = [data.decode("utf-8", "replace")]
                docs = [d for d in docs if d is not None] or [None]
                steps = [mutate_tree(docs, rng) for _ in range(rng.choice([1, 1, 2, 3]))]
                _write(path, dump(docs, path.suffix), "tree")
                done.append(f"{rel}: {'; '.join(steps)}")
            else:
                how, new = raw_mutation(data, rng)
                _write(path, new, how)
                done.append(f"{rel}: raw {how}")
        yield root, done
    finally:
        for rel, data in saved.items():
            _remove(root / rel)
            if data is not None:
                (root / rel).write_bytes(data)


# ---- the tests -------------------------------------------------------------------------------------------

CASES = [(lab_id, n) for lab_id in sorted(LABS) for n in range(SLOW_LABS.get(lab_id, EXAMPLES_PER_LAB))]


@pytest.mark.slow  # 300 mutated answers over 8 labs (~11 s): the whole suite runs them
@pytest.mark.parametrize(("lab_id", "n"), CASES, ids=[f"{lab}-{n}" for lab, n in CASES])
def test_grading_mutated_answers_never_crashes(lab_id: str, n: int, fuzz_base: Path) -> None:
    files = lab_files(lab_id, fuzz_base)
    rng = random.Random(f"{lab_id}-{n}")
    with mutate(files, rng) as (root, done):
        began = time.monotonic()
        report = grade(files.lab, Snapshot(root))
        took = time.monotonic() - began
        crashes = [f"{t.id}: {t.message}" for t in report.tasks if "internal error" in t.message]
        assert not crashes, f"{lab_id} example {n} ({'; '.join(done)}) crashed a check:\n" + "\n".join(
            crashes
        )
        assert took < GRADE_SECONDS, f"{lab_id} example {n} ({'; '.join(done)}) took {took:.1f}s to grade"
        assert all(t.status in set(Status) and isinstance(t.message, str) for t in report.tasks)
        for fmt in FORMATS:  # what the learner then reads must render too (a list in evidence, 300 kB text)
            assert render(report, fmt, verbose=True, color=False)


def test_the_fuzzer_exercises_every_lab_and_restores_the_answer(fuzz_base: Path) -> None:
    """The harness itself: every lab has targets, and after a mutation the solution is whole again."""
    for lab_id in sorted(LABS):
        files = lab_files(lab_id, fuzz_base)
        before = _files(files.solution)
        with mutate(files, random.Random(f"restore-{lab_id}")):
            pass
        assert _files(files.solution) == before
        report = grade(files.lab, Snapshot(files.solution))
        assert all(t.status in {Status.PASS, Status.SKIP} for t in report.tasks), lab_id


# ---- the study tools ---------------------------------------------------------------------------------------


def _study_inputs(fuzz_base: Path) -> dict[str, list[bytes]]:
    """Seed inputs per tool family, from the labs' own answers."""
    wanted = {
        "audit-policy": ["audit/policy.yaml", "audit/base-policy.yaml"],
        "falco": ["falco_rules.local.yaml"],
        "manifest": ["manifests/kube-apiserver.yaml"],
        "pods": ["cluster/"],
        "audit-log": ["incident/audit.log"],
    }
    out: dict[str, list[bytes]] = {k: [] for k in wanted}
    for lab_id in sorted(LABS):
        files = lab_files(lab_id, fuzz_base)
        for rel, data in _files(files.solution).items():
            for family, needles in wanted.items():
                if any(n in rel for n in needles):
                    out[family].append(data)
    return out


EVENTS_YAML = b"""\
- evt.type: openat
  evt.dir: "<"
  fd.name: /etc/shadow
  proc.name: cat
  container.id: abc123
  evt.time: 1700000000000000000
"""

CLI_EXAMPLES = int(os.environ.get("CKS_FUZZ_EXAMPLES", "60"))


def _cli_calls(family: str, path: str, other: str) -> list[list[str]]:
    if family == "audit-policy":
        return [
            ["audit", "validate", path],
            ["audit", "validate", "--strict", "-f", "json", path],
            [
                "audit",
                "simulate",
                path,
                "--user",
                "bob",
                "--verb",
                "get",
                "--resource",
                "secrets",
                "-n",
                "prod",
            ],
            ["audit", "simulate", path, "--requests", other],
        ]
    if family == "falco":
        return [
            ["falco", "validate", path],
            ["falco", "validate", "--format", "json", "--no-default", path],
            ["falco", "test", path, "--events", other],
            ["falco", "test", "--events", path],
            ["falco", "explain", "Shadow file read in container", "-r", path],
            ["falco", "explain", "spawned_process", "--no-default", "-r", path],
        ]
    if family == "manifest":
        return [["apiserver", "check", path], ["apiserver", "check", "--format", "json", path]]
    if family == "pods":
        return [["pods", "check", path], ["pods", "check", "-f", "json", "--level", "baseline", path]]
    return [
        ["audit", "query", path],
        ["audit", "query", "-f", "json", "--count-by", "user", path],
        ["audit", "query", "--since", "2024-01-01T00:00:00Z", "-r", "secrets", path],
    ]


def _run_cli(args: list[str]) -> tuple[int, str]:
    from grader.cli import cks

    result = CliRunner().invoke(cks, args, catch_exceptions=True)
    output = result.output + (result.stderr if result.stderr_bytes is not None else "")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        import traceback

        output += "".join(traceback.format_exception(result.exception))
    return result.exit_code, output


def _parse_seed(data: bytes, family: str) -> list[Any]:
    if family == "audit-log":  # JSON lines
        return [json.loads(line) for line in data.splitlines() if line.strip()] or [None]
    try:
        return [d for d in safeyaml.load_all(data) if d is not None] or [None]
    except safeyaml.YamlProblem:
        return [data.decode("utf-8", "replace")]


FAMILIES = ["audit-policy", "falco", "manifest", "pods", "audit-log"]


@pytest.mark.slow  # 4-12 s per family: the fast tier keeps the per-lab grading fuzz
@pytest.mark.parametrize("family", FAMILIES)
def test_study_tools_never_print_a_traceback(family: str, fuzz_base: Path, tmp_path: Path) -> None:
    seeds = _study_inputs(fuzz_base)[family]
    assert seeds, f"no seed inputs for {family}"
    other = tmp_path / "other.yaml"
    other.write_bytes(EVENTS_YAML if family == "falco" else b"- {user: bob, verb: get, resource: secrets}\n")
    failures = []
    for n in range(CLI_EXAMPLES):
        rng = random.Random(f"cli-{family}-{n}")
        data = rng.choice(seeds)
        path = tmp_path / ("input.log" if family == "audit-log" else "input.yaml")
        if rng.random() < 0.5:
            docs = _parse_seed(data, family)
            what = "; ".join(mutate_tree(docs, rng) for _ in range(rng.choice([1, 2, 3])))
            new: bytes | None = dump(docs, ".yaml")
            if family == "audit-log":  # one JSON event per line, as kube-apiserver writes
                new = b"\n".join(json.dumps(d, default=str).encode() for d in docs)
            how = "tree"
        else:
            how, new = raw_mutation(data, rng)
            what = how
        if how in {"fifo"}:
            continue  # a FIFO blocks any reader (as `cat` would); not a file a learner passes by mistake
        _write(path, new, how)
        for args in _cli_calls(family, str(path), str(other)):
            code, output = _run_cli(args)
            allowed = (
                (0, 1, 2, 3) if args[:2] == ["audit", "query"] else (0, 1, 2)
            )  # query: 3 = unreadable LOG
            if code not in allowed or "Traceback" in output:
                failures.append(f"{n} ({what}) {' '.join(args[:2])}: exit {code}\n{output[-1500:]}")
        _remove(path)
    assert not failures, f"{len(failures)} study-tool crashes:\n" + "\n\n".join(failures[:5])
