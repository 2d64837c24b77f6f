"""The IPAM state machine: subnets and pools in, allocations out.

Rules, in the order a request meets them (Kube-OVN's behaviour unless noted):

* Idempotent: a key that already holds addresses satisfying the request gets
  them back unchanged.
* Static (`ip_address`, `v4`, `v6` or `v4,v6`): outside the CIDR, or the
  network/broadcast address -> AddressOutOfRange; the gateway or another key's
  address -> AddressConflict. An excluded (reserved) address *may* be requested:
  `excludeIps` only keeps addresses from random allocation, and the guide names
  fixed IPs as their use. A static address inside a pool is granted to keys
  outside that pool, as Kube-OVN does: pools restrict random allocation only.
  On a dual-stack subnet a single-family static request gets the other family
  at random.
* Random: uniform over the request's zone (the pool, or the subnet minus all
  pools), skipping reserved addresses.
* Released addresses are quarantined in a FIFO: random allocation takes a
  released address only when no never-quarantined candidate is left in the
  zone, and then the one released longest ago. (Kube-OVN recycles its
  `Released` list only once `Free` is empty, for the same reason: a new pod
  must not inherit a dead pod's address while ARP caches, conntrack and
  policies may still point at it.) Unlike Kube-OVN, a subnet or pool update
  keeps the quarantine. It is not in the `IP` objects, so it is empty after a
  restart unless `restore` is given the list from `released()`.
* A request fails as a whole: a dual-stack request whose second family fails
  leaves nothing behind (every check runs before any state changes).

Updates:

* A subnet may grow (each CIDR replaced by a supernet, or a family added);
  shrinking, moving or dropping a family is refused, as is changing the
  gateway while any address is in use (Kube-OVN's webhook rule).
* Addresses that become excluded stay with their keys; when released they are
  not quarantined or reused (Kube-OVN's reserved addresses are never recycled).
* The gateway is always reserved, whatever `excludeIps` says.
* Pool `ips` changes leave existing allocations with their keys.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from netplane.ipam.addresses import parse_ip, to_text
from netplane.ipam.allocations import Allocation, NicKey, as_key
from netplane.ipam.errors import (
    AddressConflict,
    AddressOutOfRange,
    InvalidAddress,
    InvalidIPFamily,
    InvalidPool,
    IPAMError,
    NoAvailableAddress,
    NoSubnet,
    SubnetUpdateRefused,
)
from netplane.ipam.pools import PoolSpec, pool_ranges
from netplane.ipam.ranges import RangeSet
from netplane.ipam.subnets import FamilyLayout, SubnetLayout, SubnetSpec, layout
from netplane.ipam.zones import Zone

FAMILIES = {"IPv4": 4, "IPv6": 6}
DEFAULT_ZONE = ""


class _Family:
    """One address family of one subnet: who holds what, and the quarantine."""

    def __init__(self, layout: FamilyLayout) -> None:
        self.layout = layout
        self.owners: dict[int, NicKey] = {}
        # Insertion-ordered: the first entry was released longest ago.
        self.quarantine: dict[int, None] = {}
        self.zones: dict[str, Zone] = {}
        self.pool_zones: list[tuple[RangeSet, Zone]] = []

    def zone_of(self, value: int) -> Zone | None:
        if not self.layout.first <= value <= self.layout.last:
            return None
        for addresses, zone in self.pool_zones:
            if value in addresses:
                return zone
        return self.zones[DEFAULT_ZONE]

    def rezone(self, pools: Mapping[str, RangeSet]) -> None:
        """Recompute zones and their counters after a subnet or pool change: O(allocations)."""
        usable, reserved = self.layout.usable, self.layout.reserved
        self.zones = {name: Zone(ips.intersect(usable), reserved) for name, ips in pools.items()}
        rest = usable
        for zone in self.zones.values():
            rest = rest.subtract(zone.addresses)
        self.pool_zones = [(z.addresses, z) for z in self.zones.values() if z.addresses]
        self.zones[DEFAULT_ZONE] = Zone(rest, reserved)
        for value in self.owners:
            owner_zone = self.zone_of(value)
            if owner_zone is not None and value in owner_zone.candidates:
                owner_zone.used += 1
        for value in self.quarantine:
            waiting_zone = self.zone_of(value)
            if waiting_zone is not None and value in waiting_zone.candidates:
                waiting_zone.quarantined += 1

    def take(self, value: int, key: NicKey) -> None:
        self.owners[value] = key
        zone = self.zone_of(value)
        counted = zone is not None and value in zone.candidates
        if value in self.quarantine:
            del self.quarantine[value]
            if zone is not None and counted:
                zone.quarantined -= 1
        if zone is not None and counted:
            zone.used += 1

    def free(self, value: int) -> None:
        del self.owners[value]
        zone = self.zone_of(value)
        if zone is None or value not in zone.candidates:
            return  # reserved or outside: never recycled
        zone.used -= 1
        zone.quarantined += 1
        self.quarantine[value] = None

    def oldest_released(self, zone: Zone) -> int | None:
        for value in self.quarantine:
            if value in zone.candidates:
                return value
        return None


@dataclass
class _Subnet:
    layout: SubnetLayout
    families: dict[int, _Family]
    pools: dict[str, PoolSpec] = field(default_factory=dict)
    pool_ranges: dict[str, dict[int, RangeSet]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.layout.name

    def rezone(self) -> None:
        for version, family in self.families.items():
            family.rezone({name: ranges[version] for name, ranges in self.pool_ranges.items()})

    def in_use(self) -> int:
        return sum(len(f.owners) for f in self.families.values())


@dataclass(frozen=True)
class Rejected:
    """A persisted allocation `restore` could not take back, and why."""

    allocation: Allocation
    error: IPAMError


@dataclass(frozen=True)
class FamilyUsage:
    """Per-family counters for Subnet/IPPool status (Kube-OVN's available/using IPs)."""

    version: int
    using: int
    available: int


class IPAM:
    """Central IPAM over any number of subnets; deterministic given its random source."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()
        self._subnets: dict[str, _Subnet] = {}
        self._pools: dict[str, PoolSpec] = {}
        self._by_key: dict[NicKey, Allocation] = {}

    # ---------------------------------------------------------------- subnets

    def set_subnet(self, spec: SubnetSpec) -> SubnetLayout:
        """Create or update a subnet; returns its normalised layout."""
        new = layout(spec)
        current = self._subnets.get(spec.name)
        if current is None:
            subnet = _Subnet(new, {v: _Family(f) for v, f in new.families.items()})
            subnet.rezone()
            self._subnets[spec.name] = subnet
            return new
        self._check_update(current, new)
        for version, family_layout in new.families.items():
            if version in current.families:
                current.families[version].layout = family_layout
            else:
                current.families[version] = _Family(family_layout)
        current.layout = new
        current.rezone()
        return new

    def _check_update(self, current: _Subnet, new: SubnetLayout) -> None:
        name = current.name
        in_use = current.in_use()
        for version, family in current.families.items():
            old = family.layout
            grown = new.families.get(version)
            if grown is None:
                raise SubnetUpdateRefused(
                    f"subnet {name} can only grow: the new cidrBlock {new.cidr_block} drops {old.cidr}", subnet=name)
            if not grown.start <= old.start <= old.end <= grown.end:
                raise SubnetUpdateRefused(
                    f"subnet {name} can only grow: {grown.cidr} does not contain the current {old.cidr}; "
                    "create another subnet instead", subnet=name)
            if grown.gateway != old.gateway and in_use:
                raise SubnetUpdateRefused(
                    f"can't update gateway of subnet {name} from {old.text(old.gateway)} to "
                    f"{grown.text(grown.gateway)} while {in_use} addresses are in use; set gateway "
                    f"{old.text(old.gateway)} explicitly to keep it", subnet=name)
            for value, key in family.owners.items():
                if not grown.first <= value <= grown.last:
                    raise SubnetUpdateRefused(
                        f"subnet {name} cannot become {grown.cidr}: {old.text(value)} of {key} would be its "
                        "network or broadcast address", subnet=name, key=key.name, ip=old.text(value))

    def remove_subnet(self, name: str) -> None:
        """Forget a subnet (and its pools); refused while any address is in use, as Kube-OVN's webhook does."""
        subnet = self._subnet(name)
        if in_use := subnet.in_use():
            raise SubnetUpdateRefused(f"can't delete subnet {name} while {in_use} addresses are in use", subnet=name)
        for pool in subnet.pools:
            del self._pools[pool]
        del self._subnets[name]

    def subnet(self, name: str) -> SubnetLayout:
        return self._subnet(name).layout

    def subnets(self) -> list[str]:
        return list(self._subnets)

    def _subnet(self, name: str) -> _Subnet:
        try:
            return self._subnets[name]
        except KeyError:
            raise NoSubnet(f"subnet {name} does not exist", subnet=name) from None

    # ------------------------------------------------------------------ pools

    def set_pool(self, spec: PoolSpec) -> None:
        """Create or update an IPPool; overlapping another pool of its subnet is refused."""
        ranges = pool_ranges(spec)
        current = self._pools.get(spec.name)
        if current is not None and current.subnet != spec.subnet:
            raise InvalidPool(f"spec.subnet of ippool {spec.name} is immutable ({current.subnet})", subnet=spec.subnet)
        if spec.subnet not in self._subnets:
            raise NoSubnet(f"subnet {spec.subnet} of ippool {spec.name} does not exist", subnet=spec.subnet)
        subnet = self._subnets[spec.subnet]
        for other, other_ranges in subnet.pool_ranges.items():
            if other == spec.name:
                continue
            for version in (4, 6):
                overlap = ranges[version].intersect(other_ranges[version])
                if overlap:
                    raise InvalidPool(f"ippool {spec.name} has conflict IPs with ippool {other}: "
                                      f"{overlap.format(version)}", subnet=spec.subnet)
        subnet.pools[spec.name] = spec
        subnet.pool_ranges[spec.name] = ranges
        self._pools[spec.name] = spec
        subnet.rezone()

    def remove_pool(self, name: str) -> None:
        """Forget a pool: its addresses return to the subnet's default zone; allocations stay."""
        spec = self._pools.pop(name, None)
        if spec is None:
            return
        subnet = self._subnets[spec.subnet]
        del subnet.pools[name]
        del subnet.pool_ranges[name]
        subnet.rezone()

    def pools_for_namespace(self, namespace: str) -> list[str]:
        """Pools bound to a namespace (precaution 7: there may be several), in name order."""
        return sorted(name for name, spec in self._pools.items() if namespace in spec.namespaces)

    # ------------------------------------------------------------- allocation

    def allocate(self, key: NicKey | str, subnet: str | None = None, *, pools: Sequence[str] = (),
                 static: str = "", family: str = "") -> Allocation:
        """Addresses for `key`: static if `static` is given, else random from the first of
        `pools` with room (no fallback to the subnet), else random from the subnet.

        `family` (`IPv4`/`IPv6`) picks one family of a dual-stack subnet.
        """
        nic = as_key(key)
        if family and family not in FAMILIES:
            raise InvalidIPFamily(f"{family} is not a valid ip family; use IPv4 or IPv6", subnet=subnet or "",
                                  key=nic.name)
        pool_specs = [self._pool(name, nic) for name in pools]
        if subnet is not None:
            pool_specs = [p for p in pool_specs if p.subnet == subnet]
            if pools and not pool_specs:
                raise NoAvailableAddress(f"none of ippools {', '.join(pools)} belongs to subnet {subnet}",
                                         subnet=subnet, key=nic.name)
        elif pool_specs:
            subnet = pool_specs[0].subnet
        else:
            raise NoSubnet(f"no subnet or ippool given for {nic}", key=nic.name)
        target = self._subnet(subnet)
        statics = self._parse_static(target, nic, static, family)
        existing = self._by_key.get(nic)
        if existing is not None and self._satisfies(existing, target, statics, family, pools if not static else ()):
            return existing
        if static or not pool_specs:
            plan = self._plan(target, nic, statics, self._families(target, nic, statics, family), None)
        else:
            plan = self._plan_from_pools(nic, pool_specs, family)
        return self._commit(self._subnets[plan.subnet], nic, plan)

    def _satisfies(self, existing: Allocation, subnet: _Subnet, statics: dict[int, int], family: str,
                   pools: Sequence[str]) -> bool:
        if existing.subnet != subnet.name:
            return False
        held = self._held(existing, subnet.name)
        wanted = [FAMILIES[family]] if family else sorted(set(subnet.families) | set(statics))
        if sorted(held) != wanted or any(held[v] != value for v, value in statics.items()):
            return False
        return not pools or all(self._zone_name(subnet.families[v], value) in pools
                                for v, value in held.items() if v not in statics)

    def _pool(self, name: str, nic: NicKey) -> PoolSpec:
        try:
            return self._pools[name]
        except KeyError:
            raise InvalidPool(f"ippool {name} requested for {nic} does not exist", key=nic.name) from None

    def _parse_static(self, subnet: _Subnet, nic: NicKey, static: str, family: str) -> dict[int, int]:
        statics: dict[int, int] = {}
        for text in filter(None, (part.strip() for part in static.split(","))):
            address = text.split("/", 1)[0]  # the annotation may carry a prefix length
            try:
                version, value = parse_ip(address)
            except ValueError:
                raise InvalidAddress(f"{text} requested by {nic} is not a valid IP address", subnet=subnet.name,
                                     key=nic.name, ip=text) from None
            if version in statics:
                raise InvalidAddress(f"{static} requested by {nic} names two IPv{version} addresses; a dual-stack "
                                     "request is \"v4,v6\"", subnet=subnet.name, key=nic.name, ip=static)
            if family and FAMILIES[family] != version:
                raise InvalidIPFamily(f"{text} requested by {nic} is not an {family} address", subnet=subnet.name,
                                      key=nic.name, ip=text)
            statics[version] = value
        return statics

    def _families(self, subnet: _Subnet, nic: NicKey, statics: dict[int, int], family: str) -> list[int]:
        if family:
            version = FAMILIES[family]
            if version not in subnet.families:
                raise InvalidIPFamily(f"subnet {subnet.name} ({subnet.layout.cidr_block}) has no {family} "
                                      f"addresses for {nic}", subnet=subnet.name, key=nic.name)
            return [version]
        return sorted(set(subnet.families) | set(statics))

    def _plan_from_pools(self, nic: NicKey, pool_specs: list[PoolSpec], family: str) -> _Plan:
        for spec in pool_specs:
            target = self._subnets[spec.subnet]
            try:
                return self._plan(target, nic, {}, self._families(target, nic, {}, family), spec.name)
            except (NoAvailableAddress, InvalidIPFamily):
                continue  # Kube-OVN takes the first bound pool that has the requested family available
        names = ", ".join(p.name for p in pool_specs)
        raise NoAvailableAddress(f"no available address for {nic} in ippool(s) {names}; pods bound to these pools "
                                 "do not fall back to the rest of the subnet: add addresses to a pool or release some",
                                 subnet=pool_specs[0].subnet, key=nic.name)

    def _plan(self, subnet: _Subnet, nic: NicKey, statics: dict[int, int], wanted: list[int],
              pool: str | None) -> _Plan:
        """Choose addresses without changing any state, so a failure leaves nothing behind."""
        existing = self._by_key.get(nic)
        held = self._held(existing, subnet.name)
        chosen: dict[int, int] = {}
        for version in wanted:
            family = subnet.families.get(version)
            if version in statics:
                chosen[version] = self._check_static(subnet, family, nic, statics[version], version)
                continue
            assert family is not None  # wanted only holds the subnet's families for random requests
            zone_name = pool or DEFAULT_ZONE
            if version in held and (pool is None or self._zone_name(family, held[version]) == pool):
                chosen[version] = held[version]  # idempotent: keep what this key already has
                continue
            chosen[version] = self._pick(subnet, family, nic, zone_name)
        return _Plan(subnet.name, chosen)

    def _held(self, existing: Allocation | None, subnet: str) -> dict[int, int]:
        if existing is None or existing.subnet != subnet:
            return {}
        return dict(parse_ip(a) for a in existing.addresses)

    def _zone_name(self, family: _Family, value: int) -> str | None:
        zone = family.zone_of(value)
        return next((name for name, z in family.zones.items() if z is zone), None)

    def _check_static(self, subnet: _Subnet, family: _Family | None, nic: NicKey, value: int, version: int) -> int:
        # Called once per restored address too, so messages are only built on failure.
        def where() -> str:
            return f"subnet {subnet.name} ({subnet.layout.cidr_block})"

        if family is None:
            text = to_text(value, version)
            raise AddressOutOfRange(f"{text} requested by {nic} is outside {where()}: it has no IPv{version} range",
                                    subnet=subnet.name, key=nic.name, ip=text)
        fl = family.layout
        if not fl.first <= value <= fl.last:
            text = fl.text(value)
            if fl.start <= value <= fl.end:
                what = "network" if value < fl.first else "broadcast"
                raise AddressOutOfRange(f"{text} requested by {nic} is the {what} address of {where()} and is "
                                        "never allocated", subnet=subnet.name, key=nic.name, ip=text)
            raise AddressOutOfRange(f"{text} requested by {nic} is outside {where()}", subnet=subnet.name,
                                    key=nic.name, ip=text)
        if value == fl.gateway:
            text = fl.text(value)
            raise AddressConflict(f"{text} requested by {nic} is the gateway of {where()}; choose another address",
                                  subnet=subnet.name, key=nic.name, ip=text)
        owner = family.owners.get(value)
        if owner is not None and owner != nic:
            text = fl.text(value)
            raise AddressConflict(f"{text} is already allocated to {owner} in subnet {subnet.name}",
                                  subnet=subnet.name, key=nic.name, ip=text)
        return value

    def _pick(self, subnet: _Subnet, family: _Family, nic: NicKey, zone_name: str) -> int:
        zone = family.zones[zone_name]
        value = zone.pick_fresh(self._rng, family.owners, family.quarantine)
        if value is None:
            value = family.oldest_released(zone)
        if value is None:
            fl = family.layout
            scope = f"ippool {zone_name} of subnet {subnet.name}" if zone_name else f"subnet {subnet.name}"
            raise NoAvailableAddress(
                f"no available IPv{fl.version} address for {nic} in {scope} ({fl.cidr}): all "
                f"{zone.candidates.count} allocatable addresses are in use; grow the subnet, remove excludeIps "
                "or release addresses", subnet=subnet.name, key=nic.name)
        return value

    def _commit(self, subnet: _Subnet, nic: NicKey, plan: _Plan) -> Allocation:
        existing = self._by_key.get(nic)
        texts = {version: subnet.families[version].layout.text(value) for version, value in plan.chosen.items()}
        new = Allocation(nic, subnet.name, texts.get(4), texts.get(6))
        if existing == new:
            return existing
        if existing is not None:
            self._release(existing, keep=plan.chosen if existing.subnet == subnet.name else {})
        for version, value in plan.chosen.items():
            family = subnet.families[version]
            if family.owners.get(value) != nic:
                family.take(value, nic)
        self._by_key[nic] = new
        return new

    # ---------------------------------------------------------------- release

    def release(self, key: NicKey | str) -> Allocation | None:
        """Free a key's addresses (into the quarantine); returns what it held."""
        allocation = self._by_key.pop(as_key(key), None)
        if allocation is not None:
            self._release(allocation, keep={})
        return allocation

    def release_pod(self, pod: str) -> list[Allocation]:
        """Free every interface of a pod (`name.namespace`)."""
        return [a for k in [k for k in self._by_key if k.pod == pod] if (a := self.release(k)) is not None]

    def _release(self, allocation: Allocation, keep: Mapping[int, int]) -> None:
        subnet = self._subnets.get(allocation.subnet)
        if subnet is None:
            return
        for text in allocation.addresses:
            version, value = parse_ip(text)
            family = subnet.families.get(version)
            if family is not None and keep.get(version) != value and family.owners.get(value) == allocation.key:
                family.free(value)

    # ------------------------------------------------------- queries, restore

    def allocation(self, key: NicKey | str) -> Allocation | None:
        return self._by_key.get(as_key(key))

    def allocations(self) -> Iterator[Allocation]:
        return iter(list(self._by_key.values()))

    def owner(self, subnet: str, address: str) -> NicKey | None:
        version, value = parse_ip(address)
        family = self._subnet(subnet).families.get(version)
        return None if family is None else family.owners.get(value)

    def released(self, subnet: str) -> list[str]:
        """The quarantine, oldest first -- persist it to keep the reuse rule across restarts."""
        sub = self._subnet(subnet)
        return [f.layout.text(v) for f in sub.families.values() for v in f.quarantine]

    def usage(self, subnet: str, pool: str | None = None) -> list[FamilyUsage]:
        """Using and available counts per family, for the Subnet (or IPPool) status."""
        sub = self._subnet(subnet)
        out = []
        for version, family in sub.families.items():
            if pool is None:
                candidates = family.layout.usable.subtract(family.layout.reserved)
                using = len(family.owners)
                held_candidates = sum(1 for v in family.owners if v in candidates)
                out.append(FamilyUsage(version, using, candidates.count - held_candidates))
            else:
                zone = family.zones[pool]
                using = sum(1 for v in family.owners if v in zone.addresses)
                out.append(FamilyUsage(version, using, zone.candidates.count - zone.used))
        return out

    def usage_ranges(self, subnet: str) -> dict[int, tuple[str, str]]:
        """Per family, the addresses in use and the ones still allocatable, in Kube-OVN's
        range-list notation (`10.16.0.2-10.16.0.9,10.16.0.20`), for the Subnet status."""
        sub = self._subnet(subnet)
        out: dict[int, tuple[str, str]] = {}
        for version, family in sub.families.items():
            using = RangeSet((v, v) for v in family.owners)
            available = family.layout.usable.subtract(family.layout.reserved).subtract(using)
            out[version] = (using.format(version).replace("..", "-"), available.format(version).replace("..", "-"))
        return out

    def has_room(self, subnet: str, family: str = "") -> bool:
        """Whether a random allocation (no pool) in this subnet can succeed."""
        sub = self._subnet(subnet)
        versions = [FAMILIES[family]] if family else list(sub.families)
        return all(v in sub.families and sub.families[v].zones[DEFAULT_ZONE].has_room() for v in versions)

    def restore(self, allocations: Iterable[Allocation],
                released: Mapping[str, Sequence[str]] | None = None) -> list[Rejected]:
        """Take back persisted allocations (the `IP` objects) in one call, after a restart.

        Each is checked as a static request would be; those that no longer fit
        (unknown subnet, outside it, gateway, duplicate address or key) are
        returned instead of raised, so the controller can report and re-allocate them.
        """
        rejected: list[Rejected] = []
        for allocation in allocations:
            try:
                self._restore_one(allocation)
            except IPAMError as err:
                rejected.append(Rejected(allocation, err))
        for name, addresses in (released or {}).items():
            subnet = self._subnets.get(name)
            if subnet is None:
                continue
            for text in addresses:
                version, value = parse_ip(text)
                family = subnet.families.get(version)
                if family is None or value in family.owners or value in family.quarantine:
                    continue
                zone = family.zone_of(value)
                if zone is None:
                    continue
                # Kept even if now reserved, as the live quarantine keeps it, so that
                # removing the exclusion later does not make it look never-used.
                family.quarantine[value] = None
                if value in zone.candidates:
                    zone.quarantined += 1
        return rejected

    def _restore_one(self, allocation: Allocation) -> None:
        nic = allocation.key
        subnet = self._subnet(allocation.subnet)
        if nic in self._by_key:
            raise AddressConflict(f"{nic} already holds {self._by_key[nic].ip_address} in subnet "
                                  f"{self._by_key[nic].subnet}", subnet=subnet.name, key=nic.name)
        values: dict[int, int] = {}
        for expected, text in ((4, allocation.v4), (6, allocation.v6)):
            if text is None:
                continue
            try:
                version, value = parse_ip(text)
            except ValueError:
                version, value = 0, 0
            if version != expected:
                raise InvalidAddress(f"{text} of {nic} is not a valid IPv{expected} address", subnet=subnet.name,
                                     key=nic.name, ip=text)
            values[version] = self._check_static(subnet, subnet.families.get(version), nic, value, version)
        for version, value in values.items():
            subnet.families[version].take(value, nic)
        # inet_pton accepts only canonical IPv4 text; IPv6 may be written many ways.
        if allocation.v6 is not None and 6 in values and to_text(values[6], 6) != allocation.v6:
            allocation = Allocation(nic, subnet.name, allocation.v4, to_text(values[6], 6))
        self._by_key[nic] = allocation


@dataclass(frozen=True)
class _Plan:
    subnet: str
    chosen: dict[int, int]

