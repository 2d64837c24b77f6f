"""The error every patch function raises, and Go-style rendering for its messages.

Messages mirror the text the Kubernetes API server produces (it formats values
with Go's ``%v``), so that kubectl users see the familiar wording.
"""

from __future__ import annotations

from typing import Any

_REASONS = {
    400: "BadRequest",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
}


class PatchError(ValueError):
    """A patch that cannot be applied.

    ``code`` is the HTTP status the API server should answer with: 400 for a
    malformed patch document, 413 for too many JSON patch operations, 415 for an
    unsupported patch type, and 422 for a patch that is well formed but does not
    apply to the object.
    """

    def __init__(self, message: str, code: int = 422) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    @property
    def reason(self) -> str:
        return _REASONS.get(self.code, "Invalid")


def go_repr(value: Any) -> str:
    """Render a JSON value the way Go's ``fmt`` prints decoded JSON with ``%v``."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict):
        items = " ".join(f"{k}:{go_repr(value[k])}" for k in sorted(value))
        return f"map[{items}]"
    if isinstance(value, list):
        return "[" + " ".join(go_repr(v) for v in value) + "]"
    return str(value)


def go_type(value: Any) -> str:
    """Go's name for the type a JSON value decodes to, as ``%T`` prints it."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "[]interface {}"
    return "map[string]interface {}"


def json_kind(value: Any) -> str:
    """JSON's name for a value's type, as Go's ``encoding/json`` reports it in errors."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
