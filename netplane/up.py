"""`netplane up`: a supervisor. It holds the data directory, builds the dataplane, binds the API's
listening sockets and runs the API server (`netplane apiserver`), the controllers and the node agents
as child processes it restarts, so that none of them is needed for traffic to keep flowing.

Kept light on purpose (no API server code is imported here): this process lives as long as the cluster.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import signal
import socket
import sys
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netplane import certs, datadir
from netplane.api.allocators import ClusterIPAllocator
from netplane.controllers.supervisor import ControllerProcess
from netplane.scheduling.lifecycle import DEFAULT_GRACE_PERIOD


@dataclass
class UpOptions:
    data_dir: Path
    api_port: int = 6443
    bind: str = "127.0.0.1"
    dataplane: bool = True
    service_cidr: str = "10.96.0.0/12"
    node_port_range: tuple[int, int] = (30000, 32767)
    node_names: list[str] = field(default_factory=lambda: ["node1", "node2"])
    node_cidr: str = "172.31.250.0/24"
    host_access: bool = False
    node_monitor_grace_period: float = DEFAULT_GRACE_PERIOD


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _unless(stop: asyncio.Event, waiting: Coroutine[Any, Any, bool]) -> bool:
    """What ``waiting`` answers, or False as soon as ``stop`` is set."""
    answer, stopped = asyncio.ensure_future(waiting), asyncio.ensure_future(stop.wait())
    await asyncio.wait((answer, stopped), return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if not answer.done():
        answer.cancel()
        return False
    return answer.result()


def _listen(bind: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    return socket.create_server((bind, port), family=family, backlog=1024)


def _apiserver_argv(options: UpOptions, listeners: list[socket.socket], server_address: str,
                    fabric_endpoint: str | None) -> tuple[str, ...]:
    low, high = options.node_port_range
    return ("-m", "netplane.cli", "apiserver", "--data-dir", str(options.data_dir.resolve()),
            "--server-address", server_address, "--kubernetes-port", str(options.api_port or 6443),
            "--service-cidr", options.service_cidr, "--service-node-port-range", f"{low}-{high}",
            *(a for sock in listeners for a in ("--listen-fd", str(sock.fileno()))),
            *(("--fabric-endpoint", fabric_endpoint) if fabric_endpoint else ()))


async def serve(options: UpOptions) -> int:
    if options.dataplane and os.geteuid() != 0:
        print("netplane: the dataplane (network namespaces, pods) needs root; run as root or pass --no-dataplane",
              file=sys.stderr)
        return 2
    try:
        kubernetes_ip = ClusterIPAllocator(ipaddress.ip_network(options.service_cidr)).kubernetes_ip
    except ValueError as e:
        print(f"netplane: --service-cidr: {e}", file=sys.stderr)
        return 2
    stop = stop_on_signals()  # from here on: Ctrl-C while starting still removes what was built
    try:
        lock = datadir.hold_lock(options.data_dir)
        datadir.prepare(options.data_dir)
    except datadir.DataDirError as e:
        print(f"netplane: {e}", file=sys.stderr)
        return 2
    try:
        # Bound here, not by the API server: its restarts keep the port, and clients wait in the backlog.
        listeners = [_listen(options.bind, options.api_port)]
    except OSError as e:
        print(f"netplane: cannot listen on {options.bind}:{options.api_port}: {e}", file=sys.stderr)
        os.close(lock)
        return 2
    dataplane = None
    if options.dataplane:
        from netplane.dataplane.agent.launcher import ClusterOptions, Dataplane
        from netplane.dataplane.dns import cluster_dns_ip
        from netplane.dataplane.fabric_plan import FabricPlanError

        try:
            dataplane = Dataplane(options.data_dir, ClusterOptions(
                options.node_names, options.node_cidr, options.host_access,
                cluster_dns_ip(options.service_cidr), options.service_cidr))
            await asyncio.to_thread(dataplane.build)
        except (FabricPlanError, OSError) as e:
            print(f"netplane: cannot build the cluster's network: {e}", file=sys.stderr)
            if dataplane is not None:
                await dataplane.stop()
            listeners[0].close()
            os.close(lock)
            return 2
    pki = options.data_dir / "pki"
    hosts = sorted({options.bind, "127.0.0.1", "localhost", kubernetes_ip,
                    *([dataplane.control_plane_ip] if dataplane else [])} - {"0.0.0.0"})
    certs.ensure_serving_cert(pki, hosts)
    token = certs.ensure_admin_token(pki)

    port = int(listeners[0].getsockname()[1])
    host = "127.0.0.1" if options.bind in ("0.0.0.0", "::") else options.bind
    fabric_endpoint = None
    if dataplane is not None:
        from netplane.dataplane.agent.launcher import listen_in_netns

        # Agents and pods reach the API on the fabric, never through the root namespace.
        listeners.append(listen_in_netns(dataplane.plan.netns, dataplane.control_plane_ip, port))
        fabric_endpoint = f"{dataplane.control_plane_ip}:{port}"
    kubeconfig = options.data_dir / "kubeconfig"
    apiserver = ControllerProcess(
        kubeconfig, prefix="[apiserver] ", name="API server", wait_ready=True,
        pass_fds=tuple(sock.fileno() for sock in listeners),
        argv=_apiserver_argv(options, listeners, f"{host}:{port}", fabric_endpoint))
    apiserver.start()
    controllers = ControllerProcess(kubeconfig, extra_args=(
        "--node-monitor-grace-period", f"{options.node_monitor_grace_period}s"))
    if await _unless(stop, apiserver.wait_ready()):
        certs.write_kubeconfig(kubeconfig, f"https://{host}:{port}", (pki / "ca.crt").read_bytes(), token)
        print(f"netplane ready: API https://{host}:{port}, kubeconfig {kubeconfig}", flush=True)
        controllers.start()
        if dataplane is not None:
            dataplane.write_agent_configs(port, pki)
            dataplane.start_agents()
            print(f"netplane cluster: nodes {', '.join(n.name for n in dataplane.plan.nodes)} "
                  f"(fabric {dataplane.plan.subnet}, API on {fabric_endpoint})", flush=True)
        await stop.wait()
    elif not stop.is_set():
        print("netplane: the API server could not start (see its output above)", file=sys.stderr)
    code = 0 if stop.is_set() else 1
    print("netplane: shutting down", flush=True)
    # The controllers first, while the API still answers, so that they can release their lease.
    await controllers.stop()
    if dataplane is not None:
        await dataplane.stop()
    await apiserver.stop()
    for sock in listeners:
        sock.close()
    os.close(lock)
    return code
