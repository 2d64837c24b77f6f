"""Bad requests over HTTPS: each is answered with a Kubernetes Status (never a 500) and changes nothing."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Netplane
from tests.helpers import Client

pytestmark = pytest.mark.integration


def _server_errors(client: Client) -> float:
    metrics = client.request("GET", "/metrics")[1]
    return sum(float(v) for v in re.findall(r'^apiserver_request_total\{[^}]*code="5\d\d"[^}]*\} (\S+)',
                                            metrics, re.M))


@pytest.fixture
def client(netplane: Netplane) -> Iterator[Client]:
    c = Client(netplane)
    before = _server_errors(c)
    yield c
    assert _server_errors(c) == before, "a bad request was answered with a 5xx"


@pytest.fixture
def ns(client: Client) -> str:
    name = f"bad-{uuid.uuid4().hex[:8]}"
    status, _ = client.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                                 "metadata": {"name": name}})
    assert status == 201
    return name


def _status(body: Any, code: int, reason: str) -> None:
    assert isinstance(body, dict), body
    assert (body["kind"], body["apiVersion"], body["status"]) == ("Status", "v1", "Failure")
    assert (body["code"], body["reason"]) == (code, reason), body


def _cm(client: Client, ns: str, name: str = "kept") -> dict[str, Any]:
    status, body = client.request("POST", f"/api/v1/namespaces/{ns}/configmaps", {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"keep": "yes"}},
        "data": {"a": "1"}})
    assert status == 201, body
    return body  # type: ignore[no-any-return]


def _unchanged(client: Client, ns: str, before: dict[str, Any]) -> None:
    status, now = client.request("GET", f"/api/v1/namespaces/{ns}/configmaps/{before['metadata']['name']}")
    assert status == 200
    assert now["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert now["data"] == before["data"]


def test_malformed_bodies_are_400(client: Client, ns: str) -> None:
    cm = _cm(client, ns)
    coll, one = f"/api/v1/namespaces/{ns}/configmaps", f"/api/v1/namespaces/{ns}/configmaps/kept"
    for method, path, data, ctype in [
        ("POST", coll, b'{"apiVersion": "v1", "kind"', "application/json"),
        ("POST", coll, b"[1, 2", "application/json"),
        ("POST", coll, b"\xff\xfe{}", "application/json"),
        ("PUT", one, b'{"metadata": {"name": "kept"', "application/json"),
        ("PATCH", one, b"{bad", "application/merge-patch+json"),
        ("PATCH", one, b"{bad", "application/strategic-merge-patch+json"),
        ("POST", coll, b"metadata: [name\n  data: {", "application/yaml"),
        ("PATCH", one, b"x: [", "application/apply-patch+yaml"),
    ]:
        status, body = client.raw(method, path, data, ctype)
        assert status == 400, (method, data, body)
        _status(body, 400, "BadRequest")
    # Well-formed but not an object.
    for data in (b'"text"', b"[1]", b"null"):
        status, body = client.raw("POST", coll, data)
        assert status == 400, (data, body)
    _unchanged(client, ns, cm)
    status, body = client.raw("POST", coll, b"- 1\n- 2\n", "application/yaml")
    assert status == 400
    items = client.request("GET", coll + "?fieldSelector=metadata.name!=kube-root-ca.crt")[1]["items"]
    assert items == [client.request("GET", one)[1]]


def test_wrongly_typed_fields_are_400_with_the_go_decoder_message(client: Client, ns: str) -> None:
    cm = _cm(client, ns)
    _, body = client.request("PUT", f"/api/v1/namespaces/{ns}/configmaps/kept", {
        **cm, "data": {"a": 1}})
    _status(body, 400, "BadRequest")
    assert body["message"] == 'ConfigMap in version "v1" cannot be handled as a ConfigMap: json: cannot ' \
        "unmarshal number into Go struct field ConfigMap.data of type string"
    _, body = client.request("POST", f"/api/v1/namespaces/{ns}/configmaps",
                             {"apiVersion": 5, "kind": "ConfigMap", "metadata": {"name": "x"}})
    _status(body, 400, "BadRequest")
    assert "Go struct field .apiVersion of type string" in body["message"]
    _unchanged(client, ns, cm)


def test_body_over_3_mib_is_413(client: Client, ns: str) -> None:
    big = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"},
                      "data": {"a": "x" * (3 * 1024 * 1024)}}).encode()
    status, body = client.raw("POST", f"/api/v1/namespaces/{ns}/configmaps", big)
    assert status == 413
    _status(body, 413, "RequestEntityTooLarge")
    assert client.request("GET", f"/api/v1/namespaces/{ns}/configmaps/big")[0] == 404


def test_bad_selectors_and_parameters_are_400(client: Client, ns: str) -> None:
    coll = f"/api/v1/namespaces/{ns}/configmaps"
    status, body = client.request("GET", coll + "?labelSelector=a%20in%20(b")
    _status(body, 400, "BadRequest")
    status, body = client.request("GET", coll + "?fieldSelector=spec.nodeName%3Dx")
    _status(body, 400, "BadRequest")
    assert body["message"] == "field label not supported: spec.nodeName"
    # ... though pods do support that one.
    assert client.request("GET", f"/api/v1/namespaces/{ns}/pods?fieldSelector=spec.nodeName%3Dx")[0] == 200
    for query in ("limit=abc", "watch=true&timeoutSeconds=abc", "watch=true&resourceVersion=abc",
                  "continue=not-a-token", "fieldValidation=Sloppy"):
        method = "POST" if query.startswith("fieldValidation") else "GET"
        data = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "v"}} if method == "POST" else None
        status, body = client.request(method, f"{coll}?{query}", data)
        assert status == 400, (query, body)
        _status(body, 400, "BadRequest")
    status, body = client.request("GET", coll + "?limit=abc")
    assert body["message"] == 'strconv.ParseInt: parsing "abc": invalid syntax'


def test_stale_update_is_409_conflict(client: Client, ns: str) -> None:
    cm = _cm(client, ns)
    fresh = client.request("PUT", f"/api/v1/namespaces/{ns}/configmaps/kept", {**cm, "data": {"a": "2"}})[1]
    status, body = client.request("PUT", f"/api/v1/namespaces/{ns}/configmaps/kept", {**cm, "data": {"a": "3"}})
    assert status == 409
    _status(body, 409, "Conflict")
    assert body["message"] == 'Operation cannot be fulfilled on configmaps "kept": the object has been ' \
        "modified; please apply your changes to the latest version and try again"
    _unchanged(client, ns, fresh)
    stale_patch = json.dumps({"metadata": {"resourceVersion": cm["metadata"]["resourceVersion"]},
                              "data": {"a": "4"}}).encode()
    status, body = client.raw("PATCH", f"/api/v1/namespaces/{ns}/configmaps/kept", stale_patch,
                              "application/merge-patch+json")
    _status(body, 409, "Conflict")
    _unchanged(client, ns, fresh)


def test_create_conflicts_and_missing_namespace(client: Client, ns: str) -> None:
    cm = _cm(client, ns)
    status, body = client.request("POST", f"/api/v1/namespaces/{ns}/configmaps", {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kept"}, "data": {"a": "other"}})
    assert status == 409
    _status(body, 409, "AlreadyExists")
    assert body["message"] == 'configmaps "kept" already exists'
    assert body["details"] == {"name": "kept", "group": "", "kind": "configmaps"}
    _unchanged(client, ns, cm)
    status, body = client.request("POST", "/api/v1/namespaces/no-such-ns/configmaps", {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
    assert status == 404
    _status(body, 404, "NotFound")
    assert body["message"] == 'namespaces "no-such-ns" not found'


def test_body_not_matching_the_url_is_400(client: Client, ns: str) -> None:
    cm = _cm(client, ns)
    coll = f"/api/v1/namespaces/{ns}/configmaps"
    for body_in in ({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}},
                    {"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "x"}},
                    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "default"}}):
        status, body = client.request("POST", coll, body_in)
        assert status == 400, (body_in, body)
        _status(body, 400, "BadRequest")
    status, body = client.request("PUT", coll + "/kept", {**cm, "kind": "Secret"})
    _status(body, 400, "BadRequest")
    assert body["message"] == "the kind of the object (Secret) does not match the kind on the URL (ConfigMap)"
    status, body = client.request("PUT", coll + "/kept", {**cm, "metadata": {**cm["metadata"], "name": "other"}})
    _status(body, 400, "BadRequest")
    _unchanged(client, ns, cm)
    assert client.request("GET", coll + "/x")[0] == 404


def test_unknown_paths_are_404_status(client: Client, ns: str) -> None:
    for path in (f"/api/v1/namespaces/{ns}/frobs", "/apis/nope.example.com/v1/frobs", "/apis/apps/v9",
                 "/api/v1/namespaces/default/configmaps/x/y/z", "/nothing/here"):
        status, body = client.request("GET", path)
        assert status == 404, path
        _status(body, 404, "NotFound")
    cm = _cm(client, ns)
    # configmaps have no status subresource.
    status, body = client.request("PUT", f"/api/v1/namespaces/{ns}/configmaps/kept/status", cm)
    _status(body, 404, "NotFound")
    _unchanged(client, ns, cm)


def test_bad_delete_options_delete_nothing(client: Client, ns: str) -> None:
    cm = _cm(client, ns)
    coll, one = f"/api/v1/namespaces/{ns}/configmaps", f"/api/v1/namespaces/{ns}/configmaps/kept"
    for data in (b"[1]", b'{"preconditions": 5}', b'{"gracePeriodSeconds": "soon"}', b'{"dryRun": "All"}'):
        for path in (one, coll):
            status, body = client.raw("DELETE", path, data)
            assert status == 400, (path, data, body)
            _status(body, 400, "BadRequest")
    status, body = client.raw("DELETE", one, b'{"propagationPolicy": "Sideways"}')
    _status(body, 422, "Invalid")
    status, body = client.raw("DELETE", one, json.dumps({"preconditions": {"uid": "not-the-uid"}}).encode())
    _status(body, 409, "Conflict")
    # A server-side dry run of a collection delete reports what it would delete, and deletes nothing.
    status, body = client.request("DELETE", coll + "?dryRun=All")
    assert status == 200 and [i["metadata"]["name"] for i in body["items"]] == ["kept", "kube-root-ca.crt"]
    _unchanged(client, ns, cm)


def test_bad_scale_bodies_are_400(client: Client, ns: str) -> None:
    status, _ = client.request("POST", f"/apis/apps/v1/namespaces/{ns}/deployments", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"app": "d"}}, "template": {
            "metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})
    assert status == 201
    scale = f"/apis/apps/v1/namespaces/{ns}/deployments/d/scale"
    before = client.request("GET", scale)[1]
    for data in ({"spec": 5}, {"spec": {"replicas": "many"}}, [1]):
        status, body = client.request("PUT", scale, data)
        assert status == 400, (data, body)
        _status(body, 400, "BadRequest")
    status, body = client.raw("PATCH", scale, b'{"spec": 5}', "application/merge-patch+json")
    _status(body, 400, "BadRequest")
    assert body["message"] == 'Scale in version "v1" cannot be handled as a Scale: json: cannot unmarshal ' \
        "number into Go struct field Scale.spec of type v1.ScaleSpec"
    status, body = client.request("PUT", scale, {**before, "spec": {"replicas": -1}})
    _status(body, 422, "Invalid")
    # The workload controllers may update status meanwhile; what a rejected write must not touch is the spec.
    after = client.request("GET", scale)[1]
    assert after["spec"] == before["spec"]
    deployment = client.request("GET", f"/apis/apps/v1/namespaces/{ns}/deployments/d")[1]
    assert deployment["metadata"]["generation"] == 1
