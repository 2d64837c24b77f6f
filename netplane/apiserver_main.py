"""Assembling and running the API server process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import ssl
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from cryptography.hazmat.primitives import serialization

from netplane import certs, datadir
from netplane.api.auth.bootstrap import ensure_builtin_roles
from netplane.api.auth.gate import AuthGate
from netplane.api.core import ApiCore, WriteOptions
from netplane.api.objects import Attrs, Obj, attrs_of, decode
from netplane.api.registry import Registry, storage_type
from netplane.api.server import ApiServer
from netplane.api.storage import ObjectStore
from netplane.api.system import SystemControllers
from netplane.controllers.supervisor import ControllerProcess
from netplane.dataplane.streams import LocalStreamBackend
from netplane.model import ALL_KINDS, crd_manifest
from netplane.model.plugins import CLUSTER_PLUGIN
from netplane.scheduling.lifecycle import DEFAULT_GRACE_PERIOD
from netplane.store import SqliteStore

log = logging.getLogger("netplane")

COMPACT_INTERVAL = 300.0
COMPACT_RETAIN = 10_000


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


def _indexer(registry: Registry) -> Callable[[str, bytes], Attrs]:
    def index(key: str, value: bytes) -> Attrs:
        _, group, plural, _ = key.split("/", 3)
        rt = storage_type(registry, "" if group == "core" else group, plural)
        obj = decode(value)
        if rt is None:
            m = obj.get("metadata") or {}
            return Attrs(dict(m.get("labels") or {}),
                         {"metadata.name": m.get("name", ""), "metadata.namespace": m.get("namespace", "")},
                         tuple(r.get("uid", "") for r in m.get("ownerReferences") or []))
        return attrs_of(rt, obj)

    return index


def build(options: UpOptions, port_for_kubernetes_service: int) -> tuple[ApiCore, SystemControllers]:
    datadir.prepare(options.data_dir)
    registry = Registry()
    store = ObjectStore(SqliteStore(options.data_dir / "state.db", _indexer(registry)), registry)
    core = ApiCore(store, registry, options.service_cidr, options.node_port_range)
    core.admission.rebuild()
    ca_cert, _ = certs.ensure_ca(options.data_dir / "pki")
    system = SystemControllers(core, port_for_kubernetes_service,
                               ca_cert.public_bytes(serialization.Encoding.PEM).decode())
    fresh = system.fresh()
    system.bootstrap()
    register_own_kinds(core)
    ensure_builtin_roles(core)
    if fresh:
        install_default_plugins(core)
    return core, system


def install_default_plugins(core: ApiCore) -> None:
    """A new cluster comes with its DNS, as kubeadm installs CoreDNS. Only once: a plugin the
    administrator uninstalled stays uninstalled across restarts."""
    plugin_type = core.registry.lookup(CLUSTER_PLUGIN.group, CLUSTER_PLUGIN.version, CLUSTER_PLUGIN.plural)
    assert plugin_type is not None
    core.create(plugin_type, "", {"apiVersion": f"{CLUSTER_PLUGIN.group}/{CLUSTER_PLUGIN.version}",
                                  "kind": CLUSTER_PLUGIN.kind, "metadata": {"name": "coredns"},
                                  "spec": {"config": {}}}, WriteOptions())


def register_own_kinds(core: ApiCore) -> None:
    """Serve netplane's kinds through CRDs generated from their models, updating them when a
    newer netplane changed a model."""
    crd_type = core.registry.lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    assert crd_type is not None
    for kind in ALL_KINDS:
        manifest = crd_manifest(kind)
        existing = core.store.get_obj(crd_type, "", kind.crd_name)
        if existing is None:
            core.create(crd_type, "", manifest, WriteOptions())
        else:
            existing["spec"] = manifest["spec"]
            core.update(crd_type, "", kind.crd_name, existing, WriteOptions())


async def _compact_forever(core: ApiCore) -> None:
    while True:
        await asyncio.sleep(COMPACT_INTERVAL)
        raw = core.store.raw
        if raw.revision - COMPACT_RETAIN > raw.compact_revision:
            raw.compact(raw.revision - COMPACT_RETAIN)


def _bound_port(runner: web.AppRunner) -> int:
    """The port the OS picked for ``--api-port 0``."""
    for address in runner.addresses:
        return int(address[1])
    raise RuntimeError("the API server is not listening")


def publish_kubernetes_endpoints(core: ApiCore, ip: str, port: int) -> None:
    """Point the `kubernetes` Service at the API's address on the fabric, as kube-apiserver's
    endpoint reconciler does (the Service has no selector, so no controller writes these)."""
    ports = [{"name": "https", "port": port, "protocol": "TCP"}]
    wanted: dict[tuple[str, str], Obj] = {
        ("", "endpoints"): {"metadata": {"name": "kubernetes", "labels": {
            "endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": [{"addresses": [{"ip": ip}], "ports": ports}]},
        ("discovery.k8s.io", "endpointslices"): {"metadata": {"name": "kubernetes", "labels": {
            "kubernetes.io/service-name": "kubernetes"}}, "addressType": "IPv4",
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True}}], "ports": ports},
    }
    for (group, plural), obj in wanted.items():
        rt = storage_type(core.registry, group, plural)
        if rt is None:
            continue
        existing = core.store.get_obj(rt, "default", "kubernetes")
        if existing is None:
            core.create(rt, "default", obj, WriteOptions())
        else:
            core.update(rt, "default", "kubernetes", {**existing, **{k: v for k, v in obj.items() if k != "metadata"},
                                                       "metadata": {**existing["metadata"], **obj["metadata"]}},
                        WriteOptions())
    svc = storage_type(core.registry, "", "services")
    assert svc is not None
    service = core.store.get_obj(svc, "default", "kubernetes")
    if service is not None and service["spec"]["ports"][0].get("targetPort") != port:
        service["spec"]["ports"][0]["targetPort"] = port
        core.update(svc, "default", "kubernetes", service, WriteOptions())


async def serve(options: UpOptions) -> int:
    if options.dataplane and os.geteuid() != 0:
        print("netplane: the dataplane (network namespaces, pods) needs root; run as root or pass --no-dataplane",
              file=sys.stderr)
        return 2
    try:
        lock = datadir.hold_lock(options.data_dir)
        core, system = build(options, options.api_port or 6443)
    except datadir.DataDirError as e:
        print(f"netplane: {e}", file=sys.stderr)
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
            core.store.raw.close()
            os.close(lock)
            return 2
        core.graceful_pod_deletion = True
    pki = options.data_dir / "pki"
    hosts = sorted({options.bind, "127.0.0.1", "localhost", core.admission.ips.kubernetes_ip,
                    *([dataplane.control_plane_ip] if dataplane else [])} - {"0.0.0.0"})
    cert_path, key_path = certs.ensure_serving_cert(pki, hosts)
    token = certs.ensure_admin_token(pki)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert_path, key_path)
    # Ask for a client certificate but accept connections without one (token users); one that is
    # sent must chain to the cluster CA.
    tls.verify_mode = ssl.CERT_OPTIONAL
    tls.load_verify_locations(pki / "ca.crt")

    server = ApiServer(core, token, auth=AuthGate(core, token, options.data_dir),
                       streams=LocalStreamBackend(options.data_dir / "pods"))
    runner = web.AppRunner(server.app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, options.bind, options.api_port, ssl_context=tls, backlog=1024)
    await site.start()
    port = options.api_port or _bound_port(runner)
    host = "127.0.0.1" if options.bind in ("0.0.0.0", "::") else options.bind
    server.server_address = f"{host}:{port}"
    if dataplane is not None:
        from netplane.dataplane.agent.launcher import listen_in_netns

        # Agents and pods reach the API on the fabric, never through the root namespace.
        sock = listen_in_netns(dataplane.plan.netns, dataplane.control_plane_ip, port)
        await web.SockSite(runner, sock, ssl_context=tls).start()
        publish_kubernetes_endpoints(core, dataplane.control_plane_ip, port)
    system.start()
    compactor = asyncio.get_running_loop().create_task(_compact_forever(core))

    kubeconfig = options.data_dir / "kubeconfig"
    certs.write_kubeconfig(kubeconfig, f"https://{host}:{port}", (pki / "ca.crt").read_bytes(), token)
    print(f"netplane ready: API https://{host}:{port}, kubeconfig {kubeconfig}", flush=True)
    controllers = ControllerProcess(kubeconfig, extra_args=(
        "--node-monitor-grace-period", f"{options.node_monitor_grace_period}s"))
    controllers.start()
    if dataplane is not None:
        dataplane.write_agent_configs(port, pki)
        dataplane.start_agents()
        print(f"netplane cluster: nodes {', '.join(n.name for n in dataplane.plan.nodes)} "
              f"(fabric {dataplane.plan.subnet}, API on {dataplane.control_plane_ip}:{port})", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    print("netplane: shutting down", flush=True)
    # Before the API goes away, so that the controller can release its lease.
    await controllers.stop()
    if dataplane is not None:
        await dataplane.stop()
    compactor.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await compactor
    await system.stop()
    await runner.cleanup()
    core.store.raw.close()
    os.close(lock)
    return 0
