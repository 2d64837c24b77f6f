"""Invariants of pruning, defaulting and validation over generated custom resources."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netplane.api.schemacheck import apply_defaults, prune, validate

pytestmark = pytest.mark.unit

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "replicas": {"type": "integer", "minimum": 0, "maximum": 100, "default": 1},
                "name": {"type": "string", "maxLength": 10},
                "enabled": {"type": "boolean", "default": True},
                "mode": {"type": "string", "enum": ["a", "b"], "default": "a"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "servers": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "host": {"type": "string"},
                            "port": {"type": "integer", "default": 80},
                        },
                    },
                },
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "nested": {
                    "type": "object",
                    "default": {},
                    "properties": {
                        "depth": {"type": "integer", "default": 3},
                        "inner": {
                            "type": "object",
                            "properties": {"flag": {"type": "boolean", "default": False}},
                        },
                    },
                },
            },
        },
    },
}

_json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=4))
_json = st.recursive(
    _json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
_unknown_keys = st.dictionaries(st.text(min_size=1, max_size=5).map(lambda k: "zz-" + k), _json, max_size=2)


def _conforming(schema: dict[str, Any], with_unknown: bool) -> st.SearchStrategy[Any]:
    """Values valid for ``schema``; with ``with_unknown``, objects also get undeclared keys."""
    kind = schema.get("type")
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return st.dictionaries(st.text(max_size=4), _json, max_size=3)
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if kind == "integer":
        return st.integers(schema.get("minimum", -1000), schema.get("maximum", 1000))
    if kind == "string":
        return st.text(max_size=schema.get("maxLength", 8))
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        return st.lists(_conforming(schema["items"], with_unknown), max_size=3)
    if isinstance(schema.get("additionalProperties"), dict):
        return st.dictionaries(
            st.text(max_size=4), _conforming(schema["additionalProperties"], with_unknown), max_size=3
        )
    props = schema.get("properties") or {}
    declared = st.fixed_dictionaries({}, optional={k: _conforming(v, with_unknown) for k, v in props.items()})
    if not with_unknown:
        return declared
    return st.tuples(declared, _unknown_keys).map(lambda pair: {**pair[1], **pair[0]})


def _objects(with_unknown: bool) -> st.SearchStrategy[dict[str, Any]]:
    return _conforming(SCHEMA, with_unknown).map(lambda o: {"apiVersion": "x/v1", "kind": "W", **o})


def _declared_paths(value: Any, schema: dict[str, Any], path: str = "") -> set[str]:
    """Paths of fields present in ``value`` that ``schema`` declares."""
    found: set[str] = set()
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        for k, v in value.items():
            sub = props.get(k) if k in props else (additional if isinstance(additional, dict) else None)
            if sub is not None:
                here = f"{path}.{k}"
                found.add(here)
                found |= _declared_paths(v, sub, here)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, v in enumerate(value):
            found |= _declared_paths(v, schema["items"], f"{path}[{i}]")
    return found


@settings(max_examples=150)
@given(_objects(with_unknown=True))
def test_prune_is_idempotent(obj: dict[str, Any]) -> None:
    prune(obj, SCHEMA)
    once = copy.deepcopy(obj)
    assert prune(obj, SCHEMA) == []
    assert obj == once


@settings(max_examples=150)
@given(_objects(with_unknown=True))
def test_prune_keeps_every_declared_field(obj: dict[str, Any]) -> None:
    before = _declared_paths(obj, SCHEMA)
    removed = prune(obj, SCHEMA)
    assert _declared_paths(obj, SCHEMA) == before
    assert not any(p.lstrip(".") in removed for p in before)


@settings(max_examples=150)
@given(_objects(with_unknown=False))
def test_conforming_objects_lose_nothing_to_pruning(obj: dict[str, Any]) -> None:
    original = copy.deepcopy(obj)
    assert prune(obj, SCHEMA) == []
    assert obj == original


@settings(max_examples=150)
@given(_objects(with_unknown=False))
def test_defaulted_objects_validate(obj: dict[str, Any]) -> None:
    apply_defaults(obj, SCHEMA)
    assert validate(obj, SCHEMA) == []


@settings(max_examples=100)
@given(_objects(with_unknown=False))
def test_defaulting_is_idempotent(obj: dict[str, Any]) -> None:
    apply_defaults(obj, SCHEMA)
    once = copy.deepcopy(obj)
    apply_defaults(obj, SCHEMA)
    assert obj == once


@settings(max_examples=100)
@given(st.fixed_dictionaries({"spec": _json}))
def test_unchanged_object_always_passes_update(obj: dict[str, Any]) -> None:
    # Ratcheting: whatever an object was stored with, resubmitting it unchanged is accepted.
    assert validate(obj, SCHEMA, copy.deepcopy(obj)) == []
