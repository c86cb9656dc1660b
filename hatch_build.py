"""Build hook: compiles the audit log scanner's C speed-ups (grader/engines/audit_log/_fastscan.c) when a C
compiler and Python's headers are there; without them the kit installs as pure Python and reads audit logs
with its Python fallbacks (same results, slower: see docs/audit-log.md).

The module is built next to its source, so an editable install (`pip install -e .`) imports it from the
checkout; a wheel carries it and is tagged for this interpreter and platform. Set CKS_NO_EXTENSIONS=1 to
skip the build.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import sysconfig
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCE = Path("grader/engines/audit_log/_fastscan.c")


def source_hash(source: Path) -> str:
    """What the built module reports as SOURCE_HASH (a test checks it against the checkout's source)."""
    return hashlib.sha256(source.read_bytes()).hexdigest()[:16]


def compile_extension(root: Path) -> Path | None:
    """The built module's path, or None (with the reason printed) when it cannot be built here."""
    source = root / SOURCE
    target = source.with_name("_fastscan" + (sysconfig.get_config_var("EXT_SUFFIX") or ".so"))
    include = sysconfig.get_paths()["include"]
    if not (Path(include) / "Python.h").exists():
        print(f"cks-kit: no Python.h in {include}: the audit log scanner stays pure Python")
        return None
    cc = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
    cmd = [
        *cc,
        "-O2",
        "-shared",
        "-fPIC",
        "-fno-strict-aliasing",
        f"-I{include}",
        f'-DFASTSCAN_SOURCE_HASH="{source_hash(source)}"',
        str(source),
        "-o",
        str(target),
    ]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"cks-kit: cannot run the C compiler ({exc}): the audit log scanner stays pure Python")
        return None
    if done.returncode != 0:
        print(
            f"cks-kit: {' '.join(cmd)} failed: the audit log scanner stays pure Python\n{done.stderr[-2000:]}"
        )
        return None
    return target


class CustomBuildHook(BuildHookInterface):
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or os.environ.get("CKS_NO_EXTENSIONS"):
            return
        root = Path(self.root)
        built = compile_extension(root)
        if built is None or version == "editable":  # editable: imported from the checkout
            return
        build_data["force_include"][str(built)] = str(built.relative_to(root))
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
