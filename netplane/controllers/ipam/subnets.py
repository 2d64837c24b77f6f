"""What the subnet controller decides about one Subnet, as pure functions of objects.

Kube-OVN's `formatSubnet` rewrites a subnet's spec before anything else and then validates it;
this module does the same so the guide's examples apply as written:

* `cidrBlock` is normalised to network addresses (`10.1.1.1/24` -> `10.1.1.0/24`);
* `protocol` is derived from `cidrBlock` (`Dual` with an IPv4-only CIDR becomes `IPv4`);
* an empty `gateway` becomes the first usable address of each family;
* the gateway is added to `excludeIps` (the guide: it "cannot be removed from the reserved IPs");
* empty `vpc`, `provider` and (in the default VPC) `gatewayType` get their defaults.

Corrections of values the user wrote (cidrBlock, protocol) are returned as `corrections` so the
controller can say what it changed; filling in empty fields is not worth a message.

Validation covers what the schema cannot judge: address arithmetic (gateway inside the CIDR,
excludeIps ranges), reserved ranges (loopback, link-local, multicast), and overlap with other
subnets of the same VPC and VLAN, with Kube-OVN's messages. Of two overlapping subnets the older
one (creationTimestamp, then name) keeps its CIDR, so the verdict does not depend on which
reconcile runs first.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from netplane.controllers.ipam.defaults import NetworkDefaults
from netplane.ipam import InvalidSubnet, SubnetSpec
from netplane.ipam.addresses import parse_range
from netplane.ipam.subnets import layout

Obj = dict[str, Any]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

VALIDATE_FAILED = "ValidateLogicalSwitchFailed"
VALIDATE_OK = "ValidateLogicalSwitchSuccess"

# Ranges a pod subnet must not touch (Kube-OVN's ValidateSubnet refuses them too).
_RESERVED: tuple[tuple[str, str], ...] = (
    ("v4 zero", "0.0.0.0/32"), ("v4 broadcast", "255.255.255.255/32"), ("v4 loopback", "127.0.0.0/8"),
    ("v4 link-local", "169.254.0.0/16"), ("v4 multicast", "224.0.0.0/4"),
    ("v6 zero", "::/128"), ("v6 loopback", "::1/128"), ("v6 link-local", "fe80::/10"), ("v6 multicast", "ff00::/8"),
)


@dataclass(frozen=True)
class Analysis:
    name: str
    normal: Obj  # the spec fields as they should read after normalisation
    corrections: dict[str, tuple[str, str]] = field(default_factory=dict)  # field -> (written, corrected)
    spec: SubnetSpec | None = None  # for the IPAM core; None when invalid
    error: str = ""

    @property
    def valid(self) -> bool:
        return not self.error

    def patch(self, current: Obj) -> Obj:
        """The spec fields whose persisted value differs from the normal one."""
        return {k: v for k, v in self.normal.items() if current.get(k) != v}


def _networks(cidr_block: str) -> list[Network]:
    return [ipaddress.ip_network(part.strip(), strict=False) for part in cidr_block.split(",") if part.strip()]


def _sort_key(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("creationTimestamp") or ""), str(meta.get("name") or "")


def _covers(entries: list[str], address: str) -> bool:
    version, value, _ = parse_range(address, allow_cidr=False)
    for entry in entries:
        try:
            v, first, last = parse_range(entry, allow_cidr=False)
        except ValueError:
            continue
        if v == version and first <= value <= last:
            return True
    return False


def normalise(obj: Obj, defaults: NetworkDefaults) -> Analysis:
    """The normal form of one Subnet's spec, and whether that form is valid on its own."""
    name = str(obj["metadata"]["name"])
    spec = obj.get("spec") or {}
    written = str(spec.get("cidrBlock") or "")
    normal: Obj = {}
    corrections: dict[str, tuple[str, str]] = {}
    try:
        networks = _networks(written)
    except ValueError:
        return Analysis(name, normal, error=f"subnet {name} cidr {written} is invalid")
    if not networks:
        return Analysis(name, normal, error='CIDRBlock: "" format error')
    cidr = ",".join(str(n) for n in networks)
    normal["cidrBlock"] = cidr
    if cidr != written:
        corrections["cidrBlock"] = (written, cidr)
    versions = sorted({n.version for n in networks})
    protocol = "Dual" if versions == [4, 6] else f"IPv{versions[0]}"
    normal["protocol"] = protocol
    if spec.get("protocol") and spec["protocol"] != protocol:
        corrections["protocol"] = (str(spec["protocol"]), protocol)
    gateways = [g.strip() for g in str(spec.get("gateway") or "").split(",") if g.strip()]
    have = {ipaddress.ip_address(g).version for g in gateways if _is_ip(g)}
    for network in networks:
        if network.version not in have:
            # The first usable address; a point-to-point /31 or /127 starts at its network address.
            point_to_point = network.prefixlen == network.max_prefixlen - 1
            gateways.append(str(network.network_address + (0 if point_to_point else 1)))
    normal["gateway"] = ",".join(gateways)
    excludes = [str(e) for e in spec.get("excludeIps") or []]
    for gateway in gateways:
        if _is_ip(gateway) and not _covers(excludes, gateway):
            excludes.append(gateway)
    # Sorted by address, as Kube-OVN stores them; unparseable entries stay last for the validator to name.
    normal["excludeIps"] = sorted(excludes, key=_range_key)
    vpc = str(spec.get("vpc") or defaults.vpc)
    normal["vpc"] = vpc
    normal["provider"] = str(spec.get("provider") or "ovn")
    if not spec.get("gatewayType") and vpc == defaults.vpc:
        normal["gatewayType"] = "distributed"
    if vpc == name:
        return Analysis(name, normal, corrections, error=f"subnet {name} and vpc {vpc} should not have the same name")
    for network in networks:
        for label, reserved in _RESERVED:
            other = ipaddress.ip_network(reserved)
            if other.version == network.version and network.overlaps(other):
                return Analysis(name, normal, corrections, error=f"{network} conflict with {label} cidr {reserved}")
    ipam_spec = SubnetSpec(name, cidr, protocol, normal["gateway"], tuple(excludes))
    try:
        layout(ipam_spec)
    except InvalidSubnet as err:
        return Analysis(name, normal, corrections, error=err.message)
    return Analysis(name, normal, corrections, spec=ipam_spec)


def _range_key(entry: str) -> tuple[int, int, int]:
    try:
        version, first, last = parse_range(entry, allow_cidr=False)
    except ValueError:
        return (99, 0, 0)
    return version, first, last


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def conflict(obj: Obj, normal: Obj, others: Iterable[Obj], defaults: NetworkDefaults,
             held: Mapping[str, str]) -> str:
    """Kube-OVN's overlap message against another subnet of the same VPC and VLAN, or ''.

    `held` maps the subnets the IPAM already serves to the CIDR it serves them with. A subnet
    conflicts with a held one it overlaps (whoever came first keeps its range, and a held subnet
    is compared by the range it actually has, so a refused expansion does not count), and with an
    unheld older one (creationTimestamp, then name), so two newcomers get the same verdict
    whichever is reconciled first.
    """
    name = str(obj["metadata"]["name"])
    if name in held:
        # Already serving: only an expansion can newly overlap, and only against held ranges.
        others = [o for o in others if str(o["metadata"]["name"]) in held]
    mine = _networks(str(normal["cidrBlock"]))
    vlan = str((obj.get("spec") or {}).get("vlan") or "")
    for other in sorted(others, key=_sort_key):
        other_name = str(other["metadata"]["name"])
        if other_name == name:
            continue
        if other_name not in held and _sort_key(other) >= _sort_key(obj):
            continue
        other_spec = other.get("spec") or {}
        if str(other_spec.get("vpc") or defaults.vpc) != normal["vpc"] or str(other_spec.get("vlan") or "") != vlan:
            continue
        try:
            theirs = _networks(held.get(other_name) or str(other_spec.get("cidrBlock") or ""))
        except ValueError:
            continue
        if any(a.version == b.version and a.overlaps(b) for a in mine for b in theirs):
            return (f"subnet {name} cidr {normal['cidrBlock']} is conflict with subnet {other_name} cidr "
                    f"{','.join(str(n) for n in theirs)}")
    return ""


def analyse(obj: Obj, others: Iterable[Obj], defaults: NetworkDefaults,
            held: Mapping[str, str] | None = None) -> Analysis:
    result = normalise(obj, defaults)
    if not result.valid:
        return result
    error = conflict(obj, result.normal, others, defaults, held or {})
    if error:
        return Analysis(result.name, result.normal, result.corrections, error=error)
    return result


def describe(corrections: dict[str, tuple[str, str]]) -> str:
    """A sentence per correction, for the Validated condition and the Event."""
    parts = []
    for name, (written, corrected) in sorted(corrections.items()):
        if name == "cidrBlock":
            parts.append(f"cidrBlock {written} is not a network address: normalised to {corrected}")
        elif name == "protocol":
            parts.append(f"protocol {written} does not match cidrBlock: set to {corrected} (protocol is derived "
                         "from cidrBlock; add an IPv6 CIDR for dual stack)")
        else:
            parts.append(f"{name} {written} corrected to {corrected}")
    return "; ".join(parts)
