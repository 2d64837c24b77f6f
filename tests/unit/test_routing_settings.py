"""The ingress-nginx controller ConfigMap: keys, defaults and validation."""

from __future__ import annotations

from typing import Any

import pytest

from netplane.routing.ingress.settings import ControllerSettings, parse_settings
from netplane.routing.ir import RetryOn, RetryPolicy

pytestmark = pytest.mark.unit


def test_defaults_match_ingress_nginx() -> None:
    s = ControllerSettings()
    assert (s.max_worker_connections, s.proxy_connect_timeout, s.proxy_send_timeout, s.proxy_read_timeout) == (
        16384, 5, 60, 60)
    assert (s.hsts, s.hsts_max_age, s.hsts_include_subdomains, s.hsts_preload) == (True, 31_536_000, True, False)
    assert (s.ssl_redirect, s.http_redirect_code, s.limit_req_status_code, s.allow_snippet_annotations) == (
        True, 308, 503, False)
    assert s.retry_policy() == RetryPolicy(3, (RetryOn.ERROR, RetryOn.TIMEOUT))


@pytest.mark.parametrize(("data", "expected"), [
    ({"max-worker-connections": "1024"}, {"max_worker_connections": 1024}),
    ({"worker-processes": "auto"}, {"worker_processes": None}),
    ({"worker-processes": "4"}, {"worker_processes": 4}),
    ({"proxy-connect-timeout": "10", "proxy-read-timeout": "300"}, {"proxy_connect_timeout": 10,
                                                                    "proxy_read_timeout": 300}),
    ({"proxy-next-upstream": "error timeout http_502 http_503"},
     {"proxy_next_upstream": (RetryOn.ERROR, RetryOn.TIMEOUT), "proxy_next_upstream_statuses": (502, 503)}),
    ({"proxy-body-size": "20m"}, {"proxy_body_size": 20 * 1024 * 1024}),
    ({"hsts": "false", "hsts-max-age": "86400", "hsts-include-subdomains": "false", "hsts-preload": "true"},
     {"hsts": False, "hsts_max_age": 86400, "hsts_include_subdomains": False, "hsts_preload": True}),
    ({"hide-headers": "Server, X-Powered-By"}, {"hide_headers": ("Server", "X-Powered-By")}),
    ({"proxy-set-headers": "ingress-nginx/custom-headers"}, {"proxy_set_headers": ("ingress-nginx",
                                                                                   "custom-headers")}),
    ({"add-headers": "ingress-nginx/resp"}, {"add_headers": ("ingress-nginx", "resp")}),
    ({"allow-snippet-annotations": "true"}, {"allow_snippet_annotations": True}),
    ({"ssl-redirect": "false", "http-redirect-code": "301"}, {"ssl_redirect": False, "http_redirect_code": 301}),
    ({"limit-req-status-code": "429", "limit-conn-status-code": "429"}, {"limit_req_status_code": 429,
                                                                        "limit_conn_status_code": 429}),
    ({"enable-modsecurity": "true", "enable-owasp-modsecurity-crs": "true"},
     {"enable_modsecurity": True, "enable_owasp_modsecurity_crs": True}),
    ({"use-forwarded-headers": "true", "compute-full-forwarded-for": "true", "forwarded-for-header": "X-Client-IP",
      "proxy-real-ip-cidr": "10.0.0.0/8,192.168.0.0/16"},
     {"use_forwarded_headers": True, "compute_full_forwarded_for": True, "forwarded_for_header": "X-Client-IP",
      "proxy_real_ip_cidr": ("10.0.0.0/8", "192.168.0.0/16")}),
    ({"upstream-keepalive-connections": "0", "upstream-keepalive-timeout": "0",
      "upstream-keepalive-requests": "100"},
     {"upstream_keepalive_connections": 0, "upstream_keepalive_timeout": 0, "upstream_keepalive_requests": 100}),
    ({"strict-validate-path-type": "false"}, {"strict_validate_path_type": False}),
    ({"disable-access-log": "true"}, {"disable_access_log": True}),
])
def test_valid_keys(data: dict[str, str], expected: dict[str, Any]) -> None:
    parsed = parse_settings(data)
    assert parsed.errors == () and parsed.warnings == ()
    for name, value in expected.items():
        assert getattr(parsed.settings, name) == value


@pytest.mark.parametrize(("key", "value", "reason"), [
    ("max-worker-connections", "lots", "must be a positive integer"),
    ("max-worker-connections", "0", "must be a positive integer"),
    ("worker-processes", "many", "must be a positive integer"),
    ("proxy-read-timeout", "60s", "must be a positive integer number of seconds (at most 2147483)"),
    ("hsts", "yes", "must be a boolean (true or false)"),
    ("hsts-max-age", "-1", "must be a non-negative integer"),
    ("hide-headers", "Server, Bad Header", "'Bad Header' is not a valid HTTP header name"),
    ("proxy-set-headers", "custom-headers", "must be namespace/name"),
    ("http-redirect-code", "200", "must be one of: 301, 302, 307, 308"),
    ("limit-req-status-code", "200", "must be an integer between 400 and 599"),
    ("forwarded-for-header", "X Bad", "must be a valid HTTP header name"),
    ("proxy-real-ip-cidr", "nope", "'nope' is not an IP address or CIDR"),
    ("proxy-next-upstream", "", "must list at least one condition"),
    ("allow-snippet-annotations", "maybe", "must be a boolean (true or false)"),
])
def test_invalid_keys_keep_the_default(key: str, value: str, reason: str) -> None:
    parsed = parse_settings({key: value})
    assert [str(e) for e in parsed.errors] == [f'data[{key}]: Invalid value: "{value}": {reason}']
    assert parsed.settings == ControllerSettings()


def test_flags_are_kept_and_unknown_keys_warned() -> None:
    base = ControllerSettings(enable_ssl_passthrough=True, default_ssl_certificate=("ns", "cert"))
    parsed = parse_settings({"use-gzip": "true", "max-worker-connections": "512", "odd": 5}, base)
    assert parsed.settings.enable_ssl_passthrough and parsed.settings.default_ssl_certificate == ("ns", "cert")
    assert parsed.settings.max_worker_connections == 512
    assert parsed.warnings == ("data[use-gzip]: ConfigMap key 'use-gzip' is not supported by netplane and has no "
                               "effect",)
    assert [str(e) for e in parsed.errors] == ["data[odd]: Invalid value: 5: must be a string"]
    assert parse_settings(None).settings == ControllerSettings()


def test_retry_policy_from_settings() -> None:
    parsed = parse_settings({"proxy-next-upstream": "off"}).settings
    assert parsed.retry_policy() == RetryPolicy()
    timed = parse_settings({"proxy-next-upstream-timeout": "5", "proxy-next-upstream-tries": "2"}).settings
    assert timed.retry_policy() == RetryPolicy(2, (RetryOn.ERROR, RetryOn.TIMEOUT), timeout_ms=5000)
