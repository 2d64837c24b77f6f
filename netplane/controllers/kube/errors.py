"""Typed API errors, decoded from the `Status` body the API server answers a failure with.

Callers branch on the class (``except NotFound``) rather than on HTTP codes; the reason
decides first because 409 means both `AlreadyExists` and `Conflict`.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A request the API server refused; `status` is its Status object (synthesised if it sent none)."""

    code = 0
    reason = ""

    def __init__(self, status: dict[str, Any]):
        self.status = status
        self.code = int(status.get("code") or type(self).code)
        self.reason = str(status.get("reason") or type(self).reason)
        self.message = str(status.get("message") or "")
        super().__init__(f"{self.code} {self.reason}: {self.message}")

    @property
    def details(self) -> dict[str, Any]:
        details: dict[str, Any] = self.status.get("details") or {}
        return details


class BadRequest(ApiError):
    code, reason = 400, "BadRequest"


class Unauthorized(ApiError):
    code, reason = 401, "Unauthorized"


class Forbidden(ApiError):
    code, reason = 403, "Forbidden"


class NotFound(ApiError):
    code, reason = 404, "NotFound"


class MethodNotAllowed(ApiError):
    code, reason = 405, "MethodNotAllowed"


class AlreadyExists(ApiError):
    code, reason = 409, "AlreadyExists"


class Conflict(ApiError):
    """The object changed since it was read (resourceVersion precondition failed)."""

    code, reason = 409, "Conflict"


class Expired(ApiError):
    """410 Gone: the resourceVersion (or continue token) is older than the server still has."""

    code, reason = 410, "Expired"


class Invalid(ApiError):
    code, reason = 422, "Invalid"


class TooManyRequests(ApiError):
    code, reason = 429, "TooManyRequests"


class ServerTimeout(ApiError):
    code, reason = 504, "Timeout"


Gone = Expired

_TYPED: tuple[type[ApiError], ...] = (
    BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, AlreadyExists, Conflict, Expired, Invalid,
    TooManyRequests, ServerTimeout,
)
# Each class under its own reason, plus the names older servers and clients use for two of them.
_BY_REASON: dict[str, type[ApiError]] = {cls.reason: cls for cls in _TYPED} | {
    "Gone": Expired, "ServerTimeout": ServerTimeout,
}
# 409 alone cannot tell AlreadyExists from Conflict; a Status without a reason is taken as a Conflict.
_BY_CODE: dict[int, type[ApiError]] = {cls.code: cls for cls in _TYPED if cls is not AlreadyExists}


def error_from_status(code: int, body: Any) -> ApiError:
    """The typed error for an HTTP failure whose body may or may not be a Status."""
    if isinstance(body, dict) and body.get("kind") == "Status":
        status = body
    else:
        status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
                  "message": body if isinstance(body, str) else ""}
    status_code = int(status.get("code") or code)
    cls = _BY_REASON.get(str(status.get("reason") or "")) or _BY_CODE.get(status_code, ApiError)
    status.setdefault("code", status_code)
    return cls(status)
