"""Recording core/v1 Events about objects, so `kubectl describe` shows what a controller did.

Repeats of the same event (same object, type, reason and message) are folded into one Event whose
`count` and `lastTimestamp` are bumped, as client-go's recorder does, so a controller that retries
does not flood the namespace. Events are best effort: a failure to write one is logged, never
raised into the reconcile that recorded it.
"""

from __future__ import annotations

import logging
import socket
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from netplane.controllers.kube.client import Client
from netplane.controllers.kube.errors import ApiError, NotFound
from netplane.controllers.kube.resources import EVENTS
from netplane.controllers.runtime.conditions import now_rfc3339

log = logging.getLogger("netplane.events")

Obj = dict[str, Any]
NORMAL, WARNING = "Normal", "Warning"
CACHE_SIZE = 4096


@dataclass
class _Seen:
    name: str
    namespace: str
    count: int


class EventRecorder:
    def __init__(self, client: Client, component: str, host: str | None = None):
        self.client = client
        self.component = component
        self.host = host or socket.gethostname()
        self._seen: OrderedDict[tuple[str, ...], _Seen] = OrderedDict()

    async def event(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        """Record that `reason` happened to `obj` (an object as read from the API)."""
        meta = obj.get("metadata") or {}
        ref = {"apiVersion": obj.get("apiVersion", ""), "kind": obj.get("kind", ""), "name": meta.get("name", ""),
               "uid": meta.get("uid", ""), "resourceVersion": meta.get("resourceVersion", "")}
        if meta.get("namespace"):
            ref["namespace"] = meta["namespace"]
        # Events about cluster-scoped objects live in "default", as kube-controller-manager puts them.
        namespace = str(meta.get("namespace") or "default")
        key = (ref["kind"], namespace, ref["name"], ref["uid"], type_, reason, message)
        now = now_rfc3339()
        try:
            seen = self._seen.get(key)
            if seen is not None:
                try:
                    await self.client.patch(EVENTS, seen.name, {"count": seen.count + 1, "lastTimestamp": now},
                                            seen.namespace)
                    seen.count += 1
                    self._seen.move_to_end(key)
                    return
                except NotFound:
                    del self._seen[key]
            body = {
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": f"{ref['name']}.{time.time_ns():x}", "namespace": namespace},
                "involvedObject": ref, "type": type_, "reason": reason, "message": message,
                "source": {"component": self.component, "host": self.host},
                "reportingComponent": self.component, "reportingInstance": self.host,
                "firstTimestamp": now, "lastTimestamp": now, "count": 1,
            }
            created = await self.client.create(EVENTS, body, namespace)
            self._seen[key] = _Seen(created["metadata"]["name"], namespace, 1)
            if len(self._seen) > CACHE_SIZE:
                self._seen.popitem(last=False)
        except (ApiError, OSError, TimeoutError) as e:
            log.warning("could not record event %s on %s %s: %s", reason, ref["kind"], ref["name"], e)

    async def normal(self, obj: Obj, reason: str, message: str) -> None:
        await self.event(obj, NORMAL, reason, message)

    async def warning(self, obj: Obj, reason: str, message: str) -> None:
        await self.event(obj, WARNING, reason, message)
