"""rbac.authorization.k8s.io/v1: rule shape, role references, subjects; roleRef is immutable.

Texts follow kube-apiserver so `kubectl apply` errors read the same; Go renders a list value as
``[]string{"a"}`` and the role reference as its internal struct.
"""

from __future__ import annotations

from typing import Any

from netplane.api.errors import FieldError, not_supported, required
from netplane.api.gofmt import quote, string_slice

from .access import as_dict, as_list, as_str

RBAC_GROUP = "rbac.authorization.k8s.io"


def _go_strings(values: list[Any]) -> str:
    return string_slice([as_str(v) for v in values])


def _go_role_ref(ref: dict[str, Any]) -> str:
    return (f'rbac.RoleRef{{APIGroup:{quote(as_str(ref.get("apiGroup")))}, Kind:{quote(as_str(ref.get("kind")))}, '
            f'Name:{quote(as_str(ref.get("name")))}}}')


def default_subjects(obj: dict[str, Any]) -> None:
    """Kubernetes fills in a subject's apiGroup from its kind."""
    for subject in as_list(obj.get("subjects")):
        if isinstance(subject, dict) and not subject.get("apiGroup"):
            if subject.get("kind") in ("User", "Group"):
                subject["apiGroup"] = RBAC_GROUP
            elif subject.get("kind") == "ServiceAccount":
                subject["apiGroup"] = ""


def _rule(rule: Any, namespaced: bool, path: str) -> list[FieldError]:
    rule = as_dict(rule)
    errs: list[FieldError] = []
    if not as_list(rule.get("verbs")):
        errs.append(required(f"{path}.verbs", "verbs must contain at least one value"))
    urls = as_list(rule.get("nonResourceURLs"))
    if urls:
        if namespaced:
            errs.append(FieldError("FieldValueInvalid", f"{path}.nonResourceURLs",
                                   f"Invalid value: {_go_strings(urls)}: namespaced rules cannot apply to "
                                   "non-resource URLs"))
        if as_list(rule.get("apiGroups")) or as_list(rule.get("resources")) or as_list(rule.get("resourceNames")):
            errs.append(FieldError("FieldValueInvalid", f"{path}.nonResourceURLs",
                                   f"Invalid value: {_go_strings(urls)}: rules cannot apply to both regular "
                                   "resources and non-resource URLs"))
        return errs
    if not as_list(rule.get("apiGroups")):
        errs.append(required(f"{path}.apiGroups", "resource rules must supply at least one api group"))
    if not as_list(rule.get("resources")):
        errs.append(required(f"{path}.resources", "resource rules must supply at least one resource"))
    return errs


def validate_role(obj: dict[str, Any], namespaced: bool) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, rule in enumerate(as_list(obj.get("rules"))):
        errs += _rule(rule, namespaced, f"rules[{i}]")
    return errs


def _subject(subject: Any, binding_namespaced: bool, path: str) -> list[FieldError]:
    subject = as_dict(subject)
    errs: list[FieldError] = []
    name, kind, group = as_str(subject.get("name")), subject.get("kind"), subject.get("apiGroup") or ""
    if not name:
        errs.append(required(f"{path}.name", ""))
    if kind == "ServiceAccount":
        if group:
            errs.append(not_supported(f"{path}.apiGroup", group, [""]))
        if not subject.get("namespace") and not binding_namespaced:
            errs.append(required(f"{path}.namespace", ""))
    elif kind in ("User", "Group"):
        if group != RBAC_GROUP:
            errs.append(not_supported(f"{path}.apiGroup", group, [RBAC_GROUP]))
    else:
        errs.append(not_supported(f"{path}.kind", kind, ["ServiceAccount", "User", "Group"]))
    return errs


def validate_binding(obj: dict[str, Any], old: dict[str, Any] | None, namespaced: bool) -> list[FieldError]:
    errs: list[FieldError] = []
    ref = as_dict(obj.get("roleRef"))
    kinds = ["Role", "ClusterRole"] if namespaced else ["ClusterRole"]
    if ref.get("apiGroup") != RBAC_GROUP:
        errs.append(not_supported("roleRef.apiGroup", ref.get("apiGroup", ""), [RBAC_GROUP]))
    if ref.get("kind") not in kinds:
        errs.append(not_supported("roleRef.kind", ref.get("kind", ""), kinds))
    if not as_str(ref.get("name")):
        errs.append(required("roleRef.name", ""))
    for i, subject in enumerate(as_list(obj.get("subjects"))):
        errs += _subject(subject, namespaced, f"subjects[{i}]")
    if old is not None:
        old_ref = as_dict(old.get("roleRef"))
        if ref != old_ref:
            errs.append(FieldError("FieldValueInvalid", "roleRef",
                                   f"Invalid value: {_go_role_ref(ref)}: cannot change roleRef"))
    return errs
