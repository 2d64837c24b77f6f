"""A zone: the addresses random allocation may pick for one kind of request.

Every usable address of a subnet family belongs to exactly one zone: the zone
of the IPPool whose `ips` hold it, or else the subnet's default zone `""`
(precaution 6: pool addresses are never picked for keys outside the pool).
`candidates` are the zone's addresses minus reserved ones (precaution 5).

Random picking never walks the subnet: it probes uniform random members
(O(log intervals) each) and, when the zone is crowded, walks forward from a
random member; a walk passes at most `used + quarantined` blocked members
before it meets a free one, so its cost is bounded by allocations, never by
subnet size (a /8 or an IPv6 /64 is as cheap as a /24).
"""

from __future__ import annotations

import random
from collections.abc import Container

from netplane.ipam.ranges import RangeSet

# Enough probes that a zone up to ~80% full almost never falls back to the walk.
PROBES = 24


class Zone:
    __slots__ = ("addresses", "candidates", "quarantined", "used")

    def __init__(self, addresses: RangeSet, reserved: RangeSet) -> None:
        self.addresses = addresses
        self.candidates = addresses.subtract(reserved)
        self.used = 0  # held candidates
        self.quarantined = 0  # released candidates waiting in the FIFO

    @property
    def fresh(self) -> int:
        """Candidates neither held nor waiting in quarantine."""
        return self.candidates.count - self.used - self.quarantined

    def has_room(self) -> bool:
        return self.fresh > 0 or self.quarantined > 0

    def pick_fresh(self, rng: random.Random, owners: Container[int], quarantine: Container[int]) -> int | None:
        """A uniformly random fresh candidate, or None when there is none."""
        if self.fresh <= 0:
            return None
        count = self.candidates.count
        for _ in range(PROBES):
            value = self.candidates.nth(rng.randrange(count))
            if value not in owners and value not in quarantine:
                return value
        for value in self.candidates.walk_from(rng.randrange(count)):
            if value not in owners and value not in quarantine:
                return value
        return None
