"""The labs' own definitions, setting by setting, for the study tool (`cks pods check --profile`).

A profile lists every value a lab grades, right or wrong, with the lab's verdict, so what the learner
sees is exactly what `grade` reads:

- ``lab5`` (immutable containers; also lab8 Q4): per container ``readOnlyRootFilesystem`` (must be true),
  ``allowPrivilegeEscalation`` by effective value (must be false: unset, privileged or ``SYS_ADMIN`` allow
  it) and each writable mount with its volume source (writable paths must be ``emptyDir``). Nothing about
  the user: lab5's nginx runs as root by design, and ``runAsNonRoot: true`` would stop it.
- ``lab6`` (elevated privileges): per pod ``hostNetwork``/``hostPID``/``hostIPC``; per container
  ``privileged``, ``allowPrivilegeEscalation`` and the effective user (``runAsUser`` container over pod;
  non-root when > 0 or ``runAsNonRoot: true``). No ``readOnlyRootFilesystem``: lab6 does not grade it.

Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from grader.engines.podsec.effective import Setting, effective, mounts
from grader.engines.podsec.model import locate

PROFILES = ("lab5", "lab6")


@dataclass(frozen=True)
class Row:
    path: str  # container path, or the pod spec path
    container: str | None
    field: str
    value: str  # the effective value as the lab reads it
    ok: bool
    message: str  # the lab's words for this value

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "container": self.container,
            "field": self.field,
            "value": self.value,
            "ok": self.ok,
            "message": self.message,
        }


def _ape(s: Setting) -> str:
    if s.source == "implied":
        return f"true (implied by {s.raw})"
    if s.source == "default":
        return "unset (escalation allowed)"
    return s.show()


def profile_rows(obj: Any, profile: str) -> list[Row]:
    """Every graded value of ``obj``'s pod specs under the lab's definition (``profile`` in PROFILES)."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}: choose one of {', '.join(PROFILES)}")
    refs, _ = locate(obj)
    rows: list[Row] = []
    for ref in refs:
        if profile == "lab6":
            for key in ("hostNetwork", "hostPID", "hostIPC"):
                v = ref.spec.get(key)
                ok = v is None or v is False
                rows.append(
                    Row(
                        ref.path,
                        None,
                        key,
                        "unset" if v is None else str(v).lower() if isinstance(v, bool) else repr(v),
                        ok,
                        "not shared with the node"
                        if ok
                        else f"shares the node's {key[4:].lower()} namespace",
                    )
                )
        for c in ref.containers:
            eff = effective(ref, c)
            ape = eff.allow_privilege_escalation
            ape_row = Row(
                c.path,
                c.name,
                "securityContext.allowPrivilegeEscalation",
                _ape(ape),
                ape.value is False,
                "cannot gain privileges"
                if ape.value is False
                else "may gain privileges (only an explicit false "
                "blocks it; privileged or SYS_ADMIN allow it)",
            )
            if profile == "lab5":
                ro = eff.read_only_root_filesystem
                rows.append(
                    Row(
                        c.path,
                        c.name,
                        "securityContext.readOnlyRootFilesystem",
                        ro.show(),
                        ro.value is True,
                        "read-only root filesystem"
                        if ro.value is True
                        else "the root filesystem is writable",
                    )
                )
                rows.append(ape_row)
                for m in mounts(ref, c):
                    if not m.writable:
                        continue
                    ok = m.source == "emptyDir"
                    rows.append(
                        Row(
                            c.path,
                            c.name,
                            f"volumeMounts {m.mount_path}",
                            f"{m.volume} ({m.source})",
                            ok,
                            "writable, throw-away emptyDir"
                            if ok
                            else f"writable {m.source}: only emptyDir volumes are scratch space",
                        )
                    )
                continue
            priv = eff.privileged
            rows.append(
                Row(
                    c.path,
                    c.name,
                    "securityContext.privileged",
                    priv.show(),
                    priv.value is not True and not priv.invalid,
                    "not privileged" if priv.value is not True and not priv.invalid else "privileged",
                )
            )
            rows.append(ape_row)
            root = eff.runs_as_root
            uid, nonroot = eff.run_as_user, eff.run_as_non_root
            origin = " (from the pod)" if uid.source == "pod" else ""
            value = f"runAsUser={uid.show()}{origin}, runAsNonRoot={nonroot.show()}" + (
                " (from the pod)" if nonroot.source == "pod" else ""
            )
            rows.append(
                Row(
                    c.path,
                    c.name,
                    "effective user",
                    value,
                    root is False,
                    "non-root"
                    if root is False
                    else "root (uid 0)"
                    if root
                    else "may run as root: nothing proves non-root (runAsUser > 0 or runAsNonRoot: true)",
                )
            )
    return rows


__all__ = ["PROFILES", "Row", "profile_rows"]
