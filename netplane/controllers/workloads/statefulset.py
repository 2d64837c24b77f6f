"""The StatefulSet controller: pods `<name>-<ordinal>` with stable hostnames, created and replaced in order.

Each pod gets `hostname` = its name and `subdomain` = spec.serviceName (so the headless Service
gives it a DNS name), labels `statefulset.kubernetes.io/pod-name`, `apps.kubernetes.io/pod-index`
and `controller-revision-hash` (`<name>-<template hash>`; this API serves no ControllerRevision
objects, so the hash stands for the revision). Steps are chosen by `ordinals.next_step`.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
from typing import Any

from netplane.controllers.kube.errors import AlreadyExists, NotFound
from netplane.controllers.runtime.controller import Result
from netplane.controllers.runtime.events import EventRecorder
from netplane.controllers.runtime.informer import Informer
from netplane.controllers.runtime.manager import Manager
from netplane.controllers.workloads.kinds import PODS, STATEFULSETS
from netplane.controllers.workloads.ordinals import Member, next_step, ordinal_of
from netplane.controllers.workloads.owned import controlled_by
from netplane.controllers.workloads.pods import active, available_after, meta, next_available, ready, terminating
from netplane.controllers.workloads.templates import pod_for, template_hash

Obj = dict[str, Any]

REVISION_LABEL = "controller-revision-hash"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"


def member(pod: Obj) -> Member:
    phase = (pod.get("status") or {}).get("phase")
    return Member(healthy=phase == "Running" and ready(pod) and not terminating(pod), terminating=terminating(pod),
                  failed=phase == "Failed", revision=str((meta(pod).get("labels") or {}).get(REVISION_LABEL, "")))


def desired_replicas(sts: Obj) -> int:
    replicas = (sts.get("spec") or {}).get("replicas")
    return 1 if replicas is None else int(replicas)


class StatefulSets:
    def __init__(self, mgr: Manager, sets: Informer, pods: Informer, recorder: EventRecorder):
        self.client = mgr.client
        self.sets = sets
        self.pods = pods
        self.recorder = recorder

    async def reconcile(self, key: str) -> Result:
        cached = self.sets.cache.get(key)
        if cached is None or terminating(cached):
            return Result()
        sts = copy.deepcopy(cached)
        spec = sts.get("spec") or {}
        name, namespace = meta(sts)["name"], meta(sts)["namespace"]
        revision = f"{name}-{template_hash(spec.get('template') or {})}"
        pods: dict[int, Obj] = {}
        for pod in controlled_by(self.pods.cache, sts):
            ordinal = ordinal_of(name, meta(pod)["name"])
            if ordinal is not None:
                pods[ordinal] = pod
        strategy = spec.get("updateStrategy") or {}
        partition = (int((strategy.get("rollingUpdate") or {}).get("partition") or 0)
                     if strategy.get("type", "RollingUpdate") == "RollingUpdate" else None)
        step = next_step(desired_replicas(sts),
                         int((spec.get("ordinals") or {}).get("start") or 0),
                         {o: member(p) for o, p in pods.items()},
                         parallel=spec.get("podManagementPolicy") == "Parallel", update_revision=revision,
                         partition=partition)
        for ordinal in step.delete:
            pod = pods[ordinal]
            with contextlib.suppress(NotFound):
                await self.client.delete(PODS, meta(pod)["name"], namespace, uid=meta(pod).get("uid"))
                await self.recorder.normal(sts, "SuccessfulDelete",
                                           f"delete Pod {meta(pod)['name']} in StatefulSet {name} successful")
        for ordinal in step.create:
            await self._create(sts, ordinal, revision)
        return await self._write_status(sts, list(pods.values()), revision)

    async def _create(self, sts: Obj, ordinal: int, revision: str) -> None:
        spec = sts.get("spec") or {}
        name = f"{meta(sts)['name']}-{ordinal}"
        pod = pod_for(sts, spec.get("template") or {}, name=name, labels={
            REVISION_LABEL: revision, POD_NAME_LABEL: name, POD_INDEX_LABEL: str(ordinal)})
        pod["spec"]["hostname"] = name
        if spec.get("serviceName"):
            pod["spec"]["subdomain"] = spec["serviceName"]
        try:
            await self.client.create(PODS, pod)
        except AlreadyExists:
            return  # our cache has not seen it yet
        await self.recorder.normal(sts, "SuccessfulCreate",
                                   f"create Pod {name} in StatefulSet {meta(sts)['name']} successful")

    async def _write_status(self, sts: Obj, pods: list[Obj], revision: str) -> Result:
        spec = sts.get("spec") or {}
        previous = sts.get("status") or {}
        now = dt.datetime.now(dt.UTC)
        alive = [p for p in pods if active(p)]
        min_ready = int(spec.get("minReadySeconds") or 0)
        waits = [available_after(p, min_ready, now) for p in alive]
        updated = sum(1 for p in alive if member(p).revision == revision)
        replicas = desired_replicas(sts)
        current_revision = previous.get("currentRevision") or revision
        if updated == len(alive) == replicas:
            current_revision = revision  # the rollout is over: the update revision becomes current
        status = {"observedGeneration": meta(sts).get("generation", 0), "replicas": len(alive),
                  "readyReplicas": sum(1 for p in alive if ready(p)),
                  "availableReplicas": sum(1 for w in waits if w == 0),
                  "currentReplicas": sum(1 for p in alive if member(p).revision == current_revision),
                  "updatedReplicas": updated, "currentRevision": current_revision, "updateRevision": revision,
                  "collisionCount": previous.get("collisionCount", 0)}
        status = {k: v for k, v in status.items() if v or k in ("replicas", "observedGeneration", "collisionCount")}
        if status != previous:
            sts["status"] = status
            with contextlib.suppress(NotFound):
                await self.client.update_status(STATEFULSETS, sts)
        recheck = next_available(waits)
        return Result(requeue_after=recheck + 0.05) if recheck is not None else Result()
