"""RBAC objects read from the store, decoded once per stored revision.

Authorisation runs on every request of a non-admin user, so decoding the same bindings again and
again would dominate; a record's revision changes whenever its bytes do, so it is a safe cache key.
"""

from __future__ import annotations

from collections.abc import Iterable

from netplane.api.auth.rbac import RBAC_GROUP, Obj
from netplane.api.objects import decode
from netplane.api.registry import Registry
from netplane.api.resources import ResourceType
from netplane.api.storage import ObjectStore
from netplane.store import Record


class StorePolicy:
    def __init__(self, store: ObjectStore, registry: Registry):
        self.store = store
        self.registry = registry
        self._decoded: dict[str, tuple[int, Obj]] = {}

    def _type(self, group: str, plural: str) -> ResourceType:
        rt = self.registry.lookup(group, "v1", plural)
        assert rt is not None, plural
        return rt

    def _obj(self, record: Record) -> Obj:
        cached = self._decoded.get(record.key)
        if cached is not None and cached[0] == record.revision:
            return cached[1]
        obj = decode(record.value)
        if len(self._decoded) > 50_000:
            self._decoded.clear()  # deleted objects would otherwise stay forever
        self._decoded[record.key] = (record.revision, obj)
        return obj

    def _list(self, plural: str, namespace: str | None) -> list[Obj]:
        return [self._obj(r) for r in self.store.list(self._type(RBAC_GROUP, plural), namespace)[0]]

    def _get(self, plural: str, namespace: str, name: str) -> Obj | None:
        record = self.store.get(self._type(RBAC_GROUP, plural), namespace, name)
        return self._obj(record) if record is not None else None

    def cluster_role_bindings(self) -> Iterable[Obj]:
        return self._list("clusterrolebindings", None)

    def role_bindings(self, namespace: str) -> Iterable[Obj]:
        return self._list("rolebindings", namespace)

    def cluster_role(self, name: str) -> Obj | None:
        return self._get("clusterroles", "", name)

    def cluster_roles(self) -> Iterable[Obj]:
        return self._list("clusterroles", None)

    def role(self, namespace: str, name: str) -> Obj | None:
        return self._get("roles", namespace, name)

    def namespace_labels(self, name: str) -> dict[str, str] | None:
        """A namespace's labels from the store's index (no decoding), None if there is none."""
        record = self.store.get(self._type("", "namespaces"), "", name)
        return dict(record.attrs.labels) if record is not None else None
