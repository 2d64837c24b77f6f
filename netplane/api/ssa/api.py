"""Server-side apply and managedFields for the API's write paths (the impure edge of `ssa`).

`record_write` runs on every create and update (patches included): the writer's
`Update` entry takes the fields it changed. `apply_config` serves
``application/apply-patch+yaml``. Both leave the result in ``metadata.managedFields``.
"""

from __future__ import annotations

import time
import unicodedata
from typing import Any

import orjson

from netplane.api.errors import ApiError
from netplane.api.objects import now
from netplane.api.resources import ResourceType
from netplane.api.ssa import managed as mf
from netplane.api.ssa import ops
from netplane.api.ssa.fieldpath import FieldSet
from netplane.api.ssa.schema import Type, builtin_type, custom_type
from netplane.api.ssa.skeleton import skeleton
from netplane.api.ssa.walk import field_set

Obj = dict[str, Any]

MAX_MANAGER_LENGTH = 128
# Kubernetes' writes from internal components carry their user agent; netplane's own
# in-process writers (namespace finalization, garbage collection) have none.
INTERNAL_MANAGER = "netplane"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

_STATUS_ONLY = FieldSet.of(("f:status",))


def type_of(rt: ResourceType) -> Type:
    if rt.builtin:
        t = builtin_type(rt.group, rt.version, rt.kind)
        if t is not None:
            return t
        return custom_type(None)
    return custom_type((rt.crd_version or {}).get("schema", {}).get("openAPIV3Schema"))


def ignored(rt: ResourceType, subresource: str) -> FieldSet:
    """What a write through this endpoint never owns: the other side of the status split."""
    if subresource == "status":
        return FieldSet.of(("f:spec",), ("f:metadata",))
    if rt.has_status and not subresource:
        return _STATUS_ONLY
    return FieldSet()


def manager_name(field_manager: str, user_agent: str) -> str:
    """The fieldManager, else — as Kubernetes does — the user agent's product name
    (``kubectl/v1.32.0 (linux/amd64)...`` -> ``kubectl``), printable and at most 128 bytes."""
    if field_manager:
        return field_manager
    if not user_agent:
        return INTERNAL_MANAGER
    out = ""
    for ch in user_agent.split("/", 1)[0]:
        if not ch.isprintable():
            continue
        if len((out + ch).encode()) > MAX_MANAGER_LENGTH:
            break
        out += ch
    return out


def check_field_manager(field_manager: str, options_kind: str, apply: bool = False) -> None:
    """Kubernetes' validation of the fieldManager parameter (422 on ``<kind>Options``)."""
    causes = []
    if apply and not field_manager:
        causes.append({"reason": "FieldValueRequired", "field": "fieldManager",
                       "message": "Required value: is required for apply patch"})
    if len(field_manager) > MAX_MANAGER_LENGTH:
        causes.append({"reason": "FieldValueTooLong", "field": "fieldManager",
                       "message": f"Too long: may not be more than {MAX_MANAGER_LENGTH} bytes"})
    elif any(unicodedata.category(c).startswith("C") for c in field_manager):
        causes.append({"reason": "FieldValueInvalid", "field": "fieldManager",
                       "message": f'Invalid value: "{field_manager}": invalid characters'})
    if causes:
        summary = ", ".join(f"{c['field']}: {c['message']}" for c in causes)
        raise ApiError(422, "Invalid", f'{options_kind}.meta.k8s.io "" is invalid: '
                       + (f"[{summary}]" if len(causes) > 1 else summary),
                       {"group": "meta.k8s.io", "kind": options_kind, "causes": causes})


_clock: tuple[int, str] = (0, "")


def _now() -> str:
    """`objects.now()`, formatted once a second rather than on every write."""
    global _clock
    second = int(time.time())
    if _clock[0] != second:
        _clock = (second, now())
    return _clock[1]


def _without_managed(obj: Obj) -> Obj:
    """A shallow view of ``obj`` without metadata.managedFields (for comparing)."""
    m = obj.get("metadata")
    if not isinstance(m, dict) or "managedFields" not in m:
        return obj
    return {**obj, "metadata": {k: v for k, v in m.items() if k != "managedFields"}}


def _decode_or_empty(raw: Any) -> mf.Managed:
    try:
        return mf.decode(raw)
    except ValueError:
        return {}


def _starting_entries(old: Obj | None, new: Obj, subresource: str) -> mf.Managed:
    """The entries a write starts from: the request's own, if it sets valid ones (clients
    may edit managedFields, and ``[{}]`` clears them), else the stored object's — so a client
    unaware of managedFields cannot drop them. Subresource writes always use the stored ones."""
    stored = (old or {}).get("metadata", {}).get("managedFields")
    if subresource:
        return _decode_or_empty(stored)
    requested = new.get("metadata", {}).get("managedFields")
    if mf.is_reset(requested):
        return {}
    try:
        entries = mf.decode(requested)
    except ValueError:
        entries = {}
    return entries or _decode_or_empty(stored)


def record_write(rt: ResourceType, old: Obj | None, new: Obj, manager: str, subresource: str = "") -> None:
    """Set ``new``'s managedFields after ``manager`` writes it over ``old`` (None: a create)."""
    entries = _starting_entries(old, new, subresource)
    before = _without_managed(old) if old is not None else skeleton(rt.group, rt.kind, rt.builtin)
    result = ops.update(before, _without_managed(new), manager, entries, type_of(rt), rt.api_version, _now(),
                        subresource, ignored(rt, subresource))
    _store(new, result)


def _store(obj: Obj, entries: mf.Managed) -> None:
    encoded = mf.encode(entries)
    m = obj.setdefault("metadata", {})
    if encoded:
        m["managedFields"] = encoded
    else:
        m.pop("managedFields", None)


def apply_config(rt: ResourceType, live: Obj | None, config: Obj, manager: str, force: bool,
                 subresource: str = "") -> Obj:
    """The object after ``manager`` applies ``config`` to ``live`` (None: absent, created
    from nothing). Raises 409 Conflict with one cause per conflicting field."""
    if config.get("metadata", {}).get("managedFields") is not None:
        raise ApiError(400, "BadRequest", "metadata.managedFields must be nil")
    t = type_of(rt)
    entries = _decode_or_empty((live or {}).get("metadata", {}).get("managedFields"))
    base = _without_managed(live) if live is not None else {}
    stamp = _now()
    if live is not None and not entries:
        # An object no manager owns yet (created before tracking, or with its entries
        # cleared): its current fields become someone's, so the apply can conflict with them.
        entries = ops.update(skeleton(rt.group, rt.kind, rt.builtin), base, ops.BEFORE_FIRST_APPLY, {}, t,
                             rt.api_version, stamp, subresource, ignored(rt, subresource))
    try:
        merged, result = ops.apply(base, config, manager, entries, t, force, rt.api_version, stamp,
                                   subresource, ignored(rt, subresource), _allowed_conflicts(manager, live, t))
    except ops.Conflicts as e:
        raise ApiError(409, "Conflict", e.message(), {"causes": e.causes()}) from None
    merged = orjson.loads(orjson.dumps(merged))  # the write paths modify what they are given
    _store(merged, result)
    return merged


def _allowed_conflicts(manager: str, live: Obj | None, t: Type) -> FieldSet | None:
    """kubectl moving an object from client-side to server-side apply: the fields of its
    last client-side applied configuration are its own, so conflicts on them are forced
    (Kubernetes does this for the manager ``kubectl`` only)."""
    if manager != "kubectl" or live is None:
        return None
    annotation = (live.get("metadata", {}).get("annotations") or {}).get(LAST_APPLIED)
    if not isinstance(annotation, str):
        return None
    try:
        last = orjson.loads(annotation)
    except orjson.JSONDecodeError:
        return None
    return field_set(last, t) if isinstance(last, dict) else None
