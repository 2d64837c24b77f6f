"""The routing IR: one model that Ingress, ALB and Gateway API are translated into.

Shape::

    RoutingConfig
      listeners ─▶ Listener (address, port, protocol, TLS)
                     virtual_hosts ─▶ VirtualHost (hostnames, certificate)
                                        routes ─▶ Route (match AST, filters, action)   ← evaluation order
                     l4_routes ─▶ L4Route (SNI hostnames → backend group)               ← TLS passthrough, TCP, UDP
      backend_groups ─▶ BackendGroup (balancing) ─▶ Backend (weighted service) ─▶ Endpoint
      certificates ─▶ Certificate (PEM material, referenced by id)
      settings ─▶ Settings (worker and upstream-wide knobs)

Semantics the data plane must implement:

- A request picks one listener by local address and port, then exactly one virtual host by its Host (or SNI)
  with :func:`netplane.routing.precedence.select_virtual_host` rules: an exact hostname, else the most
  specific matching wildcard, else the catch-all ``*``. Virtual hosts never fall through to each other;
  a front door that wants fall-through copies routes (see ``Route.hostname``).
- Inside the virtual host, routes are tried **in tuple order**; the first whose match holds wins. The order is
  computed by the translators with :mod:`netplane.routing.precedence`; the IR only stores it. No match: 404.
- Regular expressions are PCRE as ``ngx.re`` runs them, searched (not anchored) in the value; translators add
  ``^``/``$`` where their API anchors. ``ignore_case`` adds the ``i`` flag.
- Strings in the IR are data. Nothing here is ever pasted into nginx configuration, except ``RawSnippet``, which
  exists only when ``Settings.allow_raw_snippets`` is on (an administrator's decision per instance).

Every type below is a frozen dataclass. ``RoutingConfig.to_data()`` exports plain JSON-able data: each dataclass
becomes an object whose keys are its field names (snake_case), union members carry a ``"type"`` discriminator, enums
become their string values, tuples become lists, ``Template`` becomes a list of parts, and routes carry their
``"id"``. ``to_json()`` serialises that with sorted keys and no whitespace, so equal configurations are equal
bytes. ``validate()`` lists what is wrong with a configuration (see :mod:`netplane.routing.validate`).
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeAlias

import orjson

SCHEMA_VERSION = 1


def _sorted_unique(values: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(sorted(set(values)))


def _freeze_sorted(obj: Any, name: str) -> None:
    # Set-like fields are kept sorted so that equal meaning gives equal objects and equal JSON.
    object.__setattr__(obj, name, _sorted_unique(tuple(getattr(obj, name))))


# ---------------------------------------------------------------------------------------------------------------
# Enumerations


class Protocol(enum.StrEnum):
    """What a listener speaks. HTTPS terminates TLS; TLS only reads SNI and passes the stream through."""

    HTTP = "HTTP"
    HTTPS = "HTTPS"
    TLS = "TLS"
    TCP = "TCP"
    UDP = "UDP"


class WildcardMode(enum.StrEnum):
    """How many labels the ``*`` of ``*.example.com`` stands for.

    Kubernetes Ingress (and ALB) define one label: ``a.example.com`` matches, ``a.b.example.com`` does not.
    Gateway API defines one or more labels. Neither matches ``example.com`` itself.
    """

    ONE_LABEL = "one-label"
    ANY_LABELS = "any-labels"


class PathKind(enum.StrEnum):
    """``prefix`` is Kubernetes' element-wise prefix (``/foo`` matches ``/foo``, ``/foo/``, ``/foo/bar``, never
    ``/foobar``; a trailing ``/`` in the prefix is ignored). ``starts-with`` is a plain character prefix (ALB
    STARTS_WITH, ingress-nginx ImplementationSpecific). ``regex`` is a PCRE search."""

    EXACT = "exact"
    PREFIX = "prefix"
    STARTS_WITH = "starts-with"
    REGEX = "regex"


class StringMatchKind(enum.StrEnum):
    """How a header, query parameter or cookie value is compared. ``present`` ignores the value."""

    EXACT = "exact"
    PREFIX = "prefix"
    SUFFIX = "suffix"
    REGEX = "regex"
    PRESENT = "present"


class VarKind(enum.StrEnum):
    """Request values a template or hash key may refer to. ``header``, ``cookie`` and ``query`` take a name."""

    SOURCE_IP = "source-ip"
    HOST = "host"
    PATH = "path"
    REQUEST_URI = "request-uri"
    METHOD = "method"
    SCHEME = "scheme"
    REQUEST_ID = "request-id"
    MSEC = "msec"
    TIME_ISO8601 = "time-iso8601"
    SERVER_PORT = "server-port"
    HEADER = "header"
    COOKIE = "cookie"
    QUERY = "query"


NAMED_VARS = frozenset({VarKind.HEADER, VarKind.COOKIE, VarKind.QUERY})


class UpstreamProtocol(enum.StrEnum):
    """How the data plane talks to a backend. ``tcp``/``udp`` are for L4 groups (TLS passthrough uses ``tcp``)."""

    HTTP = "http"
    HTTPS = "https"
    H2C = "h2c"
    GRPC = "grpc"
    GRPCS = "grpcs"
    TCP = "tcp"
    UDP = "udp"


class AffinityMode(enum.StrEnum):
    """``balanced`` may move some sessions when endpoints are added; ``persistent`` never does."""

    BALANCED = "balanced"
    PERSISTENT = "persistent"


class SameSite(enum.StrEnum):
    NONE = "None"
    LAX = "Lax"
    STRICT = "Strict"


class RetryOn(enum.StrEnum):
    """Failures after which the next endpoint is tried (status codes are listed separately)."""

    ERROR = "error"
    TIMEOUT = "timeout"
    INVALID_HEADER = "invalid-header"
    NON_IDEMPOTENT = "non-idempotent"


class RateUnit(enum.StrEnum):
    SECOND = "second"
    MINUTE = "minute"


class WafMode(enum.StrEnum):
    """``detection-only`` logs what the rules would block; ``blocking`` denies it; ``off`` turns the engine off
    for a route where an instance-wide WAF would otherwise apply."""

    OFF = "off"
    DETECTION_ONLY = "detection-only"
    BLOCKING = "blocking"


# ---------------------------------------------------------------------------------------------------------------
# Provenance


@dataclass(frozen=True)
class Provenance:
    """Where a route (or canary, or L4 route) came from. Status conditions, metric labels, access-log route ids
    and error reasons hang off it.

    Attributes:
        kind: source kind (``Ingress``, ``HTTPRoute``, ``Rule``, ...).
        namespace, name: the source object.
        rule_index: index of the rule in the source (Ingress ``spec.rules``, HTTPRoute ``spec.rules``).
        match_index: index of the match in that rule (Ingress path, HTTPRoute match).
        role: empty for a route the source spelled out; otherwise what the translator derived it for
            (``default-backend``, ``app-root``, ...), so derived routes get ids of their own.
        created: the source's ``metadata.creationTimestamp`` (RFC 3339, ``Z``); older sources win ties.
    """

    kind: str
    namespace: str
    name: str
    rule_index: int = 0
    match_index: int = 0
    role: str = ""
    created: str = ""

    @property
    def route_id(self) -> str:
        """Stable, readable id: ``<kind>/<namespace>/<name>/<rule>/<match>[#<role>]`` (kind lower-cased).
        Names cannot contain ``/`` or ``#``, so ids never collide across sources."""
        base = f"{self.kind.lower()}/{self.namespace}/{self.name}/{self.rule_index}/{self.match_index}"
        return f"{base}#{self.role}" if self.role else base


# ---------------------------------------------------------------------------------------------------------------
# Templates: request-derived values, as data


@dataclass(frozen=True)
class RequestValue:
    """A value of the request (``kind``) — for ``header``/``cookie``/``query``, the one called ``name``
    (header names compare case-insensitively). Missing values expand to the empty string.

    JSON: ``{"var": kind, "name": name}``.
    """

    kind: VarKind
    name: str = ""


TemplatePart: TypeAlias = str | RequestValue


@dataclass(frozen=True)
class Template:
    """Text with request values spliced in, e.g. ``t=${msec}`` → ``("t=", RequestValue(MSEC))``.

    JSON: a list of parts, each ``{"text": "..."}`` or ``{"var": kind, "name": name}``. The data plane
    concatenates them; nothing is evaluated beyond the listed request values.
    """

    parts: tuple[TemplatePart, ...] = ()

    @classmethod
    def literal(cls, text: str) -> Template:
        return cls((text,) if text else ())

    @classmethod
    def of(cls, kind: VarKind, name: str = "") -> Template:
        return cls((RequestValue(kind, name),))


# ---------------------------------------------------------------------------------------------------------------
# Match AST


@dataclass(frozen=True)
class PathMatch:
    """The request path (normalised, decoded, without the query string — nginx's ``$uri``).

    JSON: ``{"type": "path", "kind": PathKind, "value": str, "ignore_case": bool}``.
    """

    TYPE: ClassVar[str] = "path"
    kind: PathKind
    value: str
    ignore_case: bool = False


@dataclass(frozen=True)
class HostMatch:
    """The request host (port stripped, lower-cased) against an exact or ``*.`` wildcard hostname. Virtual hosts
    select by host already; this predicate exists for front doors whose rules mix hosts in one ordered list
    (ALB). JSON: ``{"type": "host", "hostname": str, "wildcard": WildcardMode}``."""

    TYPE: ClassVar[str] = "host"
    hostname: str
    wildcard: WildcardMode = WildcardMode.ANY_LABELS


@dataclass(frozen=True)
class MethodMatch:
    """The request method is one of ``methods`` (upper case). JSON: ``{"type": "method", "methods": [str]}``."""

    TYPE: ClassVar[str] = "method"
    methods: tuple[str, ...]

    def __post_init__(self) -> None:
        _freeze_sorted(self, "methods")


@dataclass(frozen=True)
class HeaderMatch:
    """A request header (name case-insensitive; several values are joined with ``,``).
    ``invert`` negates the result, including for a missing header.
    JSON: ``{"type": "header", "name", "kind": StringMatchKind, "value", "ignore_case", "invert"}``."""

    TYPE: ClassVar[str] = "header"
    name: str
    kind: StringMatchKind = StringMatchKind.EXACT
    value: str = ""
    ignore_case: bool = False
    invert: bool = False


@dataclass(frozen=True)
class QueryMatch:
    """A query parameter (name case-sensitive; the first occurrence counts). Same fields as ``HeaderMatch``.
    JSON ``"type": "query"``."""

    TYPE: ClassVar[str] = "query"
    name: str
    kind: StringMatchKind = StringMatchKind.EXACT
    value: str = ""
    ignore_case: bool = False
    invert: bool = False


@dataclass(frozen=True)
class CookieMatch:
    """A request cookie (name case-sensitive). Same fields as ``HeaderMatch``. JSON ``"type": "cookie"``."""

    TYPE: ClassVar[str] = "cookie"
    name: str
    kind: StringMatchKind = StringMatchKind.EXACT
    value: str = ""
    ignore_case: bool = False
    invert: bool = False


@dataclass(frozen=True)
class SourceIPMatch:
    """The client address (after trusted X-Forwarded-For processing, see ``ForwardedHeaders``) is inside one of
    ``cidrs``. JSON: ``{"type": "source-ip", "cidrs": [str], "invert": bool}``."""

    TYPE: ClassVar[str] = "source-ip"
    cidrs: tuple[str, ...]
    invert: bool = False

    def __post_init__(self) -> None:
        _freeze_sorted(self, "cidrs")


@dataclass(frozen=True)
class And:
    """All of ``matches`` hold; ``And(())`` matches every request. JSON: ``{"type": "and", "matches": [...]}``."""

    TYPE: ClassVar[str] = "and"
    matches: tuple[Match, ...] = ()


@dataclass(frozen=True)
class Or:
    """At least one of ``matches`` holds (never empty). JSON: ``{"type": "or", "matches": [...]}``."""

    TYPE: ClassVar[str] = "or"
    matches: tuple[Match, ...]


@dataclass(frozen=True)
class Not:
    """``match`` does not hold. JSON: ``{"type": "not", "match": {...}}``."""

    TYPE: ClassVar[str] = "not"
    match: Match


Match: TypeAlias = (PathMatch | HostMatch | MethodMatch | HeaderMatch | QueryMatch | CookieMatch | SourceIPMatch
                    | And | Or | Not)

MATCH_ALL = And(())


# ---------------------------------------------------------------------------------------------------------------
# Filters (applied in tuple order)


@dataclass(frozen=True)
class HeaderOp:
    """One header and its value. JSON: ``{"name": str, "value": Template}``."""

    name: str
    value: Template


@dataclass(frozen=True)
class RequestHeaders:
    """Change the request sent upstream: ``set`` replaces, ``add`` appends a value, ``remove`` deletes.
    JSON: ``{"type": "request-headers", "set": [HeaderOp], "add": [HeaderOp], "remove": [str]}``."""

    TYPE: ClassVar[str] = "request-headers"
    set: tuple[HeaderOp, ...] = ()
    add: tuple[HeaderOp, ...] = ()
    remove: tuple[str, ...] = ()


@dataclass(frozen=True)
class ResponseHeaders:
    """Change the response sent to the client (after the upstream answered, also on data-plane errors).
    Same fields as ``RequestHeaders``; JSON ``"type": "response-headers"``."""

    TYPE: ClassVar[str] = "response-headers"
    set: tuple[HeaderOp, ...] = ()
    add: tuple[HeaderOp, ...] = ()
    remove: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReplaceFullPath:
    """The path becomes ``path``. JSON: ``{"type": "full", "path": str}``."""

    TYPE: ClassVar[str] = "full"
    path: str


@dataclass(frozen=True)
class ReplacePrefixMatch:
    """The part of the path the route's ``prefix``/``starts-with`` path match consumed becomes ``prefix``
    (Gateway API: ``/strip-prefix`` + ``/`` turns ``/strip-prefix/x`` into ``/x``).
    JSON: ``{"type": "prefix", "prefix": str}``."""

    TYPE: ClassVar[str] = "prefix"
    prefix: str


@dataclass(frozen=True)
class RegexRewrite:
    """Rewrite with a PCRE ``pattern`` and a ``substitution`` that may use ``$0``..``$9`` capture groups.

    ``whole_path`` true (nginx ``rewrite``): when the pattern matches, the whole path becomes the expanded
    substitution. False (``ngx.re.sub``): only the first matched part is replaced. The query string is kept.
    JSON: ``{"type": "regex", "pattern", "substitution", "ignore_case", "whole_path"}``."""

    TYPE: ClassVar[str] = "regex"
    pattern: str
    substitution: str
    ignore_case: bool = False
    whole_path: bool = True


PathRewrite: TypeAlias = ReplaceFullPath | ReplacePrefixMatch | RegexRewrite


@dataclass(frozen=True)
class URLRewrite:
    """Rewrite what is sent upstream: the Host header (``hostname``) and/or the path.
    JSON: ``{"type": "url-rewrite", "hostname": str|null, "path": PathRewrite|null}``."""

    TYPE: ClassVar[str] = "url-rewrite"
    hostname: str | None = None
    path: PathRewrite | None = None


@dataclass(frozen=True)
class Cors:
    """Answer CORS preflights and decorate responses. ``allow_origins`` entries are ``*``, ``scheme://host[:port]``
    or ``scheme://*.host``. ``max_age_s`` None leaves ``Access-Control-Max-Age`` out.
    JSON ``"type": "cors"`` with the fields below."""

    TYPE: ClassVar[str] = "cors"
    allow_origins: tuple[str, ...] = ("*",)
    allow_methods: tuple[str, ...] = ("GET", "PUT", "POST", "DELETE", "PATCH", "OPTIONS")
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    allow_credentials: bool = False
    max_age_s: int | None = None

    def __post_init__(self) -> None:
        for name in ("allow_origins", "allow_methods", "allow_headers", "expose_headers"):
            _freeze_sorted(self, name)


@dataclass(frozen=True)
class Hsts:
    """Send ``Strict-Transport-Security: max-age=N[; includeSubDomains][; preload]``, replacing an upstream's.
    Translators attach it only where it is due (HTTPS with a configured certificate).
    JSON ``"type": "hsts"``."""

    TYPE: ClassVar[str] = "hsts"
    max_age_s: int
    include_subdomains: bool = True
    preload: bool = False


@dataclass(frozen=True)
class RequestRate:
    """``limit`` requests per ``unit`` per key, with ``burst`` extra requests served without delay (nginx
    ``limit_req ... burst=B nodelay``). JSON: ``{"limit", "unit": RateUnit, "burst"}``."""

    limit: int
    unit: RateUnit
    burst: int = 0


@dataclass(frozen=True)
class RateLimit:
    """Per-key request rates and concurrent connections; refused requests get ``status_code`` /
    ``connection_status_code``. Clients inside ``allowlist`` are never limited. The key defaults to the
    client address; each route has its own counters (keyed by route id) on each data-plane replica.
    JSON ``"type": "rate-limit"``: ``rates`` [RequestRate], ``connections`` int|null, ``allowlist`` [cidr],
    ``status_code``, ``connection_status_code``, ``key`` Template."""

    TYPE: ClassVar[str] = "rate-limit"
    rates: tuple[RequestRate, ...] = ()
    connections: int | None = None
    allowlist: tuple[str, ...] = ()
    status_code: int = 503
    connection_status_code: int = 503
    key: Template = field(default_factory=lambda: Template.of(VarKind.SOURCE_IP))

    def __post_init__(self) -> None:
        _freeze_sorted(self, "allowlist")


@dataclass(frozen=True)
class ResponseRateLimit:
    """Throttle the response body to ``bytes_per_second`` after the first ``after_bytes``.
    JSON ``"type": "response-rate-limit"``."""

    TYPE: ClassVar[str] = "response-rate-limit"
    bytes_per_second: int
    after_bytes: int = 0


@dataclass(frozen=True)
class Waf:
    """ModSecurity on this route. ``owasp_crs`` loads the OWASP Core Rule Set; ``transaction_id`` names the
    transaction in the audit log; ``raw_rules`` are administrator-permitted ModSecurity directives (only with
    ``Settings.allow_raw_snippets``). JSON ``"type": "waf"``."""

    TYPE: ClassVar[str] = "waf"
    mode: WafMode = WafMode.DETECTION_ONLY
    owasp_crs: bool = False
    request_body_access: bool = True
    transaction_id: Template | None = None
    raw_rules: str = ""


@dataclass(frozen=True)
class SourceIPAccess:
    """Refuse clients with ``status_code`` unless inside ``allow`` (when non-empty) and outside ``deny``.
    JSON ``"type": "source-ip-access"``."""

    TYPE: ClassVar[str] = "source-ip-access"
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    status_code: int = 403

    def __post_init__(self) -> None:
        _freeze_sorted(self, "allow")
        _freeze_sorted(self, "deny")


@dataclass(frozen=True)
class RequestMirror:
    """Send a copy of ``percent`` % of requests to ``backend_group``; its answers are discarded. The copy carries
    ``hostname`` as its Host (None: the request's) and the request body unless ``body`` is false.
    JSON ``"type": "request-mirror"``."""

    TYPE: ClassVar[str] = "request-mirror"
    backend_group: str
    percent: int = 100
    hostname: str | None = None
    body: bool = True


@dataclass(frozen=True)
class RawSnippet:
    """nginx configuration text an administrator allowed for this instance (``Settings.allow_raw_snippets``).
    The only way user text reaches nginx configuration. JSON ``"type": "raw-snippet"``."""

    TYPE: ClassVar[str] = "raw-snippet"
    text: str


Filter: TypeAlias = (RequestHeaders | ResponseHeaders | URLRewrite | Cors | Hsts | RateLimit | ResponseRateLimit
                     | Waf | SourceIPAccess | RequestMirror | RawSnippet)

# Filters a backend (rather than a route) may carry: Gateway API's per-backendRef header modifiers.
BACKEND_FILTER_TYPES = (RequestHeaders, ResponseHeaders)


# ---------------------------------------------------------------------------------------------------------------
# Actions


@dataclass(frozen=True)
class Canary:
    """An alternative backend group that takes some of a route's requests (ingress-nginx canary).

    Decided per request, in this order: session affinity already pointing at one side (when ``sticky``); the
    ``header``: with ``header_value`` an exact match → canary, with ``header_pattern`` a PCRE match → canary,
    otherwise ``always`` → canary and ``never`` → main (other values fall through); the ``cookie``: ``always`` /
    ``never``; finally ``weight`` out of ``weight_total`` at random.
    JSON: the fields below, ``provenance`` as an object.
    """

    backend_group: str
    provenance: Provenance
    weight: int = 0
    weight_total: int = 100
    header: str | None = None
    header_value: str | None = None
    header_pattern: str | None = None
    cookie: str | None = None
    sticky: bool = True


@dataclass(frozen=True)
class Forward:
    """Proxy to ``backend_group`` (or one of ``canaries``). JSON ``{"type": "forward", "backend_group",
    "canaries": [Canary]}``."""

    TYPE: ClassVar[str] = "forward"
    backend_group: str
    canaries: tuple[Canary, ...] = ()


@dataclass(frozen=True)
class Redirect:
    """Answer with a redirect. Unset parts keep the request's: ``scheme``, ``hostname``, ``port`` (None keeps the
    request's port unless the scheme changes, then the scheme's default is used and omitted), ``path`` (a
    ``ReplaceFullPath``/``ReplacePrefixMatch``), ``query`` (None keeps the request's query string, ``""`` drops
    it, anything else replaces it). ``strip_trailing_slash`` removes one ``/`` ending the target path
    (ingress-nginx's HTTPS redirect). JSON ``"type": "redirect"``."""

    TYPE: ClassVar[str] = "redirect"
    status_code: int = 302
    scheme: str | None = None
    hostname: str | None = None
    port: int | None = None
    path: ReplaceFullPath | ReplacePrefixMatch | None = None
    query: str | None = None
    strip_trailing_slash: bool = False


@dataclass(frozen=True)
class DirectResponse:
    """Answer without an upstream (e.g. 503 for a route whose source is invalid).
    JSON ``{"type": "direct-response", "status_code", "body"}``."""

    TYPE: ClassVar[str] = "direct-response"
    status_code: int
    body: str = ""


Action: TypeAlias = Forward | Redirect | DirectResponse


# ---------------------------------------------------------------------------------------------------------------
# Routes


@dataclass(frozen=True)
class Timeouts:
    """Per-route timeouts in milliseconds; None means the data plane's default.

    ``connect_ms``/``send_ms``/``read_ms`` are nginx's per-phase proxy timeouts (ingress-nginx); ``request_ms``
    bounds the whole request including retries and ``backend_request_ms`` each try (Gateway API).
    """

    connect_ms: int | None = None
    send_ms: int | None = None
    read_ms: int | None = None
    request_ms: int | None = None
    backend_request_ms: int | None = None


@dataclass(frozen=True)
class RetryPolicy:
    """Try another endpoint after a failure. ``attempts`` counts every try, the first included (1 = no retry,
    0 = no limit: each endpoint at most once, as nginx's ``proxy_next_upstream_tries 0``);
    ``on`` lists failure kinds and ``status_codes`` upstream answers that count as failures; ``timeout_ms``
    bounds the time spent retrying (None: unbounded); ``backoff_ms`` waits between tries."""

    attempts: int = 1
    on: tuple[RetryOn, ...] = ()
    status_codes: tuple[int, ...] = ()
    timeout_ms: int | None = None
    backoff_ms: int | None = None

    def __post_init__(self) -> None:
        _freeze_sorted(self, "on")
        _freeze_sorted(self, "status_codes")


@dataclass(frozen=True)
class Route:
    """One ordered entry of a virtual host.

    Attributes:
        provenance: the source; ``id`` derives from it.
        match: the match AST; the route applies when it holds.
        action: forward, redirect or direct response.
        filters: applied in order (request side before proxying, response side after).
        hostname: the hostname the source attached this route under (exact, ``*.``-wildcard, or empty for any).
            Equal to the virtual host's for most routes; different when a translator copies a wildcard
            hostname's routes under an exact one. Used for Gateway API hostname precedence and in status.
        priority: an explicit user priority (ALB; lower first); 0 when the front door has none.
        timeouts, retry: upstream behaviour.
        max_body_bytes: largest request body accepted (413 beyond); 0 = unlimited, None = data-plane default.

    JSON: the fields above plus ``"id"``.
    """

    EXPORT_PROPERTIES: ClassVar[tuple[str, ...]] = ("id",)
    provenance: Provenance
    match: Match
    action: Action
    filters: tuple[Filter, ...] = ()
    hostname: str = ""
    priority: int = 0
    timeouts: Timeouts = Timeouts()
    retry: RetryPolicy | None = None
    max_body_bytes: int | None = None

    @property
    def id(self) -> str:
        return self.provenance.route_id


@dataclass(frozen=True)
class VirtualHost:
    """Hostnames served together, with their certificate and ordered routes.

    Attributes:
        hostnames: exact names, ``*.``-wildcards, or ``*`` (any host not claimed by another virtual host).
        routes: evaluation order, first match wins.
        certificate: id of the ``Certificate`` presented for these names on an HTTPS listener (None: the
            listener's default certificate).
        wildcard: what a ``*.`` wildcard in ``hostnames`` matches.
    """

    hostnames: tuple[str, ...]
    routes: tuple[Route, ...] = ()
    certificate: str | None = None
    wildcard: WildcardMode = WildcardMode.ANY_LABELS

    def __post_init__(self) -> None:
        _freeze_sorted(self, "hostnames")


@dataclass(frozen=True)
class L4Route:
    """A stream route: on a TLS (or HTTPS, for passthrough next to termination) listener, connections whose SNI
    matches ``hostnames`` go to ``backend_group`` untouched; on TCP/UDP listeners ``hostnames`` is empty and
    the route takes every connection. ``proxy_protocol`` prepends a PROXY v1 header upstream.
    JSON: the fields plus ``"id"``."""

    EXPORT_PROPERTIES: ClassVar[tuple[str, ...]] = ("id",)
    provenance: Provenance
    backend_group: str
    hostnames: tuple[str, ...] = ()
    wildcard: WildcardMode = WildcardMode.ANY_LABELS
    proxy_protocol: bool = False

    def __post_init__(self) -> None:
        _freeze_sorted(self, "hostnames")

    @property
    def id(self) -> str:
        return self.provenance.route_id


@dataclass(frozen=True)
class ListenerTLS:
    """TLS termination settings. ``default_certificate``: certificate id for SNI names no virtual host claims and
    for clients without SNI (None: the data plane presents its own self-signed certificate, as ingress-nginx
    does). ``min_version``: ``TLSv1.2`` or ``TLSv1.3``."""

    default_certificate: str | None = None
    min_version: str = "TLSv1.2"


@dataclass(frozen=True)
class Listener:
    """A port the data plane opens.

    Attributes:
        name: unique within the configuration (``http``, ``https``, a Gateway listener name, ...).
        port: 1-65535.
        protocol: see ``Protocol``.
        address: local address to bind (``0.0.0.0``, ``::`` or one address).
        tls: termination settings, for HTTPS only.
        virtual_hosts: HTTP and HTTPS only.
        l4_routes: TLS (SNI passthrough), HTTPS (passthrough next to termination), TCP and UDP (one route).
    """

    name: str
    port: int
    protocol: Protocol
    address: str = "0.0.0.0"
    tls: ListenerTLS | None = None
    virtual_hosts: tuple[VirtualHost, ...] = ()
    l4_routes: tuple[L4Route, ...] = ()

    def __post_init__(self) -> None:
        # Virtual hosts are selected by name, never by position: keep them in selection order for readers.
        from netplane.routing.precedence import virtual_host_order

        object.__setattr__(self, "virtual_hosts", tuple(sorted(self.virtual_hosts, key=virtual_host_order)))


# ---------------------------------------------------------------------------------------------------------------
# Backends


@dataclass(frozen=True)
class Endpoint:
    """A ready address of a backend. ``node``/``zone`` come from the EndpointSlice, for topology-aware choices.
    JSON: ``{"address", "port", "node", "zone"}``."""

    address: str
    port: int
    node: str = ""
    zone: str = ""


@dataclass(frozen=True)
class ServiceRef:
    """The Kubernetes Service a backend stands for: ``port`` is the Service port, ``port_name`` its name."""

    namespace: str
    name: str
    port: int
    port_name: str = ""


@dataclass(frozen=True)
class UpstreamTLS:
    """TLS towards the backend (HTTPS / GRPCS).

    Attributes:
        secret: id of a ``Certificate`` whose certificate and key are presented as the client certificate and
            whose ``ca_pem`` verifies the backend (ingress-nginx ``proxy-ssl-secret``); None for neither.
        verify: verify the backend's certificate chain and name.
        verify_depth: chain depth.
        server_name: name to verify and (with ``sni``) to send as SNI; None: the Host of the proxied request.
        sni: send SNI.
        protocols: allowed TLS versions (empty: the data plane's default).
        ciphers: OpenSSL cipher list (None: default).
    """

    secret: str | None = None
    verify: bool = False
    verify_depth: int = 1
    server_name: str | None = None
    sni: bool = False
    protocols: tuple[str, ...] = ()
    ciphers: str | None = None

    def __post_init__(self) -> None:
        _freeze_sorted(self, "protocols")


@dataclass(frozen=True)
class Backend:
    """A weighted member of a backend group: usually one Service port and its ready endpoints.

    Attributes:
        name: display name (``namespace/service:port``), used in metrics and errors.
        weight: share of the group's traffic (0 = none).
        endpoints: ready endpoints; empty means requests for it get 503.
        service: the Service it stands for, if any.
        external_name: a DNS name the data plane resolves instead of ``endpoints`` (ExternalName Services);
            requests go to ``external_port``.
        protocol: how to talk to it.
        tls: TLS settings for ``https``/``grpcs``.
        filters: per-backend request/response header changes (Gateway API backendRef filters).
    """

    name: str
    weight: int = 1
    endpoints: tuple[Endpoint, ...] = ()
    service: ServiceRef | None = None
    external_name: str | None = None
    external_port: int | None = None
    protocol: UpstreamProtocol = UpstreamProtocol.HTTP
    tls: UpstreamTLS | None = None
    filters: tuple[RequestHeaders | ResponseHeaders, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "endpoints", tuple(sorted(set(self.endpoints),
                                                           key=lambda e: (e.address, e.port, e.node, e.zone))))


@dataclass(frozen=True)
class SessionCookie:
    """The affinity cookie. ``secure`` None sets ``Secure`` when the request came over HTTPS. ``HttpOnly`` is
    always set. ``expires_s``/``max_age_s`` are lifetimes in seconds (None: a session cookie)."""

    name: str = "INGRESSCOOKIE"
    path: str | None = None
    domain: str | None = None
    max_age_s: int | None = None
    expires_s: int | None = None
    secure: bool | None = None
    same_site: SameSite | None = None
    conditional_same_site_none: bool = False


@dataclass(frozen=True)
class RoundRobin:
    """Weighted round robin over the group's endpoints. JSON ``{"type": "round-robin"}``."""

    TYPE: ClassVar[str] = "round-robin"


@dataclass(frozen=True)
class ConsistentHash:
    """Consistent hashing of ``key`` over the endpoints; source-IP hash is ``key = ${source-ip}``.
    JSON ``{"type": "consistent-hash", "key": Template}``."""

    TYPE: ClassVar[str] = "consistent-hash"
    key: Template


@dataclass(frozen=True)
class CookieAffinity:
    """Sticky sessions through ``cookie``; ``change_on_failure`` re-pins a client whose endpoint failed.
    JSON ``{"type": "cookie-affinity", "cookie": SessionCookie, "mode": AffinityMode, "change_on_failure"}``."""

    TYPE: ClassVar[str] = "cookie-affinity"
    cookie: SessionCookie = SessionCookie()
    mode: AffinityMode = AffinityMode.BALANCED
    change_on_failure: bool = False


Balancing: TypeAlias = RoundRobin | ConsistentHash | CookieAffinity


@dataclass(frozen=True)
class BackendGroup:
    """What routes forward to, by ``name``: weighted backends and how to balance over them.
    JSON: ``{"name", "backends": [Backend], "balancing": Balancing}``."""

    name: str
    backends: tuple[Backend, ...] = ()
    balancing: Balancing = RoundRobin()


# ---------------------------------------------------------------------------------------------------------------
# Certificates and settings


@dataclass(frozen=True)
class Certificate:
    """PEM material from a Secret, referenced by ``id`` (``namespace/name``).

    ``certificate_pem``/``private_key_pem``: the chain and key (``tls.crt``/``tls.key``); ``ca_pem``: a CA
    bundle (``ca.crt``) for verifying peers. ``to_data(include_private_keys=False)`` blanks the key.
    """

    id: str
    namespace: str
    name: str
    certificate_pem: str = ""
    private_key_pem: str = ""
    ca_pem: str = ""


@dataclass(frozen=True)
class Keepalive:
    """Idle upstream connections kept per worker (``connections``), how long (``timeout_ms``) and for how many
    requests each (``requests``)."""

    connections: int = 320
    timeout_ms: int = 60_000
    requests: int = 10_000


@dataclass(frozen=True)
class ForwardedHeaders:
    """X-Forwarded-* handling. ``trust_incoming``: keep the X-Forwarded-* a client sent (behind another proxy);
    otherwise they are replaced with what the data plane saw. ``compute_full_forwarded_for``: append to
    X-Forwarded-For instead of replacing it. ``trusted_proxies``: peers whose ``forwarded_for_header`` gives
    the client address."""

    trust_incoming: bool = False
    compute_full_forwarded_for: bool = False
    forwarded_for_header: str = "X-Forwarded-For"
    trusted_proxies: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _freeze_sorted(self, "trusted_proxies")


@dataclass(frozen=True)
class Settings:
    """Instance-wide knobs. ``max_worker_connections``: nginx ``worker_connections``; ``worker_processes``:
    None = one per CPU; ``allow_raw_snippets``: the administrator allowed ``RawSnippet`` / ``Waf.raw_rules``;
    ``access_log``: the data plane writes one access-log line per request."""

    max_worker_connections: int = 16384
    worker_processes: int | None = None
    keepalive: Keepalive = Keepalive()
    forwarded: ForwardedHeaders = ForwardedHeaders()
    allow_raw_snippets: bool = False
    access_log: bool = True


# ---------------------------------------------------------------------------------------------------------------
# The whole configuration


@dataclass(frozen=True)
class RoutingConfig:
    """Everything one data-plane instance serves.

    JSON (``to_data``)::

        {"version": 1,
         "listeners": [Listener],          # sorted by (port, address, name)
         "backend_groups": [BackendGroup], # sorted by name
         "certificates": [Certificate],    # sorted by id
         "settings": Settings}
    """

    listeners: tuple[Listener, ...] = ()
    backend_groups: tuple[BackendGroup, ...] = ()
    certificates: tuple[Certificate, ...] = ()
    settings: Settings = Settings()

    def __post_init__(self) -> None:
        object.__setattr__(self, "listeners", tuple(sorted(self.listeners, key=lambda x: (x.port, x.address,
                                                                                          x.name))))
        object.__setattr__(self, "backend_groups", tuple(sorted(self.backend_groups, key=lambda g: g.name)))
        object.__setattr__(self, "certificates", tuple(sorted(self.certificates, key=lambda c: c.id)))

    def backend_group(self, name: str) -> BackendGroup | None:
        return next((g for g in self.backend_groups if g.name == name), None)

    def certificate(self, cert_id: str) -> Certificate | None:
        return next((c for c in self.certificates if c.id == cert_id), None)

    def validate(self) -> list[tuple[str, str]]:
        """``(where, reason)`` for everything wrong; empty when the configuration is usable."""
        from netplane.routing.validate import validate

        return [(e.where, e.reason) for e in validate(self)]

    def to_data(self, *, include_private_keys: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = export(self)
        data["version"] = SCHEMA_VERSION
        if not include_private_keys:
            for cert in data["certificates"]:
                cert["private_key_pem"] = ""
        return data

    def to_json(self, *, include_private_keys: bool = True) -> str:
        """Canonical JSON: sorted keys, no whitespace, UTF-8."""
        return orjson.dumps(self.to_data(include_private_keys=include_private_keys),
                            option=orjson.OPT_SORT_KEYS).decode()

    def digest(self) -> str:
        """SHA-256 of the canonical JSON, to tell configurations apart cheaply."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()


def export(obj: Any) -> Any:
    """Plain data for any IR value, following the rules in the module docstring."""
    if isinstance(obj, Template):
        return [{"text": p} if isinstance(p, str) else export(p) for p in obj.parts]
    if isinstance(obj, RequestValue):
        return {"var": obj.kind.value, "name": obj.name}
    if isinstance(obj, enum.Enum):
        return obj.value
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out: dict[str, Any] = {f.name: export(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
        kind = getattr(type(obj), "TYPE", None)
        if kind is not None:
            out["type"] = kind
        for prop in getattr(type(obj), "EXPORT_PROPERTIES", ()):
            out[prop] = getattr(obj, prop)
        return out
    if isinstance(obj, tuple | list):
        return [export(v) for v in obj]
    return obj
