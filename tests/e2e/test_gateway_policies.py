"""Per-route policies of the gateway engine with real nginx on loopback: canaries, HSTS, CORS, source-IP access.

One engine (a plain and a TLS listener) serves the module; each test uses its own hostnames and backends. The
last test goes from Ingress annotations through the translator and the renderer into the engine.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from netplane.dataplane.gateway import ControlError, Engine, Listener
from netplane.dataplane.gateway.render import render
from netplane.routing.ingress.translate import IngressInputs, translate
from tests.e2e.gateway_harness import (
    ADDR,
    LOOPBACK,
    EchoServer,
    call,
    copies,
    echo_servers,
    ep,
    free_port,
    needs_engine,
    port_of,
    prefix,
    running_engine,
    to,
)

pytestmark = [pytest.mark.e2e, needs_engine]

# The backends' own copies of headers the engine must replace, not repeat.
BACKEND_HEADERS = {"loud": [("Strict-Transport-Security", "max-age=1"),
                            ("Access-Control-Allow-Origin", "https://evil.example")]}


@pytest.fixture(scope="module")
def backends() -> Iterator[dict[str, EchoServer]]:
    with echo_servers("main", "canary", "loud", "shadow", headers=BACKEND_HEADERS) as servers:
        yield servers


@pytest.fixture(scope="module")
def gateway(backends: dict[str, EchoServer]) -> Iterator[Engine]:
    with running_engine([Listener(free_port(), LOOPBACK), Listener(free_port(), LOOPBACK, tls=True)]) as engine:
        for name, server in backends.items():
            engine.put_backend(name, [ep(server)])
        yield engine


def vhost(engine: Engine, host: str, *routes: dict[str, Any]) -> None:
    engine.put_vhost(host, {"ports": [port_of(engine), port_of(engine, tls=True)], "hostnames": [host],
                            "routes": list(routes)})


def with_canary(canary: dict[str, Any], main: dict[str, Any] | None = None) -> dict[str, Any]:
    return {**(main or to("main")), "canaries": [{**to("canary"), **canary}]}


def served_by(engine: Engine, host: str, n: int = 20, path: str = "/", **headers: str) -> Counter[str | None]:
    return Counter(call(engine, host, path, headers=headers).name for _ in range(n))


def refused(engine: Engine, host: str, route: dict[str, Any]) -> str:
    with pytest.raises(ControlError) as err:
        vhost(engine, host, route)
    assert err.value.status == 400
    return err.value.message


# -- canaries ---------------------------------------------------------------------------------------------------


def test_canary_by_header_value(gateway: Engine) -> None:
    vhost(gateway, "value.test", {"id": "r", "match": prefix("/"), "backend": with_canary(
        {"header": "CanaryByHeader", "header_value": "DoCanary"})})
    assert served_by(gateway, "value.test", CanaryByHeader="DoCanary") == {"canary": 20}
    assert served_by(gateway, "value.test") == {"main": 20}
    # With a value given, "always" and "never" are ordinary values: no match, and the weight (0) decides.
    for other in ("always", "never", "docanary"):
        assert served_by(gateway, "value.test", 5, CanaryByHeader=other) == {"main": 5}, other


def test_canary_by_header_always_never_then_cookie_then_weight(gateway: Engine) -> None:
    vhost(gateway, "order.test", {"id": "r", "match": prefix("/"), "backend": with_canary(
        {"header": "X-Canary", "cookie": "beta", "weight": 100})})
    assert served_by(gateway, "order.test", 5, **{"X-Canary": "x"}) == {"canary": 5}  # undecided: weight 100
    assert served_by(gateway, "order.test", 5, **{"X-Canary": "never", "Cookie": "beta=always"}) == {"main": 5}
    assert served_by(gateway, "order.test", 5, **{"X-Canary": "other", "Cookie": "beta=never"}) == {"main": 5}
    assert served_by(gateway, "order.test", 5, **{"Cookie": "a=1; beta=never"}) == {"main": 5}
    vhost(gateway, "order.test", {"id": "r", "match": prefix("/"), "backend": with_canary(
        {"header": "X-Canary", "cookie": "beta", "weight": 0})})
    assert served_by(gateway, "order.test", 5, **{"X-Canary": "always"}) == {"canary": 5}
    assert served_by(gateway, "order.test", 5, **{"X-Canary": "maybe", "Cookie": "beta=always"}) == {"canary": 5}
    assert served_by(gateway, "order.test", 5, **{"Cookie": "xbeta=always"}) == {"main": 5}


def test_canary_by_header_pattern(gateway: Engine) -> None:
    vhost(gateway, "pattern.test", {"id": "r", "match": prefix("/"), "backend": with_canary(
        {"header": "X-Canary", "header_pattern": "^(yes|on)$"})})
    assert served_by(gateway, "pattern.test", 10, **{"X-Canary": "on"}) == {"canary": 10}
    assert served_by(gateway, "pattern.test", 10, **{"X-Canary": "only"}) == {"main": 10}
    assert served_by(gateway, "pattern.test", 10) == {"main": 10}


def test_canary_weights(gateway: Engine) -> None:
    def weighted(weight: int, total: int = 100, n: int = 20) -> Counter[str | None]:
        vhost(gateway, "weight.test", {"id": "r", "match": prefix("/"), "backend": with_canary(
            {"weight": weight, "weight_total": total})})
        return served_by(gateway, "weight.test", n)

    assert weighted(100) == {"canary": 20}
    assert weighted(0) == {"main": 20}
    assert weighted(200, 200) == {"canary": 20}
    split = weighted(100, 200, n=100)
    # Each side is chosen with probability 1/2: missing one in 100 tries has probability 2**-99.
    assert set(split) == {"main", "canary"} and sum(split.values()) == 100


def test_sticky_affinity_outranks_the_canary_rules(gateway: Engine) -> None:
    cookie = {"type": "cookie", "cookie": {"name": "np-sticky"}}

    def route(sticky: bool) -> dict[str, Any]:
        return {"id": "r", "match": prefix("/"), "backend": with_canary(
            {"header": "X-Canary", "sticky": sticky}, main=to("main", policy=cookie))}

    vhost(gateway, "sticky.test", route(True))
    first = call(gateway, "sticky.test")
    assert first.name == "main"
    pin = first.headers["Set-Cookie"].split(";")[0]
    assert pin.startswith("np-sticky=")
    assert served_by(gateway, "sticky.test", 5, **{"X-Canary": "always", "Cookie": pin}) == {"main": 5}
    assert served_by(gateway, "sticky.test", 5, **{"X-Canary": "always", "Cookie": "np-sticky=stale"}) == {
        "canary": 5}
    vhost(gateway, "sticky.test", route(False))
    assert served_by(gateway, "sticky.test", 5, **{"X-Canary": "always", "Cookie": pin}) == {"canary": 5}


def test_canary_retries_stay_in_the_canary_group(gateway: Engine) -> None:
    # Half the first tries go to a backend whose only endpoint is dead; the retry must find the canary's
    # other backend, not the main group.
    gateway.put_backend("canary-dead", [{"address": ADDR, "port": free_port()}])
    vhost(gateway, "retry.test", {"id": "r", "match": prefix("/"), "retries": 1, "backend": {
        **to("main"), "canaries": [{**to("canary-dead", "canary"), "weight": 100}]}})
    assert served_by(gateway, "retry.test", 10) == {"canary": 10}


def test_bad_canaries_are_refused_naming_the_field(gateway: Engine) -> None:
    vhost(gateway, "bad.test", {"id": "r", "match": prefix("/"), "backend": to("main")})

    def bad(canary: dict[str, Any]) -> str:
        return refused(gateway, "bad.test", {"id": "r", "match": prefix("/"), "backend": with_canary(canary)})

    assert "routes[0] (r): backend.canaries[0].header_pattern: invalid regex" in bad(
        {"header": "X-Canary", "header_pattern": "^(unclosed"})
    assert "backend.canaries[0].weight: must be within 0..100" in bad({"weight": 101})
    assert "backend.canaries[0].header: header_value and header_pattern need a header" in bad(
        {"header_value": "x"})
    assert "backend.canaries[0].header: is not a valid token" in bad({"header": "Bad Header"})
    assert served_by(gateway, "bad.test", 3) == {"main": 3}


# -- HSTS -------------------------------------------------------------------------------------------------------


def test_hsts_only_over_tls_replacing_the_backend_s(gateway: Engine) -> None:
    vhost(gateway, "hsts.test",
          {"id": "sub", "match": prefix("/sub"), "backend": to("loud"),
           "filters": [{"type": "hsts", "max_age": 86400, "include_subdomains": True}]},
          {"id": "pre", "match": prefix("/pre"), "backend": to("main"),
           "filters": [{"type": "hsts", "max_age": 86400, "preload": True}]})
    secure = call(gateway, "hsts.test", "/sub", port=port_of(gateway, tls=True), tls=True)
    assert secure.status == 200 and secure.headers.get_all("Strict-Transport-Security") == [
        "max-age=86400; includeSubDomains"]
    assert call(gateway, "hsts.test", "/pre", port=port_of(gateway, tls=True), tls=True).headers.get_all(
        "Strict-Transport-Security") == ["max-age=86400; preload"]
    assert "Strict-Transport-Security" not in call(gateway, "hsts.test", "/pre").headers
    # Over plain HTTP the engine adds nothing and leaves the backend's own header alone.
    assert call(gateway, "hsts.test", "/sub").headers.get_all("Strict-Transport-Security") == ["max-age=1"]


# -- CORS -------------------------------------------------------------------------------------------------------

CORS = {"type": "cors", "allow_origins": ["https://app.example", "https://*.example.org:8443"],
        "allow_methods": ["GET", "POST"], "allow_headers": ["X-A", "X-B"], "expose_headers": ["X-C"],
        "allow_credentials": True, "max_age": 600}


def test_cors_preflight_is_answered_by_the_engine(gateway: Engine) -> None:
    vhost(gateway, "cors.test", {"id": "r", "match": prefix("/"), "backend": to("loud"), "filters": [CORS]})
    pre = call(gateway, "cors.test", "/api", "OPTIONS", {"Origin": "https://App.example",
                                                          "Access-Control-Request-Method": "POST"})
    assert pre.status == 204 and pre.body == b"" and pre.name is None
    assert {k: pre.headers[k] for k in pre.headers if k.startswith("Access-Control-")} == {
        "Access-Control-Allow-Origin": "https://App.example", "Access-Control-Allow-Credentials": "true",
        "Access-Control-Allow-Methods": "GET, POST", "Access-Control-Allow-Headers": "X-A, X-B",
        "Access-Control-Expose-Headers": "X-C", "Access-Control-Max-Age": "600"}
    wild = call(gateway, "cors.test", "/", "OPTIONS", {"Origin": "https://a-1.example.org:8443"})
    assert (wild.status, wild.headers["Access-Control-Allow-Origin"]) == (204, "https://a-1.example.org:8443")
    # Origins outside the list get no CORS answer: the request reaches the backend as it is.
    for origin in ("https://evil.example", "https://a.b.example.org:8443", "https://example.org:8443",
                   "https://a.example.org", "http://app.example", "https://app.example.evil"):
        answer = call(gateway, "cors.test", "/", "OPTIONS", {"Origin": origin})
        assert answer.status == 200 and answer.name == "loud", origin
        assert answer.headers.get_all("Access-Control-Allow-Origin") == ["https://evil.example"], origin
        assert "Access-Control-Allow-Methods" not in answer.headers, origin


def test_cors_headers_on_normal_answers(gateway: Engine) -> None:
    vhost(gateway, "cors2.test",
          {"id": "list", "match": prefix("/list"), "backend": to("loud"), "filters": [CORS]},
          {"id": "any", "match": prefix("/any"), "backend": to("main"), "filters": [
              {"type": "cors", "allow_origins": ["*"], "allow_methods": ["GET"]}]})
    answer = call(gateway, "cors2.test", "/list", headers={"Origin": "https://app.example"})
    assert answer.status == 200 and answer.name == "loud"
    assert answer.headers.get_all("Access-Control-Allow-Origin") == ["https://app.example"]
    assert answer.headers["Access-Control-Expose-Headers"] == "X-C"
    assert answer.headers["Access-Control-Allow-Credentials"] == "true"
    anyone = call(gateway, "cors2.test", "/any")
    assert anyone.name == "main" and anyone.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in anyone.headers
    assert "Access-Control-Max-Age" not in anyone.headers
    assert call(gateway, "cors2.test", "/any", "OPTIONS").status == 204


def test_bad_cors_is_refused_naming_the_field(gateway: Engine) -> None:
    def bad(**change: Any) -> str:
        return refused(gateway, "cors3.test", {"id": "r", "match": prefix("/"), "backend": to("main"),
                                               "filters": [{**CORS, **change}]})

    assert "filters[0].allow_origins[0]: must be *, scheme://host" in bad(allow_origins=["https://a.*.example"])
    assert "filters[0].allow_origins: must not be empty" in bad(allow_origins=[])
    assert "filters[0].allow_headers[0]: is not a valid token" in bad(allow_headers=["X-A\r\nInjected: 1"])


# -- source-IP access -------------------------------------------------------------------------------------------


def test_source_ip_access(gateway: Engine) -> None:
    cases: list[tuple[dict[str, Any], int]] = [
        ({"allow": ["10.0.0.0/8", "::1"]}, 403), ({"allow": ["127.0.0.0/8"]}, 200), ({"deny": ["127.0.0.1"]}, 403),
        ({"deny": ["10.0.0.0/8", "127.0.0.2/32"]}, 200), ({"allow": ["127.0.0.0/8"], "deny": ["127.0.0.0/30"]}, 403),
        ({"allow": ["10.0.0.0/8"], "status": 451}, 451), ({"allow": [], "deny": []}, 200)]
    vhost(gateway, "ip.test", *({"id": f"c{i}", "match": prefix(f"/c{i}"), "backend": to("main"),
                                 "filters": [{"type": "source_ip_access", **rule}]}
                                for i, (rule, _) in enumerate(cases)))
    for i, (rule, status) in enumerate(cases):
        answer = call(gateway, "ip.test", f"/c{i}")
        assert answer.status == status, rule
        if status == 200:
            assert answer.name == "main"
        else:
            assert answer.name is None and answer.headers["X-Netplane-Reason"] == "source-ip"
    assert "filters[0].allow[1]: is not an IP address or CIDR: 10.0.0.0.0" in refused(
        gateway, "ip.test", {"id": "r", "match": prefix("/"), "filters": [
            {"type": "source_ip_access", "allow": ["127.0.0.1", "10.0.0.0.0"]}]})
    assert call(gateway, "ip.test", "/c0").status == 403


# -- mirroring -------------------------------------------------------------------------------------------------


def test_mirror_sends_a_copy_without_touching_the_answer(gateway: Engine, backends: dict[str, EchoServer]) -> None:
    gateway.put_backend("shadow-dead", [{"address": ADDR, "port": free_port()}])
    marked = {"type": "request_headers", "set": [{"name": "X-Marked", "value": "1"}]}
    vhost(gateway, "mirror.test",
          {"id": "all", "match": prefix("/all"), "backend": to("main"),
           "filters": [marked, {"type": "mirror", "backend": to("shadow")}]},
          {"id": "none", "match": prefix("/none"), "backend": to("main"),
           "filters": [{"type": "mirror", "backend": to("shadow"), "percent": 0}]},
          {"id": "dead", "match": prefix("/dead"), "backend": to("main"),
           "filters": [{"type": "mirror", "backend": to("shadow-dead")}]},
          {"id": "host", "match": prefix("/host"), "backend": to("main"),
           "filters": [{"type": "mirror", "backend": to("shadow"), "host": "copy.example", "body": False}]})
    shadow = backends["shadow"]
    for _ in range(5):
        assert call(gateway, "mirror.test", "/none").name == "main"
        assert call(gateway, "mirror.test", "/dead").name == "main"
    answer = call(gateway, "mirror.test", "/all/x?q=1", "POST", {"Content-Type": "text/plain"}, body=b"hello")
    assert answer.status == 200 and answer.name == "main" and answer.json["path"] == "/all/x?q=1"
    [copy] = copies(shadow, "/all/x?q=1")
    assert (copy.method, copy.body) == ("POST", b"hello")
    assert copy.headers["host"] == "mirror.test" and copy.headers["x-marked"] == "1"
    assert copy.headers["x-forwarded-for"] == ADDR and copy.headers["content-type"] == "text/plain"
    # A body larger than nginx's in-memory buffer (it goes to a temporary file) is copied whole.
    big = bytes(range(256)) * 400
    assert call(gateway, "mirror.test", "/all/big", "PUT", body=big).name == "main"
    [copy] = copies(shadow, "/all/big")
    assert copy.body == big
    assert not [r for r in shadow.seen if r.path.startswith("/none")]
    # Another Host for the copy (the client's goes), and no body.
    assert call(gateway, "mirror.test", "/host", "POST", body=b"kept").name == "main"
    [copy] = copies(shadow, "/host")
    assert (copy.headers["host"], copy.body, "content-length" in copy.headers) == ("copy.example", b"", False)


def test_bad_mirrors_are_refused_naming_the_field(gateway: Engine) -> None:
    def bad(mirror: dict[str, Any]) -> str:
        return refused(gateway, "mirror2.test", {"id": "r", "match": prefix("/"), "backend": to("main"),
                                                 "filters": [{"type": "mirror", **mirror}]})

    assert "filters[0].percent: must be within 0..100" in bad({"backend": to("shadow"), "percent": 101})
    assert "filters[0].backend: must be an object" in bad({})
    assert "filters[0].host: contains control characters" in bad({"backend": to("shadow"), "host": "a\r\nX-Y: 1"})
    assert "filters[0].host: must not be empty" in bad({"backend": to("shadow"), "host": ""})
    assert "filters[0].body: must be true or false" in bad({"backend": to("shadow"), "body": "no"})


# -- from Ingress annotations -----------------------------------------------------------------------------------


def test_ingress_annotations_are_enforced_end_to_end(gateway: Engine, backends: dict[str, EchoServer]) -> None:
    def service(name: str) -> dict[str, Any]:
        return {"metadata": {"name": name, "namespace": "k-1"},
                "spec": {"ports": [{"name": "http", "port": 80, "targetPort": backends[name].port}]}}

    def endpoints(name: str) -> dict[str, Any]:
        return {"addressType": "IPv4", "metadata": {"name": f"{name}-a", "namespace": "k-1",
                                                    "labels": {"kubernetes.io/service-name": name}},
                "ports": [{"name": "http", "port": backends[name].port}],
                "endpoints": [{"addresses": [ADDR], "conditions": {"ready": True}}]}

    def ingress(name: str, svc: str, annotations: dict[str, str]) -> dict[str, Any]:
        return {"metadata": {"name": name, "namespace": "k-1", "creationTimestamp": "2026-01-01T00:00:00Z",
                             "annotations": {f"nginx.ingress.kubernetes.io/{k}": v for k, v in annotations.items()}},
                "spec": {"ingressClassName": "nginx", "rules": [{"host": "shop.test", "http": {"paths": [
                    {"path": "/", "pathType": "Prefix",
                     "backend": {"service": {"name": svc, "port": {"number": 80}}}}]}}]}}

    main = ingress("shop", "main", {"enable-cors": "true", "cors-allow-origin": "https://app.test",
                                    "whitelist-source-range": "127.0.0.0/8"})
    canary = ingress("shop-canary", "canary", {"canary": "true", "canary-by-header": "X-Canary",
                                               "canary-by-header-value": "yes"})
    translation = translate(IngressInputs(ingresses=[main, canary], services=[service("main"), service("canary")],
                                          endpoint_slices=[endpoints("main"), endpoints("canary")]))
    out = render(translation.config)
    assert out.unenforced == ()
    for name, doc in out.backends.items():
        gateway.put("backends", name, doc)
    doc = out.vhosts["http:80/shop.test"]
    gateway.put_vhost("ingress-shop", {**doc, "ports": [port_of(gateway)]})
    assert served_by(gateway, "shop.test", 10, **{"X-Canary": "yes"}) == {"canary": 10}
    assert served_by(gateway, "shop.test", 10, **{"X-Canary": "always"}) == {"main": 10}
    pre = call(gateway, "shop.test", "/", "OPTIONS", {"Origin": "https://app.test"})
    assert pre.status == 204 and pre.headers["Access-Control-Allow-Origin"] == "https://app.test"
    # The allow list is the Ingress's: narrowing it to another network turns this client away.
    narrowed = ingress("shop", "main", {"whitelist-source-range": "10.0.0.0/8"})
    translation = translate(IngressInputs(ingresses=[narrowed], services=[service("main")],
                                          endpoint_slices=[endpoints("main")]))
    doc = render(translation.config).vhosts["http:80/shop.test"]
    gateway.put_vhost("ingress-shop", {**doc, "ports": [port_of(gateway)]})
    assert call(gateway, "shop.test").status == 403
