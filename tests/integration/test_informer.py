"""The informer against a real API: it sees adds, updates and deletes, survives a broken watch
connection, and lists again after a 410 Expired (a watch from a compacted revision)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from netplane.api.server import ApiServer
from netplane.apiserver_main import build
from netplane.controllers.kube import Client, ClusterConfig, NotFound, load_kubeconfig
from netplane.controllers.kube.resources import CONFIGMAPS
from netplane.controllers.runtime.informer import Informer
from netplane.up import UpOptions
from tests.conftest import Netplane

pytestmark = pytest.mark.integration


async def eventually(check: Callable[[], bool], timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def cm(name: str, label: str, value: str = "1") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default", "labels": {"test": label}}, "data": {"v": value}}


class Recorder:
    def __init__(self, informer: Informer):
        self.events: list[tuple[str, str]] = []
        informer.add_handler(lambda o: self.events.append(("add", o["metadata"]["name"])),
                             lambda old, new: self.events.append(("update", new["metadata"]["name"])),
                             lambda o: self.events.append(("delete", o["metadata"]["name"])))


class Proxy:
    """A TCP relay whose connections the test can cut, as a network failure would."""

    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def cut(self) -> None:
        for w in self.writers:
            transport = w.transport
            transport.abort()
        self.writers.clear()

    async def close(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_informer_sees_adds_updates_and_deletes_and_survives_a_cut_connection(netplane: Netplane) -> None:
    label = uuid.uuid4().hex[:8]
    config = load_kubeconfig(netplane.kubeconfig)

    async def scenario() -> None:
        host, port = config.server.removeprefix("https://").rsplit(":", 1)
        proxy = Proxy(host, int(port))
        proxied = dataclasses.replace(config, server=f"https://127.0.0.1:{await proxy.start()}")
        async with Client(config) as writer, Client(proxied) as reader:
            await writer.create(CONFIGMAPS, cm("before", label))
            informer = Informer(reader, CONFIGMAPS, "default", label_selector=f"test={label}")
            seen = Recorder(informer)
            informer.start()
            await informer.wait_synced(10)
            assert seen.events == [("add", "before")]
            await writer.create(CONFIGMAPS, cm("a", label))
            current = await writer.get(CONFIGMAPS, "a", "default")
            current["data"] = {"v": "2"}
            await writer.update(CONFIGMAPS, current)
            await writer.delete(CONFIGMAPS, "before", "default")
            await eventually(lambda: len(seen.events) == 4)
            assert seen.events[1:] == [("add", "a"), ("update", "a"), ("delete", "before")]
            assert informer.cache.get("default/a")["data"] == {"v": "2"}  # type: ignore[index]

            proxy.cut()  # the watch connection breaks; changes meanwhile must still arrive
            await writer.create(CONFIGMAPS, cm("after-cut", label))
            await writer.delete(CONFIGMAPS, "a", "default")
            await eventually(lambda: ("add", "after-cut") in seen.events and ("delete", "a") in seen.events)
            assert sorted(o["metadata"]["name"] for o in informer.cache) == ["after-cut"]
            await informer.stop()
            await writer.delete(CONFIGMAPS, "after-cut", "default")
            with pytest.raises(NotFound):
                await writer.get(CONFIGMAPS, "after-cut", "default")
        await proxy.close()

    run(scenario)


def test_informer_lists_again_after_its_resource_version_is_compacted(tmp_path: Path) -> None:
    token = "informer-test"

    async def scenario() -> None:
        core, _ = build(UpOptions(data_dir=tmp_path / "data", dataplane=False), 6443)
        async with TestServer(ApiServer(core, token).app) as server:
            config = ClusterConfig(server=str(server.make_url("")).rstrip("/"), token=token)
            async with Client(config) as client:
                await client.create(CONFIGMAPS, cm("mine", "yes"))
                await client.create(CONFIGMAPS, cm("kept", "yes"))
                informer = Informer(client, CONFIGMAPS, "default", label_selector="test=yes")
                seen = Recorder(informer)
                informer.start()
                await informer.wait_synced(10)
                # While the informer is away, "mine" is deleted and the history compacted past its
                # resourceVersion: resuming, it is answered 410 Expired, lists again, and reports the
                # deletion it never saw as an event.
                await informer.stop()
                await client.delete(CONFIGMAPS, "mine", "default")
                await client.create(CONFIGMAPS, cm("other", "no"))
                core.store.raw.compact(core.store.raw.revision)
                informer.start()
                await eventually(lambda: informer.relists == 2)
                await client.create(CONFIGMAPS, cm("later", "yes"))
                await eventually(lambda: ("add", "later") in seen.events)
                assert seen.events == [("add", "kept"), ("add", "mine"), ("delete", "mine"), ("add", "later")]
                await informer.stop()
        core.store.raw.close()

    run(scenario)
