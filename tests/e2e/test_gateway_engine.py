"""The gateway engine with real nginx on loopback: routing, balancing, filters and live changes.

Backends are small HTTP servers in this process that answer JSON naming themselves and echoing the
request they saw. One engine serves the whole module; each test uses its own virtual hosts, hostnames
and backends, so tests do not see each other's configuration.
"""

from __future__ import annotations

import datetime as dt
import http.client
import http.server
import os
import shutil
import socket
import stat
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from netplane.dataplane.gateway import ControlError, Engine, EngineError, InstanceSettings, Listener
from netplane.dataplane.gateway.config import CONF_FILE, LUA_SOURCE, CheckError, check_lua, check_nginx
from tests.e2e.gateway_harness import (
    ADDR,
    LOOPBACK,
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
    unverified_context,
)

pytestmark = [pytest.mark.e2e, needs_engine]


@pytest.fixture(scope="module")
def backends() -> Iterator[dict[str, EchoServer]]:
    with echo_servers("a", "b", "c") as servers:
        yield servers


@pytest.fixture(scope="module")
def gateway() -> Iterator[Engine]:
    with running_engine([Listener(free_port(), LOOPBACK)]) as engine:
        yield engine


def pids(engine: Engine) -> tuple[int | None, list[int]]:
    return engine.master_pid, engine.worker_pids()


def test_control_socket_is_private(gateway: Engine) -> None:
    control = gateway.settings.control_socket.parent
    assert stat.S_IMODE(control.stat().st_mode) == 0o700
    assert stat.S_ISSOCK(gateway.settings.control_socket.stat().st_mode)
    assert "listen unix:" in (gateway.prefix / CONF_FILE).read_text()


def test_routing_by_host_path_method_headers_query_cookies(gateway: Engine, backends: dict[str, EchoServer]) -> None:
    for name in "abc":
        gateway.put_backend(f"route-{name}", [ep(backends[name])])
    gateway.put_vhost("routing", {"ports": [port_of(gateway)], "hostnames": ["one.test", "*.wild.test"], "routes": [
        {"id": "exact", "match": {"path": {"type": "exact", "value": "/exact"}}, "backend": to("route-a")},
        {"id": "canary", "match": {**prefix("/api"), "headers": [{"name": "X-Env", "value": "canary"}]},
         "backend": to("route-c")},
        {"id": "post", "match": {**prefix("/api"), "methods": ["POST"]}, "backend": to("route-a")},
        {"id": "api", "match": prefix("/api/"), "backend": to("route-b")},
        {"id": "re", "match": {"path": {"type": "regex", "value": "^/re/[0-9]+$"}}, "backend": to("route-c")},
        {"id": "query", "match": {**prefix("/q"), "query": [{"name": "v", "type": "regex", "value": "^2"}]},
         "backend": to("route-c")},
        {"id": "cookie", "match": {**prefix("/q"), "cookies": [{"name": "beta", "type": "present"}]},
         "backend": to("route-b")},
        {"id": "local", "match": {**prefix("/net"), "source_ranges": ["10.0.0.0/8", "127.0.0.0/30"]},
         "backend": to("route-a")},
        {"id": "far", "match": {**prefix("/net"), "source_ranges": ["192.0.2.0/24", "::1"]}, "backend": to("route-b")},
    ]})
    expect = [
        ("one.test", "/exact", {}, "a"), ("one.test", "/exact/", {}, None), ("one.test", "/api", {}, "b"),
        ("one.test", "/api/x/y", {}, "b"), ("one.test", "/api/x", {"X-Env": "canary"}, "c"),
        ("one.test", "/apix", {}, None), ("x.wild.test", "/api", {}, "b"), ("x.y.wild.test", "/api", {}, "b"),
        ("wild.test", "/api", {}, None), ("two.test", "/api", {}, None), ("one.test", "/re/12", {}, "c"),
        ("one.test", "/re/x", {}, None), ("one.test", "/q?v=21", {}, "c"), ("one.test", "/q?v=12", {}, None),
        ("one.test", "/q", {"Cookie": "a=1; beta=x"}, "b"), ("one.test", "/q", {"Cookie": "alphabeta=x"}, None),
        ("ONE.test:80", "/net", {}, "a"),
    ]
    for host, path, headers, backend in expect:
        answer = call(gateway, host, path, headers=headers)
        if backend is None:
            assert (answer.status, answer.headers.get("X-Netplane-Reason")) == (404, "no-route"), (host, path)
        else:
            assert (answer.status, answer.name) == (200, backend), (host, path, headers)
    assert call(gateway, "one.test", "/api/x", method="POST").name == "a"


def test_alternatives_character_prefixes_condition_operators_and_one_label_wildcards(
        gateway: Engine, backends: dict[str, EchoServer]) -> None:
    gateway.put_backend("more-a", [ep(backends["a"])])
    gateway.put_backend("more-b", [ep(backends["b"])])
    gateway.put_vhost("more", {"ports": [port_of(gateway)], "hostnames": ["*.one.deep.test"], "wildcard": "one-label",
                               "routes": [
        {"id": "either", "matches": [{"path": {"type": "exact", "value": "/x"}},
                                     {**prefix("/y"), "methods": ["PUT"]}], "backend": to("more-a")},
        {"id": "chars", "match": {"path": {"type": "starts-with", "value": "/imag"}}, "backend": to("more-b")},
        {"id": "ops", "match": {**prefix("/ops"), "headers": [
            {"name": "X-Ver", "type": "prefix", "value": "v2"}, {"name": "X-Ver", "type": "suffix", "value": "-rc"},
            {"name": "X-Block", "type": "present", "invert": True}]}, "backend": to("more-a")},
        {"id": "fixed", "match": prefix("/ops"), "filters": [
            {"type": "direct_response", "status": 418, "body": "no match\n"}]},
    ]})
    gateway.put_vhost("deep", {"ports": [port_of(gateway)], "hostnames": ["*.deep.test"], "routes": [
        {"id": "deep", "match": prefix("/"), "backend": to("more-b")}]})
    assert call(gateway, "a.one.deep.test", "/x").name == "a"
    assert call(gateway, "a.one.deep.test", "/y/z", method="PUT").name == "a"
    assert call(gateway, "a.one.deep.test", "/y/z").status == 404
    assert call(gateway, "a.one.deep.test", "/images/1").name == "b"
    assert call(gateway, "a.one.deep.test", "/ops", headers={"X-Ver": "v2.1-rc"}).name == "a"
    fixed = call(gateway, "a.one.deep.test", "/ops", headers={"X-Ver": "v2.1-rc", "X-Block": "1"})
    assert (fixed.status, fixed.body) == (418, b"no match\n")
    assert call(gateway, "a.one.deep.test", "/ops", headers={"X-Ver": "v3-rc"}).status == 418
    # One label only: deeper names fall to the any-labels wildcard of the other virtual host.
    assert call(gateway, "b.a.one.deep.test", "/x").name == "b"
    assert call(gateway, "one.deep.test", "/x").name == "b"
    gateway.delete("vhosts", "deep")
    assert call(gateway, "b.a.one.deep.test", "/x").status == 404


def test_precedence_is_the_order_given(gateway: Engine, backends: dict[str, EchoServer]) -> None:
    gateway.put_backend("order-a", [ep(backends["a"])])
    gateway.put_backend("order-b", [ep(backends["b"])])
    broad = {"id": "broad", "match": prefix("/p"), "backend": to("order-a")}
    narrow = {"id": "narrow", "match": {"path": {"type": "exact", "value": "/p/x"}}, "backend": to("order-b")}
    doc = {"ports": [port_of(gateway)], "hostnames": ["order.test"], "routes": [broad, narrow]}
    gateway.put_vhost("order", doc)
    assert call(gateway, "order.test", "/p/x").name == "a"
    gateway.put_vhost("order", {**doc, "routes": [narrow, broad]})
    assert call(gateway, "order.test", "/p/x").name == "b"
    assert call(gateway, "order.test", "/p/y").name == "a"


def test_deep_uris_and_many_rejected_candidates_match_as_short_ones(gateway: Engine,
                                                                   backends: dict[str, EchoServer]) -> None:
    # The match unrolls into LuaJIT's trace up to 15 tail calls; beyond (40 segments, 30 candidates refused by
    # their methods) it leaves the trace and must answer the same.
    gateway.put_backend("deep-a", [ep(backends["a"])])
    gateway.put_backend("deep-b", [ep(backends["b"])])
    refused = [{"id": f"post-{i}", "match": {**prefix("/d"), "methods": ["POST"]}, "backend": to("deep-b")}
               for i in range(30)]
    gateway.put_vhost("deep", {"ports": [port_of(gateway)], "hostnames": ["deep.test"], "routes": [
        *refused, {"id": "deep", "match": prefix("/d/" + "/".join(["s"] * 20)), "backend": to("deep-b")},
        {"id": "any", "match": prefix("/d"), "backend": to("deep-a")}]})
    for _ in range(100):
        assert call(gateway, "deep.test", "/d/" + "/".join(["s"] * 40)).name == "b"
        assert call(gateway, "deep.test", "/d/" + "/".join(["s"] * 19) + "/t").name == "a"
        assert call(gateway, "deep.test", "/d/x").name == "a"


def test_weighted_split(gateway: Engine, backends: dict[str, EchoServer]) -> None:
    gateway.put_backend("split-main", [ep(backends["a"])])
    gateway.put_backend("split-canary", [ep(backends["b"]), ep(backends["c"], weight=3)])
    group = {"backends": [{"name": "split-main", "weight": 80}, {"name": "split-canary", "weight": 20}]}
    gateway.put_vhost("split", {"ports": [port_of(gateway)], "hostnames": ["split.test"],
                                "routes": [{"id": "s", "match": prefix("/"), "backend": group}]})
    counts = Counter(call(gateway, "split.test").name for _ in range(200))
    # Smooth weighted round robin per worker: two workers share the requests, each keeps the proportions.
    assert 140 <= counts["a"] <= 180, counts
    assert counts["c"] > counts["b"] > 0, counts


def test_cookie_affinity_sticks(gateway: Engine, backends: dict[str, EchoServer]) -> None:
    gateway.put_backend("sticky", [ep(backends[n]) for n in "abc"])
    policy = {"type": "cookie", "cookie": {"name": "np-test", "max_age": 600, "same_site": "Lax"}}
    gateway.put_vhost("sticky", {"ports": [port_of(gateway)], "hostnames": ["sticky.test"],
                                 "routes": [{"id": "s", "match": prefix("/"), "backend": to("sticky", policy=policy)}]})
    first = call(gateway, "sticky.test")
    set_cookie = first.headers["Set-Cookie"]
    assert set_cookie.startswith("np-test=") and "Max-Age=600" in set_cookie and "HttpOnly" in set_cookie
    assert "SameSite=Lax" in set_cookie
    cookie = set_cookie.split(";", 1)[0]
    followers = [call(gateway, "sticky.test", headers={"Cookie": f"other=1; {cookie}"}) for _ in range(20)]
    assert {f.name for f in followers} == {first.name}
    assert all("Set-Cookie" not in f.headers for f in followers)
    # Without the cookie requests spread; an unknown token gets a fresh cookie.
    assert len({call(gateway, "sticky.test").name for _ in range(12)}) > 1
    assert call(gateway, "sticky.test", headers={"Cookie": "np-test=gone"}).headers["Set-Cookie"].startswith("np-test=")


def test_hash_policies_are_stable(gateway: Engine, backends: dict[str, EchoServer]) -> None:
    gateway.put_backend("hashed", [ep(backends[n]) for n in "abc"])
    by_header = to("hashed", policy={"type": "hash", "source": "header", "name": "X-User"})
    by_ip = to("hashed", policy={"type": "source_ip"})
    gateway.put_vhost("hashed", {"ports": [port_of(gateway)], "hostnames": ["hash.test"], "routes": [
        {"id": "user", "match": prefix("/user"), "backend": by_header},
        {"id": "ip", "match": prefix("/ip"), "backend": by_ip},
    ]})
    assert len({call(gateway, "hash.test", "/ip").name for _ in range(10)}) == 1
    chosen = {}
    for user in range(30):
        names = {call(gateway, "hash.test", "/user", headers={"X-User": f"u{user}"}).name for _ in range(3)}
        assert len(names) == 1
        chosen[user] = names.pop()
    assert len(set(chosen.values())) > 1
    # Consistent hashing: removing one endpoint moves only the users it had.
    gateway.put_backend("hashed", [ep(backends[n]) for n in "ab"])
    for user, name in chosen.items():
        if name != "c":
            assert call(gateway, "hash.test", "/user", headers={"X-User": f"u{user}"}).name == name


def test_changes_take_effect_without_reload(gateway: Engine, backends: dict[str, EchoServer]) -> None:
    gateway.put_backend("live", [ep(backends["a"])])
    route = {"id": "one", "match": prefix("/one"), "backend": to("live")}
    doc = {"ports": [port_of(gateway)], "hostnames": ["live.test"], "routes": [route]}
    gateway.put_vhost("live", doc)
    assert call(gateway, "live.test", "/one").name == "a"
    before, reloads = pids(gateway), gateway.reloads
    added = {"id": "two", "match": prefix("/two"), "backend": to("live")}
    gateway.put_vhost("live", {**doc, "routes": [route, added]})
    assert call(gateway, "live.test", "/two").status == 200
    gateway.put_vhost("live", doc)
    assert call(gateway, "live.test", "/two").status == 404
    gateway.put_backend("live", [ep(backends["b"])])
    assert {call(gateway, "live.test", "/one").name for _ in range(6)} == {"b"}
    gateway.put_vhost("live", {**doc, "hostnames": ["live2.test"]})
    assert call(gateway, "live.test", "/one").status == 404
    assert call(gateway, "live2.test", "/one").name == "b"
    gateway.delete("vhosts", "live")
    assert call(gateway, "live2.test", "/one").status == 404
    assert pids(gateway) == before and gateway.reloads == reloads


def test_broken_pushes_are_refused_and_the_old_config_keeps_serving(gateway: Engine,
                                                                    backends: dict[str, EchoServer]) -> None:
    gateway.put_backend("keep", [ep(backends["a"])])
    good = {"ports": [port_of(gateway)], "hostnames": ["keep.test"],
            "routes": [{"id": "r", "match": prefix("/"), "backend": to("keep")}]}
    gateway.put_vhost("keep", good)
    generation = gateway.status()["generation"]

    def refused(kind: str, doc: Any, status: int, fragment: str) -> None:
        with pytest.raises(ControlError) as err:
            gateway.put(kind, "keep", doc)
        assert err.value.status == status and fragment in err.value.message, err.value

    refused("vhosts", b'{"ports": [', 400, "invalid JSON")
    bad_regex = {"id": "bad", "match": {"path": {"type": "regex", "value": "^/(unclosed"}}, "backend": to("keep")}
    refused("vhosts", {**good, "routes": [bad_regex]}, 400, "routes[0] (bad): match.path.value: invalid regex")
    refused("vhosts", {**good, "routes": [{"match": prefix("/"), "filters": [{"type": "teleport"}]}]}, 400,
            "unknown filter")
    refused("vhosts", {**good, "hostnames": ["Bad Host"]}, 400, "hostname")
    refused("vhosts", {**good, "routes": [{"match": prefix("/"), "filters": [
        {"type": "request_headers", "set": [{"name": "X-A", "value": "1\r\nInjected: yes"}]}]}]}, 400,
        "control characters")
    refused("backends", {"endpoints": [{"address": "backend.example", "port": 80}]}, 400, "IP address")
    refused("backends", {"endpoints": [{"address": ADDR, "port": 70000}]}, 400, "port")
    with pytest.raises(ControlError) as conflict:
        gateway.put_vhost("thief", {**good, "hostnames": ["keep.test"]})
    assert conflict.value.status == 409
    assert gateway.status()["generation"] == generation
    assert call(gateway, "keep.test", "/x").name == "a"
    assert gateway.get("vhosts", "keep") == good


def test_default_answers_carry_a_reason(gateway: Engine, backends: dict[str, EchoServer]) -> None:
    gateway.put_backend("empty", [])
    gateway.put_vhost("reasons", {"ports": [port_of(gateway)], "hostnames": ["reasons.test"], "routes": [
        {"id": "empty", "match": prefix("/empty"), "backend": to("empty")},
        {"id": "missing", "match": prefix("/missing"), "backend": to("no-such-backend")},
        {"id": "none", "match": prefix("/none")},
    ]})
    for path in ("/empty", "/missing", "/none"):
        answer = call(gateway, "reasons.test", path)
        assert (answer.status, answer.headers["X-Netplane-Reason"]) == (503, "no-endpoints"), path
    for host, path in (("reasons.test", "/other"), ("nobody.test", "/")):
        answer = call(gateway, host, path)
        assert (answer.status, answer.headers["X-Netplane-Reason"]) == (404, "no-route")


def test_filters(gateway: Engine, backends: dict[str, EchoServer]) -> None:
    gateway.put_backend("filters", [ep(backends["a"])])
    headers = {"type": "request_headers", "set": [{"name": "X-Set", "value": "s"}],
               "add": [{"name": "X-Add", "value": "two"}], "remove": ["X-Drop"]}
    response = {"type": "response_headers", "set": [{"name": "X-Served-By", "value": "netplane"}],
                "add": [{"name": "X-Backend", "value": "extra"}], "remove": ["Content-Type"]}
    gateway.put_vhost("filters", {"ports": [port_of(gateway)], "hostnames": ["filters.test"], "routes": [
        {"id": "hdr", "match": prefix("/hdr"), "filters": [headers, response], "backend": to("filters")},
        {"id": "re", "match": {"path": {"type": "regex", "value": "^/old/([^/]+)/(.*)$"}}, "filters": [
            {"type": "rewrite", "path": {"type": "regex", "pattern": "^/old/([^/]+)/(.*)$",
                                         "replacement": "/new/$2/$1"}}], "backend": to("filters")},
        {"id": "pfx", "match": prefix("/v1/"), "filters": [
            {"type": "rewrite", "hostname": "inner.test", "path": {"type": "prefix", "value": "/api/v1"}}],
         "backend": to("filters")},
        {"id": "https", "match": prefix("/secure"), "filters": [
            {"type": "redirect", "scheme": "https", "status": 301}]},
        {"id": "moved", "match": prefix("/moved"), "filters": [
            {"type": "redirect", "hostname": "elsewhere.test", "port": 8080,
             "path": {"type": "prefix", "value": "/here"}}]},
    ]})
    seen = call(gateway, "filters.test", "/hdr", headers={"X-Add": "one", "X-Drop": "x", "X-Set": "old"})
    echoed = seen.json["headers"]
    assert echoed["x-set"] == "s" and echoed["x-add"] == "one,two" and "x-drop" not in echoed
    assert seen.headers["X-Served-By"] == "netplane" and seen.headers.get_all("X-Backend") == ["a", "extra"]
    assert "Content-Type" not in seen.headers
    assert call(gateway, "filters.test", "/old/abc/d/e?q=1").json["path"] == "/new/d/e/abc?q=1"
    moved = call(gateway, "filters.test", "/v1/items?x=2").json
    assert moved["path"] == "/api/v1/items?x=2" and moved["headers"]["host"] == "inner.test"
    secure = call(gateway, "filters.test", "/secure/page?a=b")
    assert (secure.status, secure.headers["Location"]) == (301, "https://filters.test/secure/page?a=b")
    elsewhere = call(gateway, "filters.test", "/moved/x")
    assert (elsewhere.status, elsewhere.headers["Location"]) == (302, "http://elsewhere.test:8080/here/x")


def test_retries_and_timeouts(gateway: Engine, backends: dict[str, EchoServer]) -> None:
    dead = free_port()  # nothing listens there
    gateway.put_backend("flaky", [{"address": ADDR, "port": dead}, ep(backends["b"])])
    gateway.put_backend("slow", [ep(backends["c"])])
    gateway.put_vhost("flaky", {"ports": [port_of(gateway)], "hostnames": ["flaky.test"], "routes": [
        {"id": "retry", "match": prefix("/retry"), "backend": to("flaky"), "retries": 1},
        {"id": "once", "match": prefix("/once"), "backend": to("flaky")},
        {"id": "slow", "match": prefix("/slow"), "backend": to("slow"), "timeouts": {"read_ms": 200}},
    ]})
    assert {call(gateway, "flaky.test", "/retry").status for _ in range(10)} == {200}
    assert 502 in {call(gateway, "flaky.test", "/once").status for _ in range(10)}
    started = time.monotonic()
    assert call(gateway, "flaky.test", "/slow?sleep_ms=2000").status == 504
    assert time.monotonic() - started < 1.5
    assert call(gateway, "flaky.test", "/slow?sleep_ms=10").status == 200


def _self_signed(host: str) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem.decode()


def _served_certificate(port: int, sni: str) -> tuple[str, int, bytes]:
    context = unverified_context()
    conn = http.client.HTTPSConnection(ADDR, port, timeout=10, context=context)
    try:
        conn.connect()
        assert conn.sock is not None
        # http.client sends the connection host as SNI; wrap again with the name under test.
        conn.sock.close()
        raw = socket.create_connection((ADDR, port), timeout=10)
        tls = context.wrap_socket(raw, server_hostname=sni)
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        cn = x509.load_der_x509_certificate(der).subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        tls.sendall(f"GET / HTTP/1.1\r\nHost: {sni}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
        tls.close()
        status = int(data.split(b" ", 2)[1])
        return str(cn), status, data
    finally:
        conn.close()


def test_listener_change_reloads_after_checks_and_certificates_follow_sni(
        gateway: Engine, backends: dict[str, EchoServer]) -> None:
    plain, tls_port = port_of(gateway), free_port()
    gateway.put_backend("tls", [ep(backends["a"])])
    gateway.put_vhost("tls", {"ports": [plain, tls_port], "hostnames": ["secure.test"],
                              "routes": [{"id": "r", "match": prefix("/"), "backend": to("tls")}]})
    before = pids(gateway)
    assert gateway.set_listeners([*gateway.listeners, Listener(tls_port, LOOPBACK, tls=True)])
    assert gateway.reloads >= 1 and pids(gateway)[1] != before[1] and pids(gateway)[0] == before[0]
    assert not gateway.set_listeners(list(gateway.listeners))

    cert, key = _self_signed("secure.test")
    gateway.put_certificate("secure", ["secure.test"], cert, key)
    assert _served_certificate(tls_port, "secure.test")[:2] == ("secure.test", 200)
    assert _served_certificate(tls_port, "unknown.test")[0] == "netplane-gateway-fallback"
    with pytest.raises(ControlError):
        gateway.put_certificate("wrong", ["x.test"], cert, _self_signed("x.test")[1])

    # A port another socket holds passes nginx -t but fails at bind(): refused, the old listeners stay.
    with socket.socket() as taken:
        taken.bind((ADDR, 0))
        taken.listen()
        busy = int(taken.getsockname()[1])
        good = (gateway.prefix / CONF_FILE).read_text()
        with pytest.raises(EngineError):
            gateway.set_listeners([*gateway.listeners, Listener(busy, LOOPBACK)])
        assert (gateway.prefix / CONF_FILE).read_text() == good
    assert call(gateway, "secure.test", "/", port=plain).name == "a"
    assert all(lst.port != busy for lst in gateway.listeners)
    gateway.set_listeners([Listener(plain, LOOPBACK)])
    assert call(gateway, "secure.test", "/", port=plain).name == "a"


def test_restart_repushes_the_accepted_state(backends: dict[str, EchoServer]) -> None:
    prefix_dir = Path(tempfile.mkdtemp(prefix="np-gw-test-", dir="/tmp"))
    engine = Engine(InstanceSettings(prefix_dir), [Listener(free_port(), LOOPBACK)])
    try:
        engine.start()
        engine.put_backend("r", [ep(backends["c"])])
        engine.put_vhost("r", {"ports": [port_of(engine)], "hostnames": ["*"],
                               "routes": [{"match": prefix("/"), "backend": to("r")}]})
        engine.stop()
        engine.start()
        assert call(engine, "anything.test").name == "c"
    finally:
        engine.stop()
        shutil.rmtree(prefix_dir, ignore_errors=True)
    assert not os.path.exists(prefix_dir)


def test_checks_refuse_broken_lua_and_configuration(tmp_path: Path) -> None:
    lua = tmp_path / "lua"
    shutil.copytree(LUA_SOURCE, lua)
    check_lua(lua)
    (lua / "router.lua").write_text((LUA_SOURCE / "router.lua").read_text() + "\nlocal x = = 1\n")
    with pytest.raises(CheckError, match="lua check failed"):
        check_lua(lua)
    conf = tmp_path / "nginx.conf"
    (tmp_path / "logs").mkdir()
    conf.write_text("events {}\nhttp { server { listen 1; unknown_directive; } }\n")
    with pytest.raises(CheckError, match="nginx check failed"):
        check_nginx(tmp_path, conf)
