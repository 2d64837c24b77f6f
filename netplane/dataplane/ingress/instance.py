"""One ingress-nginx instance: Ingresses of its class, translated and pushed to a gateway engine in this pod.

    informers (Ingress, IngressClass, Service, EndpointSlice, Secret, ConfigMap, its IngressNginx, its pods)
        │ any change, debounced
        ▼
    translate (netplane/routing/ingress) ─▶ render (gateway/render.py) ─▶ DocumentSync: push what changed
        │                                                                  (per-document digests; nginx reloads
        ▼                                                                   only for listener or WAF-profile changes)
    Ingress status.loadBalancer, Events (translation diagnostics, features not enforced yet, refusals)

Settings come from the IngressNginx itself (controller.config through `parse_settings`, allowSnippetAnnotations,
the IngressClass's controller value), so a settings change takes effect without a rollout.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson

from netplane.controllers.ingressnginx.manifests import INSTANCE_LABEL, controller, workload_name
from netplane.controllers.kube.client import Client
from netplane.controllers.kube.config import in_cluster_config, load_kubeconfig
from netplane.controllers.kube.errors import ApiError
from netplane.controllers.kube.resources import CONFIGMAPS, Resource
from netplane.controllers.runtime.events import EventRecorder
from netplane.controllers.runtime.informer import Informer
from netplane.dataplane.dns.metrics import serve_http
from netplane.dataplane.gateway.config import CheckError, InstanceSettings, WafProfile
from netplane.dataplane.gateway.config import Listener as EngineListener
from netplane.dataplane.gateway.engine import BACKENDS, CERTIFICATES, VHOSTS, ControlError, Engine, EngineError
from netplane.dataplane.gateway.metrics import render as render_engine_metrics
from netplane.dataplane.gateway.observability import AccessLog
from netplane.dataplane.gateway.render import EngineConfig, Source, Unenforced, render
from netplane.dataplane.gateway.upstreams import Upstreams
from netplane.dataplane.ingress.metrics import CONTENT_TYPE, InstanceMetrics
from netplane.routing import ir
from netplane.routing.ingress.secrets import CertificateMemory
from netplane.routing.ingress.settings import ControllerSettings, parse_settings
from netplane.routing.ingress.translate import (
    Diagnostic,
    IngressInputs,
    kept_certificate_diagnostics,
    translate,
)

log = logging.getLogger("netplane.ingress")

Obj = dict[str, Any]

INGRESSES = Resource("networking.k8s.io", "v1", "ingresses", kind="Ingress")
INGRESS_CLASSES = Resource("networking.k8s.io", "v1", "ingressclasses", namespaced=False, kind="IngressClass")
SERVICES = Resource("", "v1", "services", kind="Service")
ENDPOINTSLICES = Resource("discovery.k8s.io", "v1", "endpointslices", kind="EndpointSlice")
SECRETS = Resource("", "v1", "secrets", kind="Secret")
PODS = Resource("", "v1", "pods", kind="Pod")
INGRESS_NGINXES = Resource("ingress-nginx.alauda.io", "v1", "ingressnginxes", kind="IngressNginx")
COMPONENT = "ingress-nginx-controller"
ANNOTATION_PREFIX = "nginx.ingress.kubernetes.io/"

# What users wrote to ask for a feature the engine does not enforce yet, so the Event names it in their terms.
FEATURE_SOURCES = {
    "rate-limit-key": "a rate limit keyed by something other than the client address",
    "connection-limit": "annotation limit-connections",
    "response-rate-limit": "annotations limit-rate / limit-rate-after",
    "waf": "annotations enable-modsecurity / enable-owasp-core-rules / modsecurity-*",
    "waf-rules": "ModSecurity rules in modsecurity-snippet (beyond SecRuleEngine / SecRequestBodyAccess)",
    "mirror": "annotation mirror-target",
    "raw-snippet": "a raw configuration-snippet",
    "backend-protocol": "annotations backend-protocol / proxy-ssl-*",
    "external-name": "an ExternalName Service backend",
    "backend-tls": "annotations proxy-ssl-secret / proxy-ssl-* (the backend gets no traffic)",
    "grpc-plaintext": "annotation backend-protocol GRPC/GRPCS on a host without TLS",
    "l4": "TLS passthrough or a TCP/UDP listener",
    "header-template": "nginx variables in header values (configuration-snippet, proxy-set-headers)",
    "session-cookie": "annotations session-cookie-domain / -conditional-samesite-none / -change-on-failure",
    "hash-key": "annotation upstream-hash-by",
    "body-size": "annotation proxy-body-size",
    "retry": "annotations proxy-next-upstream / proxy-next-upstream-timeout",
    "forwarded-headers": "ConfigMap keys use-forwarded-headers / forwarded-for-header / proxy-real-ip-cidr",
}


def unenforced_message(item: Unenforced) -> str:
    asked = FEATURE_SOURCES.get(item.feature, item.feature)
    detail = f" ({item.detail})" if item.detail else ""
    return f"{asked}: accepted but not enforced yet by netplane's data plane{detail}"


class DocumentEngine(Protocol):
    """What DocumentSync needs of an Engine (a fake in unit tests)."""

    reloads: int
    waf: tuple[WafProfile, ...]

    def set_listeners(self, listeners: tuple[EngineListener, ...], upstreams: Upstreams | None = None) -> bool: ...
    def set_waf_profiles(self, profiles: tuple[WafProfile, ...]) -> bool: ...
    def put(self, kind: str, name: str, doc: Mapping[str, Any] | bytes) -> int: ...
    def delete(self, kind: str, name: str) -> int: ...
    def put_certificate(self, name: str, hostnames: list[str], cert_pem: str, key_pem: str) -> int: ...


@dataclass(frozen=True)
class Refusal:
    kind: str
    name: str
    message: str


@dataclass
class SyncResult:
    pushed: dict[str, int] = field(default_factory=dict)
    refusals: list[Refusal] = field(default_factory=list)
    generation: int | None = None
    reloaded: bool = False


def _digest(doc: Mapping[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()


class DocumentSync:
    """Pushes an EngineConfig to an engine, writing only documents whose digest changed and deleting those gone.

    Order keeps every intermediate state servable: virtual hosts that go away are deleted first (a hostname
    may move to another document), then backends and certificates are written before the virtual hosts that
    name them, and backends and certificates nobody needs any more are deleted last. A refused document keeps
    its previous version in service and is tried again on the next sync.
    """

    def __init__(self, engine: DocumentEngine):
        self.engine = engine
        self.digests: dict[str, dict[str, str]] = {VHOSTS: {}, BACKENDS: {}, CERTIFICATES: {}}

    def apply(self, config: EngineConfig) -> SyncResult:
        # nginx.conf first: a backend document may name a TLS profile only the new configuration has.
        result = SyncResult(reloaded=self.engine.set_listeners(config.listeners, config.upstreams))
        # A vhost naming a WAF profile nginx.conf lacks is refused: new profiles come before the routes,
        # and profiles no route needs go only once every vhost has moved off them.
        self._offer_waf(tuple(sorted(set(self.engine.waf) | set(config.waf_profiles))), result)
        wanted = {VHOSTS: config.vhosts, BACKENDS: config.backends, CERTIFICATES: config.certificates}
        self._delete(VHOSTS, wanted[VHOSTS], result)
        for kind in (BACKENDS, CERTIFICATES, VHOSTS):
            for name, doc in wanted[kind].items():
                digest = _digest(doc)
                if self.digests[kind].get(name) == digest:
                    continue
                try:
                    if kind == CERTIFICATES:
                        generation = self.engine.put_certificate(name, list(doc["hostnames"]), doc["certificate"],
                                                                 doc["key"])
                    else:
                        generation = self.engine.put(kind, name, doc)
                except ControlError as e:
                    result.refusals.append(Refusal(kind, name, e.message))
                    continue
                self.digests[kind][name] = digest
                result.generation = generation
                result.pushed[kind] = result.pushed.get(kind, 0) + 1
        self._delete(BACKENDS, wanted[BACKENDS], result)
        self._delete(CERTIFICATES, wanted[CERTIFICATES], result)
        if not any(r.kind == VHOSTS for r in result.refusals):
            self._offer_waf(config.waf_profiles, result)
        return result

    def _offer_waf(self, profiles: tuple[WafProfile, ...], result: SyncResult) -> None:
        """A WAF nginx cannot load (no ModSecurity module in the image, say) must not stop every other route:
        the previous nginx.conf stays, and the vhosts naming the missing profiles are refused, with the reason,
        on their Ingresses."""
        try:
            result.reloaded = self.engine.set_waf_profiles(profiles) or result.reloaded
        except (EngineError, CheckError) as e:
            log.warning("WAF profiles %s not offered: %s", ", ".join(p.name for p in profiles) or "none", e)

    def _delete(self, kind: str, wanted: Mapping[str, Any], result: SyncResult) -> None:
        for name in [n for n in self.digests[kind] if n not in wanted]:
            try:
                result.generation = self.engine.delete(kind, name)
            except ControlError as e:
                if e.status != 404:
                    result.refusals.append(Refusal(kind, name, e.message))
                    continue
            del self.digests[kind][name]
            result.pushed[kind] = result.pushed.get(kind, 0) + 1


def engine_settings(prefix: Path, settings: ir.Settings, default_workers: int,
                    access_log: AccessLog = AccessLog.STDOUT) -> InstanceSettings:
    """What nginx takes when it starts (a change needs a restart): workers, the forwarded-header policy and the
    access log: to `access_log` (the instance's stdout, the pod's log, as ingress-nginx's) unless the settings
    turn it off (disable-access-log)."""
    return InstanceSettings(prefix, worker_processes=settings.worker_processes or default_workers,
                            worker_connections=settings.max_worker_connections,
                            forwarded_for_append=settings.forwarded.compute_full_forwarded_for,
                            access_log=access_log if settings.access_log else AccessLog.OFF)


@dataclass(frozen=True)
class Problem:
    """One Warning Event: on the object, with its reason and message."""

    kind: str
    namespace: str
    name: str
    reason: str
    message: str


def problems(diagnostics: tuple[Diagnostic, ...], rendered: EngineConfig, refusals: list[Refusal],
             setting_problems: list[str], instance: Source) -> list[Problem]:
    """What one sync has to tell: translation diagnostics, features not enforced, documents the data plane
    refused (on the objects whose routes the document holds, else on the instance) and invalid settings."""
    out: list[Problem] = []
    for d in diagnostics:
        out.append(Problem(d.kind, d.namespace, d.name, "Invalid" if d.severity == "error" else "Warning", d.message))
    for item in rendered.unenforced:
        # Instance-wide settings are reported without a name: they are this instance's.
        namespace, name = (instance.namespace, instance.name) if item.kind == instance.kind else (item.namespace,
                                                                                                   item.name)
        out.append(Problem(item.kind, namespace, name, "NotEnforced", unenforced_message(item)))
    for r in refusals:
        sources = rendered.vhost_sources.get(r.name, ()) if r.kind == VHOSTS else ()
        for s in sources or (instance,):
            out.append(Problem(s.kind, s.namespace, s.name, "ConfigurationRefused",
                               f"the data plane refused {r.kind[:-1]} {r.name!r}: {r.message}"))
    for problem in setting_problems:
        out.append(Problem(instance.kind, instance.namespace, instance.name, "InvalidSetting",
                           f"spec.controller.config {problem}"))
    return out


@dataclass
class InstanceOptions:
    class_name: str
    namespace: str
    name: str
    kubeconfig: Path | None = None
    prefix: Path | None = None
    metrics: tuple[str, int] = ("0.0.0.0", 10254)
    debounce: float = 0.05
    nginx: str = "nginx"
    luajit: str = "luajit"


def _key(obj: Obj) -> tuple[str, str]:
    m = obj.get("metadata") or {}
    return str(m.get("namespace") or ""), str(m.get("name") or "")


class IngressInstance:
    def __init__(self, options: InstanceOptions, client: Client):
        self.options = options
        self.client = client
        self.pod = os.environ.get("HOSTNAME", "") or "ingress-nginx"
        self.metrics = InstanceMetrics(options.class_name, options.namespace, self.pod)
        self.recorder = EventRecorder(client, COMPONENT)
        selector = f"{INSTANCE_LABEL}={options.name},app.kubernetes.io/component=controller"
        self.ingresses = Informer(client, INGRESSES)
        self.classes = Informer(client, INGRESS_CLASSES)
        self.services = Informer(client, SERVICES)
        self.slices = Informer(client, ENDPOINTSLICES)
        self.secrets = Informer(client, SECRETS)
        self.config_maps = Informer(client, CONFIGMAPS)
        self.instances = Informer(client, INGRESS_NGINXES, options.namespace,
                                  field_selector=f"metadata.name={options.name}")
        self.pods = Informer(client, PODS, options.namespace, label_selector=selector)
        self.informers = (self.ingresses, self.classes, self.services, self.slices, self.secrets, self.config_maps,
                          self.instances, self.pods)
        self.changed = asyncio.Event()
        self.engine: Engine | None = None
        self.sync: DocumentSync | None = None
        self.ready = False
        self.certificates = CertificateMemory()
        # Diagnostics already told as Events: each is told once while it lasts.
        self.told: set[tuple[str, str, str, str]] = set()

    def _mark(self, *_: Obj) -> None:
        self.changed.set()

    # -- settings -----------------------------------------------------------------------------------------------

    def instance(self) -> Obj | None:
        return self.instances.cache.get_by_name(self.options.name, self.options.namespace)

    def settings(self) -> tuple[ControllerSettings, list[str]]:
        values = controller(self.instance() or {})
        resource = values.get("ingressClassResource") or {}
        base = ControllerSettings(class_name=self.options.class_name,
                                  controller=str(resource.get("controllerValue") or "k8s.io/ingress-nginx"),
                                  allow_snippet_annotations=bool(values.get("allowSnippetAnnotations")))
        config = values.get("config")
        parsed = parse_settings(config if isinstance(config, dict) else None, base)
        problems = [f"{e.field}: {e.message}" for e in parsed.errors] + list(parsed.warnings)
        return parsed.settings, problems

    # -- the engine ---------------------------------------------------------------------------------------------

    def _apply(self, rendered: EngineConfig, settings: ir.Settings) -> SyncResult:
        """Runs in a worker thread: the engine's calls block. Worker settings are taken when nginx starts."""
        if self.engine is None:
            prefix = self.options.prefix or Path(f"/tmp/netplane-ingress-{self.pod}")
            engine = Engine(engine_settings(prefix, settings, os.cpu_count() or 1), rendered.listeners,
                            nginx=self.options.nginx, luajit=self.options.luajit, upstreams=rendered.upstreams)
            engine.start()
            self.engine, self.sync = engine, DocumentSync(engine)
            log.info("nginx started (prefix %s, listeners %s)", prefix,
                     ", ".join(lst.listen_target() + (" tls" if lst.tls else "") for lst in rendered.listeners))
        assert self.sync is not None
        return self.sync.apply(rendered)

    def stop_engine(self) -> None:
        if self.engine is not None:
            self.engine.stop()

    # -- one sync -----------------------------------------------------------------------------------------------

    async def sync_once(self) -> None:
        settings, setting_problems = self.settings()
        ingresses = list(self.ingresses.cache)
        secrets, kept = self.certificates.apply(list(self.secrets.cache))
        inputs = IngressInputs(
            ingresses=ingresses, ingress_classes=list(self.classes.cache),
            services=list(self.services.cache), endpoint_slices=list(self.slices.cache),
            secrets=secrets, config_maps=list(self.config_maps.cache))
        translation = translate(inputs, settings)
        rendered = render(translation.config)
        try:
            result = await asyncio.to_thread(self._apply, rendered, translation.config.settings)
        except (EngineError, CheckError) as e:
            self.metrics.last_reload_successful = False
            self.metrics.reload_errors += 1
            raise RuntimeError(f"nginx refused the listener change: {e}") from e
        m = self.metrics
        if result.reloaded:
            m.reloads += 1
        if result.reloaded or not self.ready:
            m.last_reload_successful, m.last_reload_timestamp = True, time.time()
        m.syncs += 1
        m.config_hash = int(translation.config.digest()[:12], 16)
        if result.generation is not None:
            m.generation = result.generation
        for kind, n in result.pushed.items():
            m.pushed[kind] = m.pushed.get(kind, 0) + n
        m.refused += len(result.refusals)
        if result.pushed or result.refusals:
            log.info("sync %d: pushed %s%s", m.syncs, result.pushed or "nothing",
                     f"; refused {[(r.kind, r.name, r.message) for r in result.refusals]}" if result.refusals else "")
        self.ready = True
        await self.write_status(translation.ingresses)
        await self.tell(translation.diagnostics + kept_certificate_diagnostics(kept, ingresses), rendered,
                        result.refusals, setting_problems)

    # -- status -------------------------------------------------------------------------------------------------

    def addresses(self) -> list[Obj]:
        """What ingress-nginx publishes: the Service's load-balancer addresses when it has any, else the
        addresses of the instance's running pods (their nodes' with hostNetwork)."""
        values = controller(self.instance() or {})
        host_network = bool(values.get("hostNetwork"))
        instance = self.instance()
        if instance is not None and not host_network:
            service = self.services.cache.get_by_name(workload_name(instance), self.options.namespace)
            lb = (((service or {}).get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
            found = [{k: v for k, v in entry.items() if k in ("ip", "hostname")} for entry in lb
                     if isinstance(entry, dict)]
            if any(found):
                return sorted((e for e in found if e), key=lambda e: (e.get("ip", ""), e.get("hostname", "")))
        ips = set()
        for pod in self.pods.cache:
            status = pod.get("status") or {}
            if status.get("phase") != "Running" or (pod.get("metadata") or {}).get("deletionTimestamp"):
                continue
            ip = status.get("hostIP") if host_network else status.get("podIP")
            if ip:
                ips.add(str(ip))
        return [{"ip": ip} for ip in sorted(ips)]

    async def write_status(self, keys: tuple[str, ...]) -> None:
        wanted = self.addresses()
        if not wanted:
            return
        for key in keys:
            namespace, name = key.split("/", 1)
            obj = self.ingresses.cache.get_by_name(name, namespace)
            if obj is None:
                continue
            current = ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
            if current == wanted:
                continue
            try:
                await self.client.patch(INGRESSES, name, {"status": {"loadBalancer": {"ingress": wanted}}},
                                        namespace, subresource="status")
            except ApiError as e:
                log.warning("status of Ingress %s: %s", key, e)

    # -- events -------------------------------------------------------------------------------------------------

    async def tell(self, diagnostics: tuple[Diagnostic, ...], rendered: EngineConfig, refusals: list[Refusal],
                   setting_problems: list[str]) -> None:
        instance = Source("IngressNginx", self.options.namespace, self.options.name)
        current = set()
        for p in problems(diagnostics, rendered, refusals, setting_problems, instance):
            key = (p.kind, p.namespace, p.name, p.message)
            current.add(key)
            if key in self.told:
                continue
            obj = self._object(p.kind, p.namespace, p.name)
            if obj is None:
                continue
            log.warning("%s %s/%s: %s", p.kind, p.namespace, p.name, p.message)
            await self.recorder.warning(obj, p.reason, p.message)
        self.told = current

    def _object(self, kind: str, namespace: str, name: str) -> Obj | None:
        if kind == "IngressNginx":
            obj = self.instance()
            return {"apiVersion": "ingress-nginx.alauda.io/v1", "kind": "IngressNginx", **obj} if obj else None
        # Diagnostics also name the Secrets, ConfigMaps, Services and IngressClasses at fault.
        found = {"Ingress": (self.ingresses, "networking.k8s.io/v1"), "IngressClass": (self.classes,
                                                                                      "networking.k8s.io/v1"),
                 "Secret": (self.secrets, "v1"), "ConfigMap": (self.config_maps, "v1"),
                 "Service": (self.services, "v1")}.get(kind)
        if found is None:
            return None
        informer, api_version = found
        obj = informer.cache.get_by_name(name, namespace or None)
        return {"apiVersion": api_version, "kind": kind, **obj} if obj is not None else None

    # -- running ------------------------------------------------------------------------------------------------

    def healthz(self) -> tuple[int, bytes, str]:
        if self.ready and self.engine is not None and self.engine.master_pid is not None:
            return 200, b"ok", "text/plain"
        return 503, b"not ready", "text/plain"

    async def scrape(self) -> tuple[int, bytes, str]:
        # The engine answers over its control socket: not on the event loop.
        return 200, await asyncio.to_thread(engine_metrics_text, self.metrics, self.engine), CONTENT_TYPE

    async def run(self, stop: asyncio.Event) -> None:
        for informer in self.informers:
            informer.add_handler(self._mark, lambda _, __: self.changed.set(), self._mark)
        runner = await serve_http(*self.options.metrics, {
            "/healthz": self.healthz, "/metrics": self.scrape})
        loop = asyncio.ensure_future(self._loop())
        try:
            for informer in self.informers:
                informer.start()
            print(f"netplane ingress-nginx: class {self.options.class_name}, instance {self.options.namespace}/"
                  f"{self.options.name}, API {self.client.config.server}, metrics "
                  f"{self.options.metrics[0]}:{self.options.metrics[1]}", flush=True)
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait((loop, stopping), return_when=asyncio.FIRST_COMPLETED)
            if loop.done():
                loop.result()
        finally:
            loop.cancel()
            await asyncio.gather(loop, return_exceptions=True)
            for informer in self.informers:
                await informer.stop()
            await runner.cleanup()
            await asyncio.to_thread(self.stop_engine)

    async def _loop(self) -> None:
        await asyncio.gather(*(i.wait_synced() for i in self.informers))
        log.info("informers synced")
        self.changed.set()
        while True:
            await self.changed.wait()
            # Changes arrive in bursts (a Deployment scaled, an Ingress applied with its Service): one sync each.
            await asyncio.sleep(self.options.debounce)
            self.changed.clear()
            try:
                await self.sync_once()
            except (RuntimeError, OSError, ApiError) as e:
                log.error("sync failed: %s; retrying", e)
                await asyncio.sleep(1.0)
                self.changed.set()


def engine_metrics_text(metrics: InstanceMetrics, engine: Engine | None) -> bytes:
    """The instance's /metrics: its own series, then the engine's request, process and configuration series
    under the same controller labels (left out while nginx is not running)."""
    text = metrics.render()
    if engine is None or engine.master_pid is None:
        return text
    try:
        found = engine.metrics()
    except (ControlError, OSError, http.client.HTTPException) as e:
        log.warning("engine metrics: %s", e)
        return text
    return text + render_engine_metrics(found, metrics.const_labels()).encode()


async def run_instance(options: InstanceOptions, stop: asyncio.Event) -> int:
    config = load_kubeconfig(options.kubeconfig) if options.kubeconfig else in_cluster_config()
    async with Client(config) as client:
        await IngressInstance(options, client).run(stop)
    return 0
