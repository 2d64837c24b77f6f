"""Ingress → routing IR with ingress-nginx semantics: hosts, paths, ports, endpoints, default backends, TLS,
redirects, annotations as filters and policies, canaries, passthrough, and robustness."""

from __future__ import annotations

import base64
import json
import random
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from netplane.routing.ingress.annotations import PREFIX, SUPPORTED
from netplane.routing.ingress.secrets import CertificateMemory
from netplane.routing.ingress.settings import ControllerSettings
from netplane.routing.ingress.translate import (
    IngressInputs,
    IngressTranslation,
    kept_certificate_diagnostics,
    translate,
)
from netplane.routing.ir import (
    Canary,
    ConsistentHash,
    CookieAffinity,
    Cors,
    DirectResponse,
    Endpoint,
    Forward,
    HeaderOp,
    Hsts,
    Listener,
    PathKind,
    PathMatch,
    Protocol,
    RateLimit,
    RateUnit,
    RawSnippet,
    Redirect,
    RegexRewrite,
    ReplaceFullPath,
    RequestHeaders,
    RequestMirror,
    RequestRate,
    ResponseHeaders,
    ResponseRateLimit,
    RetryOn,
    RetryPolicy,
    RoundRobin,
    Route,
    SessionCookie,
    SourceIPAccess,
    Template,
    Timeouts,
    UpstreamProtocol,
    URLRewrite,
    VarKind,
    VirtualHost,
    Waf,
    WafMode,
    WildcardMode,
)
from netplane.routing.matching import Request, route_request
from netplane.routing.precedence import OrderingModel, order_routes
from tests.certificates import self_signed

pytestmark = pytest.mark.unit

CREATED = "2026-01-01T00:00:00Z"


# ---------------------------------------------------------------------------------------------------------------
# Builders


def ingress(name: str = "web", namespace: str = "k-1", *, rules: list[dict[str, Any]] | None = None,
            annotations: dict[str, str] | None = None, tls: list[dict[str, Any]] | None = None,
            default_backend: dict[str, Any] | None = None, created: str = CREATED,
            class_name: str | None = "nginx") -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if class_name is not None:
        spec["ingressClassName"] = class_name
    if rules is not None:
        spec["rules"] = rules
    if tls is not None:
        spec["tls"] = tls
    if default_backend is not None:
        spec["defaultBackend"] = default_backend
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp": created,
                         "annotations": {f"{PREFIX}/{k}": v for k, v in (annotations or {}).items()}},
            "spec": spec}


def backend(service: str = "svc", port: int | str = 80) -> dict[str, Any]:
    return {"service": {"name": service, "port": {"number": port} if isinstance(port, int) else {"name": port}}}


def rule(host: str | None, *paths: tuple[str, str] | tuple[str, str, dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"http": {"paths": [{"path": p[0], "pathType": p[1],
                                               "backend": p[2] if len(p) > 2 else backend()}
                                              for p in paths]}}
    if host is not None:
        out["host"] = host
    return out


def service(name: str = "svc", namespace: str = "k-1", ports: list[dict[str, Any]] | None = None,
            **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace},
            "spec": {"ports": ports if ports is not None else [{"port": 80, "targetPort": 8080}],
                     "clusterIP": "10.96.0.10", **spec}}


def endpoint_slice(service_name: str = "svc", namespace: str = "k-1", port: int = 8080, port_name: str = "",
                   ready: tuple[str, ...] = ("10.0.0.5",), not_ready: tuple[str, ...] = (),
                   name: str | None = None) -> dict[str, Any]:
    endpoints = [{"addresses": [a], "conditions": {"ready": True}, "nodeName": "node-1", "zone": "z1"} for a in ready]
    endpoints += [{"addresses": [a], "conditions": {"ready": False}} for a in not_ready]
    return {"metadata": {"name": name or f"{service_name}-abc", "namespace": namespace,
                         "labels": {"kubernetes.io/service-name": service_name}},
            "addressType": "IPv4", "ports": [{"name": port_name, "port": port, "protocol": "TCP"}],
            "endpoints": endpoints}


certificate = self_signed


def tls_secret(name: str, *hosts: str, namespace: str = "k-1", ca: bool = False) -> dict[str, Any]:
    crt, key = certificate(*hosts)
    data = {"tls.crt": crt, "tls.key": key}
    if ca:
        data["ca.crt"] = crt
    return {"metadata": {"name": name, "namespace": namespace}, "type": "kubernetes.io/tls",
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


def run(*ingresses: dict[str, Any], services: list[dict[str, Any]] | None = None,
        slices: list[dict[str, Any]] | None = None, secrets: list[dict[str, Any]] | None = None,
        config_maps: list[dict[str, Any]] | None = None, classes: list[dict[str, Any]] | None = None,
        settings_: ControllerSettings | None = None) -> IngressTranslation:
    result = translate(IngressInputs(ingresses=list(ingresses), ingress_classes=classes or [],
                                     services=[service()] if services is None else services,
                                     endpoint_slices=[endpoint_slice()] if slices is None else slices,
                                     secrets=secrets or [], config_maps=config_maps or []), settings_)
    assert result.config.validate() == []
    return result


def listener(result: IngressTranslation, name: str) -> Listener:
    return next(lst for lst in result.config.listeners if lst.name == name)


def vhost(result: IngressTranslation, listener_name: str, host: str) -> VirtualHost:
    return next(vh for vh in listener(result, listener_name).virtual_hosts if host in vh.hostnames)


def routes(result: IngressTranslation, listener_name: str, host: str) -> tuple[Route, ...]:
    return vhost(result, listener_name, host).routes


def only_route(result: IngressTranslation, listener_name: str = "https", host: str = "demo.local") -> Route:
    found = routes(result, listener_name, host)
    assert len(found) == 1, found
    return found[0]


def request(result: IngressTranslation, path: str, host: str = "demo.local", listener_name: str = "http",
            **kwargs: Any) -> Route | None:
    return route_request(listener(result, listener_name), Request(path, host=host, **kwargs))


def messages(result: IngressTranslation) -> list[str]:
    return [str(d) for d in result.diagnostics]


def filter_of(route: Route, kind: type) -> Any:
    return next((f for f in route.filters if isinstance(f, kind)), None)


DEMO_RULE = rule("demo.local", ("/", "Prefix"))

# ---------------------------------------------------------------------------------------------------------------
# The guide's example

GUIDE_EXAMPLE = """
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: nginx-ingress
  namespace: k-1
  creationTimestamp: "2026-01-01T00:00:00Z"
  annotations:
    nginx.ingress.kubernetes.io/rewrite-target: /
spec:
  ingressClassName: nginx
  rules:
    - host: demo.local
      http:
        paths:
          - path: /
            pathType: Prefix
            backend:
              service:
                name: nginx-service
                port:
                  number: 80
"""


def test_guide_example() -> None:
    result = run(yaml.safe_load(GUIDE_EXAMPLE), services=[service("nginx-service")],
                 slices=[endpoint_slice("nginx-service", ready=("10.0.0.5", "10.0.0.6"), not_ready=("10.0.0.7",))])
    assert result.diagnostics == ()
    assert result.ingresses == ("k-1/nginx-ingress",)
    http, https = listener(result, "http"), listener(result, "https")
    assert (http.port, http.protocol, https.port, https.protocol) == (80, Protocol.HTTP, 443, Protocol.HTTPS)
    route = only_route(result, "http")
    assert route.id == "ingress/k-1/nginx-ingress/0/0"
    assert route.match == PathMatch(PathKind.PREFIX, "/")
    assert route.action == Forward("k-1/nginx-service:80")
    assert filter_of(route, URLRewrite) == URLRewrite(path=RegexRewrite("^/", "/", ignore_case=True))
    assert route.timeouts == Timeouts(connect_ms=5000, send_ms=60000, read_ms=60000)
    assert route.retry == RetryPolicy(3, (RetryOn.ERROR, RetryOn.TIMEOUT))
    assert route.max_body_bytes == 1024 * 1024
    group = result.config.backend_group("k-1/nginx-service:80")
    assert group is not None
    assert group.backends[0].endpoints == (Endpoint("10.0.0.5", 8080, "node-1", "z1"),
                                           Endpoint("10.0.0.6", 8080, "node-1", "z1"))
    assert request(result, "/any/path") == route
    assert request(result, "/", host="other.local") is None
    json.loads(result.config.to_json())


# ---------------------------------------------------------------------------------------------------------------
# Hosts and paths


def test_hosts_exact_wildcard_and_catch_all() -> None:
    ing = ingress(rules=[rule("foo.bar.com", ("/", "Prefix", backend("a"))),
                         rule("*.foo.com", ("/", "Prefix", backend("b"))),
                         rule(None, ("/", "Prefix", backend("c")))])
    result = run(ing, services=[service(n) for n in "abc"], slices=[])
    assert [vh.hostnames for vh in listener(result, "http").virtual_hosts] == [("foo.bar.com",), ("*.foo.com",),
                                                                                ("*",)]
    assert all(vh.wildcard is WildcardMode.ONE_LABEL for vh in listener(result, "http").virtual_hosts)

    def group_for(host: str) -> str:
        chosen = request(result, "/", host=host)
        assert chosen is not None and isinstance(chosen.action, Forward)
        return chosen.action.backend_group

    assert group_for("foo.bar.com") == "k-1/a:80"
    assert group_for("bar.foo.com") == "k-1/b:80"
    assert group_for("baz.bar.foo.com") == "k-1/c:80"  # a wildcard covers one label only
    assert group_for("foo.com") == "k-1/c:80"
    assert group_for("FOO.BAR.COM:80") == "k-1/a:80"
    assert only_route(result, "http", "*").hostname == ""
    assert only_route(result, "http", "*.foo.com").hostname == "*.foo.com"


def test_path_types_and_order() -> None:
    ing = ingress(rules=[rule("demo.local", ("/", "Prefix"), ("/foo", "Exact"), ("/foo", "Prefix"),
                              ("/static", "ImplementationSpecific"), ("", "ImplementationSpecific"))])
    result = run(ing)
    found = routes(result, "http", "demo.local")
    assert [(r.match.kind, r.match.value) for r in found if isinstance(r.match, PathMatch)] == [
        (PathKind.STARTS_WITH, "/static"), (PathKind.EXACT, "/foo"), (PathKind.PREFIX, "/foo"),
        (PathKind.PREFIX, "/"), (PathKind.STARTS_WITH, "/")]
    assert [r.provenance.match_index for r in found] == [3, 1, 2, 0, 4]

    def chosen(path: str) -> int:
        r = request(result, path)
        assert r is not None
        return r.provenance.match_index

    assert chosen("/foo") == 1
    assert chosen("/foo/bar") == 2
    assert chosen("/foobar") == 0
    assert chosen("/staticfile") == 3
    assert chosen("/FOO") == 0


def test_use_regex_makes_implementation_specific_paths_regexes_for_the_whole_host() -> None:
    regex = ingress("regex", rules=[rule("demo.local", ("/api/v[0-9]+", "ImplementationSpecific"))],
                    annotations={"use-regex": "true"})
    other = ingress("other", rules=[rule("demo.local", ("/plain", "ImplementationSpecific"), ("/exact", "Exact"))],
                    created="2026-01-02T00:00:00Z")
    untouched = ingress("untouched", rules=[rule("other.local", ("/plain", "ImplementationSpecific"))])
    result = run(regex, other, untouched)
    matches = {r.provenance.name + r.match.value: r.match for r in routes(result, "http", "demo.local")
               if isinstance(r.match, PathMatch)}
    assert matches["regex^/api/v[0-9]+"] == PathMatch(PathKind.REGEX, "^/api/v[0-9]+", ignore_case=True)
    assert matches["other^/plain"] == PathMatch(PathKind.REGEX, "^/plain", ignore_case=True)
    assert matches["other/exact"] == PathMatch(PathKind.EXACT, "/exact")
    assert only_route(result, "http", "other.local").match == PathMatch(PathKind.STARTS_WITH, "/plain")
    hit = request(result, "/API/V2/users")
    assert hit is not None and hit.provenance.name == "regex"


def test_rewrite_target_with_capture_groups() -> None:
    ing = ingress(rules=[rule("rewrite.bar.com", ("/something(/|$)(.*)", "ImplementationSpecific"))],
                  annotations={"use-regex": "true", "rewrite-target": "/$2", "x-forwarded-prefix": "/something"})
    result = run(ing)
    route = only_route(result, "http", "rewrite.bar.com")
    assert route.match == PathMatch(PathKind.REGEX, "^/something(/|$)(.*)", ignore_case=True)
    assert filter_of(route, URLRewrite) == URLRewrite(path=RegexRewrite("^/something(/|$)(.*)", "/$2",
                                                                        ignore_case=True))
    assert filter_of(route, RequestHeaders) == RequestHeaders(set=(HeaderOp("X-Forwarded-Prefix",
                                                                            Template.literal("/something")),))


def test_rewrite_target_referring_to_missing_groups_answers_503() -> None:
    ing = ingress(rules=[rule("demo.local", ("/plain", "Prefix"))], annotations={"rewrite-target": "/$1"})
    result = run(ing)
    assert only_route(result, "http").action == DirectResponse(503)
    assert "error: Ingress k-1/web: spec.rules[0].http.paths[0]: rewrite-target refers to $1 but path '/plain' has " \
           "0 capture groups; the path answers 503" in messages(result)


def test_invalid_regex_under_a_regex_host_falls_back_to_a_prefix() -> None:
    regex = ingress("regex", rules=[rule("demo.local", ("/ok", "ImplementationSpecific"))],
                    annotations={"use-regex": "true"})
    broken = ingress("broken", rules=[rule("demo.local", ("/a(b", "ImplementationSpecific"))])
    result = run(regex, broken)
    broken_route = next(r for r in routes(result, "http", "demo.local") if r.provenance.name == "broken")
    assert broken_route.match == PathMatch(PathKind.STARTS_WITH, "/a(b")
    assert any("matched as a plain prefix" in m for m in messages(result))


def test_oldest_ingress_keeps_a_duplicate_path() -> None:
    old = ingress("old", rules=[rule("demo.local", ("/", "Prefix", backend("a")))], created="2025-01-01T00:00:00Z")
    new = ingress("new", "other-ns", rules=[rule("demo.local", ("/", "Prefix", backend("b")))])
    result = run(new, old, services=[service("a"), service("b", "other-ns")], slices=[])
    assert only_route(result, "http").provenance.name == "old"
    assert ("warning: Ingress other-ns/new: spec.rules[0].http.paths[0]: host 'demo.local' path '/' (Prefix) is "
            "already served by ingress k-1/old; this path is ignored") in messages(result)


# ---------------------------------------------------------------------------------------------------------------
# Services, ports, endpoints


def test_service_port_by_name_and_endpoint_port_by_name() -> None:
    svc = service(ports=[{"name": "http", "port": 8000, "targetPort": "web"}, {"name": "metrics", "port": 9000}])
    slices = [endpoint_slice(port=3000, port_name="http", ready=("10.0.0.1",), name="s1"),
              endpoint_slice(port=9100, port_name="metrics", ready=("10.0.0.1",), name="s2"),
              endpoint_slice(port=3000, port_name="http", ready=("10.0.0.2",), not_ready=("10.0.0.3",), name="s3")]
    result = run(ingress(rules=[rule("demo.local", ("/", "Prefix", backend("svc", "http")))]),
                 services=[svc], slices=slices)
    route = only_route(result, "http")
    assert route.action == Forward("k-1/svc:http")
    group = result.config.backend_group("k-1/svc:http")
    assert group is not None
    only = group.backends[0]
    assert only.service is not None and (only.service.port, only.service.port_name) == (8000, "http")
    assert [(e.address, e.port) for e in only.endpoints] == [("10.0.0.1", 3000), ("10.0.0.2", 3000)]


def test_service_port_by_number() -> None:
    svc = service(ports=[{"name": "http", "port": 80}, {"name": "https", "port": 443}])
    slices = [endpoint_slice(port=8443, port_name="https")]
    result = run(ingress(rules=[rule("demo.local", ("/", "Prefix", backend("svc", 443)))]), services=[svc],
                 slices=slices)
    group = result.config.backend_group("k-1/svc:443")
    assert group is not None and group.backends[0].endpoints[0].port == 8443


def test_missing_service_and_port_give_empty_backends_with_warnings() -> None:
    ing = ingress(rules=[rule("demo.local", ("/a", "Prefix", backend("missing")), ("/b", "Prefix", backend("svc", 81)),
                              ("/c", "Prefix", {"resource": {"kind": "Bucket", "name": "b"}}))])
    result = run(ing)
    missing = result.config.backend_group("k-1/missing:80")
    assert missing is not None and missing.backends[0].endpoints == ()
    assert "warning: Ingress k-1/web: service k-1/missing not found; requests for it get 503" in messages(result)
    assert "warning: Ingress k-1/web: service k-1/svc has no port 81; requests for it get 503" in messages(result)
    resource = next(r for r in routes(result, "http", "demo.local") if r.match == PathMatch(PathKind.PREFIX, "/c"))
    assert resource.action == DirectResponse(503)


def test_external_name_and_service_upstream() -> None:
    external = service("ext", type="ExternalName", externalName="db.example.com", ports=[{"port": 5432}])
    ing = ingress(rules=[rule("demo.local", ("/ext", "Prefix", backend("ext", 5432)))])
    upstream = ingress("up", rules=[rule("up.local", ("/", "Prefix"))], annotations={"service-upstream": "true"})
    result = run(ing, upstream, services=[external, service()])
    ext = result.config.backend_group("k-1/ext:5432")
    assert ext is not None and (ext.backends[0].external_name, ext.backends[0].external_port) == ("db.example.com",
                                                                                                   5432)
    up_route = only_route(result, "http", "up.local")
    assert isinstance(up_route.action, Forward)
    group = result.config.backend_group(up_route.action.backend_group)
    assert group is not None and group.backends[0].endpoints == (Endpoint("10.96.0.10", 80),)


# ---------------------------------------------------------------------------------------------------------------
# Default backends


def test_ingress_default_backend_without_rules_serves_every_unknown_host() -> None:
    result = run(ingress(default_backend=backend()))
    route = only_route(result, "http", "*")
    assert route.id == "ingress/k-1/web/0/0#default-backend"
    assert request(result, "/whatever", host="unknown.example") == route


def test_host_fallback_uses_the_defining_ingress_default_backend() -> None:
    ing = ingress(rules=[rule("demo.local", ("/api", "Prefix", backend("api")))], default_backend=backend("web"))
    result = run(ing, services=[service("api"), service("web")], slices=[])
    found = routes(result, "http", "demo.local")
    assert [r.id for r in found] == ["ingress/k-1/web/0/0", "ingress/k-1/web/0/0#default-backend"]
    assert found[1].priority == 1 and found[1].action == Forward("k-1/web:80")
    fallback = request(result, "/other")
    assert fallback is not None and fallback.provenance.role == "default-backend"


def test_explicit_root_path_needs_no_fallback() -> None:
    result = run(ingress(rules=[DEMO_RULE], default_backend=backend()))
    assert len(routes(result, "http", "demo.local")) == 1


def test_instance_default_backend() -> None:
    settings_ = ControllerSettings(default_backend_service=("ingress-nginx", "default-http-backend"))
    default_svc = service("default-http-backend", "ingress-nginx", ports=[{"name": "http", "port": 80}])
    result = run(ingress(rules=[rule("demo.local", ("/api", "Prefix"))]), services=[service(), default_svc],
                 slices=[endpoint_slice("default-http-backend", "ingress-nginx", port_name="http")],
                 settings_=settings_)
    fallback = routes(result, "http", "demo.local")[-1]
    assert fallback.id == "service/ingress-nginx/default-http-backend/0/0#default-backend"
    assert fallback.action == Forward("ingress-nginx/default-http-backend:80")
    assert request(result, "/x", host="nobody.local") is not None


# ---------------------------------------------------------------------------------------------------------------
# TLS, redirects, HSTS


def test_tls_certificate_redirect_and_hsts() -> None:
    ing = ingress(rules=[DEMO_RULE], tls=[{"hosts": ["demo.local"], "secretName": "demo-tls"}])
    result = run(ing, secrets=[tls_secret("demo-tls", "demo.local")])
    assert vhost(result, "https", "demo.local").certificate == "k-1/demo-tls"
    assert result.config.certificate("k-1/demo-tls") is not None
    https_route = only_route(result, "https")
    assert filter_of(https_route, Hsts) == Hsts(31_536_000, True, False)
    http_route = only_route(result, "http")
    assert http_route.action == Redirect(status_code=308, scheme="https", strip_trailing_slash=True)
    assert http_route.filters == ()
    assert filter_of(http_route, Hsts) is None


def test_ssl_redirect_can_be_turned_off_and_forced() -> None:
    off = ingress("off", rules=[DEMO_RULE], tls=[{"hosts": ["demo.local"], "secretName": "demo-tls"}],
                  annotations={"ssl-redirect": "false"})
    forced = ingress("forced", rules=[rule("plain.local", ("/", "Prefix"))],
                     annotations={"force-ssl-redirect": "true", "preserve-trailing-slash": "true"})
    result = run(off, forced, secrets=[tls_secret("demo-tls", "demo.local")],
                 settings_=ControllerSettings(https_port=8443, http_redirect_code=301))
    assert isinstance(only_route(result, "http").action, Forward)
    assert only_route(result, "http", "plain.local").action == Redirect(status_code=301, scheme="https", port=8443)


def test_tls_without_a_usable_secret_uses_the_default_certificate() -> None:
    ing = ingress(rules=[DEMO_RULE, rule("wrong.local", ("/", "Prefix")), rule("nosecret.local", ("/", "Prefix"))],
                  tls=[{"hosts": ["demo.local"], "secretName": "missing"},
                       {"hosts": ["wrong.local"], "secretName": "other-cert"},
                       {"hosts": ["nosecret.local"]}])
    default = ControllerSettings(default_ssl_certificate=("ingress-nginx", "default-cert"))
    result = run(ing, secrets=[tls_secret("other-cert", "elsewhere.local"),
                               tls_secret("default-cert", "*.example.com", namespace="ingress-nginx")],
                 settings_=default)
    assert listener(result, "https").tls is not None
    assert listener(result, "https").tls.default_certificate == "ingress-nginx/default-cert"  # type: ignore[union-attr]
    for host in ("demo.local", "wrong.local", "nosecret.local"):
        assert vhost(result, "https", host).certificate is None
        # HSTS needs a configured certificate, or the default one asked for by a TLS entry without a secret.
        want_hsts = Hsts(31_536_000, True, False) if host == "nosecret.local" else None
        assert filter_of(only_route(result, "https", host), Hsts) == want_hsts
        assert isinstance(only_route(result, "http", host).action, Redirect)  # a tls section still redirects
    assert ("warning: Ingress k-1/web: TLS for demo.local: secret k-1/missing not found; the default certificate is "
            "used") in messages(result)
    assert ("warning: Ingress k-1/web: TLS for wrong.local: the certificate in secret k-1/other-cert is not valid for "
            "wrong.local; the default certificate is used") in messages(result)


def test_wildcard_certificate_and_tls_entry_without_hosts() -> None:
    ing = ingress(rules=[rule("a.example.com", ("/", "Prefix")), rule("*.example.com", ("/", "Prefix"))],
                  tls=[{"secretName": "wild"}])
    result = run(ing, secrets=[tls_secret("wild", "*.example.com")])
    assert vhost(result, "https", "a.example.com").certificate == "k-1/wild"
    assert vhost(result, "https", "*.example.com").certificate == "k-1/wild"


def test_oldest_ingress_certificate_wins() -> None:
    old = ingress("old", rules=[rule("demo.local", ("/a", "Prefix"))],
                  tls=[{"hosts": ["demo.local"], "secretName": "old-cert"}], created="2025-01-01T00:00:00Z")
    new = ingress("new", rules=[rule("demo.local", ("/b", "Prefix"))],
                  tls=[{"hosts": ["demo.local"], "secretName": "new-cert"}])
    result = run(new, old, secrets=[tls_secret("old-cert", "demo.local"), tls_secret("new-cert", "demo.local")])
    assert vhost(result, "https", "demo.local").certificate == "k-1/old-cert"
    assert any("the certificate of secret k-1/old-cert (an older Ingress) is used" in m for m in messages(result))


def test_hsts_settings() -> None:
    ing = ingress(rules=[DEMO_RULE], tls=[{"hosts": ["demo.local"], "secretName": "demo-tls"}])
    settings_ = ControllerSettings(hsts_max_age=86400, hsts_include_subdomains=False, hsts_preload=True)
    result = run(ing, secrets=[tls_secret("demo-tls", "demo.local")], settings_=settings_)
    assert filter_of(only_route(result, "https"), Hsts) == Hsts(86400, False, True)
    off = run(ing, secrets=[tls_secret("demo-tls", "demo.local")], settings_=ControllerSettings(hsts=False))
    assert filter_of(only_route(off, "https"), Hsts) is None


# ---------------------------------------------------------------------------------------------------------------
# Annotations as filters and policies


def test_annotations_become_filters_and_options() -> None:
    ing = ingress(rules=[DEMO_RULE], annotations={
        "limit-rps": "5", "limit-connections": "8", "limit-allowlist": "10.0.0.0/8", "limit-rate": "100",
        "enable-cors": "true", "cors-allow-origin": "https://a.com", "allowlist-source-range": "192.168.0.0/16",
        "proxy-connect-timeout": "3", "proxy-read-timeout": "120", "proxy-next-upstream": "error http_503",
        "proxy-next-upstream-tries": "5", "proxy-body-size": "10m", "upstream-vhost": "internal.local",
        "configuration-snippet": 'more_set_headers "X-Served-By: netplane";'})
    route = only_route(result := run(ing), "https")
    assert filter_of(route, SourceIPAccess) == SourceIPAccess(allow=("192.168.0.0/16",))
    assert filter_of(route, RateLimit) == RateLimit(rates=(RequestRate(5, RateUnit.SECOND, 25),), connections=8,
                                                    allowlist=("10.0.0.0/8",))
    assert filter_of(route, ResponseRateLimit) == ResponseRateLimit(100 * 1024)
    assert isinstance(filter_of(route, Cors), Cors) and filter_of(route, Cors).allow_origins == ("https://a.com",)
    assert filter_of(route, URLRewrite) == URLRewrite(hostname="internal.local")
    assert filter_of(route, ResponseHeaders) == ResponseHeaders(set=(HeaderOp("X-Served-By",
                                                                              Template.literal("netplane")),))
    assert route.timeouts == Timeouts(connect_ms=3000, send_ms=60000, read_ms=120000)
    assert route.retry == RetryPolicy(5, (RetryOn.ERROR,), (503,))
    assert route.max_body_bytes == 10 * 1024 * 1024
    kinds = [type(f).__name__ for f in route.filters]
    assert kinds == ["SourceIPAccess", "RateLimit", "Cors", "URLRewrite", "ResponseHeaders", "ResponseRateLimit"]
    assert result.diagnostics == ()


def test_rate_limit_status_codes_and_rpm_bursts() -> None:
    ing = ingress(rules=[DEMO_RULE], annotations={"limit-rpm": "60", "limit-burst-multiplier": "3"})
    result = run(ing, settings_=ControllerSettings(limit_req_status_code=429))
    assert filter_of(only_route(result), RateLimit) == RateLimit(rates=(RequestRate(60, RateUnit.MINUTE, 180),),
                                                                 status_code=429)


def test_next_upstream_off_disables_retries() -> None:
    ing = ingress(rules=[DEMO_RULE], annotations={"proxy-next-upstream": "off", "proxy-next-upstream-tries": "4"})
    assert only_route(run(ing)).retry is None


def test_modsecurity_per_ingress_and_instance_wide() -> None:
    waf = ingress("waf", rules=[DEMO_RULE], annotations={
        "enable-modsecurity": "true", "enable-owasp-core-rules": "true", "modsecurity-transaction-id": "$request_id",
        "modsecurity-snippet": "SecRuleEngine On"})
    result = run(waf)
    assert filter_of(only_route(result), Waf) == Waf(WafMode.BLOCKING, True, True, Template.of(VarKind.REQUEST_ID))
    everywhere = ControllerSettings(enable_modsecurity=True, enable_owasp_modsecurity_crs=True)
    plain = ingress("plain", rules=[rule("plain.local", ("/", "Prefix"))])
    opted_out = ingress("out", rules=[rule("out.local", ("/", "Prefix"))], annotations={"enable-modsecurity": "false"})
    result = run(plain, opted_out, settings_=everywhere)
    assert filter_of(only_route(result, host="plain.local"), Waf) == Waf(owasp_crs=True)
    assert filter_of(only_route(result, host="out.local"), Waf) is None


def test_raw_snippets_only_when_allowed() -> None:
    raw = 'proxy_set_header X-Custom "1";'
    ing = ingress(rules=[DEMO_RULE], annotations={"configuration-snippet": raw})
    refused = run(ing)
    assert only_route(refused).action == DirectResponse(503)
    allowed = run(ing, settings_=ControllerSettings(allow_snippet_annotations=True))
    assert filter_of(only_route(allowed), RawSnippet) == RawSnippet(raw)
    assert allowed.config.settings.allow_raw_snippets


def test_instance_wide_headers_from_config_maps() -> None:
    settings_ = ControllerSettings(proxy_set_headers=("ingress-nginx", "custom-headers"),
                                   add_headers=("ingress-nginx", "response-headers"), hide_headers=("Server",))
    config_maps = [
        {"metadata": {"name": "custom-headers", "namespace": "ingress-nginx"},
         "data": {"X-Using-Nginx-Controller": "true", "X-Request-Start": "t=${msec}", "X-Remove-Me": "",
                  "Bad Header": "x", "X-Evil": "$upstream_addr"}},
        {"metadata": {"name": "response-headers", "namespace": "ingress-nginx"}, "data": {"X-Frame-Options": "DENY"}},
    ]
    ing = ingress(rules=[DEMO_RULE], annotations={"configuration-snippet": 'more_clear_headers "X-Frame-Options";'})
    result = run(ing, config_maps=config_maps, settings_=settings_)
    route = only_route(result)
    assert [f for f in route.filters if isinstance(f, RequestHeaders | ResponseHeaders)] == [
        RequestHeaders(set=(HeaderOp("X-Request-Start", Template(("t=", Template.of(VarKind.MSEC).parts[0]))),
                            HeaderOp("X-Using-Nginx-Controller", Template.literal("true"))),
                       remove=("X-Remove-Me",)),
        ResponseHeaders(remove=("Server",)),
        ResponseHeaders(set=(HeaderOp("X-Frame-Options", Template.literal("DENY")),)),
        ResponseHeaders(remove=("X-Frame-Options",)),
    ]
    diagnostics = messages(result)
    assert ("error: ConfigMap ingress-nginx/custom-headers: data[Bad Header]: is not a header name with a string "
            "value; the header is not set") in diagnostics
    assert any(m.startswith("error: ConfigMap ingress-nginx/custom-headers: data[X-Evil]: variable $upstream_addr is "
                            "not allowed") for m in diagnostics)
    missing = run(ing, settings_=ControllerSettings(proxy_set_headers=("x", "nope")))
    assert "warning: ConfigMap x/nope: referenced by proxy-set-headers but not found" in messages(missing)


def test_affinity_and_hashing_shape_backend_groups() -> None:
    sticky = ingress("sticky", rules=[rule("demo.local", ("/app", "Prefix"))],
                     annotations={"affinity": "cookie", "session-cookie-name": "SERVERID"})
    hashed = ingress("hashed", rules=[rule("hash.local", ("/", "Prefix"))],
                     annotations={"upstream-hash-by": "$remote_addr"})
    plain = ingress("plain", rules=[rule("plain.local", ("/", "Prefix"))])
    result = run(sticky, hashed, plain)
    groups = {g.name: g for g in result.config.backend_groups}
    sticky_group = groups[only_route(result, host="demo.local").action.backend_group]  # type: ignore[union-attr]
    assert sticky_group.balancing == CookieAffinity(SessionCookie("SERVERID", path="/app"))
    hashed_group = groups[only_route(result, host="hash.local").action.backend_group]  # type: ignore[union-attr]
    assert hashed_group.balancing == ConsistentHash(Template.of(VarKind.SOURCE_IP))
    assert only_route(result, host="plain.local").action == Forward("k-1/svc:80")
    assert len(groups) == 3 and all(name.startswith("k-1/svc:80") for name in groups)


def test_https_backend_with_verification() -> None:
    ing = ingress(rules=[DEMO_RULE], annotations={
        "backend-protocol": "HTTPS", "proxy-ssl-secret": "k-1/backend-ca", "proxy-ssl-verify": "on",
        "proxy-ssl-name": "backend.internal", "proxy-ssl-server-name": "on"})
    result = run(ing, secrets=[tls_secret("backend-ca", "backend.internal", ca=True)])
    route = only_route(result)
    assert isinstance(route.action, Forward)
    group = result.config.backend_group(route.action.backend_group)
    assert group is not None
    member = group.backends[0]
    assert member.protocol is UpstreamProtocol.HTTPS
    assert member.tls is not None and (member.tls.secret, member.tls.verify, member.tls.server_name,
                                       member.tls.sni) == ("k-1/backend-ca", True, "backend.internal", True)
    assert result.config.certificate("k-1/backend-ca") is not None
    no_ca = run(ing, secrets=[tls_secret("backend-ca", "backend.internal")])
    assert only_route(no_ca).action == DirectResponse(503)
    assert any("proxy-ssl-secret k-1/backend-ca has no ca.crt to verify the backend with" in m
               for m in messages(no_ca))


def test_grpc_backend_protocol() -> None:
    result = run(ingress(rules=[DEMO_RULE], annotations={"backend-protocol": "GRPC"}))
    route = only_route(result)
    assert isinstance(route.action, Forward)
    group = result.config.backend_group(route.action.backend_group)
    assert group is not None and group.backends[0].protocol is UpstreamProtocol.GRPC


def test_app_root_and_permanent_redirect() -> None:
    app = ingress("app", rules=[rule("demo.local", ("/", "Prefix"))], annotations={"app-root": "/app1"})
    moved = ingress("moved", rules=[rule("old.local", ("/", "Prefix"))],
                    annotations={"permanent-redirect": "https://new.example.com/landing"})
    result = run(app, moved)
    found = routes(result, "http", "demo.local")
    assert found[0].id == "ingress/k-1/app/0/0#app-root"
    assert found[0].action == Redirect(status_code=302, path=ReplaceFullPath("/app1"), query="")
    root = request(result, "/")
    assert root is not None and root.provenance.role == "app-root"
    deeper = request(result, "/app1/page")
    assert deeper is not None and deeper.provenance.role == ""
    assert only_route(result, "http", "old.local").action == Redirect(301, "https", "new.example.com", None,
                                                                       ReplaceFullPath("/landing"), "")


def test_invalid_annotations_make_the_paths_answer_503() -> None:
    ing = ingress(rules=[DEMO_RULE], annotations={"limit-rps": "x"}, default_backend=backend())
    result = run(ing)
    for name in ("http", "https"):
        assert only_route(result, name).action == DirectResponse(503)
    assert messages(result) == [
        'error: Ingress k-1/web: metadata.annotations[nginx.ingress.kubernetes.io/limit-rps]: Invalid value: "x": must '
        "be a positive integer; its paths answer 503 until this is fixed"]


# ---------------------------------------------------------------------------------------------------------------
# Canary


def canary(name: str = "web-canary", path: str = "/", *, annotations: dict[str, str],
           svc: str = "canary-svc", host: str = "demo.local") -> dict[str, Any]:
    return ingress(name, rules=[rule(host, (path, "Prefix", backend(svc)))],
                   annotations={"canary": "true", **annotations}, created="2026-02-01T00:00:00Z")


CANARY_SERVICES = [service(), service("canary-svc"), service("c2")]


def test_canary_by_header_is_merged_into_the_main_route() -> None:
    main = ingress(rules=[DEMO_RULE])
    result = run(main, canary(annotations={"canary-by-header": "CanaryByHeader",
                                           "canary-by-header-value": "DoCanary"}),
                 services=CANARY_SERVICES, slices=[])
    for name in ("http", "https"):
        route = only_route(result, name)
        assert isinstance(route.action, Forward)
        assert route.action.backend_group == "k-1/svc:80"
        (alt,) = route.action.canaries
        assert (alt.backend_group, alt.header, alt.header_value, alt.weight) == ("k-1/canary-svc:80", "CanaryByHeader",
                                                                                 "DoCanary", 0)
        assert alt.provenance.route_id == "ingress/k-1/web-canary/0/0#canary"
    assert result.config.backend_group("k-1/canary-svc:80") is not None


def test_canary_by_weight_cookie_and_pattern() -> None:
    result = run(ingress(rules=[DEMO_RULE]),
                 canary(annotations={"canary-weight": "100", "canary-weight-total": "200", "canary-by-cookie": "beta",
                                     "canary-by-header": "X-Canary", "canary-by-header-pattern": "^(a|b)$"}),
                 services=CANARY_SERVICES, slices=[])
    route = only_route(result)
    assert isinstance(route.action, Forward)
    assert route.action.canaries == (Canary("k-1/canary-svc:80", route.action.canaries[0].provenance, weight=100,
                                            weight_total=200, header="X-Canary", header_pattern="^(a|b)$",
                                            cookie="beta"),)


@pytest.mark.parametrize(("main_annotations", "canary_annotations", "want"), [
    # sticky (the default, read from the canary): the main's affinity cookie, in place of the canary's own
    ({"affinity": "cookie", "session-cookie-name": "aff"}, {"affinity": "cookie", "session-cookie-name": "own"},
     CookieAffinity(SessionCookie("aff", path="/"))),
    ({}, {"affinity": "cookie"}, RoundRobin()),
    ({}, {"affinity": "cookie", "upstream-hash-by": "$remote_addr"}, ConsistentHash(Template.of(VarKind.SOURCE_IP))),
    # legacy: the canary balances as its own annotations say
    ({"affinity": "cookie"}, {"affinity-canary-behavior": "legacy"}, RoundRobin()),
    ({"affinity": "cookie"}, {"affinity-canary-behavior": "legacy", "affinity": "cookie",
                              "session-cookie-name": "own"}, CookieAffinity(SessionCookie("own", path="/"))),
])
def test_canary_affinity_behaviour_is_the_canarys(main_annotations: dict[str, str],
                                                  canary_annotations: dict[str, str], want: object) -> None:
    result = run(ingress(rules=[DEMO_RULE], annotations=main_annotations),
                 canary(annotations={"canary-weight": "10", **canary_annotations}), services=CANARY_SERVICES, slices=[])
    route = only_route(result)
    assert isinstance(route.action, Forward)
    (c,) = route.action.canaries
    assert c.sticky is ("affinity-canary-behavior" not in canary_annotations)
    group = result.config.backend_group(c.backend_group)
    assert group is not None and group.balancing == want
    sticky_own_affinity = "affinity" in canary_annotations and c.sticky
    assert any("affinity on a canary Ingress has no effect" in m for m in messages(result)) is sticky_own_affinity


def test_canary_follows_the_main_backend_protocol_and_its_own_balancing() -> None:
    main = ingress(rules=[DEMO_RULE], annotations={"backend-protocol": "GRPC", "affinity": "cookie"})
    alt = canary(annotations={"canary-weight": "10", "upstream-hash-by": "$remote_addr",
                              "backend-protocol": "HTTPS", "affinity-canary-behavior": "legacy"})
    result = run(main, alt, services=CANARY_SERVICES, slices=[])
    route = only_route(result)
    assert isinstance(route.action, Forward)
    (c,) = route.action.canaries
    assert not c.sticky
    group = result.config.backend_group(c.backend_group)
    assert group is not None
    assert group.backends[0].protocol is UpstreamProtocol.GRPC
    assert group.balancing == ConsistentHash(Template.of(VarKind.SOURCE_IP))
    assert ("warning: Ingress k-1/web-canary: annotation backend-protocol has no effect on a canary Ingress (only "
            "canary-*, load-balance, upstream-hash-by and affinity annotations apply)") in messages(result)


def test_canary_without_main_and_second_canary_are_reported() -> None:
    result = run(ingress(rules=[DEMO_RULE]),
                 canary(annotations={"canary-weight": "10"}),
                 canary("second", annotations={"canary-weight": "20"}, svc="c2"),
                 canary("orphan", "/nothing-here", annotations={"canary-weight": "5"}),
                 services=CANARY_SERVICES, slices=[])
    route = only_route(result)
    assert isinstance(route.action, Forward) and len(route.action.canaries) == 1
    assert route.action.canaries[0].provenance.name in ("web-canary", "second")
    diagnostics = messages(result)
    assert any("already has canary" in m for m in diagnostics)
    assert ("warning: Ingress k-1/orphan: spec.rules[0].http.paths[0]: no Ingress serves host 'demo.local' path "
            "'/nothing-here' (Prefix); the canary has nothing to attach to") in diagnostics
    # A canary creates no route of its own.
    assert all(r.provenance.name == "web" for r in routes(result, "http", "demo.local"))


def test_canary_for_the_default_backend() -> None:
    main = ingress(default_backend=backend())
    alt = ingress("alt", annotations={"canary": "true", "canary-weight": "50"}, default_backend=backend("c2"),
                  created="2026-03-01T00:00:00Z")
    result = run(main, alt, services=CANARY_SERVICES, slices=[])
    route = only_route(result, "http", "*")
    assert isinstance(route.action, Forward)
    assert route.action.canaries[0].backend_group == "k-1/c2:80"


def test_canary_on_a_redirecting_route_is_not_attached_on_http() -> None:
    main = ingress(rules=[DEMO_RULE], tls=[{"hosts": ["demo.local"], "secretName": "demo-tls"}])
    result = run(main, canary(annotations={"canary-weight": "10"}), services=CANARY_SERVICES, slices=[],
                 secrets=[tls_secret("demo-tls", "demo.local")])
    assert isinstance(only_route(result, "http").action, Redirect)
    https_action = only_route(result, "https").action
    assert isinstance(https_action, Forward) and len(https_action.canaries) == 1


# ---------------------------------------------------------------------------------------------------------------
# SSL passthrough


def test_ssl_passthrough() -> None:
    passthrough = ingress("pt", rules=[rule("secure.local", ("/", "Prefix"))],
                          annotations={"ssl-passthrough": "true"})
    other = ingress("other", rules=[rule("secure.local", ("/other", "Prefix"))], created="2026-02-01T00:00:00Z")
    result = run(passthrough, other, settings_=ControllerSettings(enable_ssl_passthrough=True))
    https = listener(result, "https")
    (l4,) = https.l4_routes
    assert (l4.hostnames, l4.id) == (("secure.local",), "ingress/k-1/pt/0/0#passthrough")
    group = result.config.backend_group(l4.backend_group)
    assert group is not None and group.backends[0].protocol is UpstreamProtocol.TCP
    assert not any("secure.local" in vh.hostnames for vh in https.virtual_hosts)
    assert len(routes(result, "http", "secure.local")) == 2
    assert any("is passed through on HTTPS by ingress k-1/pt; this path is served on HTTP only" in m
               for m in messages(result))
    disabled = run(passthrough)
    assert listener(disabled, "https").l4_routes == ()
    assert only_route(disabled, "https", "secure.local").action == DirectResponse(503)


# ---------------------------------------------------------------------------------------------------------------
# Classes, settings, determinism, robustness


def test_ingress_class_selection() -> None:
    mine = ingress("mine", rules=[rule("a.local", ("/", "Prefix"))])
    legacy = ingress("legacy", rules=[rule("b.local", ("/", "Prefix"))], class_name=None)
    legacy["metadata"]["annotations"]["kubernetes.io/ingress.class"] = "nginx"
    classless = ingress("classless", rules=[rule("c.local", ("/", "Prefix"))], class_name=None)
    other = ingress("other", rules=[rule("d.local", ("/", "Prefix"))], class_name="alb-1")
    plain_class = {"metadata": {"name": "nginx"}, "spec": {"controller": "k8s.io/ingress-nginx"}}
    result = run(mine, legacy, classless, other, classes=[plain_class])
    assert result.ingresses == ("k-1/legacy", "k-1/mine")
    default_class = {"metadata": {"name": "nginx", "annotations": {
        "ingressclass.kubernetes.io/is-default-class": "true"}}, "spec": {"controller": "k8s.io/ingress-nginx"}}
    assert "k-1/classless" in run(mine, classless, classes=[default_class]).ingresses
    foreign = {"metadata": {"name": "nginx"}, "spec": {"controller": "example.com/other"}}
    refused = run(mine, classes=[foreign])
    assert refused.ingresses == () and listener(refused, "http").virtual_hosts == ()
    assert messages(refused) == ["error: IngressClass /nginx: controller 'example.com/other' is not "
                                 "'k8s.io/ingress-nginx'; no Ingress is served"]


def test_instance_settings_reach_the_ir() -> None:
    settings_ = ControllerSettings(max_worker_connections=1024, worker_processes=2, upstream_keepalive_connections=64,
                                   upstream_keepalive_timeout=30, use_forwarded_headers=True,
                                   compute_full_forwarded_for=True, proxy_real_ip_cidr=("10.0.0.0/8",),
                                   disable_access_log=True, http_port=8080, https_port=8443, bind_address="127.0.0.1")
    result = run(ingress(rules=[DEMO_RULE]), settings_=settings_)
    s = result.config.settings
    assert (s.max_worker_connections, s.worker_processes, s.keepalive.connections, s.keepalive.timeout_ms) == (
        1024, 2, 64, 30_000)
    assert s.forwarded.trust_incoming and s.forwarded.compute_full_forwarded_for
    assert s.forwarded.trusted_proxies == ("10.0.0.0/8",)
    assert not s.access_log and run(ingress(rules=[DEMO_RULE])).config.settings.access_log
    assert [(lst.address, lst.port) for lst in result.config.listeners] == [("127.0.0.1", 8080), ("127.0.0.1", 8443)]


def test_translation_is_deterministic() -> None:
    ingresses = [ingress(f"i{n}", rules=[rule(f"h{n % 3}.local", (f"/p{n}", "Prefix"), ("/", "Prefix"))],
                         created=f"2026-01-0{1 + n % 5}T00:00:00Z", annotations={"limit-rps": str(n + 1)})
                 for n in range(8)]
    first = run(*ingresses).config.to_json()
    shuffled = list(ingresses)
    random.Random(7).shuffle(shuffled)
    assert run(*shuffled).config.to_json() == first


def test_empty_input_still_opens_both_ports() -> None:
    result = run()
    assert [(lst.name, lst.port, lst.virtual_hosts) for lst in result.config.listeners] == [("http", 80, ()),
                                                                                         ("https", 443, ())]


def test_malformed_objects_do_not_raise() -> None:
    weird: list[Any] = [
        {"metadata": {"name": "x", "namespace": "k-1"}, "spec": {"ingressClassName": "nginx", "rules": "nope"}},
        {"metadata": {"name": "y"}, "spec": {"ingressClassName": "nginx", "rules": [None, {"http": {"paths": [
            None, {"path": 5, "backend": {"service": {"name": "svc", "port": {"number": "80"}}}}]}}]}},
        {"metadata": None, "spec": None},
        {"metadata": {"name": "z", "namespace": "k-1", "annotations": {f"{PREFIX}/limit-rps": None}},
         "spec": {"ingressClassName": "nginx", "tls": [None, {"hosts": [None]}], "defaultBackend": "x"}},
    ]
    result = run(*weird, slices=[{"metadata": {"namespace": "k-1", "labels": None}, "endpoints": "x"},
                                 endpoint_slice(ready=("not-an-ip",))])
    assert result.config.validate() == []


ANNOTATION_NAMES = st.sampled_from(sorted(SUPPORTED | {"server-snippet", "made-up"}))
ANNOTATION_VALUES = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["true", "false", "5", "0", "/$1", "/x", "$remote_addr", "cookie", "HTTPS", "on", "k-1/sec",
                     "10.0.0.0/8", 'more_set_headers "A: b";', "https://a.com/x", "(", "^/a", "*"]))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.dictionaries(ANNOTATION_NAMES, ANNOTATION_VALUES, max_size=5), min_size=1, max_size=3),
       st.booleans())
def test_arbitrary_annotations_never_raise_and_always_give_a_valid_configuration(
        annotation_sets: list[dict[str, str]], raw: bool) -> None:
    ingresses = [ingress(f"i{i}", rules=[rule("demo.local", (f"/p{i}", "Prefix"),
                                              ("/r(x)?", "ImplementationSpecific"))],
                         tls=[{"hosts": ["demo.local"], "secretName": "demo-tls"}], annotations=anns,
                         default_backend=backend(), created=f"2026-01-0{i + 1}T00:00:00Z")
                 for i, anns in enumerate(annotation_sets)]
    result = translate(IngressInputs(ingresses=ingresses, services=CANARY_SERVICES, endpoint_slices=[endpoint_slice()],
                                     secrets=[tls_secret("demo-tls", "demo.local"),
                                              tls_secret("sec", "backend.local", ca=True)]),
                       ControllerSettings(allow_snippet_annotations=raw, enable_ssl_passthrough=True))
    assert result.config.validate() == []
    json.loads(result.config.to_json())


HOSTS = st.sampled_from([None, "demo.local", "*.demo.local", "a.demo.local", "secure.local"])
PATH_VALUES = st.sampled_from(["/", "/a", "/a/", "/a/b", "/api(/|$)(.*)", "/x[0-9]+", "", "/(", "/a.b"])
PATH_TYPES = st.sampled_from(["Exact", "Prefix", "ImplementationSpecific"])
SHAPE_ANNOTATIONS = st.dictionaries(st.sampled_from(["use-regex", "rewrite-target", "ssl-passthrough", "canary",
                                                     "canary-weight", "app-root", "affinity", "backend-protocol",
                                                     "force-ssl-redirect"]),
                                    st.sampled_from(["true", "/$1", "/", "10", "cookie", "GRPC", "/app"]), max_size=4)


SERVICE_PORTS: st.SearchStrategy[int | str] = st.sampled_from([80, "http", 81])


@st.composite
def ingress_sets(draw: st.DrawFn) -> list[dict[str, Any]]:
    out = []
    for i in range(draw(st.integers(1, 4))):
        rules = [rule(draw(HOSTS), *[(draw(PATH_VALUES), draw(PATH_TYPES), backend(draw(st.sampled_from(
            ["svc", "canary-svc", "missing"])), draw(SERVICE_PORTS)))
            for _ in range(draw(st.integers(1, 3)))]) for _ in range(draw(st.integers(0, 2)))]
        tls = draw(st.sampled_from([None, [{"hosts": ["demo.local"], "secretName": "demo-tls"}],
                                    [{"secretName": "missing"}]]))
        out.append(ingress(f"i{i}", draw(st.sampled_from(["k-1", "k-2"])), rules=rules, tls=tls,
                           annotations=draw(SHAPE_ANNOTATIONS),
                           default_backend=draw(st.sampled_from([None, backend()])),
                           created=draw(st.sampled_from(["", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"]))))
    return out


@settings(max_examples=200, deadline=None)
@given(ingress_sets(), st.booleans())
def test_arbitrary_ingress_shapes_give_a_valid_configuration(ingresses: list[dict[str, Any]], passthrough: bool
                                                             ) -> None:
    result = translate(IngressInputs(ingresses=ingresses, services=CANARY_SERVICES, endpoint_slices=[endpoint_slice()],
                                     secrets=[tls_secret("demo-tls", "demo.local")]),
                       ControllerSettings(enable_ssl_passthrough=passthrough))
    assert result.config.validate() == []
    # Every virtual host's routes are in Ingress order, and each host + path + type is served once.
    for lst in result.config.listeners:
        for vh in lst.virtual_hosts:
            assert vh.routes == order_routes(vh.routes, OrderingModel.INGRESS)
            seen = [(r.match, r.priority) for r in vh.routes]
            assert len(seen) == len(set(seen))


def test_certificate_memory_keeps_the_last_usable_secret_until_it_is_deleted() -> None:
    memory = CertificateMemory()
    good = tls_secret("cert", "demo.local")
    plain = {"metadata": {"name": "token", "namespace": "k-1"}, "data": {"token": "eA=="}}
    assert memory.apply([good, plain]) == ([good, plain], {})
    broken = {**good, "data": {**good["data"], "tls.crt": base64.b64encode(b"garbage").decode()}}
    secrets, kept = memory.apply([broken, plain])
    assert secrets == [good, plain]
    assert kept == {("k-1", "cert"): "secret k-1/cert has no valid PEM certificate in tls.crt; the previous "
                                     "certificate stays in use until the Secret is fixed"}
    users = ingress(tls=[{"hosts": ["demo.local"], "secretName": "cert"}])
    assert [str(d) for d in kept_certificate_diagnostics(kept, [users, ingress("other")])] == [
        "warning: Ingress k-1/web: TLS secret k-1/cert: " + kept[("k-1", "cert")]]
    assert [d.kind for d in kept_certificate_diagnostics(kept, [])] == ["Secret"]
    # Deleted, then stored broken: nothing to keep any more, so the broken one goes to translation (and its warning).
    assert memory.apply([]) == ([], {})
    assert memory.apply([broken]) == ([broken], {})
    fixed = tls_secret("cert", "demo.local", "www.demo.local")
    assert memory.apply([fixed]) == ([fixed], {})


# ---------------------------------------------------------------------------------------------------------------
# mirror-target

MIRROR_SERVICES = [service(), service("mirror", ports=[{"name": "web", "port": 80, "targetPort": 9090}]),
                   service("shadow", namespace="other", ports=[{"name": "web", "port": 8080}])]
MIRROR_SLICES = [endpoint_slice(), endpoint_slice("mirror", port=9090, port_name="web", ready=("10.0.0.7",)),
                 endpoint_slice("shadow", namespace="other", port=8081, port_name="web", ready=("10.0.0.8",))]


@pytest.mark.parametrize(("target", "endpoint"), [
    ("http://mirror$request_uri", ("10.0.0.7", 9090)),
    ("http://mirror.k-1/$request_uri", ("10.0.0.7", 9090)),
    ("http://mirror.k-1.svc:80", ("10.0.0.7", 9090)),
    ("http://mirror.k-1.svc.cluster.local$request_uri", ("10.0.0.7", 9090)),
    ("http://shadow.other.svc.cluster.local:8080$request_uri", ("10.0.0.8", 8081)),
    ("http://192.0.2.10:7000$request_uri", ("192.0.2.10", 7000)),
])
def test_mirror_target_resolves_to_a_service_or_an_address(target: str, endpoint: tuple[str, int]) -> None:
    result = run(ingress(rules=[DEMO_RULE], annotations={"mirror-target": target, "mirror-request-body": "off"}),
                 services=MIRROR_SERVICES, slices=MIRROR_SLICES)
    mirror = filter_of(only_route(result), RequestMirror)
    assert mirror is not None and not mirror.body
    group = result.config.backend_group(mirror.backend_group)
    assert group is not None and [(e.address, e.port) for e in group.backends[0].endpoints] == [endpoint[:2]]
    assert mirror.hostname == target.split("/")[2].split("$")[0].split(":")[0]  # the target's host by default
    assert filter_of(only_route(result, "http"), RequestMirror) == mirror
    assert not [m for m in messages(result) if "mirror" in m]


def test_mirror_host_sets_the_copys_host_and_the_filter_order() -> None:
    result = run(ingress(rules=[DEMO_RULE], annotations={
        "mirror-target": "http://mirror$request_uri", "mirror-host": "copy.example", "enable-cors": "true",
        "allowlist-source-range": "10.0.0.0/8", "rewrite-target": "/x", "upstream-vhost": "inner.local"}),
        services=MIRROR_SERVICES, slices=MIRROR_SLICES)
    route = only_route(result)
    assert filter_of(route, RequestMirror).hostname == "copy.example"
    kinds = [type(f).__name__ for f in route.filters]
    # Refused or answered requests are not copied; the copy is the request as the client sent it.
    assert kinds.index("SourceIPAccess") < kinds.index("Cors") < kinds.index("RequestMirror") < kinds.index(
        "URLRewrite")


@pytest.mark.parametrize(("target", "message"), [
    ("http://absent$request_uri", "mirror-target: 'absent' is neither an IP address nor a Service"),
    ("http://mirror.example.com$request_uri", "mirror-target: 'mirror.example.com' is neither an IP address nor a "
                                              "Service"),
    ("http://mirror:81$request_uri", "mirror-target: service k-1/mirror has no port 81; no copies are sent"),
])
def test_mirror_target_that_resolves_to_nothing_is_a_warning(target: str, message: str) -> None:
    result = run(ingress(rules=[DEMO_RULE], annotations={"mirror-target": target}), services=MIRROR_SERVICES,
                 slices=MIRROR_SLICES)
    route = only_route(result)
    assert isinstance(route.action, Forward) and filter_of(route, RequestMirror) is None  # still served
    assert any(message in m for m in messages(result)), messages(result)


def test_invalid_mirror_target_fails_the_ingress_closed() -> None:
    result = run(ingress(rules=[DEMO_RULE], annotations={"mirror-target": "https://mirror$request_uri"}),
                 services=MIRROR_SERVICES, slices=MIRROR_SLICES)
    assert only_route(result).action == DirectResponse(503)
    assert any("mirror-target" in m and "https targets are not supported" in m for m in messages(result))
