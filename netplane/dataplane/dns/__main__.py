"""`python -m netplane.dataplane.dns serve ...` (the cluster DNS) and `... cache ...` (the node-local cache).

Both run on uvloop until SIGTERM or SIGINT, then close their sockets and exit 0. Bad arguments, an
unusable kubeconfig or an invalid zone setting exit 2; an address that cannot be bound exits 1.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import uvloop

from netplane.dataplane.dns.forward import Address, parse_address


def _address(default_port: int) -> Callable[[str], Address]:
    def parse(text: str) -> Address:
        try:
            return parse_address(text, default_port)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    return parse


def _ip(text: str) -> str:
    host, port = _address(0)(text)
    if port:
        raise argparse.ArgumentTypeError(f"an IP address without a port: {text!r}")
    return host


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m netplane.dataplane.dns", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="the cluster DNS server (Services and EndpointSlices → DNS)")
    serve.add_argument("--kubeconfig", type=Path, help="default: the pod's service account")
    serve.add_argument("--listen", type=_address(53), action="append", metavar="ADDR:PORT",
                       help="UDP and TCP address to answer on; repeatable (default 0.0.0.0:53)")
    serve.add_argument("--cluster-domain", default="cluster.local")
    serve.add_argument("--ttl", type=int, default=5, help="TTL of the zone's records (default 5)")
    serve.add_argument("--upstream", type=_address(53), action="append", default=[], metavar="IP[:PORT]",
                       help="resolver for names outside the zone; repeatable (none: they get SERVFAIL)")
    serve.add_argument("--nameserver-ip", type=_ip, action="append", default=[], metavar="IP",
                       help="a cluster IP of the DNS Service (ns.dns.<zone>, apex NS glue); repeatable")
    serve.add_argument("--plugin", default="coredns",
                       help="the ClusterPlugin whose spec.config.hostAliases are served (default coredns)")
    serve.add_argument("--metrics", type=_address(9153), default=("0.0.0.0", 9153), metavar="ADDR:PORT")
    serve.add_argument("--health", type=_address(8080), default=("0.0.0.0", 8080), metavar="ADDR:PORT")
    serve.add_argument("--ready", type=_address(8181), default=("0.0.0.0", 8181), metavar="ADDR:PORT")

    cache = commands.add_parser("cache", help="the node-local DNS cache (NodeLocal DNSCache)")
    cache.add_argument("--listen", type=_ip, default="169.254.20.10", metavar="IP",
                       help="address to answer on (default 169.254.20.10; an IPv6 one such as fd00::10 works)")
    cache.add_argument("--port", type=int, default=53)
    cache.add_argument("--cluster-dns", type=_address(53), required=True, metavar="IP[:PORT]",
                       help="the cluster DNS Service IP, asked over TCP for the cluster domain and reverse zones")
    cache.add_argument("--cluster-domain", default="cluster.local")
    cache.add_argument("--upstream", type=_address(53), action="append", default=[], metavar="IP[:PORT]",
                       help="resolver for other names, over UDP; repeatable (none: the cluster DNS)")
    cache.add_argument("--metrics", type=_address(9253), metavar="ADDR:PORT", help="default <listen>:9253")
    cache.add_argument("--health", type=_address(8080), metavar="ADDR:PORT", help="default <listen>:8080")
    cache.add_argument("--add-address", action="store_true",
                       help="put the listen address on lo while running (removed on exit)")
    return root


async def _until_signalled(run: Callable[[asyncio.Event], Coroutine[Any, Any, int]]) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return await run(stop)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "serve":
        from netplane.dataplane.dns.serve import ServeOptions, run_serve

        serve_options = ServeOptions(
            kubeconfig=args.kubeconfig, listen=args.listen or [("0.0.0.0", 53)], cluster_domain=args.cluster_domain,
            ttl=args.ttl, upstreams=args.upstream, nameserver_ips=args.nameserver_ip, plugin=args.plugin,
            metrics=args.metrics, health=args.health, ready=args.ready)
        try:
            return uvloop.run(_until_signalled(lambda stop: run_serve(serve_options, stop)))
        except ValueError as e:  # an unusable kubeconfig (KubeconfigError) or zone setting
            print(f"netplane dns serve: {e}", file=sys.stderr)
            return 2
        except OSError as e:
            print(f"netplane dns serve: {e}", file=sys.stderr)
            return 1
    from netplane.dataplane.dns.nodecache import CacheOptions, add_lo_address, remove_lo_address, run_cache

    cache_options = CacheOptions(
        listen=args.listen, port=args.port, cluster_dns=args.cluster_dns, cluster_domain=args.cluster_domain,
        upstreams=args.upstream, metrics=args.metrics, health=args.health)
    try:
        if args.add_address:
            add_lo_address(args.listen)
        try:
            return uvloop.run(_until_signalled(lambda stop: run_cache(cache_options, stop)))
        finally:
            if args.add_address:
                remove_lo_address(args.listen)
    except OSError as e:
        print(f"netplane dns cache: {e}", file=sys.stderr)
        return 1

if __name__ == "__main__":
    sys.exit(main())
