"""What membership of a project grants, decided from namespace labels at request time.

A project P's namespaces are those labelled ``cpaas.io/project: P``. Members (group ``project:P``)
get the rules of ClusterRole ``netplane:project-developer`` in exactly those namespaces, may read
those namespaces, and may read their Project object.

Why not RoleBindings written by a controller: the grant would lag behind the label (and vanish
late when the label is removed), and a hand-edited or deleted binding would silently change what
a project means. Reading the label on each request makes relabelling take effect on the next
request, in both directions, and keeps the stored RBAC objects exactly what administrators wrote.
"""

from __future__ import annotations

from collections.abc import Callable

from netplane.api.auth.rbac import Attributes, Decision, UserInfo, rule_allows
from netplane.api.auth.users import PROJECT_GROUP_PREFIX

PROJECT_LABEL = "cpaas.io/project"
DEVELOPER_ROLE = "netplane:project-developer"
PROJECT_API_GROUP = "netplane.io"
_READ = ("get", "list", "watch")

NamespaceLabels = Callable[[str], dict[str, str] | None]
RoleRules = Callable[[str], list[dict] | None]


def projects_of(user: UserInfo) -> list[str]:
    return sorted(g[len(PROJECT_GROUP_PREFIX):] for g in user.groups if g.startswith(PROJECT_GROUP_PREFIX))


def _own_namespace(attrs: Attributes) -> bool:
    """A request on a namespace object itself (get, watch by name), not on something inside it."""
    return attrs.api_group == "" and attrs.resource == "namespaces" and not attrs.subresource


def project_decision(user: UserInfo, attrs: Attributes, namespace_labels: NamespaceLabels,
                     role_rules: RoleRules) -> Decision | None:
    """Allow, or None (no opinion: the request is not covered by project membership)."""
    projects = projects_of(user)
    if not projects or not attrs.resource_request:
        return None
    if attrs.namespace:
        labels = namespace_labels(attrs.namespace) or {}
        project = labels.get(PROJECT_LABEL)
        if project not in projects:
            return None
        if _own_namespace(attrs):
            if attrs.verb in _READ:
                return Decision(True, f'netplane: namespace "{attrs.namespace}" belongs to project "{project}"')
            return None
        if any(rule_allows(r, attrs) for r in role_rules(DEVELOPER_ROLE) or []):
            return Decision(True, f'netplane: allowed by ClusterRole "{DEVELOPER_ROLE}" in namespace '
                                  f'"{attrs.namespace}" of project "{project}"')
        return None
    if _own_namespace(attrs) and attrs.verb in ("list", "watch"):
        # Listing namespaces is cluster-scoped; members see their projects' namespaces only.
        scope = f"{PROJECT_LABEL} in ({','.join(projects)})"
        return Decision(True, f"netplane: namespaces of projects {', '.join(projects)}", list_scope=scope)
    if attrs.api_group == PROJECT_API_GROUP and attrs.resource == "projects" and not attrs.subresource \
            and attrs.verb in _READ and attrs.name in projects:
        return Decision(True, f'netplane: member of project "{attrs.name}"')
    return None
