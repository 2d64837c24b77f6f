"""Ingress black-box cases modelled on ingress-nginx's e2e suite (test/e2e/annotations, settings, servers): objects
in, HTTP requests through real nginx out, asserting what a client sees.

Each test applies its own objects (own hostnames) on a module-wide engine; the ``h`` fixture starts every test
with the standard Services (svc-a, svc-b, svc-c with one echo server each, svc-ab with two) and removes
everything afterwards.
"""

from __future__ import annotations

import base64
import concurrent.futures
import json
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from netplane.dataplane.gateway import ControlError
from netplane.dataplane.gateway.observability import ACCESS_LOG_FILE
from netplane.routing.ingress.admission import review_ingress
from netplane.routing.ingress.settings import ControllerSettings
from tests.e2e.gateway_harness import ADDR, free_port, needs_engine
from tests.e2e.ingress_harness import (
    Backend,
    IngressHarness,
    app,
    certificate_secret,
    config_map,
    endpoint_slice,
    ingress,
    ingress_path,
    running_harness,
    service,
    simple,
    tls_secret,
)

pytestmark = [pytest.mark.e2e, needs_engine]

ANY = object()  # "some backend answered 200"


@pytest.fixture(scope="module")
def pool() -> Iterator[dict[str, Backend]]:
    servers = {name: Backend(name) for name in "abc"}
    # A backend whose answers carry headers for the gateway to hide or clear.
    servers["d"] = Backend("d", [("X-Secret", "s3cr3t"), ("X-Powered-By", "php"), ("X-Internal", "1"),
                                 ("X-Keep", "1")])
    yield servers
    for s in servers.values():
        s.stop()


@pytest.fixture(scope="module")
def harness() -> Iterator[IngressHarness]:
    with running_harness() as h:
        yield h


def standard_apps(pool: dict[str, Backend]) -> list[Any]:
    return [app("svc-a", pool["a"]), app("svc-b", pool["b"]), app("svc-c", pool["c"]),
            app("svc-ab", pool["a"], pool["b"]), app("svc-d", pool["d"])]


@pytest.fixture
def h(harness: IngressHarness, pool: dict[str, Backend]) -> Iterator[IngressHarness]:
    harness.apply(standard_apps(pool))
    yield harness
    harness.reset()
    assert harness.engine.reloads == 0, "Ingress changes must never reload nginx"


def expect(reply: Any, want: object) -> None:
    """``want``: a backend name, ANY (some backend), or an HTTP status nginx answers itself."""
    if want is ANY:
        assert reply.status == 200 and reply.backend is not None
    elif isinstance(want, str):
        assert (reply.status, reply.backend) == (200, want)
    else:
        assert reply.status == want and reply.backend is None


# -- hosts ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("rule_host", "request_host", "want"), [
    ("exact.host.test", "exact.host.test", "a"),
    ("exact.host.test", "EXACT.Host.test", "a"),  # host names are case-insensitive
    ("exact.host.test", "exact.host.test:80", "a"),  # a port in Host is not part of the name
    ("exact.host.test", "other.host.test", 404),  # no server for the host, no default backend
    ("exact.host.test", "sub.exact.host.test", 404),
    ("*.wild.test", "one.wild.test", "a"),  # a wildcard covers one label
    ("*.wild.test", "two.one.wild.test", 404),  # ... and only one (Kubernetes Ingress semantics)
    ("*.wild.test", "wild.test", 404),  # ... and never the bare suffix
], ids=lambda v: str(v))
def test_host_matching(h: IngressHarness, rule_host: str, request_host: str, want: object) -> None:
    h.apply(simple("hosts", rule_host, "svc-a"))
    expect(h.get(request_host), want)


def test_exact_host_wins_over_wildcard(h: IngressHarness) -> None:
    h.apply(simple("wild", "*.prec.test", "svc-a"), simple("exact", "www.prec.test", "svc-b"))
    expect(h.get("www.prec.test"), "b")
    expect(h.get("api.prec.test"), "a")


def test_rule_without_host_catches_every_host_without_its_own_server(h: IngressHarness) -> None:
    h.apply(simple("catch", None, "svc-a"), simple("own", "own.catch.test", "svc-b", path="/only"))
    expect(h.get("anything.catch.test", "/x"), "a")
    expect(h.get("own.catch.test", "/only"), "b")
    # A host with its own server never falls through to the catch-all's rules (ingress-nginx: default backend).
    expect(h.get("own.catch.test", "/x"), 404)


def test_one_host_merged_from_two_ingresses(h: IngressHarness) -> None:
    h.apply(simple("merge-1", "merge.test", "svc-a", path="/one"), simple("merge-2", "merge.test", "svc-b",
                                                                          path="/two"))
    expect(h.get("merge.test", "/one"), "a")
    expect(h.get("merge.test", "/two"), "b")


def test_same_host_and_path_the_oldest_ingress_wins(h: IngressHarness) -> None:
    synced = h.apply(simple("dup-new", "dup.test", "svc-b", created="2026-02-01T00:00:00Z"),
                     simple("dup-old", "dup.test", "svc-a", created="2026-01-01T00:00:00Z"))
    expect(h.get("dup.test", "/"), "a")
    assert any("already served by ingress default/dup-old" in e for e in synced.events_of("dup-new"))


# -- path types -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("path_type", "rule_path", "request_path", "matches"), [
    ("Exact", "/foo", "/foo", True),
    ("Exact", "/foo", "/foo/", False),
    ("Exact", "/foo", "/foo/bar", False),
    ("Exact", "/foo", "/FOO", False),  # paths are case-sensitive
    ("Exact", "/foo", "/foo?x=1", True),  # the query string is not part of the path
    ("Prefix", "/foo", "/foo", True),
    ("Prefix", "/foo", "/foo/", True),
    ("Prefix", "/foo", "/foo/bar/baz", True),
    ("Prefix", "/foo", "/foobar", False),  # element-wise: /foo is not a prefix of /foobar
    ("Prefix", "/foo/", "/foo", True),  # a trailing slash in the rule is ignored
    ("Prefix", "/foo/bar", "/foo/ba", False),
    ("Prefix", "/", "/any/thing", True),
    ("ImplementationSpecific", "/foo", "/foobar", True),  # nginx location prefix: character-wise
    ("ImplementationSpecific", "/foo", "/fo", False),
], ids=lambda v: str(v))
def test_path_types(h: IngressHarness, path_type: str, rule_path: str, request_path: str, matches: bool) -> None:
    h.apply(simple("paths", "paths.test", "svc-a", path=rule_path, path_type=path_type))
    expect(h.get("paths.test", request_path), "a" if matches else 404)


@pytest.mark.parametrize(("request_path", "want"), [
    ("/", "a"),  # only / matches
    ("/api", "b"),  # longest prefix
    ("/api/v2", "c"),  # longer still
    ("/api/v2x", "b"),  # element-wise: /api/v2 does not cover /api/v2x
    ("/api/exact", "a"),  # Exact beats every prefix
    ("/api/exact/more", "b"),
])
def test_precedence_longest_prefix_and_exact(h: IngressHarness, request_path: str, want: str) -> None:
    h.apply(ingress("prec", "prec.test", [
        ingress_path("/", "svc-a"), ingress_path("/api", "svc-b"), ingress_path("/api/v2", "svc-c"),
        ingress_path("/api/exact", "svc-a", path_type="Exact")]))
    expect(h.get("prec.test", request_path), want)


def test_exact_and_prefix_on_the_same_path(h: IngressHarness) -> None:
    h.apply(ingress("same", "same.test", [ingress_path("/foo", "svc-a", path_type="Exact"),
                                          ingress_path("/foo", "svc-b")]))
    expect(h.get("same.test", "/foo"), "a")
    expect(h.get("same.test", "/foo/x"), "b")


def test_request_is_forwarded_as_sent(h: IngressHarness) -> None:
    h.apply(simple("fwd", "fwd.test", "svc-a"))
    seen = h.get("fwd.test", "/p/q?x=1&y=two", method="POST", body=b"payload").seen
    assert seen["method"] == "POST" and seen["path"] == "/p/q?x=1&y=two"
    headers = seen["headers"]
    assert headers["host"] == "fwd.test"
    assert headers["x-forwarded-for"] == ADDR
    assert headers["x-forwarded-proto"] == "http"


def test_client_forwarded_headers_are_not_trusted_by_default(h: IngressHarness) -> None:
    # use-forwarded-headers and compute-full-forwarded-for off (ingress-nginx's defaults): what the client claims
    # is replaced by what nginx saw.
    h.apply(simple("spoof", "spoof.test", "svc-a"))
    seen = h.get("spoof.test", headers={"X-Forwarded-For": "203.0.113.9", "X-Real-IP": "203.0.113.9",
                                        "X-Forwarded-Proto": "https"}).seen["headers"]
    assert (seen["x-forwarded-for"], seen["x-real-ip"], seen["x-forwarded-proto"]) == (ADDR, ADDR, "http")


def test_compute_full_forwarded_for_appends(pool: dict[str, Backend]) -> None:
    # Taken when nginx starts, as worker settings are: an engine of its own.
    with running_harness(config={"compute-full-forwarded-for": "true"}) as h:
        h.apply(standard_apps(pool), simple("full", "full.test", "svc-a"))
        seen = h.get("full.test", headers={"X-Forwarded-For": "203.0.113.9"}).seen["headers"]
        assert seen["x-forwarded-for"] == f"203.0.113.9, {ADDR}" and seen["x-real-ip"] == ADDR


@pytest.mark.parametrize(("config", "lines"), [({}, 1), ({"disable-access-log": "true"}, 0)])
def test_disable_access_log_turns_the_access_log_off(pool: dict[str, Backend], config: dict[str, str],
                                                     lines: int) -> None:
    # Taken when nginx starts: an engine of its own. Stopping it flushes the log's buffer.
    with running_harness(config=config) as h:
        h.apply(standard_apps(pool), simple("logged", "logged.test", "svc-a"))
        assert h.get("logged.test", "/seen").backend == "a"
        h.engine.stop()
        path = h.engine.prefix / ACCESS_LOG_FILE
        logged = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
        assert [(e["host"], e["uri"], e["status"]) for e in logged] == [("logged.test", "/seen", 200)] * lines


def test_use_forwarded_headers_is_reported_as_not_enforced(h: IngressHarness) -> None:
    h.apply(simple("trust", "trust.test", "svc-a"))
    synced = h.configure({"use-forwarded-headers": "true"})
    seen = h.get("trust.test", headers={"X-Forwarded-For": "203.0.113.9"}).seen["headers"]
    assert seen["x-forwarded-for"] == ADDR
    assert [e for e in synced.events_of("harness", "IngressNginx")
            if e.startswith("NotEnforced:") and "use-forwarded-headers" in e]


def test_https_request_is_forwarded_with_proto_https(h: IngressHarness) -> None:
    h.apply(simple("fwds", "fwds.test", "svc-a"))
    reply = h.get("fwds.test", "/", https=True)
    assert reply.backend == "a" and reply.seen["headers"]["x-forwarded-proto"] == "https"


# -- regex paths ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("request_path", "want"), [
    ("/foo/123", "a"),
    ("/FOO/123", "a"),  # ~*: case-insensitive
    ("/foo/123/more", "a"),  # anchored at the start only
    ("/x/foo/123", 404),  # never matched in the middle
    ("/foo/abc", 404),
])
def test_use_regex(h: IngressHarness, request_path: str, want: object) -> None:
    h.apply(simple("re", "re.test", "svc-a", path=r"/foo/\d+", path_type="ImplementationSpecific",
                   annotations={"use-regex": "true"}))
    expect(h.get("re.test", request_path), want)


def test_use_regex_applies_to_every_ingress_of_the_host(h: IngressHarness) -> None:
    h.apply(simple("re-on", "rehost.test", "svc-a", path="/a.+", path_type="ImplementationSpecific",
                   annotations={"use-regex": "true"}),
            simple("re-other", "rehost.test", "svc-b", path="/b[0-9]", path_type="ImplementationSpecific"))
    expect(h.get("rehost.test", "/b7"), "b")
    expect(h.get("rehost.test", "/bx"), 404)
    # Another host keeps literal paths.
    h.apply(simple("plain", "plain.rehost.test", "svc-c", path="/b[0-9]", path_type="ImplementationSpecific"))
    expect(h.get("plain.rehost.test", "/b7"), 404)


def test_regex_paths_longest_first(h: IngressHarness) -> None:
    h.apply(ingress("reorder", "reorder.test", [
        ingress_path("/foo/.*", "svc-a", path_type="ImplementationSpecific"),
        ingress_path("/foo/bar.*", "svc-b", path_type="ImplementationSpecific")],
        annotations={"use-regex": "true"}))
    expect(h.get("reorder.test", "/foo/bar/1"), "b")
    expect(h.get("reorder.test", "/foo/baz"), "a")


def test_exact_path_stays_exact_on_a_regex_host(h: IngressHarness) -> None:
    h.apply(ingress("reexact", "reexact.test", [ingress_path("/exact", "svc-a", path_type="Exact"),
                                                ingress_path("/.*", "svc-b", path_type="ImplementationSpecific")],
                    annotations={"use-regex": "true"}))
    expect(h.get("reexact.test", "/exact"), "a")
    expect(h.get("reexact.test", "/exact/x"), "b")


# -- rewrite-target, x-forwarded-prefix, upstream-vhost -------------------------------------------------------------

@pytest.mark.parametrize(("request_path", "backend_path"), [
    ("/something", "/"),
    ("/something/", "/"),
    ("/something/new", "/new"),
    ("/something/new/deeper?q=1", "/new/deeper?q=1"),  # the query string is kept
    ("/SOMETHING/case", "/case"),  # the regex is case-insensitive
])
def test_rewrite_target_with_capture_groups(h: IngressHarness, request_path: str, backend_path: str) -> None:
    h.apply(simple("rw", "rewrite.test", "svc-a", path="/something(/|$)(.*)", path_type="ImplementationSpecific",
                   annotations={"rewrite-target": "/$2", "use-regex": "true"}))
    reply = h.get("rewrite.test", request_path)
    assert reply.backend == "a" and reply.seen["path"] == backend_path


def test_manifest_as_written_in_the_ingress_nginx_docs(h: IngressHarness) -> None:
    h.apply("""
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: rewrite
  namespace: default
  annotations:
    nginx.ingress.kubernetes.io/use-regex: "true"
    nginx.ingress.kubernetes.io/rewrite-target: /$2
spec:
  ingressClassName: nginx
  rules:
  - host: rewrite.bar.com
    http:
      paths:
      - path: /something(/|$)(.*)
        pathType: ImplementationSpecific
        backend:
          service:
            name: svc-b
            port:
              number: 80
""")
    reply = h.get("rewrite.bar.com", "/something/new")
    assert reply.backend == "b" and reply.seen["path"] == "/new"


def test_rewrite_target_static_replaces_the_whole_path(h: IngressHarness) -> None:
    h.apply(simple("rws", "rewrite-static.test", "svc-a", path="/old", path_type="Prefix",
                   annotations={"rewrite-target": "/new/backend"}))
    assert h.get("rewrite-static.test", "/old/page").seen["path"] == "/new/backend"
    # The Host the backend sees is the client's.
    assert h.get("rewrite-static.test", "/old").seen["headers"]["host"] == "rewrite-static.test"


def test_rewrite_target_with_a_missing_group_fails_closed(h: IngressHarness) -> None:
    synced = h.apply(simple("rwbad", "rewrite-bad.test", "svc-a", path="/a/(.*)", path_type="ImplementationSpecific",
                            annotations={"rewrite-target": "/$3", "use-regex": "true"}))
    assert h.get("rewrite-bad.test", "/a/b").status == 503
    assert any(e.startswith("Invalid:") and "$3" in e for e in synced.events_of("rwbad"))


def test_x_forwarded_prefix(h: IngressHarness) -> None:
    h.apply(simple("xfp", "xfp.test", "svc-a", path="/app(/|$)(.*)", path_type="ImplementationSpecific",
                   annotations={"rewrite-target": "/$2", "x-forwarded-prefix": "/app"}))
    seen = h.get("xfp.test", "/app/page").seen
    assert seen["path"] == "/page" and seen["headers"]["x-forwarded-prefix"] == "/app"


def test_x_forwarded_prefix_needs_rewrite_target(h: IngressHarness) -> None:
    synced = h.apply(simple("xfp2", "xfp2.test", "svc-a", annotations={"x-forwarded-prefix": "/app"}))
    assert "x-forwarded-prefix" not in h.get("xfp2.test", "/").seen["headers"]
    assert any("x-forwarded-prefix" in e and e.startswith("Warning:") for e in synced.events_of("xfp2"))


def test_upstream_vhost_sets_the_host_the_backend_sees(h: IngressHarness) -> None:
    h.apply(simple("uv", "uv.test", "svc-a", annotations={"upstream-vhost": "internal.example"}))
    assert h.get("uv.test", "/").seen["headers"]["host"] == "internal.example"


# -- redirects ------------------------------------------------------------------------------------------------------

def test_app_root(h: IngressHarness) -> None:
    h.apply(simple("root", "approot.test", "svc-a", annotations={"app-root": "/foo"}))
    root = h.get("approot.test", "/?q=1")
    location = urllib.parse.urlsplit(root.location or "")
    assert root.status == 302 and (location.scheme, location.hostname, location.path, location.query) == (
        "http", "approot.test", "/foo", "")
    expect(h.get("approot.test", "/foo"), "a")
    expect(h.get("approot.test", "/other"), "a")


@pytest.mark.parametrize(("annotations", "status", "location"), [
    ({"permanent-redirect": "https://www.example.com/landing"}, 301, "https://www.example.com/landing"),
    ({"permanent-redirect": "https://www.example.com", "permanent-redirect-code": "308"}, 308,
     "https://www.example.com/"),
    ({"temporal-redirect": "http://tmp.example.com/x"}, 302, "http://tmp.example.com/x"),
    ({"temporal-redirect": "http://tmp.example.com/x", "temporal-redirect-code": "307"}, 307,
     "http://tmp.example.com/x"),
    ({"permanent-redirect": "https://p.example.com/", "temporal-redirect": "https://t.example.com/"}, 301,
     "https://p.example.com/"),  # permanent wins
    ({"permanent-redirect": "https://p.example.com:8443/a"}, 301, "https://p.example.com:8443/a"),
    ({"permanent-redirect": "https://q.example.com/a?from=old"}, 301, "https://q.example.com/a?from=old"),
])
def test_redirect_annotations(h: IngressHarness, annotations: dict[str, str], status: int, location: str) -> None:
    synced = h.apply(simple("redir", "redirect.test", "svc-a", annotations=annotations))
    # nginx's `return` in ingress-nginx: the URL as written, the request's query string is not carried over.
    reply = h.get("redirect.test", "/some/path?drop=me")
    assert (reply.status, reply.location) == (status, location)
    assert not [e for e in synced.events_of("redir") if e.startswith("NotEnforced:")]


# -- HTTPS redirects ------------------------------------------------------------------------------------------------

def tls_ingress(h: IngressHarness, name: str, host: str, secret: str | None = "cert", **kwargs: Any) -> None:
    objects = [simple(name, host, "svc-a", tls=[{"hosts": [host], **({"secretName": secret} if secret else {})}],
                      **kwargs)]
    if secret:
        objects.append(certificate_secret(secret, host))
    h.apply(objects)


@pytest.mark.parametrize(("request_path", "location_path"), [
    ("/", ""),  # ingress-nginx strips the trailing slash: https://host, no /
    ("/path/", "/path"),
    ("/path?x=1", "/path?x=1"),
    ("/path/?x=1", "/path/?x=1"),  # only a slash ending the whole request URI goes
    ("/a%20b/c%0D%0Ad", "/a%20b/c%0D%0Ad"),  # as the client sent it, still encoded
])
def test_ssl_redirect_for_tls_hosts(h: IngressHarness, request_path: str, location_path: str) -> None:
    tls_ingress(h, "sslr", "sslr.test")
    reply = h.get("sslr.test", request_path)
    assert (reply.status, reply.location) == (308, f"https://sslr.test:{h.https_port}{location_path}")


def test_ssl_redirect_keeps_the_method_for_posts(h: IngressHarness) -> None:
    tls_ingress(h, "sslp", "sslp.test")
    assert h.get("sslp.test", "/form", method="POST", body=b"x").status == 308


def test_https_of_a_tls_host_is_served(h: IngressHarness) -> None:
    tls_ingress(h, "ssls", "ssls.test")
    reply = h.get("ssls.test", "/x", https=True)
    assert reply.backend == "a" and reply.certificate_cn == "ssls.test"


def test_preserve_trailing_slash(h: IngressHarness) -> None:
    tls_ingress(h, "sslt", "sslt.test", annotations={"preserve-trailing-slash": "true"})
    assert h.get("sslt.test", "/path/").location == f"https://sslt.test:{h.https_port}/path/"


def test_ssl_redirect_false_serves_http(h: IngressHarness) -> None:
    tls_ingress(h, "sslf", "sslf.test", annotations={"ssl-redirect": "false"})
    expect(h.get("sslf.test", "/"), "a")


def test_force_ssl_redirect_without_tls(h: IngressHarness) -> None:
    h.apply(simple("force", "force.test", "svc-a", annotations={"force-ssl-redirect": "true"}))
    reply = h.get("force.test", "/a/")
    assert (reply.status, reply.location) == (308, f"https://force.test:{h.https_port}/a")
    expect(h.get("force.test", "/a", https=True), "a")


def test_no_redirect_without_tls_section(h: IngressHarness) -> None:
    h.apply(simple("plainhttp", "plainhttp.test", "svc-a"))
    expect(h.get("plainhttp.test", "/"), "a")


def test_tls_section_without_secret_still_redirects(h: IngressHarness) -> None:
    tls_ingress(h, "nosecret", "nosecret.test", secret=None)
    assert h.get("nosecret.test", "/").status == 308
    reply = h.get("nosecret.test", "/", https=True)
    assert reply.backend == "a" and reply.certificate_cn == "netplane-gateway-fallback"


@pytest.mark.parametrize(("config", "status"), [
    ({"ssl-redirect": "false"}, 200),
    ({"http-redirect-code": "301"}, 301),
    ({"http-redirect-code": "302"}, 302),
])
def test_redirect_settings_of_the_instance(h: IngressHarness, config: dict[str, str], status: int) -> None:
    tls_ingress(h, "cfgr", "cfgr.test")
    h.configure(config)
    assert h.get("cfgr.test", "/").status == status


def test_force_ssl_redirect_setting_of_the_instance(h: IngressHarness) -> None:
    h.apply(simple("cfgf", "cfgf.test", "svc-a"))
    h.configure({"force-ssl-redirect": "true"})
    assert h.get("cfgf.test", "/").status == 308


# -- certificates ---------------------------------------------------------------------------------------------------

def test_certificates_are_chosen_by_sni(h: IngressHarness) -> None:
    tls_ingress(h, "sni-1", "sni1.test", secret="cert-1")
    tls_ingress(h, "sni-2", "sni2.test", secret="cert-2")
    assert h.get("sni1.test", https=True).certificate_cn == "sni1.test"
    assert h.get("sni2.test", https=True).certificate_cn == "sni2.test"
    # No SNI match: the fallback certificate, and routing still follows the Host header.
    other = h.get("sni1.test", https=True, sni="unknown.test")
    assert other.certificate_cn == "netplane-gateway-fallback" and other.backend == "a"


def test_wildcard_certificate_for_a_wildcard_host(h: IngressHarness) -> None:
    h.apply(certificate_secret("wildcert", "*.wcert.test"),
            simple("wc", "*.wcert.test", "svc-a", tls=[{"hosts": ["*.wcert.test"], "secretName": "wildcert"}]))
    reply = h.get("app.wcert.test", https=True)
    assert reply.certificate_cn == "*.wcert.test" and reply.backend == "a"


def test_host_without_tls_is_served_on_https_with_the_default_certificate(h: IngressHarness) -> None:
    h.apply(simple("notls", "notls.test", "svc-a"))
    reply = h.get("notls.test", https=True)
    assert reply.backend == "a" and reply.certificate_cn == "netplane-gateway-fallback"


def test_default_ssl_certificate(h: IngressHarness) -> None:
    h.apply(certificate_secret("default-cert", "default.example"), simple("dc", "dc.test", "svc-a"))
    synced = h.configure(default_ssl_certificate=("default", "default-cert"))
    assert not synced.events_of("default-cert", "Secret")
    assert h.get("dc.test", https=True).certificate_cn == "default.example"
    assert h.get("unknown.test", https=True).certificate_cn == "default.example"


def test_certificate_for_another_host_falls_back_to_the_default(h: IngressHarness) -> None:
    h.apply(certificate_secret("wrong", "elsewhere.test"),
            simple("mism", "mism.test", "svc-a", tls=[{"hosts": ["mism.test"], "secretName": "wrong"}]))
    assert h.get("mism.test", https=True).certificate_cn == "netplane-gateway-fallback"
    assert any("not valid for mism.test" in e for e in h.last.events_of("mism"))


# -- default backends -----------------------------------------------------------------------------------------------

def test_ingress_default_backend_catches_unknown_hosts(h: IngressHarness) -> None:
    h.apply(ingress("dflt", None, default_backend="svc-c"))
    expect(h.get("nobody-knows.test", "/x"), "c")


def test_ingress_default_backend_serves_unmatched_paths_of_its_host(h: IngressHarness) -> None:
    h.apply(ingress("hostdflt", "hostdflt.test", [ingress_path("/api", "svc-a")], default_backend="svc-b"))
    expect(h.get("hostdflt.test", "/api/x"), "a")
    expect(h.get("hostdflt.test", "/other"), "b")


def test_instance_default_backend(h: IngressHarness) -> None:
    h.apply(simple("idb", "idb.test", "svc-a", path="/only"))
    h.configure(default_backend_service=("default", "svc-c"))
    expect(h.get("idb.test", "/elsewhere"), "c")
    expect(h.get("no-server.test", "/"), "c")
    expect(h.get("idb.test", "/only"), "a")


def test_no_default_backend_answers_404(h: IngressHarness) -> None:
    assert h.get("no-server.test", "/").status == 404


# -- services and endpoints -----------------------------------------------------------------------------------------

def test_named_service_port(h: IngressHarness, pool: dict[str, Backend]) -> None:
    h.apply(app("named", pool["b"], port=8080, port_name="web"),
            ingress("np", "named.test", [ingress_path("/", "named", port="web")]))
    expect(h.get("named.test"), "b")


def test_numeric_service_port_picks_the_slice_port_by_name(h: IngressHarness, pool: dict[str, Backend]) -> None:
    h.apply(app("numbered", pool["c"], port=8081, port_name="metrics"),
            ingress("nump", "numbered.test", [ingress_path("/", "numbered", port=8081)]))
    expect(h.get("numbered.test"), "c")


@pytest.mark.parametrize(("objects", "event"), [
    ([], "service default/ghost not found"),
    ([service("ghost", port=9999)], "service default/ghost has no port 80"),
])
def test_missing_service_or_port_answers_503(h: IngressHarness, objects: list[Any], event: str) -> None:
    synced = h.apply(*objects, simple("ghost", "ghost.test", "ghost"))
    assert h.get("ghost.test").status == 503
    assert any(event in e for e in synced.events_of("ghost"))


def test_no_endpoints_answers_503(h: IngressHarness) -> None:
    h.apply(service("empty"), simple("noeps", "noeps.test", "empty"))
    reply = h.get("noeps.test")
    assert reply.status == 503 and reply.backend is None


def test_not_ready_endpoints_get_no_traffic(h: IngressHarness, pool: dict[str, Backend]) -> None:
    h.apply(service("half"), endpoint_slice("half", pool["a"]), endpoint_slice("half", pool["b"], ready=False),
            simple("half", "half.test", "half"))
    assert h.backends_of("half.test", n=8) == {"a"}


def test_round_robin_across_endpoints(h: IngressHarness) -> None:
    h.apply(simple("rr", "rr.test", "svc-ab"))
    assert h.backends_of("rr.test", n=8) == {"a", "b"}


def test_service_upstream_uses_the_cluster_ip(h: IngressHarness, pool: dict[str, Backend]) -> None:
    # The Service's cluster IP and port stand for kube-proxy; here they are the echo server itself.
    h.apply(service("via-ip", port=pool["c"].port, clusterIP=ADDR),
            ingress("su", "su.test", [ingress_path("/", "via-ip", port=pool["c"].port)],
                    annotations={"service-upstream": "true"}))
    expect(h.get("su.test"), "c")


def test_endpoint_changes_take_effect_without_reload(h: IngressHarness, pool: dict[str, Backend]) -> None:
    h.apply(service("moving"), endpoint_slice("moving", pool["a"]), simple("mv", "moving.test", "moving"))
    workers = h.engine.worker_pids()
    assert h.backends_of("moving.test") == {"a"}
    h.delete("EndpointSlice", "moving-a")
    h.apply(endpoint_slice("moving", pool["b"]))
    assert h.backends_of("moving.test") == {"b"}
    assert h.engine.worker_pids() == workers


def test_ingress_changes_take_effect_without_reload(h: IngressHarness) -> None:
    h.apply(simple("live", "live.test", "svc-a", path="/v1"))
    workers = h.engine.worker_pids()
    expect(h.get("live.test", "/v1"), "a")
    h.apply(simple("live", "live.test", "svc-b", path="/v2"))
    expect(h.get("live.test", "/v2"), "b")
    expect(h.get("live.test", "/v1"), 404)
    h.delete("Ingress", "live")
    expect(h.get("live.test", "/v2"), 404)
    assert h.engine.worker_pids() == workers


# -- session affinity -----------------------------------------------------------------------------------------------

def affinity(h: IngressHarness, name: str, path: str = "/", path_type: str = "Prefix", **annotations: str) -> str:
    host = f"{name}.affinity.test"
    h.apply(simple(name, host, "svc-ab", path=path, path_type=path_type,
                   annotations={"affinity": "cookie", **annotations}))
    return host


@pytest.mark.parametrize(("annotations", "path", "fragments"), [
    ({}, "/", ["INGRESSCOOKIE=", "Path=/", "HttpOnly"]),
    ({"session-cookie-name": "SERVERID"}, "/", ["SERVERID="]),
    ({}, "/shop", ["Path=/shop"]),  # the path of the Ingress rule by default
    ({"session-cookie-path": "/custom"}, "/shop", ["Path=/custom"]),
    ({"session-cookie-max-age": "172800"}, "/", ["Max-Age=172800"]),
    ({"session-cookie-expires": "3600"}, "/", ["Max-Age=3600"]),
    ({"session-cookie-samesite": "Strict"}, "/", ["SameSite=Strict"]),
    ({"session-cookie-samesite": "None"}, "/", ["SameSite=None"]),
])
def test_affinity_cookie_attributes(h: IngressHarness, annotations: dict[str, str], path: str,
                                    fragments: list[str]) -> None:
    host = affinity(h, "attrs", path, **annotations)
    cookies = h.get(host, path).cookies()
    assert len(cookies) == 1
    for fragment in fragments:
        assert fragment in cookies[0], (fragment, cookies)


def test_affinity_cookie_path_is_slash_with_use_regex(h: IngressHarness) -> None:
    host = affinity(h, "regex", "/shop.*", "ImplementationSpecific", **{"use-regex": "true"})
    assert "Path=/;" in h.get(host, "/shop/x").cookies()[0] + ";"


def test_affinity_sticks_to_one_endpoint(h: IngressHarness) -> None:
    host = affinity(h, "sticky")
    first = h.get(host)
    cookie = first.cookies()[0].split(";", 1)[0]
    followers = [h.get(host, headers={"Cookie": cookie}) for _ in range(10)]
    assert {f.backend for f in followers} == {first.backend}
    assert not any(f.cookies() for f in followers)


def test_affinity_without_cookie_spreads_and_a_stale_cookie_is_replaced(h: IngressHarness) -> None:
    host = affinity(h, "spread")
    assert len(h.backends_of(host, n=10)) == 2
    assert h.get(host, headers={"Cookie": "INGRESSCOOKIE=stale"}).cookies()[0].startswith("INGRESSCOOKIE=")


def test_affinity_survives_an_unrelated_endpoint_change(h: IngressHarness, pool: dict[str, Backend]) -> None:
    h.apply(service("stay"), endpoint_slice("stay", pool["a"]), endpoint_slice("stay", pool["b"]),
            simple("stay", "stay.affinity.test", "stay", annotations={"affinity": "cookie"}))
    first = h.get("stay.affinity.test")
    cookie = first.cookies()[0].split(";", 1)[0]
    h.apply(endpoint_slice("stay", pool["c"]))
    assert {h.get("stay.affinity.test", headers={"Cookie": cookie}).backend for _ in range(6)} == {first.backend}


@pytest.mark.parametrize(("annotations", "https", "secure"), [
    ({}, False, False),
    ({}, True, True),  # without session-cookie-secure the cookie is Secure when the request came over HTTPS
    ({"session-cookie-secure": "true"}, False, True),
])
def test_affinity_cookie_secure(h: IngressHarness, annotations: dict[str, str], https: bool, secure: bool) -> None:
    host = affinity(h, "secure", **annotations)
    cookie = h.get(host, https=https).cookies()[0]
    assert ("; Secure" in cookie) is secure, cookie
    assert not [e for e in h.last.events_of("secure") if e.startswith("NotEnforced:")]


def test_unenforced_cookie_options_are_reported(h: IngressHarness) -> None:
    affinity(h, "domain", **{"session-cookie-domain": "example.com"})
    assert any(e.startswith("NotEnforced:") and "session-cookie" in e
               for e in h.last.events_of("domain"))


# -- upstream-hash-by -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("key", "vary"), [
    ("$http_x_user", lambda i: {"headers": {"X-User": f"user-{i}"}}),
    ("$arg_user", lambda i: {"path": f"/?user=u{i}"}),
    ("$cookie_uid", lambda i: {"headers": {"Cookie": f"uid={i}"}}),
])
def test_upstream_hash_by_is_stable_per_key(h: IngressHarness, key: str, vary: Any) -> None:
    h.apply(simple("hash", "hash.test", "svc-ab", annotations={"upstream-hash-by": key}))
    chosen = set()
    for i in range(40):
        kwargs = vary(i)
        names = {h.get("hash.test", kwargs.get("path", "/"), headers=kwargs.get("headers")).backend for _ in range(3)}
        assert len(names) == 1, (i, names)
        chosen |= names
    assert chosen == {"a", "b"}


def test_upstream_hash_by_remote_addr_pins_one_client(h: IngressHarness) -> None:
    h.apply(simple("hip", "haship.test", "svc-ab", annotations={"upstream-hash-by": "$remote_addr"}))
    assert len(h.backends_of("haship.test", n=10)) == 1


# -- headers --------------------------------------------------------------------------------------------------------

def test_proxy_set_headers_config_map(h: IngressHarness) -> None:
    h.apply(config_map("custom-headers", {"X-Team": "payments", "X-Drop": ""}),
            simple("psh", "psh.test", "svc-a"))
    h.configure({"proxy-set-headers": "default/custom-headers"})
    seen = h.get("psh.test", headers={"X-Drop": "secret"}).seen["headers"]
    assert seen["x-team"] == "payments" and "x-drop" not in seen


def test_add_headers_config_map(h: IngressHarness) -> None:
    h.apply(config_map("resp-headers", {"X-Frame-Options": "DENY"}), simple("ah", "ah.test", "svc-a"))
    h.configure({"add-headers": "default/resp-headers"})
    assert h.get("ah.test").headers["X-Frame-Options"] == "DENY"


def test_missing_headers_config_map_is_reported(h: IngressHarness) -> None:
    h.apply(simple("pshm", "pshm.test", "svc-a"))
    synced = h.configure({"proxy-set-headers": "default/absent"})
    expect(h.get("pshm.test"), "a")
    assert any("not found" in e for e in synced.events_of("absent", "ConfigMap"))


@pytest.mark.parametrize(("snippet", "present", "absent"), [
    ('more_set_headers "X-Custom: yes";', {"X-Custom": "yes"}, []),
    ('more_set_headers "X-One: 1" "X-Two: 2";', {"X-One": "1", "X-Two": "2"}, []),
    ('more_set_headers "X-Backend: replaced";', {"X-Backend": "replaced"}, []),
    ("more_clear_headers X-Secret;", {}, ["X-Secret"]),  # the backend sends it
    ('more_set_headers "X-Temp: 1";\nmore_clear_headers X-Temp;', {}, ["X-Temp"]),
])
def test_configuration_snippet_headers(h: IngressHarness, snippet: str, present: dict[str, str],
                                       absent: list[str]) -> None:
    h.apply(simple("snip", "snippet.test", "svc-d", annotations={"configuration-snippet": snippet}))
    reply = h.get("snippet.test")
    assert reply.status == 200
    for name, value in present.items():
        assert reply.headers.get_all(name) == [value], name
    for name in absent:
        assert name not in reply.headers


def test_hide_headers_setting(h: IngressHarness) -> None:
    h.apply(simple("hide", "hide.test", "svc-d"))
    h.configure({"hide-headers": "X-Powered-By,X-Internal"})
    reply = h.get("hide.test")
    assert "X-Powered-By" not in reply.headers and "X-Internal" not in reply.headers
    assert reply.headers["X-Keep"] == "1"


def test_client_headers_reach_the_backend(h: IngressHarness) -> None:
    h.apply(simple("hdrs", "hdrs.test", "svc-a"))
    seen = h.get("hdrs.test", headers={"X-Request-Id": "abc", "Authorization": "Bearer t"}).seen["headers"]
    assert seen["x-request-id"] == "abc" and seen["authorization"] == "Bearer t"


# -- timeouts and retries -------------------------------------------------------------------------------------------

def test_proxy_read_timeout_answers_504(h: IngressHarness) -> None:
    h.apply(simple("slow", "slow.test", "svc-a", annotations={"proxy-read-timeout": "1",
                                                              "proxy-next-upstream-tries": "1"}))
    started = time.monotonic()
    assert h.get("slow.test", "/?sleep_ms=2500").status == 504
    assert 0.9 < time.monotonic() - started < 2.4
    expect(h.get("slow.test", "/?sleep_ms=10"), "a")


def test_a_timed_out_try_is_retried_up_to_the_tries(h: IngressHarness) -> None:
    # proxy-next-upstream "error timeout" and 3 tries (the defaults): with one endpoint, ingress-nginx tries it
    # again, so the client waits three read timeouts for its 504.
    h.apply(simple("slow3", "slow3.test", "svc-a", annotations={"proxy-read-timeout": "1"}))
    started = time.monotonic()
    assert h.get("slow3.test", "/?sleep_ms=3500").status == 504
    assert 2.9 < time.monotonic() - started < 5.5


def test_default_read_timeout_waits_for_a_slow_backend(h: IngressHarness) -> None:
    h.apply(simple("patient", "patient.test", "svc-a"))
    expect(h.get("patient.test", "/?sleep_ms=1200"), "a")


def test_proxy_read_timeout_setting(h: IngressHarness) -> None:
    h.apply(simple("slowcfg", "slowcfg.test", "svc-a"))
    h.configure({"proxy-read-timeout": "1"})
    assert h.get("slowcfg.test", "/?sleep_ms=2500").status == 504


def dead_and_live(h: IngressHarness, pool: dict[str, Backend], name: str, **annotations: str) -> str:
    dead = free_port()  # nothing listens there: connection refused
    h.apply(service(name), endpoint_slice(name, pool["a"]),
            {**endpoint_slice(name, pool["b"]), "metadata": {"name": f"{name}-dead", "namespace": "default",
                                                               "labels": {"kubernetes.io/service-name": name}},
             "ports": [{"name": "http", "port": dead, "protocol": "TCP"}]},
            simple(name, f"{name}.test", name, annotations=annotations))
    return f"{name}.test"


def test_proxy_next_upstream_retries_a_refused_endpoint(h: IngressHarness, pool: dict[str, Backend]) -> None:
    host = dead_and_live(h, pool, "retry")
    assert {h.get(host).status for _ in range(10)} == {200}


@pytest.mark.parametrize("annotations", [
    {"proxy-next-upstream": "off"},
    {"proxy-next-upstream-tries": "1"},
])
def test_without_retries_a_refused_endpoint_answers_502(h: IngressHarness, pool: dict[str, Backend],
                                                        annotations: dict[str, str]) -> None:
    host = dead_and_live(h, pool, "noretry", **annotations)
    assert {h.get(host).status for _ in range(10)} == {200, 502}


# -- classes --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("class_name", "annotations", "default_class", "served"), [
    ("nginx", {}, False, True),
    ("other", {}, False, False),
    (None, {"kubernetes.io/ingress.class": "nginx"}, False, True),  # the legacy annotation
    (None, {"kubernetes.io/ingress.class": "other"}, False, False),
    (None, {}, True, True),  # no class: the default IngressClass's controller takes it
    (None, {}, False, False),
])
def test_ingress_class_selection(h: IngressHarness, class_name: str | None, annotations: dict[str, str],
                                 default_class: bool, served: bool) -> None:
    klass = {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
             "metadata": {"name": "nginx", "annotations": {
                 "ingressclass.kubernetes.io/is-default-class": "true" if default_class else "false"}},
             "spec": {"controller": "k8s.io/ingress-nginx"}}
    h.apply(klass, simple("cls", "class.test", "svc-a", class_name=class_name, annotations=annotations))
    expect(h.get("class.test"), "a" if served else 404)


def test_ingress_class_of_another_controller_serves_nothing(h: IngressHarness) -> None:
    klass = {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "nginx"},
             "spec": {"controller": "example.com/other"}}
    synced = h.apply(klass, simple("foreign", "foreign.test", "svc-a"))
    expect(h.get("foreign.test"), 404)
    assert any("no Ingress is served" in e for e in synced.events_of("nginx", "IngressClass"))


# -- invalid annotations --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("annotations", "reason"), [
    ({"proxy-read-timeout": "soon"}, "proxy-read-timeout"),
    ({"load-balance": "ewma"}, "ewma"),
    ({"affinity": "ip"}, "affinity"),
    ({"upstream-hash-by": "constant"}, "request variable"),
    ({"server-snippet": "return 200;"}, "server-snippet"),
    ({"configuration-snippet": "proxy_pass http://evil;"}, "only more_set_headers"),
    ({"rewrite-target": "/$1", "use-regex": "notabool"}, "use-regex"),
])
def test_invalid_annotations_are_refused_at_admission_and_fail_closed(
        h: IngressHarness, annotations: dict[str, str], reason: str) -> None:
    bad = simple("bad", "bad.test", "svc-a", path="/bad", annotations=annotations)
    review = review_ingress(bad, [], ControllerSettings())
    assert review.errors and any(reason in str(e) for e in review.errors), review
    # Stored anyway (admission off): its paths answer 503, its neighbours keep serving.
    synced = h.apply(bad, simple("good", "bad.test", "svc-b", path="/good"), simple("other", "good.test", "svc-c"))
    assert h.get("bad.test", "/bad").status == 503
    expect(h.get("bad.test", "/good"), "b")
    expect(h.get("good.test"), "c")
    assert any(e.startswith("Invalid:") and reason in e for e in synced.events_of("bad"))
    assert not synced.complaints_of("good") and not synced.complaints_of("other")


def test_unknown_annotation_is_a_warning_only(h: IngressHarness) -> None:
    synced = h.apply(simple("unknown", "unknown-ann.test", "svc-a", annotations={"frobnicate": "yes"}))
    expect(h.get("unknown-ann.test"), "a")
    assert any(e.startswith("Warning:") and "frobnicate" in e for e in synced.events_of("unknown"))


# -- broken input never disturbs what serves ------------------------------------------------------------------------

@pytest.mark.parametrize("bad_path", ["/bad/(unclosed", "/bad/[z-a]", "/bad/a{70000}"])
def test_an_invalid_regex_never_disturbs_what_serves(h: IngressHarness, bad_path: str) -> None:
    good = ingress("re-good", "brk-re.test", [ingress_path("/ok/[0-9]+", "svc-a", path_type="ImplementationSpecific")],
                   annotations={"use-regex": "true"})
    bad = ingress("re-bad", "brk-re.test", [ingress_path(bad_path, "svc-b", path_type="ImplementationSpecific"),
                                            ingress_path("/fine", "svc-b", path_type="ImplementationSpecific")],
                  annotations={"use-regex": "true"}, created="2026-01-02T00:00:00Z")
    h.apply(good, simple("re-other", "brk-other.test", "svc-c"))
    review = review_ingress(bad, [good], ControllerSettings())
    assert any("spec.rules[0].http.paths[0].path" in str(e) for e in review.errors), review
    # Stored anyway (admission off): the host, its other paths and other hosts keep serving.
    synced = h.apply(bad)
    expect(h.get("brk-re.test", "/ok/42"), "a")
    expect(h.get("brk-re.test", "/fine"), "b")
    expect(h.get("brk-other.test"), "c")
    assert synced.result.refusals == []
    assert [e for e in synced.events_of("re-bad") if "paths[0].path" in e and "matched as a plain prefix" in e]
    assert not synced.complaints_of("re-good") and "default/re-bad" in synced.translation.ingresses
    # The host's configuration is not frozen: later changes to it still apply.
    h.apply(ingress("re-good", "brk-re.test", [ingress_path("/ok/[0-9]+", "svc-a", path_type="ImplementationSpecific"),
                                               ingress_path("/new", "svc-c", path_type="ImplementationSpecific")],
                    annotations={"use-regex": "true"}))
    expect(h.get("brk-re.test", "/new"), "c")


def tls_pair(h: IngressHarness, name: str, host: str, secret: Any) -> None:
    h.apply(secret, simple(name, host, "svc-a", tls=[{"hosts": [host], "secretName": secret["metadata"]["name"]}]))


def test_a_certificate_that_does_not_parse_keeps_the_previous_one(h: IngressHarness) -> None:
    first = certificate_secret("keep-cert", "brk-keep.test")
    tls_pair(h, "keep", "brk-keep.test", first)
    tls_pair(h, "bystander", "brk-by.test", certificate_secret("by-cert", "brk-by.test"))
    served = h.get("brk-keep.test", https=True).certificate
    assert h.get("brk-keep.test", https=True).certificate_cn == "brk-keep.test"
    garbage = tls_secret("keep-cert", "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
                         *_key_of(first))
    synced = h.apply(garbage)
    # ingress-nginx keeps the last certificate that parsed; so does the instance (CertificateMemory).
    reply = h.get("brk-keep.test", "/", https=True)
    assert reply.certificate == served and reply.backend == "a"
    assert h.get("brk-by.test", https=True).certificate_cn == "brk-by.test"
    assert [e for e in synced.events_of("keep") if "no valid PEM certificate" in e and "previous certificate" in e]
    assert not synced.complaints_of("bystander")
    # Fixed with a new certificate: that one serves and the warning goes.
    synced = h.apply(certificate_secret("keep-cert", "brk-keep.test", "www.brk-keep.test"))
    assert h.get("brk-keep.test", https=True).certificate not in (None, served)
    assert not synced.complaints_of("keep")


def _key_of(secret: Any) -> tuple[str]:
    return (base64.b64decode(secret["data"]["tls.key"]).decode(),)


def test_a_new_certificate_that_does_not_parse_serves_the_default(h: IngressHarness) -> None:
    tls_pair(h, "bystander", "brk-by2.test", certificate_secret("by2-cert", "brk-by2.test"))
    synced = h.apply(tls_secret("junk-cert", "junk", "junk"),
                     simple("junk", "brk-junk.test", "svc-a", tls=[{"hosts": ["brk-junk.test"],
                                                                    "secretName": "junk-cert"}]))
    reply = h.get("brk-junk.test", https=True)
    assert reply.certificate_cn == "netplane-gateway-fallback" and reply.backend == "a"
    assert h.get("brk-junk.test").status == 308  # the tls section still asks for HTTPS
    assert h.get("brk-by2.test", https=True).certificate_cn == "brk-by2.test"
    assert [e for e in synced.events_of("junk") if "the default certificate is used" in e]


def test_a_deleted_tls_secret_falls_back_to_the_default_certificate(h: IngressHarness) -> None:
    secret = certificate_secret("gone-cert", "brk-gone.test")
    tls_pair(h, "gone", "brk-gone.test", secret)
    tls_pair(h, "bystander", "brk-by3.test", certificate_secret("by3-cert", "brk-by3.test"))
    synced = h.delete("Secret", "gone-cert")
    # As ingress-nginx: the certificate leaves with its Secret; the host keeps serving with the default one.
    reply = h.get("brk-gone.test", "/", https=True)
    assert reply.certificate_cn == "netplane-gateway-fallback" and reply.backend == "a"
    assert h.get("brk-gone.test").status == 308
    assert h.get("brk-by3.test", https=True).certificate_cn == "brk-by3.test"
    assert [e for e in synced.events_of("gone") if "secret default/gone-cert not found" in e]
    synced = h.apply(secret)
    assert h.get("brk-gone.test", https=True).certificate_cn == "brk-gone.test" and not synced.complaints_of("gone")


def test_a_key_that_does_not_match_is_refused_and_the_previous_certificate_serves(h: IngressHarness) -> None:
    first = certificate_secret("pair-cert", "brk-pair.test")
    tls_pair(h, "pair", "brk-pair.test", first)
    served = h.get("brk-pair.test", https=True).certificate
    other = certificate_secret("x", "brk-pair.test", "www.brk-pair.test")
    mismatched = {**other, "metadata": first["metadata"], "data": {"tls.crt": other["data"]["tls.crt"],
                                                                     "tls.key": first["data"]["tls.key"]}}
    synced = h.apply(mismatched)
    # The translator cannot tell; the engine checks the pair and refuses, so its previous version stays.
    assert [r.name for r in synced.result.refusals] == ["default/pair-cert"]
    assert h.get("brk-pair.test", https=True).certificate == served
    assert [e for e in synced.events_of("harness", "IngressNginx")
            if e.startswith("ConfigurationRefused:") and "default/pair-cert" in e]


def test_a_deleted_service_fails_only_its_paths(h: IngressHarness) -> None:
    h.apply(ingress("svcgone", "brk-svc.test", [ingress_path("/a", "svc-a"), ingress_path("/c", "svc-c")]))
    synced = h.delete("Service", "svc-c")
    assert h.get("brk-svc.test", "/c").status == 503
    expect(h.get("brk-svc.test", "/a"), "a")
    assert [e for e in synced.events_of("svcgone") if "service default/svc-c not found" in e]


# -- max-worker-connections -----------------------------------------------------------------------------------------

def _served(h: IngressHarness, host: str) -> bool:
    try:
        return h.get(host, timeout=1.5).status == 200
    except OSError:
        return False


@pytest.mark.parametrize(("limit", "served"), [
    ("32", False),  # 20 slow requests hold 40 connections (client + backend): no slot left for a new client
    ("16384", True),  # ingress-nginx's default has room
])
def test_max_worker_connections(pool: dict[str, Backend], limit: str, served: bool) -> None:
    with running_harness(config={"max-worker-connections": limit, "worker-processes": "1"}) as h, \
            concurrent.futures.ThreadPoolExecutor(20) as slow:
        h.apply(standard_apps(pool), simple("conns", "conns.test", "svc-a"))
        assert _served(h, "conns.test")
        held = [slow.submit(_served_slowly, h) for _ in range(20)]
        time.sleep(0.5)  # all of them under way
        assert _served(h, "conns.test") is served
        concurrent.futures.wait(held)
        # The slots come back when the slow requests end.
        assert _served(h, "conns.test")


def _served_slowly(h: IngressHarness) -> bool:
    try:
        return h.get("conns.test", "/?sleep_ms=2500").status == 200
    except OSError:
        return False


@pytest.mark.parametrize("query", ["a b", "a\r\nSet-Cookie: x=1", "a#b", 7])
def test_the_engine_refuses_a_redirect_query_that_could_split_the_location(h: IngressHarness, query: object) -> None:
    doc = {"ports": [h.http_port], "hostnames": ["refuse-query.test"], "routes": [
        {"id": "r", "filters": [{"type": "redirect", "query": query}]}]}
    with pytest.raises(ControlError) as refused:
        h.engine.put_vhost("refuse-query", doc)
    assert refused.value.status == 400 and "filters[0].query" in refused.value.message
