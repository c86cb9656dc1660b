"""Small wording helpers shared by checks, reporters and the CLI (no imports: any layer may use them)."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# C0 controls but tab and newline, DEL and C1: what makes a terminal move, recolour or retitle, and what XML
# 1.0 cannot hold (NUL, ESC, BEL, ...). Learners' files reach reasons and evidence through their values.
# Compiled on first use: re (with enum) is ~8 ms of a command's start, and `cks audit query` may not need it.
_CONTROL_CHARS = r"[\x00-\x08\x0b-\x1f\x7f-\x9f]"
_control: Any = None


def plural(count: float, singular: str, plural_form: str | None = None) -> str:
    """``1 point``, ``2 points``, ``1.5 points``, ``0 replicas``: the count with the noun that agrees with
    it."""
    word = singular if count == 1 else (plural_form or singular + "s")
    return f"{count:g} {word}"


def printable(text: str) -> str:
    """``text`` with control characters shown as ``\\xNN``: a value from a learner's file never drives the
    reader's terminal (escape sequences, carriage returns) nor breaks a JUnit XML report."""
    global _control
    if _control is None:
        import re

        _control = re.compile(_CONTROL_CHARS)
    return _control.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
