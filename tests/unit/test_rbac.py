"""The RBAC evaluator, table-driven: rule matching, role references, aggregation, subjects."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from netplane.api.auth.attributes import request_attributes
from netplane.api.auth.projects import project_decision
from netplane.api.auth.rbac import Attributes, RbacAuthorizer, UserInfo, forbidden_message, rule_allows

pytestmark = pytest.mark.unit

G = "rbac.authorization.k8s.io"


def res(verb: str, resource: str, ns: str = "", group: str = "", sub: str = "", name: str = "") -> Attributes:
    return Attributes(verb=verb, namespace=ns, api_group=group, resource=resource, subresource=sub, name=name)


def path(verb: str, url: str) -> Attributes:
    return Attributes(verb=verb, resource_request=False, path=url)


RULE_CASES: list[tuple[str, dict[str, Any], Attributes, bool]] = [
    ("exact verb", {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}, res("get", "pods"), True),
    ("other verb", {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}, res("list", "pods"), False),
    ("verb star", {"verbs": ["*"], "apiGroups": [""], "resources": ["pods"]}, res("delete", "pods"), True),
    ("no verbs", {"verbs": [], "apiGroups": ["*"], "resources": ["*"]}, res("get", "pods"), False),
    ("other group", {"verbs": ["get"], "apiGroups": ["apps"], "resources": ["pods"]}, res("get", "pods"), False),
    ("group star", {"verbs": ["get"], "apiGroups": ["*"], "resources": ["deployments"]},
     res("get", "deployments", group="apps"), True),
    ("resource star", {"verbs": ["get"], "apiGroups": [""], "resources": ["*"]}, res("get", "secrets"), True),
    ("resource star covers subresources", {"verbs": ["get"], "apiGroups": [""], "resources": ["*"]},
     res("get", "pods", sub="status"), True),
    ("plain resource is not its subresource", {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]},
     res("get", "pods", sub="status"), False),
    ("resource/subresource", {"verbs": ["update"], "apiGroups": ["apps"], "resources": ["deployments/scale"]},
     res("update", "deployments", group="apps", sub="scale"), True),
    ("subresource rule is not the resource", {"verbs": ["get"], "apiGroups": [""], "resources": ["pods/status"]},
     res("get", "pods"), False),
    ("*/subresource", {"verbs": ["get"], "apiGroups": ["*"], "resources": ["*/scale"]},
     res("get", "statefulsets", group="apps", sub="scale"), True),
    ("*/subresource other sub", {"verbs": ["get"], "apiGroups": ["*"], "resources": ["*/scale"]},
     res("get", "pods", sub="status"), False),
    ("resourceNames match", {"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"],
                             "resourceNames": ["a"]}, res("get", "configmaps", name="a"), True),
    ("resourceNames other name", {"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"],
                                  "resourceNames": ["a"]}, res("get", "configmaps", name="b"), False),
    ("resourceNames never match a list", {"verbs": ["list"], "apiGroups": [""], "resources": ["configmaps"],
                                          "resourceNames": ["a"]}, res("list", "configmaps"), False),
    ("nonResourceURL exact", {"verbs": ["get"], "nonResourceURLs": ["/healthz"]}, path("get", "/healthz"), True),
    ("nonResourceURL prefix", {"verbs": ["get"], "nonResourceURLs": ["/apis/*"]}, path("get", "/apis/apps/v1"),
     True),
    ("nonResourceURL prefix needs the prefix", {"verbs": ["get"], "nonResourceURLs": ["/apis/*"]},
     path("get", "/api"), False),
    ("nonResourceURL star", {"verbs": ["*"], "nonResourceURLs": ["*"]}, path("post", "/anything"), True),
    ("nonResourceURL rule never allows resources", {"verbs": ["*"], "nonResourceURLs": ["*"]},
     res("get", "pods"), False),
    ("resource rule never allows paths", {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]},
     path("get", "/metrics"), False),
]


@pytest.mark.parametrize(("rule", "attrs", "allowed"), [c[1:] for c in RULE_CASES], ids=[c[0] for c in RULE_CASES])
def test_rule_matching(rule: dict[str, Any], attrs: Attributes, allowed: bool) -> None:
    assert rule_allows(rule, attrs) is allowed


class Policy:
    """An in-memory PolicySource."""

    def __init__(self, objects: list[dict[str, Any]]):
        self.objects = objects

    def _of(self, kind: str, ns: str = "") -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind and o["metadata"].get("namespace", "") == ns]

    def cluster_role_bindings(self) -> Iterable[dict[str, Any]]:
        return self._of("ClusterRoleBinding")

    def role_bindings(self, namespace: str) -> Iterable[dict[str, Any]]:
        return self._of("RoleBinding", namespace)

    def cluster_roles(self) -> Iterable[dict[str, Any]]:
        return self._of("ClusterRole")

    def cluster_role(self, name: str) -> dict[str, Any] | None:
        return next((o for o in self._of("ClusterRole") if o["metadata"]["name"] == name), None)

    def role(self, namespace: str, name: str) -> dict[str, Any] | None:
        return next((o for o in self._of("Role", namespace) if o["metadata"]["name"] == name), None)


def role(kind: str, name: str, rules: list[dict[str, Any]], ns: str = "", **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, **({"namespace": ns} if ns else {}), **extra.pop("meta", {})}
    return {"kind": kind, "metadata": meta, "rules": rules, **extra}


def binding(kind: str, name: str, ref_kind: str, ref: str, subjects: list[dict[str, Any]], ns: str = "") -> dict:
    return {"kind": kind, "metadata": {"name": name, **({"namespace": ns} if ns else {})},
            "roleRef": {"apiGroup": G, "kind": ref_kind, "name": ref}, "subjects": subjects}


READ_PODS = {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}
WRITE_CM = {"verbs": ["create"], "apiGroups": [""], "resources": ["configmaps"]}

POLICY = Policy([
    role("ClusterRole", "pod-reader", [READ_PODS]),
    role("ClusterRole", "cm-writer", [WRITE_CM], meta={"labels": {"agg": "yes"}}),
    role("ClusterRole", "aggregate", [], aggregationRule={"clusterRoleSelectors": [{"matchLabels": {"agg": "yes"}}]}),
    role("Role", "svc-admin", [{"verbs": ["*"], "apiGroups": [""], "resources": ["services"]}], ns="team"),
    role("Role", "svc-admin", [{"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"]}], ns="other"),
    binding("ClusterRoleBinding", "readers", "ClusterRole", "pod-reader", [{"kind": "Group", "name": "readers"}]),
    binding("ClusterRoleBinding", "agg", "ClusterRole", "aggregate", [{"kind": "User", "name": "agg-user"}]),
    binding("RoleBinding", "svc", "Role", "svc-admin", [{"kind": "User", "name": "dev"}], ns="team"),
    binding("RoleBinding", "sa", "ClusterRole", "pod-reader", [{"kind": "ServiceAccount", "name": "bot"}], ns="team"),
    binding("RoleBinding", "sa-elsewhere", "ClusterRole", "cm-writer",
            [{"kind": "ServiceAccount", "name": "bot", "namespace": "ci"}], ns="team"),
    binding("RoleBinding", "missing", "Role", "nope", [{"kind": "User", "name": "ghost"}], ns="team"),
    binding("ClusterRoleBinding", "monitoring", "ClusterRole", "pod-reader",
            [{"kind": "ServiceAccount", "name": "prometheus", "namespace": "monitoring"}]),
    binding("ClusterRoleBinding", "nameless-sa", "ClusterRole", "pod-reader", [{"kind": "ServiceAccount",
                                                                                "name": "bot"}]),
    binding("ClusterRoleBinding", "ci-accounts", "ClusterRole", "cm-writer",
            [{"kind": "Group", "name": "system:serviceaccounts:ci"}]),
])

DEV = UserInfo("dev", groups=("system:authenticated",))
READER = UserInfo("someone", groups=("readers", "system:authenticated"))
BOT = UserInfo("system:serviceaccount:team:bot")
CI_BOT = UserInfo("system:serviceaccount:ci:bot")

BINDING_CASES: list[tuple[str, UserInfo, Attributes, bool]] = [
    ("group via ClusterRoleBinding, any namespace", READER, res("list", "pods", ns="x"), True),
    ("group via ClusterRoleBinding, cluster-wide list", READER, res("list", "pods"), True),
    ("group binding grants only the role's verbs", READER, res("delete", "pods", ns="x"), False),
    ("user via RoleBinding to Role in its namespace", DEV, res("create", "services", ns="team"), True),
    ("RoleBinding does not reach other namespaces", DEV, res("create", "services", ns="other"), False),
    ("RoleBinding does not reach cluster scope", DEV, res("list", "services"), False),
    ("Role is looked up in the binding's namespace", DEV, res("get", "secrets", ns="team"), False),
    ("service account without namespace = binding's", BOT, res("get", "pods", ns="team"), True),
    ("service account of another namespace", UserInfo("system:serviceaccount:other:bot"),
     res("get", "pods", ns="team"), False),
    ("service account subject with namespace", CI_BOT, res("create", "configmaps", ns="team"), True),
    ("aggregated ClusterRole includes selected roles' rules", UserInfo("agg-user"),
     res("create", "configmaps", ns="a"), True),
    ("aggregated ClusterRole does not include unselected roles", UserInfo("agg-user"),
     res("get", "pods", ns="a"), False),
    ("nobody", UserInfo("nobody"), res("get", "pods", ns="team"), False),
    ("service account via ClusterRoleBinding, any namespace", UserInfo("system:serviceaccount:monitoring:prometheus"),
     res("list", "pods", ns="anywhere"), True),
    ("service account via ClusterRoleBinding, cluster-wide", UserInfo("system:serviceaccount:monitoring:prometheus"),
     res("list", "pods"), True),
    ("ClusterRoleBinding names the account's namespace", UserInfo("system:serviceaccount:other:prometheus"),
     res("list", "pods", ns="x"), False),
    ("ClusterRoleBinding subject without namespace matches no account", UserInfo("system:serviceaccount::bot"),
     res("list", "pods", ns="x"), False),
    ("service accounts of a namespace as a group", UserInfo("system:serviceaccount:ci:builder", groups=(
        "system:serviceaccounts", "system:serviceaccounts:ci")), res("create", "configmaps", ns="x"), True),
]


@pytest.mark.parametrize(("user", "attrs", "allowed"), [c[1:] for c in BINDING_CASES],
                         ids=[c[0] for c in BINDING_CASES])
def test_bindings(user: UserInfo, attrs: Attributes, allowed: bool) -> None:
    assert RbacAuthorizer(POLICY).authorize(user, attrs).allowed is allowed


def test_reasons_name_the_binding_or_the_missing_role() -> None:
    authz = RbacAuthorizer(POLICY)
    assert authz.authorize(READER, res("get", "pods", ns="x")).reason == \
        'RBAC: allowed by ClusterRoleBinding "readers" of ClusterRole "pod-reader" to Group "readers"'
    assert authz.authorize(DEV, res("get", "services", ns="team")).reason == \
        'RBAC: allowed by RoleBinding "svc/team" of Role "svc-admin" to User "dev"'
    denied = authz.authorize(UserInfo("ghost"), res("get", "pods", ns="team"))
    assert not denied.allowed and denied.reason == f'RBAC: role.{G} "nope" not found'


@pytest.mark.parametrize(("attrs", "text"), [
    (res("create", "services", ns="p2"),
     'User "alice" cannot create resource "services" in API group "" in the namespace "p2"'),
    (res("list", "deployments", group="apps"),
     'User "alice" cannot list resource "deployments" in API group "apps" at the cluster scope'),
    (res("update", "deployments", ns="a", group="apps", sub="scale", name="w"),
     'User "alice" cannot update resource "deployments/scale" in API group "apps" in the namespace "a"'),
    (path("get", "/metrics"), 'User "alice" cannot get path "/metrics"'),
])
def test_forbidden_message(attrs: Attributes, text: str) -> None:
    assert forbidden_message(UserInfo("alice"), attrs) == text


@pytest.mark.parametrize(("method", "url", "query", "expected"), [
    ("GET", "/api/v1/namespaces/a/pods", {}, res("list", "pods", ns="a")),
    ("GET", "/api/v1/namespaces/a/pods", {"watch": "true"}, res("watch", "pods", ns="a")),
    ("GET", "/api/v1/namespaces/a/pods", {"fieldSelector": "metadata.name=x"}, res("list", "pods", ns="a", name="x")),
    ("GET", "/api/v1/namespaces/a/pods/x", {}, res("get", "pods", ns="a", name="x")),
    ("PUT", "/apis/apps/v1/namespaces/a/deployments/w/scale", {},
     res("update", "deployments", ns="a", group="apps", sub="scale", name="w")),
    ("DELETE", "/api/v1/namespaces/a/configmaps", {}, res("deletecollection", "configmaps", ns="a")),
    ("POST", "/api/v1/namespaces/a/services", {}, res("create", "services", ns="a")),
    ("PATCH", "/api/v1/namespaces/a", {}, res("patch", "namespaces", ns="a", name="a")),
    ("PUT", "/api/v1/namespaces/a/finalize", {}, res("update", "namespaces", ns="a", name="a", sub="finalize")),
    ("GET", "/api/v1/namespaces", {}, res("list", "namespaces")),
    ("GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles/x", {},
     res("get", "clusterroles", group="rbac.authorization.k8s.io", name="x")),
])
def test_request_attributes(method: str, url: str, query: dict[str, str], expected: Attributes) -> None:
    got = request_attributes(method, url, query)
    assert (got.verb, got.namespace, got.api_group, got.resource, got.subresource, got.name, got.resource_request) \
        == (expected.verb, expected.namespace, expected.api_group, expected.resource, expected.subresource,
            expected.name, True)


@pytest.mark.parametrize("url", ["/api", "/apis", "/apis/apps", "/apis/apps/v1", "/api/v1", "/openapi/v3",
                                 "/metrics"])
def test_discovery_and_other_paths_are_non_resource(url: str) -> None:
    got = request_attributes("GET", url, {})
    assert not got.resource_request and got.verb == "get" and got.path == url


DEVELOPER_RULES = [{"verbs": ["*"], "apiGroups": [""], "resources": ["services", "secrets"]}]
NAMESPACES = {"p1-ns": {"cpaas.io/project": "p1"}, "p2-ns": {"cpaas.io/project": "p2"}, "plain": {}}
ALICE = UserInfo("alice", groups=("project:p1", "system:authenticated"))


@pytest.mark.parametrize(("attrs", "allowed", "scope"), [
    (res("create", "services", ns="p1-ns"), True, ""),
    (res("get", "secrets", ns="p2-ns"), False, ""),
    (res("get", "services", ns="plain"), False, ""),
    (res("get", "services", ns="missing"), False, ""),
    (res("list", "roles", ns="p1-ns", group="rbac.authorization.k8s.io"), False, ""),
    (res("list", "services"), False, ""),
    (res("get", "namespaces", ns="p1-ns", name="p1-ns"), True, ""),
    (res("delete", "namespaces", ns="p1-ns", name="p1-ns"), False, ""),
    (res("get", "namespaces", ns="p2-ns", name="p2-ns"), False, ""),
    (res("list", "namespaces"), True, "cpaas.io/project in (p1)"),
    (res("get", "projects", group="netplane.io", name="p1"), True, ""),
    (res("get", "projects", group="netplane.io", name="p2"), False, ""),
    (res("list", "projects", group="netplane.io"), False, ""),
    (res("delete", "projects", group="netplane.io", name="p1"), False, ""),
])
def test_project_membership(attrs: Attributes, allowed: bool, scope: str) -> None:
    decision = project_decision(ALICE, attrs, NAMESPACES.get, lambda _name: DEVELOPER_RULES)
    assert (decision is not None and decision.allowed) is allowed
    assert (decision.list_scope if decision else "") == scope
