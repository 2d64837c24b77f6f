"""The agent's service proxy loop: informer events -> debounced, level-triggered proxy syncs."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any, cast

import pytest

from netplane.controllers.runtime.informer import Informer
from netplane.dataplane.agent.services import ENDPOINTSLICES, SERVICES, ServiceProxy
from netplane.dataplane.proxy import NodeConfig, ProxyApplyError, Ruleset
from netplane.dataplane.proxy.render import SERVICE_IPS

pytestmark = pytest.mark.unit

CONFIG = NodeConfig("node1", (ipaddress.IPv4Address("172.31.251.11"),), (ipaddress.IPv4Network("10.16.0.0/16"),))


def service(name: str, ip: str, rv: str = "1") -> dict[str, Any]:
    return {"metadata": {"namespace": "default", "name": name, "resourceVersion": rv},
            "spec": {"type": "ClusterIP", "clusterIP": ip, "ports": [{"port": 80, "protocol": "TCP"}]}}


def endpoint_slice(name: str, ips: list[str], rv: str = "1") -> dict[str, Any]:
    return {"metadata": {"namespace": "default", "name": f"{name}-abcde", "resourceVersion": rv,
                         "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4", "ports": [{"name": "", "port": 80, "protocol": "TCP"}],
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True}} for ip in ips]}


def informer(resource: Any) -> Informer:
    return Informer(cast(Any, None), resource)  # never started: the tests feed it directly


def service_ips(rs: Ruleset) -> tuple[str, ...]:
    return next(s.elements for s in rs.sets if s.name == SERVICE_IPS)


class Recorder:
    def __init__(self, fail: int = 0) -> None:
        self.applied: list[Ruleset] = []
        self.fail = fail

    def __call__(self, rs: Ruleset) -> list[str]:
        if self.fail:
            self.fail -= 1
            raise ProxyApplyError("nft in np-x-node1: Error: boom")
        self.applied.append(rs)
        return ["synced"]


async def until(check: Any, timeout: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def _run(proxy: ServiceProxy, body: Any) -> None:
    task = asyncio.create_task(proxy.run())
    try:
        await body()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def test_waits_for_synced_caches_then_coalesces_a_burst_into_one_sync() -> None:
    async def main() -> None:
        services, slices = informer(SERVICES), informer(ENDPOINTSLICES)
        recorder = Recorder()
        proxy = ServiceProxy(services, slices, lambda: CONFIG, recorder, debounce=0.05, resync=60)

        async def body() -> None:
            await asyncio.sleep(0.1)
            assert recorder.applied == []  # nothing before both caches are synced
            services._synced.set()
            slices._synced.set()
            await until(lambda: proxy.passes == 1)
            assert service_ips(recorder.applied[0]) == ()
            # A burst: one pass for all of it, rendered from the caches as they are at the end.
            services._apply_upsert(service("web", "10.96.0.20"))
            slices._apply_upsert(endpoint_slice("web", ["10.16.0.5"]))
            services._apply_upsert(service("api", "10.96.0.21"))
            slices._apply_upsert(endpoint_slice("api", ["10.16.0.6"]))
            await until(lambda: proxy.passes == 2)
            await asyncio.sleep(0.15)
            assert proxy.passes == 2
            assert len(service_ips(recorder.applied[-1])) == 2
            # Deletions count as changes too.
            services._notify_delete(services.cache.remove("default/api") or {})
            await until(lambda: proxy.passes == 3)
            assert len(service_ips(recorder.applied[-1])) == 1

        await _run(proxy, body)

    asyncio.run(main())


def test_a_failed_sync_is_retried_and_never_ends_the_loop() -> None:
    async def main() -> None:
        services, slices = informer(SERVICES), informer(ENDPOINTSLICES)
        services._synced.set()
        slices._synced.set()
        services._apply_upsert(service("web", "10.96.0.20"))
        slices._apply_upsert(endpoint_slice("web", ["10.16.0.5"]))
        recorder = Recorder(fail=2)
        calls = 0

        def config() -> NodeConfig:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("a bug in rendering")  # not even an nft error stops it
            return CONFIG

        proxy = ServiceProxy(services, slices, config, recorder, debounce=0.01, resync=60, max_backoff=0.05)

        async def body() -> None:
            await until(lambda: proxy.passes == 1, timeout=5)
            assert proxy.failures == 0 and calls == 4
            assert len(service_ips(recorder.applied[0])) == 1

        await _run(proxy, body)

    asyncio.run(main())


def test_resyncs_without_events() -> None:
    async def main() -> None:
        services, slices = informer(SERVICES), informer(ENDPOINTSLICES)
        services._synced.set()
        slices._synced.set()
        recorder = Recorder()
        proxy = ServiceProxy(services, slices, lambda: CONFIG, recorder, debounce=0.01, resync=0.05)
        await _run(proxy, lambda: until(lambda: proxy.passes >= 3))

    asyncio.run(main())
