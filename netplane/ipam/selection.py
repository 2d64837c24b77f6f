"""Choosing a subnet for a pod whose namespace is bound to several.

The guide: "If a project or namespace is assigned multiple subnets, an IP
address will be randomly selected from one of the subnets." Subnets with no
room for the request are left out first, so a full subnet never fails a pod
that another bound subnet could serve. The random source is a parameter so
callers (and tests) decide determinism.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from netplane.ipam.allocator import IPAM
from netplane.ipam.errors import NoAvailableAddress, NoSubnet


def choose_subnet(ipam: IPAM, subnets: Sequence[str], rng: random.Random, *, family: str = "",
                  key: str = "") -> str:
    if not subnets:
        raise NoSubnet("no subnet is bound", key=key)
    with_room = [name for name in subnets if ipam.has_room(name, family)]
    if not with_room:
        raise NoAvailableAddress(f"none of the subnets {', '.join(subnets)} has an available address"
                                 + (f" for {key}" if key else ""), subnet=",".join(subnets), key=key)
    return rng.choice(with_room)
