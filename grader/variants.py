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


_NAME_PLACEHOLDER = re.compile(r"__([A-Za-z][A-Za-z0-9_]*?)__")


def render_path(rel: str, values: dict[str, Any]) -> str:
    """A path of a lab tree (start, solution overlay, fixture) with its placeholders replaced by the
    variant's values. File names use the plain ``__var__`` form (``role-__sa__.yaml``): no spaces or braces,
    which break globbing, ``xargs`` and editors; text inside files keeps ``{{ var }}``. Names of no variable
    (``__init__.py``) stay; ``{{ var }}`` in a name is still read, for collections written before."""
    if not values:
        return rel
    rel = _NAME_PLACEHOLDER.sub(lambda m: str(values[m[1]]) if m[1] in values else m[0], rel)
    return render_text(rel, values)


def render(obj: Any, values: dict[str, Any]) -> Any:
    """Substitute placeholders through params; a param that is exactly one placeholder keeps the value's
    type."""
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


# ---- answers to "find" tasks ---------------------------------------------------------------------------
#
# Some tasks ask the learner to find something (lab7's intruder and the Secrets it read, lab4's and lab6's
# offenders, lab8's question 6). Checks never compare against those answers directly; they go through
# ``answers(ctx)``:
#
#   answers(ctx).matches(name, candidate, plain)      is the learner's candidate the answer?
#   answers(ctx).select(name, candidates, plain)      which of these candidates (all visible in the lab) are
#   answers(ctx).pick(name, candidates, plain)        the one candidate that is the answer (or None)
#
# ``plain`` is how the full kit computes the answer (a value, or a function called only when needed). In a
# learner's course bundle (`cks dist --roster`) the package instead carries ``_answers.json``: salted
# SHA-256 digests of the answers for that learner's seed, recorded when the bundle was built, and the
# lab's variables pinned to that learner's values with the answer-carrying ones hidden. The checks then
# compare digests; nothing in the bundle holds or computes the plain answer. What this can and cannot hide
# is in docs/instructors.md ("What offline grading can hide").

ANSWER_FILE = "_answers.json"
COURSE_FILE = "_course.json"
HIDDEN = "(hidden: find it)"
# variables whose value is itself an answer to find: pinned as HIDDEN in a course bundle
ANSWER_VARIABLES: dict[str, tuple[str, ...]] = {
    "lab4": ("shell_app", "shadow_app", "pkg_app"),  # the offending Deployments' names
    "lab7": ("sa",),
    "lab8": ("inc_sa",),
}


def _package_file(name: str) -> Any:
    from pathlib import Path

    return Path(__file__).resolve().parent / name


def _load_json(name: str) -> dict[str, Any] | None:
    import json

    path = _package_file(name)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def course() -> dict[str, Any]:
    """The course bundle's baked-in learner and seed ({} in the full kit)."""
    return _load_json(COURSE_FILE) or {}


def default_seed() -> str | None:
    seed = course().get("seed")
    return str(seed) if seed else None


def digest(salt: str, lab_id: str, name: str, value: str) -> str:
    return hashlib.sha256(f"{salt}\0{lab_id}\0{name}\0{value}".encode()).hexdigest()


class Answers:
    """The plain answers (full kit): ``plain`` is the truth. A subclass compares digests instead."""

    digests = False

    def __init__(self, lab_id: str) -> None:
        self.lab_id = lab_id

    @staticmethod
    def _plain(plain: Any) -> Any:
        return plain() if callable(plain) else plain

    def matches(self, name: str, candidate: str, plain: Any) -> bool:
        return candidate == self._plain(plain)

    def select(self, name: str, candidates: Any, plain: Any) -> set[str]:
        return {str(x) for x in self._plain(plain)}  # candidates matter only when comparing digests

    def pick(self, name: str, candidates: Any, plain: Any) -> str | None:
        value = self._plain(plain)
        return None if value is None else str(value)


class Recording(Answers):
    """The full kit's answers, remembered as they are used (``cks dist`` turns them into digests)."""

    def __init__(self, lab_id: str) -> None:
        super().__init__(lab_id)
        self.seen: dict[str, set[str]] = {}

    def _note(self, name: str, values: Any) -> None:
        self.seen.setdefault(name, set()).update(str(v) for v in values)

    def matches(self, name: str, candidate: str, plain: Any) -> bool:
        value = self._plain(plain)
        self._note(name, [value])
        return candidate == value

    def select(self, name: str, candidates: Any, plain: Any) -> set[str]:
        truth = {str(x) for x in self._plain(plain)}
        self._note(name, truth)
        return truth

    def pick(self, name: str, candidates: Any, plain: Any) -> str | None:
        value = self._plain(plain)
        if value is not None:
            self._note(name, [value])
        return None if value is None else str(value)


class DigestAnswers(Answers):
    """A course bundle's answers: salted digests only. ``plain`` is never called."""

    digests = True

    def __init__(self, lab_id: str, salt: str, table: dict[str, list[str]]) -> None:
        super().__init__(lab_id)
        self.salt = salt
        self.table = {k: set(v) for k, v in table.items() if isinstance(v, list)}

    def _is(self, name: str, value: str) -> bool:
        return digest(self.salt, self.lab_id, name, str(value)) in self.table.get(name, set())

    def matches(self, name: str, candidate: str, plain: Any) -> bool:
        return self._is(name, candidate)

    def select(self, name: str, candidates: Any, plain: Any) -> set[str]:
        return {str(c) for c in candidates or () if self._is(name, str(c))}

    def pick(self, name: str, candidates: Any, plain: Any) -> str | None:
        hits = sorted(str(c) for c in candidates or () if self._is(name, str(c)))
        return hits[0] if hits else None


_RECORDER: Recording | None = None


def answers(ctx: Any) -> Answers:
    """The answers a check compares against, for ``ctx.lab`` (see the comment above)."""
    if _RECORDER is not None and _RECORDER.lab_id == ctx.lab.id:
        return _RECORDER
    shipped = _load_json(ANSWER_FILE)
    if shipped is not None:
        lab = (shipped.get("labs") or {}).get(ctx.lab.id)
        if isinstance(lab, dict):
            return DigestAnswers(ctx.lab.id, str(shipped.get("salt", "")), lab)
    return Answers(ctx.lab.id)


def record_answers(lab: Any, run: Any) -> dict[str, set[str]]:
    """Run ``run()`` (grading the lab's states) with a recorder in place; the answers the checks used."""
    global _RECORDER
    rec = Recording(lab.id)
    _RECORDER = rec
    try:
        run()
    finally:
        _RECORDER = None
    return rec.seen


def object_names(snap: Any, kind: str, namespace: str | None = None) -> list[str]:
    """Names of the objects of ``kind`` (candidates for ``select``/``pick``)."""
    return [
        str((o.get("metadata") or {}).get("name"))
        for o in snap.objects(kind, namespace)
        if isinstance(o, dict) and isinstance(o.get("metadata"), dict)
    ]


def subject_names(snap: Any, namespace: str, kind: str = "ServiceAccount") -> list[str]:
    """ServiceAccounts in ``namespace``: the objects and every binding subject that names one."""
    names = set(object_names(snap, kind, namespace))
    for binding_kind in ("RoleBinding", "ClusterRoleBinding"):
        for b in snap.objects(binding_kind):
            for sub in b.get("subjects") or [] if isinstance(b, dict) else []:
                if (
                    isinstance(sub, dict)
                    and sub.get("kind") == kind
                    and sub.get("namespace", namespace) == namespace
                ):
                    names.add(str(sub.get("name")))
    return sorted(names)
