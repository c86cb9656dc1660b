"""The cluster double behaves like the API where the grader depends on it (through the real client, over
TLS)."""

from __future__ import annotations

import pytest
import yaml

from grader.collectors.kube import KubeApi, KubeError, load_configuration
from tests.live.double import node_support

pytestmark = [pytest.mark.slow, pytest.mark.skipif(node_support() is not None, reason=str(node_support()))]


@pytest.fixture
def apis(cluster, tmp_path):
    def connect(token: str) -> KubeApi:
        path = tmp_path / f"kc-{token[:6]}"
        path.write_text(yaml.safe_dump(cluster.api.kubeconfig(token)))
        return KubeApi(load_configuration(kubeconfig=str(path)), timeout=10)

    admin, grader = connect(cluster.api.admin_token), connect(cluster.grader_token)
    yield cluster, admin, grader
    admin.close()
    grader.close()


def _pod(name: str, sc: dict, **spec) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "busybox", "securityContext": sc}], **spec},
    }


def _create(api: KubeApi, obj: dict) -> dict:
    ns = obj["metadata"].get("namespace")
    return api.request("POST", api.info(obj["kind"]).path(ns), body=obj, content_type="application/json")


def test_rejections_in_the_apiservers_order(apis):
    _cluster, admin, _ = apis
    with pytest.raises(KubeError) as exc:  # a quoted boolean: decode error, 400
        _create(admin, _pod("a", {"privileged": "true"}))
    assert exc.value.status == 400 and "cannot unmarshal string" in str(exc.value)
    with pytest.raises(KubeError) as exc:  # validation, 422
        _create(admin, _pod("b", {"privileged": True, "allowPrivilegeEscalation": False}))
    assert exc.value.status == 422 and "`allowPrivilegeEscalation` to false and `privileged` to true" in str(
        exc.value
    )
    admin.apply(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "locked", "labels": {"pod-security.kubernetes.io/enforce": "baseline"}},
        }
    )
    with pytest.raises(KubeError) as exc:  # admission (PSA through the podsec engine), 403
        _create(admin, {**_pod("c", {"privileged": True}), "metadata": {"name": "c", "namespace": "locked"}})
    assert exc.value.status == 403 and 'violates PodSecurity "baseline:latest"' in str(exc.value)


def test_rbac_denies_what_the_grader_roles_do_not_grant(apis):
    _cluster, _admin, grader = apis
    with pytest.raises(KubeError) as exc:
        grader.list("Secret")
    assert exc.value.status == 403 and 'cannot list resource "secrets"' in str(exc.value)
    assert isinstance(grader.list("Pod"), list)


def test_deployment_rollout_state_and_garbage_collection(apis):
    cluster, admin, _ = apis
    dep = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx"}]},
            },
        },
    }
    admin.apply(dep)
    live = admin.get("Deployment", "default", "web")
    assert live["metadata"]["generation"] == 1 and live["status"]["updatedReplicas"] == 2
    admin.patch(
        "Deployment", "default", "web", {"spec": {"template": {"metadata": {"annotations": {"x": "1"}}}}}
    )
    live = admin.get("Deployment", "default", "web")
    assert live["metadata"]["generation"] == 2 and live["status"]["observedGeneration"] == 2
    assert len(admin.list("ReplicaSet", "default")) == 2 and len(admin.list("Pod", "default")) == 2
    # a hand-written owner reference to a UID that does not exist: created, then collected
    orphan = _pod("orphan", {})
    orphan["metadata"]["ownerReferences"] = [
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": "gone",
            "uid": "00000000-0000-0000-0000-000000000000",
        }
    ]
    _create(admin, orphan)
    assert admin.get("Pod", "default", "orphan") is None
    admin.delete("Deployment", "default", "web")
    assert admin.list("Pod", "default") == [] and admin.list("ReplicaSet", "default") == []


def test_scheduling_and_the_kubelets_refusal(apis):
    _cluster, admin, _ = apis
    _create(admin, _pod("w", {}))
    _create(admin, _pod("cp", {}, nodeSelector={"node-role.kubernetes.io/control-plane": ""}))
    _create(admin, _pod("nonroot", {"runAsNonRoot": True}))
    assert admin.get("Pod", "default", "w")["spec"]["nodeName"] == "node01"
    stuck = admin.get("Pod", "default", "cp")  # selects the control plane but does not tolerate its taint
    assert "nodeName" not in stuck["spec"] and stuck["status"]["conditions"][0]["reason"] == "Unschedulable"
    waiting = admin.get("Pod", "default", "nonroot")["status"]["containerStatuses"][0]["state"]["waiting"]
    assert waiting["reason"] == "CreateContainerConfigError"


def test_exec_over_websocket_against_the_scripted_file_system(apis):
    _cluster, admin, _ = apis
    ro = _pod("ro", {"readOnlyRootFilesystem": True})
    ro["spec"]["containers"][0]["volumeMounts"] = [{"name": "tmp", "mountPath": "/tmp"}]
    ro["spec"]["volumes"] = [{"name": "tmp", "emptyDir": {}}]
    _create(admin, ro)
    _create(admin, _pod("user", {"runAsUser": 1000}))
    assert admin.exec("default", "ro", ["touch", "/x"]) == {
        "rc": 1,
        "stdout": "",
        "stderr": "touch: /x: Read-only file system\n",
    }
    assert admin.exec("default", "ro", ["touch", "/tmp/x"])["rc"] == 0
    assert "Permission denied" in admin.exec("default", "user", ["touch", "/x"])["stderr"]
