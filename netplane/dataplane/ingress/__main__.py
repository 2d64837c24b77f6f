"""`python -m netplane.dataplane.ingress --class nginx --instance NAMESPACE/NAME`: an ingress-nginx instance.

Serves the class's Ingresses on 80/443 of the pod's network namespace through the gateway engine, with /healthz
and /metrics on 10254. Runs until SIGTERM or SIGINT, then stops nginx and exits 0. Bad arguments or an unusable
kubeconfig exit 2; a metrics port that cannot be bound exits 1. nginx that cannot start is tried again every
second while /healthz answers 503, as a configuration it refuses is.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

import uvloop

from netplane.dataplane.dns.forward import Address, parse_address
from netplane.dataplane.ingress.instance import InstanceOptions, run_instance


def _instance(text: str) -> tuple[str, str]:
    namespace, _, name = text.partition("/")
    if not namespace or not name or "/" in name:
        raise argparse.ArgumentTypeError(f"NAMESPACE/NAME, not {text!r}")
    return namespace, name


def _address(text: str) -> Address:
    try:
        return parse_address(text, 10254)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m netplane.dataplane.ingress", description=__doc__)
    p.add_argument("--class", dest="class_name", default="nginx", help="the IngressClass served (default nginx)")
    p.add_argument("--instance", type=_instance, required=True, metavar="NAMESPACE/NAME",
                   help="the IngressNginx this pod belongs to (its settings, status addresses and events)")
    p.add_argument("--kubeconfig", type=Path, help="default: the pod's service account")
    p.add_argument("--prefix", type=Path, help="nginx's working directory (default /tmp/netplane-ingress-<pod>)")
    p.add_argument("--metrics", type=_address, default=("0.0.0.0", 10254), metavar="ADDR:PORT",
                   help="/healthz and /metrics (default 0.0.0.0:10254)")
    p.add_argument("--debounce", type=float, default=0.05, help="seconds to gather changes before a sync")
    return p


async def _until_signalled(options: InstanceOptions) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return await run_instance(options, stop)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    namespace, name = args.instance
    options = InstanceOptions(class_name=args.class_name, namespace=namespace, name=name, kubeconfig=args.kubeconfig,
                              prefix=args.prefix, metrics=args.metrics, debounce=args.debounce)
    try:
        return uvloop.run(_until_signalled(options))
    except ValueError as e:  # an unusable kubeconfig (KubeconfigError) or prefix (ConfigError)
        print(f"netplane ingress-nginx: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"netplane ingress-nginx: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
