"""Patch metadata of a field, read from a kind's JSON schema.

A field's ``x-kubernetes-patch-strategy`` and ``x-kubernetes-patch-merge-key``
are stored on the property that holds it (next to its ``$ref``), so they are
read before the reference is followed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from netplane.api.patch.errors import PatchError
from netplane.api.schemas import resolve

Schema = dict[str, Any]

_STRATEGY = "x-kubernetes-patch-strategy"
_MERGE_KEY = "x-kubernetes-patch-merge-key"
_RETAIN_KEYS = "retainKeys"


@dataclass(frozen=True)
class FieldMeta:
    """How a field is patched.

    ``strategy`` is ``"merge"``, ``"replace"`` or ``""`` (the default: objects merge,
    lists are replaced). ``retainKeys`` is dropped: it only tells clients to send
    ``$retainKeys``, and the directive is honoured wherever it appears.
    ``schema`` describes the field's value, or for a list, its items; ``None``
    means unknown, which patches like a field without metadata.
    """

    name: str
    strategy: str = ""
    merge_key: str = ""
    schema: Schema | None = None


def field_meta(parent: Schema | None, name: str) -> FieldMeta:
    prop = _property(parent, name)
    if prop is None:
        return FieldMeta(name)
    target = _resolve(prop)
    strategy = str(prop.get(_STRATEGY) or target.get(_STRATEGY) or "")
    merge_key = str(prop.get(_MERGE_KEY) or target.get(_MERGE_KEY) or "")
    items = target.get("items")
    schema = _resolve(items) if isinstance(items, dict) else target
    return FieldMeta(name, _effective_strategy(strategy), merge_key, schema)


def resolve_schema(schema: Schema | None) -> Schema | None:
    return None if schema is None else _resolve(schema)


def _property(parent: Schema | None, name: str) -> Schema | None:
    if parent is None:
        return None
    prop = parent.get("properties", {}).get(name)
    if prop is None:
        # Maps such as labels or resources.limits describe every value with additionalProperties.
        extra = parent.get("additionalProperties")
        prop = extra if isinstance(extra, dict) else None
    return prop


def _resolve(schema: Schema) -> Schema:
    all_of = schema.get("allOf")
    if isinstance(all_of, list) and all_of and "$ref" not in schema:
        schema = all_of[0]
    return resolve(schema)


def _effective_strategy(declared: str) -> str:
    """The strategy besides retainKeys; at most one may be declared with it."""
    parts = [p.strip() for p in declared.split(",") if p.strip()]
    others = [p for p in parts if p != _RETAIN_KEYS]
    if len(parts) > 2 or len(others) > 1:
        raise PatchError(f"unexpected patch strategy: [{' '.join(parts)}]")
    return others[0] if others else ""
