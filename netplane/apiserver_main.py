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
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from netplane import certs, datadir
from netplane.api.auth.bootstrap import ensure_builtin_roles
from netplane.api.auth.gate import AuthGate
from netplane.api.core import ApiCore, WriteOptions
from netplane.api.objects import Attrs, attrs_of, decode
from netplane.api.registry import Registry, storage_type
from netplane.api.server import ApiServer
from netplane.api.storage import ObjectStore
from netplane.api.system import SystemControllers
from netplane.controllers.supervisor import ControllerProcess
from netplane.dataplane.streams import LocalStreamBackend
from netplane.model import ALL_KINDS, crd_manifest
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
    system = SystemControllers(core, port_for_kubernetes_service)
    system.bootstrap()
    register_own_kinds(core)
    ensure_builtin_roles(core)
    return core, system


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


async def serve(options: UpOptions) -> int:
    try:
        lock = datadir.hold_lock(options.data_dir)
        core, system = build(options, options.api_port or 6443)
    except datadir.DataDirError as e:
        print(f"netplane: {e}", file=sys.stderr)
        return 2
    pki = options.data_dir / "pki"
    hosts = sorted({options.bind, "127.0.0.1", "localhost", core.admission.ips.kubernetes_ip} - {"0.0.0.0"})
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
    system.start()
    compactor = asyncio.get_running_loop().create_task(_compact_forever(core))

    kubeconfig = options.data_dir / "kubeconfig"
    certs.write_kubeconfig(kubeconfig, f"https://{host}:{port}", (pki / "ca.crt").read_bytes(), token)
    print(f"netplane ready: API https://{host}:{port}, kubeconfig {kubeconfig}", flush=True)
    controllers = ControllerProcess(kubeconfig)
    controllers.start()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    print("netplane: shutting down", flush=True)
    # Before the API goes away, so that the controller can release its lease.
    await controllers.stop()
    compactor.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await compactor
    await system.stop()
    await runner.cleanup()
    core.store.raw.close()
    os.close(lock)
    return 0
