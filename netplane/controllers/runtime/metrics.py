"""Prometheus metrics of the controllers, named as controller-runtime names them so that existing
dashboards and alerts apply, and the small HTTP server that exposes them (`--metrics-port`)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from netplane.controllers.runtime.workqueue import QueueHooks


class ControllerMetrics:
    """One registry per process (not prometheus_client's global one, so tests can build several)."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.depth = Gauge("workqueue_depth", "Current depth of the work queue.", ["name"], registry=r)
        self.adds = Counter("workqueue_adds", "Keys added to the work queue.", ["name"], registry=r)
        self.retries = Counter("workqueue_retries", "Keys re-queued after a failure.", ["name"], registry=r)
        self.reconciles = Counter("controller_runtime_reconcile", "Reconciles, by result.",
                                  ["controller", "result"], registry=r)
        self.errors = Counter("controller_runtime_reconcile_errors", "Reconciles that failed.",
                              ["controller"], registry=r)
        self.latency = Histogram("controller_runtime_reconcile_time_seconds", "Time per reconcile.",
                                 ["controller"], registry=r,
                                 buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.leader = Gauge("leader_election_master_status", "1 while this process holds the lease.",
                            ["name"], registry=r)

    def queue_hooks(self, name: str) -> QueueHooks:
        return _Hooks(self, name)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Hooks(QueueHooks):
    def __init__(self, metrics: ControllerMetrics, name: str):
        self._depth = metrics.depth.labels(name)
        self._adds = metrics.adds.labels(name)
        self._retries = metrics.retries.labels(name)

    def added(self) -> None:
        self._adds.inc()

    def retried(self) -> None:
        self._retries.inc()

    def depth(self, depth: int) -> None:
        self._depth.set(depth)


async def serve_metrics(metrics: ControllerMetrics, port: int, host: str = "127.0.0.1") -> web.AppRunner:
    """Serve /metrics and /healthz on `port`; the caller cleans up the returned runner."""
    async def scrape(_: web.Request) -> web.Response:
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/metrics", scrape)
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
