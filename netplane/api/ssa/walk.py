"""Field sets of objects: what an applied configuration sets, and what a write changed.

`field_set` follows structured-merge-diff's ToFieldSet: scalars, atomic values,
nulls, empty maps, list items and undeclared map keys are members; a declared field
holding a non-empty object is not (ownership of its contents is what counts), and
an empty granular list contributes nothing.

`compare` follows its Compare: leaves (scalars, atomic values, and containers empty
on both sides) are added, modified or removed; a container that appears or
disappears is itself added or removed, with everything below it.
"""

from __future__ import annotations

from typing import Any

import orjson

from netplane.api.ssa.fieldpath import FieldSet
from netplane.api.ssa.schema import ANY, Type

_MISSING: Any = object()

# Built-in list-map keys with a schema default: an item may omit them (Kubernetes'
# OpenAPI declares `default: "TCP"`, which the bundled schemas drop).
_KEY_DEFAULTS = {"protocol": "TCP"}


def _dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def item_element(t: Type, item: Any, index: int) -> str:
    """The path element naming a list item: by its key fields, its value, or (atomic) its index."""
    if t.is_set:
        return "v:" + _dumps(item)
    if t.keys and isinstance(item, dict):
        key = {}
        for k in t.keys:
            v = item.get(k, _KEY_DEFAULTS.get(k, _MISSING))
            if v is not _MISSING:
                key[k] = v
        if key:
            return "k:" + _dumps(key)
    return f"i:{index}"


def _field_type(t: Type, name: str) -> tuple[Type, bool]:
    """A map entry's type, and whether it is a declared (named) field."""
    if t.kind != "map":
        return ANY, False
    ft = t.field(name)
    return (ft, True) if ft is not None else (t.elem(), False)


def _is_atomic(t: Type, value: Any) -> bool:
    if isinstance(value, list):
        return t.atomic or t.kind != "list"  # a deduced list is atomic
    return t.atomic


# --- field_set --------------------------------------------------------------------------


def field_set(obj: dict[str, Any], t: Type) -> FieldSet:
    """The fields an object (an applied configuration) sets."""
    root = FieldSet()
    _map_items(obj, t, root)
    return root


def _map_items(value: dict[str, Any], t: Type, node: FieldSet) -> None:
    for k, v in value.items():
        pe = "f:" + k
        ft, named = _field_type(t, k)
        _collect(v, ft, node, pe)
        if v is None or not named or (isinstance(v, dict) and not v):
            node.members.add(pe)


def _collect(value: Any, t: Type, parent: FieldSet, pe: str) -> None:
    if isinstance(value, dict):
        if t.atomic or not value:
            parent.members.add(pe)
            return
        node = parent.child(pe)
        _map_items(value, t, node)
    elif isinstance(value, list):
        if _is_atomic(t, value):
            parent.members.add(pe)
            return
        if not value:
            return
        node = parent.child(pe)
        et = t.elem()
        for i, item in enumerate(value):
            ie = item_element(t, item, i)
            _collect(item, et, node, ie)
            node.members.add(ie)
    else:
        parent.members.add(pe)
    if pe in parent.children and parent.children[pe].empty():
        del parent.children[pe]


def all_nodes(obj: dict[str, Any], t: Type) -> FieldSet:
    """Every node of an object, as `compare` reports an object that appeared from nothing."""
    root = FieldSet()
    for k, v in obj.items():
        _all(v, _field_type(t, k)[0], root, "f:" + k)
    return root


def _all(value: Any, t: Type, parent: FieldSet, pe: str) -> None:
    parent.members.add(pe)
    if isinstance(value, dict):
        if t.atomic or not value:
            return
        node = parent.child(pe)
        for k, v in value.items():
            _all(v, _field_type(t, k)[0], node, "f:" + k)
    elif isinstance(value, list):
        if _is_atomic(t, value) or not value:
            return
        node = parent.child(pe)
        et = t.elem()
        for i, item in enumerate(value):
            _all(item, et, node, item_element(t, item, i))


# --- compare ----------------------------------------------------------------------------


class Comparison:
    __slots__ = ("added", "modified", "removed")

    def __init__(self) -> None:
        self.added = FieldSet()
        self.modified = FieldSet()
        self.removed = FieldSet()

    def changed(self) -> FieldSet:
        """Added and modified paths (a new set, or ``added`` itself when nothing was modified)."""
        return self.added if self.modified.empty() else self.added.union(self.modified)


def compare(old: dict[str, Any], new: dict[str, Any], t: Type) -> Comparison:
    c = Comparison()
    _compare_maps(old, new, t, c.added, c.modified, c.removed)
    return c


def _compare_maps(lhs: dict[str, Any], rhs: dict[str, Any], t: Type,
                  a: FieldSet, m: FieldSet, r: FieldSet) -> None:
    for k, rv in rhs.items():
        _compare(lhs.get(k, _MISSING), rv, _field_type(t, k)[0], "f:" + k, a, m, r)
    for k, lv in lhs.items():
        if k not in rhs:
            _compare(lv, _MISSING, _field_type(t, k)[0], "f:" + k, a, m, r)


def _compare(lhs: Any, rhs: Any, t: Type, pe: str, a: FieldSet, m: FieldSet, r: FieldSet) -> None:
    if lhs is _MISSING:
        _all(rhs, t, a, pe)
        return
    if rhs is _MISSING:
        _all(lhs, t, r, pe)
        return
    if lhs == rhs:
        return
    if not lhs and isinstance(lhs, dict) and isinstance(rhs, dict) and not t.atomic:
        # The common case of a create: an empty struct of the zero value gets its contents.
        la = FieldSet()
        for k, v in rhs.items():
            _all(v, _field_type(t, k)[0], la, "f:" + k)
        a.children[pe] = la
        return
    if isinstance(lhs, dict) and isinstance(rhs, dict) and not t.atomic and (lhs or rhs):
        la, lm, lr = FieldSet(), FieldSet(), FieldSet()
        _compare_maps(lhs, rhs, t, la, lm, lr)
        _attach(a, m, r, pe, la, lm, lr)
        return
    if isinstance(lhs, list) and isinstance(rhs, list) and not _is_atomic(t, rhs) and (lhs or rhs):
        la, lm, lr = FieldSet(), FieldSet(), FieldSet()
        et = t.elem()
        left = {item_element(t, v, i): v for i, v in enumerate(lhs)}
        right = {item_element(t, v, i): v for i, v in enumerate(rhs)}
        for ie, rv in right.items():
            _compare(left.get(ie, _MISSING), rv, et, ie, la, lm, lr)
        for ie, lv in left.items():
            if ie not in right:
                _compare(lv, _MISSING, et, ie, la, lm, lr)
        _attach(a, m, r, pe, la, lm, lr)
        return
    m.members.add(pe)


def _attach(a: FieldSet, m: FieldSet, r: FieldSet, pe: str, la: FieldSet, lm: FieldSet, lr: FieldSet) -> None:
    """Hang a level's results under ``pe``, leaving out empty ones (sets hold no empty children)."""
    for parent, sub in ((a, la), (m, lm), (r, lr)):
        if sub.members or sub.children:
            parent.children[pe] = sub
