"""Plain helpers over JSON-shaped API objects: keys, timestamps and the attributes we index."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from netplane.api.resources import ResourceType

Obj = dict[str, Any]


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_uid() -> str:
    return str(uuid.uuid4())


def random_suffix() -> str:
    """Five characters as Kubernetes appends to generated names (no vowels, no look-alikes)."""
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return "".join(secrets.choice(alphabet) for _ in range(5))


def key(rt: ResourceType, namespace: str, name: str) -> str:
    return f"/{rt.group or 'core'}/{rt.plural}/{namespace if rt.namespaced else ''}/{name}"


def prefix(rt: ResourceType, namespace: str | None) -> str:
    """Key prefix of a collection; ``namespace`` None or empty means all namespaces."""
    base = f"/{rt.group or 'core'}/{rt.plural}/"
    return base + f"{namespace}/" if rt.namespaced and namespace else base


def meta(obj: Obj) -> dict[str, Any]:
    m = obj.get("metadata")
    if not isinstance(m, dict):
        m = {}
        obj["metadata"] = m
    return m


def _get_path(obj: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def _as_field(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# Fields each kind can be selected by, beyond metadata.name and metadata.namespace
# (the sets Kubernetes registers for them).
_EXTRA_FIELDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "Pod"): ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
                  "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"),
    ("", "Event"): ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                    "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
                    "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"),
    ("events.k8s.io", "Event"): ("regarding.kind", "regarding.namespace", "regarding.name", "regarding.uid",
                                 "regarding.apiVersion", "regarding.resourceVersion", "regarding.fieldPath",
                                 "reason", "reportingController", "type"),
    ("", "Secret"): ("type",),
    ("", "Node"): ("spec.unschedulable",),
    ("", "Namespace"): ("status.phase",),
    ("", "Service"): ("spec.clusterIP", "spec.type"),
    ("apps", "ReplicaSet"): ("status.replicas",),
}


def selectable_fields(rt: ResourceType) -> frozenset[str]:
    extra = _EXTRA_FIELDS.get((rt.group, rt.kind), ())
    if rt.crd_version:
        extra = tuple(f["jsonPath"].lstrip(".") for f in rt.crd_version.get("selectableFields") or [])
    return frozenset(("metadata.name", "metadata.namespace", *extra))


@dataclass(frozen=True, slots=True)
class Attrs:
    """What lists and watches filter on, kept beside each stored object so they need not decode it."""

    labels: dict[str, str]
    fields: dict[str, str]
    owners: tuple[str, ...]  # uids of ownerReferences, for garbage collection


def attrs_of(rt: ResourceType, obj: Obj) -> Attrs:
    m = obj.get("metadata") or {}
    fields = {"metadata.name": m.get("name", ""), "metadata.namespace": m.get("namespace", "")}
    for path in selectable_fields(rt) - fields.keys():
        fields[path] = _as_field(_get_path(obj, path))
    if (rt.group, rt.kind) == ("", "Event") and isinstance(obj.get("source"), dict):
        fields["source"] = obj["source"].get("component", "")
    owners = tuple(ref.get("uid", "") for ref in m.get("ownerReferences") or [])
    return Attrs(dict(m.get("labels") or {}), fields, owners)


def encoder(rt: ResourceType, obj: Obj) -> Callable[[int], tuple[bytes, Attrs]]:
    """A store value builder: stamps the revision as resourceVersion and encodes once."""

    def build(revision: int) -> tuple[bytes, Attrs]:
        meta(obj)["resourceVersion"] = str(revision)
        if not rt.builtin and rt.storage_version:
            # Custom objects are stored in their storage version whichever version wrote them.
            obj["apiVersion"] = f"{rt.group}/{rt.storage_version}"
        return orjson.dumps(obj), attrs_of(rt, obj)

    return build


def decode(value: bytes) -> Obj:
    result: Obj = orjson.loads(value)
    return result
