"""API discovery documents: aggregated (apidiscovery v2 / v2beta1) and legacy."""

from __future__ import annotations

from typing import Any

from netplane.api.registry import Registry
from netplane.api.resources import ResourceType

AGGREGATED_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
AGGREGATED_V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"


def negotiate(accept: str) -> str | None:
    """The aggregated format the client asked for first, or None for the legacy documents."""
    for part in accept.split(","):
        params = {p.split("=", 1)[0].strip(): p.split("=", 1)[1].strip()
                  for p in part.split(";")[1:] if "=" in p}
        if params.get("g") == "apidiscovery.k8s.io" and params.get("as") == "APIGroupDiscoveryList":
            if params.get("v") == "v2":
                return AGGREGATED_V2
            if params.get("v") == "v2beta1":
                return AGGREGATED_V2BETA1
        if part.split(";")[0].strip() in ("application/json", "*/*"):
            return None
    return None


# Subresources whose request and response are another kind than their parent's, with their verbs.
_SPECIAL_SUBRESOURCES: dict[str, tuple[dict[str, str], list[str]]] = {
    "scale": ({"group": "autoscaling", "version": "v1", "kind": "Scale"}, ["get", "patch", "update"]),
    "binding": ({"group": "", "version": "", "kind": "Binding"}, ["create"]),
    "eviction": ({"group": "policy", "version": "v1", "kind": "Eviction"}, ["create"]),
    "token": ({"group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest"}, ["create"]),
    "exec": ({"group": "", "version": "", "kind": "PodExecOptions"}, ["create", "get"]),
    "attach": ({"group": "", "version": "", "kind": "PodAttachOptions"}, ["create", "get"]),
    "portforward": ({"group": "", "version": "", "kind": "PodPortForwardOptions"}, ["create", "get"]),
    "log": ({"group": "", "version": "", "kind": "Pod"}, ["get"]),
}


def _subresource(rt: ResourceType, sub: str) -> tuple[dict[str, str], list[str]]:
    if sub in _SPECIAL_SUBRESOURCES:
        return _SPECIAL_SUBRESOURCES[sub]
    own = {"group": "", "version": "", "kind": rt.kind}
    return own, ["update"] if sub == "finalize" else ["get", "patch", "update"]


def _aggregated_resource(rt: ResourceType) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resource": rt.plural,
        "responseKind": {"group": "", "version": "", "kind": rt.kind},
        "scope": "Namespaced" if rt.namespaced else "Cluster",
        "singularResource": rt.singular,
        "verbs": list(rt.verbs),
    }
    if rt.short_names:
        res["shortNames"] = list(rt.short_names)
    if rt.categories:
        res["categories"] = list(rt.categories)
    subs = []
    for sub in (*rt.subresources, *rt.connect):
        kind, verbs = _subresource(rt, sub)
        subs.append({"subresource": sub, "responseKind": kind, "verbs": verbs})
    if subs:
        res["subresources"] = subs
    return res


def aggregated(registry: Registry, core: bool, media_type: str) -> dict[str, Any]:
    version = "v2" if media_type == AGGREGATED_V2 else "v2beta1"
    items = []
    for group, versions in registry.group_versions():
        if (group == "") != core:
            continue
        items.append({
            "metadata": {"name": group, "creationTimestamp": None},
            "versions": [{"version": v, "freshness": "Current",
                          "resources": [_aggregated_resource(rt) for rt in registry.types_in(group, v)]}
                         for v in versions],
        })
    return {"kind": "APIGroupDiscoveryList", "apiVersion": f"apidiscovery.k8s.io/{version}",
            "metadata": {}, "items": items}


def api_versions(server_address: str) -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def _group_doc(group: str, versions: list[str]) -> dict[str, Any]:
    gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": gvs, "preferredVersion": gvs[0]}


def api_group_list(registry: Registry) -> dict[str, Any]:
    return {"kind": "APIGroupList", "apiVersion": "v1",
            "groups": [_group_doc(g, vs) for g, vs in registry.group_versions() if g]}


def api_group(registry: Registry, group: str) -> dict[str, Any] | None:
    for g, vs in registry.group_versions():
        if g == group:
            return {"kind": "APIGroup", "apiVersion": "v1", **_group_doc(g, vs)}
    return None


def resource_list(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    types = registry.types_in(group, version)
    if not types:
        return None
    resources: list[dict[str, Any]] = []
    for rt in types:
        entry: dict[str, Any] = {"name": rt.plural, "singularName": rt.singular, "namespaced": rt.namespaced,
                                 "kind": rt.kind, "verbs": list(rt.verbs)}
        if rt.short_names:
            entry["shortNames"] = list(rt.short_names)
        if rt.categories:
            entry["categories"] = list(rt.categories)
        resources.append(entry)
        for sub in (*rt.subresources, *rt.connect):
            kind, verbs = _subresource(rt, sub)
            sub_entry: dict[str, Any] = {"name": f"{rt.plural}/{sub}", "singularName": "",
                                         "namespaced": rt.namespaced, "kind": kind["kind"], "verbs": verbs}
            if kind["group"] or kind["version"]:
                sub_entry.update(group=kind["group"], version=kind["version"])
            resources.append(sub_entry)
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}
