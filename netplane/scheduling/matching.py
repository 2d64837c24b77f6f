"""Does a node satisfy a pod's nodeSelector and required node affinity, and does the pod tolerate its taints?

Semantics follow Kubernetes (component-helpers' nodeaffinity and v1 toleration helpers):
- nodeSelectorTerms are ORed, the requirements inside one term ANDed; a term with no requirement
  at all matches no node.
- Gt/Lt compare the label as an integer with the single value; a label that is not an integer
  does not match.
- matchFields supports only `metadata.name` (the one field Kubernetes allows).
- A toleration with an empty key and operator Exists tolerates every taint; an empty effect
  tolerates every effect.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

Obj = dict[str, Any]

NO_SCHEDULE, PREFER_NO_SCHEDULE, NO_EXECUTE = "NoSchedule", "PreferNoSchedule", "NoExecute"
# Effects that keep a pod off a node; PreferNoSchedule only lowers a node's score.
BLOCKING_EFFECTS = (NO_SCHEDULE, NO_EXECUTE)


def _labels(node: Obj) -> Mapping[str, str]:
    return (node.get("metadata") or {}).get("labels") or {}


def _int(value: Any) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def requirement_matches(values_of: Mapping[str, str], req: Obj) -> bool:
    key, op, values = req.get("key", ""), req.get("operator", ""), list(req.get("values") or [])
    present = key in values_of
    if op == "In":
        return present and values_of[key] in values
    if op == "NotIn":
        return not present or values_of[key] not in values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt"):
        if not present or len(values) != 1:
            return False
        have, bound = _int(values_of[key]), _int(values[0])
        if have is None or bound is None:
            return False
        return have > bound if op == "Gt" else have < bound
    return False  # an operator the API would have refused: never a match


def term_matches(node: Obj, term: Obj) -> bool:
    expressions = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not expressions and not fields:
        return False
    name = str((node.get("metadata") or {}).get("name") or "")
    node_fields = {"metadata.name": name}
    return (all(requirement_matches(_labels(node), r) for r in expressions)
            and all(r.get("key") == "metadata.name" and requirement_matches(node_fields, r) for r in fields))


def required_affinity_terms(pod_spec: Obj) -> list[Obj] | None:
    """The required nodeSelectorTerms, or None when the pod has no required node affinity."""
    required = (((pod_spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution"))
    if not required:
        return None
    return list(required.get("nodeSelectorTerms") or [])


def node_selector_matches(pod_spec: Obj, node: Obj) -> bool:
    """The pod's nodeSelector and required node affinity both accept the node."""
    labels = _labels(node)
    for key, value in (pod_spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    terms = required_affinity_terms(pod_spec)
    return terms is None or any(term_matches(node, t) for t in terms)


def tolerates(toleration: Obj, taint: Obj) -> bool:
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    operator = toleration.get("operator") or "Equal"
    if not key:
        return operator == "Exists"
    if key != taint.get("key"):
        return False
    if operator == "Exists":
        return True
    return operator == "Equal" and (toleration.get("value") or "") == (taint.get("value") or "")


def first_untolerated(taints: Iterable[Obj], tolerations: Iterable[Obj],
                      effects: tuple[str, ...] = BLOCKING_EFFECTS) -> Obj | None:
    """The first taint with one of `effects` that no toleration tolerates."""
    tolerations = list(tolerations)
    for taint in taints:
        if taint.get("effect") in effects and not any(tolerates(t, taint) for t in tolerations):
            return taint
    return None


def taint_text(taint: Obj) -> str:
    """A taint as kube-scheduler prints it in its reasons: `{key: value}`."""
    return f"{{{taint.get('key', '')}: {taint.get('value', '') or ''}}}"
