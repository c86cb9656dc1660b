"""The check registry: one small function per check, with a stable id ``<module>.<name>``.

A check is a pure function ``fn(ctx: CheckContext, **params) -> Outcome``: it reads only the snapshot in
``ctx`` and never does I/O of its own. ``@check("audit_policy.probes")`` in ``grader/checks/audit_policy.py``
registers it; lab.yaml names it by id and the module is imported on first use, so start-up stays fast.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
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
    ``probe``: ``write`` (touch in the task's ``must_fail``/``must_succeed`` dirs inside the lab's pod, into the
    fact named by the ``fact`` param) or ``falco-trigger`` (a command in the lab's pod, then the node's Falco
    alerts, into fact ``probe-<task id>``)."""

    node_facts: tuple[str, ...] = ()
    falco_rules_param: str | None = None
    probe: str | None = None


NO_NEEDS = Needs()


class CheckNotFound(LookupError):
    pass


def check(check_id: str, *, needs: Needs = NO_NEEDS) -> Callable[[CheckFn], CheckFn]:
    def register(fn: CheckFn) -> CheckFn:
        if check_id in _REGISTRY and _REGISTRY[check_id] is not fn:
            raise RuntimeError(f"check id {check_id} registered twice")
        _REGISTRY[check_id] = fn
        fn.check_id = check_id  # type: ignore[attr-defined]
        fn.needs = needs  # type: ignore[attr-defined]
        return fn

    return register


def needs_of(check_id: str) -> Needs:
    """What the live collector must gather for ``check_id`` (nothing for an unknown id: the runner says so)."""
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
                raise CheckNotFound(f"no check module {module!r} (grader/checks/{module}.py)") from None
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
