"""Strict decoding of built-in kinds, as the API server's Go JSON decoder does it.

The server first decodes leniently into the typed Go struct; a type mismatch
fails the request with the decoder's own wording (400 BadRequest). Only then are
unknown fields reported, as "strict decoding error"s under fieldValidation=Strict
or as warnings under Warn. The JSON schemas of `netplane.api.schemas` stand in for
the Go structs: a definition with ``properties`` is a struct, one with
``additionalProperties`` a map, and a few definitions are Go types with their own
``UnmarshalJSON``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from netplane.api import schemas
from netplane.api.gofmt import json_kind, quote

Schema = dict[str, Any]

_META = "io.k8s.apimachinery.pkg.apis.meta.v1."
_INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
_QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
_TIMES = {_META + "Time", _META + "MicroTime"}
# Go types whose UnmarshalJSON takes any JSON value.
_OPAQUE = {
    "io.k8s.apimachinery.pkg.runtime.RawExtension",
    _META + "FieldsV1",
    _META + "Duration",
}

_QUANTITY_RE = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")
_RFC3339_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


@dataclass
class _Context:
    """Where the decoder is: the strict path and the Go error context."""

    path: str = ""
    struct: str = ""
    fields: list[str] = field(default_factory=list)
    drop: bool = False  # remove unknown fields, as decoding into the Go struct does


def decode_errors(obj: dict[str, Any], schema: Schema, drop_unknown: bool = False) -> tuple[list[str], list[str]]:
    """Unknown field paths and type errors of ``obj`` decoded into the kind ``schema``.

    Unknown paths read like ``spec.template.spec.containers[0].imagePullPolicyy``, in
    document order. Type errors are the Go decoder's messages; the server answers
    with the first one only. With ``drop_unknown`` the unknown fields are also removed
    from ``obj`` (what the server stores under fieldValidation Warn or Ignore).
    """
    unknown: list[str] = []
    type_errors: list[str] = []
    root_name = _definition_name_of(schema)
    _decode(obj, schema, root_name, _Context(drop=drop_unknown), unknown, type_errors)
    return unknown, type_errors


def strict_decoding_message(kind: str, version: str, unknown: list[str]) -> str:
    """The 400 BadRequest message for fieldValidation=Strict."""
    details = ", ".join(unknown_field_warning(p) for p in unknown)
    return f'{kind} in version "{version}" cannot be handled as a {kind}: strict decoding error: {details}'


def type_error_message(kind: str, version: str, type_error: str) -> str:
    """The 400 BadRequest message for a body that does not decode at all."""
    return f'{kind} in version "{version}" cannot be handled as a {kind}: {type_error}'


def unknown_field_warning(path: str) -> str:
    """One warning (fieldValidation=Warn) or one strict error item."""
    return f'unknown field "{path}"'


def _definition_name_of(schema: Schema) -> str | None:
    ref = schema.get("$ref")
    if ref:
        return str(ref).rsplit("/", 1)[-1]
    for gvk in schema.get("x-kubernetes-group-version-kind", []):
        name = schemas.definition_name(gvk["group"], gvk["version"], gvk["kind"])
        if name:
            return name
    return None


def _types(schema: Schema) -> list[str]:
    t = schema.get("type")
    if t is None:
        return []
    listed = t if isinstance(t, list) else [t]
    return [x for x in listed if x != "null"]


def _go_type(schema: Schema, name: str | None) -> str:
    """How Go's reflect prints the type a schema stands for (``v1.ServicePort``, ``[]string``)."""
    if name is None and "$ref" in schema:
        name = _definition_name_of(schema)
        schema = schemas.resolve(schema)
    if name is not None:
        parts = name.split(".")
        return f"{parts[-2]}.{parts[-1]}" if len(parts) >= 2 else name
    types = _types(schema)
    kind = types[0] if types else ""
    if kind == "string":
        return "string"
    if kind == "boolean":
        return "bool"
    if kind == "integer":
        return "int32" if schema.get("format") == "int32" else "int64"
    if kind == "number":
        return "float32" if schema.get("format") == "float" else "float64"
    if kind == "array":
        return "[]" + _go_type(schema.get("items") or {}, None)
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return "map[string]" + _go_type(schema["additionalProperties"], None)
    return "interface {}"


def _json_kind(value: Any, with_literal: bool = False) -> str:
    """The ``Value`` of Go's UnmarshalTypeError for a JSON value (a number with its literal, if asked)."""
    kind = json_kind(value)
    return f"{kind} {value!r}" if with_literal and kind == "number" else kind


def _type_error(ctx: _Context, value_kind: str, go_type: str) -> str:
    where = f"Go struct field {ctx.struct}.{'.'.join(ctx.fields)}" if ctx.struct else "Go value"
    return f"json: cannot unmarshal {value_kind} into {where} of type {go_type}"


def _decode(
    value: Any, schema: Schema, name: str | None, ctx: _Context, unknown: list[str], type_errors: list[str]
) -> None:
    if value is None:
        return  # null leaves any Go value at its zero value
    while "$ref" in schema:
        name = _definition_name_of(schema)
        schema = schemas.resolve(schema)
    if name is not None and _custom_unmarshal(value, name, type_errors):
        return
    types = _types(schema)
    if not types:
        return  # interface{}: anything decodes
    kind = types[0]
    go_type = _go_type(schema, name)
    if kind == "object":
        _decode_object(value, schema, name, go_type, ctx, unknown, type_errors)
    elif kind == "array":
        if not isinstance(value, list):
            type_errors.append(_type_error(ctx, _json_kind(value), go_type))
            return
        items = schema.get("items") or {}
        for i, item in enumerate(value):
            _decode(
                item, items, None, _Context(f"{ctx.path}[{i}]", ctx.struct, ctx.fields, ctx.drop), unknown,
                type_errors,
            )
    else:
        error = _scalar_error(value, kind, schema.get("format"))
        if error is not None:
            type_errors.append(_type_error(ctx, error, go_type))


def _decode_object(
    value: Any,
    schema: Schema,
    name: str | None,
    go_type: str,
    ctx: _Context,
    unknown: list[str],
    type_errors: list[str],
) -> None:
    if not isinstance(value, dict):
        type_errors.append(_type_error(ctx, _json_kind(value), go_type))
        return
    props = schema.get("properties")
    additional = schema.get("additionalProperties")
    if props is not None:
        struct = name.rsplit(".", 1)[-1] if name else ctx.struct
        dropped = []
        for k, v in value.items():
            path = f"{ctx.path}.{k}" if ctx.path else k
            if k not in props:
                unknown.append(path)
                dropped.append(k)
                continue
            _decode(v, props[k], None, _Context(path, struct, [*ctx.fields, k], ctx.drop), unknown, type_errors)
        if ctx.drop:
            for k in dropped:
                del value[k]
    elif isinstance(additional, dict):
        for k, v in value.items():
            path = f"{ctx.path}.{k}" if ctx.path else k
            _decode(v, additional, None, _Context(path, ctx.struct, ctx.fields, ctx.drop), unknown, type_errors)
    # An object with neither is free-form (RawExtension and the like).


def _scalar_error(value: Any, kind: str, fmt: str | None) -> str | None:
    """The UnmarshalTypeError ``Value`` for a scalar target, or None when it decodes."""
    if kind == "string":
        return None if isinstance(value, str) else _json_kind(value)
    if kind == "boolean":
        return None if isinstance(value, bool) else _json_kind(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _json_kind(value)
    if kind == "integer":
        low, high = _INT_RANGES["int32" if fmt == "int32" else "int64"]
        if isinstance(value, float) or not low <= value <= high:
            return _json_kind(value, with_literal=True)
    return None


def _custom_unmarshal(value: Any, name: str, type_errors: list[str]) -> bool:
    """Types with their own UnmarshalJSON; True when ``name`` is one of them."""
    if name in _OPAQUE:
        return True
    if name == _INT_OR_STRING:
        if isinstance(value, str) or (
            isinstance(value, int) and not isinstance(value, bool) and -(2**31) <= value < 2**31
        ):
            return True
        kind = _json_kind(value, with_literal=isinstance(value, int | float) and not isinstance(value, bool))
        type_errors.append(f"json: cannot unmarshal {kind} into Go value of type int32")
        return True
    if name == _QUANTITY:
        text = (
            value
            if isinstance(value, str)
            else (repr(value) if isinstance(value, int | float) and not isinstance(value, bool) else "")
        )
        if not _QUANTITY_RE.match(text.strip()):
            type_errors.append(
                "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
            )
        return True
    if name in _TIMES:
        if not isinstance(value, str):
            type_errors.append(f"json: cannot unmarshal {_json_kind(value)} into Go value of type string")
        elif value and not _RFC3339_RE.match(value):
            quoted = quote(value)
            type_errors.append(
                f'parsing time {quoted} as "2006-01-02T15:04:05Z07:00": cannot parse {quoted} as "2006"'
            )
        return True
    return False
