"""API server benchmarks: `python -m bench.api [--quick]` (or `make bench`).

Measures what the foundation issue sets targets for — create and get throughput
(16 concurrent keep-alive HTTPS connections from wrk, a C load generator, so the
client does not compete with the server for Python time), listing 10,000 objects, watch delivery
latency to 100 watchers, memory with 100,000 stored objects, idle CPU, and the
time from `make run` to ready — and writes them beside those targets to
bench/results/api.json. The reference is the target table of the issue (no
kube-apiserver binary can be installed on this machine to run side by side).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "api.json"

TARGETS = {
    "creates_per_s": (">=", 2000), "gets_per_s": (">=", 5000), "list_10k_ms": ("<=", None),
    "watch_p99_ms": ("<=", 20), "rss_100k_mb": ("<=", 400), "idle_cpu_percent": ("<=", 1.0),
    "ready_s": ("<=", 3.0),
}


class Server:
    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "netplane.cli", "up", "--no-dataplane", "--api-port", "0",
             "--data-dir", str(data_dir)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("netplane ready:"):
                break
        else:
            raise RuntimeError("netplane did not start")
        self.ready_s = time.perf_counter() - started
        config = yaml.safe_load((data_dir / "kubeconfig").read_text())
        cluster = config["clusters"][0]["cluster"]
        self.url = cluster["server"]
        self.ssl = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
        self.headers = {"Authorization": "Bearer " + config["users"][0]["user"]["token"],
                        "Content-Type": "application/json"}

    def api_pid(self) -> int:
        """The API server process, a child of `netplane up` (which only supervises it)."""
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid), "-f", "netplane.cli apiserver"],
                             capture_output=True, text=True, check=True).stdout.split()
        return int(out[0])

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.api_pid()}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.api_pid()}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)


def _configmap(name: str, value: str = "v") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"bench": "1"}},
            "data": {"key": value}}


async def _session(server: Server, limit: int) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit, ssl=server.ssl),
                                 headers=server.headers)


WRK_DIR = Path(__file__).parent / "wrk"


def _wrk(server: Server, script: str, path: str, seconds: int) -> float:
    """Requests per second from wrk (2 threads, 16 keep-alive connections); every answer must be 2xx."""
    token = server.headers["Authorization"].split(" ", 1)[1]
    out = subprocess.run(["wrk", "-t2", "-c16", f"-d{seconds}s", "-s", str(WRK_DIR / script), server.url + path],
                         capture_output=True, text=True, check=True, env={**os.environ, "NETPLANE_TOKEN": token}).stdout
    if "Non-2xx" in out:
        raise RuntimeError("wrk saw failed requests:\n" + out)
    return float(next(line.split()[1] for line in out.splitlines() if line.startswith("Requests/sec:")))


def _wrk_throughput(server: Server, seconds: int) -> tuple[float, float]:
    creates = _wrk(server, "create.lua", "/api/v1/namespaces/default/configmaps", seconds)
    asyncio.run(_create_one(server, "bench-get"))
    gets = _wrk(server, "get.lua", "/api/v1/namespaces/default/configmaps/bench-get", seconds)
    return creates, gets


async def _create_one(server: Server, name: str) -> None:
    async with await _session(server, 1) as session, \
            session.post(f"{server.url}/api/v1/namespaces/default/configmaps", data=json.dumps(_configmap(name))) as r:
        assert r.status == 201


async def _throughput(server: Server, count: int, concurrency: int) -> tuple[float, float]:
    async with await _session(server, concurrency) as session:
        base = f"{server.url}/api/v1/namespaces/default/configmaps"
        queue = list(range(count))

        async def create_worker() -> None:
            while queue:
                i = queue.pop()
                async with session.post(base, data=json.dumps(_configmap(f"c{i}"))) as resp:
                    assert resp.status == 201, await resp.text()
                    await resp.read()

        started = time.perf_counter()
        await asyncio.gather(*(create_worker() for _ in range(concurrency)))
        creates = count / (time.perf_counter() - started)

        gets = list(range(count * 2))

        async def get_worker() -> None:
            while gets:
                i = gets.pop() % count
                async with session.get(f"{base}/c{i}") as resp:
                    assert resp.status == 200
                    await resp.read()

        started = time.perf_counter()
        await asyncio.gather(*(get_worker() for _ in range(concurrency)))
        return creates, count * 2 / (time.perf_counter() - started)


async def _fill(server: Server, namespace: str, count: int) -> None:
    async with await _session(server, 16) as session:
        async with session.post(f"{server.url}/api/v1/namespaces",
                                data=json.dumps({"metadata": {"name": namespace}})) as resp:
            assert resp.status == 201
        todo = list(range(count))

        async def worker() -> None:
            while todo:
                i = todo.pop()
                async with session.post(f"{server.url}/api/v1/namespaces/{namespace}/configmaps",
                                        data=json.dumps(_configmap(f"l{i}"))) as resp:
                    assert resp.status == 201

        await asyncio.gather(*(worker() for _ in range(16)))


async def _list_ms(server: Server, namespace: str, repeats: int = 5) -> float:
    async with await _session(server, 1) as session:
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            async with session.get(f"{server.url}/api/v1/namespaces/{namespace}/configmaps") as resp:
                body = await resp.json()
            times.append((time.perf_counter() - started) * 1000)
            assert len(body["items"]) >= 10_000
        return statistics.median(times)


async def _watch_latency(server: Server, watchers: int, updates: int) -> dict[str, float]:
    async with await _session(server, watchers + 2) as session:
        base = f"{server.url}/api/v1/namespaces/default/configmaps"
        async with session.post(base, data=json.dumps(_configmap("watched", "0"))) as resp:
            rv = (await resp.json())["metadata"]["resourceVersion"]
        latencies: list[float] = []
        ready = asyncio.Event()
        connected = 0

        async def watcher() -> None:
            nonlocal connected
            url = f"{base}?watch=true&fieldSelector=metadata.name%3Dwatched&resourceVersion={rv}"
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=120)) as resp:
                connected += 1
                if connected == watchers:
                    ready.set()
                seen = 0
                async for line in resp.content:
                    event = json.loads(line)
                    sent = float(event["object"]["data"]["key"])
                    latencies.append((time.perf_counter() - sent) * 1000)
                    seen += 1
                    if seen == updates:
                        return

        tasks = [asyncio.create_task(watcher()) for _ in range(watchers)]
        await asyncio.wait_for(ready.wait(), 30)
        await asyncio.sleep(0.5)
        for _ in range(updates):
            patch = json.dumps({"data": {"key": repr(time.perf_counter())}})
            async with session.patch(f"{base}/watched", data=patch,
                                     headers={"Content-Type": "application/merge-patch+json"}) as resp:
                assert resp.status == 200
            await asyncio.sleep(0.05)
        await asyncio.wait_for(asyncio.gather(*tasks), 60)
    latencies.sort()
    return {"watch_p50_ms": latencies[len(latencies) // 2], "watch_p99_ms": latencies[int(len(latencies) * 0.99)]}


def _prefill_store(data_dir: Path, count: int) -> None:
    """Write ``count`` ConfigMaps through the API's own admission path, in-process and fast."""
    from netplane.api.core import WriteOptions
    from netplane.apiserver_main import build
    from netplane.up import UpOptions

    core, _ = build(UpOptions(data_dir=data_dir), 6443)
    rt = core.registry.lookup("", "v1", "configmaps")
    assert rt is not None
    core.store.raw._db.execute("BEGIN")  # one transaction: this is set-up, not the measurement
    for i in range(count):
        core.create(rt, "default", _configmap(f"m{i:06d}", "x" * 64), WriteOptions())
    core.store.raw._db.execute("COMMIT")
    core.store.raw.close()


def _make_run_ready_s(data_dir: Path) -> float:
    started = time.perf_counter()
    proc = subprocess.Popen(["make", "-s", "run", f"ARGS=--no-dataplane --api-port 0 --data-dir {data_dir}"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("netplane ready:"):
            break
    elapsed = time.perf_counter() - started
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller counts (a smoke run, not for the record)")
    args = parser.parse_args()
    n_create = 2000 if args.quick else 10_000
    n_mem = 10_000 if args.quick else 100_000
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="netplane-bench-") as tmp:
        results["ready_s"] = _make_run_ready_s(Path(tmp) / "ready")
        server = Server(Path(tmp) / "api")
        try:
            if shutil.which("wrk"):
                creates, gets = _wrk_throughput(server, 5 if args.quick else 15)
                results["load_generator"] = "wrk"
            else:
                creates, gets = asyncio.run(_throughput(server, n_create, 16))
                results["load_generator"] = "python-aiohttp (wrk not installed)"
            results["creates_per_s"], results["gets_per_s"] = creates, gets
            asyncio.run(_fill(server, "big", 10_000))
            results["list_10k_ms"] = asyncio.run(_list_ms(server, "big"))
            results.update(asyncio.run(_watch_latency(server, 100, 50)))
            time.sleep(2)
            before = server.cpu_seconds()
            time.sleep(10)
            results["idle_cpu_percent"] = (server.cpu_seconds() - before) / 10 * 100
        finally:
            server.stop()
        _prefill_store(Path(tmp) / "mem", n_mem)
        mem = Server(Path(tmp) / "mem")
        try:
            async def touch() -> None:
                async with await _session(mem, 1) as session, \
                        session.get(f"{mem.url}/api/v1/namespaces/default/configmaps?limit=1") as resp:
                    assert resp.status == 200
            asyncio.run(touch())
            results[f"rss_{n_mem // 1000}k_mb"] = mem.rss_mb()
        finally:
            mem.stop()
    report = {
        "benchmark": "api", "quick": args.quick, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "reference": "targets of the foundation issue (kube-apiserver cannot be run here)",
        "results": {k: round(v, 2) if isinstance(v, float) else v for k, v in results.items()},
        "targets": {k: f"{op} {v}" for k, (op, v) in TARGETS.items() if v is not None},
        "met": {k: (results[k] >= v if op == ">=" else results[k] <= v)
                for k, (op, v) in TARGETS.items() if v is not None and k in results},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    if not args.quick:
        RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
