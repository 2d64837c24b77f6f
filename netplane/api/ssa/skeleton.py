"""What a built-in object looks like before anything is written to it.

Kubernetes tracks a create as an update from the kind's zero value, a Go struct:
its non-pointer struct fields (``spec``, ``spec.template``, ``spec.strategy``...)
already exist there as empty objects, so creating them is not "adding" them and
the creator's field set has no ``.`` entry for them — while it does for fields that
are pointers or maps (``metadata.labels``, ``spec.strategy.rollingUpdate``). The
OpenAPI schema does not say which fields are pointers, hence this table of the
served built-in kinds' non-pointer struct fields. Custom objects start empty.
"""

from __future__ import annotations

from typing import Any

_TEMPLATE: dict[str, Any] = {"metadata": {}, "spec": {}}

_SKELETONS: dict[tuple[str, str], dict[str, Any]] = {
    ("", "Namespace"): {"spec": {}, "status": {}},
    ("", "Node"): {"spec": {}, "status": {"daemonEndpoints": {"kubeletEndpoint": {}}, "nodeInfo": {}}},
    ("", "Pod"): {"spec": {}, "status": {}},
    ("", "Service"): {"spec": {}, "status": {"loadBalancer": {}}},
    ("", "Event"): {"involvedObject": {}, "source": {}},
    ("apps", "Deployment"): {"spec": {"template": _TEMPLATE, "strategy": {}}, "status": {}},
    ("apps", "ReplicaSet"): {"spec": {"template": _TEMPLATE}, "status": {}},
    ("apps", "StatefulSet"): {"spec": {"template": _TEMPLATE, "updateStrategy": {}}, "status": {}},
    ("apps", "DaemonSet"): {"spec": {"template": _TEMPLATE, "updateStrategy": {}}, "status": {}},
    ("batch", "Job"): {"spec": {"template": _TEMPLATE}, "status": {}},
    ("networking.k8s.io", "Ingress"): {"spec": {}, "status": {"loadBalancer": {}}},
    ("networking.k8s.io", "IngressClass"): {"spec": {}},
    ("networking.k8s.io", "NetworkPolicy"): {"spec": {"podSelector": {}}},
    ("coordination.k8s.io", "Lease"): {"spec": {}},
    ("events.k8s.io", "Event"): {"regarding": {}, "deprecatedSource": {}},
    ("apiextensions.k8s.io", "CustomResourceDefinition"): {"spec": {"names": {}},
                                                           "status": {"acceptedNames": {}}},
}


def skeleton(group: str, kind: str, builtin: bool) -> dict[str, Any]:
    """The zero value of a kind (shared: do not modify)."""
    if not builtin:
        return {}
    return {"metadata": {}, **_SKELETONS.get((group, kind), {})}
