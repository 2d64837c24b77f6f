"""The scheduler: binds each Pending pod without `spec.nodeName` to a node (`netplane.scheduling` decides).

    pods/nodes informers ──▶ one worker (decisions in order) ──▶ place() ──▶ bind │ or PodScheduled=False
                                                                                  └ + FailedScheduling Event

Binding is a PATCH of `spec.nodeName` guarded by the pod's resourceVersion: this API server
serves no `pods/binding` subresource. Then the pod's PodScheduled condition is set True and a
`Scheduled` Event recorded, as kube-scheduler does. A pod that fits nowhere stays Pending with
PodScheduled=False, reason Unschedulable and kube-scheduler's message, and is tried again
whenever a node changes.

Bindings are *assumed* until the pod cache shows them (kube-scheduler's assume cache): without
that, three replicas scheduled back to back would all see the same empty nodes and pile onto one.
Only pods with schedulerName `default-scheduler` (the default) are ours.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from netplane.controllers.kube.errors import Conflict, NotFound
from netplane.controllers.runtime.cache import object_key
from netplane.controllers.runtime.conditions import now_rfc3339
from netplane.controllers.runtime.controller import Result
from netplane.controllers.runtime.events import EventRecorder
from netplane.controllers.runtime.informer import Informer
from netplane.controllers.runtime.manager import Manager
from netplane.controllers.workloads.kinds import NODES, PODS
from netplane.controllers.workloads.pods import controller_ref, meta, terminating
from netplane.scheduling.placement import Load, place

log = logging.getLogger("netplane.scheduler")

Obj = dict[str, Any]

SCHEDULER_NAME = "default-scheduler"


def wants_scheduling(pod: Obj) -> bool:
    spec = pod.get("spec") or {}
    return (not spec.get("nodeName") and not terminating(pod)
            and (spec.get("schedulerName") or SCHEDULER_NAME) == SCHEDULER_NAME
            and (pod.get("status") or {}).get("phase", "Pending") == "Pending")


def _scheduled_condition(pod: Obj) -> Obj | None:
    return next((c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") == "PodScheduled"),
                None)


class Scheduler:
    def __init__(self, mgr: Manager, pods: Informer, nodes: Informer, recorder: EventRecorder):
        self.client = mgr.client
        self.pods = pods
        self.nodes = nodes
        self.recorder = recorder
        self.assumed: dict[str, tuple[str, str]] = {}  # pod key → (uid, node) bound but not yet in the cache

    def loads(self, owner_uid: str | None) -> dict[str, Load]:
        pods: dict[str, int] = {}
        siblings: dict[str, int] = {}
        for pod in self.pods.cache:
            key = object_key(pod)
            node = (pod.get("spec") or {}).get("nodeName") or self._assumed_node(key, pod)
            if not node or terminating(pod) or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                continue
            pods[node] = pods.get(node, 0) + 1
            if owner_uid and (controller_ref(pod) or {}).get("uid") == owner_uid:
                siblings[node] = siblings.get(node, 0) + 1
        return {n: Load(pods.get(n, 0), siblings.get(n, 0)) for n in pods}

    def _assumed_node(self, key: str, pod: Obj) -> str | None:
        assumed = self.assumed.get(key)
        return assumed[1] if assumed is not None and assumed[0] == meta(pod).get("uid") else None

    async def reconcile(self, key: str) -> Result:
        pod = self.pods.cache.get(key)
        if pod is None or not wants_scheduling(pod):
            self.assumed.pop(key, None)
            return Result()
        if self._assumed_node(key, pod):
            return Result()  # bound already; the cache will catch up
        owner = controller_ref(pod)
        placement = place(pod.get("spec") or {}, list(self.nodes.cache), self.loads((owner or {}).get("uid")))
        if placement.node is None:
            await self._unschedulable(pod, placement.message)
            return Result()
        await self._bind(pod, placement.node)
        return Result()

    async def _bind(self, pod: Obj, node: str) -> None:
        name, namespace = meta(pod)["name"], meta(pod)["namespace"]
        try:
            await self.client.patch(PODS, name, {"metadata": {"resourceVersion": meta(pod).get("resourceVersion")},
                                                 "spec": {"nodeName": node}}, namespace)
        except NotFound:
            return
        self.assumed[object_key(pod)] = (str(meta(pod).get("uid")), node)
        condition = {"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                     "lastTransitionTime": now_rfc3339()}
        with contextlib.suppress(NotFound, Conflict):
            await self.client.patch(PODS, name, {"status": {"conditions": [condition]}}, namespace,
                                    patch_type="strategic", subresource="status")
        log.info("bound %s/%s to %s", namespace, name, node)
        await self.recorder.normal(pod, "Scheduled", f"Successfully assigned {namespace}/{name} to {node}")

    async def _unschedulable(self, pod: Obj, message: str) -> None:
        name, namespace = meta(pod)["name"], meta(pod)["namespace"]
        current = _scheduled_condition(pod) or {}
        if (current.get("status"), current.get("reason"), current.get("message")) != ("False", "Unschedulable",
                                                                                      message):
            transition = current.get("lastTransitionTime") if current.get("status") == "False" else None
            condition = {"type": "PodScheduled", "status": "False", "lastProbeTime": None,
                         "lastTransitionTime": transition or now_rfc3339(), "reason": "Unschedulable",
                         "message": message}
            with contextlib.suppress(NotFound):
                await self.client.patch(PODS, name, {"status": {"conditions": [condition]}}, namespace,
                                        patch_type="strategic", subresource="status")
            # Only when the verdict changes: our own status write brings the pod back here at once.
            await self.recorder.warning(pod, "FailedScheduling", message)


def setup(mgr: Manager) -> None:
    pods = mgr.informer(PODS)
    nodes = mgr.informer(NODES)
    scheduler = Scheduler(mgr, pods, nodes, mgr.recorder)
    # One worker: each decision sees the bindings made before it, so replicas spread.
    controller = mgr.controller("scheduler", scheduler.reconcile, workers=1)
    controller.watch(pods)

    def unscheduled(_node: Obj) -> list[str]:
        # A node came, went or changed: every waiting pod may fit now (or must look elsewhere).
        return [object_key(p) for p in pods.cache if wants_scheduling(p)]

    controller.watch(nodes, unscheduled)
