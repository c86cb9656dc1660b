"""Groups that gather study tools written in several modules (`cks audit ...`, `cks apiserver ...`)."""

from __future__ import annotations

import click

from grader.cli import CONTEXT, LazyGroup

audit_group = LazyGroup(
    "audit",
    context_settings=CONTEXT,
    lazy={
        "validate": ("grader.cli.audit_policy:validate_cmd", "Would kube-apiserver load this audit policy?"),
        "simulate": ("grader.cli.audit_policy:simulate_cmd", "Which level and rule does a request get?"),
        "query": ("grader.cli.audit_log:query_cmd", "Filter and count events in audit logs."),
    },
    help="""Audit policies and audit logs, evaluated exactly as kube-apiserver does.

\b
Examples:
  cks audit validate policy.yaml
  cks audit simulate policy.yaml --verb get --resource secrets --namespace prod --user alice
  cks audit query audit.log --resource secrets --count-by user
""",
)

apiserver_group = LazyGroup(
    "apiserver",
    context_settings=CONTEXT,
    lazy={
        "check": (
            "grader.cli.apiserver:manifest_cmd",
            "Audit flags, mounts and problems of a kube-apiserver manifest.",
        ),
    },
    help="kube-apiserver static pod manifest: effective audit flags, mounts and what would break.",
)

__all__ = ["audit_group", "apiserver_group", "click"]
