"""The routing IR: identities, normalisation, the plain-data export the data plane consumes, and the reference
matching semantics."""

from __future__ import annotations

import json

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
    CookieMatch,
    Endpoint,
    Forward,
    HeaderMatch,
    HeaderOp,
    HostMatch,
    L4Route,
    Listener,
    ListenerTLS,
    MethodMatch,
    Not,
    Or,
    PathKind,
    PathMatch,
    PathRewrite,
    Protocol,
    Provenance,
    QueryMatch,
    RegexRewrite,
    ReplaceFullPath,
    ReplacePrefixMatch,
    RequestHeaders,
    RequestValue,
    Route,
    RoutingConfig,
    SessionCookie,
    SourceIPAccess,
    SourceIPMatch,
    StringMatchKind,
    Template,
    VarKind,
    VirtualHost,
    WildcardMode,
    export,
)
from netplane.routing.matching import (
    Request,
    evaluate,
    path_matches,
    rewrite_path,
    route_request,
    segment_prefix_matches,
)

pytestmark = pytest.mark.unit

PEM_CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
PEM_KEY = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"


def prov(name: str = "web", rule: int = 0, match: int = 0, role: str = "") -> Provenance:
    return Provenance("Ingress", "k-1", name, rule, match, role=role, created="2026-01-01T00:00:00Z")


def sample_config() -> RoutingConfig:
    route = Route(prov(), PathMatch(PathKind.PREFIX, "/"), Forward("k-1/svc:80"),
                  (RequestHeaders(set=(HeaderOp("X-Start", Template(("t=", RequestValue(VarKind.MSEC)))),)),),
                  hostname="demo.local")
    group = BackendGroup("k-1/svc:80", (Backend("k-1/svc:80", endpoints=(Endpoint("10.0.0.6", 8080),
                                                                         Endpoint("10.0.0.5", 8080))),))
    return RoutingConfig(
        listeners=(Listener("https", 443, Protocol.HTTPS, tls=ListenerTLS("k-1/tls"),
                            virtual_hosts=(VirtualHost(("demo.local",), (route,), certificate="k-1/tls"),)),
                   Listener("http", 80, Protocol.HTTP, virtual_hosts=(VirtualHost(("demo.local",), (route,)),))),
        backend_groups=(group,),
        certificates=(Certificate("k-1/tls", "k-1", "tls", PEM_CERT, PEM_KEY),))


def test_route_id_derives_from_provenance() -> None:
    assert prov().route_id == "ingress/k-1/web/0/0"
    assert prov(rule=2, match=3, role="app-root").route_id == "ingress/k-1/web/2/3#app-root"
    route = Route(prov("x", 1, 4), MATCH_ALL, Forward("g"))
    assert route.id == "ingress/k-1/x/1/4"
    # The creation time orders routes but is not part of their identity.
    assert Provenance("HTTPRoute", "a", "b", created="x").route_id == Provenance("HTTPRoute", "a", "b").route_id


def test_set_like_fields_are_normalised() -> None:
    assert MethodMatch(("POST", "GET", "POST")).methods == ("GET", "POST")
    assert SourceIPMatch(("10.0.0.0/8", "1.2.3.4/32")).cidrs == ("1.2.3.4/32", "10.0.0.0/8")
    assert VirtualHost(("b.com", "a.com")).hostnames == ("a.com", "b.com")
    assert SourceIPAccess(allow=("b", "a")).allow == ("a", "b")
    assert Backend("b", endpoints=(Endpoint("10.0.0.2", 1), Endpoint("10.0.0.1", 1), Endpoint("10.0.0.1", 1))
                   ).endpoints == (Endpoint("10.0.0.1", 1), Endpoint("10.0.0.2", 1))


def test_config_sorts_listeners_groups_certificates_and_virtual_hosts() -> None:
    config = RoutingConfig(
        listeners=(Listener("b", 443, Protocol.HTTPS, tls=ListenerTLS()), Listener("a", 80, Protocol.HTTP,
                   virtual_hosts=(VirtualHost(("*",)), VirtualHost(("*.x.com",)), VirtualHost(("a.x.com",)),
                                  VirtualHost(("*.a.x.com",))))),
        backend_groups=(BackendGroup("z"), BackendGroup("a")),
        certificates=(Certificate("ns/b", "ns", "b"), Certificate("ns/a", "ns", "a")))
    assert [lst.name for lst in config.listeners] == ["a", "b"]
    assert [vh.hostnames[0] for vh in config.listeners[0].virtual_hosts] == ["a.x.com", "*.a.x.com", "*.x.com", "*"]
    assert [g.name for g in config.backend_groups] == ["a", "z"]
    assert [c.id for c in config.certificates] == ["ns/a", "ns/b"]
    assert config.backend_group("z") == BackendGroup("z")
    assert config.backend_group("missing") is None
    assert config.certificate("ns/a") is not None


def test_export_shape() -> None:
    data = sample_config().to_data()
    assert data["version"] == 1
    assert [lst["name"] for lst in data["listeners"]] == ["http", "https"]
    route = data["listeners"][0]["virtual_hosts"][0]["routes"][0]
    assert route == {
        "id": "ingress/k-1/web/0/0",
        "provenance": {"kind": "Ingress", "namespace": "k-1", "name": "web", "rule_index": 0, "match_index": 0,
                       "role": "", "created": "2026-01-01T00:00:00Z"},
        "match": {"type": "path", "kind": "prefix", "value": "/", "ignore_case": False},
        "action": {"type": "forward", "backend_group": "k-1/svc:80", "canaries": []},
        "filters": [{"type": "request-headers", "add": [], "remove": [],
                     "set": [{"name": "X-Start", "value": [{"text": "t="}, {"var": "msec", "name": ""}]}]}],
        "hostname": "demo.local",
        "priority": 0,
        "timeouts": {"connect_ms": None, "send_ms": None, "read_ms": None, "request_ms": None,
                     "backend_request_ms": None},
        "retry": None,
        "max_body_bytes": None,
    }
    group = data["backend_groups"][0]
    assert group["balancing"] == {"type": "round-robin"}
    assert [e["address"] for e in group["backends"][0]["endpoints"]] == ["10.0.0.5", "10.0.0.6"]
    assert data["listeners"][1]["tls"] == {"default_certificate": "k-1/tls", "min_version": "TLSv1.2"}
    assert data["settings"]["max_worker_connections"] == 16384


def test_export_match_ast_and_balancing_discriminators() -> None:
    match = And((Or((HeaderMatch("x", StringMatchKind.REGEX, "^a"), CookieMatch("c", StringMatchKind.PRESENT))),
                 Not(QueryMatch("q", value="1")), HostMatch("*.a.com", WildcardMode.ONE_LABEL)))
    assert export(match) == {"type": "and", "matches": [
        {"type": "or", "matches": [
            {"type": "header", "name": "x", "kind": "regex", "value": "^a", "ignore_case": False, "invert": False},
            {"type": "cookie", "name": "c", "kind": "present", "value": "", "ignore_case": False, "invert": False}]},
        {"type": "not", "match": {"type": "query", "name": "q", "kind": "exact", "value": "1", "ignore_case": False,
                                  "invert": False}},
        {"type": "host", "hostname": "*.a.com", "wildcard": "one-label"}]}
    assert export(ConsistentHash(Template.of(VarKind.HEADER, "x-user"))) == {
        "type": "consistent-hash", "key": [{"var": "header", "name": "x-user"}]}
    assert export(CookieAffinity(SessionCookie("S", max_age_s=10)))["cookie"]["name"] == "S"
    canary = Canary("g2", prov(role="canary"), weight=10, header="X-Canary")
    assert export(Forward("g", (canary,)))["canaries"][0]["provenance"]["role"] == "canary"
    assert export(L4Route(prov(role="passthrough"), "g", ("a.com",)))["id"] == "ingress/k-1/web/0/0#passthrough"


def test_json_is_canonical_and_deterministic() -> None:
    config = sample_config()
    text = config.to_json()
    assert text == json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    permuted = RoutingConfig(tuple(reversed(config.listeners)), config.backend_groups, config.certificates)
    assert permuted.to_json() == text
    assert permuted.digest() == config.digest()
    assert len(config.digest()) == 64


def test_private_keys_can_be_left_out() -> None:
    config = sample_config()
    assert config.to_data()["certificates"][0]["private_key_pem"] == PEM_KEY
    redacted = config.to_data(include_private_keys=False)
    assert redacted["certificates"][0]["private_key_pem"] == ""
    assert redacted["certificates"][0]["certificate_pem"] == PEM_CERT
    assert PEM_KEY not in config.to_json(include_private_keys=False)


def test_template_helpers() -> None:
    assert Template.literal("x").parts == ("x",) and Template.literal("").parts == ()
    assert Template.of(VarKind.COOKIE, "sid").parts == (RequestValue(VarKind.COOKIE, "sid"),)


@pytest.mark.parametrize(("rewrite", "match", "path", "expected"), [
    # ingress-nginx rewrite-target "/$2" on "/something(/|$)(.*)" (nginx rewrite: the whole path is replaced).
    (RegexRewrite("^/something(/|$)(.*)", "/$2", ignore_case=True), None, "/something", "/"),
    (RegexRewrite("^/something(/|$)(.*)", "/$2", ignore_case=True), None, "/something/", "/"),
    (RegexRewrite("^/something(/|$)(.*)", "/$2", ignore_case=True), None, "/Something/new", "/new"),
    (RegexRewrite("^/foo/bar/(.+)", "/new/backend/$1"), None, "/foo/bar/bar", "/new/backend/bar"),
    (RegexRewrite("^/", "/"), None, "/any/thing", "/"),
    (RegexRewrite("^/x", "/y"), None, "/other", "/other"),
    # ALB: ngx.re.sub replaces the matched part only.
    (RegexRewrite("^/api", "/v2", whole_path=False), None, "/api/users", "/v2/users"),
    # Gateway API URLRewrite.
    (ReplacePrefixMatch("/one"), PathMatch(PathKind.PREFIX, "/prefix/one"), "/prefix/one/two", "/one/two"),
    (ReplacePrefixMatch("/"), PathMatch(PathKind.PREFIX, "/strip-prefix"), "/strip-prefix/three", "/three"),
    (ReplacePrefixMatch("/"), PathMatch(PathKind.PREFIX, "/strip-prefix"), "/strip-prefix", "/"),
    (ReplacePrefixMatch("/new"), PathMatch(PathKind.PREFIX, "/old/"), "/old/x", "/new/x"),
    (ReplacePrefixMatch("/b"), PathMatch(PathKind.STARTS_WITH, "/a"), "/abc", "/bbc"),
    (ReplaceFullPath("/test"), PathMatch(PathKind.PREFIX, "/full"), "/full/one/two", "/test"),
])
def test_rewrite_path(rewrite: PathRewrite, match: PathMatch | None, path: str, expected: str) -> None:
    assert rewrite_path(rewrite, match, path) == expected


def test_config_validate_delegates() -> None:
    assert sample_config().validate() == []
    broken = RoutingConfig(listeners=(Listener("http", 80, Protocol.HTTP, virtual_hosts=(
        VirtualHost(("a.com",), (Route(prov(), MATCH_ALL, Forward("nope")),)),)),))
    assert broken.validate() == [("ingress/k-1/web/0/0", "action.backend_group: backend group 'nope' does not exist")]


# ---------------------------------------------------------------------------------------------------------------
# Reference matching semantics


@pytest.mark.parametrize(("prefix", "path", "expected"), [
    ("/", "/", True), ("/", "/anything", True), ("/foo", "/foo", True), ("/foo", "/foo/", True),
    ("/foo", "/foo/bar", True), ("/foo", "/foobar", False), ("/foo/", "/foo", True), ("/foo/", "/foobar", False),
    ("/abc", "/abcd", False), ("/abc", "/ab", False),
])
def test_segment_prefix(prefix: str, path: str, expected: bool) -> None:
    assert segment_prefix_matches(prefix, path) is expected


@pytest.mark.parametrize(("match", "path", "expected"), [
    (PathMatch(PathKind.EXACT, "/a"), "/a", True),
    (PathMatch(PathKind.EXACT, "/a"), "/A", False),
    (PathMatch(PathKind.EXACT, "/a", ignore_case=True), "/A", True),
    (PathMatch(PathKind.STARTS_WITH, "/a"), "/ab", True),
    (PathMatch(PathKind.STARTS_WITH, "/A", ignore_case=True), "/ab", True),
    (PathMatch(PathKind.REGEX, "^/a+$"), "/aaa", True),
    (PathMatch(PathKind.REGEX, "b"), "/abc", True),  # searched, not anchored
    (PathMatch(PathKind.REGEX, "^/x(/|$)(.*)", ignore_case=True), "/X/y", True),
    (PathMatch(PathKind.REGEX, r"^/\d+$"), "/\u0661", False),  # ASCII classes, as PCRE
])
def test_path_matches(match: PathMatch, path: str, expected: bool) -> None:
    assert path_matches(match, path) is expected


def test_evaluate_predicates() -> None:
    request = Request("/p", host="a.example.com:8443", method="post", headers={"X-Env": "prod", "X-Ver": "v2"},
                      query={"debug": "1"}, cookies={"sid": "abc"}, source_ip="10.1.2.3")
    assert evaluate(MethodMatch(("POST",)), request)
    assert evaluate(HeaderMatch("x-env", value="prod"), request)
    assert not evaluate(HeaderMatch("x-env", value="PROD"), request)
    assert evaluate(HeaderMatch("x-env", value="PROD", ignore_case=True), request)
    assert evaluate(HeaderMatch("x-ver", StringMatchKind.PREFIX, "v"), request)
    assert evaluate(HeaderMatch("x-ver", StringMatchKind.SUFFIX, "2"), request)
    assert evaluate(HeaderMatch("x-missing", invert=True), request)
    assert not evaluate(HeaderMatch("x-missing", StringMatchKind.PRESENT), request)
    assert evaluate(QueryMatch("debug", StringMatchKind.REGEX, "^[01]$"), request)
    assert evaluate(CookieMatch("sid", StringMatchKind.PRESENT), request)
    assert evaluate(SourceIPMatch(("10.0.0.0/8",)), request)
    assert not evaluate(SourceIPMatch(("10.0.0.0/8",), invert=True), request)
    assert evaluate(HostMatch("*.example.com"), request)
    assert evaluate(Or((HeaderMatch("x-env", value="dev"), QueryMatch("debug", value="1"))), request)
    assert not evaluate(Not(MATCH_ALL), request)
    assert not evaluate(SourceIPMatch(("10.0.0.0/8",)), Request(source_ip="not-an-ip"))


def test_route_request_selects_virtual_host_then_first_route() -> None:
    config = sample_config()
    http = config.listeners[0]
    assert route_request(http, Request("/x", host="demo.local")) is not None
    assert route_request(http, Request("/x", host="other.local")) is None
