"""OpenAPI v3 documents: the index and one document per group-version.

Built-in kinds' schemas come from the kubernetes-validate definitions (converted
back from JSON Schema to OpenAPI); custom kinds' from their CRD. kubectl reads
these for `apply` (strict field validation and strategic-merge metadata) and
`explain`. Documents are cached by content hash, as kube-openapi does, so kubectl
downloads each once.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from netplane import KUBERNETES_VERSION
from netplane.api import schemas
from netplane.api.registry import Registry
from netplane.api.resources import ResourceType

_REF_PREFIX = "#/components/schemas/"
_OPENAPI_SCALAR = {"io.k8s.apimachinery.pkg.util.intstr.IntOrString": {"type": "string", "format": "int-or-string"},
                   "io.k8s.apimachinery.pkg.api.resource.Quantity": {"type": "string", "format": "quantity"}}


def _convert(node: Any) -> Any:
    """JSON Schema (as kubernetes-validate stores it) back to OpenAPI v3 as Kubernetes serves it."""
    if isinstance(node, list):
        return [_convert(n) for n in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$ref" and isinstance(value, str):
            continue
        if key == "type" and isinstance(value, list):
            value = next((t for t in value if t != "null"), "object")
        out[key] = _convert(value) if key not in ("enum", "default", "example") else value
    if isinstance(node.get("$ref"), str):
        ref = _REF_PREFIX + node["$ref"].rsplit("/", 1)[-1]
        if out:
            out["allOf"] = [{"$ref": ref}]
        else:
            out["$ref"] = ref
    return out


def _definition(name: str) -> dict[str, Any]:
    if name in _OPENAPI_SCALAR:
        return {"description": schemas.definitions()[name].get("description", ""), **_OPENAPI_SCALAR[name]}
    return _convert(schemas.definitions()[name])


def _referenced(names: list[str]) -> dict[str, dict[str, Any]]:
    """The named definitions and everything they reference, transitively."""
    result: dict[str, dict[str, Any]] = {}
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in result:
            continue
        doc = _definition(name)
        result[name] = doc
        raw = orjson.dumps(doc)
        start = 0
        marker = _REF_PREFIX.encode()
        while (i := raw.find(marker, start)) >= 0:
            end = raw.find(b'"', i)
            todo.append(raw[i + len(marker):end].decode())
            start = end
    return result


_WRITE_PARAMS = [
    {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
    {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
    {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
]


def _gvk(rt: ResourceType) -> dict[str, str]:
    return {"group": rt.group, "version": rt.version, "kind": rt.kind}


def _paths_for(rt: ResourceType, schema_ref: str) -> dict[str, Any]:
    prefix = f"/api/{rt.version}" if not rt.group else f"/apis/{rt.group}/{rt.version}"
    collection = f"{prefix}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced else f"{prefix}/{rt.plural}"
    body = {"content": {"*/*": {"schema": {"$ref": schema_ref}}}, "required": True}
    patch_types = ["application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml"]
    if rt.builtin:
        patch_types.insert(2, "application/strategic-merge-patch+json")
    ok = {"200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": schema_ref}}}}}
    ext = {"x-kubernetes-group-version-kind": _gvk(rt)}
    return {
        collection: {
            "post": {"operationId": f"create{rt.kind}", "requestBody": body, "responses": ok,
                     "parameters": _WRITE_PARAMS, "x-kubernetes-action": "post", **ext},
        },
        f"{collection}/{{name}}": {
            "get": {"operationId": f"read{rt.kind}", "responses": ok, "x-kubernetes-action": "get", **ext},
            "put": {"operationId": f"replace{rt.kind}", "requestBody": body, "responses": ok,
                    "parameters": _WRITE_PARAMS, "x-kubernetes-action": "put", **ext},
            "patch": {"operationId": f"patch{rt.kind}", "responses": ok, "x-kubernetes-action": "patch",
                      "requestBody": {"content": {t: {"schema": {"type": "object"}} for t in patch_types},
                                      "required": True},
                      "parameters": [*_WRITE_PARAMS, {"name": "force", "in": "query",
                                                      "schema": {"type": "boolean", "uniqueItems": True}}],
                      **ext},
        },
    }


def _crd_definition_name(rt: ResourceType) -> str:
    reversed_group = ".".join(reversed(rt.group.split(".")))
    return f"{reversed_group}.{rt.version}.{rt.kind}"


def _crd_schema(rt: ResourceType) -> dict[str, Any]:
    version = rt.crd_version or {}
    schema = dict((version.get("schema") or {}).get("openAPIV3Schema") or {"type": "object"})
    props = dict(schema.get("properties") or {})
    props.setdefault("apiVersion", {"type": "string", "description": "APIVersion defines the versioned schema "
                                    "of this representation of an object."})
    props.setdefault("kind", {"type": "string", "description": "Kind is a string value representing the REST "
                              "resource this object represents."})
    props["metadata"] = {"description": "Standard object's metadata.",
                         "allOf": [{"$ref": _REF_PREFIX + "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}]}
    schema["properties"] = props
    schema["x-kubernetes-group-version-kind"] = [_gvk(rt)]
    return schema


def group_version_document(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    types = registry.types_in(group, version)
    if not types:
        return None
    paths: dict[str, Any] = {}
    components: dict[str, Any] = {}
    builtin_names = []
    for rt in types:
        if rt.builtin:
            name = schemas.definition_name(rt.group, rt.version, rt.kind)
            if name is None:
                continue
            builtin_names.append(name)
        else:
            name = _crd_definition_name(rt)
            components[name] = _crd_schema(rt)
            builtin_names.append("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")
        paths.update(_paths_for(rt, _REF_PREFIX + name))
    components.update(_referenced(builtin_names))
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION},
            "paths": paths, "components": {"schemas": components}}


class OpenAPICache:
    """Encoded documents by group-version path, rebuilt when the registry changes."""

    def __init__(self, registry: Registry):
        self._registry = registry
        self._generation = -1
        self._docs: dict[str, tuple[bytes, str]] = {}

    def _refresh(self) -> None:
        if self._generation == self._registry.generation:
            return
        self._docs.clear()
        self._generation = self._registry.generation

    def document(self, gv_path: str) -> tuple[bytes, str] | None:
        """(encoded document, hash) for ``api/v1`` or ``apis/<group>/<version>``."""
        self._refresh()
        if gv_path not in self._docs:
            parts = gv_path.split("/")
            if parts[0] == "api" and len(parts) == 2:
                group, version = "", parts[1]
            elif parts[0] == "apis" and len(parts) == 3:
                group, version = parts[1], parts[2]
            else:
                return None
            doc = group_version_document(self._registry, group, version)
            if doc is None:
                return None
            raw = orjson.dumps(doc)
            self._docs[gv_path] = (raw, hashlib.sha512(raw).hexdigest().upper())
        return self._docs[gv_path]

    def index(self) -> dict[str, Any]:
        paths = {}
        for group, versions in self._registry.group_versions():
            for v in versions:
                gv_path = f"apis/{group}/{v}" if group else f"api/{v}"
                entry = self.document(gv_path)
                if entry:
                    paths[gv_path] = {"serverRelativeURL": f"/openapi/v3/{gv_path}?hash={entry[1]}"}
        return {"paths": paths}
