"""The informer cache and its indices (namespace, labels, owner uid, custom functions)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netplane.controllers.runtime.cache import (
    LABEL_INDEX,
    NAMESPACE_INDEX,
    OWNER_INDEX,
    Cache,
    by_label,
    object_key,
    split_key,
)

pytestmark = pytest.mark.unit


def obj(name: str, namespace: str | None = None, labels: dict[str, str] | None = None,
        owners: tuple[str, ...] = (), rv: str = "1") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": labels or {}, "resourceVersion": rv,
                            "ownerReferences": [{"uid": u, "kind": "Deployment", "name": "d"} for u in owners]}
    if namespace:
        meta["namespace"] = namespace
    return {"metadata": meta}


def names(objs: list[dict[str, Any]]) -> list[str]:
    return [object_key(o) for o in objs]


def test_keys_are_namespace_slash_name_or_just_the_name() -> None:
    assert object_key(obj("web", "shop")) == "shop/web"
    assert object_key(obj("shop")) == "shop"
    assert split_key("shop/web") == ("shop", "web") and split_key("shop") == (None, "shop")


def test_builtin_indices_find_by_namespace_label_and_owner() -> None:
    cache = Cache()
    cache.put(obj("a", "ns1", {"app": "web"}, owners=("u1",)))
    cache.put(obj("b", "ns1", {"app": "db"}, owners=("u1", "u2")))
    cache.put(obj("c", "ns2", {"app": "web"}))
    assert names(cache.by_index(NAMESPACE_INDEX, "ns1")) == ["ns1/a", "ns1/b"]
    assert names(cache.by_index(LABEL_INDEX, "app=web")) == ["ns1/a", "ns2/c"]
    assert names(cache.by_index(OWNER_INDEX, "u2")) == ["ns1/b"]
    assert cache.by_index(OWNER_INDEX, "nobody") == []


def test_an_update_refiles_the_object_and_a_removal_unfiles_it() -> None:
    cache = Cache({"project": by_label("cpaas.io/project")})
    cache.put(obj("x", labels={"cpaas.io/project": "p1"}))
    cache.put(obj("y", labels={"cpaas.io/project": "p1"}))
    old = cache.put(obj("x", labels={"cpaas.io/project": "p2"}, rv="2"))
    assert old is not None and old["metadata"]["resourceVersion"] == "1"
    assert names(cache.by_index("project", "p1")) == ["y"]
    assert names(cache.by_index("project", "p2")) == ["x"]
    cache.remove("y")
    assert cache.by_index("project", "p1") == [] and cache.index_values("project") == ["p2"]


def test_a_custom_index_added_later_files_existing_objects() -> None:
    cache = Cache()
    cache.put(obj("a", "ns", {"tier": "front"}))
    cache.add_indexer("tier", lambda o: [o["metadata"]["labels"].get("tier", "none")])
    assert names(cache.by_index("tier", "front")) == ["ns/a"]
    with pytest.raises(KeyError, match="no index 'nope'"):
        cache.by_index("nope", "x")


@given(st.lists(st.tuples(st.sampled_from("abcde"), st.sampled_from(["p1", "p2", None]), st.booleans()),
                max_size=40))
def test_the_index_always_agrees_with_a_full_scan(ops: list[tuple[str, str | None, bool]]) -> None:
    cache = Cache({"project": by_label("project")})
    for name, project, delete in ops:
        if delete:
            cache.remove(name)
        else:
            cache.put(obj(name, labels={"project": project} if project else {}))
    for project in ("p1", "p2"):
        scanned = sorted(object_key(o) for o in cache if o["metadata"]["labels"].get("project") == project)
        assert names(cache.by_index("project", project)) == scanned
