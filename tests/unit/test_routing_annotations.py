"""ingress-nginx annotations: every value parsed into a typed value, or refused with the annotation's name and the
reason in Kubernetes' field-error form."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netplane.routing.ingress.annotations import (
    PREFIX,
    SUPPORTED,
    AffinitySpec,
    AnnotationPolicy,
    CanarySpec,
    MirrorSpec,
    ParsedAnnotations,
    ProxySSLSpec,
    RateLimitSpec,
    parse_annotations,
)
from netplane.routing.ir import (
    AffinityMode,
    Cors,
    Redirect,
    ReplaceFullPath,
    RequestValue,
    RetryOn,
    SameSite,
    SessionCookie,
    Template,
    UpstreamProtocol,
    VarKind,
)

pytestmark = pytest.mark.unit


def parse(policy: AnnotationPolicy | None = None, **short: Any) -> ParsedAnnotations:
    return parse_annotations({f"{PREFIX}/{k.replace('_', '-')}": v for k, v in short.items()}, policy)


def errors(policy: AnnotationPolicy | None = None, **short: Any) -> list[str]:
    return [str(e) for e in parse(policy, **short).errors]


def field(short: str) -> str:
    return f"metadata.annotations[{PREFIX}/{short}]"


# ---------------------------------------------------------------------------------------------------------------
# Valid values

VALID: list[tuple[dict[str, Any], str, Any]] = [
    ({"proxy-connect-timeout": "15"}, "connect_timeout_s", 15),
    ({"proxy-send-timeout": " 120 "}, "send_timeout_s", 120),
    ({"proxy-read-timeout": "3600"}, "read_timeout_s", 3600),
    ({"proxy-next-upstream": "error timeout http_502"}, "next_upstream",
     ((RetryOn.ERROR, RetryOn.TIMEOUT), (502,))),
    ({"proxy-next-upstream": "off"}, "next_upstream", ((), ())),
    ({"proxy-next-upstream-tries": "0"}, "next_upstream_tries", 0),
    ({"proxy-next-upstream-timeout": "10"}, "next_upstream_timeout_s", 10),
    ({"proxy-body-size": "8m"}, "body_size", 8 * 1024 * 1024),
    ({"proxy-body-size": "0"}, "body_size", 0),
    ({"proxy-body-size": "512K"}, "body_size", 512 * 1024),
    ({"use-regex": "true"}, "use_regex", True),
    ({"use-regex": "1"}, "use_regex", True),
    ({"use-regex": "False"}, "use_regex", False),
    ({"rewrite-target": "/"}, "rewrite_target", "/"),
    ({"rewrite-target": "/new/backend/$1"}, "rewrite_target", "/new/backend/$1"),
    ({"rewrite-target": "/${2}"}, "rewrite_target", "/${2}"),
    ({"app-root": "/app1"}, "app_root", "/app1"),
    ({"ssl-redirect": "false"}, "ssl_redirect", False),
    ({"force-ssl-redirect": "true"}, "force_ssl_redirect", True),
    ({"preserve-trailing-slash": "true"}, "preserve_trailing_slash", True),
    ({"x-forwarded-prefix": "/test/value", "rewrite-target": "/foo"}, "x_forwarded_prefix", "/test/value"),
    ({"backend-protocol": "HTTPS"}, "backend_protocol", UpstreamProtocol.HTTPS),
    ({"backend-protocol": "grpcs"}, "backend_protocol", UpstreamProtocol.GRPCS),
    ({"backend-protocol": "GRPC"}, "backend_protocol", UpstreamProtocol.GRPC),
    ({"ssl-passthrough": "false"}, "ssl_passthrough", False),
    ({"limit-rps": "5"}, "rate_limit", RateLimitSpec(rps=5)),
    ({"limit-rpm": "300", "limit-burst-multiplier": "2"}, "rate_limit", RateLimitSpec(rpm=300, burst_multiplier=2)),
    ({"limit-connections": "8", "limit-allowlist": "10.0.0.0/8, 192.168.1.1"}, "rate_limit",
     RateLimitSpec(connections=8, allowlist=("10.0.0.0/8", "192.168.1.1/32"))),
    ({"limit-rps": "1", "limit-whitelist": "::1"}, "rate_limit", RateLimitSpec(rps=1, allowlist=("::1/128",))),
    ({"limit-rate": "100", "limit-rate-after": "10"}, "rate_limit",
     RateLimitSpec(response_rate_kib=100, response_rate_after_kib=10)),
    ({"affinity": "cookie"}, "affinity", AffinitySpec(SessionCookie())),
    ({"affinity": "cookie", "affinity-mode": "persistent", "session-cookie-name": "SERVERID",
      "session-cookie-path": "/something", "session-cookie-domain": ".Example.com", "session-cookie-expires": "172800",
      "session-cookie-max-age": "259200", "session-cookie-samesite": "lax", "session-cookie-secure": "true",
      "session-cookie-conditional-samesite-none": "true", "session-cookie-change-on-failure": "true"}, "affinity",
     AffinitySpec(SessionCookie("SERVERID", "/something", ".example.com", 259200, 172800, True, SameSite.LAX, True),
                  AffinityMode.PERSISTENT, True)),
    ({"affinity": "cookie", "session-cookie-secure": "false"}, "affinity", AffinitySpec(SessionCookie(secure=None))),
    ({"affinity-canary-behavior": "legacy"}, "affinity_canary_sticky", False),
    ({"upstream-hash-by": "$remote_addr"}, "upstream_hash_by", Template.of(VarKind.SOURCE_IP)),
    ({"upstream-hash-by": "$request_uri$host"}, "upstream_hash_by",
     Template((RequestValue(VarKind.REQUEST_URI), RequestValue(VarKind.HOST)))),
    ({"upstream-hash-by": "$http_x_user_id"}, "upstream_hash_by", Template.of(VarKind.HEADER, "x-user-id")),
    ({"upstream-hash-by": "$cookie_session"}, "upstream_hash_by", Template.of(VarKind.COOKIE, "session")),
    ({"load-balance": "round_robin"}, "upstream_hash_by", None),
    ({"enable-modsecurity": "true", "enable-owasp-core-rules": "true", "modsecurity-transaction-id": "$request_id"},
     "modsecurity.transaction_id", Template.of(VarKind.REQUEST_ID)),
    ({"enable-modsecurity": "true"}, "modsecurity.enabled", True),
    # mirror: the Host of the copy is the target's host unless mirror-host says otherwise (ingress-nginx)
    ({"mirror-target": "http://mirror.default.svc.cluster.local$request_uri"}, "mirror",
     MirrorSpec("mirror.default.svc.cluster.local", 80, "mirror.default.svc.cluster.local")),
    ({"mirror-target": "http://Mirror:8080/$request_uri", "mirror-host": "Copy.Example",
      "mirror-request-body": "off"}, "mirror", MirrorSpec("mirror", 8080, "copy.example", body=False)),
    ({"mirror-target": "http://10.0.0.9/"}, "mirror", MirrorSpec("10.0.0.9", 80, "10.0.0.9")),
    ({"mirror-target": "http://[fd00::0:1]:81"}, "mirror", MirrorSpec("fd00::1", 81, "fd00::1")),
    ({"mirror-request-body": "on", "mirror-target": "http://m"}, "mirror", MirrorSpec("m", 80, "m")),
    ({"enable-owasp-core-rules": "false"}, "modsecurity.owasp_crs", False),
    ({"proxy-ssl-secret": "default/backend-tls", "proxy-ssl-verify": "on", "proxy-ssl-verify-depth": "2",
      "proxy-ssl-name": "Backend.Internal", "proxy-ssl-server-name": "on", "proxy-ssl-protocols": "TLSv1.2 TLSv1.3",
      "proxy-ssl-ciphers": "HIGH:!aNULL:!MD5", "backend-protocol": "HTTPS"}, "proxy_ssl",
     ProxySSLSpec(("default", "backend-tls"), True, 2, "backend.internal", True, ("TLSv1.2", "TLSv1.3"),
                  "HIGH:!aNULL:!MD5")),
    ({"canary": "true", "canary-weight": "30"}, "canary", CanarySpec(weight=30)),
    ({"canary": "true", "canary-by-header": "CanaryByHeader", "canary-by-header-value": "DoCanary"}, "canary",
     CanarySpec(header="CanaryByHeader", header_value="DoCanary")),
    ({"canary": "true", "canary-by-header": "X-Canary", "canary-by-header-pattern": "^(a|b)$"}, "canary",
     CanarySpec(header="X-Canary", header_pattern="^(a|b)$")),
    ({"canary": "true", "canary-by-cookie": "use_canary", "canary-weight": "100", "canary-weight-total": "200"},
     "canary", CanarySpec(weight=100, weight_total=200, cookie="use_canary")),
    ({"canary": "false"}, "canary", None),
    ({"enable-cors": "true"}, "cors.allow_credentials", True),
    ({"enable-cors": "true", "cors-allow-origin": "https://a.com, https://*.b.com:8443",
      "cors-allow-methods": "get, post", "cors-allow-headers": "X-Custom", "cors-expose-headers": "*",
      "cors-allow-credentials": "false", "cors-max-age": "600"}, "cors",
     Cors(("https://a.com", "https://*.b.com:8443"), ("GET", "POST"), ("X-Custom",), ("*",), False, 600)),
    ({"permanent-redirect": "https://www.example.com/new?x=1"}, "redirect",
     Redirect(301, "https", "www.example.com", None, ReplaceFullPath("/new"), "x=1")),
    ({"permanent-redirect": "http://example.com:8080", "permanent-redirect-code": "308"}, "redirect",
     Redirect(308, "http", "example.com", 8080, ReplaceFullPath("/"), "")),
    ({"temporal-redirect": "https://example.com/tmp"}, "redirect",
     Redirect(302, "https", "example.com", None, ReplaceFullPath("/tmp"), "")),
    ({"allowlist-source-range": "10.0.0.0/24,172.16.0.1"}, "allow_source_range", ("10.0.0.0/24", "172.16.0.1/32")),
    ({"whitelist-source-range": "10.0.0.0/24"}, "allow_source_range", ("10.0.0.0/24",)),
    ({"denylist-source-range": "1.2.3.4"}, "deny_source_range", ("1.2.3.4/32",)),
    ({"upstream-vhost": "Internal.Example.com"}, "upstream_vhost", "internal.example.com"),
    ({"service-upstream": "true"}, "service_upstream", True),
    ({"limit-rps": ""}, "rate_limit", None),
]


def attribute(values: Any, path: str) -> Any:
    for part in path.split("."):
        values = getattr(values, part)
    return values


@pytest.mark.parametrize(("annotations", "path", "expected"), VALID)
def test_valid_annotations(annotations: dict[str, Any], path: str, expected: Any) -> None:
    parsed = parse_annotations({f"{PREFIX}/{k}": v for k, v in annotations.items()},
                               AnnotationPolicy(enable_ssl_passthrough=True))
    assert parsed.errors == ()
    assert attribute(parsed.values, path) == expected


def test_defaults_without_annotations() -> None:
    parsed = parse_annotations(None)
    assert parsed.errors == () and parsed.warnings == ()
    values = parsed.values
    assert values.backend_protocol is UpstreamProtocol.HTTP
    assert (values.affinity, values.canary, values.rate_limit, values.cors, values.redirect) == (None,) * 5
    assert values.ssl_redirect is None and not values.force_ssl_redirect and values.affinity_canary_sticky


# ---------------------------------------------------------------------------------------------------------------
# Invalid values: the exact message kubectl will print

INVALID: list[tuple[str, Any, str]] = [
    ("limit-rps", "x", "must be a positive integer"),
    ("limit-rps", "0", "must be a positive integer"),
    ("limit-rps", "-5", "must be a positive integer"),
    ("limit-rpm", "1.5", "must be a positive integer"),
    ("limit-connections", "ten", "must be a positive integer"),
    ("limit-burst-multiplier", "0", "must be a positive integer"),
    ("limit-allowlist", "10.0.0.0/33", "'10.0.0.0/33' is not an IP address or CIDR"),
    ("limit-allowlist", ",", "must be a comma-separated list of IP addresses or CIDRs"),
    ("limit-whitelist", "bad", "'bad' is not an IP address or CIDR"),
    ("limit-rate", "fast", "must be a non-negative integer"),
    ("proxy-connect-timeout", "5s", "must be a positive integer number of seconds (at most 2147483)"),
    ("proxy-read-timeout", "0", "must be a positive integer number of seconds (at most 2147483)"),
    ("proxy-send-timeout", "99999999", "must be a positive integer number of seconds (at most 2147483)"),
    ("proxy-next-upstream", "error foo", "'foo' is not one of: error timeout invalid_header non_idempotent "
                                         "http_403 http_404 http_429 http_500 http_502 http_503 http_504 off "
                                         "('off' alone)"),
    ("proxy-next-upstream", "off error", "'off' is not one of: error timeout invalid_header non_idempotent "
                                         "http_403 http_404 http_429 http_500 http_502 http_503 http_504 off "
                                         "('off' alone)"),
    ("proxy-next-upstream-tries", "-1", "must be a non-negative integer"),
    ("proxy-body-size", "10x", "must be a size such as 1024, 8k, 10m or 1g"),
    ("affinity", "ip", "must be one of: cookie"),
    ("affinity", "Cookie", "must be one of: cookie"),
    ("affinity-mode", "sticky", "must be one of: balanced, persistent"),
    ("affinity-canary-behavior", "always", "must be one of: sticky, legacy"),
    ("session-cookie-name", "bad name", "must be a valid cookie name (letters, digits and !#$%&'*+-.^_`|~)"),
    ("session-cookie-name", "a;b", "must be a valid cookie name (letters, digits and !#$%&'*+-.^_`|~)"),
    ("session-cookie-path", "relative", "must be a path starting with '/' without ';', ',' or spaces"),
    ("session-cookie-path", "/a; Secure", "must be a path starting with '/' without ';', ',' or spaces"),
    ("session-cookie-domain", "ex ample.com", "must be a DNS domain, optionally starting with '.'"),
    ("session-cookie-expires", "forever", "must be a non-negative integer"),
    ("session-cookie-max-age", "-1", "must be a non-negative integer"),
    ("session-cookie-samesite", "Sometimes", "must be one of: None, Lax, Strict"),
    ("session-cookie-secure", "yes", "must be a boolean (true or false)"),
    ("use-regex", "yes", "must be a boolean (true or false)"),
    ("rewrite-target", "new", "must be a path starting with '/'"),
    ("rewrite-target", "/$host", "only capture group references ($1..$9) may follow '$'"),
    ("rewrite-target", "/a b", "must be a path made of letters, digits, -._~/:%@+!*=& and $1..$9"),
    ("rewrite-target", '/x";return 200;', "must be a path made of letters, digits, -._~/:%@+!*=& and $1..$9"),
    ("app-root", "app", "must be a path starting with '/' made of letters, digits and -._~/:%@+!*=&"),
    ("app-root", "/app$1", "must be a path starting with '/' made of letters, digits and -._~/:%@+!*=&"),
    ("x-forwarded-prefix", "/a\nb", "must be a path starting with '/' made of letters, digits and -._~/:%@+!*=&"),
    ("backend-protocol", "FCGI", "FCGI is not supported by netplane (supported: HTTP, HTTPS, GRPC, GRPCS)"),
    ("backend-protocol", "auto_http", "AUTO_HTTP is not supported by netplane (supported: HTTP, HTTPS, GRPC, GRPCS)"),
    ("backend-protocol", "TCP", "must be one of: HTTP, HTTPS, GRPC, GRPCS"),
    ("proxy-ssl-secret", "just-a-name", "must be namespace/name"),
    ("proxy-ssl-secret", "ns/Bad_Name", "must be namespace/name"),
    ("proxy-ssl-verify", "true", "must be one of: on, off"),
    ("proxy-ssl-verify-depth", "deep", "must be a non-negative integer"),
    ("proxy-ssl-name", "*.x.com", "must be a DNS name"),
    ("proxy-ssl-protocols", "TLSv1", "must be TLSv1.2 and/or TLSv1.3, separated by spaces"),
    ("proxy-ssl-ciphers", "HIGH;evil", "must be an OpenSSL cipher list (letters, digits and +:_-!)"),
    ("ssl-redirect", "maybe", "must be a boolean (true or false)"),
    ("force-ssl-redirect", "TRUE!", "must be a boolean (true or false)"),
    ("upstream-hash-by", "$unknown_var", "variable $unknown_var is not allowed (allowed: $binary_remote_addr, "
                                         "$document_uri, $host, $msec, $remote_addr, $req_id, $request_id, "
                                         "$request_method, $request_uri, $scheme, $server_port, $time_iso8601, $uri, "
                                         "$http_*, $cookie_*, $arg_*)"),
    ("upstream-hash-by", "constant", "must refer to at least one request variable, e.g. $remote_addr or $http_x_user"),
    ("upstream-hash-by", "$", "'$' must start a variable name"),
    ("load-balance", "ewma", "ewma is not supported by netplane (supported: round_robin)"),
    ("load-balance", "least_conn", "must be one of: round_robin"),
    ("enable-cors", "on", "must be a boolean (true or false)"),
    ("cors-allow-origin", "example.com", "'example.com' is not '*' or scheme://host[:port]"),
    ("cors-allow-methods", "GET, PO ST", "'PO ST' is not an HTTP method"),
    ("cors-allow-headers", "X-Ok, Bad Header", "'Bad Header' is not a valid HTTP header name"),
    ("cors-max-age", "-1", "must be a non-negative integer"),
    ("permanent-redirect", "not a url", "must be a URL without spaces, quotes or backslashes"),
    ("permanent-redirect", "ftp://x.com/", "must be an absolute http or https URL"),
    ("permanent-redirect", "https://x.com/$1", "must not contain a fragment or nginx variables"),
    ("permanent-redirect", "https://x.com/#frag", "must not contain a fragment or nginx variables"),
    ("permanent-redirect", "https://x.com:99999/", "must be an absolute http or https URL"),
    ("temporal-redirect", "/relative", "must be an absolute http or https URL"),
    ("permanent-redirect-code", "200", "must be one of: 301, 302, 303, 307, 308"),
    ("allowlist-source-range", "everyone", "'everyone' is not an IP address or CIDR"),
    ("denylist-source-range", "1.2.3.4/40", "'1.2.3.4/40' is not an IP address or CIDR"),
    ("upstream-vhost", "$host", "must be a DNS name"),
    ("mirror-target", "https://mirror.test$request_uri", "https targets are not supported: copies are sent over "
                                                         "plain HTTP"),
    ("mirror-target", "mirror.test", "must be an http URL: http://<service or IP address>[:port][$request_uri]"),
    ("mirror-target", "http://user@mirror.test", "must be an http URL: http://<service or IP address>[:port]"
                                                 "[$request_uri]"),
    ("mirror-target", "http://mirror.test/copy", "may have no path or query of its own: the copy always carries "
                                                 "the request's URI"),
    ("mirror-target", "http://mirror.test?a=1", "may have no path or query of its own: the copy always carries the "
                                                "request's URI"),
    ("mirror-target", "http://mirror.test$uri", "may use no nginx variable but a final $request_uri (the copy "
                                                "always carries the request's URI)"),
    ("mirror-target", "http://mirror.test:99999", "must be an http URL"),
    ("mirror-target", "http://mir ror.test", "must be a URL without spaces, quotes or backslashes"),
    ("mirror-target", "http://bad_name.test", "'bad_name.test' is not a Service name or an IP address"),
    ("mirror-host", "a b", "must be a DNS name"),
    ("limit-rate", "20000000000000000", "must be at most 2147483647"),  # found by hypothesis: JSON overflow
    ("cors-max-age", "2147483648", "must be at most 2147483647"),
    ("mirror-request-body", "false", "must be one of: on, off"),
    ("modsecurity-transaction-id", "$secret", "variable $secret is not allowed (allowed: $binary_remote_addr, "
                                              "$document_uri, $host, $msec, $remote_addr, $req_id, $request_id, "
                                              "$request_method, $request_uri, $scheme, $server_port, $time_iso8601, "
                                              "$uri, $http_*, $cookie_*, $arg_*)"),
    ("enable-modsecurity", "1x", "must be a boolean (true or false)"),
    ("enable-owasp-core-rules", "maybe", "must be a boolean (true or false)"),
    ("service-upstream", "y", "must be a boolean (true or false)"),
    ("ssl-passthrough", "true", "SSL passthrough is not enabled on this instance (enable-ssl-passthrough)"),
    ("server-snippet", "location /x {}", "raw snippets are disabled on this instance (allow-snippet-annotations)"),
    ("auth-snippet", "x", "raw snippets are disabled on this instance (allow-snippet-annotations)"),
    ("stream-snippet", "x", "raw snippets are disabled on this instance (allow-snippet-annotations)"),
]


@pytest.mark.parametrize(("short", "value", "reason"), INVALID)
def test_invalid_annotations(short: str, value: Any, reason: str) -> None:
    shown = value.replace("\n", "\n")
    assert errors(**{short: value}) == [f'{field(short)}: Invalid value: "{shown}": {reason}']


@pytest.mark.parametrize(("annotations", "expected"), [
    ({"canary-weight": "fifty", "canary": "true"},
     f'{field("canary-weight")}: Invalid value: "fifty": must be a non-negative integer'),
    ({"canary": "true", "canary-by-header": "X Canary"},
     f'{field("canary-by-header")}: Invalid value: "X Canary": must be a valid HTTP header name'),
    ({"canary": "true", "canary-by-header": "X", "canary-by-header-value": 'a"b'},
     f'{field("canary-by-header-value")}: Invalid value: "a"b": must be a header value of printable ASCII characters '
     "without quotes or backslashes"),
    ({"canary": "true", "canary-by-header": "X", "canary-by-header-pattern": "("},
     f'{field("canary-by-header-pattern")}: Invalid value: "(": invalid regular expression: missing ), unterminated '
     "subpattern at position 0"),
    ({"canary": "true", "canary-by-cookie": "a=b"},
     f'{field("canary-by-cookie")}: Invalid value: "a=b": must be a valid cookie name (letters, digits and '
     "!#$%&'*+-.^_`|~)"),
    ({"canary": "true", "canary-weight-total": "0"},
     f'{field("canary-weight-total")}: Invalid value: "0": must be a positive integer'),
    ({"canary-weight": "10"},
     f'{field("canary")}: Invalid value: "": canary-weight set but canary is not enabled'),
    ({"canary": "false", "canary-by-header": "X", "canary-by-cookie": "c"},
     f'{field("canary")}: Invalid value: "false": canary-by-cookie, canary-by-header set but canary is not enabled'),
    ({"canary": "true", "canary-weight": "150"},
     f'{field("canary-weight")}: Invalid value: "150": must not exceed canary-weight-total (100)'),
    ({"canary": "true", "canary-by-header-value": "v"},
     f'{field("canary-by-header-value")}: Invalid value: "v": needs canary-by-header'),
    ({"proxy-ssl-verify": "on", "backend-protocol": "HTTPS"},
     f'{field("proxy-ssl-verify")}: Invalid value: "on": needs proxy-ssl-secret (its ca.crt verifies the backend)'),
    ({"limit-rps": 5}, f"{field('limit-rps')}: Invalid value: 5: must be a string"),
])
def test_invalid_combinations(annotations: dict[str, Any], expected: str) -> None:
    parsed = parse_annotations({f"{PREFIX}/{k}": v for k, v in annotations.items()})
    assert [str(e) for e in parsed.errors] == [expected]


def test_every_error_names_its_annotation() -> None:
    bad = {"limit-rps": "x", "affinity": "ip", "rewrite-target": "x", "use-regex": "?"}
    parsed = parse_annotations({f"{PREFIX}/{k}": v for k, v in bad.items()})
    assert len(parsed.errors) == 4
    for error in parsed.errors:
        assert error.field.startswith(f"metadata.annotations[{PREFIX}/")
        assert error.reason == "FieldValueInvalid"


def test_passthrough_allowed_by_the_instance() -> None:
    parsed = parse(AnnotationPolicy(enable_ssl_passthrough=True), ssl_passthrough="true")
    assert parsed.errors == () and parsed.values.ssl_passthrough


# ---------------------------------------------------------------------------------------------------------------
# Warnings: accepted, but worth telling the user


@pytest.mark.parametrize(("annotations", "warning"), [
    ({"auth-url": "http://auth"}, f"{field('auth-url')}: annotation is not supported by netplane and has no effect"),
    ({"x-forwarded-prefix": "/p"}, f"{field('x-forwarded-prefix')}: has no effect without rewrite-target "
                                   "(as in ingress-nginx)"),
    ({"session-cookie-name": "S"}, f"{field('session-cookie-name')}: has no effect without affinity: cookie"),
    ({"cors-max-age": "5"}, f"{field('cors-max-age')}: has no effect without enable-cors"),
    ({"proxy-ssl-verify-depth": "2"}, f"{field('proxy-ssl-verify-depth')}: has no effect unless backend-protocol "
                                      "is HTTPS or GRPCS"),
    ({"limit-burst-multiplier": "3"}, f"{field('limit-burst-multiplier')}: has no effect without limit-rps, "
                                      "limit-rpm or limit-connections"),
    ({"limit-connections": "3", "limit-burst-multiplier": "3"},
     f"{field('limit-burst-multiplier')}: has no effect without limit-rps or limit-rpm"),
    ({"permanent-redirect": "https://a.com", "temporal-redirect": "https://b.com"},
     f"{field('temporal-redirect')}: has no effect: permanent-redirect takes precedence"),
    ({"affinity": "cookie", "upstream-hash-by": "$remote_addr"},
     f"{field('upstream-hash-by')}: has no effect: cookie affinity takes precedence"),
    ({"affinity": "cookie", "use-regex": "true"},
     f"{field('affinity')}: session-cookie-path should be set when use-regex is on; the cookie path is /"),
    ({"mirror-host": "copy.test"}, f"{field('mirror-host')}: has no effect without mirror-target"),
    ({"mirror-request-body": "off"}, f"{field('mirror-request-body')}: has no effect without mirror-target"),
    ({"canary": "true", "canary-by-header": "h", "canary-by-header-value": "v", "canary-by-header-pattern": "p"},
     f"{field('canary-by-header-pattern')}: has no effect: canary-by-header-value takes precedence"),
])
def test_warnings(annotations: dict[str, str], warning: str) -> None:
    parsed = parse_annotations({f"{PREFIX}/{k}": v for k, v in annotations.items()})
    assert parsed.errors == ()
    assert warning in parsed.warnings


def test_annotations_of_other_prefixes_are_ignored() -> None:
    odd: dict[Any, Any] = {"kubernetes.io/ingress.class": "nginx", "alb.example/x": "y", 5: "odd key"}
    parsed = parse_annotations(odd)
    assert parsed.errors == () and parsed.warnings == ()


def test_custom_prefix() -> None:
    parsed = parse_annotations({"custom.io/limit-rps": "x"}, AnnotationPolicy(prefix="custom.io"))
    assert [str(e) for e in parsed.errors] == ['metadata.annotations[custom.io/limit-rps]: Invalid value: "x": must '
                                               "be a positive integer"]


def test_supported_list_covers_the_guide() -> None:
    guide = {"proxy-connect-timeout", "proxy-send-timeout", "proxy-read-timeout", "affinity", "affinity-mode",
             "session-cookie-name", "session-cookie-path", "session-cookie-expires", "session-cookie-max-age",
             "configuration-snippet", "rewrite-target", "use-regex", "app-root", "limit-rps", "limit-rpm",
             "limit-connections", "limit-burst-multiplier", "limit-allowlist", "enable-modsecurity",
             "enable-owasp-core-rules", "x-forwarded-prefix", "backend-protocol", "proxy-ssl-secret",
             "proxy-ssl-verify", "ssl-redirect", "force-ssl-redirect", "ssl-passthrough", "canary", "canary-by-header",
             "canary-by-header-value", "canary-by-header-pattern", "canary-by-cookie", "canary-weight"}
    assert guide <= SUPPORTED


# ---------------------------------------------------------------------------------------------------------------
# Properties: arbitrary values never raise and never slip through unparsed

ANNOTATION_NAMES = st.sampled_from(sorted(SUPPORTED | {"server-snippet", "unknown-thing"}))
VALUES = st.one_of(st.text(max_size=40), st.sampled_from(["$remote_addr", "true", "on", "/x/$1", "10.0.0.0/8",
                                                          'more_set_headers "A: b";', "}", "${msec}", "\n", "0"]))


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(ANNOTATION_NAMES, VALUES, max_size=6),
       st.booleans(), st.booleans())
def test_arbitrary_annotation_strings_never_raise(annotations: dict[str, str], raw: bool, passthrough: bool) -> None:
    parsed = parse_annotations({f"{PREFIX}/{k}": v for k, v in annotations.items()},
                               AnnotationPolicy(allow_raw_snippets=raw, enable_ssl_passthrough=passthrough))
    for error in parsed.errors:
        assert error.field.startswith(f"metadata.annotations[{PREFIX}/")
    if not raw:
        assert parsed.values.raw_snippet is None
        assert parsed.values.modsecurity is None or parsed.values.modsecurity.raw_rules == ""
