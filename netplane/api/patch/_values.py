"""Helpers for plain JSON values (dict, list, str, int, float, bool, None)."""

from __future__ import annotations

from typing import Any

from netplane.api.gofmt import json_kind


def clone(value: Any) -> Any:
    """Deep copy of a JSON value; much faster than ``copy.deepcopy`` for this shape."""
    if isinstance(value, dict):
        return {k: clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clone(v) for v in value]
    return value


def same(left: Any, right: Any) -> bool:
    """JSON equality: unlike Python's ``==``, ``true`` is not equal to ``1``."""
    return json_kind(left) == json_kind(right) and left == right
