"""The Deployment controller: ReplicaSets named `<deployment>-<pod-template-hash>`, rolled as the strategy says.

Per sync, as kube-controller-manager: find the new ReplicaSet (same template but for the hash
label; the oldest if several), the old ones (all others); a change of spec.replicas alone is a
scaling event, spread proportionally (`rollout.proportional_scale`); otherwise one rollout step
(`rollout.rolling_step` or `rollout.recreate_step`). Revisions: the new ReplicaSet carries
`deployment.kubernetes.io/revision` = highest old revision + 1 (an old ReplicaSet brought back by
`kubectl rollout undo` is renumbered, its former number kept in `revision-history`), which
`kubectl rollout history|undo` read. Once a rollout completes, old ReplicaSets scaled to 0
beyond revisionHistoryLimit are deleted, lowest revision first.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import logging
from typing import Any

from netplane.controllers.kube.errors import AlreadyExists, NotFound
from netplane.controllers.runtime.cache import NAMESPACE_INDEX
from netplane.controllers.runtime.controller import Result
from netplane.controllers.runtime.events import EventRecorder
from netplane.controllers.runtime.informer import Informer
from netplane.controllers.runtime.manager import Manager
from netplane.controllers.workloads import progress, rollout
from netplane.controllers.workloads.kinds import DEPLOYMENTS, REPLICASETS
from netplane.controllers.workloads.owned import claim, controlled_by
from netplane.controllers.workloads.pods import meta, owner_ref, terminating
from netplane.controllers.workloads.templates import POD_TEMPLATE_HASH, same_template, template_hash

log = logging.getLogger("netplane.deployment")

Obj = dict[str, Any]

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
# Never copied from a Deployment to its ReplicaSets (nor back by `rollout undo`).
NOT_COPIED = frozenset({"kubectl.kubernetes.io/last-applied-configuration", REVISION, REVISION_HISTORY,
                        DESIRED_REPLICAS, MAX_REPLICAS, "deprecated.deployment.rollback.to"})


def revision(rs: Obj) -> int:
    try:
        return int((meta(rs).get("annotations") or {}).get(REVISION, 0))
    except ValueError:
        return 0


def _view(rs: Obj) -> rollout.RS:
    annotations = meta(rs).get("annotations") or {}
    try:
        max_replicas: int | None = int(annotations[MAX_REPLICAS])
    except (KeyError, ValueError):
        max_replicas = None
    return rollout.RS(name=meta(rs)["name"], replicas=int((rs.get("spec") or {}).get("replicas") or 0),
                      available=int((rs.get("status") or {}).get("availableReplicas") or 0),
                      created=str(meta(rs).get("creationTimestamp") or ""), max_replicas=max_replicas)


def _counts(rs: Obj) -> progress.Counts:
    status = rs.get("status") or {}
    return progress.Counts(spec=int((rs.get("spec") or {}).get("replicas") or 0),
                           replicas=int(status.get("replicas") or 0), ready=int(status.get("readyReplicas") or 0),
                           available=int(status.get("availableReplicas") or 0))


class Deployments:
    def __init__(self, mgr: Manager, deployments: Informer, sets: Informer, recorder: EventRecorder):
        self.client = mgr.client
        self.deployments = deployments
        self.sets = sets
        self.recorder = recorder

    async def reconcile(self, key: str) -> Result:
        cached = self.deployments.cache.get(key)
        if cached is None or terminating(cached):
            return Result()  # the garbage collector removes its ReplicaSets
        d = copy.deepcopy(cached)
        spec = d.get("spec") or {}
        desired = int(spec["replicas"]) if spec.get("replicas") is not None else 1
        strategy = spec.get("strategy") or {}
        rolling = strategy.get("type", "RollingUpdate") == "RollingUpdate"
        surge, unavailable = (rollout.fenceposts((strategy.get("rollingUpdate") or {}).get("maxSurge", "25%"),
                                                 (strategy.get("rollingUpdate") or {}).get("maxUnavailable", "25%"),
                                                 desired) if rolling else (0, 0))
        sets = await claim(self.client, REPLICASETS, d, controlled_by(self.sets.cache, d),
                           self.sets.cache.by_index(NAMESPACE_INDEX, meta(d)["namespace"]), spec.get("selector"))
        sets = [s for s in sets if not terminating(s)]
        template = spec.get("template") or {}
        matching = sorted((s for s in sets if same_template((s.get("spec") or {}).get("template") or {}, template)),
                          key=lambda s: (str(meta(s).get("creationTimestamp") or ""), meta(s)["name"]))
        new = matching[0] if matching else None
        olds = [s for s in sets if s is not new]
        next_revision = max((revision(s) for s in olds), default=0) + 1
        progress_reason: tuple[str, str] | None = None

        if new is not None:
            new = await self._sync_new(d, new, next_revision, surge)
            if spec.get("progressDeadlineSeconds") is not None and progress.find(
                    (d.get("status") or {}).get("conditions") or [], progress.PROGRESSING) is None:
                progress_reason = (progress.FOUND_NEW_RS, f'Found new replica set "{meta(new)["name"]}"')

        active = [s for s in ([new] if new else []) + olds if int((s.get("spec") or {}).get("replicas") or 0) > 0]
        scaling = any((meta(s).get("annotations") or {}).get(DESIRED_REPLICAS) != str(desired) for s in active)
        if spec.get("paused") or scaling:
            await self._scale(d, desired, surge, rolling, new, olds)
        else:
            if new is None:
                initial = (rollout.new_rs_target(desired, surge, None, [_view(s) for s in olds]) if rolling
                           else (desired if not any(_view(s).replicas or _counts(s).replicas for s in olds) else 0))
                if rolling or initial:
                    new = await self._create_new(d, next_revision, initial, surge)
                    progress_reason = (progress.NEW_RS_CREATED, f'Created new replica set "{meta(new)["name"]}"')
            if new is not None:
                if rolling:
                    step = rollout.rolling_step(desired, surge, unavailable, _view(new), [_view(s) for s in olds])
                else:
                    left = sum(_counts(s).replicas for s in olds)
                    step = rollout.recreate_step(desired, _view(new), [_view(s) for s in olds], left)
                by_name = {meta(s)["name"]: s for s in [new, *olds]}
                for name, replicas in step.items():
                    await self._scale_set(d, by_name[name], replicas, desired, surge)
            else:
                for s in olds:
                    if _view(s).replicas:
                        await self._scale_set(d, s, 0, desired, surge)
        if new is not None:
            await self._set_revision(d, revision(new) or next_revision)
        return await self._sync_status(d, desired, unavailable if rolling else 0, new, olds, progress_reason)

    async def _sync_new(self, d: Obj, rs: Obj, next_revision: int, surge: int) -> Obj:
        """Bring the new ReplicaSet's annotations and minReadySeconds in line with the Deployment."""
        annotations = dict(meta(rs).get("annotations") or {})
        wanted = dict(annotations)
        for k, v in (meta(d).get("annotations") or {}).items():
            if k not in NOT_COPIED:
                wanted[k] = v
        old = revision(rs)
        if old < next_revision:
            wanted[REVISION] = str(next_revision)
            if old:
                history = [h for h in annotations.get(REVISION_HISTORY, "").split(",") if h]
                wanted[REVISION_HISTORY] = ",".join([*history, str(old)])
        min_ready = int((d.get("spec") or {}).get("minReadySeconds") or 0)
        if wanted == annotations and int((rs.get("spec") or {}).get("minReadySeconds") or 0) == min_ready:
            return rs
        patch = {"metadata": {"annotations": wanted, "resourceVersion": meta(rs).get("resourceVersion")},
                 "spec": {"minReadySeconds": min_ready}}
        return await self.client.patch(REPLICASETS, meta(rs)["name"], patch, meta(rs)["namespace"])

    async def _create_new(self, d: Obj, next_revision: int, replicas: int, surge: int) -> Obj:
        spec = d.get("spec") or {}
        status = d.get("status") or {}
        collisions = status.get("collisionCount")
        hash_ = template_hash(spec.get("template") or {}, collisions)
        template = copy.deepcopy(spec.get("template") or {})
        template.setdefault("metadata", {}).setdefault("labels", {})[POD_TEMPLATE_HASH] = hash_
        selector = copy.deepcopy(spec.get("selector") or {})
        selector.setdefault("matchLabels", {})[POD_TEMPLATE_HASH] = hash_
        desired = int(spec.get("replicas") or 0)
        annotations = {k: v for k, v in (meta(d).get("annotations") or {}).items() if k not in NOT_COPIED}
        annotations.update({REVISION: str(next_revision), DESIRED_REPLICAS: str(desired),
                            MAX_REPLICAS: str(desired + surge)})
        name = f"{meta(d)['name']}-{hash_}"
        body = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": name, "namespace": meta(d)["namespace"],
                             "labels": dict(template["metadata"]["labels"]), "annotations": annotations,
                             "ownerReferences": [owner_ref(d)]},
                "spec": {"replicas": replicas, "minReadySeconds": int(spec.get("minReadySeconds") or 0),
                         "selector": selector, "template": template}}
        try:
            created = await self.client.create(REPLICASETS, body)
        except AlreadyExists:
            existing = await self.client.get(REPLICASETS, name, meta(d)["namespace"])
            if same_template((existing.get("spec") or {}).get("template") or {}, template) and \
                    (owner := next((r for r in meta(existing).get("ownerReferences") or [] if r.get("controller")),
                                   None)) is not None and owner.get("uid") == meta(d).get("uid"):
                return existing
            # A different template hashed to a taken name: count the collision, which changes the hash.
            d["status"] = {**status, "collisionCount": int(collisions or 0) + 1}
            await self.client.update_status(DEPLOYMENTS, d)
            raise
        await self.recorder.normal(d, "ScalingReplicaSet", f"Scaled up replica set {name} to {replicas} from 0")
        return created

    async def _scale_set(self, d: Obj, rs: Obj, replicas: int, desired: int, surge: int) -> None:
        before = int((rs.get("spec") or {}).get("replicas") or 0)
        annotations = meta(rs).get("annotations") or {}
        wanted = {DESIRED_REPLICAS: str(desired), MAX_REPLICAS: str(desired + surge)}
        if before == replicas and all(annotations.get(k) == v for k, v in wanted.items()):
            return
        patch = {"metadata": {"annotations": wanted, "resourceVersion": meta(rs).get("resourceVersion")},
                 "spec": {"replicas": replicas}}
        await self.client.patch(REPLICASETS, meta(rs)["name"], patch, meta(rs)["namespace"])
        if before != replicas:
            direction = "up" if replicas > before else "down"
            await self.recorder.normal(d, "ScalingReplicaSet",
                                       f"Scaled {direction} replica set {meta(rs)['name']} to {replicas} from {before}")

    async def _scale(self, d: Obj, desired: int, surge: int, rolling: bool, new: Obj | None,
                     olds: list[Obj]) -> None:
        """A scaling event (or a paused Deployment): resize without rolling."""
        sets = ([new] if new else []) + olds
        active = [s for s in sets if _view(s).replicas > 0]
        target: Obj | None = None
        if len(active) == 1:
            target = active[0]
        elif not active and sets:
            target = new or max(olds, key=lambda s: str(meta(s).get("creationTimestamp") or ""))
        if target is not None:
            await self._scale_set(d, target, desired, desired, surge)
            return
        if new is not None and _view(new).replicas == desired and _view(new).available == desired:
            for s in olds:
                if _view(s).replicas:
                    await self._scale_set(d, s, 0, desired, surge)
            return
        if rolling:
            changes = rollout.proportional_scale(desired, surge, [_view(s) for s in sets])
            for s in sets:  # every active set learns the new size, changed or not
                if _view(s).replicas:
                    await self._scale_set(d, s, changes.get(meta(s)["name"], _view(s).replicas), desired, surge)

    async def _set_revision(self, d: Obj, rev: int) -> None:
        if (meta(d).get("annotations") or {}).get(REVISION) == str(rev):
            return
        with contextlib.suppress(NotFound):
            updated = await self.client.patch(DEPLOYMENTS, meta(d)["name"],
                                              {"metadata": {"annotations": {REVISION: str(rev)}}}, meta(d)["namespace"])
            d["metadata"] = updated["metadata"]

    async def _cleanup(self, d: Obj, olds: list[Obj]) -> None:
        limit = (d.get("spec") or {}).get("revisionHistoryLimit")
        if limit is None:
            return
        idle = [s for s in olds if not _view(s).replicas and not _counts(s).replicas
                and int((s.get("status") or {}).get("observedGeneration") or 0) >= int(meta(s).get("generation") or 0)]
        for rs in sorted(idle, key=revision)[:max(len(idle) - int(limit), 0)]:
            with contextlib.suppress(NotFound):
                await self.client.delete(REPLICASETS, meta(rs)["name"], meta(rs)["namespace"],
                                         uid=meta(rs).get("uid"))
                log.info("deployment %s/%s: deleted old replica set %s (revision history limit %s)",
                         meta(d)["namespace"], meta(d)["name"], meta(rs)["name"], limit)

    async def _sync_status(self, d: Obj, desired: int, unavailable: int, new: Obj | None, olds: list[Obj],
                           progress_reason: tuple[str, str] | None) -> Result:
        # Counts come from the cached ReplicaSets (their controller reports pods); the writes above
        # show up there soon and bring us back.
        spec = d.get("spec") or {}
        generation = int(meta(d).get("generation") or 0)
        new_now = self.sets.cache.get_by_name(meta(new)["name"], meta(d)["namespace"]) if new else None
        new_counts = _counts(new_now or new) if new is not None else None
        counts = progress.counted_status(generation, new_counts, [_counts(s) for s in olds])
        previous = d.get("status") or {}
        now = dt.datetime.now(dt.UTC)
        conditions = [dict(c) for c in previous.get("conditions") or []]
        if progress_reason is not None:
            progress.set_condition(conditions, progress.PROGRESSING, "True", *progress_reason, now)
        deadline = spec.get("progressDeadlineSeconds")
        status = progress.next_status(
            progress.Spec(desired, generation, min(unavailable, desired), deadline, bool(spec.get("paused"))),
            {**previous, "conditions": conditions}, counts, meta(new)["name"] if new else None, now)
        if previous.get("collisionCount"):
            status["collisionCount"] = previous["collisionCount"]
        if progress.complete(desired, generation, status):
            await self._cleanup(d, olds)
        if status != previous:
            d["status"] = status
            with contextlib.suppress(NotFound):
                await self.client.update_status(DEPLOYMENTS, d)
        left = progress.deadline_left(status.get("conditions") or [], int(deadline), now) if deadline else None
        return Result(requeue_after=left + 1) if left is not None and left > 0 else Result()

