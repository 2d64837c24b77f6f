"""Structural defaulting of custom resources, as the API server applies it on decode.

A default fills a missing field only where its parent object exists; a freshly
defaulted object is defaulted further inside, so nested defaults show up only
when some ancestor was given or defaulted.
"""

from __future__ import annotations

import copy
from typing import Any

Schema = dict[str, Any]


def apply_defaults(obj: Any, schema: Schema) -> None:
    """Drop nulls the schema does not allow and cannot default, then fill in defaults, in place."""
    drop_disallowed_nulls(obj, schema)
    _default(obj, schema)


def _field_schema(s: Schema | None, key: str) -> Schema | None:
    if s is None:
        return None
    props = s.get("properties") or {}
    if key in props:
        return props[key]
    additional = s.get("additionalProperties")
    return additional if isinstance(additional, dict) else None


def _null_without_default(x: Any, s: Schema | None) -> bool:
    return x is None and s is not None and not s.get("nullable", False) and "default" not in s


def _null_with_default(x: Any, s: Schema | None) -> bool:
    return x is None and s is not None and not s.get("nullable", False) and s.get("default") is not None


def drop_disallowed_nulls(x: Any, s: Schema | None) -> None:
    """Remove null fields that are neither nullable nor defaulted (the server drops them)."""
    if isinstance(x, dict):
        for k in list(x):
            sub = _field_schema(s, k)
            if _null_without_default(x[k], sub):
                del x[k]
            else:
                drop_disallowed_nulls(x[k], sub)
    elif isinstance(x, list):
        items = s.get("items") if s is not None and isinstance(s.get("items"), dict) else None
        for v in x:
            drop_disallowed_nulls(v, items)


def _default(x: Any, s: Schema | None) -> None:
    if s is None:
        return
    if isinstance(x, dict):
        props: dict[str, Schema] = s.get("properties") or {}
        for k, prop in props.items():
            if prop.get("default") is None:
                continue
            if k not in x or _null_with_default(x[k], prop):
                x[k] = copy.deepcopy(prop["default"])
        additional = s.get("additionalProperties")
        for k in list(x):
            if k in props:
                _default(x[k], props[k])
            elif isinstance(additional, dict):
                if _null_with_default(x[k], additional):
                    x[k] = copy.deepcopy(additional["default"])
                _default(x[k], additional)
    elif isinstance(x, list):
        items = s.get("items") if isinstance(s.get("items"), dict) else None
        for i in range(len(x)):
            if items is not None and _null_with_default(x[i], items):
                x[i] = copy.deepcopy(items["default"])
            _default(x[i], items)
