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


EP5, EP6 = f"ep-H-{T}-10.16.0.5-8080", f"ep-H-{T}-10.16.0.6-8080"
CASES: list[tuple[str, list[dict[str, Any]], list[dict[str, Any]], dict[str, tuple[str, ...]]]] = [
    ("cluster-ip spreads over endpoints; pods not masqueraded, others are",
     [svc()], [slice_(ep("10.16.0.5"), ep("10.16.0.6", "node2"))], {
         "map service-ips": (f"10.96.0.10 . tcp . 80 : goto svc-H-{T}",),
         f"chain svc-H-{T}": ("ip daddr 10.96.0.10 tcp dport 80 ip saddr != @pod-cidrs jump mark-for-masquerade",
                              f"goto all-H-{T}"),
         f"chain all-H-{T}": (f"numgen random mod 2 vmap {{ 0 : goto {EP5}, 1 : goto {EP6} }}",),
         f"chain {EP5}": ("ip saddr 10.16.0.5 jump mark-for-masquerade",  # hairpin
                          "meta l4proto tcp dnat to 10.16.0.5:8080"),
         "map no-endpoint-services": ()}),
    ("no ready endpoints: rejected", [svc()], [slice_(ep("10.16.0.5", ready=False))], {
        "map service-ips": (), "map no-endpoint-services": ("10.96.0.10 . tcp . 80 : goto reject-chain",),
        "chain reject-chain": ("reject",)}),
    ("serving terminating endpoints are used when nothing is ready", [svc()],
     [slice_(ep("10.16.0.5", ready=False, serving=True, terminating=True), ep("10.16.0.6", ready=False))], {
         f"chain all-H-{T}": (f"numgen random mod 1 vmap {{ 0 : goto {EP5} }}",)}),
    ("nodeport, traffic policy Cluster: masquerade", [svc(type_="NodePort", node_port=30080)],
     [slice_(ep("10.16.0.6", "node2"))], {
         "map service-nodeports": (f"tcp . 30080 : goto ext-H-{T}",),
         f"chain ext-H-{T}": ("jump mark-for-masquerade", f"goto all-H-{T}"),
         "chain services": ("ip daddr . meta l4proto . th dport vmap @service-ips",
                            "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap "
                            "@service-nodeports")}),
    ("nodeport without endpoints: rejected", [svc(type_="NodePort", node_port=30080)], [], {
        "map no-endpoint-nodeports": ("tcp . 30080 : goto reject-chain",),
        "map no-endpoint-services": ("10.96.0.10 . tcp . 80 : goto reject-chain",)}),
    ("externalTrafficPolicy Local with a local endpoint: client address kept",
     [svc(type_="NodePort", node_port=30080, externalTrafficPolicy="Local")],
     [slice_(ep("10.16.0.5"), ep("10.16.0.6", "node2"))], {
         f"chain ext-H-{T}": (f"ip saddr @pod-cidrs goto svc-H-{T}", "fib saddr type local jump mark-for-masquerade",
                              f"fib saddr type local goto svc-H-{T}", f"goto local-H-{T}"),
         f"chain local-H-{T}": (f"numgen random mod 1 vmap {{ 0 : goto {EP5} }}",),
         f"chain all-H-{T}": (f"numgen random mod 2 vmap {{ 0 : goto {EP5}, 1 : goto {EP6} }}",)}),
    ("externalTrafficPolicy Local, endpoints elsewhere only: dropped here",
     [svc(type_="NodePort", node_port=30080, externalTrafficPolicy="Local")], [slice_(ep("10.16.0.6", "node2"))], {
         "map no-endpoint-nodeports": ("tcp . 30080 : drop",), "map service-nodeports": (),
         "map service-ips": (f"10.96.0.10 . tcp . 80 : goto svc-H-{T}",)}),
    ("internalTrafficPolicy Local: local endpoints only, drop when none",
     [svc(internalTrafficPolicy="Local"), svc("other", ip="10.96.0.11", internalTrafficPolicy="Local")],
     [slice_(ep("10.16.0.5"), ep("10.16.0.6", "node2")), slice_(ep("10.16.0.6", "node2"), name="other")], {
         f"chain svc-H-{T}": ("ip daddr 10.96.0.10 tcp dport 80 ip saddr != @pod-cidrs jump mark-for-masquerade",
                              f"goto local-H-{T}"),
         "map no-endpoint-services": ("10.96.0.11 . tcp . 80 : drop",)}),
    ("sessionAffinity ClientIP: per-endpoint sets with the timeout",
     [svc(sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}})],
     [slice_(ep("10.16.0.5"))], {
         f"set aff-H-{T}-10.16.0.5-8080-60": (),
         f"chain all-H-{T}": (f"ip saddr @aff-H-{T}-10.16.0.5-8080-60 goto {EP5}",
                              f"numgen random mod 1 vmap {{ 0 : goto {EP5} }}"),
         f"chain {EP5}": ("ip saddr 10.16.0.5 jump mark-for-masquerade",
                          f"update @aff-H-{T}-10.16.0.5-8080-60 {{ ip saddr }}",
                          "meta l4proto tcp dnat to 10.16.0.5:8080")}),
    ("load balancer ingress IP with source ranges",
     [svc(type_="LoadBalancer", node_port=30080, loadBalancerSourceRanges=["192.0.2.0/24", " 198.51.100.7/32"],
          externalIPs=["203.0.113.9"], status={"loadBalancer": {"ingress": [{"ip": "203.0.113.7"},
                                                                             {"hostname": "lb.example"}]}})],
     [slice_(ep("10.16.0.5"))], {
         "map service-ips": (f"10.96.0.10 . tcp . 80 : goto svc-H-{T}", f"203.0.113.7 . tcp . 80 : goto ext-H-{T}",
                             f"203.0.113.9 . tcp . 80 : goto ext-H-{T}"),
         "map firewall-ips": (f"203.0.113.7 . tcp . 80 : jump fw-H-{T}", f"203.0.113.9 . tcp . 80 : jump fw-H-{T}"),
         f"chain fw-H-{T}": ("ip saddr != { 192.0.2.0/24, 198.51.100.7/32 } drop",),
         "map service-nodeports": (f"tcp . 30080 : goto ext-H-{T}",)}),
    ("UDP and SCTP keep their protocol", [svc(protocol="UDP"), svc("s", ip="10.96.0.11", protocol="SCTP")],
     [slice_(ep("10.16.0.5"), protocol="UDP"), slice_(ep("10.16.0.6"), name="s", protocol="SCTP")], {
         "map service-ips": ("10.96.0.10 . udp . 80 : goto svc-H-ns1-web-udp-http",
                             "10.96.0.11 . sctp . 80 : goto svc-H-ns1-s-sctp-http"),
         "chain ep-H-ns1-web-udp-http-10.16.0.5-8080": ("ip saddr 10.16.0.5 jump mark-for-masquerade",
                                                        "meta l4proto udp dnat to 10.16.0.5:8080")}),
    ("headless and ExternalName services are not proxied",
     [svc(ip="None"), svc("ext", type_="ExternalName", externalName="example.org")], [slice_(ep("10.16.0.5"))], {
         "map service-ips": (), "map no-endpoint-services": ()}),
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
    assert view(rs2)[f"chain svc-H-{T}"] == (f"goto all-H-{T}",)


def test_base_chains_and_priorities() -> None:
    text = render_text(render(CFG, [], []))
    for line in ("type filter hook prerouting priority dstnat - 10; policy accept;",
                 "type filter hook output priority -110; policy accept;",
                 "type nat hook prerouting priority dstnat; policy accept;",
                 "type nat hook output priority -100; policy accept;",
                 "type nat hook postrouting priority srcnat - 10; policy accept;"):
        assert f"\t\t{line}\n" in text
    assert text.startswith("table ip netplane-proxy {\n")
    assert "meta mark & 0x00004000 == 0x00000000 return\n\t\tmeta mark set meta mark ^ 0x00004000\n" \
           "\t\tmasquerade fully-random" in text


def test_token_hash_separates_names_that_read_alike() -> None:
    rs = render(CFG, [svc("a-b"), {**svc("b", ip="10.96.0.11"), "metadata": {"namespace": "ns1-a", "name": "b"}}],
                [])
    assert len({c.name for c in rs.chains}) == len(rs.chains)
    names = [e.split(": ")[-1] for s in rs.sets if s.name == "no-endpoint-services" for e in s.elements]
    assert names == ["goto reject-chain"] * 2


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
    assert got[f"chain all-H-{T}"] == (f"numgen random mod 1 vmap {{ 0 : goto {EP6} }}",)


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


def test_incremental_transaction() -> None:
    aff: dict[str, Any] = {"sessionAffinity": "ClientIP"}
    old = render(CFG, [svc(**aff)], [slice_(ep("10.16.0.5"), ep("10.16.0.6"))])
    assert incremental_transaction(old, old) == ""
    new = render(CFG, [svc(**aff)], [slice_(ep("10.16.0.5"))])
    script = _unhash(incremental_transaction(old, new)).splitlines()
    assert script == [
        f"flush chain ip netplane-proxy all-H-{T}",
        f"add rule ip netplane-proxy all-H-{T} ip saddr @aff-H-{T}-10.16.0.5-8080-10800 goto {EP5}",
        f"add rule ip netplane-proxy all-H-{T} numgen random mod 1 vmap {{ 0 : goto {EP5} }}",
        f"flush chain ip netplane-proxy {EP6}",
        f"delete chain ip netplane-proxy {EP6}",
        f"delete set ip netplane-proxy aff-H-{T}-10.16.0.6-8080-10800",
    ]  # the kept endpoint's affinity set is not flushed
    back = _unhash(incremental_transaction(new, old)).splitlines()
    assert back[:2] == [f"add set ip netplane-proxy aff-H-{T}-10.16.0.6-8080-10800 "
                        "{ type ipv4_addr; flags dynamic,timeout; timeout 10800s; }",
                        f"add chain ip netplane-proxy {EP6}"]
    gone = render(CFG, [], [])
    text = incremental_transaction(old, gone)
    assert "flush map ip netplane-proxy service-ips" in text and "add element" not in text
    changed = Ruleset(tuple(s if s.name != "service-ips" else type(s)(s.name, "set", "ipv4_addr") for s in old.sets),
                      old.chains)
    with pytest.raises(ProxyApplyError):
        incremental_transaction(old, changed)


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
