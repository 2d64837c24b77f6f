"""JSON merge patch (RFC 7386), the ``application/merge-patch+json`` patch type."""

from __future__ import annotations

from typing import Any

from netplane.api.gofmt import json_kind
from netplane.api.patch._values import clone
from netplane.api.patch.errors import PatchError


def apply_merge_patch(original: dict[str, Any], patch: object) -> dict[str, Any]:
    """Return ``original`` with the merge patch applied; neither input is changed.

    Objects merge recursively, ``null`` removes a member, anything else (lists
    included) replaces the value whole.
    """
    if not isinstance(original, dict):
        raise PatchError("Invalid JSON Document", 400)
    if patch is None:
        raise PatchError("Invalid JSON Patch", 400)
    if not isinstance(patch, dict):
        # RFC 7386 would replace the whole document, but an API object must stay an object.
        raise PatchError(f"json: cannot unmarshal {json_kind(patch)} into Go value of type "
                         "map[string]interface {}", 400)
    return _merge_into(clone(original), patch)


def _merge_into(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Merge ``patch`` into ``target``, which the caller owns and lets us change."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict):
            current = target.get(key)
            # A new object is merged into an empty one so that its nulls disappear, as RFC 7386 asks.
            target[key] = _merge_into(current if isinstance(current, dict) else {}, value)
        else:
            target[key] = clone(value)
    return target
