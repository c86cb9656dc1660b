"""Request attributes: the mapping shape, URL parsing (requestinfo.go) and the probe shorthand."""

from __future__ import annotations

import pytest

from grader.engines.audit_policy import RequestAttributes, RequestError, User, parse_request


@pytest.mark.parametrize(
    "method,url,expect",
    [
        ("GET", "/api/v1/namespaces/prod/pods/web", ("get", "prod", "", "pods", "", "web", True)),
        ("GET", "/api/v1/namespaces/prod/pods", ("list", "prod", "", "pods", "", "", True)),
        ("GET", "/api/v1/namespaces/prod/pods?watch=true", ("watch", "prod", "", "pods", "", "", True)),
        ("GET", "/api/v1/watch/namespaces/prod/pods", ("watch", "prod", "", "pods", "", "", True)),
        ("GET", "/api/v1/pods", ("list", "", "", "pods", "", "", True)),
        (
            "POST",
            "/api/v1/namespaces/prod/pods/web/exec?command=sh",
            ("create", "prod", "", "pods", "exec", "web", True),
        ),
        (
            "DELETE",
            "/apis/apps/v1/namespaces/prod/deployments",
            ("deletecollection", "prod", "apps", "deployments", "", "", True),
        ),
        (
            "PATCH",
            "/apis/apps/v1/namespaces/prod/deployments/web/scale",
            ("patch", "prod", "apps", "deployments", "scale", "web", True),
        ),
        (
            "PUT",
            "/api/v1/namespaces/prod/finalize",
            ("update", "prod", "", "namespaces", "finalize", "prod", True),
        ),
        ("GET", "/api/v1/namespaces/prod", ("get", "prod", "", "namespaces", "", "prod", True)),
        (
            "GET",
            "/api/v1/namespaces/prod/configmaps?fieldSelector=metadata.name%3Dleader",
            ("list", "prod", "", "configmaps", "", "leader", True),
        ),
        ("GET", "/healthz/etcd", ("get", "", "", "", "", "", False)),
        ("GET", "/apis/apps/v1", ("get", "", "", "", "", "", False)),
        ("GET", "/api/v1", ("get", "", "", "", "", "", False)),
        ("POST", "/logs/x", ("post", "", "", "", "", "", False)),
    ],
)
def test_from_url_follows_requestinfo(method: str, url: str, expect: tuple) -> None:
    a = RequestAttributes.from_url(method, url)
    assert (
        a.verb,
        a.namespace,
        a.api_group,
        a.resource,
        a.subresource,
        a.name,
        a.is_resource_request,
    ) == expect


def test_from_url_keeps_an_explicit_kube_verb() -> None:
    assert RequestAttributes.from_url("watch", "/api/v1/pods").verb == "watch"


def test_from_mapping_with_null_user_and_defaults() -> None:
    a = RequestAttributes.from_mapping({"user": None, "verb": "get", "path": "/healthz"})
    assert a.user is None and not a.is_resource_request and a.path == "/healthz"
    b = RequestAttributes.from_mapping({"resource": "pods"})
    assert b.is_resource_request and b.verb == "get"


@pytest.mark.parametrize(
    "data,needle",
    [
        ([], "must be a mapping"),
        ({"verbs": "get"}, "unknown key 'verbs'"),
        ({"verb": 3}, "request.verb: must be a string"),
        ({"user": "alice"}, "request.user: must be null"),
        ({"user": {"username": "a", "groups": "g"}}, "groups: must be a list"),
        ({"isResourceRequest": "yes"}, "isResourceRequest: must be true or false"),
    ],
)
def test_from_mapping_errors_name_the_key(data, needle: str) -> None:
    with pytest.raises(RequestError, match=needle):
        RequestAttributes.from_mapping(data)


def test_shorthand_resource_request() -> None:
    a = parse_request("update deployments.apps/scale web -n prod as system:serviceaccount:prod:ci")
    assert (a.verb, a.api_group, a.resource, a.subresource, a.name, a.namespace) == (
        "update",
        "apps",
        "deployments",
        "scale",
        "web",
        "prod",
    )
    assert a.user == User(
        "system:serviceaccount:prod:ci",
        ("system:serviceaccounts", "system:serviceaccounts:prod", "system:authenticated"),
    )
    assert a.path == "/apis/apps/v1/namespaces/prod/deployments/web/scale"


def test_shorthand_groups_users_and_non_resource() -> None:
    assert parse_request("get pods as bob in a,b").user == User("bob", ("a", "b"))
    assert parse_request("get pods as system:anonymous").user.groups == ("system:unauthenticated",)
    assert parse_request("get /healthz unauthenticated").user is None
    nr = parse_request("get /livez/ping as alice")
    assert not nr.is_resource_request and nr.path == "/livez/ping"
    assert parse_request("get endpointslices.discovery.k8s.io").api_group == "discovery.k8s.io"


@pytest.mark.parametrize("text", ["get", "get pods -n", "get pods a b", "get /x extra", 'get "pods'])
def test_shorthand_errors(text: str) -> None:
    with pytest.raises(RequestError):
        parse_request(text)


@pytest.mark.parametrize(
    "text",
    [
        "get secrets -n prod as alice",
        "create pods/exec web -n dev as bob",
        "get /healthz as system:anonymous",
        "list pods (cluster-wide) as alice",
    ],
)
def test_describe_round_trips_the_shorthand(text: str) -> None:
    a = parse_request(text.replace(" (cluster-wide)", ""))
    assert a.describe() == text
