"""The structure server-side apply needs from a schema, compiled once per kind.

Only three things matter to field ownership: which properties an object declares
(its named fields), whether a map or list is atomic, and how list items are
identified. Kubernetes derives them from the OpenAPI extensions:

- ``x-kubernetes-list-type``: ``atomic``, ``set`` (items are their own key) or
  ``map`` (items keyed by ``x-kubernetes-list-map-keys``);
- for built-in kinds without a list type, ``x-kubernetes-patch-strategy: merge``
  makes a list associative, keyed by ``x-kubernetes-patch-merge-key`` (a set without
  one) — as kube-openapi's schema conversion does;
- ``x-kubernetes-map-type: atomic`` makes a map atomic; maps are granular otherwise;
- any other list is atomic.

Where there is no schema (unknown fields kept by ``x-kubernetes-preserve-unknown-fields``,
or no schema at all) the type is deduced from the value: maps granular, lists atomic.
"""

from __future__ import annotations

import functools
from typing import Any

from netplane.api import schemas

Schema = dict[str, Any]

_OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


class Type:
    """A node of a compiled schema. ``kind`` is ``map``, ``list``, ``scalar`` or ``any``."""

    __slots__ = ("_elem", "_fields", "_raw", "atomic", "is_set", "keys", "kind")

    def __init__(self, kind: str, atomic: bool = False, keys: tuple[str, ...] = (), is_set: bool = False,
                 raw: Schema | None = None):
        self.kind = kind
        self.atomic = atomic
        self.keys = keys
        self.is_set = is_set
        self._raw = raw
        self._fields: dict[str, Type] | None = None
        self._elem: Type | None = None

    def field(self, name: str) -> Type | None:
        """The declared property ``name`` (a named field), or None."""
        if self._fields is None:
            self._fields = {}
            if self._raw is not None and self.kind == "map":
                for k, v in (self._raw.get("properties") or {}).items():
                    self._fields[k] = compile_schema(v)
        return self._fields.get(name)

    def elem(self) -> Type:
        """The type of a map's undeclared values or of a list's items."""
        if self._elem is None:
            sub: Any = None
            if self._raw is not None:
                sub = self._raw.get("items") if self.kind == "list" else self._raw.get("additionalProperties")
            self._elem = compile_schema(sub) if isinstance(sub, dict) else ANY
        return self._elem


# Deduced from the value: maps granular (with deduced values), lists atomic, scalars leaves.
ANY = Type("any")


def _follow(schema: Schema) -> Schema:
    all_of = schema.get("allOf")
    if "$ref" not in schema and isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], dict):
        schema = all_of[0]
    return schemas.resolve(schema) if "$ref" in schema else schema


def _ext(prop: Schema, target: Schema, name: str) -> Any:
    """Extensions sit beside a ``$ref`` on the property, or on the definition itself."""
    value = prop.get(name)
    return target.get(name) if value is None else value


def _types(schema: Schema) -> set[str]:
    t = schema.get("type")
    return {t} if isinstance(t, str) else set(t) if isinstance(t, list) else set()


_compiled: dict[int, tuple[Schema, Type]] = {}


def compile_schema(prop: Schema) -> Type:
    """The compiled type of a (property) schema; memoized, so recursive schemas terminate."""
    hit = _compiled.get(id(prop))
    if hit is not None and hit[0] is prop:
        return hit[1]
    target = _follow(prop)
    types = _types(target)
    if "array" in types or "items" in target:
        list_type = _ext(prop, target, "x-kubernetes-list-type")
        keys = _ext(prop, target, "x-kubernetes-list-map-keys")
        strategy = str(_ext(prop, target, "x-kubernetes-patch-strategy") or "")
        merge_key = _ext(prop, target, "x-kubernetes-patch-merge-key")
        if list_type == "map" and isinstance(keys, list) and keys:
            t = Type("list", keys=tuple(str(k) for k in keys), raw=target)
        elif list_type == "set":
            t = Type("list", is_set=True, raw=target)
        elif list_type is None and "merge" in strategy.split(","):
            t = Type("list", keys=(str(merge_key),), raw=target) if merge_key else \
                Type("list", is_set=True, raw=target)
        else:
            t = Type("list", atomic=True, raw=target)
    elif "object" in types or "properties" in target or "additionalProperties" in target:
        atomic = _ext(prop, target, "x-kubernetes-map-type") == "atomic"
        t = Type("map", atomic=atomic, raw=target)
    elif types - {"null"}:
        t = Type("scalar")
    else:
        t = ANY
    _compiled[id(prop)] = (prop, t)
    return t


@functools.cache
def builtin_type(group: str, version: str, kind: str) -> Type | None:
    schema = schemas.kind_schema(group, version, kind)
    return None if schema is None else compile_schema(schema)


def custom_type(schema: Schema | None) -> Type:
    """A custom kind's type; its metadata is ObjectMeta, as the API server treats it."""
    if not isinstance(schema, dict):
        return ANY
    hit = _compiled.get(id(schema))
    if hit is not None and hit[0] is schema:
        return hit[1]
    props = dict(schema.get("properties") or {})
    props["metadata"] = schemas.definitions()[_OBJECT_META]
    props.setdefault("apiVersion", {"type": "string"})
    props.setdefault("kind", {"type": "string"})
    t = Type("map", raw={**schema, "type": "object", "properties": props})
    _compiled[id(schema)] = (schema, t)
    return t
