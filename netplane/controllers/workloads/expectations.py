"""Creations and deletions a controller has made but its pod cache has not shown yet.

The cache is a step behind the API. Without this, a ReplicaSet reconciled again right after
creating 3 pods would see 0 and create 3 more. So after writing, a controller records the pod keys
it expects to appear (or vanish), and does not resize the set again until the cache agrees, or
until `ttl` has passed (a watch event may be lost; the informer's relist then brings the truth).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

DEFAULT_TTL = 60.0


@dataclass
class _Pending:
    creates: set[str] = field(default_factory=set)
    deletes: set[str] = field(default_factory=set)
    since: float = 0.0


class Expectations:
    def __init__(self, ttl: float = DEFAULT_TTL, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self.clock = clock
        self._pending: dict[str, _Pending] = {}

    def expect(self, owner: str, *, creates: Iterable[str] = (), deletes: Iterable[str] = ()) -> None:
        pending = self._pending.setdefault(owner, _Pending())
        pending.creates.update(creates)
        pending.deletes.update(deletes)
        pending.since = self.clock()

    def satisfied(self, owner: str, in_cache: Callable[[str], bool]) -> bool:
        """Whether the cache shows everything expected for `owner` (checked against the cache now)."""
        pending = self._pending.get(owner)
        if pending is None:
            return True
        pending.creates = {k for k in pending.creates if not in_cache(k)}
        pending.deletes = {k for k in pending.deletes if in_cache(k)}
        if (not pending.creates and not pending.deletes) or self.clock() - pending.since > self.ttl:
            del self._pending[owner]
            return True
        return False

    def observed_deletion(self, key: str) -> None:
        """A pod went away: whoever expected it to appear will not see it, so stop waiting for it."""
        for pending in self._pending.values():
            pending.creates.discard(key)

    def forget(self, owner: str) -> None:
        self._pending.pop(owner, None)
