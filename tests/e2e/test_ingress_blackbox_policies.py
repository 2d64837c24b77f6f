"""Ingress black-box cases for the engine's policies, modelled on ingress-nginx's e2e suite (annotations canary,
cors, ipallowlist/ipdenylist, backendprotocol, proxyssl, mirror; settings hsts; sslpassthrough): objects in,
requests through real nginx out.

Backends: svc-a (main), svc-b (canary), svc-own (answers carrying their own Strict-Transport-Security and
Access-Control-Allow-Origin), svc-mirror, and per test the TLS and gRPC servers of tls_backends.py. Policy changes
must not reload nginx; TLS profiles, gRPC's HTTP/2 and passthrough change nginx.conf and may (the ``hr`` fixture).
"""

from __future__ import annotations

import ssl
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from netplane.routing.ingress.admission import review_ingress
from netplane.routing.ingress.settings import ControllerSettings
from tests.certificates import self_signed
from tests.e2e.gateway_harness import ADDR, copies, needs_engine
from tests.e2e.ingress_harness import (
    Backend,
    IngressHarness,
    app,
    certificate_secret,
    running_harness,
    secret,
    simple,
)
from tests.e2e.test_ingress_blackbox import expect, tls_ingress
from tests.e2e.tls_backends import (
    CA,
    Pem,
    TLSEchoServer,
    grpc_server,
    issue,
    make_ca,
    server_context,
    serving,
    tls_exchange,
)

pytestmark = [pytest.mark.e2e, needs_engine]


@pytest.fixture(scope="module")
def pool() -> Iterator[dict[str, Backend]]:
    servers = {name: Backend(name) for name in ("a", "b", "m")}
    # Answers with its own policy headers, for the gateway to replace.
    servers["own"] = Backend("own", [("Strict-Transport-Security", "max-age=1"),
                                     ("Access-Control-Allow-Origin", "https://evil.test")])
    yield servers
    for s in servers.values():
        s.stop()


@pytest.fixture(scope="module")
def harness() -> Iterator[IngressHarness]:
    with running_harness() as h:
        yield h


@pytest.fixture
def hr(harness: IngressHarness, pool: dict[str, Backend]) -> Iterator[IngressHarness]:
    """The harness with the standard Services; nginx.conf may change."""
    harness.apply(app("svc-a", pool["a"]), app("svc-b", pool["b"]),
                  app("svc-own", pool["own"]), app("svc-mirror", pool["m"]))
    yield harness
    harness.reset()


@pytest.fixture
def h(hr: IngressHarness) -> Iterator[IngressHarness]:
    """The same, for policies that are documents only: no reload."""
    before = hr.engine.reloads
    yield hr
    assert hr.engine.reloads == before, "policy annotations must never reload nginx"


def counts(h: IngressHarness, host: str, n: int = 20, **kwargs: Any) -> dict[str | None, int]:
    seen: dict[str | None, int] = {}
    for _ in range(n):
        name = h.get(host, **kwargs).backend
        seen[name] = seen.get(name, 0) + 1
    return seen


# -- canary ---------------------------------------------------------------------------------------------------------

def with_canary(h: IngressHarness, host: str, canary: dict[str, str], main: dict[str, str] | None = None,
                https: bool = False) -> Any:
    """Main Ingress → svc-a, canary Ingress → svc-b on the same host and path."""
    tls = [{"hosts": [host], "secretName": "cert"}] if https else []
    objects = [simple("main", host, "svc-a", annotations=main or {}, tls=tls),
               simple("canary", host, "svc-b", annotations={"canary": "true", **canary})]
    if https:
        objects.append(certificate_secret("cert", host))
    return h.apply(objects)


@pytest.mark.parametrize(("value", "want"), [("always", "b"), ("never", "a"), ("yes", "a"), (None, "a")])
def test_canary_by_header(h: IngressHarness, value: str | None, want: str) -> None:
    with_canary(h, "canary-h.test", {"canary-by-header": "CanaryByHeader"})
    headers = {"CanaryByHeader": value} if value else {}
    assert counts(h, "canary-h.test", 6, headers=headers) == {want: 6}


@pytest.mark.parametrize(("value", "want"), [("DoCanary", "b"), ("docanary", "a"), ("always", "a"), ("never", "a")])
def test_canary_by_header_value(h: IngressHarness, value: str, want: str) -> None:
    # With a value, only that exact value counts: always/never are ordinary values then.
    with_canary(h, "canary-hv.test", {"canary-by-header": "CanaryByHeader", "canary-by-header-value": "DoCanary"})
    assert counts(h, "canary-hv.test", 6, headers={"CanaryByHeader": value}) == {want: 6}


@pytest.mark.parametrize(("value", "want"), [("DoCanary", "b"), ("Do2Canary", "b"), ("DontCanary", "a")])
def test_canary_by_header_pattern(h: IngressHarness, value: str, want: str) -> None:
    with_canary(h, "canary-hp.test", {"canary-by-header": "CanaryByHeader",
                                      "canary-by-header-pattern": "^Do[0-9]*Canary$"})
    assert counts(h, "canary-hp.test", 6, headers={"CanaryByHeader": value}) == {want: 6}


def test_canary_header_value_takes_precedence_over_the_pattern(h: IngressHarness) -> None:
    synced = with_canary(h, "canary-hvp.test", {"canary-by-header": "X-C", "canary-by-header-value": "exact",
                                                "canary-by-header-pattern": "^pat"})
    expect(h.get("canary-hvp.test", headers={"X-C": "exact"}), "b")
    expect(h.get("canary-hvp.test", headers={"X-C": "pattern"}), "a")
    assert any("canary-by-header-pattern" in e for e in synced.events_of("canary"))


@pytest.mark.parametrize(("cookie", "want"), [("always", "b"), ("never", "a"), ("other", "a")])
def test_canary_by_cookie(h: IngressHarness, cookie: str, want: str) -> None:
    with_canary(h, "canary-c.test", {"canary-by-cookie": "CanaryByCookie"})
    assert counts(h, "canary-c.test", 6, headers={"Cookie": f"CanaryByCookie={cookie}"}) == {want: 6}


@pytest.mark.parametrize(("header", "cookie", "want"), [("never", "always", "a"), ("always", "never", "b"),
                                                        ("other", "always", "b")])
def test_canary_header_is_asked_before_the_cookie(h: IngressHarness, header: str, cookie: str, want: str) -> None:
    with_canary(h, "canary-hc.test", {"canary-by-header": "X-C", "canary-by-cookie": "c"})
    expect(h.get("canary-hc.test", headers={"X-C": header, "Cookie": f"c={cookie}"}), want)


@pytest.mark.parametrize(("weights", "want"), [
    ({"canary-weight": "0"}, {"a"}),
    ({"canary-weight": "100"}, {"b"}),
    ({"canary-weight": "50"}, {"a", "b"}),
    ({"canary-weight": "1000", "canary-weight-total": "1000"}, {"b"}),  # weight-total changes the scale
    ({"canary-weight": "100", "canary-weight-total": "1000"}, {"a", "b"}),
    ({"canary-weight": "0", "canary-weight-total": "1000"}, {"a"}),
])
def test_canary_by_weight(h: IngressHarness, weights: dict[str, str], want: set[str]) -> None:
    with_canary(h, "canary-w.test", weights)
    # A 50% split misses a side in 40 requests with a chance of 2e-12, a 10% split in 200 with 7e-10.
    assert set(counts(h, "canary-w.test", 200 if len(want) == 2 and "1000" in weights.values() else 40)) == want


def test_canary_header_never_outranks_the_weight(h: IngressHarness) -> None:
    with_canary(h, "canary-hw.test", {"canary-by-header": "X-C", "canary-weight": "100"})
    assert counts(h, "canary-hw.test", 6, headers={"X-C": "never"}) == {"a": 6}
    assert counts(h, "canary-hw.test", 6) == {"b": 6}


def test_canary_weight_above_the_total_is_refused(h: IngressHarness) -> None:
    synced = with_canary(h, "canary-bad.test", {"canary-weight": "200"})
    assert any("canary-weight" in e for e in synced.complaints_of("canary"))
    # The main Ingress keeps serving, without the broken canary.
    assert counts(h, "canary-bad.test", 6) == {"a": 6}


def test_canary_without_its_main_ingress_is_ignored(h: IngressHarness) -> None:
    synced = h.apply(simple("lonely", "canary-alone.test", "svc-b", annotations={"canary": "true",
                                                                                  "canary-weight": "100"}))
    expect(h.get("canary-alone.test"), 404)
    assert any("nothing to attach to" in e for e in synced.events_of("lonely"))
    # Once a main Ingress exists, the canary takes effect.
    h.apply(simple("main", "canary-alone.test", "svc-a"))
    expect(h.get("canary-alone.test"), "b")


def test_deleting_the_canary_sends_everything_back_to_main(h: IngressHarness) -> None:
    with_canary(h, "canary-del.test", {"canary-weight": "100"})
    expect(h.get("canary-del.test"), "b")
    h.delete("Ingress", "canary")
    assert counts(h, "canary-del.test", 6) == {"a": 6}


def test_canary_on_another_path_has_nothing_to_attach_to(h: IngressHarness) -> None:
    synced = h.apply(simple("main", "canary-path.test", "svc-a", path="/app"),
                     simple("canary", "canary-path.test", "svc-b", path="/other",
                            annotations={"canary": "true", "canary-weight": "100"}))
    expect(h.get("canary-path.test", "/app"), "a")
    expect(h.get("canary-path.test", "/other"), 404)
    assert any("nothing to attach to" in e for e in synced.events_of("canary"))


def test_canary_default_backend_is_no_catch_all_server(h: IngressHarness) -> None:
    # A canary Ingress with only a default backend has no main route to attach to: it serves nothing by itself.
    h.apply(simple("main", "canary-catch.test", "svc-a"),
            {**simple("canary", None, "svc-b", annotations={"canary": "true", "canary-weight": "100"}),
             "spec": {"ingressClassName": "nginx",
                      "defaultBackend": {"service": {"name": "svc-b", "port": {"number": 80}}}}})
    expect(h.get("unknown.canary-catch.test"), 404)
    expect(h.get("canary-catch.test"), "a")


def test_canary_ignores_its_own_other_annotations(h: IngressHarness) -> None:
    synced = with_canary(h, "canary-ann.test", {"canary-weight": "100", "upstream-vhost": "canary.internal"})
    reply = h.get("canary-ann.test")
    assert reply.backend == "b" and reply.seen["headers"]["host"] == "canary-ann.test"
    assert any("upstream-vhost" in e and "no effect" in e for e in synced.events_of("canary"))


def test_canary_on_https(h: IngressHarness) -> None:
    with_canary(h, "canary-tls.test", {"canary-by-header": "X-C"}, https=True)
    expect(h.get("canary-tls.test", https=True, headers={"X-C": "always"}), "b")
    expect(h.get("canary-tls.test", https=True), "a")


def test_canary_with_affinity_keeps_a_client_on_the_canary(h: IngressHarness) -> None:
    # ingress-nginx "sticky" (the default): a client sent to the canary once stays there through its cookie.
    # The canary Ingress has no affinity of its own: it takes the main's (cookie "aff").
    with_canary(h, "canary-aff.test", {"canary-by-header": "ForceCanary", "canary-by-header-value": "yes",
                                       "canary-weight": "1"},
                main={"affinity": "cookie", "session-cookie-name": "aff"})
    first = h.get("canary-aff.test", headers={"ForceCanary": "yes"})
    assert first.backend == "b"
    cookie = next(c.split(";")[0] for c in first.cookies() if c.startswith("aff="))
    assert counts(h, "canary-aff.test", 20, headers={"Cookie": cookie}) == {"b": 20}
    # A client pinned to the main backend stays there even when it asks for the canary.
    main_pin = next(c.split(";")[0] for c in h.get("canary-aff.test").cookies() if c.startswith("aff="))
    assert counts(h, "canary-aff.test", 6, headers={"Cookie": main_pin, "ForceCanary": "yes"}) == {"a": 6}


def test_canary_with_legacy_affinity_does_not_stick(h: IngressHarness) -> None:
    # affinity-canary-behavior is read from the canary Ingress, as ingress-nginx does.
    with_canary(h, "canary-leg.test", {"canary-by-header": "X-C", "affinity-canary-behavior": "legacy"},
                main={"affinity": "cookie", "session-cookie-name": "aff"})
    first = h.get("canary-leg.test", headers={"X-C": "always"})
    assert first.backend == "b" and not any(c.startswith("aff=") for c in first.cookies())


# -- CORS -----------------------------------------------------------------------------------------------------------

def cors_ingress(h: IngressHarness, host: str, **annotations: str) -> Any:
    return h.apply(simple("cors", host, "svc-a", annotations={"enable-cors": "true", **annotations}))


def preflight(h: IngressHarness, host: str, origin: str | None = "https://origin.test") -> Any:
    headers = {"Access-Control-Request-Method": "POST"}
    if origin:
        headers["Origin"] = origin
    return h.get(host, method="OPTIONS", headers=headers)


def items(value: str | None) -> set[str]:
    """A CORS list header as a set: the order of its items means nothing (netplane sorts them)."""
    return {item.strip() for item in value.split(",")} if value else set()


def test_cors_defaults(h: IngressHarness) -> None:
    cors_ingress(h, "cors-def.test")
    reply = preflight(h, "cors-def.test")
    assert (reply.status, reply.backend, reply.body) == (204, None, b"")
    assert reply.headers["Access-Control-Allow-Origin"] == "*"
    assert items(reply.headers["Access-Control-Allow-Methods"]) == {"GET", "PUT", "POST", "DELETE", "PATCH",
                                                                    "OPTIONS"}
    assert items(reply.headers["Access-Control-Allow-Headers"]) == {
        "DNT", "Keep-Alive", "User-Agent", "X-Requested-With", "If-Modified-Since", "Cache-Control", "Content-Type",
        "Range", "Authorization"}
    assert reply.headers["Access-Control-Allow-Credentials"] == "true"
    assert reply.headers["Access-Control-Max-Age"] == "1728000"
    assert "Access-Control-Expose-Headers" not in reply.headers


def test_cors_headers_on_normal_answers(h: IngressHarness) -> None:
    cors_ingress(h, "cors-get.test")
    reply = h.get("cors-get.test", headers={"Origin": "https://origin.test"})
    assert reply.backend == "a" and reply.headers["Access-Control-Allow-Origin"] == "*"
    assert reply.headers["Access-Control-Allow-Credentials"] == "true"


@pytest.mark.parametrize(("annotation", "value", "header", "want"), [
    ("cors-allow-methods", "PUT, GET", "Access-Control-Allow-Methods", "PUT, GET"),
    ("cors-allow-methods", "get,post", "Access-Control-Allow-Methods", "GET, POST"),
    ("cors-allow-headers", "X-Foo, X-Bar", "Access-Control-Allow-Headers", "X-Foo, X-Bar"),
    ("cors-expose-headers", "X-Custom, X-Other", "Access-Control-Expose-Headers", "X-Custom, X-Other"),
    ("cors-max-age", "200", "Access-Control-Max-Age", "200"),
    ("cors-allow-credentials", "false", "Access-Control-Allow-Credentials", None),
])
def test_cors_annotations(h: IngressHarness, annotation: str, value: str, header: str, want: str | None) -> None:
    cors_ingress(h, "cors-ann.test", **{annotation: value})
    reply = preflight(h, "cors-ann.test")
    assert reply.status == 204 and items(reply.headers.get(header)) == items(want)


@pytest.mark.parametrize(("allowed", "origin", "ok"), [
    ("https://origin.test", "https://origin.test", True),
    ("https://origin.test", "http://origin.test", False),  # another scheme is another origin
    ("https://origin.test", "https://origin.test.evil", False),
    ("https://origin.test, https://other.test:8443", "https://other.test:8443", True),
    ("https://origin.test, https://other.test:8443", "https://other.test", False),  # the port is part of it
    ("https://origin.test,https://other.test", "https://other.test", True),
    ("https://*.origin.test", "https://sub.origin.test", True),
    ("https://*.origin.test", "https://a.sub.origin.test", False),  # one label only
    ("https://*.origin.test", "https://origin.test", False),
    ("https://*.origin.test:8443", "https://sub.origin.test:8443", True),
    ("https://*.origin.test:8443", "https://sub.origin.test", False),
])
def test_cors_allow_origin(h: IngressHarness, allowed: str, origin: str, ok: bool) -> None:
    cors_ingress(h, "cors-origin.test", **{"cors-allow-origin": allowed})
    reply = preflight(h, "cors-origin.test", origin)
    if ok:
        assert reply.status == 204 and reply.headers["Access-Control-Allow-Origin"] == origin
    else:
        # Another origin gets no CORS headers, and its OPTIONS reaches the backend (as with ingress-nginx).
        assert reply.backend == "a" and "Access-Control-Allow-Origin" not in reply.headers


def test_cors_replaces_the_backends_own_headers(h: IngressHarness) -> None:
    h.apply(simple("cors", "cors-own.test", "svc-own", annotations={"enable-cors": "true",
                                                                    "cors-allow-origin": "https://origin.test"}))
    reply = h.get("cors-own.test", headers={"Origin": "https://origin.test"})
    assert reply.headers.get_all("Access-Control-Allow-Origin") == ["https://origin.test"]


def test_cors_annotations_without_enable_cors_do_nothing(h: IngressHarness) -> None:
    synced = h.apply(simple("cors", "cors-off.test", "svc-a", annotations={"cors-allow-origin": "https://o.test"}))
    reply = preflight(h, "cors-off.test", "https://o.test")
    assert reply.backend == "a" and "Access-Control-Allow-Origin" not in reply.headers
    assert any("enable-cors" in e for e in synced.events_of("cors"))


def test_invalid_cors_origin_is_refused_and_fails_closed(h: IngressHarness) -> None:
    bad = simple("cors", "cors-bad.test", "svc-a", annotations={"enable-cors": "true",
                                                                "cors-allow-origin": "origin.test"})
    assert any("cors-allow-origin" in str(e) for e in review_ingress(bad, [], ControllerSettings()).errors)
    h.apply(bad)
    assert h.get("cors-bad.test").status == 503


# -- HSTS (controller ConfigMap) ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("config", "want"), [
    ({}, "max-age=31536000; includeSubDomains"),
    ({"hsts-max-age": "86400"}, "max-age=86400; includeSubDomains"),
    ({"hsts-include-subdomains": "false"}, "max-age=31536000"),
    ({"hsts-preload": "true"}, "max-age=31536000; includeSubDomains; preload"),
    ({"hsts-max-age": "10", "hsts-include-subdomains": "false", "hsts-preload": "true"}, "max-age=10; preload"),
    ({"hsts": "false"}, None),
])
def test_hsts_settings_on_https(h: IngressHarness, config: dict[str, str], want: str | None) -> None:
    h.configure(config)
    tls_ingress(h, "hsts", "hsts.test")
    reply = h.get("hsts.test", https=True)
    assert reply.backend == "a" and reply.headers.get("Strict-Transport-Security") == want


def test_hsts_is_not_sent_over_plain_http(h: IngressHarness) -> None:
    tls_ingress(h, "hsts", "hsts-http.test", annotations={"ssl-redirect": "false"})
    reply = h.get("hsts-http.test")
    assert reply.backend == "a" and "Strict-Transport-Security" not in reply.headers


def test_hsts_replaces_the_backends_header(h: IngressHarness) -> None:
    h.apply(simple("hsts", "hsts-own.test", "svc-own", tls=[{"hosts": ["hsts-own.test"], "secretName": "cert"}]),
            certificate_secret("cert", "hsts-own.test"))
    reply = h.get("hsts-own.test", https=True)
    assert reply.headers.get_all("Strict-Transport-Security") == ["max-age=31536000; includeSubDomains"]
    # Over HTTP (no redirect), the backend's own header passes untouched.
    h.configure({"ssl-redirect": "false"})
    assert h.get("hsts-own.test").headers.get_all("Strict-Transport-Security") == ["max-age=1"]


def test_hsts_with_the_default_certificate_of_a_tls_entry_without_secret(h: IngressHarness) -> None:
    h.apply(certificate_secret("default-cert", "*.hsts-def.test"))
    h.configure(default_ssl_certificate=("default", "default-cert"))
    tls_ingress(h, "hsts", "www.hsts-def.test", secret=None)
    reply = h.get("www.hsts-def.test", https=True)
    assert reply.certificate_cn == "*.hsts-def.test"
    assert reply.headers.get("Strict-Transport-Security") == "max-age=31536000; includeSubDomains"


def test_no_hsts_for_a_host_without_tls(h: IngressHarness) -> None:
    h.apply(simple("plain", "hsts-none.test", "svc-a"))
    reply = h.get("hsts-none.test", https=True)
    assert reply.backend == "a" and "Strict-Transport-Security" not in reply.headers


# -- source ranges --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("annotations", "want"), [
    ({"whitelist-source-range": "127.0.0.1"}, "a"),
    ({"whitelist-source-range": "127.0.0.1/32"}, "a"),
    ({"whitelist-source-range": "10.0.0.0/8"}, 403),
    ({"allowlist-source-range": "10.0.0.0/8, 127.0.0.0/8"}, "a"),  # a list with spaces
    ({"allowlist-source-range": "10.0.0.0/8,  192.168.0.0/16 ,::1"}, 403),
    ({"allowlist-source-range": "127.0.0.1", "whitelist-source-range": "10.0.0.0/8"}, "a"),  # the new name wins
    ({"denylist-source-range": "127.0.0.1"}, 403),
    ({"denylist-source-range": "10.0.0.0/8, 127.0.0.1/32"}, 403),
    ({"denylist-source-range": "10.0.0.0/8, 192.168.0.1"}, "a"),
    ({"allowlist-source-range": "127.0.0.0/8", "denylist-source-range": "127.0.0.1"}, 403),  # deny wins
])
def test_source_ranges(h: IngressHarness, annotations: dict[str, str], want: object) -> None:
    h.apply(simple("ip", "ip.test", "svc-a", annotations=annotations))
    expect(h.get("ip.test"), want)


def test_source_ranges_also_guard_https(h: IngressHarness) -> None:
    tls_ingress(h, "ip", "ip-tls.test", annotations={"denylist-source-range": "127.0.0.1"})
    reply = h.get("ip-tls.test", https=True)
    assert reply.status == 403 and reply.backend is None


def test_source_ranges_apply_per_ingress(h: IngressHarness) -> None:
    h.apply(simple("closed", "ip-mix.test", "svc-a", path="/closed",
                   annotations={"allowlist-source-range": "10.0.0.0/8"}),
            simple("open", "ip-mix.test", "svc-b", path="/open"))
    expect(h.get("ip-mix.test", "/closed"), 403)
    expect(h.get("ip-mix.test", "/open"), "b")


def test_invalid_source_range_is_refused_and_fails_closed(h: IngressHarness) -> None:
    bad = simple("ip", "ip-bad.test", "svc-a", annotations={"allowlist-source-range": "127.0.0.1, 300.0.0.0/8"})
    assert any("allowlist-source-range" in str(e) for e in review_ingress(bad, [], ControllerSettings()).errors)
    h.apply(bad)
    assert h.get("ip-bad.test").status == 503


# -- backend protocols and upstream TLS -----------------------------------------------------------------------------

@dataclass
class TLSBackends:
    ca: CA
    other_ca: CA
    server: TLSEchoServer  # backend.test, by `ca`
    mutual: TLSEchoServer  # the same, and it requires a client certificate by `ca`
    client: Pem  # by `ca`
    passthrough: TLSEchoServer  # self-signed for pass.test
    tls13: TLSEchoServer  # backend.test, TLS 1.3 only


@pytest.fixture(scope="module")
def tls_backends() -> Iterator[TLSBackends]:
    tmp = Path(tempfile.mkdtemp(prefix="np-ing-tls-"))
    ca, other = make_ca("ingress test CA"), make_ca("other CA")
    leaf = issue(ca, "backend.test")
    world = TLSBackends(ca, other, TLSEchoServer("tls", server_context(leaf, tmp)),
                        TLSEchoServer("mutual", server_context(leaf, tmp, client_ca=ca[0])), issue(ca, "client.test"),
                        TLSEchoServer("pass", server_context(Pem(*self_signed("pass.test")), tmp)),
                        TLSEchoServer("tls13", server_context(leaf, tmp)))
    world.tls13.context.minimum_version = ssl.TLSVersion.TLSv1_3
    with serving([world.server, world.mutual, world.passthrough, world.tls13], tmp):
        yield world


def https_backend(h: IngressHarness, host: str, server: TLSEchoServer, annotations: dict[str, str],
                  *objects: Any) -> Any:
    return h.apply(app("svc-tls", server), *objects,
                   simple("tls-backend", host, "svc-tls", annotations={"backend-protocol": "HTTPS", **annotations}))


def test_https_backend_without_verification(h: IngressHarness, tls_backends: TLSBackends) -> None:
    https_backend(h, "bp-https.test", tls_backends.server, {})
    reply = h.get("bp-https.test", "/x?y=1")
    assert reply.backend == "tls" and reply.seen["path"] == "/x?y=1"
    assert reply.seen["headers"]["host"] == "bp-https.test"


def test_http_to_a_tls_backend_fails(h: IngressHarness, tls_backends: TLSBackends) -> None:
    h.apply(app("svc-tls", tls_backends.server), simple("plain", "bp-mismatch.test", "svc-tls"))
    assert h.get("bp-mismatch.test").status == 502


def test_https_to_a_plain_backend_fails(h: IngressHarness) -> None:
    h.apply(simple("tls-backend", "bp-plain.test", "svc-a", annotations={"backend-protocol": "HTTPS"}))
    assert h.get("bp-plain.test").status == 502


def ca_secret(name: str, ca: CA, client: Pem | None = None) -> Any:
    data = {"ca.crt": ca[0].cert}
    if client is not None:
        data.update({"tls.crt": client.cert, "tls.key": client.key})
    return secret(name, data)


@pytest.mark.parametrize(("trusted", "annotations", "want"), [
    ("ca", {"proxy-ssl-verify": "on", "proxy-ssl-name": "backend.test"}, "tls"),
    ("other", {"proxy-ssl-verify": "on", "proxy-ssl-name": "backend.test"}, 502),  # wrong CA
    ("ca", {"proxy-ssl-verify": "on", "proxy-ssl-name": "wrong.test"}, 502),  # wrong name
    ("ca", {"proxy-ssl-verify": "on"}, 502),  # the name checked is the Host (bp-ssl.test) then
    ("other", {"proxy-ssl-verify": "off"}, "tls"),  # without verification the CA does not matter
    ("ca", {"proxy-ssl-verify": "on", "proxy-ssl-name": "backend.test", "proxy-ssl-server-name": "on",
            "proxy-ssl-protocols": "TLSv1.2 TLSv1.3"}, "tls"),
])
def test_proxy_ssl_verification(hr: IngressHarness, tls_backends: TLSBackends, trusted: str,
                                annotations: dict[str, str], want: object) -> None:
    ca = tls_backends.ca if trusted == "ca" else tls_backends.other_ca
    synced = https_backend(hr, "bp-ssl.test", tls_backends.server,
                           {"proxy-ssl-secret": "default/backend-ca", **annotations}, ca_secret("backend-ca", ca))
    assert not synced.complaints_of("tls-backend") and not synced.result.refusals
    expect(hr.get("bp-ssl.test"), want)


@pytest.mark.parametrize(("annotations", "sni"), [
    ({}, None),  # nginx sends no SNI unless asked (proxy_ssl_server_name off)
    ({"proxy-ssl-server-name": "on"}, "bp-sni.test"),  # then the request's Host
    ({"proxy-ssl-server-name": "on", "proxy-ssl-name": "backend.test"}, "backend.test"),
])
def test_proxy_ssl_server_name(hr: IngressHarness, tls_backends: TLSBackends, annotations: dict[str, str],
                               sni: str | None) -> None:
    https_backend(hr, "bp-sni.test", tls_backends.server, {"proxy-ssl-secret": "default/backend-ca", **annotations},
                  ca_secret("backend-ca", tls_backends.ca))
    tls_backends.server.sni_names.clear()
    expect(hr.get("bp-sni.test"), "tls")
    assert set(tls_backends.server.sni_names) == {sni}


@pytest.mark.parametrize(("protocols", "want"), [("TLSv1.2", 502), ("TLSv1.2 TLSv1.3", "tls13")])
def test_proxy_ssl_protocols(hr: IngressHarness, tls_backends: TLSBackends, protocols: str, want: object) -> None:
    https_backend(hr, "bp-proto.test", tls_backends.tls13, {"proxy-ssl-secret": "default/backend-ca",
                                                            "proxy-ssl-protocols": protocols},
                  ca_secret("backend-ca", tls_backends.ca))
    expect(hr.get("bp-proto.test"), want)


def test_proxy_ssl_host_name_is_the_request_host_by_default(hr: IngressHarness, tls_backends: TLSBackends) -> None:
    https_backend(hr, "backend.test", tls_backends.server,
                  {"proxy-ssl-secret": "default/backend-ca", "proxy-ssl-verify": "on"},
                  ca_secret("backend-ca", tls_backends.ca))
    expect(hr.get("backend.test"), "tls")


def test_proxy_ssl_client_certificate(hr: IngressHarness, tls_backends: TLSBackends) -> None:
    https_backend(hr, "bp-mtls.test", tls_backends.mutual, {})
    assert hr.get("bp-mtls.test").status == 502  # the backend wants a client certificate
    https_backend(hr, "bp-mtls.test", tls_backends.mutual,
                  {"proxy-ssl-secret": "default/client", "proxy-ssl-verify": "on", "proxy-ssl-name": "backend.test"},
                  ca_secret("client", tls_backends.ca, tls_backends.client))
    expect(hr.get("bp-mtls.test"), "mutual")


def test_proxy_ssl_verify_without_its_secret_fails_closed(hr: IngressHarness, tls_backends: TLSBackends) -> None:
    synced = https_backend(hr, "bp-nosecret.test", tls_backends.server,
                           {"proxy-ssl-secret": "default/absent", "proxy-ssl-verify": "on"})
    assert hr.get("bp-nosecret.test").status == 503
    assert any("proxy-ssl-secret" in e for e in synced.complaints_of("tls-backend"))


@dataclass
class GrpcPeer:
    name: str
    port: int


def test_grpc_and_grpcs_backends(hr: IngressHarness, tls_backends: TLSBackends) -> None:
    grpc = pytest.importorskip("grpc")
    leaf = issue(tls_backends.ca, "backend.test")
    plain, plain_port = grpc_server(grpc, "h2c")
    secure, secure_port = grpc_server(grpc, "tls", grpc.ssl_server_credentials([(leaf.key.encode(),
                                                                                   leaf.cert.encode())]))
    cert, key = self_signed("grpc.test")
    channel = grpc.secure_channel(f"{ADDR}:{hr.https_port}", grpc.ssl_channel_credentials(cert.encode()),
                                  options=[("grpc.ssl_target_name_override", "grpc.test"),
                                           ("grpc.default_authority", "grpc.test")])
    say = channel.unary_unary("/test.Echo/Say")
    tls = [{"hosts": ["grpc.test"], "secretName": "grpc-cert"}]
    try:
        for peer, protocol, extra, want in (
                (GrpcPeer("h2c", plain_port), "GRPC", {}, b"h2c:hi"),
                (GrpcPeer("tls", secure_port), "GRPCS", {}, b"tls:hi"),
                (GrpcPeer("tls", secure_port), "GRPCS", {"proxy-ssl-secret": "default/backend-ca",
                                                         "proxy-ssl-verify": "on", "proxy-ssl-name": "backend.test"},
                 b"tls:hi")):
            synced = hr.apply(app("svc-grpc", peer), ca_secret("backend-ca", tls_backends.ca),
                              secret("grpc-cert", {"tls.crt": cert, "tls.key": key}, type_="kubernetes.io/tls"),
                              simple("grpc", "grpc.test", "svc-grpc", tls=tls,
                                     annotations={"backend-protocol": protocol, **extra}))
            assert not synced.complaints_of("grpc"), synced.events
            assert say(b"hi", timeout=10) == want
    finally:
        channel.close()
        plain.stop(None)
        secure.stop(None)


# -- SSL passthrough ------------------------------------------------------------------------------------------------

def test_ssl_passthrough_shows_the_backends_own_certificate(hr: IngressHarness, tls_backends: TLSBackends) -> None:
    hr.configure(enable_ssl_passthrough=True)
    synced = hr.apply(app("svc-pass", tls_backends.passthrough),
                      simple("pass", "pass.test", "svc-pass", annotations={"ssl-passthrough": "true"}),
                      certificate_secret("cert", "terminated.test"),
                      simple("term", "terminated.test", "svc-a",
                             tls=[{"hosts": ["terminated.test"], "secretName": "cert"}]))
    assert not synced.complaints_of("pass")
    name, answer = tls_exchange(hr.https_port, "pass.test")
    assert name == "pass.test" and b'"name": "pass"' in answer
    # Another name on the same port is terminated by the engine and routed as usual.
    reply = hr.get("terminated.test", https=True)
    assert reply.certificate_cn == "terminated.test" and reply.backend == "a"


def test_ssl_passthrough_needs_the_instance_flag(h: IngressHarness) -> None:
    synced = h.apply(simple("pass", "pass-off.test", "svc-a", annotations={"ssl-passthrough": "true"}))
    assert any("enable-ssl-passthrough" in e for e in synced.complaints_of("pass"))
    assert h.get("pass-off.test").status == 503


# -- mirror ---------------------------------------------------------------------------------------------------------

def mirror_ingress(h: IngressHarness, host: str, **annotations: str) -> Any:
    return h.apply(simple("mirror", host, "svc-a", annotations=annotations))


def test_mirror_target_service_receives_a_copy(h: IngressHarness, pool: dict[str, Backend]) -> None:
    synced = mirror_ingress(h, "mirror.test", **{"mirror-target": "http://svc-mirror.default.svc.cluster.local"
                                                                  "$request_uri"})
    assert not synced.complaints_of("mirror")
    reply = h.get("mirror.test", "/copy-1?q=1", method="POST", body=b"payload", headers={"X-Mark": "m1"})
    assert reply.backend == "a" and reply.seen["path"] == "/copy-1?q=1"
    (copy,) = copies(pool["m"], "/copy-1?q=1")
    assert (copy.method, copy.path, copy.body) == ("POST", "/copy-1?q=1", b"payload")
    assert copy.headers["x-mark"] == "m1" and copy.headers["x-forwarded-for"] == ADDR
    # ingress-nginx's default Host for the copy: the target's host.
    assert copy.headers["host"] == "svc-mirror.default.svc.cluster.local"
    assert copy.headers["x-forwarded-proto"] == "http"


def test_mirror_of_https_requests(h: IngressHarness, pool: dict[str, Backend]) -> None:
    tls_ingress(h, "mirror", "mirror-tls.test", annotations={"mirror-target": "http://svc-mirror$request_uri"})
    expect(h.get("mirror-tls.test", "/copy-5", https=True), "a")
    (copy,) = copies(pool["m"], "/copy-5")
    assert (copy.headers["host"], copy.headers["x-forwarded-proto"]) == ("svc-mirror", "https")


def test_mirror_host_and_request_body_off(h: IngressHarness, pool: dict[str, Backend]) -> None:
    mirror_ingress(h, "mirror-opts.test", **{"mirror-target": f"http://{ADDR}:{pool['m'].port}/$request_uri",
                                             "mirror-host": "copy.example", "mirror-request-body": "off"})
    expect(h.get("mirror-opts.test", "/copy-2", method="POST", body=b"secret"), "a")
    (copy,) = copies(pool["m"], "/copy-2")
    assert (copy.path, copy.body, copy.headers["host"]) == ("/copy-2", b"", "copy.example")
    assert "content-length" not in copy.headers


def test_refused_requests_are_not_copies(h: IngressHarness, pool: dict[str, Backend]) -> None:
    mirror_ingress(h, "mirror-deny.test", **{"mirror-target": "http://svc-mirror$request_uri",
                                             "denylist-source-range": "127.0.0.1"})
    expect(h.get("mirror-deny.test", "/copy-3"), 403)
    assert copies(pool["m"], "/copy-3", timeout=0.5) == []


def test_mirror_target_that_is_no_service_serves_without_copies(h: IngressHarness, pool: dict[str, Backend]) -> None:
    synced = mirror_ingress(h, "mirror-none.test", **{"mirror-target": "http://mirror.example.com$request_uri"})
    expect(h.get("mirror-none.test", "/copy-4"), "a")
    assert any("neither an IP address nor a Service" in e for e in synced.events_of("mirror"))
    assert copies(pool["m"], "/copy-4", timeout=0.5) == []


def test_unsupported_mirror_target_is_refused_and_fails_closed(h: IngressHarness) -> None:
    bad = simple("mirror", "mirror-bad.test", "svc-a", annotations={"mirror-target": "http://svc-mirror/fixed/path"})
    assert any("mirror-target" in str(e) for e in review_ingress(bad, [], ControllerSettings()).errors)
    h.apply(bad)
    assert h.get("mirror-bad.test").status == 503
