"""What CI can check of the live environments without a VM or a cluster: the Vagrantfile validates, the
provisioning scripts parse and pass shellcheck and pin no versions of their own, the kind config has the
mounts the labs need, the RBAC covers every kind the labs read, the workflow runs the kind-supported labs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from grader.labs import all_labs

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = sorted((REPO / "provision").glob("*.sh"))


def versions() -> dict[str, str]:
    out = {}
    for line in (REPO / "provision/versions.env").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip().strip('"')
    return out


def test_provisioning_scripts_exist():
    names = {p.name for p in SCRIPTS}
    assert {"common.sh", "controlplane.sh", "node.sh", "falco.sh", "kit.sh", "lib.sh"} <= names


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_bash_syntax(script):
    res = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_shellcheck(script):
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    res = subprocess.run(
        ["shellcheck", "-x", "-P", str(REPO), script.name], cwd=script.parent, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_versions_are_pinned_only_in_versions_env(script):
    text = script.read_text()
    # a literal version (1.31.4, v3.28.2, 0.39.2) in a script would drift from provision/versions.env
    assert not re.search(r"(?<![\w.])v?\d+\.\d+\.\d+(?![\w.])", text), (
        f"{script.name} pins a version of its own"
    )


def test_versions_env_pins_everything_the_scripts_use():
    v = versions()
    used = set()
    for script in SCRIPTS:
        used |= set(re.findall(r"\$\{?([A-Z][A-Z0-9_]+)", script.read_text()))
    own = {
        "CKS_SRC",
        "DEBIAN_FRONTEND",
        "KUBECONFIG",
        "CKS_WORKERS",
        "JOIN",
        "PRISTINE",
        "FALCO_FRONTEND",
        "FALCO_DRIVER_CHOICE",
        "NODE",
        "IP",
        "PKG",
    }
    assert {u for u in used if u.endswith(("_VERSION", "_IP", "_CIDR", "_REV", "_MINOR", "_PREFIX"))} <= set(
        v
    )
    assert not (used - set(v) - own), f"undefined: {used - set(v) - own}"


def test_vagrantfile_reads_versions_and_resources_from_env():
    text = (REPO / "Vagrantfile").read_text()
    assert "versions.env" in text
    for var in ("CKS_CPUS", "CKS_MEMORY"):
        assert var in text
    assert 'provider "virtualbox"' in text and 'provider "libvirt"' in text


@pytest.mark.slow  # runs vagrant (ruby start-up, several seconds)
@pytest.mark.parametrize("workers", ["0", "1", "3"])
def test_vagrant_validate(tmp_path, workers):
    if shutil.which("vagrant") is None:
        pytest.skip("vagrant is not installed (apt-get install vagrant)")
    env = {
        **os.environ,
        "VAGRANT_HOME": str(tmp_path / "vagrant.d"),
        "VAGRANT_CHECKPOINT_DISABLE": "1",
        "CKS_CPUS": "3",
        "CKS_MEMORY": "5000",
        "CKS_WORKERS": workers,
    }
    # libvirt: Debian's vagrant ships the vagrant-libvirt plugin, so its provider config is validated too;
    # VirtualBox cannot be installed from Debian, so its machines are validated without provider checks.
    for provider, extra in (("libvirt", []), ("virtualbox", ["--ignore-provider"])):
        res = subprocess.run(
            ["vagrant", "validate", *extra],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
            env={**env, "VAGRANT_DEFAULT_PROVIDER": provider},
            stdin=subprocess.DEVNULL,
        )
        assert res.returncode == 0, res.stdout + res.stderr
        assert "validated successfully" in res.stdout
        machines = set(re.findall(r"==> (\w+):", res.stdout))
        if provider == "virtualbox":  # one line per machine validated without its provider config
            assert machines == {"controlplane"} | {f"node{i:02d}" for i in range(1, int(workers) + 1)}


@pytest.mark.slow  # runs vagrant (ruby start-up, several seconds)
def test_vagrant_validate_rejects_a_bad_resource_setting(tmp_path):
    if shutil.which("vagrant") is None:
        pytest.skip("vagrant is not installed (apt-get install vagrant)")
    env = {
        **os.environ,
        "VAGRANT_HOME": str(tmp_path / "vagrant.d"),
        "VAGRANT_CHECKPOINT_DISABLE": "1",
        "CKS_MEMORY": "lots",
    }
    res = subprocess.run(
        ["vagrant", "validate"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert res.returncode != 0  # the Vagrantfile parses CKS_MEMORY as an integer


def kind_config() -> dict:
    return yaml.safe_load((REPO / "kind/cluster.yaml").read_text())


def test_kind_config_mounts_the_audit_folders():
    cfg = kind_config()
    assert cfg["kind"] == "Cluster" and cfg["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    cp = [n for n in cfg["nodes"] if n["role"] == "control-plane"]
    assert len(cp) == 1
    mounts = {m["containerPath"]: m["hostPath"] for m in cp[0]["extraMounts"]}
    for needed in ("/etc/kubernetes/audit", "/var/log/kubernetes/audit", "/opt/course"):
        assert needed in mounts, f"kind/cluster.yaml does not mount {needed}"
        assert (REPO / mounts[needed]).is_dir(), f"{mounts[needed]} must exist in the checkout"


def test_kind_config_patches_parse_and_leave_lab2_to_the_learner():
    cfg = kind_config()
    cp = [n for n in cfg["nodes"] if n["role"] == "control-plane"][0]
    patches = [yaml.safe_load(p) for p in cp.get("kubeadmConfigPatches", [])]
    kinds = {p["kind"] for p in patches}
    assert "KubeletConfiguration" in kinds
    for p in patches:  # pre-set audit flags or mounts would hand out lab2's answer
        text = yaml.safe_dump(p)
        assert "audit-policy-file" not in text and "audit-log" not in text


def test_kind_node_image_matches_versions_env():
    images = {n.get("image") for n in kind_config()["nodes"]}
    assert images == {versions()["KIND_NODE_IMAGE"]}
    assert versions()["KIND_NODE_IMAGE"].split("@")[0].endswith("v" + versions()["K8S_VERSION"])


def _rules(name: str) -> list[dict]:
    docs = [d for d in yaml.safe_load_all((REPO / "deploy/rbac.yaml").read_text()) if d]
    return next(d for d in docs if d["kind"] == "ClusterRole" and d["metadata"]["name"] == name)["rules"]


def test_grader_role_reads_every_kind_the_labs_declare():
    from grader.collectors.kube import KINDS

    def granted(role: str, verbs: set[str]) -> set[tuple[str, str]]:
        return {
            (g, r)
            for rule in _rules(role)
            for g in rule.get("apiGroups", [])
            for r in rule.get("resources", [])
            if set(rule["verbs"]) >= verbs
        }

    cluster_wide, in_lab_namespaces = (
        granted("cks-grader-read", {"get", "list"}),
        granted("cks-grader-lab", {"get", "list"}),
    )
    for lab in all_labs():
        for kind in lab.collect.kinds:
            prefix, plural, _ = KINDS[kind]
            group = "" if prefix.startswith("/api/") else prefix.split("/")[2]
            assert (group, plural) in cluster_wide | in_lab_namespaces, (
                f"{lab.id} reads {kind}; deploy/rbac.yaml does not grant it"
            )
    records = next(
        d
        for d in yaml.safe_load_all((REPO / "deploy/rbac.yaml").read_text())
        if d and d["kind"] == "Role" and d["metadata"]["name"] == "cks-grader-records"
    )
    assert records["metadata"]["namespace"] == "cks-system"  # the start records, and nothing else there


def test_grader_identity_is_least_privilege():
    # cluster-wide: reads only (plus "who am I"); never Secrets, never exec, never watch
    for rule in _rules("cks-grader-read"):
        if rule.get("resources") == ["selfsubjectreviews"]:
            assert rule["verbs"] == ["create"]
            continue
        assert set(rule["verbs"]) <= {"get", "list"}
        assert not {"secrets", "pods/exec", "*"} & set(rule.get("resources") or [])
    # Secrets and exec only through the per-namespace RoleBindings `cks start` creates
    lab_role = {r for rule in _rules("cks-grader-lab") for r in rule.get("resources", [])}
    assert lab_role == {"secrets", "pods/exec"}
    docs = [d for d in yaml.safe_load_all((REPO / "deploy/rbac.yaml").read_text()) if d]
    assert not any(
        d["kind"] == "ClusterRoleBinding" and d["roleRef"]["name"] == "cks-grader-lab" for d in docs
    )


def test_job_runs_the_grader_in_cluster_and_never_prints_tokens():
    job = yaml.safe_load((REPO / "deploy/job.yaml").read_text())
    spec = job["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == "cks-grader"
    script = " ".join(spec["containers"][0]["args"])
    assert "--in-cluster" in script and "cks collect" in script and "grade" in script
    assert "token" not in script and "/var/run/secrets" not in script


def test_workflow_runs_start_solution_grade_reset_on_kind():
    wf = yaml.safe_load((REPO / ".github/workflows/kind-e2e.yml").read_text())
    steps = wf["jobs"]["e2e"]["steps"]
    text = yaml.safe_dump(steps)
    assert "kind/cluster.yaml" in text
    order = [
        next(i for i, s in enumerate(steps) if needle in yaml.safe_dump(s))
        for needle in ("cks start", "live_e2e.py solve", "solved.json full", "cks reset", "reset.json zero")
    ]
    assert order == sorted(order)


def test_kind_runs_every_lab_and_reports_only_the_falco_tasks():
    import importlib.util

    spec = importlib.util.spec_from_file_location("live_e2e", REPO / ".github/scripts/live_e2e.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for lab in all_labs():
        exempt = mod.kind_exempt(lab)
        assert set(exempt) == {t.id for t in lab.tasks if t.check in mod.FALCO_CHECKS}, lab.id
    assert set(mod.kind_exempt(next(lab for lab in all_labs() if lab.id == "lab3"))) == {"t4", "t5"}
    assert not mod.kind_exempt(next(lab for lab in all_labs() if lab.id == "lab2"))  # lab2 runs fully on kind


WORKFLOW = REPO / ".github/workflows/kind-e2e.yml"


def test_workflow_passes_the_github_actions_schema():
    """check-jsonschema's vendored GitHub workflow schema (a test dependency: pip install
    check-jsonschema)."""
    pytest.importorskip(
        "check_jsonschema", reason="check-jsonschema is not installed (pip install check-jsonschema)"
    )
    import subprocess
    import sys

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.github-workflows",
            str(WORKFLOW),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_workflow_grades_with_the_grader_identity_and_covers_falco():
    wf = yaml.safe_load(WORKFLOW.read_text())
    runs = [step.get("run", "") for step in wf["jobs"]["e2e"]["steps"]]
    grades = [
        line
        for run in runs
        for line in run.splitlines()
        if line.strip().startswith(("grade ", "cks collect"))
    ]
    assert grades and all('--kubeconfig "$GRADER_KUBECONFIG"' in g for g in grades), grades
    assert not any("--context kind-" in r or "admin" in r for r in runs if "grade " in r)
    falco = " ".join(step.get("run", "") for step in wf["jobs"]["falco"]["steps"])
    assert "FALCOCTL_ENABLED=no" in falco and "modern_ebpf" in falco
    assert "falco-rules" in falco and "falco-capture" in falco
