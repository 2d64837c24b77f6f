"""Where a kind is served: the coordinates of its REST paths."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Resource:
    """A resource by (group, version, plural, namespaced); `kind` only labels logs and Event references."""

    group: str
    version: str
    plural: str
    namespaced: bool = True
    kind: str = ""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str | None = None) -> str:
        prefix = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            prefix += f"/namespaces/{namespace}"
        elif self.namespaced and name is not None:
            raise ValueError(f"{self.plural} is namespaced: a namespace is needed to address {name!r}")
        path = f"{prefix}/{self.plural}"
        if name is not None:
            if not name:
                raise ValueError(f"an empty name cannot address a single {self.plural} object")
            path += f"/{name}"
            if subresource:
                path += f"/{subresource}"
        return path


NAMESPACES = Resource("", "v1", "namespaces", namespaced=False, kind="Namespace")
EVENTS = Resource("", "v1", "events", kind="Event")
LEASES = Resource("coordination.k8s.io", "v1", "leases", kind="Lease")
CONFIGMAPS = Resource("", "v1", "configmaps", kind="ConfigMap")
