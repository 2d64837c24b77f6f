"""Pod addresses from the IPAM controller, driven with the real kubectl against `netplane up`
(no nodes needed: pods get their addresses when they are created, as with Kube-OVN)."""

from __future__ import annotations

import ipaddress
import json
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import Kubectl, Netplane, kubectl_binaries, start_netplane

pytestmark = pytest.mark.e2e

EXAMPLES = Path(__file__).parent / "guide_examples"
ANN = "ovn.kubernetes.io/"


def eventually(check: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached in {timeout}s")
        time.sleep(0.2)


@pytest.fixture
def k(netplane: Netplane, tmp_path: Path) -> Kubectl:
    # One kubectl is enough here: these tests are about the controller, not the client.
    return Kubectl(kubectl_binaries()[0], netplane.kubeconfig, tmp_path / "kube-cache")


@pytest.fixture
def ns(k: Kubectl) -> Iterator[str]:
    name = f"ipam-{uuid.uuid4().hex[:6]}"
    k("create", "namespace", name)
    yield name
    k("delete", "namespace", name, "--wait=false", "--ignore-not-found")


def pod_manifest(name: str, namespace: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "annotations": annotations or {}},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}}


def create(k: Kubectl, *objs: dict[str, Any]) -> None:
    k("create", "-f", "-", input=yaml.safe_dump_all(objs))


def get(k: Kubectl, *args: str) -> Any:
    result = k.run("get", *args, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def annotations(k: Kubectl, namespace: str, pod: str) -> dict[str, str]:
    obj = get(k, "pod", pod, "-n", namespace)
    return dict((obj or {}).get("metadata", {}).get("annotations") or {})


def address(k: Kubectl, namespace: str, pod: str, timeout: float = 30) -> str:
    def allocated() -> str:
        ann = annotations(k, namespace, pod)
        return ann.get(ANN + "ip_address", "") if ann.get(ANN + "allocated") == "true" else ""
    return str(eventually(allocated, timeout, f"an address for {namespace}/{pod}"))


def warnings(k: Kubectl, namespace: str, pod: str) -> list[dict[str, Any]]:
    events = get(k, "events", "-n", namespace, "--field-selector", f"involvedObject.name={pod}") or {"items": []}
    return [e for e in events["items"] if e["type"] == "Warning"]


def subnet_manifest(name: str, cidr: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "kubeovn.io/v1", "kind": "Subnet", "metadata": {"name": name},
            "spec": {"cidrBlock": cidr, **spec}}


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any]:
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c["type"] == type_:
            return dict(c)
    return {}


def test_the_default_networks_exist(k: Kubectl) -> None:
    def rows() -> dict[str, list[str]]:
        lines = k("get", "subnets").splitlines()
        return {line.split()[0]: line.split() for line in lines[1:]}

    eventually(lambda: {"ovn-default", "join"} <= set(rows()), what="the default subnets")
    default = get(k, "subnet", "ovn-default")
    assert default["spec"]["cidrBlock"] == "10.16.0.0/16"
    assert default["spec"]["gateway"] == "10.16.0.1"
    assert default["spec"]["default"] is True and default["spec"]["natOutgoing"] is True
    assert condition(default, "Ready")["status"] == "True"
    join = get(k, "subnet", "join")
    assert join["spec"]["cidrBlock"] == "100.64.0.0/16" and join["spec"]["default"] is False
    eventually(lambda: get(k, "vpc", "ovn-cluster"), what="the default VPC")
    assert eventually(lambda: (get(k, "vpc", "ovn-cluster")["status"] or {}).get("default")) is True


def test_sixty_pods_get_sixty_addresses_and_ip_objects(k: Kubectl, ns: str) -> None:
    create(k, *(pod_manifest(f"p{i}", ns) for i in range(60)))
    addresses = {f"p{i}": address(k, ns, f"p{i}") for i in range(60)}
    assert len(set(addresses.values())) == 60
    network = ipaddress.ip_network("10.16.0.0/16")
    for pod, ip in addresses.items():
        assert ipaddress.ip_address(ip) in network and ip != "10.16.0.1", (pod, ip)
    ann = annotations(k, ns, "p0")
    assert ann[ANN + "cidr"] == "10.16.0.0/16" and ann[ANN + "gateway"] == "10.16.0.1"
    assert ann[ANN + "logical_switch"] == "ovn-default" and ann[ANN + "logical_router"] == "ovn-cluster"
    mac = ann[ANN + "mac_address"]
    assert int(mac.split(":")[0], 16) & 0b11 == 0b10  # locally administered, unicast
    ips = {o["metadata"]["name"]: o for o in get(k, "ips")["items"]}
    for pod, ip in addresses.items():
        obj = ips[f"{pod}.{ns}"]
        assert obj["spec"]["v4IpAddress"] == ip and obj["spec"]["subnet"] == "ovn-default"
        assert obj["spec"]["podName"] == pod and obj["spec"]["namespace"] == ns
        assert not obj["metadata"].get("ownerReferences")
    assert ips[f"p0.{ns}"]["spec"]["macAddress"] == mac
    eventually(lambda: get(k, "subnet", "ovn-default")["status"]["v4usingIPs"] >= 60, what="subnet usage")


def test_host_network_pods_take_no_address(k: Kubectl, ns: str) -> None:
    host = pod_manifest("host", ns)
    host["spec"]["hostNetwork"] = True
    create(k, host, pod_manifest("other", ns))
    address(k, ns, "other")
    time.sleep(1)
    assert ANN + "allocated" not in annotations(k, ns, "host")
    assert get(k, "ip", f"host.{ns}") is None


def test_static_address_and_a_conflict_that_resolves(k: Kubectl, ns: str) -> None:
    create(k, pod_manifest("fixed", ns, {ANN + "ip_address": "10.16.200.10"}))
    assert address(k, ns, "fixed") == "10.16.200.10"
    create(k, pod_manifest("rival", ns, {ANN + "ip_address": "10.16.200.10"}), pod_manifest("bystander", ns))
    warning = eventually(lambda: warnings(k, ns, "rival"), what="a Warning event")[0]
    assert warning["reason"] == "AddressConflict"
    assert "10.16.200.10" in warning["message"] and f"fixed.{ns}" in warning["message"]
    assert address(k, ns, "bystander")  # the conflict holds up nobody else
    assert ANN + "allocated" not in annotations(k, ns, "rival")
    k("delete", "pod", "fixed", "-n", ns)
    assert address(k, ns, "rival") == "10.16.200.10"  # freed: the waiting pod gets it


def test_static_address_outside_the_subnet(k: Kubectl, ns: str) -> None:
    create(k, pod_manifest("lost", ns, {ANN + "ip_address": "192.0.2.7"}))
    warning = eventually(lambda: warnings(k, ns, "lost"), what="a Warning event")[0]
    assert warning["reason"] == "AddressOutOfRange" and "192.0.2.7" in warning["message"]


def test_namespace_and_project_bound_subnets(k: Kubectl, ns: str) -> None:
    s = uuid.uuid4().hex[:6]
    project, other = f"proj-{s}", f"ipam-p-{s}"
    create(k, subnet_manifest(f"bound-{s}", "10.77.0.0/24", namespaces=[ns]),
           subnet_manifest(f"proj-{s}", "10.78.0.0/24",
                           namespaceSelectors=[{"matchLabels": {"cpaas.io/project": project}}]))
    try:
        eventually(lambda: condition(get(k, "subnet", f"bound-{s}"), "Ready").get("status") == "True")
        eventually(lambda: condition(get(k, "subnet", f"proj-{s}"), "Ready").get("status") == "True")
        k("create", "namespace", other)
        k("label", "namespace", other, f"cpaas.io/project={project}")
        create(k, pod_manifest("a", ns), pod_manifest("b", other))
        assert ipaddress.ip_address(address(k, ns, "a")) in ipaddress.ip_network("10.77.0.0/24")
        assert annotations(k, ns, "a")[ANN + "logical_switch"] == f"bound-{s}"
        assert annotations(k, ns, "a")[ANN + "gateway"] == "10.77.0.1"
        assert ipaddress.ip_address(address(k, other, "b")) in ipaddress.ip_network("10.78.0.0/24")
        eventually(lambda: get(k, "subnet", f"bound-{s}")["status"]["v4usingIPs"] == 1)
        k("delete", "pod", "a", "-n", ns)
        k("delete", "pod", "b", "-n", other)
        eventually(lambda: get(k, "subnet", f"bound-{s}")["status"]["v4usingIPs"] == 0)
    finally:
        k("delete", "namespace", other, "--wait=false", check=False)
        k("delete", "subnet", f"bound-{s}", f"proj-{s}", check=False)


def test_a_deleted_pods_address_is_not_reused_while_free_ones_remain(k: Kubectl, ns: str) -> None:
    s = uuid.uuid4().hex[:6]
    # A /28: 14 usable addresses, the gateway reserved: 13 for pods.
    create(k, subnet_manifest(f"small-{s}", "10.79.0.0/28", namespaces=[ns]))
    try:
        eventually(lambda: condition(get(k, "subnet", f"small-{s}"), "Ready").get("status") == "True")
        create(k, pod_manifest("first", ns))
        first = address(k, ns, "first")
        k("delete", "pod", "first", "-n", ns)
        eventually(lambda: get(k, "ip", f"first.{ns}") is None, what="the IP object deleted")
        create(k, *(pod_manifest(f"n{i}", ns) for i in range(12)))
        others = {address(k, ns, f"n{i}") for i in range(12)}
        assert len(others) == 12 and first not in others
        create(k, pod_manifest("last", ns))
        assert address(k, ns, "last") == first  # only the released one is left
        create(k, pod_manifest("one-too-many", ns))
        warning = eventually(lambda: warnings(k, ns, "one-too-many"), what="a Warning event")[0]
        assert warning["reason"] == "NoAvailableAddress" and f"small-{s}" in warning["message"]
    finally:
        k("delete", "namespace", ns, "--wait=false")
        eventually(lambda: get(k, "subnet", f"small-{s}")["status"]["v4usingIPs"] == 0, what="addresses released")
        k("delete", "subnet", f"small-{s}")


def test_statefulset_pods_keep_their_address(k: Kubectl, ns: str) -> None:
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": ns},
           "spec": {"replicas": 1, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                    "template": {"metadata": {"labels": {"app": "db"}},
                                 "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}
    created = json.loads(k("create", "-f", "-", "-o", "json", input=json.dumps(sts)))
    owner = {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db", "uid": created["metadata"]["uid"],
             "controller": True}
    # The pod as the StatefulSet controller would make it (this test does not need that controller).
    pod = pod_manifest("db-0", ns)
    pod["metadata"]["ownerReferences"] = [owner]
    if get(k, "pod", "db-0", "-n", ns) is None:
        create(k, pod)
    before = address(k, ns, "db-0")
    mac = annotations(k, ns, "db-0")[ANN + "mac_address"]
    k("delete", "pod", "db-0", "-n", ns)
    time.sleep(1)
    assert get(k, "ip", f"db-0.{ns}")["spec"]["v4IpAddress"] == before  # kept for the re-created pod
    if get(k, "pod", "db-0", "-n", ns) is None:
        create(k, pod)
    assert address(k, ns, "db-0") == before
    assert annotations(k, ns, "db-0")[ANN + "mac_address"] == mac
    k("delete", "statefulset", "db", "-n", ns, "--cascade=orphan")
    k("delete", "pod", "db-0", "-n", ns, "--ignore-not-found")
    eventually(lambda: get(k, "ip", f"db-0.{ns}") is None, what="the address released with the StatefulSet")


@pytest.mark.parametrize(("example", "expected"), [
    ("test-calico-subnet.yaml", {"cidrBlock": "10.1.1.0/24", "protocol": "IPv4", "gateway": "10.1.1.1"}),
    ("test-overlay-subnet.yaml", {"cidrBlock": "10.1.0.0/23", "protocol": "IPv4",
                                  "excludeIps": ["10.1.0.1", "10.1.1.2"]}),
])
def test_guide_subnets_are_normalised_and_say_so(k: Kubectl, example: str, expected: dict[str, Any]) -> None:
    path = EXAMPLES / example
    name = yaml.safe_load(path.read_text())["metadata"]["name"]
    k("apply", "-f", str(path))
    try:
        subnet = eventually(lambda: (s := get(k, "subnet", name)) and condition(s, "Validated") and s)
        for key, value in expected.items():
            assert subnet["spec"][key] == value, key
        validated = condition(subnet, "Validated")
        assert validated["status"] == "True" and "protocol Dual does not match cidrBlock" in validated["message"]
        if example == "test-calico-subnet.yaml":
            assert "cidrBlock 10.1.1.1/24 is not a network address: normalised to 10.1.1.0/24" in validated["message"]
        events = get(k, "events", "-n", "default", "--field-selector", f"involvedObject.name={name}")["items"]
        assert any(e["reason"] == "SpecNormalized" for e in events)
    finally:
        k("delete", "-f", str(path))


def test_overlapping_subnets_conflict(k: Kubectl) -> None:
    s = uuid.uuid4().hex[:6]
    create(k, subnet_manifest(f"old-{s}", "10.80.0.0/24"))
    eventually(lambda: condition(get(k, "subnet", f"old-{s}"), "Ready").get("status") == "True")
    create(k, subnet_manifest(f"new-{s}", "10.80.0.128/25"))
    try:
        ready = eventually(lambda: condition(get(k, "subnet", f"new-{s}"), "Validated"), what="a verdict")
        assert ready["status"] == "False" and ready["reason"] == "ValidateLogicalSwitchFailed"
        assert ready["message"] == (f"subnet new-{s} cidr 10.80.0.128/25 is conflict with subnet old-{s} "
                                    "cidr 10.80.0.0/24")
        k("delete", "subnet", f"old-{s}")
        eventually(lambda: condition(get(k, "subnet", f"new-{s}"), "Validated").get("status") == "True",
                   what="the conflict resolved")
    finally:
        k("delete", "subnet", f"old-{s}", f"new-{s}", "--ignore-not-found")


def test_restart_keeps_every_allocation() -> None:
    with tempfile.TemporaryDirectory(prefix="netplane-ipam-") as tmp:
        instance = start_netplane(Path(tmp) / "data")
        try:
            k = Kubectl(kubectl_binaries()[0], instance.kubeconfig, Path(tmp) / "cache")
            k("create", "namespace", "r")
            create(k, *(pod_manifest(f"p{i}", "r") for i in range(10)),
                   pod_manifest("fixed", "r", {ANN + "ip_address": "10.16.9.9"}))
            before = {f"p{i}": address(k, "r", f"p{i}") for i in range(10)} | {"fixed": address(k, "r", "fixed")}
            macs = {pod: annotations(k, "r", pod)[ANN + "mac_address"] for pod in before}
        finally:
            instance.stop()
        instance = start_netplane(Path(tmp) / "data")
        try:
            k = Kubectl(kubectl_binaries()[0], instance.kubeconfig, Path(tmp) / "cache")
            create(k, *(pod_manifest(f"q{i}", "r") for i in range(10)))
            new = {address(k, "r", f"q{i}") for i in range(10)}
            assert not new & set(before.values())  # restored before anything new was handed out
            after = {pod: annotations(k, "r", pod) for pod in before}
            assert {pod: a[ANN + "ip_address"] for pod, a in after.items()} == before
            assert {pod: a[ANN + "mac_address"] for pod, a in after.items()} == macs
            ips = [o for o in get(k, "ips")["items"] if o["spec"]["namespace"] == "r"]
            assert len(ips) == 21 and len({o["spec"]["v4IpAddress"] for o in ips}) == 21
        finally:
            instance.stop()
