"""managedFields entries: decoding, encoding, and who a manager is.

A manager is identified as Kubernetes identifies it: by name, operation and
subresource, plus the apiVersion for `Update` entries (an applier keeps one entry
whatever version it applies in). Entries are written in Kubernetes' order: by
operation (Apply before Update), then time, manager, apiVersion, subresource.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from netplane.api.ssa.fieldpath import FieldSet

APPLY = "Apply"
UPDATE = "Update"

Key = tuple[str, str, str, str]  # manager, operation, subresource, apiVersion ("" for Apply)


@dataclass
class Entry:
    manager: str
    operation: str
    api_version: str
    time: str | None
    fields: FieldSet
    subresource: str = ""

    @property
    def key(self) -> Key:
        return key_of(self.manager, self.operation, self.subresource, self.api_version)

    def encode(self) -> dict[str, Any]:
        out: dict[str, Any] = {"manager": self.manager, "operation": self.operation, "apiVersion": self.api_version}
        if self.time:
            out["time"] = self.time
        out["fieldsType"] = "FieldsV1"
        out["fieldsV1"] = self.fields.to_fields_v1()
        if self.subresource:
            out["subresource"] = self.subresource
        return out

    def describe(self) -> str:
        """How a conflict names this manager: ``"kubectl-edit" using apps/v1``."""
        text = f'"{self.manager}"'
        if self.subresource:
            text += f' with subresource "{self.subresource}"'
        if self.operation == UPDATE:
            text += f" using {self.api_version}"
        return text


def key_of(manager: str, operation: str, subresource: str, api_version: str) -> Key:
    return manager, operation, subresource, api_version if operation != APPLY else ""


Managed = dict[Key, Entry]


def decode(raw: Any) -> Managed:
    """The entries of ``metadata.managedFields``; ValueError when they are not valid."""
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise ValueError("managedFields must be a list")
    out: Managed = {}
    for item in raw:
        if not isinstance(item, dict):
            raise ValueError("managedFields entries must be objects")
        op = item.get("operation")
        if op not in (APPLY, UPDATE):
            raise ValueError(f"unsupported operation {op!r}")
        if item.get("fieldsType", "FieldsV1") != "FieldsV1":
            raise ValueError(f"unsupported fieldsType {item.get('fieldsType')!r}")
        manager, version = item.get("manager", ""), item.get("apiVersion", "")
        sub, time = item.get("subresource", ""), item.get("time")
        if not all(isinstance(v, str) for v in (manager, version, sub)) or not isinstance(time, str | None):
            raise ValueError("managedFields entries have string fields")
        entry = Entry(manager, op, version, time, FieldSet.from_fields_v1(item.get("fieldsV1") or {}), sub)
        if entry.key in out:
            raise ValueError(f"duplicate entry for manager {manager!r}")
        out[entry.key] = entry
    return out


def is_reset(raw: Any) -> bool:
    """``managedFields: [{}]`` is how a client asks for the entries to be cleared."""
    return isinstance(raw, list) and len(raw) == 1 and raw[0] == {}


def encode(managed: Managed) -> list[dict[str, Any]]:
    entries = [e for e in managed.values() if not e.fields.empty()]
    if len(entries) > 1:
        entries.sort(key=lambda e: (e.operation, e.time or "", e.manager, e.api_version, e.subresource))
    return [e.encode() for e in entries]
