"""What a node may do beyond its `system:node` ClusterRole, and what it may not despite it.

`secret_decision`: it reads only the Secrets its own pods use, one by name (Kubernetes' Node
authorizer, for Secrets). `restriction`: it changes only its own Node and the pods bound to it
(Kubernetes' NodeRestriction, for updates, patches and deletions of existing objects).

`referenced_secrets` is shared by the gate, which decides, and the node agent, which fetches exactly
what it will be allowed to read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from netplane.api.auth.rbac import Attributes, Decision, UserInfo

NODE_ROLE = "system:node"
NODES_GROUP = "system:nodes"
NODE_USER_PREFIX = "system:node:"
_READ = ("get", "list", "watch")
_CHANGE = ("update", "patch", "delete")

Obj = dict[str, Any]


def node_name(user: UserInfo) -> str | None:
    """The node a user is (`system:node:<name>` in `system:nodes`), None for anyone else."""
    if NODES_GROUP in user.groups and user.name.startswith(NODE_USER_PREFIX):
        return user.name[len(NODE_USER_PREFIX):] or None
    return None


def restriction(user: UserInfo, attrs: Attributes, get_pod: Callable[[str, str], Obj | None]) -> Decision | None:
    """A denial when a node would change another node's Node or a pod bound elsewhere; None otherwise."""
    node = node_name(user)
    if node is None or attrs.api_group != "" or attrs.verb not in _CHANGE or not attrs.name:
        return None
    if attrs.resource == "nodes" and attrs.name != node:
        return Decision(False, f"node {node!r} cannot modify node {attrs.name!r}")
    if attrs.resource == "pods":
        pod = get_pod(attrs.namespace, attrs.name)
        if pod is not None and (pod.get("spec") or {}).get("nodeName") != node:
            return Decision(False, f"node {node!r} can only modify pods bound to it")
    return None


def referenced_secrets(pod: Obj) -> set[str]:
    """Names of the Secrets a pod uses: volumes, projected sources, env, envFrom, imagePullSecrets."""
    spec = pod.get("spec") or {}
    names = {str(ref.get("name") or "") for ref in spec.get("imagePullSecrets") or []}
    for volume in spec.get("volumes") or []:
        names.add(str((volume.get("secret") or {}).get("secretName") or ""))
        for source in (volume.get("projected") or {}).get("sources") or []:
            names.add(str((source.get("secret") or {}).get("name") or ""))
    for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        for env in container.get("env") or []:
            names.add(str(((env.get("valueFrom") or {}).get("secretKeyRef") or {}).get("name") or ""))
        for source in container.get("envFrom") or []:
            names.add(str((source.get("secretRef") or {}).get("name") or ""))
    names.discard("")
    return names


def secret_decision(user: UserInfo, attrs: Attributes,
                    pods_in: Callable[[str], Iterable[Obj]]) -> Decision | None:
    """Allows a node to read one Secret by name (get, or list/watch pinned by `metadata.name`) that a pod
    bound to it in that namespace uses; None (no opinion: RBAC decides, and `system:node` grants no
    Secrets) for anything else, as Kubernetes' Node authorizer before RBAC."""
    node = node_name(user)
    if node is None or attrs.api_group != "" or attrs.resource != "secrets" or attrs.subresource:
        return None
    if attrs.verb in _READ and attrs.name and attrs.namespace and any(
            (pod.get("spec") or {}).get("nodeName") == node and attrs.name in referenced_secrets(pod)
            for pod in pods_in(attrs.namespace)):
        return Decision(True)
    return None
