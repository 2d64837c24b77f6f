"""ingress-nginx annotations (``nginx.ingress.kubernetes.io/...``), parsed and validated into typed values.

Names, values and defaults are ingress-nginx's. Every value is parsed; a bad one is an error naming the annotation
and the reason, in Kubernetes' field-error form::

    metadata.annotations[nginx.ingress.kubernetes.io/limit-rps]: Invalid value: "x": must be a positive integer

Admission refuses an Ingress with errors; translation turns its routes into 503 answers rather than run them
without the protection they asked for. Annotations under the prefix that netplane does not implement are
warnings. Nothing a user writes becomes nginx or Lua text: values become IR data (templates, header operations,
regexes checked for PCRE), except a snippet on an instance whose administrator enabled raw snippets.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from netplane.api.errors import FieldError, invalid
from netplane.routing.ingress.nginx_syntax import SyntaxProblem, parse_header_snippet, parse_template
from netplane.routing.ingress.settings import parse_next_upstream
from netplane.routing.ingress.values import (
    SAFE_PATH,
    parse_bool,
    parse_cidrs,
    parse_header_names,
    parse_hostname,
    parse_int,
    parse_options,
    parse_path,
    parse_reference,
    parse_seconds,
    parse_size,
    parse_visible,
    split_list,
)
from netplane.routing.ir import (
    AffinityMode,
    Cors,
    Redirect,
    ReplaceFullPath,
    RequestValue,
    ResponseHeaders,
    RetryOn,
    SameSite,
    SessionCookie,
    Template,
    UpstreamProtocol,
    WafMode,
)
from netplane.routing.regex import pcre_problems
from netplane.routing.validate import is_cookie_domain, is_cookie_path, is_hostname, is_origin, is_token

PREFIX = "nginx.ingress.kubernetes.io"
RAW_SNIPPETS_HINT = "raw snippets are disabled on this instance (allow-snippet-annotations)"


# ---------------------------------------------------------------------------------------------------------------
# Typed results


@dataclass(frozen=True)
class AffinitySpec:
    """``affinity: cookie`` and its ``session-cookie-*`` / ``affinity-*`` companions."""

    cookie: SessionCookie
    mode: AffinityMode = AffinityMode.BALANCED
    change_on_failure: bool = False


@dataclass(frozen=True)
class CanarySpec:
    """A canary Ingress's traffic-shaping settings (``canary: "true"``)."""

    weight: int = 0
    weight_total: int = 100
    header: str | None = None
    header_value: str | None = None
    header_pattern: str | None = None
    cookie: str | None = None


@dataclass(frozen=True)
class RateLimitSpec:
    """``limit-*``: request rates per client address, bursts of ``rate * burst_multiplier``, concurrent
    connections, addresses exempt, and response bandwidth (KiB/s, after KiB)."""

    rps: int | None = None
    rpm: int | None = None
    connections: int | None = None
    burst_multiplier: int = 5
    allowlist: tuple[str, ...] = ()
    response_rate_kib: int = 0
    response_rate_after_kib: int = 0


@dataclass(frozen=True)
class ModSecuritySpec:
    """``enable-modsecurity`` & co. None means "as the instance says" (ConfigMap ``enable-modsecurity``)."""

    enabled: bool | None = None
    owasp_crs: bool | None = None
    transaction_id: Template | None = None
    mode: WafMode | None = None
    request_body_access: bool | None = None
    raw_rules: str = ""


@dataclass(frozen=True)
class ProxySSLSpec:
    """``proxy-ssl-*``: TLS towards HTTPS/GRPCS backends."""

    secret: tuple[str, str] | None = None
    verify: bool = False
    verify_depth: int = 1
    name: str | None = None
    server_name: bool = False
    protocols: tuple[str, ...] = ()
    ciphers: str | None = None


@dataclass(frozen=True)
class MirrorSpec:
    """``mirror-target`` (an http URL whose host is a Service name or an IP address) with ``mirror-host`` and
    ``mirror-request-body``. The copy always carries the request's own URI (ingress-nginx's ``$request_uri``)."""

    host: str  # the target URL's host: an IP address or a Service's DNS name, resolved by the translator
    port: int = 80
    hostname: str = ""  # the copy's Host header: mirror-host, else the target's host (as ingress-nginx)
    body: bool = True


@dataclass(frozen=True)
class IngressAnnotations:
    """Everything the annotations of one Ingress say, with ingress-nginx's defaults where absent (None: the
    instance default applies)."""

    connect_timeout_s: int | None = None
    send_timeout_s: int | None = None
    read_timeout_s: int | None = None
    next_upstream: tuple[tuple[RetryOn, ...], tuple[int, ...]] | None = None
    next_upstream_tries: int | None = None
    next_upstream_timeout_s: int | None = None
    body_size: int | None = None
    affinity: AffinitySpec | None = None
    affinity_canary_sticky: bool = True
    upstream_hash_by: Template | None = None
    response_headers: ResponseHeaders | None = None
    raw_snippet: str | None = None
    rewrite_target: str | None = None
    use_regex: bool = False
    app_root: str | None = None
    ssl_redirect: bool | None = None
    force_ssl_redirect: bool = False
    preserve_trailing_slash: bool = False
    rate_limit: RateLimitSpec | None = None
    modsecurity: ModSecuritySpec | None = None
    x_forwarded_prefix: str | None = None
    backend_protocol: UpstreamProtocol = UpstreamProtocol.HTTP
    proxy_ssl: ProxySSLSpec | None = None
    ssl_passthrough: bool = False
    canary: CanarySpec | None = None
    cors: Cors | None = None
    redirect: Redirect | None = None
    allow_source_range: tuple[str, ...] = ()
    deny_source_range: tuple[str, ...] = ()
    upstream_vhost: str | None = None
    service_upstream: bool = False
    mirror: MirrorSpec | None = None


@dataclass(frozen=True)
class AnnotationPolicy:
    """What the instance allows: raw snippets (ConfigMap ``allow-snippet-annotations``) and SSL passthrough
    (ingress-nginx's ``--enable-ssl-passthrough``)."""

    allow_raw_snippets: bool = False
    enable_ssl_passthrough: bool = False
    prefix: str = PREFIX


@dataclass(frozen=True)
class ParsedAnnotations:
    values: IngressAnnotations
    errors: tuple[FieldError, ...] = ()
    warnings: tuple[str, ...] = ()
    present: frozenset[str] = field(default_factory=frozenset)


# ---------------------------------------------------------------------------------------------------------------
# Value parsers (value → typed value, or SyntaxProblem)


def _rewrite_target(value: str) -> str:
    """A path that may use capture groups ``$1``..``$9`` (``${1}``); no other ``$``."""
    if not value.startswith("/"):
        raise SyntaxProblem("must be a path starting with '/'")
    plain = value
    for i in range(10):
        plain = plain.replace(f"${{{i}}}", "").replace(f"${i}", "")
    if "$" in plain:
        raise SyntaxProblem("only capture group references ($1..$9) may follow '$'")
    if not SAFE_PATH.match(plain if plain.startswith("/") else "/" + plain):
        raise SyntaxProblem("must be a path made of letters, digits, -._~/:%@+!*=& and $1..$9")
    return value


def _cookie_name(value: str) -> str:
    if not is_token(value):
        raise SyntaxProblem("must be a valid cookie name (letters, digits and !#$%&'*+-.^_`|~)")
    return value


def _header_name(value: str) -> str:
    if not is_token(value):
        raise SyntaxProblem("must be a valid HTTP header name")
    return value


def _cookie_path(value: str) -> str:
    if not is_cookie_path(value):
        raise SyntaxProblem("must be a path starting with '/' without ';', ',' or spaces")
    return value


def _cookie_domain(value: str) -> str:
    if not is_cookie_domain(value.lower()):
        raise SyntaxProblem("must be a DNS domain, optionally starting with '.'")
    return value.lower()


def _regex(value: str) -> str:
    problems = pcre_problems(value)
    if problems:
        raise SyntaxProblem(problems[0])
    return value


def _backend_protocol(value: str) -> UpstreamProtocol:
    upper = value.upper()
    if upper in ("AUTO_HTTP", "FCGI"):
        raise SyntaxProblem(f"{upper} is not supported by netplane (supported: HTTP, HTTPS, GRPC, GRPCS)")
    return UpstreamProtocol(parse_options(value, ("HTTP", "HTTPS", "GRPC", "GRPCS"), ignore_case=True).lower())


def _on_off(value: str) -> bool:
    return parse_options(value, ("on", "off")) == "on"


def _ssl_protocols(value: str) -> tuple[str, ...]:
    words = value.split()
    if not words or any(w not in ("TLSv1.2", "TLSv1.3") for w in words):
        raise SyntaxProblem("must be TLSv1.2 and/or TLSv1.3, separated by spaces")
    return tuple(words)


def _ciphers(value: str) -> str:
    if not all(c.isalnum() or c in "+:_-!" for c in value) or not value.isascii():
        raise SyntaxProblem("must be an OpenSSL cipher list (letters, digits and +:_-!)")
    return value


def _hash_key(value: str) -> Template:
    template = parse_template(value)
    if not any(isinstance(p, RequestValue) for p in template.parts):
        raise SyntaxProblem("must refer to at least one request variable, e.g. $remote_addr or $http_x_user")
    return template


def _load_balance(value: str) -> str:
    if value == "ewma":
        raise SyntaxProblem("ewma is not supported by netplane (supported: round_robin)")
    return parse_options(value, ("round_robin",))


def _samesite(value: str) -> SameSite:
    return SameSite(parse_options(value, ("None", "Lax", "Strict"), ignore_case=True))


def _origins(value: str) -> tuple[str, ...]:
    origins = split_list(value)
    for origin in origins:
        if not is_origin(origin.lower()):
            raise SyntaxProblem(f"{origin!r} is not '*' or scheme://host[:port]")
    if not origins:
        raise SyntaxProblem("must list at least one origin")
    return tuple(o.lower() for o in origins)


def _methods(value: str) -> tuple[str, ...]:
    methods = split_list(value)
    for method in methods:
        if not is_token(method):
            raise SyntaxProblem(f"{method!r} is not an HTTP method")
    return tuple(m.upper() for m in methods)


def _cors_headers(value: str) -> tuple[str, ...]:
    return ("*",) if value.strip() == "*" else parse_header_names(value)


def _redirect_url(value: str) -> tuple[str, str, int | None, str, str]:
    """``scheme://host[:port]/path[?query]`` → its parts."""
    if any(c in value for c in " \"'\\<>`") or not value.isascii():
        raise SyntaxProblem("must be a URL without spaces, quotes or backslashes")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise SyntaxProblem("must be an absolute http or https URL") from None
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not is_hostname(host, wildcard=False):
        raise SyntaxProblem("must be an absolute http or https URL")
    if parts.fragment or "$" in value:
        raise SyntaxProblem("must not contain a fragment or nginx variables")
    path = parts.path or "/"
    if not SAFE_PATH.match(path):
        raise SyntaxProblem("has a path with characters other than letters, digits and -._~/:%@+!*=&")
    return parts.scheme, host, port, path, parts.query


REQUEST_URI = "$request_uri"


def _mirror_target(value: str) -> tuple[str, int]:
    """``http://host[:port]`` optionally followed by ``$request_uri`` or ``/$request_uri`` → (host, port)."""
    base = value
    for suffix in ("/" + REQUEST_URI, REQUEST_URI):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    if "$" in base:
        raise SyntaxProblem("may use no nginx variable but a final $request_uri (the copy always carries the "
                            "request's URI)")
    if any(c in base for c in " \"'\\<>`") or not base.isascii():
        raise SyntaxProblem("must be a URL without spaces, quotes or backslashes")
    try:
        parts = urlsplit(base)
        port = parts.port
    except ValueError:
        raise SyntaxProblem("must be an http URL") from None
    if parts.scheme == "https":
        raise SyntaxProblem("https targets are not supported: copies are sent over plain HTTP")
    host = (parts.hostname or "").lower()
    if parts.scheme != "http" or not host or parts.username is not None:
        raise SyntaxProblem("must be an http URL: http://<service or IP address>[:port][$request_uri]")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise SyntaxProblem("may have no path or query of its own: the copy always carries the request's URI")
    try:
        host = str(ipaddress.ip_address(host))
    except ValueError:
        if not is_hostname(host, wildcard=False):
            raise SyntaxProblem(f"{host!r} is not a Service name or an IP address") from None
    return host, port or 80


def _redirect_code(value: str) -> int:
    return int(parse_options(value, ("301", "302", "303", "307", "308")))


_PARSERS: dict[str, Callable[[str], Any]] = {
    "proxy-connect-timeout": parse_seconds,
    "proxy-send-timeout": parse_seconds,
    "proxy-read-timeout": parse_seconds,
    "proxy-next-upstream": parse_next_upstream,
    "proxy-next-upstream-tries": parse_int,
    "proxy-next-upstream-timeout": lambda v: parse_seconds(v, minimum=0),
    "proxy-body-size": parse_size,
    "affinity": lambda v: parse_options(v, ("cookie",)),
    "affinity-mode": lambda v: AffinityMode(parse_options(v, ("balanced", "persistent"))),
    "affinity-canary-behavior": lambda v: parse_options(v, ("sticky", "legacy")),
    "session-cookie-name": _cookie_name,
    "session-cookie-path": _cookie_path,
    "session-cookie-domain": _cookie_domain,
    "session-cookie-expires": parse_int,
    "session-cookie-max-age": parse_int,
    "session-cookie-samesite": _samesite,
    "session-cookie-conditional-samesite-none": parse_bool,
    "session-cookie-secure": parse_bool,
    "session-cookie-change-on-failure": parse_bool,
    "load-balance": _load_balance,
    "upstream-hash-by": _hash_key,
    "rewrite-target": _rewrite_target,
    "use-regex": parse_bool,
    "app-root": parse_path,
    "ssl-redirect": parse_bool,
    "force-ssl-redirect": parse_bool,
    "preserve-trailing-slash": parse_bool,
    "limit-rps": lambda v: parse_int(v, minimum=1),
    "limit-rpm": lambda v: parse_int(v, minimum=1),
    "limit-connections": lambda v: parse_int(v, minimum=1),
    "limit-burst-multiplier": lambda v: parse_int(v, minimum=1),
    "limit-allowlist": parse_cidrs,
    "limit-rate": parse_int,
    "limit-rate-after": parse_int,
    "enable-modsecurity": parse_bool,
    "enable-owasp-core-rules": parse_bool,
    "modsecurity-transaction-id": parse_template,
    "x-forwarded-prefix": parse_path,
    "backend-protocol": _backend_protocol,
    "proxy-ssl-secret": parse_reference,
    "proxy-ssl-verify": _on_off,
    "proxy-ssl-verify-depth": parse_int,
    "proxy-ssl-name": parse_hostname,
    "proxy-ssl-server-name": _on_off,
    "proxy-ssl-protocols": _ssl_protocols,
    "proxy-ssl-ciphers": _ciphers,
    "ssl-passthrough": parse_bool,
    "canary": parse_bool,
    "canary-weight": parse_int,
    "canary-weight-total": lambda v: parse_int(v, minimum=1),
    "canary-by-header": _header_name,
    "canary-by-header-value": lambda v: parse_visible(v, "header value"),
    "canary-by-header-pattern": _regex,
    "canary-by-cookie": _cookie_name,
    "enable-cors": parse_bool,
    "cors-allow-origin": _origins,
    "cors-allow-methods": _methods,
    "cors-allow-headers": _cors_headers,
    "cors-expose-headers": _cors_headers,
    "cors-allow-credentials": parse_bool,
    "cors-max-age": parse_int,
    "permanent-redirect": _redirect_url,
    "permanent-redirect-code": _redirect_code,
    "temporal-redirect": _redirect_url,
    "temporal-redirect-code": _redirect_code,
    "allowlist-source-range": parse_cidrs,
    "denylist-source-range": parse_cidrs,
    "upstream-vhost": parse_hostname,
    "service-upstream": parse_bool,
    "mirror-target": _mirror_target,
    "mirror-host": parse_hostname,
    "mirror-request-body": _on_off,
}

# Older names ingress-nginx still reads when the new one is absent.
ALIASES = {"limit-whitelist": "limit-allowlist", "whitelist-source-range": "allowlist-source-range"}
SNIPPETS = ("configuration-snippet", "modsecurity-snippet")
REFUSED_SNIPPETS = ("server-snippet", "stream-snippet", "auth-snippet")
SUPPORTED = frozenset([*_PARSERS, *ALIASES, *SNIPPETS])

_CORS_DEFAULT_HEADERS = ("DNT", "Keep-Alive", "User-Agent", "X-Requested-With", "If-Modified-Since",
                         "Cache-Control", "Content-Type", "Range", "Authorization")
_MODSEC_DIRECTIVES = {"secruleengine": ("On", "Off", "DetectionOnly"), "secrequestbodyaccess": ("On", "Off")}


def _modsecurity_snippet(text: str) -> tuple[WafMode | None, bool | None]:
    """The two ModSecurity switches a snippet may set without raw snippets."""
    mode: WafMode | None = None
    body: bool | None = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        words = line.split()
        allowed = _MODSEC_DIRECTIVES.get(words[0].lower())
        if allowed is None or len(words) != 2 or words[1] not in allowed:
            raise SyntaxProblem(f"only 'SecRuleEngine On|Off|DetectionOnly' and 'SecRequestBodyAccess On|Off' are "
                                f"allowed, not {line!r}")
        if words[0].lower() == "secruleengine":
            mode = {"On": WafMode.BLOCKING, "Off": WafMode.OFF, "DetectionOnly": WafMode.DETECTION_ONLY}[words[1]]
        else:
            body = words[1] == "On"
    return mode, body


# ---------------------------------------------------------------------------------------------------------------
# Assembly


class _Collector:
    def __init__(self, raw: Mapping[str, Any], policy: AnnotationPolicy) -> None:
        self.policy = policy
        self.raw: dict[str, str] = {}
        self.values: dict[str, Any] = {}
        self.errors: list[FieldError] = []
        self.warnings: list[str] = []
        prefix = policy.prefix + "/"
        for key, value in sorted(raw.items(), key=lambda item: str(item[0])):
            if not isinstance(key, str) or not key.startswith(prefix):
                continue
            short = key[len(prefix):]
            if not isinstance(value, str):
                self.errors.append(invalid(self.field(short), value, "must be a string"))
                continue
            if value.strip():
                self.raw[short] = value

    def field(self, short: str) -> str:
        return f"metadata.annotations[{self.policy.prefix}/{short}]"

    def error(self, short: str, reason: str) -> None:
        self.errors.append(invalid(self.field(short), self.raw.get(short, ""), reason))

    def warn(self, short: str, reason: str) -> None:
        self.warnings.append(f"{self.field(short)}: {reason}")

    def get(self, short: str, default: Any = None) -> Any:
        return self.values.get(short, default)

    def has(self, *shorts: str) -> bool:
        return any(s in self.values for s in shorts)

    def parse(self) -> None:
        for alias, canonical in ALIASES.items():
            if alias in self.raw and canonical not in self.raw:
                self._parse_one(alias, _PARSERS[canonical], canonical)
        for short, value in self.raw.items():
            if short in _PARSERS:
                self._parse_one(short, _PARSERS[short], short)
            elif short in SNIPPETS:
                self._snippet(short, value)
            elif short in REFUSED_SNIPPETS:
                self.error(short, RAW_SNIPPETS_HINT if not self.policy.allow_raw_snippets else
                           "is not supported by netplane (configuration-snippet is)")
            elif short not in ALIASES:
                self.warn(short, "annotation is not supported by netplane and has no effect")

    def _parse_one(self, short: str, parse: Callable[[str], Any], store_as: str) -> None:
        value = self.raw[short]
        try:
            self.values[store_as] = parse(value.strip())
        except SyntaxProblem as problem:
            self.error(short, str(problem))

    def _snippet(self, short: str, value: str) -> None:
        try:
            if short == "configuration-snippet":
                self.values[short] = parse_header_snippet(value)
            else:
                self.values[short] = _modsecurity_snippet(value)
        except SyntaxProblem as problem:
            if self.policy.allow_raw_snippets:
                self.values[short + "#raw"] = value
            else:
                self.error(short, f"{problem}; {RAW_SNIPPETS_HINT}")

    # -- groups -------------------------------------------------------------------------------------------------

    def affinity(self) -> AffinitySpec | None:
        cookie_keys = [k for k in self.values if k.startswith("session-cookie-") or k == "affinity-mode"]
        if not self.has("affinity"):
            for key in cookie_keys:
                self.warn(key, "has no effect without affinity: cookie")
            return None
        if self.has("upstream-hash-by"):
            self.warn("upstream-hash-by", "has no effect: cookie affinity takes precedence")
        secure = self.get("session-cookie-secure")
        path = self.get("session-cookie-path")
        if path is None and self.get("use-regex"):
            self.warn("affinity", "session-cookie-path should be set when use-regex is on; the cookie path is /")
        return AffinitySpec(
            cookie=SessionCookie(
                name=self.get("session-cookie-name", "INGRESSCOOKIE"), path=path,
                domain=self.get("session-cookie-domain"), max_age_s=self.get("session-cookie-max-age"),
                expires_s=self.get("session-cookie-expires"), secure=True if secure else None,
                same_site=self.get("session-cookie-samesite"),
                conditional_same_site_none=self.get("session-cookie-conditional-samesite-none", False)),
            mode=self.get("affinity-mode", AffinityMode.BALANCED),
            change_on_failure=self.get("session-cookie-change-on-failure", False))

    def canary(self) -> CanarySpec | None:
        others = [k for k in self.raw if k.startswith("canary-")]
        if not self.get("canary"):
            if others and self.field("canary") not in [e.field for e in self.errors]:
                self.error("canary", f"{', '.join(others)} set but canary is not enabled")
            return None
        spec = CanarySpec(weight=self.get("canary-weight", 0), weight_total=self.get("canary-weight-total", 100),
                          header=self.get("canary-by-header"), header_value=self.get("canary-by-header-value"),
                          header_pattern=self.get("canary-by-header-pattern"), cookie=self.get("canary-by-cookie"))
        if spec.weight > spec.weight_total:
            self.error("canary-weight", f"must not exceed canary-weight-total ({spec.weight_total})")
        if (spec.header_value or spec.header_pattern) and not spec.header:
            short = "canary-by-header-value" if spec.header_value else "canary-by-header-pattern"
            self.error(short, "needs canary-by-header")
        if spec.header_value and spec.header_pattern:
            self.warn("canary-by-header-pattern", "has no effect: canary-by-header-value takes precedence")
        return spec

    def rate_limit(self) -> RateLimitSpec | None:
        keys = ("limit-rps", "limit-rpm", "limit-connections", "limit-rate", "limit-rate-after")
        if not self.has(*keys):
            for key in ("limit-burst-multiplier", "limit-allowlist"):
                if self.has(key):
                    self.warn(key, "has no effect without limit-rps, limit-rpm or limit-connections")
            return None
        if self.has("limit-burst-multiplier") and not self.has("limit-rps", "limit-rpm"):
            self.warn("limit-burst-multiplier", "has no effect without limit-rps or limit-rpm")
        return RateLimitSpec(rps=self.get("limit-rps"), rpm=self.get("limit-rpm"),
                             connections=self.get("limit-connections"),
                             burst_multiplier=self.get("limit-burst-multiplier", 5),
                             allowlist=self.get("limit-allowlist", ()),
                             response_rate_kib=self.get("limit-rate", 0),
                             response_rate_after_kib=self.get("limit-rate-after", 0))

    def modsecurity(self) -> ModSecuritySpec | None:
        keys = ("enable-modsecurity", "enable-owasp-core-rules", "modsecurity-transaction-id", "modsecurity-snippet",
                "modsecurity-snippet#raw")
        if not self.has(*keys):
            return None
        mode, body = self.get("modsecurity-snippet", (None, None))
        return ModSecuritySpec(enabled=self.get("enable-modsecurity"), owasp_crs=self.get("enable-owasp-core-rules"),
                               transaction_id=self.get("modsecurity-transaction-id"), mode=mode,
                               request_body_access=body, raw_rules=self.get("modsecurity-snippet#raw", ""))

    def proxy_ssl(self) -> ProxySSLSpec | None:
        keys = [k for k in self.values if k.startswith("proxy-ssl-")]
        if not keys:
            return None
        protocol = self.get("backend-protocol", UpstreamProtocol.HTTP)
        if protocol not in (UpstreamProtocol.HTTPS, UpstreamProtocol.GRPCS):
            for key in keys:
                self.warn(key, "has no effect unless backend-protocol is HTTPS or GRPCS")
        spec = ProxySSLSpec(secret=self.get("proxy-ssl-secret"), verify=self.get("proxy-ssl-verify", False),
                            verify_depth=self.get("proxy-ssl-verify-depth", 1), name=self.get("proxy-ssl-name"),
                            server_name=self.get("proxy-ssl-server-name", False),
                            protocols=self.get("proxy-ssl-protocols", ()), ciphers=self.get("proxy-ssl-ciphers"))
        if spec.verify and spec.secret is None:
            self.error("proxy-ssl-verify", "needs proxy-ssl-secret (its ca.crt verifies the backend)")
        return spec

    def cors(self) -> Cors | None:
        cors_keys = [k for k in self.values if k.startswith("cors-")]
        if not self.get("enable-cors"):
            for key in cors_keys:
                self.warn(key, "has no effect without enable-cors")
            return None
        return Cors(allow_origins=self.get("cors-allow-origin", ("*",)),
                    allow_methods=self.get("cors-allow-methods", ("GET", "PUT", "POST", "DELETE", "PATCH",
                                                                  "OPTIONS")),
                    allow_headers=self.get("cors-allow-headers", _CORS_DEFAULT_HEADERS),
                    expose_headers=self.get("cors-expose-headers", ()),
                    allow_credentials=self.get("cors-allow-credentials", True),
                    max_age_s=self.get("cors-max-age", 1_728_000))

    def redirect(self) -> Redirect | None:
        if self.has("permanent-redirect") and self.has("temporal-redirect"):
            self.warn("temporal-redirect", "has no effect: permanent-redirect takes precedence")
        for short, default_code in (("permanent-redirect", 301), ("temporal-redirect", 302)):
            if not self.has(short):
                continue
            scheme, host, port, path, query = self.get(short)
            return Redirect(status_code=self.get(f"{short}-code", default_code), scheme=scheme, hostname=host,
                            port=port, path=ReplaceFullPath(path), query=query)
        return None

    def mirror(self) -> MirrorSpec | None:
        if not self.has("mirror-target"):
            for key in ("mirror-host", "mirror-request-body"):
                if self.has(key):
                    self.warn(key, "has no effect without mirror-target")
            return None
        host, port = self.get("mirror-target")
        return MirrorSpec(host, port, self.get("mirror-host", host), self.get("mirror-request-body", True))

    def passthrough(self) -> bool:
        enabled = bool(self.get("ssl-passthrough", False))
        if enabled and not self.policy.enable_ssl_passthrough:
            self.error("ssl-passthrough", "SSL passthrough is not enabled on this instance (enable-ssl-passthrough)")
        return enabled

    def build(self) -> IngressAnnotations:
        if self.has("x-forwarded-prefix") and not self.has("rewrite-target"):
            self.warn("x-forwarded-prefix", "has no effect without rewrite-target (as in ingress-nginx)")
        timeouts = {name: self.get(f"proxy-{name}-timeout") for name in ("connect", "send", "read")}
        return IngressAnnotations(
            connect_timeout_s=timeouts["connect"], send_timeout_s=timeouts["send"], read_timeout_s=timeouts["read"],
            next_upstream=self.get("proxy-next-upstream"), next_upstream_tries=self.get("proxy-next-upstream-tries"),
            next_upstream_timeout_s=self.get("proxy-next-upstream-timeout"), body_size=self.get("proxy-body-size"),
            affinity=self.affinity(), affinity_canary_sticky=self.get("affinity-canary-behavior", "sticky") == "sticky",
            upstream_hash_by=self.get("upstream-hash-by"), response_headers=self.get("configuration-snippet"),
            raw_snippet=self.get("configuration-snippet#raw"), rewrite_target=self.get("rewrite-target"),
            use_regex=self.get("use-regex", False), app_root=self.get("app-root"),
            ssl_redirect=self.get("ssl-redirect"), force_ssl_redirect=self.get("force-ssl-redirect", False),
            preserve_trailing_slash=self.get("preserve-trailing-slash", False), rate_limit=self.rate_limit(),
            modsecurity=self.modsecurity(), x_forwarded_prefix=self.get("x-forwarded-prefix"),
            backend_protocol=self.get("backend-protocol", UpstreamProtocol.HTTP), proxy_ssl=self.proxy_ssl(),
            ssl_passthrough=self.passthrough(), canary=self.canary(), cors=self.cors(), redirect=self.redirect(),
            allow_source_range=self.get("allowlist-source-range", ()),
            deny_source_range=self.get("denylist-source-range", ()), upstream_vhost=self.get("upstream-vhost"),
            service_upstream=self.get("service-upstream", False), mirror=self.mirror())


def parse_annotations(annotations: Mapping[str, Any] | None, policy: AnnotationPolicy | None = None
                      ) -> ParsedAnnotations:
    """Parse an Ingress's ``metadata.annotations``. Never raises: problems are in ``errors``/``warnings``."""
    collector = _Collector(annotations if isinstance(annotations, Mapping) else {}, policy or AnnotationPolicy())
    collector.parse()
    values = collector.build()
    return ParsedAnnotations(values, tuple(collector.errors), tuple(collector.warnings), frozenset(collector.raw))
