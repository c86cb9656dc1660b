"""A small seeded lab of our own, so the instructor tools are tested whatever state labs 1-8 are in.

lab90's answer is two files whose directory comes from the seed (``/etc/<app>/``), so an answer written for
one seed fails on another. It uses the generic ``files.present`` check.
"""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import textwrap
from pathlib import Path

LAB_YAML = textwrap.dedent("""\
    id: lab90
    version: 1
    title: Seeded test lab
    summary: two files in a seeded directory
    topics: [test]
    minutes: 10
    nodes: [controlplane]
    variables:
      app: {default: shop, choices: [shop, blog, wiki, forum, mail, chat, docs, maps]}
    tasks:
      - id: t1
        title: The config file exists
        points: 2
        check: files.present
        params: {node: controlplane, path: "/etc/{{ app }}/config.yaml"}
        hint: write /etc/<app>/config.yaml
      - id: t2
        title: The policy file exists
        points: 1
        check: files.present
        params: {node: controlplane, path: "/etc/{{ app }}/policy.yaml"}
        hint: write /etc/<app>/policy.yaml
      - id: t3
        title: The service answers (live clusters only)
        points: 4
        live: true
        check: files.present
        params: {node: controlplane, path: "/etc/{{ app }}/ready"}
        hint: start the service
    """)


LAB91_YAML = textwrap.dedent("""\
    id: lab91
    version: 1
    title: Static test lab
    topics: [test]
    minutes: 5
    tasks:
      - id: t1
        title: The banner exists
        points: 1
        check: files.present
        params: {node: controlplane, path: /etc/banner}
        hint: write /etc/banner
    """)


def make_labs_root(root: Path) -> Path:
    lab = root / "lab90-seeded"
    (lab / "start" / "nodes" / "controlplane" / "etc").mkdir(parents=True)
    (lab / "lab.yaml").write_text(LAB_YAML)
    (lab / "README.md").write_text("# lab90\n\nWrite /etc/{{ app }}/config.yaml and policy.yaml.\n")
    (lab / "start" / "nodes" / "controlplane" / "etc" / "motd").write_text("app: {{ app }}\n")
    other = root / "lab91-static"
    (other / "start" / "nodes" / "controlplane" / "etc").mkdir(parents=True)
    (other / "lab.yaml").write_text(LAB91_YAML)
    (other / "README.md").write_text("# lab91\n\nWrite /etc/banner.\n")
    (other / "start" / "nodes" / "controlplane" / "etc" / "hostname").write_text("controlplane\n")
    return root


def answer(ws: Path, app: str, files: tuple[str, ...] = ("config.yaml", "policy.yaml")) -> None:
    d = ws / "nodes" / "controlplane" / "etc" / app
    d.mkdir(parents=True, exist_ok=True)
    for f in files:
        (d / f).write_text(f"# {f} for {app}\nkey: value\n")


def app_for(lab, seed: str | None) -> str:
    from grader.variants import values_for

    return values_for(lab, seed)["app"]


def workspace(
    lab, root: Path, seed: str | None, files: tuple[str, ...] = ("config.yaml", "policy.yaml")
) -> Path:
    from grader.workspace import materialize

    ws = root / f"ws-{seed}-{len(files)}-{os.urandom(3).hex()}"
    materialize(lab, ws, seed)
    if files:
        answer(ws, app_for(lab, seed), files)
    return ws


def read_members(bundle: Path) -> dict[str, bytes]:
    """The regular files of a bundle (.tar.gz), by name."""
    with tarfile.open(bundle, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def write_members(bundle: Path, members: dict[str, bytes]) -> Path:
    """Write ``members`` as the bundle (a learner or a tamper test rebuilding it by hand)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    bundle.write_bytes(gzip.compress(buf.getvalue()))
    return bundle
