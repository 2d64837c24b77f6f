"""Routing IR → the gateway engine's input (pure): listeners, virtual-host, backend and certificate documents, and
the static upstream side (TLS profiles towards backends, TLS passthrough, TCP/UDP listeners).

This follows the mapping table of docs/design/gateway-engine.md. What the engine cannot enforce yet (response
rate limits, raw snippets, ...) is never dropped silently: each is reported as an
`Unenforced` naming the source object and the feature, so the front door can tell its users (an Event on the
Ingress). Rendering never raises on a configuration the IR can hold; the documents it produces are still checked
by the engine's own compiler when they are pushed.

Strings stay data: every value lands in a JSON document, none in nginx configuration, except what the upstream
side validates before rendering (DNS names, IP addresses, cipher lists; PEM goes to files), see upstreams.py.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from netplane.dataplane.gateway import upstreams as up
from netplane.dataplane.gateway.config import Listener as EngineListener
from netplane.dataplane.gateway.config import WafProfile
from netplane.routing import ir

# nginx's own client_max_body_size default; the engine's nginx.conf does not change it.
ENGINE_BODY_LIMIT = 1024 * 1024
_MAX_RETRIES = 100
_LABEL_MAX = 1024
_LABEL_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")
Doc = dict[str, Any]
_HTTP_PROTOCOLS = (ir.UpstreamProtocol.HTTP, ir.UpstreamProtocol.HTTPS, ir.UpstreamProtocol.GRPC,
                   ir.UpstreamProtocol.GRPCS)
_GRPC = (ir.UpstreamProtocol.GRPC, ir.UpstreamProtocol.GRPCS)


@dataclass(frozen=True, order=True)
class Unenforced:
    """A feature the configuration asks for that the engine does not enforce yet, and whose source asked."""

    kind: str
    namespace: str
    name: str
    feature: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.feature}: {self.detail}" if self.detail else self.feature


@dataclass(frozen=True)
class Source:
    kind: str
    namespace: str
    name: str


@dataclass
class EngineConfig:
    """Everything one engine instance serves. Document names are stable across renders, so a caller can push
    only the documents whose bytes changed."""

    listeners: tuple[EngineListener, ...] = ()
    vhosts: dict[str, Doc] = field(default_factory=dict)
    backends: dict[str, Doc] = field(default_factory=dict)
    certificates: dict[str, Doc] = field(default_factory=dict)
    # The objects whose routes a virtual-host document holds: told when the engine refuses that document.
    vhost_sources: dict[str, tuple[Source, ...]] = field(default_factory=dict)
    # The WAF profiles the routes use: nginx.conf must offer them (Engine.set_waf_profiles) before the
    # virtual hosts that name them are pushed.
    waf_profiles: tuple[WafProfile, ...] = ()
    unenforced: tuple[Unenforced, ...] = ()
    # Upstream TLS profiles, TLS passthrough and TCP/UDP listeners: part of nginx.conf (a change reloads).
    upstreams: up.Upstreams = field(default_factory=up.Upstreams)


_FILTER_FEATURES: dict[type, str] = {
    ir.ResponseRateLimit: "response-rate-limit",
    ir.RawSnippet: "raw-snippet",
}


def backend_doc_name(group: str, backend: str) -> str:
    # A backend is scoped to its group: two groups may weigh or balance the same Service differently.
    return f"{group}|{backend}"


def vhost_doc_name(listener: ir.Listener, vhost: ir.VirtualHost) -> str:
    return f"{listener.name}:{listener.port}/{','.join(vhost.hostnames)}"


class _Renderer:
    def __init__(self, config: ir.RoutingConfig) -> None:
        self.config = config
        self.out = EngineConfig()
        self.unenforced: set[Unenforced] = set()
        self.groups = {g.name: g for g in config.backend_groups}
        self.policies: dict[str, Doc] = {}
        self.profiles: set[up.TLSProfile] = set()
        self.bad_tls: dict[str, str] = {}
        self.passthrough: list[up.Passthrough] = []
        self.l4: list[up.L4Listener] = []
        self.waf_profiles: set[WafProfile] = set()

    def report(self, p: ir.Provenance | Source, feature: str, detail: str = "") -> None:
        self.unenforced.add(Unenforced(p.kind, p.namespace, p.name, feature, detail))

    # -- listeners ----------------------------------------------------------------------------------------------

    def listener(self, lst: ir.Listener) -> EngineListener | None:
        address = _bind_address(lst.address)
        for route in lst.l4_routes:
            self.l4_route(lst, route, address)
        if lst.protocol not in (ir.Protocol.HTTP, ir.Protocol.HTTPS):
            return None
        tls = lst.protocol == ir.Protocol.HTTPS
        grpc = any(self.speaks_grpc(r) for vhost in lst.virtual_hosts for r in vhost.routes)
        if grpc and not tls:
            for vhost in lst.virtual_hosts:
                for r in vhost.routes:
                    if self.speaks_grpc(r):
                        self.report(r.provenance, "grpc-plaintext",
                                    f"gRPC clients need HTTP/2, offered on TLS listeners only (port {lst.port})")
        # gRPC clients need HTTP/2 (negotiated by ALPN, so HTTP/1.1 clients are still served).
        return EngineListener(lst.port, address, tls=tls, http2=tls and grpc)

    def speaks_grpc(self, route: ir.Route) -> bool:
        group = self.groups.get(route.action.backend_group) if isinstance(route.action, ir.Forward) else None
        return group is not None and any(b.protocol in _GRPC for b in group.backends)

    def l4_route(self, lst: ir.Listener, route: ir.L4Route, address: up.IPAddress | None) -> None:
        p = route.provenance
        group = self.groups.get(route.backend_group)
        peers = self.stream_peers(group, p) if group is not None else ()
        try:
            if lst.protocol in (ir.Protocol.TLS, ir.Protocol.HTTPS):
                self.passthrough.append(up.Passthrough(lst.port, route.hostnames, peers, address,
                                                       one_label=route.wildcard == ir.WildcardMode.ONE_LABEL,
                                                       proxy_protocol=route.proxy_protocol))
            elif lst.protocol in (ir.Protocol.TCP, ir.Protocol.UDP):
                self.l4.append(up.L4Listener(lst.port, lst.protocol == ir.Protocol.UDP, address, peers,
                                             route.proxy_protocol))
            else:
                self.report(p, "l4", f"stream routes on {lst.protocol.value} listener {lst.name}")
        except up.UpstreamConfigError as e:
            self.report(p, "l4", f"listener {lst.name} on port {lst.port}: {e}")

    def stream_peers(self, group: ir.BackendGroup, p: ir.Provenance) -> tuple[up.StreamPeer, ...]:
        peers = []
        for backend in group.backends:
            if backend.external_name:
                self.report(p, "external-name", f"ExternalName {backend.external_name} of {backend.name}")
            if backend.weight == 0:
                continue
            for e in backend.endpoints:
                try:
                    peers.append(up.StreamPeer(ipaddress.ip_address(e.address), e.port, min(backend.weight, 10000)))
                except (ValueError, up.UpstreamConfigError):
                    self.report(p, "l4", f"endpoint {e.address}:{e.port} of {backend.name} is not an IP address")
        return tuple(peers)

    # -- backends -----------------------------------------------------------------------------------------------

    def group_policy(self, group: ir.BackendGroup, p: ir.Provenance) -> Doc:
        balancing = group.balancing
        if isinstance(balancing, ir.CookieAffinity):
            c = balancing.cookie
            cookie: Doc = {"name": c.name, "path": c.path or "/", "http_only": True,
                           "secure": "scheme" if c.secure is None else c.secure}
            lifetime = c.max_age_s if c.max_age_s is not None else c.expires_s
            if lifetime is not None:
                cookie["max_age"] = lifetime
            if c.same_site is not None:
                cookie["same_site"] = c.same_site.value
            if c.domain or c.conditional_same_site_none or balancing.change_on_failure:
                self.report(p, "session-cookie", "cookie domain, conditional SameSite=None and change-on-failure")
            return {"type": "cookie", "cookie": cookie}
        if isinstance(balancing, ir.ConsistentHash):
            parts = balancing.key.parts
            if len(parts) == 1 and isinstance(parts[0], ir.RequestValue):
                value = parts[0]
                if value.kind == ir.VarKind.SOURCE_IP:
                    return {"type": "source_ip"}
                if value.kind in ir.NAMED_VARS:
                    return {"type": "hash", "source": value.kind.value, "name": value.name}
            self.report(p, "hash-key", "hashing on this key (round robin instead)")
        return {"type": "round_robin"}

    def backends(self) -> None:
        for group in self.config.backend_groups:
            for backend in group.backends:
                if backend.protocol in (ir.UpstreamProtocol.TCP, ir.UpstreamProtocol.UDP):
                    continue  # stream peers in nginx.conf, not a document
                name = backend_doc_name(group.name, backend.name)
                endpoints = [{"address": e.address, "port": e.port} for e in backend.endpoints]
                doc: Doc = {"endpoints": endpoints}
                if backend.protocol in _HTTP_PROTOCOLS and backend.protocol != ir.UpstreamProtocol.HTTP:
                    doc["protocol"] = backend.protocol.value
                    profile = self.tls_profile(backend)
                    if profile is None:
                        doc["endpoints"] = []  # TLS settings it cannot apply: fail closed (503), reported
                    elif profile != up.TLSProfile():
                        self.profiles.add(profile)
                        doc["tls"] = profile.id
                self.out.backends[name] = doc

    def tls_profile(self, backend: ir.Backend) -> up.TLSProfile | None:
        """The TLS profile of an HTTPS/GRPCS backend (the plain one for none), None when it cannot be built."""
        tls = backend.tls
        if tls is None or backend.protocol not in (ir.UpstreamProtocol.HTTPS, ir.UpstreamProtocol.GRPCS):
            return up.TLSProfile()
        cert = self.config.certificate(tls.secret) if tls.secret is not None else None
        try:
            return up.TLSProfile(verify=tls.verify, verify_depth=tls.verify_depth, server_name=tls.server_name,
                                 sni=tls.sni, protocols=tls.protocols, ciphers=tls.ciphers,
                                 ca_pem=cert.ca_pem if cert else "",
                                 certificate_pem=cert.certificate_pem if cert else "",
                                 key_pem=cert.private_key_pem if cert else "")
        except up.UpstreamConfigError as e:
            self.bad_tls[backend.name] = str(e)
            return None

    def backend_problems(self, group: ir.BackendGroup, p: ir.Provenance) -> None:
        for backend in group.backends:
            if backend.protocol not in _HTTP_PROTOCOLS:
                self.report(p, "backend-protocol", f"{backend.protocol.value} towards {backend.name}")
            elif backend.name in self.bad_tls:
                self.report(p, "backend-tls", f"{backend.name} gets no traffic: {self.bad_tls[backend.name]}")
            if backend.external_name:
                self.report(p, "external-name", f"ExternalName {backend.external_name} of {backend.name}")
            if backend.filters:
                self.report(p, "backend-filters", f"header filters of {backend.name}")

    # -- routes -------------------------------------------------------------------------------------------------

    def group_doc(self, name: str, p: ir.Provenance) -> Doc | None:
        group = self.groups.get(name)
        if group is None:
            return None
        self.backend_problems(group, p)
        return {"policy": self.group_policy(group, p),
                "backends": [{"name": backend_doc_name(group.name, b.name), "weight": b.weight}
                             for b in group.backends]}

    def canary(self, c: ir.Canary) -> Doc | None:
        # The canary's own source answers for what its group lacks.
        doc = self.group_doc(c.backend_group, c.provenance)
        if doc is None:
            return None
        doc.update(weight=c.weight, weight_total=c.weight_total, sticky=c.sticky)
        label = self.canary_label(c.backend_group)
        if label:
            doc["label"] = label
        for key in ("header", "header_value", "header_pattern", "cookie"):
            if getattr(c, key) is not None:
                doc[key] = getattr(c, key)
        return doc

    def canary_label(self, group_name: str) -> str:
        """What the access log and the metrics name a canary by: ingress-nginx's name of the alternative
        upstream, "<namespace>-<service>-<port>" of the group's first Service ("" without one)."""
        group = self.groups.get(group_name)
        service = group.backends[0].service if group is not None and group.backends else None
        return _label(f"{service.namespace}-{service.name}-{service.port}") if service is not None else ""

    def forward(self, action: ir.Forward, p: ir.Provenance) -> Doc | None:
        doc = self.group_doc(action.backend_group, p)
        if doc is None:
            return None
        canaries = [d for d in (self.canary(c) for c in action.canaries) if d is not None]
        if canaries:
            doc["canaries"] = canaries
        return doc

    def header_ops(self, ops: tuple[ir.HeaderOp, ...], p: ir.Provenance) -> list[Doc]:
        out = []
        for op in ops:
            if all(isinstance(part, str) for part in op.value.parts):
                out.append({"name": op.name, "value": "".join(str(part) for part in op.value.parts)})
            else:
                self.report(p, "header-template", f"header {op.name} uses request values")
        return out

    def path_modifier(self, path: ir.PathRewrite) -> Doc:
        if isinstance(path, ir.ReplaceFullPath):
            return {"type": "full", "value": path.path}
        if isinstance(path, ir.ReplacePrefixMatch):
            return {"type": "prefix", "value": path.prefix}
        return {"type": "regex", "pattern": path.pattern, "replacement": path.substitution,
                "ignore_case": path.ignore_case, "whole": path.whole_path}

    def other_protocol(self, action: ir.Action) -> str | None:
        """The protocol of a non-HTTP backend the action may send to (main group or a canary), if any: such
        requests continue in their protocol's named location, which has neither ModSecurity nor the log phase
        that gives a connection slot back."""
        if not isinstance(action, ir.Forward):
            return None
        for name in (action.backend_group, *(c.backend_group for c in action.canaries)):
            group = self.groups.get(name)
            for b in group.backends if group is not None else ():
                if b.protocol != ir.UpstreamProtocol.HTTP:
                    return b.protocol.value
        return None

    def rate_limit(self, f: ir.RateLimit, route_id: str, p: ir.Provenance, other: str | None) -> Doc | None:
        connections = f.connections
        if connections is not None and other is not None:
            self.report(p, "connection-limit", f"limit-connections towards {other} backends")
            connections = None
        if not f.rates and connections is None:
            return None
        # Counters are per route (the IR's rule), so the route id names them.
        doc: Doc = {"type": "rate_limit", "zone": route_id,
                    "rates": [{"limit": r.limit, "unit": r.unit.value, "burst": r.burst} for r in f.rates],
                    "allowlist": list(f.allowlist), "status": f.status_code}
        if connections is not None:
            doc["connections"] = connections
            doc["connection_status"] = f.connection_status_code
        if f.key != ir.Template.of(ir.VarKind.SOURCE_IP):
            self.report(p, "rate-limit-key", "limits are counted per client address")
        return doc

    def waf(self, f: ir.Waf, p: ir.Provenance, other: str | None) -> Doc | None:
        if f.mode == ir.WafMode.OFF:
            return None
        if other is not None:
            self.report(p, "waf", f"ModSecurity towards {other} backends")
            return None
        profile = WafProfile(blocking=f.mode == ir.WafMode.BLOCKING, owasp_crs=f.owasp_crs,
                             request_body=f.request_body_access)
        self.waf_profiles.add(profile)
        doc: Doc = {"type": "waf", "mode": f.mode.value, "owasp_crs": f.owasp_crs,
                    "request_body": f.request_body_access}
        if f.transaction_id is not None:
            doc["transaction_id"] = [{"text": part} if isinstance(part, str)
                                     else {"var": part.kind.value, **({"name": part.name} if part.name else {})}
                                     for part in f.transaction_id.parts]
        if f.raw_rules:
            self.report(p, "waf-rules", "ModSecurity rules of the snippet beyond SecRuleEngine and "
                                        "SecRequestBodyAccess")
        return doc

    def filter(self, f: ir.Filter, route_id: str, p: ir.Provenance, other: str | None) -> Doc | None:
        """`other`: the protocol of a non-HTTP backend of the route, if it has one."""
        if isinstance(f, ir.RateLimit):
            return self.rate_limit(f, route_id, p, other)
        if isinstance(f, ir.Waf):
            return self.waf(f, p, other)
        if isinstance(f, ir.RequestHeaders | ir.ResponseHeaders):
            kind = "request_headers" if isinstance(f, ir.RequestHeaders) else "response_headers"
            return {"type": kind, "set": self.header_ops(f.set, p), "add": self.header_ops(f.add, p),
                    "remove": list(f.remove)}
        if isinstance(f, ir.URLRewrite):
            doc: Doc = {"type": "rewrite"}
            if f.hostname is not None:
                doc["hostname"] = f.hostname
            if f.path is not None:
                doc["path"] = self.path_modifier(f.path)
            return doc
        if isinstance(f, ir.Cors):
            cors: Doc = {"type": "cors", "allow_origins": list(f.allow_origins), "allow_methods": list(f.allow_methods),
                         "allow_headers": list(f.allow_headers), "expose_headers": list(f.expose_headers),
                         "allow_credentials": f.allow_credentials}
            if f.max_age_s is not None:
                cors["max_age"] = f.max_age_s
            return cors
        if isinstance(f, ir.Hsts):
            return {"type": "hsts", "max_age": f.max_age_s, "include_subdomains": f.include_subdomains,
                    "preload": f.preload}
        if isinstance(f, ir.SourceIPAccess):
            return {"type": "source_ip_access", "allow": list(f.allow), "deny": list(f.deny), "status": f.status_code}
        if isinstance(f, ir.RequestMirror):
            return self.mirror(f, p)
        self.report(p, _FILTER_FEATURES.get(type(f), type(f).__name__))
        return None

    def mirror(self, f: ir.RequestMirror, p: ir.Provenance) -> Doc | None:
        group = self.groups.get(f.backend_group)
        if group is None:
            self.report(p, "mirror", f"backend group {f.backend_group} does not exist")
            return None
        # The engine sends copies over plain HTTP from Lua; TLS and gRPC peers would not understand them.
        other = [b.name for b in group.backends if b.protocol != ir.UpstreamProtocol.HTTP]
        if other:
            self.report(p, "mirror", f"copies to {', '.join(other)} ({group.backends[0].protocol.value})")
            return None
        doc: Doc = {"type": "mirror", "backend": self.group_doc(f.backend_group, p), "percent": f.percent}
        if f.hostname is not None:
            doc["host"] = f.hostname
        if not f.body:
            doc["body"] = False
        return doc

    def action(self, action: ir.Action, p: ir.Provenance) -> tuple[Doc | None, Doc | None]:
        """(terminal filter, backend) for an action."""
        if isinstance(action, ir.Forward):
            return None, self.forward(action, p)
        if isinstance(action, ir.DirectResponse):
            return {"type": "direct_response", "status": action.status_code, "body": action.body}, None
        doc: Doc = {"type": "redirect", "status": action.status_code,
                    "strip_trailing_slash": action.strip_trailing_slash}
        for key in ("scheme", "hostname", "port"):
            if getattr(action, key) is not None:
                doc[key] = getattr(action, key)
        if action.path is not None:
            doc["path"] = self.path_modifier(action.path)
        if action.query is not None:
            doc["query"] = action.query
        return doc, None

    def route(self, route: ir.Route) -> Doc | None:
        p = route.provenance
        conjunctions = _dnf(route.match)
        matches = []
        for conj in conjunctions:
            m = self.conjunction(conj, p)
            if m is not None:
                matches.append(m)
        if not matches:
            return None
        doc: Doc = {"id": route.id}
        labels = self.route_labels(route)
        if labels:
            doc["labels"] = labels
        if len(matches) == 1:
            if matches[0]:
                doc["match"] = matches[0]
        else:
            doc["matches"] = matches
        other = self.other_protocol(route.action)
        filters = [d for d in (self.filter(f, route.id, p, other) for f in route.filters) if d is not None]
        terminal, backend = self.action(route.action, p)
        if terminal is not None:
            filters.append(terminal)
        if filters:
            doc["filters"] = filters
        if backend is not None:
            doc["backend"] = backend
        if route.retry is not None:
            self.retry(route.retry, doc, p)
        timeouts = {k: v for k, v in (("connect_ms", route.timeouts.connect_ms), ("send_ms", route.timeouts.send_ms),
                                      ("read_ms", route.timeouts.read_ms)) if v is not None}
        if timeouts:
            doc["timeouts"] = timeouts
        if route.timeouts.request_ms is not None or route.timeouts.backend_request_ms is not None:
            self.report(p, "request-timeout", "whole-request timeouts")
        if route.max_body_bytes is not None and route.max_body_bytes != ENGINE_BODY_LIMIT:
            self.report(p, "body-size", f"a request body limit of {route.max_body_bytes} bytes (1 MiB applies)")
        return doc

    def route_labels(self, route: ir.Route) -> Doc:
        """What the access log and metrics name a route by, as ingress-nginx does: the source's namespace, the
        Ingress, the Service the route forwards to (the main group's first; a canary's requests carry the
        canary's own label, see canary_label) and the path the source wrote."""
        p = route.provenance
        labels = {"namespace": p.namespace, "ingress": p.name if p.kind == "Ingress" else ""}
        if isinstance(route.action, ir.Forward):
            group = self.groups.get(route.action.backend_group)
            service = group.backends[0].service if group is not None and group.backends else None
            labels["service"] = service.name if service is not None else ""
        labels["path"] = _first_path(route.match)
        return {k: _label(v) for k, v in labels.items() if v}

    def retry(self, retry: ir.RetryPolicy, doc: Doc, p: ir.Provenance) -> None:
        # The engine retries after connection errors and timeouts only, each time on an endpoint not yet tried.
        if not retry.on:
            return
        doc["retries"] = _MAX_RETRIES if retry.attempts == 0 else min(retry.attempts - 1, _MAX_RETRIES)
        extra = set(retry.on) - {ir.RetryOn.ERROR, ir.RetryOn.TIMEOUT}
        if extra or retry.status_codes or retry.timeout_ms is not None or retry.backoff_ms is not None:
            self.report(p, "retry", "retrying on statuses, invalid headers or non-idempotent requests, "
                                    "retry timeouts and backoff")

    def conjunction(self, leaves: list[ir.Match], p: ir.Provenance) -> Doc | None:
        """An engine match object for a conjunction of (possibly negated) leaves; None when it cannot be
        expressed (reported; the alternative is left out rather than widened)."""
        doc: Doc = {}
        methods: set[str] | None = None
        for leaf in leaves:
            negated = isinstance(leaf, ir.Not)
            inner = leaf.match if isinstance(leaf, ir.Not) else leaf
            if isinstance(inner, ir.HeaderMatch | ir.QueryMatch | ir.CookieMatch):
                key = {ir.HeaderMatch: "headers", ir.QueryMatch: "query", ir.CookieMatch: "cookies"}[type(inner)]
                doc.setdefault(key, []).append(_condition(inner, negated))
            elif negated:
                self.report(p, "match", f"a negated {inner.TYPE} condition")
                return None
            elif isinstance(inner, ir.PathMatch):
                if "path" in doc:
                    self.report(p, "match", "two path conditions in one alternative")
                    return None
                doc["path"] = self.path_match(inner, p)
            elif isinstance(inner, ir.MethodMatch):
                methods = set(inner.methods) if methods is None else methods & set(inner.methods)
            elif isinstance(inner, ir.SourceIPMatch):
                if inner.invert or "source_ranges" in doc:
                    self.report(p, "match", "excluded or intersected source ranges")
                    return None
                doc["source_ranges"] = list(inner.cidrs)
            else:
                self.report(p, "match", "host conditions inside a route")
                return None
        if methods is not None:
            if not methods:
                return None
            doc["methods"] = sorted(methods)
        return doc

    def path_match(self, m: ir.PathMatch, p: ir.Provenance) -> Doc:
        if m.kind == ir.PathKind.REGEX:
            return {"type": "regex", "value": m.value, "ignore_case": m.ignore_case}
        if m.ignore_case:
            # Case-insensitive literal paths become the equivalent anchored regex.
            tail = {ir.PathKind.EXACT: "$", ir.PathKind.PREFIX: "(/|$)", ir.PathKind.STARTS_WITH: ""}[m.kind]
            value = m.value.rstrip("/") if m.kind == ir.PathKind.PREFIX else m.value
            return {"type": "regex", "value": "^" + re.escape(value) + tail, "ignore_case": True}
        return {"type": m.kind.value, "value": m.value}

    # -- virtual hosts and certificates -------------------------------------------------------------------------

    def vhosts(self, lst: ir.Listener) -> None:
        for vhost in lst.virtual_hosts:
            if lst.protocol == ir.Protocol.HTTPS and vhost.certificate is not None:
                self.certificate(vhost.certificate, vhost.hostnames)
            routes = [d for d in (self.route(r) for r in vhost.routes) if d is not None]
            name = vhost_doc_name(lst, vhost)
            self.out.vhosts[name] = {"ports": [lst.port], "hostnames": list(vhost.hostnames),
                                     "wildcard": vhost.wildcard.value, "routes": routes}
            self.out.vhost_sources[name] = tuple(sorted(
                {Source(r.provenance.kind, r.provenance.namespace, r.provenance.name) for r in vhost.routes},
                key=lambda s: (s.kind, s.namespace, s.name)))

    def certificate(self, cert_id: str, hostnames: Iterable[str]) -> None:
        cert = self.config.certificate(cert_id)
        if cert is None or not cert.certificate_pem or not cert.private_key_pem:
            return
        doc = self.out.certificates.setdefault(cert_id, {"hostnames": [], "certificate": cert.certificate_pem,
                                                         "key": cert.private_key_pem})
        taken = {h for name, d in self.out.certificates.items() if name != cert_id for h in d["hostnames"]}
        for host in hostnames:
            # One certificate per name: the first listener's claim stands (the engine refuses a second).
            if host not in doc["hostnames"] and host not in taken:
                doc["hostnames"].append(host)

    def run(self) -> EngineConfig:
        # Backend documents first: routes report the TLS settings those could not take.
        self.backends()
        listeners = []
        for lst in self.config.listeners:
            engine_listener = self.listener(lst)
            if engine_listener is None:
                continue
            listeners.append(engine_listener)
            self.vhosts(lst)
        for lst in self.config.listeners:
            if lst.protocol == ir.Protocol.HTTPS and lst.tls is not None and lst.tls.default_certificate:
                self.certificate(lst.tls.default_certificate, ["*"])
        for name, doc in list(self.out.certificates.items()):
            if not doc["hostnames"]:
                del self.out.certificates[name]
        self.out.listeners = tuple(dict.fromkeys(listeners))
        self.out.upstreams = self.upstreams(listeners)
        if self.config.settings.forwarded.trust_incoming:
            # An instance-wide setting: told on the instance (the front door knows which one it is).
            self.report(Source("IngressNginx", "", ""), "forwarded-headers",
                        "the X-Forwarded-* a client sends are replaced, never trusted")
        self.out.waf_profiles = tuple(sorted(self.waf_profiles))
        self.out.unenforced = tuple(sorted(self.unenforced))
        return self.out


    def upstreams(self, listeners: list[EngineListener]) -> up.Upstreams:
        try:
            return up.Upstreams(tuple(self.profiles), tuple(self.passthrough), tuple(self.l4))
        except up.UpstreamConfigError as e:
            # Two stream routes on one name or socket: the IR's validation refuses this before it gets here.
            self.report(Source("RoutingConfig", "", ""), "l4", str(e))
            return up.Upstreams(tuple(self.profiles))


def _bind_address(text: str) -> up.IPAddress | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    return None if address.is_unspecified else address


def _condition(m: ir.HeaderMatch | ir.QueryMatch | ir.CookieMatch, negated: bool) -> Doc:
    invert = m.invert != negated
    if m.kind == ir.StringMatchKind.PRESENT:
        return {"name": m.name, "type": "present", "invert": invert}
    if not m.ignore_case:
        return {"name": m.name, "type": m.kind.value, "value": m.value, "invert": invert}
    # The engine compares case-sensitively; ignoring case is a regex with the i flag.
    literal = re.escape(m.value)
    pattern = {ir.StringMatchKind.EXACT: f"^{literal}$", ir.StringMatchKind.PREFIX: f"^{literal}",
               ir.StringMatchKind.SUFFIX: f"{literal}$", ir.StringMatchKind.REGEX: m.value}[m.kind]
    return {"name": m.name, "type": "regex", "value": "(?i)" + pattern, "invert": invert}


def _label(value: str) -> str:
    # The engine refuses labels with control characters or beyond 1,024 characters: a label never costs a route.
    return _LABEL_UNSAFE.sub("", value)[:_LABEL_MAX]


def _first_path(match: ir.Match) -> str:
    """The value of the first path condition in `match` ("" if none)."""
    if isinstance(match, ir.PathMatch):
        return match.value
    if isinstance(match, ir.And | ir.Or):
        for part in match.matches:
            found = _first_path(part)
            if found:
                return found
    return ""


def _dnf(match: ir.Match) -> list[list[ir.Match]]:
    """`match` as alternatives of conjunctions of leaves (a leaf possibly under one `Not`)."""
    if isinstance(match, ir.And):
        result: list[list[ir.Match]] = [[]]
        for part in match.matches:
            result = [a + b for a in result for b in _dnf(part)]
        return result
    if isinstance(match, ir.Or):
        return [conj for part in match.matches for conj in _dnf(part)]
    if isinstance(match, ir.Not):
        inner = match.match
        if isinstance(inner, ir.Not):
            return _dnf(inner.match)
        if isinstance(inner, ir.And):  # De Morgan
            return _dnf(ir.Or(tuple(ir.Not(m) for m in inner.matches))) if inner.matches else []
        if isinstance(inner, ir.Or):
            return _dnf(ir.And(tuple(ir.Not(m) for m in inner.matches)))
        return [[match]]
    return [[match]]


def render(config: ir.RoutingConfig) -> EngineConfig:
    """The engine documents for `config`, and what they cannot enforce yet."""
    return _Renderer(config).run()
