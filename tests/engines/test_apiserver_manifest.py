"""The kube-apiserver static pod read as kubelet and kube-apiserver read it: flags, mounts, folder, policy."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest

from grader.engines.apiserver import (
    DictHost,
    DirEntry,
    analyze_manifest,
    analyze_manifest_dir,
    comment_mentions,
    load_manifest_policy,
    parse_manifest_text,
)

POLICY = "/etc/kubernetes/audit/policy.yaml"
LOG = "/var/log/kubernetes/audit/audit.log"
GOOD_POLICY = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n"


def base_pod() -> dict:
    """A small kubeadm-shaped kube-apiserver pod with no audit flags."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "kube-apiserver",
            "namespace": "kube-system",
            "labels": {"component": "kube-apiserver", "tier": "control-plane"},
        },
        "spec": {
            "hostNetwork": True,
            "containers": [
                {
                    "name": "kube-apiserver",
                    "image": "registry.k8s.io/kube-apiserver:v1.36.4",
                    "command": [
                        "kube-apiserver",
                        "--advertise-address=10.0.0.1",
                        "--allow-privileged=true",
                        "--client-ca-file=/etc/kubernetes/pki/ca.crt",
                        "--tls-cert-file=/etc/kubernetes/pki/apiserver.crt",
                    ],
                    "volumeMounts": [
                        {"name": "k8s-certs", "mountPath": "/etc/kubernetes/pki", "readOnly": True}
                    ],
                }
            ],
            "volumes": [
                {
                    "name": "k8s-certs",
                    "hostPath": {"path": "/etc/kubernetes/pki", "type": "DirectoryOrCreate"},
                }
            ],
        },
    }


def audited(
    policy_type: str | None = "File",
    log_type: str | None = "DirectoryOrCreate",
    policy_ro: bool = True,
    log_ro: bool = False,
    extra: list[str] | None = None,
) -> dict:
    pod = base_pod()
    c = pod["spec"]["containers"][0]
    c["command"] += [
        f"--audit-policy-file={POLICY}",
        f"--audit-log-path={LOG}",
        "--audit-log-maxage=30",
        "--audit-log-maxbackup=5",
        "--audit-log-maxsize=100",
        *(extra or []),
    ]
    c["volumeMounts"] += [
        {"name": "audit", "mountPath": POLICY, "readOnly": policy_ro},
        {"name": "audit-log", "mountPath": "/var/log/kubernetes/audit/", "readOnly": log_ro},
    ]
    pv = {"path": POLICY} | ({"type": policy_type} if policy_type is not None else {})
    lv = {"path": "/var/log/kubernetes/audit/"} | ({"type": log_type} if log_type is not None else {})
    pod["spec"]["volumes"] += [{"name": "audit", "hostPath": pv}, {"name": "audit-log", "hostPath": lv}]
    return pod


HOST = DictHost({POLICY: GOOD_POLICY})


def codes(a) -> list[str]:
    return [p.code for p in a.problems]


def test_kubeadm_shape_without_audit_is_clean_and_auditing_is_off():
    a = analyze_manifest(base_pod(), HOST)
    assert a.would_start and not a.problems
    assert a.flag("audit-log-path").set is False and not a.log_enabled
    # the default of the cluster's release, typed: 0 (no limit) until 1.35, 366 days from 1.36
    from grader.engines.audit_policy import pinned_kube_version

    assert a.value("audit-log-maxage") == (366 if pinned_kube_version() >= (1, 36) else 0)


def test_docs_recipe_is_clean_and_maps_paths():
    a = analyze_manifest(audited(), HOST)
    assert a.would_start, a.problems
    assert a.value("audit-log-maxage") == 30 and a.value("audit-log-maxbackup") == 5
    assert a.policy.host_path == POLICY and a.policy.file_mount and a.policy.clean
    assert a.log.host_path == LOG and a.log.ok


def test_mapped_mount_computes_the_host_path():
    pod = audited()
    c = pod["spec"]["containers"][0]
    c["command"] = [
        w.replace(f"--audit-policy-file={POLICY}", "--audit-policy-file=/cfg/audit/policy.yaml")
        for w in c["command"]
    ]
    c["volumeMounts"][1] = {"name": "audit", "mountPath": "/cfg/audit", "readOnly": True}
    pod["spec"]["volumes"][1]["hostPath"] = {"path": "/etc/kubernetes/audit", "type": "Directory"}
    a = analyze_manifest(pod, HOST)
    assert a.policy.host_path == POLICY and not a.policy.file_mount
    assert a.would_start, a.problems


def test_subpath_is_followed():
    pod = audited()
    pod["spec"]["containers"][0]["volumeMounts"][1] |= {"subPath": "policy.yaml"}
    pod["spec"]["volumes"][1]["hostPath"] = {"path": "/etc/kubernetes/audit", "type": ""}
    a = analyze_manifest(pod, HOST)
    assert a.policy.host_path == POLICY


def test_deepest_mount_wins():
    pod = audited()
    c = pod["spec"]["containers"][0]
    c["volumeMounts"].append({"name": "etc-k8s", "mountPath": "/etc/kubernetes", "readOnly": True})
    pod["spec"]["volumes"].append(
        {"name": "etc-k8s", "hostPath": {"path": "/srv/other", "type": "Directory"}}
    )
    a = analyze_manifest(pod, DictHost({POLICY: GOOD_POLICY}, dirs=("/srv/other",)))
    assert a.policy.mount.name == "audit"  # the file mount is deeper than /etc/kubernetes
    assert "file-remapped" not in codes(a)  # /etc/kubernetes/pki still comes from its own deeper mount


@pytest.mark.parametrize(
    "ptype, host_files, code",
    [
        ("DirectoryOrCreate", {POLICY: GOOD_POLICY}, "policy-type-directory"),
        ("DirectoryOrCreate", {}, "policy-type-directory"),
        ("Directory", {POLICY: GOOD_POLICY}, "policy-type-directory"),
        ("File", {}, "policy-missing-on-host"),
        ("FileOrCreate", {}, "policy-missing-on-host"),
        (None, {}, "policy-missing-on-host"),
        ("Socket", {POLICY: GOOD_POLICY}, "policy-type"),
    ],
)
def test_policy_hostpath_type_must_suit_a_file(ptype, host_files, code):
    a = analyze_manifest(audited(policy_type=ptype), DictHost(host_files))
    assert code in codes(a)
    assert not a.policy.ok and not a.would_start


@pytest.mark.parametrize("ptype", ["File", "FileOrCreate", None])
def test_policy_file_types_that_work(ptype):
    a = analyze_manifest(audited(policy_type=ptype), HOST)
    assert a.policy.ok and a.would_start


def test_policy_mount_should_be_read_only_but_runs():
    a = analyze_manifest(audited(policy_ro=False), HOST)
    assert "policy-mount-writable" in codes(a)
    assert a.policy.ok and not a.policy.clean and a.would_start


def test_log_mount_read_only_stops_kube_apiserver():
    a = analyze_manifest(audited(log_ro=True), HOST)
    assert "log-mount-read-only" in codes(a) and not a.would_start


@pytest.mark.parametrize(
    "ltype, dirs, code",
    [
        ("File", (), "log-dir-type"),
        ("FileOrCreate", (), "log-dir-type"),
        ("Directory", (), "log-dir-missing"),
    ],
)
def test_log_directory_types(ltype, dirs, code):
    a = analyze_manifest(audited(log_type=ltype), DictHost({POLICY: GOOD_POLICY}, dirs))
    assert code in codes(a)


def test_log_directory_type_directory_is_fine_when_it_exists():
    a = analyze_manifest(
        audited(log_type="Directory"), DictHost({POLICY: GOOD_POLICY}, ("/var/log/kubernetes/audit",))
    )
    assert a.log.ok


def test_log_file_alone_mounted_breaks_rotation():
    pod = audited()
    pod["spec"]["containers"][0]["volumeMounts"][2]["mountPath"] = LOG
    pod["spec"]["volumes"][2]["hostPath"] = {"path": LOG, "type": "FileOrCreate"}
    a = analyze_manifest(pod, HOST)
    assert "log-file-mount" in codes(a) and a.log.file_mount


def test_unmounted_paths():
    pod = audited()
    pod["spec"]["containers"][0]["volumeMounts"] = pod["spec"]["containers"][0]["volumeMounts"][:1]
    a = analyze_manifest(pod, HOST)
    assert {"policy-not-mounted", "log-not-mounted"} <= set(codes(a))
    assert codes(a).count("volume-unused") == 2  # the volumes are still there: a typo?


def test_mount_name_typo_breaks_the_pod_and_suggests():
    pod = audited()
    pod["spec"]["containers"][0]["volumeMounts"][2]["name"] = "audit-lgo"
    a = analyze_manifest(pod, HOST)
    bad = a.with_code("volume-not-found")
    assert bad and "did you mean 'audit-log'" in bad[0].message
    assert "log-volume-not-found" in codes(a)


def test_non_hostpath_volume_does_not_reach_the_node():
    pod = audited()
    pod["spec"]["volumes"][2] = {"name": "audit-log", "emptyDir": {}}
    a = analyze_manifest(pod, HOST)
    assert "log-not-hostpath" in codes(a)


def test_duplicate_volume_and_mount_path():
    pod = audited()
    pod["spec"]["volumes"].append(copy.deepcopy(pod["spec"]["volumes"][1]))
    pod["spec"]["containers"][0]["volumeMounts"].append({"name": "k8s-certs", "mountPath": POLICY})
    a = analyze_manifest(pod, HOST)
    assert {"volume-duplicate", "mount-path-duplicate"} <= set(codes(a))


def test_a_mount_hiding_the_certificates_is_reported():
    pod = audited()
    pod["spec"]["volumes"][0]["hostPath"]["path"] = "/etc/kubernetes/audit"  # k8s-certs now points elsewhere
    a = analyze_manifest(pod, HOST)
    assert "file-remapped" in codes(a)


def test_flags_in_args_and_command_are_concatenated():
    pod = audited()
    c = pod["spec"]["containers"][0]
    c["args"] = ["--audit-log-maxage", "7"]
    a = analyze_manifest(pod, HOST)
    assert a.value("audit-log-maxage") == 7  # args come after command: last wins
    assert a.flag("audit-log-maxage").occurrences == 2 and "flag-repeated" in codes(a)


def test_flags_in_another_container_do_not_count():
    pod = base_pod()
    pod["spec"]["containers"].append(
        {"name": "sidecar", "image": "busybox", "args": ["--audit-log-path=/var/log/a.log"]}
    )
    pod["spec"]["initContainers"] = [
        {"name": "init", "image": "busybox", "command": ["--audit-policy-file=/x"]}
    ]
    a = analyze_manifest(pod, HOST)
    assert not a.flag("audit-log-path").set
    assert codes(a).count("flags-in-other-container") == 2


def test_container_found_by_command_when_renamed():
    pod = audited()
    pod["spec"]["containers"][0]["name"] = "apiserver"
    pod["spec"]["containers"].insert(0, {"name": "helper", "image": "busybox", "command": ["sleep", "1"]})
    a = analyze_manifest(pod, HOST)
    assert a.container_name == "apiserver" and a.value("audit-log-maxage") == 30


def test_yaml_comment_does_not_set_a_flag():
    text = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: kube-apiserver}\nspec:\n  containers:\n"
        "  - name: kube-apiserver\n    command:\n    - kube-apiserver\n"
        "    # - --audit-log-path=/var/log/a.log\n"
    )
    doc, problems = parse_manifest_text(text)
    a = analyze_manifest(doc)
    assert not a.flag("audit-log-path").set and not problems
    assert comment_mentions(text, "--audit-log-path") == [9]


def test_values_kube_apiserver_refuses():
    a = analyze_manifest(
        audited(
            extra=[
                "--audit-log-maxage=-1",
                "--audit-log-format=yaml",
                "--audit-log-compress=yes",
                "--audit-log-maxsize=100MB",
            ]
        ),
        HOST,
    )
    msgs = " | ".join(p.message for p in a.with_code("invalid-value"))
    assert "can't be a negative number" in msgs and "json, legacy" in msgs
    assert "ParseBool" in msgs and "ParseInt" in msgs
    assert not a.would_start


def test_negative_value_is_not_validated_without_a_log_path():
    pod = base_pod()
    pod["spec"]["containers"][0]["command"].append("--audit-log-maxage=-1")
    a = analyze_manifest(pod, HOST)
    assert "invalid-value" not in codes(a)  # Validate() runs only for an enabled backend


def test_octal_value_is_pointed_out():
    a = analyze_manifest(audited(extra=["--audit-log-maxage=030"]), HOST)
    assert a.value("audit-log-maxage") == 24 and "octal-number" in codes(a)


def test_stdout_needs_no_mount_and_policy_without_backend_warns():
    pod = base_pod()
    pod["spec"]["containers"][0]["command"] += ["--audit-log-path=-"]
    a = analyze_manifest(pod, HOST)
    assert a.log_to_stdout and a.log is None and "log-stdout" in codes(a) and "no-policy" in codes(a)
    pod = base_pod()
    pod["spec"]["containers"][0]["command"] += [f"--audit-policy-file={POLICY}"]
    assert "no-backend" in codes(analyze_manifest(pod, HOST))


def test_unknown_audit_flag_stops_kube_apiserver():
    a = analyze_manifest(audited(extra=["--audit-log-max-backups=5"]), HOST)
    assert a.unknown_audit_flags == [
        ("--audit-log-max-backups", "spec.containers[0].command[10]", "audit-log-maxbackup")
    ]
    assert not a.would_start


# ---- the static pod folder ------------------------------------------------------------------------

MANIFEST_TEXT = (
    "apiVersion: v1\nkind: Pod\nmetadata: {name: kube-apiserver, namespace: kube-system}\n"
    "spec:\n  containers:\n  - name: kube-apiserver\n    command: [kube-apiserver]\n"
)
ETCD = (
    "apiVersion: v1\nkind: Pod\nmetadata: {name: etcd, namespace: kube-system}\n"
    "spec:\n  containers:\n  - name: etcd\n    command: [etcd]\n"
)


def test_folder_with_only_the_control_plane_is_clean():
    d = analyze_manifest_dir(
        [DirEntry("kube-apiserver.yaml", text=MANIFEST_TEXT), DirEntry("etcd.yaml", text=ETCD)]
    )
    assert d.apiserver_files == ["kube-apiserver.yaml"] and not d.problems


@pytest.mark.parametrize("name", ["kube-apiserver.yaml.bak", "kube-apiserver.yaml~", "old.json", "copy.yml"])
def test_any_visible_file_is_a_static_pod(name):
    d = analyze_manifest_dir(
        [DirEntry("kube-apiserver.yaml", text=MANIFEST_TEXT), DirEntry(name, text=MANIFEST_TEXT)]
    )
    assert d.stray_apiservers("kube-apiserver.yaml") == [name]
    assert {"duplicate-static-pod", "second-apiserver"} <= {p.code for p in d.problems}


def test_renamed_copy_is_a_second_apiserver_even_with_another_pod_name():
    other = MANIFEST_TEXT.replace("name: kube-apiserver,", "name: apiserver-test,")
    d = analyze_manifest_dir(
        [DirEntry("kube-apiserver.yaml", text=MANIFEST_TEXT), DirEntry("test.yaml", text=other)]
    )
    assert [p.code for p in d.problems] == ["second-apiserver"]


def test_hidden_files_folders_and_non_pods():
    d = analyze_manifest_dir(
        [
            DirEntry("kube-apiserver.yaml", text=MANIFEST_TEXT),
            DirEntry(".kube-apiserver.yaml.swp", text=MANIFEST_TEXT),
            DirEntry("backup", kind="dir"),
            DirEntry("README", text="notes\n"),
            DirEntry("junk.yaml", text="a: ["),
        ]
    )
    assert d.apiserver_files == ["kube-apiserver.yaml"]
    assert set(d.ignored) == {".kube-apiserver.yaml.swp", "backup"}
    assert [p.code for p in d.problems if p.severity == "warning"] == ["manifest-not-pod", "manifest-not-pod"]


# ---- loading the policy the flag names ------------------------------------------------------------


def fake_loader(text: str):
    ok = "rules:" in text and "v1beta1" not in text
    return SimpleNamespace(
        ok=ok, policy=object() if ok else None, errors=[] if ok else ["fake: bad policy"], warnings=[]
    )


def test_policy_is_loaded_through_the_mount_with_an_injected_loader():
    pod = audited()
    pod["spec"]["containers"][0]["volumeMounts"][1] = {
        "name": "audit",
        "mountPath": "/cfg/p.yaml",
        "readOnly": True,
    }
    pod["spec"]["containers"][0]["command"] = [
        c.replace(POLICY, "/cfg/p.yaml") for c in pod["spec"]["containers"][0]["command"]
    ]
    a = analyze_manifest(pod, HOST)
    load = load_manifest_policy(a, HOST, loader=fake_loader)
    assert load.ok and load.host_path == POLICY and load.mounted and load.container_path == "/cfg/p.yaml"
    broken = DictHost({POLICY: "apiVersion: audit.k8s.io/v1beta1\nrules: []\n"})
    load = load_manifest_policy(analyze_manifest(pod, broken), broken, loader=fake_loader)
    assert load.status == "invalid" and "fake: bad policy" in load.message


def test_policy_with_the_real_engine():
    a = analyze_manifest(audited(), HOST)
    assert load_manifest_policy(a, HOST).ok
    empty = DictHost({POLICY: "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: []\n"})
    load = load_manifest_policy(analyze_manifest(audited(), empty), empty)
    assert load.status == "invalid" and "0 rules" in load.message


def test_policy_missing_or_flag_unset():
    assert load_manifest_policy(analyze_manifest(base_pod(), HOST), HOST).status == "no-flag"
    nothing = DictHost({})
    assert (
        load_manifest_policy(analyze_manifest(audited(), nothing), nothing, loader=fake_loader).status
        == "missing"
    )


@pytest.mark.parametrize("dirs", [(), ("/var/log/kubernetes/audit",)])
def test_log_path_naming_the_mounted_directory_is_not_called_a_file_mount(dirs):
    pod = audited()
    cmd = pod["spec"]["containers"][0]["command"]
    cmd[:] = [
        w if not w.startswith("--audit-log-path=") else "--audit-log-path=/var/log/kubernetes/audit"
        for w in cmd
    ]
    a = analyze_manifest(pod, DictHost({POLICY: GOOD_POLICY}, dirs))
    assert codes(a).count("log-path-is-directory") == 1 and "log-file-mount" not in codes(a)
    assert not a.log.ok and not a.log.file_mount


def _policy_subpath_pod(vol_type: str) -> dict:
    pod = audited()
    mounts, vols = pod["spec"]["containers"][0]["volumeMounts"], pod["spec"]["volumes"]
    i = next(n for n, m in enumerate(mounts) if m["mountPath"] == POLICY)
    mounts[i]["subPath"] = "policy.yaml"
    vol = next(v for v in vols if v["name"] == mounts[i]["name"])
    vol["hostPath"] = {"path": "/etc/kubernetes/audit", "type": vol_type}
    return pod


def test_policy_file_mounted_by_subpath_of_a_directory_volume():
    # kubelet checks the type against the volume's path (a directory); the subPath picks the file
    a = analyze_manifest(
        _policy_subpath_pod("Directory"), DictHost({POLICY: GOOD_POLICY}, ("/etc/kubernetes/audit",))
    )
    assert a.policy.ok and a.policy.host_path == POLICY
    a = analyze_manifest(
        _policy_subpath_pod("File"), DictHost({POLICY: GOOD_POLICY}, ("/etc/kubernetes/audit",))
    )
    assert "policy-dir-type" in codes(a)
    a = analyze_manifest(_policy_subpath_pod("DirectoryOrCreate"), DictHost({}, ("/etc/kubernetes/audit",)))
    assert "policy-missing-on-host" in codes(a)


def test_quoted_read_only_is_a_decode_error_for_kubelet():
    pod = audited()
    pod["spec"]["containers"][0]["volumeMounts"][1]["readOnly"] = "true"
    a = analyze_manifest(pod, HOST)
    assert "mount-readonly-not-bool" in codes(a) and not a.readable
