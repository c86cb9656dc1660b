"""Object identity shared by the checks: an object's UID, and the UID it had when the lab started.

A check that asks "is this still the object the lab started with?" (edited in place, not deleted and
recreated) compares UIDs. In a workspace the start file holds the UID; on a live cluster the API server
picks real UIDs, so the set-up records them (fact ``start-uids``) and the checks read that record."""

from __future__ import annotations

from typing import Any

from grader.checks import CheckContext

START_UIDS_FACT = "start-uids"  # live: {"Kind/namespace/name": uid} recorded when the lab was set up


def uid(obj: dict[str, Any] | None) -> str | None:
    """``metadata.uid`` as text, or None when the object has none (or is not a mapping)."""
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    value = meta.get("uid") if isinstance(meta, dict) else None
    return str(value) if value else None


def start_uid(ctx: CheckContext, obj: dict[str, Any]) -> str | None:
    """The UID the object had when the lab started: the start file's, or on a live cluster the one the
    set-up recorded (fact ``start-uids``), since the API server picks real UIDs."""
    from grader.engines import podsec  # imported where used: the Falco checks need it only here

    kind, ns, name = podsec.identity(obj)
    if ctx.live:
        recorded = _recorded_uids(ctx)
        if isinstance(recorded, dict) and f"{kind}/{ns}/{name}" in recorded:
            return str(recorded[f"{kind}/{ns}/{name}"])
    return uid(obj)


def _recorded_uids(ctx: CheckContext) -> Any:
    cache = ctx.__dict__.setdefault("_start_uids", {})
    if "v" not in cache:
        cache["v"] = ctx.snap.fact("controlplane", START_UIDS_FACT)
    return cache["v"]
