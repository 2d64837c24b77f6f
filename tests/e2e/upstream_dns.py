"""A stand-in for the world's DNS, run in a test topology's external namespace.

Answers `example.com` and every name under `.example` with fixed TEST-NET addresses, NXDOMAIN
for the rest, and logs each query name to stdout (a test can see what reached "the Internet").
"""

from __future__ import annotations

import argparse
import sys
import time

from dnslib import QTYPE, RCODE, RR, A, DNSRecord
from dnslib.server import BaseResolver, DNSLogger, DNSServer

ANSWERS = {"example.com.": "192.0.2.80", "www.example.com.": "192.0.2.81"}


class Resolver(BaseResolver):  # type: ignore[misc]
    def resolve(self, request: DNSRecord, handler: object) -> DNSRecord:
        reply = request.reply()
        name = str(request.q.qname).lower()
        print(f"query {name} {QTYPE[request.q.qtype]}", flush=True)
        address = ANSWERS.get(name) or ("192.0.2.99" if name.endswith(".example.") else None)
        if address is None:
            reply.header.rcode = RCODE.NXDOMAIN
        elif request.q.qtype in (QTYPE.A, QTYPE.ANY):
            reply.add_answer(RR(request.q.qname, QTYPE.A, ttl=300, rdata=A(address)))
        return reply


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=53)
    args = parser.parse_args()
    quiet = DNSLogger("-request,-reply,-truncated,-error,-recv,-send,-data")
    servers = [DNSServer(Resolver(), address=args.address, port=args.port, tcp=tcp, logger=quiet)
               for tcp in (False, True)]
    for server in servers:
        server.start_thread()
    print("upstream dns ready", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
