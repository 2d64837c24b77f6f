"""Uniqueness of ``x-kubernetes-list-type: set`` items and ``map`` keys in custom resources."""

from __future__ import annotations

from typing import Any

from netplane.api.errors import FieldError
from netplane.api.schemacheck import causes
from netplane.api.schemacheck.jsonvalues import canonical

Schema = dict[str, Any]

_UNSPECIFIED = ("unspecified-key",)


def validate_list_types(obj: Any, schema: Schema, path: str = "") -> list[FieldError]:
    """Duplicate set items and map-list keys anywhere below ``obj`` (an object)."""
    if not isinstance(obj, dict):
        return []
    return _object(obj, schema, path)


def _object(obj: dict[str, Any], s: Schema, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    additional = s.get("additionalProperties")
    if isinstance(additional, dict):
        for k, v in obj.items():
            errs += _value(v, additional, causes.key(path, k) if path else f"[{k}]")
    props = s.get("properties") or {}
    for k, v in obj.items():
        if k in props:
            errs += _value(v, props[k], causes.child(path, k))
    return errs


def _value(value: Any, s: Schema, path: str) -> list[FieldError]:
    if isinstance(value, list):
        return _array(value, s, path)
    if isinstance(value, dict):
        return _object(value, s, path)
    return []


def _array(items: list[Any], s: Schema, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    list_type = s.get("x-kubernetes-list-type")
    if list_type == "set":
        errs += [causes.duplicate(causes.index(path, i), items[i]) for i in _repeats(items)]
    elif list_type == "map":
        errs += _map_list(items, s.get("x-kubernetes-list-map-keys") or [], path)
    item_schema = s.get("items")
    if isinstance(item_schema, dict):
        for i, item in enumerate(items):
            errs += _value(item, item_schema, causes.index(path, i))
    return errs


def _repeats(values: list[Any]) -> list[int]:
    """Indices of second occurrences: each duplicated value is reported once."""
    counts: dict[Any, int] = {}
    repeats = []
    for i, v in enumerate(values):
        c = canonical(v) if v is not _UNSPECIFIED else v
        counts[c] = counts.get(c, 0) + 1
        if counts[c] == 2:
            repeats.append(i)
    return repeats


def _map_list(items: list[Any], keys: list[str], path: str) -> list[FieldError]:
    for i, x in enumerate(items):
        if x is not None and not isinstance(x, dict):
            return [
                causes.invalid(causes.index(path, i), x, "must be an object for an array of list-type map")
            ]
    if len(items) <= 1:
        return []
    if len(keys) == 1:
        key = keys[0]
        values = [x[key] if isinstance(x, dict) and key in x else _UNSPECIFIED for x in items]
        return [
            causes.duplicate(causes.index(path, i), {} if values[i] is _UNSPECIFIED else {key: values[i]})
            for i in _repeats(values)
        ]
    composite = [{k: x[k] for k in keys if k in x} if isinstance(x, dict) else {} for x in items]
    return [causes.duplicate(causes.index(path, i), composite[i]) for i in _repeats(composite)]
