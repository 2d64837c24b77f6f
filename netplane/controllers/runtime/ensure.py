"""Writing a controller's desired objects only when the stored ones differ (level-triggered layouts).

"Differ" means the stored object does not already hold everything the desired one says: fields
the API server defaulted or other writers added do not count, so a reconcile after a no-op
writes nothing (and raises no watch event that would bring it back). A write is a server-side
apply with the controller's field manager, forced: these objects are the controller's to own.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from netplane.controllers.kube.client import Client
from netplane.controllers.kube.errors import ApiError, NotFound
from netplane.controllers.kube.resources import Resource
from netplane.controllers.runtime.conditions import set_condition
from netplane.controllers.runtime.controller import Result

log = logging.getLogger("netplane.ensure")

Obj = dict[str, Any]


def covers(stored: Any, desired: Any) -> bool:
    """Whether `stored` already holds everything `desired` says (extra stored fields are defaults)."""
    if isinstance(desired, dict):
        return isinstance(stored, dict) and all(covers(stored.get(k), v) for k, v in desired.items())
    if isinstance(desired, list):
        return (isinstance(stored, list) and len(stored) == len(desired)
                and all(covers(s, d) for s, d in zip(stored, desired, strict=True)))
    return bool(stored == desired)


async def ensure(client: Client, res: Resource, obj: Obj, field_manager: str) -> bool:
    """Apply `obj` unless the stored object covers it; True when something was written."""
    meta = obj["metadata"]
    try:
        if covers(await client.get(res, meta["name"], meta.get("namespace")), obj):
            return False
    except NotFound:
        pass
    await client.patch(res, meta["name"], obj, meta.get("namespace"), patch_type="apply",
                       field_manager=field_manager, force=True)
    return True


async def remove(client: Client, res: Resource, obj: Obj) -> None:
    meta = obj["metadata"]
    with contextlib.suppress(NotFound):
        await client.delete(res, meta["name"], meta.get("namespace"), propagation_policy="Background")


async def write_ready_status(client: Client, res: Resource, obj: Obj, ready: bool, reason: str, message: str,
                             fields: Obj) -> Result:
    """Set `obj`'s Ready condition and the other status `fields`, writing only when something changed.
    A write that fails (typically a conflict with a newer version) is retried through a requeue."""
    status = dict(obj.get("status") or {})
    conditions = [dict(c) for c in status.get("conditions") or []]
    changed = set_condition(conditions, "Ready", "True" if ready else "False", reason, message,
                            obj["metadata"].get("generation"))
    wanted = {**status, **fields, "conditions": conditions}
    if not changed and wanted == status:
        return Result()
    try:
        await client.update_status(res, {**obj, "status": wanted})
    except ApiError as e:
        log.debug("%s %s: status not written: %s", res.kind, obj["metadata"]["name"], e)
        return Result(requeue=True)
    return Result()
