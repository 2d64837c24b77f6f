"""Kubernetes' RBAC authoriser: does any rule reachable through a binding allow the request?

Semantics follow kube-apiserver's RBAC authoriser (rule matching, subjects, role references,
the wording of reasons); the policy objects come from a ``PolicySource`` so the evaluator is pure
and table-testable. Everything is deny-by-default: there are no deny rules, so the first rule that
allows ends the search.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from netplane.api.selectors import selector_from_label_selector

RBAC_GROUP = "rbac.authorization.k8s.io"
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"

Obj = dict[str, Any]


@dataclass(frozen=True)
class UserInfo:
    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    # Kubernetes' user "extra" (what `kubectl auth whoami` lists as Extra): (key, values) pairs.
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True)
class Attributes:
    """One request as an authoriser sees it (Kubernetes' ``authorizer.Attributes``)."""

    verb: str
    resource_request: bool = True
    namespace: str = ""
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    path: str = ""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""
    # Set when the grant only covers part of a collection: a label selector the list must honour.
    list_scope: str = ""


DENY = Decision(False)


class PolicySource(Protocol):
    def cluster_role_bindings(self) -> Iterable[Obj]: ...
    def role_bindings(self, namespace: str) -> Iterable[Obj]: ...
    def cluster_role(self, name: str) -> Obj | None: ...
    def cluster_roles(self) -> Iterable[Obj]: ...
    def role(self, namespace: str, name: str) -> Obj | None: ...


# --- rule matching ----------------------------------------------------------------------------


def _strings(rule: Mapping[str, Any], key: str) -> Sequence[str]:
    value = rule.get(key)
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else ()


def verb_matches(rule: Mapping[str, Any], verb: str) -> bool:
    return any(v in ("*", verb) for v in _strings(rule, "verbs"))


def api_group_matches(rule: Mapping[str, Any], group: str) -> bool:
    return any(g in ("*", group) for g in _strings(rule, "apiGroups"))


def resource_matches(rule: Mapping[str, Any], resource: str, subresource: str) -> bool:
    """``*``, ``resource``, ``resource/subresource``, and ``*/subresource`` for any resource's subresource."""
    combined = f"{resource}/{subresource}" if subresource else resource
    for r in _strings(rule, "resources"):
        if r in ("*", combined):
            return True
        if subresource and r == "*/" + subresource:
            return True
    return False


def resource_name_matches(rule: Mapping[str, Any], name: str) -> bool:
    # No names means every name; with names, a request without a name (list, create) never matches.
    names = _strings(rule, "resourceNames")
    return not names or name in names


def non_resource_url_matches(rule: Mapping[str, Any], path: str) -> bool:
    for url in _strings(rule, "nonResourceURLs"):
        if url in ("*", path):
            return True
        if url.endswith("*") and path.startswith(url[:-1]):
            return True
    return False


def rule_allows(rule: Mapping[str, Any], attrs: Attributes) -> bool:
    if not verb_matches(rule, attrs.verb):
        return False
    if attrs.resource_request:
        return (api_group_matches(rule, attrs.api_group)
                and resource_matches(rule, attrs.resource, attrs.subresource)
                and resource_name_matches(rule, attrs.name))
    return non_resource_url_matches(rule, attrs.path)


# --- subjects and bindings ---------------------------------------------------------------------


def subject_applies(subject: Mapping[str, Any], user: UserInfo, binding_namespace: str) -> bool:
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "User":
        return name == user.name
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        # A RoleBinding's ServiceAccount subject without a namespace means one in the binding's own.
        namespace = subject.get("namespace") or binding_namespace
        return bool(namespace) and user.name == f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}"
    return False


def _describe_subject(subject: Mapping[str, Any]) -> str:
    name = str(subject.get("name", ""))
    if subject.get("kind") == "ServiceAccount" and subject.get("namespace"):
        name = f"{subject['namespace']}/{name}"
    return f'{subject.get("kind", "")} "{name}"'


def _matching_subject(binding: Obj, user: UserInfo, namespace: str) -> Mapping[str, Any] | None:
    for subject in binding.get("subjects") or []:
        if isinstance(subject, dict) and subject_applies(subject, user, namespace):
            return subject
    return None


@dataclass
class _Search:
    attrs: Attributes
    errors: list[str] = field(default_factory=list)


class RbacAuthorizer:
    def __init__(self, source: PolicySource):
        self.source = source

    def cluster_role_rules(self, name: str) -> list[Obj] | None:
        """A ClusterRole's rules, including those its aggregationRule selects (None: no such role).

        Kubernetes copies aggregated rules into the role with a controller; reading them at
        evaluation time gives the same answer without a controller and without a lag.
        """
        role = self.source.cluster_role(name)
        if role is None:
            return None
        rules = [r for r in role.get("rules") or [] if isinstance(r, dict)]
        aggregation = role.get("aggregationRule")
        if isinstance(aggregation, dict):
            selectors = [selector_from_label_selector(s) for s in aggregation.get("clusterRoleSelectors") or []
                         if isinstance(s, dict)]
            for other in self.source.cluster_roles():
                meta = other.get("metadata") or {}
                if meta.get("name") == name:
                    continue
                labels = meta.get("labels") or {}
                if any(s.matches(labels) for s in selectors):
                    rules += [r for r in other.get("rules") or [] if isinstance(r, dict)]
        return rules

    def _role_rules(self, ref: Mapping[str, Any], namespace: str, search: _Search) -> list[Obj]:
        kind, name = ref.get("kind"), str(ref.get("name", ""))
        if kind == "ClusterRole":
            rules = self.cluster_role_rules(name)
            if rules is None:
                search.errors.append(f'clusterrole.{RBAC_GROUP} "{name}" not found')
            return rules or []
        if kind == "Role" and namespace:
            role = self.source.role(namespace, name)
            if role is None:
                search.errors.append(f'role.{RBAC_GROUP} "{name}" not found')
                return []
            return [r for r in role.get("rules") or [] if isinstance(r, dict)]
        return []

    def authorize(self, user: UserInfo, attrs: Attributes) -> Decision:
        search = _Search(attrs)
        for binding in self.source.cluster_role_bindings():
            ref = binding.get("roleRef") or {}
            subject = _matching_subject(binding, user, "")
            if subject is None or ref.get("kind") != "ClusterRole":
                continue
            if any(rule_allows(r, attrs) for r in self._role_rules(ref, "", search)):
                name = (binding.get("metadata") or {}).get("name", "")
                return Decision(True, f'RBAC: allowed by ClusterRoleBinding "{name}" of ClusterRole '
                                      f'"{ref.get("name", "")}" to {_describe_subject(subject)}')
        if attrs.namespace:
            for binding in self.source.role_bindings(attrs.namespace):
                ref = binding.get("roleRef") or {}
                subject = _matching_subject(binding, user, attrs.namespace)
                if subject is None:
                    continue
                if any(rule_allows(r, attrs) for r in self._role_rules(ref, attrs.namespace, search)):
                    name = (binding.get("metadata") or {}).get("name", "")
                    return Decision(True, f'RBAC: allowed by RoleBinding "{name}/{attrs.namespace}" of '
                                          f'{ref.get("kind", "")} "{ref.get("name", "")}" to '
                                          f"{_describe_subject(subject)}")
        if not search.errors:
            return DENY
        detail = search.errors[0] if len(search.errors) == 1 else "[" + ", ".join(search.errors) + "]"
        return Decision(False, f"RBAC: {detail}")


def forbidden_message(user: UserInfo, attrs: Attributes) -> str:
    """The sentence kube-apiserver puts after ``... is forbidden: `` in a 403."""
    if not attrs.resource_request:
        return f'User "{user.name}" cannot {attrs.verb} path "{attrs.path}"'
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    where = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
    return f'User "{user.name}" cannot {attrs.verb} resource "{resource}" in API group "{attrs.api_group}" {where}'
