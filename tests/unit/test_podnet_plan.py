"""The pod-network plan of a node: pure, table-driven."""

from __future__ import annotations

import ipaddress as ia
from dataclasses import replace

import pytest

from netplane.dataplane.podnet import nft
from netplane.dataplane.podnet.plan import (
    GATEWAY_LABEL,
    MAX_IFNAME,
    Cluster,
    NatPlan,
    Node,
    Pod,
    PodnetPlanError,
    Route,
    Subnet,
    host_ifname,
    plan_node,
    pod_netns_name,
    vxlan_mac,
)

pytestmark = pytest.mark.unit

A = "0a0a0a0a-0000-4000-8000-00000000000a"
B = "0b0b0b0b-0000-4000-8000-00000000000b"
C = "0c0c0c0c-0000-4000-8000-00000000000c"
N1 = Node("node1", "np-abc123-n0", ia.IPv4Address("172.31.250.11"), ia.IPv4Address("100.64.0.2"))
N2 = Node("node2", "np-abc123-n1", ia.IPv4Address("172.31.250.12"), ia.IPv4Address("100.64.0.3"))
DEFAULT = Subnet("ovn-default", ia.IPv4Network("10.16.0.0/16"), ia.IPv4Address("10.16.0.1"), nat_outgoing=True)
PRIVATE = Subnet("private", ia.IPv4Network("10.17.0.0/24"), ia.IPv4Address("10.17.0.1"), nat_outgoing=False)
CLUSTER = Cluster("abc123", (N1, N2), (DEFAULT, PRIVATE))


def pod(uid: str, ip: str, node: str) -> Pod:
    return Pod(uid, f"default/{uid[:4]}", ia.ip_address(ip), node)


def net(text: str) -> ia.IPv4Network:
    return ia.IPv4Network(text)


PODS = [pod(A, "10.16.0.5", "node1"), pod(B, "10.16.0.6", "node2"), pod(C, "10.17.0.9", "node1")]


def test_local_pods_get_namespace_veth_address_and_gateway() -> None:
    plan = plan_node(CLUSTER, "node1", PODS)
    assert plan.problems == ()
    assert [(p.netns, p.host_ifname, str(p.address), str(p.gateway), p.mtu) for p in plan.pods] == [
        ("np-abc123-p-0a0a0a0a", "pv0a0a0a0a00004", "10.16.0.5/16", "10.16.0.1", 1450),
        ("np-abc123-p-0c0c0c0c", "pv0c0c0c0c00004", "10.17.0.9/24", "10.17.0.1", 1450),
    ]
    assert [str(g) for g in plan.gateways] == ["10.16.0.1", "10.17.0.1"]


def test_routes_local_remote_join_and_unreachable_subnets() -> None:
    join1, join2 = N1.join_address, N2.join_address
    assert plan_node(CLUSTER, "node1", PODS).routes == (
        Route(net("10.16.0.0/16"), unreachable=True),
        Route(net("10.16.0.5/32"), ifname="pv0a0a0a0a00004", src=join1),
        Route(net("10.16.0.6/32"), ifname="vxlan0", via=join2, src=join1),
        Route(net("10.17.0.0/24"), unreachable=True),
        Route(net("10.17.0.9/32"), ifname="pv0c0c0c0c00004", src=join1),
        Route(net("100.64.0.3/32"), ifname="vxlan0", src=join1),
    )
    # The other node sees the same pods the other way round.
    routes2 = {r.dst: r for r in plan_node(CLUSTER, "node2", PODS).routes}
    assert routes2[net("10.16.0.5/32")] == Route(net("10.16.0.5/32"), ifname="vxlan0", via=join1, src=join2)
    assert routes2[net("10.16.0.6/32")].ifname == "pv0b0b0b0b00004"


def test_vxlan_and_peers() -> None:
    plan = plan_node(CLUSTER, "node2", PODS)
    vx = plan.vxlan
    assert (vx.ifname, vx.vni, vx.port, str(vx.local), vx.underlay, vx.mac, vx.mtu, str(vx.address)) == (
        "vxlan0", 1, 4789, "172.31.250.12", "eth0", "0e:4e:64:40:00:03", 1450, "100.64.0.3")
    assert [(p.node, str(p.join_address), p.mac, str(p.fabric_address)) for p in plan.peers] == [
        ("node1", "100.64.0.2", "0e:4e:64:40:00:02", "172.31.250.11")]
    jumbo = plan_node(replace(CLUSTER, underlay_mtu=9000, vni=42), "node2", PODS)
    assert (jumbo.vxlan.mtu, jumbo.vxlan.vni, jumbo.pods[0].mtu) == (8950, 42, 8950)


def test_sysctls_forwarding_rp_filter_and_proxy_arp_per_local_pod() -> None:
    sysctls = dict(plan_node(CLUSTER, "node1", PODS).sysctls)
    assert sysctls["net/ipv4/ip_forward"] == "1"
    assert sysctls["net/ipv4/conf/all/rp_filter"] == "2"
    for ifname in ("pv0a0a0a0a00004", "pv0c0c0c0c00004"):
        assert sysctls[f"net/ipv4/conf/{ifname}/proxy_arp"] == "1"
        assert sysctls[f"net/ipv4/neigh/{ifname}/proxy_delay"] == "0"
    assert not any("pv0b0b" in key for key in sysctls)  # remote pod: no local interface


def test_nat_sources_and_cluster_ranges() -> None:
    assert plan_node(CLUSTER, "node1", PODS).nat == NatPlan(
        sources=(net("10.16.0.0/16"),), cluster_ranges=(net("10.16.0.0/16"), net("10.17.0.0/24"),
                                                        net("100.64.0.0/16")))
    adjacent = replace(CLUSTER, subnets=(DEFAULT, Subnet("next", net("10.17.0.0/16"), ia.IPv4Address("10.17.0.1"))))
    assert plan_node(adjacent, "node1", []).nat.cluster_ranges == (net("10.16.0.0/15"), net("100.64.0.0/16"))


def test_plan_is_deterministic_whatever_the_input_order() -> None:
    shuffled = replace(CLUSTER, nodes=(N2, N1), subnets=(PRIVATE, DEFAULT))
    assert plan_node(shuffled, "node1", list(reversed(PODS))) == plan_node(CLUSTER, "node1", PODS)


def test_names_fit_linux_limits_and_follow_the_uid() -> None:
    for uid in (A, "not-a-uuid", "x" * 300, "ÄÖÜ/../;rm"):
        name = host_ifname(uid)
        assert len(name) <= MAX_IFNAME and name.isalnum() and name.startswith("pv")
        assert pod_netns_name("abc123", uid).startswith("np-abc123-p-")
    assert host_ifname(A.upper()) == host_ifname(A)
    assert host_ifname("a") != host_ifname("b")
    assert vxlan_mac(ia.IPv4Address("100.64.1.2")) == "0e:4e:64:40:01:02"
    assert GATEWAY_LABEL.startswith("lo:")


@pytest.mark.parametrize("pods, message", [
    ([pod(A, "10.16.0.5", "node1"), pod(B, "10.16.0.5", "node2")], "claimed by more than one pod"),
    ([pod(A, "10.99.0.5", "node1")], "in no usable subnet"),
    ([pod(A, "10.16.0.1", "node1")], "reserved in subnet ovn-default"),
    ([pod(A, "10.17.0.255", "node1")], "reserved in subnet private"),
    ([pod(A, "10.16.0.0", "node1")], "reserved"),
    ([pod(A, "10.16.0.5", "node9")], "node 'node9' is unknown"),
    ([pod(A, "fd00::5", "node1")], "in no usable subnet"),
    ([pod(A, "10.16.0.5", "node1"), pod(A.replace("-0000-", "-1111-"), "10.16.0.6", "node1")],
     "shares its first 8 digits"),
])
def test_bad_pods_are_reported_and_skipped(pods: list[Pod], message: str) -> None:
    good = pod(C, "10.17.0.9", "node1")
    plan = plan_node(CLUSTER, "node1", [*pods, good])
    assert any(message in p for p in plan.problems), plan.problems
    planned = {r.dst for r in plan.routes if not r.unreachable}
    assert net("10.17.0.9/32") in planned  # the good pod is unaffected
    if "8 digits" not in message:
        assert not planned & {net(f"{p.ip}/32") for p in pods if p.ip.version == 4}


@pytest.mark.parametrize("subnet, message", [
    (Subnet("v6", ia.IPv6Network("fd00::/64"), ia.IPv6Address("fd00::1")), "only IPv4"),
    (Subnet("tiny", net("10.20.0.0/31"), ia.IPv4Address("10.20.0.1")), "no room"),
    (Subnet("gw-outside", net("10.20.0.0/24"), ia.IPv4Address("10.21.0.1")), "not a usable address"),
    (Subnet("gw-network", net("10.20.0.0/24"), ia.IPv4Address("10.20.0.0")), "not a usable address"),
    (Subnet("join", net("100.64.0.0/24"), ia.IPv4Address("100.64.0.1")), "overlaps the join subnet"),
    (Subnet("z-overlap", net("10.16.5.0/24"), ia.IPv4Address("10.16.5.1")), "overlaps subnet ovn-default"),
])
def test_bad_subnets_are_reported_and_skipped(subnet: Subnet, message: str) -> None:
    plan = plan_node(replace(CLUSTER, subnets=(*CLUSTER.subnets, subnet)), "node1", PODS)
    assert any(message in p for p in plan.problems), plan.problems
    assert {r.dst for r in plan.routes if r.unreachable} == {net("10.16.0.0/16"), net("10.17.0.0/24")}
    assert len(plan.pods) == 2


def test_unscheduled_pods_are_ignored_quietly() -> None:
    plan = plan_node(CLUSTER, "node1", [*PODS, pod("d", "10.16.0.8", "")])
    assert plan == plan_node(CLUSTER, "node1", PODS) and plan.problems == ()


def test_unusable_remote_node_is_skipped_with_its_pods() -> None:
    bad = Node("node3", "np-abc123-n2", ia.IPv4Address("172.31.250.13"), ia.IPv4Address("192.168.0.3"))
    plan = plan_node(replace(CLUSTER, nodes=(N1, N2, bad)), "node1", [*PODS, pod("d", "10.16.0.7", "node3")])
    assert [p.node for p in plan.peers] == ["node2"]
    assert net("10.16.0.7/32") not in {r.dst for r in plan.routes}
    assert len(plan.problems) == 2


@pytest.mark.parametrize("cluster, node, message", [
    (CLUSTER, "node9", "not one of the cluster's nodes"),
    (replace(CLUSTER, nodes=(N1, N1)), "node1", "must be unique"),
    (replace(CLUSTER, nodes=(replace(N1, join_address=ia.IPv4Address("10.0.0.1")), N2)), "node1", "not usable"),
    (replace(CLUSTER, nodes=(replace(N1, join_address=ia.IPv4Address("100.64.0.0")), N2)), "node1", "not usable"),
    (replace(CLUSTER, nodes=(N1, replace(N2, join_address=N1.join_address))), "node1", "shared"),
])
def test_bad_own_node_raises(cluster: Cluster, node: str, message: str) -> None:
    with pytest.raises(PodnetPlanError, match=message):
        plan_node(cluster, node, PODS)


# ---------------------------------------------------------------- nftables text


@pytest.mark.parametrize("nat, expected", [
    (NatPlan((net("10.16.0.0/16"),), (net("10.16.0.0/16"), net("100.64.0.0/16"))),
     ["elements = { 10.16.0.0/16 }", "elements = { 10.16.0.0/16, 100.64.0.0/16 }"]),
    (NatPlan((), (net("10.16.0.0/16"),)), ["elements = { 10.16.0.0/16 }"]),  # empty set: no elements line
    (NatPlan((net("10.9.9.9/32"),), (net("10.9.9.9/32"),)), ["elements = { 10.9.9.9 }"] * 2),
])
def test_nft_table_text(nat: NatPlan, expected: list[str]) -> None:
    text = nft.render_table(nat)
    assert [line.strip() for line in text.splitlines() if "elements" in line] == expected
    assert 'oifname "eth0" ip saddr @nat-outgoing-sources ip daddr != @cluster-ranges masquerade' in text
    script = nft.transaction(nat)
    assert script.startswith("add table inet netplane-podnet\ndelete table inet netplane-podnet\ntable inet ")
    assert script.count("table inet") == 3  # never names another table


def test_nft_normalize_ignores_wrapping() -> None:
    wrapped = "elements = { 10.0.0.0/8,\n\t\t\t     10.16.0.0/16 }\n"
    assert nft.normalize(wrapped) == nft.normalize("elements = { 10.0.0.0/8, 10.16.0.0/16 }")
    assert nft.normalize("a b") != nft.normalize("a c")
