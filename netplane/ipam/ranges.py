"""Sets of addresses as sorted, disjoint, inclusive integer intervals.

A /8 holds 16 million addresses and an IPv6 /64 2^64, so nothing here ever
materialises the members: every operation costs O(number of intervals), and
picking the i-th member (for uniform random choice) costs O(log intervals).
Addresses are plain ints; the caller knows their IP version.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator

from netplane.ipam.addresses import to_text

Interval = tuple[int, int]


class RangeSet:
    """An immutable set of ints stored as merged `[start, end]` intervals."""

    __slots__ = ("_before", "_ends", "_starts", "count")

    def __init__(self, intervals: Iterable[Interval] = ()) -> None:
        merged: list[list[int]] = []
        for start, end in sorted(i for i in intervals if i[0] <= i[1]):
            if merged and start <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        self._starts = [s for s, _ in merged]
        self._ends = [e for _, e in merged]
        # _before[i] = members in intervals 0..i-1, so nth() can bisect on it.
        self._before: list[int] = []
        total = 0
        for s, e in merged:
            self._before.append(total)
            total += e - s + 1
        self.count = total

    @classmethod
    def single(cls, start: int, end: int | None = None) -> RangeSet:
        return cls([(start, start if end is None else end)])

    def intervals(self) -> list[Interval]:
        return list(zip(self._starts, self._ends, strict=True))

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, int):
            return False
        i = bisect.bisect_right(self._starts, value) - 1
        return i >= 0 and value <= self._ends[i]

    def __bool__(self) -> bool:
        return self.count > 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RangeSet) and self.intervals() == other.intervals()

    def __hash__(self) -> int:
        return hash(tuple(self.intervals()))

    def __repr__(self) -> str:
        return f"RangeSet({self.intervals()!r})"

    def union(self, other: RangeSet) -> RangeSet:
        return RangeSet(self.intervals() + other.intervals())

    def intersect(self, other: RangeSet) -> RangeSet:
        out: list[Interval] = []
        a, b = self.intervals(), other.intervals()
        i = j = 0
        while i < len(a) and j < len(b):
            lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
            if lo <= hi:
                out.append((lo, hi))
            if a[i][1] < b[j][1]:
                i += 1
            else:
                j += 1
        return RangeSet(out)

    def subtract(self, other: RangeSet) -> RangeSet:
        out: list[Interval] = []
        cuts = other.intervals()
        j = 0
        for start, end in self.intervals():
            while j < len(cuts) and cuts[j][1] < start:
                j += 1
            k, lo = j, start
            while k < len(cuts) and cuts[k][0] <= end:
                if cuts[k][0] > lo:
                    out.append((lo, cuts[k][0] - 1))
                lo = max(lo, cuts[k][1] + 1)
                k += 1
            if lo <= end:
                out.append((lo, end))
        return RangeSet(out)

    def nth(self, index: int) -> int:
        """The index-th smallest member (0-based)."""
        if not 0 <= index < self.count:
            raise IndexError(index)
        i = bisect.bisect_right(self._before, index) - 1
        return self._starts[i] + index - self._before[i]

    def walk_from(self, index: int) -> Iterator[int]:
        """Members in ascending order starting at the index-th, wrapping round once."""
        if not self.count:
            return
        i = bisect.bisect_right(self._before, index) - 1
        first = self._starts[i] + index - self._before[i]
        n = len(self._starts)
        for step in range(n + 1):
            k = (i + step) % n
            lo = first if step == 0 else self._starts[k]
            hi = first - 1 if step == n else self._ends[k]
            yield from range(lo, hi + 1)

    def format(self, version: int) -> str:
        """Kube-OVN's range-list notation, e.g. `10.16.0.2..10.16.0.9,10.16.0.20`."""
        parts = []
        for s, e in self.intervals():
            parts.append(to_text(s, version) if s == e else f"{to_text(s, version)}..{to_text(e, version)}")
        return ",".join(parts)
