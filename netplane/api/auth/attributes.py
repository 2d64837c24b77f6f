"""An HTTP request as authorisation attributes, parsed from the path as kube-apiserver parses it.

The parse is independent of what is served: an unknown resource is still a resource request, so
a user without access gets 403 rather than learning from a 404 what exists.
"""

from __future__ import annotations

from collections.abc import Mapping

from netplane.api.auth.rbac import Attributes

_VERBS = {"POST": "create", "GET": "get", "HEAD": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
# Paths under /api/v1/namespaces/NAME/ that are the namespace's own subresources, not namespaced kinds.
_NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})


def _name_from_field_selector(selector: str) -> str:
    """``metadata.name=x`` (alone or among other terms) pins a list or watch to one name."""
    for term in selector.split(","):
        for op in ("==", "="):
            key, sep, value = term.partition(op)
            if sep and key.strip() == "metadata.name" and not key.endswith("!"):
                return value.strip()
    return ""


def request_attributes(method: str, path: str, query: Mapping[str, str]) -> Attributes:
    parts = [p for p in path.strip("/").split("/") if p]
    non_resource = Attributes(verb=method.lower(), resource_request=False, path=path)
    if not parts or parts[0] not in ("api", "apis"):
        return non_resource
    if parts[0] == "api":
        if len(parts) < 3:
            return non_resource
        group, version, rest = "", parts[1], parts[2:]
    else:
        if len(parts) < 4:
            return non_resource
        group, version, rest = parts[1], parts[2], parts[3:]
    verb = _VERBS.get(method.upper(), method.lower())
    if rest[0] == "watch":
        # The deprecated /watch/ prefix: a watch of whatever follows.
        verb, rest = "watch", rest[1:]
        if not rest:
            return non_resource
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if not name and verb == "get":
        verb = "watch" if query.get("watch") in ("1", "true") else "list"
    elif not name and verb == "delete":
        verb = "deletecollection"
    if verb in ("list", "watch") and not name:
        name = _name_from_field_selector(query.get("fieldSelector", ""))
    return Attributes(verb=verb, namespace=namespace, api_group=group, api_version=version, resource=resource,
                      subresource=subresource, name=name, path=path)
