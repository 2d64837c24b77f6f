"""The DaemonSet controller: one pod per eligible node (see `daemons`), replaced as the update strategy says.

Pods are labelled `controller-revision-hash` (`<template hash>`; no ControllerRevision objects are
served here) and `pod-template-generation`, created unbound but pinned by node affinity; the
scheduler binds them.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
from typing import Any

from netplane.controllers.kube.errors import NotFound
from netplane.controllers.runtime.cache import object_key
from netplane.controllers.runtime.controller import Result
from netplane.controllers.runtime.events import EventRecorder
from netplane.controllers.runtime.informer import Informer
from netplane.controllers.runtime.manager import Manager
from netplane.controllers.workloads import daemons
from netplane.controllers.workloads.expectations import Expectations
from netplane.controllers.workloads.kinds import DAEMONSETS, PODS
from netplane.controllers.workloads.owned import controlled_by
from netplane.controllers.workloads.pods import available_after, meta, next_available, terminating
from netplane.controllers.workloads.rollout import scaled_value
from netplane.controllers.workloads.templates import pod_for, template_hash

Obj = dict[str, Any]

REVISION_LABEL = "controller-revision-hash"
GENERATION_LABEL = "pod-template-generation"


class DaemonSets:
    def __init__(self, mgr: Manager, sets: Informer, pods: Informer, nodes: Informer, recorder: EventRecorder):
        self.client = mgr.client
        self.sets = sets
        self.pods = pods
        self.nodes = nodes
        self.recorder = recorder
        self.expectations = Expectations()

    async def reconcile(self, key: str) -> Result:
        cached = self.sets.cache.get(key)
        if cached is None:
            self.expectations.forget(key)
            return Result()
        if terminating(cached):
            return Result()
        ds = copy.deepcopy(cached)
        spec = ds.get("spec") or {}
        template = spec.get("template") or {}
        pod_spec = daemons.daemon_pod_spec(template.get("spec") or {})
        eligible = sorted(meta(n)["name"] for n in self.nodes.cache if daemons.should_run(pod_spec, n))
        pods = controlled_by(self.pods.cache, ds)
        revision = template_hash(template)
        strategy = spec.get("updateStrategy") or {}
        max_unavailable = None
        if strategy.get("type", "RollingUpdate") == "RollingUpdate":
            value = (strategy.get("rollingUpdate") or {}).get("maxUnavailable", 1)
            max_unavailable = max(scaled_value(value, len(eligible), round_up=True), 1)
        staying = {meta(n)["name"] for n in self.nodes.cache if daemons.may_stay(pod_spec, n)}
        plan = daemons.plan(eligible, pods,
                            {meta(p)["name"]: (meta(p).get("labels") or {}).get(REVISION_LABEL, "") for p in pods},
                            revision, max_unavailable, staying)
        if self.expectations.satisfied(key, self.pods.cache.__contains__):
            await self._apply(key, ds, plan, pod_spec, revision)
        return await self._write_status(ds, pods, plan, set(eligible))

    async def _apply(self, key: str, ds: Obj, plan: daemons.Plan, pod_spec: Obj, revision: str) -> None:
        namespace = meta(ds)["namespace"]
        created: list[str] = []
        try:
            for node in plan.create:
                template = {**(ds["spec"].get("template") or {}), "spec": daemons.pinned(pod_spec, node)}
                pod = pod_for(ds, template, labels={REVISION_LABEL: revision,
                                                    GENERATION_LABEL: str(meta(ds).get("generation", 1))})
                made = await self.client.create(PODS, pod)
                created.append(object_key(made))
                await self.recorder.normal(ds, "SuccessfulCreate", f"Created pod: {meta(made)['name']}")
        finally:
            self.expectations.expect(key, creates=created, deletes=[object_key(p) for p in plan.delete])
        for pod in plan.delete:
            with contextlib.suppress(NotFound):
                await self.client.delete(PODS, meta(pod)["name"], namespace, uid=meta(pod).get("uid"))
                await self.recorder.normal(ds, "SuccessfulDelete", f"Deleted pod: {meta(pod)['name']}")

    async def _write_status(self, ds: Obj, pods: list[Obj], plan: daemons.Plan, eligible: set[str]) -> Result:
        previous = ds.get("status") or {}
        now = dt.datetime.now(dt.UTC)
        min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
        waits = [available_after(p, min_ready, now) for p in pods if not terminating(p) and daemons.node_of(p)
                 in eligible and p not in plan.delete]
        available = sum(1 for w in waits if w == 0)
        desired = plan.status["desiredNumberScheduled"]
        status = {**plan.status, "numberAvailable": available, "numberUnavailable": max(desired - available, 0),
                  "observedGeneration": meta(ds).get("generation", 0)}
        status = {k: v for k, v in status.items() if v or k in ("desiredNumberScheduled", "currentNumberScheduled",
                                                                "numberMisscheduled", "numberReady")}
        if status != previous:
            ds["status"] = status
            with contextlib.suppress(NotFound):
                await self.client.update_status(DAEMONSETS, ds)
        recheck = next_available(waits)
        return Result(requeue_after=recheck + 0.05) if recheck is not None else Result()
