"""The `netplane` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from netplane import KUBERNETES_VERSION
from netplane.scheduling.lifecycle import DEFAULT_GRACE_PERIOD


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (0-65535)")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="netplane", description="The networking layer of a container platform.")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the platform in the foreground")
    up.add_argument("--data-dir", type=Path, default=Path(".netplane"), help="state directory (default ./.netplane)")
    up.add_argument("--api-port", type=_port, default=6443, help="API port; 0 picks a free one (default 6443)")
    up.add_argument("--bind", default="127.0.0.1", help="address the API listens on (default 127.0.0.1)")
    up.add_argument("--no-dataplane", action="store_true", help="control plane only")
    up.add_argument("--nodes", type=int, default=2, help="number of nodes (default 2)")
    up.add_argument("--node-names", help="comma-separated node names (default node1,node2,...)")
    up.add_argument("--node-cidr", default="172.31.250.0/24",
                    help="the nodes' network on the fabric (default 172.31.250.0/24)")
    up.add_argument("--host-access", action="store_true",
                    help="link the root namespace to the fabric (a veth), so this host reaches nodes and pods")
    up.add_argument("--service-cidr", default="10.96.0.0/12", help="cluster IP range (default 10.96.0.0/12)")
    up.add_argument("--service-node-port-range", default="30000-32767",
                    help="node port range (default 30000-32767)")
    _node_monitor_option(up)
    user = sub.add_parser("user", help="manage API users").add_subparsers(dest="user_command", required=True)
    user_add = user.add_parser("add", help="create a user and print a kubeconfig for them on stdout")
    user_add.add_argument("name", help="user name (the certificate CN, the RBAC subject)")
    user_add.add_argument("--project", action="append", default=[], metavar="P",
                          help="make the user a developer of project P (repeatable)")
    user_add.add_argument("--admin", action="store_true", help="make the user a platform administrator")
    user_add.add_argument("--client-cert", action="store_true",
                          help="log in with a client certificate instead of a bearer token")
    user_add.add_argument("--data-dir", type=Path, default=Path(".netplane"),
                          help="state directory (default ./.netplane)")
    _controller_parser(sub.add_parser("controller", help="run netplane's controllers against a Kubernetes API"))
    _apiserver_parser(sub.add_parser("apiserver", help="(started by `netplane up`) serve the API on its sockets"))
    sub.add_parser("version", help="print the version")
    for name, what in (("backup", "write a consistent snapshot of every API object to FILE (while running too)"),
                       ("restore", "make a new data directory from a backup FILE")):
        cmd = sub.add_parser(name, help=what)
        cmd.add_argument("--data-dir", type=Path, default=Path(".netplane"), help="data directory")
        cmd.add_argument("file", type=Path)
    down = sub.add_parser("down", help="remove what a stopped or crashed `up` left (pods, namespaces)")
    down.add_argument("--data-dir", type=Path, default=Path(".netplane"), help="data directory")
    external = sub.add_parser("external", help="run a command in the cluster's external namespace")
    external.add_argument("--data-dir", type=Path, default=Path(".netplane"), help="data directory")
    external.add_argument("cmd", nargs=argparse.REMAINDER, help="-- COMMAND [ARG...]")
    sub.add_parser("manifests", help="print the CustomResourceDefinitions of netplane's kinds (for a real cluster)")
    return parser


def _user_add(args: argparse.Namespace) -> int:
    from netplane.api.auth.issue import add_user_kubeconfig
    from netplane.api.auth.users import UserError

    if not (args.data_dir / "format.json").exists():
        print(f"netplane: {args.data_dir} is not a netplane data directory (run `netplane up` first)",
              file=sys.stderr)
        return 2
    try:
        print(add_user_kubeconfig(args.data_dir, args.name, args.project, args.admin, args.client_cert), end="")
    except UserError as e:
        print(f"netplane: {e}", file=sys.stderr)
        return 1
    return 0


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def _seconds(text: str) -> float:
    """Seconds, as a plain number or a Kubernetes-style duration (`40s`, `1m30s`, `500ms`)."""
    try:
        value = float(text)
    except ValueError:
        parts = _DURATION_PART.findall(text)
        if not parts or "".join(number + unit for number, unit in parts) != text:
            raise argparse.ArgumentTypeError(f"{text!r} is not a duration (40, 40s, 1m30s, 500ms)") from None
        value = sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number of seconds")
    return value


def _controller_parser(ctl: argparse.ArgumentParser) -> None:
    ctl.add_argument("--kubeconfig", type=Path, help="kubeconfig of the API to control (default: in-cluster)")
    ctl.add_argument("--leader-elect", action=argparse.BooleanOptionalAction, default=True,
                     help="run controllers only while holding the lease (default on)")
    ctl.add_argument("--lease-namespace", default="kube-system", help="namespace of the lease (default kube-system)")
    ctl.add_argument("--lease-name", default="netplane-controller", help="name of the lease")
    ctl.add_argument("--lease-duration", type=_seconds, default=15.0, help="seconds (default 15)")
    ctl.add_argument("--renew-deadline", type=_seconds, default=10.0, help="seconds (default 10)")
    ctl.add_argument("--retry-period", type=_seconds, default=2.0, help="seconds (default 2)")
    ctl.add_argument("--metrics-port", type=_port, default=0, help="serve /metrics on this port (default 0: off)")
    ctl.add_argument("--identity", help="this candidate's name in the lease (default hostname_uuid)")
    _node_monitor_option(ctl)


def _apiserver_parser(api: argparse.ArgumentParser) -> None:
    api.add_argument("--data-dir", type=Path, required=True, help="data directory (its store, CA and tokens)")
    api.add_argument("--listen-fd", type=int, action="append", required=True, metavar="FD",
                     help="an inherited listening socket to serve on (repeatable)")
    api.add_argument("--server-address", required=True, help="HOST:PORT clients use, for discovery")
    api.add_argument("--kubernetes-port", type=_port, default=6443, help="the `kubernetes` Service's port")
    api.add_argument("--service-cidr", default="10.96.0.0/12", help="cluster IP range (default 10.96.0.0/12)")
    api.add_argument("--service-node-port-range", default="30000-32767", help="node port range")
    api.add_argument("--fabric-endpoint", metavar="IP:PORT",
                     help="the API's address on the fabric, published as the `kubernetes` Service's endpoint")


def _port_range(text: str) -> tuple[int, int] | None:
    try:
        low, high = (int(p) for p in text.split("-"))
    except ValueError:
        print(f"netplane: --service-node-port-range: {text!r} is not LOW-HIGH", file=sys.stderr)
        return None
    return low, high


def _node_monitor_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--node-monitor-grace-period", type=_seconds, default=DEFAULT_GRACE_PERIOD,
                        help="how long a node may go without a heartbeat before it is marked Unknown and tainted "
                             f"unreachable (default {DEFAULT_GRACE_PERIOD:.0f}s)")


def _run_controller(args: argparse.Namespace) -> int:
    from netplane.controllers.kube.config import KubeconfigError
    from netplane.controllers.process import ControllerOptions, run
    from netplane.controllers.runtime.leader import LeaseTiming

    try:
        timing = LeaseTiming(args.lease_duration, args.renew_deadline, args.retry_period)
    except ValueError as e:
        print(f"netplane controller: {e}", file=sys.stderr)
        return 2
    options = ControllerOptions(kubeconfig=args.kubeconfig, leader_elect=args.leader_elect,
                                lease_namespace=args.lease_namespace, lease_name=args.lease_name,
                                metrics_port=args.metrics_port, timing=timing,
                                node_monitor_grace_period=args.node_monitor_grace_period)
    if args.identity:
        options.identity = args.identity
    try:
        return _run_loop(run(options))
    except KubeconfigError as e:
        print(f"netplane controller: {e}", file=sys.stderr)
        return 2


def _run_loop(main: Coroutine[Any, Any, int]) -> int:
    try:
        import uvloop

        return uvloop.run(main)
    except ImportError:
        return asyncio.run(main)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "version":
        print(f"netplane 0.1.0 (Kubernetes API {KUBERNETES_VERSION})")
        return 0
    if args.command in ("backup", "restore"):
        from netplane import backup

        try:
            if args.command == "backup":
                revision = backup.backup(args.data_dir, args.file)
                print(f"backed up {args.data_dir} at resourceVersion {revision} to {args.file}")
            else:
                revision = backup.restore(args.data_dir, args.file)
                print(f"restored {args.file} (resourceVersion {revision}) into {args.data_dir}")
        except backup.BackupError as e:
            print(f"netplane {args.command}: {e}", file=sys.stderr)
            return 2
        return 0
    if args.command == "user":
        return _user_add(args)
    if args.command == "manifests":
        import yaml

        from netplane.model import ALL_KINDS, crd_manifest

        print(yaml.safe_dump_all([crd_manifest(k) for k in ALL_KINDS], sort_keys=False), end="")
        return 0
    if args.command == "controller":
        return _run_controller(args)
    if args.command == "apiserver":
        from netplane.apiserver_main import ApiServerOptions, run_apiserver

        if (node_ports := _port_range(args.service_node_port_range)) is None:
            return 2
        return _run_loop(run_apiserver(ApiServerOptions(
            data_dir=args.data_dir, listen_fds=args.listen_fd, server_address=args.server_address,
            kubernetes_port=args.kubernetes_port, service_cidr=args.service_cidr, node_port_range=node_ports,
            fabric_endpoint=args.fabric_endpoint)))
    if args.command == "down":
        import os

        from netplane import datadir
        from netplane.dataplane.agent.launcher import down

        if not args.data_dir.is_dir():
            print(f"netplane down: {args.data_dir} does not exist", file=sys.stderr)
            return 2
        try:
            lock = datadir.hold_lock(args.data_dir)  # never pull the cluster from under a running `up`
        except datadir.DataDirError as e:
            print(f"netplane down: {e}; stop it first (Ctrl-C)", file=sys.stderr)
            return 1
        try:
            for item in down(args.data_dir):
                print(f"removed {item}")
        finally:
            os.close(lock)
        return 0
    if args.command == "external":
        from netplane.dataplane.agent.launcher import run_external

        cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
        if not cmd:
            print("netplane external: no command (netplane external -- CMD ...)", file=sys.stderr)
            return 2
        return run_external(args.data_dir, cmd)
    from netplane.up import UpOptions, serve

    if (node_ports := _port_range(args.service_node_port_range)) is None:
        return 2
    if args.node_names:
        node_names = [n.strip() for n in args.node_names.split(",") if n.strip()]
    else:
        from netplane.dataplane.agent.launcher import default_node_names

        node_names = default_node_names(args.nodes)
    if not node_names:
        print("netplane: at least one node is needed", file=sys.stderr)
        return 2
    options = UpOptions(data_dir=args.data_dir, api_port=args.api_port, bind=args.bind,
                        dataplane=not args.no_dataplane, service_cidr=args.service_cidr,
                        node_port_range=node_ports, node_names=node_names, node_cidr=args.node_cidr,
                        host_access=args.host_access, node_monitor_grace_period=args.node_monitor_grace_period)
    return _run_loop(serve(options))


if __name__ == "__main__":
    sys.exit(main())
