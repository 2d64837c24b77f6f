"""Workload controllers: Deployment → ReplicaSet → Pods, StatefulSet and DaemonSet, as kube-controller-manager.

    Deployment ──creates/scales──▶ ReplicaSet <name>-<hash> ──creates/deletes──▶ Pods
         ▲   status from ReplicaSets ◀── status from pods ◀─ (Ready set by the kubelet)
    StatefulSet ──▶ Pods <name>-0 … <name>-N-1, in order (OrderedReady) or at once (Parallel)
    DaemonSet ──▶ one Pod per eligible Node, pinned by node affinity (the scheduler binds it)

Decisions are pure (`rollout`, `progress`, `replicas`, `pods`, `templates`, `ordinals`, `daemons`);
the controllers (`deployment`, `replicaset`, `statefulset`, `daemonset`) read caches and write.
Everything they create carries a controller ownerReference, so the API's garbage collector removes
it with its owner.
"""

from __future__ import annotations

from netplane.controllers.runtime.cache import object_key
from netplane.controllers.runtime.manager import Manager
from netplane.controllers.workloads.daemonset import DaemonSets
from netplane.controllers.workloads.deployment import Deployments
from netplane.controllers.workloads.kinds import DAEMONSETS, DEPLOYMENTS, NODES, PODS, REPLICASETS, STATEFULSETS
from netplane.controllers.workloads.owned import by_controller, by_controller_or_selector
from netplane.controllers.workloads.replicaset import ReplicaSets
from netplane.controllers.workloads.statefulset import StatefulSets


def setup(mgr: Manager) -> None:
    pods = mgr.informer(PODS)
    sets = mgr.informer(REPLICASETS)
    deployments = mgr.informer(DEPLOYMENTS)
    statefulsets = mgr.informer(STATEFULSETS)
    daemonsets = mgr.informer(DAEMONSETS)
    nodes = mgr.informer(NODES)

    replicasets = ReplicaSets(mgr, sets, pods, mgr.recorder)
    rs = mgr.controller("replicaset", replicasets.reconcile)
    rs.watch(sets)
    rs.watch(pods, by_controller_or_selector("ReplicaSet", sets.cache))

    deploy = mgr.controller("deployment", Deployments(mgr, deployments, sets, mgr.recorder).reconcile)
    deploy.watch(deployments)
    deploy.watch(sets, by_controller_or_selector("Deployment", deployments.cache))

    sts = mgr.controller("statefulset", StatefulSets(mgr, statefulsets, pods, mgr.recorder).reconcile)
    sts.watch(statefulsets)
    sts.watch(pods, by_controller("StatefulSet"))

    daemons = DaemonSets(mgr, daemonsets, pods, nodes, mgr.recorder)
    ds = mgr.controller("daemonset", daemons.reconcile)
    ds.watch(daemonsets)
    ds.watch(pods, by_controller("DaemonSet"))
    ds.watch(nodes, lambda _node: daemonsets.cache.list_keys())

    # A pod that vanished will never show up for a controller still expecting its creation.
    def forget(pod: dict[str, object]) -> None:
        replicasets.expectations.observed_deletion(object_key(pod))
        daemons.expectations.observed_deletion(object_key(pod))

    pods.add_handler(on_delete=forget)
