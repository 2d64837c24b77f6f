"""Hypothesis state machine: random sequences of subnet changes, allocations, releases
and restarts, checked against an independent model of what must hold."""

from __future__ import annotations

import ipaddress
import random

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from netplane.ipam import (
    IPAM,
    AddressConflict,
    AddressOutOfRange,
    Allocation,
    NicKey,
    NoAvailableAddress,
    PoolSpec,
    SubnetSpec,
)

pytestmark = pytest.mark.unit

# Small subnets so exhaustion and quarantine recycling really happen.
BASES = {"a": ("10.0.0.0", None), "d": ("10.1.0.0", "fd00::")}
POOL_OF = {"a": "pa", "d": "pd"}
KEYS = [f"pod{i}.ns" for i in range(24)]


def _net(base: str, prefix: int) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(f"{base}/{prefix}")


class Model:
    """What the IPAM must do, computed by brute force over the few addresses involved."""

    def __init__(self, name: str, prefix: int) -> None:
        self.name = name
        self.prefix = prefix
        self.excluded: list[tuple[int, int]] = []  # offsets
        self.pool: tuple[int, int] | None = None

    def networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        v4, v6 = BASES[self.name]
        nets = [_net(v4, self.prefix)]
        if v6:
            nets.append(_net(v6, self.prefix + 96))
        return nets

    def usable(self, net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> set[str]:
        first, last = int(net.network_address) + 1, int(net.broadcast_address) - 1
        return {str(ipaddress.ip_address(i) if net.version == 4 else ipaddress.IPv6Address(i)) for i in
                range(first, last + 1)}

    def offset(self, net: ipaddress.IPv4Network | ipaddress.IPv6Network, n: int) -> str:
        return str(net.network_address + n)

    def gateway(self, net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
        return self.offset(net, 1)

    def reserved(self, net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> set[str]:
        out = {self.gateway(net)}
        for lo, hi in self.excluded:
            out |= {self.offset(net, n) for n in range(lo, hi + 1)}
        return out & self.usable(net)

    def pool_addresses(self, net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> set[str]:
        if self.pool is None:
            return set()
        return {self.offset(net, n) for n in range(self.pool[0], self.pool[1] + 1)} & self.usable(net)

    def spec(self) -> SubnetSpec:
        cidr = ",".join(str(n) for n in self.networks())
        ranges = []
        for net in self.networks():
            ranges += [f"{self.offset(net, lo)}..{self.offset(net, hi)}" for lo, hi in self.excluded]
        return SubnetSpec(self.name, cidr, exclude_ips=tuple(ranges))

    def pool_spec(self) -> PoolSpec | None:
        if self.pool is None:
            return None
        ips = [f"{self.offset(n, self.pool[0])}..{self.offset(n, self.pool[1])}" for n in self.networks()]
        return PoolSpec(POOL_OF[self.name], self.name, tuple(ips))


class IPAMMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.ipam = IPAM(random.Random(0))
        self.models: dict[str, Model] = {}
        self.static: set[tuple[str, str]] = set()  # (key, address) granted statically or held when excluded
        self.released: dict[str, list[str]] = {}  # subnet -> quarantined addresses, oldest first

    def _held(self) -> dict[str, dict[str, NicKey]]:
        held: dict[str, dict[str, NicKey]] = {}
        for a in self.ipam.allocations():
            for address in a.addresses:
                held.setdefault(a.subnet, {})[address] = a.key
        return held

    # ---------------------------------------------------------- subnet changes

    @rule(name=st.sampled_from(sorted(BASES)), prefix=st.integers(28, 29))
    def create_subnet(self, name: str, prefix: int) -> None:
        if name in self.models:
            return
        self.models[name] = Model(name, prefix)
        self.ipam.set_subnet(self.models[name].spec())

    @precondition(lambda self: self.models)
    @rule(data=st.data())
    def grow(self, data: st.DataObject) -> None:
        model = self.models[data.draw(st.sampled_from(sorted(self.models)))]
        if model.prefix > 26:
            model.prefix -= 1
            self.ipam.set_subnet(model.spec())

    @precondition(lambda self: self.models)
    @rule(data=st.data(), ranges=st.lists(st.tuples(st.integers(0, 20), st.integers(0, 4)), max_size=2))
    def set_excludes(self, data: st.DataObject, ranges: list[tuple[int, int]]) -> None:
        model = self.models[data.draw(st.sampled_from(sorted(self.models)))]
        model.excluded = [(lo, lo + width) for lo, width in ranges]
        self.ipam.set_subnet(model.spec())
        held = self._held().get(model.name, {})
        for net in model.networks():
            for address in model.reserved(net) & set(held):
                self.static.add((held[address].pod, address))  # held before it became excluded: allowed
            # Reserved addresses are never recycled, but leave the quarantine only when taken.

    @precondition(lambda self: self.models)
    @rule(data=st.data(), lo=st.integers(1, 14), width=st.integers(0, 6))
    def set_pool(self, data: st.DataObject, lo: int, width: int) -> None:
        model = self.models[data.draw(st.sampled_from(sorted(self.models)))]
        model.pool = (lo, lo + width)
        spec = model.pool_spec()
        assert spec is not None
        self.ipam.set_pool(spec)

    # -------------------------------------------------------------- requests

    def _fresh_and_waiting(self, model: Model, pool: bool) -> list[tuple[set[str], list[str]]]:
        held = self._held().get(model.name, {})
        out = []
        for net in model.networks():
            zone = model.pool_addresses(net) if pool else model.usable(net) - model.pool_addresses(net)
            candidates = zone - model.reserved(net)
            waiting = [a for a in self.released.get(model.name, []) if a in candidates]
            out.append((candidates - set(held) - set(waiting), waiting))
        return out

    @precondition(lambda self: self.models)
    @rule(data=st.data(), key=st.sampled_from(KEYS), use_pool=st.booleans())
    def allocate_random(self, data: st.DataObject, key: str, use_pool: bool) -> None:
        model = self.models[data.draw(st.sampled_from(sorted(self.models)))]
        if self.ipam.allocation(key) is not None or (use_pool and model.pool is None):
            return
        expected = self._fresh_and_waiting(model, use_pool)
        request = {"pools": [POOL_OF[model.name]]} if use_pool else {"subnet": model.name}
        try:
            got = self.ipam.allocate(key, **request)
        except NoAvailableAddress:
            assert any(not fresh and not waiting for fresh, waiting in expected)
            return
        for address, (fresh, waiting) in zip(got.addresses, expected, strict=True):
            if fresh:
                assert address in fresh, "a released address came back while fresh ones remained"
            else:
                assert address == waiting[0], "quarantined addresses come back oldest first"
                self.released[model.name].remove(address)

    @precondition(lambda self: self.models)
    @rule(data=st.data(), key=st.sampled_from(KEYS), offset=st.integers(0, 70))
    def allocate_static(self, data: st.DataObject, key: str, offset: int) -> None:
        model = self.models[data.draw(st.sampled_from(sorted(self.models)))]
        if self.ipam.allocation(key) is not None:
            return
        net = model.networks()[0]
        address = str(ipaddress.ip_address(BASES[model.name][0]) + offset)
        held = self._held().get(model.name, {})
        try:
            got = self.ipam.allocate(key, model.name, static=address, family="IPv4")
        except AddressOutOfRange:
            assert address not in model.usable(net)
            return
        except AddressConflict:
            assert address == model.gateway(net) or address in held
            return
        assert got.addresses == (address,)
        self.static.add((key, address))
        if address in self.released.get(model.name, []):
            self.released[model.name].remove(address)

    @precondition(lambda self: any(True for _ in self.ipam.allocations()))
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        allocation = data.draw(st.sampled_from(sorted(self.ipam.allocations(), key=lambda a: a.key)))
        self.ipam.release(allocation.key)
        model = self.models[allocation.subnet]
        for address in allocation.addresses:
            net = next(n for n in model.networks() if ipaddress.ip_address(address) in n)
            self.static.discard((allocation.key.pod, address))
            if address not in model.reserved(net):  # reserved addresses are never recycled
                self.released.setdefault(model.name, []).append(address)

    @rule()
    def restart(self) -> None:
        """Rebuild from what a controller persists: the IP objects plus the released lists."""
        fresh = IPAM(random.Random(1))
        for model in self.models.values():
            fresh.set_subnet(model.spec())
            if (spec := model.pool_spec()) is not None:
                fresh.set_pool(spec)
        before = sorted(self.ipam.allocations(), key=lambda a: a.key)
        assert fresh.restore(before, {n: self.ipam.released(n) for n in self.models}) == []
        assert sorted(fresh.allocations(), key=lambda a: a.key) == before
        self.ipam = fresh

    # ------------------------------------------------------------- invariants

    @invariant()
    def addresses_are_unique_valid_and_in_their_subnet(self) -> None:
        seen: set[tuple[str, str]] = set()
        usable = {name: set().union(*(m.usable(n) for n in m.networks())) for name, m in self.models.items()}
        reserved = {name: set().union(*(m.reserved(n) for n in m.networks())) for name, m in self.models.items()}
        for allocation in self.ipam.allocations():
            assert isinstance(allocation, Allocation)
            for address in allocation.addresses:
                assert (allocation.subnet, address) not in seen, f"{address} is held twice"
                seen.add((allocation.subnet, address))
                # usable excludes network and broadcast; reserved includes the gateway
                assert address in usable[allocation.subnet], f"{address} is network/broadcast or outside"
                if address in reserved[allocation.subnet]:
                    assert (allocation.key.pod, address) in self.static, f"{address} is excluded or the gateway"

    @invariant()
    def quarantine_matches_the_model(self) -> None:
        for name in self.models:
            got, want = self.ipam.released(name), self.released.get(name, [])
            for v6 in (False, True):  # FIFO order is per family
                assert [a for a in got if (":" in a) == v6] == [a for a in want if (":" in a) == v6]


TestIPAMMachine = IPAMMachine.TestCase
TestIPAMMachine.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
