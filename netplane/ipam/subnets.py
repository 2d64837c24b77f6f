"""Subnet specs and the address layout they imply (Kube-OVN semantics).

Per family a subnet has:

* its CIDR, normalised to the network address (`10.1.1.1/24` means `10.1.1.0/24`);
* a usable range: every address but the network and the last one, in IPv6 too
  (Kube-OVN's `FirstIP`/`LastIP`); a /31 or /127 is point-to-point and both of
  its addresses are usable; /32 and /128 are refused;
* a gateway, by default the first usable address; always reserved, whatever
  `excludeIps` says, because Kube-OVN appends it to `excludeIps`;
* reserved addresses: `excludeIps` entries (`a.b.c.d` or `a..b`) plus the
  gateway, clipped to the usable range; entries of a family the subnet does not
  have are ignored, as in Kube-OVN.

`protocol` is derived from `cidrBlock`, as Kube-OVN's `formatSubnet` does;
a given value is only checked for being one of IPv4, IPv6, Dual.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from netplane.ipam.addresses import parse_ip, parse_range, to_text
from netplane.ipam.errors import InvalidSubnet
from netplane.ipam.ranges import RangeSet

PROTOCOLS = ("IPv4", "IPv6", "Dual")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class SubnetSpec:
    """The IPAM-relevant part of a `kubeovn.io/v1` Subnet."""

    name: str
    cidr_block: str
    protocol: str = ""
    gateway: str = ""
    exclude_ips: tuple[str, ...] = ()


@dataclass(frozen=True)
class FamilyLayout:
    version: int
    network: Network
    start: int  # network address
    end: int  # last address of the CIDR (the IPv4 broadcast)
    first: int  # usable range
    last: int
    gateway: int
    reserved: RangeSet = field(compare=False)

    @property
    def usable(self) -> RangeSet:
        return RangeSet.single(self.first, self.last)

    @property
    def cidr(self) -> str:
        return str(self.network)

    def text(self, value: int) -> str:
        return to_text(value, self.version)


@dataclass(frozen=True)
class SubnetLayout:
    spec: SubnetSpec
    protocol: str
    families: dict[int, FamilyLayout]

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def cidr_block(self) -> str:
        return ",".join(f.cidr for f in self.families.values())


def _networks(spec: SubnetSpec) -> list[Network]:
    if not spec.cidr_block.strip():
        raise InvalidSubnet('CIDRBlock: "" format error', subnet=spec.name)
    networks: list[Network] = []
    for block in spec.cidr_block.split(","):
        try:
            network = ipaddress.ip_network(block.strip(), strict=False)
        except ValueError:
            raise InvalidSubnet(f"subnet {spec.name} cidr {spec.cidr_block} is invalid", subnet=spec.name) from None
        if network.prefixlen == network.max_prefixlen:
            raise InvalidSubnet(f"subnet {spec.name} is configured with /32 or /128 netmask", subnet=spec.name)
        networks.append(network)
    if len(networks) > 2 or len({n.version for n in networks}) != len(networks):
        raise InvalidSubnet(
            f"subnet {spec.name} cidr {spec.cidr_block} is invalid: give one IPv4 and/or one IPv6 CIDR",
            subnet=spec.name)
    return sorted(networks, key=lambda n: n.version)


def _gateways(spec: SubnetSpec, networks: list[Network]) -> dict[int, int]:
    gateways: dict[int, int] = {}
    for text in filter(None, (g.strip() for g in spec.gateway.split(","))):
        try:
            version, value = parse_ip(text)
        except ValueError:
            raise InvalidSubnet(f"gateway {text} is not a valid address", subnet=spec.name) from None
        network = next((n for n in networks if n.version == version), None)
        if network is None or ipaddress.ip_address(value) not in network or version in gateways:
            cidr = network or spec.cidr_block
            raise InvalidSubnet(f"gateway {text} is not in cidr {cidr}", subnet=spec.name)
        point_to_point = network.prefixlen == network.max_prefixlen - 1
        if not point_to_point and value == int(network.network_address):
            raise InvalidSubnet(f"{text} is the network number ip in cidr {network}", subnet=spec.name)
        # Kube-OVN allows the IPv6 all-ones address as a gateway; IPv4 has a broadcast.
        if not point_to_point and version == 4 and value == int(network.broadcast_address):
            raise InvalidSubnet(f"{text} is the broadcast ip in cidr {network}", subnet=spec.name)
        gateways[version] = value
    return gateways


def layout(spec: SubnetSpec) -> SubnetLayout:
    """Validate a Subnet spec and compute its layout; InvalidSubnet says what is wrong."""
    if not spec.name:
        raise InvalidSubnet("subnet name must not be empty")
    if spec.protocol and spec.protocol not in PROTOCOLS:
        raise InvalidSubnet(f"{spec.protocol} is not a valid protocol type", subnet=spec.name)
    networks = _networks(spec)
    gateways = _gateways(spec, networks)
    excluded: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
    for entry in spec.exclude_ips:
        try:
            version, first, last = parse_range(entry, allow_cidr=False)
        except ValueError:
            problem = "is not a valid ip range" if ".." in entry else "is not a valid address"
            prefix = "" if ".." in entry else "ip "
            raise InvalidSubnet(f"{prefix}{entry} in excludeIps {problem}", subnet=spec.name) from None
        excluded[version].append((first, last))
    families: dict[int, FamilyLayout] = {}
    for network in networks:
        start, end = int(network.network_address), int(network.broadcast_address)
        first, last = (start, end) if network.prefixlen == network.max_prefixlen - 1 else (start + 1, end - 1)
        gateway = gateways.get(network.version, first)
        usable = RangeSet.single(first, last)
        reserved = RangeSet([*excluded[network.version], (gateway, gateway)]).intersect(usable)
        families[network.version] = FamilyLayout(network.version, network, start, end, first, last, gateway,
                                                    reserved)
    protocol = "Dual" if len(families) == 2 else f"IPv{networks[0].version}"
    return SubnetLayout(spec, protocol, families)
