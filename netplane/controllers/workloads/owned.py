"""Which objects a workload controls: controller references, label selectors, adoption.

Kubernetes' rule (ControllerRefManager): an object belongs to the owner its controller reference
names. An orphan (no controller reference) that matches an owner's selector is adopted by adding
one; an owned object whose labels no longer match is released by removing it. Nothing already
controlled by someone else is ever taken.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Any

from netplane.controllers.kube.client import Client
from netplane.controllers.kube.errors import Conflict, NotFound
from netplane.controllers.kube.resources import Resource
from netplane.controllers.runtime.cache import NAMESPACE_INDEX, OWNER_INDEX, Cache, object_key
from netplane.controllers.workloads.pods import controller_ref, meta, owner_ref, terminating
from netplane.scheduling.matching import requirement_matches

Obj = dict[str, Any]


def selector_matches(selector: Obj | None, labels: dict[str, str]) -> bool:
    """A metav1.LabelSelector against labels; an empty selector matches nothing here (apps/v1 forbids it)."""
    if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        return False
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    return all(requirement_matches(labels, r) for r in selector.get("matchExpressions") or [])


def labels_of(obj: Obj) -> dict[str, str]:
    return dict(meta(obj).get("labels") or {})


def controlled_by(cache: Cache, owner: Obj) -> list[Obj]:
    uid = meta(owner).get("uid")
    return [o for o in cache.by_index(OWNER_INDEX, str(uid))
            if (controller_ref(o) or {}).get("uid") == uid]


def orphans(candidates: Iterable[Obj], selector: Obj | None) -> list[Obj]:
    return [o for o in candidates
            if controller_ref(o) is None and not terminating(o) and selector_matches(selector, labels_of(o))]


async def adopt(client: Client, res: Resource, owner: Obj, obj: Obj) -> Obj | None:
    """Add `owner` as controller of `obj`; None when it changed or went away meanwhile (we look next time)."""
    refs = [*(meta(obj).get("ownerReferences") or []), owner_ref(owner)]
    patch = {"metadata": {"ownerReferences": refs, "resourceVersion": meta(obj).get("resourceVersion")}}
    with contextlib.suppress(NotFound, Conflict):
        return await client.patch(res, meta(obj)["name"], patch, meta(obj).get("namespace"))
    return None


async def release(client: Client, res: Resource, owner: Obj, obj: Obj) -> None:
    uid = meta(owner).get("uid")
    refs = [r for r in meta(obj).get("ownerReferences") or [] if r.get("uid") != uid]
    patch = {"metadata": {"ownerReferences": refs or None, "resourceVersion": meta(obj).get("resourceVersion")}}
    with contextlib.suppress(NotFound, Conflict):
        await client.patch(res, meta(obj)["name"], patch, meta(obj).get("namespace"))


async def claim(client: Client, res: Resource, owner: Obj, owned: list[Obj], in_namespace: Iterable[Obj],
                selector: Obj | None) -> list[Obj]:
    """The objects `owner` controls after adopting matching orphans and releasing owned ones that stopped matching."""
    kept: list[Obj] = []
    for obj in owned:
        if selector_matches(selector, labels_of(obj)) or terminating(obj):
            kept.append(obj)
        else:
            await release(client, res, owner, obj)
    if not terminating(owner):
        for obj in orphans(in_namespace, selector):
            adopted = await adopt(client, res, owner, obj)
            if adopted is not None:
                kept.append(adopted)
    return kept


def by_controller(kind: str) -> Callable[[Obj], list[str]]:
    """An informer mapper: the key of the object's controller, when it is a `kind`."""
    def mapper(obj: Obj) -> list[str]:
        ref = controller_ref(obj)
        if ref is None or ref.get("kind") != kind:
            return []
        return [f"{meta(obj).get('namespace')}/{ref.get('name')}"]

    return mapper


def by_controller_or_selector(kind: str, owners: Cache) -> Callable[[Obj], list[str]]:
    """Like `by_controller`, and for an orphan the owners in its namespace whose selector matches
    it, so they get to adopt it."""
    controller = by_controller(kind)

    def mapper(obj: Obj) -> list[str]:
        if controller_ref(obj) is not None:
            return controller(obj)
        namespace = str(meta(obj).get("namespace") or "")
        labels = labels_of(obj)
        return [object_key(o) for o in owners.by_index(NAMESPACE_INDEX, namespace)
                if selector_matches((o.get("spec") or {}).get("selector"), labels)]

    return mapper
