"""Kubernetes objects → the real Ingress front door → a real gateway engine (nginx on loopback), for black-box tests.

    objects (dicts or YAML) ─▶ translate(IngressInputs, ControllerSettings) ─▶ render ─▶ DocumentSync ─▶ Engine
                                                   └──────────── problems(...) = the Warning Events an instance tells

The same functions the IngressNginx instance program runs (netplane/dataplane/ingress/instance.py: its
CertificateMemory, translate, render, DocumentSync and problems), minus the informers and the API calls: the
harness holds the objects itself and syncs after every change. Backends are the in-process echo servers of
gateway_harness.py, published through Services and EndpointSlices (one slice per endpoint, since every echo
server has its own port). Requests go to the engine with http.client, over TLS with a chosen SNI name.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import http.client
import shutil
import socket
import ssl
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID

from netplane.dataplane.gateway import Engine
from netplane.dataplane.gateway.observability import AccessLog
from netplane.dataplane.gateway.render import EngineConfig, Source, render
from netplane.dataplane.ingress.instance import DocumentSync, Problem, SyncResult, engine_settings, problems
from netplane.routing.ingress.secrets import CertificateMemory
from netplane.routing.ingress.settings import ControllerSettings, parse_settings
from netplane.routing.ingress.translate import (
    IngressInputs,
    IngressTranslation,
    kept_certificate_diagnostics,
    translate,
)
from tests.certificates import self_signed
from tests.e2e.gateway_harness import ADDR, Answer, EchoServer, free_port, unverified_context

Obj = dict[str, Any]
NS = "default"
PREFIX = "nginx.ingress.kubernetes.io/"
INSTANCE = Source("IngressNginx", "ingress-nginx", "harness")
# Where each kind goes in IngressInputs.
_INPUTS = {"Ingress": "ingresses", "IngressClass": "ingress_classes", "Service": "services",
           "EndpointSlice": "endpoint_slices", "Secret": "secrets", "ConfigMap": "config_maps"}


# -- backends -------------------------------------------------------------------------------------------------------


class Backend(EchoServer):
    """An echo server, running, that can be stopped like a terminated pod: its open connections are closed too."""

    def __init__(self, name: str, extra_headers: Iterable[tuple[str, str]] = ()):
        super().__init__(name, extra_headers)
        self.connections: set[socket.socket] = set()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self.lock:
            self.connections.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.lock:
                self.connections.discard(request)

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        with self.lock:
            for conn in self.connections:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)


# -- object builders ------------------------------------------------------------------------------------------------


def service(name: str, port: int = 80, port_name: str = "http", namespace: str = NS, **spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
            "spec": {"ports": [{"name": port_name, "port": port, "protocol": "TCP"}], **spec}}


class Peer(Protocol):
    """Anything serving on ADDR at a port of its own, with a name: echo servers, gRPC servers."""

    @property
    def name(self) -> str: ...

    @property
    def port(self) -> int: ...


def endpoint_slice(service_name: str, backend: Peer, port_name: str = "http", ready: bool = True,
                   namespace: str = NS, address: str = ADDR) -> Obj:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"{service_name}-{backend.name}", "namespace": namespace,
                         "labels": {"kubernetes.io/service-name": service_name}},
            "addressType": "IPv4", "ports": [{"name": port_name, "port": backend.port, "protocol": "TCP"}],
            "endpoints": [{"addresses": [address], "conditions": {"ready": ready}}]}


def app(name: str, *backends: Peer, port: int = 80, port_name: str = "http") -> list[Obj]:
    """A Service and one EndpointSlice per echo server behind it."""
    return [service(name, port, port_name), *(endpoint_slice(name, b, port_name) for b in backends)]


def ingress_path(path: str, svc: str, port: int | str = 80, path_type: str = "Prefix") -> Obj:
    number = {"name": port} if isinstance(port, str) else {"number": port}
    return {"path": path, "pathType": path_type, "backend": {"service": {"name": svc, "port": number}}}


def ingress(name: str, host: str | None, paths: Iterable[Obj] = (), annotations: Mapping[str, str] | None = None,
            tls: Iterable[Obj] = (), default_backend: str | None = None, class_name: str | None = "nginx",
            created: str = "2026-01-01T00:00:00Z", namespace: str = NS, **extra_spec: Any) -> Obj:
    """An Ingress with one rule (none when ``host`` is None and there are no paths); annotation keys without a
    prefix get ingress-nginx's."""
    spec: Obj = dict(extra_spec)
    paths = list(paths)
    if paths or host is not None:
        rule: Obj = {"http": {"paths": paths}}
        if host:
            rule["host"] = host
        spec["rules"] = [rule]
    if class_name:
        spec["ingressClassName"] = class_name
    if tls:
        spec["tls"] = list(tls)
    if default_backend:
        spec["defaultBackend"] = {"service": {"name": default_backend, "port": {"number": 80}}}
    full = {k if "/" in k else PREFIX + k: v for k, v in (annotations or {}).items()}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, "namespace": namespace, "annotations": full, "creationTimestamp": created},
            "spec": spec}


def simple(name: str, host: str | None, svc: str, path: str = "/", path_type: str = "Prefix",
           **kwargs: Any) -> Obj:
    return ingress(name, host, [ingress_path(path, svc, path_type=path_type)], **kwargs)


def secret(name: str, data: Mapping[str, str], namespace: str = NS, type_: str = "Opaque") -> Obj:
    return {"apiVersion": "v1", "kind": "Secret", "type": type_, "metadata": {"name": name, "namespace": namespace},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


def tls_secret(name: str, cert_pem: str, key_pem: str, namespace: str = NS) -> Obj:
    return secret(name, {"tls.crt": cert_pem, "tls.key": key_pem}, namespace, "kubernetes.io/tls")


def certificate_secret(name: str, *hosts: str, namespace: str = NS) -> Obj:
    """A TLS Secret with a self-signed certificate for ``hosts`` (the first is its CN); one certificate per list
    of hosts, so another list gives another certificate."""
    return tls_secret(name, *self_signed(*hosts), namespace=namespace)


def config_map(name: str, data: Mapping[str, str], namespace: str = NS) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace},
            "data": dict(data)}


# -- results --------------------------------------------------------------------------------------------------------


@dataclass
class Synced:
    translation: IngressTranslation
    rendered: EngineConfig
    result: SyncResult
    events: list[Problem]

    def events_of(self, name: str, kind: str = "Ingress") -> list[str]:
        """``reason: message`` of every Event the instance would record on that object."""
        return [f"{e.reason}: {e.message}" for e in self.events if (e.kind, e.name) == (kind, name)]

    def complaints_of(self, name: str, kind: str = "Ingress") -> list[str]:
        """The Events about something wrong with that object (not the features the data plane lacks yet)."""
        return [e for e in self.events_of(name, kind) if not e.startswith("NotEnforced:")]


class Reply(Answer):
    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes, certificate: bytes | None = None):
        super().__init__(status, headers, body)
        self.certificate = certificate  # the server's certificate (DER), on HTTPS

    @property
    def certificate_cn(self) -> str | None:
        if self.certificate is None:
            return None
        names = x509.load_der_x509_certificate(self.certificate).subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(names[0].value) if names else None

    @property
    def backend(self) -> str | None:
        """The echo server that answered (None when nginx answered itself)."""
        return self.name if self.status == 200 else None

    @property
    def seen(self) -> Obj:
        """What the backend saw: path (with query), method, headers (lower-case names)."""
        return self.json

    @property
    def location(self) -> str | None:
        return self.headers.get("Location")

    def cookies(self) -> list[str]:
        return self.headers.get_all("Set-Cookie") or []


class _SNIConnection(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1 with a chosen SNI name (http.client would send none for an IP address)."""

    def __init__(self, port: int, sni: str | None, context: ssl.SSLContext, timeout: float):
        super().__init__(ADDR, port, timeout=timeout, context=context)
        self.sni = sni

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.sni)  # type: ignore[attr-defined]


# -- the harness ----------------------------------------------------------------------------------------------------


class IngressHarness:
    """One engine with the instance's two listeners (HTTP and HTTPS on free loopback ports) and the objects of
    the test running now."""

    def __init__(self, engine: Engine, base: ControllerSettings):
        self.engine = engine
        self.base = base
        self.settings = base
        self.sync_state = DocumentSync(engine)
        self.certificates = CertificateMemory()
        self.objects: dict[tuple[str, str, str], Obj] = {}
        self.last: Synced = self.sync()

    @property
    def http_port(self) -> int:
        return self.base.http_port

    @property
    def https_port(self) -> int:
        return self.base.https_port

    # -- objects

    def apply(self, *objects: Obj | str | Iterable[Obj]) -> Synced:
        """Creates or replaces objects (dicts, lists of dicts, or YAML text with one or more documents), then
        syncs once, as the instance does after a burst of changes."""
        for obj in _flatten(objects):
            m = obj["metadata"]
            self.objects[(obj["kind"], m.get("namespace", ""), m["name"])] = obj
        return self.sync()

    def delete(self, kind: str, name: str, namespace: str = NS) -> Synced:
        del self.objects[(kind, namespace if kind != "IngressClass" else "", name)]
        return self.sync()

    def configure(self, config: Mapping[str, str] | None = None, **flags: Any) -> Synced:
        """Instance settings: controller ConfigMap keys (``config``) over the harness's base, plus what
        ingress-nginx takes as flags (ControllerSettings fields, e.g. ``default_ssl_certificate``)."""
        parsed = parse_settings(dict(config) if config else None, dataclasses.replace(self.base, **flags))
        assert not parsed.errors, parsed.errors
        self.settings = parsed.settings
        return self.sync()

    def reset(self) -> None:
        self.objects.clear()
        self.settings = self.base
        self.sync()

    def sync(self) -> Synced:
        inputs: dict[str, list[Mapping[str, Any]]] = {field: [] for field in _INPUTS.values()}
        for (kind, _, _), obj in self.objects.items():
            inputs[_INPUTS[kind]].append(obj)
        inputs["secrets"], kept = self.certificates.apply(inputs["secrets"])
        translation = translate(IngressInputs(**inputs), self.settings)
        rendered = render(translation.config)
        result = self.sync_state.apply(rendered)
        diagnostics = translation.diagnostics + kept_certificate_diagnostics(kept, inputs["ingresses"])
        events = problems(diagnostics, rendered, result.refusals, [], INSTANCE)
        self.last = Synced(translation, rendered, result, events)
        return self.last

    # -- requests

    def get(self, host: str, path: str = "/", *, method: str = "GET", headers: Mapping[str, str] | None = None,
            body: bytes | None = None, https: bool = False, sni: str | None = None, timeout: float = 10) -> Reply:
        """One request on a fresh connection; over HTTPS the SNI name is ``sni`` (default: the host)."""
        der = None
        if https:
            conn: http.client.HTTPConnection = _SNIConnection(self.https_port, sni or host.split(":")[0],
                                                              unverified_context(), timeout)
        else:
            conn = http.client.HTTPConnection(ADDR, self.http_port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers={"Host": host, **(headers or {})})
            if https:
                assert isinstance(conn.sock, ssl.SSLSocket)
                der = conn.sock.getpeercert(binary_form=True)
            resp = conn.getresponse()
            return Reply(resp.status, resp.headers, resp.read(), der)
        finally:
            conn.close()

    def backends_of(self, host: str, path: str = "/", n: int = 6, **kwargs: Any) -> set[str | None]:
        return {self.get(host, path, **kwargs).backend for _ in range(n)}


def _flatten(items: Iterable[Any]) -> Iterator[Obj]:
    for item in items:
        if isinstance(item, str):
            yield from (d for d in yaml.safe_load_all(item) if d)
        elif isinstance(item, Mapping):
            yield dict(item)
        else:
            yield from _flatten(item)


@contextlib.contextmanager
def running_harness(workers: int = 2, config: Mapping[str, str] | None = None) -> Iterator[IngressHarness]:
    """An engine started as the instance starts its nginx: with the listeners the translator asks for and what
    nginx takes at start from the controller ConfigMap keys in ``config`` (worker-processes,
    max-worker-connections, compute-full-forwarded-for, disable-access-log). The access log, when on, goes to
    the file under the prefix (the instance's goes to its stdout), so tests can read it."""
    parsed = parse_settings(dict(config) if config else None, ControllerSettings(
        http_port=free_port(), https_port=free_port(), bind_address=ADDR, worker_processes=workers))
    assert not parsed.errors, parsed.errors
    base = parsed.settings
    empty = translate(IngressInputs(), base).config
    prefix = Path(tempfile.mkdtemp(prefix="np-ing-test-", dir="/tmp"))
    rendered = render(empty)
    engine = Engine(engine_settings(prefix, empty.settings, workers, AccessLog.FILE), rendered.listeners,
                    upstreams=rendered.upstreams)
    engine.start()
    try:
        yield IngressHarness(engine, base)
    finally:
        engine.stop()
        shutil.rmtree(prefix, ignore_errors=True)
