"""Ingress (class ``nginx``) → routing IR, with ingress-nginx's semantics.

Inputs are plain dicts as the API server stores them: Ingresses, IngressClasses, Services, EndpointSlices, Secrets
and ConfigMaps. The result is one ``RoutingConfig`` (listeners ``http`` on 80 and ``https`` on 443, ING-4) plus
diagnostics for status and events. Translation never raises on what users stored; what it cannot honour it
reports, and an Ingress whose annotations are invalid answers 503 on its paths rather than run without them.

How Ingress maps onto the IR (see docs/design/routing.md):

- each rule host is a virtual host on both listeners (``*`` for rules without a host), with one-label wildcards;
- each path is a route: Exact → ``exact``, Prefix → element-wise ``prefix``, ImplementationSpecific → ``starts-with``,
  or a case-insensitive ``^``-anchored ``regex`` when ``use-regex``/``rewrite-target`` is on for the host;
  routes are ordered by ``precedence.ingress_key``; the oldest Ingress keeps a host + path + type;
- the host's fallback (``default-backend`` route, Prefix ``/``, after every other route) goes to the
  ``defaultBackend`` of the Ingress that first used the host, else the instance's default backend;
- ``spec.tls`` picks the host's certificate on ``https`` (the oldest Ingress's wins); hosts without one use the
  default certificate; on ``http``, hosts with TLS redirect to HTTPS (``ssl-redirect``, 308);
- canary Ingresses add a ``Canary`` to the route of the same host + path + type.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

import orjson

from netplane.routing.ingress.annotations import AnnotationPolicy, IngressAnnotations, parse_annotations
from netplane.routing.ingress.model import (
    DEFAULT_CLASS_ANNOTATION,
    IngressPath,
    Meta,
    age_order,
    as_dict,
    as_list,
    as_str,
    belongs_to,
    is_canary,
    meta,
    normalize_host,
    paths,
    rule_hosts,
    service_backend,
    spec,
    tls_secret,
)
from netplane.routing.ingress.nginx_syntax import SyntaxProblem, parse_template
from netplane.routing.ingress.secrets import certificate_from_secret, certificate_problem, secret_users
from netplane.routing.ingress.settings import ControllerSettings
from netplane.routing.ir import (
    MATCH_ALL,
    Action,
    Backend,
    BackendGroup,
    Balancing,
    Canary,
    Certificate,
    ConsistentHash,
    CookieAffinity,
    DirectResponse,
    Endpoint,
    Filter,
    Forward,
    ForwardedHeaders,
    HeaderOp,
    Hsts,
    Keepalive,
    L4Route,
    Listener,
    ListenerTLS,
    PathKind,
    PathMatch,
    Protocol,
    Provenance,
    RateLimit,
    RateUnit,
    RawSnippet,
    Redirect,
    RegexRewrite,
    ReplaceFullPath,
    RequestHeaders,
    RequestMirror,
    RequestRate,
    ResponseHeaders,
    ResponseRateLimit,
    RetryPolicy,
    RoundRobin,
    Route,
    RoutingConfig,
    ServiceRef,
    Settings,
    SourceIPAccess,
    Template,
    Timeouts,
    UpstreamProtocol,
    UpstreamTLS,
    URLRewrite,
    VirtualHost,
    Waf,
    WafMode,
    WildcardMode,
    export,
)
from netplane.routing.precedence import CATCH_ALL, OrderingModel, order_routes
from netplane.routing.regex import capture_references, group_count, pcre_problems
from netplane.routing.validate import is_hostname, is_token

HTTP_LISTENER = "http"
# What ingress-nginx takes from a canary Ingress; its other annotations are the main Ingress's business.
CANARY_HONOURED = ("canary", "load-balance", "upstream-hash-by", "affinity", "session-cookie-")
HTTPS_LISTENER = "https"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


@dataclass(frozen=True)
class Diagnostic:
    """Something translation could not honour, for the object's events and status."""

    severity: str  # "error" | "warning"
    kind: str
    namespace: str
    name: str
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.kind} {self.namespace}/{self.name}: {self.message}"


@dataclass(frozen=True)
class IngressInputs:
    ingresses: Sequence[Mapping[str, Any]] = ()
    ingress_classes: Sequence[Mapping[str, Any]] = ()
    services: Sequence[Mapping[str, Any]] = ()
    endpoint_slices: Sequence[Mapping[str, Any]] = ()
    secrets: Sequence[Mapping[str, Any]] = ()
    config_maps: Sequence[Mapping[str, Any]] = ()


@dataclass(frozen=True)
class IngressTranslation:
    config: RoutingConfig
    diagnostics: tuple[Diagnostic, ...]
    ingresses: tuple[str, ...]
    """``namespace/name`` of every Ingress of the class (whose status gets this instance's address)."""


@dataclass(frozen=True)
class _Ingress:
    obj: Mapping[str, Any]
    meta: Meta
    ann: IngressAnnotations
    valid: bool
    present: frozenset[str]


@dataclass(frozen=True)
class _Access:
    """Where a host + path + type lives, so canaries can find it."""

    host: str
    path: str
    path_type: str


def _digest(data: Any) -> str:
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()[:10]


def _is_port(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535


def _by_name(objects: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], Mapping[str, Any]]:
    return {(meta(o).namespace, meta(o).name): o for o in objects if isinstance(o, Mapping)}


def service_of_dns_name(host: str, namespace: str) -> tuple[str, str] | None:
    """(namespace, name) of the Service a cluster DNS name stands for: ``name`` (in ``namespace``),
    ``name.ns``, ``name.ns.svc`` or ``name.ns.svc.cluster.local``."""
    labels = host.split(".")
    if len(labels) == 1:
        return namespace, labels[0]
    if len(labels) == 2 or labels[2:] in (["svc"], ["svc", "cluster", "local"]):
        return labels[1], labels[0]
    return None


def _ms(seconds: int | None) -> int | None:
    return None if seconds is None else seconds * 1000


class _Translator:
    def __init__(self, inputs: IngressInputs, settings: ControllerSettings) -> None:
        self.inputs = inputs
        self.settings = settings
        self.policy = AnnotationPolicy(allow_raw_snippets=settings.allow_snippet_annotations,
                                       enable_ssl_passthrough=settings.enable_ssl_passthrough)
        self.diagnostics: list[Diagnostic] = []
        self.services = _by_name(inputs.services)
        self.secrets = _by_name(inputs.secrets)
        self.config_maps = _by_name(inputs.config_maps)
        self.slices: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
        for eps in inputs.endpoint_slices:
            if not isinstance(eps, Mapping):
                continue
            labels = as_dict(as_dict(eps.get("metadata")).get("labels"))
            self.slices[(meta(eps).namespace, as_str(labels.get(SERVICE_NAME_LABEL)))].append(eps)
        self.groups: dict[str, BackendGroup] = {}
        self.certificates: dict[str, Certificate] = {}
        self.routes: dict[tuple[str, str], list[Route]] = defaultdict(list)
        self.access: dict[_Access, tuple[_Ingress, list[tuple[str, str, int]]]] = {}
        self.host_owner: dict[str, _Ingress] = {}
        self.host_certificate: dict[str, str | None] = {}
        self.host_tls: dict[tuple[str, str], bool] = {}
        # Hosts listed in a TLS entry without a secretName: the default certificate is meant for them.
        self.default_certificate_hosts: set[str] = set()
        self.regex_hosts: set[str] = set()
        self.passthrough: dict[str, L4Route] = {}
        self.global_request_headers: tuple[Filter, ...] = ()
        self.global_response_headers: tuple[Filter, ...] = ()

    # -- diagnostics --------------------------------------------------------------------------------------------

    def report(self, severity: str, kind: str, m: Meta | tuple[str, str], message: str) -> None:
        namespace, name = (m.namespace, m.name) if isinstance(m, Meta) else m
        diagnostic = Diagnostic(severity, kind, namespace, name, message)
        if diagnostic not in self.diagnostics:
            self.diagnostics.append(diagnostic)

    def warn(self, ing: _Ingress, message: str) -> None:
        self.report("warning", "Ingress", ing.meta, message)

    def fail(self, ing: _Ingress, message: str) -> None:
        self.report("error", "Ingress", ing.meta, message)

    # -- class selection and annotations ------------------------------------------------------------------------

    def select(self) -> list[_Ingress]:
        class_obj = next((c for c in self.inputs.ingress_classes if meta(c).name == self.settings.class_name), None)
        is_default = False
        if class_obj is not None:
            controller = as_str(spec(class_obj).get("controller"))
            if controller and controller != self.settings.controller:
                self.report("error", "IngressClass", ("", self.settings.class_name),
                            f"controller {controller!r} is not {self.settings.controller!r}; no Ingress is served")
                return []
            is_default = as_str(meta(class_obj).annotations.get(DEFAULT_CLASS_ANNOTATION)) == "true"
        chosen = []
        for obj in sorted((i for i in self.inputs.ingresses if isinstance(i, Mapping)), key=age_order):
            if not belongs_to(obj, self.settings.class_name, is_default):
                continue
            m = meta(obj)
            parsed = parse_annotations(m.annotations, self.policy)
            ing = _Ingress(obj, m, parsed.values, not parsed.errors, parsed.present)
            for error in parsed.errors:
                self.fail(ing, f"{error}; its paths answer 503 until this is fixed")
            for warning in parsed.warnings:
                self.warn(ing, warning)
            chosen.append(ing)
        return chosen

    # -- instance-wide headers ----------------------------------------------------------------------------------

    def header_config_map(self, ref: tuple[str, str] | None, request: bool) -> tuple[Filter, ...]:
        if ref is None:
            return ()
        cm = self.config_maps.get(ref)
        if cm is None:
            self.report("warning", "ConfigMap", ref, "referenced by "
                        f"{'proxy-set-headers' if request else 'add-headers'} but not found")
            return ()
        sets: list[HeaderOp] = []
        removes: list[str] = []
        for name, value in sorted(as_dict(cm.get("data")).items()):
            if not is_token(str(name)) or not isinstance(value, str):
                self.report("error", "ConfigMap", ref, f"data[{name}]: is not a header name with a string value; "
                                                       "the header is not set")
                continue
            try:
                template = parse_template(value.strip())
            except SyntaxProblem as problem:
                self.report("error", "ConfigMap", ref, f"data[{name}]: {problem}; the header is not set")
                continue
            if template.parts:
                sets.append(HeaderOp(name, template))
            elif request:
                # The guide removes a request header by setting it to nothing, as nginx's proxy_set_header does.
                removes.append(name)
        if request:
            return (RequestHeaders(set=tuple(sets), remove=tuple(removes)),) if sets or removes else ()
        return (ResponseHeaders(set=tuple(sets)),) if sets else ()

    # -- backends -----------------------------------------------------------------------------------------------

    def endpoints(self, namespace: str, service_name: str, port_name: str) -> tuple[Endpoint, ...]:
        found: list[Endpoint] = []
        for eps in self.slices.get((namespace, service_name), []):
            if as_str(eps.get("addressType")) not in ("IPv4", "IPv6"):
                continue
            port = next((as_dict(p).get("port") for p in as_list(eps.get("ports"))
                         if as_str(as_dict(p).get("name")) == port_name
                         and as_str(as_dict(p).get("protocol") or "TCP") == "TCP"), None)
            if not _is_port(port):
                continue
            for endpoint in as_list(eps.get("endpoints")):
                endpoint = as_dict(endpoint)
                addresses = [as_str(a) for a in as_list(endpoint.get("addresses"))]
                if not addresses or as_dict(endpoint.get("conditions")).get("ready") is False:
                    continue
                try:
                    ipaddress.ip_address(addresses[0])
                except ValueError:
                    continue
                found.append(Endpoint(addresses[0], port, as_str(endpoint.get("nodeName")),
                                      as_str(endpoint.get("zone"))))
        return tuple(found)

    def backend(self, owner: _Ingress, namespace: str, name: str, port: int | str,
                protocol: UpstreamProtocol) -> Backend:
        display = f"{namespace}/{name}:{port}"
        service = self.services.get((namespace, name))
        if service is None:
            self.warn(owner, f"service {namespace}/{name} not found; requests for it get 503")
            return Backend(display, protocol=protocol)
        sspec = spec(service)
        service_port = next((as_dict(p) for p in as_list(sspec.get("ports"))
                             if (as_dict(p).get("port") == port if isinstance(port, int)
                                 else as_str(as_dict(p).get("name")) == port)), None)
        if as_str(sspec.get("type")) == "ExternalName":
            external = as_str(sspec.get("externalName")).lower().rstrip(".")
            number = service_port.get("port") if service_port else port
            if not is_hostname(external, wildcard=False) or not _is_port(number):
                self.warn(owner, f"service {namespace}/{name}: ExternalName {external!r} with port {port} cannot be "
                                 "used; requests for it get 503")
                return Backend(display, protocol=protocol)
            return Backend(display, external_name=external, external_port=number, protocol=protocol,
                           service=ServiceRef(namespace, name, number))
        if service_port is None or not _is_port(service_port.get("port")):
            self.warn(owner, f"service {namespace}/{name} has no port {port}; requests for it get 503")
            return Backend(display, protocol=protocol)
        number, port_name = service_port["port"], as_str(service_port.get("name"))
        ref = ServiceRef(namespace, name, number, port_name)
        if owner.ann.service_upstream:
            cluster_ip = as_str(sspec.get("clusterIP"))
            try:
                ipaddress.ip_address(cluster_ip)
            except ValueError:
                self.warn(owner, f"service-upstream: service {namespace}/{name} has no cluster IP")
                return Backend(display, service=ref, protocol=protocol)
            return Backend(display, endpoints=(Endpoint(cluster_ip, number),), service=ref, protocol=protocol)
        return Backend(display, endpoints=self.endpoints(namespace, name, port_name), service=ref, protocol=protocol)

    def balancing(self, ann: IngressAnnotations, cookie_path: str) -> Balancing:
        if ann.affinity is not None:
            cookie = ann.affinity.cookie
            if cookie.path is None:
                cookie = dataclasses.replace(cookie, path=cookie_path)
            return CookieAffinity(cookie, ann.affinity.mode, ann.affinity.change_on_failure)
        if ann.upstream_hash_by is not None:
            return ConsistentHash(ann.upstream_hash_by)
        return RoundRobin()

    def upstream_tls(self, ing: _Ingress) -> tuple[UpstreamTLS | None, str | None]:
        """TLS towards HTTPS/GRPCS backends, or the reason the route must fail closed."""
        ssl = ing.ann.proxy_ssl
        if ing.ann.backend_protocol not in (UpstreamProtocol.HTTPS, UpstreamProtocol.GRPCS) or ssl is None:
            return None, None
        secret_id = None
        if ssl.secret is not None:
            secret = self.secrets.get(ssl.secret)
            cert = certificate_from_secret(*ssl.secret, secret) if secret is not None else None
            if cert is None or not (cert.ca_pem or (cert.certificate_pem and cert.private_key_pem)):
                if ssl.verify:
                    return None, f"proxy-ssl-secret {ssl.secret[0]}/{ssl.secret[1]} is missing or has no ca.crt"
                self.warn(ing, f"proxy-ssl-secret {ssl.secret[0]}/{ssl.secret[1]} is missing or empty")
            else:
                if ssl.verify and not cert.ca_pem:
                    return None, f"proxy-ssl-secret {cert.id} has no ca.crt to verify the backend with"
                self.certificates[cert.id] = cert
                secret_id = cert.id
        return UpstreamTLS(secret=secret_id, verify=ssl.verify, verify_depth=ssl.verify_depth, server_name=ssl.name,
                           sni=ssl.server_name, protocols=ssl.protocols, ciphers=ssl.ciphers), None

    def group(self, ing: _Ingress, namespace: str, backend_spec: Mapping[str, Any], cookie_path: str,
              protocol: UpstreamProtocol, tls: UpstreamTLS | None, balancing: Balancing | None = None) -> str | None:
        """The name of the backend group for an Ingress backend (None for a resource backend); ``balancing``
        replaces what the Ingress's own annotations ask for."""
        ref = service_backend(backend_spec)
        if ref is None:
            return None
        name, port = ref
        backend = dataclasses.replace(self.backend(ing, namespace, name, port, protocol), tls=tls)
        balancing = balancing or self.balancing(ing.ann, cookie_path)
        group_name = f"{namespace}/{name}:{port}"
        options = {"balancing": balancing, "protocol": protocol, "tls": tls}
        if options != {"balancing": RoundRobin(), "protocol": UpstreamProtocol.HTTP, "tls": None}:
            # Same service, different handling: a group of its own, named stably after what differs.
            group_name += "~" + _digest({key: export(value) for key, value in options.items()})
        self.groups[group_name] = BackendGroup(group_name, (backend,), balancing)
        return group_name

    # -- TLS ----------------------------------------------------------------------------------------------------

    def default_certificate(self) -> str | None:
        ref = self.settings.default_ssl_certificate
        if ref is None:
            return None
        secret = self.secrets.get(ref)
        cert = certificate_from_secret(*ref, secret) if secret is not None else None
        problem = "not found" if cert is None else certificate_problem(cert, CATCH_ALL)
        if cert is None or problem:
            self.report("warning", "Secret", ref, f"default certificate: {problem}; a self-signed one is used")
            return None
        self.certificates[cert.id] = cert
        return cert.id

    def certificates_for_hosts(self, ingresses: list[_Ingress]) -> None:
        for ing in ingresses:
            for host in rule_hosts(ing.obj):
                covered, secret_name = tls_secret(ing.obj, host)
                self.host_tls[(ing.meta.key, host)] = covered
                if not covered or host == CATCH_ALL:
                    continue
                if secret_name is None:
                    self.default_certificate_hosts.add(host)
                    continue
                ref = (ing.meta.namespace, secret_name)
                taken = self.host_certificate.get(host)
                if taken is not None:
                    if taken != f"{ref[0]}/{ref[1]}":
                        self.warn(ing, f"TLS for {host}: the certificate of secret {taken} (an older Ingress) is used")
                    continue
                secret = self.secrets.get(ref)
                cert = certificate_from_secret(*ref, secret) if secret is not None else None
                problem = f"secret {ref[0]}/{ref[1]} not found" if cert is None else certificate_problem(cert, host)
                if cert is None or problem:
                    self.warn(ing, f"TLS for {host}: {problem}; the default certificate is used")
                    continue
                self.certificates[cert.id] = cert
                self.host_certificate[host] = cert.id

    # -- routes -------------------------------------------------------------------------------------------------

    def path_match(self, ing: _Ingress, p: IngressPath) -> PathMatch:
        if p.path_type == "Exact":
            return PathMatch(PathKind.EXACT, p.path)
        if p.path_type == "Prefix":
            return PathMatch(PathKind.PREFIX, p.path)
        if p.host in self.regex_hosts:
            pattern = "^" + p.path
            problems = pcre_problems(pattern)
            if not problems:
                return PathMatch(PathKind.REGEX, pattern, ignore_case=True)
            self.warn(ing, f"{p.field}.path: {problems[0]}; matched as a plain prefix")
        return PathMatch(PathKind.STARTS_WITH, p.path)

    def rewrite(self, ing: _Ingress, match: PathMatch) -> tuple[URLRewrite | None, str | None]:
        ann = ing.ann
        path_rewrite = None
        if ann.rewrite_target is not None:
            pattern = match.value if match.kind is PathKind.REGEX else "^" + re.escape(match.value)
            groups = group_count(pattern)
            too_far = [r for r in capture_references(ann.rewrite_target) if r > groups]
            if too_far:
                return None, (f"rewrite-target refers to ${too_far[0]} but path {match.value!r} has {groups} capture "
                              "groups")
            path_rewrite = RegexRewrite(pattern, ann.rewrite_target, ignore_case=True, whole_path=True)
        if path_rewrite is None and ann.upstream_vhost is None:
            return None, None
        return URLRewrite(hostname=ann.upstream_vhost, path=path_rewrite), None

    def filters(self, ing: _Ingress, listener: str, host: str, rewrite: URLRewrite | None) -> tuple[Filter, ...]:
        ann, s = ing.ann, self.settings
        out: list[Filter] = []
        if ann.allow_source_range or ann.deny_source_range:
            out.append(SourceIPAccess(allow=ann.allow_source_range, deny=ann.deny_source_range))
        if ann.rate_limit is not None:
            rl = ann.rate_limit
            rates = [RequestRate(limit, unit, limit * rl.burst_multiplier)
                     for limit, unit in ((rl.rps, RateUnit.SECOND), (rl.rpm, RateUnit.MINUTE)) if limit]
            if rates or rl.connections:
                out.append(RateLimit(rates=tuple(rates), connections=rl.connections, allowlist=rl.allowlist,
                                     status_code=s.limit_req_status_code,
                                     connection_status_code=s.limit_conn_status_code))
        waf = self.waf(ann)
        if waf is not None:
            out.append(waf)
        if ann.cors is not None:
            out.append(ann.cors)
        mirror = self.mirror(ing)
        if mirror is not None:
            # After the filters that may refuse or answer the request (refused requests are not copied), before
            # those that change it: the copy is the request as the client sent it.
            out.append(mirror)
        if rewrite is not None:
            out.append(rewrite)
        out.extend(self.global_request_headers)
        if ann.x_forwarded_prefix is not None and ann.rewrite_target is not None:
            out.append(RequestHeaders(set=(HeaderOp("X-Forwarded-Prefix", Template.literal(ann.x_forwarded_prefix)),)))
        if s.hide_headers:
            out.append(ResponseHeaders(remove=s.hide_headers))
        out.extend(self.global_response_headers)
        if ann.response_headers is not None:
            out.append(ann.response_headers)
        # HSTS where TLS is configured on purpose: a certificate of the host's own, or the default one by a TLS
        # entry without a secret (ingress-nginx sends it then too); not for a broken secret's fallback.
        if listener == HTTPS_LISTENER and s.hsts and (self.host_certificate.get(host)
                                                      or host in self.default_certificate_hosts):
            out.append(Hsts(s.hsts_max_age, s.hsts_include_subdomains, s.hsts_preload))
        if ann.rate_limit is not None and ann.rate_limit.response_rate_kib:
            out.append(ResponseRateLimit(ann.rate_limit.response_rate_kib * 1024,
                                         ann.rate_limit.response_rate_after_kib * 1024))
        if ann.raw_snippet is not None:
            out.append(RawSnippet(ann.raw_snippet))
        return tuple(out)

    def mirror(self, ing: _Ingress) -> RequestMirror | None:
        """ingress-nginx's mirror-target, when its host is an IP address or a Service of this cluster: the
        translator has no DNS, and a Service's endpoints are known here anyway."""
        spec_ = ing.ann.mirror
        if spec_ is None:
            return None
        backend = self.mirror_backend(ing, spec_.host, spec_.port)
        if backend is None:
            return None
        name = f"mirror:{backend.name}"
        self.groups[name] = BackendGroup(name, (backend,))
        return RequestMirror(name, hostname=spec_.hostname, body=spec_.body)

    def mirror_backend(self, ing: _Ingress, host: str, port: int) -> Backend | None:
        try:
            return Backend(f"{host}:{port}", endpoints=(Endpoint(str(ipaddress.ip_address(host)), port),))
        except ValueError:
            pass
        ref = service_of_dns_name(host, ing.meta.namespace)
        service = self.services.get(ref) if ref else None
        if ref is None or service is None:
            self.warn(ing, f"mirror-target: {host!r} is neither an IP address nor a Service "
                           "(<name>[.<namespace>[.svc[.cluster.local]]]); no copies are sent")
            return None
        if as_str(spec(service).get("type")) != "ExternalName" and not any(
                as_dict(p).get("port") == port for p in as_list(spec(service).get("ports"))):
            self.warn(ing, f"mirror-target: service {ref[0]}/{ref[1]} has no port {port}; no copies are sent")
            return None
        return self.backend(ing, ref[0], ref[1], port, UpstreamProtocol.HTTP)

    def waf(self, ann: IngressAnnotations) -> Waf | None:
        spec_ = ann.modsecurity
        enabled = spec_.enabled if spec_ is not None and spec_.enabled is not None else self.settings.enable_modsecurity
        if not enabled or (spec_ is not None and spec_.mode is WafMode.OFF):
            return None
        owasp = (spec_.owasp_crs if spec_ is not None and spec_.owasp_crs is not None
                 else self.settings.enable_owasp_modsecurity_crs)
        if spec_ is None:
            return Waf(owasp_crs=owasp)
        return Waf(mode=spec_.mode or WafMode.DETECTION_ONLY, owasp_crs=owasp,
                   request_body_access=True if spec_.request_body_access is None else spec_.request_body_access,
                   transaction_id=spec_.transaction_id, raw_rules=spec_.raw_rules)

    def route_options(self, ing: _Ingress) -> dict[str, Any]:
        ann, s = ing.ann, self.settings
        retry = s.retry_policy()
        if ann.next_upstream is not None:
            on, statuses = ann.next_upstream
            retry = dataclasses.replace(retry, on=on, status_codes=statuses,
                                        attempts=retry.attempts if on or statuses else 1)
        if ann.next_upstream_tries is not None and (retry.on or retry.status_codes):
            retry = dataclasses.replace(retry, attempts=ann.next_upstream_tries)
        if ann.next_upstream_timeout_s is not None:
            retry = dataclasses.replace(retry, timeout_ms=_ms(ann.next_upstream_timeout_s) or None)
        return {
            "timeouts": Timeouts(connect_ms=_ms(ann.connect_timeout_s or s.proxy_connect_timeout),
                                 send_ms=_ms(ann.send_timeout_s or s.proxy_send_timeout),
                                 read_ms=_ms(ann.read_timeout_s or s.proxy_read_timeout)),
            "retry": retry if retry != RetryPolicy() else None,
            "max_body_bytes": ann.body_size if ann.body_size is not None else s.proxy_body_size,
        }

    def https_redirect(self, ing: _Ingress, host: str) -> Redirect | None:
        ann, s = ing.ann, self.settings
        ssl_redirect = s.ssl_redirect if ann.ssl_redirect is None else ann.ssl_redirect
        has_tls = self.host_tls.get((ing.meta.key, host), False)
        if not (ann.force_ssl_redirect or s.force_ssl_redirect or (ssl_redirect and has_tls)):
            return None
        return Redirect(status_code=s.http_redirect_code, scheme="https",
                        port=None if s.https_port == 443 else s.https_port,
                        strip_trailing_slash=not ann.preserve_trailing_slash)

    def add_route(self, listener: str, host: str, route: Route) -> int:
        self.routes[(listener, host)].append(route)
        return len(self.routes[(listener, host)]) - 1

    def listeners_for(self, host: str) -> tuple[str, ...]:
        return (HTTP_LISTENER,) if host in self.passthrough else (HTTP_LISTENER, HTTPS_LISTENER)

    def path_routes(self, ing: _Ingress) -> None:
        for p in paths(ing.obj):
            key = _Access(p.host, p.path, p.path_type)
            holder = self.access.get(key)
            if holder is not None:
                self.warn(ing, f"{p.field}: host {p.host!r} path {p.path!r} ({p.path_type}) is already served by "
                               f"ingress {holder[0].meta.key}; this path is ignored")
                continue
            positions: list[tuple[str, str, int]] = []
            self.access[key] = (ing, positions)
            passthrough = self.passthrough.get(p.host)
            if passthrough is not None and (passthrough.provenance.namespace, passthrough.provenance.name) != (
                    ing.meta.namespace, ing.meta.name):
                self.warn(ing, f"{p.field}: {p.host!r} is passed through on HTTPS by ingress "
                               f"{passthrough.provenance.namespace}/{passthrough.provenance.name}; this path is served "
                               "on HTTP only")
            self.host_owner.setdefault(p.host, ing)
            match = self.path_match(ing, p)
            provenance = Provenance("Ingress", ing.meta.namespace, ing.meta.name, p.rule, p.index,
                                    created=ing.meta.created)
            hostname = "" if p.host == CATCH_ALL else p.host
            action, filters_by_listener, options = self.path_action(ing, p, match)
            for listener in self.listeners_for(p.host):
                listener_action: Action = action
                filters: tuple[Filter, ...] = filters_by_listener.get(listener, ())
                if listener == HTTP_LISTENER and isinstance(action, Forward):
                    redirect = self.https_redirect(ing, p.host)
                    if redirect is not None:
                        listener_action, filters = redirect, ()
                route = Route(provenance, match, listener_action, filters, hostname=hostname, **options)
                positions.append((listener, p.host, self.add_route(listener, p.host, route)))

    def path_action(self, ing: _Ingress, p: IngressPath, match: PathMatch
                    ) -> tuple[Action, dict[str, tuple[Filter, ...]], dict[str, Any]]:
        unavailable = DirectResponse(503)
        if not ing.valid:
            return unavailable, {}, {}
        if ing.ann.redirect is not None:
            return ing.ann.redirect, {}, {}
        rewrite, problem = self.rewrite(ing, match)
        tls, tls_problem = self.upstream_tls(ing)
        problem = problem or tls_problem
        if problem:
            self.fail(ing, f"{p.field}: {problem}; the path answers 503")
            return unavailable, {}, {}
        cookie_path = "/" if match.kind is PathKind.REGEX else p.path
        group = self.group(ing, ing.meta.namespace, p.backend, cookie_path, ing.ann.backend_protocol, tls)
        if group is None:
            self.warn(ing, f"{p.field}.backend: only service backends are supported; the path answers 503")
            return unavailable, {}, {}
        filters = {listener: self.filters(ing, listener, p.host, rewrite)
                   for listener in (HTTP_LISTENER, HTTPS_LISTENER)}
        return Forward(group), filters, self.route_options(ing)

    def app_roots(self, ingresses: list[_Ingress]) -> None:
        done: dict[str, _Ingress] = {}
        for ing in ingresses:
            if not ing.valid or ing.ann.app_root is None:
                continue
            for rule_index, rule in enumerate(as_list(spec(ing.obj).get("rules"))):
                host = normalize_host(as_str(as_dict(rule).get("host")))
                if host in done:
                    if done[host] is not ing:
                        self.warn(ing, f"app-root for {host!r} is already set by ingress {done[host].meta.key}")
                    continue
                done[host] = ing
                provenance = Provenance("Ingress", ing.meta.namespace, ing.meta.name, rule_index, 0, role="app-root",
                                        created=ing.meta.created)
                redirect = Redirect(status_code=302, path=ReplaceFullPath(ing.ann.app_root), query="")
                for listener in self.listeners_for(host):
                    self.add_route(listener, host, Route(provenance, PathMatch(PathKind.EXACT, "/"), redirect,
                                                         hostname="" if host == CATCH_ALL else host, priority=-1))

    # -- default backends ---------------------------------------------------------------------------------------

    def instance_default_backend(self) -> tuple[Provenance, str] | None:
        ref = self.settings.default_backend_service
        if ref is None:
            return None
        service = self.services.get(ref)
        ports = [as_dict(p) for p in as_list(spec(service).get("ports"))] if service else []
        if not ports or not _is_port(ports[0].get("port")):
            self.report("warning", "Service", ref, "default backend not found or without ports")
            return None
        number = ports[0]["port"]
        name = f"{ref[0]}/{ref[1]}:{number}"
        backend = Backend(name, endpoints=self.endpoints(ref[0], ref[1], as_str(ports[0].get("name"))),
                          service=ServiceRef(ref[0], ref[1], number, as_str(ports[0].get("name"))))
        self.groups[name] = BackendGroup(name, (backend,))
        return Provenance("Service", ref[0], ref[1], role="default-backend"), name

    def default_backends(self, ingresses: list[_Ingress]) -> None:
        instance = self.instance_default_backend()
        hosts = {host for (_, host) in self.routes} | set(self.host_owner)
        catch_all_owner = next((i for i in ingresses if i.valid and spec(i.obj).get("defaultBackend") is not None
                                and not as_list(spec(i.obj).get("rules"))), None)
        for host in sorted(hosts | ({CATCH_ALL} if catch_all_owner or instance else set())):
            owner = catch_all_owner if host == CATCH_ALL else self.host_owner.get(host)
            target: tuple[Provenance, Action, dict[str, Any]] | None = None
            if owner is not None and spec(owner.obj).get("defaultBackend") is not None:
                target = self.ingress_default_backend(owner)
            elif instance is not None:
                target = (instance[0], Forward(instance[1]), {})
            if target is None:
                continue
            provenance, action, options = target
            for listener in self.listeners_for(host):
                existing = self.routes.get((listener, host), [])
                if any(r.match == PathMatch(PathKind.PREFIX, "/") and r.priority == 0 for r in existing):
                    continue
                self.add_route(listener, host, Route(provenance, MATCH_ALL, action,
                                                     hostname="" if host == CATCH_ALL else host, priority=1,
                                                     **options))

    def ingress_default_backend(self, owner: _Ingress) -> tuple[Provenance, Action, dict[str, Any]]:
        provenance = Provenance("Ingress", owner.meta.namespace, owner.meta.name, role="default-backend",
                                created=owner.meta.created)
        if not owner.valid:
            return provenance, DirectResponse(503), {}
        tls, problem = self.upstream_tls(owner)
        group = None if problem else self.group(owner, owner.meta.namespace, as_dict(spec(owner.obj)
                                                                                    .get("defaultBackend")),
                                                "/", owner.ann.backend_protocol, tls)
        if group is None:
            self.warn(owner, f"spec.defaultBackend: {problem or 'only service backends are supported'}; "
                             "it answers 503")
            return provenance, DirectResponse(503), {}
        return provenance, Forward(group), self.route_options(owner)

    # -- passthrough and canaries -------------------------------------------------------------------------------

    def passthroughs(self, ingresses: list[_Ingress]) -> None:
        for ing in ingresses:
            if not ing.valid or not ing.ann.ssl_passthrough:
                continue
            by_host: dict[str, list[IngressPath]] = defaultdict(list)
            for p in paths(ing.obj):
                by_host[p.host].append(p)
            for host, host_paths in by_host.items():
                if host == CATCH_ALL:
                    self.warn(ing, "ssl-passthrough needs a host (SNI); rules without a host are not passed through")
                    continue
                if host in self.passthrough:
                    self.warn(ing, f"ssl-passthrough for {host!r} is already set by "
                                   f"{self.passthrough[host].provenance.namespace}/"
                                   f"{self.passthrough[host].provenance.name}")
                    continue
                chosen = next((p for p in host_paths if p.path == "/"), host_paths[0])
                group = self.group(ing, ing.meta.namespace, chosen.backend, "/", UpstreamProtocol.TCP, None)
                if group is None:
                    self.warn(ing, f"{chosen.field}.backend: only service backends can be passed through")
                    continue
                provenance = Provenance("Ingress", ing.meta.namespace, ing.meta.name, chosen.rule, chosen.index,
                                        role="passthrough", created=ing.meta.created)
                self.passthrough[host] = L4Route(provenance, group, (host,), WildcardMode.ONE_LABEL)

    def canaries(self, canaries: list[_Ingress]) -> None:
        for ing in canaries:
            if not ing.valid or ing.ann.canary is None:
                continue
            for short in sorted(ing.present):
                if not short.startswith(CANARY_HONOURED):
                    self.warn(ing, f"annotation {short} has no effect on a canary Ingress (only canary-*, "
                                   "load-balance, upstream-hash-by and affinity annotations apply)")
            if ing.ann.affinity is not None and ing.ann.affinity_canary_sticky:
                self.warn(ing, "affinity on a canary Ingress has no effect unless affinity-canary-behavior is "
                               "legacy: the canary takes the main Ingress's affinity")
            for p in paths(ing.obj):
                holder = self.access.get(_Access(p.host, p.path, p.path_type))
                if holder is None:
                    self.warn(ing, f"{p.field}: no Ingress serves host {p.host!r} path {p.path!r} ({p.path_type}); "
                                   "the canary has nothing to attach to")
                    continue
                self.attach_canary(ing, p.backend, holder[1], p.field, p.rule, p.index)
            default = spec(ing.obj).get("defaultBackend")
            if default is not None:
                positions = [(listener, CATCH_ALL, i) for listener in (HTTP_LISTENER, HTTPS_LISTENER)
                             for i, r in enumerate(self.routes.get((listener, CATCH_ALL), []))
                             if r.provenance.role == "default-backend"]
                self.attach_canary(ing, as_dict(default), positions, "spec.defaultBackend", 0, 0)

    def attach_canary(self, ing: _Ingress, backend_spec: Mapping[str, Any], positions: list[tuple[str, str, int]],
                      field: str, rule: int, index: int) -> None:
        assert ing.ann.canary is not None
        spec_ = ing.ann.canary
        # ingress-nginx reads affinity-canary-behavior from the canary Ingress; "sticky" gives the canary the main
        # backend's session affinity (its cookie), in place of the canary's own, so a client pinned there stays.
        sticky = ing.ann.affinity_canary_sticky
        for listener, host, position in positions:
            route = self.routes[(listener, host)][position]
            action = route.action
            if not isinstance(action, Forward):
                continue
            if action.canaries:
                owner = action.canaries[0].provenance
                self.warn(ing, f"{field}: host {host!r} already has canary {owner.namespace}/{owner.name}")
                continue
            main_group = self.groups[action.backend_group]
            main = main_group.backends[0]
            cookie_path = route.match.value if isinstance(route.match, PathMatch) else "/"
            balancing = None
            if sticky:
                balancing = (main_group.balancing if isinstance(main_group.balancing, CookieAffinity)
                             else self.balancing(dataclasses.replace(ing.ann, affinity=None), cookie_path))
            group = self.group(ing, ing.meta.namespace, backend_spec, cookie_path, main.protocol, main.tls,
                               balancing)
            if group is None:
                self.warn(ing, f"{field}.backend: only service backends are supported")
                return
            canary = Canary(group, Provenance("Ingress", ing.meta.namespace, ing.meta.name, rule, index, role="canary",
                                              created=ing.meta.created),
                            weight=spec_.weight, weight_total=spec_.weight_total, header=spec_.header,
                            header_value=spec_.header_value, header_pattern=spec_.header_pattern, cookie=spec_.cookie,
                            sticky=sticky)
            self.routes[(listener, host)][position] = dataclasses.replace(
                route, action=dataclasses.replace(action, canaries=(canary,)))

    # -- assembly -----------------------------------------------------------------------------------------------

    def run(self) -> IngressTranslation:
        chosen = self.select()
        mains = [i for i in chosen if not is_canary(i.obj)]
        canaries = [i for i in chosen if is_canary(i.obj)]
        s = self.settings
        self.global_request_headers = self.header_config_map(s.proxy_set_headers, request=True)
        self.global_response_headers = self.header_config_map(s.add_headers, request=False)
        for ing in mains:
            if ing.valid and (ing.ann.use_regex or ing.ann.rewrite_target is not None):
                self.regex_hosts.update(rule_hosts(ing.obj))
        default_cert = self.default_certificate()
        self.certificates_for_hosts(mains)
        self.passthroughs(mains)
        for ing in mains:
            self.path_routes(ing)
        self.app_roots(mains)
        self.default_backends(mains)
        self.canaries(canaries)
        vhosts: dict[str, list[VirtualHost]] = defaultdict(list)
        for (listener, host), routes in sorted(self.routes.items()):
            certificate = self.host_certificate.get(host) if listener == HTTPS_LISTENER else None
            vhosts[listener].append(VirtualHost((host,), order_routes(routes, OrderingModel.INGRESS),
                                                certificate=certificate, wildcard=WildcardMode.ONE_LABEL))
        listeners = (
            Listener(HTTP_LISTENER, s.http_port, Protocol.HTTP, address=s.bind_address,
                     virtual_hosts=tuple(vhosts[HTTP_LISTENER])),
            Listener(HTTPS_LISTENER, s.https_port, Protocol.HTTPS, address=s.bind_address,
                     tls=ListenerTLS(default_certificate=default_cert),
                     virtual_hosts=tuple(vhosts[HTTPS_LISTENER]),
                     l4_routes=tuple(self.passthrough[h] for h in sorted(self.passthrough))),
        )
        settings = Settings(
            max_worker_connections=s.max_worker_connections, worker_processes=s.worker_processes,
            keepalive=Keepalive(s.upstream_keepalive_connections, s.upstream_keepalive_timeout * 1000,
                                s.upstream_keepalive_requests),
            forwarded=ForwardedHeaders(trust_incoming=s.use_forwarded_headers,
                                       compute_full_forwarded_for=s.compute_full_forwarded_for,
                                       forwarded_for_header=s.forwarded_for_header,
                                       trusted_proxies=s.proxy_real_ip_cidr if s.use_forwarded_headers else ()),
            allow_raw_snippets=s.allow_snippet_annotations, access_log=not s.disable_access_log)
        config = RoutingConfig(listeners, tuple(self.groups.values()), tuple(self.certificates.values()), settings)
        return IngressTranslation(config, tuple(self.diagnostics), tuple(i.meta.key for i in chosen))


def translate(inputs: IngressInputs, settings: ControllerSettings | None = None) -> IngressTranslation:
    """The routing IR for every Ingress of ``settings.class_name`` (default ``nginx``)."""
    return _Translator(inputs, settings or ControllerSettings()).run()


def kept_certificate_diagnostics(kept: Mapping[tuple[str, str], str],
                                 ingresses: Sequence[Mapping[str, Any]]) -> tuple[Diagnostic, ...]:
    """Warnings for TLS Secrets whose broken update ``CertificateMemory`` held back: on every Ingress that uses
    the Secret, else on the Secret itself (the default certificate)."""
    out = []
    for key, message in sorted(kept.items()):
        for namespace, name in secret_users(ingresses, key):
            out.append(Diagnostic("warning", "Ingress", namespace, name, f"TLS secret {key[0]}/{key[1]}: {message}"))
        if not secret_users(ingresses, key):
            out.append(Diagnostic("warning", "Secret", key[0], key[1], message))
    return tuple(out)
