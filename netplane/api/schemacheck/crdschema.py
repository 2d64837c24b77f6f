"""Checks of one CRD version's ``openAPIV3Schema`` beyond structurality.

The OpenAPI subset CRDs may use, list/map type extensions, defaults that must
validate and be pruned, and the ``x-kubernetes-validations`` entries — whose
rules are compiled, so a broken rule fails the CRD, not its objects.
"""

from __future__ import annotations

import copy
from typing import Any

from netplane.api.errors import FieldError
from netplane.api.schemacheck import causes
from netplane.api.schemacheck.celrules import field_path_valid, rule_compile_errors
from netplane.api.schemacheck.openapi import validate_values
from netplane.api.schemacheck.prune import prune
from netplane.api.schemacheck.structural import structural_errors

Schema = dict[str, Any]

_OPENAPI_TYPES = ["array", "boolean", "integer", "number", "object", "string"]
_REASONS = ["FieldValueDuplicate", "FieldValueForbidden", "FieldValueInvalid", "FieldValueRequired"]
_META_FIELDS = ("metadata", "kind", "apiVersion")
# JSONSchemaProps fields (by JSON name) allowed at the root when the status subresource is on.
_ROOT_ALLOWED_WITH_STATUS = {
    "description",
    "type",
    "format",
    "title",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "multipleOf",
    "required",
    "items",
    "properties",
    "externalDocs",
    "example",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-validations",
}
_ROOT_ALLOWED_GO_NAMES = (
    "[Description Type Format Title Maximum ExclusiveMaximum Minimum ExclusiveMinimum "
    "MaxLength MinLength Pattern MaxItems MinItems UniqueItems MultipleOf Required Items "
    "Properties ExternalDocs Example XPreserveUnknownFields XValidations]"
)


def version_schema_errors(schema: Schema, path: str, status_enabled: bool) -> list[FieldError]:
    """Errors of ``spec.versions[i].schema.openAPIV3Schema`` (``path`` points at it)."""
    errs: list[FieldError] = []
    if status_enabled:
        if schema.get("type") is not None and schema.get("type") != "object":
            errs.append(
                causes.invalid(
                    f"{path}.type",
                    schema.get("type"),
                    'only "object" is allowed as the type at the root of the schema '
                    "if the status subresource is enabled",
                )
            )
        elif any(
            k not in _ROOT_ALLOWED_WITH_STATUS
            for k, v in schema.items()
            if v not in (None, False, "", [], {})
        ):
            errs.append(
                causes.invalid(
                    path,
                    causes.OMIT,
                    f"only {_ROOT_ALLOWED_GO_NAMES} fields are allowed at the root of the "
                    "schema if the status subresource is enabled",
                )
            )
    if schema.get("nullable"):
        errs.append(causes.forbidden(f"{path}.nullable", "nullable cannot be true at the root"))
    structural = structural_errors(schema, path)
    errs += structural
    if not structural:
        errs += _default_errors(schema, path, inside_meta=False)
    schema_errs, rule_errs = _openapi(schema, path, _Context(), is_root=True, rules_ok=not structural)
    return errs + schema_errs + rule_errs


class _Context:
    """What the walk knows about where it is (mirrors upstream's validator options)."""

    def __init__(
        self,
        defaults_forbidden: str | None = None,
        inside_meta: bool = False,
        uncorrelatable: str | None = None,
    ) -> None:
        self.defaults_forbidden = defaults_forbidden
        self.inside_meta = inside_meta
        self.uncorrelatable = uncorrelatable

    def but(self, **changes: Any) -> _Context:
        clone = copy.copy(self)
        for k, v in changes.items():
            setattr(clone, k, v)
        return clone


def _subset_errors(s: Schema, path: str, ctx: _Context) -> list[FieldError]:
    errs: list[FieldError] = []
    stype = s.get("type")
    if stype and stype not in _OPENAPI_TYPES:
        errs.append(causes.not_supported(f"{path}.type", stype, _OPENAPI_TYPES))
    if "default" in s and ctx.defaults_forbidden is not None:
        errs.append(
            causes.forbidden(f"{path}.default", ("must not be set " + ctx.defaults_forbidden).strip())
        )
    for key, detail in (
        ("id", "id is not supported"),
        ("additionalItems", "additionalItems is not supported"),
        ("patternProperties", "patternProperties is not supported"),
        ("definitions", "definitions is not supported"),
        ("dependencies", "dependencies is not supported"),
        ("$ref", "$ref is not supported"),
    ):
        if s.get(key):
            errs.append(causes.forbidden(f"{path}.{key}", detail))
    if stype == "null":
        errs.append(
            causes.forbidden(f"{path}.type", "type cannot be set to null, use nullable as an alternative")
        )
    if isinstance(s.get("items"), list):
        errs.append(causes.forbidden(f"{path}.items", "items must be a schema object and not an array"))
    if ctx.inside_meta and s.get("x-kubernetes-embedded-resource"):
        errs.append(
            causes.forbidden(
                f"{path}.x-kubernetes-embedded-resource", "must not be used inside of resource meta"
            )
        )
    return errs


def _openapi(
    s: Any,
    path: str,
    ctx: _Context,
    is_root: bool,
    rules_ok: bool,
) -> tuple[list[FieldError], list[FieldError]]:
    """Schema errors and CEL rule errors of ``s`` and everything below it."""
    if not isinstance(s, dict):
        return [], []
    errs = _subset_errors(s, path, ctx)
    rule_errs: list[FieldError] = []

    def visit(sub: Any, sub_path: str, sub_ctx: _Context, sub_rules_ok: bool = rules_ok) -> None:
        e, r = _openapi(sub, sub_path, sub_ctx, False, sub_rules_ok)
        errs.extend(e)
        rule_errs.extend(r)

    if s.get("uniqueItems"):
        errs.append(
            causes.forbidden(
                f"{path}.uniqueItems",
                "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
            )
        )
    props = s.get("properties") or {}
    additional = s.get("additionalProperties")
    if additional is not None:
        if props and (additional is False or isinstance(additional, dict)):
            errs.append(
                causes.forbidden(
                    f"{path}.additionalProperties", "additionalProperties and properties are mutual exclusive"
                )
            )
        sub_ctx = (
            ctx.but(defaults_forbidden="inside additionalProperties applying to object metadata")
            if ctx.inside_meta
            else ctx
        )
        visit(additional, f"{path}.additionalProperties", sub_ctx)
    map_type = s.get("x-kubernetes-map-type")
    for name, sub in props.items():
        sub_ctx = ctx
        if map_type not in (None, "granular", "atomic") and sub_ctx.uncorrelatable is None:
            sub_ctx = sub_ctx.but(uncorrelatable=path)
        if (is_root or s.get("x-kubernetes-embedded-resource")) and name in _META_FIELDS:
            sub_ctx = sub_ctx.but(inside_meta=True)
            if is_root:
                sub_ctx = sub_ctx.but(defaults_forbidden=f"in top-level {name}")
        visit(sub, f"{path}.properties[{name}]", sub_ctx)
    if isinstance(s.get("not"), dict):
        visit(s["not"], f"{path}.not", ctx, False)
    for junctor in ("allOf", "oneOf", "anyOf"):
        for i, sub in enumerate(s.get(junctor) or []):
            visit(sub, f"{path}.{junctor}[{i}]", ctx, False)
    items = s.get("items")
    if items is not None:
        item_ctx = ctx
        if s.get("x-kubernetes-list-type") != "map" and ctx.uncorrelatable is None:
            item_ctx = ctx.but(uncorrelatable=path)
        if isinstance(items, dict):
            visit(items, f"{path}.items", item_ctx)
    errs += _extension_errors(s, path)
    if s.get("x-kubernetes-validations"):
        errs += _rule_entry_errors(s, path)
        if not errs and rules_ok:
            rule_errs += rule_compile_errors(s, path, is_root)
            rule_errs += _old_self_errors(s, path, ctx)
    return errs, rule_errs


def _type_for_extension(stype: Any, wanted: str, extension: str, path: str) -> FieldError:
    """The schema's ``type`` is missing or wrong for an extension that needs ``wanted``."""
    detail = f"must be {wanted} if {extension} is specified"
    return causes.invalid(f"{path}.type", stype, detail) if stype else causes.required(f"{path}.type", detail)


def _extension_errors(s: Schema, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    stype = s.get("type", "")
    if s.get("x-kubernetes-preserve-unknown-fields") is False:
        errs.append(
            causes.invalid(f"{path}.x-kubernetes-preserve-unknown-fields", False, "must be true or undefined")
        )
    map_type = s.get("x-kubernetes-map-type")
    if map_type is not None and stype != "object":
        errs.append(_type_for_extension(stype, "object", "x-kubernetes-map-type", path))
    if map_type is not None and map_type not in ("atomic", "granular"):
        errs.append(causes.not_supported(f"{path}.x-kubernetes-map-type", map_type, ["atomic", "granular"]))
    list_type = s.get("x-kubernetes-list-type")
    items = s.get("items") if isinstance(s.get("items"), dict) else None
    if list_type is not None and stype != "array":
        errs.append(_type_for_extension(stype, "array", "x-kubernetes-list-type", path))
    elif list_type == "set" and items is not None:
        if items.get("type") == "array" and items.get("x-kubernetes-list-type") not in (None, "atomic"):
            errs.append(
                causes.invalid(
                    f"{path}.items.x-kubernetes-list-type",
                    items.get("x-kubernetes-list-type"),
                    "must be atomic as item of a list with x-kubernetes-list-type=set",
                )
            )
        if items.get("type") == "object" and items.get("x-kubernetes-map-type") != "atomic":
            errs.append(
                causes.invalid(
                    f"{path}.items.x-kubernetes-map-type",
                    items.get("x-kubernetes-map-type"),
                    "must be atomic as item of a list with x-kubernetes-list-type=set",
                )
            )
    if list_type is not None and list_type not in ("atomic", "set", "map"):
        errs.append(
            causes.not_supported(f"{path}.x-kubernetes-list-type", list_type, ["atomic", "set", "map"])
        )
    keys = s.get("x-kubernetes-list-map-keys") or []
    if keys:
        if list_type is None:
            errs.append(
                causes.required(
                    f"{path}.x-kubernetes-list-type", "must be map if x-kubernetes-list-map-keys is non-empty"
                )
            )
        elif list_type != "map":
            errs.append(
                causes.invalid(
                    f"{path}.x-kubernetes-list-type",
                    list_type,
                    "must be map if x-kubernetes-list-map-keys is non-empty",
                )
            )
    if list_type == "map":
        errs += _map_list_errors(s, items, keys, path)
    if list_type in ("set", "map") and items is not None and items.get("nullable"):
        errs.append(
            causes.forbidden(
                f"{path}.items.nullable", f"cannot be nullable when x-kubernetes-list-type is {list_type}"
            )
        )
    return errs


def _map_list_errors(s: Schema, items: Schema | None, keys: list[str], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if not keys:
        errs.append(
            causes.required(
                f"{path}.x-kubernetes-list-map-keys", "must not be empty if x-kubernetes-list-type is map"
            )
        )
    if s.get("items") is None:
        errs.append(causes.required(f"{path}.items", "must have a schema if x-kubernetes-list-type is map"))
    if items is None:
        return errs
    if items.get("type") != "object":
        errs.append(
            causes.invalid(
                f"{path}.items.type",
                items.get("type", ""),
                "must be object if parent array's x-kubernetes-list-type is map",
            )
        )
        return errs
    item_props = items.get("properties") or {}
    required = set(items.get("required") or [])
    seen: set[str] = set()
    for k in keys:
        sub = item_props.get(k)
        if sub is None:
            errs.append(
                causes.invalid(
                    f"{path}.x-kubernetes-list-map-keys", keys, "entries must all be names of item properties"
                )
            )
        else:
            if sub.get("type") in ("array", "object"):
                errs.append(
                    causes.invalid(
                        f"{path}.items.properties[{k}].type",
                        items.get("type"),
                        "must be a scalar type if parent array's x-kubernetes-list-type is map",
                    )
                )
            if k not in required and sub.get("default") is None:
                errs.append(
                    causes.required(
                        f"{path}.items.properties[{k}].default",
                        "this property is in x-kubernetes-list-map-keys, so it must have a "
                        "default or be a required property",
                    )
                )
            if sub.get("nullable"):
                errs.append(
                    causes.forbidden(
                        f"{path}.items.properties[{k}].nullable",
                        "this property is in x-kubernetes-list-map-keys, so it cannot be nullable",
                    )
                )
        if k in seen:
            errs.append(
                causes.invalid(
                    f"{path}.x-kubernetes-list-map-keys", keys, "must not contain duplicate entries"
                )
            )
        seen.add(k)
    return errs


def _rule_entry_errors(s: Schema, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, entry in enumerate(s.get("x-kubernetes-validations") or []):
        here = f"{path}.x-kubernetes-validations[{i}]"
        rule = str(entry.get("rule") or "").strip()
        message = str(entry.get("message") or "")
        if not rule:
            errs.append(causes.required(f"{here}.rule", "rule is not specified"))
        elif message and not message.strip():
            errs.append(causes.invalid(f"{here}.message", message, "must be non-empty if specified"))
        elif "\n" in message.strip():
            errs.append(causes.invalid(f"{here}.message", message, "must not contain line breaks"))
        elif "\n" in rule and not message.strip():
            errs.append(
                causes.required(f"{here}.message", "message must be specified if rule contains line breaks")
            )
        message_expression = entry.get("messageExpression")
        if (
            message_expression is not None
            and message_expression != ""
            and not str(message_expression).strip()
        ):
            errs.append(
                causes.required(
                    f"{here}.messageExpression", "messageExpression must be non-empty if specified"
                )
            )
        reason = entry.get("reason")
        if reason is not None and reason not in _REASONS:
            errs.append(causes.not_supported(f"{here}.reason", reason, _REASONS))
        field_path = entry.get("fieldPath")
        if field_path:
            if not str(field_path).strip():
                errs.append(causes.invalid(f"{here}.fieldPath", field_path, "must be non-empty if specified"))
            elif "\n" in field_path:
                errs.append(causes.invalid(f"{here}.fieldPath", field_path, "must not contain line breaks"))
            elif not field_path_valid(field_path, s):
                errs.append(causes.invalid(f"{here}.fieldPath", field_path, "must be a valid path"))
    return errs


def _old_self_errors(s: Schema, path: str, ctx: _Context) -> list[FieldError]:
    if ctx.uncorrelatable is None:
        return []
    from netplane.api.schemacheck.celrules import compile_rules

    errs: list[FieldError] = []
    for i, compiled in enumerate(compile_rules(s)):
        if compiled.uses_old_self:
            errs.append(
                causes.invalid(
                    f"{path}.x-kubernetes-validations[{i}].rule",
                    compiled.rule,
                    "oldSelf cannot be used on the uncorrelatable portion of the schema within "
                    f"{ctx.uncorrelatable}",
                )
            )
    return errs


def _default_errors(s: Any, path: str, inside_meta: bool) -> list[FieldError]:
    """Defaults must validate against their schema and survive pruning unchanged."""
    if not isinstance(s, dict):
        return []
    errs: list[FieldError] = []
    default = s.get("default")
    if default is not None:
        here = f"{path}.default"
        problems = validate_values(copy.deepcopy(default), s, prefix=here)
        if problems:
            errs += problems
        elif not inside_meta and isinstance(default, dict | list):
            pruned = copy.deepcopy(default)
            wrapper = {"type": "object", "properties": {"x": s}}
            if prune({"x": pruned}, wrapper):
                errs.append(causes.invalid(here, default, "must not have unknown fields"))
    if isinstance(s.get("items"), dict):
        errs += _default_errors(s["items"], f"{path}.items", inside_meta)
    for name, sub in (s.get("properties") or {}).items():
        errs += _default_errors(sub, f"{path}.properties[{name}]", inside_meta or name in _META_FIELDS)
    if isinstance(s.get("additionalProperties"), dict):
        errs += _default_errors(s["additionalProperties"], f"{path}.additionalProperties", inside_meta)
    return errs
