"""The informer's local copy of a resource's objects, with secondary indices.

Objects are keyed `namespace/name` (just `name` when cluster-scoped), as client-go's
MetaNamespaceKeyFunc. An index function maps an object to the values it is filed under;
`by_index(index, value)` then answers "all namespaces of project p1" or "everything owned by
uid U" without scanning. Objects are shared, not copied: callers must not mutate what they read
(copy first, as with client-go listers).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

Obj = dict[str, Any]
IndexFunc = Callable[[Obj], list[str]]

NAMESPACE_INDEX = "namespace"
LABEL_INDEX = "label"
OWNER_INDEX = "owner-uid"


def object_key(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    namespace, name = meta.get("namespace"), str(meta.get("name") or "")
    return f"{namespace}/{name}" if namespace else name


def split_key(key: str) -> tuple[str | None, str]:
    namespace, _, name = key.rpartition("/")
    return (namespace or None), name


def by_namespace(obj: Obj) -> list[str]:
    namespace = (obj.get("metadata") or {}).get("namespace")
    return [str(namespace)] if namespace else []


def by_labels(obj: Obj) -> list[str]:
    """Every label as `key=value`, so `by_index(LABEL_INDEX, "app=web")` is an equality selector."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return [f"{k}={v}" for k, v in labels.items()]


def by_label(label: str) -> IndexFunc:
    """The value of one label key: `by_index(name, "p1")` finds the objects labelled `label=p1`."""
    def index(obj: Obj) -> list[str]:
        value = ((obj.get("metadata") or {}).get("labels") or {}).get(label)
        return [str(value)] if value is not None else []

    return index


def by_owner_uid(obj: Obj) -> list[str]:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return [str(r["uid"]) for r in refs if isinstance(r, dict) and r.get("uid")]


DEFAULT_INDEXERS: dict[str, IndexFunc] = {
    NAMESPACE_INDEX: by_namespace, LABEL_INDEX: by_labels, OWNER_INDEX: by_owner_uid,
}


class Cache:
    def __init__(self, indexers: dict[str, IndexFunc] | None = None):
        self.indexers: dict[str, IndexFunc] = dict(DEFAULT_INDEXERS if indexers is None else indexers)
        self._items: dict[str, Obj] = {}
        # index name → value → keys filed there
        self._indices: dict[str, dict[str, set[str]]] = {name: {} for name in self.indexers}

    def add_indexer(self, name: str, func: IndexFunc) -> None:
        """Add an index; existing objects are filed under it at once."""
        self.indexers[name] = func
        self._indices[name] = {}
        for key, obj in self._items.items():
            self._file(name, func, key, obj)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: str) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[Obj]:
        return iter(list(self._items.values()))

    def list_keys(self) -> list[str]:
        return list(self._items)

    def get(self, key: str) -> Obj | None:
        return self._items.get(key)

    def get_by_name(self, name: str, namespace: str | None = None) -> Obj | None:
        return self._items.get(f"{namespace}/{name}" if namespace else name)

    def by_index(self, index: str, value: str) -> list[Obj]:
        if index not in self._indices:
            raise KeyError(f"no index {index!r}; known: {', '.join(sorted(self._indices))}")
        return [self._items[k] for k in sorted(self._indices[index].get(value, ()))]

    def index_values(self, index: str) -> list[str]:
        return sorted(v for v, keys in self._indices[index].items() if keys)

    def put(self, obj: Obj) -> Obj | None:
        """Store `obj`; the object it replaced, if any."""
        key = object_key(obj)
        old = self._items.get(key)
        if old is not None:
            self._unfile(key, old)
        self._items[key] = obj
        for name, func in self.indexers.items():
            self._file(name, func, key, obj)
        return old

    def remove(self, key: str) -> Obj | None:
        old = self._items.pop(key, None)
        if old is not None:
            self._unfile(key, old)
        return old

    def _file(self, name: str, func: IndexFunc, key: str, obj: Obj) -> None:
        index = self._indices[name]
        for value in func(obj):
            index.setdefault(value, set()).add(key)

    def _unfile(self, key: str, obj: Obj) -> None:
        for name, func in self.indexers.items():
            index = self._indices[name]
            for value in func(obj):
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]
