"""Endpoints and EndpointSlices of Services, seen through the real kubectl.

Pods are started by a fake kubelet that gives each pod the address the IPAM controller allocated
for it (the shared helper gives every pod the same one, which would hide mistakes here).
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from netplane.controllers.ipam.pods import ALLOCATED, IP_ADDRESS
from netplane.controllers.kube.client import Client
from netplane.controllers.kube.errors import ApiError
from netplane.controllers.workloads.kinds import PODS
from tests.conftest import Kubectl, Netplane
from tests.e2e.fake_kubelet import FakeKubelet, running_status
from tests.helpers import eventually

pytestmark = pytest.mark.e2e

SLICE_LABEL = "kubernetes.io/service-name"


class AddressingKubelet(FakeKubelet):
    async def _start_pods(self, client: Client) -> None:
        pods, _ = await client.list_all(PODS)
        for pod in pods:
            meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
            annotations = meta.get("annotations") or {}
            if spec.get("nodeName") in self.nodes and status.get("phase", "Pending") == "Pending" \
                    and not meta.get("deletionTimestamp") and annotations.get(ALLOCATED) == "true":
                pod["status"] = running_status(pod)
                pod["status"]["podIP"] = annotations[IP_ADDRESS]
                pod["status"]["podIPs"] = [{"ip": annotations[IP_ADDRESS]}]
                with contextlib.suppress(ApiError):
                    await client.update_status(PODS, pod)


@pytest.fixture(scope="module")
def kubelet(netplane: Netplane) -> Iterator[FakeKubelet]:
    with AddressingKubelet(netplane.kubeconfig, {f"ep-{uuid.uuid4().hex[:5]}": {}}) as k:
        yield k


def get_json(kubectl: Kubectl, *args: str) -> Any:
    return json.loads(kubectl("get", *args, "-o", "json"))


def pod_ips(kubectl: Kubectl, ns: str, selector: str = "app=web") -> dict[str, str]:
    pods = get_json(kubectl, "pods", "-n", ns, "-l", selector)["items"]
    return {p["metadata"]["name"]: p.get("status", {}).get("podIP", "") for p in pods
            if not p["metadata"].get("deletionTimestamp")}


def endpoints_column(kubectl: Kubectl, ns: str, name: str = "web") -> str:
    out = kubectl.run("get", "endpoints", name, "-n", ns, "--no-headers", check=False).stdout.split()
    return out[1] if len(out) > 1 else ""


def slice_endpoints(kubectl: Kubectl, ns: str, name: str = "web") -> list[list[Any]]:
    """Per slice: the (address, ready, serving, terminating) of each endpoint."""
    items = get_json(kubectl, "endpointslices", "-n", ns, "-l", f"{SLICE_LABEL}={name}")["items"]
    return [sorted((e["addresses"][0], *(e.get("conditions", {}).get(c) for c in ("ready", "serving", "terminating")))
                   for e in s.get("endpoints") or []) for s in items]


def web(kubectl: Kubectl, ns: str, replicas: int = 3, target_port: str = "8080") -> None:
    kubectl("create", "deployment", "web", "--image=nginx", f"--replicas={replicas}", "--port=8080", "-n", ns)
    kubectl("create", "service", "clusterip", "web", f"--tcp=80:{target_port}", "-n", ns)


def test_a_deployment_behind_a_service(kubectl: Kubectl, ns: str, kubelet: FakeKubelet) -> None:
    web(kubectl, ns)
    eventually(lambda: len([ip for ip in pod_ips(kubectl, ns).values() if ip]) == 3, what="3 pods running")
    ips = sorted(pod_ips(kubectl, ns).values())
    assert len(set(ips)) == 3
    expected = {f"{ip}:8080" for ip in ips}
    eventually(lambda: set(endpoints_column(kubectl, ns).split(",")) == expected, what="3 endpoints")

    eventually(lambda: slice_endpoints(kubectl, ns) == [[(ip, True, True, False) for ip in ips]], what="one slice")
    (sl,) = get_json(kubectl, "endpointslices", "-n", ns, "-l", f"{SLICE_LABEL}=web")["items"]
    assert sl["metadata"]["name"].startswith("web-") and sl["addressType"] == "IPv4"
    assert sl["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == "endpointslice-controller.k8s.io"
    assert [(o["kind"], o["name"]) for o in sl["metadata"]["ownerReferences"]] == [("Service", "web")]
    assert sl["ports"] == [{"name": "80-8080", "port": 8080, "protocol": "TCP"}]
    assert {e["targetRef"]["name"] for e in sl["endpoints"]} == set(pod_ips(kubectl, ns))
    described = kubectl("describe", "svc", "web", "-n", ns)
    endpoints_line = next(line for line in described.splitlines() if line.startswith("Endpoints:"))
    assert set(endpoints_line.split(None, 1)[1].split(",")) == expected

    # Nothing changed: a new look at the Service (a label change wakes it) rewrites nothing.
    versions = (get_json(kubectl, "endpoints", "web", "-n", ns)["metadata"]["resourceVersion"],
                get_json(kubectl, "endpointslices", sl["metadata"]["name"], "-n", ns)["metadata"]["resourceVersion"])
    kubectl("annotate", "svc", "web", "-n", ns, "touched=yes")
    time.sleep(1.5)
    assert (get_json(kubectl, "endpoints", "web", "-n", ns)["metadata"]["resourceVersion"],
            get_json(kubectl, "endpointslices", sl["metadata"]["name"], "-n", ns)["metadata"]["resourceVersion"]) \
        == versions

    kubectl("scale", "deployment/web", "--replicas=1", "-n", ns)
    eventually(lambda: len(pod_ips(kubectl, ns)) == 1, what="scaled to 1")
    (left,) = pod_ips(kubectl, ns).values()
    eventually(lambda: endpoints_column(kubectl, ns) == f"{left}:8080", what="1 endpoint")
    eventually(lambda: slice_endpoints(kubectl, ns) == [[(left, True, True, False)]], what="1 slice endpoint")
    # The same slice, edited in place: names stay stable.
    assert [s["metadata"]["name"] for s in get_json(kubectl, "endpointslices", "-n", ns, "-l",
                                                    f"{SLICE_LABEL}=web")["items"]] == [sl["metadata"]["name"]]


def test_a_pod_that_is_not_ready(kubectl: Kubectl, ns: str, kubelet: FakeKubelet) -> None:
    web(kubectl, ns, replicas=2)
    eventually(lambda: len([ip for ip in pod_ips(kubectl, ns).values() if ip]) == 2, what="2 pods running")
    (sick, sick_ip), (_, well_ip) = sorted(pod_ips(kubectl, ns).items())
    eventually(lambda: len(endpoints_column(kubectl, ns).split(",")) == 2, what="2 endpoints")
    kubectl("patch", "pod", sick, "-n", ns, "--subresource=status", "--type=merge", "-p",
            json.dumps({"status": {"conditions": [{"type": "Ready", "status": "False", "reason": "Probe"}]}}))

    def subsets() -> list[Any]:
        return [(sorted(a["ip"] for a in s.get("addresses") or []),
                 sorted(a["ip"] for a in s.get("notReadyAddresses") or []), s["ports"])
                for s in get_json(kubectl, "endpoints", "web", "-n", ns).get("subsets") or []]

    eventually(lambda: subsets() == [([well_ip], [sick_ip], [{"name": "80-8080", "port": 8080,
                                                               "protocol": "TCP"}])], what="not ready")
    assert endpoints_column(kubectl, ns) == f"{well_ip}:8080"
    assert sorted(slice_endpoints(kubectl, ns)[0]) == sorted([(well_ip, True, True, False),
                                                              (sick_ip, False, False, False)])


def test_a_named_target_port_resolves_per_pod(kubectl: Kubectl, ns: str, kubelet: FakeKubelet) -> None:
    kubectl("create", "-n", ns, "-f", "-", input="\n".join(map(json.dumps, [
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p{i}", "labels": {"app": "named"}},
         "spec": {"containers": [{"name": "c", "image": "nginx",
                                  "ports": [{"name": "web", "containerPort": port}] if port else []}]}}
        for i, port in ((1, 8081), (2, 9090), (3, 0))] + [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "named"},
         "spec": {"selector": {"app": "named"}, "ports": [{"name": "http", "port": 80, "targetPort": "web"}]}}])))
    eventually(lambda: len([ip for ip in pod_ips(kubectl, ns, "app=named").values() if ip]) == 3, what="running")
    ips = pod_ips(kubectl, ns, "app=named")
    # p3 has no port named "web": Kubernetes leaves it out of the Endpoints.
    eventually(lambda: set(endpoints_column(kubectl, ns, "named").split(","))
               == {f"{ips['p1']}:8081", f"{ips['p2']}:9090"}, what="named ports")


def test_a_service_without_selector_keeps_user_endpoints(kubectl: Kubectl, ns: str, kubelet: FakeKubelet) -> None:
    kubectl("create", "-n", ns, "-f", "-", input="\n".join(map(json.dumps, [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext"}, "spec": {"ports": [{"port": 80}]}},
        {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "ext"},
         "subsets": [{"addresses": [{"ip": "192.0.2.10"}], "ports": [{"port": 80}]}]},
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": {"name": "ext-1", "labels": {SLICE_LABEL: "ext"}}, "addressType": "IPv4",
         "endpoints": [{"addresses": ["192.0.2.10"]}], "ports": [{"port": 80}]}])))
    before = [get_json(kubectl, kind, "ext" if kind == "endpoints" else "ext-1", "-n", ns)
              for kind in ("endpoints", "endpointslices")]
    # A selected Service in the same namespace gets its endpoints: the controllers are at work.
    web(kubectl, ns, replicas=1)
    eventually(lambda: endpoints_column(kubectl, ns) not in ("", "<none>"), what="web endpoints")
    kubectl("annotate", "svc", "ext", "-n", ns, "touched=yes")
    time.sleep(1.5)
    after = [get_json(kubectl, kind, "ext" if kind == "endpoints" else "ext-1", "-n", ns)
             for kind in ("endpoints", "endpointslices")]
    assert after == before
    assert endpoints_column(kubectl, ns, "ext") == "192.0.2.10:80"
    assert slice_endpoints(kubectl, ns, "ext") == [[("192.0.2.10", None, None, None)]]
