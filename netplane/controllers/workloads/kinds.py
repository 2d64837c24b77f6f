"""Where the workload kinds are served."""

from __future__ import annotations

from netplane.controllers.kube.resources import Resource

PODS = Resource("", "v1", "pods", kind="Pod")
NODES = Resource("", "v1", "nodes", namespaced=False, kind="Node")
DEPLOYMENTS = Resource("apps", "v1", "deployments", kind="Deployment")
REPLICASETS = Resource("apps", "v1", "replicasets", kind="ReplicaSet")
STATEFULSETS = Resource("apps", "v1", "statefulsets", kind="StatefulSet")
DAEMONSETS = Resource("apps", "v1", "daemonsets", kind="DaemonSet")
