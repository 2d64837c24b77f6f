"""A pod's resolv.conf per dnsPolicy/dnsConfig, as the kubelet writes it."""

from __future__ import annotations

from typing import Any

import pytest

from netplane.dataplane.agent.poddns import ResolvConf, parse_resolv_conf, pod_resolv_conf

pytestmark = pytest.mark.unit

NODE = ResolvConf(("192.0.2.53",), ("corp.example",), ("timeout:2",))
CLUSTER = ["10.96.0.10"]


def pod(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": "shop"}, "spec": spec}


def test_cluster_first_is_the_default() -> None:
    got = pod_resolv_conf(pod(), CLUSTER, NODE)
    assert got.conf.render() == ("nameserver 10.96.0.10\n"
                                 "search shop.svc.cluster.local svc.cluster.local cluster.local corp.example\n"
                                 "options ndots:5\n")
    assert got.dropped == []


def test_host_network_with_cluster_first_gets_the_node_file() -> None:
    assert pod_resolv_conf(pod(hostNetwork=True), CLUSTER, NODE).conf == NODE


def test_cluster_first_with_host_net_keeps_the_cluster_dns() -> None:
    got = pod_resolv_conf(pod(hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet"), CLUSTER, NODE).conf
    assert got.nameservers == ("10.96.0.10",)


def test_default_policy_copies_the_node() -> None:
    assert pod_resolv_conf(pod(dnsPolicy="Default"), CLUSTER, NODE).conf == NODE


def test_none_policy_takes_only_dns_config() -> None:
    got = pod_resolv_conf(pod(dnsPolicy="None", dnsConfig={
        "nameservers": ["1.2.3.4"], "searches": ["ns1.svc.cluster-domain.example"],
        "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}), CLUSTER, NODE)
    assert got.conf.render() == ("nameserver 1.2.3.4\nsearch ns1.svc.cluster-domain.example\n"
                                 "options ndots:2 edns0\n")


def test_dns_config_merges_into_cluster_first() -> None:
    got = pod_resolv_conf(pod(dnsConfig={
        "nameservers": ["10.96.0.10", "8.8.8.8"], "searches": ["cluster.local", "extra.example"],
        "options": [{"name": "ndots", "value": "1"}, {"name": "single-request-reopen"}]}), CLUSTER, NODE).conf
    assert got.nameservers == ("10.96.0.10", "8.8.8.8")
    assert got.searches == ("shop.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example",
                            "extra.example")
    assert got.options == ("ndots:1", "single-request-reopen")


def test_limits_drop_the_excess_and_say_so() -> None:
    got = pod_resolv_conf(pod(dnsPolicy="None", dnsConfig={
        "nameservers": ["1.1.1.1", "2.2.2.2", "3.3.3.3", "4.4.4.4"],
        "searches": [f"d{i}.example" for i in range(40)]}), CLUSTER, NODE)
    assert got.conf.nameservers == ("1.1.1.1", "2.2.2.2", "3.3.3.3")
    assert len(got.conf.searches) == 32
    assert "nameserver 4.4.4.4" in got.dropped and "search d39.example" in got.dropped


def test_long_search_domains_respect_the_character_limit() -> None:
    long = ["x" * 60 + f"{i}.example" for i in range(31)]
    got = pod_resolv_conf(pod(dnsPolicy="None", dnsConfig={"searches": long}), CLUSTER, NODE)
    assert len(" ".join(got.conf.searches)) <= 2048
    assert got.dropped


def test_parse_resolv_conf() -> None:
    text = "# comment\nnameserver 127.0.0.53\nnameserver ::1 ; x\ndomain a.example\nsearch b.example c.example\n" \
           "options edns0 trust-ad\n"
    assert parse_resolv_conf(text) == ResolvConf(("127.0.0.53", "::1"), ("b.example", "c.example"),
                                                 ("edns0", "trust-ad"))
    assert parse_resolv_conf("") == ResolvConf()
