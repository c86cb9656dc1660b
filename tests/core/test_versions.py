"""One source of truth for versions (issue 17): every version string in the repository comes from, or agrees
with, provision/versions.env; the pins stay within one minor of the newest Kubernetes the kit knows of."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from grader import versions
from grader.engines.podsec import pss

REPO = Path(__file__).resolve().parents[2]
PIN = versions.parse((REPO / "provision/versions.env").read_text())

# A mention on a line that speaks of history ("removed in Kubernetes 1.24", "Falco 0.39.2 ships rules 3.2.0")
# is not a pin; every other mention must be the pinned value.
HISTORY = re.compile(
    r"\b(before|since|until|earlier|older|prior|removed|added|introduced|dropped|deprecated|"
    r"from|up to|was|were|ships|shipped|bundled with|newer|through|era|history|moved|"
    r"changed|accepts?|refused?|GA|beta|alpha|deliberately)\b",
    re.IGNORECASE,
)


def tracked_text_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
        names = [n for n in out.decode().split("\0") if n]
    except (OSError, subprocess.CalledProcessError):  # a source tree without git: every file
        names = [str(p.relative_to(REPO)) for p in REPO.rglob("*") if p.is_file() and ".git" not in p.parts]
    files = []
    for name in names:
        if name == "tests/core/test_versions.py":  # its own patterns are not versions
            continue
        path = REPO / name
        if path.suffix in {".gz", ".png", ".tgz"} or not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        files.append(path)
    return files


def mentions(pattern: str) -> list[tuple[str, int, str, str]]:
    """(file, line number, line, captured version) for every match outside history lines."""
    rx = re.compile(pattern)
    found = []
    for path in tracked_text_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if not rx.search(text):
            continue
        for number, line in enumerate(text.splitlines(), 1):
            for match in rx.finditer(line):
                if HISTORY.search(line) and not match.group(0).startswith(("registry.k8s.io", "kindest/")):
                    continue
                found.append((str(path.relative_to(REPO)), number, line.strip(), match.group(1)))
    return found


def disagreeing(pattern: str, want: set[str]) -> list[str]:
    return [
        f"{f}:{n}: {v!r} (pinned: {' or '.join(sorted(want))}): {line[:120]}"
        for f, n, line, v in mentions(pattern)
        if v not in want
    ]


def test_versions_env_parses_and_names_every_pin():
    for key in (
        "K8S_VERSION",
        "K8S_MINOR",
        "K8S_NEWEST_MINOR",
        "CONTAINERD_VERSION",
        "RUNC_VERSION",
        "CALICO_VERSION",
        "FALCO_VERSION",
        "FALCO_RULES_VERSION",
        "KIND_VERSION",
        "KIND_NODE_IMAGE",
        "BOX",
        "BOX_VERSION",
    ):
        assert PIN.get(key), f"provision/versions.env does not pin {key}"
    assert versions.pinned() == PIN, "grader.versions must read provision/versions.env"


def test_derived_pins_agree_with_the_kubernetes_version():
    assert PIN["K8S_MINOR"] == "v{}.{}".format(*versions.minor(PIN["K8S_VERSION"]))
    image, _, digest = PIN["KIND_NODE_IMAGE"].partition("@")
    assert image == f"kindest/node:v{PIN['K8S_VERSION']}", (
        "the kind node image must run the pinned Kubernetes"
    )
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), "pin the kind node image by digest"
    assert versions.pss_version() == PIN["K8S_MINOR"]


def test_kubernetes_image_tags_are_the_pinned_release():
    bad = disagreeing(
        r"registry\.k8s\.io/(?:kube-apiserver|kube-controller-manager|kube-scheduler|kube-proxy)"
        r":(v[0-9][^\s\"']*)",
        {"v" + PIN["K8S_VERSION"]},
    )
    assert not bad, "image tags that disagree with K8S_VERSION:\n" + "\n".join(bad)


def test_kind_node_images_are_the_pinned_image():
    bad = disagreeing(r"(kindest/node[:@][^\s\"'`]+)", {PIN["KIND_NODE_IMAGE"]})
    assert not bad, "kind node images that disagree with KIND_NODE_IMAGE:\n" + "\n".join(bad)


def test_cluster_component_user_agents_are_the_pinned_release():
    # The cluster's own components speak with its version; a client (kubectl) may be any version, and an
    # intruder's older kubectl is a clue in lab7, so those are not pins.
    bad = disagreeing(
        r"\b(?:kube-controller-manager|kube-scheduler|kubelet|kube-apiserver|kube-proxy)/(v1\.[0-9]+\.[0-9]+)",
        {"v" + PIN["K8S_VERSION"]},
    )
    assert not bad, "component user agents (generated logs, test data) from another release:\n" + "\n".join(
        bad
    )


def test_kubernetes_versions_named_in_text_are_the_pinned_minor():
    want = {PIN["K8S_MINOR"].lstrip("v"), PIN["K8S_VERSION"]}
    bad = disagreeing(r"\b(?:Kubernetes|kube-apiserver|kubeadm|kubelet) v?(1\.[0-9]+(?:\.[0-9]+)?)\b", want)
    assert not bad, "Kubernetes versions that are neither the pin nor history:\n" + "\n".join(bad)


def test_pod_security_version_labels_are_latest_or_the_pinned_minor():
    bad = disagreeing(
        r"pod-security\.kubernetes\.io/\w+-version[\"']?:\s*[\"']?(v?[0-9.]+|latest)",
        {"latest", PIN["K8S_MINOR"]},
    )
    assert not bad, "PSA version labels for another release:\n" + "\n".join(bad)


def test_falco_versions_named_in_text_are_the_pinned_release():
    major_minor = ".".join(PIN["FALCO_VERSION"].split(".")[:2])
    bad = disagreeing(r"\bFalco v?(0\.[0-9]+(?:\.[0-9]+)?)\b", {PIN["FALCO_VERSION"], major_minor})
    assert not bad, "Falco versions that are neither the pin nor history:\n" + "\n".join(bad)


def test_falco_rules_versions_named_in_text_are_the_pinned_release():
    bad = disagreeing(
        r"\b(?:falco-rules|falcosecurity/rules|rules release) v?([0-9]+\.[0-9]+\.[0-9]+)\b",
        {PIN["FALCO_RULES_VERSION"]},
    )
    assert not bad, "falco-rules versions that are neither the pin nor history:\n" + "\n".join(bad)


def test_workflows_take_their_versions_from_versions_env():
    for workflow in sorted((REPO / ".github/workflows").glob("*.y*ml")):
        text = workflow.read_text()
        literal = re.findall(r"(?<![\w.$])v?\d+\.\d+\.\d+(?![\w.])", text)
        literal = [v for v in literal if v not in {"3.11", "3.12"}]
        assert not literal, f"{workflow.name} pins {literal}: read them from provision/versions.env instead"


@pytest.mark.parametrize("script", sorted((REPO / "provision").glob("*.sh")), ids=lambda p: p.name)
def test_provisioning_pins_nothing_of_its_own(script):
    assert not re.search(r"(?<![\w.])v?\d+\.\d+\.\d+(?![\w.])", script.read_text())


def newest_known_minor() -> tuple[tuple[int, int], str]:
    """The newest Kubernetes minor anything in the kit knows of, and who knows it."""
    known = [
        (versions.minor(PIN["K8S_NEWEST_MINOR"]), "K8S_NEWEST_MINOR in provision/versions.env"),
        ((1, pss.LATEST_MINOR), "grader/engines/podsec/pss.py LATEST_MINOR"),
    ]
    return max(known)


def test_pinned_kubernetes_is_at_most_one_minor_behind_the_newest_known():
    (major, newest), who = newest_known_minor()
    pinned = versions.minor(PIN["K8S_MINOR"])
    assert pinned[0] == major and newest - pinned[1] <= 1, (
        f"Kubernetes {PIN['K8S_MINOR']} is {newest - pinned[1]} minors behind v{major}.{newest} "
        f"(known from {who}).\n"
        "Bump it (docs/versions.md, 'How to bump'): provision/versions.env (K8S_VERSION, K8S_MINOR, "
        "KIND_NODE_IMAGE\n"
        "with its digest, CONTAINERD_VERSION, CALICO_VERSION), then run the suite: this file names every "
        "image tag,\n"
        "label and text that must follow; check kube-apiserver flags and audit policy loading of the new "
        "minor."
    )


def test_newest_minor_is_not_behind_the_pin():
    assert versions.minor(PIN["K8S_NEWEST_MINOR"]) >= versions.minor(PIN["K8S_MINOR"])
