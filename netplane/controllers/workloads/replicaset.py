"""The ReplicaSet controller: keep `spec.replicas` pods from the template alive, and report them.

Pods are created with generateName `<replicaset>-` and a controller reference; on scale-down the
most deletable go first (see `pods.deletion_order`). Status counts Ready pods, and pods Ready for
minReadySeconds as available; the controller looks again when a pod is due to become available.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime as dt
import logging
from typing import Any

from netplane.controllers.kube.errors import ApiError, NotFound
from netplane.controllers.runtime.cache import NAMESPACE_INDEX, object_key
from netplane.controllers.runtime.controller import Result
from netplane.controllers.runtime.events import EventRecorder
from netplane.controllers.runtime.informer import Informer
from netplane.controllers.runtime.manager import Manager
from netplane.controllers.workloads import replicas
from netplane.controllers.workloads.expectations import Expectations
from netplane.controllers.workloads.kinds import PODS, REPLICASETS
from netplane.controllers.workloads.owned import claim, controlled_by
from netplane.controllers.workloads.pods import meta, terminating
from netplane.controllers.workloads.templates import pod_for

log = logging.getLogger("netplane.replicaset")

Obj = dict[str, Any]


class ReplicaSets:
    def __init__(self, mgr: Manager, sets: Informer, pods: Informer, recorder: EventRecorder):
        self.client = mgr.client
        self.sets = sets
        self.pods = pods
        self.recorder = recorder
        self.expectations = Expectations()

    async def reconcile(self, key: str) -> Result:
        cached = self.sets.cache.get(key)
        if cached is None:
            self.expectations.forget(key)
            return Result()
        rs = copy.deepcopy(cached)
        spec = rs.get("spec") or {}
        namespace = meta(rs)["namespace"]
        pods = await claim(self.client, PODS, rs, controlled_by(self.pods.cache, rs),
                           self.pods.cache.by_index(NAMESPACE_INDEX, namespace), spec.get("selector"))
        failure: str | None = None
        if not terminating(rs) and self.expectations.satisfied(key, self.pods.cache.__contains__):
            failure = await self._resize(key, rs, int(spec.get("replicas") or 0), pods)
        now = dt.datetime.now(dt.UTC)
        counts = replicas.count(pods, ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {},
                                int(spec.get("minReadySeconds") or 0), now)
        await self._write_status(rs, counts, failure)
        if counts.recheck_after is not None:
            return Result(requeue_after=counts.recheck_after + 0.05)
        return Result()

    async def _resize(self, key: str, rs: Obj, desired: int, pods: list[Obj]) -> str | None:
        """Create or delete pods; the message of a failed creation, for the ReplicaFailure condition."""
        plan = replicas.plan(desired, pods)
        namespace = meta(rs)["namespace"]
        for batch in replicas.slow_start_batches(plan.create):
            results = await asyncio.gather(*(self._create(rs) for _ in range(batch)), return_exceptions=True)
            created = [r for r in results if isinstance(r, dict)]
            self.expectations.expect(key, creates=[object_key(p) for p in created])
            errors = [r for r in results if isinstance(r, BaseException)]
            if errors:
                error = errors[0]
                if not isinstance(error, ApiError):
                    raise error
                await self.recorder.warning(rs, "FailedCreate", f"Error creating: {error}")
                return str(error)
        if plan.delete:
            self.expectations.expect(key, deletes=[object_key(p) for p in plan.delete])
            for pod in plan.delete:
                with contextlib.suppress(NotFound):
                    await self.client.delete(PODS, meta(pod)["name"], namespace, uid=meta(pod).get("uid"))
                    await self.recorder.normal(rs, "SuccessfulDelete", f"Deleted pod: {meta(pod)['name']}")
        return None

    async def _create(self, rs: Obj) -> Obj:
        template = (rs.get("spec") or {}).get("template") or {}
        created = await self.client.create(PODS, pod_for(rs, template))
        await self.recorder.normal(rs, "SuccessfulCreate", f"Created pod: {meta(created)['name']}")
        return created

    async def _write_status(self, rs: Obj, counts: replicas.Counts, failure: str | None) -> None:
        previous = rs.get("status") or {}
        status: Obj = {"replicas": counts.replicas, "fullyLabeledReplicas": counts.fully_labeled,
                       "readyReplicas": counts.ready, "availableReplicas": counts.available,
                       "observedGeneration": meta(rs).get("generation", 0)}
        status = {k: v for k, v in status.items() if v or k in ("replicas", "observedGeneration")}
        conditions = [c for c in previous.get("conditions") or [] if c.get("type") != "ReplicaFailure"]
        old_failure = next((c for c in previous.get("conditions") or [] if c.get("type") == "ReplicaFailure"), None)
        if failure is not None:
            stamp = (old_failure or {}).get("lastTransitionTime") or dt.datetime.now(dt.UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ")
            conditions.append({"type": "ReplicaFailure", "status": "True", "lastTransitionTime": stamp,
                               "reason": "FailedCreate", "message": failure})
        if conditions:
            status["conditions"] = conditions
        if status == previous:
            return
        rs["status"] = status
        with contextlib.suppress(NotFound):
            await self.client.update_status(REPLICASETS, rs)

