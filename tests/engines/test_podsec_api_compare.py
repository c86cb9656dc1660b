"""What the API server refuses (podsec.api_rejects) and the two-way comparison that ignores what it adds on
read-back (podsec.changes): the rules lab5, lab6 and lab8 Q4 grade with, and the cluster double reuses."""

from __future__ import annotations

import copy

import pytest

from grader.engines import podsec


def deployment(**container_sc) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "ns"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "nginx",
                            "image": "nginx:1.27-alpine",
                            "ports": [{"containerPort": 80}],
                            "securityContext": dict(container_sc),
                            "volumeMounts": [
                                {"name": "conf", "mountPath": "/etc/nginx/conf.d", "readOnly": True}
                            ],
                        }
                    ],
                    "volumes": [{"name": "conf", "configMap": {"name": "web-conf"}}],
                },
            },
        },
    }


# ---- api_rejects ---------------------------------------------------------------------------------------


def test_a_valid_deployment_is_accepted():
    assert podsec.api_rejects(deployment(readOnlyRootFilesystem=True, allowPrivilegeEscalation=False)) == []


@pytest.mark.parametrize(
    "sc,status,needle",
    [
        (
            {"privileged": True, "allowPrivilegeEscalation": False},
            422,
            "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
        ),
        (
            {"capabilities": {"add": ["CAP_SYS_ADMIN"]}, "allowPrivilegeEscalation": False},
            422,
            "`capabilities.Add` CAP_SYS_ADMIN",
        ),
        (
            {"privileged": "true"},
            400,
            "cannot unmarshal string into Go struct field "
            "SecurityContext.spec.template.spec.containers.securityContext.privileged of type bool",
        ),
        ({"runAsUser": "1000"}, 400, "of type int64"),
        (
            {"allowPrivilegeEscalaton": False},
            400,
            'unknown field "spec.template.spec.containers.securityContext.allowPrivilegeEscalaton"',
        ),
        ({"procMount": "Unmasked"}, 422, "`hostUsers` must be false"),
        ({"runAsUser": -1}, 422, "must be between 0 and 2147483647"),
    ],
)
def test_what_the_api_refuses(sc, status, needle):
    obj = deployment(**sc)
    problems = podsec.api_rejects(obj)
    assert problems and problems[0].status == status
    assert needle in podsec.rejection_message(obj, problems)


def test_sys_admin_without_the_prefix_passes_validation_but_still_escalates():
    obj = deployment(capabilities={"add": ["SYS_ADMIN"]}, allowPrivilegeEscalation=False)
    assert podsec.api_rejects(obj) == []
    ref = podsec.pod_specs(obj)[0]
    assert podsec.effective(ref, ref.containers[0]).allow_privilege_escalation.value is True


def test_a_pod_level_container_field_is_refused_strictly_and_dropped_with_warn():
    obj = deployment()
    obj["spec"]["template"]["spec"]["securityContext"] = {"readOnlyRootFilesystem": True}
    strict = podsec.api_rejects(obj)
    assert [p.status for p in strict] == [400] and strict[0].unknown_field
    assert (
        'strict decoding error: unknown field "spec.template.spec.securityContext.readOnlyRootFilesystem"'
        in podsec.rejection_message(obj, strict)
    )
    assert podsec.api_rejects(obj, "Warn") == []  # the server's default: accepted, the field dropped
    assert podsec.unknown_fields(obj) == ["spec.template.spec.securityContext.readOnlyRootFilesystem"]


def test_type_errors_fail_whatever_the_field_validation():
    assert podsec.api_rejects(deployment(privileged="true"), "Ignore")[0].status == 400


@pytest.mark.parametrize(
    "edit,needle",
    [
        (
            lambda s: s["containers"][0]["volumeMounts"].append({"name": "nope", "mountPath": "/x"}),
            'Not found: "nope"',
        ),
        (
            lambda s: s["containers"][0]["volumeMounts"].append(
                {"name": "conf", "mountPath": "/etc/nginx/conf.d"}
            ),
            "must be unique",
        ),
        (lambda s: s["volumes"].append({"name": "conf", "emptyDir": {}}), 'Duplicate value: "conf"'),
        (
            lambda s: s["volumes"].append({"name": "two", "emptyDir": {}, "hostPath": {"path": "/"}}),
            "more than 1 volume type",
        ),
        (lambda s: s["containers"].append({"name": "nginx", "image": "x"}), 'Duplicate value: "nginx"'),
        (lambda s: s["containers"][0].pop("image"), "Required value"),
    ],
)
def test_pod_spec_validation(edit, needle):
    obj = deployment()
    edit(obj["spec"]["template"]["spec"])
    assert needle in podsec.rejection_message(obj, podsec.api_rejects(obj))


def test_selector_must_match_the_template_labels():
    obj = deployment()
    obj["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    assert "`selector` does not match template `labels`" in podsec.rejection_message(
        obj, podsec.api_rejects(obj)
    )


def test_kinds_without_a_pod_spec_are_not_judged():
    assert podsec.api_rejects({"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"x": "y"}}) == []


# ---- changes -------------------------------------------------------------------------------------------


def as_the_api_returns_it(obj: dict) -> dict:
    """What `kubectl get -o yaml` shows for ``obj`` after a create: defaults and status added."""
    out = copy.deepcopy(obj)
    out["metadata"].update(
        {"uid": "u1", "generation": 1, "resourceVersion": "1", "creationTimestamp": "2026-12-01T00:00:00Z"}
    )
    spec = out["spec"]
    spec.update(
        {
            "progressDeadlineSeconds": 600,
            "revisionHistoryLimit": 10,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            },
        }
    )
    tmpl = spec["template"]
    tmpl["metadata"]["creationTimestamp"] = None
    pod = tmpl["spec"]
    pod.update(
        {
            "dnsPolicy": "ClusterFirst",
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "terminationGracePeriodSeconds": 30,
            "securityContext": {},
        }
    )
    for c in pod["containers"]:
        c.update(
            {
                "imagePullPolicy": "IfNotPresent",
                "resources": {},
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
            }
        )
        for p in c.get("ports", []):
            p["protocol"] = "TCP"
    for v in pod["volumes"]:
        if "configMap" in v:
            v["configMap"]["defaultMode"] = 420
    out["status"] = {"replicas": 2}
    return out


def test_server_defaults_are_not_changes():
    obj = deployment(readOnlyRootFilesystem=True)
    assert podsec.changes(obj, as_the_api_returns_it(obj)) == []
    assert podsec.changes(as_the_api_returns_it(obj), obj) == []


@pytest.mark.parametrize(
    "edit,path",
    [
        (lambda c, p: c.update(command=["nginx"]), "containers[nginx].command"),
        (lambda c, p: c.update(env=[{"name": "A", "value": "1"}]), "containers[nginx].env"),
        (lambda c, p: c.update(args=["-x"]), "containers[nginx].args"),
        (lambda c, p: c.update(imagePullPolicy="Always"), "containers[nginx].imagePullPolicy"),
        (lambda c, p: c.update(workingDir="/tmp"), "containers[nginx].workingDir"),
        (lambda c, p: c.update(livenessProbe={"tcpSocket": {"port": 80}}), "containers[nginx].livenessProbe"),
        (lambda c, p: c["ports"][0].update(hostPort=80), "containers[nginx].ports[0].hostPort"),
        (lambda c, p: p.update(hostNetwork=True), "spec.hostNetwork"),
        (lambda c, p: p.update(serviceAccountName="admin"), "spec.serviceAccountName"),
        (lambda c, p: p.update(nodeName="node01"), "spec.nodeName"),
        (lambda c, p: p["volumes"][0]["configMap"].update(name="other"), "volumes[conf].configMap.name"),
        (lambda c, p: c["volumeMounts"][0].update(mountPath="/etc/nginx"), "volumeMounts[conf].mountPath"),
    ],
)
def test_additions_count_as_much_as_removals(edit, path):
    start = deployment(readOnlyRootFilesystem=True)
    now = copy.deepcopy(start)
    pod = now["spec"]["template"]["spec"]
    edit(pod["containers"][0], pod)
    found = podsec.changes(start, now, {podsec.SECURITY_CONTEXTS, podsec.EMPTYDIR_VOLUMES})
    assert found and path in found[0].path, found
    assert podsec.changes(now, start), "and the other way round"


def test_allowed_edits_are_only_the_named_ones():
    start = deployment()
    now = copy.deepcopy(start)
    pod = now["spec"]["template"]["spec"]
    pod["containers"][0]["securityContext"] = {
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
    }
    pod["securityContext"] = {"seccompProfile": {"type": "RuntimeDefault"}}
    pod["volumes"].append({"name": "tmp", "emptyDir": {"medium": "Memory"}})
    pod["containers"][0]["volumeMounts"].append({"name": "tmp", "mountPath": "/tmp"})
    lab5 = {podsec.SECURITY_CONTEXTS, podsec.EMPTYDIR_VOLUMES}
    assert podsec.changes(start, now, lab5) == []
    assert podsec.changes(start, now, {podsec.SECURITY_CONTEXTS}), "emptyDirs are lab5's, not lab6's"
    pod["volumes"].append({"name": "host", "hostPath": {"path": "/"}})
    assert [c.path for c in podsec.changes(start, now, lab5)] == ["spec.template.spec.volumes[host]"]


def test_host_namespaces_may_only_be_switched_off():
    start = deployment()
    start["spec"]["template"]["spec"]["hostPID"] = True
    now = copy.deepcopy(start)
    now["spec"]["template"]["spec"]["hostPID"] = False
    assert podsec.changes(start, now, {podsec.HOST_NAMESPACES_OFF}) == []
    now["spec"]["template"]["spec"]["hostNetwork"] = True
    assert podsec.changes(start, now, {podsec.HOST_NAMESPACES_OFF})


def test_a_bare_pod_read_back_from_a_cluster_is_unchanged():
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36", "command": ["sleep", "1d"]}]},
    }
    live = copy.deepcopy(pod)
    live["spec"].update(
        {
            "nodeName": "node01",
            "enableServiceLinks": True,
            "priority": 0,
            "preemptionPolicy": "PreemptLowerPriority",
            "serviceAccount": "default",
            "serviceAccountName": "default",
            "tolerations": [
                {
                    "key": "node.kubernetes.io/not-ready",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
                {
                    "key": "node.kubernetes.io/unreachable",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
            ],
            "volumes": [
                {
                    "name": "kube-api-access-x7k2p",
                    "projected": {
                        "defaultMode": 420,
                        "sources": [{"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}],
                    },
                }
            ],
        }
    )
    live["spec"]["containers"][0]["volumeMounts"] = [
        {
            "name": "kube-api-access-x7k2p",
            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
            "readOnly": True,
        }
    ]
    assert podsec.changes(pod, live) == []
    live["spec"]["tolerations"].append({"key": "gpu", "operator": "Exists"})
    assert [c.path for c in podsec.changes(pod, live)] == ["spec.tolerations"]


def test_messages_say_what_changed_and_how():
    start = deployment()
    now = copy.deepcopy(start)
    now["spec"]["replicas"] = 1
    assert str(podsec.changes(start, now)[0]) == "spec.replicas changed from 2 to 1"
    now = copy.deepcopy(start)
    del now["spec"]["replicas"]
    assert str(podsec.changes(start, now)[0]) == "spec.replicas changed from 2 to 1"  # absent means 1


def test_apparmor_and_seccomp_annotations_count_as_security_contexts():
    start = deployment()
    now = copy.deepcopy(start)
    now["spec"]["template"]["metadata"]["annotations"] = {
        "container.apparmor.security.beta.kubernetes.io/nginx": "runtime/default"
    }
    assert podsec.changes(start, now, {podsec.SECURITY_CONTEXTS}) == []
    now["spec"]["template"]["metadata"]["annotations"]["team"] = "web"
    assert [c.path for c in podsec.changes(start, now, {podsec.SECURITY_CONTEXTS})] == [
        "spec.template.metadata.annotations"
    ]


def test_odd_shapes_never_raise():
    """A learner's manifest can hold anything anywhere: the engine answers, it never raises."""
    import random

    odd = [None, 0, -1, "x", "", True, [], {}, [1], ["a", {"b": 2}], {"name": ["x"]}, {"a": None}]
    rng = random.Random(7)
    for _ in range(400):
        obj = deployment(readOnlyRootFilesystem=True)
        node, key = obj, None
        for _depth in range(rng.randint(1, 7)):  # walk to a random place and put an odd value there
            if isinstance(node, dict) and node:
                key = rng.choice(list(node))
                if rng.random() < 0.4 or not isinstance(node[key], dict | list):
                    node[key] = copy.deepcopy(rng.choice(odd))
                    break
                node = node[key]
            elif isinstance(node, list) and node:
                i = rng.randrange(len(node))
                if rng.random() < 0.4 or not isinstance(node[i], dict | list):
                    node[i] = copy.deepcopy(rng.choice(odd))
                    break
                node = node[i]
        start = deployment()
        podsec.api_rejects(obj)
        podsec.rejection_message(obj, podsec.api_rejects(obj))
        podsec.changes(
            start, obj, {podsec.SECURITY_CONTEXTS, podsec.EMPTYDIR_VOLUMES, podsec.HOST_NAMESPACES_OFF}
        )
        podsec.changes(obj, start)
        from grader.engines.podsec.profiles import profile_rows

        profile_rows(obj, "lab5")
        profile_rows(obj, "lab6")
