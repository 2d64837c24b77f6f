"""Sets of field paths in Kubernetes' FieldsV1 form, and their algebra.

A path is a tuple of serialized path elements, exactly as FieldsV1 spells them:
``f:<field>`` for a field or map key, ``k:<json>`` for an item of a list keyed by
fields (``k:{"port":80,"protocol":"TCP"}``), ``v:<json>`` for an item of a set,
``i:<index>`` for a positional item. Keeping elements serialized makes decoding
and encoding managedFields a plain walk, and comparing elements a string compare.

A `FieldSet` is a trie: ``members`` are the elements owned at this level,
``children`` the elements below which something is owned. An element can be both
(FieldsV1 writes that as ``".": {}`` inside the element).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

Path = tuple[str, ...]

# FieldsV1 orders elements by kind (fields, keys, values, indices), then by value. One level
# of a set only ever holds one kind (an object's fields, or a list's items), so a plain
# string sort gives that order — and is cheaper, which matters on every write.


class FieldSet:
    __slots__ = ("children", "members")

    def __init__(self) -> None:
        self.members: set[str] = set()
        self.children: dict[str, FieldSet] = {}

    # --- building -----------------------------------------------------------------

    @classmethod
    def of(cls, *paths: Path) -> FieldSet:
        s = cls()
        for p in paths:
            s.insert(p)
        return s

    def insert(self, path: Path) -> None:
        node = self
        for pe in path[:-1]:
            node = node.child(pe)
        node.members.add(path[-1])

    def child(self, pe: str) -> FieldSet:
        """The subset below ``pe``, created if absent (for building only)."""
        node = self.children.get(pe)
        if node is None:
            node = self.children[pe] = FieldSet()
        return node

    def copy(self) -> FieldSet:
        s = FieldSet()
        s.members = set(self.members)
        s.children = {pe: c.copy() for pe, c in self.children.items()}
        return s

    # --- queries ------------------------------------------------------------------

    def empty(self) -> bool:
        # Children are never left empty by the operations below, so this is exact.
        return not self.members and not self.children

    def has(self, path: Path) -> bool:
        node: FieldSet | None = self
        for pe in path[:-1]:
            node = node.children.get(pe) if node is not None else None
        return node is not None and path[-1] in node.members

    def paths(self, prefix: Path = ()) -> Iterator[Path]:
        """Every member path, in FieldsV1 order."""
        for pe in sorted(self.members | self.children.keys()):
            if pe in self.members:
                yield (*prefix, pe)
            c = self.children.get(pe)
            if c is not None:
                yield from c.paths((*prefix, pe))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FieldSet) and self.members == other.members and self.children == other.children

    def __hash__(self) -> int:  # mutable; defined only because __eq__ is
        return id(self)

    def __repr__(self) -> str:
        return f"FieldSet({[path_string(p) for p in self.paths()]})"

    # --- algebra (new sets; operands untouched) -----------------------------------------

    def union(self, other: FieldSet) -> FieldSet:
        s = FieldSet()
        s.members = self.members | other.members
        for pe in self.children.keys() | other.children.keys():
            a, b = self.children.get(pe), other.children.get(pe)
            s.children[pe] = a.union(b) if a is not None and b is not None else (a or b).copy()  # type: ignore[union-attr]
        return s

    def intersection(self, other: FieldSet) -> FieldSet:
        s = FieldSet()
        s.members = self.members & other.members
        for pe, a in self.children.items():
            b = other.children.get(pe)
            if b is not None:
                c = a.intersection(b)
                if not c.empty():
                    s.children[pe] = c
        return s

    def difference(self, other: FieldSet) -> FieldSet:
        s = FieldSet()
        s.members = self.members - other.members
        for pe, a in self.children.items():
            b = other.children.get(pe)
            c = a.copy() if b is None else a.difference(b)
            if not c.empty():
                s.children[pe] = c
        return s

    def recursive_difference(self, other: FieldSet) -> FieldSet:
        """This set without every path at or below a member of ``other`` (whole subtrees go)."""
        s = FieldSet()
        s.members = self.members - other.members
        for pe, a in self.children.items():
            if pe in other.members:
                continue
            b = other.children.get(pe)
            c = a.copy() if b is None else a.recursive_difference(b)
            if not c.empty():
                s.children[pe] = c
        return s

    def remove_in_place(self, other: FieldSet, recursive: bool) -> None:
        """`difference` (or `recursive_difference`) without copying, for sets being built."""
        self.members -= other.members
        for pe, b in other.children.items():
            a = self.children.get(pe)
            if a is not None:
                a.remove_in_place(b, recursive)
                if a.empty():
                    del self.children[pe]
        if recursive:
            for pe in other.members:
                self.children.pop(pe, None)

    # --- FieldsV1 -----------------------------------------------------------------

    def to_fields_v1(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for pe in sorted(self.members | self.children.keys()):
            c = self.children.get(pe)
            if c is None:
                out[pe] = {}
            else:
                inner = c.to_fields_v1()
                out[pe] = {".": {}, **inner} if pe in self.members else inner
        return out

    @classmethod
    def from_fields_v1(cls, doc: Any) -> FieldSet:
        """Parse FieldsV1; raises ValueError on anything that is not FieldsV1."""
        if not isinstance(doc, dict):
            raise ValueError("FieldsV1 must be an object")
        s = cls()
        for pe, inner in doc.items():
            if pe == ".":
                continue
            if not isinstance(pe, str) or pe[:2] not in ("f:", "k:", "v:", "i:") or not isinstance(inner, dict):
                raise ValueError(f"invalid FieldsV1 element {pe!r}")
            if not inner or "." in inner:
                s.members.add(pe)
            c = cls.from_fields_v1(inner)
            if not c.empty():
                s.children[pe] = c
        return s


def path_string(path: Path) -> str:
    """A path as Kubernetes prints it in conflicts: ``.spec.ports[port=80,protocol="TCP"]``."""
    out = []
    for pe in path:
        kind, body = pe[:1], pe[2:]
        if kind == "f":
            out.append("." + body)
        elif kind == "k":
            fields = orjson.loads(body)
            out.append("[" + ",".join(f"{k}={_value_string(v)}" for k, v in fields.items()) + "]")
        elif kind == "v":
            out.append(f"[={_value_string(orjson.loads(body))}]")
        else:
            out.append(f"[{body}]")
    return "".join(out)


def _value_string(value: Any) -> str:
    return orjson.dumps(value).decode()
