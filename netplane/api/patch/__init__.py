"""The PATCH request bodies of the Kubernetes API, applied as pure functions.

Every function returns a new object and leaves its arguments untouched; a patch
that cannot be applied raises :class:`PatchError`, whose ``code`` is the HTTP
status to answer with.
"""

from __future__ import annotations

from typing import Any

from netplane.api.patch.errors import PatchError
from netplane.api.patch.json_patch import apply_json_patch
from netplane.api.patch.merge import apply_merge_patch
from netplane.api.patch.strategic import apply_strategic_merge_patch

__all__ = [
    "APPLY_PATCH",
    "JSON_PATCH",
    "MERGE_PATCH",
    "STRATEGIC_MERGE_PATCH",
    "PatchError",
    "apply_json_patch",
    "apply_merge_patch",
    "apply_patch",
    "apply_strategic_merge_patch",
    "patch_types",
]

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


def patch_types(strategic: bool) -> list[str]:
    """The patch media types this package applies, for the 415 answer and for discovery."""
    types = [JSON_PATCH, MERGE_PATCH]
    return [*types, STRATEGIC_MERGE_PATCH] if strategic else types


def apply_patch(content_type: str, original: dict[str, Any], body: object,
                schema: dict[str, Any] | None) -> dict[str, Any]:
    """Apply ``body`` to ``original`` the way its ``Content-Type`` says.

    ``schema`` is the kind's JSON schema; ``None`` (custom resources, say) means
    strategic merge patch cannot be applied, as in Kubernetes.
    """
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == JSON_PATCH:
        return apply_json_patch(original, body)
    if media_type == MERGE_PATCH:
        return apply_merge_patch(original, body)
    if media_type == STRATEGIC_MERGE_PATCH:
        if schema is None:
            raise PatchError("strategic merge patch format is not supported for this kind", 415)
        if not isinstance(body, dict):
            raise PatchError("invalid JSON document", 400)
        return apply_strategic_merge_patch(original, body, schema)
    accepted = ", ".join(patch_types(schema is not None))
    raise PatchError("the body of the request was in an unknown format - "
                     f"accepted media types include: {accepted}", 415)
