"""meta.k8s.io/v1 Table responses for `kubectl get`, built from the printers."""

from __future__ import annotations

import datetime as dt
from typing import Any

from netplane.api import printers
from netplane.api.objects import Obj
from netplane.api.resources import ResourceType


def wants_table(accept: str) -> bool:
    for part in accept.split(","):
        params = {p.split("=", 1)[0].strip(): p.split("=", 1)[1].strip() for p in part.split(";")[1:] if "=" in p}
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io":
            return True
        if part.split(";")[0].strip() in ("application/json", "*/*") and "as" not in params:
            return False
    return False


def columns(rt: ResourceType) -> list[dict[str, Any]]:
    if rt.builtin:
        return printers.column_definitions(rt.group, rt.kind)
    return printers.custom_column_definitions((rt.crd_version or {}).get("additionalPrinterColumns") or [])


def _cells(rt: ResourceType, obj: Obj, when: dt.datetime) -> list[Any]:
    if rt.builtin:
        return printers.row_cells(rt.group, rt.kind, obj, when)
    return printers.custom_row_cells((rt.crd_version or {}).get("additionalPrinterColumns") or [], obj, when)


def _row_object(obj: Obj, include: str) -> Obj | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata", {})}


def table(rt: ResourceType, objs: list[Obj], resource_version: str, include: str = "Metadata",
          with_columns: bool = True, continue_token: str = "") -> dict[str, Any]:
    when = dt.datetime.now(dt.UTC)
    rows = []
    for obj in objs:
        row: dict[str, Any] = {"cells": _cells(rt, obj, when)}
        embedded = _row_object(obj, include)
        if embedded is not None:
            row["object"] = embedded
        rows.append(row)
    list_meta: dict[str, Any] = {"resourceVersion": resource_version}
    if continue_token:
        list_meta["continue"] = continue_token
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta,
            "columnDefinitions": columns(rt) if with_columns else None, "rows": rows}
