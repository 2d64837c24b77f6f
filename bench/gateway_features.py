"""What rate limits, connection limits and the WAF cost the gateway engine: `python -m bench.gateway_features`.

- user-space instructions per proxied request (callgrind, exact whatever else runs on the machine) on a plain
  route, a route with a request rate, a route with a connection limit (it continues in @np_conn, with a log
  phase) and a route with the OWASP CRS in blocking mode; the plain route is measured both without WAF
  profiles and with two CRS profiles loaded, which shows whether ModSecurity on some routes changes the
  others' hot path;
- the memory of nginx (master + worker, RSS and PSS) and the reload time as CRS profiles are added.

Uses the helpers of bench/gateway.py (same backend, same callgrind procedure).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.gateway import (
    BACKEND_A,
    ENGINE_ADDR,
    LOAD_CORE,
    _callgrind_per_request,
    _memory_kb,
    backend_conf,
    free_port,
    plain_nginx,
)
from netplane.dataplane.gateway import Engine, InstanceSettings, Listener, WafProfile

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "gateway_features.json"
HOST = "features.bench.example"
BLOCK_CRS, DETECT_CRS = WafProfile(blocking=True, owasp_crs=True), WafProfile(owasp_crs=True)


def _routes(backend: str, waf: bool) -> list[dict[str, Any]]:
    group = {"backends": [{"name": backend}]}

    def route(path: str, *filters: dict[str, Any]) -> dict[str, Any]:
        return {"id": path, "match": {"path": {"type": "prefix", "value": path}}, "backend": group,
                **({"filters": list(filters)} if filters else {})}

    routes = [route("/rate", {"type": "rate_limit", "zone": "rate",
                              "rates": [{"limit": 100_000_000, "unit": "second", "burst": 0}]}),
              route("/conn", {"type": "rate_limit", "zone": "conn", "connections": 1000})]
    if waf:
        routes.append(route("/waf", {"type": "waf", "mode": "blocking", "owasp_crs": True}))
    return [*routes, route("/")]


def instructions(tmp: Path, backend_port: int, requests: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for label, waf, paths in (("", (), ("/plain", "/rate", "/conn")),
                              ("with_crs_profiles_", (BLOCK_CRS, DETECT_CRS), ("/plain", "/waf"))):
        port = free_port(ENGINE_ADDR)
        eng = Engine(InstanceSettings(tmp / f"cg{len(out)}"), [Listener(port, ipaddress.ip_address(ENGINE_ADDR))],
                     waf=waf)
        # A normal start writes the prefix; nginx then runs under valgrind with it.
        eng.start()
        eng.stop()

        def load(eng: Engine = eng, port: int = port, waf: bool = bool(waf)) -> None:
            eng.put_backend("b", [{"address": BACKEND_A, "port": backend_port}])
            eng.put_vhost("v", {"ports": [port], "hostnames": [HOST], "routes": _routes("b", waf)})

        for path in paths:
            out[f"{label}{path.strip('/')}_instructions_per_request"] = _callgrind_per_request(
                eng.prefix, eng.prefix / "conf/nginx.conf", ENGINE_ADDR, port, HOST, path, setup=load,
                requests=requests)
            for dump in eng.prefix.glob("callgrind.out*"):
                dump.unlink()
    return out


def memory_and_reloads(tmp: Path) -> dict[str, Any]:
    """Each profile set on a fresh engine (a master that has reloaded keeps the heap of earlier parses), then
    the reload that offers it to an engine running without."""
    steps: list[dict[str, Any]] = []
    for n, profiles in enumerate(((), (BLOCK_CRS,), (BLOCK_CRS, DETECT_CRS), (BLOCK_CRS, WafProfile(blocking=True)))):
        listeners = [Listener(free_port(ENGINE_ADDR), ipaddress.ip_address(ENGINE_ADDR)) for _ in range(2)]
        eng = Engine(InstanceSettings(tmp / f"mem{n}"), listeners, waf=profiles)
        eng.start()
        try:
            assert eng.master_pid is not None
            pids = [eng.master_pid, *eng.worker_pids()]
            rss, pss = (sum(v) for v in zip(*(_memory_kb(p) for p in pids), strict=True))
        finally:
            eng.stop()
        step: dict[str, Any] = {"profiles": [p.name for p in profiles], "listeners": len(listeners),
                                "rss_mb": rss / 1024, "pss_mb": pss / 1024}
        if profiles:
            eng = Engine(InstanceSettings(tmp / f"reload{n}"), listeners)
            eng.start()
            try:
                started = time.monotonic()
                eng.set_waf_profiles(profiles)
                step["reload_ms"] = (time.monotonic() - started) * 1000
            finally:
                eng.stop()
        steps.append(step)
    return {"memory_by_profiles": steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer requests (a smoke run, not for the record)")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="np-bench-gwf-") as tmp_name:
        tmp = Path(tmp_name)
        os.chmod(tmp, 0o755)
        backend_port = free_port(BACKEND_A)
        with plain_nginx(backend_conf(backend_port), LOAD_CORE):
            results.update(instructions(tmp, backend_port, 200 if args.quick else 1000))
        results.update(memory_and_reloads(tmp))
    report = {"benchmark": "gateway_features", "quick": args.quick,
              "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "results": {k: round(v, 1) if isinstance(v, float) else v for k, v in results.items()}}
    if not args.quick:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
