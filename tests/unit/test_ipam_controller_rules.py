"""The IPAM controller's pure decisions: subnet normalisation, validation and overlap; pod rules."""

from __future__ import annotations

from typing import Any

import pytest

from netplane.controllers.ipam import pods
from netplane.controllers.ipam.defaults import NetworkDefaults
from netplane.controllers.ipam.subnets import analyse, describe, normalise
from netplane.ipam import IPAM, SubnetSpec

D = NetworkDefaults()


def subnet(name: str, cidr: str, created: str = "2026-01-01T00:00:00Z", **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "creationTimestamp": created}, "spec": {"cidrBlock": cidr, **spec}}


def test_the_guides_calico_subnet_is_normalised_and_explained() -> None:
    a = normalise(subnet("test-calico", "10.1.1.1/24", protocol="Dual"), D)
    assert a.valid
    assert a.patch({"cidrBlock": "10.1.1.1/24", "protocol": "Dual"}) == {
        "cidrBlock": "10.1.1.0/24", "protocol": "IPv4", "gateway": "10.1.1.1", "excludeIps": ["10.1.1.1"],
        "vpc": "ovn-cluster", "provider": "ovn", "gatewayType": "distributed"}
    assert a.corrections == {"cidrBlock": ("10.1.1.1/24", "10.1.1.0/24"), "protocol": ("Dual", "IPv4")}
    text = describe(a.corrections)
    assert "cidrBlock 10.1.1.1/24 is not a network address: normalised to 10.1.1.0/24" in text
    assert "protocol Dual does not match cidrBlock: set to IPv4" in text


def test_gateway_is_added_to_sorted_exclude_ips_and_a_normal_spec_needs_no_patch() -> None:
    a = normalise(subnet("s", "10.1.0.0/23", excludeIps=["10.1.1.2"]), D)
    assert a.normal["excludeIps"] == ["10.1.0.1", "10.1.1.2"]
    assert a.patch(a.normal) == {} and not a.corrections
    covered = normalise(subnet("s", "10.1.0.0/23", excludeIps=["10.1.0.1..10.1.0.9"]), D)
    assert covered.normal["excludeIps"] == ["10.1.0.1..10.1.0.9"]


def test_dual_stack_gets_a_gateway_per_family() -> None:
    a = normalise(subnet("d", "10.2.0.0/24,fd00:10::/120", gateway="10.2.0.254"), D)
    assert a.valid and a.normal["protocol"] == "Dual" and a.normal["gateway"] == "10.2.0.254,fd00:10::1"


@pytest.mark.parametrize(("spec", "message"), [
    ({"cidrBlock": "10.16.0.0/16", "gateway": "10.17.0.1"}, "gateway 10.17.0.1 is not in cidr 10.16.0.0/16"),
    ({"cidrBlock": "127.0.0.0/16"}, "127.0.0.0/16 conflict with v4 loopback cidr 127.0.0.0/8"),
    ({"cidrBlock": "169.254.1.0/24"}, "169.254.1.0/24 conflict with v4 link-local cidr 169.254.0.0/16"),
    ({"cidrBlock": "10.16.0.0/16", "excludeIps": ["10.16.0.9..10.16.0.2"]},
     "10.16.0.9..10.16.0.2 in excludeIps is not a valid ip range"),
    ({"cidrBlock": "10.16.0.0/16", "vpc": "s"}, "subnet s and vpc s should not have the same name"),
])
def test_what_the_schema_cannot_judge_is_refused(spec: dict[str, Any], message: str) -> None:
    a = normalise({"metadata": {"name": "s"}, "spec": spec}, D)
    assert not a.valid and a.error == message


def test_the_older_of_two_overlapping_subnets_wins_whoever_is_reconciled_first() -> None:
    old = subnet("zz-old", "10.80.0.0/24", "2026-01-01T00:00:00Z")
    new = subnet("aa-new", "10.80.0.128/25", "2026-01-02T00:00:00Z")
    both = [old, new]
    assert analyse(old, both, D).valid
    assert analyse(new, both, D).error == ("subnet aa-new cidr 10.80.0.128/25 is conflict with subnet zz-old "
                                           "cidr 10.80.0.0/24")
    # Created in the same second: the one the IPAM already serves keeps its range.
    same = subnet("aa-new", "10.80.0.128/25", "2026-01-01T00:00:00Z")
    assert analyse(same, [old, same], D, held={"zz-old": "10.80.0.0/24"}).error
    assert analyse(old, [old, same], D, held={"zz-old": "10.80.0.0/24"}).valid


def test_only_the_same_vpc_and_vlan_conflict() -> None:
    old = subnet("a", "10.80.0.0/24", "2026-01-01T00:00:00Z")
    underlay = subnet("b", "10.80.0.0/24", "2026-01-02T00:00:00Z", vlan="v1")
    other_vpc = subnet("c", "10.80.0.0/24", "2026-01-02T00:00:00Z", vpc="tenant")
    assert analyse(underlay, [old, underlay], D).valid
    assert analyse(other_vpc, [old, other_vpc], D).valid


def test_a_held_subnet_compares_by_the_range_it_has() -> None:
    # b expands onto a: refused for b, a stays valid.
    a = subnet("a", "10.81.0.0/24", "2026-01-02T00:00:00Z")
    b = subnet("b", "10.80.0.0/15", "2026-01-01T00:00:00Z")
    held = {"a": "10.81.0.0/24", "b": "10.80.0.0/24"}
    assert "is conflict with subnet a" in analyse(b, [a, b], D, held).error
    assert analyse(a, [a, b], D, held).valid


def test_statefulset_rules() -> None:
    pod = {"metadata": {"name": "db-2", "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet",
                                                             "name": "db"}]}}
    assert pods.statefulset_of(pod) == ("db", 2)
    assert pods.statefulset_of({"metadata": {"name": "web-2"}}) is None
    sts = {"metadata": {}, "spec": {"replicas": 3}}
    assert pods.statefulset_keeps(sts, 2) and not pods.statefulset_keeps(sts, 3)
    assert not pods.statefulset_keeps({"metadata": {"deletionTimestamp": "x"}, "spec": {"replicas": 3}}, 0)
    assert not pods.statefulset_keeps(None, 0)
    assert pods.statefulset_keeps({"metadata": {}, "spec": {"replicas": 2, "ordinals": {"start": 5}}}, 6)


def test_macs_are_stable_unicast_and_locally_administered() -> None:
    mac = pods.stable_mac("web.default")
    assert mac == pods.stable_mac("web.default") != pods.stable_mac("web.other")
    first = int(mac.split(":")[0], 16)
    assert first & 1 == 0 and first & 2 == 2


def test_pool_annotation_entries_and_selectors() -> None:
    assert pods.pool_entries("10.16.0.5, 10.16.0.6") == ["10.16.0.5", "10.16.0.6"]
    assert pods.pool_entries("10.16.0.5,fd00::5;10.16.0.6,fd00::6") == ["10.16.0.5,fd00::5", "10.16.0.6,fd00::6"]
    labels = {"cpaas.io/project": "p1", "env": "prod"}
    assert pods.selector_matches({"matchLabels": {"cpaas.io/project": "p1"}}, labels)
    assert not pods.selector_matches({"matchLabels": {"cpaas.io/project": "p2"}}, labels)
    assert pods.selector_matches({"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}]}, labels)
    assert not pods.selector_matches({"matchExpressions": [{"key": "env", "operator": "DoesNotExist"}]}, labels)


def test_usage_ranges_use_kube_ovns_notation() -> None:
    ipam = IPAM()
    ipam.set_subnet(SubnetSpec("s", "10.9.0.0/28", exclude_ips=("10.9.0.10",)))
    ipam.allocate("a.ns", "s", static="10.9.0.5")
    ipam.allocate("b.ns", "s", static="10.9.0.6")
    assert ipam.usage_ranges("s") == {
        4: ("10.9.0.5-10.9.0.6", "10.9.0.2-10.9.0.4,10.9.0.7-10.9.0.9,10.9.0.11-10.9.0.14")}
