"""The engine's access log and request metrics as nginx.conf text (pure): fixed names and numbers only.

The access phase sets one variable per routed request, `$np_route` (the route's labels and id, joined by tabs;
see lua/metrics.lua); a `map` splits it in C when a log line is written, so the log costs the request no Lua.
The log phase (`np_metrics.log()`) counts the request into per-worker tables that a timer adds to the shared
dict `np_metrics` once a second.
"""

from __future__ import annotations

from enum import StrEnum

# The variable the router sets; declared by a `set` in the control server, which never reaches the listeners'
# requests, so a request that found no route reads it as empty.
ROUTE_VARIABLE = "np_route"
METRICS_DICT = "np_metrics"
ACCESS_LOG_FILE = "logs/access.log"
ACCESS_LOG_FORMAT = "np_json"
# Linux's atomic pipe write size.
PIPE_BUF = 4096


class AccessLog(StrEnum):
    """Where the access log goes.

    FILE: `logs/access.log` under the prefix, written in 64 KiB batches (at most a second late). Not rotated yet.
    STDOUT: nginx's standard output, so `kubectl logs` of the pod running the engine shows it. Batches of at most
        PIPE_BUF (4 KiB, about ten lines): a write that size to a pipe is atomic, so two workers never interleave
        within a line, and a request rarely pays a system call (ingress-nginx writes once per line).
    OFF: none.
    """

    FILE = "file"
    STDOUT = "stdout"
    OFF = "off"


# (field, nginx variable, quoted): the JSON object of one access-log line, in order. Route labels come
# from the map below; numbers nginx always has are unquoted, the rest are strings.
LOG_FIELDS: tuple[tuple[str, str, bool], ...] = (
    ("time", "$time_iso8601", True),
    ("remote_addr", "$remote_addr", True),
    ("method", "$request_method", True),
    ("host", "$host", True),
    # As the client sent it: rewrites change $uri, not this.
    ("uri", "$request_uri", True),
    ("protocol", "$server_protocol", True),
    ("status", "$status", False),
    ("bytes_sent", "$bytes_sent", False),
    ("request_length", "$request_length", False),
    ("request_time", "$request_time", False),
    ("upstream_addr", "$upstream_addr", True),
    ("upstream_status", "$upstream_status", True),
    ("upstream_response_time", "$upstream_response_time", True),
    ("route", "$np_route_id", True),
    ("namespace", "$np_namespace", True),
    ("ingress", "$np_ingress", True),
    ("service", "$np_service", True),
    ("canary", "$np_canary", True),
    ("user_agent", "$http_user_agent", True),
)


def _log_format() -> str:
    fields = ",".join(f'"{name}":"{var}"' if quoted else f'"{name}":{var}' for name, var, quoted in LOG_FIELDS)
    return "{" + fields + "}"


def http_lines(access_log: AccessLog, metrics_memory_mb: int) -> list[str]:
    """Lines of the http block: the metrics dict, the route-key split and the log format."""
    lines = [
        f"    lua_shared_dict {METRICS_DICT} {metrics_memory_mb}m;",
        "    init_worker_by_lua_block { np_metrics.init_worker() }",
    ]
    if access_log != AccessLog.OFF:
        # $np_route is "<namespace>\t<ingress>\t<service>\t<path>\t<canary>\t<id>"; the id may hold anything.
        lines += [
            f"    map ${ROUTE_VARIABLE} $np_route_id {{",
            '        "~(?s)^(?<np_namespace>[^\\t]*)\\t(?<np_ingress>[^\\t]*)\\t(?<np_service>[^\\t]*)\\t[^\\t]*\\t'
            '(?<np_canary>[^\\t]*)\\t(?<np_id>.*)$" $np_id;',
            '        default "";',
            "    }",
            f"    log_format {ACCESS_LOG_FORMAT} escape=json '{_log_format()}';",
        ]
    return lines


def server_lines(access_log: AccessLog, metrics: bool) -> list[str]:
    """Lines of each listener's server block (not the control server's: its requests are not traffic)."""
    # Requests that found no route read $np_route unset; that is expected, not worth a warning.
    lines = ["        uninitialized_variable_warn off;"]
    if metrics:
        lines.append("        log_by_lua_block { np_metrics.log() }")
    if access_log == AccessLog.FILE:
        lines.append(f"        access_log {ACCESS_LOG_FILE} {ACCESS_LOG_FORMAT} buffer=64k flush=1s;")
    elif access_log == AccessLog.STDOUT:
        lines.append(f"        access_log /dev/stdout {ACCESS_LOG_FORMAT} buffer={PIPE_BUF} flush=1s;")
    return lines


def slot_log_line(metrics: bool) -> str:
    """The log phase of @np_conn and the WAF locations, which give a connection slot back: a location's own
    log_by_lua replaces the server's, so this one counts the request as well (once: nginx runs the log phase
    only in the location that finished the request)."""
    calls = "np_router.log() np_metrics.log()" if metrics else "np_router.log()"
    return f"            log_by_lua_block {{ {calls} }}"


def control_lines() -> list[str]:
    """Lines of the control server's location: the declaration of the route variable."""
    return [f'            set ${ROUTE_VARIABLE} "";']
