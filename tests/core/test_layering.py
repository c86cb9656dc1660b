"""The architecture as rules the code keeps (issue 16): the collector, CLI and reporters know no check by
name, and no module reaches into another module's private names."""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GRADER = ROOT / "grader"
CHECKS = GRADER / "checks"
CHECK_DECORATOR = re.compile(r"""@check\(\s*["']([a-z_]+\.[a-z_]+)["']""")


@functools.cache
def _parsed() -> tuple[tuple[Path, ast.Module], ...]:
    """Every module of the kit, parsed once for all the rules below."""
    paths = sorted(p for p in GRADER.rglob("*.py") if "__pycache__" not in p.parts)
    return tuple((p, ast.parse(p.read_text(), str(p))) for p in paths)


def _check_ids() -> set[str]:
    ids: set[str] = set()
    for path in CHECKS.glob("*.py"):
        ids.update(CHECK_DECORATOR.findall(path.read_text()))
    return ids


def test_registry_is_found():
    # the rules below are vacuous if the decorator pattern stops matching
    assert len(_check_ids()) >= 20


def test_no_check_id_named_outside_its_registration():
    """A check id appears in the code only in its own ``@check(...)``: the collector, the CLI and the
    reporters learn what a check needs from its ``Needs``, not by comparing ids."""
    ids = _check_ids()
    offenders = []
    for path, tree in _parsed():
        registered = {
            dec.args[0].value
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef)
            for dec in node.decorator_list
            if isinstance(dec, ast.Call) and dec.args and isinstance(dec.args[0], ast.Constant)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in ids:
                if node.value in registered:
                    continue  # the check's own registration
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
    assert not offenders, "check ids named outside their registration:\n" + "\n".join(offenders)


def test_no_private_name_imported_across_modules():
    """Shared helpers are public in the module where they belong; ``from x import _name`` across modules
    couples one module to another's internals."""
    offenders = []
    for path, tree in _parsed():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    private = alias.name.startswith("_") and not alias.name.startswith("__")
                    if private:
                        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {alias.name}")
    assert not offenders, "private names imported across modules:\n" + "\n".join(offenders)
