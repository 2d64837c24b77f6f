from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netplane.api.allocators import ClusterIPAllocator, NodePortAllocator
from netplane.api.core import WriteOptions
from netplane.api.errors import ApiError
from netplane.api.registry import storage_type
from netplane.apiserver_main import build
from netplane.up import UpOptions

pytestmark = pytest.mark.unit


@given(st.lists(st.booleans(), min_size=1, max_size=60))
def test_cluster_ips_never_duplicate_and_stay_in_range(ops: list[bool]) -> None:
    alloc = ClusterIPAllocator(ipaddress.ip_network("10.96.0.0/26"))
    held: list[str] = []
    for allocate in ops:
        if allocate or not held:
            try:
                ip = alloc.allocate()
            except RuntimeError:
                assert len(held) == 62 - 1
                continue
            assert ip not in held
            assert ipaddress.ip_address(ip) in alloc.cidr and ip != alloc.kubernetes_ip
            assert ip != str(alloc.cidr.broadcast_address)
            held.append(ip)
        else:
            alloc.release(held.pop(0))
    assert set(held) == alloc.used


def test_automatic_cluster_ips_leave_the_static_band_to_fixed_requests() -> None:
    # 10.96.0.10 (kube-dns) must still be free after many automatic allocations.
    alloc = ClusterIPAllocator(ipaddress.ip_network("10.96.0.0/24"))
    band = {f"10.96.0.{i}" for i in range(2, 18)}
    upper = [alloc.allocate() for _ in range(253 - 16)]
    assert not band & set(upper)
    assert alloc.check("10.96.0.10", "spec.clusterIP") is None
    lower = {alloc.allocate() for _ in range(16)}
    assert lower == band
    with pytest.raises(RuntimeError):
        alloc.allocate()


def test_cluster_ip_requests_are_checked() -> None:
    alloc = ClusterIPAllocator(ipaddress.ip_network("10.96.0.0/12"))
    assert alloc.check("10.96.0.50", "spec.clusterIPs") is None
    alloc.allocate("10.96.0.50")
    taken = alloc.check("10.96.0.50", "spec.clusterIPs")
    assert taken is not None and "provided IP is already allocated" in taken.message
    outside = alloc.check("192.168.1.1", "spec.clusterIPs")
    assert outside is not None and "The range of valid IPs is 10.96.0.0/12" in outside.message
    garbage = alloc.check("nope", "spec.clusterIPs")
    assert garbage is not None and "must be a valid IP address" in garbage.message


def test_node_ports() -> None:
    alloc = NodePortAllocator(30000, 30002)
    ports = {alloc.allocate("TCP") for _ in range(3)}
    assert ports == {30000, 30001, 30002}
    with pytest.raises(RuntimeError):
        alloc.allocate("TCP")
    assert alloc.allocate("UDP") in ports  # the same number is free for another protocol
    problem = alloc.check(30001, "TCP", "spec.ports[0].nodePort")
    assert problem is not None and problem.message == "Invalid value: 30001: provided port is already allocated"
    out_of_range = alloc.check(80, "TCP", "spec.ports[0].nodePort")
    assert out_of_range is not None and "The range of valid ports is 30000-30002" in out_of_range.message


def test_a_service_update_keeps_its_own_node_port(tmp_path: Path) -> None:
    core, _ = build(UpOptions(data_dir=tmp_path / "data", dataplane=False), 6443)
    services = storage_type(core.registry, "", "services")
    assert services is not None

    def node_port_service(name: str) -> dict[str, Any]:
        return core.create(services, "default", {"metadata": {"name": name}, "spec": {
            "type": "NodePort", "selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}},
            WriteOptions())

    first, second = node_port_service("first"), node_port_service("second")
    mine, theirs = second["spec"]["ports"][0]["nodePort"], first["spec"]["ports"][0]["nodePort"]

    def update(**port: Any) -> dict[str, Any]:
        current = core.get(services, "default", "second")
        current["spec"]["ports"][0].update(port)
        return core.update(services, "default", "second", current, WriteOptions())

    # Another port number, the same node port: still the Service's own, not "already allocated".
    assert update(port=81)["spec"]["ports"][0] == {"port": 81, "targetPort": 8080, "protocol": "TCP",
                                                    "nodePort": mine}
    with pytest.raises(ApiError) as taken:
        update(nodePort=theirs)
    assert [c["field"] for c in (taken.value.details or {})["causes"]] == ["spec.ports[0].nodePort"]
    with pytest.raises(ApiError) as invalid:
        update(port=70000)
    assert [(c["field"], c["message"]) for c in (invalid.value.details or {})["causes"]] == [
        ("spec.ports[0].port", "Invalid value: 70000: must be between 1 and 65535, inclusive")]
    assert core.get(services, "default", "second")["spec"]["ports"][0]["nodePort"] == mine
    with pytest.raises(ApiError):  # and it still holds it
        core.create(services, "default", {"metadata": {"name": "third"}, "spec": {
            "type": "NodePort", "ports": [{"port": 80, "nodePort": mine}]}}, WriteOptions())
