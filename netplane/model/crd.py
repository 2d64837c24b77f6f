"""Generate a structural CustomResourceDefinition from a pydantic model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

Schema = dict[str, Any]


@dataclass(frozen=True)
class PrinterColumn:
    name: str
    json_path: str
    type: str = "string"
    description: str = ""
    priority: int = 0


@dataclass(frozen=True)
class Kind:
    """One of netplane's kinds: where it is served and the models of its spec and status."""

    group: str
    version: str
    kind: str
    plural: str
    spec: type[BaseModel]
    status: type[BaseModel] | None = None
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    printer_columns: tuple[PrinterColumn, ...] = ()
    description: str = ""
    extra_versions: tuple[str, ...] = field(default=())
    # Empty means kind.lower(); set it where an interoperating project spells it otherwise
    # (Kube-OVN's provider-networks use "provider-network").
    singular: str = ""

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{self.group}"


def _inline(node: Any, defs: dict[str, Schema]) -> Any:
    """Structural schemas allow no $ref: inline definitions, and turn Optional into nullable."""
    if isinstance(node, list):
        return [_inline(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = _inline(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
        extra = {k: v for k, v in node.items() if k != "$ref"}
        return {**target, **_inline(extra, defs)}
    any_of = node.get("anyOf")
    if isinstance(any_of, list) and {"type": "null"} in any_of and len(any_of) == 2:
        inner = _inline(next(s for s in any_of if s != {"type": "null"}), defs)
        rest = {k: _inline(v, defs) for k, v in node.items()
                if k not in ("anyOf", "title") and not (k == "default" and v is None)}
        return {**inner, **rest, "nullable": True}
    out: Schema = {}
    for key, value in node.items():
        if key in ("title", "$defs"):
            continue
        if key == "properties":
            out[key] = {name: _inline(prop, defs) for name, prop in value.items()}
        elif key == "additionalProperties" and value is True:
            out["x-kubernetes-preserve-unknown-fields"] = True
        elif key == "default" and value is None:
            continue
        else:
            out[key] = _inline(value, defs)
    if out.get("type") == "object" and "properties" not in out and "additionalProperties" not in out:
        out["x-kubernetes-preserve-unknown-fields"] = True
    return out


def model_schema(model: type[BaseModel]) -> Schema:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.get("$defs", {})
    schema: Schema = _inline(raw, defs)
    return schema


def crd_manifest(kind: Kind) -> dict[str, Any]:
    properties: Schema = {"spec": model_schema(kind.spec)}
    if kind.status is not None:
        properties["status"] = model_schema(kind.status)
    root: Schema = {"type": "object", "properties": properties}
    if kind.description:
        root["description"] = kind.description
    version: dict[str, Any] = {
        "name": kind.version, "served": True, "storage": True,
        "schema": {"openAPIV3Schema": root},
    }
    if kind.status is not None:
        version["subresources"] = {"status": {}}
    if kind.printer_columns:
        version["additionalPrinterColumns"] = [
            {"name": c.name, "type": c.type, "jsonPath": c.json_path,
             **({"description": c.description} if c.description else {}),
             **({"priority": c.priority} if c.priority else {})}
            for c in kind.printer_columns]
    names: dict[str, Any] = {"plural": kind.plural, "singular": kind.singular or kind.kind.lower(),
                             "kind": kind.kind,
                             "listKind": f"{kind.kind}List"}
    if kind.short_names:
        names["shortNames"] = list(kind.short_names)
    if kind.categories:
        names["categories"] = list(kind.categories)
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": kind.crd_name, "labels": {"app.kubernetes.io/managed-by": "netplane"}},
        "spec": {"group": kind.group, "scope": "Namespaced" if kind.namespaced else "Cluster",
                 "names": names, "versions": [version]},
    }
