"""Pruning of custom resources: dropping every field the structural schema does not declare."""

from __future__ import annotations

from typing import Any

from netplane.api import schemas

Schema = dict[str, Any]

_META_FIELDS = ("apiVersion", "kind", "metadata")
_OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


def prune(obj: dict[str, Any], schema: Schema) -> list[str]:
    """Remove unknown fields from the custom resource ``obj`` in place.

    Returns the removed paths, sorted (``spec.bogus``, ``spec.items[0].extra``,
    ``metadata.colour``) for fieldValidation=Strict errors and Warn warnings.
    ``apiVersion``, ``kind`` and ``metadata`` of the resource and of every
    ``x-kubernetes-embedded-resource`` survive; inside ``metadata`` only
    ObjectMeta's own fields do.
    """
    removed: list[str] = []
    root = dict(schema)
    root["x-kubernetes-embedded-resource"] = True
    _prune(obj, root, "", removed)
    return sorted(removed)


def _object_meta_fields() -> set[str]:
    return set(schemas.definitions()[_OBJECT_META].get("properties", {}))


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _prune_meta(x: dict[str, Any], path: str, removed: list[str]) -> None:
    meta = x.get("metadata")
    if not isinstance(meta, dict):
        return
    known = _object_meta_fields()
    for k in list(meta):
        if k not in known:
            removed.append(_join(_join(path, "metadata"), k))
            del meta[k]


def _prune(x: Any, s: Schema | None, path: str, removed: list[str]) -> None:
    if s is not None and s.get("x-kubernetes-preserve-unknown-fields"):
        _skip_prune(x, s, path, removed)
        return
    if isinstance(x, dict):
        if s is None:
            for k in list(x):
                removed.append(_join(path, k))
                del x[k]
            return
        embedded = bool(s.get("x-kubernetes-embedded-resource"))
        if embedded:
            _prune_meta(x, path, removed)
        props = s.get("properties") or {}
        for k in list(x):
            if embedded and k in _META_FIELDS:
                continue
            if k in props:
                _prune(x[k], props[k], _join(path, k), removed)
            elif "additionalProperties" in s and s["additionalProperties"] is not None:
                additional = s["additionalProperties"]
                _prune(x[k], additional if isinstance(additional, dict) else None, _join(path, k), removed)
            else:
                removed.append(_join(path, k))
                del x[k]
    elif isinstance(x, list):
        items = s.get("items") if s is not None and isinstance(s.get("items"), dict) else None
        for i, v in enumerate(x):
            _prune(v, items, f"{path}[{i}]", removed)


def _skip_prune(x: Any, s: Schema, path: str, removed: list[str]) -> None:
    """Below preserve-unknown-fields: keep unknown fields, still prune the declared ones."""
    if isinstance(x, dict):
        embedded = bool(s.get("x-kubernetes-embedded-resource"))
        if embedded:
            _prune_meta(x, path, removed)
        props = s.get("properties") or {}
        additional = s.get("additionalProperties")
        for k, v in x.items():
            if embedded and k in _META_FIELDS:
                continue
            if k in props:
                _prune(v, props[k], _join(path, k), removed)
            elif isinstance(additional, dict):
                _prune(v, additional, _join(path, k), removed)
    elif isinstance(x, list):
        items = s.get("items")
        if isinstance(items, dict):
            for i, v in enumerate(x):
                _skip_prune(v, items, f"{path}[{i}]", removed)
