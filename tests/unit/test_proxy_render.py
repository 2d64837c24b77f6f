"""Golden renderings of the service proxy, one table-driven case per feature."""

from __future__ import annotations

import copy
import ipaddress as ia
import random
from typing import Any

import pytest

from netplane.dataplane.proxy import NodeConfig, incremental_transaction, render, render_text, stale_udp_flows
from netplane.dataplane.proxy.apply import ProxyApplyError
from netplane.dataplane.proxy.render import Ruleset

pytestmark = pytest.mark.unit

CFG = NodeConfig("node1", (), (ia.IPv4Network("10.16.0.0/16"),))
T = "ns1-web-tcp-http"  # readable tail of the token; the hash in front is checked separately


def svc(name: str = "web", *, type_: str = "ClusterIP", ip: str = "10.96.0.10", protocol: str = "TCP",
        node_port: int | None = None, status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    port: dict[str, Any] = {"name": "http", "port": 80, "protocol": protocol, "targetPort": 8080}
    if node_port:
        port["nodePort"] = node_port
    out: dict[str, Any] = {"metadata": {"namespace": "ns1", "name": name},
                           "spec": {"type": type_, "clusterIP": ip, "clusterIPs": [ip], "ports": [port], **spec}}
    if status:
        out["status"] = status
    return out


def ep(ip: str, node: str = "node1", **conditions: bool) -> dict[str, Any]:
    return {"addresses": [ip], "nodeName": node, "conditions": conditions or {"ready": True}}


def slice_(*endpoints: dict[str, Any], name: str = "web", protocol: str = "TCP") -> dict[str, Any]:
    return {"metadata": {"namespace": "ns1", "name": f"{name}-abc", "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": protocol}],
            "endpoints": list(endpoints)}


def view(rs: Ruleset) -> dict[str, tuple[str, ...]]:
    """Chains -> rules and sets/maps -> elements, with the token hash blanked out for readability."""
    out: dict[str, tuple[str, ...]] = {}
    for s in rs.sets:
        out[f"{s.kind} {s.name}"] = s.elements
    for c in rs.chains:
        out[f"chain {c.name}"] = c.rules
    blank = {}
    for key, lines in out.items():
        blank[_unhash(key)] = tuple(_unhash(line) for line in lines)
    return blank


def _unhash(text: str) -> str:
    import re
    return re.sub(r"\b([0-9a-f]{8})-ns1-", "H-ns1-", text)


EP5 = f"ep-H-{T}-10.16.0.5-8080"
DNAT = "dnat ip to ip daddr . tcp dport . numgen random mod"
NP_DNAT = "dnat ip to tcp dport . numgen random mod"
CASES: list[tuple[str, list[dict[str, Any]], list[dict[str, Any]], dict[str, tuple[str, ...]]]] = [
    ("cluster-ip spreads over endpoints through a shared chain; pods not masqueraded, others are",
     [svc()], [slice_(ep("10.16.0.5"), ep("10.16.0.6", "node2"))], {
         "map service-ips": ("10.96.0.10 . tcp . 80 : goto cluster-tcp-2",),
         "map endpoints-tcp": ("10.96.0.10 . 80 . 0 : 10.16.0.5 . 8080", "10.96.0.10 . 80 . 1 : 10.16.0.6 . 8080"),
         "chain cluster-tcp-2": ("ip saddr != @pod-cidrs jump mark-for-masquerade",
                                 f"{DNAT} 2 map @endpoints-tcp"),
         "map no-endpoint-services": ()}),
    ("no ready endpoints: rejected", [svc()], [slice_(ep("10.16.0.5", ready=False))], {
        "map service-ips": (), "map endpoints-tcp": (),
        "map no-endpoint-services": ("10.96.0.10 . tcp . 80 : goto reject-chain",),
        "chain reject-chain": ("reject",)}),
    ("serving terminating endpoints are used when nothing is ready", [svc()],
     [slice_(ep("10.16.0.5", ready=False, serving=True, terminating=True), ep("10.16.0.6", ready=False))], {
         "map endpoints-tcp": ("10.96.0.10 . 80 . 0 : 10.16.0.5 . 8080",)}),
    ("nodeport, traffic policy Cluster: masquerade", [svc(type_="NodePort", node_port=30080)],
     [slice_(ep("10.16.0.6", "node2"))], {
         "map service-nodeports": ("tcp . 30080 : goto nodeport-tcp-1",),
         "map nodeport-endpoints-tcp": ("30080 . 1048576 : 10.16.0.6 . 8080",),
         "chain nodeport-tcp-1": ("jump mark-for-masquerade",
                                  f"{NP_DNAT} 1 offset 1048576 map @nodeport-endpoints-tcp"),
         "chain services": ("ip daddr . meta l4proto . th dport vmap @service-ips",
                            "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap "
                            "@service-nodeports")}),
    ("nodeport without endpoints: rejected", [svc(type_="NodePort", node_port=30080)], [], {
        "map no-endpoint-nodeports": ("tcp . 30080 : goto reject-chain",),
        "map no-endpoint-services": ("10.96.0.10 . tcp . 80 : goto reject-chain",)}),
    ("externalTrafficPolicy Local with a local endpoint: client address kept, pods and node go the cluster way",
     [svc(type_="NodePort", node_port=30080, externalTrafficPolicy="Local")],
     [slice_(ep("10.16.0.5"), ep("10.16.0.6", "node2"))], {
         "map service-nodeports": ("tcp . 30080 : goto nodeport-local-tcp-1-2",),
         "chain nodeport-local-tcp-1-2": (
             f"ip saddr @pod-cidrs {NP_DNAT} 2 map @nodeport-endpoints-tcp",
             "fib saddr type local jump mark-for-masquerade",
             f"fib saddr type local {NP_DNAT} 2 map @nodeport-endpoints-tcp",
             f"{NP_DNAT} 1 offset 1048576 map @nodeport-endpoints-tcp"),
         "map nodeport-endpoints-tcp": ("30080 . 0 : 10.16.0.5 . 8080", "30080 . 1 : 10.16.0.6 . 8080",
                                        "30080 . 1048576 : 10.16.0.5 . 8080")}),
    ("externalTrafficPolicy Local, endpoints elsewhere only: dropped here",
     [svc(type_="NodePort", node_port=30080, externalTrafficPolicy="Local")], [slice_(ep("10.16.0.6", "node2"))], {
         "map no-endpoint-nodeports": ("tcp . 30080 : drop",), "map service-nodeports": (),
         "map nodeport-endpoints-tcp": (), "map service-ips": ("10.96.0.10 . tcp . 80 : goto cluster-tcp-1",)}),
    ("internalTrafficPolicy Local: local endpoints only, drop when none",
     [svc(internalTrafficPolicy="Local"), svc("other", ip="10.96.0.11", internalTrafficPolicy="Local")],
     [slice_(ep("10.16.0.5"), ep("10.16.0.6", "node2")), slice_(ep("10.16.0.6", "node2"), name="other")], {
         "map service-ips": ("10.96.0.10 . tcp . 80 : goto cluster-tcp-1",),
         "map endpoints-tcp": ("10.96.0.10 . 80 . 0 : 10.16.0.5 . 8080",),
         "map no-endpoint-services": ("10.96.0.11 . tcp . 80 : drop",)}),
    ("sessionAffinity ClientIP: chains of its own, per-endpoint sets with the timeout",
     [svc(sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}})],
     [slice_(ep("10.16.0.5"))], {
         "map service-ips": (f"10.96.0.10 . tcp . 80 : goto svc-H-{T}",), "map endpoints-tcp": (),
         f"set aff-H-{T}-10.16.0.5-8080-60": (),
         f"chain svc-H-{T}": ("ip daddr 10.96.0.10 tcp dport 80 ip saddr != @pod-cidrs jump mark-for-masquerade",
                              f"goto all-H-{T}"),
         f"chain all-H-{T}": (f"ip saddr @aff-H-{T}-10.16.0.5-8080-60 goto {EP5}",
                              f"numgen random mod 1 vmap {{ 0 : goto {EP5} }}"),
         f"chain {EP5}": (f"update @aff-H-{T}-10.16.0.5-8080-60 {{ ip saddr }}",
                          "meta l4proto tcp dnat to 10.16.0.5:8080")}),
    ("load balancer ingress IP with source ranges",
     [svc(type_="LoadBalancer", node_port=30080, loadBalancerSourceRanges=["192.0.2.0/24", " 198.51.100.7/32"],
          externalIPs=["203.0.113.9"], status={"loadBalancer": {"ingress": [{"ip": "203.0.113.7"},
                                                                             {"hostname": "lb.example"}]}})],
     [slice_(ep("10.16.0.5"))], {
         "map service-ips": ("10.96.0.10 . tcp . 80 : goto cluster-tcp-1",
                             "203.0.113.7 . tcp . 80 : goto external-tcp-1",
                             "203.0.113.9 . tcp . 80 : goto external-tcp-1"),
         "map endpoints-tcp": ("10.96.0.10 . 80 . 0 : 10.16.0.5 . 8080",
                               "203.0.113.7 . 80 . 1048576 : 10.16.0.5 . 8080",
                               "203.0.113.9 . 80 . 1048576 : 10.16.0.5 . 8080"),
         "chain external-tcp-1": ("jump mark-for-masquerade", f"{DNAT} 1 offset 1048576 map @endpoints-tcp"),
         "map firewall-ips": (f"203.0.113.7 . tcp . 80 : jump fw-H-{T}", f"203.0.113.9 . tcp . 80 : jump fw-H-{T}"),
         f"chain fw-H-{T}": ("ip saddr != { 192.0.2.0/24, 198.51.100.7/32 } drop",),
         "map service-nodeports": ("tcp . 30080 : goto nodeport-tcp-1",)}),
    ("UDP and SCTP: maps and chains of their own protocol", [svc(protocol="UDP"), svc("s", ip="10.96.0.11",
                                                                                       protocol="SCTP")],
     [slice_(ep("10.16.0.5"), protocol="UDP"), slice_(ep("10.16.0.6"), name="s", protocol="SCTP")], {
         "map service-ips": ("10.96.0.10 . udp . 80 : goto cluster-udp-1",
                             "10.96.0.11 . sctp . 80 : goto cluster-sctp-1"),
         "map endpoints-udp": ("10.96.0.10 . 80 . 0 : 10.16.0.5 . 8080",),
         "map endpoints-sctp": ("10.96.0.11 . 80 . 0 : 10.16.0.6 . 8080",),
         "chain cluster-udp-1": ("ip saddr != @pod-cidrs jump mark-for-masquerade",
                                 "dnat ip to ip daddr . udp dport . numgen random mod 1 map @endpoints-udp")}),
    ("headless and ExternalName services are not proxied",
     [svc(ip="None"), svc("ext", type_="ExternalName", externalName="example.org")], [slice_(ep("10.16.0.5"))], {
         "map service-ips": (), "map no-endpoint-services": (), "map endpoints-tcp": ()}),
]


@pytest.mark.parametrize(("services", "slices", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_golden(services: list[dict[str, Any]], slices: list[dict[str, Any]],
                expected: dict[str, tuple[str, ...]]) -> None:
    got = view(render(CFG, services, slices))
    assert {k: got.get(k) for k in expected} == expected


def test_node_addresses_restrict_node_ports() -> None:
    rs = render(NodeConfig("node1", (ia.IPv4Address("172.31.250.12"), ia.IPv4Address("172.31.250.11"))),
                [svc(type_="NodePort", node_port=30080)], [])
    got = view(rs)
    assert got["set nodeport-ips"] == ("172.31.250.11", "172.31.250.12")
    assert got["chain services"][1] == "ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports"
    assert got["chain filter-prerouting"][2] == ("ct state new ip daddr @nodeport-ips meta l4proto . th dport vmap "
                                                 "@no-endpoint-nodeports")
    assert "set pod-cidrs" not in got  # no pod CIDRs given: no masquerade rule that needs them
    rs2 = render(NodeConfig("node1"), [svc()], [slice_(ep("10.16.0.5"))])
    assert view(rs2)["chain cluster-tcp-1"] == (f"{DNAT} 1 map @endpoints-tcp",)


def test_base_chains_and_priorities() -> None:
    text = render_text(render(CFG, [], []))
    for line in ("type filter hook prerouting priority dstnat - 10; policy accept;",
                 "type filter hook output priority -110; policy accept;",
                 "type filter hook forward priority filter - 10; policy accept;",
                 "type nat hook prerouting priority dstnat; policy accept;",
                 "type nat hook output priority -100; policy accept;",
                 "type nat hook postrouting priority srcnat - 10; policy accept;"):
        assert f"\t\t{line}\n" in text
    assert text.startswith("table ip netplane-proxy {\n")
    assert "meta mark & 0x00004000 == 0x00000000 return\n\t\tmeta mark set meta mark ^ 0x00004000\n" \
           "\t\tmasquerade fully-random" in text
    # Hairpin, for every endpoint at once: a DNATed connection sent back where it came from.
    assert "ct state new ct status dnat fib daddr . iif oif exists jump mark-for-masquerade" in text


def test_token_hash_separates_names_that_read_alike() -> None:
    aff: dict[str, Any] = {"sessionAffinity": "ClientIP"}
    rs = render(CFG, [svc("a-b", **aff), {**svc("b", ip="10.96.0.11", **aff),
                                          "metadata": {"namespace": "ns1-a", "name": "b"}}],
                [slice_(ep("10.16.0.5"), name="a-b"), {**slice_(ep("10.16.0.5"), name="b"),
                                                      "metadata": {"namespace": "ns1-a", "name": "b-abc", "labels": {
                                                          "kubernetes.io/service-name": "b"}}}])
    assert len(rs.chains) == 10 + 2 * 3 and len({c.name for c in rs.chains}) == len(rs.chains)
    assert len(rs.fragments) == 2


@pytest.mark.parametrize("bad", [
    {"metadata": {"namespace": "ns1", "name": "web; flush ruleset"}},
    {"metadata": {"namespace": "NS1", "name": "web"}},
    {"metadata": {"namespace": "ns1", "name": "web"}, "spec": {"ports": [{"name": "x }", "port": 80}]}},
    {"metadata": {"namespace": "ns1", "name": "web"}, "spec": {"ports": [{"port": "80; accept"}]}},
    {"metadata": {"namespace": "ns1", "name": "web"}, "spec": {"ports": [{"port": 80, "protocol": "ICMP"}]}},
])
def test_user_strings_never_reach_rule_text(bad: dict[str, Any]) -> None:
    base = svc()
    merged = {"metadata": bad["metadata"], "spec": {**base["spec"], **bad.get("spec", {})}}
    rs = render(CFG, [merged], [])
    assert rs.problems
    assert render_text(rs) == render_text(render(CFG, [], []))  # the service contributed nothing


def test_bad_values_are_dropped_with_a_problem() -> None:
    rs = render(CFG, [svc(type_="LoadBalancer", node_port=30080, loadBalancerSourceRanges=["1.2.3.0/24 } accept"],
                          externalIPs=["1.2.3.4; drop", "::1"])],
                [slice_({"addresses": ["10.16.0.5 ; drop"], "conditions": {"ready": True}}, ep("10.16.0.6"))])
    assert any("loadBalancerSourceRanges" in p for p in rs.problems)
    got = view(rs)
    assert got["map firewall-ips"] == ()
    assert got["map endpoints-tcp"] == ("10.96.0.10 . 80 . 0 : 10.16.0.6 . 8080",)


def test_address_clash_keeps_the_first_service() -> None:
    rs = render(CFG, [svc("b"), svc("a")], [])
    assert [e for s in rs.sets if s.name == "no-endpoint-services" for e in s.elements] == [
        "10.96.0.10 . tcp . 80 : goto reject-chain"]
    assert rs.problems == ("service ns1/b: 10.96.0.10/tcp/80 already used by ns1/a (skipped)",)


def test_rendering_is_deterministic() -> None:
    services = [svc(f"s{i}", ip=f"10.96.0.{i + 10}", type_="NodePort", node_port=30000 + i) for i in range(6)]
    slices = [slice_(*(ep(f"10.16.{i}.{j}", f"node{j % 2 + 1}") for j in range(1, 5)), name=f"s{i}")
              for i in range(6)]
    first = render(CFG, services, slices)
    for seed in range(5):
        rnd = random.Random(seed)
        s2, sl2 = copy.deepcopy(services), copy.deepcopy(slices)
        rnd.shuffle(s2)
        rnd.shuffle(sl2)
        for s in sl2:
            rnd.shuffle(s["endpoints"])
        again = render(CFG, s2, sl2)
        assert again == first and render_text(again) == render_text(first)


def test_incremental_transaction_of_chains_and_sets() -> None:
    aff: dict[str, Any] = {"sessionAffinity": "ClientIP"}
    old = render(CFG, [svc(**aff)], [slice_(ep("10.16.0.5"), ep("10.16.0.6"))])
    assert incremental_transaction(old, old) == ""
    new = render(CFG, [svc(**aff)], [slice_(ep("10.16.0.5"))])
    script = _unhash(incremental_transaction(old, new)).splitlines()
    ep6 = f"ep-H-{T}-10.16.0.6-8080"
    assert script == [
        f"flush chain ip netplane-proxy all-H-{T}",
        f"add rule ip netplane-proxy all-H-{T} ip saddr @aff-H-{T}-10.16.0.5-8080-10800 goto {EP5}",
        f"add rule ip netplane-proxy all-H-{T} numgen random mod 1 vmap {{ 0 : goto {EP5} }}",
        f"flush chain ip netplane-proxy {ep6}",
        f"delete chain ip netplane-proxy {ep6}",
        f"delete set ip netplane-proxy aff-H-{T}-10.16.0.6-8080-10800",
    ]  # the kept endpoint's affinity set is not flushed
    back = _unhash(incremental_transaction(new, old)).splitlines()
    assert back[:2] == [f"add set ip netplane-proxy aff-H-{T}-10.16.0.6-8080-10800 "
                        "{ type ipv4_addr; flags dynamic,timeout; timeout 10800s; }",
                        f"add chain ip netplane-proxy {ep6}"]
    gone = _unhash(incremental_transaction(old, render(CFG, [], [])))
    assert "delete element ip netplane-proxy service-ips { 10.96.0.10 . tcp . 80 }\n" in gone
    assert "flush map" not in gone and "add element" not in gone
    changed = Ruleset(tuple(s if s.name != "service-ips" else type(s)(s.name, "set", "type ipv4_addr")
                            for s in old.base_sets), old.base_chains, old.fragments)
    with pytest.raises(ProxyApplyError):
        incremental_transaction(old, changed)


def test_an_endpoint_change_is_a_few_map_elements() -> None:
    """The cost of a change follows the change: other services are not mentioned at all."""
    services = [svc(f"s{i}", ip=f"10.96.1.{i}") for i in range(1, 60)]

    def slices(ready: bool) -> list[dict[str, Any]]:
        return [slice_(ep(f"10.16.{i}.1"), ep(f"10.16.{i}.2", ready=ready or i != 7), ep(f"10.16.{i}.3"),
                       name=f"s{i}") for i in range(1, 60)]

    before, after = render(CFG, services, slices(True)), render(CFG, services, slices(False))
    assert incremental_transaction(before, after).splitlines() == [
        "add chain ip netplane-proxy cluster-tcp-2",
        "delete element ip netplane-proxy endpoints-tcp { 10.96.1.7 . 80 . 1, 10.96.1.7 . 80 . 2 }",
        "delete element ip netplane-proxy service-ips { 10.96.1.7 . tcp . 80 }",
        "add rule ip netplane-proxy cluster-tcp-2 ip saddr != @pod-cidrs jump mark-for-masquerade",
        f"add rule ip netplane-proxy cluster-tcp-2 {DNAT} 2 map @endpoints-tcp",
        "add element ip netplane-proxy endpoints-tcp { 10.96.1.7 . 80 . 1 : 10.16.7.3 . 8080 }",
        "add element ip netplane-proxy service-ips { 10.96.1.7 . tcp . 80 : goto cluster-tcp-2 }",
    ]
    # Back: the shared chain nobody uses any more goes, after the element that led to it.
    assert incremental_transaction(after, before).splitlines() == [
        "delete element ip netplane-proxy endpoints-tcp { 10.96.1.7 . 80 . 1 }",
        "delete element ip netplane-proxy service-ips { 10.96.1.7 . tcp . 80 }",
        "add element ip netplane-proxy endpoints-tcp { 10.96.1.7 . 80 . 1 : 10.16.7.2 . 8080, "
        "10.96.1.7 . 80 . 2 : 10.16.7.3 . 8080 }",
        "add element ip netplane-proxy service-ips { 10.96.1.7 . tcp . 80 : goto cluster-tcp-3 }",
        "flush chain ip netplane-proxy cluster-tcp-2",
        "delete chain ip netplane-proxy cluster-tcp-2",
    ]


def test_stale_udp_flows() -> None:
    def rs(*ips: str) -> Ruleset:
        return render(CFG, [svc(protocol="UDP", type_="NodePort", node_port=30053)],
                      [slice_(*(ep(i) for i in ips), protocol="UDP")])
    assert stale_udp_flows(None, rs("10.16.0.5")) == []  # first sync: nothing known to be stale
    assert stale_udp_flows(rs("10.16.0.5", "10.16.0.6"), rs("10.16.0.5")) == [
        ["-p", "udp", "--orig-dst", "10.96.0.10", "--orig-port-dst", "80", "--dst-nat", "10.16.0.6"],
        ["-p", "udp", "--orig-port-dst", "30053", "--dst-nat", "10.16.0.6"]]
    assert stale_udp_flows(rs(), rs("10.16.0.5")) == [  # rejected flows left without DNAT
        ["-p", "udp", "--orig-dst", "10.96.0.10", "--orig-port-dst", "80"], ["-p", "udp", "--orig-port-dst", "30053"]]
    assert stale_udp_flows(rs("10.16.0.5"), render(CFG, [], [])) == [
        ["-p", "udp", "--orig-dst", "10.96.0.10", "--orig-port-dst", "80", "--dst-nat", "10.16.0.5"],
        ["-p", "udp", "--orig-port-dst", "30053", "--dst-nat", "10.16.0.5"]]
    tcp = render(CFG, [svc()], [slice_(ep("10.16.0.5"))])
    assert stale_udp_flows(tcp, render(CFG, [], [])) == []
