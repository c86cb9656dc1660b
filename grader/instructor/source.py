"""Find the kit's source checkout for instructor commands (selftest, solve, dist).

A regular ``pip install .`` puts the package in site-packages, far from ``solutions/`` and ``tests/labs/``,
so the checkout is looked for where the instructor is, in this order: ``--source DIR``, ``$CKS_SOURCE``,
the current directory and its parents, and last the folder beside the imported package (an editable install).
A checkout is a folder with ``pyproject.toml`` naming the project ``cks-kit``, ``labs/`` and ``solutions/``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

ENV = "CKS_SOURCE"
_NAME = re.compile(r'^\s*name\s*=\s*["\']cks-kit["\']\s*$', re.M)


class SourceNotFound(RuntimeError):
    """No checkout was found; ``str()`` lists every place looked at."""


@dataclass(frozen=True)
class Looked:
    where: str
    why: str


def problem(path: Path) -> str | None:
    """Why ``path`` is not a source checkout of the kit, or None when it is one."""
    pp = path / "pyproject.toml"
    if not pp.is_file():
        return "no pyproject.toml"
    try:
        text = pp.read_text(encoding="utf-8", errors="replace")[:65536]
    except OSError as exc:
        return f"pyproject.toml unreadable ({exc.strerror})"
    if not _NAME.search(text):
        return 'pyproject.toml does not name the project "cks-kit"'
    for sub in ("labs", "solutions"):
        if not (path / sub).is_dir():
            return f"no {sub}/ folder"
    return None


def find(explicit: str | Path | None = None, cwd: Path | None = None) -> Path:
    looked: list[Looked] = []
    if explicit:
        p = Path(explicit).expanduser().resolve()
        why = problem(p)
        if why is None:
            return p
        raise SourceNotFound(f"--source {explicit}: not a source checkout of the kit ({why})")
    env = os.environ.get(ENV)
    if env:
        p = Path(env).expanduser().resolve()
        why = problem(p)
        if why is None:
            return p
        raise SourceNotFound(f"${ENV}={env}: not a source checkout of the kit ({why})")
    here = (cwd or Path.cwd()).resolve()
    for d in (here, *here.parents):
        why = problem(d)
        if why is None:
            return d
        looked.append(Looked(str(d), why))
    beside = Path(__file__).resolve().parent.parent.parent
    why = problem(beside)
    if why is None:
        return beside
    looked.append(Looked(f"{beside} (beside the installed package)", why))
    shown = "; ".join(f"{lk.where}: {lk.why}" for lk in looked[:6])
    more = f"; and {len(looked) - 6} more" if len(looked) > 6 else ""
    raise SourceNotFound(
        'this command needs a source checkout of the kit (a folder with pyproject.toml naming "cks-kit", '
        f"labs/ and solutions/). Looked at --source (not given), ${ENV} (not set), {here} and its parents "
        f"and beside the installed package: {shown}{more}. Run it inside the checkout, or pass --source DIR "
        f"or set {ENV}=DIR."
    )


def activate(explicit: str | Path | None = None) -> Path:
    """Find the checkout and make the rest of the process use it: its solutions/, tests/labs/ and its labs/
    (so the labs graded are the ones the solutions were written for, not an older installed copy)."""
    root = find(explicit)
    if explicit:
        os.environ[ENV] = str(root)  # later look-ups (solutions/, tests/labs/) find the same checkout
    from grader import labs

    if "CKS_LABS_DIR" not in os.environ and labs.labs_root().resolve() != (root / "labs").resolve():
        os.environ["CKS_LABS_DIR"] = str(root / "labs")  # an installed copy of the labs: use the checkout's

    for name in ("get_lab", "load_lab_dir", "lab_dirs", "all_labs"):
        clear = getattr(getattr(labs, name, None), "cache_clear", None)
        if clear:
            clear()
    return root


def current() -> Path | None:
    """The checkout if one can be found (for labs.repo_root), else None."""
    try:
        return find()
    except SourceNotFound:
        return None
