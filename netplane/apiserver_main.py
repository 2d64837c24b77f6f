"""Assembling and running the API server process (`netplane apiserver`, a child of `netplane up`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
import sys
from collections.abc import Callable
from dataclasses import dataclass
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
from netplane.controllers.supervisor import READY_LINE
from netplane.dataplane.streams import LocalStreamBackend
from netplane.model import ALL_KINDS, crd_manifest
from netplane.model.plugins import CLUSTER_PLUGIN
from netplane.store import SqliteStore
from netplane.up import UpOptions, stop_on_signals

log = logging.getLogger("netplane")

COMPACT_INTERVAL = 300.0
COMPACT_RETAIN = 10_000


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


@dataclass
class ApiServerOptions:
    """What `netplane up` tells the API server process it starts (`netplane apiserver`)."""
    data_dir: Path
    listen_fds: list[int]
    server_address: str  # host:port, as kubeconfigs and discovery name it
    kubernetes_port: int  # the `kubernetes` Service's port
    service_cidr: str = "10.96.0.0/12"
    node_port_range: tuple[int, int] = (30000, 32767)
    fabric_endpoint: str | None = None  # ip:port on the fabric, when a dataplane runs


STORE_WAIT = 30.0  # a previous API server process that `up` just lost may still be closing the store


def _tls(pki: Path) -> ssl.SSLContext:
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(*certs.serving_cert_paths(pki))
    # Ask for a client certificate but accept connections without one (token users); one that is
    # sent must chain to the cluster CA.
    tls.verify_mode = ssl.CERT_OPTIONAL
    tls.load_verify_locations(pki / "ca.crt")
    return tls


async def run_apiserver(options: ApiServerOptions) -> int:
    """The API server process: the only one that opens the store, serving on sockets `up` bound."""
    try:
        lock = datadir.hold_lock(options.data_dir, datadir.STORE_LOCK, wait=STORE_WAIT)
        core, system = build(UpOptions(options.data_dir, service_cidr=options.service_cidr,
                                       node_port_range=options.node_port_range), options.kubernetes_port)
    except datadir.DataDirError as e:
        print(f"netplane apiserver: {e}", file=sys.stderr)
        return 2
    pki = options.data_dir / "pki"
    token = certs.ensure_admin_token(pki)
    server = ApiServer(core, token, server_address=options.server_address,
                       auth=AuthGate(core, token, options.data_dir),
                       streams=LocalStreamBackend(options.data_dir / "pods"))
    runner = web.AppRunner(server.app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    tls = _tls(pki)
    for fd in options.listen_fds:
        sock = socket.socket(fileno=fd)
        sock.setblocking(False)
        await web.SockSite(runner, sock, ssl_context=tls, backlog=1024).start()
    if options.fabric_endpoint is not None:
        ip, port = options.fabric_endpoint.rsplit(":", 1)
        core.graceful_pod_deletion = True
        publish_kubernetes_endpoints(core, ip, int(port))
    system.start()
    compactor = asyncio.get_running_loop().create_task(_compact_forever(core))
    print(READY_LINE, flush=True)  # `up` waits for it before it names the API ready
    await stop_on_signals().wait()
    compactor.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await compactor
    await system.stop()
    await runner.cleanup()
    core.store.raw.close()
    os.close(lock)
    return 0
