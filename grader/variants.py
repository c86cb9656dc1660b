"""Per-learner variants: values that carry the answer are drawn from a seed.

lab.yaml ``variables`` maps a name to ``{default: V, choices: [...]}``. Without a seed every variable takes
its default; with a seed each takes a choice picked by a hash of (lab, seed, name), so the same seed always
gives the same lab. ``{{ name }}`` in task params and in text files of the starting state is replaced.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

_PLACEHOLDER = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")


def pick(lab_id: str, seed: str | None, variables: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, spec in variables.items():
        spec = spec if isinstance(spec, dict) else {"default": spec}
        choices = spec.get("choices") or [spec.get("default")]
        if seed is None:
            out[name] = spec.get("default", choices[0])
        else:
            digest = hashlib.sha256(f"{lab_id}\0{seed}\0{name}".encode()).digest()
            out[name] = choices[int.from_bytes(digest[:8], "big") % len(choices)]
    return out


def render_text(text: str, values: dict[str, Any]) -> str:
    if not values or "{{" not in text:
        return text
    return _PLACEHOLDER.sub(lambda m: str(values.get(m.group(1), m.group(0))), text)


def render(obj: Any, values: dict[str, Any]) -> Any:
    """Substitute placeholders through params; a param that is exactly one placeholder keeps the value's type."""
    if not values:
        return obj
    if isinstance(obj, str):
        m = _PLACEHOLDER.fullmatch(obj.strip())
        if m and m.group(1) in values:
            return values[m.group(1)]
        return render_text(obj, values)
    if isinstance(obj, list):
        return [render(x, values) for x in obj]
    if isinstance(obj, dict):
        return {render_text(str(k), values): render(v, values) for k, v in obj.items()}
    return obj


def values_for(lab: Any, seed: str | None) -> dict[str, Any]:
    """The variant's values: picked variables, plus values a lab's generator derives from the seed.

    A generator module may define ``derive(seed, values) -> dict`` (e.g. lab7 derives which Secrets the
    intruder read from the seed); its result is merged in, so checks and solutions see the same answers
    without the answers ever being written into the learner's workspace.
    """
    values = pick(lab.id, seed, lab.variables)
    if lab.generator:
        import importlib

        module = importlib.import_module(lab.generator.split(":", 1)[0])
        derive = getattr(module, "derive", None)
        if derive is not None:
            values.update(derive(seed, dict(values)))
    return values
