"""Watch over HTTP, in process: timeouts, bookmarks, expired resourceVersions, selectors, watch-list."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from netplane.api.core import ApiCore
from netplane.api.server import ApiServer
from netplane.apiserver_main import build
from netplane.up import UpOptions

pytestmark = pytest.mark.integration

TOKEN = "watch-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CMS = "/api/v1/namespaces/default/configmaps"

Scenario = Callable[[TestClient, ApiCore], Awaitable[Any]]


def run(tmp_path: Path, scenario: Scenario) -> Any:
    async def main() -> Any:
        core, _system = build(UpOptions(data_dir=tmp_path / "data", dataplane=False), 6443)
        server = ApiServer(core, TOKEN)
        async with TestClient(TestServer(server.app)) as client:
            try:
                return await asyncio.wait_for(scenario(client, core), 30)
            finally:
                core.store.raw.close()

    return asyncio.run(main())


async def put_cm(client: TestClient, name: str, labels: dict[str, str] | None = None,
                 data: str = "1") -> dict[str, Any]:
    """Create or replace a configmap; the object as stored."""
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels or {}},
            "data": {"v": data}}
    resp = await client.get(f"{CMS}/{name}", headers=AUTH)
    if resp.status == 404:
        resp = await client.post(CMS, json=body, headers=AUTH)
    else:
        body["metadata"]["resourceVersion"] = (await resp.json())["metadata"]["resourceVersion"]
        resp = await client.put(f"{CMS}/{name}", json=body, headers=AUTH)
    assert resp.status in (200, 201), await resp.text()
    result: dict[str, Any] = await resp.json()
    return result


async def next_event(resp: ClientResponse, timeout: float = 10) -> dict[str, Any]:
    line = await asyncio.wait_for(resp.content.readline(), timeout)
    assert line, "the watch stream ended"
    event: dict[str, Any] = json.loads(line)
    return event


def test_timeout_seconds_ends_the_stream(tmp_path: Path) -> None:
    async def scenario(client: TestClient, core: ApiCore) -> tuple[float, list[str]]:
        await put_cm(client, "a")
        started = time.monotonic()
        resp = await client.get(f"{CMS}?watch=true&timeoutSeconds=1", headers=AUTH)
        assert resp.status == 200
        body = await resp.read()
        return time.monotonic() - started, [json.loads(line)["type"] for line in body.splitlines()]

    elapsed, types = run(tmp_path, scenario)
    assert types == ["ADDED", "ADDED"]  # kube-root-ca.crt, which every namespace has, and a
    assert 0.9 <= elapsed < 10


def test_bookmarks_arrive_when_asked_for(tmp_path: Path) -> None:
    async def scenario(client: TestClient, core: ApiCore) -> dict[str, Any]:
        created = await put_cm(client, "a")
        rv = created["metadata"]["resourceVersion"]
        resp = await client.get(f"{CMS}?watch=true&allowWatchBookmarks=true&resourceVersion={rv}", headers=AUTH)
        event = await next_event(resp, timeout=7)
        resp.close()
        event["rv"] = rv
        return event

    event = run(tmp_path, scenario)
    assert event["type"] == "BOOKMARK"
    assert event["object"]["kind"] == "ConfigMap" and event["object"]["apiVersion"] == "v1"
    assert int(event["object"]["metadata"]["resourceVersion"]) >= int(event["rv"])


def test_watch_from_a_compacted_resource_version_is_410_expired(tmp_path: Path) -> None:
    async def scenario(client: TestClient, core: ApiCore) -> tuple[list[dict[str, Any]], int]:
        first = await put_cm(client, "a")
        for i in range(3):
            await put_cm(client, "a", data=str(i + 2))
        core.store.raw.compact(core.store.raw.revision)
        old_rv = first["metadata"]["resourceVersion"]
        resp = await client.get(f"{CMS}?watch=true&resourceVersion={old_rv}&timeoutSeconds=2", headers=AUTH)
        assert resp.status == 200
        events = [json.loads(line) for line in (await resp.read()).splitlines()]
        # sendInitialEvents only asks for state not older than the RV: served even when compacted.
        listed = await client.get(f"{CMS}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
                                  f"&allowWatchBookmarks=true&resourceVersion={old_rv}", headers=AUTH)
        added = await next_event(listed)
        listed.close()
        assert added["type"] == "ADDED" and added["object"]["data"] == {"v": "4"}
        return events, int(old_rv)

    events, old_rv = run(tmp_path, scenario)
    assert len(events) == 1
    assert events[0]["type"] == "ERROR"
    status = events[0]["object"]
    assert (status["kind"], status["code"], status["reason"], status["status"]) == \
        ("Status", 410, "Expired", "Failure")
    assert status["message"].startswith(f"too old resource version: {old_rv} (")


def test_label_selector_watch_sees_objects_leave_and_return(tmp_path: Path) -> None:
    async def scenario(client: TestClient, core: ApiCore) -> list[tuple[str, str, str]]:
        start = await put_cm(client, "unrelated")
        resp = await client.get(
            f"{CMS}?watch=true&labelSelector=team%3Dblue&resourceVersion={start['metadata']['resourceVersion']}",
            headers=AUTH)
        await put_cm(client, "x", {"team": "blue"}, "1")
        await put_cm(client, "x", {"team": "blue"}, "2")
        await put_cm(client, "x", {"team": "red"}, "3")
        await put_cm(client, "x", {"team": "red"}, "4")  # outside the selection: not seen
        await put_cm(client, "x", {"team": "blue"}, "5")
        deleted = await client.delete(f"{CMS}/x", headers=AUTH)
        assert deleted.status == 200
        seen = []
        for _ in range(5):
            event = await next_event(resp)
            obj = event["object"]
            seen.append((event["type"], obj["metadata"]["labels"]["team"], obj["data"]["v"]))
        resp.close()
        return seen

    assert run(tmp_path, scenario) == [
        ("ADDED", "blue", "1"), ("MODIFIED", "blue", "2"), ("DELETED", "red", "3"), ("ADDED", "blue", "5"),
        ("DELETED", "blue", "5")]


def test_send_initial_events_then_bookmark(tmp_path: Path) -> None:
    async def scenario(client: TestClient, core: ApiCore) -> tuple[list[dict[str, Any]], dict[str, Any], str]:
        for name in ("one", "two"):
            await put_cm(client, name)
        listed = await client.get(CMS, headers=AUTH)
        list_rv = (await listed.json())["metadata"]["resourceVersion"]
        resp = await client.get(f"{CMS}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
                                "&allowWatchBookmarks=true", headers=AUTH)
        initial = [await next_event(resp) for _ in range(4)]
        await put_cm(client, "three")
        after = await next_event(resp)
        resp.close()
        return initial, after, list_rv

    initial, after, list_rv = run(tmp_path, scenario)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in initial[:3]] == [
        ("ADDED", "kube-root-ca.crt"), ("ADDED", "one"), ("ADDED", "two")]
    bookmark = initial[3]
    assert bookmark["type"] == "BOOKMARK"
    assert bookmark["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert int(bookmark["object"]["metadata"]["resourceVersion"]) >= int(list_rv)
    assert (after["type"], after["object"]["metadata"]["name"]) == ("ADDED", "three")
