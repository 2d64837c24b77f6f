"""Abusive clients are refused or contained without affecting anyone else."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from netplane.api import server as server_module
from netplane.api.server import ApiServer
from netplane.apiserver_main import build
from netplane.up import UpOptions
from tests.conftest import Netplane
from tests.helpers import Client

pytestmark = pytest.mark.integration


def test_a_flood_of_watches_gets_429_and_others_still_watch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server_module, "MAX_WATCHES_PER_USER", 5)

    async def scenario() -> tuple[list[int], int, int]:
        core, _ = build(UpOptions(data_dir=tmp_path / "data"), 6443)
        api = ApiServer(core, "flood-token")
        async with TestClient(TestServer(api.app)) as client:
            headers = {"Authorization": "Bearer flood-token"}
            url = "/api/v1/namespaces/default/configmaps?watch=true"
            held = [await client.get(url, headers=headers) for _ in range(5)]
            refused = await client.get(url, headers=headers)
            body = await refused.json()
            for resp in held:
                resp.close()
            await asyncio.sleep(0.2)
            again = await client.get(url + "&timeoutSeconds=1", headers=headers)
            await again.read()
            core.store.raw.close()
            return [r.status for r in held], refused.status if body["reason"] == "TooManyRequests" else -1, \
                again.status

    held, refused, again = asyncio.run(scenario())
    assert held == [200] * 5
    assert refused == 429
    assert again == 200  # slots come back when watches end


def test_slow_and_half_open_clients_do_not_block_others(netplane: Netplane) -> None:
    host, port = netplane.server.removeprefix("https://").rsplit(":", 1)
    idle = []
    try:
        for i in range(100):
            s = socket.create_connection((host, int(port)), timeout=5)
            if i % 2:
                s.sendall(b"\x16\x03\x01")  # a TLS record header, then silence
            idle.append(s)
        started = time.monotonic()
        status, _ = Client(netplane).request("GET", "/api/v1/namespaces/default")
        assert status == 200
        assert time.monotonic() - started < 5
    finally:
        for s in idle:
            s.close()


def test_malformed_credentials_get_401_and_do_not_disturb(netplane: Netplane) -> None:
    client = Client(netplane)
    for token in ("", "\u00e9\u00e9", "Bearer Bearer", "a.b.c"):
        status, body = client.request("GET", "/api/v1/namespaces", token=token or "none")
        assert status == 401, (token, body)
    # A header beyond the HTTP parser's limit is refused before authentication.
    assert client.request("GET", "/api/v1/namespaces", token="x" * 10_000)[0] == 400
    assert client.request("GET", "/api/v1/namespaces")[0] == 200
