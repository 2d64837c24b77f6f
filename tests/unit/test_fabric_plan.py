from __future__ import annotations

from pathlib import Path

import pytest

from netplane.dataplane.fabric_plan import FabricPlanError, cluster_id, control_plane_address, plan_fabric

pytestmark = pytest.mark.unit


def test_plan_addresses_and_names() -> None:
    plan = plan_fabric("abc123", ["node1", "192.168.1.10"], "10.99.0.0/24")
    assert [n.netns for n in plan.nodes] == ["np-abc123-n0", "np-abc123-n1"]
    assert [str(n.address) for n in plan.nodes] == ["10.99.0.11/24", "10.99.0.12/24"]
    assert str(plan.external.address) == "10.99.0.254/24"
    assert str(control_plane_address(plan)) == "10.99.0.2/24"
    assert str(plan.host_address) == "10.99.0.1/24"
    addresses = [n.address.ip for n in plan.nodes] + [plan.external.address.ip, plan.host_address.ip]
    assert len(set(addresses)) == len(addresses)
    assert all(len(name) <= 15 for name in (plan.host_ifname, plan.bridge, *(n.fabric_ifname for n in plan.nodes)))


@pytest.mark.parametrize("cidr, nodes, message", [
    ("10.99.0.0/29", ["a", "b"], "too small"),
    ("not-a-cidr", ["a"], "node CIDR 'not-a-cidr'"),
    ("10.99.0.0/24", ["a", "a"], "must be unique"),
])
def test_bad_plans(cidr: str, nodes: list[str], message: str) -> None:
    with pytest.raises(FabricPlanError, match=message):
        plan_fabric("abc123", nodes, cidr)


def test_cluster_id_is_stable_per_directory(tmp_path: Path) -> None:
    assert cluster_id(tmp_path / "a") == cluster_id(tmp_path / "a")
    assert cluster_id(tmp_path / "a") != cluster_id(tmp_path / "b")
    assert len(cluster_id(tmp_path)) == 6
