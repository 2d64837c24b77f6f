"""The node lifecycle controller, with its taint-based eviction (the rules: `netplane.scheduling.lifecycle`).

    nodes ───────────────────────────────┐
    pods on sick or NoExecute-tainted nodes ─▶ one key per node ─▶ reconcile(node):
        heartbeat stale? ─▶ Ready=Unknown (NodeNotReady Event)
        Ready's taints   ─▶ not-ready / unreachable NoSchedule + NoExecute, or none
        node not Ready   ─▶ its pods' Ready=False (NodeNotReady Event on each)
        NoExecute taints ─▶ pods not tolerating them deleted now, tolerating with seconds later
                            (TaintManagerEviction Event, DisruptionTarget condition)
        requeued for the moment the heartbeat goes stale or the next eviction falls due

Every write is guarded by the resourceVersion it was computed from: an agent that posts a heartbeat
meanwhile wins, and the key is looked at again with the node's own status. Evictions are ordinary
deletions (graceful: the pod stays Terminating until its agent, once back, stops it), as Kubernetes'
taint manager does; PodDisruptionBudgets do not hold them back.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from netplane.controllers.kube.errors import Conflict, NotFound
from netplane.controllers.runtime.controller import Result
from netplane.controllers.runtime.events import EventRecorder
from netplane.controllers.runtime.informer import Informer
from netplane.controllers.runtime.manager import Manager
from netplane.controllers.workloads.kinds import NODES, PODS
from netplane.controllers.workloads.pods import meta, terminating
from netplane.scheduling import lifecycle
from netplane.scheduling.matching import NO_EXECUTE

log = logging.getLogger("netplane.nodelifecycle")

Obj = dict[str, Any]

NODE_INDEX = "spec.nodeName"


def _node_of(pod: Obj) -> list[str]:
    node = (pod.get("spec") or {}).get("nodeName")
    return [str(node)] if node else []


def _taints(node: Obj) -> list[Obj]:
    return list((node.get("spec") or {}).get("taints") or [])


class NodeLifecycle:
    def __init__(self, mgr: Manager, nodes: Informer, pods: Informer, grace_period: float,
                 clock: Callable[[], float] = time.time):
        self.client = mgr.client
        self.nodes = nodes
        self.pods = pods
        self.grace_period = grace_period
        self.clock = clock
        # Kubernetes' components: `kubectl describe` shows who did it.
        self.node_events = EventRecorder(mgr.client, "node-controller")
        self.eviction_events = EventRecorder(mgr.client, "taint-eviction-controller")
        self.watched_since: dict[str, float] = {}  # node → when this term first saw it

    def needs_pod_events(self, pod: Obj) -> list[str]:
        """Pods only matter on nodes that are not Ready or carry NoExecute taints; elsewhere their many
        status updates would only wake the node's key for nothing."""
        keys = []
        for name in _node_of(pod):
            node = self.nodes.cache.get(name)
            if node is not None and (lifecycle.ready_status(node) in ("False", "Unknown")
                                     or any(t.get("effect") == NO_EXECUTE for t in _taints(node))):
                keys.append(name)
        return keys

    async def reconcile(self, name: str) -> Result:
        node = self.nodes.cache.get(name)
        if node is None:
            self.watched_since.pop(name, None)
            return Result()  # its pods are the pod garbage collector's business, not ours
        now = self.clock()
        health = lifecycle.check_heartbeat(node, now, self.watched_since.setdefault(name, now), self.grace_period)
        if health.conditions is not None:
            node = await self._write_conditions(node, health.conditions)
        taints = lifecycle.condition_taints(node, now)
        if taints != _taints(node):
            node = await self.client.update(NODES, {**node, "spec": {**(node.get("spec") or {}), "taints": taints}})
            log.info("node %s: taints now %s", name, ", ".join(f"{t['key']}:{t['effect']}" for t in taints) or "none")
        pods = self.pods.cache.by_index(NODE_INDEX, name)
        for pod in pods:
            if lifecycle.must_mark_not_ready(node, pod):
                await self._mark_not_ready(pod)
        due = [health.stale_in]
        for pod in pods:
            if terminating(pod):
                continue
            delay = lifecycle.eviction_delay(pod, _taints(node), now)
            if delay == 0:
                await self._evict(pod)
            due.append(delay)
        waits = [d for d in due if d]
        return Result(requeue_after=min(waits)) if waits else Result()

    async def _write_conditions(self, node: Obj, conditions: list[Obj]) -> Obj:
        was_ready = lifecycle.ready_status(node) == "True"
        written = await self.client.update_status(NODES, {**node, "status": {**(node.get("status") or {}),
                                                                              "conditions": conditions}})
        name = meta(node)["name"]
        log.warning("node %s: no heartbeat for %.0fs; its status is now Unknown", name, self.grace_period)
        if was_ready:
            await self.node_events.normal(written, "NodeNotReady", f"Node {name} status is now: NodeNotReady")
        return written

    async def _mark_not_ready(self, pod: Obj) -> None:
        condition = {"type": "Ready", "status": "False", "lastProbeTime": None,
                     "lastTransitionTime": lifecycle.rfc3339(self.clock())}
        with contextlib.suppress(NotFound):
            await self.client.patch(PODS, meta(pod)["name"],
                                    {"metadata": {"resourceVersion": meta(pod).get("resourceVersion")},
                                     "status": {"conditions": [condition]}},
                                    meta(pod).get("namespace"), patch_type="strategic", subresource="status")
            await self.node_events.warning(pod, "NodeNotReady", "Node is not ready")

    async def _evict(self, pod: Obj) -> None:
        name, namespace = meta(pod)["name"], meta(pod).get("namespace")
        condition = {"type": "DisruptionTarget", "status": "True", "lastProbeTime": None,
                     "lastTransitionTime": lifecycle.rfc3339(self.clock()), "reason": "DeletionByTaintManager",
                     "message": "Taint manager: deleting due to NoExecute taint"}
        try:
            await self.client.patch(PODS, name, {"status": {"conditions": [condition]}}, namespace,
                                    patch_type="strategic", subresource="status")
            await self.eviction_events.normal(pod, "TaintManagerEviction",
                                              f"Marking for deletion Pod {namespace}/{name}")
            await self.client.delete(PODS, name, namespace, uid=meta(pod).get("uid"))
        except (NotFound, Conflict):
            return  # gone already, or a new pod of the same name: not the one we judged
        log.info("evicted %s/%s from %s", namespace, name, (pod.get("spec") or {}).get("nodeName"))


def setup(mgr: Manager, grace_period: float = lifecycle.DEFAULT_GRACE_PERIOD) -> None:
    nodes = mgr.informer(NODES)
    pods = mgr.informer(PODS, indexers={NODE_INDEX: _node_of})
    lifecycle_controller = NodeLifecycle(mgr, nodes, pods, grace_period)
    controller = mgr.controller("nodelifecycle", lifecycle_controller.reconcile)
    controller.watch(nodes)
    controller.watch(pods, lifecycle_controller.needs_pod_events)
