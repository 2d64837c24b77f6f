"""Merging an applied configuration into a live object, and pruning what an applier gave up.

Merge: maps are merged key by key, associative lists item by item (matched by key or
value), and everything else — scalars, atomic maps and lists — is replaced by the
configuration's value. A null in the configuration removes the field (the typed
objects Kubernetes stores cannot hold a null either).

Order of a merged associative list: the live order, except that items the
configuration names appear in the configuration's order, and new items follow the
configuration item before them.
"""

from __future__ import annotations

from typing import Any

from netplane.api.ssa.fieldpath import FieldSet
from netplane.api.ssa.schema import ANY, Type
from netplane.api.ssa.walk import _field_type, _is_atomic, item_element


def merge(live: dict[str, Any], config: dict[str, Any], t: Type) -> dict[str, Any]:
    """A new object: ``live`` with ``config`` merged in (neither is modified)."""
    return _merge_map(live, config, t)


def _merge_value(lhs: Any, rhs: Any, t: Type) -> Any:
    if isinstance(lhs, dict) and isinstance(rhs, dict) and not t.atomic:
        return _merge_map(lhs, rhs, t)
    if isinstance(lhs, list) and isinstance(rhs, list) and not _is_atomic(t, rhs):
        return _merge_list(lhs, rhs, t)
    return _strip_nulls(rhs)


def _merge_map(lhs: dict[str, Any], rhs: dict[str, Any], t: Type) -> dict[str, Any]:
    out = dict(lhs)
    for k, rv in rhs.items():
        if rv is None:
            out.pop(k, None)
            continue
        ft = _field_type(t, k)[0]
        lv = lhs.get(k)
        out[k] = _strip_nulls(rv) if lv is None else _merge_value(lv, rv, ft)
    return out


def _merge_list(lhs: list[Any], rhs: list[Any], t: Type) -> list[Any]:
    et = t.elem()
    left = [item_element(t, v, i) for i, v in enumerate(lhs)]
    right = [item_element(t, v, i) for i, v in enumerate(rhs)]
    left_items = dict(zip(left, lhs, strict=True))
    right_items = dict(zip(right, rhs, strict=True))
    out: list[Any] = []
    done: set[str] = set()
    li = ri = 0
    while li < len(left) or ri < len(right):
        if li < len(left):
            pe = left[li]
            if pe in done:
                li += 1
                continue
            if pe not in right_items:
                out.append(lhs[li])
                done.add(pe)
                li += 1
                continue
        if ri < len(right):
            pe = right[ri]
            ri += 1
            if pe in done:
                continue
            lv = left_items.get(pe)
            rv = right_items[pe]
            out.append(_strip_nulls(rv) if lv is None else _merge_value(lv, rv, et))
            done.add(pe)
        else:
            li += 1
    return out


def _strip_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_nulls(v) for v in value]
    return value


# --- pruning ----------------------------------------------------------------------------


def _owned(s: FieldSet | None, pe: str, named: bool) -> bool:
    """Whether ``pe`` is in ``s`` counting a declared field with owned contents as owned itself.

    That is structured-merge-diff's EnsureNamedFieldsAreMembers: giving up every
    field of a struct gives up the struct, but a map or list item is only owned as such.
    """
    if s is None:
        return False
    return pe in s.members or (named and pe in s.children)


def prune(obj: dict[str, Any], last: FieldSet, keep: FieldSet, t: Type) -> dict[str, Any]:
    """``obj`` without the nodes in ``last`` (what the applier owned before) that nobody
    keeps (``keep``: every manager's set, the applier's new one included); a node goes
    with everything below it."""
    return _prune_map(obj, last, keep, t)


def _prune_map(value: dict[str, Any], last: FieldSet, keep: FieldSet | None, t: Type) -> dict[str, Any]:
    out = {}
    for k, v in value.items():
        pe = "f:" + k
        ft, named = _field_type(t, k)
        if _owned(last, pe, named) and not _owned(keep, pe, named):
            continue
        sub = last.children.get(pe)
        out[k] = v if sub is None else _prune_value(v, sub, keep.children.get(pe) if keep else None, ft)
    return out


def _prune_value(value: Any, last: FieldSet, keep: FieldSet | None, t: Type) -> Any:
    if isinstance(value, dict) and not t.atomic:
        return _prune_map(value, last, keep, t)
    if isinstance(value, list) and not _is_atomic(t, value):
        out = []
        for i, item in enumerate(value):
            pe = item_element(t, item, i)
            if _owned(last, pe, False) and not _owned(keep, pe, False):
                continue
            sub = last.children.get(pe)
            out.append(item if sub is None else
                       _prune_value(item, sub, keep.children.get(pe) if keep else None, t.elem()))
        return out
    return value


__all__ = ["ANY", "merge", "prune"]
