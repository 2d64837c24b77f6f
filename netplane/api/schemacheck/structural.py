"""Whether a CRD's ``openAPIV3Schema`` is structural, with the API server's messages.

A structural schema gives every field a type outside of ``allOf``/``anyOf``/
``oneOf``/``not``; those junctors may only add value validations for fields the
structural part already declares. Errors are sorted by their text, as upstream.
"""

from __future__ import annotations

from typing import Any

import re2

from netplane.api.errors import FieldError
from netplane.api.schemacheck import causes

Schema = dict[str, Any]

_ROOT, _ITEM, _FIELD = "root", "item", "field"
_JUNCTORS = ("allOf", "anyOf", "oneOf")
_INT_OR_STRING_ANY_OF = [{"type": "integer"}, {"type": "string"}]


def structural_errors(schema: Schema, path: str) -> list[FieldError]:
    errs = _invariants(schema, _ROOT, path) + _completeness(schema, path)
    return sorted(errs, key=str)


def _prop(path: str, name: str) -> str:
    return f"{path}.properties[{name}]"


def _is_int_or_string_any_of(s: Schema) -> bool:
    return s.get("anyOf") == _INT_OR_STRING_ANY_OF


def _is_int_or_string_all_of(s: Schema) -> bool:
    all_of = s.get("allOf") or []
    return bool(all_of) and isinstance(all_of[0], dict) and all_of[0].get("anyOf") == _INT_OR_STRING_ANY_OF


def _invariants(s: Any, level: str, path: str) -> list[FieldError]:
    if not isinstance(s, dict):
        return []
    errs: list[FieldError] = []
    stype = s.get("type", "")
    if stype == "array" and s.get("items") is None:
        errs.append(causes.required(f"{path}.items", "must be specified"))
    errs += _invariants(s.get("items"), _ITEM, f"{path}.items")
    for name, sub in (s.get("properties") or {}).items():
        errs += _invariants(sub, _FIELD, _prop(path, name))
    if "additionalProperties" in s:
        if level == _ROOT:
            errs.append(causes.forbidden(f"{path}.additionalProperties", "must not be used at the root"))
        errs += _invariants(s.get("additionalProperties"), _FIELD, f"{path}.additionalProperties")
    int_or_string = bool(s.get("x-kubernetes-int-or-string"))
    preserve = bool(s.get("x-kubernetes-preserve-unknown-fields"))
    embedded = bool(s.get("x-kubernetes-embedded-resource"))
    if int_or_string and preserve:
        errs.append(
            causes.invalid(
                f"{path}.x-kubernetes-preserve-unknown-fields",
                True,
                "must be false if x-kubernetes-int-or-string is true",
            )
        )
    if int_or_string and embedded:
        errs.append(
            causes.invalid(
                f"{path}.x-kubernetes-embedded-resource",
                True,
                "must be false if x-kubernetes-int-or-string is true",
            )
        )
    errs += _value_validation(s, _is_int_or_string_any_of(s), _is_int_or_string_all_of(s), level, path)
    check_metadata = level == _ROOT or embedded
    if embedded and stype != "object":
        if not stype:
            errs.append(
                causes.required(f"{path}.type", "must be object if x-kubernetes-embedded-resource is true")
            )
        else:
            errs.append(
                causes.invalid(
                    f"{path}.type", stype, "must be object if x-kubernetes-embedded-resource is true"
                )
            )
    elif not stype and not int_or_string and not preserve:
        where = {
            _ROOT: "at the root",
            _ITEM: "for specified array items",
            _FIELD: "for specified object fields",
        }
        errs.append(causes.required(f"{path}.type", f"must not be empty {where[level]}"))
    if embedded and "additionalProperties" in s:
        errs.append(
            causes.forbidden(
                f"{path}.additionalProperties", "must not be used if x-kubernetes-embedded-resource is set"
            )
        )
    if level == _ROOT and stype and stype != "object":
        errs.append(causes.invalid(f"{path}.type", stype, "must be object at the root"))
    props = s.get("properties") or {}
    for meta_field in ("kind", "apiVersion"):
        sub = props.get(meta_field)
        if isinstance(sub, dict) and check_metadata and sub.get("type", "") != "string":
            errs.append(
                causes.invalid(f"{_prop(path, meta_field)}.type", sub.get("type", ""), "must be string")
            )
    if isinstance(props.get("metadata"), dict):
        errs += _metadata(props["metadata"], check_metadata, level, _prop(path, "metadata"))
    if embedded and not preserve and not props:
        errs.append(
            causes.required(
                f"{path}.properties",
                "must not be empty if x-kubernetes-embedded-resource "
                "is true without x-kubernetes-preserve-unknown-fields",
            )
        )
    return errs


def _metadata(s: Schema, check_metadata: bool, level: str, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if check_metadata and s.get("type", "") != "object":
        errs.append(causes.invalid(f"{path}.type", s.get("type", ""), "must be object"))
    if level == _ROOT:
        rest = {k: v for k, v in s.items() if k not in ("type", "default")}
        props = rest.pop("properties", None) or {}
        if set(props) - {"name", "generateName"} or rest:
            errs.append(
                causes.forbidden(
                    path,
                    "must not specify anything other than name and generateName, "
                    "but metadata is implicitly specified",
                )
            )
    return errs


def _value_validation(
    s: Schema, skip_any_of: bool, skip_first_all_of_any_of: bool, level: str, path: str
) -> list[FieldError]:
    errs: list[FieldError] = []
    if not skip_any_of:
        for i, sub in enumerate(s.get("anyOf") or []):
            errs += _nested(sub, False, level, f"{path}.anyOf[{i}]")
    for i, sub in enumerate(s.get("allOf") or []):
        errs += _nested(sub, skip_first_all_of_any_of and i == 0, level, f"{path}.allOf[{i}]")
    for i, sub in enumerate(s.get("oneOf") or []):
        errs += _nested(sub, False, level, f"{path}.oneOf[{i}]")
    if isinstance(s.get("not"), dict):
        errs += _nested(s["not"], False, level, f"{path}.not")
    pattern = s.get("pattern")
    if pattern:
        try:
            re2.compile(pattern)
        except re2.error as exc:
            errs.append(
                causes.invalid(
                    f"{path}.pattern", pattern, f"must be a valid regular expression, but isn't: {exc}"
                )
            )
    return errs


_FORBIDDEN_IN_NESTED = (
    ("type", lambda v: bool(v), "must be empty to be structural"),
    ("additionalProperties", lambda v: v is not None, "must be undefined to be structural"),
    ("default", lambda v: v is not None, "must be undefined to be structural"),
    ("title", lambda v: bool(v), "must be empty to be structural"),
    ("description", lambda v: bool(v), "must be empty to be structural"),
    ("nullable", lambda v: bool(v), "must be false to be structural"),
    ("x-kubernetes-preserve-unknown-fields", lambda v: bool(v), "must be false to be structural"),
    ("x-kubernetes-embedded-resource", lambda v: bool(v), "must be false to be structural"),
    ("x-kubernetes-int-or-string", lambda v: bool(v), "must be false to be structural"),
    ("x-kubernetes-list-map-keys", lambda v: bool(v), "must be empty to be structural"),
    ("x-kubernetes-list-type", lambda v: v is not None, "must be undefined to be structural"),
    ("x-kubernetes-map-type", lambda v: v is not None, "must be undefined to be structural"),
    ("x-kubernetes-validations", lambda v: bool(v), "must be empty to be structural"),
)


def _nested(s: Any, skip_any_of: bool, level: str, path: str) -> list[FieldError]:
    if not isinstance(s, dict):
        return []
    errs = _value_validation(s, skip_any_of, False, level, path)
    errs += _nested(s.get("items"), False, level, f"{path}.items")
    for name, sub in (s.get("properties") or {}).items():
        errs += _nested(sub, False, _FIELD, _prop(path, name))
    for key, present, detail in _FORBIDDEN_IN_NESTED:
        if key in s and present(s[key]):
            errs.append(causes.forbidden(f"{path}.{key}", detail))
    if "metadata" in (s.get("properties") or {}):
        errs.append(causes.forbidden(_prop(path, "metadata"), "must not be specified in a nested context"))
    return errs


def _completeness(s: Schema, path: str) -> list[FieldError]:
    return _value_completeness(s, s, path, path)


def _value_completeness(v: Schema, s: Schema | None, s_path: str, v_path: str) -> list[FieldError]:
    if s is None:
        return [causes.required(s_path, f"because it is defined in {v_path}")]
    errs: list[FieldError] = []
    if isinstance(v.get("not"), dict):
        errs += _nested_completeness(v["not"], s, s_path, f"{v_path}.not")
    for junctor in _JUNCTORS:
        for i, sub in enumerate(v.get(junctor) or []):
            if isinstance(sub, dict):
                errs += _nested_completeness(sub, s, s_path, f"{v_path}.{junctor}[{i}]")
    return errs


def _nested_completeness(v: Schema, s: Schema | None, s_path: str, v_path: str) -> list[FieldError]:
    if s is None:
        return [causes.required(s_path, f"because it is defined in {v_path}")]
    errs = _value_completeness(v, s, s_path, v_path)
    if isinstance(v.get("items"), dict):
        items = s.get("items") if isinstance(s.get("items"), dict) else None
        errs += _nested_completeness(v["items"], items, f"{s_path}.items", f"{v_path}.items")
    s_props = s.get("properties") or {}
    for name, sub in (v.get("properties") or {}).items():
        if name not in s_props:
            errs.append(
                causes.required(_prop(s_path, name), f"because it is defined in {_prop(v_path, name)}")
            )
        elif isinstance(sub, dict):
            errs += _nested_completeness(sub, s_props[name], _prop(s_path, name), _prop(v_path, name))
    return errs
