"""The `scale` subresource: an autoscaling/v1 Scale view of a workload's replicas."""

from __future__ import annotations

import copy
from typing import Any

from netplane.api import errors, schemacheck, schemas
from netplane.api.objects import Obj
from netplane.api.resources import ResourceType
from netplane.api.selectors import format_label_selector


def _paths(rt: ResourceType) -> tuple[str, str, str]:
    if rt.builtin:
        return ".spec.replicas", ".status.replicas", ""
    scale = ((rt.crd_version or {}).get("subresources") or {}).get("scale") or {}
    return scale.get("specReplicasPath", ".spec.replicas"), scale.get("statusReplicasPath", ".status.replicas"), \
        scale.get("labelSelectorPath", "")


def _read(obj: Any, path: str) -> Any:
    for part in path.strip(".").split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def _write(obj: dict[str, Any], path: str, value: Any) -> None:
    parts = path.strip(".").split(".")
    for part in parts[:-1]:
        obj = obj.setdefault(part, {})
    obj[parts[-1]] = value


def get_scale(rt: ResourceType, obj: Obj) -> Obj:
    spec_path, status_path, selector_path = _paths(rt)
    m = obj.get("metadata") or {}
    selector: Any
    if rt.builtin:
        selector = format_label_selector((obj.get("spec") or {}).get("selector"))
    else:
        selector = _read(obj, selector_path) if selector_path else None
    status: dict[str, Any] = {"replicas": _read(obj, status_path) or 0}
    if selector:
        status["selector"] = selector
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: m[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                         if k in m},
            "spec": {"replicas": _read(obj, spec_path) or 0}, "status": status}


def scale_to_replicas(rt: ResourceType, current: Obj, scale: Any) -> Obj:
    """The object after applying a Scale's spec.replicas to it."""
    if not isinstance(scale, dict):
        raise errors.bad_request("the body of the request must be a Scale object")
    schema = schemas.kind_schema("autoscaling", "v1", "Scale")
    if schema is not None:
        _, type_errors = schemacheck.decode_errors(scale, schema)
        if type_errors:
            raise errors.bad_request(schemacheck.type_error_message("Scale", "v1", type_errors[0]))
    replicas = (scale.get("spec") or {}).get("replicas")
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        raise errors.unprocessable("Scale", (current.get("metadata") or {}).get("name", ""), "autoscaling", [
            errors.invalid("spec.replicas", replicas, "must be greater than or equal to 0")])
    updated = copy.deepcopy(current)
    rv = (scale.get("metadata") or {}).get("resourceVersion")
    if rv:
        updated["metadata"]["resourceVersion"] = rv
    _write(updated, _paths(rt)[0], replicas)
    return updated
