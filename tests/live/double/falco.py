"""The control-plane node's Falco service, as the double models it: a stand-in, not Falco.

Every exec the double serves into a pod scheduled on the node becomes the system-call events Falco would see
(``execve`` of the command, spawned by ``runc``, and for ``cat``/``head``/``tail`` of a file an ``openat``
read of it), with the container id (12 hex of the pod's containerID), container name, user root and the
pod's Kubernetes names. They are evaluated by the project's own Falco engine against the node's rules files,
loaded in Falco's default order (``/etc/falco/falco_rules.yaml``, ``falco_rules.local.yaml``,
``rules.d/*.yaml``), exactly as they are on the node at that moment, with falco.yaml's ``rule_matching``
(default ``first``); a rules set that does not load raises nothing (the real service would not have
restarted with it). Each alert is appended to the node's journal in Falco's text
form (``HH:MM:SS.nnnnnnnnn: <Priority> <output>``), which the stand-in ``journalctl`` prints. Only execs
are seen: the offenders' own loops (lab4) are not simulated.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any


class FalcoService:
    def __init__(self, node: Any, k8s_node: str):
        self.node, self.k8s_node = node, k8s_node
        self._engines: dict[Any, Any] = {}

    def rules_files(self) -> list[Path]:
        etc = self.node.path("/etc/falco")
        files = [etc / "falco_rules.yaml", etc / "falco_rules.local.yaml"]
        files += (
            sorted(p for p in (etc / "rules.d").glob("*") if p.suffix in {".yaml", ".yml"})
            if (etc / "rules.d").is_dir()
            else []
        )
        return [f for f in files if f.is_file()]

    def rule_matching(self) -> str:
        """``rule_matching`` from falco.yaml, then from the files of its ``config_files`` folders in name
        order, later ones winning, as Falco merges them (Falco's default: ``first``, the first loaded rule
        that matches wins)."""
        import yaml

        def read(path: str) -> dict:
            try:
                conf = yaml.safe_load(self.node.path(path).read_text()) or {}
            except (OSError, yaml.YAMLError):
                return {}
            return conf if isinstance(conf, dict) else {}

        main = read("/etc/falco/falco.yaml")
        value = main.get("rule_matching")
        folders = main.get("config_files") or []
        for folder in folders if isinstance(folders, list) else []:
            where = self.node.path(str(folder))
            extra = sorted(where.glob("*.y*ml")) if where.is_dir() else []
            for path in extra:
                value = read(str(folder).rstrip("/") + "/" + path.name).get("rule_matching", value)
        return value if value in ("first", "all") else "first"

    def on_exec(
        self, pod: dict[str, Any], container: str, argv: list[str], result: tuple[int, str, str]
    ) -> None:
        if (pod.get("spec") or {}).get("nodeName") != self.k8s_node:
            return  # another node's kernel: this Falco never sees it
        from grader.engines.falco.engine import Engine
        from grader.engines.falco.events import event_from_mapping
        from grader.engines.falco.loader import RulesLoader

        files = [(str(f).replace(str(self.node.root), ""), f.read_bytes()) for f in self.rules_files()]
        key = (tuple(files), self.rule_matching())
        if (
            key not in self._engines
        ):  # the service restarts with the rules as they are now; cached per content
            loader = RulesLoader()
            for name, data in files:
                loader.load(name, data)
            loaded = loader.result()
            self._engines = {
                key: Engine(loaded.rules, rule_matching=key[1])
                if all(f.successful for f in loaded.files)
                else None
            }
        engine = self._engines[key]
        if engine is None:
            return
        now = time.time_ns()
        cid = next(
            (
                s.get("containerID", "")
                for s in (pod.get("status") or {}).get("containerStatuses") or []
                if s.get("name") == container
            ),
            "",
        )
        common = {
            "container.id": cid.split("://")[-1][:12],
            "container.name": container,
            "user.name": "root",
            "user.uid": 0,
            "k8s.ns.name": pod["metadata"].get("namespace"),
            "k8s.pod.name": pod["metadata"]["name"],
            "proc.name": Path(argv[0]).name,
            "proc.exepath": f"/usr/bin/{Path(argv[0]).name}",
            "proc.args": argv[1:],
            "proc.pname": "runc",
            "proc.tty": 0,
        }
        events = [{"evt.type": "execve", "evt.dir": "<", "evt.time": now, **common}]
        if Path(argv[0]).name in {"cat", "head", "tail"} and len(argv) > 1:
            events.append(
                {
                    "evt.type": "openat",
                    "evt.dir": "<",
                    "evt.time": now + 1000,
                    "evt.arg.flags": "O_RDONLY",
                    "fd.name": argv[-1],
                    **common,
                }
            )
        for raw in events:
            try:
                event = event_from_mapping(raw)
            except Exception:  # noqa: BLE001 - a field the engine does not know: no event
                continue
            for alert in engine.process(event):
                self.node.journal(int(time.time()), alert.line())
