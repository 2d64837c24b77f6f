"""The static nginx.conf of a gateway engine instance, and the checks a configuration passes before use.

The rendered file depends only on the listener set and the instance settings, and holds nothing but
integers, canonical IP addresses and netplane's own fixed names: hostnames, paths, headers, endpoints
and certificates never become configuration text. They reach Lua as JSON data over the control socket
(see docs/design/gateway-engine.md), so no user input can inject a directive, and no change of them
needs a reload. Only a change of the rendered text (new listeners, other settings) does.
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from netplane.dataplane.gateway import observability
from netplane.dataplane.gateway import upstreams as up
from netplane.dataplane.gateway.observability import AccessLog
from netplane.dataplane.gateway.upstreams import NO_UPSTREAMS, Upstreams

LUA_SOURCE = Path(__file__).parent / "lua"
# The Lua modules are installed as package "netplane" under <prefix>/lua.
LUA_PACKAGE = "netplane"
MODULES_DIR = Path("/usr/lib/nginx/modules")
# ndk first: the lua module needs its symbols.
MODULES = ("ndk_http_module.so", "ngx_http_lua_module.so")
LUA_MODULE = MODULES_DIR / "ngx_http_lua_module.so"
MODSECURITY_MODULE = MODULES_DIR / "ngx_http_modsecurity_module.so"
# The OWASP Core Rule Set as Debian's modsecurity-crs installs it, in the order it must load.
# libmodsecurity has no IncludeOptional, so the files are named one by one (a glob for the rules).
CRS_FILES = (
    Path("/etc/modsecurity/crs/crs-setup.conf"),
    Path("/etc/modsecurity/crs/REQUEST-900-EXCLUSION-RULES-BEFORE-CRS.conf"),
    Path("/usr/share/modsecurity-crs/rules/*.conf"),
    Path("/etc/modsecurity/crs/RESPONSE-999-EXCLUSION-RULES-AFTER-CRS.conf"),
)
WAF_DIR = "conf/waf"
# The rule ids the OWASP CRS uses (netplane's own rules are numbered outside them).
CRS_RULE_IDS = "900000-999999"
WAF_AUDIT_LOG = "logs/waf_audit.log"
WAF_TMP_DIR = "tmp/waf"

CONF_FILE = "conf/nginx.conf"
CANDIDATE_FILE = "conf/nginx.conf.candidate"
GOOD_FILE = "conf/nginx.conf.good"
PID_FILE = "run/nginx.pid"
ERROR_LOG = "logs/error.log"
CONTROL_DIR = "control"
CONTROL_SOCKET = "control/control.sock"
# nginx resolves certificate paths against the directory of nginx.conf, the rest against the prefix.
FALLBACK_CERT = "fallback.crt"
FALLBACK_KEY = "fallback.key"
TEMP_DIRS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")

# The prefix is operator configuration, but it is written into the file (the control socket's path
# must be absolute), so it is held to characters that cannot end a token.
_SAFE_PREFIX = re.compile(r"/[A-Za-z0-9._/-]*")
_SUN_PATH_MAX = 107

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class ConfigError(ValueError):
    """Settings or listeners that cannot be rendered."""


class CheckError(RuntimeError):
    """A candidate configuration (nginx.conf or Lua) failed its check; `output` says why."""

    def __init__(self, what: str, output: str):
        super().__init__(f"{what} check failed: {output.strip()}")
        self.output = output


@dataclass(frozen=True, order=True)
class Listener:
    """One listening socket of the engine: a port, optionally bound to one address, with or without TLS."""

    port: int
    address: IPAddress | None = None
    tls: bool = False
    http2: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.port, int) or isinstance(self.port, bool) or not 1 <= self.port <= 65535:
            raise ConfigError(f"listener port must be an integer in 1..65535, not {self.port!r}")
        if self.address is not None and not isinstance(self.address, ipaddress.IPv4Address | ipaddress.IPv6Address):
            raise ConfigError(f"listener address must be an IP address object, not {self.address!r}")
        if self.http2 and not self.tls:
            raise ConfigError("http2 is offered on TLS listeners only")

    def listen_target(self) -> str:
        if self.address is None:
            return str(self.port)
        if self.address.version == 6:
            return f"[{self.address.compressed}]:{self.port}"
        return f"{self.address.compressed}:{self.port}"


@dataclass(frozen=True)
class InstanceSettings:
    """What an engine instance is, apart from its listeners."""

    prefix: Path
    worker_processes: int = 1
    worker_connections: int = 4096
    config_memory_mb: int = 128
    upstream_keepalive: int = 64
    regex_cache_entries: int = 16384
    control_body_mb: int = 64
    # X-Forwarded-For: the client's own list with the peer appended (ingress-nginx's compute-full-forwarded-for),
    # or, by default, only the peer, so a client cannot pass a forged address to the backends.
    forwarded_for_append: bool = False
    limits_memory_mb: int = 16
    access_log: AccessLog = AccessLog.FILE
    # Request metrics (the log phase); off, GET /v1/metrics still answers the generation and worker memory.
    metrics: bool = True
    metrics_memory_mb: int = 32

    def __post_init__(self) -> None:
        text = str(self.prefix)
        if not self.prefix.is_absolute() or not _SAFE_PREFIX.fullmatch(text):
            raise ConfigError(f"prefix must be an absolute path of [A-Za-z0-9._/-]: {text!r}")
        if len(text) + 1 + max(len(CONTROL_SOCKET), up.LONGEST_INTERNAL_SOCKET) > _SUN_PATH_MAX:
            raise ConfigError(f"prefix too long for a unix socket path: {text!r}")
        for name in ("worker_processes", "worker_connections", "config_memory_mb", "upstream_keepalive",
                     "regex_cache_entries", "control_body_mb", "limits_memory_mb", "metrics_memory_mb"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, not {value!r}")
        if not isinstance(self.access_log, AccessLog):
            raise ConfigError(f"access_log must be an AccessLog, not {self.access_log!r}")
        if not isinstance(self.metrics, bool):
            raise ConfigError(f"metrics must be true or false, not {self.metrics!r}")

    @property
    def control_socket(self) -> Path:
        return self.prefix / CONTROL_SOCKET


@dataclass(frozen=True, order=True)
class WafProfile:
    """One ModSecurity configuration routes may use: blocking or detection only, with or without the OWASP
    Core Rule Set, inspecting request bodies or not. Each profile is a named location in every listener's
    server (`modsecurity on` with netplane's own rules file for it); a route with a `waf` filter continues
    there by `ngx.exec`. nginx.conf holds the locations (and loads the module) only for the profiles the
    engine is given, so routes without WAF never pass through ModSecurity."""

    blocking: bool = False
    owasp_crs: bool = False
    request_body: bool = True

    @property
    def name(self) -> str:
        """Also computed by filters.lua from a route's waf filter: keep the two in step."""
        return ("block" if self.blocking else "detect") + ("-crs" if self.owasp_crs else "") + (
            "" if self.request_body else "-nobody")

    @property
    def location(self) -> str:
        return "@np_waf_" + self.name.replace("-", "_")

    def rules_path(self, prefix: Path) -> Path:
        return prefix / WAF_DIR / f"{self.name}.conf"


def waf_base_path(prefix: Path, owasp_crs: bool) -> Path:
    """The shared rules file; its name says whether it holds the CRS, so a file never changes its content and a
    last good nginx.conf always finds the rules it was checked with."""
    return prefix / WAF_DIR / ("base-crs.conf" if owasp_crs else "base.conf")


def render_waf_base(settings: InstanceSettings, owasp_crs: bool) -> str:
    """The rules every WAF location shares (pure): netplane's fixed text, paths under the prefix, and the OWASP CRS
    when some profile uses it. nginx.conf loads it once at the http level, so the CRS is parsed once and its rules
    are shared by every location (per-location files cost a parse and ≈ 30 MB each)."""
    lines = [
        "# netplane WAF rules shared by every profile, rendered by netplane.dataplane.gateway.config.",
        "SecRuleEngine DetectionOnly",
        "SecRequestBodyAccess On",
        # Bodies are parsed by their type, so rules see JSON and XML fields as arguments.
        'SecRule REQUEST_HEADERS:Content-Type "^application/json" '
        '"id:9990001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"',
        'SecRule REQUEST_HEADERS:Content-Type "^(?:application(?:/soap\\+|/)|text/)xml" '
        '"id:9990002,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML"',
        "SecRequestBodyLimit 13107200",
        "SecRequestBodyNoFilesLimit 131072",
        "SecRequestBodyLimitAction Reject",
        'SecRule REQBODY_ERROR "!@eq 0" "id:9990003,phase:2,t:none,log,deny,status:400,'
        "msg:'request body could not be parsed'\"",
        "SecResponseBodyAccess Off",
        "SecPcreMatchLimit 1000",
        "SecPcreMatchLimitRecursion 1000",
        f"SecTmpDir {settings.prefix / WAF_TMP_DIR}",
        f"SecDataDir {settings.prefix / WAF_TMP_DIR}",
        "SecAuditEngine RelevantOnly",
        'SecAuditLogRelevantStatus "^(?:5|4(?!04))"',
        "SecAuditLogParts ABIJDEFHZ",
        "SecAuditLogType Serial",
        f"SecAuditLog {settings.prefix / WAF_AUDIT_LOG}",
    ]
    if owasp_crs:
        lines += [f"Include {path}" for path in CRS_FILES]
    return "\n".join(lines) + "\n"


def render_waf_rules(profile: WafProfile) -> str:
    """What the location of `profile` adds to the shared rules (pure): the engine's mode and body access, and for
    profiles without the CRS the removal of the CRS's rule ids (the shared file holds it when another needs it)."""
    lines = [
        f"# netplane WAF profile {profile.name}, rendered by netplane.dataplane.gateway.config.",
        f"SecRuleEngine {'On' if profile.blocking else 'DetectionOnly'}",
        f"SecRequestBodyAccess {'On' if profile.request_body else 'Off'}",
    ]
    if not profile.owasp_crs:
        lines.append(f"SecRuleRemoveById {CRS_RULE_IDS}")
    return "\n".join(lines) + "\n"


def canonical_listeners(listeners: Iterable[Listener]) -> tuple[Listener, ...]:
    """The listener set in a fixed order; refuses two listeners on one socket or one port both with and
    without TLS (a port speaks one protocol)."""
    ordered = tuple(sorted(set(listeners), key=lambda lst: (lst.port, str(lst.address or ""), lst.tls, lst.http2)))
    sockets: set[tuple[int, IPAddress | None]] = set()
    tls_by_port: dict[int, bool] = {}
    for lst in ordered:
        if (lst.port, lst.address) in sockets:
            raise ConfigError(f"two listeners on {lst.listen_target()}")
        sockets.add((lst.port, lst.address))
        if tls_by_port.setdefault(lst.port, lst.tls) != lst.tls:
            raise ConfigError(f"port {lst.port} is listed both with and without TLS")
    wildcard_ports = {lst.port for lst in ordered if lst.address is None}
    for lst in ordered:
        if lst.address is not None and lst.port in wildcard_ports:
            raise ConfigError(f"port {lst.port} is bound to all addresses and to {lst.address}")
    return ordered


def listeners_changed(old: Iterable[Listener], new: Iterable[Listener]) -> bool:
    """Whether going from `old` to `new` needs a reload (nginx cannot open or close sockets live)."""
    return canonical_listeners(old) != canonical_listeners(new)


def check_upstreams(listeners: tuple[Listener, ...], upstreams: Upstreams) -> None:
    """Refuses stream ports that collide with the HTTP listeners: a passthrough port must be free or a TLS
    listener (which then takes the names not passed through), a TCP listener's port must be free."""
    by_port = {lst.port: lst for lst in listeners}
    for port in upstreams.passthrough_ports():
        if port in by_port and not by_port[port].tls:
            raise ConfigError(f"port {port}: TLS passthrough on a listener without TLS")
    for port in upstreams.tcp_ports():
        if port in by_port or port in upstreams.passthrough_ports():
            raise ConfigError(f"port {port}: a TCP listener on a port already in use")


def _limits_http_lines(settings: InstanceSettings) -> list[str]:
    # Counters of rate and connection limits (lua/limits.lua), least recently used evicted when full.
    return [f"    lua_shared_dict np_limits {settings.limits_memory_mb}m;"]


def _conn_location(settings: InstanceSettings) -> list[str]:
    # Routes with a connection limit: the log phase gives the request's slot back.
    return [
        "        location @np_conn {",
        "            proxy_pass http://np_backend;",
        "            header_filter_by_lua_block { np_router.header_filter() }",
        observability.slot_log_line(settings.metrics),
        "        }",
    ]


def _waf_module_lines(waf: tuple[WafProfile, ...]) -> list[str]:
    return [f"load_module {MODSECURITY_MODULE};"] if waf else []


def _waf_http_lines(settings: InstanceSettings, waf: tuple[WafProfile, ...]) -> list[str]:
    # Parsed once, merged into every location (where `modsecurity` stays off except in the profiles' locations).
    if not waf:
        return []
    return [f"    modsecurity_rules_file {waf_base_path(settings.prefix, any(p.owasp_crs for p in waf))};"]


def _waf_init_lines(waf: tuple[WafProfile, ...]) -> list[str]:
    # Tells the vhost compiler which profiles have locations, so a route naming another is refused at push.
    if not waf:
        return []
    names = ", ".join(f'["{p.name}"] = true' for p in waf)
    return [f'        require("{LUA_PACKAGE}.filters").waf_profiles = {{ {names} }}']


def _waf_locations(settings: InstanceSettings, waf: tuple[WafProfile, ...]) -> list[str]:
    lines = []
    for profile in waf:
        lines += [
            f"        location {profile.location} {{",
            "            modsecurity on;",
            f"            modsecurity_rules_file {profile.rules_path(settings.prefix)};",
            "            modsecurity_transaction_id $np_waf_txid;",
            "            proxy_pass http://np_backend;",
            "            header_filter_by_lua_block { np_router.header_filter() }",
            observability.slot_log_line(settings.metrics),
            "        }",
        ]
    return lines


def _waf_variable_lines(waf: tuple[WafProfile, ...]) -> list[str]:
    # `set` declares $np_waf_txid for the whole configuration (so the access phase may assign it) but runs
    # only here, on the control server: no data request pays for it.
    return ['            set $np_waf_txid "";'] if waf else []


def canonical_waf(waf: Iterable[WafProfile]) -> tuple[WafProfile, ...]:
    return tuple(sorted(set(waf)))


def _server_block(lst: Listener, settings: InstanceSettings, upstreams: Upstreams,
                  waf: tuple[WafProfile, ...]) -> list[str]:
    flags = (" ssl" if lst.tls else "") + (" http2" if lst.http2 else "")
    lines = ["    server {"]
    if lst.port in upstreams.passthrough_ports():
        lines += up.terminating_listen(str(settings.prefix), lst.port, flags)
    else:
        lines.append(f"        listen {lst.listen_target()}{flags};")
    if lst.tls:
        lines += [
            f"        ssl_certificate {FALLBACK_CERT};",
            f"        ssl_certificate_key {FALLBACK_KEY};",
            "        ssl_protocols TLSv1.2 TLSv1.3;",
            "        ssl_certificate_by_lua_block { np_certs.select() }",
        ]
    lines += observability.server_lines(settings.access_log, settings.metrics)
    lines += [
        "        location / {",
        f"            access_by_lua_block {{ np_router.access({lst.port}) }}",
        "            proxy_pass http://np_backend;",
        "        }",
        # Routes with retries or filters on the backend's response headers continue here.
        "        location @np_full {",
        "            proxy_pass http://np_backend;",
        "            header_filter_by_lua_block { np_router.header_filter() }",
        "        }",
        *up.named_locations(upstreams),
        *_conn_location(settings),
        *_waf_locations(settings, waf),
        "    }",
    ]
    return lines


def render_nginx_conf(settings: InstanceSettings, listeners: Iterable[Listener],
                      upstreams: Upstreams = NO_UPSTREAMS, waf: Iterable[WafProfile] = ()) -> str:
    """nginx.conf for `settings`, `listeners`, the static upstream side and the WAF profiles routes may use
    (pure). Relative paths resolve against the prefix."""
    ordered = canonical_listeners(listeners)
    check_upstreams(ordered, upstreams)
    profiles = canonical_waf(waf)
    modules = (*MODULES, up.STREAM_MODULE) if upstreams.uses_stream else MODULES
    lines = [
        "# Rendered by netplane.dataplane.gateway.config: numbers and netplane's own names only.",
        "# Routes, hosts, endpoints and certificates are data in shared memory, pushed over the control socket.",
        *(f"load_module {MODULES_DIR / m};" for m in modules),
        *_waf_module_lines(profiles),
        f"worker_processes {settings.worker_processes};",
        f"pid {PID_FILE};",
        f"error_log {ERROR_LOG} warn;",
        "pcre_jit on;",
        f"events {{ worker_connections {settings.worker_connections}; }}",
        "http {",
        "    access_log off;",
        "    server_tokens off;",
        "    default_type application/octet-stream;",
        *(f"    {kind}_temp_path tmp/{kind};" for kind in TEMP_DIRS),
        '    lua_package_path "$prefix/lua/?.lua;;";',
        f"    lua_shared_dict np_config {settings.config_memory_mb}m;",
        *_limits_http_lines(settings),
        *_waf_http_lines(settings, profiles),
        f"    lua_regex_cache_max_entries {settings.regex_cache_entries};",
        "    init_by_lua_block {",
        f'        np_router = require "{LUA_PACKAGE}.router"',
        f'        np_balancer = require "{LUA_PACKAGE}.balancer"',
        f'        np_certs = require "{LUA_PACKAGE}.certs"',
        f'        np_control = require "{LUA_PACKAGE}.control"',
        f'        np_metrics = require "{LUA_PACKAGE}.metrics"',
        f"        {up.lua_init(upstreams)}",
        *_waf_init_lines(profiles),
        "    }",
        *observability.http_lines(settings.access_log, settings.metrics_memory_mb),
        "    proxy_http_version 1.1;",
        '    proxy_set_header Connection "";',
        "    proxy_set_header Host $http_host;",
        "    proxy_set_header X-Forwarded-For "
        f"{'$proxy_add_x_forwarded_for' if settings.forwarded_for_append else '$remote_addr'};",
        "    proxy_set_header X-Real-IP $remote_addr;",
        "    proxy_set_header X-Forwarded-Proto $scheme;",
        "    proxy_connect_timeout 5s;",
        "    proxy_next_upstream error timeout;",
        "    upstream np_backend {",
        "        server 0.0.0.1;",
        "        balancer_by_lua_block { np_balancer.balance() }",
        f"        keepalive {settings.upstream_keepalive};",
        "        keepalive_requests 10000;",
        "        keepalive_timeout 60s;",
        "    }",
        *up.balancer_upstreams(upstreams, settings.upstream_keepalive),
    ]
    for lst in ordered:
        lines += _server_block(lst, settings, upstreams, profiles)
    lines += [
        "    server {",
        f"        listen unix:{settings.control_socket};",
        f"        client_max_body_size {settings.control_body_mb}m;",
        f"        client_body_buffer_size {settings.control_body_mb}m;",
        "        location / {",
        *observability.control_lines(),
        *_waf_variable_lines(profiles),
        "            content_by_lua_block { np_control.handle() }",
        "        }",
        "    }",
        "}",
        *up.stream_block(str(settings.prefix), upstreams, {lst.port: lst.address for lst in ordered if lst.tls}),
    ]
    return "\n".join(lines) + "\n"


def check_lua(lua_dir: Path, luajit: str = "luajit") -> None:
    """Compiles every Lua file under `lua_dir` with LuaJIT (nginx -t does not compile Lua)."""
    binary = shutil.which(luajit)
    if binary is None:
        raise CheckError("lua", f"{luajit} not found")
    files = sorted(lua_dir.rglob("*.lua"))
    if not files:
        raise CheckError("lua", f"no Lua files in {lua_dir}")
    for path in files:
        result = subprocess.run([binary, "-b", str(path), "/dev/null"], capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            raise CheckError("lua", result.stderr or result.stdout)


def check_nginx(prefix: Path, conf: Path, nginx: str = "nginx") -> None:
    """`nginx -t` on `conf` with the instance's prefix."""
    result = subprocess.run([nginx, "-t", "-q", "-p", f"{prefix}/", "-c", str(conf), "-e", str(prefix / ERROR_LOG)],
                            capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise CheckError("nginx", result.stderr or result.stdout)


def check(prefix: Path, conf: Path, nginx: str = "nginx", luajit: str = "luajit") -> None:
    """Both checks a configuration passes before nginx starts or reloads with it."""
    check_lua(prefix / "lua", luajit)
    check_nginx(prefix, conf, nginx)
