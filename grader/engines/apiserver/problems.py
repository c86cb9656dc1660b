"""What the engine reports about a manifest."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One finding.

    severity:
      fatal   kubelet cannot read the manifest as a pod at all (nothing else in it takes effect);
      error   kubelet or kube-apiserver would refuse it: the pod does not start, or crash-loops;
      warning it runs, but not as intended (e.g. a writable policy mount, flags in the wrong container);
      info    worth knowing (a flag given twice, octal numbers, stdout logging).
    code: a stable id for tests and checks (``unknown-flag``, ``volume-not-found``, ...).
    where: a path in the manifest (``spec.containers[0].command[12]``) or a host path.
    """

    severity: str
    code: str
    message: str
    where: str = ""

    @property
    def blocking(self) -> bool:
        """True when kube-apiserver would not run with this manifest."""
        return self.severity in {"fatal", "error"}

    def __str__(self) -> str:
        return f"{self.severity}: {self.message}" + (f" [{self.where}]" if self.where else "")
