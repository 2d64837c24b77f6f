"""The Secrets of the node's pods, each fetched by name: a node may read only those its pods use
(`netplane.api.auth.nodes`), so the agent cannot watch Secrets cluster-wide as it does ConfigMaps.

A pod's Secrets are fetched before it starts (`ensure`) and again every `REFRESH` seconds while a pod
of the node uses them (`refresh`, from the agent's pod pass), so a changed Secret reaches mounted
volumes within about that time (the kubelet's cache-based strategy). A Secret that cannot be read
keeps what was last read (a missing one is None: volumes keep their files, new pods wait).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import aiohttp

from netplane.api.auth.nodes import referenced_secrets
from netplane.controllers.kube.errors import ApiError, NotFound
from netplane.controllers.kube.resources import Resource

log = logging.getLogger("netplane.agent.secrets")

Obj = dict[str, Any]
SECRETS = Resource("", "v1", "secrets", kind="Secret")
REFRESH = 30.0


class Getter(Protocol):
    async def get(self, resource: Resource, name: str, namespace: str | None = None) -> Obj: ...


class PodSecrets:
    def __init__(self, client: Getter, clock: Callable[[], float] = time.monotonic, refresh: float = REFRESH):
        self._client = client
        self._clock = clock
        self._refresh = refresh
        self._secrets: dict[tuple[str, str], tuple[Obj | None, float]] = {}  # (namespace, name) -> (obj, when)
        self.version = 0  # counts changes seen: volumes that use them are rendered again

    def get(self, namespace: str, name: str) -> Obj | None:
        entry = self._secrets.get((namespace, name))
        return entry[0] if entry else None

    @staticmethod
    def _keys(pod: Obj) -> set[tuple[str, str]]:
        namespace = str((pod.get("metadata") or {}).get("namespace") or "default")
        return {(namespace, name) for name in referenced_secrets(pod)}

    async def ensure(self, pod: Obj) -> None:
        """Fetch the Secrets of a pod about to start that were never fetched."""
        await self._fetch_all([key for key in self._keys(pod) if key not in self._secrets])

    async def refresh(self, pods: Iterable[Obj]) -> None:
        """Fetch again what `pods` (the node's) use and is due; forget what none of them uses."""
        used = set().union(*(self._keys(pod) for pod in pods))
        for key in self._secrets.keys() - used:
            del self._secrets[key]
        now = self._clock()
        await self._fetch_all([key for key in used if key in self._secrets
                               and now - self._secrets[key][1] >= self._refresh])

    async def _fetch_all(self, keys: list[tuple[str, str]]) -> None:
        await asyncio.gather(*(self._fetch(namespace, name) for namespace, name in keys))

    async def _fetch(self, namespace: str, name: str) -> None:
        try:
            secret: Obj | None = await self._client.get(SECRETS, name, namespace)
        except NotFound:
            secret = None
        except (ApiError, aiohttp.ClientError, OSError, TimeoutError) as e:
            log.warning("secret %s/%s: %s", namespace, name, e)
            old = self._secrets.get((namespace, name))
            if old is not None:  # tried again at the next refresh
                self._secrets[(namespace, name)] = (old[0], self._clock())
            return
        old = self._secrets.get((namespace, name))
        if old is None or _content(old[0]) != _content(secret):
            self.version += 1
        self._secrets[(namespace, name)] = (secret, self._clock())


def _content(secret: Obj | None) -> Any:
    return None if secret is None else (secret.get("data"), secret.get("stringData"), secret.get("type"))
