"""JSON patch (RFC 6902), the ``application/json-patch+json`` patch type.

The operations themselves are applied by the ``jsonpatch`` library; this module
checks the document's shape first and translates failures into the messages of
the Go library (evanphx/json-patch) the Kubernetes API server uses.
"""

from __future__ import annotations

from typing import Any

import jsonpatch
import jsonpointer

from netplane.api.gofmt import format_v, json_kind
from netplane.api.patch._values import clone
from netplane.api.patch.errors import PatchError

# The API server refuses larger patches outright, to bound the work one request can cause.
MAX_OPERATIONS = 10000

_KINDS = frozenset({"add", "remove", "replace", "move", "copy", "test"})
_NEEDS_VALUE = frozenset({"add", "replace", "test"})
_NEEDS_FROM = frozenset({"move", "copy"})
_MISSING = object()


def apply_json_patch(original: dict[str, Any], ops: object) -> dict[str, Any]:
    """Return ``original`` with the JSON patch operations applied; neither input is changed."""
    if not isinstance(original, dict):
        raise PatchError("Invalid JSON Document", 400)
    operations = _decode(ops)
    doc: Any = clone(original)
    for op in operations:
        doc = _apply_one(doc, op)
    if not isinstance(doc, dict):
        raise PatchError(f"json: cannot unmarshal {json_kind(doc)} into Go value of type "
                         "map[string]interface {}", 422)
    return doc


def _decode(ops: object) -> list[dict[str, Any]]:
    """Check the patch is a list of operation objects, as decoding it in Go would."""
    if not isinstance(ops, list):
        raise PatchError(f"json: cannot unmarshal {json_kind(ops)} into Go value of type "
                         "jsonpatch.Patch", 400)
    for op in ops:
        if not isinstance(op, dict):
            raise PatchError(f"json: cannot unmarshal {json_kind(op)} into Go value of type "
                             "map[string]*json.RawMessage", 400)
    if len(ops) > MAX_OPERATIONS:
        raise PatchError(f"The allowed maximum operations in a JSON patch is {MAX_OPERATIONS}, "
                         f"got {len(ops)}", 413)
    return ops


def _apply_one(doc: Any, op: dict[str, Any]) -> Any:
    kind = op.get("op", "unknown")
    if kind not in _KINDS:
        raise PatchError(f"Unexpected kind: {format_v(kind)}")
    _check_members(kind, op)
    try:
        # atomic: a failed operation (a move half done, say) must not leave the document changed,
        # because the failure is described by looking at the document afterwards.
        return jsonpatch.JsonPatch([op]).apply(doc, in_place=True, atomic=True)
    except jsonpatch.JsonPatchTestFailed:
        raise PatchError(_test_failure(doc, op["path"])) from None
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException, KeyError, IndexError,
            TypeError) as exc:
        raise PatchError(_failure(doc, kind, op, exc)) from None


def _check_members(kind: str, op: dict[str, Any]) -> None:
    if not isinstance(op.get("path"), str):
        raise PatchError(f"{kind} operation failed to decode path: missing value")
    if kind in _NEEDS_VALUE and "value" not in op:
        raise PatchError(f"{kind} operation failed to decode value: missing value")
    if kind in _NEEDS_FROM and not isinstance(op.get("from"), str):
        raise PatchError(f"{kind} operation failed to decode from: missing value")


def _failure(doc: Any, kind: str, op: dict[str, Any], exc: Exception) -> str:
    path: str = op["path"]
    if kind in _NEEDS_FROM and _lookup(doc, op["from"]) is _MISSING:
        return f"{kind} operation does not apply: doc is missing from path: {op['from']}: missing value"
    parent, last = _parent(doc, path)
    if kind in _NEEDS_FROM:
        if parent is _MISSING:
            return f"{kind} operation does not apply: doc is missing destination path: {path}: missing value"
        return f"error in {kind} for path: '{path}': {exc}"
    if parent is _MISSING:
        quoted = path if kind == "replace" else f'"{path}"'
        return f"{kind} operation does not apply: doc is missing path: {quoted}: missing value"
    if isinstance(parent, list):
        return (f"error in {kind} for path: '{path}': "
                f"Unable to access invalid index: {last}: invalid index referenced")
    if kind == "replace":
        return f"replace operation does not apply: doc is missing key: {path}: missing value"
    if kind == "remove":
        return f"error in remove for path: '{path}': Unable to remove nonexistent key: {last}: missing value"
    return f"error in {kind} for path: '{path}': {exc}"


def _test_failure(doc: Any, path: str) -> str:
    parent, _ = _parent(doc, path)
    if parent is _MISSING:
        return f"test operation does not apply: is missing path: {path}: missing value"
    return f"testing value {path} failed: test failed"


def _parent(doc: Any, path: str) -> tuple[Any, str]:
    """The container ``path`` points into (``_MISSING`` if there is none) and the last token."""
    parts = _parts(path)
    if not parts:
        return _MISSING, ""
    parent = _walk(doc, parts[:-1])
    return (parent if isinstance(parent, dict | list) else _MISSING), parts[-1]


def _lookup(doc: Any, path: str) -> Any:
    parts = _parts(path)
    return _MISSING if parts is None else _walk(doc, parts)


def _parts(path: str) -> list[str] | None:
    try:
        return list(jsonpointer.JsonPointer(path).parts)
    except jsonpointer.JsonPointerException:
        return None


def _walk(doc: Any, parts: list[str]) -> Any:
    for part in parts:
        if isinstance(doc, dict) and part in doc:
            doc = doc[part]
        elif isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        else:
            return _MISSING
    return doc
