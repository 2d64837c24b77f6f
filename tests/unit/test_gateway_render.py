"""IR → gateway engine documents (netplane/dataplane/gateway/render.py) and the instance's document sync."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netplane.dataplane.gateway.config import CheckError, WafProfile
from netplane.dataplane.gateway.config import Listener as EngineListener
from netplane.dataplane.gateway.engine import BACKENDS, CERTIFICATES, VHOSTS, ControlError
from netplane.dataplane.gateway.render import EngineConfig, Source, Unenforced, render
from netplane.dataplane.gateway.upstreams import L4Listener, Passthrough, StreamPeer, Upstreams
from netplane.dataplane.ingress.instance import DocumentSync, Refusal, problems, unenforced_message
from netplane.routing import ir
from netplane.routing.ingress.settings import ControllerSettings
from netplane.routing.ingress.translate import Diagnostic, IngressInputs, translate
from tests.certificates import self_signed

SERVICE = {"metadata": {"name": "nginx-service", "namespace": "k-1"},
           "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}
SLICE = {"addressType": "IPv4", "metadata": {"name": "nginx-service-a", "namespace": "k-1",
                      "labels": {"kubernetes.io/service-name": "nginx-service"}},
         "ports": [{"name": "http", "port": 8080}],
         "endpoints": [{"addresses": ["10.16.0.5"], "conditions": {"ready": True}}]}


def ingress(name: str = "nginx-ingress", annotations: dict[str, str] | None = None, host: str = "demo.local",
            path: str = "/", path_type: str = "Prefix") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "k-1", "creationTimestamp": "2026-01-01T00:00:00Z",
                         "annotations": annotations or {}},
            "spec": {"ingressClassName": "nginx", "rules": [{"host": host, "http": {"paths": [
                {"path": path, "pathType": path_type,
                 "backend": {"service": {"name": "nginx-service", "port": {"number": 80}}}}]}}]}}


def rendered(*ingresses: dict[str, Any]) -> EngineConfig:
    translation = translate(IngressInputs(ingresses=list(ingresses), services=[SERVICE], endpoint_slices=[SLICE]))
    return render(translation.config)


def route(config: ir.Route | None = None, **kw: Any) -> ir.Route:
    base = dict(provenance=ir.Provenance("Ingress", "k-1", "r"), match=ir.MATCH_ALL, action=ir.Forward("g"))
    return ir.Route(**{**base, **kw})


def config_of(*routes: ir.Route, group: ir.BackendGroup | None = None) -> ir.RoutingConfig:
    group = group or ir.BackendGroup("g", (ir.Backend("k-1/s:80", endpoints=(ir.Endpoint("10.0.0.1", 80),)),))
    return ir.RoutingConfig(
        listeners=(ir.Listener("http", 80, ir.Protocol.HTTP,
                               virtual_hosts=(ir.VirtualHost(("a.example",), routes),)),),
        backend_groups=(group,))


def test_the_guide_ingress_maps_onto_the_engine_format() -> None:
    out = rendered(ingress(annotations={"nginx.ingress.kubernetes.io/rewrite-target": "/"}))
    assert out.listeners == (EngineListener(80), EngineListener(443, tls=True))
    assert set(out.vhosts) == {"http:80/demo.local", "https:443/demo.local"}
    doc = out.vhosts["http:80/demo.local"]
    assert doc["ports"] == [80] and doc["hostnames"] == ["demo.local"] and doc["wildcard"] == "one-label"
    [r] = doc["routes"]
    assert r["id"] == "ingress/k-1/nginx-ingress/0/0"
    # What the access log and ingress-nginx's metric labels name the route by.
    assert r["labels"] == {"namespace": "k-1", "ingress": "nginx-ingress", "service": "nginx-service", "path": "/"}
    assert r["match"] == {"path": {"type": "prefix", "value": "/"}}
    assert r["filters"] == [{"type": "rewrite", "path": {"type": "regex", "pattern": "^/", "replacement": "/",
                                                         "ignore_case": True, "whole": True}}]
    assert r["backend"] == {"policy": {"type": "round_robin"},
                            "backends": [{"name": "k-1/nginx-service:80|k-1/nginx-service:80", "weight": 1}]}
    assert r["retries"] == 2 and r["timeouts"] == {"connect_ms": 5000, "send_ms": 60000, "read_ms": 60000}
    assert out.backends == {"k-1/nginx-service:80|k-1/nginx-service:80":
                            {"endpoints": [{"address": "10.16.0.5", "port": 8080}]}}
    assert out.unenforced == ()
    assert [(s.kind, s.name) for s in out.vhost_sources["http:80/demo.local"]] == [("Ingress", "nginx-ingress")]


def test_route_labels_are_always_acceptable_to_the_engine() -> None:
    odd = route(match=ir.PathMatch(ir.PathKind.REGEX, "/a\tb" + "x" * 2000),
                provenance=ir.Provenance("HTTPRoute", "ns", "r"))
    [doc] = render(config_of(odd)).vhosts["http:80/a.example"]["routes"]
    # Not an Ingress (no ingress label), no Service behind the backend; the path cleaned and cut.
    assert doc["labels"] == {"namespace": "ns", "path": ("/ab" + "x" * 2000)[:1024]}


def test_snippet_headers_and_exact_paths() -> None:
    out = rendered(ingress(annotations={"nginx.ingress.kubernetes.io/configuration-snippet":
                                        'more_set_headers "X-Route: exact";'}, path="/x", path_type="Exact"))
    [r, *_] = out.vhosts["http:80/demo.local"]["routes"]
    assert r["match"] == {"path": {"type": "exact", "value": "/x"}}
    assert {"type": "response_headers", "set": [{"name": "X-Route", "value": "exact"}], "add": [],
            "remove": []} in r["filters"]


@pytest.mark.parametrize(("annotations", "feature"), [
    ({"nginx.ingress.kubernetes.io/limit-rate": "100"}, "response-rate-limit"),
    ({"nginx.ingress.kubernetes.io/proxy-body-size": "8m"}, "body-size"),
    ({"nginx.ingress.kubernetes.io/upstream-hash-by": "$request_uri"}, "hash-key"),
])
def test_features_the_engine_lacks_are_reported_not_dropped(annotations: dict[str, str], feature: str) -> None:
    out = rendered(ingress(annotations=annotations))
    assert feature in {u.feature for u in out.unenforced}, out.unenforced
    item = next(u for u in out.unenforced if u.feature == feature)
    assert (item.kind, item.namespace, item.name) == ("Ingress", "k-1", "nginx-ingress")
    assert "not enforced yet" in unenforced_message(item)
    assert out.vhosts["http:80/demo.local"]["routes"], "the route itself still serves"


LIMITS = "nginx.ingress.kubernetes.io/"


def test_rate_limits_map_to_the_rate_limit_filter() -> None:
    out = rendered(ingress(annotations={
        LIMITS + "limit-rps": "5", LIMITS + "limit-rpm": "100", LIMITS + "limit-connections": "3",
        LIMITS + "limit-burst-multiplier": "2", LIMITS + "limit-allowlist": "10.0.0.0/8, 192.168.1.1"}))
    [r] = out.vhosts["http:80/demo.local"]["routes"]
    assert r["filters"][0] == {
        "type": "rate_limit", "zone": "ingress/k-1/nginx-ingress/0/0",
        "rates": [{"limit": 5, "unit": "second", "burst": 10}, {"limit": 100, "unit": "minute", "burst": 200}],
        "allowlist": ["10.0.0.0/8", "192.168.1.1/32"], "status": 503, "connections": 3, "connection_status": 503}
    assert out.unenforced == () and out.waf_profiles == ()
    # The default burst multiplier is 5; without limit-connections there is no connection limit.
    [r] = rendered(ingress(annotations={LIMITS + "limit-rps": "4"})).vhosts["http:80/demo.local"]["routes"]
    assert r["filters"][0] == {"type": "rate_limit", "zone": "ingress/k-1/nginx-ingress/0/0",
                               "rates": [{"limit": 4, "unit": "second", "burst": 20}], "allowlist": [],
                               "status": 503}


def test_rate_limit_statuses_and_keys_from_the_ir() -> None:
    limit = ir.RateLimit(connections=2, status_code=429, connection_status_code=430)
    out = render(config_of(route(filters=(limit,))))
    doc = out.vhosts["http:80/a.example"]["routes"][0]["filters"][0]
    assert (doc["rates"], doc["status"], doc["connections"], doc["connection_status"]) == ([], 429, 2, 430)
    keyed = ir.RateLimit(connections=2, key=ir.Template.of(ir.VarKind.HEADER, "X-User"))
    out = render(config_of(route(filters=(keyed,))))
    assert [u.feature for u in out.unenforced] == ["rate-limit-key"]
    assert out.vhosts["http:80/a.example"]["routes"][0]["filters"][0]["connections"] == 2
    assert "filters" not in render(config_of(route(filters=(ir.RateLimit(),)))).vhosts["http:80/a.example"][
        "routes"][0]


def test_modsecurity_maps_to_the_waf_filter_and_its_profile() -> None:
    out = rendered(ingress(annotations={LIMITS + "enable-modsecurity": "true"}))
    [r] = out.vhosts["http:80/demo.local"]["routes"]
    # ingress-nginx's modsecurity.conf runs the engine in DetectionOnly unless told otherwise.
    assert r["filters"] == [{"type": "waf", "mode": "detection-only", "owasp_crs": False, "request_body": True}]
    assert out.waf_profiles == (WafProfile(),) and out.unenforced == ()
    out = rendered(ingress(annotations={
        LIMITS + "enable-modsecurity": "true", LIMITS + "enable-owasp-core-rules": "true",
        LIMITS + "modsecurity-transaction-id": "tx-$request_id",
        LIMITS + "modsecurity-snippet": "SecRuleEngine On\nSecRequestBodyAccess Off"}))
    [r] = out.vhosts["http:80/demo.local"]["routes"]
    assert r["filters"] == [{"type": "waf", "mode": "blocking", "owasp_crs": True, "request_body": False,
                             "transaction_id": [{"text": "tx-"}, {"var": "request-id"}]}]
    assert out.waf_profiles == (WafProfile(blocking=True, owasp_crs=True, request_body=False),)
    off = rendered(ingress(annotations={LIMITS + "enable-modsecurity": "true",
                                        LIMITS + "modsecurity-snippet": "SecRuleEngine Off"}))
    assert "filters" not in off.vhosts["http:80/demo.local"]["routes"][0] and off.waf_profiles == ()


def test_waf_and_connection_limits_towards_other_protocols_are_reported_and_left_out() -> None:
    # HTTPS and gRPC backends continue in their protocol's location, which has no ModSecurity and no log phase.
    out = rendered(ingress(annotations={LIMITS + "backend-protocol": "HTTPS", LIMITS + "enable-modsecurity": "true",
                                        LIMITS + "limit-connections": "3", LIMITS + "limit-rps": "2"}))
    [r] = out.vhosts["http:80/demo.local"]["routes"]
    assert [f["type"] for f in r["filters"]] == ["rate_limit"] and "connections" not in r["filters"][0]
    assert {u.feature for u in out.unenforced} >= {"waf", "connection-limit"} and out.waf_profiles == ()
    assert "not enforced yet" in unenforced_message(next(u for u in out.unenforced if u.feature == "waf"))


def test_waf_profiles_are_collected_once_in_order() -> None:
    header_id = ir.Template((ir.RequestValue(ir.VarKind.HEADER, "X-Req"),))
    routes = [route(filters=(ir.Waf(mode=ir.WafMode.BLOCKING, transaction_id=header_id),)),
              route(filters=(ir.Waf(),)), route(filters=(ir.Waf(mode=ir.WafMode.BLOCKING),))]
    out = render(config_of(*routes))
    assert out.waf_profiles == (WafProfile(), WafProfile(blocking=True))
    first = out.vhosts["http:80/a.example"]["routes"][0]["filters"][0]
    assert first["transaction_id"] == [{"var": "header", "name": "X-Req"}]
    raw = render(config_of(route(filters=(ir.Waf(raw_rules='SecRule ARGS "@rx x" "id:1,deny"'),))))
    assert [u.feature for u in raw.unenforced] == ["waf-rules"]
    assert raw.vhosts["http:80/a.example"]["routes"][0]["filters"][0]["type"] == "waf"


def test_canaries_render_as_alternative_groups_of_the_route() -> None:
    canary = ingress("canary", {"nginx.ingress.kubernetes.io/canary": "true",
                                "nginx.ingress.kubernetes.io/canary-weight": "5",
                                "nginx.ingress.kubernetes.io/canary-weight-total": "50",
                                "nginx.ingress.kubernetes.io/canary-by-header": "X-Canary",
                                "nginx.ingress.kubernetes.io/canary-by-header-pattern": "^(yes|on)$",
                                "nginx.ingress.kubernetes.io/canary-by-cookie": "beta"})
    out = rendered(ingress(), canary)
    assert not any(u.feature == "canary" for u in out.unenforced), out.unenforced
    main = "k-1/nginx-service:80|k-1/nginx-service:80"
    for name in ("http:80/demo.local", "https:443/demo.local"):
        [r] = out.vhosts[name]["routes"]
        assert r["backend"] == {
            "policy": {"type": "round_robin"}, "backends": [{"name": main, "weight": 1}],
            "canaries": [{"policy": {"type": "round_robin"}, "backends": [{"name": main, "weight": 1}],
                          "weight": 5, "weight_total": 50, "sticky": True, "header": "X-Canary",
                          "header_pattern": "^(yes|on)$", "cookie": "beta",
                          # The canary's name in the access log and the metrics (ingress-nginx's upstream name).
                          "label": "k-1-nginx-service-80"}]}


def test_a_canary_group_is_its_own_source_s_problem() -> None:
    main = ir.BackendGroup("g", (ir.Backend("k-1/s:80"),))
    other = ir.BackendGroup("c", (ir.Backend("k-1/c:443", protocol=ir.UpstreamProtocol.H2C),))
    canary = ir.Canary("c", ir.Provenance("Ingress", "k-1", "canary"), weight=100, header="X-C", header_value="1",
                       sticky=False)
    config = config_of(route(action=ir.Forward("g", (canary, ir.Canary("missing", canary.provenance)))), group=main)
    out = render(ir.RoutingConfig(listeners=config.listeners, backend_groups=(main, other)))
    backend = out.vhosts["http:80/a.example"]["routes"][0]["backend"]
    assert backend["canaries"] == [{"policy": {"type": "round_robin"}, "backends": [{"name": "c|k-1/c:443",
                                                                                    "weight": 1}],
                                    "weight": 100, "weight_total": 100, "sticky": False, "header": "X-C",
                                    "header_value": "1"}]
    assert [(u.feature, u.name) for u in out.unenforced] == [("backend-protocol", "canary")]
    assert set(out.backends) == {"g|k-1/s:80", "c|k-1/c:443"}


def test_cors_source_access_and_hsts_filters() -> None:
    out = rendered(ingress(annotations={
        "nginx.ingress.kubernetes.io/enable-cors": "true",
        "nginx.ingress.kubernetes.io/cors-allow-origin": "https://app.example, https://*.example.org:8443",
        "nginx.ingress.kubernetes.io/cors-allow-methods": "GET, POST",
        "nginx.ingress.kubernetes.io/cors-allow-headers": "X-A",
        "nginx.ingress.kubernetes.io/cors-expose-headers": "X-B",
        "nginx.ingress.kubernetes.io/cors-allow-credentials": "false",
        "nginx.ingress.kubernetes.io/cors-max-age": "600",
        "nginx.ingress.kubernetes.io/whitelist-source-range": "10.0.0.0/8, 192.0.2.7",
        "nginx.ingress.kubernetes.io/denylist-source-range": "10.1.0.0/16"}))
    assert out.unenforced == ()
    [r] = out.vhosts["http:80/demo.local"]["routes"]
    access, cors, *_ = r["filters"]
    assert access == {"type": "source_ip_access", "allow": ["10.0.0.0/8", "192.0.2.7/32"], "deny": ["10.1.0.0/16"],
                      "status": 403}
    assert cors == {"type": "cors", "allow_origins": ["https://*.example.org:8443", "https://app.example"],
                    "allow_methods": ["GET", "POST"], "allow_headers": ["X-A"], "expose_headers": ["X-B"],
                    "allow_credentials": False, "max_age": 600}
    defaults = rendered(ingress(annotations={"nginx.ingress.kubernetes.io/enable-cors": "true"}))
    cors = defaults.vhosts["http:80/demo.local"]["routes"][0]["filters"][0]
    assert cors["allow_origins"] == ["*"] and cors["allow_credentials"] is True and cors["max_age"] == 1_728_000
    assert ir.Cors().max_age_s is None and "max_age" not in render(config_of(route(filters=(ir.Cors(),)))).vhosts[
        "http:80/a.example"]["routes"][0]["filters"][0]
    assert not any(f["type"] == "hsts" for f in r.get("filters", [])), "HSTS never on plain HTTP"


def test_mirrors_carry_their_group() -> None:
    main = ir.BackendGroup("g", (ir.Backend("k-1/s:80"),))
    shadow = ir.BackendGroup("m", (ir.Backend("k-1/shadow:80", weight=3),), ir.ConsistentHash(
        ir.Template.of(ir.VarKind.SOURCE_IP)))
    tls = ir.BackendGroup("t", (ir.Backend("k-1/tls:443", protocol=ir.UpstreamProtocol.HTTPS),))
    config = config_of(route(filters=(ir.RequestMirror("m", percent=25), ir.RequestMirror("gone"),
                                      ir.RequestMirror("t"))), group=main)
    out = render(ir.RoutingConfig(listeners=config.listeners, backend_groups=(main, shadow, tls)))
    assert out.vhosts["http:80/a.example"]["routes"][0]["filters"] == [
        {"type": "mirror", "backend": {"policy": {"type": "source_ip"},
                                       "backends": [{"name": "m|k-1/shadow:80", "weight": 3}]}, "percent": 25}]
    assert [(u.feature, u.detail) for u in out.unenforced] == [("mirror", "backend group gone does not exist"),
                                                               ("mirror", "copies to k-1/tls:443 (https)")]
    assert "m|k-1/shadow:80" in out.backends
    # The copy's Host and leaving the body out appear only when asked for.
    config = config_of(route(filters=(ir.RequestMirror("m", hostname="copy.example", body=False),)), group=main)
    out = render(ir.RoutingConfig(listeners=config.listeners, backend_groups=(main, shadow)))
    (mirror,) = out.vhosts["http:80/a.example"]["routes"][0]["filters"]
    assert (mirror["host"], mirror["body"]) == ("copy.example", False)


def test_hsts_renders_its_header_fields() -> None:
    # Where it applies (HTTPS with a certificate) is the translator's choice; the engine adds it over TLS only.
    hsts = render(config_of(route(filters=(ir.Hsts(86400, include_subdomains=False, preload=True),))))
    assert hsts.vhosts["http:80/a.example"]["routes"][0]["filters"] == [
        {"type": "hsts", "max_age": 86400, "include_subdomains": False, "preload": True}]
    assert hsts.unenforced == ()


def test_balancing_policies() -> None:
    def policy(balancing: ir.Balancing) -> Any:
        group = ir.BackendGroup("g", (ir.Backend("b"),), balancing)
        return render(config_of(route(), group=group)).vhosts["http:80/a.example"]["routes"][0]["backend"]["policy"]

    assert policy(ir.ConsistentHash(ir.Template.of(ir.VarKind.SOURCE_IP))) == {"type": "source_ip"}
    assert policy(ir.ConsistentHash(ir.Template.of(ir.VarKind.HEADER, "X-User"))) == {
        "type": "hash", "source": "header", "name": "X-User"}
    cookie = ir.CookieAffinity(ir.SessionCookie(name="S", path="/a", max_age_s=60, secure=False,
                                                same_site=ir.SameSite.LAX))
    assert policy(cookie) == {"type": "cookie", "cookie": {"name": "S", "path": "/a", "http_only": True,
                                                           "secure": False, "max_age": 60, "same_site": "Lax"}}
    # Unset Secure follows the request's scheme (ingress-nginx without session-cookie-secure).
    by_scheme = ir.CookieAffinity(ir.SessionCookie(name="S"))
    assert policy(by_scheme)["cookie"]["secure"] == "scheme"
    assert render(config_of(route(), group=ir.BackendGroup("g", (ir.Backend("b"),), by_scheme))).unenforced == ()


def test_match_trees_become_alternatives() -> None:
    match = ir.And((ir.PathMatch(ir.PathKind.PREFIX, "/a"),
                    ir.Or((ir.HeaderMatch("X-A", value="1"), ir.Not(ir.CookieMatch("c", ir.StringMatchKind.PRESENT)))),
                    ir.MethodMatch(("GET", "POST")), ir.MethodMatch(("GET",))))
    doc = render(config_of(route(match=match))).vhosts["http:80/a.example"]["routes"][0]
    assert doc["matches"] == [
        {"path": {"type": "prefix", "value": "/a"}, "methods": ["GET"],
         "headers": [{"name": "X-A", "type": "exact", "value": "1", "invert": False}]},
        {"path": {"type": "prefix", "value": "/a"}, "methods": ["GET"],
         "cookies": [{"name": "c", "type": "present", "invert": True}]},
    ]
    insensitive = ir.And((ir.PathMatch(ir.PathKind.EXACT, "/A.b", ignore_case=True),
                          ir.HeaderMatch("X", ir.StringMatchKind.PREFIX, "v.", ignore_case=True)))
    doc = render(config_of(route(match=insensitive))).vhosts["http:80/a.example"]["routes"][0]
    assert doc["match"] == {"path": {"type": "regex", "value": r"^/A\.b$", "ignore_case": True},
                            "headers": [{"name": "X", "type": "regex", "value": r"(?i)^v\.", "invert": False}]}


def test_inexpressible_matches_are_reported_and_left_out() -> None:
    out = render(config_of(route(match=ir.Not(ir.PathMatch(ir.PathKind.PREFIX, "/a")))))
    assert out.vhosts["http:80/a.example"]["routes"] == []
    assert [u.feature for u in out.unenforced] == ["match"]


def test_actions_and_filters() -> None:
    redirect = ir.Redirect(308, scheme="https", strip_trailing_slash=True)
    direct = ir.DirectResponse(503, "bad annotations")
    templated = ir.RequestHeaders(set=(ir.HeaderOp("X-T", ir.Template.of(ir.VarKind.MSEC)),
                                       ir.HeaderOp("X-L", ir.Template.literal("1"))))
    out = render(config_of(route(action=redirect), route(action=direct, filters=(templated, ir.RawSnippet("x")))))
    r1, r2 = out.vhosts["http:80/a.example"]["routes"]
    assert r1["filters"] == [{"type": "redirect", "status": 308, "scheme": "https", "strip_trailing_slash": True}]
    assert "backend" not in r1
    assert r2["filters"] == [{"type": "request_headers", "set": [{"name": "X-L", "value": "1"}], "add": [],
                              "remove": []}, {"type": "direct_response", "status": 503, "body": "bad annotations"}]
    assert {u.feature for u in out.unenforced} == {"header-template", "raw-snippet"}


def test_redirect_query_replaces_the_requests() -> None:
    moved = ir.Redirect(301, scheme="https", hostname="b.example", path=ir.ReplaceFullPath("/x"), query="")
    out = render(config_of(route(action=moved)))
    assert out.vhosts["http:80/a.example"]["routes"][0]["filters"] == [
        {"type": "redirect", "status": 301, "scheme": "https", "hostname": "b.example",
         "path": {"type": "full", "value": "/x"}, "query": "", "strip_trailing_slash": False}]
    assert out.unenforced == ()


def test_tls_certificates_and_l4() -> None:
    cert = ir.Certificate("k-1/tls", "k-1", "tls", "CERT", "KEY")
    default = ir.Certificate("k-1/default", "k-1", "default", "DCERT", "DKEY")
    passthrough = ir.L4Route(ir.Provenance("Ingress", "k-1", "pass"), "g", ("*.p.example",),
                             ir.WildcardMode.ONE_LABEL)
    tcp = ir.L4Route(ir.Provenance("Gateway", "k-1", "tcp"), "g", proxy_protocol=True)
    udp = ir.L4Route(ir.Provenance("Gateway", "k-1", "udp"), "g")
    group = ir.BackendGroup("g", (ir.Backend("k-1/s:53", endpoints=(ir.Endpoint("10.0.0.2", 5353),
                                                                     ir.Endpoint("fd00::2", 5353))),
                                  ir.Backend("k-1/t:53", weight=0, endpoints=(ir.Endpoint("10.0.0.3", 53),))))
    config = ir.RoutingConfig(
        listeners=(ir.Listener("https", 443, ir.Protocol.HTTPS, tls=ir.ListenerTLS("k-1/default"),
                               virtual_hosts=(ir.VirtualHost(("a.example",), (route(),), certificate="k-1/tls"),),
                               l4_routes=(passthrough,)),
                   ir.Listener("tcp", 9000, ir.Protocol.TCP, address="127.0.0.1", l4_routes=(tcp,)),
                   ir.Listener("udp", 9000, ir.Protocol.UDP, l4_routes=(udp,))),
        backend_groups=(group,), certificates=(cert, default))
    out = render(config)
    assert out.listeners == (EngineListener(443, tls=True),)
    assert out.certificates == {"k-1/tls": {"hostnames": ["a.example"], "certificate": "CERT", "key": "KEY"},
                                "k-1/default": {"hostnames": ["*"], "certificate": "DCERT", "key": "DKEY"}}
    assert out.unenforced == ()
    # Endpoints of the group, without the backend weighted 0.
    peers = (StreamPeer(ipaddress.ip_address("10.0.0.2"), 5353), StreamPeer(ipaddress.ip_address("fd00::2"), 5353))
    assert out.upstreams.passthrough == (Passthrough(443, ("*.p.example",), peers, one_label=True),)
    assert out.upstreams.l4 == (L4Listener(9000, False, ipaddress.ip_address("127.0.0.1"), peers, proxy_protocol=True),
                                L4Listener(9000, True, None, peers))
    assert render(config).upstreams == out.upstreams  # deterministic: an unchanged config never reloads


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(st.sampled_from([
    "nginx.ingress.kubernetes.io/enable-cors", "nginx.ingress.kubernetes.io/limit-rps",
    "nginx.ingress.kubernetes.io/rewrite-target", "nginx.ingress.kubernetes.io/use-regex",
    "nginx.ingress.kubernetes.io/canary", "nginx.ingress.kubernetes.io/affinity",
    "nginx.ingress.kubernetes.io/configuration-snippet", "nginx.ingress.kubernetes.io/ssl-redirect",
    "nginx.ingress.kubernetes.io/proxy-body-size"]), st.text(max_size=20), max_size=4),
    st.sampled_from(["Prefix", "Exact", "ImplementationSpecific"]), st.text(max_size=12))
def test_rendering_never_raises(annotations: dict[str, str], path_type: str, path: str) -> None:
    out = rendered(ingress(annotations=annotations, path="/" + path, path_type=path_type))
    for doc in out.vhosts.values():
        assert doc["ports"] and doc["hostnames"]


class FakeEngine:
    def __init__(self) -> None:
        self.reloads = 0
        self.listeners: tuple[EngineListener, ...] = ()
        self.upstreams = Upstreams()
        self.waf: tuple[WafProfile, ...] = ()
        self.no_modsecurity = False
        self.calls: list[tuple[str, str, str]] = []
        self.refuse: set[str] = set()

    def set_listeners(self, listeners: Iterable[EngineListener], upstreams: Upstreams | None = None) -> bool:
        wanted = (tuple(listeners), upstreams or self.upstreams)
        changed = wanted != (self.listeners, self.upstreams)
        self.listeners, self.upstreams = wanted
        return changed

    def set_waf_profiles(self, profiles: Iterable[WafProfile]) -> bool:
        wanted = tuple(sorted(set(profiles)))
        if wanted == self.waf:
            return False
        if self.no_modsecurity:
            raise CheckError("nginx", "unknown directive modsecurity")
        self.calls.append(("WAF", ",".join(p.name for p in wanted), ""))
        self.waf = wanted
        return True

    def put(self, kind: str, name: str, doc: Mapping[str, Any] | bytes) -> int:
        if name in self.refuse:
            raise ControlError(400, "refused")
        self.calls.append(("PUT", kind, name))
        return len(self.calls)

    def delete(self, kind: str, name: str) -> int:
        self.calls.append(("DELETE", kind, name))
        return len(self.calls)

    def put_certificate(self, name: str, hostnames: Iterable[str], cert_pem: str, key_pem: str) -> int:
        return self.put(CERTIFICATES, name, {})


def test_document_sync_pushes_only_what_changed() -> None:
    engine = FakeEngine()
    sync = DocumentSync(engine)
    first = sync.apply(rendered(ingress()))
    assert first.reloaded and first.pushed == {BACKENDS: 1, VHOSTS: 2}
    assert [c[1] for c in engine.calls] == [BACKENDS, VHOSTS, VHOSTS], "backends before the routes naming them"
    engine.calls.clear()
    assert sync.apply(rendered(ingress())).pushed == {} and engine.calls == []
    # An endpoint change rewrites the one backend document and nothing else, without a reload.
    moved = {**SLICE, "endpoints": [{"addresses": ["10.16.0.9"], "conditions": {"ready": True}}]}
    translation = translate(IngressInputs(ingresses=[ingress()], services=[SERVICE], endpoint_slices=[moved]))
    again = sync.apply(render(translation.config))
    assert not again.reloaded and engine.calls == [("PUT", BACKENDS, "k-1/nginx-service:80|k-1/nginx-service:80")]
    engine.calls.clear()
    gone = sync.apply(rendered())
    assert engine.calls[:2] == [("DELETE", VHOSTS, "http:80/demo.local"), ("DELETE", VHOSTS, "https:443/demo.local")]
    assert engine.calls[2] == ("DELETE", BACKENDS, "k-1/nginx-service:80|k-1/nginx-service:80")
    assert gone.pushed == {VHOSTS: 2, BACKENDS: 1}


def test_document_sync_keeps_refused_documents_for_the_next_try() -> None:
    engine = FakeEngine()
    engine.refuse.add("http:80/demo.local")
    sync = DocumentSync(engine)
    result = sync.apply(rendered(ingress()))
    assert [(r.kind, r.name) for r in result.refusals] == [(VHOSTS, "http:80/demo.local")]
    engine.refuse.clear()
    engine.calls.clear()
    sync.apply(rendered(ingress()))
    assert engine.calls == [("PUT", VHOSTS, "http:80/demo.local")]


def test_document_sync_offers_waf_profiles_before_the_routes_and_drops_them_after() -> None:
    engine = FakeEngine()
    sync = DocumentSync(engine)
    waf = {LIMITS + "enable-modsecurity": "true"}
    first = sync.apply(rendered(ingress(annotations=waf)))
    assert first.reloaded and engine.calls[0] == ("WAF", "detect", "")
    engine.calls.clear()
    blocking = sync.apply(rendered(ingress(annotations={**waf, LIMITS + "modsecurity-snippet": "SecRuleEngine On"})))
    assert blocking.reloaded
    assert engine.calls[0] == ("WAF", "detect,block", "") and engine.calls[-1] == ("WAF", "block", "")
    assert ("PUT", VHOSTS, "http:80/demo.local") in engine.calls[1:-1]
    # While a vhost is refused its previous version (and the profile it names) stays.
    engine.calls.clear()
    engine.refuse.add("http:80/demo.local")
    sync.apply(rendered(ingress()))
    assert engine.waf == (WafProfile(blocking=True),)
    engine.refuse.clear()
    sync.apply(rendered(ingress()))
    assert engine.waf == ()


def test_document_sync_without_modsecurity_refuses_only_the_waf_routes() -> None:
    engine = FakeEngine()
    engine.no_modsecurity = True
    engine.refuse.add("http:80/waf.local")
    sync = DocumentSync(engine)
    result = sync.apply(rendered(ingress(), ingress("waf", {LIMITS + "enable-modsecurity": "true"}, host="waf.local")))
    assert engine.waf == () and [(r.kind, r.name) for r in result.refusals] == [(VHOSTS, "http:80/waf.local")]
    assert ("PUT", VHOSTS, "http:80/demo.local") in engine.calls


def test_unenforced_messages_name_the_annotation() -> None:
    message = unenforced_message(Unenforced("Ingress", "k-1", "x", "body-size"))
    assert "proxy-body-size" in message and "not enforced yet" in message


def _with_secret(annotations: dict[str, str], secret_data: dict[str, str]) -> EngineConfig:
    secret = {"metadata": {"name": "upstream-ca", "namespace": "k-1"}, "type": "Opaque", "stringData": secret_data}
    translation = translate(IngressInputs(ingresses=[ingress(annotations=annotations)], services=[SERVICE],
                                          endpoint_slices=[SLICE], secrets=[secret]))
    return render(translation.config)


ANN = "nginx.ingress.kubernetes.io/"


def test_https_backends_without_settings_use_the_plain_location() -> None:
    out = rendered(ingress(annotations={ANN + "backend-protocol": "HTTPS"}))
    [doc] = out.backends.values()
    assert doc["protocol"] == "https" and "tls" not in doc and doc["endpoints"]
    assert out.upstreams == Upstreams() and out.unenforced == ()


def test_proxy_ssl_settings_become_one_tls_profile() -> None:
    cert, key = self_signed("backend.test")
    annotations = {ANN + "backend-protocol": "HTTPS", ANN + "proxy-ssl-secret": "k-1/upstream-ca",
                   ANN + "proxy-ssl-verify": "on", ANN + "proxy-ssl-verify-depth": "3",
                   ANN + "proxy-ssl-name": "backend.test", ANN + "proxy-ssl-server-name": "on"}
    out = _with_secret(annotations, {"ca.crt": cert, "tls.crt": cert, "tls.key": key})
    [profile] = out.upstreams.tls_profiles
    assert (profile.verify, profile.verify_depth, profile.server_name, profile.sni) == (True, 3, "backend.test", True)
    assert profile.ca_pem == cert and profile.certificate_pem == cert and profile.key_pem == key
    [doc] = out.backends.values()
    assert doc == {"endpoints": [{"address": "10.16.0.5", "port": 8080}], "protocol": "https", "tls": profile.id}
    assert out.unenforced == ()
    # Deterministic: the same input is the same profile id, so nothing reloads.
    assert _with_secret(annotations, {"ca.crt": cert, "tls.crt": cert, "tls.key": key}).upstreams == out.upstreams

    # The instance applies nginx.conf (with the profile) before pushing the backend that names it.
    class Ordered(FakeEngine):
        def put(self, kind: str, name: str, doc: Mapping[str, Any] | bytes) -> int:
            assert not isinstance(doc, bytes)
            assert doc.get("tls") in (None, *(p.id for p in self.upstreams.tls_profiles))
            return super().put(kind, name, doc)

    engine = Ordered()
    assert DocumentSync(engine).apply(out).reloaded and engine.upstreams == out.upstreams


def test_tls_settings_that_cannot_be_applied_fail_closed() -> None:
    cert, _ = self_signed("backend.test")
    _, other_key = self_signed("other.test")
    out = _with_secret({ANN + "backend-protocol": "HTTPS", ANN + "proxy-ssl-secret": "k-1/upstream-ca"},
                       {"tls.crt": cert, "tls.key": other_key})
    [doc] = out.backends.values()
    assert doc["endpoints"] == [] and out.upstreams.tls_profiles == ()
    assert [(u.feature, "does not belong" in u.detail) for u in out.unenforced] == [("backend-tls", True)]


def test_grpc_backends_offer_http2_on_tls_listeners() -> None:
    out = rendered(ingress(annotations={ANN + "backend-protocol": "GRPC"}))
    assert out.listeners == (EngineListener(80), EngineListener(443, tls=True, http2=True))
    [doc] = out.backends.values()
    assert doc["protocol"] == "grpc"
    # Port 80 cannot speak HTTP/2 next to HTTP/1.1 (nginx 1.22): said, not hidden.
    assert {u.feature for u in out.unenforced} == {"grpc-plaintext"}


def test_h2c_and_stream_protocols_on_http_routes_are_reported() -> None:
    group = ir.BackendGroup("g", (ir.Backend("k-1/s:80", protocol=ir.UpstreamProtocol.H2C,
                                             endpoints=(ir.Endpoint("10.0.0.1", 80),)),))
    out = render(config_of(route(), group=group))
    assert {u.feature for u in out.unenforced} == {"backend-protocol"}
    assert "protocol" not in out.backends["g|k-1/s:80"]


def test_ssl_passthrough_ingress_becomes_a_passthrough_with_its_endpoints() -> None:
    translation = translate(IngressInputs(ingresses=[ingress(annotations={ANN + "ssl-passthrough": "true"})],
                                          services=[SERVICE], endpoint_slices=[SLICE]),
                            ControllerSettings(enable_ssl_passthrough=True))
    out = render(translation.config)
    assert out.upstreams.passthrough == (
        Passthrough(443, ("demo.local",), (StreamPeer(ipaddress.ip_address("10.16.0.5"), 8080),), one_label=True),)
    # Terminated no more on 443; the stream peers are nginx.conf, not a backend document.
    assert set(out.vhosts) == {"http:80/demo.local"}
    assert set(out.backends) == {"k-1/nginx-service:80|k-1/nginx-service:80"} and out.unenforced == ()


def test_problems_are_the_events_of_one_sync() -> None:
    config = rendered(ingress(annotations={"nginx.ingress.kubernetes.io/proxy-body-size": "8m"}))
    diagnostics = (Diagnostic("warning", "Ingress", "k-1", "nginx-ingress", "careful"),
                   Diagnostic("error", "Secret", "k-1", "cert", "broken"))
    refusals = [Refusal(VHOSTS, "http:80/demo.local", "invalid regex"), Refusal(CERTIFICATES, "k-1/cert", "no")]
    instance = Source("IngressNginx", "ops", "main")
    found = [(p.kind, p.name, p.reason, p.message) for p in problems(diagnostics, config, refusals, ["x: bad"],
                                                                     instance)]
    assert found[:2] == [("Ingress", "nginx-ingress", "Warning", "careful"), ("Secret", "cert", "Invalid", "broken")]
    assert [f for f in found if f[2] == "NotEnforced" and "proxy-body-size" in f[3]]
    # Instance-wide settings the engine ignores are told on the instance.
    trusting = ir.RoutingConfig(settings=ir.Settings(forwarded=ir.ForwardedHeaders(trust_incoming=True)))
    [told] = problems((), render(trusting), [], [], instance)
    assert (told.kind, told.namespace, told.name, told.reason) == ("IngressNginx", "ops", "main", "NotEnforced")
    assert "use-forwarded-headers" in told.message
    # A refused virtual host is told on the objects whose routes it holds; anything else on the instance.
    assert found[-3:] == [
        ("Ingress", "nginx-ingress", "ConfigurationRefused",
         "the data plane refused vhost 'http:80/demo.local': invalid regex"),
        ("IngressNginx", "main", "ConfigurationRefused", "the data plane refused certificate 'k-1/cert': no"),
        ("IngressNginx", "main", "InvalidSetting", "spec.controller.config x: bad")]
