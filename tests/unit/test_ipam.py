"""Table-driven cases for the IPAM core: one row per rule and per refusal."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

import pytest

from netplane.ipam import (
    IPAM,
    AddressConflict,
    AddressOutOfRange,
    Allocation,
    InvalidAddress,
    InvalidIPFamily,
    InvalidPool,
    InvalidSubnet,
    IPAMError,
    NicKey,
    NoAvailableAddress,
    NoSubnet,
    PoolSpec,
    SubnetSpec,
    SubnetUpdateRefused,
    choose_subnet,
)

pytestmark = pytest.mark.unit

DEFAULT = SubnetSpec("ovn-default", "10.16.0.0/16")
SMALL = SubnetSpec("small", "10.0.0.0/29")  # usable .1-.6, gateway .1
DUAL = SubnetSpec("dual", "10.0.0.0/30,fd00::/126")  # usable .1-.2 / ::1-::2, gateways .1 / ::1


@dataclass
class Case:
    desc: str
    subnets: tuple[SubnetSpec, ...]
    request: dict[str, object]
    want: set[str] | None = None
    err: type[IPAMError] | None = None
    msg: str = ""
    pools: tuple[PoolSpec, ...] = ()
    before: list[tuple[NicKey | str, dict[str, object]]] = field(default_factory=list)
    key: NicKey | str = "web-2.default"


CASES = [
    Case("static address", (DEFAULT,), {"subnet": "ovn-default", "static": "10.16.0.5"}, {"10.16.0.5"}),
    Case("static held by another pod", (DEFAULT,), {"subnet": "ovn-default", "static": "10.16.0.5"},
         err=AddressConflict, msg="10.16.0.5 is already allocated to pod web-1.default in subnet ovn-default",
         before=[("web-1.default", {"subnet": "ovn-default", "static": "10.16.0.5"})]),
    Case("static held by another interface names its provider", (DEFAULT,),
         {"subnet": "ovn-default", "static": "10.16.0.5"}, err=AddressConflict,
         msg="allocated to pod web-1.default (provider attachnet.default.ovn)",
         before=[(NicKey("web-1.default", "attachnet.default.ovn"), {"subnet": "ovn-default", "static": "10.16.0.5"})]),
    Case("static gateway is a conflict (Kube-OVN)", (DEFAULT,), {"subnet": "ovn-default", "static": "10.16.0.1"},
         err=AddressConflict, msg="is the gateway of subnet ovn-default"),
    Case("static outside the CIDR", (DEFAULT,), {"subnet": "ovn-default", "static": "10.17.0.5"},
         err=AddressOutOfRange, msg="10.17.0.5 requested by pod web-2.default is outside subnet ovn-default"),
    Case("static network address", (DEFAULT,), {"subnet": "ovn-default", "static": "10.16.0.0"},
         err=AddressOutOfRange, msg="network address"),
    Case("static broadcast address", (DEFAULT,), {"subnet": "ovn-default", "static": "10.16.255.255"},
         err=AddressOutOfRange, msg="broadcast address"),
    Case("static IPv6 last address is never allocated either", (DUAL,),
         {"subnet": "dual", "static": "10.0.0.2,fd00::3"}, err=AddressOutOfRange, msg="fd00::3"),
    Case("static excluded address is allowed (reserved only blocks random)",
         (SubnetSpec("ovn-default", "10.16.0.0/16", exclude_ips=("10.16.0.2..10.16.0.10",)),),
         {"subnet": "ovn-default", "static": "10.16.0.5"}, {"10.16.0.5"}),
    Case("static of a family the subnet lacks", (DEFAULT,), {"subnet": "ovn-default", "static": "fd00::5"},
         err=AddressOutOfRange, msg="has no IPv6 range"),
    Case("static with prefix length", (DEFAULT,), {"subnet": "ovn-default", "static": "10.16.0.7/16"}, {"10.16.0.7"}),
    Case("static not an address", (DEFAULT,), {"subnet": "ovn-default", "static": "10.16.0.300"},
         err=InvalidAddress, msg="10.16.0.300 requested by pod web-2.default is not a valid IP address"),
    Case("static names one family twice", (DEFAULT,), {"subnet": "ovn-default", "static": "10.16.0.5,10.16.0.6"},
         err=InvalidAddress, msg="two IPv4 addresses"),
    Case("static family differs from requested family", (DUAL,),
         {"subnet": "dual", "static": "fd00::2", "family": "IPv4"}, err=InvalidIPFamily),
    Case("dual-stack static pair", (DUAL,), {"subnet": "dual", "static": "10.0.0.2,fd00::2"}, {"10.0.0.2", "fd00::2"}),
    Case("dual-stack static, non-canonical IPv6", (DUAL,), {"subnet": "dual", "static": "10.0.0.2,fd00:0::0002"},
         {"10.0.0.2", "fd00::2"}),
    Case("dual-stack static v4 only gets a random v6", (DUAL,), {"subnet": "dual", "static": "10.0.0.2"},
         {"10.0.0.2", "fd00::2"}),
    Case("dual-stack static second half conflicts", (DUAL,), {"subnet": "dual", "static": "10.0.0.2,fd00::2"},
         err=AddressConflict, msg="fd00::2 is already allocated to pod web-1.default",
         before=[("web-1.default", {"subnet": "dual", "static": "fd00::2", "family": "IPv6"})]),
    Case("random skips the gateway", (SubnetSpec("s", "10.0.0.0/30"),), {"subnet": "s"}, {"10.0.0.2"}),
    Case("random skips excludeIps ranges", (SubnetSpec("s", "10.0.0.0/29", exclude_ips=("10.0.0.2..10.0.0.5",)),),
         {"subnet": "s"}, {"10.0.0.6"}),
    Case("gateway stays reserved though excludeIps omit it",
         (SubnetSpec("s", "10.0.0.0/29", gateway="10.0.0.6", exclude_ips=("10.0.0.1..10.0.0.4",)),),
         {"subnet": "s"}, {"10.0.0.5"}),
    Case("random never takes a pool's address", (SMALL,), {"subnet": "small"}, {"10.0.0.6"},
         pools=(PoolSpec("p", "small", ("10.0.0.2..10.0.0.5",)),)),
    Case("random from a pool skips the subnet's reserved addresses",
         (SubnetSpec("small", "10.0.0.0/29", exclude_ips=("10.0.0.2..10.0.0.4",)),), {"pools": ["p"]}, {"10.0.0.5"},
         pools=(PoolSpec("p", "small", ("10.0.0.0/30", "10.0.0.4..10.0.0.5")),)),
    Case("full pool does not fall back to the subnet", (SMALL,), {"pools": ["p"]}, err=NoAvailableAddress,
         msg="in ippool(s) p", pools=(PoolSpec("p", "small", ("10.0.0.2",)),),
         before=[("web-1.default", {"pools": ["p"]})]),
    Case("next bound pool when the first is full", (SMALL,), {"pools": ["p", "q"]}, {"10.0.0.3"},
         pools=(PoolSpec("p", "small", ("10.0.0.2",)), PoolSpec("q", "small", ("10.0.0.3",))),
         before=[("web-1.default", {"pools": ["p"]})]),
    Case("static inside a pool for a key outside it (Kube-OVN allows)", (SMALL,),
         {"subnet": "small", "static": "10.0.0.3"}, {"10.0.0.3"},
         pools=(PoolSpec("p", "small", ("10.0.0.2..10.0.0.5",)),)),
    Case("exhausted subnet", (SubnetSpec("s", "10.0.0.0/30"),), {"subnet": "s"}, err=NoAvailableAddress,
         msg="no available IPv4 address for pod web-2.default in subnet s (10.0.0.0/30)",
         before=[("web-1.default", {"subnet": "s"})]),
    Case("point-to-point /31: both addresses usable, first is the gateway", (SubnetSpec("p2p", "10.0.0.0/31"),),
         {"subnet": "p2p"}, {"10.0.0.1"}),
    Case("family IPv4 on dual stack", (DUAL,), {"subnet": "dual", "family": "IPv4"}, {"10.0.0.2"}),
    Case("family IPv6 on an IPv4 subnet", (DEFAULT,), {"subnet": "ovn-default", "family": "IPv6"},
         err=InvalidIPFamily, msg="has no IPv6 addresses"),
    Case("unknown family", (DEFAULT,), {"subnet": "ovn-default", "family": "ipv5"}, err=InvalidIPFamily),
    Case("unknown subnet", (DEFAULT,), {"subnet": "nope"}, err=NoSubnet, msg="subnet nope does not exist"),
    Case("unknown pool", (DEFAULT,), {"pools": ["nope"]}, err=InvalidPool, msg="ippool nope requested"),
    Case("neither subnet nor pool", (DEFAULT,), {}, err=NoSubnet),
]


@pytest.mark.parametrize("case", CASES, ids=[c.desc for c in CASES])
def test_allocate(case: Case) -> None:
    ipam = IPAM(random.Random(1))
    for spec in case.subnets:
        ipam.set_subnet(spec)
    for pool in case.pools:
        ipam.set_pool(pool)
    for key, request in case.before:
        ipam.allocate(key, **request)  # type: ignore[arg-type]
    held_before = list(ipam.allocations())
    if case.err is not None:
        with pytest.raises(case.err) as info:
            ipam.allocate(case.key, **case.request)  # type: ignore[arg-type]
        assert case.msg in info.value.message
        assert info.value.reason == case.err.reason
        assert list(ipam.allocations()) == held_before  # a refusal changes nothing
        return
    got = ipam.allocate(case.key, **case.request)  # type: ignore[arg-type]
    assert set(got.addresses) == case.want
    assert ipam.allocate(case.key, **case.request) == got  # type: ignore[arg-type]


SUBNET_ERRORS = [
    ("gateway outside", SubnetSpec("s", "10.16.0.0/16", gateway="10.17.0.1"),
     "gateway 10.17.0.1 is not in cidr 10.16.0.0/16"),
    ("gateway is the network", SubnetSpec("s", "10.16.0.0/16", gateway="10.16.0.0"), "is the network number ip"),
    ("gateway is the broadcast", SubnetSpec("s", "10.16.0.0/16", gateway="10.16.255.255"), "is the broadcast ip"),
    ("reversed range", SubnetSpec("s", "10.16.0.0/16", exclude_ips=("10.16.0.2..10.16.0.1",)),
     "10.16.0.2..10.16.0.1 in excludeIps is not a valid ip range"),
    ("mixed-family range", SubnetSpec("s", "10.16.0.0/16", exclude_ips=("10.16.0.2..fd00::1",)),
     "not a valid ip range"),
    ("bad excluded ip", SubnetSpec("s", "10.16.0.0/16", exclude_ips=("10.16.0.300",)),
     "ip 10.16.0.300 in excludeIps is not a valid address"),
    ("protocol", SubnetSpec("s", "10.16.0.0/16", protocol="ipv5"), "ipv5 is not a valid protocol type"),
    ("/32", SubnetSpec("s", "10.16.0.0/32"), "/32 or /128 netmask"),
    ("/128", SubnetSpec("s", "fd00::1/128"), "/32 or /128 netmask"),
    ("empty", SubnetSpec("s", ""), 'CIDRBlock: "" format error'),
    ("garbage", SubnetSpec("s", "10.16.0.0/33"), "cidr 10.16.0.0/33 is invalid"),
    ("two IPv4 blocks", SubnetSpec("s", "10.16.0.0/16,10.17.0.0/16"), "is invalid"),
]


@pytest.mark.parametrize(("desc", "spec", "msg"), SUBNET_ERRORS, ids=[e[0] for e in SUBNET_ERRORS])
def test_subnet_validation(desc: str, spec: SubnetSpec, msg: str) -> None:
    with pytest.raises(InvalidSubnet) as info:
        IPAM().set_subnet(spec)
    assert msg in info.value.message


def test_subnet_normalisation() -> None:
    ipam = IPAM()
    guide = ipam.set_subnet(SubnetSpec("test-calico", "10.1.1.1/24", protocol="Dual"))  # the guide's example
    assert guide.cidr_block == "10.1.1.0/24" and guide.protocol == "IPv4"
    assert guide.families[4].text(guide.families[4].gateway) == "10.1.1.1"
    dual = ipam.set_subnet(SubnetSpec("d", "fd00::/120,10.0.0.0/24", gateway="10.0.0.254"))
    assert dual.protocol == "Dual" and dual.cidr_block == "10.0.0.0/24,fd00::/120"
    assert [f.text(f.gateway) for f in dual.families.values()] == ["10.0.0.254", "fd00::1"]
    clipped = ipam.set_subnet(SubnetSpec("c", "10.2.0.0/30", exclude_ips=("10.1.0.0..10.3.0.0", "fd00::1")))
    assert clipped.families[4].reserved.format(4) == "10.2.0.1..10.2.0.2"  # clipped, other family ignored


def _ipam(*specs: SubnetSpec) -> IPAM:
    ipam = IPAM(random.Random(3))
    for spec in specs:
        ipam.set_subnet(spec)
    return ipam


UPDATES = [
    ("grow", "10.0.0.0/24", "10.0.0.0/23", None),
    ("add a family", "10.0.0.0/24", "10.0.0.0/24,fd00::/120", None),
    ("shrink", "10.0.0.0/24", "10.0.0.0/25", "can only grow: 10.0.0.0/25 does not contain the current 10.0.0.0/24"),
    ("move", "10.0.0.0/24", "10.0.1.0/24", "can only grow"),
    ("drop a family", "10.0.0.0/24,fd00::/120", "10.0.0.0/24", "drops fd00::/120"),
    ("grow into a new base moves the default gateway", "10.0.1.0/24", "10.0.0.0/23",
     "can't update gateway of subnet s from 10.0.1.1 to 10.0.0.1 while 1 addresses are in use"),
]


@pytest.mark.parametrize(("desc", "old", "new", "msg"), UPDATES, ids=[u[0] for u in UPDATES])
def test_subnet_updates(desc: str, old: str, new: str, msg: str | None) -> None:
    ipam = _ipam(SubnetSpec("s", old))
    held = ipam.allocate("web-1.default", "s")
    if msg is None:
        ipam.set_subnet(SubnetSpec("s", new))
        assert ipam.allocate("web-1.default", "s", family="IPv4").v4 == held.v4
    else:
        with pytest.raises(SubnetUpdateRefused) as info:
            ipam.set_subnet(SubnetSpec("s", new))
        assert msg in info.value.message
        assert ipam.subnet("s").cidr_block == old


def test_gateway_change_only_when_nothing_is_in_use() -> None:
    ipam = _ipam(SubnetSpec("s", "10.0.0.0/24"))
    ipam.set_subnet(SubnetSpec("s", "10.0.0.0/24", gateway="10.0.0.254"))
    ipam.allocate("a.default", "s", static="10.0.0.1")  # the old gateway is an ordinary address now
    with pytest.raises(SubnetUpdateRefused, match="can't update gateway"):
        ipam.set_subnet(SubnetSpec("s", "10.0.0.0/24", gateway="10.0.0.1"))


def test_growing_a_point_to_point_subnet_must_not_turn_an_address_into_the_network() -> None:
    ipam = _ipam(SubnetSpec("s", "10.0.0.0/31", gateway="10.0.0.1"))
    ipam.allocate("a.default", "s", static="10.0.0.0")
    with pytest.raises(SubnetUpdateRefused, match=r"10\.0\.0\.0 of pod a\.default would be its network"):
        ipam.set_subnet(SubnetSpec("s", "10.0.0.0/30", gateway="10.0.0.1"))


def test_old_broadcast_becomes_usable_after_growth() -> None:
    ipam = _ipam(SubnetSpec("s", "10.0.0.0/30"))
    with pytest.raises(AddressOutOfRange):
        ipam.allocate("a.default", "s", static="10.0.0.3")
    ipam.set_subnet(SubnetSpec("s", "10.0.0.0/29"))
    assert ipam.allocate("a.default", "s", static="10.0.0.3").v4 == "10.0.0.3"


def test_newly_excluded_address_stays_allocated_and_is_not_recycled() -> None:
    ipam = _ipam(SubnetSpec("s", "10.0.0.0/29"))
    ipam.allocate("a.default", "s", static="10.0.0.3")
    ipam.set_subnet(SubnetSpec("s", "10.0.0.0/29", exclude_ips=("10.0.0.3",)))
    assert ipam.allocation("a.default") == Allocation(NicKey("a.default"), "s", "10.0.0.3")
    ipam.release("a.default")
    assert ipam.released("s") == []
    got = {ipam.allocate(f"p{i}.default", "s").v4 for i in range(4)}
    assert got == {"10.0.0.2", "10.0.0.4", "10.0.0.5", "10.0.0.6"}
    with pytest.raises(NoAvailableAddress):
        ipam.allocate("p9.default", "s")


def test_released_addresses_wait_until_fresh_ones_are_gone_then_come_back_oldest_first() -> None:
    ipam = _ipam(SubnetSpec("s", "10.0.0.0/28"))  # 13 candidates
    first = [ipam.allocate(f"a{i}.default", "s").v4 for i in range(5)]
    for i in (3, 0, 4):
        ipam.release(f"a{i}.default")
    assert ipam.released("s") == [first[3], first[0], first[4]]
    fresh = [ipam.allocate(f"b{i}.default", "s").v4 for i in range(8)]
    assert not set(fresh) & set(first)
    again = [ipam.allocate(f"c{i}.default", "s").v4 for i in range(3)]
    assert again == [first[3], first[0], first[4]]


def test_quarantine_survives_a_restore_when_persisted() -> None:
    ipam = _ipam(SubnetSpec("s", "10.0.0.0/29"))
    held = [ipam.allocate(f"a{i}.default", "s").v4 for i in range(3)]
    ipam.release("a1.default")
    fresh = _ipam(SubnetSpec("s", "10.0.0.0/29"))
    assert fresh.restore(ipam.allocations(), {"s": ipam.released("s")}) == []
    got = [fresh.allocate(f"b{i}.default", "s").v4 for i in range(3)]
    assert held[1] == got[-1] and held[1] not in got[:-1]


def test_idempotent_across_requests() -> None:
    ipam = _ipam(SMALL)
    ipam.set_pool(PoolSpec("p", "small", ("10.0.0.2",)))
    ipam.set_pool(PoolSpec("q", "small", ("10.0.0.3",)))
    in_q = ipam.allocate("a.default", pools=["q"])
    assert ipam.allocate("a.default", pools=["p", "q"]) is in_q  # already in an allowed pool
    assert ipam.allocate("a.default", "small") is in_q  # no pool asked: Kube-OVN keeps the address
    moved = ipam.allocate("a.default", "small", static="10.0.0.5")
    assert moved.v4 == "10.0.0.5" and ipam.owner("small", "10.0.0.3") is None
    assert ipam.released("small") == ["10.0.0.3"]


def test_secondary_interfaces_are_separate_keys_and_release_pod_frees_all() -> None:
    ipam = _ipam(DEFAULT, SubnetSpec("subnet1", "172.170.0.0/16"))
    primary = ipam.allocate("pod1.default", "ovn-default")
    second = ipam.allocate(NicKey("pod1.default", "attachnet.default.ovn"), "subnet1", static="172.170.0.101")
    assert second.key.name == "pod1.default.attachnet.default.ovn" and primary.key.name == "pod1.default"
    assert {a.subnet for a in ipam.release_pod("pod1.default")} == {"ovn-default", "subnet1"}
    assert list(ipam.allocations()) == []


POOL_ERRORS = [
    ("overlap", PoolSpec("p2", "s", ("10.0.0.8/30",)),
     "ippool p2 has conflict IPs with ippool p1: 10.0.0.10..10.0.0.11"),
    ("name is an IP", PoolSpec("10.0.0.9", "s", ("10.0.0.20",)), "must not be an IP address"),
    ("bad entry", PoolSpec("p2", "s", ("10.0.0.20..10.0.0.19",)), "not a valid ip range"),
    ("subnet is immutable", PoolSpec("p1", "t", ("10.1.0.5",)), "immutable"),
]


@pytest.mark.parametrize(("desc", "spec", "msg"), POOL_ERRORS, ids=[e[0] for e in POOL_ERRORS])
def test_pool_validation(desc: str, spec: PoolSpec, msg: str) -> None:
    ipam = _ipam(SubnetSpec("s", "10.0.0.0/24"), SubnetSpec("t", "10.1.0.0/24"))
    ipam.set_pool(PoolSpec("p1", "s", ("10.0.0.10..10.0.0.12",)))
    with pytest.raises(InvalidPool) as info:
        ipam.set_pool(spec)
    assert msg in info.value.message


def test_pool_lifecycle() -> None:
    ipam = _ipam(SMALL)
    with pytest.raises(NoSubnet):
        ipam.set_pool(PoolSpec("p", "missing", ("10.0.0.2",)))
    # Out-of-subnet entries are accepted but not effective (precaution 2).
    ipam.set_pool(PoolSpec("p", "small", ("10.0.0.2", "192.168.0.0/24"), namespaces=("ns-1",)))
    ipam.set_pool(PoolSpec("q", "small", ("10.0.0.3",), namespaces=("ns-1", "ns-2")))
    assert ipam.pools_for_namespace("ns-1") == ["p", "q"] and ipam.pools_for_namespace("ns-3") == []
    assert [u.available for u in ipam.usage("small", "p")] == [1]
    held = ipam.allocate("a.ns-1", pools=["p"])
    # Changing ips takes effect at once (precaution 4); the holder keeps its address.
    ipam.set_pool(PoolSpec("p", "small", ("10.0.0.4",)))
    assert ipam.allocation("a.ns-1") == held
    assert ipam.allocate("b.ns-1", pools=["p"]).v4 == "10.0.0.4"
    ipam.remove_pool("q")  # its address returns to the subnet
    got = {ipam.allocate(f"c{i}.x", "small").v4 for i in range(3)}
    assert got == {"10.0.0.3", "10.0.0.5", "10.0.0.6"}


def test_remove_subnet_refused_while_in_use() -> None:
    ipam = _ipam(SMALL)
    ipam.set_pool(PoolSpec("p", "small", ("10.0.0.2",)))
    ipam.allocate("a.default", "small")
    with pytest.raises(SubnetUpdateRefused, match="can't delete subnet small while 1 addresses are in use"):
        ipam.remove_subnet("small")
    ipam.release("a.default")
    ipam.remove_subnet("small")
    assert ipam.subnets() == [] and ipam.pools_for_namespace("default") == []


def test_restore_takes_back_what_fits_and_reports_the_rest() -> None:
    ipam = _ipam(SubnetSpec("s", "10.0.0.0/24", exclude_ips=("10.0.0.50",)), DUAL)
    records = [
        Allocation(NicKey("ok.default"), "s", "10.0.0.7"),
        Allocation(NicKey("excluded.default"), "s", "10.0.0.50"),  # statics may hold reserved addresses
        Allocation(NicKey("dual.default"), "dual", "10.0.0.2", "fd00:0::2"),
        Allocation(NicKey("dup.default"), "s", "10.0.0.7"),
        Allocation(NicKey("ok.default"), "s", "10.0.0.8"),
        Allocation(NicKey("gw.default"), "s", "10.0.0.1"),
        Allocation(NicKey("far.default"), "s", "10.9.0.1"),
        Allocation(NicKey("swap.default"), "s", "fd00::5"),
        Allocation(NicKey("gone.default"), "missing", "10.0.0.9"),
    ]
    rejected = ipam.restore(records)
    assert [(r.allocation.key.pod, r.error.reason) for r in rejected] == [
        ("dup.default", "AddressConflict"), ("ok.default", "AddressConflict"), ("gw.default", "AddressConflict"),
        ("far.default", "AddressOutOfRange"), ("swap.default", "InvalidAddress"), ("gone.default", "NoSubnet")]
    assert ipam.allocation("dual.default") == Allocation(NicKey("dual.default"), "dual", "10.0.0.2", "fd00::2")
    assert {a.key.pod for a in ipam.allocations()} == {"ok.default", "excluded.default", "dual.default"}
    with pytest.raises(AddressConflict):
        ipam.allocate("new.default", "s", static="10.0.0.7")


def test_choose_subnet_is_random_among_subnets_with_room() -> None:
    ipam = _ipam(SubnetSpec("a", "10.0.0.0/30"), SubnetSpec("b", "10.0.1.0/24"), SubnetSpec("c", "10.0.2.0/24"))
    picks = {choose_subnet(ipam, ["a", "b", "c"], random.Random(seed)) for seed in range(30)}
    assert picks == {"a", "b", "c"}
    assert choose_subnet(ipam, ["a", "b"], random.Random(5)) == choose_subnet(ipam, ["a", "b"], random.Random(5))
    ipam.allocate("x.default", "a")  # a is now full
    assert {choose_subnet(ipam, ["a", "b"], random.Random(seed)) for seed in range(30)} == {"b"}
    with pytest.raises(NoAvailableAddress, match="none of the subnets a has an available address"):
        choose_subnet(ipam, ["a"], random.Random(0))
    with pytest.raises(NoAvailableAddress):
        choose_subnet(ipam, ["b"], random.Random(0), family="IPv6")


@pytest.mark.parametrize("cidr", ["10.0.0.0/8", "fd00::/64", "10.0.0.0/8,fd00::/48"])
def test_huge_subnets_cost_nothing_extra(cidr: str) -> None:
    ipam = _ipam(SubnetSpec("big", cidr, exclude_ips=("10.0.0.0..10.127.255.255",)))
    started = time.perf_counter()
    held = [ipam.allocate(f"p{i}.default", "big") for i in range(2000)]
    ipam.set_subnet(SubnetSpec("big", cidr))  # rezoning is O(allocations), not O(addresses)
    assert time.perf_counter() - started < 2.0
    addresses = [a for h in held for a in h.addresses]
    assert len(set(addresses)) == len(addresses)
    assert all(not a.startswith("10.") or int(a.split(".")[1]) >= 128 for a in addresses)
