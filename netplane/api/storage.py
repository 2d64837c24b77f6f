"""API objects over the revisioned store: typed keys, encoding, selectors."""

from __future__ import annotations

from collections.abc import Iterable

from netplane.api.objects import Attrs, Obj, decode, encoder, key, meta, prefix
from netplane.api.registry import Registry
from netplane.api.resources import ResourceType
from netplane.api.selectors import FieldRequirement, Selector, fields_match
from netplane.store import Record, SqliteStore, Watch

EVERYTHING = Selector()


def matches(attrs: Attrs, labels: Selector, fields: tuple[FieldRequirement, ...]) -> bool:
    return labels.matches(attrs.labels) and fields_match(fields, attrs.fields)


class ObjectStore:
    def __init__(self, store: SqliteStore, registry: Registry):
        self.raw = store
        self.registry = registry

    def get(self, rt: ResourceType, namespace: str, name: str) -> Record | None:
        return self.raw.get(key(rt, namespace, name))

    def get_obj(self, rt: ResourceType, namespace: str, name: str) -> Obj | None:
        record = self.get(rt, namespace, name)
        return decode(record.value) if record else None

    def list(self, rt: ResourceType, namespace: str | None, labels: Selector = EVERYTHING,
             fields: tuple[FieldRequirement, ...] = ()) -> tuple[list[Record], int]:
        records, rev = self.raw.list(prefix(rt, namespace))
        if not labels.empty or fields:
            records = [r for r in records if matches(r.attrs, labels, fields)]
        return records, rev

    def create(self, rt: ResourceType, obj: Obj) -> Record:
        m = meta(obj)
        return self.raw.create(key(rt, m.get("namespace", ""), m["name"]), encoder(rt, obj))

    def update(self, rt: ResourceType, obj: Obj, expected_revision: int) -> Record:
        m = meta(obj)
        return self.raw.update(key(rt, m.get("namespace", ""), m["name"]), expected_revision, encoder(rt, obj))

    def delete(self, rt: ResourceType, obj: Obj, expected_revision: int) -> Record:
        m = meta(obj)
        return self.raw.delete(key(rt, m.get("namespace", ""), m["name"]), expected_revision, encoder(rt, obj))

    def watch(self, rt: ResourceType, namespace: str | None, from_revision: int) -> Watch:
        return self.raw.watch(prefix(rt, namespace), from_revision)

    def all_records(self) -> Iterable[tuple[ResourceType, Record]]:
        for rt in self.registry.all():
            if rt.stored_as_served:
                for record in self.raw.list(prefix(rt, None))[0]:
                    yield rt, record
