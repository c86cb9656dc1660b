"""The pod security engine: pod specs in every kind, effective values as the kubelet computes them,
writable mounts, CKS findings, and PSS versions/levels (the full PSA oracle is tests/conformance)."""

from __future__ import annotations

import copy

import pytest

from grader.engines import podsec

POD_SPEC = {
    "securityContext": {"runAsUser": 0, "runAsNonRoot": False, "seccompProfile": {"type": "RuntimeDefault"}},
    "initContainers": [{"name": "init", "image": "busybox", "securityContext": {"runAsUser": 1000}}],
    "containers": [{"name": "app", "image": "nginx"}],
    "ephemeralContainers": [{"name": "debug", "image": "busybox", "securityContext": {"privileged": True}}],
}


def wrap(kind: str, spec: dict) -> dict:
    spec = copy.deepcopy(spec)
    tmpl = {"metadata": {"labels": {"a": "b"}}, "spec": spec}
    body = {
        "Pod": {"spec": spec},
        "PodTemplate": {"template": tmpl},
        "CronJob": {"spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": tmpl}}}},
    }.get(kind, {"spec": {"template": tmpl}})
    return {"apiVersion": "v1", "kind": kind, "metadata": {"name": "x", "namespace": "ns"}, **body}


@pytest.mark.parametrize(
    "kind,path",
    [
        ("Pod", "spec"),
        ("PodTemplate", "template.spec"),
        ("Deployment", "spec.template.spec"),
        ("ReplicaSet", "spec.template.spec"),
        ("StatefulSet", "spec.template.spec"),
        ("DaemonSet", "spec.template.spec"),
        ("Job", "spec.template.spec"),
        ("ReplicationController", "spec.template.spec"),
        ("CronJob", "spec.jobTemplate.spec.template.spec"),
    ],
)
def test_pod_spec_found_in_every_workload_kind(kind, path):
    refs = podsec.pod_specs(wrap(kind, POD_SPEC))
    assert [r.path for r in refs] == [path]
    cs = podsec.containers(refs[0])
    assert [(c.name, c.path) for c in cs] == [
        ("init", f"{path}.initContainers[0]"),
        ("app", f"{path}.containers[0]"),
        ("debug", f"{path}.ephemeralContainers[0]"),
    ]
    # the same verdict whatever wraps the pod
    assert {v.check_id for v in podsec.evaluate_pss(wrap(kind, POD_SPEC), "restricted")} == {
        v.check_id for v in podsec.evaluate_pss(wrap("Pod", POD_SPEC), "restricted")
    }


def test_effective_values_container_over_pod():
    ref = podsec.pod_specs(wrap("Pod", POD_SPEC))[0]
    init, app, debug = ref.containers
    e_init, e_app, e_debug = (podsec.effective(ref, c) for c in (init, app, debug))
    assert (e_init.run_as_user.value, e_init.run_as_user.source) == (1000, "container")
    assert (e_app.run_as_user.value, e_app.run_as_user.source) == (0, "pod")
    assert e_app.runs_as_root is True and e_init.runs_as_root is False
    assert e_app.seccomp_type.value == "RuntimeDefault" and e_app.seccomp_type.source == "pod"
    # unset allowPrivilegeEscalation is allowed; privileged implies it
    assert (
        e_app.allow_privilege_escalation.value is True
        and e_app.allow_privilege_escalation.source == "default"
    )
    assert e_debug.allow_privilege_escalation.source == "implied"
    # readOnlyRootFilesystem is per container only: a pod-level one is ignored (and reported)
    spec = copy.deepcopy(POD_SPEC)
    spec["securityContext"]["readOnlyRootFilesystem"] = True
    ref = podsec.pod_specs(wrap("Pod", spec))[0]
    assert podsec.effective(ref, ref.containers[1]).read_only_root_filesystem.value is None
    assert any(p.severity == "warning" and "readOnlyRootFilesystem" in p.path for p in ref.problems)


def test_cap_sys_admin_allows_escalation_and_runasnonroot_proves_non_root():
    pod = wrap(
        "Pod",
        {
            "securityContext": {"runAsNonRoot": True},
            "containers": [
                {
                    "name": "a",
                    "image": "x",
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"add": ["SYS_ADMIN"]},
                    },
                }
            ],
        },
    )
    ref = podsec.pod_specs(pod)[0]
    eff = podsec.effective(ref, ref.containers[0])
    assert eff.allow_privilege_escalation.value is True
    assert eff.runs_as_root is False
    unset = wrap("Pod", {"containers": [{"name": "a", "image": "x"}]})
    ref = podsec.pod_specs(unset)[0]
    assert podsec.effective(ref, ref.containers[0]).runs_as_root is None  # the image decides


def test_writable_mounts():
    pod = wrap(
        "Pod",
        {
            "containers": [
                {
                    "name": "a",
                    "image": "x",
                    "volumeMounts": [
                        {"name": "tmp", "mountPath": "/tmp"},
                        {"name": "cfg", "mountPath": "/etc/cfg"},
                        {"name": "host", "mountPath": "/host"},
                        {"name": "ro", "mountPath": "/ro", "readOnly": True},
                        {"name": "sec", "mountPath": "/sec"},
                        {"name": "pvc", "mountPath": "/data"},
                        {"name": "nosrc", "mountPath": "/n"},
                    ],
                }
            ],
            "volumes": [
                {"name": "tmp", "emptyDir": {}},
                {"name": "cfg", "configMap": {"name": "c"}},
                {"name": "host", "hostPath": {"path": "/"}},
                {"name": "ro", "emptyDir": {}},
                {"name": "sec", "secret": {"secretName": "s"}},
                {"name": "pvc", "persistentVolumeClaim": {"claimName": "c", "readOnly": True}},
                {"name": "nosrc"},
            ],
        },
    )
    ref = podsec.pod_specs(pod)[0]
    writable = {m.mount_path: m.source for m in podsec.writable_paths(ref, ref.containers[0])}
    assert writable == {"/tmp": "emptyDir", "/host": "hostPath", "/n": "emptyDir"}


def test_hardening_findings_by_effective_value():
    pod = wrap(
        "Deployment",
        {
            "hostPID": True,
            "securityContext": {"runAsUser": 0},
            "initContainers": [{"name": "i", "image": "x", "securityContext": {"privileged": True}}],
            "containers": [
                {
                    "name": "c",
                    "image": "x",
                    "securityContext": {
                        "runAsUser": 1000,
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                    },
                }
            ],
        },
    )
    got = {(f.check_id, f.path.rsplit(".", 1)[-1], f.value) for f in podsec.hardening_findings(pod)}
    assert got == {
        ("hostNamespaces", "spec", "true"),
        ("privileged", "initContainers[0]", "true"),
        ("allowPrivilegeEscalation", "initContainers[0]", "implied by privileged: true"),
        ("runAsRoot", "initContainers[0]", "0"),
        ("readOnlyRootFilesystem", "initContainers[0]", "unset"),
    }
    assert podsec.is_elevated(pod)


def test_pod_level_root_overridden_by_every_container_is_not_elevated():
    pod = wrap(
        "Pod",
        {
            "securityContext": {"runAsUser": 0},
            "containers": [
                {
                    "name": "c",
                    "image": "x",
                    "securityContext": {"runAsUser": 2000, "allowPrivilegeEscalation": False},
                }
            ],
        },
    )
    assert not podsec.is_elevated(pod)
    # ...but PSA restricted still rejects the explicit pod-level 0
    assert "runAsUser" in {v.check_id for v in podsec.evaluate_pss(pod, "restricted")}


RESTRICTED_OK = {
    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    "containers": [
        {
            "name": "c",
            "image": "x",
            "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        }
    ],
}


def _with(**changes) -> dict:
    spec = copy.deepcopy(RESTRICTED_OK)
    for path, value in changes.items():
        node = spec
        keys = path.split("__")
        for k in keys[:-1]:
            node = node[int(k)] if k.isdigit() else node.setdefault(k, {})
        node[keys[-1]] = value
    return wrap("Pod", spec)


@pytest.mark.parametrize(
    "pod,level,version,expect",
    [
        (
            _with(containers__0__securityContext__runAsUser=0),
            "restricted",
            "v1.22",
            set(),
        ),  # runAsUser from 1.23
        (_with(containers__0__securityContext__runAsUser=0), "restricted", "v1.23", {"runAsUser"}),
        (_with(hostUsers=False, containers__0__securityContext__runAsUser=0), "restricted", "v1.35", set()),
        (
            _with(hostUsers=False, containers__0__securityContext__runAsUser=0),
            "restricted",
            "v1.34",
            {"runAsUser"},
        ),
        (_with(os={"name": "windows"}, containers__0__securityContext={}), "restricted", "v1.25", set()),
        (
            _with(os={"name": "windows"}, containers__0__securityContext={}),
            "restricted",
            "v1.24",
            {"allowPrivilegeEscalation", "capabilities_restricted"},
        ),
        (
            _with(securityContext__sysctls=[{"name": "net.ipv4.ip_local_reserved_ports", "value": "1"}]),
            "baseline",
            "v1.26",
            {"sysctls"},
        ),
        (
            _with(securityContext__sysctls=[{"name": "net.ipv4.ip_local_reserved_ports", "value": "1"}]),
            "baseline",
            "v1.27",
            set(),
        ),
        (_with(containers__0__securityContext__allowPrivilegeEscalation=True), "baseline", "latest", set()),
        (_with(containers__0__securityContext__allowPrivilegeEscalation=True), "restricted", "v1.7", set()),
        (
            _with(containers__0__securityContext__allowPrivilegeEscalation=True),
            "restricted",
            "v1.8",
            {"allowPrivilegeEscalation"},
        ),
        (
            _with(volumes=[{"name": "h", "hostPath": {"path": "/"}}]),
            "baseline",
            "latest",
            {"hostPathVolumes"},
        ),
        (
            _with(volumes=[{"name": "h", "hostPath": {"path": "/"}}]),
            "restricted",
            "latest",
            {"restrictedVolumes"},
        ),
        (
            _with(containers__0__securityContext__capabilities={"drop": ["ALL"], "add": ["SYS_ADMIN"]}),
            "restricted",
            "v1.21",
            {"capabilities_baseline"},
        ),
        (
            _with(containers__0__securityContext__capabilities={"drop": ["ALL"], "add": ["SYS_ADMIN"]}),
            "restricted",
            "v1.22",
            {"capabilities_restricted"},
        ),
        (_with(hostNetwork=True), "privileged", "latest", set()),
    ],
)
def test_pss_versions_levels_and_overrides(pod, level, version, expect):
    assert {v.check_id for v in podsec.evaluate_pss(pod, level, version)} == expect


def test_admission_message_has_psa_shape():
    pod = _with(hostNetwork=True, hostPID=True, containers__0__securityContext__privileged=True)
    msg = podsec.admission_message(podsec.evaluate_pss(pod, "baseline", "latest"), "baseline", "latest")
    assert msg.startswith(
        'violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true, hostPID=true)'
    )
    assert 'privileged (container "c" must not set securityContext.privileged=true)' in msg
    assert podsec.admission_message([], "baseline") == ""


@pytest.mark.parametrize(
    "text,minor", [("latest", podsec.LATEST_MINOR), ("v1.30", 30), ("1.8", 8), ("v1.99", podsec.LATEST_MINOR)]
)
def test_parse_version(text, minor):
    assert podsec.parse_version(text) == minor


@pytest.mark.parametrize("bad", ["v2.0", "1.x", "newest"])
def test_parse_version_rejects_nonsense(bad):
    with pytest.raises(podsec.PolicyVersionError, match="not 'latest'"):
        podsec.parse_version(bad)


def test_fast_elevated_path_agrees_with_the_findings():
    """is_elevated() has a hot path for big snapshots; it must say what elevated_findings() says."""
    import random

    rng = random.Random(5)
    values = [None, True, False, 0, 1000, "0", "true", 1]

    def sc() -> dict:
        keys = ["privileged", "allowPrivilegeEscalation", "runAsUser", "runAsNonRoot"]
        out = {k: rng.choice(values) for k in keys if rng.random() < 0.6}
        if rng.random() < 0.1:
            out["capabilities"] = {"add": [rng.choice(["SYS_ADMIN", "NET_ADMIN", "CAP_SYS_ADMIN"])]}
        return {k: v for k, v in out.items() if v is not None}

    for _ in range(3000):
        spec = {
            "containers": [
                {"name": f"c{i}", "image": "x", "securityContext": sc()} for i in range(rng.randint(1, 2))
            ]
        }
        if rng.random() < 0.3:
            spec["initContainers"] = [{"name": "i", "image": "x", "securityContext": sc()}]
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            if rng.random() < 0.1:
                spec[key] = rng.choice(values)
        if rng.random() < 0.5:
            spec["securityContext"] = {k: v for k, v in sc().items() if k in ("runAsUser", "runAsNonRoot")}
        pod = wrap("Pod", spec)
        ref = podsec.pod_specs(pod)[0]
        if any(p.blocking for p in ref.problems):
            assert podsec.is_elevated(pod)
            continue
        assert podsec.is_elevated(pod) == bool(podsec.elevated_findings(pod)), spec


def test_latest_means_the_clusters_own_minor():
    """PSA on a cluster reads `latest` as its own release and a newer label as its latest: a pinned 1.N
    cluster never evaluates a rule it does not have (the study tool passes grader.versions' minor)."""
    assert podsec.parse_version("latest", 35) == 35
    assert podsec.parse_version("v1.37", 35) == 35
    assert podsec.parse_version("v1.30", 35) == 30
    pod = {
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {
            "securityContext": {"sysctls": [{"name": "net.ipv4.tcp_slow_start_after_idle", "value": "0"}]},
            "containers": [{"name": "c", "image": "x"}],
        },
    }
    assert podsec.evaluate_pss(pod, "baseline", podsec.parse_version("latest", 36))  # allowed only from 1.37
    assert not podsec.evaluate_pss(pod, "baseline", podsec.parse_version("latest", 37))
