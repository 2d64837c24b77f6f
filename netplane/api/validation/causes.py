"""Turning check results into field errors, plus the two cause kinds errors.py lacks."""

from __future__ import annotations

from typing import Any

from netplane.api.errors import FieldError, invalid, not_supported, required

from .access import as_str


def each(path: str, value: Any, messages: list[str]) -> list[FieldError]:
    """One ``Invalid value`` cause per description, all about the same value."""
    return [invalid(path, value, m) for m in messages]


def one_of(path: str, value: Any, supported: list[str]) -> list[FieldError]:
    """A string field that must be set, to one of ``supported``: ``Required value`` or ``Unsupported value``."""
    text = as_str(value)
    if not text:
        return [required(path)]
    return [] if text in supported else [not_supported(path, text, supported)]


def not_found(path: str, value: str) -> FieldError:
    return FieldError("FieldValueNotFound", path, f'Not found: "{value}"')


def too_many(path: str, actual: int, limit: int) -> FieldError:
    items = "item" if limit == 1 else "items"
    return FieldError("FieldValueTooMany", path, f"Too many: {actual}: must have at most {limit} {items}")
