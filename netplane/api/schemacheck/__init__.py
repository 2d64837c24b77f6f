"""Schema-driven checks of request bodies: pure functions over JSON-shaped dicts.

Built-in kinds
    `decode_errors` finds unknown fields and Go decoding type errors;
    `strict_decoding_message`, `type_error_message` and `unknown_field_warning`
    word the 400 answer or the warnings per ``fieldValidation``.

Custom resources (one CRD version's ``openAPIV3Schema``), in the server's order:
    `apply_defaults` (drops disallowed nulls, fills defaults), then `prune`
    (returns what it removed, for Strict/Warn), then `validate` (OpenAPI value
    checks, list-type uniqueness, CEL rules; pass ``old`` on update).

CustomResourceDefinitions
    `crd_defaults` and `validate_crd`.
"""

from netplane.api.schemacheck.crd import crd_defaults, validate_crd
from netplane.api.schemacheck.defaults import apply_defaults
from netplane.api.schemacheck.prune import prune
from netplane.api.schemacheck.strict import (
    decode_errors,
    strict_decoding_message,
    type_error_message,
    unknown_field_warning,
)
from netplane.api.schemacheck.validation import validate

__all__ = [
    "apply_defaults",
    "crd_defaults",
    "decode_errors",
    "prune",
    "strict_decoding_message",
    "type_error_message",
    "unknown_field_warning",
    "validate",
    "validate_crd",
]
