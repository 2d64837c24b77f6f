"""IPPool specs: a named slice of one subnet (Kube-OVN `kubeovn.io/v1` IPPool).

The guide's seven precautions and how this core honours them:

1. A pool's name cannot be an IP address (it would read as a fixed address in
   the `ip_pool` annotation) -- `pool_ranges` refuses it.
2. `ips` may reach outside the subnet; those addresses are simply not effective
   (the allocator clips a pool to its subnet's usable range).
3. Pools of one subnet must not overlap -- checked on the entries as written,
   before clipping, with Kube-OVN's message (`IPAM.set_pool`).
4. `ips` can change at any time and take effect at once; addresses already
   allocated from the pool stay with their keys.
5. A pool inherits its subnet's reserved addresses (excludeIps, gateway): random
   allocation from the pool skips them.
6. Random allocation without a pool never picks an address of any pool.
7. A namespace may be bound to several pools: `IPAM.allocate(pools=[...])`
   tries them in order and, like Kube-OVN, does not fall back to the rest of
   the subnet when all are full.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from netplane.ipam.addresses import parse_range
from netplane.ipam.errors import InvalidPool
from netplane.ipam.ranges import RangeSet


@dataclass(frozen=True)
class PoolSpec:
    """The IPAM-relevant part of a `kubeovn.io/v1` IPPool."""

    name: str
    subnet: str
    ips: tuple[str, ...]
    namespaces: tuple[str, ...] = ()


def pool_ranges(spec: PoolSpec) -> dict[int, RangeSet]:
    """The pool's addresses per family, as written (not yet clipped to the subnet)."""
    if not spec.name:
        raise InvalidPool("ippool name must not be empty")
    try:
        ipaddress.ip_address(spec.name)
    except ValueError:
        pass
    else:
        raise InvalidPool(f"ippool name {spec.name} must not be an IP address: the ip_pool annotation would read it as "
                          "a fixed address", subnet=spec.subnet)
    found: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
    for entry in spec.ips:
        try:
            version, first, last = parse_range(entry, allow_cidr=True)
        except ValueError as err:
            raise InvalidPool(f"ippool {spec.name}: {err}", subnet=spec.subnet) from None
        found[version].append((first, last))
    return {version: RangeSet(intervals) for version, intervals in found.items()}
