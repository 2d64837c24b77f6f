"""IngressNginx instances: the ingress-nginx-operator's job. Each IngressNginx lays out its IngressClass,
service account, workload and Service (`manifests.py`), written only when they differ from what is stored;
status reports the class, the ready replicas and a phase (Running once one instance is ready)."""

from __future__ import annotations

import logging
from typing import Any

from netplane.controllers.ingressnginx import manifests
from netplane.controllers.kube.client import Client
from netplane.controllers.kube.resources import Resource
from netplane.controllers.runtime.controller import Result
from netplane.controllers.runtime.ensure import ensure, remove, write_ready_status
from netplane.controllers.runtime.informer import Informer
from netplane.controllers.runtime.manager import Manager
from netplane.controllers.workloads.kinds import DAEMONSETS, DEPLOYMENTS
from netplane.model.ingress_nginx import INGRESS_NGINX

log = logging.getLogger("netplane.ingressnginx")

Obj = dict[str, Any]
INSTANCES = Resource(INGRESS_NGINX.group, INGRESS_NGINX.version, INGRESS_NGINX.plural, kind=INGRESS_NGINX.kind)
FIELD_MANAGER = "netplane-ingress-nginx"
_RESOURCES = {
    "IngressClass": Resource("networking.k8s.io", "v1", "ingressclasses", namespaced=False, kind="IngressClass"),
    "ServiceAccount": Resource("", "v1", "serviceaccounts", kind="ServiceAccount"),
    "ClusterRole": Resource("rbac.authorization.k8s.io", "v1", "clusterroles", namespaced=False, kind="ClusterRole"),
    "ClusterRoleBinding": Resource("rbac.authorization.k8s.io", "v1", "clusterrolebindings", namespaced=False,
                                   kind="ClusterRoleBinding"),
    "Deployment": DEPLOYMENTS,
    "DaemonSet": DAEMONSETS,
    "Service": Resource("", "v1", "services", kind="Service"),
}


def ready_replicas(workload: Obj | None) -> int:
    status = (workload or {}).get("status") or {}
    return int(status.get("readyReplicas") or status.get("numberReady") or 0)


class Instances:
    def __init__(self, client: Client, instances: Informer, deployments: Informer, daemonsets: Informer):
        self.client = client
        self.instances = instances
        self.workloads = {"Deployment": deployments, "DaemonSet": daemonsets}

    async def reconcile(self, key: str) -> Result:
        instance = self.instances.cache.get(key)
        if instance is None or instance["metadata"].get("deletionTimestamp"):
            return Result()
        laid_out = manifests.objects(instance)
        for obj in laid_out:
            if await ensure(self.client, _RESOURCES[obj["kind"]], obj, FIELD_MANAGER):
                log.info("ingress-nginx %s: applied %s %s", key, obj["kind"], obj["metadata"]["name"])
        workload = next(o for o in laid_out if o["kind"] in self.workloads)
        other = "DaemonSet" if workload["kind"] == "Deployment" else "Deployment"
        if self.workloads[other].cache.get_by_name(workload["metadata"]["name"], workload["metadata"]["namespace"]):
            await remove(self.client, _RESOURCES[other], {**workload, "kind": other})
        stored = self.workloads[workload["kind"]].cache.get_by_name(workload["metadata"]["name"],
                                                                     workload["metadata"]["namespace"])
        return await self._report(instance, ready_replicas(stored))

    async def _report(self, instance: Obj, ready: int) -> Result:
        return await write_ready_status(
            self.client, INSTANCES, instance, bool(ready), "Available" if ready else "Deploying",
            f"{ready} controller pod(s) ready",
            {"phase": "Running" if ready else "Deploying", "readyReplicas": ready,
             "ingressClass": manifests.class_name(instance)})


def _instance_of(obj: Obj) -> list[str]:
    meta = obj.get("metadata") or {}
    name = (meta.get("labels") or {}).get(manifests.INSTANCE_LABEL)
    return [f"{meta.get('namespace')}/{name}"] if name else []


def setup(mgr: Manager) -> None:
    selector = "app.kubernetes.io/name=ingress-nginx,app.kubernetes.io/managed-by=netplane"
    instances = mgr.informer(INSTANCES)
    deployments = mgr.informer(DEPLOYMENTS, label_selector=selector)
    daemonsets = mgr.informer(DAEMONSETS, label_selector=selector)
    controller = mgr.controller("ingress-nginx", Instances(mgr.client, instances, deployments, daemonsets).reconcile)
    controller.watch(instances)
    controller.watch(deployments, _instance_of)
    controller.watch(daemonsets, _instance_of)
