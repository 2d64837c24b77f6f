"""Cluster plugins: a ClusterPlugin object installs (create), configures (update) or uninstalls (delete)
one plugin; this controller lays out its objects (`manifests.py`) and reports Ready on the plugin.

Rules:
- Known now: `coredns` and `nodelocaldns`. `endpoint-health-checker` and `multus` are accepted and
  reported as not available yet; any other name is reported as unknown.
- Objects are written only when they differ from what is stored (compared as "desired is a subset
  of stored", so API defaults do not count as a difference), by server-side apply with this
  controller's field manager.
- `nodelocaldns` is refused (Ready=False, UnderlayOnly) when every pod subnet is an underlay (a
  VLAN): such pods' DNS traffic leaves through the VLAN and would never reach a node-local address.
  Its workload is removed then.
- Ready: coredns when at least one DNS pod is available; nodelocaldns when every scheduled cache pod
  is ready.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from netplane.controllers.kube.client import Client
from netplane.controllers.kube.resources import Resource
from netplane.controllers.plugins import manifests
from netplane.controllers.runtime.controller import Result
from netplane.controllers.runtime.ensure import ensure, remove, write_ready_status
from netplane.controllers.runtime.informer import Informer
from netplane.controllers.runtime.manager import Manager
from netplane.controllers.workloads.kinds import DAEMONSETS, DEPLOYMENTS
from netplane.dataplane.dns import cluster_dns_ip_from_kubernetes_ip
from netplane.model.kubeovn import GROUP as KUBEOVN_GROUP
from netplane.model.kubeovn import VERSION as KUBEOVN_VERSION
from netplane.model.plugins import CLUSTER_PLUGIN

log = logging.getLogger("netplane.plugins")

Obj = dict[str, Any]
PLUGINS = Resource(CLUSTER_PLUGIN.group, CLUSTER_PLUGIN.version, CLUSTER_PLUGIN.plural, namespaced=False,
                   kind=CLUSTER_PLUGIN.kind)
SUBNETS = Resource(KUBEOVN_GROUP, KUBEOVN_VERSION, "subnets", namespaced=False, kind="Subnet")
SERVICES = Resource("", "v1", "services", kind="Service")
FIELD_MANAGER = "netplane-plugins"
COREDNS, NODELOCALDNS = "coredns", "nodelocaldns"
LAYOUTS: dict[str, Callable[[Obj, manifests.ClusterFacts], list[Obj]]] = {
    COREDNS: manifests.coredns_objects, NODELOCALDNS: manifests.nodelocaldns_objects,
}
NOT_YET = ("endpoint-health-checker", "multus")
_RESOURCES = {
    "ServiceAccount": Resource("", "v1", "serviceaccounts", kind="ServiceAccount"),
    "Service": SERVICES,
    "ClusterRole": Resource("rbac.authorization.k8s.io", "v1", "clusterroles", namespaced=False, kind="ClusterRole"),
    "ClusterRoleBinding": Resource("rbac.authorization.k8s.io", "v1", "clusterrolebindings", namespaced=False,
                                   kind="ClusterRoleBinding"),
    "Deployment": DEPLOYMENTS,
    "DaemonSet": DAEMONSETS,
}


def underlay_only(subnets: list[Obj]) -> bool:
    pod_subnets = [s for s in subnets if s["metadata"]["name"] != "join"]
    return bool(pod_subnets) and all((s.get("spec") or {}).get("vlan") for s in pod_subnets)


def readiness(name: str, workload: Obj | None) -> tuple[bool, str, str]:
    """(ready, reason, message) of a plugin from its workload's status."""
    if workload is None:
        return False, "Installing", "the plugin's workload is being created"
    status = workload.get("status") or {}
    if name == COREDNS:
        wanted = int((workload.get("spec") or {}).get("replicas") or 0)
        available = int(status.get("availableReplicas") or 0)
        if available >= 1:
            return True, "Available", f"{available} of {wanted} DNS pods available"
        return False, "Installing", f"0 of {wanted} DNS pods available"
    desired = int(status.get("desiredNumberScheduled") or 0)
    ready = int(status.get("numberReady") or 0)
    if desired and ready == desired:
        return True, "Available", f"a cache runs on each of {desired} nodes"
    return False, "Installing", f"{ready} of {desired} node caches ready"


class Plugins:
    def __init__(self, client: Client, plugins: Informer, deployments: Informer, daemonsets: Informer,
                 subnets: Informer):
        self.client = client
        self.plugins = plugins
        self.deployments = deployments
        self.daemonsets = daemonsets
        self.subnets = subnets

    async def reconcile(self, key: str) -> Result:
        plugin = self.plugins.cache.get(key)
        if plugin is None or plugin["metadata"].get("deletionTimestamp"):
            return Result()  # uninstalled: garbage collection removes what it owned
        name = plugin["metadata"]["name"]
        if name in NOT_YET:
            return await self._report(plugin, False, "NotAvailable", f"plugin {name} is not available in this "
                                                                     "release of netplane")
        layout = LAYOUTS.get(name)
        if layout is None:
            known = ", ".join([*LAYOUTS, *NOT_YET])
            return await self._report(plugin, False, "UnknownPlugin", f"no plugin named {name}; known: {known}")
        if name == NODELOCALDNS and underlay_only(list(self.subnets.cache)):
            await self._remove(manifests.nodelocaldns_objects(plugin, manifests.ClusterFacts("", ())))
            return await self._report(plugin, False, "UnderlayOnly",
                                      "every pod subnet is an underlay (VLAN) subnet: their DNS traffic cannot "
                                      "reach a node-local cache, so pods keep using the cluster DNS")
        objects = layout(plugin, await self._facts())
        for obj in objects:
            await self._apply(obj)
        workload = next((o for o in objects if o["kind"] in ("Deployment", "DaemonSet")), None)
        stored = None
        if workload is not None:
            informer = self.deployments if workload["kind"] == "Deployment" else self.daemonsets
            stored = informer.cache.get_by_name(workload["metadata"]["name"], manifests.NAMESPACE)
        ready, reason, message = readiness(name, stored)
        return await self._report(plugin, ready, reason, message)

    async def _facts(self) -> manifests.ClusterFacts:
        kubernetes = await self.client.get(SERVICES, "kubernetes", "default")
        dns_ip = cluster_dns_ip_from_kubernetes_ip(kubernetes["spec"]["clusterIP"])
        coredns = self.plugins.cache.get_by_name(COREDNS)
        config = ((coredns or {}).get("spec") or {}).get("config") or {}
        return manifests.ClusterFacts(dns_ip, tuple(config.get("upstreams") or ()))

    async def _apply(self, obj: Obj) -> None:
        if await ensure(self.client, _RESOURCES[obj["kind"]], obj, FIELD_MANAGER):
            log.info("plugin %s: applied %s %s", obj["metadata"]["labels"][manifests.PLUGIN_LABEL], obj["kind"],
                     obj["metadata"]["name"])

    async def _remove(self, objects: list[Obj]) -> None:
        for obj in objects:
            await remove(self.client, _RESOURCES[obj["kind"]], obj)

    async def _report(self, plugin: Obj, ready: bool, reason: str, message: str) -> Result:
        phase = "Ready" if ready else ("Installing" if reason == "Installing" else "Failed")
        return await write_ready_status(self.client, PLUGINS, plugin, ready, reason, message, {"phase": phase})


def _plugin_of(obj: Obj) -> list[str]:
    name = ((obj.get("metadata") or {}).get("labels") or {}).get(manifests.PLUGIN_LABEL)
    return [str(name)] if name else []


def setup(mgr: Manager) -> None:
    selector = manifests.PLUGIN_LABEL
    plugins = mgr.informer(PLUGINS)
    deployments = mgr.informer(DEPLOYMENTS, manifests.NAMESPACE, label_selector=selector)
    daemonsets = mgr.informer(DAEMONSETS, manifests.NAMESPACE, label_selector=selector)
    subnets = mgr.informer(SUBNETS)
    controller = mgr.controller("cluster-plugins", Plugins(mgr.client, plugins, deployments, daemonsets,
                                                           subnets).reconcile)
    controller.watch(plugins)
    controller.watch(deployments, _plugin_of)
    controller.watch(daemonsets, _plugin_of)
    controller.watch(subnets, lambda _obj: [NODELOCALDNS])
    # The node-local cache forwards to the coredns plugin's upstreams.
    controller.watch(plugins, lambda obj: [NODELOCALDNS] if obj["metadata"]["name"] == COREDNS else [])
