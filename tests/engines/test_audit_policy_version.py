"""The audit policy loader judges as the lab cluster's kube-apiserver (provision/versions.env)."""

from __future__ import annotations

from grader import versions
from grader.engines.audit_policy import load_policy, pinned_kube_version

GROUP_STAR = """apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: Metadata
  resources:
  - group: "*"
    resources: ["secrets"]
- level: None
"""


def test_loader_default_is_the_pinned_kubernetes_minor():
    assert pinned_kube_version() == versions.kubernetes_minor()


def test_group_star_follows_the_pinned_version():
    """group "*" is valid from 1.36: without a version the cluster's release decides."""
    result = load_policy(GROUP_STAR)
    if pinned_kube_version() < (1, 36):
        assert not result.ok and 'Invalid value: "*"' in result.errors[0]
    else:
        assert result.ok
    assert not load_policy(GROUP_STAR, "1.35").ok and load_policy(GROUP_STAR, "1.36").ok
