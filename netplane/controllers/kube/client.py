"""Dynamic, asyncio access to any Kubernetes resource: get, list, watch, create, update, patch, delete.

Objects are plain dicts (decoded JSON), as a dynamic client's unstructured objects are; every
failure is raised as the typed error of `kube.errors`, decoded from the server's Status body.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp
import orjson

from netplane.controllers.kube.config import ClusterConfig
from netplane.controllers.kube.errors import ApiError, TooManyRequests, error_from_status
from netplane.controllers.kube.resources import Resource

log = logging.getLogger("netplane.kube")

Obj = dict[str, Any]
PatchType = Literal["merge", "json", "strategic", "apply"]

PATCH_CONTENT_TYPES: dict[str, str] = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",
}
USER_AGENT = "netplane-controller/0.1.0"
MAX_THROTTLE_RETRIES = 3


@dataclass(frozen=True)
class WatchEvent:
    """One event of a watch: ADDED, MODIFIED, DELETED or BOOKMARK (ERROR events are raised instead)."""

    type: str
    object: Obj

    @property
    def resource_version(self) -> str:
        return str((self.object.get("metadata") or {}).get("resourceVersion") or "")


def _query(**params: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in params.items():
        if value is None or value == "":
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


class Client:
    """One connection pool to one API server. Use as an async context manager, or call `close()`."""

    def __init__(self, config: ClusterConfig, *, request_timeout: float = 30.0):
        self.config = config
        self.request_timeout = request_timeout
        self._ssl = config.ssl_context()
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            auth = (aiohttp.BasicAuth(self.config.username, self.config.password or "")
                    if self.config.username else None)
            self._session = aiohttp.ClientSession(
                auth=auth,
                connector=aiohttp.TCPConnector(ssl=self._ssl if self._ssl is not None else False, limit=64),
                json_serialize=lambda o: orjson.dumps(o).decode(),
                headers={"User-Agent": USER_AGENT, "Accept": "application/json"})
        return self._session

    def _headers(self, content_type: str | None = None) -> dict[str, str]:
        headers = {}
        token = self.config.bearer_token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    async def request(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
                      body: Any = None, content_type: str = "application/json") -> Obj:
        """One API call; the decoded JSON answer. Throttled calls (429) are retried as Retry-After asks."""
        data = None if body is None else (body if isinstance(body, bytes) else orjson.dumps(body))
        for attempt in range(MAX_THROTTLE_RETRIES + 1):
            async with self._http().request(
                    method, self.config.server + path, params=params, data=data,
                    headers=self._headers(content_type if data is not None else None),
                    timeout=aiohttp.ClientTimeout(total=self.request_timeout),
                    server_hostname=self.config.tls_server_name) as resp:
                raw = await resp.read()
                if resp.status < 400:
                    result: Obj = orjson.loads(raw) if raw else {}
                    return result
                error = error_from_status(resp.status, _decode_error(raw))
                if isinstance(error, TooManyRequests) and attempt < MAX_THROTTLE_RETRIES:
                    await asyncio.sleep(_retry_after(resp.headers.get("Retry-After")))
                    continue
                raise error
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ reads

    async def get(self, res: Resource, name: str, namespace: str | None = None) -> Obj:
        return await self.request("GET", res.path(namespace, name))

    async def list(self, res: Resource, namespace: str | None = None, *, label_selector: str | None = None,
                   field_selector: str | None = None, limit: int | None = None, continue_: str | None = None,
                   resource_version: str | None = None) -> Obj:
        """One page of a list: the List object, with `metadata.continue` set when more pages follow."""
        return await self.request("GET", res.path(namespace), params=_query(
            labelSelector=label_selector, fieldSelector=field_selector, limit=limit,
            resourceVersion=resource_version, **{"continue": continue_}))

    async def list_all(self, res: Resource, namespace: str | None = None, *, label_selector: str | None = None,
                       field_selector: str | None = None, page_size: int = 500) -> tuple[builtins.list[Obj], str]:
        """Every object, fetched page by page; and the list's resourceVersion to watch from."""
        items: builtins.list[Obj] = []
        token: str | None = None
        while True:
            page = await self.list(res, namespace, label_selector=label_selector, field_selector=field_selector,
                                   limit=page_size, continue_=token)
            items.extend(page.get("items") or [])
            meta = page.get("metadata") or {}
            token = meta.get("continue")
            if not token:
                return items, str(meta.get("resourceVersion") or "")

    async def watch(self, res: Resource, namespace: str | None = None, *, resource_version: str | None = None,
                    label_selector: str | None = None, field_selector: str | None = None,
                    allow_bookmarks: bool = True, timeout_seconds: int | None = None) -> AsyncIterator[WatchEvent]:
        """The events after `resource_version`, until the server ends the stream.

        An ERROR event is raised as its typed error: `Expired` (410) means the version is compacted
        and the caller must list again.
        """
        params = _query(watch=True, resourceVersion=resource_version, labelSelector=label_selector,
                        fieldSelector=field_selector, allowWatchBookmarks=allow_bookmarks or None,
                        timeoutSeconds=timeout_seconds)
        # No total timeout: a watch lasts as long as the server keeps it; only connecting is bounded.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.request_timeout,
                                        sock_read=(timeout_seconds + 30) if timeout_seconds else None)
        url = self.config.server + res.path(namespace)
        async with self._http().get(url, params=params, headers=self._headers(), timeout=timeout,
                                    server_hostname=self.config.tls_server_name) as resp:
            if resp.status >= 400:
                raise error_from_status(resp.status, _decode_error(await resp.read()))
            buffer = b""
            # Lines are split by hand: aiohttp's readline caps line length below a large object's size.
            async for chunk in resp.content.iter_any():
                buffer += chunk
                while (end := buffer.find(b"\n")) >= 0:
                    line, buffer = buffer[:end], buffer[end + 1:]
                    if line.strip():
                        yield _event(orjson.loads(line))
            if buffer.strip():
                yield _event(orjson.loads(buffer))

    # ------------------------------------------------------------------ writes

    async def create(self, res: Resource, obj: Obj, namespace: str | None = None) -> Obj:
        return await self.request("POST", res.path(namespace or _namespace_of(obj, res)), body=obj)

    async def update(self, res: Resource, obj: Obj) -> Obj:
        """Replace the object; its metadata.resourceVersion (if set) makes this fail with Conflict when stale."""
        meta = obj.get("metadata") or {}
        return await self.request("PUT", res.path(_namespace_of(obj, res), meta.get("name")), body=obj)

    async def update_status(self, res: Resource, obj: Obj) -> Obj:
        meta = obj.get("metadata") or {}
        return await self.request("PUT", res.path(_namespace_of(obj, res), meta.get("name"), "status"), body=obj)

    async def patch(self, res: Resource, name: str, patch: Any, namespace: str | None = None, *,
                    patch_type: PatchType = "merge", subresource: str | None = None,
                    field_manager: str | None = None, force: bool | None = None) -> Obj:
        """Patch by merge, JSON or strategic merge patch, or server-side apply (`field_manager` required)."""
        if patch_type == "apply" and not field_manager:
            raise ValueError("server-side apply needs a field_manager")
        return await self.request("PATCH", res.path(namespace, name, subresource), body=patch,
                                  content_type=PATCH_CONTENT_TYPES[patch_type],
                                  params=_query(fieldManager=field_manager, force=force))

    async def delete(self, res: Resource, name: str, namespace: str | None = None, *,
                     propagation_policy: str | None = None, uid: str | None = None,
                     resource_version: str | None = None, grace_period_seconds: int | None = None) -> Obj:
        """Delete; `uid`/`resource_version` are preconditions (Conflict when the object is another one)."""
        options: Obj = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if propagation_policy:
            options["propagationPolicy"] = propagation_policy
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        preconditions = {k: v for k, v in (("uid", uid), ("resourceVersion", resource_version)) if v}
        if preconditions:
            options["preconditions"] = preconditions
        return await self.request("DELETE", res.path(namespace, name), body=options)


def _namespace_of(obj: Obj, res: Resource) -> str | None:
    if not res.namespaced:
        return None
    namespace = (obj.get("metadata") or {}).get("namespace")
    return str(namespace) if namespace else None


def _decode_error(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode(errors="replace").strip()


def _retry_after(value: str | None) -> float:
    try:
        return min(max(float(value or 1), 0.1), 10.0)
    except ValueError:
        return 1.0


def _event(raw: Any) -> WatchEvent:
    if not isinstance(raw, dict) or "type" not in raw:
        raise ApiError({"code": 500, "reason": "InternalError", "message": f"not a watch event: {raw!r:.200}"})
    obj = raw.get("object") or {}
    if raw["type"] == "ERROR":
        raise error_from_status(int(obj.get("code") or 500), obj)
    return WatchEvent(str(raw["type"]), obj)
