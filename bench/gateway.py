"""Gateway engine benchmarks: `python -m bench.gateway [--quick | --observability]`.

The spike that decides the engine's design (docs/design/gateway-engine.md). Against an nginx
`return 200` backend on loopback it measures:

(a)/(b) the throughput and p99 latency of the engine carrying 3,000 routes over 300 virtual hosts,
        against a hand-written minimal nginx reverse proxy (upstream keepalive) to the same backend;
        both run one worker pinned to the same core, wrk and the backend share the other core, runs
        alternate and the median of the paired ratios is reported, beside the CPU each side spent per
        request and, if valgrind is installed, the user-space instructions per request (ingress-nginx
        manages about 0.45x of plain nginx);
(c)     route propagation: with 100, 1,000 and 3,000 routes present, the time from the start of the
        write of one new route until the first 200 on it, with the nginx master and worker pids checked
        to be unchanged (no reload);
(d)     endpoint change to traffic shift: from the write of a backend's new endpoint until the first
        answer from it;
(e)     the resident memory of nginx (master + worker) with 10,000 routes, every virtual host compiled;
and, for scale, the time of the one kind of reload the engine still does (a new listener).

`--observability` measures only what the access log and the request metrics add (callgrind instructions per
request with neither, each alone, and both; bench/results/gateway-observability.json). The main run measures the
engine as configured by default: both on.

Traffic only goes to 127.0.0.0/8. The machine has two cores shared with other work, so absolute
numbers are noisy; the ratio measured in one run is what carries over.
"""

from __future__ import annotations

import argparse
import http.client
import ipaddress
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from netplane.dataplane.gateway import Engine, InstanceSettings, Listener
from netplane.dataplane.gateway.observability import AccessLog

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "gateway.json"
OBSERVABILITY_RESULTS = ROOT / "bench" / "results" / "gateway-observability.json"

BACKEND_A, BACKEND_B = "127.0.0.2", "127.0.0.3"
REFERENCE_ADDR, ENGINE_ADDR = "127.0.0.4", "127.0.0.5"
PROXY_CORE, LOAD_CORE = 1, 0

TARGETS = {
    "throughput_ratio": (">=", 0.85),
    "propagation_3000_p99_ms": ("<=", 100),
    "endpoint_shift_p99_ms": ("<=", 100),
    "rss_10000_routes_mb": ("<=", 300),
}


def free_port(addr: str) -> int:
    with socket.socket() as s:
        s.bind((addr, 0))
        return int(s.getsockname()[1])


@contextmanager
def plain_nginx(conf: str, core: int) -> Iterator[Path]:
    """An nginx (no Lua) from `conf` in a scratch prefix, pinned to `core`; stopped on exit."""
    with tempfile.TemporaryDirectory(prefix="np-bench-nginx-") as tmp:
        prefix = Path(tmp)
        os.chmod(prefix, 0o755)
        (prefix / "logs").mkdir()
        (prefix / "nginx.conf").write_text(conf)
        proc = subprocess.Popen(["taskset", "-c", str(core), "nginx", "-p", f"{prefix}/", "-c",
                                 str(prefix / "nginx.conf"), "-e", str(prefix / "logs/error.log"), "-g", "daemon off;"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.3)
            if proc.poll() is not None:
                raise RuntimeError("nginx did not start: " + (prefix / "logs/error.log").read_text())
            yield prefix
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def backend_conf(port: int) -> str:
    servers = "".join(f"server {{ listen {addr}:{port}; location / {{ return 200 \"{name}\\n\"; }} }}\n"
                      for addr, name in ((BACKEND_A, "a"), (BACKEND_B, "b")))
    return ("worker_processes 1; pid nginx.pid; error_log logs/error.log warn; events { worker_connections 4096; }\n"
            "http { access_log off; keepalive_requests 1000000; default_type text/plain;\n" + servers + "}\n")


def reference_conf(port: int, backend_port: int) -> str:
    """The hand-written minimal proxy: one upstream with keepalive, the headers a proxy must set."""
    return f"""worker_processes 1; pid nginx.pid; error_log logs/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    upstream backend {{ server {BACKEND_A}:{backend_port}; keepalive 64; keepalive_requests 10000; }}
    server {{
        listen {REFERENCE_ADDR}:{port};
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
}}
"""


def vhost_doc(i: int, port: int, routes: int, extra: int = 0) -> dict[str, Any]:
    """Virtual host i: `routes` routes of mixed kinds (prefix, exact, regex, header match), the last a prefix
    route to /svc<routes-1>; `extra` more routes to /new<k> after it."""
    out: list[dict[str, Any]] = []
    backend = {"backends": [{"name": f"b{i}"}]}
    for j in range(routes):
        if j % 10 == 2:
            match: dict[str, Any] = {"path": {"type": "exact", "value": f"/exact{j}"}}
        elif j % 10 == 5:
            match = {"path": {"type": "regex", "value": f"^/re{j}/[0-9]+$"}}
        elif j % 10 == 7:
            match = {"path": {"type": "prefix", "value": f"/svc{j}"}, "headers": [{"name": "X-Canary", "value": "1"}]}
        else:
            match = {"path": {"type": "prefix", "value": f"/svc{j}"}}
        out.append({"id": f"vh{i}/r{j}", "match": match, "backend": backend})
    for k in range(extra):
        out.append({"id": f"vh{i}/new{k}", "match": {"path": {"type": "prefix", "value": f"/new{k}"}},
                    "backend": backend})
    return {"ports": [port], "hostnames": [f"h{i}.bench.example"], "routes": out}


@contextmanager
def engine(tmp: Path, name: str, port: int, workers: int, **options: Any) -> Iterator[Engine]:
    eng = Engine(InstanceSettings(tmp / name, worker_processes=workers, **options),
                 [Listener(port, ipaddress.ip_address(ENGINE_ADDR))])
    eng.start()
    try:
        yield eng
    finally:
        eng.stop()


def load_routes(eng: Engine, port: int, backend_port: int, total: int, per_vhost: int = 10) -> int:
    vhosts = total // per_vhost
    for i in range(vhosts):
        eng.put_backend(f"b{i}", [{"address": BACKEND_A, "port": backend_port}])
        eng.put_vhost(f"vh{i}", vhost_doc(i, port, per_vhost))
    return vhosts


def nginx_pids(master: int) -> list[int]:
    """The master and its children."""
    children = [int(entry.name) for entry in os.scandir("/proc") if entry.name.isdigit()
                and _ppid(int(entry.name)) == master]
    return [master, *children]


def _ppid(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return -1


def pin(pids: list[int], core: int) -> None:
    for pid in pids:
        os.sched_setaffinity(pid, {core})


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def wrk(url: str, host: str, seconds: int, proxy_pids: list[int]) -> dict[str, float]:
    """One wrk run pinned to the load core (every answer must be 2xx): requests/s, p99 ms, and the CPU
    the proxy spent per request, which other work on the machine disturbs far less than requests/s."""
    cpu_before = cpu_seconds(proxy_pids)
    out = subprocess.run(["nice", "-n", "-5", "taskset", "-c", str(LOAD_CORE), "wrk", "-t1", "-c64", f"-d{seconds}s",
                          "--latency", "-H", f"Host: {host}", url], capture_output=True, text=True, check=True,
                         timeout=seconds + 30).stdout
    cpu = cpu_seconds(proxy_pids) - cpu_before
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError("wrk saw failures:\n" + out)
    lines = out.splitlines()
    rps = float(next(line.split()[1] for line in lines if line.startswith("Requests/sec:")))
    requests = int(next(line.split()[0] for line in lines if "requests in" in line))
    p99 = _ms(next(line.split()[1] for line in lines if line.strip().startswith("99%")))
    return {"rps": rps, "p99_ms": p99, "cpu_us_per_request": cpu / requests * 1e6}


def _ms(text: str) -> float:
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    return float(text)


def get(addr: str, port: int, host: str, path: str,
        conn: http.client.HTTPConnection | None = None) -> tuple[int, bytes]:
    c = conn or http.client.HTTPConnection(addr, port, timeout=5)
    try:
        c.request("GET", path, headers={"Host": host})
        resp = c.getresponse()
        return resp.status, resp.read()
    finally:
        if conn is None:
            c.close()


def throughput(tmp: Path, backend_port: int, seconds: int, rounds: int) -> dict[str, Any]:
    ref_port, eng_port, bare_port = free_port(REFERENCE_ADDR), free_port(ENGINE_ADDR), free_port(ENGINE_ADDR)
    # The reference logs nothing; the engine runs as configured by default (access log and metrics on) and,
    # like for like with the reference, with both off ("bare").
    with plain_nginx(reference_conf(ref_port, backend_port), PROXY_CORE) as ref_prefix, \
            engine(tmp, "throughput", eng_port, workers=1) as eng, \
            engine(tmp, "bare", bare_port, workers=1, access_log=AccessLog.OFF, metrics=False) as bare:
        ref_pids = nginx_pids(int((ref_prefix / "nginx.pid").read_text()))
        eng_pids = [p for p in [eng.master_pid, *eng.worker_pids()] if p]
        bare_pids = [p for p in [bare.master_pid, *bare.worker_pids()] if p]
        pin(eng_pids + bare_pids, PROXY_CORE)
        for pid in ref_pids + eng_pids + bare_pids:
            os.setpriority(os.PRIO_PROCESS, pid, -5)
        vhosts = load_routes(eng, eng_port, backend_port, 3000)
        load_routes(bare, bare_port, backend_port, 3000)
        last = vhosts - 1
        host, path = f"h{last}.bench.example", "/svc9/x"
        assert get(ENGINE_ADDR, eng_port, host, path)[0] == 200
        assert get(ENGINE_ADDR, bare_port, host, path)[0] == 200
        assert get(REFERENCE_ADDR, ref_port, host, path)[0] == 200
        ref_runs, eng_runs, bare_runs = [], [], []
        for _ in range(rounds):
            ref_runs.append(wrk(f"http://{REFERENCE_ADDR}:{ref_port}{path}", host, seconds, ref_pids))
            eng_runs.append(wrk(f"http://{ENGINE_ADDR}:{eng_port}{path}", host, seconds, eng_pids))
            bare_runs.append(wrk(f"http://{ENGINE_ADDR}:{bare_port}{path}", host, seconds, bare_pids))

    def median(runs: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    # Runs alternate, so each engine run is compared with the reference run just before it, under much
    # the same load from the rest of the machine; the median of those paired ratios is the headline.
    paired = [e["rps"] / r["rps"] for r, e in zip(ref_runs, eng_runs, strict=True)]
    paired_bare = [e["rps"] / r["rps"] for r, e in zip(ref_runs, bare_runs, strict=True)]
    # Other work only ever adds CPU per request: the least each side needed is its undisturbed cost.
    ref_cpu = min(r["cpu_us_per_request"] for r in ref_runs)
    eng_cpu = min(r["cpu_us_per_request"] for r in eng_runs)
    return {
        "reference_rps": median(ref_runs, "rps"), "engine_rps": median(eng_runs, "rps"),
        "throughput_ratio": statistics.median(paired), "throughput_ratio_range": [min(paired), max(paired)],
        "bare_engine_rps": median(bare_runs, "rps"),
        "throughput_ratio_without_log_and_metrics": statistics.median(paired_bare),
        "bare_engine_cpu_us_per_request": min(r["cpu_us_per_request"] for r in bare_runs),
        "reference_p99_ms": median(ref_runs, "p99_ms"), "engine_p99_ms": median(eng_runs, "p99_ms"),
        "reference_cpu_us_per_request": ref_cpu, "engine_cpu_us_per_request": eng_cpu,
        # Requests per CPU-second of the proxy, engine over reference.
        "cpu_normalised_ratio": ref_cpu / eng_cpu,
        "throughput_runs": {"reference": ref_runs, "engine": eng_runs, "bare_engine": bare_runs,
                            "seconds_each": seconds},
    }


def _callgrind_per_request(prefix: Path, conf: Path, addr: str, port: int, host: str, path: str,
                           setup: Any = None, requests: int = 2000, warmup: int = 300) -> float:
    """User-space instructions per proxied request, counted by callgrind in a single-process nginx
    (master_process off): unlike time, unaffected by whatever else the machine is running. The kernel's
    share of a request is not counted, so this ratio is lower than the throughput ratio."""
    out = prefix / "callgrind.out"
    proc = subprocess.Popen(["valgrind", "--tool=callgrind", "--smc-check=all", f"--callgrind-out-file={out}",
                             "nginx", "-p", f"{prefix}/", "-c", str(conf), "-g", "daemon off; master_process off;"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        conn = None
        deadline = time.monotonic() + 60
        while conn is None:
            try:
                if setup is not None:
                    setup()
                conn = http.client.HTTPConnection(addr, port, timeout=30)
                assert get(addr, port, host, path, conn)[0] == 200
            except (OSError, http.client.HTTPException):
                conn = None
                if time.monotonic() > deadline:
                    raise RuntimeError("nginx under valgrind did not answer") from None
                time.sleep(0.5)
        for _ in range(warmup):
            get(addr, port, host, path, conn)
        subprocess.run(["callgrind_control", "-z", str(proc.pid)], capture_output=True, check=True, timeout=60)
        for _ in range(requests):
            assert get(addr, port, host, path, conn)[0] == 200
        subprocess.run(["callgrind_control", "-d", str(proc.pid)], capture_output=True, check=True, timeout=60)
        conn.close()
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    dumps = sorted(prefix.glob("callgrind.out.*"))
    totals = [int(line.split()[1]) for line in dumps[0].read_text().splitlines() if line.startswith("totals:")]
    return totals[0] / requests


def instructions(tmp: Path, backend_port: int) -> dict[str, Any]:
    ref = tmp / "cg-reference"
    (ref / "logs").mkdir(parents=True)
    ref.chmod(0o755)
    ref_port, eng_port = free_port(REFERENCE_ADDR), free_port(ENGINE_ADDR)
    (ref / "nginx.conf").write_text(reference_conf(ref_port, backend_port))
    host, path = "h299.bench.example", "/svc9/x"
    reference = _callgrind_per_request(ref, ref / "nginx.conf", REFERENCE_ADDR, ref_port, host, path)
    # The engine's prefix, written by a normal start, served by nginx under valgrind; routes pushed over
    # the same control socket.
    eng = Engine(InstanceSettings(tmp / "cg-engine"), [Listener(eng_port, ipaddress.ip_address(ENGINE_ADDR))])
    eng.start()
    eng.stop()
    loaded: list[bool] = []

    def load() -> None:
        if not loaded:
            load_routes(eng, eng_port, backend_port, 3000)
            loaded.append(True)

    engine_ir = _callgrind_per_request(eng.prefix, eng.prefix / "conf/nginx.conf", ENGINE_ADDR, eng_port, host, path,
                                       setup=load)
    return {"reference_instructions_per_request": reference, "engine_instructions_per_request": engine_ir,
            "instruction_ratio": reference / engine_ir}


def observability_cost(tmp: Path, backend_port: int, runs: int) -> dict[str, Any]:
    """Instructions per request of the engine with its access log and metrics off, each alone, and both: the
    least of `runs` each and the spread (largest over least), which shows whether LuaJIT's trace selection
    changed from run to run (it did before the router's match lost its loops: about 45k or 59k)."""
    variants: dict[str, dict[str, Any]] = {
        "neither": {"access_log": AccessLog.OFF, "metrics": False}, "metrics": {"access_log": AccessLog.OFF},
        "access_log": {"metrics": False}, "both": {}}
    host, path = "h29.bench.example", "/svc9/x"
    out: dict[str, Any] = {}
    for name, options in variants.items():
        counts = []
        for i in range(runs):
            port = free_port(ENGINE_ADDR)
            eng = Engine(InstanceSettings(tmp / f"obs-{name}-{i}", **options),
                         [Listener(port, ipaddress.ip_address(ENGINE_ADDR))])
            eng.start()
            eng.stop()
            loaded: list[bool] = []

            def load(eng: Engine = eng, port: int = port, loaded: list[bool] = loaded) -> None:
                if not loaded:
                    load_routes(eng, port, backend_port, 300)
                    loaded.append(True)

            counts.append(_callgrind_per_request(eng.prefix, eng.prefix / "conf/nginx.conf", ENGINE_ADDR, port, host,
                                                 path, setup=load, requests=3000, warmup=5000))
        out[name] = {"least": min(counts), "spread": max(counts) / min(counts), "runs": counts}
    return {"observability_instructions_per_request": out}


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"p50": statistics.median(ordered), "p99": p99, "max": ordered[-1]}


def _wait_for(check: Any, limit_s: float = 2.0) -> float:
    """Polls `check` (a new connection each time, so either worker may answer) until true; answers when."""
    deadline = time.perf_counter() + limit_s
    while time.perf_counter() < deadline:
        if check():
            return time.perf_counter()
    raise RuntimeError("change not visible within the limit")


def propagation(tmp: Path, backend_port: int, sizes: list[int], trials: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for size in sizes:
        port = free_port(ENGINE_ADDR)
        with engine(tmp, f"prop{size}", port, workers=2) as eng:
            vhosts = load_routes(eng, port, backend_port, size)
            pids = (eng.master_pid, eng.worker_pids())
            totals, writes = [], []
            for t in range(trials):
                i = t % vhosts
                host = f"h{i}.bench.example"
                path = f"/new{t // vhosts}/x"
                assert get(ENGINE_ADDR, port, host, path)[0] == 404
                start = time.perf_counter()
                eng.put_vhost(f"vh{i}", vhost_doc(i, port, 10, extra=t // vhosts + 1))
                committed = time.perf_counter()
                seen = _wait_for(lambda host=host, path=path, port=port: get(ENGINE_ADDR, port, host, path)[0] == 200)
                totals.append((seen - start) * 1000)
                writes.append((committed - start) * 1000)
            reloaded = (eng.master_pid, eng.worker_pids()) != pids or eng.reloads != 0
        stats = _percentiles(totals)
        out[f"propagation_{size}_p50_ms"] = stats["p50"]
        out[f"propagation_{size}_p99_ms"] = stats["p99"]
        out[f"propagation_{size}_max_ms"] = stats["max"]
        out[f"propagation_{size}_write_p50_ms"] = statistics.median(writes)
        out[f"propagation_{size}_reloaded"] = reloaded
    out["propagation_trials"] = trials
    return out


def endpoint_shift(tmp: Path, backend_port: int, trials: int) -> dict[str, Any]:
    port = free_port(ENGINE_ADDR)
    with engine(tmp, "shift", port, workers=2) as eng:
        load_routes(eng, port, backend_port, 3000)
        pids = (eng.master_pid, eng.worker_pids())
        host, path = "h0.bench.example", "/svc0/x"
        samples = []
        for t in range(trials):
            addr, body = (BACKEND_B, b"b\n") if t % 2 == 0 else (BACKEND_A, b"a\n")
            start = time.perf_counter()
            eng.put_backend("b0", [{"address": addr, "port": backend_port}])
            seen = _wait_for(lambda body=body: get(ENGINE_ADDR, port, host, path) == (200, body))
            samples.append((seen - start) * 1000)
        reloaded = (eng.master_pid, eng.worker_pids()) != pids or eng.reloads != 0
    stats = _percentiles(samples)
    return {"endpoint_shift_p50_ms": stats["p50"], "endpoint_shift_p99_ms": stats["p99"],
            "endpoint_shift_max_ms": stats["max"], "endpoint_shift_reloaded": reloaded}


def _memory_kb(pid: int) -> tuple[int, int]:
    rss = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
               if line.startswith("VmRSS:"))
    pss = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
               if line.startswith("Pss:"))
    return rss, pss


def _answers(addr: str, port: int) -> bool:
    try:
        return get(addr, port, "h0.bench.example", "/")[0] == 404
    except OSError:
        return False


def memory(tmp: Path, backend_port: int, routes: int) -> dict[str, Any]:
    port = free_port(ENGINE_ADDR)
    with engine(tmp, "memory", port, workers=1) as eng:
        idle = [_memory_kb(p) for p in [eng.master_pid, *eng.worker_pids()] if p]
        started = time.perf_counter()
        vhosts = load_routes(eng, port, backend_port, routes)
        load_s = time.perf_counter() - started
        conn = http.client.HTTPConnection(ENGINE_ADDR, port, timeout=5)
        for i in range(vhosts):
            assert get(ENGINE_ADDR, port, f"h{i}.bench.example", "/svc9/x", conn)[0] == 200
        conn.close()
        loaded = [_memory_kb(p) for p in [eng.master_pid, *eng.worker_pids()] if p]
        # For scale: the only reload the engine still does, a new listener, with all routes loaded.
        new_port = free_port(ENGINE_ADDR)
        started = time.perf_counter()
        eng.set_listeners([*eng.listeners, Listener(new_port, ipaddress.ip_address(ENGINE_ADDR))])
        # The new listener answering at all (404: no virtual host is attached to it yet).
        _wait_for(lambda: _answers(ENGINE_ADDR, new_port), 10)
        reload_ms = (time.perf_counter() - started) * 1000
    return {
        f"rss_{routes}_routes_mb": sum(r for r, _ in loaded) / 1024,
        f"pss_{routes}_routes_mb": sum(p for _, p in loaded) / 1024,
        "rss_idle_mb": sum(r for r, _ in idle) / 1024,
        f"load_{routes}_routes_s": load_s,
        "listener_reload_ms": reload_ms,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="shorter runs (a smoke run, not for the record)")
    parser.add_argument("--observability", action="store_true",
                        help="only the instruction cost of the access log and metrics (needs valgrind)")
    args = parser.parse_args()
    if args.observability:
        observability_main()
        return
    for tool in ("nginx", "wrk", "taskset", "luajit"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (make setup installs the gateway's packages)")
    if (os.cpu_count() or 1) < 2:
        sys.exit("needs two cores (the proxy on one, load and backend on the other)")
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="np-bench-gw-") as tmp_name:
        tmp = Path(tmp_name)
        os.chmod(tmp, 0o755)
        backend_port = free_port(BACKEND_A)
        with plain_nginx(backend_conf(backend_port), LOAD_CORE):
            results.update(throughput(tmp, backend_port, 3, 2 if args.quick else 8))
            results.update(propagation(tmp, backend_port, [100, 1000, 3000], 5 if args.quick else 20))
            results.update(endpoint_shift(tmp, backend_port, 5 if args.quick else 20))
            results.update(memory(tmp, backend_port, 10_000))
            if shutil.which("valgrind") and shutil.which("callgrind_control"):
                results.update(instructions(tmp, backend_port))
    report = {
        "benchmark": "gateway", "quick": args.quick, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "nginx": subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()},
        "reference": "hand-written minimal nginx proxy with upstream keepalive, same backend, same pinned core",
        "results": {k: round(v, 3) if isinstance(v, float) else v for k, v in results.items()},
        "targets": {k: f"{op} {v}" for k, (op, v) in TARGETS.items()},
        "met": {k: (results[k] >= v if op == ">=" else results[k] <= v) for k, (op, v) in TARGETS.items()
                if k in results},
    }
    if not args.quick:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


def observability_main() -> None:
    with tempfile.TemporaryDirectory(prefix="np-bench-gwo-") as tmp_name:
        tmp = Path(tmp_name)
        os.chmod(tmp, 0o755)
        backend_port = free_port(BACKEND_A)
        with plain_nginx(backend_conf(backend_port), LOAD_CORE):
            results = observability_cost(tmp, backend_port, runs=5)
    report = {"benchmark": "gateway-observability", "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "setup": "300 routes, 5,000 warm-up and 3,000 counted requests on one kept-alive connection, "
                       "single-process nginx under callgrind", "results": results}
    OBSERVABILITY_RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
