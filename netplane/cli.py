"""The `netplane` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from netplane import KUBERNETES_VERSION


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
    up.add_argument("--service-cidr", default="10.96.0.0/12", help="cluster IP range (default 10.96.0.0/12)")
    up.add_argument("--service-node-port-range", default="30000-32767",
                    help="node port range (default 30000-32767)")
    sub.add_parser("version", help="print the version")
    for name, what in (("backup", "write a consistent snapshot of every API object to FILE (while running too)"),
                       ("restore", "make a new data directory from a backup FILE")):
        cmd = sub.add_parser(name, help=what)
        cmd.add_argument("--data-dir", type=Path, default=Path(".netplane"), help="data directory")
        cmd.add_argument("file", type=Path)
    sub.add_parser("manifests", help="print the CustomResourceDefinitions of netplane's kinds (for a real cluster)")
    return parser


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
    if args.command == "manifests":
        import yaml

        from netplane.model import ALL_KINDS, crd_manifest

        print(yaml.safe_dump_all([crd_manifest(k) for k in ALL_KINDS], sort_keys=False), end="")
        return 0
    from netplane.apiserver_main import UpOptions, serve

    try:
        low, high = (int(p) for p in args.service_node_port_range.split("-"))
    except ValueError:
        print(f"netplane: --service-node-port-range: {args.service_node_port_range!r} is not LOW-HIGH",
              file=sys.stderr)
        return 2
    options = UpOptions(data_dir=args.data_dir, api_port=args.api_port, bind=args.bind,
                        dataplane=not args.no_dataplane, service_cidr=args.service_cidr,
                        node_port_range=(low, high))
    try:
        import uvloop

        return uvloop.run(serve(options))
    except ImportError:
        return asyncio.run(serve(options))


if __name__ == "__main__":
    sys.exit(main())
