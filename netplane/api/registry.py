"""Which resource types are served right now: the built-ins plus every established CRD version."""

from __future__ import annotations

from collections.abc import Iterable

from netplane.api.resources import BUILTIN_TYPES, ResourceType

# Kubernetes lists groups in this order in discovery; custom groups follow, sorted.
_GROUP_ORDER = ["", "apps", "events.k8s.io", "authentication.k8s.io", "authorization.k8s.io",
                "autoscaling", "batch", "networking.k8s.io", "rbac.authorization.k8s.io",
                "coordination.k8s.io", "discovery.k8s.io", "apiextensions.k8s.io"]


class Registry:
    def __init__(self) -> None:
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        self._crd_types: dict[str, list[ResourceType]] = {}
        self.generation = 0
        for rt in BUILTIN_TYPES:
            self._types[(rt.group, rt.version, rt.plural)] = rt

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._types.get((group, version, plural))

    def by_kind(self, group: str, version: str, kind: str) -> ResourceType | None:
        for rt in self._types.values():
            if rt.group == group and rt.version == version and rt.kind == kind:
                return rt
        return None

    def all(self) -> Iterable[ResourceType]:
        return self._types.values()

    def group_versions(self) -> list[tuple[str, list[str]]]:
        """Groups in discovery order, each with its versions, preferred first."""
        versions: dict[str, list[str]] = {}
        preferred: dict[str, str] = {}
        for rt in self._types.values():
            vs = versions.setdefault(rt.group, [])
            if rt.version not in vs:
                vs.append(rt.version)
            if rt.storage_version:
                preferred[rt.group] = rt.storage_version
        order = {g: i for i, g in enumerate(_GROUP_ORDER)}
        groups = sorted(versions, key=lambda g: (order.get(g, len(order)), g))
        result = []
        for g in groups:
            vs = sorted(versions[g], key=_version_priority)
            if g in preferred and preferred[g] in vs:
                vs.remove(preferred[g])
                vs.insert(0, preferred[g])
            result.append((g, vs))
        return result

    def types_in(self, group: str, version: str) -> list[ResourceType]:
        return sorted((rt for rt in self._types.values() if rt.group == group and rt.version == version),
                      key=lambda rt: rt.plural)

    def set_crd(self, crd_name: str, types: list[ResourceType]) -> None:
        """Serve (or stop serving, with an empty list) the versions of one CRD."""
        for old in self._crd_types.pop(crd_name, []):
            self._types.pop((old.group, old.version, old.plural), None)
        for rt in types:
            self._types[(rt.group, rt.version, rt.plural)] = rt
        if types:
            self._crd_types[crd_name] = types
        self.generation += 1

    def crd_types(self, crd_name: str) -> list[ResourceType]:
        return self._crd_types.get(crd_name, [])


def _version_priority(version: str) -> tuple[int, int, int]:
    """Kubernetes' version ordering: GA > beta > alpha, higher numbers first."""
    import re

    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not m:
        return (3, 0, 0)
    major = int(m[1])
    stage = {"alpha": 2, "beta": 1, None: 0}[m[2]]
    minor = int(m[3] or 0)
    return (stage, -major, -minor)


def storage_type(registry: Registry, group: str, plural: str) -> ResourceType | None:
    """The type objects of ``group``/``plural`` are stored as (any served version would do)."""
    found = None
    for rt in registry.all():
        if rt.group == group and rt.plural == plural:
            if rt.stored_as_served:
                return rt
            found = rt
    return found
