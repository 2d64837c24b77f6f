"""Service-account tokens for projected volumes, kept as the kubelet's token manager keeps them.

Each `serviceAccountToken` source of a pod's volume is a TokenRequest for the pod's service
account, bound to the pod (so the token dies with it), for the source's audience (none: the API's)
and lifetime. A token is renewed once 80% of its lifetime has passed, or after a day, whichever
is first; the agent's volume refresh then writes the new one. Rendering is synchronous, so
`token` only answers from the cache and starts renewals in the background; `ensure` is what a
pod start awaits.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from netplane.controllers.kube.errors import ApiError
from netplane.controllers.kube.resources import Resource
from netplane.dataplane.agent.podconfig import ConfigError

log = logging.getLogger("netplane.agent.tokens")

Obj = dict[str, Any]
SERVICEACCOUNTS = Resource("", "v1", "serviceaccounts", kind="ServiceAccount")
RENEW_AFTER = 0.8  # of a token's lifetime
MAX_AGE = 24 * 3600.0
DEFAULT_EXPIRATION = 3600


class Requester(Protocol):
    async def request(self, method: str, path: str, *, body: Any = None) -> Obj: ...


@dataclass(frozen=True)
class _Key:
    namespace: str
    service_account: str
    pod: str
    pod_uid: str
    audience: str
    expiration: int


@dataclass(frozen=True)
class _Token:
    value: str
    issued: float
    expires: float

    def due(self, now: float) -> bool:
        return now >= self.issued + min((self.expires - self.issued) * RENEW_AFTER, MAX_AGE)


def token_sources(volume: Obj) -> list[Obj]:
    """The serviceAccountToken sources of a volume (only projected volumes have them)."""
    projected = volume.get("projected") or {}
    return [part["serviceAccountToken"] or {} for part in projected.get("sources") or []
            if "serviceAccountToken" in part]


def _timestamp(text: Any) -> float | None:
    try:
        return dt.datetime.fromisoformat(str(text)).timestamp()
    except ValueError:
        return None


class TokenManager:
    def __init__(self, client: Requester, spawn: Callable[[Coroutine[Any, Any, None]], None],
                 clock: Callable[[], float] = time.time):
        self._client = client
        self._spawn = spawn
        self._clock = clock
        self._tokens: dict[_Key, _Token] = {}
        self._renewing: set[_Key] = set()
        self._failures: dict[_Key, str] = {}
        self.version = 0  # counts tokens fetched: volumes that project them are rendered again

    @staticmethod
    def _key(pod: Obj, source: Obj) -> _Key:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        expiration = source.get("expirationSeconds")
        return _Key(str(meta.get("namespace") or "default"), str(spec.get("serviceAccountName") or "default"),
                    str(meta["name"]), str(meta["uid"]), str(source.get("audience") or ""),
                    DEFAULT_EXPIRATION if expiration is None else int(expiration))

    def _forget_expired(self, now: float) -> None:
        # Tokens of pods that are gone are never renewed, so they end up here.
        for key in [k for k, t in self._tokens.items() if now >= t.expires and k not in self._renewing]:
            del self._tokens[key]
            self._failures.pop(key, None)

    async def ensure(self, pod: Obj, volume: Obj) -> None:
        """Fetch the tokens ``volume`` projects that are missing or due; ConfigError (the kubelet's
        message) when one cannot be had."""
        now = self._clock()
        self._forget_expired(now)
        for source in token_sources(volume):
            key = self._key(pod, source)
            cached = self._tokens.get(key)
            if cached is None or cached.due(now):
                await self._fetch(key)

    def token(self, pod: Obj, source: Obj) -> bytes:
        """The cached token (a `podconfig.TokenSource`); one that is due is renewed meanwhile."""
        now = self._clock()
        key = self._key(pod, source)
        cached = self._tokens.get(key)
        if (cached is None or cached.due(now)) and key not in self._renewing:
            self._renewing.add(key)
            self._spawn(self._renew(key))
        if cached is None or now >= cached.expires:
            raise ConfigError(f"failed to fetch token: {self._failures.get(key, 'not fetched yet')}")
        return cached.value.encode()

    async def _renew(self, key: _Key) -> None:
        try:
            await self._fetch(key)
        except ConfigError as e:
            log.warning("pod %s/%s: %s", key.namespace, key.pod, e)
        finally:
            self._renewing.discard(key)

    async def _fetch(self, key: _Key) -> None:
        spec: Obj = {"expirationSeconds": key.expiration,
                     "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": key.pod, "uid": key.pod_uid}}
        if key.audience:
            spec["audiences"] = [key.audience]
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
        try:
            answer = await self._client.request(
                "POST", SERVICEACCOUNTS.path(key.namespace, key.service_account, "token"), body=body)
        except ApiError as e:
            self._failures[key] = e.message
            raise ConfigError(f"failed to fetch token: {e.message}") from None
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            self._failures[key] = str(e) or type(e).__name__
            raise ConfigError(f"failed to fetch token: {self._failures[key]}") from None
        status, granted = answer.get("status") or {}, answer.get("spec") or {}
        expires = _timestamp(status.get("expirationTimestamp"))
        if not status.get("token") or expires is None:
            self._failures[key] = "no token in the answer"
            raise ConfigError("failed to fetch token: no token in the answer")
        lifetime = float(granted.get("expirationSeconds") or key.expiration)
        self._tokens[key] = _Token(str(status["token"]), expires - lifetime, expires)
        self.version += 1
        self._failures.pop(key, None)
