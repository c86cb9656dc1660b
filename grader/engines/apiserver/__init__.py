"""kube-apiserver static pod manifest engine: effective audit flags, mounts, static pod folder, policy.

Pure: it takes parsed documents, text and a :class:`HostView` the caller implements; it never touches files.

    doc, problems = parse_manifest_text(text)
    a = analyze_manifest(doc, host)             # ManifestAnalysis
    a.value("audit-log-maxage")                 # 30 (typed; the default when not set)
    a.policy.host_path, a.log.problems          # where the paths land on the node, what is wrong
    load_manifest_policy(a, host)               # PolicyLoad via grader.engines.audit_policy
    analyze_manifest_dir([DirEntry(...)])        # a second kube-apiserver left in manifests/
"""

from grader.engines.apiserver.flags import AUDIT_FLAGS, FlagSpec, go_parse_int, parse_argv, suggest
from grader.engines.apiserver.host import CallableHost, DictHost, HostFileError, HostView
from grader.engines.apiserver.manifest import (
    EffectiveFlag,
    ManifestAnalysis,
    Mount,
    PathAccess,
    Volume,
    analyze_manifest,
    comment_mentions,
    parse_manifest_text,
    resolve_mount,
)
from grader.engines.apiserver.policy import PolicyLoad, load_manifest_policy, policy_host_path
from grader.engines.apiserver.problems import Problem
from grader.engines.apiserver.static_pods import DirEntry, StaticPodDir, analyze_manifest_dir

__all__ = [
    "AUDIT_FLAGS",
    "FlagSpec",
    "go_parse_int",
    "parse_argv",
    "suggest",
    "CallableHost",
    "DictHost",
    "HostFileError",
    "HostView",
    "EffectiveFlag",
    "ManifestAnalysis",
    "Mount",
    "PathAccess",
    "Volume",
    "analyze_manifest",
    "comment_mentions",
    "parse_manifest_text",
    "resolve_mount",
    "PolicyLoad",
    "load_manifest_policy",
    "policy_host_path",
    "Problem",
    "DirEntry",
    "StaticPodDir",
    "analyze_manifest_dir",
]
