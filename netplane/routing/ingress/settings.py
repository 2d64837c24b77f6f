"""Instance-wide settings of an ingress-nginx-compatible gateway: the controller ConfigMap's keys (ingress-nginx's
names and defaults) plus what ingress-nginx takes as command-line flags (default certificate, SSL passthrough,
default backend), which the instance's configuration sets on ``ControllerSettings`` directly."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from netplane.api.errors import FieldError, invalid
from netplane.routing.ingress.nginx_syntax import SyntaxProblem
from netplane.routing.ingress.values import (
    parse_bool,
    parse_cidrs,
    parse_header_names,
    parse_int,
    parse_options,
    parse_reference,
    parse_seconds,
    parse_size,
)
from netplane.routing.ir import RetryOn, RetryPolicy
from netplane.routing.validate import is_token

NEXT_UPSTREAM_CONDITIONS = {
    "error": RetryOn.ERROR,
    "timeout": RetryOn.TIMEOUT,
    "invalid_header": RetryOn.INVALID_HEADER,
    "non_idempotent": RetryOn.NON_IDEMPOTENT,
}
NEXT_UPSTREAM_STATUSES = {f"http_{code}": code for code in (403, 404, 429, 500, 502, 503, 504)}
REDIRECT_CODES = ("301", "302", "307", "308")


def parse_next_upstream(value: str) -> tuple[tuple[RetryOn, ...], tuple[int, ...]]:
    """``proxy-next-upstream``: space-separated nginx conditions, or ``off``."""
    words = value.split()
    if words == ["off"]:
        return (), ()
    conditions: list[RetryOn] = []
    statuses: list[int] = []
    for word in words:
        if word in NEXT_UPSTREAM_CONDITIONS:
            conditions.append(NEXT_UPSTREAM_CONDITIONS[word])
        elif word in NEXT_UPSTREAM_STATUSES:
            statuses.append(NEXT_UPSTREAM_STATUSES[word])
        else:
            allowed = " ".join([*NEXT_UPSTREAM_CONDITIONS, *NEXT_UPSTREAM_STATUSES, "off"])
            raise SyntaxProblem(f"{word!r} is not one of: {allowed} ('off' alone)")
    if not words:
        raise SyntaxProblem("must list at least one condition")
    return tuple(conditions), tuple(statuses)


@dataclass(frozen=True)
class ControllerSettings:
    """Everything instance-wide that shapes translation. Field names follow the ConfigMap keys."""

    # Flags and instance identity.
    class_name: str = "nginx"
    controller: str = "k8s.io/ingress-nginx"
    http_port: int = 80
    https_port: int = 443
    bind_address: str = "0.0.0.0"
    default_ssl_certificate: tuple[str, str] | None = None
    enable_ssl_passthrough: bool = False
    default_backend_service: tuple[str, str] | None = None
    # ConfigMap keys.
    allow_snippet_annotations: bool = False
    strict_validate_path_type: bool = True
    max_worker_connections: int = 16384
    worker_processes: int | None = None
    proxy_connect_timeout: int = 5
    proxy_send_timeout: int = 60
    proxy_read_timeout: int = 60
    proxy_next_upstream: tuple[RetryOn, ...] = (RetryOn.ERROR, RetryOn.TIMEOUT)
    proxy_next_upstream_statuses: tuple[int, ...] = ()
    proxy_next_upstream_tries: int = 3
    proxy_next_upstream_timeout: int = 0
    proxy_body_size: int = 1024 * 1024
    hsts: bool = True
    hsts_max_age: int = 31_536_000
    hsts_include_subdomains: bool = True
    hsts_preload: bool = False
    hide_headers: tuple[str, ...] = ()
    proxy_set_headers: tuple[str, str] | None = None
    add_headers: tuple[str, str] | None = None
    ssl_redirect: bool = True
    force_ssl_redirect: bool = False
    http_redirect_code: int = 308
    limit_req_status_code: int = 503
    limit_conn_status_code: int = 503
    enable_modsecurity: bool = False
    enable_owasp_modsecurity_crs: bool = False
    use_forwarded_headers: bool = False
    disable_access_log: bool = False
    compute_full_forwarded_for: bool = False
    forwarded_for_header: str = "X-Forwarded-For"
    proxy_real_ip_cidr: tuple[str, ...] = ("0.0.0.0/0",)
    upstream_keepalive_connections: int = 320
    upstream_keepalive_timeout: int = 60
    upstream_keepalive_requests: int = 10_000

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(attempts=self.proxy_next_upstream_tries if self.proxy_next_upstream else 1,
                           on=self.proxy_next_upstream, status_codes=self.proxy_next_upstream_statuses,
                           timeout_ms=self.proxy_next_upstream_timeout * 1000 or None)


def _worker_processes(value: str) -> int | None:
    return None if value == "auto" else parse_int(value, minimum=1)


def _header_name(value: str) -> str:
    if not is_token(value):
        raise SyntaxProblem("must be a valid HTTP header name")
    return value


def _status(value: str) -> int:
    return parse_int(value, minimum=400, maximum=599)


_KEYS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "allow-snippet-annotations": ("allow_snippet_annotations", parse_bool),
    "strict-validate-path-type": ("strict_validate_path_type", parse_bool),
    "max-worker-connections": ("max_worker_connections", lambda v: parse_int(v, minimum=1)),
    "worker-processes": ("worker_processes", _worker_processes),
    "proxy-connect-timeout": ("proxy_connect_timeout", parse_seconds),
    "proxy-send-timeout": ("proxy_send_timeout", parse_seconds),
    "proxy-read-timeout": ("proxy_read_timeout", parse_seconds),
    "proxy-next-upstream-tries": ("proxy_next_upstream_tries", parse_int),
    "proxy-next-upstream-timeout": ("proxy_next_upstream_timeout", lambda v: parse_seconds(v, minimum=0)),
    "proxy-body-size": ("proxy_body_size", parse_size),
    "hsts": ("hsts", parse_bool),
    "hsts-max-age": ("hsts_max_age", parse_int),
    "hsts-include-subdomains": ("hsts_include_subdomains", parse_bool),
    "hsts-preload": ("hsts_preload", parse_bool),
    "hide-headers": ("hide_headers", parse_header_names),
    "proxy-set-headers": ("proxy_set_headers", parse_reference),
    "add-headers": ("add_headers", parse_reference),
    "ssl-redirect": ("ssl_redirect", parse_bool),
    "force-ssl-redirect": ("force_ssl_redirect", parse_bool),
    "http-redirect-code": ("http_redirect_code", lambda v: int(parse_options(v, REDIRECT_CODES))),
    "limit-req-status-code": ("limit_req_status_code", _status),
    "limit-conn-status-code": ("limit_conn_status_code", _status),
    "enable-modsecurity": ("enable_modsecurity", parse_bool),
    "enable-owasp-modsecurity-crs": ("enable_owasp_modsecurity_crs", parse_bool),
    "use-forwarded-headers": ("use_forwarded_headers", parse_bool),
    "compute-full-forwarded-for": ("compute_full_forwarded_for", parse_bool),
    "disable-access-log": ("disable_access_log", parse_bool),
    "forwarded-for-header": ("forwarded_for_header", _header_name),
    "proxy-real-ip-cidr": ("proxy_real_ip_cidr", parse_cidrs),
    "upstream-keepalive-connections": ("upstream_keepalive_connections", parse_int),
    "upstream-keepalive-timeout": ("upstream_keepalive_timeout", lambda v: parse_seconds(v, minimum=0)),
    "upstream-keepalive-requests": ("upstream_keepalive_requests", parse_int),
}


@dataclass(frozen=True)
class ParsedSettings:
    settings: ControllerSettings
    errors: tuple[FieldError, ...]
    warnings: tuple[str, ...]


def parse_settings(data: Mapping[str, Any] | None, base: ControllerSettings | None = None) -> ParsedSettings:
    """The controller ConfigMap's ``data`` applied over ``base`` (flags). Invalid keys keep the default and are
    reported with field paths ``data[<key>]``; unknown keys are warnings (ingress-nginx has many netplane does
    not implement)."""
    changes: dict[str, Any] = {}
    errors: list[FieldError] = []
    warnings: list[str] = []
    for key, raw in sorted((data or {}).items()):
        field = f"data[{key}]"
        if not isinstance(raw, str):
            errors.append(invalid(field, raw, "must be a string"))
            continue
        value = raw.strip()
        try:
            if key == "proxy-next-upstream":
                changes["proxy_next_upstream"], changes["proxy_next_upstream_statuses"] = parse_next_upstream(value)
            elif key in _KEYS:
                name, parse = _KEYS[key]
                changes[name] = parse(value)
            else:
                warnings.append(f"{field}: ConfigMap key {key!r} is not supported by netplane and has no effect")
        except SyntaxProblem as problem:
            errors.append(invalid(field, raw, str(problem)))
    settings = dataclasses.replace(base or ControllerSettings(), **changes)
    return ParsedSettings(settings, tuple(errors), tuple(warnings))
