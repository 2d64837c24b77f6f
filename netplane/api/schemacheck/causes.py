"""Field errors worded as Kubernetes 1.32 words them, with Go-rendered bad values.

`netplane.api.errors` renders composite values with Python's repr; these
constructors print them the way the API server does (``%#v``), and add the
error types that module lacks (``Too many``, ``Internal error``).
"""

from __future__ import annotations

from typing import Any

from netplane.api.errors import FieldError
from netplane.api.gofmt import error_body_value, quote

# Go prints a nil *field.Path as "<nil>": errors about the whole object carry it.
ROOT = "<nil>"


class Omit:
    """Marks an error whose bad value is not printed at all."""


OMIT = Omit()


def _body(kind: str, value: Any, detail: str) -> str:
    text = kind if isinstance(value, Omit) else f"{kind}: {error_body_value(value)}"
    return f"{text}: {detail}" if detail else text


def invalid(field: str, value: Any, detail: str) -> FieldError:
    return FieldError("FieldValueInvalid", field, _body("Invalid value", value, detail))


def type_invalid(field: str, value: Any, detail: str) -> FieldError:
    return FieldError("FieldValueTypeInvalid", field, _body("Invalid value", value, detail))


def required(field: str, detail: str = "") -> FieldError:
    return FieldError("FieldValueRequired", field, _body("Required value", OMIT, detail))


def forbidden(field: str, detail: str) -> FieldError:
    return FieldError("FieldValueForbidden", field, _body("Forbidden", OMIT, detail))


def duplicate(field: str, value: Any) -> FieldError:
    return FieldError("FieldValueDuplicate", field, _body("Duplicate value", value, ""))


def not_supported(field: str, value: Any, supported: list[str]) -> FieldError:
    detail = "supported values: " + ", ".join(quote(s) for s in supported) if supported else ""
    return FieldError("FieldValueNotSupported", field, _body("Unsupported value", value, detail))


def too_long(field: str, limit: int) -> FieldError:
    detail = f"may not be more than {limit} bytes" if limit >= 0 else "value is too long"
    return FieldError("FieldValueTooLong", field, _body("Too long", OMIT, detail))


def too_many(field: str, actual: int, limit: int) -> FieldError:
    detail = f"must have at most {limit} items" if limit >= 0 else "has too many items"
    value: Any = actual if actual >= 0 else OMIT
    return FieldError("FieldValueTooMany", field, _body("Too many", value, detail))


def internal(field: str, detail: str) -> FieldError:
    return FieldError("InternalError", field, _body("Internal error", OMIT, detail))


def child(path: str, name: str) -> str:
    """``fldPath.Child(name)`` where ``path`` may be the nil root."""
    return name if path in ("", ROOT) else f"{path}.{name}"


def index(path: str, i: int) -> str:
    return f"{'' if path == ROOT else path}[{i}]"


def key(path: str, k: str) -> str:
    return f"{'' if path == ROOT else path}[{k}]"
