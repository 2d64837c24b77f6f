"""Tolerant readers for JSON-shaped objects.

Schema checks run elsewhere; semantic validation must not crash on a value of the wrong
shape, so every read here falls back to an empty value of the expected type.
"""

from __future__ import annotations

from typing import Any


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def as_int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def sub(obj: dict[str, Any], *keys: str) -> dict[str, Any]:
    """The nested mapping at ``keys``, or an empty one."""
    cur: Any = obj
    for key in keys:
        cur = as_dict(cur).get(key)
    return as_dict(cur)


def ensure(obj: dict[str, Any], key: str) -> dict[str, Any]:
    """The mapping at ``key``, created when missing or null (for defaulting)."""
    value = obj.get(key)
    if not isinstance(value, dict):
        value = {}
        obj[key] = value
    return value


def dicts(value: Any) -> list[dict[str, Any]]:
    """The entries of a list that are mappings (others were rejected by the schema)."""
    return [v for v in as_list(value) if isinstance(v, dict)]
