"""Validation of a custom resource against its CRD version's ``openAPIV3Schema``.

Mirrors the API server's order: OpenAPI value checks, list-type uniqueness, then
CEL rules — which are skipped, with a note, when the object already has an error
that makes running them pointless.
"""

from __future__ import annotations

from typing import Any

from netplane.api.errors import FieldError
from netplane.api.schemacheck import causes
from netplane.api.schemacheck.celrules import evaluate_rules
from netplane.api.schemacheck.jsonvalues import MISSING
from netplane.api.schemacheck.listtypes import validate_list_types
from netplane.api.schemacheck.openapi import validate_values

Schema = dict[str, Any]

_BLOCKING = {
    "FieldValueNotSupported",
    "FieldValueRequired",
    "FieldValueTooLong",
    "FieldValueTooMany",
    "FieldValueTypeInvalid",
}
RULES_SKIPPED = (
    "some validation rules were not checked because the object was invalid; "
    "correct the existing errors to complete validation"
)


def validate(obj: dict[str, Any], schema: Schema, old: dict[str, Any] | None = None) -> list[FieldError]:
    """All errors of the custom resource ``obj``; pass ``old`` on update.

    On update, values equal to their old counterpart are not held to the schema
    again (validation ratcheting), and transition rules (``oldSelf``) run.
    """
    errs = validate_values(obj, schema, MISSING if old is None else old)
    if old is None or not validate_list_types(old, schema):
        errs += validate_list_types(obj, schema)
    if has_rules(schema):
        if any(e.reason in _BLOCKING for e in errs):
            errs.append(causes.invalid(causes.ROOT, None, RULES_SKIPPED))
        else:
            errs += evaluate_rules(obj, schema, old)
    return errs


def has_rules(schema: Any) -> bool:
    """Whether any node of ``schema`` carries ``x-kubernetes-validations``."""
    if isinstance(schema, dict):
        if schema.get("x-kubernetes-validations"):
            return True
        return any(
            has_rules(v)
            for k, v in schema.items()
            if k in ("properties", "items", "additionalProperties")
            or (isinstance(v, dict) and k not in ("default", "enum", "example"))
        )
    if isinstance(schema, list):
        return any(has_rules(v) for v in schema)
    return False
