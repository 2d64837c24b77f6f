"""Schemas of Kubernetes' built-in kinds, read at run time from `kubernetes-validate`.

The package ships the v1.32 OpenAPI definitions converted to JSON Schema: every
definition keeps its description, `x-kubernetes-group-version-kind`, and patch
metadata (`x-kubernetes-patch-merge-key`, `x-kubernetes-patch-strategy`,
`x-kubernetes-list-type`, `x-kubernetes-list-map-keys`). References are of the
form ``#/$defs/<definition name>``; nullable types appear as ``["string", "null"]``.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

SCHEMA_VERSION = "v1.32.0"

Schema = dict[str, Any]


@functools.cache
def definitions() -> dict[str, Schema]:
    """All definitions, keyed by their OpenAPI name (e.g. ``io.k8s.api.core.v1.Service``)."""
    root = resources.files("kubernetes_validate") / "kubernetes-json-schema" / f"{SCHEMA_VERSION}-local"
    with (root / "_definitions.json").open("rb") as f:
        defs: dict[str, Schema] = json.load(f)["$defs"]
    return defs


@functools.cache
def _by_gvk() -> dict[tuple[str, str, str], str]:
    index: dict[tuple[str, str, str], str] = {}
    for name, schema in definitions().items():
        for gvk in schema.get("x-kubernetes-group-version-kind", []):
            # List kinds and the like carry GVKs too; keep the object kind itself.
            index.setdefault((gvk["group"], gvk["version"], gvk["kind"]), name)
    return index


def definition_name(group: str, version: str, kind: str) -> str | None:
    return _by_gvk().get((group, version, kind))


def kind_schema(group: str, version: str, kind: str) -> Schema | None:
    name = definition_name(group, version, kind)
    return definitions()[name] if name else None


def resolve(schema: Schema) -> Schema:
    """Follow a ``$ref`` (possibly repeated) to the schema it names."""
    while "$ref" in schema:
        schema = definitions()[schema["$ref"].rsplit("/", 1)[-1]]
    return schema
