"""The create-only Pod subresources the scheduler and `kubectl drain` use: binding and eviction."""

from __future__ import annotations

import copy
from typing import Any

from netplane.api import errors
from netplane.api.core import ApiCore, WriteOptions
from netplane.api.objects import Obj, now
from netplane.api.resources import ResourceType


def _success(code: int = 201) -> Obj:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": code}


def bind(core: ApiCore, pods: ResourceType, namespace: str, name: str, body: Any, opts: WriteOptions) -> Obj:
    """Assign a pod to a node, once, as the scheduler does through pods/binding."""
    if not isinstance(body, dict) or not isinstance(body.get("target"), dict):
        raise errors.bad_request("Binding in version \"v1\" cannot be handled as a Binding: target is required")
    target = body["target"]
    node = target.get("name")
    if not node or target.get("kind", "Node") != "Node":
        raise errors.unprocessable("Binding", name, "", [errors.required("target.name")] if not node else
                                   [errors.not_supported("target.kind", target.get("kind"), ["Node"])])
    pod = core.get(pods, namespace, name)
    current = (pod.get("spec") or {}).get("nodeName")
    if current:
        raise errors.conflict("pods/binding", name, f"pod {name} is already assigned to node \"{current}\"")
    updated = copy.deepcopy(pod)
    updated["spec"]["nodeName"] = node
    status = updated.setdefault("status", {})
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
    conditions.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                       "lastTransitionTime": now()})
    core.update(pods, namespace, name, updated, opts)
    status_only = core.get(pods, namespace, name)
    status_only.setdefault("status", {})["conditions"] = conditions
    core.update(pods, namespace, name, status_only, opts, "status")
    return _success()


def evict(core: ApiCore, pods: ResourceType, namespace: str, name: str, body: Any) -> Obj:
    """Delete a pod through the Eviction API. No PodDisruptionBudget kind is served yet, so
    every eviction is allowed; the body's deleteOptions are honoured."""
    if body is not None and not isinstance(body, dict):
        raise errors.bad_request("Eviction in version \"v1\" cannot be handled as a Eviction: body must be an object")
    options = (body or {}).get("deleteOptions") or {}
    if not isinstance(options, dict):
        raise errors.bad_request("deleteOptions must be an object")
    core.delete(pods, namespace, name, options)
    return _success()
