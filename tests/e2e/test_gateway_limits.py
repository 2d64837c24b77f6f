"""Rate limits, connection limits and the WAF of the gateway engine, through real nginx on loopback.

Backends, engines and requests come from gateway_harness.py; the engines are this module's own, because the WAF
test offers its profiles with a reload and the limits need counters no other test touches.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from netplane.dataplane.gateway import ControlError, Engine, Listener, WafProfile
from netplane.dataplane.gateway.config import CONF_FILE, CRS_FILES, ERROR_LOG, MODSECURITY_MODULE, WAF_AUDIT_LOG
from netplane.dataplane.gateway.render import render
from netplane.routing import ir
from tests.e2e.gateway_harness import (
    ADDR,
    LOOPBACK,
    Answer,
    EchoServer,
    call,
    echo_servers,
    ep,
    free_port,
    needs_engine,
    port_of,
    prefix,
    running_engine,
    to,
)
from tests.e2e.ingress_harness import Backend, IngressHarness, app, running_harness, simple

pytestmark = [pytest.mark.e2e, needs_engine]

needs_modsecurity = pytest.mark.skipif(
    not MODSECURITY_MODULE.exists() or not all(p.parent.exists() for p in CRS_FILES),
    reason="libnginx-mod-http-modsecurity and modsecurity-crs are needed (make setup installs them)")

BLOCK_CRS = WafProfile(blocking=True, owasp_crs=True)
DETECT_CRS = WafProfile(blocking=False, owasp_crs=True)


@pytest.fixture(scope="module")
def echo() -> Iterator[EchoServer]:
    with echo_servers("slow") as servers:
        yield servers["slow"]


@pytest.fixture(scope="module")
def gateway() -> Iterator[Engine]:
    with running_engine([Listener(free_port(), LOOPBACK)]) as engine:
        yield engine


def limited(engine: Engine, name: str, echo: EchoServer, limit: dict[str, Any], path: str = "/") -> str:
    """A vhost `<name>.limits.test` whose one route carries the rate_limit filter `limit`; answers the host."""
    host = f"{name}.limits.test"
    engine.put_backend(f"limits-{name}", [ep(echo)])
    engine.put_vhost(f"limits-{name}", {"ports": [port_of(engine)], "hostnames": [host], "routes": [
        {"id": f"limits/{name}", "match": prefix(path),
         "filters": [{"type": "rate_limit", "zone": f"limits/{name}", **limit}], "backend": to(f"limits-{name}")}]})
    return host


def concurrently(engine: Engine, host: str, path: str, n: int) -> list[Answer]:
    answers: list[Answer] = []
    lock = threading.Lock()

    def one() -> None:
        answer = call(engine, host, path)
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def test_limit_connections_admits_exactly_the_limit(gateway: Engine, echo: EchoServer) -> None:
    # ingress-nginx's e2e: limit-connections "8", 20 concurrent slow requests: exactly 8 get 200, 12 get 503.
    host = limited(gateway, "conn", echo, {"connections": 8})
    answers = concurrently(gateway, host, "/sleep?sleep_ms=2000", 20)
    assert Counter(a.status for a in answers) == {200: 8, 503: 12}
    assert {a.headers.get("X-Netplane-Reason") for a in answers if a.status == 503} == {"connection-limit"}
    # Every slot came back when its request ended (the log phase of @np_conn, which runs just after the
    # client has its answer).
    time.sleep(0.3)
    again = concurrently(gateway, host, "/sleep?sleep_ms=200", 8)
    assert Counter(a.status for a in again) == {200: 8}


def test_connection_limit_status_and_allowlist(gateway: Engine, echo: EchoServer) -> None:
    host = limited(gateway, "conn-status", echo, {"connections": 2, "connection_status": 429})
    assert Counter(a.status for a in concurrently(gateway, host, "/?sleep_ms=1500", 5)) == {200: 2, 429: 3}
    free = limited(gateway, "conn-allowed", echo, {"connections": 1, "allowlist": ["127.0.0.0/8"]})
    assert Counter(a.status for a in concurrently(gateway, free, "/?sleep_ms=500", 4)) == {200: 4}


def test_limit_rpm_burst_is_rate_times_multiplier_plus_one(gateway: Engine, echo: EchoServer) -> None:
    # One request a minute with a burst of 5: all at once, the first 1 + 5 pass and the rest are refused;
    # the refused ones do not use up anything (nothing leaks back within a minute either way).
    host = limited(gateway, "rpm", echo, {"rates": [{"limit": 1, "unit": "minute", "burst": 5}]})
    statuses = [call(gateway, host, "/x").status for _ in range(12)]
    assert statuses == [200] * 6 + [503] * 6
    refused = call(gateway, host, "/x")
    assert (refused.status, refused.headers.get("X-Netplane-Reason")) == (503, "rate-limit")


def test_limit_rps_refills_and_routes_count_apart(gateway: Engine, echo: EchoServer) -> None:
    host = limited(gateway, "rps", echo, {"rates": [{"limit": 2, "unit": "second", "burst": 4}], "status": 429})
    other = limited(gateway, "rps-other", echo, {"rates": [{"limit": 2, "unit": "second", "burst": 4}]})
    started = time.monotonic()
    statuses = [call(gateway, host).status for _ in range(15)]
    elapsed = time.monotonic() - started
    # 1 + 4 at once, then 2 a second: however slow the machine, no more than that passed.
    assert statuses[:5] == [200] * 5 and set(statuses) == {200, 429}, statuses
    assert statuses.count(200) <= 5 + int(elapsed * 2) + 1, (statuses, elapsed)
    assert call(gateway, other).status == 200
    time.sleep(1.2)
    assert call(gateway, host).status == 200


def test_allowlisted_clients_are_never_limited(gateway: Engine, echo: EchoServer) -> None:
    host = limited(gateway, "allow", echo, {"rates": [{"limit": 1, "unit": "minute", "burst": 1}],
                                            "allowlist": ["10.0.0.0/8", "127.0.0.1"]})
    assert [call(gateway, host).status for _ in range(20)] == [200] * 20
    fenced = limited(gateway, "fenced", echo, {"rates": [{"limit": 1, "unit": "minute", "burst": 1}],
                                               "allowlist": ["10.0.0.0/8", "::1"]})
    assert [call(gateway, fenced).status for _ in range(3)] == [200, 200, 503]


def test_bad_limits_are_refused_and_the_old_route_serves(gateway: Engine, echo: EchoServer) -> None:
    host = limited(gateway, "bad", echo, {"connections": 4})
    for bad, field in (({"rates": [{"limit": 0, "unit": "second"}]}, "rates[0].limit"),
                       ({"rates": [{"limit": 1, "unit": "hour"}]}, "rates[0].unit"),
                       ({"connections": 2, "allowlist": ["10.0.0.0/33"]}, "allowlist[0]"),
                       ({"connections": 2, "status": 200}, "status"), ({}, "needs rates or connections")):
        with pytest.raises(ControlError) as refused:
            limited(gateway, "bad", echo, bad)
        assert refused.value.status == 400 and field in refused.value.message, refused.value.message
    assert call(gateway, host).status == 200


def test_a_connection_limit_towards_an_https_backend_is_an_error_not_a_bypass(gateway: Engine,
                                                                            echo: EchoServer) -> None:
    # HTTPS backends continue in their protocol's location, which cannot give a slot back (the renderer never
    # produces this; a document that does gets a clear answer instead of an unlimited route).
    gateway.put("backends", "limits-tls", {"endpoints": [ep(echo)], "protocol": "https"})
    gateway.put_vhost("limits-tls", {"ports": [port_of(gateway)], "hostnames": ["tls.limits.test"], "routes": [
        {"id": "tls", "filters": [{"type": "rate_limit", "zone": "tls", "connections": 5}],
         "backend": to("limits-tls")}]})
    answer = call(gateway, "tls.limits.test")
    assert (answer.status, answer.headers.get("X-Netplane-Reason")) == (502, "limit-or-waf-needs-http-backend")


def test_ingress_limits_rendered_from_the_ir(gateway: Engine, echo: EchoServer) -> None:
    # What translate makes of limit-rpm "1" with limit-burst-multiplier "3" and limit-connections "5" (a slot
    # comes back in the log phase, just after the client has its answer: sequential requests may overlap it).
    limit = ir.RateLimit(rates=(ir.RequestRate(1, ir.RateUnit.MINUTE, burst=3),), connections=5)
    routes = (ir.Route(provenance=ir.Provenance("Ingress", "limits", "ir"), match=ir.MATCH_ALL,
                       action=ir.Forward("limits-ir"), filters=(limit,)),)
    group = ir.BackendGroup("limits-ir", (ir.Backend("limits/echo:80", endpoints=(ir.Endpoint(ADDR, echo.port),)),))
    config = ir.RoutingConfig(listeners=(ir.Listener("http", port_of(gateway), ir.Protocol.HTTP, virtual_hosts=(
        ir.VirtualHost(("ir.limits.test",), routes),)),), backend_groups=(group,))
    out = render(config)
    assert out.unenforced == ()
    for name, doc in out.backends.items():
        gateway.put("backends", name, doc)
    for name, doc in out.vhosts.items():
        gateway.put_vhost(name, doc)
    assert [call(gateway, "ir.limits.test").status for _ in range(6)] == [200] * 4 + [503] * 2


# -- WAF ---------------------------------------------------------------------------------------------------

SCANNER = {"User-Agent": "nikto"}
BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64)", "Accept": "text/html"}
XSS = "q=%3Cscript%3Ealert(1)%3C%2Fscript%3E"
BLOCK_CRS_NOBODY = WafProfile(blocking=True, owasp_crs=True, request_body=False)
BLOCK = WafProfile(blocking=True)
PROFILES = [BLOCK_CRS, DETECT_CRS, BLOCK_CRS_NOBODY, BLOCK]


@pytest.fixture(scope="module")
def waf_gateway(echo: EchoServer) -> Iterator[Engine]:
    # Started without profiles: the first test offers them (a reload), as the instance program does.
    with running_engine([Listener(free_port(), LOOPBACK)]) as engine:
        engine.put_backend("waf", [ep(echo)])
        yield engine


def waf_routes(engine: Engine) -> dict[str, Any]:
    block = {"type": "waf", "mode": "blocking", "owasp_crs": True}
    return {"ports": [port_of(engine)], "hostnames": ["waf.test"], "routes": [
        {"id": "block", "match": prefix("/block"), "backend": to("waf"), "filters": [block]},
        {"id": "detect", "match": prefix("/detect"), "backend": to("waf"),
         "filters": [{"type": "waf", "mode": "detection-only", "owasp_crs": True,
                      "transaction_id": [{"text": "np-"}, {"var": "header", "name": "X-Trace"}]}]},
        {"id": "nobody", "match": prefix("/nobody"), "backend": to("waf"),
         "filters": [{**block, "request_body": False}]},
        {"id": "bare", "match": prefix("/bare"), "backend": to("waf"), "filters": [{**block, "owasp_crs": False}]},
        # Everything at once: the WAF location also has the header filter and the log phase.
        {"id": "guarded", "match": prefix("/guarded"), "backend": to("waf"), "retries": 1,
         "filters": [{"type": "rate_limit", "zone": "waf/guarded", "connections": 1}, block,
                     {"type": "response_headers", "set": [{"name": "X-Backend", "value": "hidden"}]}]},
        {"id": "plain", "match": prefix("/"), "backend": to("waf")},
    ]}


def with_waf(engine: Engine) -> Engine:
    if not engine.waf:
        engine.set_waf_profiles(PROFILES)
        engine.put_vhost("waf", waf_routes(engine))
    return engine


def post(engine: Engine, path: str, body: str, content_type: str = "application/x-www-form-urlencoded") -> int:
    return call(engine, "waf.test", path, "POST", {"Content-Type": content_type, **BROWSER}, body=body.encode()).status


@needs_modsecurity
def test_waf_needs_its_profile_and_the_module_only_then(waf_gateway: Engine) -> None:
    conf = (waf_gateway.prefix / CONF_FILE).read_text()
    assert "modsecurity" not in conf
    with pytest.raises(ControlError) as refused:
        waf_gateway.put_vhost("waf", waf_routes(waf_gateway))
    assert refused.value.status == 400
    assert "routes[0] (block): filters[0]: WAF profile block-crs is not configured" in refused.value.message
    assert waf_gateway.set_waf_profiles(PROFILES) is True
    assert waf_gateway.set_waf_profiles(reversed(PROFILES)) is False
    conf = (waf_gateway.prefix / CONF_FILE).read_text()
    assert f"load_module {MODSECURITY_MODULE};" in conf and conf.count("modsecurity on;") == 4
    waf_gateway.put_vhost("waf", waf_routes(waf_gateway))


@needs_modsecurity
def test_owasp_crs_blocks_a_scanner_in_blocking_mode_only(waf_gateway: Engine) -> None:
    with_waf(waf_gateway)
    assert call(waf_gateway, "waf.test", "/block/x", headers=SCANNER).status == 403
    assert call(waf_gateway, "waf.test", "/block/x", headers=BROWSER).status == 200
    audit = waf_gateway.prefix / WAF_AUDIT_LOG
    audit_before = audit.read_text() if audit.exists() else ""
    detected = call(waf_gateway, "waf.test", "/detect/x", headers={**SCANNER, "X-Trace": "t-42"})
    assert detected.status == 200 and detected.json["path"] == "/detect/x"
    assert call(waf_gateway, "waf.test", "/detect/x", headers=BROWSER).status == 200
    # Detection only: the match goes to the audit log under the route's transaction id; the request is served.
    record = audit.read_text()[len(audit_before):]
    assert "np-t-42" in record and "scanners-user-agents.data" in record
    # A route without WAF never passes through ModSecurity.
    log_before, audit_before = (waf_gateway.prefix / ERROR_LOG).read_text(), audit.read_text()
    assert call(waf_gateway, "waf.test", "/other", headers=SCANNER).status == 200
    assert call(waf_gateway, "waf.test", "/other?" + XSS, headers=BROWSER).status == 200
    assert "ModSecurity" not in (waf_gateway.prefix / ERROR_LOG).read_text()[len(log_before):]
    assert audit.read_text() == audit_before


@needs_modsecurity
def test_request_bodies_are_inspected_unless_the_profile_says_not(waf_gateway: Engine) -> None:
    with_waf(waf_gateway)
    assert post(waf_gateway, "/block", XSS) == 403
    assert post(waf_gateway, "/block", "q=hello") == 200
    assert post(waf_gateway, "/detect", XSS) == 200
    # (libmodsecurity 3 then skips every phase-2 rule, most of the CRS: ModSecurity issue #2465, the same in
    # ingress-nginx, whose `SecRequestBodyAccess Off` snippet this profile stands for.)
    assert post(waf_gateway, "/nobody", XSS) == 200


@needs_modsecurity
def test_a_profile_without_the_crs_keeps_netplanes_rules_only(waf_gateway: Engine) -> None:
    # The CRS is loaded (other profiles use it) but not applied here; the body checks of every profile are.
    with_waf(waf_gateway)
    assert call(waf_gateway, "waf.test", "/bare", headers=SCANNER).status == 200
    assert post(waf_gateway, "/bare", XSS) == 200
    assert post(waf_gateway, "/bare", '{"a": [1, 2}', "application/json") == 400
    assert post(waf_gateway, "/bare", '{"a": [1, 2]}', "application/json") == 200


@needs_modsecurity
def test_waf_routes_keep_connection_limits_and_response_filters(waf_gateway: Engine) -> None:
    with_waf(waf_gateway)
    answers = concurrently(waf_gateway, "waf.test", "/guarded?sleep_ms=1500", 3)
    assert Counter(a.status for a in answers) == {200: 1, 503: 2}
    assert [a.name for a in answers if a.status == 200] == ["hidden"]
    time.sleep(0.3)
    assert call(waf_gateway, "waf.test", "/guarded", headers=SCANNER).status == 403
    time.sleep(0.3)
    # Refused by ModSecurity or served, each request gave its slot back.
    assert call(waf_gateway, "waf.test", "/guarded", headers=BROWSER).name == "hidden"


# -- Ingress annotations through the front door (translate → render → DocumentSync → engine) ----------------------


@pytest.fixture(scope="module")
def front() -> Iterator[IngressHarness]:
    backend = Backend("slow")
    try:
        with running_harness() as h:
            h.apply(app("slow", backend))
            yield h
    finally:
        backend.stop()


def concurrent_gets(h: IngressHarness, host: str, path: str, n: int) -> Counter[int]:
    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        return Counter(pool.map(lambda _: h.get(host, path).status, range(n)))


def test_ingress_limit_connections(front: IngressHarness) -> None:
    # ingress-nginx's e2e (annotations/limitconnections.go): 20 concurrent slow requests, exactly 8 served.
    front.apply(simple("conn", "conn.ing.test", "slow", annotations={"limit-connections": "8"}))
    assert concurrent_gets(front, "conn.ing.test", "/sleep?sleep_ms=2000", 20) == {200: 8, 503: 12}
    front.delete("Ingress", "conn")


def test_ingress_limit_rpm_burst_and_allowlist(front: IngressHarness) -> None:
    front.apply(simple("rpm", "rpm.ing.test", "slow", annotations={"limit-rpm": "1"}),
                simple("rpm-free", "rpm-free.ing.test", "slow",
                       annotations={"limit-rpm": "1", "limit-allowlist": "10.0.0.0/8, 127.0.0.1"}))
    # limit-burst-multiplier defaults to 5: 1 + 5 at once, then the ConfigMap's limit-req-status-code (503).
    assert [front.get("rpm.ing.test").status for _ in range(9)] == [200] * 6 + [503] * 3
    assert {front.get("rpm-free.ing.test").status for _ in range(9)} == {200}
    front.configure({"limit-req-status-code": "429"})
    assert front.get("rpm.ing.test").status == 429
    front.configure()
    for name in ("rpm", "rpm-free"):
        front.delete("Ingress", name)


@needs_modsecurity
def test_ingress_modsecurity_with_the_owasp_crs(front: IngressHarness) -> None:
    reloads = front.engine.reloads
    waf = {"enable-modsecurity": "true", "enable-owasp-core-rules": "true"}
    front.apply(simple("waf-on", "waf-on.ing.test", "slow", annotations={**waf, "modsecurity-snippet":
                                                                            "SecRuleEngine On"}),
                simple("waf-detect", "waf-detect.ing.test", "slow", annotations=waf),
                simple("waf-none", "waf-none.ing.test", "slow"))
    assert not [e for e in front.last.events_of("waf-on") if e.startswith("NotEnforced:")]
    assert front.engine.reloads == reloads + 1, "offering the WAF profiles is one reload"
    scanner, browser = {"User-Agent": "nikto"}, {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64)"}
    assert front.get("waf-on.ing.test", headers=scanner).status == 403
    assert front.get("waf-on.ing.test", headers=browser).status == 200
    # ingress-nginx's default modsecurity.conf only detects.
    assert front.get("waf-detect.ing.test", headers=scanner).status == 200
    assert front.get("waf-none.ing.test", headers=scanner).status == 200
    for name in ("waf-on", "waf-detect"):
        front.delete("Ingress", name)
    assert front.engine.waf == () and "modsecurity" not in (front.engine.prefix / CONF_FILE).read_text()
    front.delete("Ingress", "waf-none")
