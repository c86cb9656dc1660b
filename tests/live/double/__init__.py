"""The cluster double: :class:`Cluster` = the fake API server (:mod:`.api`) + node directories behind the
kit's ssh backend (:mod:`.node`), bootstrapped like a provisioned lab cluster (deploy/rbac.yaml applied, the
grader ServiceAccount's kubeconfig on the control plane). Read the module docstrings for what is and is not
modelled."""

from __future__ import annotations

from pathlib import Path

from tests.live.double.api import REPO, ClusterDouble
from tests.live.double.node import DoubleNodes, node_support

__all__ = ["Cluster", "node_support"]


class Cluster:
    def __init__(
        self, workdir: Path, nodes: tuple[str, ...] = ("controlplane", "node01"), *, real_sshd: bool = True
    ):
        """``real_sshd=False``: nodes are reached through the ssh client stand-in (``self.nodes.bin`` must
        come first on PATH), which runs each command as the sshd's ForceCommand would, only faster."""
        self.api = ClusterDouble(workdir / "api", nodes=nodes)
        self.api.apply_yaml((REPO / "deploy" / "rbac.yaml").read_text())
        self.grader_token = self.api.sa_token("cks-system", "cks-grader")
        self.nodes = DoubleNodes(
            workdir,
            nodes,
            admin_kubeconfig=self.api.kubeconfig(self.api.admin_token, "admin"),
            grader_kubeconfig=self.api.kubeconfig(self.grader_token, "grader"),
            ca_pem=self.api.ca.read_bytes(),
            real_sshd=real_sshd,
        )
        self.target = self.nodes.target
        from tests.live.double.kubelet import Kubelet

        self.kubelet = Kubelet(self, self.nodes[nodes[0]])
        from tests.live.double.falco import FalcoService

        self.falco = FalcoService(self.nodes[nodes[0]], nodes[0])
        self.api.on_exec.append(self.falco.on_exec)

    @property
    def cp(self):
        return self.nodes["controlplane"]

    def close(self) -> None:
        self.kubelet.stop()
        self.nodes.stop()
        self.api.close()
