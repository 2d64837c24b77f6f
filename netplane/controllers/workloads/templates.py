"""Pod templates: Kubernetes' pod-template-hash, and pods stamped out of a template for an owner."""

from __future__ import annotations

import copy
from typing import Any

import orjson

from netplane.controllers.workloads.pods import owner_ref

Obj = dict[str, Any]

POD_TEMPLATE_HASH = "pod-template-hash"
# rand.SafeEncodeString's alphabet: no vowels (no words in names) and no look-alike characters.
_SAFE = "bcdfghjklmnpqrstvwxz2456789"


def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for byte in data:
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h


def safe_encode(text: str) -> str:
    return "".join(_SAFE[ord(c) % len(_SAFE)] for c in text)


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def without_hash(template: Obj) -> Obj:
    """The template as compared and hashed: no pod-template-hash label, and no null fields.

    Nulls go because Kubernetes compares typed structs, where `creationTimestamp: null` (which
    `kubectl rollout undo` sends back) is the same as no field; this API keeps such nulls.
    """
    out = _drop_nulls(copy.deepcopy(template or {}))
    labels = (out.get("metadata") or {}).get("labels")
    if labels:
        labels.pop(POD_TEMPLATE_HASH, None)
    return out


def template_hash(template: Obj, collision_count: int | None = None) -> str:
    """A short, stable name part for a template (FNV-32a, encoded as Kubernetes encodes it).

    The template is hashed as canonical JSON, so equal templates always give the same hash; a
    collision count (bumped when the name is taken by a different template) changes it.
    """
    data = orjson.dumps(without_hash(template), option=orjson.OPT_SORT_KEYS)
    if collision_count:
        data += str(collision_count).encode()
    return safe_encode(str(fnv32a(data)))


def same_template(a: Obj, b: Obj) -> bool:
    """Equal but for the pod-template-hash label (how a Deployment finds its ReplicaSet)."""
    return without_hash(a) == without_hash(b)


def pod_for(owner: Obj, template: Obj, *, name: str | None = None, generate_name: str | None = None,
            labels: dict[str, str] | None = None) -> Obj:
    """A new pod from `template`, controlled by `owner`; `labels` are added to the template's."""
    template = template or {}
    tmeta = template.get("metadata") or {}
    metadata: Obj = {"namespace": (owner.get("metadata") or {}).get("namespace"),
                     "labels": {**(tmeta.get("labels") or {}), **(labels or {})},
                     "ownerReferences": [owner_ref(owner)]}
    if tmeta.get("annotations"):
        metadata["annotations"] = dict(tmeta["annotations"])
    if name:
        metadata["name"] = name
    else:
        metadata["generateName"] = generate_name or f"{owner['metadata']['name']}-"
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": copy.deepcopy(template.get("spec") or {})}
