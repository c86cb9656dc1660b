"""Small wording helpers shared by checks, reporters and the CLI (no imports: any layer may use them)."""

from __future__ import annotations


def plural(count: float, singular: str, plural_form: str | None = None) -> str:
    """``1 point``, ``2 points``, ``1.5 points``, ``0 replicas``: the count with the noun that agrees with it."""
    word = singular if count == 1 else (plural_form or singular + "s")
    return f"{count:g} {word}"
