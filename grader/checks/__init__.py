"""The check registry: one small function per check, with a stable id ``<module>.<name>``.

A check is a pure function ``fn(ctx: CheckContext, **params) -> Outcome``: it reads only the snapshot in
``ctx`` and never does I/O of its own. ``@check("audit_policy.probes")`` in ``grader/checks/audit_policy.py``
registers it; lab.yaml names it by id and the module is imported on first use, so start-up stays fast.

A lab folder may carry its own checks in ``checks/*.py`` (:func:`load_lab_checks`, called when the lab is
loaded): authors' code, trusted like the kit's own, registered under ids whose module part is not one of the
kit's check modules. The kit never imports Python from a learner's workspace.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grader.results import Outcome

if TYPE_CHECKING:
    from grader.labs import Lab, Task
    from grader.snapshot import Snapshot

CheckFn = Callable[..., Outcome]
_REGISTRY: dict[str, CheckFn] = {}


@dataclass(frozen=True)
class Needs:
    """What the live collector must gather for a check, beyond the lab's ``collect`` section, so that the
    collector knows no check by name. Node facts and probes are taken on the task's ``node`` param
    (default controlplane).

    ``node_facts``: facts gathered on the node (``apiserver``, ``falco``, ...). ``falco_rules_param``: the
    param naming the rules files ``falco -V`` validates (with the node's default rules first).
    ``probe``: ``write`` (touch in the task's ``must_fail``/``must_succeed`` dirs inside the lab's pod, into
    the fact named by the ``fact`` param) or ``falco-trigger`` (a command in the lab's pod, then the node's
    Falco alerts, into fact ``probe-<task id>``)."""

    node_facts: tuple[str, ...] = ()
    falco_rules_param: str | None = None
    probe: str | None = None


NO_NEEDS = Needs()


class CheckNotFound(LookupError):
    pass


class ExtraCheckError(ValueError):
    """A lab's own check module cannot be used: it does not load, or its ids clash with other checks."""


BUILTIN_DIR = Path(__file__).resolve().parent
# Python of the lab folder being loaded, while it registers its checks (None: the kit's own modules)
_loading: Path | None = None
_EXTRA_MODULES: dict[Path, str] = {}  # lab check file -> the module name it was imported under


def is_builtin_module(module: str) -> bool:
    """``module`` names one of the kit's check modules (``grader/checks/<module>.py``)."""
    return (BUILTIN_DIR / f"{module}.py").is_file()


def check(check_id: str, *, needs: Needs = NO_NEEDS) -> Callable[[CheckFn], CheckFn]:
    def register(fn: CheckFn) -> CheckFn:
        if _loading is not None:
            _refuse_clash(check_id, _loading)
        if check_id in _REGISTRY and _REGISTRY[check_id] is not fn:
            raise RuntimeError(f"check id {check_id} registered twice")
        _REGISTRY[check_id] = fn
        fn.check_id = check_id  # type: ignore[attr-defined]
        fn.needs = needs  # type: ignore[attr-defined]
        return fn

    return register


def _refuse_clash(check_id: str, source: Path) -> None:
    """A lab's check may not take an id of the kit's (nor the name of a kit check module) or another lab's."""
    module = check_id.split(".", 1)[0]
    if is_builtin_module(module):
        raise ExtraCheckError(
            f"{source}: check id {check_id!r} uses the module name {module!r} of the kit's own checks "
            f"(grader/checks/{module}.py); give the lab's checks a module name of their own"
        )
    if check_id in _REGISTRY:
        owner = getattr(_REGISTRY[check_id], "check_source", "the kit")
        raise ExtraCheckError(f"{source}: check id {check_id!r} is already registered by {owner}")


def load_lab_checks(lab_dir: Path) -> list[str]:
    """Import the lab folder's ``checks/*.py`` (each file once per process) and return the check ids they
    registered. Authors' code, trusted as kit code: a folder inside a learner's workspace is refused."""
    folder = lab_dir / "checks"
    if not folder.is_dir():
        return []
    _refuse_workspace(folder)
    ids: list[str] = []
    for path in sorted(p.resolve() for p in folder.glob("*.py") if not p.name.startswith("_")):
        if path not in _EXTRA_MODULES:
            _import_lab_check(path)
        ids += sorted(k for k, fn in _REGISTRY.items() if getattr(fn, "check_source", None) == path)
    return ids


def _refuse_workspace(folder: Path) -> None:
    """Learner content is never executed: no Python from a folder that is, or is inside, a workspace."""
    from grader.snapshot import META_FILE

    here = folder.resolve()
    for d in (here, *here.parents):
        if (d / META_FILE).is_file():
            raise ExtraCheckError(
                f"{folder}: lab checks inside a learner's workspace ({d} has {META_FILE}) are never "
                "imported; keep a lab's checks in its lab folder, outside any workspace"
            )


def _import_lab_check(path: Path) -> None:
    """Import one lab check file under a name of its own; undo its registrations if it fails."""
    global _loading
    tag = hashlib.sha256(str(path).encode()).hexdigest()[
        :8
    ]  # two collections may both have lab9-x/checks/a.py
    name = f"cks_lab_checks_{path.parent.parent.name.replace('-', '_')}_{tag}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ExtraCheckError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    before = set(_REGISTRY)
    sys.modules[name] = module  # dataclasses and typing look their module up while it runs
    _loading = path
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        for added in set(_REGISTRY) - before:
            del _REGISTRY[added]
        sys.modules.pop(name, None)
        if isinstance(exc, ExtraCheckError):
            raise
        raise ExtraCheckError(f"{path}: does not load: {type(exc).__name__}: {exc}") from exc
    finally:
        _loading = None
    for added in set(_REGISTRY) - before:
        _REGISTRY[added].check_source = path  # type: ignore[attr-defined]
    _EXTRA_MODULES[path] = name


def forget_lab_checks(under: Path) -> list[str]:
    """Unregister the lab checks imported from files under ``under`` (a collection a test wrote and removes);
    returns their ids. The kit's own checks are never touched."""
    root = under.resolve()
    gone = [
        cid
        for cid, fn in _REGISTRY.items()
        if getattr(fn, "check_source", None) is not None and fn.check_source.is_relative_to(root)  # type: ignore[attr-defined]
    ]
    for cid in gone:
        del _REGISTRY[cid]
    for path in [p for p in _EXTRA_MODULES if p.is_relative_to(root)]:
        sys.modules.pop(_EXTRA_MODULES.pop(path), None)
    return sorted(gone)


def needs_of(check_id: str) -> Needs:
    """What the live collector must gather for ``check_id`` (nothing for an unknown id: the runner says
    so)."""
    try:
        return getattr(get_check(check_id), "needs", NO_NEEDS)
    except CheckNotFound:
        return NO_NEEDS


def get_check(check_id: str) -> CheckFn:
    if check_id not in _REGISTRY:
        module = check_id.split(".", 1)[0]
        try:
            importlib.import_module(f"grader.checks.{module}")
        except ModuleNotFoundError as exc:
            if exc.name == f"grader.checks.{module}":
                raise CheckNotFound(
                    f"no check module {module!r} (grader/checks/{module}.py, or a lab folder's checks/*.py)"
                ) from None
            raise
    if check_id not in _REGISTRY:
        known = sorted(k for k in _REGISTRY if k.startswith(check_id.split(".")[0] + "."))
        raise CheckNotFound(f"no check {check_id!r}; that module has {', '.join(known) or 'none'}")
    return _REGISTRY[check_id]


@dataclass
class CheckContext:
    """Everything a check may read. ``start`` is the lab's pristine starting state (same seed), built lazily:
    checks compare against it to tell edited from recreated and to know the offenders recorded at start."""

    snap: Snapshot
    lab: Lab
    task: Task
    live: bool = False
    variant: dict[str, Any] = field(default_factory=dict)
    _start_factory: Callable[[], Snapshot] | None = None

    @cached_property
    def start(self) -> Snapshot:
        if self._start_factory is None:
            from grader.snapshot import Snapshot

            return Snapshot(self.lab.start_dir)
        return self._start_factory()
