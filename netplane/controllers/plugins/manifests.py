"""What each cluster plugin installs, as Kubernetes objects (pure: plugin + cluster facts in, objects out).

- `coredns`: the cluster DNS as kubeadm lays it out — ServiceAccount `coredns`, ClusterRole and
  ClusterRoleBinding `system:coredns`, the `kube-dns` Service on the service range's tenth address
  and the `coredns` Deployment (netplane's DNS server, `netplane/coredns` image), all in kube-system.
  Host aliases are not baked into the Deployment: the server watches its ClusterPlugin, so an alias
  change needs no rollout.
- `nodelocaldns`: the `node-local-dns` DaemonSet, host network on every node, holding the plugin's
  address on the node's loopback (this kernel has no dummy device), forwarding the cluster domain
  to kube-dns over TCP and the rest to the upstream resolvers.

Every object is owned by its ClusterPlugin, so deleting the plugin (uninstall) garbage-collects it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]

NAMESPACE = "kube-system"
PLUGIN_LABEL = "netplane.io/plugin"
CLUSTER_DOMAIN = "cluster.local"
DNS_IMAGE = "netplane/coredns:v1"
CACHE_IMAGE = "netplane/node-cache:v1"
NODELOCALDNS_DEFAULT_IP = "169.254.20.10"
CRITICAL_TOLERATIONS: list[Obj] = [
    {"key": "CriticalAddonsOnly", "operator": "Exists"},
    {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},
]


@dataclass(frozen=True)
class ClusterFacts:
    cluster_dns_ip: str  # the kube-dns Service's address
    upstreams: tuple[str, ...]  # resolvers for names outside the cluster (the coredns plugin's)


def _config(plugin: Obj) -> Obj:
    return ((plugin.get("spec") or {}).get("config")) or {}


def _meta(plugin: Obj, name: str, namespace: str | None, labels: dict[str, str] | None = None) -> Obj:
    meta: Obj = {
        "name": name,
        "labels": {PLUGIN_LABEL: plugin["metadata"]["name"], **(labels or {})},
        "ownerReferences": [{"apiVersion": plugin.get("apiVersion", "netplane.io/v1alpha1"),
                             "kind": "ClusterPlugin", "name": plugin["metadata"]["name"],
                             "uid": plugin["metadata"]["uid"], "controller": True}],
    }
    if namespace:
        meta["namespace"] = namespace
    return meta


def _upstream_args(upstreams: tuple[str, ...]) -> list[str]:
    return [a for u in upstreams for a in ("--upstream", u)]


def coredns_objects(plugin: Obj, facts: ClusterFacts) -> list[Obj]:
    config = _config(plugin)
    dns_labels = {"k8s-app": "kube-dns"}
    deployment_labels = {**dns_labels, "kubernetes.io/name": "CoreDNS"}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(plugin, "coredns", NAMESPACE)},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": _meta(plugin, "system:coredns", None),
         "rules": [
             {"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"],
              "verbs": ["list", "watch"]},
             {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]},
             {"apiGroups": ["netplane.io"], "resources": ["clusterplugins"], "verbs": ["get", "list", "watch"]},
         ]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": _meta(plugin, "system:coredns", None),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:coredns"},
         "subjects": [{"kind": "ServiceAccount", "name": "coredns", "namespace": NAMESPACE}]},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": _meta(plugin, "kube-dns", NAMESPACE,
                           {**deployment_labels, "kubernetes.io/cluster-service": "true"}),
         "spec": {"selector": dns_labels, "clusterIP": facts.cluster_dns_ip,
                  "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                            {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                            {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153}]}},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": _meta(plugin, "coredns", NAMESPACE, deployment_labels),
         "spec": {
             "replicas": 2,
             "selector": {"matchLabels": dns_labels},
             "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": "25%"}},
             "template": {
                 "metadata": {"labels": dns_labels},
                 "spec": {
                     "serviceAccountName": "coredns",
                     # Its own lookups must not go to itself (CoreDNS's `loop` problem).
                     "dnsPolicy": "Default",
                     "nodeSelector": {"kubernetes.io/os": "linux", **(config.get("nodeSelector") or {})},
                     "tolerations": [*CRITICAL_TOLERATIONS, *(config.get("tolerations") or [])],
                     "containers": [{
                         "name": "coredns", "image": DNS_IMAGE,
                         "args": ["serve", "--cluster-domain", CLUSTER_DOMAIN, "--nameserver-ip", facts.cluster_dns_ip,
                                  "--plugin", plugin["metadata"]["name"], *_upstream_args(facts.upstreams)],
                         "ports": [{"name": "dns", "containerPort": 53, "protocol": "UDP"},
                                   {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
                                   {"name": "metrics", "containerPort": 9153, "protocol": "TCP"}],
                         "resources": {"requests": {"cpu": "100m", "memory": "70Mi"}, "limits": {"memory": "170Mi"}},
                         "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181}, "periodSeconds": 2},
                         "livenessProbe": {"httpGet": {"path": "/health", "port": 8080}, "initialDelaySeconds": 60,
                                           "timeoutSeconds": 5, "failureThreshold": 5},
                     }],
                 },
             },
         }},
    ]


def nodelocaldns_objects(plugin: Obj, facts: ClusterFacts) -> list[Obj]:
    config = _config(plugin)
    ip = str(config.get("ip") or NODELOCALDNS_DEFAULT_IP)
    labels = {"k8s-app": "node-local-dns"}
    return [
        {"apiVersion": "apps/v1", "kind": "DaemonSet",
         "metadata": _meta(plugin, "node-local-dns", NAMESPACE, labels),
         "spec": {
             "selector": {"matchLabels": labels},
             "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%"}},
             "template": {
                 "metadata": {"labels": labels},
                 "spec": {
                     "hostNetwork": True,
                     "dnsPolicy": "Default",
                     "nodeSelector": {"kubernetes.io/os": "linux", **(config.get("nodeSelector") or {})},
                     # Every node needs its cache, whatever it is tainted with.
                     "tolerations": [{"operator": "Exists"}],
                     "containers": [{
                         "name": "node-cache", "image": CACHE_IMAGE,
                         "args": ["cache", "--listen", ip, "--cluster-dns", facts.cluster_dns_ip,
                                  "--cluster-domain", CLUSTER_DOMAIN, "--add-address",
                                  *_upstream_args(facts.upstreams)],
                         "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}},
                         "ports": [{"name": "dns", "containerPort": 53, "protocol": "UDP"},
                                   {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
                                   {"name": "metrics", "containerPort": 9253, "protocol": "TCP"}],
                         "resources": {"requests": {"cpu": "25m", "memory": "5Mi"}},
                         "livenessProbe": {"httpGet": {"host": ip, "path": "/health", "port": 8080},
                                           "initialDelaySeconds": 60, "timeoutSeconds": 5},
                     }],
                 },
             },
         }},
    ]
