"""Service proxy benchmarks: `python -m bench.proxy [--quick]` (root: it makes network namespaces).

(a) Rule programming for 1k, 5k and 10k ClusterIP Services with 10 endpoints each, Service and
    EndpointSlice objects shaped as the agent's informer caches hold them, written into a network
    namespace of the benchmark's own:
    - full sync: a fresh `Renderer` renders everything ("render"), a fresh `Proxy` writes it in one
      transaction that replaces the table ("transaction": building the nft script and running
      `nft -f -`), and the two together, as an agent's first pass does;
    - one endpoint change: with the table in place, one endpoint of one Service turns unready (the
      Service's endpoint count changes) and ready again, alternately, each as a new EndpointSlice
      object: the agent's pass (render with the warm `Renderer`, incremental transaction).
    Targets (the Services issue): full sync <= 2 s and one change <= 50 ms at 10k. Each step is
    timed in wall time and in CPU time (this process and the `nft` it waits for; kernel work the
    transaction leaves to workers is not in it): on a shared machine wall time also holds the
    waits for the other tenants' work.
(b) Traffic with the 10k Services installed, in the same run: a "node" namespace holding the proxy
    table and the clients (with an address in the pod CIDR, so as a pod's, their connections are
    DNATed but not masqueraded), and a "pod" namespace running nginx (one worker) on 10 addresses,
    joined by a veth. Through one ClusterIP (its 10 endpoints are the pod's addresses) and straight to a
    pod address: new connections per second (wrk, one thread, 16 connections, `Connection: close`,
    so every request is a new connection) and the connect time of a fresh TCP connection (the first
    packet goes through the proxy's lookups and DNAT; SYN to SYN-ACK as the client sees it).

Namespaces are named `npbench-proxy-<pid>-*`; leftovers of an earlier run (namespaces named
`npbench-proxy-*` and the processes inside them) are removed first, everything is removed at the
end. Results go to bench/results/proxy.json (not with --quick), with the machine's load average
before and after.
"""

from __future__ import annotations

import argparse
import copy
import ipaddress
import json
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from netplane.dataplane.podnet.nsexec import netns_path
from netplane.dataplane.proxy import NodeConfig, Proxy, Renderer

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "proxy.json"
PREFIX = "npbench-proxy-"
SIZES = (1000, 5000, 10_000)
ENDPOINTS = 10
FULL_TARGET_S = 2.0
CHANGE_TARGET_MS = 50.0
# The layout this one replaced (a chain per service port and per endpoint, a `numgen ... vmap` per
# service), measured once on this machine with 10k Services: context, not rerun.
PREVIOUS_LAYOUT = {"full_sync_10k_s": "91 (render 2.3, nft 88)",
                   "one_endpoint_change_10k_s": "5.1 (render 3.5, nft 1.6)"}
POD_CIDR = ipaddress.IPv4Network("10.16.0.0/12")
# Both inside the pod CIDR and clear of the other Services' endpoints: the client is a pod as far as
# the proxy can tell (DNAT only; a node's own connections would be masqueraded too).
CLIENT_ADDRESS = "10.30.255.1"
POD_ADDRESSES = [f"10.31.0.{i}" for i in range(1, ENDPOINTS + 1)]
SERVER_PORT = 8080
NGINX_CONF = """
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body; proxy_temp_path {dir}/proxy; fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi; scgi_temp_path {dir}/scgi;
    server {{ listen {port} reuseport backlog=4096; location / {{ return 200 "ok\\n"; }} }}
}}
"""
# Connect, note the time, reset (SO_LINGER 0: no TIME_WAIT piling up), repeat; the median and p99.
CONNECT_TIMER = textwrap.dedent("""
    import socket, struct, sys, time, json
    host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    times = []
    for _ in range(count):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        started = time.perf_counter()
        s.connect((host, port))
        times.append(time.perf_counter() - started)
        s.close()
    print(json.dumps(times))
""")


def service_ip(i: int) -> str:
    return f"10.96.{i // 250}.{i % 250 + 1}"


def endpoint_ip(n: int) -> str:
    return str(POD_CIDR.network_address + 256 + n)  # 10.16.1.0 on: the pod's 10.31.0.x stay apart


def objects(count: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """`count` ClusterIP Services with `ENDPOINTS` ready endpoints each, spread over 10 nodes."""
    services, slices = [], []
    for i in range(count):
        name = f"svc-{i}"
        services.append({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"namespace": "bench", "name": name, "uid": f"uid-{i}", "resourceVersion": str(i + 1)},
            "spec": {"type": "ClusterIP", "clusterIP": service_ip(i), "clusterIPs": [service_ip(i)],
                     "sessionAffinity": "None", "internalTrafficPolicy": "Cluster",
                     "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": SERVER_PORT}]}})
        slices.append(endpoint_slice(name, [endpoint_ip(i * ENDPOINTS + j) for j in range(ENDPOINTS)], i))
    return services, slices


def endpoint_slice(service: str, ips: list[str], version: int) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
        "metadata": {"namespace": "bench", "name": f"{service}-abcde", "resourceVersion": str(version),
                     "labels": {"kubernetes.io/service-name": service}},
        "ports": [{"name": "http", "port": SERVER_PORT, "protocol": "TCP"}],
        "endpoints": [{"addresses": [ip], "nodeName": f"node{j}",
                       "conditions": {"ready": True, "serving": True, "terminating": False}}
                      for j, ip in enumerate(ips)]}


def run(*argv: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done


def in_ns(netns: str, *argv: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return run("ip", "netns", "exec", netns, *argv, check=check, timeout=timeout)


def remove_namespace(name: str) -> None:
    """Stop what runs inside one of the benchmark's namespaces, then remove it."""
    for pid in run("ip", "netns", "pids", name, check=False).stdout.split():
        with suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
    run("ip", "netns", "delete", name, check=False)


def clean_leftovers() -> list[str]:
    names = [line.split()[0] for line in run("ip", "netns", "list").stdout.splitlines()
             if line.startswith(PREFIX)]
    for name in names:
        remove_namespace(name)
    return names


@contextmanager
def namespace(tag: str) -> Iterator[str]:
    name = f"{PREFIX}{os.getpid()}-{tag}"
    run("ip", "netns", "add", name)
    try:
        in_ns(name, "ip", "link", "set", "lo", "up")
        yield name
    finally:
        remove_namespace(name)


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"median": round(statistics.median(ordered), 2),
            "p90": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 2),
            "max": round(ordered[-1], 2)}


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


class Clock:
    """Wall time and CPU time (this process and the `nft` it waited for) of a pass: render, transaction,
    both. CPU time does not wait for the machine's other tenants; wall time does."""

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = {}

    @staticmethod
    def now() -> tuple[float, float]:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.perf_counter(), time.process_time() + children.ru_utime + children.ru_stime

    def record(self, marks: list[tuple[float, float]]) -> None:
        (wall0, cpu0), (wall1, cpu1), (wall2, cpu2) = marks
        for name, wall, cpu in (("render", wall1 - wall0, cpu1 - cpu0), ("transaction", wall2 - wall1, cpu2 - cpu1),
                                ("total", wall2 - wall0, cpu2 - cpu0)):
            self.samples.setdefault(f"{name}_ms", []).append(wall * 1000)
            self.samples.setdefault(f"{name}_cpu_ms", []).append(cpu * 1000)

    def summary(self) -> dict[str, dict[str, float]]:
        return {k: summary(v) for k, v in self.samples.items()}


def programming(count: int, full_rounds: int, change_rounds: int, netns: str) -> tuple[dict[str, Any], Renderer,
                                                                                        Proxy, NodeConfig]:
    services, slices = objects(count)
    cfg = NodeConfig("node0", (), (POD_CIDR,))
    full = Clock()
    renderer, proxy = Renderer(), Proxy(netns)
    for _ in range(full_rounds):
        renderer, proxy = Renderer(), Proxy(netns)  # a new agent: full render, full resync
        marks = [Clock.now()]
        rs = renderer.render(cfg, services, slices)
        marks.append(Clock.now())
        assert proxy.sync(rs) == ["table ip netplane-proxy: full resync"]
        marks.append(Clock.now())
        full.record(marks)
    change = Clock()
    commands: list[int] = []
    target = count // 2
    for round_ in range(change_rounds):
        changed = copy.deepcopy(slices[target])
        changed["endpoints"][3]["conditions"]["ready"] = round_ % 2 == 1
        changed["metadata"]["resourceVersion"] = str(count + round_ + 1)
        slices[target] = changed
        marks = [Clock.now()]
        rs = renderer.render(cfg, services, slices)
        marks.append(Clock.now())
        done_changes = proxy.sync(rs)
        marks.append(Clock.now())
        change.record(marks)
        found = re.fullmatch(r"table ip netplane-proxy: (\d+) incremental commands", done_changes[0])
        if found is None:
            raise RuntimeError(f"not an incremental sync: {done_changes}")
        commands.append(int(found.group(1)))
    rs = renderer.render(cfg, services, slices)
    return ({"services": count, "endpoints": count * ENDPOINTS,
             "table": {"chains": len(rs.chains), "map_elements": sum(len(s.elements) for s in rs.sets)},
             "full_sync": full.summary(),
             "one_endpoint_change": {**change.summary(), "nft_commands": max(commands)}},
            renderer, proxy, cfg)


def traffic(count: int, renderer: Renderer, proxy: Proxy, cfg: NodeConfig, node: str, seconds: int,
            connects: int) -> dict[str, Any]:
    """Install the measured Service (its endpoints: the pod's addresses) beside the others, then
    drive connections through its ClusterIP and straight to the pod."""
    services, slices = objects(count)
    cluster_ip = service_ip(len(services) // 2)
    slices[len(services) // 2] = endpoint_slice(f"svc-{len(services) // 2}", POD_ADDRESSES, 0)
    proxy.sync(renderer.render(cfg, services, slices))
    with namespace("pod") as pod, tempfile.TemporaryDirectory(prefix="npbench-proxy-") as tmp:
        in_ns(node, "ip", "link", "add", "veth-node", "type", "veth", "peer", "name", "veth-pod")
        in_ns(node, "ip", "link", "set", "veth-pod", "netns", pod)
        in_ns(node, "ip", "addr", "add", f"{CLIENT_ADDRESS}/8", "dev", "veth-node")
        in_ns(node, "ip", "link", "set", "veth-node", "up")
        in_ns(pod, "ip", "addr", "add", f"{POD_ADDRESSES[0]}/8", "dev", "veth-pod")
        for address in POD_ADDRESSES[1:]:
            in_ns(pod, "ip", "addr", "add", f"{address}/32", "dev", "veth-pod")
        in_ns(pod, "ip", "link", "set", "veth-pod", "up")
        conf = Path(tmp) / "nginx.conf"
        conf.write_text(NGINX_CONF.format(dir=tmp, port=SERVER_PORT))
        server = subprocess.Popen(["ip", "netns", "exec", pod, "nginx", "-c", str(conf), "-g", "daemon off;"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            direct = f"http://{POD_ADDRESSES[0]}:{SERVER_PORT}/"
            via = f"http://{cluster_ip}/"
            deadline = time.monotonic() + 10
            while in_ns(node, "curl", "-sf", "-m", "1", via, check=False).stdout != "ok\n":
                if time.monotonic() > deadline:
                    raise RuntimeError("nginx never answered through the ClusterIP")
                time.sleep(0.1)
            # Interleaved rounds, so both paths see the same share of the machine's other load.
            targets = {"cluster_ip": (via, cluster_ip, 80), "direct": (direct, POD_ADDRESSES[0], SERVER_PORT)}
            rates: dict[str, list[float]] = {label: [] for label in targets}
            connect_us: dict[str, list[float]] = {label: [] for label in targets}
            for _ in range(3):
                for label, (url, _, _) in targets.items():
                    # Each run from an empty connection tracking table: the last run's entries
                    # (in TIME_WAIT) would otherwise weigh on the next.
                    in_ns(node, "conntrack", "-F", check=False)
                    rates[label].append(wrk_connections(node, url, seconds))
            for _ in range(10):
                for label, (_, host, port) in targets.items():
                    times = json.loads(in_ns(node, sys.executable, "-c", CONNECT_TIMER, host, str(port),
                                             str(connects // 10)).stdout)
                    connect_us[label] += [t * 1e6 for t in times]
            out: dict[str, Any] = {}
            for label in targets:
                ordered = sorted(connect_us[label])
                out[label] = {"connections_per_s": round(statistics.median(rates[label])),
                              "connections_per_s_runs": rates[label],
                              "connect_us": {"median": round(statistics.median(ordered), 1),
                                             "p90": round(ordered[int(0.9 * len(ordered))], 1),
                                             "p99": round(ordered[int(0.99 * len(ordered))], 1)}}
            spread = in_ns(node, "conntrack", "-L", "-p", "tcp", "--orig-dst", cluster_ip, check=False).stdout
            out["endpoints_used"] = len(set(re.findall(r"src=(10\.31\.0\.\d+) ", spread)))
            return out
        finally:
            server.terminate()
            server.wait(10)


def wrk_connections(netns: str, url: str, seconds: int) -> float:
    done = in_ns(netns, "wrk", "-t1", "-c16", f"-d{seconds}s", "-H", "Connection: close", url,
                 timeout=seconds + 60)
    if "Non-2xx" in done.stdout or "Socket errors" in done.stdout:
        raise RuntimeError("wrk saw failures:\n" + done.stdout)
    found = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    if found is None:
        raise RuntimeError("no rate in wrk's output:\n" + done.stdout)
    return round(float(found.group(1)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller counts (a smoke run, not for the record)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench.proxy needs root (network namespaces, nftables)")
    for tool in ("nft", "nginx", "wrk", "curl", "conntrack"):
        if shutil.which(tool) is None:
            sys.exit(f"bench.proxy needs {tool} (make setup installs it; wrk: apt-get install wrk)")
    netns_path(PREFIX + "check")  # the prefix makes valid names
    leftovers = clean_leftovers()
    sizes = (1000, 2000) if args.quick else SIZES
    load_before = load_average()
    results: dict[str, Any] = {"programming": []}
    with namespace("node") as node:
        last: tuple[Renderer, Proxy, NodeConfig] | None = None
        for count in sizes:
            report, renderer, proxy, cfg = programming(count, 2 if args.quick else 3, 10 if args.quick else 40, node)
            results["programming"].append(report)
            print(json.dumps(report), flush=True)
            last = (renderer, proxy, cfg)
        assert last is not None
        results["traffic"] = {"services_installed": sizes[-1],
                              **traffic(sizes[-1], *last, node, 2 if args.quick else 5, 300 if args.quick else 2000)}
        last[1].teardown()
    biggest = results["programming"][-1]
    report = {
        "benchmark": "proxy",
        "quick": args.quick,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "kernel": platform.release(),
                    "nft": run("nft", "--version").stdout.strip(), "load_average_1m": [load_before, load_average()]},
        "setup": {"services": "ClusterIP, one TCP port, 10 ready endpoints each (spread over 10 nodes)",
                  "full_sync": "fresh Renderer + fresh Proxy (one `nft -f -` replacing the table); 3 rounds",
                  "one_endpoint_change": "one endpoint unready / ready again in a new EndpointSlice object; "
                                         "warm Renderer + incremental transaction; 40 rounds",
                  "traffic": "node namespace (proxy table with every Service, wrk and a Python connect timer) "
                             "-- veth -- pod namespace (nginx, 1 worker, 10 addresses); ClusterIP and direct "
                             "interleaved: wrk -t1 -c16 -d5s with Connection: close, 3 runs each (median); "
                             "connect time = connect() of a fresh socket, 10 x 200 each",
                  "leftovers_removed": leftovers},
        "reference": {"full_sync_10k_total_ms": f"<= {FULL_TARGET_S * 1000:.0f} (issue target)",
                      "one_endpoint_change_10k_total_ms": f"<= {CHANGE_TARGET_MS:.0f} (issue target)",
                      "met": "medians of the largest size, wall (total_ms) and CPU (total_cpu_ms) time",
                      "previous_layout": PREVIOUS_LAYOUT},
        "results": results,
        "met": {f"{step}_{key}": biggest[step][key]["median"] <= target
                for step, target in (("full_sync", FULL_TARGET_S * 1000), ("one_endpoint_change", CHANGE_TARGET_MS))
                for key in ("total_ms", "total_cpu_ms")},
    }
    if not args.quick:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
