"""The resource types the API serves: built-in kinds and, at run time, custom ones."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

VERBS_ALL = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = VERBS_ALL
    builtin: bool = True
    # Custom kinds only: the CRD's served-version data (schema, printer columns, scale paths).
    crd_version: dict | None = field(default=None, compare=False, hash=False)
    storage_version: str = ""
    # A CRD may name its singular differently from its lower-cased kind (provider-network).
    singular_name: str = ""
    # Subresources that stream (exec, log, …): served by netplane.api.streaming, not stored, and
    # not listed in discovery, which has no verbs for them yet.
    connect: tuple[str, ...] = ()

    @property
    def singular(self) -> str:
        return self.singular_name or self.kind.lower()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """How Kubernetes names the resource in messages: ``services``, ``deployments.apps``."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def stored_as_served(self) -> bool:
        """Whether stored bytes are exactly what this version serves (no conversion needed)."""
        return self.builtin or self.version == self.storage_version

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources


def _rt(group: str, kind: str, plural: str, namespaced: bool = True, short: tuple[str, ...] = (),
        cats: tuple[str, ...] = (), subs: tuple[str, ...] = (), version: str = "v1",
        verbs: tuple[str, ...] = VERBS_ALL) -> ResourceType:
    return ResourceType(group, version, kind, plural, namespaced, short, cats, subs, verbs)


BUILTIN_TYPES: tuple[ResourceType, ...] = (
    _rt("", "Namespace", "namespaces", False, ("ns",), subs=("status", "finalize"),
        verbs=("create", "delete", "get", "list", "patch", "update", "watch")),
    _rt("", "Node", "nodes", False, ("no",), subs=("status",)),
    dataclasses.replace(_rt("", "Pod", "pods", True, ("po",), ("all",), subs=("status", "binding", "eviction")),
                        connect=("exec", "attach", "log", "portforward")),
    _rt("", "Service", "services", True, ("svc",), ("all",), subs=("status",),
        verbs=("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")),
    _rt("", "Endpoints", "endpoints", True, ("ep",)),
    _rt("", "Secret", "secrets"),
    _rt("", "ConfigMap", "configmaps", True, ("cm",)),
    _rt("", "Event", "events", True, ("ev",)),
    _rt("", "ServiceAccount", "serviceaccounts", True, ("sa",), subs=("token",)),
    _rt("apps", "Deployment", "deployments", True, ("deploy",), ("all",), ("status", "scale")),
    _rt("apps", "ReplicaSet", "replicasets", True, ("rs",), ("all",), ("status", "scale")),
    _rt("apps", "StatefulSet", "statefulsets", True, ("sts",), ("all",), ("status", "scale")),
    _rt("apps", "DaemonSet", "daemonsets", True, ("ds",), ("all",), ("status",)),
    _rt("batch", "Job", "jobs", True, (), ("all",), ("status",)),
    _rt("discovery.k8s.io", "EndpointSlice", "endpointslices"),
    _rt("networking.k8s.io", "Ingress", "ingresses", True, ("ing",), subs=("status",)),
    _rt("networking.k8s.io", "IngressClass", "ingressclasses", False),
    _rt("networking.k8s.io", "NetworkPolicy", "networkpolicies", True, ("netpol",)),
    _rt("coordination.k8s.io", "Lease", "leases"),
    _rt("events.k8s.io", "Event", "events", True, ("ev",)),
    _rt("apiextensions.k8s.io", "CustomResourceDefinition", "customresourcedefinitions", False,
        ("crd", "crds"), ("api-extensions",), ("status",)),
    _rt("rbac.authorization.k8s.io", "Role", "roles"),
    _rt("rbac.authorization.k8s.io", "RoleBinding", "rolebindings"),
    _rt("rbac.authorization.k8s.io", "ClusterRole", "clusterroles", False),
    _rt("rbac.authorization.k8s.io", "ClusterRoleBinding", "clusterrolebindings", False),
    # Create-only and never stored: answered from the caller's identity (netplane.api.auth.reviews).
    _rt("authorization.k8s.io", "SelfSubjectAccessReview", "selfsubjectaccessreviews", False, verbs=("create",)),
    _rt("authentication.k8s.io", "SelfSubjectReview", "selfsubjectreviews", False, verbs=("create",)),
)
