"""`python -m netplane.dataplane.agent --node NAME --kubeconfig FILE --data-dir DIR`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

from pyroute2 import config as pyroute2_config

from netplane.controllers.kube.config import KubeconfigError, load_kubeconfig
from netplane.dataplane.agent import config as agent_config
from netplane.dataplane.agent.agent import Agent
from netplane.dataplane.runtime import linux


def enter_netns(name: str) -> None:
    """Move the whole process into the node's network namespace. Called before any thread or
    event loop exists: setns changes only the calling thread, so later threads inherit it."""
    linux.setns_path(f"/run/netns/{name}", linux.CLONE_NEWNET)


def quiet_pyroute2_children() -> None:
    """pyroute2 forks a helper per namespaced netlink socket and SIGTERMs it when done. The fork
    inherits asyncio's signal handler, whose wakeup fd is shared with us: the helper's SIGTERM
    would reach our event loop as if we had been asked to stop. With this the helper resets
    SIGTERM to the default action first."""
    pyroute2_config.disable_mp_signal = True


def _stop(task: asyncio.Task[None], sig: signal.Signals) -> None:
    logging.getLogger("netplane.agent").info("stopping on %s", sig.name)
    task.cancel()


async def _main(agent: Agent) -> int:
    task = asyncio.create_task(agent.run())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # Stopping the agent never stops pods: their shims keep running and a new agent adopts them.
        loop.add_signal_handler(sig, _stop, task, sig)
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="netplane-agent", description="netplane's node agent")
    parser.add_argument("--node", required=True)
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--no-netns", action="store_true", help="stay in the current network namespace")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = agent_config.load(args.data_dir, args.node)
        cluster = load_kubeconfig(args.kubeconfig)
    except (OSError, ValueError, TypeError, KubeconfigError) as e:
        print(f"netplane agent: {e}", file=sys.stderr)
        return 2
    quiet_pyroute2_children()
    if not args.no_netns:
        enter_netns(config.netns)
    return asyncio.run(_main(Agent(config, cluster, args.data_dir)))


if __name__ == "__main__":
    sys.exit(main())
