"""Comparing JSON values the way Go compares decoded ``interface{}`` values.

Python treats ``True == 1 == 1.0``; a decoded Go value keeps bool, int64 and
float64 apart, so equality and hashing here keep the JSON type in view.
"""

from __future__ import annotations

from typing import Any


class Missing:
    """Stands for "no such value", which is different from JSON null."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING = Missing()


def canonical(value: Any) -> Any:
    """A hashable form in which values are equal exactly when Go's DeepEqual says so."""
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int):
        return ("i", value)
    if isinstance(value, float):
        return ("f", value)
    if isinstance(value, str):
        return ("s", value)
    if value is None:
        return ("n",)
    if isinstance(value, list):
        return ("l", tuple(canonical(v) for v in value))
    if isinstance(value, dict):
        return ("m", tuple(sorted((k, canonical(v)) for k, v in value.items())))
    return ("?", repr(value))


def json_equal(a: Any, b: Any) -> bool:
    return canonical(a) == canonical(b)


def numeric_equal(a: Any, b: Any) -> bool:
    """Enum matching: Go converts the value to the enum member's type before comparing."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    return json_equal(a, b)
