"""DNS benchmarks: `python -m bench.dns [--quick]`.

dnsperf (a C load generator) sends one query file, 80% A queries for existing ClusterIP
services, 10% AAAA for them (NODATA) and 10% A for missing names (NXDOMAIN), against:

(a) authoritative: netplane's cluster zone holding 1,000 ClusterIP services (fed directly as
    Service objects, no API server), served by the transport on uvloop, beside Unbound serving
    the same records as local-data;
(b) cache hits: netplane's node-local cache (`python -m netplane.dataplane.dns cache`), beside
    Unbound forwarding the cluster domain, both in front of the zone of (a) as their origin
    (TTL 30 there, the most the node-local cache keeps a success, so the measured minutes are
    hits) and warmed with every query of the file first;
(c) propagation: how long an API write takes to show in `python -m netplane.dataplane.dns serve`
    fed by a real API server (`netplane up --no-dataplane`): a host alias of the coredns
    ClusterPlugin added and removed, a ClusterIP Service created (its A record answers) and deleted
    (NXDOMAIN). The clock starts at the write's response and stops at the first answer showing the
    change, polled over UDP every 2 ms.

Unbound runs with one thread, as each netplane server is one Python process; client and servers
share the machine's cores. Every address is on 127.0.0.0/8. For each server the report gives
the loaded throughput and latency (`-c 4 -q 200`, as the research runs) and the unloaded
latency (`-q 1`, the service time), and the ratio of netplane's throughput to Unbound's; for (c)
p50/p99/max over 20 rounds. Results go to bench/results/dns.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from dnslib import QTYPE, RCODE, DNSRecord

from netplane.controllers.kube import Client, load_kubeconfig
from netplane.dataplane.dns.serve import PLUGINS
from netplane.dataplane.dns.serve import SERVICES as SERVICE_RESOURCE

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "dns.json"

SERVICES = 1000
NAMESPACES = 10
QUERIES = 10_000
ZONE_TTL = 5
ORIGIN_TTL = 30
TARGET_RATIO = 0.5
TARGET_QPS = 17_000  # about one core of CoreDNS in the Scaling CoreDNS measurements

AUTH = "127.0.0.81"
AUTH_UNBOUND = "127.0.0.82"
ORIGIN = "127.0.0.83"
CACHE = "127.0.0.84"
CACHE_UNBOUND = "127.0.0.85"
PROPAGATION = "127.0.0.86"

ROUNDS = 20
POLL_INTERVAL = 0.002
PROPAGATION_SECONDS = 60  # the whole of (c), start-up included: every wait gives up at this deadline
ALIAS_NET = "198.51.100"  # TEST-NET-2: only ever record data, never dialled


def service_ip(i: int) -> str:
    return f"10.96.{i // 250}.{i % 250 + 1}"


def service_name(i: int) -> str:
    return f"svc-{i}.ns-{i % NAMESPACES}.svc.cluster.local"


def services() -> list[dict[str, Any]]:
    return [{"apiVersion": "v1", "kind": "Service",
             "metadata": {"name": f"svc-{i}", "namespace": f"ns-{i % NAMESPACES}", "resourceVersion": "1"},
             "spec": {"type": "ClusterIP", "clusterIP": service_ip(i), "clusterIPs": [service_ip(i)],
                      "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}}
            for i in range(SERVICES)]


def query_file(path: Path) -> None:
    rnd = random.Random(1024)
    lines = []
    for n in range(QUERIES):
        kind = n % 10
        if kind < 8:
            lines.append(f"{service_name(rnd.randrange(SERVICES))} A")
        elif kind == 8:
            lines.append(f"{service_name(rnd.randrange(SERVICES))} AAAA")
        else:
            lines.append(f"missing-{rnd.randrange(SERVICES)}.ns-{rnd.randrange(NAMESPACES)}.svc.cluster.local A")
    rnd.shuffle(lines)
    path.write_text("\n".join(lines) + "\n")


# ---------------------------------------------------------------------- servers


def serve_zone(host: str, port: int, ttl: int) -> None:
    """The child process of (a) and the origin of (b): the cluster zone on the transport, on uvloop."""
    import uvloop

    from netplane.dataplane.dns.metrics import QueryStats
    from netplane.dataplane.dns.serve import ZoneHandler
    from netplane.dataplane.dns.transport import DnsServer
    from netplane.dataplane.dns.zone import ClusterZone, ZoneConfig

    zone = ClusterZone(ZoneConfig(domain="cluster.local", ttl=ttl, nameservers=("10.96.0.10",)))
    for svc in services():
        zone.set_service(svc)
    zone.mark_synced()

    async def main() -> None:
        server = DnsServer()
        await server.listen(host, port, ZoneHandler(zone, None, QueryStats(f"dns://{host}:{port}", "1")))
        print("ready", flush=True)
        await asyncio.Event().wait()

    uvloop.run(main())


def unbound_config(tmp: Path, host: str, port: int, body: list[str]) -> Path:
    lines = ["server:", f"  interface: {host}@{port}", f"  port: {port}", "  do-ip6: no",
             "  access-control: 127.0.0.0/8 allow", '  username: ""', '  chroot: ""', f'  directory: "{tmp}"',
             f'  pidfile: "{tmp}/unbound-{port}.pid"', "  use-syslog: no", '  logfile: ""', "  verbosity: 0",
             "  num-threads: 1", '  module-config: "iterator"', "  do-not-query-localhost: no",
             "  qname-minimisation: no", "  prefetch: no", *body, "remote-control:", "  control-enable: no"]
    path = tmp / f"unbound-{port}.conf"
    path.write_text("\n".join(lines) + "\n")
    return path


def unbound_authoritative(tmp: Path, host: str, port: int) -> Path:
    data = ['  local-zone: "cluster.local." static',
            f'  local-data: "cluster.local. {ZONE_TTL} IN SOA ns.dns.cluster.local. hostmaster.cluster.local. '
            f'1 7200 1800 86400 {ZONE_TTL}"']
    data += [f'  local-data: "{service_name(i)}. {ZONE_TTL} IN A {service_ip(i)}"' for i in range(SERVICES)]
    return unbound_config(tmp, host, port, data)


def unbound_cache(tmp: Path, host: str, port: int, origin: tuple[str, int]) -> Path:
    return unbound_config(tmp, host, port, [
        '  domain-insecure: "cluster.local."', "  rrset-cache-size: 32m", "  msg-cache-size: 16m",
        "forward-zone:", '  name: "cluster.local."', f"  forward-addr: {origin[0]}@{origin[1]}",
        "  forward-tcp-upstream: yes"])


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def answers(host: str, port: int, timeout: float = 20.0) -> None:
    """Wait until host:port answers a DNS query over UDP."""
    query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + b"".join(
        bytes((len(label),)) + label.encode() for label in service_name(0).split(".")) + b"\x00\x00\x01\x00\x01"
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        while time.monotonic() < deadline:
            s.sendto(query, (host, port))
            try:
                if s.recv(4096)[:2] == b"\x12\x34":
                    return
            except OSError:
                pass
    raise RuntimeError(f"nothing answers DNS on {host}:{port}")


class Processes:
    """Child processes, all stopped on exit."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *argv: str, log: Path | None = None) -> subprocess.Popen[bytes]:
        if log is None:
            proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        else:
            with log.open("wb") as out:
                proc = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# ---------------------------------------------------------------------- dnsperf


def dnsperf(host: str, port: int, queries: Path, seconds: float, outstanding: int, clients: int) -> dict[str, Any]:
    out = subprocess.run(["dnsperf", "-s", host, "-p", str(port), "-d", str(queries), "-l", str(seconds),
                          "-c", str(clients), "-q", str(outstanding), "-T", "1"],
                         capture_output=True, text=True, timeout=seconds + 60)
    text = out.stdout

    def number(pattern: str) -> float:
        match = re.search(pattern, text)
        if match is None:
            raise RuntimeError(f"dnsperf output lacks {pattern!r}:\n{text}\n{out.stderr}")
        return float(match.group(1))

    sent = number(r"Queries sent:\s+(\d+)")
    lost = number(r"Queries lost:\s+(\d+)")
    codes = re.search(r"Response codes:\s+(.*)", text)
    return {"qps": round(number(r"Queries per second:\s+([\d.]+)")),
            "avg_latency_ms": round(number(r"Average Latency \(s\):\s+([\d.]+)") * 1000, 3),
            "latency_stddev_ms": round(number(r"Latency StdDev \(s\):\s+([\d.]+)") * 1000, 3),
            "lost_percent": round(100 * lost / sent, 3) if sent else None,
            "response_codes": codes.group(1).strip() if codes else ""}


def measure(host: str, port: int, queries: Path, seconds: float) -> dict[str, Any]:
    loaded = dnsperf(host, port, queries, seconds, 200, 4)
    unloaded = dnsperf(host, port, queries, min(seconds, 2), 1, 1)
    return {**loaded, "unloaded_latency_ms": unloaded["avg_latency_ms"]}


def compare(ours: dict[str, Any], unbound: dict[str, Any]) -> dict[str, Any]:
    return {"netplane": ours, "unbound": unbound,
            "qps_ratio_to_unbound": round(ours["qps"] / unbound["qps"], 3) if unbound["qps"] else None}


def run(seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="netplane-dnsbench-") as tmp_name, ExitStack() as stack:
        tmp = Path(tmp_name)
        procs = Processes()
        stack.callback(procs.close)
        queries = tmp / "queries.txt"
        query_file(queries)
        me = [sys.executable, "-m", "bench.dns"]

        auth_port, auth_unbound_port = free_port(AUTH), free_port(AUTH_UNBOUND)
        origin_port, cache_port, cache_unbound_port = free_port(ORIGIN), free_port(CACHE), free_port(CACHE_UNBOUND)
        procs.start(*me, "--serve-zone", f"{AUTH}:{auth_port}", "--ttl", str(ZONE_TTL))
        procs.start("unbound", "-d", "-c", str(unbound_authoritative(tmp, AUTH_UNBOUND, auth_unbound_port)))
        procs.start(*me, "--serve-zone", f"{ORIGIN}:{origin_port}", "--ttl", str(ORIGIN_TTL))
        procs.start(sys.executable, "-m", "netplane.dataplane.dns", "cache", "--listen", CACHE, "--port",
                    str(cache_port), "--cluster-dns", f"{ORIGIN}:{origin_port}",
                    "--metrics", f"{CACHE}:{free_port(CACHE)}", "--health", f"{CACHE}:{free_port(CACHE)}")
        procs.start("unbound", "-d", "-c", str(unbound_cache(tmp, CACHE_UNBOUND, cache_unbound_port,
                                                             (ORIGIN, origin_port))))
        for host, port in ((AUTH, auth_port), (AUTH_UNBOUND, auth_unbound_port), (ORIGIN, origin_port),
                           (CACHE, cache_port), (CACHE_UNBOUND, cache_unbound_port)):
            answers(host, port)

        authoritative = compare(measure(AUTH, auth_port, queries, seconds),
                                measure(AUTH_UNBOUND, auth_unbound_port, queries, seconds))
        # Warm both caches with every query of the file (one pass, unhurried), then measure.
        for host, port in ((CACHE, cache_port), (CACHE_UNBOUND, cache_unbound_port)):
            subprocess.run(["dnsperf", "-s", host, "-p", str(port), "-d", str(queries), "-n", "1", "-q", "50"],
                           capture_output=True, timeout=120, check=True)
        cache = compare(measure(CACHE, cache_port, queries, seconds),
                        measure(CACHE_UNBOUND, cache_unbound_port, queries, seconds))
        return {"authoritative": authoritative, "cache_hit": cache}


# ---------------------------------------------------------------------- propagation

CHANGES = ("host_alias_add", "host_alias_remove", "service_create", "service_delete")


def a_records(reply: DNSRecord) -> set[str]:
    return {str(rr.rdata) for rr in reply.rr if rr.rtype == QTYPE.A}


def shows(ip: str) -> Callable[[DNSRecord], bool]:
    return lambda reply: ip in a_records(reply)


def lacks(ip: str) -> Callable[[DNSRecord], bool]:
    return lambda reply: ip not in a_records(reply)


def nxdomain(reply: DNSRecord) -> bool:
    return bool(reply.header.rcode == RCODE.NXDOMAIN)


class Poller:
    """A-queries to one server, one at a time, every POLL_INTERVAL until an answer shows what is awaited.

    Blocking on purpose: nothing else runs in this process while it polls, and a plain socket keeps
    the cadence free of event loop scheduling.
    """

    def __init__(self, host: str, port: int, deadline: float):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.connect((host, port))
        self.sock.settimeout(0.1)
        self.deadline = deadline
        self.query_id = 0

    def close(self) -> None:
        self.sock.close()

    def ask(self, name: str) -> DNSRecord | None:
        self.query_id = (self.query_id + 1) & 0xFFFF
        query = DNSRecord.question(name, "A")
        query.header.id = self.query_id
        try:
            self.sock.send(query.pack())
            while True:
                reply = DNSRecord.parse(self.sock.recv(4096))
                # A late reply to an earlier, timed-out query tells nothing about now.
                if reply.header.id == self.query_id:
                    return reply
        except OSError:  # a timeout, or refused while the server is still starting
            return None

    def until(self, name: str, shown: Callable[[DNSRecord], bool], since: float) -> float:
        """Seconds from `since` until an answer for `name` satisfies `shown`."""
        while True:
            asked = time.monotonic()
            if asked > self.deadline:
                raise RuntimeError(f"propagation: no awaited answer for {name} within {PROPAGATION_SECONDS} s")
            reply = self.ask(name)
            if reply is not None and shown(reply):
                return time.monotonic() - since
            time.sleep(max(0.0, asked + POLL_INTERVAL - time.monotonic()))


def wait_for_line(proc: subprocess.Popen[bytes], log: Path, pattern: str, deadline: float) -> re.Match[str]:
    while time.monotonic() < deadline:
        match = re.search(pattern, log.read_text(errors="replace"))
        if match is not None:
            return match
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        time.sleep(0.05)
    raise RuntimeError(f"{proc.args!r} printed no {pattern!r} within {PROPAGATION_SECONDS} s")


async def propagation_rounds(kubeconfig: Path, poller: Poller, deadline: float) -> dict[str, dict[str, list[float]]]:
    """Seconds of every round's API write and of its propagation, by change."""
    samples: dict[str, dict[str, list[float]]] = {change: {"write": [], "propagation": []} for change in CHANGES}

    async def write(change: str, call: Awaitable[dict[str, Any]]) -> tuple[dict[str, Any], float]:
        sent = time.monotonic()
        # Polls give up at the deadline by themselves; this stops a write that hangs past it.
        async with asyncio.timeout(max(0.0, deadline - sent)):
            obj = await call
        answered = time.monotonic()
        samples[change]["write"].append(answered - sent)
        return obj, answered

    def host_aliases(aliases: list[dict[str, Any]] | None) -> dict[str, Any]:
        return {"spec": {"config": {"hostAliases": aliases}}}

    async with Client(load_kubeconfig(kubeconfig), request_timeout=10) as client:
        # Untimed, so that no write's time holds the TLS handshake.
        await client.get(PLUGINS, "coredns")
        for i in range(ROUNDS):
            # Fresh names and addresses each round: no answer of an earlier round can pass for this one's.
            ip, alias = f"{ALIAS_NET}.{i + 1}", f"alias-{i}.bench.test"
            _, answered = await write("host_alias_add", client.patch(
                PLUGINS, "coredns", host_aliases([{"ip": ip, "domains": [alias]}])))
            samples["host_alias_add"]["propagation"].append(poller.until(alias, shows(ip), answered))
            _, answered = await write("host_alias_remove", client.patch(PLUGINS, "coredns", host_aliases(None)))
            samples["host_alias_remove"]["propagation"].append(poller.until(alias, lacks(ip), answered))

            name = f"prop-{i}"
            fqdn = f"{name}.default.svc.cluster.local"
            service, answered = await write("service_create", client.create(SERVICE_RESOURCE, {
                "apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"},
                "spec": {"type": "ClusterIP", "ports": [{"port": 80, "protocol": "TCP"}]}}))
            cluster_ip = str(service["spec"]["clusterIP"])
            samples["service_create"]["propagation"].append(poller.until(fqdn, shows(cluster_ip), answered))
            _, answered = await write("service_delete", client.delete(SERVICE_RESOURCE, name, "default"))
            samples["service_delete"]["propagation"].append(poller.until(fqdn, nxdomain, answered))
    return samples


def summary(seconds: list[float]) -> dict[str, float]:
    """p50, p99 (nearest rank: of 20 samples, the largest) and max, in ms."""
    ordered = sorted(seconds)

    def rank(p: float) -> float:
        return round(1000 * ordered[math.ceil(p * len(ordered)) - 1], 2)

    return {"p50_ms": rank(0.5), "p99_ms": rank(0.99), "max_ms": round(1000 * ordered[-1], 2)}


def propagation() -> dict[str, Any]:
    """Case (c): its own API server and DNS server, on a temporary data directory."""
    deadline = time.monotonic() + PROPAGATION_SECONDS
    with tempfile.TemporaryDirectory(prefix="netplane-dnsprop-") as tmp_name, ExitStack() as stack:
        tmp = Path(tmp_name)
        procs = Processes()
        stack.callback(procs.close)
        api_log, dns_log = tmp / "api.log", tmp / "dns.log"
        try:
            api = procs.start(sys.executable, "-m", "netplane.cli", "up", "--no-dataplane", "--data-dir",
                              str(tmp / "data"), "--api-port", "0", log=api_log)
            kubeconfig = Path(wait_for_line(api, api_log, r"netplane ready: API \S+, kubeconfig (\S+)",
                                            deadline).group(1))
            port = free_port(PROPAGATION)
            procs.start(sys.executable, "-m", "netplane.dataplane.dns", "serve", "--kubeconfig", str(kubeconfig),
                        "--listen", f"{PROPAGATION}:{port}", "--metrics", f"{PROPAGATION}:{free_port(PROPAGATION)}",
                        "--health", f"{PROPAGATION}:{free_port(PROPAGATION)}",
                        "--ready", f"{PROPAGATION}:{free_port(PROPAGATION)}", log=dns_log)
            poller = Poller(PROPAGATION, port, deadline)
            stack.callback(poller.close)
            # Until every informer has listed, the zone says SERVFAIL for a missing name: NXDOMAIN is ready.
            poller.until("missing.default.svc.cluster.local", nxdomain, time.monotonic())
            samples = asyncio.run(propagation_rounds(kubeconfig, poller, deadline))
        except BaseException:
            # The logs go with the temporary directory: show them while they are there.
            for log in (api_log, dns_log):
                if log.exists():
                    print(f"--- {log.name}\n{log.read_text(errors='replace')[-4000:]}", file=sys.stderr)
            raise
    return {change: {**summary(samples[change]["propagation"]),
                     "api_write_p50_ms": summary(samples[change]["write"])["p50_ms"]} for change in CHANGES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 s per measurement instead of 8")
    parser.add_argument("--serve-zone", metavar="HOST:PORT", help=argparse.SUPPRESS)
    parser.add_argument("--ttl", type=int, default=ZONE_TTL, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_zone:
        host, port = args.serve_zone.rsplit(":", 1)
        serve_zone(host, int(port), args.ttl)
        return
    missing = [tool for tool in ("dnsperf", "unbound") if shutil.which(tool) is None]
    if missing:
        sys.exit(f"bench.dns needs {' and '.join(missing)} (Debian packages dnsperf, unbound)")
    seconds = 2 if args.quick else 8
    results = {**run(seconds), "propagation": propagation()}
    met = {f"{case}_ratio": results[case]["qps_ratio_to_unbound"] >= TARGET_RATIO
           for case in ("authoritative", "cache_hit")}
    met.update({f"{case}_qps": results[case]["netplane"]["qps"] >= TARGET_QPS
                for case in ("authoritative", "cache_hit")})
    report = {
        "benchmark": "dns",
        "quick": args.quick,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "dnsperf": _version(["dnsperf", "-h"], r"Version ([\d.]+)"),
                    "unbound": _version(["unbound", "-V"], r"Version ([\d.]+)")},
        "setup": {"services": SERVICES, "queries": "80% A hit, 10% AAAA NODATA, 10% A NXDOMAIN",
                  "loaded": f"dnsperf -l {seconds} -c 4 -q 200 -T 1", "unloaded": "dnsperf -c 1 -q 1 -T 1",
                  "unbound": "num-threads 1, module iterator; (a) local-data, (b) forward-zone over TCP",
                  "netplane": "one process each on uvloop; (b) origin TTL 30, caches warmed first",
                  "propagation": f"netplane up --no-dataplane and dns serve; {ROUNDS} rounds of each change, "
                                 f"from the write's response, an A query every {POLL_INTERVAL * 1000:g} ms; "
                                 "p99 by nearest rank (of 20 rounds: the max)"},
        "reference": {"qps": f">= {TARGET_QPS} (CoreDNS, about one core, Scaling CoreDNS)",
                      "qps_ratio_to_unbound": f">= {TARGET_RATIO}"},
        "results": results,
        "met": met,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


def _version(argv: list[str], pattern: str) -> str:
    out = subprocess.run(argv, capture_output=True, text=True)
    match = re.search(pattern, out.stdout + out.stderr)
    return match.group(1) if match else "?"


if __name__ == "__main__":
    main()
