"""What an IngressNginx instance lays out (pure): the objects the ingress-nginx chart would create.

For instance `demo` in namespace `ns` serving class `nginx`:
- IngressClass `nginx` (controller k8s.io/ingress-nginx; the default class when the values say so),
- ServiceAccount `demo-ingress-nginx`, ClusterRole `netplane:ingress-nginx` (shared by every instance) and
  ClusterRoleBinding `netplane:ingress-nginx:ns:demo`,
- the controller workload `demo-ingress-nginx-controller` (Deployment, or DaemonSet when the values say
  `kind: DaemonSet`), running netplane's gateway engine for that class (`netplane/ingress-nginx` image),
- Service `demo-ingress-nginx-controller` (type, node ports from the values).

Everything carries an owner reference to the IngressNginx, so deleting it removes the instance.
The instance reads its settings (controller.config, allowSnippetAnnotations) from the IngressNginx
itself, live, so a settings change needs no rollout.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

IMAGE = "netplane/ingress-nginx:v1"
INSTANCE_LABEL = "app.kubernetes.io/instance"
METRICS_PORT = 10254


def controller(instance: Obj) -> Obj:
    return ((instance.get("spec") or {}).get("controller")) or {}


def class_name(instance: Obj) -> str:
    return str((controller(instance).get("ingressClassResource") or {}).get("name") or "nginx")


def workload_name(instance: Obj) -> str:
    return f"{instance['metadata']['name']}-ingress-nginx-controller"


def _meta(instance: Obj, name: str, namespaced: bool, labels: dict[str, str] | None = None) -> Obj:
    m = instance["metadata"]
    meta: Obj = {
        "name": name,
        "labels": {"app.kubernetes.io/name": "ingress-nginx", INSTANCE_LABEL: m["name"],
                   "app.kubernetes.io/managed-by": "netplane", **(labels or {})},
        "ownerReferences": [{"apiVersion": instance.get("apiVersion", "ingress-nginx.alauda.io/v1"),
                             "kind": "IngressNginx", "name": m["name"], "uid": m["uid"], "controller": True}],
    }
    if namespaced:
        meta["namespace"] = m["namespace"]
    return meta


def objects(instance: Obj) -> list[Obj]:
    m, values = instance["metadata"], controller(instance)
    cls = class_name(instance)
    resource = values.get("ingressClassResource") or {}
    account = f"{m['name']}-ingress-nginx"
    selector = {"app.kubernetes.io/name": "ingress-nginx", INSTANCE_LABEL: m["name"],
                "app.kubernetes.io/component": "controller"}
    host_network = bool(values.get("hostNetwork"))
    pod_spec: Obj = {
        "serviceAccountName": account,
        "hostNetwork": host_network,
        "dnsPolicy": "ClusterFirstWithHostNet" if host_network else "ClusterFirst",
        "nodeSelector": {"kubernetes.io/os": "linux", **(values.get("nodeSelector") or {})},
        "tolerations": list(values.get("tolerations") or []),
        "containers": [{
            "name": "controller", "image": IMAGE,
            "args": ["--class", cls, "--instance", f"{m['namespace']}/{m['name']}"],
            "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"},
                      {"name": "https", "containerPort": 443, "protocol": "TCP"},
                      {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}],
            "readinessProbe": {"httpGet": {"path": "/healthz", "port": METRICS_PORT}, "periodSeconds": 2},
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": METRICS_PORT}, "initialDelaySeconds": 30,
                              "failureThreshold": 5},
        }],
    }
    template = {"metadata": {"labels": selector, "annotations": dict(values.get("podAnnotations") or {})},
                "spec": pod_spec}
    kind = str(values.get("kind") or "Deployment")
    workload_spec: Obj = {"selector": {"matchLabels": selector}, "template": template}
    if kind == "Deployment":
        workload_spec["replicas"] = int(values.get("replicaCount", 1))
    service = values.get("service") or {}
    node_ports = service.get("nodePorts") or {}
    ports: list[Obj] = []
    for name, port in (("http", 80), ("https", 443)):
        entry: Obj = {"name": name, "port": port, "targetPort": name, "protocol": "TCP"}
        if node_ports.get(name) and service.get("type", "LoadBalancer") != "ClusterIP":
            entry["nodePort"] = int(node_ports[name])
        ports.append(entry)
    class_meta = _meta(instance, cls, False)
    if resource.get("default"):
        class_meta["annotations"] = {"ingressclass.kubernetes.io/is-default-class": "true"}
    return [
        {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": class_meta,
         "spec": {"controller": str(resource.get("controllerValue") or "k8s.io/ingress-nginx")}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(instance, account, True)},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": "netplane:ingress-nginx", "labels": {"app.kubernetes.io/managed-by": "netplane"}},
         "rules": [
             {"apiGroups": [""], "resources": ["services", "endpoints", "secrets", "configmaps", "pods", "nodes"],
              "verbs": ["get", "list", "watch"]},
             {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
             {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["get", "list", "watch"]},
             {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses", "ingressclasses"],
              "verbs": ["get", "list", "watch"]},
             {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses/status"], "verbs": ["update", "patch"]},
             {"apiGroups": ["ingress-nginx.alauda.io"], "resources": ["ingressnginxes"],
              "verbs": ["get", "list", "watch"]},
         ]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": _meta(instance, f"netplane:ingress-nginx:{m['namespace']}:{m['name']}", False),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "netplane:ingress-nginx"},
         "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": m["namespace"]}]},
        {"apiVersion": "apps/v1", "kind": kind,
         "metadata": _meta(instance, workload_name(instance), True, {"app.kubernetes.io/component": "controller"}),
         "spec": workload_spec},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": _meta(instance, workload_name(instance), True, {"app.kubernetes.io/component": "controller"}),
         "spec": {"type": str(service.get("type") or "LoadBalancer"), "selector": selector, "ports": ports}},
    ]
