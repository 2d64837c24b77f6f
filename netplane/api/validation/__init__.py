"""Kubernetes' defaulting and semantic validation of built-in kinds, over JSON-shaped objects.

The API server decodes a request, calls ``apply_defaults``, allocates what it allocates (for a
Service its cluster IP, then ``default_service_ip_families``), and calls ``validate``; a non-empty
result becomes a 422 ``Invalid`` whose causes read exactly like a real cluster's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from netplane.api.errors import FieldError

from . import apps, batch, cluster, config, discovery, formats, networking, pod, rbac, service
from .access import as_dict
from .defaults import apply_defaults, default_service_ip_families
from .meta import NameFn, validate_object_meta, validate_object_meta_update

__all__ = ["apply_defaults", "default_service_ip_families", "validate"]

Obj = dict[str, Any]
SpecCheck = Callable[[Obj, Obj | None], list[FieldError]]

# Cluster-scoped kinds; everything else is namespaced.
_CLUSTER_SCOPED = {("", "Namespace"), ("", "Node"), ("networking.k8s.io", "IngressClass"),
                   ("apiextensions.k8s.io", "CustomResourceDefinition"),
                   ("rbac.authorization.k8s.io", "ClusterRole"), ("rbac.authorization.k8s.io", "ClusterRoleBinding")}

_NAME_RULES: dict[tuple[str, str], NameFn] = {
    ("", "Namespace"): formats.name_is_dns_label,
    ("", "Service"): formats.name_is_dns1035_label,
    # Pod hostnames are derived from StatefulSet names, hence a label rather than a subdomain.
    ("apps", "StatefulSet"): formats.name_is_dns_label,
    # RBAC names only need to be URL path segments ("system:discovery", "netplane:platform-admin").
    **{("rbac.authorization.k8s.io", kind): lambda name, _prefix: formats.path_segment_name(name)
       for kind in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")},
}


def _spec(obj: Obj) -> Any:
    return obj.get("spec")


def _old_spec(old: Obj | None) -> Any:
    return None if old is None else old.get("spec")


def _service(obj: Obj, old: Obj | None) -> list[FieldError]:
    old_meta = None if old is None else old.get("metadata")
    errs = service.validate_cloud_annotations(obj.get("metadata"), old_meta)
    if old is not None:
        errs += service.validate_service_update(_spec(obj), _old_spec(old))
    return errs + service.validate_service_spec(_spec(obj))


def _workload(check: Callable[[Any], list[FieldError]]) -> SpecCheck:
    def run(obj: Obj, old: Obj | None) -> list[FieldError]:
        errs = check(_spec(obj))
        if old is not None:
            errs += apps.validate_selector_unchanged(_spec(obj), _old_spec(old))
        return errs
    return run


def _stateful_set(obj: Obj, old: Obj | None) -> list[FieldError]:
    errs = [] if old is None else apps.validate_stateful_set_update(_spec(obj), _old_spec(old))
    errs += apps.validate_stateful_set_spec(_spec(obj))
    if old is not None:
        errs += apps.validate_selector_unchanged(_spec(obj), _old_spec(old))
    return errs


def _config_map(obj: Obj, old: Obj | None) -> list[FieldError]:
    errs = [] if old is None else config.validate_config_map_update(obj, old)
    return errs + config.validate_config_map(obj)


def _secret(obj: Obj, old: Obj | None) -> list[FieldError]:
    errs = config.validate_secret(obj)
    return errs if old is None else errs + config.validate_secret_update(obj, old)


def _only(check: Callable[[Obj], list[FieldError]]) -> SpecCheck:
    return lambda obj, _old: check(obj)


_SPEC_RULES: dict[tuple[str, str], SpecCheck] = {
    ("", "Service"): _service,
    ("", "Pod"): lambda obj, _old: pod.validate_pod_spec(_spec(obj), "spec"),
    ("", "ConfigMap"): _config_map,
    ("", "Secret"): _secret,
    ("", "Namespace"): _only(cluster.validate_namespace),
    ("", "Node"): _only(cluster.validate_node),
    ("", "Endpoints"): _only(discovery.validate_endpoints),
    ("", "Event"): _only(cluster.validate_core_event),
    ("events.k8s.io", "Event"): _only(cluster.validate_events_event),
    ("coordination.k8s.io", "Lease"): _only(cluster.validate_lease),
    ("apps", "Deployment"): _workload(apps.validate_deployment_spec),
    ("apps", "ReplicaSet"): _workload(apps.validate_replica_set_spec),
    ("apps", "DaemonSet"): _workload(apps.validate_daemon_set_spec),
    ("apps", "StatefulSet"): _stateful_set,
    ("batch", "Job"): _workload(batch.validate_job_spec),
    ("discovery.k8s.io", "EndpointSlice"): discovery.validate_endpoint_slice,
    ("networking.k8s.io", "Ingress"): lambda obj, old: networking.validate_ingress(obj, old is None),
    ("networking.k8s.io", "IngressClass"): networking.validate_ingress_class,
    ("networking.k8s.io", "NetworkPolicy"): _only(networking.validate_network_policy),
    ("rbac.authorization.k8s.io", "Role"): lambda obj, _old: rbac.validate_role(obj, namespaced=True),
    ("rbac.authorization.k8s.io", "ClusterRole"): lambda obj, _old: rbac.validate_role(obj, namespaced=False),
    ("rbac.authorization.k8s.io", "RoleBinding"): lambda obj, old: rbac.validate_binding(obj, old, namespaced=True),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"):
        lambda obj, old: rbac.validate_binding(obj, old, namespaced=False),
}


def validate(group: str, kind: str, obj: Obj, old: Obj | None) -> list[FieldError]:
    """Semantic validation of a defaulted object: on create when ``old`` is None, else on update."""
    key = (group, kind)
    metadata = as_dict(obj.get("metadata"))
    if old is None:
        name_fn = _NAME_RULES.get(key, formats.name_is_dns_subdomain)
        errs = validate_object_meta(metadata, name_fn, namespaced=key not in _CLUSTER_SCOPED)
    else:
        errs = validate_object_meta_update(metadata, as_dict(old.get("metadata")))
    check = _SPEC_RULES.get(key)
    if check is not None:
        errs += check(obj, old)
    return errs
