"""The `netplane controller` process: every controller, under leader election, with metrics.

Only the leader runs controllers; the others wait as candidates. On losing the lease the
controllers (informers included) are stopped at once and the process campaigns again, so a
partitioned leader never keeps writing beside its successor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from netplane.controllers import cloudlb, endpoints, ipam, plugins, projects, scheduler, workloads
from netplane.controllers.kube.client import Client
from netplane.controllers.kube.config import in_cluster_config, load_kubeconfig
from netplane.controllers.runtime.leader import LeaderElector, LeaseTiming
from netplane.controllers.runtime.manager import Manager
from netplane.controllers.runtime.metrics import ControllerMetrics, serve_metrics

log = logging.getLogger("netplane.controller")

LEASE_NAME = "netplane-controller"

# Every controller of the process, each adding its informers and reconcilers to a manager.
SETUPS: tuple[Callable[[Manager], None], ...] = (projects.setup, ipam.setup, workloads.setup, scheduler.setup,
                                                 endpoints.setup, cloudlb.setup, plugins.setup)


@dataclass
class ControllerOptions:
    kubeconfig: Path | None = None
    leader_elect: bool = True
    lease_namespace: str = "kube-system"
    lease_name: str = LEASE_NAME
    metrics_port: int = 0
    identity: str = field(default_factory=lambda: f"{socket.gethostname()}_{uuid.uuid4()}")
    timing: LeaseTiming = field(default_factory=LeaseTiming)


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
        for setup in SETUPS:
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
