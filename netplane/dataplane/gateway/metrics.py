"""The engine's request metrics as Prometheus text, under ingress-nginx's names and labels (pure, except
`process_memory`, which reads /proc).

The engine answers `GET /v1/metrics` with its shared dict `np_metrics` as "<key>\\t<value>" lines (see
lua/metrics.lua). A request cell's key is "<namespace>\\t<ingress>\\t<service>\\t<path>\\t<canary>\\t<route id>\\t
<host>\\t<method>\\t<status>\\t<field>", the route id possibly holding tabs itself; a field is "requests" or
"<histogram>:<upper bound>" (a per-bucket count, not cumulative) or "<histogram>:sum". Worker entries are
"lua_memory_bytes\\t<pid>"; the first line is "generation\\t<g>".

Dashboards and alerts written for ingress-nginx read these series the same way: `nginx_ingress_controller_requests`
and the request/response duration and size histograms carry its labels (status, method, path, namespace,
ingress, service, canary, host) and default buckets. Routes that are not from an Ingress have empty
namespace/ingress labels there; `netplane_gateway_requests_total` counts by route id for every route.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

_CELL_PARTS = 10  # five labels, the route id (at least one part), host, method, status, field
# ingress-nginx's default buckets (as lua/metrics.lua counts them); every series shows all of them, so a bucket
# first reached later does not start a new series.
TIME_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SIZE_BUCKETS = tuple(float(b) for b in range(10, 101, 10))
HISTOGRAMS = (
    ("request_duration_seconds", TIME_BUCKETS,
     "The time from the first byte of the request until the log entry, in seconds"),
    ("response_duration_seconds", TIME_BUCKETS,
     "The time spent on receiving the response from the upstream, in seconds"),
    ("request_size", SIZE_BUCKETS, "The request length (request line, headers and body), in bytes"),
    ("response_size", SIZE_BUCKETS, "The response length (status line, headers and body), in bytes"),
)
PREFIX = "nginx_ingress_controller_"


@dataclass(frozen=True, order=True)
class RouteLabels:
    namespace: str
    ingress: str
    service: str
    path: str
    route: str
    # The canary that took the requests (ingress-nginx's alternative upstream name), "" for the route's own.
    canary: str = ""


@dataclass(frozen=True, order=True)
class CellKey:
    route: RouteLabels
    host: str
    method: str
    status: str


@dataclass
class Cell:
    requests: float = 0.0
    # histogram → upper bound → count in that bucket (not cumulative); sums apart.
    buckets: dict[str, dict[float, float]] = field(default_factory=dict)
    sums: dict[str, float] = field(default_factory=dict)


@dataclass
class EngineMetrics:
    """What one `GET /v1/metrics` answered, plus what the engine's owner knows."""

    cells: dict[CellKey, Cell] = field(default_factory=dict)
    lua_memory: dict[int, float] = field(default_factory=dict)
    generation: int = 0
    reloads: int = 0
    # nginx processes' resident and virtual memory (bytes) and their count, from /proc.
    resident_bytes: int = 0
    virtual_bytes: int = 0
    processes: int = 0


def _bound(text: str) -> float:
    return math.inf if text == "+Inf" else float(text)


def parse_dump(text: str) -> EngineMetrics:
    """The lines of `GET /v1/metrics`; lines it does not know are skipped (a newer engine may add some)."""
    out = EngineMetrics()
    for line in text.splitlines():
        parts = line.split("\t")
        try:
            value = float(parts[-1])
        except ValueError:
            continue
        if parts[0] == "generation" and len(parts) == 2:
            out.generation = int(value)
            continue
        if parts[0] == "lua_memory_bytes" and len(parts) == 3 and parts[1].isdigit():
            out.lua_memory[int(parts[1])] = value
            continue
        if len(parts) < _CELL_PARTS + 1:
            continue
        namespace, ingress, service, path, canary = parts[:5]
        route = RouteLabels(namespace, ingress, service, path, "\t".join(parts[5:-5]), canary)
        key = CellKey(route, parts[-5], parts[-4], parts[-3])
        cell = out.cells.setdefault(key, Cell())
        name, _, bound = parts[-2].partition(":")
        if name == "requests" and not bound:
            cell.requests += value
        elif bound == "sum":
            cell.sums[name] = cell.sums.get(name, 0.0) + value
        elif bound:
            try:
                upper = _bound(bound)
            except ValueError:
                continue
            per = cell.buckets.setdefault(name, {})
            per[upper] = per.get(upper, 0.0) + value
    return out


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    text = ",".join(f'{name}="{_escape(value)}"' for name, value in pairs)
    return "{" + text + "}" if text else ""


def _request_labels(key: CellKey) -> tuple[tuple[str, str], ...]:
    r = key.route
    return (("canary", r.canary), ("host", key.host), ("ingress", r.ingress), ("method", key.method),
            ("namespace", r.namespace), ("path", r.path), ("service", r.service), ("status", key.status))


def _header(lines: list[str], name: str, kind: str, help_text: str) -> None:
    lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]


def render(metrics: EngineMetrics, const_labels: Mapping[str, str] | None = None) -> str:
    """Prometheus text (format 0.0.4) of `metrics`; `const_labels` go on every series (ingress-nginx puts
    controller_class, controller_namespace and controller_pod there)."""
    const = tuple(sorted((const_labels or {}).items()))
    lines: list[str] = []

    # Cells that differ only in the route id share ingress-nginx's labels: their series are sums.
    by_labels: dict[tuple[tuple[str, str], ...], list[Cell]] = {}
    by_route: dict[tuple[str, str], float] = {}
    for key in sorted(metrics.cells):
        cell = metrics.cells[key]
        by_labels.setdefault(const + _request_labels(key), []).append(cell)
        route_status = (key.route.route, key.status)
        by_route[route_status] = by_route.get(route_status, 0.0) + cell.requests

    name = PREFIX + "requests"
    _header(lines, name, "counter", "The total number of client requests")
    for labels, cells in by_labels.items():
        lines.append(f"{name}{_labels(labels)} {_number(sum(c.requests for c in cells))}")

    for hist, standard, help_text in HISTOGRAMS:
        name = PREFIX + hist
        _header(lines, name, "histogram", help_text)
        for labels, cells in by_labels.items():
            counts: dict[float, float] = {}
            for c in cells:
                for upper, n in c.buckets.get(hist, {}).items():
                    counts[upper] = counts.get(upper, 0.0) + n
            if not counts:
                continue  # no upstream answered these requests (local 404s, redirects)
            bounds = sorted({*standard, *counts, math.inf})
            running = 0.0
            for upper in bounds:
                running += counts.get(upper, 0.0)
                lines.append(f"{name}_bucket{_labels((*labels, ('le', _number(upper))))} {_number(running)}")
            lines.append(f"{name}_sum{_labels(labels)} {_number(sum(c.sums.get(hist, 0.0) for c in cells))}")
            lines.append(f"{name}_count{_labels(labels)} {_number(running)}")

    name = "netplane_gateway_requests_total"
    _header(lines, name, "counter", "Requests by the route that took them (empty: none) and status")
    for (route, status), n in sorted(by_route.items()):
        lines.append(f"{name}{_labels((*const, ('route', route), ('status', status)))} {_number(n)}")

    name = "netplane_gateway_config_generation"
    _header(lines, name, "gauge", "The engine's configuration generation (moves with every document written)")
    lines.append(f"{name}{_labels(const)} {metrics.generation}")
    name = "netplane_gateway_reloads_total"
    _header(lines, name, "counter", "nginx reloads (listener changes only; routes and endpoints change live)")
    lines.append(f"{name}{_labels(const)} {metrics.reloads}")
    name = "netplane_gateway_worker_lua_memory_bytes"
    _header(lines, name, "gauge", "Lua heap of each nginx worker")
    for pid, size in sorted(metrics.lua_memory.items()):
        lines.append(f"{name}{_labels((*const, ('pid', str(pid))))} {_number(size)}")
    for suffix, kind, help_text, value in (
            ("num_procs", "gauge", "number of nginx processes", metrics.processes),
            ("resident_memory_bytes", "gauge", "resident memory of the nginx processes", metrics.resident_bytes),
            ("virtual_memory_bytes", "gauge", "virtual memory of the nginx processes", metrics.virtual_bytes)):
        name = PREFIX + "nginx_process_" + suffix
        _header(lines, name, kind, help_text)
        lines.append(f"{name}{_labels(const)} {value}")
    return "\n".join(lines) + "\n"


def process_memory(pids: Iterable[int], proc: Path = Path("/proc")) -> tuple[int, int, int]:
    """(resident bytes, virtual bytes, processes) summed over `pids`; processes gone meanwhile are skipped."""
    page = os.sysconf("SC_PAGE_SIZE")
    rss = vsz = count = 0
    for pid in pids:
        try:
            fields = (proc / str(pid) / "statm").read_text().split()
        except OSError:
            continue
        vsz += int(fields[0]) * page
        rss += int(fields[1]) * page
        count += 1
    return rss, vsz, count
