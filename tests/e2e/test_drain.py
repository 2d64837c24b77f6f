"""`kubectl drain` through the Eviction API, and binding through pods/binding."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from tests.conftest import Kubectl, Netplane
from tests.e2e.fake_kubelet import FakeKubelet
from tests.helpers import Client

pytestmark = pytest.mark.e2e


def _pod(name: str, node: str | None = None) -> str:
    spec: dict[str, object] = {"containers": [{"name": "c", "image": "nginx"}]}
    if node:
        spec["nodeName"] = node
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})


def test_binding_assigns_once(netplane: Netplane, kubectl: Kubectl, ns: str) -> None:
    client = Client(netplane)
    # A scheduler name nobody serves keeps our own scheduler out of the way.
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "b1"},
           "spec": {"schedulerName": "nobody", "containers": [{"name": "c", "image": "nginx"}]}}
    assert client.request("POST", f"/api/v1/namespaces/{ns}/pods", pod)[0] == 201
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "b1"},
               "target": {"apiVersion": "v1", "kind": "Node", "name": "n-x"}}
    status, body = client.request("POST", f"/api/v1/namespaces/{ns}/pods/b1/binding", binding)
    assert status == 201, body
    assert kubectl("get", "pod", "b1", "-n", ns, "-o", "jsonpath={.spec.nodeName}") == "n-x"
    status, body = client.request("POST", f"/api/v1/namespaces/{ns}/pods/b1/binding",
                                  {**binding, "target": {"kind": "Node", "name": "n-y"}})
    assert status == 409 and 'already assigned to node "n-x"' in body["message"]
    assert client.request("GET", f"/api/v1/namespaces/{ns}/pods/b1/binding")[0] == 405


def test_drain_evicts_and_cordons(netplane: Netplane, kubectl: Kubectl, ns: str) -> None:
    node = f"drain-{uuid.uuid4().hex[:6]}"
    with FakeKubelet(netplane.kubeconfig, {node: {}}):
        kubectl("apply", "-n", ns, "-f", "-", input=_pod("victim", node))
        out = kubectl("drain", node, "--force", "--grace-period=0", "--timeout=60s")
        assert f"node/{node} cordoned" in out
        assert 'evicting pod' in out and "victim" in out
        assert f"node/{node} drained" in out
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and kubectl.run("get", "pod", "victim", "-n", ns,
                                                          check=False).returncode == 0:
            time.sleep(0.2)
        assert kubectl.run("get", "pod", "victim", "-n", ns, check=False).returncode != 0
        assert kubectl("get", "node", node, "-o", "jsonpath={.spec.unschedulable}") == "true"
