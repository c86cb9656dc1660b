"""Labs as data: ``labs/lab<N>-<slug>/lab.yaml`` validated into a :class:`Lab`.

An instructor who writes a bad lab.yaml gets ``LabError`` naming the file, the key and what is allowed.

Labs come from the kit's own folder (``labs/`` of a checkout, ``grader/_labs`` installed, or
``$CKS_LABS_DIR`` instead) and, beside them, from the folders listed in ``$CKS_LABS_PATH`` (separated like
``$PATH``): lab collections laid out like the kit's checkout (``<collection>/labs/lab<N>-<slug>/``, with
``<collection>/solutions/`` and ``<collection>/tests/labs/`` for the self-test). A lab folder may carry its
own checks in ``checks/*.py``, registered when the lab is loaded (grader.checks.load_lab_checks).
"""

from __future__ import annotations

import hashlib
import inspect
import os
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from grader import safeyaml

LAB_ID = re.compile(r"^lab\d+$")
TASK_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
LABS_PATH_ENV = "CKS_LABS_PATH"
CHECK_ID = re.compile(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")
# What each hint tier gives, in the order `cks hint` hands them out.
HINT_TIERS = ("a nudge toward the concept", "where to look", "the shape of the answer")


class LabError(ValueError):
    """A lab definition is wrong or a lab does not exist; ``str()`` says where and what is allowed."""


@dataclass(frozen=True)
class Task:
    id: str
    title: str
    points: float
    check: str
    params: dict[str, Any]
    hints: tuple[str, ...]  # tiers 1..3; "" for a tier a lab does not give (an old single `hint` is tier 3)
    live: bool = False
    # tasks that must pass for this one to mean anything (e.g. "the policy loads"); see grader.runner
    requires: tuple[str, ...] = ()

    @property
    def hint(self) -> str:
        """The last tier, the shape of the answer (what `grade --hints` prints)."""
        return self.hints[-1]

    @property
    def hint_tiers(self) -> list[int]:
        """The tiers this task has, 1-based."""
        return [i + 1 for i, text in enumerate(self.hints) if text]


@dataclass(frozen=True)
class FileSpec:
    node: str
    path: str


@dataclass(frozen=True)
class Collect:
    """What a live collector must fetch for this lab (the workspace already holds it)."""

    files: tuple[FileSpec, ...] = ()
    dirs: tuple[FileSpec, ...] = ()
    kinds: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()
    facts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Lab:
    id: str
    dir: Path
    version: int
    title: str
    summary: str
    topics: tuple[str, ...]
    minutes: int
    nodes: tuple[str, ...]
    tasks: tuple[Task, ...]
    collect: Collect
    generator: str | None = None
    variables: dict[str, Any] = field(default_factory=dict)

    @property
    def number(self) -> int:
        return int(self.id[3:])

    @property
    def start_dir(self) -> Path:
        return self.dir / "start"

    @property
    def readme(self) -> Path:
        return self.dir / "README.md"

    @property
    def max_points(self) -> float:
        return sum(t.points for t in self.tasks)

    def task(self, task_id: str) -> Task:
        for t in self.tasks:
            if t.id == task_id:
                return t
        raise LabError(
            f"{self.id} has no task {task_id!r}; its tasks are {', '.join(t.id for t in self.tasks)}"
        )

    def fingerprint(self) -> str:
        """Hash of lab.yaml and the starting state, to tell a workspace made from another lab version."""
        h = hashlib.sha256((self.dir / "lab.yaml").read_bytes())
        if self.start_dir.is_dir():
            for p in sorted(self.start_dir.rglob("*")):
                if p.is_file():
                    h.update(p.relative_to(self.start_dir).as_posix().encode())
                    h.update(p.read_bytes())
        return h.hexdigest()[:16]


def labs_root() -> Path:
    """labs/ of a source checkout, or the copy that ships inside the installed package."""
    env = os.environ.get("CKS_LABS_DIR")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    packaged = here / "_labs"
    if packaged.is_dir():
        return packaged
    return here.parent / "labs"


def extra_lab_roots() -> list[Path]:
    """The folders of ``$CKS_LABS_PATH``, in order: each holds lab folders, beside the kit's own labs."""
    raw = os.environ.get(LABS_PATH_ENV, "")
    return [Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip()]


def collection_root(lab: Lab) -> Path | None:
    """For a lab found through ``$CKS_LABS_PATH``, its collection (the folder above the listed labs folder,
    holding its ``solutions/`` and ``tests/labs/``); None for the kit's own labs (see :func:`repo_root`)."""
    here = lab.dir.resolve().parent
    for root in extra_lab_roots():
        if root.resolve() == here:
            return here.parent
    return None


def repo_root() -> Path | None:
    """The source checkout (for solutions/ and tests/labs/), or None in a learner's install: --source,
    $CKS_SOURCE, the current directory and its parents, then beside the package (grader.instructor.source)."""
    from grader.instructor.source import current

    return current()


def lab_dirs(root: Path | None = None) -> dict[str, Path]:
    """lab id -> folder: the labs in ``root``, or (no root) the kit's labs and those of ``$CKS_LABS_PATH``.
    A lab id found in two folders is a ``LabError`` naming both (which one is graded is never a guess)."""
    out: dict[str, Path] = {}
    for folder in [root] if root else [labs_root(), *extra_lab_roots()]:
        for lab_id, d in _labs_in(folder).items():
            if lab_id in out:
                raise LabError(
                    f"lab id {lab_id} is defined twice: {out[lab_id]} and {d}; "
                    f"give one of them another number (${LABS_PATH_ENV} adds labs, it does not replace them)"
                )
            out[lab_id] = d
    return dict(sorted(out.items(), key=lambda kv: int(kv[0][3:])))


def _labs_in(root: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    if not root.is_dir():
        return out
    for d in root.iterdir():
        m = re.match(r"^(lab\d+)(?:-[a-z0-9-]+)?$", d.name)
        if m and (d / "lab.yaml").is_file():
            out[m.group(1)] = d
    return out


def all_labs(root: Path | None = None) -> list[Lab]:
    return [load_lab_dir(d) for d in lab_dirs(root).values()]


def get_lab(lab_id: str, root: Path | None = None) -> Lab:
    lab_id = lab_id.strip().lower()
    if lab_id.isdigit():
        lab_id = f"lab{lab_id}"
    dirs = lab_dirs(root)
    if lab_id not in dirs:
        known = ", ".join(dirs) or "none found"
        raise LabError(f"no lab {lab_id!r}; available labs: {known} (see `cks list`)")
    return load_lab_dir(dirs[lab_id])


@cache
def load_lab_dir(d: Path) -> Lab:
    path = d / "lab.yaml"
    try:
        data = safeyaml.load_one(path.read_bytes())
    except OSError as exc:
        raise LabError(f"{path}: cannot be read: {exc.strerror}") from None
    except safeyaml.YamlProblem as exc:
        raise LabError(f"{path}: {exc}") from None
    _register_lab_checks(d)  # before parsing: its tasks may name them
    return parse_lab(data, d, str(path))


def _register_lab_checks(d: Path) -> None:
    from grader.checks import ExtraCheckError, load_lab_checks

    try:
        load_lab_checks(d)
    except ExtraCheckError as exc:
        raise LabError(f"{d / 'checks'}: {exc}") from None


# ---- validation -----------------------------------------------------------------------------------

_LAB_KEYS = {
    "id",
    "version",
    "title",
    "summary",
    "topics",
    "minutes",
    "nodes",
    "tasks",
    "collect",
    "generator",
    "variables",
}
_TASK_KEYS = {"id", "title", "points", "check", "params", "hints", "hint", "live", "requires"}
_COLLECT_KEYS = {"files", "dirs", "kinds", "namespaces", "facts"}


def _req(data: dict[str, Any], key: str, typ: type | tuple[type, ...], where: str, what: str) -> Any:
    if key not in data:
        raise LabError(f"{where}: missing key '{key}' ({what})")
    val = data[key]
    if not isinstance(val, typ) or isinstance(val, bool) and typ in (int, float, (int, float)):
        raise LabError(f"{where}: key '{key}' must be {what}, got {val!r}")
    return val


def _unknown(data: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(data) - allowed)
    if extra:
        raise LabError(f"{where}: unknown key '{extra[0]}'; allowed keys: {', '.join(sorted(allowed))}")


def parse_lab(data: Any, d: Path, where: str) -> Lab:
    if not isinstance(data, dict):
        raise LabError(f"{where}: must be a mapping with keys id, title, tasks, ...")
    _unknown(data, _LAB_KEYS, where)
    lab_id = _parse_id(data, d, where)
    version = _req(data, "version", int, where, "an integer that grows when grading changes")
    title = _req(data, "title", str, where, "a short title")
    summary = data.get("summary", "")
    topics = data.get("topics", [])
    if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
        raise LabError(f"{where}: key 'topics' must be a list of strings")
    minutes = _req(data, "minutes", int, where, "the time estimate in minutes")
    nodes = data.get("nodes", ["controlplane"])
    if not isinstance(nodes, list) or not all(isinstance(n, str) and n for n in nodes):
        raise LabError(f"{where}: key 'nodes' must be a list of node names")
    tasks = _parse_tasks(_req(data, "tasks", list, where, "a list of tasks"), where)
    collect = _parse_collect(data.get("collect", {}) or {}, f"{where}: collect")
    gen = data.get("generator")
    if gen is not None and (not isinstance(gen, str) or ":" not in gen):
        raise LabError(f"{where}: key 'generator' must be 'module:function'")
    variables = data.get("variables", {}) or {}
    if not isinstance(variables, dict):
        raise LabError(f"{where}: key 'variables' must be a mapping")
    return Lab(
        lab_id,
        d,
        version,
        title,
        str(summary).strip(),
        tuple(topics),
        minutes,
        tuple(nodes),
        tasks,
        collect,
        gen,
        variables,
    )


def _parse_id(data: dict[str, Any], d: Path, where: str) -> str:
    """``id: lab<N>``, matching the lab's folder name (``lab<N>`` or ``lab<N>-<slug>``)."""
    lab_id = _req(data, "id", str, where, "'lab<N>', e.g. lab1")
    if not LAB_ID.match(lab_id):
        raise LabError(f"{where}: key 'id' must look like 'lab<N>', got {lab_id!r}")
    if not d.name.startswith(lab_id + "-") and d.name != lab_id:
        raise LabError(f"{where}: id {lab_id!r} does not match the folder name {d.name!r}")
    return lab_id


def _parse_tasks(raw_tasks: list[Any], where: str) -> tuple[Task, ...]:
    if not raw_tasks:
        raise LabError(f"{where}: key 'tasks' must list at least one task")
    all_ids = [r.get("id") for r in raw_tasks if isinstance(r, dict)]
    tasks: list[Task] = []
    for i, raw in enumerate(raw_tasks):
        task = _parse_task(raw, f"{where}: tasks[{i}]", [t.id for t in tasks], all_ids)
        tasks.append(task)
    return tuple(tasks)


def _parse_task(raw: Any, tw: str, earlier: list[str], all_ids: list[Any]) -> Task:
    """One entry of ``tasks``; ``earlier`` are the ids of the tasks listed before it."""
    if not isinstance(raw, dict):
        raise LabError(f"{tw}: must be a mapping with id, title, points, check, hints")
    _unknown(raw, _TASK_KEYS, tw)
    tid = _req(raw, "id", str, tw, "a short id such as t1")
    if not TASK_ID.match(tid):
        raise LabError(f"{tw}: key 'id' must be lower-case letters, digits, '-' or '_', got {tid!r}")
    if tid in earlier:
        raise LabError(f"{tw}: task id {tid!r} is used twice")
    points = _req(raw, "points", (int, float), tw, "a positive number")
    if points <= 0:
        raise LabError(f"{tw}: key 'points' must be a positive number, got {points!r}")
    check_id = _req(raw, "check", str, tw, "a check id '<module>.<name>', e.g. audit_policy.probes")
    if not CHECK_ID.match(check_id):
        raise LabError(f"{tw}: key 'check' must look like '<module>.<name>', got {check_id!r}")
    params = raw.get("params", {}) or {}
    if not isinstance(params, dict):
        raise LabError(f"{tw}: key 'params' must be a mapping of the check's parameters")
    _validate_check(check_id, params, tw)
    live = raw.get("live", False)
    if not isinstance(live, bool):
        raise LabError(f"{tw}: key 'live' must be true or false")
    requires = _parse_requires(raw.get("requires", []), tid, earlier, all_ids, tw)
    title = _req(raw, "title", str, tw, "a short title")
    return Task(tid, title, points, check_id, params, _parse_hints(raw, tw), live, requires)


def _parse_requires(
    raw: Any, tid: str, earlier: list[str], all_ids: list[Any], where: str
) -> tuple[str, ...]:
    """``requires: [t1]``: ids of tasks listed before this one (so the order of grading is the file's
    order)."""
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(r, str) for r in raw):
        raise LabError(f"{where}: key 'requires' must be a list of task ids, e.g. [t1]")
    for req in raw:
        if req == tid:
            raise LabError(f"{where}: task {tid!r} cannot require itself")
        if req not in all_ids:
            raise LabError(
                f"{where}: requires {req!r}, which is not a task of this lab; its tasks are "
                f"{', '.join(str(i) for i in all_ids)}"
            )
        if req not in earlier:
            raise LabError(f"{where}: requires {req!r}, which is listed after it; list a required task first")
    if len(set(raw)) != len(raw):
        raise LabError(f"{where}: key 'requires' names a task twice")
    return tuple(raw)


def _parse_hints(raw: dict[str, Any], where: str) -> tuple[str, ...]:
    """``hints: [nudge, where to look, shape of the answer]``; the older ``hint: TEXT`` is tier 3 alone."""
    what = "a list of three hints: " + ", ".join(f"{i + 1} {t}" for i, t in enumerate(HINT_TIERS))
    if "hints" in raw and "hint" in raw:
        raise LabError(f"{where}: give either 'hints' (three tiers) or the older 'hint', not both")
    if "hint" in raw:
        text = raw["hint"]
        if not isinstance(text, str) or not text.strip():
            raise LabError(f"{where}: key 'hint' must be a non-empty string (or use 'hints': {what})")
        return ("", "", text.strip())
    tiers = _req(raw, "hints", list, where, what)
    if len(tiers) != len(HINT_TIERS) or not all(isinstance(t, str) and t.strip() for t in tiers):
        raise LabError(
            f"{where}: key 'hints' must be {what}; got {len(tiers)} item(s)"
            if len(tiers) != len(HINT_TIERS)
            else f"{where}: key 'hints' must be {what}, each a non-empty string"
        )
    return tuple(t.strip() for t in tiers)


def _parse_collect(raw: Any, where: str) -> Collect:
    if not isinstance(raw, dict):
        raise LabError(f"{where}: must be a mapping with files, dirs, kinds, namespaces, facts")
    _unknown(raw, _COLLECT_KEYS, where)

    def specs(key: str) -> tuple[FileSpec, ...]:
        out = []
        for i, item in enumerate(raw.get(key, []) or []):
            if not isinstance(item, dict) or not isinstance(item.get("path"), str):
                raise LabError(f"{where}.{key}[{i}]: must be a mapping with node and path")
            out.append(FileSpec(str(item.get("node", "controlplane")), item["path"]))
        return tuple(out)

    def strs(key: str) -> tuple[str, ...]:
        val = raw.get(key, []) or []
        if not isinstance(val, list) or not all(isinstance(v, str) for v in val):
            raise LabError(f"{where}.{key}: must be a list of strings")
        return tuple(val)

    return Collect(specs("files"), specs("dirs"), strs("kinds"), strs("namespaces"), strs("facts"))


def _validate_check(check_id: str, params: dict[str, Any], where: str) -> None:
    from grader.checks import CheckNotFound, get_check

    try:
        fn = get_check(check_id)
    except CheckNotFound as exc:
        raise LabError(f"{where}: key 'check': {exc}") from None
    sig = inspect.signature(fn)
    accepted = [
        p
        for p in list(sig.parameters.values())[1:]
        if p.kind is p.KEYWORD_ONLY or p.kind is p.POSITIONAL_OR_KEYWORD
    ]
    names = {p.name for p in accepted}
    if not any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        for key in params:
            if key not in names:
                raise LabError(
                    f"{where}: params: check {check_id} takes no parameter {key!r}; "
                    f"it takes {', '.join(sorted(names)) or 'none'}"
                )
    for p in accepted:
        if p.default is p.empty and p.name not in params:
            raise LabError(f"{where}: params: check {check_id} needs parameter {p.name!r}")
