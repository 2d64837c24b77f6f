"""Self-validation of the routing IR.

``validate(config)`` lists every problem as ``ValidationError(where, reason)``: ``where`` is a route id for
anything inside a route, otherwise a path such as ``listeners[https]`` or ``backend_groups[ns/svc:80]``; ``reason``
starts with the field inside it. Translators should never produce an invalid configuration; the data plane
refuses one (keeping the last good configuration) rather than guess.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from netplane.routing.ir import (
    BACKEND_FILTER_TYPES,
    NAMED_VARS,
    And,
    Backend,
    BackendGroup,
    Canary,
    ConsistentHash,
    CookieAffinity,
    CookieMatch,
    Cors,
    DirectResponse,
    Forward,
    HeaderMatch,
    HeaderOp,
    HostMatch,
    Hsts,
    L4Route,
    Listener,
    Match,
    MethodMatch,
    Not,
    Or,
    PathKind,
    PathMatch,
    Protocol,
    QueryMatch,
    RateLimit,
    RawSnippet,
    Redirect,
    RegexRewrite,
    ReplaceFullPath,
    ReplacePrefixMatch,
    RequestHeaders,
    RequestMirror,
    RequestValue,
    ResponseHeaders,
    ResponseRateLimit,
    Route,
    RoutingConfig,
    SessionCookie,
    SourceIPAccess,
    SourceIPMatch,
    StringMatchKind,
    Template,
    UpstreamProtocol,
    UpstreamTLS,
    URLRewrite,
    VarKind,
    Waf,
)
from netplane.routing.precedence import CATCH_ALL, summarize
from netplane.routing.regex import capture_references, group_count, pcre_problems

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_HOSTNAME = re.compile(rf"^(\*\.)?{_LABEL}(\.{_LABEL})*$")
_COOKIE_PATH = re.compile(r"^/[!#-+\--:<-~]*$")  # visible ASCII without ';', ',' and spaces
_COOKIE_DOMAIN = re.compile(rf"^\.?{_LABEL}(\.{_LABEL})*$")
_CIPHERS = re.compile(r"^[A-Za-z0-9+:_\-!@=.]+$")
_ORIGIN = re.compile(rf"^https?://(\*\.)?{_LABEL}(\.{_LABEL})*(:\d{{1,5}})?$")
_PEM_CERT = "-----BEGIN CERTIFICATE-----"
TLS_VERSIONS = frozenset({"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"})
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
_MAX_MATCH_DEPTH = 32


@dataclass(frozen=True)
class ValidationError:
    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


def is_token(value: str) -> bool:
    """An HTTP token (RFC 9110): what header names, methods and cookie names must be."""
    return bool(_TOKEN.match(value))


def is_hostname(value: str, wildcard: bool = True) -> bool:
    """A lower-case DNS name, optionally ``*.``-prefixed."""
    return len(value) <= 253 and bool(_HOSTNAME.match(value)) and (wildcard or not value.startswith("*."))


def has_control(value: str) -> bool:
    """CR, LF, NUL or another control character (tab allowed): what would split a header or a log line."""
    return bool(_CONTROL.search(value))


def is_cookie_path(value: str) -> bool:
    return bool(_COOKIE_PATH.match(value))


def is_cookie_domain(value: str) -> bool:
    return bool(_COOKIE_DOMAIN.match(value))


def is_origin(value: str) -> bool:
    """A CORS origin: ``*``, ``scheme://host[:port]`` or ``scheme://*.host[:port]``."""
    return value == "*" or bool(_ORIGIN.match(value))


def cidr_problem(value: str) -> str | None:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return f"{value!r} is not an IP address or CIDR"
    return None


def _port_ok(port: int) -> bool:
    return 1 <= port <= 65535


def _status_ok(code: int, low: int, high: int) -> bool:
    return low <= code <= high


class _Checker:
    def __init__(self, config: RoutingConfig) -> None:
        self.config = config
        self.errors: list[ValidationError] = []
        self.groups = {g.name for g in config.backend_groups}
        self.certs = {c.id: c for c in config.certificates}

    def add(self, where: str, reason: str) -> None:
        error = ValidationError(where, reason)
        if error not in self.errors:
            self.errors.append(error)

    # -- shared pieces ------------------------------------------------------------------------------------------

    def template(self, where: str, at: str, template: Template, header_value: bool = True) -> None:
        for part in template.parts:
            if isinstance(part, RequestValue):
                if part.kind in NAMED_VARS and not part.name:
                    self.add(where, f"{at}: {part.kind} needs a name")
                elif part.kind not in NAMED_VARS and part.name:
                    self.add(where, f"{at}: {part.kind} takes no name")
                elif part.kind in (VarKind.HEADER, VarKind.COOKIE) and not is_token(part.name):
                    self.add(where, f"{at}: {part.name!r} is not a valid {part.kind} name")
                elif part.kind is VarKind.QUERY and has_control(part.name):
                    self.add(where, f"{at}: query parameter name contains control characters")
            elif header_value and has_control(part):
                self.add(where, f"{at}: must not contain control characters (CR, LF, NUL)")

    def header_ops(self, where: str, at: str, ops: tuple[HeaderOp, ...]) -> None:
        for i, op in enumerate(ops):
            if not is_token(op.name):
                self.add(where, f"{at}[{i}].name: {op.name!r} is not a valid HTTP header name")
            self.template(where, f"{at}[{i}].value", op.value)

    def header_names(self, where: str, at: str, names: tuple[str, ...]) -> None:
        for i, name in enumerate(names):
            if not is_token(name):
                self.add(where, f"{at}[{i}]: {name!r} is not a valid HTTP header name")

    def regex(self, where: str, at: str, pattern: str) -> None:
        for problem in pcre_problems(pattern):
            self.add(where, f"{at}: {problem}")

    def cidrs(self, where: str, at: str, cidrs: tuple[str, ...]) -> None:
        for i, cidr in enumerate(cidrs):
            problem = cidr_problem(cidr)
            if problem:
                self.add(where, f"{at}[{i}]: {problem}")

    def group_ref(self, where: str, at: str, name: str) -> None:
        if name not in self.groups:
            self.add(where, f"{at}: backend group {name!r} does not exist")

    # -- matches ------------------------------------------------------------------------------------------------

    def match(self, where: str, at: str, match: Match, depth: int = 0) -> None:
        if depth > _MAX_MATCH_DEPTH:
            self.add(where, f"{at}: nested more than {_MAX_MATCH_DEPTH} levels")
            return
        if isinstance(match, And | Or):
            if isinstance(match, Or) and not match.matches:
                self.add(where, f"{at}: an empty 'or' never matches")
            for i, m in enumerate(match.matches):
                self.match(where, f"{at}.matches[{i}]", m, depth + 1)
        elif isinstance(match, Not):
            self.match(where, f"{at}.match", match.match, depth + 1)
        elif isinstance(match, PathMatch):
            if match.kind is PathKind.REGEX:
                self.regex(where, f"{at}.value", match.value)
            elif not match.value.startswith("/"):
                self.add(where, f"{at}.value: {match.value!r} must start with '/'")
            if has_control(match.value):
                self.add(where, f"{at}.value: must not contain control characters")
        elif isinstance(match, HostMatch):
            if not is_hostname(match.hostname):
                self.add(where, f"{at}.hostname: {match.hostname!r} is not a valid hostname")
        elif isinstance(match, MethodMatch):
            if not match.methods:
                self.add(where, f"{at}.methods: must not be empty")
            for method in match.methods:
                if not is_token(method) or method != method.upper():
                    self.add(where, f"{at}.methods: {method!r} is not an upper-case HTTP method")
        elif isinstance(match, HeaderMatch | QueryMatch | CookieMatch):
            self.value_match(where, at, match)
        elif isinstance(match, SourceIPMatch):
            if not match.cidrs:
                self.add(where, f"{at}.cidrs: must not be empty")
            self.cidrs(where, f"{at}.cidrs", match.cidrs)

    def value_match(self, where: str, at: str, match: HeaderMatch | QueryMatch | CookieMatch) -> None:
        if isinstance(match, QueryMatch):
            if not match.name or has_control(match.name):
                self.add(where, f"{at}.name: {match.name!r} is not a valid query parameter name")
        elif not is_token(match.name):
            what = "HTTP header" if isinstance(match, HeaderMatch) else "cookie"
            self.add(where, f"{at}.name: {match.name!r} is not a valid {what} name")
        if match.kind is StringMatchKind.REGEX:
            self.regex(where, f"{at}.value", match.value)
        elif has_control(match.value):
            self.add(where, f"{at}.value: must not contain control characters")

    # -- filters and actions ------------------------------------------------------------------------------------

    def filters(self, route: Route) -> None:
        where = route.id
        path = summarize(route.match).path
        for i, f in enumerate(route.filters):
            at = f"filters[{i}]"
            if isinstance(f, RequestHeaders | ResponseHeaders):
                self.header_ops(where, f"{at}.set", f.set)
                self.header_ops(where, f"{at}.add", f.add)
                self.header_names(where, f"{at}.remove", f.remove)
            elif isinstance(f, URLRewrite):
                self.url_rewrite(where, at, f, path)
            elif isinstance(f, Cors):
                self.cors(where, at, f)
            elif isinstance(f, Hsts):
                if f.max_age_s < 0:
                    self.add(where, f"{at}.max_age_s: must be >= 0")
            elif isinstance(f, RateLimit):
                self.rate_limit(where, at, f)
            elif isinstance(f, ResponseRateLimit):
                if f.bytes_per_second < 0 or f.after_bytes < 0:
                    self.add(where, f"{at}: byte counts must be >= 0")
            elif isinstance(f, Waf):
                if f.transaction_id is not None:
                    self.template(where, f"{at}.transaction_id", f.transaction_id)
                if f.raw_rules and not self.config.settings.allow_raw_snippets:
                    self.add(where, f"{at}.raw_rules: raw snippets are not allowed on this instance")
            elif isinstance(f, SourceIPAccess):
                if not f.allow and not f.deny:
                    self.add(where, f"{at}: needs 'allow' or 'deny' ranges")
                self.cidrs(where, f"{at}.allow", f.allow)
                self.cidrs(where, f"{at}.deny", f.deny)
                if not _status_ok(f.status_code, 400, 599):
                    self.add(where, f"{at}.status_code: must be between 400 and 599")
            elif isinstance(f, RequestMirror):
                self.group_ref(where, f"{at}.backend_group", f.backend_group)
                if not 0 <= f.percent <= 100:
                    self.add(where, f"{at}.percent: must be between 0 and 100")
                if f.hostname is not None and not is_hostname(f.hostname, wildcard=False):
                    self.add(where, f"{at}.hostname: {f.hostname!r} is not a valid hostname")
            elif isinstance(f, RawSnippet):
                if not self.config.settings.allow_raw_snippets:
                    self.add(where, f"{at}: raw snippets are not allowed on this instance")
                if "\x00" in f.text:
                    self.add(where, f"{at}.text: must not contain NUL")

    def url_rewrite(self, where: str, at: str, f: URLRewrite, path: PathMatch | None) -> None:
        if f.hostname is not None and not is_hostname(f.hostname, wildcard=False):
            self.add(where, f"{at}.hostname: {f.hostname!r} is not a valid hostname")
        rewrite = f.path
        if isinstance(rewrite, ReplaceFullPath | ReplacePrefixMatch):
            value = rewrite.path if isinstance(rewrite, ReplaceFullPath) else rewrite.prefix
            if not value.startswith("/") or has_control(value):
                self.add(where, f"{at}.path: {value!r} must be a path starting with '/'")
            if isinstance(rewrite, ReplacePrefixMatch) and (
                    path is None or path.kind not in (PathKind.PREFIX, PathKind.STARTS_WITH)):
                self.add(where, f"{at}.path: replacing the prefix needs a prefix path match")
        elif isinstance(rewrite, RegexRewrite):
            problems = pcre_problems(rewrite.pattern)
            self.regex(where, f"{at}.path.pattern", rewrite.pattern)
            if not problems:
                groups = group_count(rewrite.pattern)
                for ref in capture_references(rewrite.substitution):
                    if ref > groups:
                        self.add(where, f"{at}.path.substitution: refers to ${ref} but the pattern has "
                                        f"{groups} capture group{'s' if groups != 1 else ''}")
            if has_control(rewrite.substitution) or (rewrite.whole_path and not rewrite.substitution.startswith("/")):
                self.add(where, f"{at}.path.substitution: {rewrite.substitution!r} must be a path starting with '/'")

    def cors(self, where: str, at: str, f: Cors) -> None:
        for origin in f.allow_origins:
            if not is_origin(origin):
                self.add(where, f"{at}.allow_origins: {origin!r} is not '*' or scheme://host[:port]")
        for name, values in (("allow_methods", f.allow_methods), ("allow_headers", f.allow_headers),
                             ("expose_headers", f.expose_headers)):
            for value in values:
                if value != "*" and not is_token(value):
                    self.add(where, f"{at}.{name}: {value!r} is not a valid token")
        if f.max_age_s is not None and f.max_age_s < 0:
            self.add(where, f"{at}.max_age_s: must be >= 0")

    def rate_limit(self, where: str, at: str, f: RateLimit) -> None:
        if not f.rates and f.connections is None:
            self.add(where, f"{at}: needs request rates or a connection limit")
        for i, rate in enumerate(f.rates):
            if rate.limit <= 0:
                self.add(where, f"{at}.rates[{i}].limit: must be > 0")
            if rate.burst < 0:
                self.add(where, f"{at}.rates[{i}].burst: must be >= 0")
        if f.connections is not None and f.connections <= 0:
            self.add(where, f"{at}.connections: must be > 0")
        self.cidrs(where, f"{at}.allowlist", f.allowlist)
        for name, code in (("status_code", f.status_code), ("connection_status_code", f.connection_status_code)):
            if not _status_ok(code, 400, 599):
                self.add(where, f"{at}.{name}: must be between 400 and 599")
        if not f.key.parts:
            self.add(where, f"{at}.key: must not be empty")
        self.template(where, f"{at}.key", f.key)

    def canary(self, where: str, at: str, canary: Canary) -> None:
        self.group_ref(where, f"{at}.backend_group", canary.backend_group)
        if canary.weight_total <= 0:
            self.add(where, f"{at}.weight_total: must be > 0")
        if not 0 <= canary.weight <= max(canary.weight_total, 0):
            self.add(where, f"{at}.weight: must be between 0 and weight_total ({canary.weight_total})")
        for name, value in (("header", canary.header), ("cookie", canary.cookie)):
            if value is not None and not is_token(value):
                self.add(where, f"{at}.{name}: {value!r} is not a valid {name} name")
        if canary.header_value is not None and has_control(canary.header_value):
            self.add(where, f"{at}.header_value: must not contain control characters")
        if canary.header_pattern is not None:
            self.regex(where, f"{at}.header_pattern", canary.header_pattern)
        if (canary.header_value or canary.header_pattern) and not canary.header:
            self.add(where, f"{at}: header_value/header_pattern need a header")

    def action(self, route: Route) -> None:
        where, action = route.id, route.action
        if isinstance(action, Forward):
            self.group_ref(where, "action.backend_group", action.backend_group)
            for i, canary in enumerate(action.canaries):
                self.canary(where, f"action.canaries[{i}]", canary)
        elif isinstance(action, Redirect):
            if action.status_code not in REDIRECT_CODES:
                self.add(where, f"action.status_code: {action.status_code} is not one of 301, 302, 303, 307, 308")
            if action.scheme is not None and action.scheme not in ("http", "https"):
                self.add(where, f"action.scheme: {action.scheme!r} is not http or https")
            if action.hostname is not None and not is_hostname(action.hostname, wildcard=False):
                self.add(where, f"action.hostname: {action.hostname!r} is not a valid hostname")
            if action.port is not None and not _port_ok(action.port):
                self.add(where, "action.port: must be between 1 and 65535")
            if action.path is not None:
                value = action.path.path if isinstance(action.path, ReplaceFullPath) else action.path.prefix
                if not value.startswith("/") or has_control(value):
                    self.add(where, f"action.path: {value!r} must be a path starting with '/'")
            if action.query is not None and (has_control(action.query) or " " in action.query or "#" in action.query):
                self.add(where, "action.query: must not contain spaces, '#' or control characters")
        elif isinstance(action, DirectResponse) and not _status_ok(action.status_code, 200, 599):
            self.add(where, "action.status_code: must be between 200 and 599")

    def route(self, route: Route) -> None:
        where = route.id
        self.match(where, "match", route.match)
        self.action(route)
        self.filters(route)
        if route.hostname and route.hostname != CATCH_ALL and not is_hostname(route.hostname):
            self.add(where, f"hostname: {route.hostname!r} is not a valid hostname")
        for name in ("connect_ms", "send_ms", "read_ms", "request_ms", "backend_request_ms"):
            value = getattr(route.timeouts, name)
            if value is not None and value <= 0:
                self.add(where, f"timeouts.{name}: must be > 0")
        if route.retry is not None:
            if route.retry.attempts < 0:
                self.add(where, "retry.attempts: must be >= 0")
            if any(not _status_ok(c, 100, 599) for c in route.retry.status_codes):
                self.add(where, "retry.status_codes: must be HTTP status codes")
            if route.retry.timeout_ms is not None and route.retry.timeout_ms <= 0:
                self.add(where, "retry.timeout_ms: must be > 0")
            if route.retry.backoff_ms is not None and route.retry.backoff_ms < 0:
                self.add(where, "retry.backoff_ms: must be >= 0")
        if route.max_body_bytes is not None and route.max_body_bytes < 0:
            self.add(where, "max_body_bytes: must be >= 0")

    # -- listeners ----------------------------------------------------------------------------------------------

    def listeners(self) -> None:
        seen_names: set[str] = set()
        bound: list[tuple[Listener, str]] = []
        for listener in self.config.listeners:
            where = f"listeners[{listener.name}]"
            if not listener.name or has_control(listener.name):
                self.add(where, "name: must be a non-empty name")
            if listener.name in seen_names:
                self.add(where, "name: duplicate listener name")
            seen_names.add(listener.name)
            if not _port_ok(listener.port):
                self.add(where, f"port: {listener.port} is not between 1 and 65535")
            try:
                ipaddress.ip_address(listener.address)
            except ValueError:
                self.add(where, f"address: {listener.address!r} is not an IP address")
            transport = "udp" if listener.protocol is Protocol.UDP else "tcp"
            for other, other_transport in bound:
                if other.port == listener.port and other_transport == transport and _addresses_overlap(
                        other.address, listener.address):
                    self.add(where, f"port: {transport} {listener.address}:{listener.port} is already used by "
                                    f"listener {other.name!r}")
            bound.append((listener, transport))
            self.listener_shape(where, listener)
            self.virtual_hosts(where, listener)
            self.l4_routes(where, listener)

    def listener_shape(self, where: str, listener: Listener) -> None:
        protocol = listener.protocol
        if protocol is Protocol.HTTPS and listener.tls is None:
            self.add(where, "tls: an HTTPS listener needs TLS settings")
        if protocol is not Protocol.HTTPS and listener.tls is not None:
            self.add(where, f"tls: only HTTPS listeners terminate TLS, not {protocol}")
        if protocol not in (Protocol.HTTP, Protocol.HTTPS) and listener.virtual_hosts:
            self.add(where, f"virtual_hosts: a {protocol} listener has no virtual hosts")
        if protocol is Protocol.HTTP and listener.l4_routes:
            self.add(where, "l4_routes: an HTTP listener has no stream routes")
        if protocol in (Protocol.TCP, Protocol.UDP) and len(listener.l4_routes) > 1:
            self.add(where, f"l4_routes: a {protocol} listener takes one route")
        if listener.tls is not None:
            cert = listener.tls.default_certificate
            if cert is not None:
                self.certificate_ref(where, "tls.default_certificate", cert, need_key=True)
            if listener.tls.min_version not in TLS_VERSIONS:
                self.add(where, f"tls.min_version: {listener.tls.min_version!r} is not a TLS version")

    def certificate_ref(self, where: str, at: str, cert_id: str, need_key: bool = False, need_ca: bool = False) -> None:
        cert = self.certs.get(cert_id)
        if cert is None:
            self.add(where, f"{at}: certificate {cert_id!r} does not exist")
            return
        if need_key and not (cert.certificate_pem and cert.private_key_pem):
            self.add(where, f"{at}: certificate {cert_id!r} has no certificate chain and key")
        if need_ca and not cert.ca_pem:
            self.add(where, f"{at}: certificate {cert_id!r} has no CA bundle to verify with")

    def virtual_hosts(self, where: str, listener: Listener) -> None:
        claimed: dict[str, str] = {}
        for vhost in listener.virtual_hosts:
            vwhere = f"{where}.virtual_hosts[{vhost.hostnames[0] if vhost.hostnames else ''}]"
            if not vhost.hostnames:
                self.add(vwhere, "hostnames: must not be empty (use '*' for any host)")
            for hostname in vhost.hostnames:
                if hostname != CATCH_ALL and not is_hostname(hostname):
                    self.add(vwhere, f"hostnames: {hostname!r} is not a valid hostname")
                if hostname in claimed:
                    self.add(vwhere, f"hostnames: {hostname!r} is also served by another virtual host")
                claimed[hostname] = vwhere
            if vhost.certificate is not None:
                self.certificate_ref(vwhere, "certificate", vhost.certificate, need_key=True)
            ids: set[str] = set()
            for route in vhost.routes:
                if route.id in ids:
                    self.add(vwhere, f"routes: route id {route.id!r} appears twice")
                ids.add(route.id)
                self.route(route)
        for passthrough in listener.l4_routes:
            for hostname in passthrough.hostnames:
                if hostname in claimed:
                    self.add(passthrough.id, f"hostnames: {hostname!r} is passed through here but also terminated by "
                                       f"a virtual host of listener {listener.name!r}")

    def l4_routes(self, where: str, listener: Listener) -> None:
        for route in listener.l4_routes:
            self.l4_route(listener, route)

    def l4_route(self, listener: Listener, route: L4Route) -> None:
        self.group_ref(route.id, "backend_group", route.backend_group)
        if listener.protocol in (Protocol.TCP, Protocol.UDP) and route.hostnames:
            self.add(route.id, f"hostnames: a {listener.protocol} listener cannot route by SNI")
        if listener.protocol in (Protocol.TLS, Protocol.HTTPS) and not route.hostnames:
            self.add(route.id, "hostnames: a passthrough route needs SNI hostnames")
        for hostname in route.hostnames:
            if not is_hostname(hostname):
                self.add(route.id, f"hostnames: {hostname!r} is not a valid hostname")

    # -- backends -----------------------------------------------------------------------------------------------

    def backend_groups(self) -> None:
        seen: set[str] = set()
        for group in self.config.backend_groups:
            where = f"backend_groups[{group.name}]"
            if not group.name or has_control(group.name):
                self.add(where, "name: must be a non-empty name")
            if group.name in seen:
                self.add(where, "name: duplicate backend group name")
            seen.add(group.name)
            if group.backends and all(b.weight == 0 for b in group.backends):
                self.add(where, "backends: weights are all zero")
            for i, backend in enumerate(group.backends):
                self.backend(where, f"backends[{i}]", backend)
            self.balancing(where, group)

    def backend(self, where: str, at: str, backend: Backend) -> None:
        if backend.weight < 0:
            self.add(where, f"{at}.weight: must be >= 0")
        for j, endpoint in enumerate(backend.endpoints):
            try:
                ipaddress.ip_address(endpoint.address)
            except ValueError:
                self.add(where, f"{at}.endpoints[{j}].address: {endpoint.address!r} is not an IP address")
            if not _port_ok(endpoint.port):
                self.add(where, f"{at}.endpoints[{j}].port: {endpoint.port} is not between 1 and 65535")
        if backend.external_name is not None:
            if not is_hostname(backend.external_name, wildcard=False):
                self.add(where, f"{at}.external_name: {backend.external_name!r} is not a valid DNS name")
            if backend.external_port is None or not _port_ok(backend.external_port):
                self.add(where, f"{at}.external_port: an external name needs a port between 1 and 65535")
            if backend.endpoints:
                self.add(where, f"{at}: an external name and endpoints exclude each other")
        if backend.service is not None and not _port_ok(backend.service.port):
            self.add(where, f"{at}.service.port: {backend.service.port} is not between 1 and 65535")
        if backend.tls is not None:
            if backend.protocol not in (UpstreamProtocol.HTTPS, UpstreamProtocol.GRPCS):
                self.add(where, f"{at}.tls: TLS settings need protocol https or grpcs, not {backend.protocol}")
            self.upstream_tls(where, f"{at}.tls", backend.tls)
        for k, f in enumerate(backend.filters):
            if not isinstance(f, BACKEND_FILTER_TYPES):
                self.add(where, f"{at}.filters[{k}]: only header filters apply to a backend")
                continue
            self.header_ops(where, f"{at}.filters[{k}].set", f.set)
            self.header_ops(where, f"{at}.filters[{k}].add", f.add)
            self.header_names(where, f"{at}.filters[{k}].remove", f.remove)

    def upstream_tls(self, where: str, at: str, tls: UpstreamTLS) -> None:
        if tls.secret is not None:
            self.certificate_ref(where, f"{at}.secret", tls.secret, need_ca=tls.verify)
        elif tls.verify:
            self.add(where, f"{at}.verify: verifying the backend needs a secret with a CA bundle")
        if tls.verify_depth < 0:
            self.add(where, f"{at}.verify_depth: must be >= 0")
        if tls.server_name is not None and not is_hostname(tls.server_name, wildcard=False):
            self.add(where, f"{at}.server_name: {tls.server_name!r} is not a valid hostname")
        for version in tls.protocols:
            if version not in TLS_VERSIONS:
                self.add(where, f"{at}.protocols: {version!r} is not a TLS version")
        if tls.ciphers is not None and not _CIPHERS.match(tls.ciphers):
            self.add(where, f"{at}.ciphers: {tls.ciphers!r} is not an OpenSSL cipher list")

    def balancing(self, where: str, group: BackendGroup) -> None:
        balancing = group.balancing
        if isinstance(balancing, ConsistentHash):
            if not balancing.key.parts:
                self.add(where, "balancing.key: must not be empty")
            self.template(where, "balancing.key", balancing.key)
        elif isinstance(balancing, CookieAffinity):
            self.session_cookie(where, "balancing.cookie", balancing.cookie)

    def session_cookie(self, where: str, at: str, cookie: SessionCookie) -> None:
        if not is_token(cookie.name):
            self.add(where, f"{at}.name: {cookie.name!r} is not a valid cookie name")
        if cookie.path is not None and not is_cookie_path(cookie.path):
            self.add(where, f"{at}.path: {cookie.path!r} must be a path without ';', ',' or spaces")
        if cookie.domain is not None and not is_cookie_domain(cookie.domain):
            self.add(where, f"{at}.domain: {cookie.domain!r} is not a valid cookie domain")
        for name in ("max_age_s", "expires_s"):
            value = getattr(cookie, name)
            if value is not None and value < 0:
                self.add(where, f"{at}.{name}: must be >= 0")

    def certificates(self) -> None:
        seen: set[str] = set()
        for cert in self.config.certificates:
            where = f"certificates[{cert.id}]"
            if cert.id in seen:
                self.add(where, "id: duplicate certificate id")
            seen.add(cert.id)
            if cert.certificate_pem and _PEM_CERT not in cert.certificate_pem:
                self.add(where, "certificate_pem: not a PEM certificate")
            if cert.private_key_pem and "PRIVATE KEY-----" not in cert.private_key_pem:
                self.add(where, "private_key_pem: not a PEM private key")
            if cert.ca_pem and _PEM_CERT not in cert.ca_pem:
                self.add(where, "ca_pem: not a PEM certificate bundle")

    def settings(self) -> None:
        s = self.config.settings
        if s.max_worker_connections < 1:
            self.add("settings", "max_worker_connections: must be >= 1")
        if s.worker_processes is not None and s.worker_processes < 1:
            self.add("settings", "worker_processes: must be >= 1")
        k = s.keepalive
        if k.connections < 0 or k.timeout_ms < 0 or k.requests < 0:
            self.add("settings", "keepalive: values must be >= 0")
        if not is_token(s.forwarded.forwarded_for_header):
            self.add("settings", "forwarded.forwarded_for_header: not a valid HTTP header name")
        self.cidrs("settings", "forwarded.trusted_proxies", s.forwarded.trusted_proxies)

    def run(self) -> list[ValidationError]:
        self.listeners()
        self.backend_groups()
        self.certificates()
        self.settings()
        return self.errors


def _addresses_overlap(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        ia, ib = ipaddress.ip_address(a), ipaddress.ip_address(b)
    except ValueError:
        return False
    return ia.version == ib.version and (ia.is_unspecified or ib.is_unspecified)


def validate(config: RoutingConfig) -> list[ValidationError]:
    """Every problem of ``config``; empty when it is usable."""
    return _Checker(config).run()

