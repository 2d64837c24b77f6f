"""The error every patch function raises.

Messages mirror the text the Kubernetes API server produces (it formats values
with Go's ``%v``, see :mod:`netplane.api.gofmt`), so that kubectl users see the
familiar wording.
"""

from __future__ import annotations

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

