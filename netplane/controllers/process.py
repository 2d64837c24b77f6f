"""The `netplane controller` process: every controller, under leader election, with metrics.

Only the leader runs controllers; the others wait as candidates. On losing the lease the
controllers (informers included) are stopped at once and the process campaigns again, so a
partitioned leader never keeps writing beside its successor.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from netplane.controllers import (
    cloudlb,
    endpoints,
    ingressnginx,
    ipam,
    nodelifecycle,
    plugins,
    projects,
    scheduler,
    workloads,
)
from netplane.controllers.kube.client import Client
from netplane.controllers.kube.config import in_cluster_config, load_kubeconfig
from netplane.controllers.runtime.leader import LeaderElector, LeaseTiming
from netplane.controllers.runtime.manager import Manager
from netplane.controllers.runtime.metrics import ControllerMetrics, serve_metrics
from netplane.scheduling.lifecycle import DEFAULT_GRACE_PERIOD

log = logging.getLogger("netplane.controller")

LEASE_NAME = "netplane-controller"

# Every controller of the process, each adding its informers and reconcilers to a manager.
SETUPS: tuple[Callable[[Manager], None], ...] = (projects.setup, ipam.setup, workloads.setup, scheduler.setup,
                                                 endpoints.setup, cloudlb.setup, plugins.setup, nodelifecycle.setup,
                                                 ingressnginx.setup)


@dataclass
class ControllerOptions:
    kubeconfig: Path | None = None
    leader_elect: bool = True
    lease_namespace: str = "kube-system"
    lease_name: str = LEASE_NAME
    metrics_port: int = 0
    identity: str = field(default_factory=lambda: f"{socket.gethostname()}_{uuid.uuid4()}")
    timing: LeaseTiming = field(default_factory=LeaseTiming)
    node_monitor_grace_period: float = DEFAULT_GRACE_PERIOD


def configured_setups(options: ControllerOptions) -> list[Callable[[Manager], None]]:
    """SETUPS, with this process's settings bound into those that take any."""
    settings: dict[Callable[..., None], Callable[[Manager], None]] = {
        nodelifecycle.setup: functools.partial(nodelifecycle.setup, grace_period=options.node_monitor_grace_period)}
    return [settings.get(setup, setup) for setup in SETUPS]


async def run(options: ControllerOptions) -> int:
    config = load_kubeconfig(options.kubeconfig) if options.kubeconfig else in_cluster_config()
    metrics = ControllerMetrics()
    runner: web.AppRunner | None = None
    if options.metrics_port:
        runner = await serve_metrics(metrics, options.metrics_port)
    term: Manager | None = None
    leader_gauge = metrics.leader.labels(options.lease_name)

    async def start_leading() -> None:
        nonlocal term
        leader_gauge.set(1)
        term = Manager(client, metrics)
        for setup in configured_setups(options):
            setup(term)
        term.start()

    async def stop_leading() -> None:
        nonlocal term
        leader_gauge.set(0)
        if term is not None:
            await term.stop()
            term = None

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    election = (f"leader election on lease {options.lease_namespace}/{options.lease_name}"
                if options.leader_elect else "no leader election")
    print(f"netplane controller: {config.server}, identity {options.identity}, {election}"
          + (f", metrics on :{options.metrics_port}" if options.metrics_port else ""), flush=True)
    async with Client(config) as client:
        if options.leader_elect:
            elector = LeaderElector(client, options.lease_namespace, options.lease_name, options.identity,
                                    options.timing, start_leading, stop_leading)
            main = loop.create_task(elector.run(), name="leader election")
        else:
            await start_leading()
            main = loop.create_task(_wait(stop))
        stopper = loop.create_task(_wait(stop))
        await asyncio.wait((main, stopper), return_when=asyncio.FIRST_COMPLETED)
        main.cancel()
        stopper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await main
        await stop_leading()
    if runner is not None:
        await runner.cleanup()
    return 0


async def _wait(event: asyncio.Event) -> None:
    await event.wait()
