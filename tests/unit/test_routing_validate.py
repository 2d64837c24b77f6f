"""IR self-validation: every check reports where and why, and a well-formed configuration passes."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from netplane.routing.ir import (
    MATCH_ALL,
    And,
    Backend,
    BackendGroup,
    Canary,
    Certificate,
    ConsistentHash,
    CookieAffinity,
    Cors,
    DirectResponse,
    Endpoint,
    Filter,
    Forward,
    HeaderMatch,
    HeaderOp,
    Hsts,
    L4Route,
    Listener,
    ListenerTLS,
    Match,
    MethodMatch,
    Or,
    PathKind,
    PathMatch,
    Protocol,
    Provenance,
    QueryMatch,
    RateLimit,
    RateUnit,
    RawSnippet,
    Redirect,
    RegexRewrite,
    ReplaceFullPath,
    ReplacePrefixMatch,
    RequestHeaders,
    RequestMirror,
    RequestRate,
    RequestValue,
    ResponseHeaders,
    RetryPolicy,
    Route,
    RoutingConfig,
    ServiceRef,
    SessionCookie,
    Settings,
    SourceIPAccess,
    SourceIPMatch,
    StringMatchKind,
    Template,
    Timeouts,
    UpstreamProtocol,
    UpstreamTLS,
    URLRewrite,
    VarKind,
    VirtualHost,
    Waf,
)
from netplane.routing.regex import capture_references, compile_pcre, expand_substitution, pcre_problems
from netplane.routing.validate import ValidationError, validate

pytestmark = pytest.mark.unit

CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"
P = Provenance("HTTPRoute", "ns", "r", created="2026-01-01T00:00:00Z")
RID = P.route_id


def group(name: str = "g", *backends: Backend) -> BackendGroup:
    return BackendGroup(name, backends or (Backend("ns/svc:80", endpoints=(Endpoint("10.0.0.1", 80),)),))


def config_with(route: Route | None = None, *, groups: tuple[BackendGroup, ...] | None = None,
                listeners: tuple[Listener, ...] | None = None, settings: Settings | None = None,
                certificates: tuple[Certificate, ...] = ()) -> RoutingConfig:
    route = route or Route(P, PathMatch(PathKind.PREFIX, "/"), Forward("g"))
    listeners = listeners or (Listener("http", 80, Protocol.HTTP, virtual_hosts=(VirtualHost(("a.com",), (route,)),)),)
    return RoutingConfig(listeners, groups if groups is not None else (group(), group("g2")), certificates,
                         settings or Settings())


def reasons(config: RoutingConfig) -> list[str]:
    return [str(e) for e in validate(config)]


def route_errors(*, match: Match = MATCH_ALL, filters: tuple[Filter, ...] = (), **kwargs: Any) -> list[str]:
    action = kwargs.pop("action", Forward("g"))
    route = Route(P, match, action, filters, **kwargs)
    return reasons(config_with(route))


def test_well_formed_configuration_passes() -> None:
    tls_listener = Listener("https", 443, Protocol.HTTPS, tls=ListenerTLS("ns/tls"),
                            virtual_hosts=(VirtualHost(("a.com",), (Route(P, MATCH_ALL, Forward("g")),),
                                                       certificate="ns/tls"),),
                            l4_routes=(L4Route(dataclasses.replace(P, role="pt"), "g2", ("pass.com",)),))
    config = config_with(listeners=(tls_listener,), certificates=(Certificate("ns/tls", "ns", "tls", CERT, KEY),))
    assert validate(config) == []
    assert str(ValidationError("w", "r")) == "w: r"


# ---------------------------------------------------------------------------------------------------------------
# Matches


@pytest.mark.parametrize(("match", "expected"), [
    (PathMatch(PathKind.REGEX, "(unclosed"), "match.value: invalid regular expression: missing ), unterminated "
                                             "subpattern at position 0"),
    (PathMatch(PathKind.PREFIX, "no-slash"), "match.value: 'no-slash' must start with '/'"),
    (PathMatch(PathKind.EXACT, "/a\nb"), "match.value: must not contain control characters"),
    (And((HeaderMatch("bad name"),)), "match.matches[0].name: 'bad name' is not a valid HTTP header name"),
    (HeaderMatch("x", StringMatchKind.REGEX, "[a-"), "match.value: invalid regular expression: unterminated "
                                                     "character set at position 0"),
    (HeaderMatch("x", value="a\r\nInjected: 1"), "match.value: must not contain control characters"),
    (QueryMatch(""), "match.name: '' is not a valid query parameter name"),
    (And((Or(()),)), "match.matches[0]: an empty 'or' never matches"),
    (MethodMatch(()), "match.methods: must not be empty"),
    (MethodMatch(("get",)), "match.methods: 'get' is not an upper-case HTTP method"),
    (SourceIPMatch(("10.0.0.0/33",)), "match.cidrs[0]: '10.0.0.0/33' is not an IP address or CIDR"),
    (SourceIPMatch(()), "match.cidrs: must not be empty"),
])
def test_match_errors(match: Match, expected: str) -> None:
    assert f"{RID}: {expected}" in route_errors(match=match)


def test_deeply_nested_match_is_refused() -> None:
    match: Match = MATCH_ALL
    for _ in range(40):
        match = And((match,))
    assert any("nested more than 32 levels" in e for e in route_errors(match=match))


@pytest.mark.parametrize(("pattern", "problem"), [
    ("^/ok/(.*)$", None),
    ("(?i)^/x", None),
    ("a{,3}", "'{,n}' is a quantifier in Python but literal text in PCRE; write '{0,n}'"),
    ("[[:alpha:]]+", "POSIX bracket expressions ([:...:]) mean different things in PCRE and Python"),
    (r"\u00e9", "\\u escapes are not supported by PCRE"),
    (r"\N{EM DASH}", "\\N escapes are not supported by PCRE"),
    ("(?a)x", "inline flags 'a' are not PCRE flags"),
    ("(?u:x)", "inline flags 'u' are not PCRE flags"),
    ("[]a]", None),
    ("[^]a]", None),
    (r"a\{,3}", None),
    ("(?<n>x)", "invalid regular expression"),  # PCRE-only syntax Python cannot check
    (r"\K", "invalid regular expression"),
    ("(", "invalid regular expression"),
    ("^/a{65535}", None),
    ("^/a{70000}", "repetition counts above 65535 are not supported by PCRE"),
    ("^/a{1,70000}", "repetition counts above 65535 are not supported by PCRE"),
    ("^/[a{70000}]", None),  # literal text inside a class
])
def test_pcre_compatibility(pattern: str, problem: str | None) -> None:
    problems = pcre_problems(pattern)
    if problem is None:
        assert problems == ()
    else:
        assert problems and problems[0].startswith(problem)


def test_capture_substitution_helpers() -> None:
    assert capture_references("/new/$1/${2}/$10") == [1, 2, 1]
    m = compile_pcre("^/something(/|$)(.*)").search("/something/new")
    assert m is not None
    assert expand_substitution("/$2", m) == "/new"
    assert expand_substitution("/$3", m) == "/"


# ---------------------------------------------------------------------------------------------------------------
# Filters and actions


@pytest.mark.parametrize(("filters", "expected"), [
    ((RequestHeaders(set=(HeaderOp("Bad:Name", Template.literal("v")),)),),
     "filters[0].set[0].name: 'Bad:Name' is not a valid HTTP header name"),
    ((ResponseHeaders(add=(HeaderOp("X", Template.literal("a\nSet-Cookie: x")),)),),
     "filters[0].add[0].value: must not contain control characters (CR, LF, NUL)"),
    ((ResponseHeaders(remove=("bad header",)),), "filters[0].remove[0]: 'bad header' is not a valid HTTP header name"),
    ((RequestHeaders(set=(HeaderOp("X", Template((RequestValue(VarKind.HEADER),))),)),),
     "filters[0].set[0].value: header needs a name"),
    ((RequestHeaders(set=(HeaderOp("X", Template((RequestValue(VarKind.HOST, "x"),))),)),),
     "filters[0].set[0].value: host takes no name"),
    ((URLRewrite(path=RegexRewrite("^/a(.*)", "/b/$2")),),
     "filters[0].path.substitution: refers to $2 but the pattern has 1 capture group"),
    ((URLRewrite(path=RegexRewrite("^/a", "relative")),),
     "filters[0].path.substitution: 'relative' must be a path starting with '/'"),
    ((URLRewrite(path=RegexRewrite("(", "/")),), "filters[0].path.pattern: invalid regular expression"),
    ((URLRewrite(hostname="Bad_Host"),), "filters[0].hostname: 'Bad_Host' is not a valid hostname"),
    ((URLRewrite(path=ReplaceFullPath("x")),), "filters[0].path: 'x' must be a path starting with '/'"),
    ((Cors(allow_origins=("ftp://x.com",)),), "filters[0].allow_origins: 'ftp://x.com' is not '*' or "
                                              "scheme://host[:port]"),
    ((Cors(allow_methods=("GET POST",)),), "filters[0].allow_methods: 'GET POST' is not a valid token"),
    ((Cors(max_age_s=-1),), "filters[0].max_age_s: must be >= 0"),
    ((Hsts(-5),), "filters[0].max_age_s: must be >= 0"),
    ((RateLimit(),), "filters[0]: needs request rates or a connection limit"),
    ((RateLimit(rates=(RequestRate(0, RateUnit.SECOND),)),), "filters[0].rates[0].limit: must be > 0"),
    ((RateLimit(rates=(RequestRate(1, RateUnit.SECOND, -1),)),), "filters[0].rates[0].burst: must be >= 0"),
    ((RateLimit(connections=0),), "filters[0].connections: must be > 0"),
    ((RateLimit(connections=1, allowlist=("x",)),), "filters[0].allowlist[0]: 'x' is not an IP address or CIDR"),
    ((RateLimit(connections=1, status_code=200),), "filters[0].status_code: must be between 400 and 599"),
    ((RateLimit(connections=1, key=Template()),), "filters[0].key: must not be empty"),
    ((SourceIPAccess(),), "filters[0]: needs 'allow' or 'deny' ranges"),
    ((SourceIPAccess(allow=("1.1.1.1/32",), status_code=302),), "filters[0].status_code: must be between 400 and "
                                                                 "599"),
    ((RequestMirror("missing"),), "filters[0].backend_group: backend group 'missing' does not exist"),
    ((RequestMirror("g", percent=101),), "filters[0].percent: must be between 0 and 100"),
    ((RawSnippet("more_set_headers 'a: b';"),), "filters[0]: raw snippets are not allowed on this instance"),
    ((Waf(raw_rules="SecRule ..."),), "filters[0].raw_rules: raw snippets are not allowed on this instance"),
])
def test_filter_errors(filters: tuple[Filter, ...], expected: str) -> None:
    errors = route_errors(match=PathMatch(PathKind.PREFIX, "/"), filters=filters)
    assert any(e.startswith(f"{RID}: {expected}") for e in errors), errors


def test_replace_prefix_needs_a_prefix_match() -> None:
    rewrite = (URLRewrite(path=ReplacePrefixMatch("/x")),)
    assert f"{RID}: filters[0].path: replacing the prefix needs a prefix path match" in route_errors(
        match=PathMatch(PathKind.EXACT, "/a"), filters=rewrite)
    assert route_errors(match=PathMatch(PathKind.PREFIX, "/a"), filters=rewrite) == []


def test_raw_snippets_pass_when_the_instance_allows_them() -> None:
    route = Route(P, MATCH_ALL, Forward("g"), (RawSnippet("x;"), Waf(raw_rules="SecRuleEngine On")))
    assert reasons(config_with(route, settings=Settings(allow_raw_snippets=True))) == []


@pytest.mark.parametrize(("action", "expected"), [
    (Forward("missing"), "action.backend_group: backend group 'missing' does not exist"),
    (Redirect(status_code=200), "action.status_code: 200 is not one of 301, 302, 303, 307, 308"),
    (Redirect(scheme="ftp"), "action.scheme: 'ftp' is not http or https"),
    (Redirect(hostname="*.x.com"), "action.hostname: '*.x.com' is not a valid hostname"),
    (Redirect(port=70000), "action.port: must be between 1 and 65535"),
    (Redirect(path=ReplaceFullPath("nope")), "action.path: 'nope' must be a path starting with '/'"),
    (Redirect(query="a b"), "action.query: must not contain spaces, '#' or control characters"),
    (DirectResponse(700), "action.status_code: must be between 200 and 599"),
    (Forward("g", (Canary("missing", P),)), "action.canaries[0].backend_group: backend group 'missing' does not exist"),
    (Forward("g", (Canary("g2", P, weight=120),)), "action.canaries[0].weight: must be between 0 and weight_total"),
    (Forward("g", (Canary("g2", P, weight_total=0),)), "action.canaries[0].weight_total: must be > 0"),
    (Forward("g", (Canary("g2", P, header="bad header"),)), "action.canaries[0].header: 'bad header' is not a valid "
                                                           "header name"),
    (Forward("g", (Canary("g2", P, header="x", header_pattern="("),)), "action.canaries[0].header_pattern: invalid"),
    (Forward("g", (Canary("g2", P, header_value="v"),)), "action.canaries[0]: header_value/header_pattern need a "
                                                         "header"),
])
def test_action_errors(action: object, expected: str) -> None:
    errors = route_errors(action=action)
    assert any(e.startswith(f"{RID}: {expected}") for e in errors), errors


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({"timeouts": Timeouts(read_ms=0)}, "timeouts.read_ms: must be > 0"),
    ({"retry": RetryPolicy(attempts=-1)}, "retry.attempts: must be >= 0"),
    ({"retry": RetryPolicy(status_codes=(999,))}, "retry.status_codes: must be HTTP status codes"),
    ({"retry": RetryPolicy(timeout_ms=0)}, "retry.timeout_ms: must be > 0"),
    ({"retry": RetryPolicy(backoff_ms=-1)}, "retry.backoff_ms: must be >= 0"),
    ({"max_body_bytes": -1}, "max_body_bytes: must be >= 0"),
    ({"hostname": "UPPER.com"}, "hostname: 'UPPER.com' is not a valid hostname"),
])
def test_route_option_errors(kwargs: dict[str, Any], expected: str) -> None:
    assert f"{RID}: {expected}" in route_errors(**kwargs)


# ---------------------------------------------------------------------------------------------------------------
# Listeners and virtual hosts


def test_listener_errors() -> None:
    vh = (VirtualHost(("a.com",), (Route(P, MATCH_ALL, Forward("g")),)),)
    listeners = (
        Listener("http", 80, Protocol.HTTP, virtual_hosts=vh),
        Listener("http", 80, Protocol.HTTP, address="10.0.0.1"),
        Listener("big", 70000, Protocol.HTTP),
        Listener("bad-addr", 81, Protocol.HTTP, address="localhost"),
        Listener("https", 443, Protocol.HTTPS),
        Listener("tls-on-http", 82, Protocol.HTTP, tls=ListenerTLS()),
        Listener("tcp", 9000, Protocol.TCP, virtual_hosts=vh,
                 l4_routes=(L4Route(P, "g"), L4Route(dataclasses.replace(P, role="b"), "g"))),
        Listener("udp", 9000, Protocol.UDP, l4_routes=(L4Route(P, "g", ("sni.com",)),)),
        Listener("v6", 80, Protocol.HTTP, address="::"),
        Listener("old-tls", 8443, Protocol.HTTPS, tls=ListenerTLS("ns/missing", min_version="SSLv3")),
        Listener("http-l4", 83, Protocol.HTTP, l4_routes=(L4Route(P, "g"),)),
        Listener("tls", 8444, Protocol.TLS, l4_routes=(L4Route(P, "g"),)),
    )
    errors = reasons(config_with(listeners=listeners))
    expected = [
        "listeners[http]: name: duplicate listener name",
        "listeners[http]: port: tcp 10.0.0.1:80 is already used by listener 'http'",
        "listeners[big]: port: 70000 is not between 1 and 65535",
        "listeners[bad-addr]: address: 'localhost' is not an IP address",
        "listeners[https]: tls: an HTTPS listener needs TLS settings",
        "listeners[tls-on-http]: tls: only HTTPS listeners terminate TLS, not HTTP",
        "listeners[tcp]: virtual_hosts: a TCP listener has no virtual hosts",
        "listeners[tcp]: l4_routes: a TCP listener takes one route",
        f"{RID}: hostnames: a UDP listener cannot route by SNI",
        "listeners[old-tls]: tls.default_certificate: certificate 'ns/missing' does not exist",
        "listeners[old-tls]: tls.min_version: 'SSLv3' is not a TLS version",
        "listeners[http-l4]: l4_routes: an HTTP listener has no stream routes",
        f"{RID}: hostnames: a passthrough route needs SNI hostnames",
    ]
    for reason in expected:
        assert reason in errors, (reason, errors)
    # Different address families and transports may share a port.
    assert not any("listeners[v6]: port" in e for e in errors)
    assert not any("listeners[udp]: port" in e for e in errors)


def test_virtual_host_errors() -> None:
    route = Route(P, MATCH_ALL, Forward("g"))
    listener = Listener("https", 443, Protocol.HTTPS, tls=ListenerTLS(), virtual_hosts=(
        VirtualHost(("a.com", "Bad_Host"), (route, route)),
        VirtualHost(("a.com",), certificate="ns/nokey"),
        VirtualHost(()),
    ), l4_routes=(L4Route(dataclasses.replace(P, role="pt"), "g", ("a.com", "-bad-")),))
    errors = reasons(config_with(listeners=(listener,), certificates=(Certificate("ns/nokey", "ns", "nokey", CERT),)))
    for reason in [
        "listeners[https].virtual_hosts[Bad_Host]: hostnames: 'Bad_Host' is not a valid hostname",
        f"listeners[https].virtual_hosts[Bad_Host]: routes: route id '{RID}' appears twice",
        "listeners[https].virtual_hosts[a.com]: hostnames: 'a.com' is also served by another virtual host",
        "listeners[https].virtual_hosts[a.com]: certificate: certificate 'ns/nokey' has no certificate chain and key",
        "listeners[https].virtual_hosts[]: hostnames: must not be empty (use '*' for any host)",
        f"{RID}#pt: hostnames: 'a.com' is passed through here but also terminated by a virtual host of listener "
        "'https'",
        f"{RID}#pt: hostnames: '-bad-' is not a valid hostname",
    ]:
        assert reason in errors, (reason, errors)


# ---------------------------------------------------------------------------------------------------------------
# Backends, certificates, settings


def test_backend_group_errors() -> None:
    groups = (
        BackendGroup("g", (Backend("a", weight=0), Backend("b", weight=0))),
        BackendGroup("g2", (Backend("neg", weight=-1, endpoints=(Endpoint("10.0.0.300", 0),)),
                            Backend("ext", external_name="Not A Name"),
                            Backend("ext2", external_name="db.example.com", external_port=5432,
                                    endpoints=(Endpoint("10.0.0.1", 1),)),
                            Backend("svc", service=ServiceRef("ns", "svc", 0)),
                            Backend("tls-http", tls=UpstreamTLS()),
                            Backend("tls", protocol=UpstreamProtocol.HTTPS,
                                    tls=UpstreamTLS(verify=True, verify_depth=-1, server_name="*.x",
                                                    protocols=("SSLv3",), ciphers="A B")),
                            Backend("tls-ca", protocol=UpstreamProtocol.GRPCS,
                                    tls=UpstreamTLS(secret="ns/noca", verify=True)),
                            Backend("filters", filters=(Hsts(1),)))),  # type: ignore[arg-type]
        BackendGroup("g2"),
        BackendGroup("hash", balancing=ConsistentHash(Template())),
        BackendGroup("cookie", balancing=CookieAffinity(SessionCookie("bad name", path="/a;b", domain="bad domain",
                                                                      max_age_s=-1))),
    )
    errors = reasons(config_with(groups=groups, certificates=(Certificate("ns/noca", "ns", "noca", CERT, KEY),)))
    for reason in [
        "backend_groups[g]: backends: weights are all zero",
        "backend_groups[g2]: name: duplicate backend group name",
        "backend_groups[g2]: backends[0].weight: must be >= 0",
        "backend_groups[g2]: backends[0].endpoints[0].address: '10.0.0.300' is not an IP address",
        "backend_groups[g2]: backends[0].endpoints[0].port: 0 is not between 1 and 65535",
        "backend_groups[g2]: backends[1].external_name: 'Not A Name' is not a valid DNS name",
        "backend_groups[g2]: backends[1].external_port: an external name needs a port between 1 and 65535",
        "backend_groups[g2]: backends[2]: an external name and endpoints exclude each other",
        "backend_groups[g2]: backends[3].service.port: 0 is not between 1 and 65535",
        "backend_groups[g2]: backends[4].tls: TLS settings need protocol https or grpcs, not http",
        "backend_groups[g2]: backends[5].tls.verify: verifying the backend needs a secret with a CA bundle",
        "backend_groups[g2]: backends[5].tls.verify_depth: must be >= 0",
        "backend_groups[g2]: backends[5].tls.server_name: '*.x' is not a valid hostname",
        "backend_groups[g2]: backends[5].tls.protocols: 'SSLv3' is not a TLS version",
        "backend_groups[g2]: backends[5].tls.ciphers: 'A B' is not an OpenSSL cipher list",
        "backend_groups[g2]: backends[6].tls.secret: certificate 'ns/noca' has no CA bundle to verify with",
        "backend_groups[g2]: backends[7].filters[0]: only header filters apply to a backend",
        "backend_groups[hash]: balancing.key: must not be empty",
        "backend_groups[cookie]: balancing.cookie.name: 'bad name' is not a valid cookie name",
        "backend_groups[cookie]: balancing.cookie.path: '/a;b' must be a path without ';', ',' or spaces",
        "backend_groups[cookie]: balancing.cookie.domain: 'bad domain' is not a valid cookie domain",
        "backend_groups[cookie]: balancing.cookie.max_age_s: must be >= 0",
    ]:
        assert reason in errors, (reason, errors)


def test_empty_group_is_valid_and_means_503() -> None:
    assert reasons(config_with(groups=(BackendGroup("g"), BackendGroup("g2")))) == []


def test_certificate_and_settings_errors() -> None:
    certs = (Certificate("ns/a", "ns", "a", "not pem", "not a key", "nope"), Certificate("ns/a", "ns", "a"))
    settings = Settings(max_worker_connections=0, worker_processes=0,
                        keepalive=dataclasses.replace(Settings().keepalive, connections=-1),
                        forwarded=dataclasses.replace(Settings().forwarded, forwarded_for_header="X Bad",
                                                      trusted_proxies=("nope",)))
    errors = reasons(config_with(certificates=certs, settings=settings))
    for reason in [
        "certificates[ns/a]: id: duplicate certificate id",
        "certificates[ns/a]: certificate_pem: not a PEM certificate",
        "certificates[ns/a]: private_key_pem: not a PEM private key",
        "certificates[ns/a]: ca_pem: not a PEM certificate bundle",
        "settings: max_worker_connections: must be >= 1",
        "settings: worker_processes: must be >= 1",
        "settings: keepalive: values must be >= 0",
        "settings: forwarded.forwarded_for_header: not a valid HTTP header name",
        "settings: forwarded.trusted_proxies[0]: 'nope' is not an IP address or CIDR",
    ]:
        assert reason in errors, (reason, errors)


def test_template_names_must_be_tokens() -> None:
    key = Template((RequestValue(VarKind.COOKIE, "bad;name"),))
    errors = reasons(config_with(groups=(BackendGroup("g", balancing=ConsistentHash(key)), group("g2"))))
    assert "backend_groups[g]: balancing.key: 'bad;name' is not a valid cookie name" in errors
    assert reasons(config_with(groups=(BackendGroup("g", balancing=ConsistentHash(
        Template((RequestValue(VarKind.QUERY, "a\nb"),)))), group("g2")))) == [
        "backend_groups[g]: balancing.key: query parameter name contains control characters"]
