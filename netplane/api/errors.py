"""Kubernetes `Status` errors, so that kubectl prints what it prints for a real cluster."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FieldError:
    """One validation failure: a cause of a 422 Invalid answer.

    ``reason`` is Kubernetes' cause type (``FieldValueInvalid``, ``FieldValueRequired``,
    ``FieldValueNotSupported``, ``FieldValueDuplicate``, ``FieldValueForbidden``,
    ``FieldValueTooLong``, ``FieldValueTypeInvalid``); ``message`` is the text kubectl
    prints after ``<field>: ``, e.g. ``Invalid value: 70000: must be between 1 and 65535, inclusive``.
    """

    reason: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


def _render(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def invalid(field: str, value: Any, detail: str) -> FieldError:
    return FieldError("FieldValueInvalid", field, f"Invalid value: {_render(value)}: {detail}")


def required(field: str, detail: str = "") -> FieldError:
    return FieldError("FieldValueRequired", field, "Required value" + (f": {detail}" if detail else ""))


def not_supported(field: str, value: Any, supported: list[str]) -> FieldError:
    options = ", ".join(f'"{s}"' for s in supported)
    return FieldError("FieldValueNotSupported", field,
                      f"Unsupported value: {_render(value)}: supported values: {options}")


def duplicate(field: str, value: Any) -> FieldError:
    return FieldError("FieldValueDuplicate", field, f"Duplicate value: {_render(value)}")


def forbidden(field: str, detail: str) -> FieldError:
    return FieldError("FieldValueForbidden", field, f"Forbidden: {detail}")


def too_long(field: str, value: Any, limit: int) -> FieldError:
    return FieldError("FieldValueTooLong", field,
                      f"Too long: may not be more than {limit} bytes")


def type_invalid(field: str, value: Any, detail: str) -> FieldError:
    return FieldError("FieldValueTypeInvalid", field, f"Invalid value: {_render(value)}: {detail}")


class ApiError(Exception):
    """An error the API answers with a `Status` object."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": self.message, "reason": self.reason, "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


def not_found(group_resource: str, name: str, group: str = "", kind: str = "") -> ApiError:
    return ApiError(404, "NotFound", f'{group_resource} "{name}" not found',
                    {"name": name, "group": group, "kind": kind or group_resource.split(".")[0]})


def already_exists(group_resource: str, name: str, group: str = "") -> ApiError:
    return ApiError(409, "AlreadyExists", f'{group_resource} "{name}" already exists',
                    {"name": name, "group": group, "kind": group_resource.split(".")[0]})


def conflict(group_resource: str, name: str, detail: str) -> ApiError:
    return ApiError(409, "Conflict", f'Operation cannot be fulfilled on {group_resource} "{name}": {detail}',
                    {"name": name, "group": "", "kind": group_resource.split(".")[0]})


def stale(group_resource: str, name: str) -> ApiError:
    return conflict(group_resource, name, "the object has been modified; "
                    "please apply your changes to the latest version and try again")


def unprocessable(kind: str, name: str, group: str, causes: list[FieldError]) -> ApiError:
    """422 Invalid with one cause per field, formatted as the API server does."""
    summary = ", ".join(str(c) for c in causes)
    if len(causes) > 1:
        summary = "[" + summary + "]"
    return ApiError(422, "Invalid", f'{kind} "{name}" is invalid: {summary}', {
        "name": name, "group": group, "kind": kind,
        "causes": [{"reason": c.reason, "message": c.message, "field": c.field} for c in causes],
    })


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def no_route() -> ApiError:
    """404 for a path that names no API, group, version or resource."""
    return ApiError(404, "NotFound", "the server could not find the requested resource")


def method_not_allowed() -> ApiError:
    return ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")


def unsupported_media_type(content_type: str) -> ApiError:
    return ApiError(415, "UnsupportedMediaType",
                    f"the body of the request was in an unknown format - accepted media types include: "
                    f"application/json, application/yaml, application/vnd.kubernetes.protobuf "
                    f"(got {content_type})")


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def too_large() -> ApiError:
    return ApiError(413, "RequestEntityTooLarge", "Request entity too large: limit is 3145728")


def gone(message: str) -> ApiError:
    return ApiError(410, "Expired", message)

