"""Element order of merged lists.

Strategic merge patch keeps the order the client asked for: elements named in
the patch (or in ``$setElementOrder``) follow that order, and elements only the
server has keep their place relative to the live list, interleaved with the
patch's elements as closely as the live order allows.
"""

from __future__ import annotations

from typing import Any

from netplane.api.patch._values import same

_ABSENT = object()


def identity(item: Any, merge_key: str) -> Any:
    """What identifies a list element: its merge key's value, or the element itself."""
    if not merge_key:
        return item
    return item.get(merge_key, _ABSENT) if isinstance(item, dict) else _ABSENT


def position(order: list[Any], item: Any, merge_key: str) -> int:
    """Index of the first element of ``order`` that ``item`` matches, or -1."""
    wanted = identity(item, merge_key)
    if wanted is _ABSENT:
        return -1
    for i, candidate in enumerate(order):
        if same(identity(candidate, merge_key), wanted):
            return i
    return -1


def partition(items: list[Any], by: list[Any], merge_key: str) -> tuple[list[Any], list[Any]]:
    """Split ``items`` into those that appear in ``by`` and those that do not."""
    named: list[Any] = []
    others: list[Any] = []
    for item in items:
        (named if position(by, item, merge_key) >= 0 else others).append(item)
    return named, others


def arrange(items: list[Any], wanted_order: list[Any], live_order: list[Any], merge_key: str) -> list[Any]:
    """Order ``items``: those named in ``wanted_order`` by it, the rest by ``live_order``."""
    named, server_only = partition(items, wanted_order, merge_key)
    named = _sorted_by(named, wanted_order, merge_key)
    server_only = _sorted_by(server_only, live_order, merge_key)
    return _interleave(server_only, named, live_order, merge_key)


def _sorted_by(items: list[Any], order: list[Any], merge_key: str) -> list[Any]:
    def rank(item: Any) -> int:
        i = position(order, item, merge_key)
        return i if i >= 0 else len(order)

    return sorted(items, key=rank)  # stable: equal ranks (duplicates) keep their order


def _interleave(server_only: list[Any], named: list[Any], live_order: list[Any], merge_key: str) -> list[Any]:
    """Merge two ordered lists, taking a server-only element first only when the live
    list shows it before the next named element; otherwise the named element goes first."""
    merged: list[Any] = []
    i = j = 0
    while i < len(server_only) and j < len(named):
        left = position(live_order, server_only[i], merge_key)
        right = position(live_order, named[j], merge_key)
        if left >= 0 and right >= 0 and left < right:
            merged.append(server_only[i])
            i += 1
        else:
            merged.append(named[j])
            j += 1
    return merged + server_only[i:] + named[j:]
