"""The built-in ClusterRoles and ClusterRoleBindings, created (or brought up to date) at start-up.

As in Kubernetes, a built-in object annotated ``rbac.authorization.kubernetes.io/autoupdate: "false"``
is left as the administrator changed it; otherwise it is reset to what this netplane ships.
"""

from __future__ import annotations

from typing import Any

from netplane.api.auth.nodes import NODE_ROLE, NODES_GROUP
from netplane.api.auth.projects import DEVELOPER_ROLE
from netplane.api.auth.rbac import RBAC_GROUP
from netplane.api.auth.users import ADMINS_GROUP, AUTHENTICATED_GROUP
from netplane.api.core import ApiCore, WriteOptions

PLATFORM_ADMIN_ROLE = "netplane:platform-admin"

AUTOUPDATE = "rbac.authorization.kubernetes.io/autoupdate"
_WRITE = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]

# What a developer works with inside a project namespace. No Roles/RoleBindings (no granting
# rights to others), no ResourceQuotas or cluster-scoped kinds.
_DEVELOPER_RESOURCES: dict[str, list[str]] = {
    "": ["services", "endpoints", "pods", "configmaps", "secrets", "events", "serviceaccounts"],
    "apps": ["deployments", "replicasets", "statefulsets", "daemonsets",
             "deployments/scale", "replicasets/scale", "statefulsets/scale"],
    "batch": ["jobs"],
    "discovery.k8s.io": ["endpointslices"],
    "networking.k8s.io": ["ingresses", "networkpolicies"],
    "events.k8s.io": ["events"],
}

_READ = ["get", "list", "watch"]
# What a node agent does and nothing more (docs/design/auth.md, "Node identities"): its Node and
# heartbeat, the pods it runs and their status, what their containers are configured from (Secrets:
# only those its pods use, decided by `nodes.secret_decision`), the network and Services it wires,
# tokens for its pods' projected volumes, probe Events.
_NODE_RULES: list[dict[str, Any]] = [
    {"apiGroups": [""], "resources": ["nodes"], "verbs": [*_READ, "create", "update", "patch"]},
    {"apiGroups": [""], "resources": ["nodes/status", "pods/status"], "verbs": ["update", "patch"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": [*_READ, "delete"]},
    {"apiGroups": [""], "resources": ["services", "configmaps"], "verbs": _READ},
    {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": _READ},
    {"apiGroups": ["kubeovn.io"], "resources": ["subnets"], "verbs": _READ},
    {"apiGroups": ["netplane.io"], "resources": ["clusterplugins"], "verbs": _READ},
    {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]},
    {"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create", "update", "patch"]},
]

# kube-apiserver's system:discovery and system:basic-user: what any authenticated user may do.
_DISCOVERY_URLS = ["/api", "/api/*", "/apis", "/apis/*", "/openapi", "/openapi/*", "/version", "/version/",
                   "/healthz", "/livez", "/readyz"]


def _role(name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": f"{RBAC_GROUP}/v1", "kind": "ClusterRole", "metadata": {
        "name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
        "annotations": {AUTOUPDATE: "true"}}, "rules": rules}


def _binding(name: str, role: str, group: str) -> dict[str, Any]:
    return {"apiVersion": f"{RBAC_GROUP}/v1", "kind": "ClusterRoleBinding", "metadata": {
        "name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
        "annotations": {AUTOUPDATE: "true"}},
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": RBAC_GROUP, "kind": "Group", "name": group}]}


def builtin_objects() -> list[dict[str, Any]]:
    return [
        _role(PLATFORM_ADMIN_ROLE, [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                                    {"nonResourceURLs": ["*"], "verbs": ["*"]}]),
        _binding(PLATFORM_ADMIN_ROLE, PLATFORM_ADMIN_ROLE, ADMINS_GROUP),
        _role(DEVELOPER_ROLE, [{"apiGroups": [group], "resources": resources, "verbs": list(_WRITE)}
                               for group, resources in _DEVELOPER_RESOURCES.items()]
              # As Kubernetes' edit role: whoever may run pods as an account may get its tokens anyway.
              + [{"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]}]),
        _role("system:discovery", [{"nonResourceURLs": _DISCOVERY_URLS, "verbs": ["get"]}]),
        _binding("system:discovery", "system:discovery", AUTHENTICATED_GROUP),
        _role("system:basic-user", [
            {"apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews"], "verbs": ["create"]},
            {"apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"], "verbs": ["create"]}]),
        _binding("system:basic-user", "system:basic-user", AUTHENTICATED_GROUP),
        _role(NODE_ROLE, _NODE_RULES),
        _binding(NODE_ROLE, NODE_ROLE, NODES_GROUP),
    ]


def ensure_builtin_roles(core: ApiCore) -> None:
    for obj in builtin_objects():
        plural = "clusterroles" if obj["kind"] == "ClusterRole" else "clusterrolebindings"
        rt = core.registry.lookup(RBAC_GROUP, "v1", plural)
        assert rt is not None
        name = obj["metadata"]["name"]
        existing = core.store.get_obj(rt, "", name)
        if existing is None:
            core.create(rt, "", obj, WriteOptions())
            continue
        if (existing["metadata"].get("annotations") or {}).get(AUTOUPDATE) == "false":
            continue
        wanted = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
        if any(existing.get(k) != v for k, v in wanted.items()):
            if existing.get("roleRef") not in (None, obj.get("roleRef")):
                # roleRef is immutable: replace the binding.
                core.delete(rt, "", name, {})
                core.create(rt, "", obj, WriteOptions())
                continue
            existing.update(wanted)
            core.update(rt, "", name, existing, WriteOptions())
